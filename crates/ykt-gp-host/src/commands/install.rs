//! INSTALL (`80 E6`, GP §11.5; tsm-gp.md §3.1): for load, for install (and make selectable),
//! for make selectable, for extradition, for personalization, for registry update.
//!
//! The data field is a chain of fields with one-byte lengths (`00` = absent):
//!
//! ```text
//! for load (02):              ELF · SD · LFDB hash · load params · load token
//! for install (04, 0C):       ELF · module · instance · privileges · install params · token
//! for make selectable (08):   00 · 00 · instance · privileges · 00 · token
//! for extradition (10):       SD · 00 · application · 00 · extradition params · token
//! for personalization (20):   00 · 00 · application · 00 · 00 · 00
//! for registry update (40):   SD · 00 · application · privileges · params · token
//! ```
//!
//! Response: `00` (no receipt) or `L receipt ‖ confirmation data` (tsm-gp.md §4).

use alloc::vec::Vec;

use ykt_apdu::CommandApdu;

use super::{command, push_lv, tlv};
use crate::error::{BuildError, ParseError};
use crate::types::{Aid, Privileges};

/// P1 `02`: for load.
pub const P1_FOR_LOAD: u8 = 0x02;
/// P1 `04`: for install.
pub const P1_FOR_INSTALL: u8 = 0x04;
/// P1 `08`: for make selectable.
pub const P1_FOR_MAKE_SELECTABLE: u8 = 0x08;
/// P1 `10`: for extradition.
pub const P1_FOR_EXTRADITION: u8 = 0x10;
/// P1 `20`: for personalization.
pub const P1_FOR_PERSONALIZATION: u8 = 0x20;
/// P1 `40`: for registry update.
pub const P1_FOR_REGISTRY_UPDATE: u8 = 0x40;

const INS_INSTALL: u8 = 0xE6;

/// INSTALL [for load] (GP §11.5.2.3.1): the load file, the security domain it goes to (`None`:
/// the one the command is sent to), the load file data block hash (`None`, or 20 or 32 bytes,
/// see [`super::load::load_file_data_block_hash`]), load parameters and a load token (delegated
/// management; empty without).
pub fn install_for_load(
    load_file: &Aid,
    security_domain: Option<&Aid>,
    hash: Option<&[u8]>,
    load_parameters: &[u8],
    token: &[u8],
) -> Result<CommandApdu, BuildError> {
    let mut data = Vec::new();
    push_lv(&mut data, load_file.as_bytes())?;
    push_lv(&mut data, security_domain.map_or(&[][..], |a| a.as_bytes()))?;
    push_lv(&mut data, hash.unwrap_or_default())?;
    push_lv(&mut data, load_parameters)?;
    push_lv(&mut data, token)?;
    command(INS_INSTALL, P1_FOR_LOAD, 0x00, data, true)
}

/// Install parameters (GP §11.5.2.3.7): the application-specific parameters that go into
/// `C9` (mandatory, `C9 00` when empty) and further TLVs placed after it (system parameters
/// `EF {…}`, SD parameters, …) as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallParameters {
    /// The value of `C9`.
    pub application: Vec<u8>,
    /// Encoded TLVs after `C9` (may be empty).
    pub extra: Vec<u8>,
}

impl InstallParameters {
    /// `C9 L application ‖ extra`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = tlv(&[0xC9], &self.application);
        out.extend_from_slice(&self.extra);
        out
    }
}

/// What INSTALL [for install] creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Install {
    /// The executable load file.
    pub load_file: Aid,
    /// The executable module (the class) in it.
    pub module: Aid,
    /// The new instance's AID.
    pub instance: Aid,
    /// The new instance's privileges.
    pub privileges: Privileges,
    /// Its install parameters.
    pub parameters: InstallParameters,
    /// Install token (delegated management; empty without).
    pub token: Vec<u8>,
}

