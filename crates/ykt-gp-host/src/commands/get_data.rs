//! GET DATA (`80 CA`, GP §11.3): CPLC (`9F7F`), card recognition data (`66`), key
//! information (`E0`), IIN (`42`), CIN (`45`).
//!
//! ```text
//! 80 CA tag-hi tag-lo 00    →    tag L value   9000
//! ```

use alloc::vec::Vec;

use ykt_apdu::CommandApdu;
use ykt_apdu::tlv::{Tlv, parse_all};

use super::LE_ANY;
use crate::error::ParseError;

/// `9F7F`: card production life cycle data (GP §H.6).
pub const TAG_CPLC: u16 = 0x9F7F;
/// `66`: card recognition data (GP §H.2).
pub const TAG_CARD_DATA: u16 = 0x0066;
/// `E0`: key information template (GP §11.3.3.1).
pub const TAG_KEY_INFORMATION: u16 = 0x00E0;
/// `42`: issuer identification number.
pub const TAG_IIN: u16 = 0x0042;
/// `45`: card image number.
pub const TAG_CIN: u16 = 0x0045;

/// GET DATA for `tag`: `80 CA P1 P2 00` with P1 P2 the tag (one-byte tags have P1 `00`).
pub fn get_data(tag: u16) -> CommandApdu {
    let [p1, p2] = tag.to_be_bytes();
    CommandApdu::new(super::CLA_GP, 0xCA, p1, p2).with_le(LE_ANY)
}

/// The value of the data object `tag` that GET DATA answered with (`tag L value`, alone).
pub fn parse_data_object(tag: u16, data: &[u8]) -> Result<Vec<u8>, ParseError> {
    let objects = parse_all(data)?;
    let [object] = objects.as_slice() else {
        return Err(match objects.first() {
            None => ParseError::MissingTag(tag),
            Some(_) => ParseError::TrailingData(data.len()),
        });
    };
    if object.tag.value() != u32::from(tag) {
        return Err(ParseError::UnexpectedTag(object.tag.value()));
    }
    Ok(object.value.clone())
}

/// Card production life cycle data (GP §H.6 Table H-6): 42 bytes of fixed fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cplc {
    /// IC fabricator.
    pub ic_fabricator: [u8; 2],
    /// IC type.
    pub ic_type: [u8; 2],
    /// Operating system identifier.
    pub os_id: [u8; 2],
    /// Operating system release date (YDDD).
    pub os_release_date: [u8; 2],
    /// Operating system release level.
    pub os_release_level: [u8; 2],
    /// IC fabrication date (YDDD).
    pub ic_fabrication_date: [u8; 2],
    /// IC serial number.
    pub ic_serial_number: [u8; 4],
    /// IC batch identifier.
    pub ic_batch_identifier: [u8; 2],
    /// IC module fabricator.
    pub ic_module_fabricator: [u8; 2],
    /// IC module packaging date.
    pub ic_module_packaging_date: [u8; 2],
    /// ICC manufacturer.
    pub icc_manufacturer: [u8; 2],
    /// IC embedding date.
    pub ic_embedding_date: [u8; 2],
    /// IC pre-personalizer.
    pub ic_pre_personalizer: [u8; 2],
    /// IC pre-personalization equipment date.
    pub ic_pre_personalization_date: [u8; 2],
    /// IC pre-personalization equipment identifier.
    pub ic_pre_personalization_equipment: [u8; 4],
    /// IC personalizer.
    pub ic_personalizer: [u8; 2],
    /// IC personalization date.
    pub ic_personalization_date: [u8; 2],
    /// IC personalization equipment identifier.
    pub ic_personalization_equipment: [u8; 4],
}

/// The CPLC's length.
pub const CPLC_LEN: usize = 42;

impl Cplc {
    /// Parses the value of `9F7F` (exactly 42 bytes).
    pub fn parse(value: &[u8]) -> Result<Self, ParseError> {
        let v: &[u8; CPLC_LEN] = value.try_into().map_err(|_| ParseError::Length {
            tag: TAG_CPLC,
            actual: value.len(),
        })?;
        let two = |at: usize| [v[at], v[at + 1]];
        let four = |at: usize| [v[at], v[at + 1], v[at + 2], v[at + 3]];
        Ok(Self {
            ic_fabricator: two(0),
            ic_type: two(2),
            os_id: two(4),
            os_release_date: two(6),
            os_release_level: two(8),
            ic_fabrication_date: two(10),
            ic_serial_number: four(12),
            ic_batch_identifier: two(16),
            ic_module_fabricator: two(18),
            ic_module_packaging_date: two(20),
            icc_manufacturer: two(22),
            ic_embedding_date: two(24),
            ic_pre_personalizer: two(26),
            ic_pre_personalization_date: two(28),
            ic_pre_personalization_equipment: four(30),
            ic_personalizer: two(34),
            ic_personalization_date: two(36),
            ic_personalization_equipment: four(38),
        })
    }

