//! E-purse (PBOC ED/EP, JT/T 978 / T-Union) key diversification, session keys, MACs and TAC
//! (e-purse.md §3.2, §5).
//!
//! The 3DES rules are sourced (H in the brief). The SM4 rules are not confirmed by any public
//! source (all L, e-purse.md §5.7), so every SM4 byte rule is a field of [`Sm4Rules`] and
//! nowhere else; [`Sm4Rules::BRIEF`] is the set the brief implemented and its §8.3 values check.
//!
//! ```text
//!   master key --diversify(DIV = ASN[2..10])--> DLK / DPK / DTK        §3.2
//!   DLK/DPK --session_key(random||ctr||8000 or random||ctr||TTSN[2..4])--> SESLK/SESPK   §5.1
//!   SESLK/SESPK --session_mac--> MAC1, MAC2                             §5.2, §5.4
//!   DTK --tac--> TAC                                                    §5.5
//!   DAMK --secure_messaging_mac(IV = challenge||0..)--> SM MAC          §4.10, §5.3
//! ```

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;
use crate::diversify::{diversify_sm4, diversify_sm4_with, diversify_tdes, diversify_tdes_with};
use crate::keys::{DesKey, Sm4Key, TdesKey, redacted};
use crate::mac::{pboc_mac_des, retail_mac16, sm4_cbc_mac};

/// A 16-byte e-purse key: a 2-key 3DES key or an SM4 key, depending on the algorithm.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PurseKey([u8; 16]);

impl PurseKey {
    /// Wraps 16 key bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Parses a 16-byte key.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; 16] = bytes.try_into().map_err(|_| Error::InvalidKeyLength {
            algorithm: "e-purse key",
            actual: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// The key bytes. Handle with care: this is key material.
    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }

    fn tdes(&self) -> TdesKey {
        TdesKey::two_key(self.0)
    }

    fn sm4(&self) -> Sm4Key {
        Sm4Key::from_bytes(self.0)
    }
}

impl fmt::Debug for PurseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "PurseKey")
    }
}

/// A transaction session key: 8 bytes (single DES) for 3DES, 16 bytes for SM4 (e-purse.md §5.1,
/// §5.7).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKey {
    bytes: [u8; 16],
    len: u8,
}

impl SessionKey {
    /// Parses an 8-byte (DES) or 16-byte (SM4) session key.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        match bytes.len() {
            8 | 16 => {
                let mut buf = [0u8; 16];
                buf[..bytes.len()].copy_from_slice(bytes);
                Ok(Self {
                    bytes: buf,
                    len: bytes.len() as u8,
                })
            }
            actual => Err(Error::InvalidKeyLength {
                algorithm: "session key",
                actual,
            }),
        }
    }

    /// The key bytes (8 or 16). Handle with care: this is key material.
    pub fn expose(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// True for a 16-byte SM4 session key, false for an 8-byte DES one.
    pub fn is_sm4(&self) -> bool {
        self.len == 16
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "SessionKey")
    }
}

/// The algorithm of an e-purse key set, announced by the algorithm id of the INITIALIZE
/// response (e-purse.md §3.1, §4.3, §4.5).
///
/// Complete: the brief names exactly two algorithm families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum PurseAlgorithm {
    /// 2-key 3DES with single-DES session keys (algorithm id `00`, H).
    Tdes,
    /// SM4 under the given byte rules (all L, e-purse.md §5.7).
    Sm4(Sm4Rules),
}

impl PurseAlgorithm {
    /// Algorithm id byte of 3DES (e-purse.md §3.1, H).
    pub const TDES_ALGORITHM_ID: u8 = 0x00;

    /// The algorithm id byte: `00` for 3DES, `rules.algorithm_id` for SM4.
    pub fn algorithm_id(&self) -> u8 {
        match self {
            Self::Tdes => Self::TDES_ALGORITHM_ID,
            Self::Sm4(rules) => rules.algorithm_id,
        }
    }

    /// Picks the algorithm for an id byte read from an INITIALIZE response: `00` is 3DES,
    /// `sm4.algorithm_id` is SM4 under `sm4`; anything else is unknown (`None`).
    pub fn from_algorithm_id(id: u8, sm4: Sm4Rules) -> Option<Self> {
        if id == Self::TDES_ALGORITHM_ID {
            Some(Self::Tdes)
        } else if id == sm4.algorithm_id {
            Some(Self::Sm4(sm4))
        } else {
            None
        }
    }
}

