//! The application's key file: each entry is a usage, the 1-byte index the terminal sends, the
//! version and algorithm returned by INITIALIZE, and the 16-byte diversified card key
//! (e-purse.md §3.1).
//!
//! The algorithm is chosen per key: a card may hold a 3DES DPK at index 01 and an SM4 DPK at index
//! 02. All SM4 byte rules travel inside [`PurseAlgorithm::Sm4`] as a
//! [`ykt_crypto::purse::Sm4Rules`]; this module only gives them a persistent encoding.

use alloc::vec::Vec;
use core::fmt;

use ykt_crypto::purse::{
    MacOutput, PurseAlgorithm, PurseKey, SessionPadding, Sm4Diversification, Sm4Rules, TacKey,
};
use zeroize::Zeroizing;

/// What a key is for (e-purse.md §3.1). This enum is complete for the commands this applet
/// implements (ED-only keys such as DULK/DUK are not used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyUsage {
    /// DLK, load (圈存): session key and MAC1/MAC2 of INITIALIZE/CREDIT FOR LOAD.
    Load,
    /// DPK, purchase (消费): session key and MAC1/MAC2 of purchase and composite purchase.
    Purchase,
    /// DTK, TAC.
    Tac,
    /// DAMK, application maintenance: secure-messaging MAC of APPLICATION/CARD BLOCK (§4.10, §4.11).
    Maintenance,
    /// DPUK, PIN unblock (§4.12).
    PinUnblock,
    /// DRPK, PIN reload (§4.12).
    PinReload,
}

impl KeyUsage {
    /// Every usage, in encoding order.
    pub const ALL: [KeyUsage; 6] = [
        KeyUsage::Load,
        KeyUsage::Purchase,
        KeyUsage::Tac,
        KeyUsage::Maintenance,
        KeyUsage::PinUnblock,
        KeyUsage::PinReload,
    ];

    fn code(self) -> u8 {
        match self {
            KeyUsage::Load => 0x01,
            KeyUsage::Purchase => 0x02,
            KeyUsage::Tac => 0x03,
            KeyUsage::Maintenance => 0x04,
            KeyUsage::PinUnblock => 0x05,
            KeyUsage::PinReload => 0x06,
        }
    }

    fn from_code(code: u8) -> Option<KeyUsage> {
        KeyUsage::ALL.into_iter().find(|u| u.code() == code)
    }
}

/// One key of the application.
#[derive(Clone)]
pub struct KeyEntry {
    /// What the key is for.
    pub usage: KeyUsage,
    /// Key index sent by the terminal (byte 0 of INITIALIZE data).
    pub index: u8,
    /// Key version returned by INITIALIZE.
    pub version: u8,
    /// Algorithm (3DES or SM4 with its rules); its id is returned by INITIALIZE.
    pub algorithm: PurseAlgorithm,
    /// The card (diversified) key.
    pub key: PurseKey,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("usage", &self.usage)
            .field("index", &self.index)
            .field("version", &self.version)
            .field("algorithm", &self.algorithm)
            .field("key", &self.key)
            .finish()
    }
}

/// Encoded length of one algorithm description.
pub(crate) const ALGORITHM_LEN: usize = 6;
/// Encoded length of one key entry: usage, index, version, algorithm, key.
pub(crate) const ENTRY_LEN: usize = 3 + ALGORITHM_LEN + 16;

/// True if both algorithms are of the same family (3DES or SM4), whatever the SM4 rules.
pub(crate) fn same_family(a: &PurseAlgorithm, b: &PurseAlgorithm) -> bool {
    matches!(
        (a, b),
        (PurseAlgorithm::Tdes, PurseAlgorithm::Tdes)
            | (PurseAlgorithm::Sm4(_), PurseAlgorithm::Sm4(_))
    )
}

/// Persistent encoding of an algorithm; `None` for an SM4 rule this version cannot name.
fn encode_algorithm(alg: &PurseAlgorithm) -> Option<[u8; ALGORITHM_LEN]> {
    match alg {
        PurseAlgorithm::Tdes => Some([0x00, PurseAlgorithm::TDES_ALGORITHM_ID, 0, 0, 0, 0]),
        PurseAlgorithm::Sm4(rules) => {
            let div = match rules.diversification {
                Sm4Diversification::DivAndComplement => 0x00,
                _ => return None,
            };
            let pad = match rules.session_padding {
                SessionPadding::Method2 => 0x00,
                SessionPadding::Zeros => 0x01,
                _ => return None,
            };
            let out = match rules.mac_output {
                MacOutput::FirstFour => 0x00,
                MacOutput::LeftXorRightFirstFour => 0x01,
                _ => return None,
            };
            let tac = match rules.tac_key {
                TacKey::Dtk => 0x00,
                TacKey::XorHalvesZeroPadded => 0x01,
                _ => return None,
            };
            Some([0x01, rules.algorithm_id, div, pad, out, tac])
        }
    }
}

