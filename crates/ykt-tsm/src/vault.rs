//! Keys behind a trait (tsm-gp.md §6): the domain never holds a long-term secret; it asks the
//! [`KeyVault`] by name for each secret operation and gets wrapped bytes, MACs or verdicts
//! back. [`MemoryVault`] is the in-memory implementation for tests; `ykt-tsm-kms` implements
//! the same trait over a KMS (a key file or a PKCS#11 token), with the layout helpers here
//! ([`purse_perso_template`], [`wrapped_key_set`], [`handover_header`], [`mac1_input`], …) so
//! that the clear keys never exist outside the KMS.
//!
//! Secure channels too: `ykt_scp::HostSession` opens a channel from session keys the vault
//! computes ([`KeyVault::channel_operation`], driven through [`ChannelDeriver`]), so no static
//! key leaves a vault, and SCP02 PUT KEY data goes under the session DEK the vault derives
//! itself ([`KeyEncryption::Scp02SessionDek`]).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::convert::Infallible;
use core::fmt;

use serde::{Deserialize, Serialize};
use ykt_crypto::purse::{self, PurseAlgorithm, Sm4Rules};
use ykt_crypto::{AesKey, Sm2PrivateKey, Sm2PublicKey};
use ykt_gp::dm::{ReceiptKey, TokenSigner};
use ykt_gp_host::commands::put_key::{self, KeyCheckValues, KeyEncryptionKey};
use ykt_scp::{DeriverError, KeySet, KeySetDeriver, SessionKeyDeriver, StaticKeys};
use zeroize::{Zeroize, Zeroizing};

pub use ykt_gp::dm::{ReceiptContext, TokenKind};
pub use ykt_purse::profile::DEFAULT_MAX_BALANCE;
pub use ykt_purse::{KeyEntry, KeyUsage, MasterKey, PurseProfile};
/// The secure-channel types [`KeyVault`]'s channel methods name, for the crates that implement
/// the trait or carry its calls between platforms (`ISDChannelInfoReq`, `ISDChannelOpReq`).
pub use ykt_scp::{StaticKeyKind, StaticKeyOperation, StaticKeyRole};

use crate::error::VaultError;
use crate::model::{CardNumber, PurseCardSpec, SeId};

/// The caller's randomness (the domain has none of its own).
pub trait Entropy {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]);
}

/// A key's name in a vault: a handle, never a value.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyName(pub String);

impl KeyName {
    /// A name from a string.
    pub fn new(name: &str) -> Self {
        Self(String::from(name))
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyName({})", self.0)
    }
}

/// Which key set a secure channel or a wrapping uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KeyRef {
    /// A key set stored under its name (an SSD's keys).
    Named(KeyName),
    /// An SE's ISD keys: the master key set `master` diversified for `seid`
    /// ([`crate::proposals::ISD_DIVERSIFICATION`]).
    Isd {
        /// The SEI-TSM's ISD master keys.
        master: KeyName,
        /// The SE.
        seid: SeId,
    },
}

/// Which key encrypts the key values of PUT KEY or DGI `8001` (tsm-gp.md §3.6, §5.1, §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KeyEncryption {
    /// SCP03 and the SM4 channel: the static K-DEK of the key set (CBC, ICV zero).
    StaticDek,
    /// SCP02: the session DEK of the open channel, derived from the static K-DEK with
    /// constant `0181` and the channel's sequence counter (3DES-ECB).
    Scp02SessionDek {
        /// The channel's sequence counter (INITIALIZE UPDATE response).
        sequence_counter: [u8; 2],
    },
}

/// The card's answer to INITIALIZE FOR LOAD with what was asked (e-purse.md §4.3): what MAC1
/// covers, and what MAC2 and the TAC are computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadProof {
    /// The card (its ASN diversifies the keys).
    pub card: CardNumber,
    /// Key index sent.
    pub key_index: u8,
    /// Key version answered.
    pub key_version: u8,
    /// Algorithm id answered.
    pub algorithm_id: u8,
    /// Balance before the load.
    pub old_balance: u32,
    /// Online counter before the increment.
    pub online_counter: u16,
    /// The card's random.
    pub random: [u8; 4],
    /// The card's MAC1.
    pub mac1: [u8; 4],
    /// The amount asked.
    pub amount: u32,
    /// The terminal id sent.
    pub terminal_id: [u8; 6],
}

/// A key set encrypted for PUT KEY or DGI `8001`, with the check values the card must answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKeySet {
    /// PUT KEY's data field: KVN and the encrypted keys with their KCVs (GP §11.8).
    pub data: Vec<u8>,
    /// The three check values.
    pub check_values: KeyCheckValues,
}