/// How the 8-byte session input is widened to one SM4 block. L (e-purse.md §5.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionPadding {
    /// `data8 || 80 00 00 00 00 00 00 00`: what the brief implemented. L (e-purse.md §5.7).
    Method2,
    /// `data8 || 00 00 00 00 00 00 00 00`: open alternative (a). L (e-purse.md §5.7).
    Zeros,
}

/// How the 4-byte MAC is taken from the last 16-byte SM4 CBC block. L (e-purse.md §5.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MacOutput {
    /// The first 4 bytes of the last block: what the brief implemented. L (e-purse.md §5.7).
    FirstFour,
    /// Left 8 bytes XOR right 8 bytes of the last block, then the first 4 bytes: open
    /// alternative (b). L (e-purse.md §5.7).
    LeftXorRightFirstFour,
}

/// Which key computes the SM4 TAC from the DTK. L (e-purse.md §5.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TacKey {
    /// The DTK itself (SM4 has no key halves): what the brief implemented. L (e-purse.md §5.7).
    Dtk,
    /// `DTK[0..8] XOR DTK[8..16]` followed by 8 zero bytes: open alternative (c); the brief
    /// says only "padded", so the zero padding is our reading. L (e-purse.md §5.7).
    XorHalvesZeroPadded,
}

/// How a card SM4 key is diversified from its master key. L (e-purse.md §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sm4Diversification {
    /// `SM4_enc(MK, DIV || NOT DIV)`, one block: the only form the brief gives. L (e-purse.md §3.2).
    DivAndComplement,
}

/// Every SM4 e-purse byte rule in one place. All L (e-purse.md §5.7): no public source confirmed
/// them, so each open alternative stays switchable here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sm4Rules {
    /// Algorithm id byte in the INITIALIZE response; `04` in the brief. L (e-purse.md §3.1, §5.7).
    pub algorithm_id: u8,
    /// Card-key diversification form. L (e-purse.md §3.2).
    pub diversification: Sm4Diversification,
    /// Session-key input padding. L (e-purse.md §5.7 (a)).
    pub session_padding: SessionPadding,
    /// MAC truncation. L (e-purse.md §5.7 (b)).
    pub mac_output: MacOutput,
    /// TAC key. L (e-purse.md §5.7 (c)).
    pub tac_key: TacKey,
}

impl Sm4Rules {
    /// The rules the brief implemented ("what we implemented", e-purse.md §5.7): algorithm id
    /// `04`, `DIV || NOT DIV` diversification, `80 00..` session padding, first 4 bytes of the
    /// last block, DTK itself as TAC key. L (e-purse.md §5.7); its §8.3 values are tested.
    pub const BRIEF: Sm4Rules = Sm4Rules {
        algorithm_id: 0x04,
        diversification: Sm4Diversification::DivAndComplement,
        session_padding: SessionPadding::Method2,
        mac_output: MacOutput::FirstFour,
        tac_key: TacKey::Dtk,
    };

    /// These rules with another algorithm id.
    pub const fn with_algorithm_id(mut self, id: u8) -> Self {
        self.algorithm_id = id;
        self
    }

    /// These rules with another diversification form.
    pub const fn with_diversification(mut self, form: Sm4Diversification) -> Self {
        self.diversification = form;
        self
    }

    /// These rules with another session-input padding.
    pub const fn with_session_padding(mut self, padding: SessionPadding) -> Self {
        self.session_padding = padding;
        self
    }

    /// These rules with another MAC truncation.
    pub const fn with_mac_output(mut self, output: MacOutput) -> Self {
        self.mac_output = output;
        self
    }

    /// These rules with another TAC key form.
    pub const fn with_tac_key(mut self, tac_key: TacKey) -> Self {
        self.tac_key = tac_key;
        self
    }
}

impl Default for Sm4Rules {
    fn default() -> Self {
        Self::BRIEF
    }
}

/// The rules used for an SM4 session key when `alg` says 3DES (a caller mismatch): the brief's.
fn rules_of(alg: &PurseAlgorithm) -> Sm4Rules {
    match alg {
        PurseAlgorithm::Sm4(rules) => *rules,
        PurseAlgorithm::Tdes => Sm4Rules::BRIEF,
    }
}

