//! STORE DATA (`80 E2`, GP §11.11; tsm-gp.md §3.7): data for a security domain, or for an
//! application after INSTALL [for personalization], in numbered blocks.
//!
//! ```text
//! 80 E2 P1 P2 Lc data [00]
//! P1: b8 last block · b7-b6 encryption 00 none, 01 application dependent, 11 encrypted
//!     · b5-b4 structure 00 none, 01 DGI, 10 BER-TLV · b1 response expected
//! P2: block number 00..FF
//! DGI: tag (2) · length (1, or FF + 2) · data
//! ```

use alloc::vec::Vec;

use ykt_apdu::CommandApdu;

use super::{command, push_lv};
use crate::error::BuildError;
use crate::types::Aid;

/// P1 b8: the last block.
pub const P1_LAST_BLOCK: u8 = 0x80;
/// P1 b1: a response may come back.
pub const P1_RESPONSE_EXPECTED: u8 = 0x01;

/// How the data is structured (P1 b5-b4).
/// This list is complete: GP §11.11.2.1 defines three codings (the fourth is RFU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)]
pub enum Structure {
    /// `00`: no general structure.
    #[default]
    None,
    /// `01` (`08`): DGI format.
    Dgi,
    /// `10` (`10`): BER-TLV format.
    BerTlv,
}

/// How the data is encrypted (P1 b7-b6).
/// This list is complete: GP §11.11.2.1 defines three codings (the fourth is RFU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)]
pub enum Encryption {
    /// `00`: none.
    #[default]
    None,
    /// `01` (`20`): application dependent.
    ApplicationDependent,
    /// `11` (`60`): encrypted with the security domain's DEK (the caller encrypts, e.g. with
    /// `GpSession::encrypt_sensitive`).
    Encrypted,
}

/// The P1 bits every block of one STORE DATA sequence shares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StoreDataOptions {
    /// Data structure.
    pub structure: Structure,
    /// Encryption of the data.
    pub encryption: Encryption,
    /// The card may answer with data (b1; `Le` = `00` is then sent).
    pub response_expected: bool,
}

impl StoreDataOptions {
    /// P1 without the last-block bit.
    pub fn p1(self) -> u8 {
        let structure = match self.structure {
            Structure::None => 0x00,
            Structure::Dgi => 0x08,
            Structure::BerTlv => 0x10,
        };
        let encryption = match self.encryption {
            Encryption::None => 0x00,
            Encryption::ApplicationDependent => 0x20,
            Encryption::Encrypted => 0x60,
        };
        let response = if self.response_expected {
            P1_RESPONSE_EXPECTED
        } else {
            0x00
        };
        structure | encryption | response
    }
}

/// One STORE DATA block.
pub fn store_data(
    options: StoreDataOptions,
    block_number: u8,
    last: bool,
    data: &[u8],
) -> Result<CommandApdu, BuildError> {
    let p1 = options.p1() | if last { P1_LAST_BLOCK } else { 0x00 };
    command(
        0xE2,
        p1,
        block_number,
        data.to_vec(),
        options.response_expected,
    )
}

/// STORE DATA commands for `blocks` in order, numbered from `00`, the last one flagged.
pub fn store_data_blocks(
    options: StoreDataOptions,
    blocks: &[Vec<u8>],
) -> Result<Vec<CommandApdu>, BuildError> {
    if blocks.len() > 256 {
        return Err(BuildError::TooManyBlocks(blocks.len()));
    }
    let last = blocks.len().saturating_sub(1);
    blocks
        .iter()
        .enumerate()
        .map(|(n, b)| store_data(options, n as u8, n == last, b))
        .collect()
}

/// Splits `data` into blocks of at most `block_size` bytes (at least one block).
pub fn split_blocks(data: &[u8], block_size: usize) -> Result<Vec<Vec<u8>>, BuildError> {
    if block_size == 0 {
        return Err(BuildError::BlockSize);
    }
    if data.is_empty() {
        return Ok(alloc::vec![Vec::new()]);
    }
    Ok(data.chunks(block_size).map(<[u8]>::to_vec).collect())
}

/// One DGI (EMV CPS §A.2): tag (2 bytes), length (1 byte below 255, else `FF` + 2 bytes),
/// data.
pub fn dgi(tag: u16, value: &[u8]) -> Result<Vec<u8>, BuildError> {
    let mut out = Vec::with_capacity(value.len() + 5);
    out.extend_from_slice(&tag.to_be_bytes());
    match u8::try_from(value.len()) {
        Ok(n) if n < 0xFF => out.push(n),
        _ => {
            let n =
                u16::try_from(value.len()).map_err(|_| BuildError::FieldTooLong(value.len()))?;
            out.push(0xFF);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out.extend_from_slice(value);
    Ok(out)
}

/// STORE DATA that renames the ISD (P1 `90`: last block, BER-TLV; `4F L AID`, GPPro).
pub fn rename_isd(aid: &Aid) -> Result<CommandApdu, BuildError> {
    let mut data = alloc::vec![0x4F];
    push_lv(&mut data, aid.as_bytes())?;
    command(0xE2, 0x90, 0x00, data, false)
}