/// One STORE DATA block of a purse's personalisation, ready to send: the secret blocks are
/// already encrypted under the security domain's DEK.
#[derive(Clone, PartialEq, Eq)]
pub struct PersoBlock {
    /// P1 (`ykt_purse::perso::dgi`).
    pub p1: u8,
    /// P2, the block number.
    pub p2: u8,
    /// The data field (ciphertext for a secret block).
    pub data: Vec<u8>,
}

impl fmt::Debug for PersoBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PersoBlock({:02X} {:02X}, {} bytes)",
            self.p1,
            self.p2,
            self.data.len()
        )
    }
}

/// Every secret operation of the TSM domain (tsm-gp.md §6). Names in; wrapped bytes, MACs and
/// verdicts out.
pub trait KeyVault {
    /// True when a key (of any kind) is stored under `name`.
    fn contains(&self, name: &KeyName) -> bool;

    /// The key version and the algorithm of the key set `keys`: what a secure channel to its
    /// security domain names in INITIALIZE UPDATE.
    fn channel_key_info(&self, keys: &KeyRef) -> Result<(u8, StaticKeyKind), VaultError>;

    /// One block operation on a static key of `keys` that a host secure channel's handshake
    /// asks for (`ykt_scp::derive`: SCP02 session keys, SCP03 KDF blocks); the result is
    /// session-key material or KDF output, never a static key.
    fn channel_operation(
        &self,
        keys: &KeyRef,
        operation: &StaticKeyOperation<'_>,
    ) -> Result<Zeroizing<[u8; 16]>, VaultError>;

    /// Makes a new AES-128 key set of `version` under `name` from `rng`
    /// ([`VaultError::KeyExists`] if the name is taken).
    fn generate_key_set(
        &mut self,
        name: &KeyName,
        version: u8,
        rng: &mut dyn Entropy,
    ) -> Result<(), VaultError>;

    /// The key set `new` encrypted under the DEK of `under` that `encryption` names, for PUT
    /// KEY or DGI `8001` (tsm-gp.md §3.6, §5.2).
    fn wrap_key_set(
        &self,
        new: &KeyName,
        under: &KeyRef,
        encryption: KeyEncryption,
    ) -> Result<WrappedKeySet, VaultError>;

    /// The key set `name` encrypted for another TSM's transport public key (SEC1 bytes;
    /// [`crate::proposals::HANDOVER_CIPHER`]).
    fn export_key_set(
        &self,
        name: &KeyName,
        recipient: &[u8],
        rng: &mut dyn Entropy,
    ) -> Result<Vec<u8>, VaultError>;

    /// Stores the key set `wrapped` (from [`KeyVault::export_key_set`]) under `name`, decrypting
    /// it with the transport key `transport`. Importing the same set again is not an error.
    fn import_key_set(
        &mut self,
        name: &KeyName,
        transport: &KeyName,
        wrapped: &[u8],
    ) -> Result<(), VaultError>;

    /// The public half of the transport key `transport` (SEC1 bytes).
    fn transport_public_key(&self, transport: &KeyName) -> Result<Vec<u8>, VaultError>;

    /// Forgets the key `name` (nothing if absent).
    fn delete_key(&mut self, name: &KeyName);

    /// The STORE DATA blocks that personalise a purse for `card` (`ykt_purse::perso::Builder`,
    /// keys diversified from the issuer `issuer`'s master keys by the card's ASN, the issuer's
    /// initial PIN), the secret blocks encrypted under the K-DEK of `under`.
    fn purse_perso_blocks(
        &self,
        issuer: &KeyName,
        card: &PurseCardSpec,
        under: &KeyRef,
    ) -> Result<Vec<PersoBlock>, VaultError>;

    /// Checks the card's MAC1 (e-purse.md §5.4) under the issuer's load key for this card.
    fn verify_mac1(&self, issuer: &KeyName, proof: &LoadProof) -> Result<(), VaultError>;

    /// Checks MAC1 and gives MAC2 for CREDIT FOR LOAD at `datetime` (BCD `YYYYMMDDhhmmss`).
    fn load_mac2(
        &self,
        issuer: &KeyName,
        proof: &LoadProof,
        datetime: &[u8; 7],
    ) -> Result<[u8; 4], VaultError>;

    /// Checks the TAC of the load `proof` completed at `datetime` (e-purse.md §5.5).
    fn verify_load_tac(
        &self,
        issuer: &KeyName,
        proof: &LoadProof,
        datetime: &[u8; 7],
        tac: &[u8; 4],
    ) -> Result<(), VaultError>;

    /// A delegated-management token over `P1 ‖ P2 ‖ Lc ‖ data` (tsm-gp.md §4).
    fn sign_token(
        &self,
        signer: &KeyName,
        kind: TokenKind,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, VaultError>;

    /// Checks the receipt in a response under the receipt key `key` (tsm-gp.md §4).
    fn verify_receipt(
        &self,
        key: &KeyName,
        response: &[u8],
        context: &ReceiptContext<'_>,
    ) -> Result<(), VaultError>;
}

/// A vault's key set as a `ykt_scp::SessionKeyDeriver`, for one handshake: the session keys
/// are computed by [`KeyVault::channel_operation`]. The vault's own error is kept
/// ([`ChannelDeriver::error`]), since the channel only learns that derivation failed.
pub struct ChannelDeriver<'a> {
    vault: &'a dyn KeyVault,
    keys: &'a KeyRef,
    error: Option<VaultError>,
}

