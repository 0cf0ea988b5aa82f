//! The card manager's commands, one family per file, and the security level each requires.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_scp::{Protocol, SecurityLevel};

use crate::isd::Session;
use crate::life_cycle::CardState;
use crate::state;

pub mod get_data;
pub mod get_status;
pub mod put_key;
pub mod set_status;

/// The secure-channel level a command needs, `None` for none (GP §11: GET DATA may be sent
/// outside a session; card content management and key commands need an authenticated one).
pub const fn required_level(ins: u8) -> Option<SecurityLevel> {
    match ins {
        0xCA => None,
        _ => Some(SecurityLevel::C_MAC),
    }
}

/// BER-TLV with a definite length (`81`/`82` forms beyond 127 bytes).
pub(crate) fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + 3 + value.len());
    out.extend_from_slice(tag);
    let n = value.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(value);
    out
}

/// One unwrapped command: class, card state and level checks, then its family.
pub(crate) fn dispatch(
    ctx: &mut Context<'_>,
    protocol: Protocol,
    session: Option<&Session>,
    listing: &mut Option<get_status::Listing>,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    let card_state = state::card_state(ctx)?;
    let gp_class = cmd.cla == 0x80;
    if !(gp_class || cmd.ins == 0xCA && cmd.cla == 0x00) {
        return Err(StatusWord::CLA_NOT_SUPPORTED);
    }
    if !matches!(cmd.ins, 0xCA | 0xF2 | 0xF0 | 0xD8) {
        return Err(StatusWord::INS_NOT_SUPPORTED);
    }
    if card_state == CardState::Terminated && cmd.ins != 0xCA {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    if let Some(level) = required_level(cmd.ins) {
        match session {
            Some(s) => s.channel.require(level)?,
            None => return Err(ykt_scp::card::BELOW_SECURITY_LEVEL),
        }
    }
    match cmd.ins {
        0xCA => get_data::get_data(ctx, protocol, card_state, cmd),
        0xF2 => get_status::get_status(ctx, card_state, cmd, listing),
        0xF0 => set_status::set_status(ctx, card_state, cmd),
        _ => match session {
            Some(s) => put_key::put_key(ctx, protocol, s, card_state, cmd),
            None => Err(ykt_scp::card::BELOW_SECURITY_LEVEL),
        },
    }
}
