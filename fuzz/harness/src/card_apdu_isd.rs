//! `card_apdu_isd`: arbitrary APDU sequences (framing: crate docs) to the card of [`crate::gp`]
//! with the ISD selected, outside any session unless the input opens one itself.
//!
//! Every response ends with a status word, the card never panics or loses power, a command
//! answered with anything but `9000`, `61xx` or `6310` leaves the persistent state
//! (`Card::save_state`) unchanged, and at the end the state file loads again to the same
//! bytes.

use crate::gp;

/// The target.
pub fn run(data: &[u8]) {
    let mut card = gp::card();
    let mut checked = gp::Checked::new(&card);
    for cmd in crate::commands(data).into_iter().take(64) {
        checked.transmit(&mut card, cmd, gp::may_change_state);
    }
    gp::check_state_file(&card);
}
