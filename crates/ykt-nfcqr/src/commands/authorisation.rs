//! STORE AUTHORISATION (qr-code.md §4.3 "STORE AUTH BLOB", §4.1; command table row 3).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_crypto::Sm2Signature;
use ykt_qr::{Authorisation, ids};

use crate::applet::Volatile;
use crate::state::{
    Counters, MAX_AUTHORISATION_LEN, RootLookup, UserKey, load_authorisation, root_key,
    store_authorisation as stage_authorisation,
};

/// P1 of STORE AUTHORISATION: the last (or only) part.
pub const LAST_PART: u8 = 0x00;
/// P1 of STORE AUTHORISATION: more parts follow (the blob is 263 to 295 bytes, more than a
/// short Lc carries; an extended Lc sends it in one command).
pub const MORE_PARTS: u8 = 0x01;

/// `80 E2 P1 00 Lc data`, STORE AUTHORISATION: the issuer's blob of fields 1–15 (qr-code.md §4.3:
/// "The applet checks that field 10 equals its own public key and stores the blob (≤ 300 bytes)").
///
/// Checks, in order: `6A86` P1/P2; `6700` no data or more than 295 bytes in all; `6A88` no key;
/// `6A80` not a blob (§1.1 decoders of `ykt-qr`); `6984` field 10 is another key; `6A80`
/// signature B (§2.4) does not verify, or root keys are held and signature A does not verify
/// under the one for (version, CA index), or none is held for it; `6985` the blob has expired
/// by the card's last generation time (§4.3 "Protections"), or its expiry is not later than the
/// stored one's (a different blob). Storing the same blob again is answered `9000` and changes
/// nothing; a new blob resets the per-authorisation code counter in the same transaction.
pub(crate) fn store_authorisation(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    mut parts: Vec<u8>,
    volatile: &mut Volatile,
) -> Result<Vec<u8>, StatusWord> {
    if !matches!(cmd.p1, LAST_PART | MORE_PARTS) || cmd.p2 != 0 {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    if cmd.data.is_empty() || parts.len() + cmd.data.len() > MAX_AUTHORISATION_LEN {
        return Err(StatusWord::WRONG_LENGTH);
    }
    let key = UserKey::load(ctx)?.ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    parts.extend_from_slice(&cmd.data);
    if cmd.p1 == MORE_PARTS {
        volatile.parts = parts;
        return Ok(Vec::new());
    }
    let blob = parts;
    let auth = Authorisation::decode(&blob).map_err(|_| StatusWord::WRONG_DATA)?;
    if auth.body.user_public_key != key.compressed() {
        return Err(StatusWord::REFERENCED_DATA_INVALIDATED);
    }
    check_chain(ctx, &auth)?;
    let mut counters = Counters::load(ctx)?;
    if auth.body.authorisation_expiry < counters.last_generation_time {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    if let Some(stored) = load_authorisation(ctx)? {
        if stored == blob {
            return Ok(Vec::new());
        }
        let stored = crate::state::decode_authorisation(&stored)?;
        if auth.body.authorisation_expiry <= stored.body.authorisation_expiry {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
    }
    stage_authorisation(ctx, &blob)?;
    counters.codes_under_authorisation = 0;
    counters.authorisations_stored = counters.authorisations_stored.saturating_add(1);
    counters.store(ctx)?;
    Ok(Vec::new())
}

/// Signature B, and signature A when the applet holds root keys (qr-code.md §3.1 steps 2–4).
fn check_chain(ctx: &Context<'_>, auth: &Authorisation) -> Result<(), StatusWord> {
    let issuer = auth
        .certificate
        .issuer_key()
        .map_err(|_| StatusWord::WRONG_DATA)?;
    let sig = Sm2Signature::from_bytes(&auth.issuer_signature.signature)
        .map_err(|_| StatusWord::WRONG_DATA)?;
    issuer
        .verify(
            &ids::issuer_id(auth.version, &auth.body),
            &auth.issuer_signed_bytes(),
            &sig,
        )
        .map_err(|_| StatusWord::WRONG_DATA)?;
    match root_key(ctx, auth.version, auth.certificate.ca_index)? {
        RootLookup::NoneHeld => Ok(()),
        RootLookup::Missing => Err(StatusWord::WRONG_DATA),
        RootLookup::Found(record) => {
            let root = record
                .public_key_checked()
                .map_err(|_| StatusWord::UNKNOWN)?;
            auth.certificate
                .verify(auth.version, &root)
                .map_err(|_| StatusWord::WRONG_DATA)
        }
    }
}