impl<'a> ChannelDeriver<'a> {
    /// The deriver of the key set `keys` in `vault`.
    pub fn new(vault: &'a dyn KeyVault, keys: &'a KeyRef) -> Self {
        Self {
            vault,
            keys,
            error: None,
        }
    }

    /// The vault's error, if an operation failed.
    pub fn error(&self) -> Option<VaultError> {
        self.error
    }
}

impl fmt::Debug for ChannelDeriver<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelDeriver")
            .field("keys", self.keys)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl SessionKeyDeriver for ChannelDeriver<'_> {
    fn compute(
        &mut self,
        operation: &StaticKeyOperation<'_>,
    ) -> Result<Zeroizing<[u8; 16]>, DeriverError> {
        self.vault
            .channel_operation(self.keys, operation)
            .map_err(|e| {
                self.error = Some(e);
                DeriverError
            })
    }
}

/// SCP02 session DEK derivation constant (GP Card Specification v2.2 E.4.1).
pub const SCP02_DEK_CONSTANT: [u8; 2] = [0x01, 0x81];

/// `rand_core`'s view of an [`Entropy`] (for SM2 encryption).
struct Rng<'a>(&'a mut dyn Entropy);

impl rand_core::TryRng for Rng<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_be_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_be_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Rng<'_> {}

/// The ISD keys of the SE `seid`: `master` diversified ([`crate::proposals::ISD_DIVERSIFICATION`]),
/// with the key version of `master`. Card production uses it to key a new SE.
pub fn derive_isd_keys(master: &KeySet, seid: &SeId) -> Result<KeySet, VaultError> {
    ykt_gp_host::diversify::diversify(
        master,
        crate::proposals::ISD_DIVERSIFICATION,
        &seid.0,
        master.version,
    )
    .map_err(|_| VaultError::KeyType)
}

/// The length of the handover plaintext's clear header: `KVN ‖ 88 ‖ key length`.
pub const HANDOVER_HEADER_LEN: usize = 3;

/// The handover header of an AES key set of `version` with keys of `key_len` bytes (the
/// keys follow it: K-ENC ‖ K-MAC ‖ K-DEK; [`crate::proposals::HANDOVER_CIPHER`]).
pub fn handover_header(version: u8, key_len: u8) -> [u8; HANDOVER_HEADER_LEN] {
    [version, 0x88, key_len]
}

/// The key version and key length a handover header names (`None` if it is not one).
pub fn parse_handover_header(header: &[u8]) -> Option<(u8, usize)> {
    match header {
        [version, 0x88, len] => Some((*version, usize::from(*len))),
        _ => None,
    }
}

/// The name of [`crate::proposals::ISD_DIVERSIFICATION`] (`emv`, `visa2` or `kdf3`), for a
/// vault that applies it elsewhere (with the SEID as the key diversification data).
pub fn isd_diversification_name() -> &'static str {
    match crate::proposals::ISD_DIVERSIFICATION {
        ykt_gp_host::Diversification::Emv => "emv",
        ykt_gp_host::Diversification::Visa2 => "visa2",
        ykt_gp_host::Diversification::Kdf3 => "kdf3",
    }
}

/// The PUBLIC test key hierarchy of test deployments, in one place: what a test TSM's vaults
/// hold and what a test SE's card manager is keyed from (the e-purse brief's §8 master keys and
/// PIN come from `ykt_purse::testing`).
pub mod test_keys {
    pub use ykt_purse::testing::{TEST_PIN, test_master_keys};

    /// The SE issuer's ISD master key set: K-ENC, K-MAC, K-DEK (AES-128).
    pub const ISD_MASTER: [[u8; 16]; 3] = [[0x40; 16], [0x41; 16], [0x42; 16]];
    /// Its key version.
    pub const ISD_MASTER_KVN: u8 = 0x30;
    /// The SEI-TSM's delegated-management token signing key (SM2 scalar `11…11 01`).
    pub const TOKEN_SIGNER: [u8; 32] = scalar(0x11, 0x01);
    /// The receipt key (KVN 71, AES-CMAC).
    pub const RECEIPT_KEY: [u8; 16] = [0x5A; 16];
    /// The SP-TSM's transport key the SSD keys are handed over under (SM2 scalar `22…22 07`).
    pub const SP_TRANSPORT: [u8; 32] = scalar(0x22, 0x07);

    const fn scalar(fill: u8, last: u8) -> [u8; 32] {
        let mut d = [fill; 32];
        d[31] = last;
        d
    }
}

