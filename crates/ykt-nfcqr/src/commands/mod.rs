//! The command handlers, one family per file; each cites its section of `shared/spec/qr-code.md`
//! and the row of the command table in the crate documentation.

pub(crate) mod authorisation;
pub(crate) mod code;
pub(crate) mod data;
pub(crate) mod key;
pub(crate) mod reset;

use ykt_apdu::{CommandApdu, StatusWord};

/// The public key format P2 selects: `00` compressed (33 bytes, field 10's form, qr-code.md
/// §4.3), `01` uncompressed `04 ‖ X ‖ Y` (65 bytes, the form the back end registers, §4.1 \[S6\]).
pub(crate) fn public_key_format(cmd: &CommandApdu) -> Result<bool, StatusWord> {
    match cmd.p2 {
        0x00 => Ok(false),
        0x01 => Ok(true),
        _ => Err(StatusWord::INCORRECT_P1P2),
    }
}

/// Refuses a command data field where the command has none.
pub(crate) fn no_data(cmd: &CommandApdu) -> Result<(), StatusWord> {
    if cmd.data.is_empty() {
        Ok(())
    } else {
        Err(StatusWord::WRONG_LENGTH)
    }
}
