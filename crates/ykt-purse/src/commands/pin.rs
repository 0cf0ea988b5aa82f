//! PIN commands: VERIFY, CHANGE PIN, RELOAD PIN, PIN UNBLOCK (e-purse.md §4.1, §4.12).
//!
//! The try counter is decremented and committed **before** the comparison and restored after a
//! match, so cutting the power after a wrong PIN cannot save a try.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_crypto::purse::{PurseAlgorithm, tac};
use zeroize::Zeroizing;

use super::{expect_p1p2, take};
use crate::applet::Volatile;
use crate::keys::{self, KeyUsage};
use crate::state::{AppStatus, OBJ_KEYS, PIN_MAX_LEN, PIN_MIN_LEN, PIN_TRY_LIMIT, valid_pin};

/// Length of a MAC in PIN management commands.
const MAC_LEN: usize = 4;

/// Checks `candidate` against the PIN with the commit-first try counter; `63Cx`/`6983` on failure.
fn check_pin(
    ctx: &mut Context<'_>,
    mut status: AppStatus,
    candidate: &[u8],
) -> Result<AppStatus, StatusWord> {
    if status.pin_tries_left == 0 {
        return Err(StatusWord::AUTH_METHOD_BLOCKED);
    }
    status.pin_tries_left -= 1;
    status.store(ctx)?;
    ctx.commit()?;
    if !status.pin_matches(candidate) {
        return Err(if status.pin_tries_left == 0 {
            StatusWord::AUTH_METHOD_BLOCKED
        } else {
            StatusWord::pin_tries_left(status.pin_tries_left)
        });
    }
    status.pin_tries_left = PIN_TRY_LIMIT;
    status.store(ctx)?;
    Ok(status)
}

/// `00 20 00 00 Lc <PIN 2..6 bytes BCD>`. Without data it reports the tries left (`63Cx`) or
/// `9000` once verified (L, the ISO 7816-4 convention).
// e-purse.md §4.1
pub(crate) fn verify(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    status: AppStatus,
    v: &mut Volatile,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x00, 0x00)?;
    if cmd.data.is_empty() {
        return match (v.pin_verified, status.pin_tries_left) {
            (true, _) => Ok(Vec::new()),
            (false, 0) => Err(StatusWord::AUTH_METHOD_BLOCKED),
            (false, n) => Err(StatusWord::pin_tries_left(n)),
        };
    }
    if !(PIN_MIN_LEN..=PIN_MAX_LEN).contains(&cmd.data.len()) {
        return Err(StatusWord::WRONG_LENGTH);
    }
    v.pin_verified = false;
    check_pin(ctx, status, &cmd.data)?;
    v.pin_verified = true;
    Ok(Vec::new())
}

/// `80 5E 01 00 Lc <old PIN> FF <new PIN>`.
// e-purse.md §4.12
pub(crate) fn change_pin(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    status: AppStatus,
    v: &mut Volatile,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x01, 0x00)?;
    let max = 2 * PIN_MAX_LEN + 1;
    let min = 2 * PIN_MIN_LEN + 1;
    if !(min..=max).contains(&cmd.data.len()) {
        return Err(StatusWord::WRONG_LENGTH);
    }
    let split = cmd
        .data
        .iter()
        .position(|b| *b == 0xFF)
        .ok_or(StatusWord::WRONG_DATA)?;
    let (old, rest) = cmd.data.split_at(split);
    let new = rest.get(1..).unwrap_or(&[]);
    if !valid_pin(old) || !valid_pin(new) {
        return Err(StatusWord::WRONG_DATA);
    }
    v.pin_verified = false;
    let mut status = check_pin(ctx, status, old)?;
    if !status.set_pin(new) {
        return Err(StatusWord::WRONG_DATA);
    }
    status.store(ctx)?;
    Ok(Vec::new())
}