/// The handover plaintext of an AES key set: `KVN ‖ 88 ‖ length ‖ K-ENC ‖ K-MAC ‖ K-DEK`
/// ([`crate::proposals::HANDOVER_CIPHER`]).
pub fn encode_handover(keys: &KeySet) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let StaticKeys::Aes { enc, mac, dek } = &keys.keys else {
        return Err(VaultError::KeyType);
    };
    let len = enc.expose().len();
    let mut out = Zeroizing::new(alloc::vec![keys.version, 0x88, len as u8]);
    for k in [enc, mac, dek] {
        out.extend_from_slice(k.expose());
    }
    Ok(out)
}

fn decode_handover(bytes: &[u8]) -> Result<KeySet, VaultError> {
    let [version, 0x88, len, rest @ ..] = bytes else {
        return Err(VaultError::Unwrap);
    };
    let len = usize::from(*len);
    if rest.len() != 3 * len {
        return Err(VaultError::Unwrap);
    }
    let key = |i: usize| {
        AesKey::from_slice(&rest[i * len..(i + 1) * len]).map_err(|_| VaultError::Unwrap)
    };
    Ok(KeySet::aes(*version, key(0)?, key(1)?, key(2)?))
}

/// ISO/IEC 9797-1 method 2 padding to whole 16-byte blocks, then the DEK's CBC
/// (`ykt_gp::commands::store_data::DECRYPT_RULE`).
fn encrypt_padded(keys: &KeySet, data: &[u8]) -> Result<Vec<u8>, VaultError> {
    let mut padded = Zeroizing::new(data.to_vec());
    padded.push(0x80);
    while !padded.len().is_multiple_of(16) {
        padded.push(0);
    }
    put_key::encrypt_sensitive(&KeyEncryptionKey::Static(&keys.keys), &padded)
        .map_err(|_| VaultError::KeyType)
}

/// The PUT KEY (and DGI `8001`) key-check input of a key set of `kind`: encrypting it in ECB
/// under each key gives its check value (first three bytes; tsm-gp.md §3.6).
pub fn key_check_input(kind: StaticKeyKind) -> Vec<u8> {
    match kind {
        StaticKeyKind::Tdes => alloc::vec![0u8; 8],
        StaticKeyKind::Sm4 => alloc::vec![put_key::SM4_KCV_INPUT_BYTE; 16],
        _ => alloc::vec![0x01u8; 16],
    }
}

/// PUT KEY's data field from keys encrypted elsewhere: `version`, then for K-ENC, K-MAC and
/// K-DEK the key block of `kind` (`key_len` clear bytes, `encrypted` under the DEK) with its
/// check value, as `ykt_gp_host::commands::put_key::key_set_data` lays it out.
pub fn wrapped_key_set(
    version: u8,
    kind: StaticKeyKind,
    key_len: usize,
    keys: [(Vec<u8>, [u8; 3]); 3],
) -> Result<WrappedKeySet, VaultError> {
    if !(0x01..=0x7F).contains(&version) {
        return Err(VaultError::KeyType);
    }
    let ty = match kind {
        StaticKeyKind::Tdes => put_key::KEY_TYPE_DES,
        StaticKeyKind::Sm4 => put_key::KEY_TYPE_SM4,
        _ => put_key::KEY_TYPE_AES,
    };
    let mut data = alloc::vec![version];
    let mut check_values = [[0u8; 3]; 3];
    for (i, (encrypted, kcv)) in keys.into_iter().enumerate() {
        let len = u8::try_from(encrypted.len()).map_err(|_| VaultError::KeyType)?;
        if ty == put_key::KEY_TYPE_DES {
            data.extend_from_slice(&[ty, len]);
        } else {
            let clear = u8::try_from(key_len).map_err(|_| VaultError::KeyType)?;
            data.extend_from_slice(&[ty, len.saturating_add(1), clear]);
        }
        data.extend_from_slice(&encrypted);
        data.push(0x03);
        data.extend_from_slice(&kcv);
        check_values[i] = kcv;
    }
    Ok(WrappedKeySet { data, check_values })
}

