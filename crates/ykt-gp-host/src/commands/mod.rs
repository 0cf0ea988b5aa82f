//! Command builders and response parsers, one command family per file (tsm-gp.md §3).
//!
//! Builders are pure: arguments in, a [`CommandApdu`] with CLA `80` out (the session wraps it
//! into CLA `84` with secure messaging). Parsers are total: any bytes give a value or a
//! [`ParseError`](crate::ParseError), never a panic.

use alloc::vec::Vec;

use ykt_apdu::CommandApdu;

use crate::error::BuildError;

pub mod delete;
pub mod get_data;
pub mod get_status;
pub mod install;
pub mod load;
pub mod put_key;
pub mod set_status;
pub mod store_data;

/// CLA of GlobalPlatform commands without secure messaging (GP §11.1.4).
pub const CLA_GP: u8 = 0x80;

/// `Le` = `00` (up to 256 bytes) in a short command.
pub(crate) const LE_ANY: usize = 256;

/// Appends `value` with a one-byte length (tsm-gp.md §3.1: `00` for an absent field).
pub(crate) fn push_lv(out: &mut Vec<u8>, value: &[u8]) -> Result<(), BuildError> {
    let len = u8::try_from(value.len()).map_err(|_| BuildError::FieldTooLong(value.len()))?;
    out.push(len);
    out.extend_from_slice(value);
    Ok(())
}

/// A GP command with data, checked to fit one short command.
pub(crate) fn command(
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
    le: bool,
) -> Result<CommandApdu, BuildError> {
    if data.len() > 255 {
        return Err(BuildError::DataTooLong(data.len()));
    }
    let cmd = CommandApdu::new(CLA_GP, ins, p1, p2).with_data(data);
    Ok(if le { cmd.with_le(LE_ANY) } else { cmd })
}

/// BER-TLV: tag bytes, minimal definite length, value.
pub(crate) fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + 5 + value.len());
    out.extend_from_slice(tag);
    out.extend_from_slice(&ykt_apdu::tlv::encode_length(value.len()));
    out.extend_from_slice(value);
    out
}