/// SM4 CBC-MAC with `80`-padding from `iv`, truncated per `rules.mac_output`. L (e-purse.md §5.7).
fn sm4_mac(rules: &Sm4Rules, key: &Sm4Key, iv: &[u8; 16], data: &[u8]) -> [u8; 4] {
    let last = sm4_cbc_mac(key, iv, data);
    let mut out = [0u8; 4];
    match rules.mac_output {
        MacOutput::FirstFour => out.copy_from_slice(&last[..4]),
        MacOutput::LeftXorRightFirstFour => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = last[i] ^ last[i + 8];
            }
        }
    }
    out
}

/// Card key from a master key and the diversifier DIV = the last 8 bytes of the ASN
/// (e-purse.md §3.2). 3DES: `E(MK, DIV) || E(MK, NOT DIV)` (H). SM4: per
/// `rules.diversification` (L).
pub fn diversify(alg: &PurseAlgorithm, master: &PurseKey, div: &[u8; 8]) -> PurseKey {
    match alg {
        PurseAlgorithm::Tdes => {
            let card = diversify_tdes(&master.tdes(), div);
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(card.expose());
            let key = PurseKey(bytes);
            bytes.zeroize();
            key
        }
        PurseAlgorithm::Sm4(rules) => match rules.diversification {
            Sm4Diversification::DivAndComplement => {
                PurseKey(*diversify_sm4(&master.sm4(), div).expose())
            }
        },
    }
}

/// A master key with its key schedule expanded once, for deriving many card keys: the back office
/// checking the TACs of a day's records, a SAM serving many cards. [`MasterKeySchedule::diversify`]
/// gives exactly [`diversify`]'s result without expanding the master key again for each card.
///
/// The expanded schedule wipes itself on drop and prints `[redacted]`.
pub struct MasterKeySchedule {
    inner: MasterInner,
}

// One schedule lives per master key, so the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum MasterInner {
    Tdes(crate::keys::TdesCipher),
    Sm4(sm4::Sm4, Sm4Rules),
}

impl MasterKeySchedule {
    /// Expands `master` for `alg`.
    pub fn new(alg: &PurseAlgorithm, master: &PurseKey) -> Self {
        let inner = match alg {
            PurseAlgorithm::Tdes => MasterInner::Tdes(master.tdes().cipher()),
            PurseAlgorithm::Sm4(rules) => MasterInner::Sm4(master.sm4().cipher(), *rules),
        };
        Self { inner }
    }

    /// The card key for diversifier `div`: the same as [`diversify`] with the master and
    /// algorithm this schedule was made from.
    pub fn diversify(&self, div: &[u8; 8]) -> PurseKey {
        match &self.inner {
            MasterInner::Tdes(cipher) => {
                let card = diversify_tdes_with(cipher, div);
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(card.expose());
                let key = PurseKey(bytes);
                bytes.zeroize();
                key
            }
            MasterInner::Sm4(cipher, rules) => match rules.diversification {
                Sm4Diversification::DivAndComplement => {
                    PurseKey(*diversify_sm4_with(cipher, div).expose())
                }
            },
        }
    }
}

impl fmt::Debug for MasterKeySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "MasterKeySchedule")
    }
}

/// Session key from a card key (DLK or DPK) and the 8-byte session input (e-purse.md §5.1, §5.7).
///
/// 3DES: `3DES_enc(key, input)`, 8 bytes used as a single-DES key (H).
/// SM4: `SM4_enc(key, input || padding)` with padding per `rules.session_padding`, 16 bytes (L).
/// Build `input` with [`load_session_input`] or [`purchase_session_input`].
pub fn session_key(alg: &PurseAlgorithm, key: &PurseKey, input: &[u8; 8]) -> SessionKey {
    match alg {
        PurseAlgorithm::Tdes => {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&key.tdes().encrypt_block(input));
            SessionKey { bytes, len: 8 }
        }
        PurseAlgorithm::Sm4(rules) => {
            let mut block = [0u8; 16];
            block[..8].copy_from_slice(input);
            if rules.session_padding == SessionPadding::Method2 {
                block[8] = 0x80;
            }
            SessionKey {
                bytes: key.sm4().encrypt_block(&block),
                len: 16,
            }
        }
    }
}