fn decode_algorithm(b: &[u8]) -> Option<PurseAlgorithm> {
    let b: &[u8; ALGORITHM_LEN] = b.try_into().ok()?;
    match b[0] {
        0x00 => Some(PurseAlgorithm::Tdes),
        0x01 => {
            let div = match b[2] {
                0x00 => Sm4Diversification::DivAndComplement,
                _ => return None,
            };
            let pad = match b[3] {
                0x00 => SessionPadding::Method2,
                0x01 => SessionPadding::Zeros,
                _ => return None,
            };
            let out = match b[4] {
                0x00 => MacOutput::FirstFour,
                0x01 => MacOutput::LeftXorRightFirstFour,
                _ => return None,
            };
            let tac = match b[5] {
                0x00 => TacKey::Dtk,
                0x01 => TacKey::XorHalvesZeroPadded,
                _ => return None,
            };
            Some(PurseAlgorithm::Sm4(
                Sm4Rules::BRIEF
                    .with_algorithm_id(b[1])
                    .with_diversification(div)
                    .with_session_padding(pad)
                    .with_mac_output(out)
                    .with_tac_key(tac),
            ))
        }
        _ => None,
    }
}

impl KeyEntry {
    /// Encodes the entry for the key object; `None` if its SM4 rules have no encoding.
    pub(crate) fn encode(&self) -> Option<[u8; ENTRY_LEN]> {
        let mut out = [0u8; ENTRY_LEN];
        out[0] = self.usage.code();
        out[1] = self.index;
        out[2] = self.version;
        out[3..3 + ALGORITHM_LEN].copy_from_slice(&encode_algorithm(&self.algorithm)?);
        out[3 + ALGORITHM_LEN..].copy_from_slice(self.key.expose());
        Some(out)
    }

    /// Decodes one entry; `None` if malformed.
    pub(crate) fn decode(bytes: &[u8]) -> Option<KeyEntry> {
        if bytes.len() != ENTRY_LEN {
            return None;
        }
        Some(KeyEntry {
            usage: KeyUsage::from_code(bytes[0])?,
            index: bytes[1],
            version: bytes[2],
            algorithm: decode_algorithm(&bytes[3..3 + ALGORITHM_LEN])?,
            key: PurseKey::from_slice(&bytes[3 + ALGORITHM_LEN..]).ok()?,
        })
    }
}

/// Encodes a whole key table (entry count, then entries); `None` if an entry cannot be encoded.
pub(crate) fn encode_table(entries: &[KeyEntry]) -> Option<Vec<u8>> {
    let count = u8::try_from(entries.len()).ok()?;
    let mut out = Vec::with_capacity(1 + entries.len() * ENTRY_LEN);
    out.push(count);
    for e in entries {
        let enc = Zeroizing::new(e.encode()?);
        out.extend_from_slice(enc.as_slice());
    }
    Some(out)
}

/// Iterates the encoded entries of a key table.
pub(crate) fn table_entries(table: &[u8]) -> impl Iterator<Item = KeyEntry> + '_ {
    let count = table.first().copied().map_or(0, usize::from);
    table
        .get(1..)
        .unwrap_or(&[])
        .chunks_exact(ENTRY_LEN)
        .take(count)
        .filter_map(KeyEntry::decode)
}

/// The key of `usage` with `index`.
pub(crate) fn find(table: &[u8], usage: KeyUsage, index: u8) -> Option<KeyEntry> {
    table_entries(table).find(|e| e.usage == usage && e.index == index)
}

/// The first key of `usage` (lowest position in the table). Used for keys the command does not
/// name: DAMK, DPUK, DRPK.
pub(crate) fn first(table: &[u8], usage: KeyUsage) -> Option<KeyEntry> {
    table_entries(table).find(|e| e.usage == usage)
}

/// The DTK that signs the TAC of a transaction whose session key uses `alg`.
///
/// L (e-purse.md §3.1 does not say which DTK a dual-algorithm card uses): the first DTK of the same
/// algorithm family (3DES or SM4) as the session key, so a card can carry one 3DES and one SM4 DTK.
pub(crate) fn tac_key_for(table: &[u8], alg: &PurseAlgorithm) -> Option<KeyEntry> {
    table_entries(table).find(|e| e.usage == KeyUsage::Tac && same_family(&e.algorithm, alg))
}
