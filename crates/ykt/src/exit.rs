//! Exit codes of the `ykt` command, one per kind of failure scripts may want to tell apart.

use std::process::ExitCode;

use ykt_transport::TransportError;

use crate::se::CardRefused;
use crate::state::StateFileError;

/// Any other failure.
pub const FAILURE: u8 = 1;
/// Command-line usage error (clap's own code).
pub const USAGE: u8 = 2;
/// The card state file is unreadable, corrupt or foreign.
pub const STATE_FILE: u8 = 3;
/// PC/SC or the vpcd connection failed (no pcscd, no reader, I/O).
pub const TRANSPORT: u8 = 4;
/// The card answered with an error status word.
pub const CARD_REFUSED: u8 = 5;

/// The exit code for `error`, from the first cause in its chain that has one.
pub fn code_for(error: &anyhow::Error) -> ExitCode {
    let code = error
        .chain()
        .find_map(|cause| {
            if cause.is::<StateFileError>() {
                Some(STATE_FILE)
            } else if cause.is::<TransportError>() {
                Some(TRANSPORT)
            } else if cause.is::<CardRefused>() {
                Some(CARD_REFUSED)
            } else {
                None
            }
        })
        .unwrap_or(FAILURE);
    ExitCode::from(code)
}