/// The message a delegated-management token signs (tsm-gp.md §4; `ykt_gp::dm::token_input`):
/// an SM2 token is SM2-SM3 with [`TOKEN_SM2_ID`] (`r ‖ s`), an RSA token PKCS#1 v1.5 SHA-256.
pub fn token_message(kind: TokenKind, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, VaultError> {
    ykt_gp::dm::token_input(kind, p1, p2, data).map_err(|_| VaultError::Crypto)
}

/// The user ID of SM2 tokens (`ykt_gp::dm::SM2_TOKEN_ID`).
pub const TOKEN_SM2_ID: &[u8] = ykt_gp::dm::SM2_TOKEN_ID;

/// A receipt in a response split for checking elsewhere (tsm-gp.md §4): the receipt (the MAC)
/// and what it covers (confirmation data ‖ the context bytes). The receipt is a CMAC of 16
/// bytes under an AES or SM4 receipt key, or the retail MAC (zero ICV) of 8 under a 3DES one.
pub fn receipt_mac_input(
    response: &[u8],
    context: &ReceiptContext<'_>,
) -> Result<(Vec<u8>, Vec<u8>), VaultError> {
    let parts = ykt_gp::dm::parse_receipt_response(response)
        .map_err(|_| VaultError::ReceiptInvalid)?
        .ok_or(VaultError::ReceiptMissing)?;
    let mut input = parts.confirmation_data.to_vec();
    input.extend_from_slice(&context.to_bytes().map_err(|_| VaultError::ReceiptInvalid)?);
    Ok((parts.receipt.to_vec(), input))
}

/// A purse master key as a vault that keeps its value elsewhere describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MasterKeyInfo {
    /// What the card key is for.
    pub usage: KeyUsage,
    /// Key index.
    pub index: u8,
    /// Key version.
    pub version: u8,
    /// Algorithm of the master and the card key.
    pub algorithm: PurseAlgorithm,
}

impl From<&MasterKey> for MasterKeyInfo {
    fn from(m: &MasterKey) -> Self {
        Self {
            usage: m.usage,
            index: m.index,
            version: m.version,
            algorithm: m.algorithm,
        }
    }
}

/// A piece of a personalisation block's plaintext ([`purse_perso_template`]).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PersoPart {
    /// Bytes of the block (DGI tags and lengths, key headers, the PIN, padding).
    Clear(Zeroizing<Vec<u8>>),
    /// The card key diversified from master `n` (an index into the masters given) by the
    /// card's ASN: its 16 bytes go here.
    CardKey(usize),
}

impl fmt::Debug for PersoPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Clear(b) => write!(f, "Clear({} bytes)", b.len()),
            Self::CardKey(n) => write!(f, "CardKey({n})"),
        }
    }
}

/// One STORE DATA block of a purse personalisation as [`purse_perso_template`] lays it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersoTemplateBlock {
    /// P1.
    pub p1: u8,
    /// P2.
    pub p2: u8,
    /// True when the block goes encrypted under the DEK (then its parts are padded to whole
    /// 16-byte blocks, ISO/IEC 9797-1 method 2, as `ykt_gp::commands::store_data::DECRYPT_RULE`
    /// undoes).
    pub encrypted: bool,
    /// The plaintext, in order.
    pub parts: Vec<PersoPart>,
}

/// The personalisation blocks of `card` for a vault whose purse master keys are elsewhere:
/// the same blocks as [`KeyVault::purse_perso_blocks`] of a [`MemoryVault`] before encryption,
/// with each card key left as a [`PersoPart::CardKey`] for the key store to fill in and
/// encrypt (the clear card keys never exist here).
pub fn purse_perso_template(
    masters: &[MasterKeyInfo],
    pin: &[u8],
    profile: PurseProfile,
    card: &PurseCardSpec,
) -> Result<Vec<PersoTemplateBlock>, VaultError> {
    // A placeholder value per key; the layout does not depend on key values.
    let keys: Vec<KeyEntry> = masters
        .iter()
        .map(|m| KeyEntry {
            usage: m.usage,
            index: m.index,
            version: m.version,
            algorithm: m.algorithm,
            key: purse::PurseKey::from_bytes([0u8; 16]),
        })
        .collect();
    let mut data = card.card_data(pin);
    let builder = ykt_purse::perso::Builder::new(profile, &data, &keys);
    data.pin.zeroize();
    let builder = builder.map_err(|_| VaultError::KeyType)?;
    let blocks = builder.blocks().map_err(|_| VaultError::KeyType)?;
    let mut next_key = 0usize;
    blocks
        .iter()
        .map(|b| {
            let encrypted = b.encrypted();
            let mut parts = Vec::new();
            let mut clear = Zeroizing::new(Vec::new());
            let base = b.data.as_ptr() as usize;
            let mut at = 0usize;
            for (tag, value) in
                ykt_purse::perso::dgi::parse(&b.data).map_err(|_| VaultError::KeyType)?
            {
                if tag != ykt_purse::perso::dgi::KEY {
                    continue;
                }
                // The card key is the last 16 bytes of a key DGI's value.
                let end = value.as_ptr() as usize - base + value.len();
                let start = end.checked_sub(16).ok_or(VaultError::KeyType)?;
                clear.extend_from_slice(&b.data[at..start]);
                parts.push(PersoPart::Clear(core::mem::take(&mut clear)));
                if next_key >= masters.len() {
                    return Err(VaultError::KeyType);
                }
                parts.push(PersoPart::CardKey(next_key));
                next_key += 1;
                at = end;
            }
            clear.extend_from_slice(&b.data[at..]);
            if encrypted {
                clear.push(0x80);
                let total = parts
                    .iter()
                    .map(|p| match p {
                        PersoPart::Clear(c) => c.len(),
                        PersoPart::CardKey(_) => 16,
                    })
                    .sum::<usize>()
                    + clear.len();
                let padded = clear.len() + (16 - total % 16) % 16;
                clear.resize(padded, 0);
            }
            parts.push(PersoPart::Clear(clear));
            parts.retain(|p| !matches!(p, PersoPart::Clear(c) if c.is_empty()));
            Ok(PersoTemplateBlock {
                p1: b.p1,
                p2: b.p2,
                encrypted,
                parts,
            })
        })
        .collect()
}