/// MAC1 / MAC2 under a session key (e-purse.md §5.2, §5.4, §5.7): `80`-padding, CBC from a zero
/// IV, 4 bytes. An 8-byte session key gives the single-DES PBOC MAC (H); a 16-byte one gives
/// CBC-SM4 truncated per the SM4 rules of `alg` (L). The cipher follows the session key, so a
/// key made under `alg` is always MACed under `alg`'s rules.
pub fn session_mac(alg: &PurseAlgorithm, sk: &SessionKey, data: &[u8]) -> [u8; 4] {
    if sk.is_sm4() {
        sm4_mac(
            &rules_of(alg),
            &Sm4Key::from_bytes(sk.bytes),
            &[0u8; 16],
            data,
        )
    } else {
        let mut k = [0u8; 8];
        k.copy_from_slice(&sk.bytes[..8]);
        let key = DesKey::from_bytes(k);
        k.zeroize();
        pboc_mac_des(&key, &[0u8; 8], data)
    }
}

/// The 3DES TAC key `DTK[0..8] XOR DTK[8..16]` (e-purse.md §5.5, H).
pub fn tdes_tac_key(dtk: &PurseKey) -> DesKey {
    let mut k = [0u8; 8];
    for (i, b) in k.iter_mut().enumerate() {
        *b = dtk.0[i] ^ dtk.0[i + 8];
    }
    let key = DesKey::from_bytes(k);
    k.zeroize();
    key
}

/// TAC over the transaction data with the card's DTK (e-purse.md §5.5, §5.7).
///
/// 3DES: single-DES PBOC MAC with `K_TAC = DTK_L XOR DTK_R`, zero IV (H).
/// SM4: key per `rules.tac_key`, CBC-SM4 MAC truncated per `rules.mac_output`, zero IV (L).
pub fn tac(alg: &PurseAlgorithm, dtk: &PurseKey, data: &[u8]) -> [u8; 4] {
    match alg {
        PurseAlgorithm::Tdes => pboc_mac_des(&tdes_tac_key(dtk), &[0u8; 8], data),
        PurseAlgorithm::Sm4(rules) => {
            let key = match rules.tac_key {
                TacKey::Dtk => dtk.sm4(),
                TacKey::XorHalvesZeroPadded => {
                    let mut k = [0u8; 16];
                    for (i, b) in k.iter_mut().take(8).enumerate() {
                        *b = dtk.0[i] ^ dtk.0[i + 8];
                    }
                    let key = Sm4Key::from_bytes(k);
                    k.zeroize();
                    key
                }
            };
            sm4_mac(rules, &key, &[0u8; 16], data)
        }
    }
}

/// Copies `iv` into a zero block: shorter values are right-padded with `00`, so a 4-byte
/// challenge gives `challenge || 00..` (e-purse.md §4.10); bytes beyond one block are ignored.
fn iv_block<const N: usize>(iv: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.iter_mut().zip(iv).for_each(|(o, i)| *o = *i);
    out
}

/// Secure-messaging (line protection) MAC with a 16-byte application maintenance key over
/// `CLA INS P1 P2 Lc data` (e-purse.md §4.10, §5.3).
///
/// 3DES: ISO/IEC 9797-1 MAC algorithm 3 with `80`-padding, first 4 bytes (H). SM4: CBC-SM4 MAC
/// with `80`-padding truncated per the SM4 rules (L). `iv` is the GET CHALLENGE random: it is
/// right-padded with zero bytes to one block (`challenge(4) || 00000000` for 3DES); bytes beyond
/// one block are ignored.
pub fn secure_messaging_mac(
    alg: &PurseAlgorithm,
    key: &PurseKey,
    iv: &[u8],
    data: &[u8],
) -> [u8; 4] {
    match alg {
        PurseAlgorithm::Tdes => {
            let full = retail_mac16(&key.0, &iv_block::<8>(iv), data);
            let mut out = [0u8; 4];
            out.copy_from_slice(&full[..4]);
            out
        }
        PurseAlgorithm::Sm4(rules) => sm4_mac(rules, &key.sm4(), &iv_block::<16>(iv), data),
    }
}

/// Load session input `random(4) || online_counter(2) || 80 00` (e-purse.md §5.1, H).
pub fn load_session_input(random: [u8; 4], online_counter: u16) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&random);
    out[4..6].copy_from_slice(&online_counter.to_be_bytes());
    out[6] = 0x80;
    out
}

/// Purchase / composite session input `random(4) || offline_counter(2) || TTSN[2..4]`
/// (the last 2 bytes of the terminal transaction serial; e-purse.md §5.1, H).
pub fn purchase_session_input(random: [u8; 4], offline_counter: u16, ttsn: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&random);
    out[4..6].copy_from_slice(&offline_counter.to_be_bytes());
    out[6..].copy_from_slice(&ttsn.to_be_bytes()[2..]);
    out
}
