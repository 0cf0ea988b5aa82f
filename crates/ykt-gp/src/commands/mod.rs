//! The card manager's commands, one family per file, and the security level each requires.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Context};
use ykt_scp::{Protocol, SecurityLevel};

use crate::isd::{ISD_PRIVILEGES, Session, Volatile};
use crate::life_cycle::CardState;
use crate::state;

pub mod delete;
pub mod get_data;
pub mod get_status;
pub mod install;
pub mod load;
pub mod put_key;
pub mod set_status;
pub mod store_data;

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

/// The security domain a command reached.
#[derive(Debug)]
pub(crate) struct Sd<'a> {
    pub(crate) aid: &'a Aid,
    pub(crate) protocol: Protocol,
    pub(crate) supplementary: bool,
    pub(crate) session: Option<&'a Session>,
}

impl Sd<'_> {
    /// This SD's registry entry (the ISD has none: its privileges are [`ISD_PRIVILEGES`]).
    pub(crate) fn privileges(&self, g: &Context<'_>) -> Result<[u8; 3], StatusWord> {
        if !self.supplementary {
            return Ok(ISD_PRIVILEGES);
        }
        Ok(state::find(g, self.aid.as_bytes())?
            .map(|(_, e)| e.privileges)
            .unwrap_or([0; 3]))
    }

    /// True when this SD may manage card content without tokens: the ISD, or an SSD with
    /// Authorized Management (privilege byte 2 `40`, tsm-gp.md §3.8).
    pub(crate) fn authorized(&self, g: &Context<'_>) -> Result<bool, StatusWord> {
        Ok(!self.supplementary || self.privileges(g)?[1] & 0x40 != 0)
    }

    /// True when `entry` is this SD's to manage: associated with it, or anything for the ISD.
    pub(crate) fn owns(&self, entry: &state::Entry) -> bool {
        !self.supplementary || entry.sd.as_ref() == Some(self.aid)
    }
}

/// One unwrapped command: class, card state and level checks, then its family.
pub(crate) fn dispatch(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    volatile: &mut Volatile,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    let card_state = state::card_state(&state::global(ctx)?)?;
    let gp_class = cmd.cla == 0x80;
    if !(gp_class || cmd.ins == 0xCA && cmd.cla == 0x00) {
        return Err(StatusWord::CLA_NOT_SUPPORTED);
    }
    if !matches!(
        cmd.ins,
        0xCA | 0xF2 | 0xF0 | 0xD8 | 0xE6 | 0xE8 | 0xE4 | 0xE2
    ) {
        return Err(StatusWord::INS_NOT_SUPPORTED);
    }
    if card_state == CardState::Terminated && cmd.ins != 0xCA {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    let session = match (required_level(cmd.ins), sd.session) {
        (Some(level), Some(s)) => {
            s.channel.require(level)?;
            Some(s)
        }
        (Some(_), None) => return Err(ykt_scp::card::BELOW_SECURITY_LEVEL),
        (None, s) => s,
    };
    // A LOAD sequence ends at the first other command (GP §11.6.2.2).
    if cmd.ins != 0xE8 {
        volatile.loading = None;
    }
    let keeps_target = cmd.ins == 0xE2 || cmd.ins == 0xE6 && cmd.p1 & 0x7F == 0x20;
    if !keeps_target {
        volatile.personalizing = None;
    }
    match (cmd.ins, session) {
        (0xCA, _) => get_data::get_data(ctx, sd.protocol, card_state, cmd),
        (0xF2, _) => get_status::get_status(ctx, sd, card_state, cmd, &mut volatile.listing),
        (0xF0, _) if sd.supplementary => Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED),
        (0xF0, _) => set_status::set_status(ctx, card_state, cmd),
        (0xE6, _) => install::install(ctx, sd, card_state, volatile, cmd),
        (0xE8, _) => load::load(ctx, sd, card_state, volatile, cmd),
        (0xE4, _) => delete::delete(ctx, sd, card_state, cmd),
        (0xE2, Some(s)) => store_data::store_data(ctx, sd, s, card_state, volatile, cmd),
        (0xD8, Some(s)) => put_key::put_key(ctx, sd.protocol, s, card_state, cmd),
        _ => Err(ykt_scp::card::BELOW_SECURITY_LEVEL),
    }
}

/// Reads one length-prefixed field (1-byte length) of INSTALL / LOAD data: the value and the
/// rest; `6A80` when the data ends early.
pub(crate) fn lv(data: &[u8]) -> Result<(&[u8], &[u8]), StatusWord> {
    let (&n, rest) = data.split_first().ok_or(StatusWord::WRONG_DATA)?;
    rest.split_at_checked(usize::from(n))
        .ok_or(StatusWord::WRONG_DATA)
}

/// An AID field: 5 to 16 bytes, else `6A80`.
pub(crate) fn aid(b: &[u8]) -> Result<Aid, StatusWord> {
    Aid::new(b).map_err(|_| StatusWord::WRONG_DATA)
}

/// A content-management refusal as a status word.
pub(crate) fn managed(e: ykt_card::ManageError) -> StatusWord {
    e.status_word()
}