/// A card issuer's purse keys as the vault keeps them.
struct PurseIssuer {
    masters: Vec<MasterKey>,
    pin: Zeroizing<Vec<u8>>,
    profile: PurseProfile,
    sm4_rules: Sm4Rules,
}

/// Keys in memory, for tests (and the template of a KMS implementation).
#[derive(Default)]
pub struct MemoryVault {
    key_sets: BTreeMap<KeyName, KeySet>,
    isd_masters: BTreeMap<KeyName, KeySet>,
    transport: BTreeMap<KeyName, Sm2PrivateKey>,
    issuers: BTreeMap<KeyName, PurseIssuer>,
    signers: BTreeMap<KeyName, TokenSigner>,
    receipt_keys: BTreeMap<KeyName, ReceiptKey>,
}

impl fmt::Debug for MemoryVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryVault")
            .field("key_sets", &self.key_sets.keys().collect::<Vec<_>>())
            .field("isd_masters", &self.isd_masters.keys().collect::<Vec<_>>())
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl MemoryVault {
    /// An empty vault.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a key set (an SSD's) under `name`.
    pub fn insert_key_set(&mut self, name: KeyName, keys: KeySet) {
        self.key_sets.insert(name, keys);
    }

    /// Stores ISD master keys under `name`.
    pub fn insert_isd_master(&mut self, name: KeyName, keys: KeySet) {
        self.isd_masters.insert(name, keys);
    }

    /// Stores an SM2 transport key pair under `name`.
    pub fn insert_transport_key(&mut self, name: KeyName, key: Sm2PrivateKey) {
        self.transport.insert(name, key);
    }

    /// Stores a card issuer's purse master keys, its initial PIN and profile under `name`.
    pub fn insert_purse_issuer(
        &mut self,
        name: KeyName,
        masters: Vec<MasterKey>,
        pin: &[u8],
        profile: PurseProfile,
        sm4_rules: Sm4Rules,
    ) {
        self.issuers.insert(
            name,
            PurseIssuer {
                masters,
                pin: Zeroizing::new(pin.to_vec()),
                profile,
                sm4_rules,
            },
        );
    }

    /// Stores a token signing key under `name`.
    pub fn insert_token_signer(&mut self, name: KeyName, signer: TokenSigner) {
        self.signers.insert(name, signer);
    }

    /// Stores a receipt key under `name`.
    pub fn insert_receipt_key(&mut self, name: KeyName, key: ReceiptKey) {
        self.receipt_keys.insert(name, key);
    }

    /// The key set `keys` in clear (an SSD's, or an SE's ISD keys derived from the master).
    /// A memory vault holds its keys in this process anyway; tests compare them with what
    /// the card and the scripts hold. No [`KeyVault`] method gives a static key out.
    pub fn key_set(&self, keys: &KeyRef) -> Result<KeySet, VaultError> {
        self.resolve(keys)
    }

    fn resolve(&self, keys: &KeyRef) -> Result<KeySet, VaultError> {
        match keys {
            KeyRef::Named(name) => self
                .key_sets
                .get(name)
                .cloned()
                .ok_or(VaultError::UnknownKey),
            KeyRef::Isd { master, seid } => derive_isd_keys(
                self.isd_masters.get(master).ok_or(VaultError::UnknownKey)?,
                seid,
            ),
        }
    }

    fn issuer(&self, name: &KeyName) -> Result<&PurseIssuer, VaultError> {
        self.issuers.get(name).ok_or(VaultError::UnknownKey)
    }

    /// The algorithm, the load session key and the card's TAC key for `proof`.
    fn load_keys(
        &self,
        issuer: &KeyName,
        proof: &LoadProof,
    ) -> Result<(PurseAlgorithm, purse::SessionKey, purse::PurseKey), VaultError> {
        let issuer = self.issuer(issuer)?;
        let alg = PurseAlgorithm::from_algorithm_id(proof.algorithm_id, issuer.sm4_rules)
            .ok_or(VaultError::KeyType)?;
        let find = |usage: KeyUsage, index: Option<(u8, u8)>| {
            issuer
                .masters
                .iter()
                .find(|k| {
                    k.usage == usage && index.is_none_or(|(i, v)| k.index == i && k.version == v)
                })
                .ok_or(VaultError::UnknownKey)
        };
        let div = proof.card.asn().diversifier();
        let dlk = purse::diversify(
            &alg,
            &find(KeyUsage::Load, Some((proof.key_index, proof.key_version)))?.key,
            &div,
        );
        let sk = purse::session_key(
            &alg,
            &dlk,
            &purse::load_session_input(proof.random, proof.online_counter),
        );
        let dtk = purse::diversify(&alg, &find(KeyUsage::Tac, None)?.key, &div);
        Ok((alg, sk, dtk))
    }
}

