//! GENERATE CODE (qr-code.md §4.3 "GENERATE QR SIGNATURE", §4.2; command table row 4).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_qr::wallet;

use crate::applet::CardRng;
use crate::factory::NfcQrProfile;
use crate::state::{Counters, UserKey, decode_authorisation, load_authorisation};

/// P1 of GENERATE CODE: answer field 17 only (`15 ‖ r ‖ s`, 65 bytes), as qr-code.md §4.3
/// describes; the wallet appends it to blob ‖ generation time.
pub const ANSWER_SIGNATURE: u8 = 0x00;
/// P1 of GENERATE CODE: answer the whole code (332 + N bytes, chained with `61xx`).
pub const ANSWER_CODE: u8 = 0x01;

/// `80 E4 P1 00 04 gen_time [Le]`, GENERATE CODE: dates the stored authorisation with the
/// generation time the wallet gives (the card has no clock) and signs fields 1–16 with the user
/// key under the version's user ID (signature C, §2.4), through `ykt_qr::wallet::generate`.
///
/// Checks, in order: `6A86` P1/P2; `6700` data not 4 bytes; `6A88` no key or no authorisation;
/// `6A80` the time is before the last generation time the card signed (§4.3 "gen_time must not
/// go backwards"; equal is allowed); `6985` the time is after field 11 (§4.3 "Return the status
/// `6985` when the blob has expired") or after the month the issuer certificate expires (from
/// the first second of the next month, `Expiry::has_passed`, as the terminal checks it; §3.1
/// step 3); `9402` the profile's per-authorisation code limit is reached (§4.3 "a
/// per-blob signing counter"). The counters and the last generation time are one transaction,
/// committed before the answer leaves the card.
pub(crate) fn generate_code(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    profile: &NfcQrProfile,
) -> Result<Vec<u8>, StatusWord> {
    let whole = match cmd.p1 {
        ANSWER_SIGNATURE => false,
        ANSWER_CODE => true,
        _ => return Err(StatusWord::INCORRECT_P1P2),
    };
    if cmd.p2 != 0 {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    let time: [u8; 4] = cmd
        .data
        .as_slice()
        .try_into()
        .map_err(|_| StatusWord::WRONG_LENGTH)?;
    let time = u32::from_be_bytes(time);
    let key = UserKey::load(ctx)?.ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    let blob = load_authorisation(ctx)?.ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    let auth = decode_authorisation(&blob)?;
    let mut counters = Counters::load(ctx)?;
    if time < counters.last_generation_time {
        return Err(StatusWord::WRONG_DATA);
    }
    if time > auth.body.authorisation_expiry || auth.certificate.expiry.has_passed(u64::from(time))
    {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    if counters.codes_under_authorisation >= profile.max_codes_per_authorisation {
        return Err(StatusWord::COUNTER_AT_MAXIMUM);
    }
    let code = wallet::generate(&auth, &key.private, time, &mut CardRng(ctx))
        .map_err(|_| StatusWord::UNKNOWN)?;
    counters.codes_under_authorisation += 1;
    counters.codes_total = counters.codes_total.saturating_add(1);
    counters.last_generation_time = time;
    counters.store(ctx)?;
    if whole {
        Ok(code.encode())
    } else {
        let mut field = Vec::with_capacity(65);
        field.push(code.user_signature.tag);
        field.extend_from_slice(&code.user_signature.signature);
        Ok(field)
    }
}