    /// The fields with their GP names, in order (for printing).
    pub fn fields(&self) -> [(&'static str, &[u8]); 18] {
        [
            ("ICFabricator", &self.ic_fabricator),
            ("ICType", &self.ic_type),
            ("OperatingSystemID", &self.os_id),
            ("OperatingSystemReleaseDate", &self.os_release_date),
            ("OperatingSystemReleaseLevel", &self.os_release_level),
            ("ICFabricationDate", &self.ic_fabrication_date),
            ("ICSerialNumber", &self.ic_serial_number),
            ("ICBatchIdentifier", &self.ic_batch_identifier),
            ("ICModuleFabricator", &self.ic_module_fabricator),
            ("ICModulePackagingDate", &self.ic_module_packaging_date),
            ("ICCManufacturer", &self.icc_manufacturer),
            ("ICEmbeddingDate", &self.ic_embedding_date),
            ("ICPrePersonalizer", &self.ic_pre_personalizer),
            (
                "ICPrePersonalizationEquipmentDate",
                &self.ic_pre_personalization_date,
            ),
            (
                "ICPrePersonalizationEquipmentID",
                &self.ic_pre_personalization_equipment,
            ),
            ("ICPersonalizer", &self.ic_personalizer),
            ("ICPersonalizationDate", &self.ic_personalization_date),
            (
                "ICPersonalizationEquipmentID",
                &self.ic_personalization_equipment,
            ),
        ]
    }
}

/// One key of the key information template (GP §11.3.3.1, `C0 L id version (type length)+`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInformation {
    /// Key identifier.
    pub id: u8,
    /// Key version number.
    pub version: u8,
    /// Key components: (key type, key length in bytes). Types: `80` DES, `88` AES, `89` SM4
    /// (L, tsm-gp.md §3.6).
    pub components: Vec<(u8, u8)>,
}

/// Parses the value of `E0`: a sequence of `C0` entries.
pub fn parse_key_information(value: &[u8]) -> Result<Vec<KeyInformation>, ParseError> {
    let mut out = Vec::new();
    for entry in parse_all(value)? {
        if entry.tag.value() != 0xC0 {
            return Err(ParseError::UnexpectedTag(entry.tag.value()));
        }
        let [id, version, rest @ ..] = entry.value.as_slice() else {
            return Err(ParseError::Length {
                tag: 0xC0,
                actual: entry.value.len(),
            });
        };
        if rest.is_empty() || rest.len() % 2 != 0 {
            return Err(ParseError::Length {
                tag: 0xC0,
                actual: entry.value.len(),
            });
        }
        let components = rest.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        out.push(KeyInformation {
            id: *id,
            version: *version,
            components,
        });
    }
    Ok(out)
}

/// What card recognition data (`66`, GP §H.2) says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CardData {
    /// The GP version (`60`: the OID's arc after `{1 2 840 114283 2}`), e.g. `02 03 01`.
    pub gp_version: Option<Vec<u8>>,
    /// The secure channel protocols and their `i` (`64`: `{… 4} SCP i`).
    pub secure_channels: Vec<(u8, u8)>,
}

/// The GP OID prefix `{1 2 840 114283}` of card recognition data.
const GP_OID: [u8; 6] = [0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B];

fn oid_suffix(t: &Tlv, arc: u8) -> Option<Vec<u8>> {
    let oid = parse_all(&t.value)
        .ok()?
        .into_iter()
        .find(|o| o.tag.value() == 0x06)?;
    let rest = oid.value.strip_prefix(&GP_OID[..])?;
    let (first, tail) = rest.split_first()?;
    (*first == arc).then(|| tail.to_vec())
}

/// Parses the value of `66` (`73 { 06 …, 60 …, 63 …, 64 … }`). Unknown entries are skipped.
pub fn parse_card_data(value: &[u8]) -> Result<CardData, ParseError> {
    let objects = parse_all(value)?;
    let template = objects
        .iter()
        .find(|o| o.tag.value() == 0x73)
        .ok_or(ParseError::MissingTag(0x73))?;
    let mut out = CardData::default();
    for t in parse_all(&template.value)? {
        match t.tag.value() {
            0x60 => out.gp_version = oid_suffix(&t, 0x02),
            0x64 => {
                if let Some([scp, i]) = oid_suffix(&t, 0x04).as_deref() {
                    out.secure_channels.push((*scp, *i));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}