/// Transaction type of an e-purse load (e-purse.md §5.6, H).
const LOAD_TYPE: u8 = 0x02;

/// What MAC1 of a load covers: old balance ‖ amount ‖ `02` ‖ terminal (e-purse.md §5.4).
pub fn mac1_input(p: &LoadProof) -> Vec<u8> {
    let mut v = Vec::with_capacity(15);
    v.extend_from_slice(&p.old_balance.to_be_bytes());
    v.extend_from_slice(&p.amount.to_be_bytes());
    v.push(LOAD_TYPE);
    v.extend_from_slice(&p.terminal_id);
    v
}

/// What MAC2 of a load covers: amount ‖ `02` ‖ terminal ‖ date and time (e-purse.md §5.4).
pub fn mac2_input(p: &LoadProof, datetime: &[u8; 7]) -> Vec<u8> {
    let mut v = Vec::with_capacity(18);
    v.extend_from_slice(&p.amount.to_be_bytes());
    v.push(LOAD_TYPE);
    v.extend_from_slice(&p.terminal_id);
    v.extend_from_slice(datetime);
    v
}

/// What the TAC of a load covers: new balance ‖ online counter ‖ the MAC2 input
/// (e-purse.md §5.5).
pub fn tac_input(p: &LoadProof, datetime: &[u8; 7]) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&p.old_balance.saturating_add(p.amount).to_be_bytes());
    v.extend_from_slice(&p.online_counter.to_be_bytes());
    v.extend_from_slice(&mac2_input(p, datetime));
    v
}

impl KeyVault for MemoryVault {
    fn contains(&self, name: &KeyName) -> bool {
        self.key_sets.contains_key(name)
            || self.isd_masters.contains_key(name)
            || self.transport.contains_key(name)
            || self.issuers.contains_key(name)
            || self.signers.contains_key(name)
            || self.receipt_keys.contains_key(name)
    }

    fn channel_key_info(&self, keys: &KeyRef) -> Result<(u8, StaticKeyKind), VaultError> {
        let set = self.resolve(keys)?;
        Ok((set.version, StaticKeyKind::of(&set)))
    }

    fn channel_operation(
        &self,
        keys: &KeyRef,
        operation: &StaticKeyOperation<'_>,
    ) -> Result<Zeroizing<[u8; 16]>, VaultError> {
        KeySetDeriver(&self.resolve(keys)?)
            .compute(operation)
            .map_err(|_| VaultError::KeyType)
    }

    fn generate_key_set(
        &mut self,
        name: &KeyName,
        version: u8,
        rng: &mut dyn Entropy,
    ) -> Result<(), VaultError> {
        if self.key_sets.contains_key(name) {
            return Err(VaultError::KeyExists);
        }
        let mut key = || {
            let mut b = Zeroizing::new([0u8; 16]);
            rng.fill(&mut b[..]);
            AesKey::from_slice(&b[..]).map_err(|_| VaultError::Crypto)
        };
        let set = KeySet::aes(version, key()?, key()?, key()?);
        self.key_sets.insert(name.clone(), set);
        Ok(())
    }

    fn wrap_key_set(
        &self,
        new: &KeyName,
        under: &KeyRef,
        encryption: KeyEncryption,
    ) -> Result<WrappedKeySet, VaultError> {
        let new = self.key_sets.get(new).ok_or(VaultError::UnknownKey)?;
        let under = self.resolve(under)?;
        let built = match encryption {
            KeyEncryption::StaticDek => {
                put_key::key_set_data(new, &KeyEncryptionKey::Static(&under.keys))
            }
            KeyEncryption::Scp02SessionDek { sequence_counter } => {
                let StaticKeys::Tdes { dek, .. } = &under.keys else {
                    return Err(VaultError::KeyType);
                };
                let session =
                    ykt_crypto::scp::scp02_session_key(dek, SCP02_DEK_CONSTANT, sequence_counter);
                put_key::key_set_data(new, &KeyEncryptionKey::Scp02SessionDek(&session))
            }
        };
        let (data, check_values) = built.map_err(|_| VaultError::KeyType)?;
        Ok(WrappedKeySet { data, check_values })
    }

