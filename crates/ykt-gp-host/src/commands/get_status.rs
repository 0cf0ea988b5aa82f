//! GET STATUS (`80 F2`, GP §11.4; tsm-gp.md §3.4): the registry, in the TLV format.
//!
//! ```text
//! 80 F2 P1 P2 02 4F 00 00      P1 = 80 ISD · 40 apps + SSDs · 20 ELFs · 10 ELFs + modules
//!                               P2 = 02 first occurrence · 03 next occurrence
//! response: E3 L { 4F AID · 9F70 life cycle · C5 privileges · C4 ELF · CE version
//!                  · 84 module AID … · CC associated SD }  …  SW 9000, or 6310 = more
//! ```

use alloc::vec::Vec;

use ykt_apdu::CommandApdu;
use ykt_apdu::tlv::{Tlv, parse_all};

use super::{LE_ANY, command};
use crate::error::ParseError;
use crate::types::{EntryKind, Privileges};

/// Which part of the registry to list (P1).
/// This list is complete: GP §11.4.2.1 defines these four subsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)]
pub enum Scope {
    /// P1 `80`: the issuer security domain.
    IssuerSecurityDomain,
    /// P1 `40`: applications and supplementary security domains.
    Applications,
    /// P1 `20`: executable load files.
    LoadFiles,
    /// P1 `10`: executable load files and their executable modules.
    LoadFilesAndModules,
}

impl Scope {
    /// The P1 byte.
    pub fn p1(self) -> u8 {
        match self {
            Self::IssuerSecurityDomain => 0x80,
            Self::Applications => 0x40,
            Self::LoadFiles => 0x20,
            Self::LoadFilesAndModules => 0x10,
        }
    }
}

/// P2 of the first request in the TLV format.
pub const P2_FIRST_TLV: u8 = 0x02;
/// P2 of a "next occurrence" request in the TLV format.
pub const P2_NEXT_TLV: u8 = 0x03;

/// GET STATUS for every entry of `scope` (`4F 00`), TLV format, first or next occurrence.
pub fn get_status(scope: Scope, next: bool) -> CommandApdu {
    let p2 = if next { P2_NEXT_TLV } else { P2_FIRST_TLV };
    CommandApdu::new(super::CLA_GP, 0xF2, scope.p1(), p2)
        .with_data(alloc::vec![0x4F, 0x00])
        .with_le(LE_ANY)
}

/// GET STATUS for the entries whose AID starts with `prefix` (empty: all), TLV format.
pub fn get_status_matching(
    scope: Scope,
    prefix: &[u8],
    next: bool,
) -> Result<CommandApdu, crate::BuildError> {
    let mut data = alloc::vec![0x4F];
    super::push_lv(&mut data, prefix)?;
    let p2 = if next { P2_NEXT_TLV } else { P2_FIRST_TLV };
    command(0xF2, scope.p1(), p2, data, true)
}

/// One registry entry (GP §11.4.3.2 Table 11-36).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryEntry {
    /// What it is.
    pub kind: EntryKind,
    /// Its AID (`4F`).
    pub aid: Vec<u8>,
    /// Its life cycle state (`9F70`, first byte).
    pub life_cycle: u8,
    /// Its privileges (`C5`), when reported.
    pub privileges: Option<Privileges>,
    /// Its executable load file (`C4`), when reported.
    pub load_file: Option<Vec<u8>>,
    /// Its version number (`CE`), when reported.
    pub version: Option<Vec<u8>>,
    /// The executable modules of a load file (`84`), in order.
    pub modules: Vec<Vec<u8>>,
    /// Its associated security domain (`CC`), when reported.
    pub associated_security_domain: Option<Vec<u8>>,
}

fn tag16(t: &Tlv) -> u16 {
    (t.tag.value() & 0xFFFF) as u16
}

/// Parses one `E3` template.
fn entry(scope: Scope, template: &Tlv) -> Result<RegistryEntry, ParseError> {
    if template.tag.value() != 0xE3 {
        return Err(ParseError::UnexpectedTag(template.tag.value()));
    }
    let mut aid = None;
    let mut life_cycle = None;
    let mut privileges = None;
    let mut load_file = None;
    let mut version = None;
    let mut modules = Vec::new();
    let mut associated = None;
    for field in parse_all(&template.value)? {
        let v = field.value.clone();
        match field.tag.value() {
            0x4F => aid = Some(v),
            0x9F70 => {
                // GP 2.1 cards send one byte, some send a second (application-specific) one.
                let [first, ..] = v.as_slice() else {
                    return Err(ParseError::Length {
                        tag: 0x9F70,
                        actual: 0,
                    });
                };
                life_cycle = Some(*first);
            }
            0xC5 => {
                privileges = Some(match v.as_slice() {
                    [a] => Privileges::from_first_byte(*a),
                    [a, b, c] => Privileges([*a, *b, *c]),
                    _ => {
                        return Err(ParseError::Length {
                            tag: tag16(&field),
                            actual: v.len(),
                        });
                    }
                })
            }
            0xC4 => load_file = Some(v),
            0xCE => version = Some(v),
            0x84 => modules.push(v),
            0xCC => associated = Some(v),
            // Tags this host does not use (e.g. `CF` implicit selection, `EA` DAP) are skipped.
            _ => {}
        }
    }
    let aid = aid.ok_or(ParseError::MissingTag(0x4F))?;
    if !(1..=16).contains(&aid.len()) {
        return Err(ParseError::Length {
            tag: 0x4F,
            actual: aid.len(),
        });
    }
    let life_cycle = life_cycle.ok_or(ParseError::MissingTag(0x9F70))?;
    let kind = match scope {
        Scope::IssuerSecurityDomain => EntryKind::IssuerSecurityDomain,
        Scope::LoadFiles | Scope::LoadFilesAndModules => EntryKind::LoadFile,
        Scope::Applications if privileges.is_some_and(|p| p.is_security_domain()) => {
            EntryKind::SecurityDomain
        }
        Scope::Applications => EntryKind::Application,
    };
    Ok(RegistryEntry {
        kind,
        aid,
        life_cycle,
        privileges,
        load_file,
        version,
        modules,
        associated_security_domain: associated,
    })
}

/// Parses the data of one GET STATUS response in the TLV format: a sequence of `E3`
/// templates. Total: any bytes give entries or a [`ParseError`].
pub fn parse_get_status(scope: Scope, data: &[u8]) -> Result<Vec<RegistryEntry>, ParseError> {
    parse_all(data)?.iter().map(|t| entry(scope, t)).collect()
}
