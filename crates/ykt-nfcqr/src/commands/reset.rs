//! RESET: the issuer-authorised erasure of the key pair and the authorisation (command table
//! row 6).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_crypto::Sm2Signature;
use ykt_qr::ids;

use crate::state::{
    Counters, UserKey, decode_authorisation, erase_authorisation, load_authorisation,
};

/// The first bytes of the message the issuer signs to reset a card's key: this prefix, then
/// the card's public key `04 ‖ X ‖ Y`. No other signature of the scheme begins with `Y`
/// (signature B's message begins with the certificate header `24`), so a reset signature is
/// never a valid authorisation and the reverse.
pub const RESET_PREFIX: &[u8] = b"YKT-NFCQR-RESET";

/// The message of a RESET signature for the card whose public key is `public_key`
/// (`04 ‖ X ‖ Y`).
pub fn reset_message(public_key: &[u8; 65]) -> Vec<u8> {
    let mut m = Vec::with_capacity(RESET_PREFIX.len() + 65);
    m.extend_from_slice(RESET_PREFIX);
    m.extend_from_slice(public_key);
    m
}

/// `80 EA 00 00 40 r ‖ s`, RESET (ours; qr-code.md §4.3 "unless … the personalisation key is
/// authorised"): the issuer that authorised the key, whose certificate is in the stored blob,
/// signs [`reset_message`] under signature B's user ID (§2.4). The key pair and the
/// authorisation are erased and the per-authorisation counter cleared in one transaction; the
/// lifetime counters and the last generation time stay. A reset signature names the public
/// key, which is erased with it, so it cannot be replayed on the next key.
///
/// `6A86` P1/P2; `6700` data not 64 bytes; `6A88` no key or no authorisation (without one, the
/// key is replaced by GENERATE KEY PAIR P1 = `01`); `6982` the signature does not verify.
pub(crate) fn reset(ctx: &mut Context<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    let sig: [u8; 64] = cmd
        .data
        .as_slice()
        .try_into()
        .map_err(|_| StatusWord::WRONG_LENGTH)?;
    let key = UserKey::load(ctx)?.ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    let blob = load_authorisation(ctx)?.ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    let auth = decode_authorisation(&blob)?;
    let issuer = auth
        .certificate
        .issuer_key()
        .map_err(|_| StatusWord::UNKNOWN)?;
    let sig =
        Sm2Signature::from_bytes(&sig).map_err(|_| StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
    issuer
        .verify(
            &ids::issuer_id(auth.version, &auth.body),
            &reset_message(&key.uncompressed()),
            &sig,
        )
        .map_err(|_| StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
    UserKey::erase(ctx)?;
    erase_authorisation(ctx)?;
    let mut counters = Counters::load(ctx)?;
    counters.codes_under_authorisation = 0;
    counters.store(ctx)?;
    Ok(Vec::new())
}