    fn export_key_set(
        &self,
        name: &KeyName,
        recipient: &[u8],
        rng: &mut dyn Entropy,
    ) -> Result<Vec<u8>, VaultError> {
        let keys = self.key_sets.get(name).ok_or(VaultError::UnknownKey)?;
        let public = Sm2PublicKey::from_sec1_bytes(recipient).map_err(|_| VaultError::KeyType)?;
        public
            .encrypt(
                &mut Rng(rng),
                &encode_handover(keys)?,
                crate::proposals::HANDOVER_CIPHER,
            )
            .map_err(|_| VaultError::Crypto)
    }

    fn import_key_set(
        &mut self,
        name: &KeyName,
        transport: &KeyName,
        wrapped: &[u8],
    ) -> Result<(), VaultError> {
        let key = self
            .transport
            .get(transport)
            .ok_or(VaultError::UnknownKey)?;
        let plain = Zeroizing::new(
            key.decrypt(wrapped, crate::proposals::HANDOVER_CIPHER)
                .map_err(|_| VaultError::Unwrap)?,
        );
        let keys = decode_handover(&plain)?;
        self.key_sets.insert(name.clone(), keys);
        Ok(())
    }

    fn transport_public_key(&self, transport: &KeyName) -> Result<Vec<u8>, VaultError> {
        let key = self
            .transport
            .get(transport)
            .ok_or(VaultError::UnknownKey)?;
        Ok(key.public_key().to_bytes().to_vec())
    }

    fn delete_key(&mut self, name: &KeyName) {
        self.key_sets.remove(name);
    }

    fn purse_perso_blocks(
        &self,
        issuer: &KeyName,
        card: &PurseCardSpec,
        under: &KeyRef,
    ) -> Result<Vec<PersoBlock>, VaultError> {
        let issuer = self.issuer(issuer)?;
        let factory = ykt_purse::IssuerFactory::new(issuer.masters.clone())
            .map_err(|_| VaultError::KeyType)?;
        let mut data = card.card_data(&issuer.pin);
        let builder = ykt_purse::perso::Builder::issue(&factory, issuer.profile, &data);
        // CardData keeps the PIN in a plain Vec; the builder has its own copy.
        data.pin.zeroize();
        let builder = builder.map_err(|_| VaultError::KeyType)?;
        let dek = self.resolve(under)?;
        builder
            .blocks()
            .map_err(|_| VaultError::KeyType)?
            .iter()
            .map(|b| {
                let data = if b.encrypted() {
                    encrypt_padded(&dek, &b.data)?
                } else {
                    b.data.to_vec()
                };
                Ok(PersoBlock {
                    p1: b.p1,
                    p2: b.p2,
                    data,
                })
            })
            .collect()
    }

    fn verify_mac1(&self, issuer: &KeyName, proof: &LoadProof) -> Result<(), VaultError> {
        let (alg, sk, _) = self.load_keys(issuer, proof)?;
        let mac1 = purse::session_mac(&alg, &sk, &mac1_input(proof));
        if ykt_crypto::ct_eq(&mac1, &proof.mac1) {
            Ok(())
        } else {
            Err(VaultError::Mac1Invalid)
        }
    }

    fn load_mac2(
        &self,
        issuer: &KeyName,
        proof: &LoadProof,
        datetime: &[u8; 7],
    ) -> Result<[u8; 4], VaultError> {
        self.verify_mac1(issuer, proof)?;
        let (alg, sk, _) = self.load_keys(issuer, proof)?;
        Ok(purse::session_mac(&alg, &sk, &mac2_input(proof, datetime)))
    }

    fn verify_load_tac(
        &self,
        issuer: &KeyName,
        proof: &LoadProof,
        datetime: &[u8; 7],
        tac: &[u8; 4],
    ) -> Result<(), VaultError> {
        let (alg, _, dtk) = self.load_keys(issuer, proof)?;
        if ykt_crypto::ct_eq(&purse::tac(&alg, &dtk, &tac_input(proof, datetime)), tac) {
            Ok(())
        } else {
            Err(VaultError::TacInvalid)
        }
    }

    fn sign_token(
        &self,
        signer: &KeyName,
        kind: TokenKind,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        self.signers
            .get(signer)
            .ok_or(VaultError::UnknownKey)?
            .sign(kind, p1, p2, data)
            .map_err(|_| VaultError::Crypto)
    }

    fn verify_receipt(
        &self,
        key: &KeyName,
        response: &[u8],
        context: &ReceiptContext<'_>,
    ) -> Result<(), VaultError> {
        let key = self.receipt_keys.get(key).ok_or(VaultError::UnknownKey)?;
        ykt_gp::dm::verify_receipt(key, response, context)
            .map(|_| ())
            .map_err(|e| match e {
                ykt_gp::dm::DmError::ReceiptMissing => VaultError::ReceiptMissing,
                _ => VaultError::ReceiptInvalid,
            })
    }
}
