//! Exit codes of the `ykt` command, one per kind of failure scripts may want to tell apart.

use std::process::ExitCode;

use ykt_transport::TransportError;

use crate::conform::NotConformant;
use crate::se::CardRefused;
use crate::state::StateFileError;
use crate::terminal::{CardWentAway, GreyTransaction, Refused};

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
/// `ykt conform`: an item FAILed.
pub const NOT_CONFORMANT: u8 = 6;
/// `ykt conform`: no item FAILed, but one was INCONCLUSIVE (harness or transport fault).
pub const INCONCLUSIVE: u8 = 7;
/// `ykt terminal`: money may have moved and the outcome is unknown; a grey entry is open in
/// the terminal's journal, to be recovered at the next tap of the card.
pub const GREY: u8 = 8;

/// The exit code for `error`. The most specific cause anywhere in its chain decides: a state
/// file that could not be saved from inside the vpcd loop is a state-file failure (3), even
/// though it reaches here wrapped in a transport error.
pub fn code_for(error: &anyhow::Error) -> ExitCode {
    let has = |test: fn(&(dyn std::error::Error + 'static)) -> bool| error.chain().any(test);
    let conform = error
        .chain()
        .find_map(|e| e.downcast_ref::<NotConformant>());
    let code = if let Some(n) = conform {
        if n.failed > 0 {
            NOT_CONFORMANT
        } else {
            INCONCLUSIVE
        }
    } else if has(|e| e.is::<StateFileError>()) {
        STATE_FILE
    } else if has(|e| e.is::<GreyTransaction>()) {
        GREY
    } else if has(|e| {
        e.is::<CardRefused>()
            || e.is::<Refused>()
            || matches!(
                e.downcast_ref::<ykt_transport::Error>(),
                Some(ykt_transport::Error::Card(_))
            )
    }) {
        CARD_REFUSED
    } else if has(|e| e.is::<TransportError>() || e.is::<CardWentAway>()) {
        TRANSPORT
    } else {
        FAILURE
    };
    ExitCode::from(code)
}