/// `80 5E 00 00 Lc <new PIN> <MAC 4>`: sets the PIN and resets the try counter.
///
/// L (e-purse.md §4.12, §5.5): MAC = the PBOC MAC over the PIN with the single-DES key
/// `DRPK_L XOR DRPK_R` and a zero IV, i.e. the TAC construction with the DRPK — the "PIN-reload key"
/// type of PSAM that XORs the halves itself exists for this. SM4: the TAC rule of the key's
/// [`ykt_crypto::purse::Sm4Rules`].
// e-purse.md §4.12
pub(crate) fn reload_pin(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    mut status: AppStatus,
    v: &mut Volatile,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x00, 0x00)?;
    let len = cmd.data.len();
    if !(PIN_MIN_LEN + MAC_LEN..=PIN_MAX_LEN + MAC_LEN).contains(&len) {
        return Err(StatusWord::WRONG_LENGTH);
    }
    let (pin, mac) = cmd.data.split_at(len - MAC_LEN);
    if !valid_pin(pin) {
        return Err(StatusWord::WRONG_DATA);
    }
    let drpk = keys::first(ctx.read(OBJ_KEYS)?, KeyUsage::PinReload)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    if !ykt_crypto::ct_eq(&tac(&drpk.algorithm, &drpk.key, pin), mac) {
        return Err(StatusWord::MAC_INVALID);
    }
    v.pin_verified = false;
    if !status.set_pin(pin) {
        return Err(StatusWord::WRONG_DATA);
    }
    status.pin_tries_left = PIN_TRY_LIMIT;
    status.store(ctx)?;
    Ok(Vec::new())
}

/// Block length of the PIN cryptogram for `alg`.
fn block_len(alg: &PurseAlgorithm) -> usize {
    match alg {
        PurseAlgorithm::Tdes => 8,
        PurseAlgorithm::Sm4(_) => 16,
    }
}

/// `84 24 00 00 Lc <encrypted PIN block> <MAC 4>`: resets the try counter when the enciphered PIN
/// is the current PIN.
///
/// L (e-purse.md §4.12, §10 question 7): PIN block = `len(PIN bytes) || PIN || 80 00..` to one
/// block, ECB-enciphered with the DPUK (2-key 3DES or SM4); MAC = secure messaging (§4.10) with the
/// DPUK over `84 24 00 00 Lc <encrypted block>`, IV = GET CHALLENGE random. A different PIN gives
/// `6A80`; a bad MAC `6988`; no challenge `6984`.
// e-purse.md §4.12
pub(crate) fn pin_unblock(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    mut status: AppStatus,
    challenge: Option<[u8; 8]>,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x00, 0x00)?;
    let dpuk = keys::first(ctx.read(OBJ_KEYS)?, KeyUsage::PinUnblock)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    let block = block_len(&dpuk.algorithm);
    if cmd.data.len() != block + MAC_LEN {
        return Err(StatusWord::WRONG_LENGTH);
    }
    let challenge = challenge.ok_or(StatusWord::REFERENCED_DATA_INVALIDATED)?;
    let (enc, mac) = cmd.data.split_at(block);
    super::block::check_secure_messaging_mac(&dpuk, cmd, &challenge, enc, mac)?;

    let plain = Zeroizing::new(match dpuk.algorithm {
        PurseAlgorithm::Tdes => {
            let key = ykt_crypto::TdesKey::two_key(*dpuk.key.expose());
            let b: [u8; 8] = take(enc, 0)?;
            key.decrypt_block(&b).to_vec()
        }
        PurseAlgorithm::Sm4(_) => {
            let key = ykt_crypto::Sm4Key::from_bytes(*dpuk.key.expose());
            let b: [u8; 16] = take(enc, 0)?;
            key.decrypt_block(&b).to_vec()
        }
    });
    let pin_len = usize::from(plain.first().copied().unwrap_or(0));
    let pin = plain.get(1..1 + pin_len).ok_or(StatusWord::WRONG_DATA)?;
    let padding_ok = plain
        .get(1 + pin_len..)
        .is_some_and(|p| p.first() == Some(&0x80) && p[1..].iter().all(|b| *b == 0));
    if !padding_ok || !valid_pin(pin) || !status.pin_matches(pin) {
        return Err(StatusWord::WRONG_DATA);
    }
    status.pin_tries_left = PIN_TRY_LIMIT;
    status.store(ctx)?;
    Ok(Vec::new())
}
