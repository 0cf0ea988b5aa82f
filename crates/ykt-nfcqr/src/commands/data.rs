//! GET DATA: the applet's status (command table row 5).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;

use crate::commands::no_data;
use crate::factory::NfcQrProfile;
use crate::state::{Counters, UserKey, decode_authorisation, load_authorisation};

/// Length of the status record.
pub const STATUS_LEN: usize = 25;

/// Byte 0 of the status record: no key pair.
pub const STATE_NO_KEY: u8 = 0x00;
/// Byte 0 of the status record: a key pair, no authorisation.
pub const STATE_KEY: u8 = 0x01;
/// Byte 0 of the status record: an authorisation is stored and codes may be signed.
pub const STATE_AUTHORISED: u8 = 0x02;
/// Byte 0 of the status record: an authorisation is stored but its code limit is reached.
pub const STATE_EXHAUSTED: u8 = 0x03;

/// `80 CA 00 00 [Le]`, GET DATA (ours; qr-code.md §4.3 "Protections": the wallet learns when to
/// fetch a new blob). Answers the 25-byte status record:
///
/// ```text
/// state (1) · authorisation expiry, field 11 (4, 0 without one) · codes under it (4)
/// · code limit per authorisation (4) · codes in all (4) · last generation time (4)
/// · authorisations stored (2) · key pairs generated (2)
/// ```
pub(crate) fn get_data(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    profile: &NfcQrProfile,
) -> Result<Vec<u8>, StatusWord> {
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    no_data(cmd)?;
    let counters = Counters::load(ctx)?;
    let has_key = UserKey::load(ctx)?.is_some();
    let expiry = match load_authorisation(ctx)? {
        Some(blob) => Some(decode_authorisation(&blob)?.body.authorisation_expiry),
        None => None,
    };
    let limit = profile.max_codes_per_authorisation;
    let state = match (has_key, expiry) {
        (false, _) => STATE_NO_KEY,
        (true, None) => STATE_KEY,
        (true, Some(_)) if counters.codes_under_authorisation >= limit => STATE_EXHAUSTED,
        (true, Some(_)) => STATE_AUTHORISED,
    };
    let mut out = Vec::with_capacity(STATUS_LEN);
    out.push(state);
    out.extend_from_slice(&expiry.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&counters.codes_under_authorisation.to_be_bytes());
    out.extend_from_slice(&limit.to_be_bytes());
    out.extend_from_slice(&counters.codes_total.to_be_bytes());
    out.extend_from_slice(&counters.last_generation_time.to_be_bytes());
    out.extend_from_slice(&counters.authorisations_stored.to_be_bytes());
    out.extend_from_slice(&counters.key_pairs_generated.to_be_bytes());
    Ok(out)
}
