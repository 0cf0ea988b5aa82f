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

    /// How this SD may run card content commands (tsm-gp.md §3.8, §4): the ISD and an SSD
    /// with Authorized Management without tokens, an SSD with Delegated Management with them.
    pub(crate) fn management(&self, g: &Context<'_>) -> Result<Management, StatusWord> {
        let p = self.privileges(g)?;
        Ok(if !self.supplementary || p[1] & 0x40 != 0 {
            Management::Authorized
        } else if p[0] & 0x20 != 0 {
            Management::Delegated
        } else {
            Management::None
        })
    }

    /// True when `entry` is this SD's to manage: associated with it, or anything for the ISD.
    pub(crate) fn owns(&self, entry: &state::Entry) -> bool {
        !self.supplementary || entry.sd.as_ref() == Some(self.aid)
    }
}

/// The content management an SD may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Management {
    /// The ISD, or Authorized Management: no tokens (a token is refused with `6982`).
    Authorized,
    /// Delegated Management: each command carries a token the card verifies with the token key
    /// (KVN 70), and is answered with a receipt when the card has a receipt key (KVN 71).
    Delegated,
    /// Neither: refused with `6982`.
    None,
}

/// Checks the token of an INSTALL or DELETE data field for `mode` and returns the data without
/// it: `6982` when the mode forbids the command, a token is missing, present where none is
/// allowed, or does not verify; `6A80` when the data cannot be split.
pub(crate) fn checked_data<'d>(
    g: &Context<'_>,
    mode: Management,
    cmd: &'d CommandApdu,
) -> Result<&'d [u8], StatusWord> {
    let split = match cmd.ins {
        0xE4 => crate::dm::split_delete_token(&cmd.data),
        _ => crate::dm::split_install_token(cmd.p1, &cmd.data),
    }
    .map_err(|_| StatusWord::WRONG_DATA)?;
    match mode {
        Management::Authorized if split.token.is_empty() => Ok(split.signed_data),
        Management::Delegated => {
            let key = state::token_key(g)?.ok_or(StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
            key.verify(split.kind, cmd.p1, cmd.p2, split.signed_data, split.token)
                .map_err(|_| StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
            Ok(split.signed_data)
        }
        _ => Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED),
    }
}

/// The answer of a content command: `00`, or under Delegated Management with a receipt key the
/// receipt (tsm-gp.md §4; `dm::Receipt::to_response`) over `context`, with the confirmation
/// counter incremented in the same transaction. The card unique data is `42 L IIN ‖ 45 L CIN`
/// ([`CARD_UNIQUE_DATA`], L).
pub(crate) fn answer(
    ctx: &mut Context<'_>,
    mode: Management,
    context: &crate::dm::ReceiptContext<'_>,
) -> Result<Vec<u8>, StatusWord> {
    if mode != Management::Delegated {
        return Ok(alloc::vec![0x00]);
    }
    let mut g = state::global(ctx)?;
    let Some((key, counter)) = state::receipt_key(&g)? else {
        return Ok(alloc::vec![0x00]);
    };
    let next = state::bump_confirmation_counter(&mut g, counter)?;
    let identity = state::identity(&g)?;
    let mut unique = Vec::new();
    for (tag, v) in [(0x42u8, &identity.iin), (0x45, &identity.cin)] {
        if !v.is_empty() {
            unique.extend(tlv(&[tag], v));
        }
    }
    let receipt =
        crate::dm::receipt(&key, next, &unique, context).map_err(|_| StatusWord::UNKNOWN)?;
    Ok(receipt.to_response())
}

/// What a receipt's card unique data holds (L: GP names the IIN and CIN; their framing as
/// BER-TLV `42`/`45` is the project's choice).
pub const CARD_UNIQUE_DATA: &str = "42 L IIN ‖ 45 L CIN";

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