/// INSTALL [for install] (P1 `04`) or, with `make_selectable`, [for install and make
/// selectable] (P1 `0C`) (GP §11.5.2.3.2).
pub fn install_for_install(
    install: &Install,
    make_selectable: bool,
) -> Result<CommandApdu, BuildError> {
    let mut data = Vec::new();
    push_lv(&mut data, install.load_file.as_bytes())?;
    push_lv(&mut data, install.module.as_bytes())?;
    push_lv(&mut data, install.instance.as_bytes())?;
    push_lv(&mut data, &install.privileges.0)?;
    push_lv(&mut data, &install.parameters.encode())?;
    push_lv(&mut data, &install.token)?;
    let p1 = if make_selectable {
        P1_FOR_INSTALL | P1_FOR_MAKE_SELECTABLE
    } else {
        P1_FOR_INSTALL
    };
    command(INS_INSTALL, p1, 0x00, data, true)
}

/// INSTALL [for make selectable] (GP §11.5.2.3.3): `00 00 L instance L privileges 00 L token`.
pub fn install_for_make_selectable(
    instance: &Aid,
    privileges: Privileges,
    token: &[u8],
) -> Result<CommandApdu, BuildError> {
    let mut data = alloc::vec![0x00, 0x00];
    push_lv(&mut data, instance.as_bytes())?;
    push_lv(&mut data, &privileges.0)?;
    data.push(0x00);
    push_lv(&mut data, token)?;
    command(INS_INSTALL, P1_FOR_MAKE_SELECTABLE, 0x00, data, true)
}

/// INSTALL [for extradition] (GP §11.5.2.3.4, Table 11-45): hands `application` (or a load
/// file) to the security domain `destination`.
pub fn install_for_extradition(
    destination: &Aid,
    application: &Aid,
    parameters: &[u8],
    token: &[u8],
) -> Result<CommandApdu, BuildError> {
    let mut data = Vec::new();
    push_lv(&mut data, destination.as_bytes())?;
    data.push(0x00);
    push_lv(&mut data, application.as_bytes())?;
    data.push(0x00);
    push_lv(&mut data, parameters)?;
    push_lv(&mut data, token)?;
    command(INS_INSTALL, P1_FOR_EXTRADITION, 0x00, data, true)
}

/// INSTALL [for personalization] (GP §11.5.2.3.6): the following STORE DATA commands go to
/// `application` through the security domain.
pub fn install_for_personalization(application: &Aid) -> Result<CommandApdu, BuildError> {
    let mut data = alloc::vec![0x00, 0x00];
    push_lv(&mut data, application.as_bytes())?;
    data.extend_from_slice(&[0x00, 0x00, 0x00]);
    command(INS_INSTALL, P1_FOR_PERSONALIZATION, 0x00, data, true)
}

/// INSTALL [for registry update] (GP §11.5.2.3.5, tsm-gp.md §3.1 M): moves `application` to
/// the security domain `security_domain` (`None`: keep it) and/or sets its privileges
/// (`None`: keep them).
pub fn install_for_registry_update(
    security_domain: Option<&Aid>,
    application: &Aid,
    privileges: Option<Privileges>,
    parameters: &[u8],
    token: &[u8],
) -> Result<CommandApdu, BuildError> {
    let mut data = Vec::new();
    push_lv(&mut data, security_domain.map_or(&[][..], |a| a.as_bytes()))?;
    data.push(0x00);
    push_lv(&mut data, application.as_bytes())?;
    match privileges {
        Some(p) => push_lv(&mut data, &p.0)?,
        None => data.push(0x00),
    }
    push_lv(&mut data, parameters)?;
    push_lv(&mut data, token)?;
    command(INS_INSTALL, P1_FOR_REGISTRY_UPDATE, 0x00, data, true)
}

/// A receipt from a security domain with the Receipt Generation privilege (tsm-gp.md §4).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Receipt {
    /// The receipt (a MAC over the confirmation data and the command's context).
    pub receipt: Vec<u8>,
    /// The confirmation data after it (`L counter ‖ L card unique data ‖ …`).
    pub confirmation: Vec<u8>,
}

/// Parses the response of INSTALL, LOAD (last block) or DELETE: empty or `00` is no receipt,
/// else `L receipt ‖ confirmation data`.
pub fn parse_receipt(data: &[u8]) -> Result<Option<Receipt>, ParseError> {
    match data {
        [] | [0x00] => Ok(None),
        [len, rest @ ..] => {
            let len = usize::from(*len);
            let receipt = rest.get(..len).ok_or(ParseError::Truncated)?;
            Ok(Some(Receipt {
                receipt: receipt.to_vec(),
                confirmation: rest[len..].to_vec(),
            }))
        }
    }
}
