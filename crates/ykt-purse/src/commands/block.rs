//! GET CHALLENGE, secure messaging and the lifecycle commands APPLICATION BLOCK / APPLICATION
//! UNBLOCK / CARD BLOCK (e-purse.md §4.9–§4.11).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_crypto::purse::secure_messaging_mac;

use super::{expect_lc, expect_p1p2};
use crate::applet::Volatile;
use crate::keys::{self, KeyEntry, KeyUsage};
use crate::state::{AppStatus, Lifecycle, OBJ_KEYS};

/// Status word for a wrong secure-messaging MAC.
///
/// L (e-purse.md §4.10: "`6988` wrong MAC / `9302` (COS-dependent)"): `6988`, the ISO 7816-4 meaning
/// ("SM data objects incorrect"), keeping `9302` for the purse cryptograms MAC1/MAC2.
pub const SECURE_MESSAGING_MAC_INVALID: StatusWord = StatusWord::SM_DATA_OBJECTS_INCORRECT;

/// Status word when a secure-messaging command comes without a fresh GET CHALLENGE.
///
/// L: `6984` (referenced data invalidated: the random it needs is gone), as PBOC COSes answer.
pub const CHALLENGE_MISSING: StatusWord = StatusWord::REFERENCED_DATA_INVALIDATED;

/// `00 84 00 00 Le` with Le `04` or `08`: the random is the IV of the next secure-messaging command
/// and is forgotten after that command, whatever it is. The IV is always `random[0..4] || 00..`
/// (e-purse.md §4.10), also after an 8-byte challenge (L).
// e-purse.md §4.9
pub(crate) fn get_challenge(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    v: &mut Volatile,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x00, 0x00)?;
    expect_lc(cmd, 0)?;
    let len = match cmd.le {
        Some(4) => 4,
        Some(8) => 8,
        _ => return Err(StatusWord::WRONG_LENGTH),
    };
    let mut challenge = [0u8; 8];
    ctx.random(&mut challenge[..len]);
    v.challenge = Some(challenge);
    Ok(challenge[..len].to_vec())
}

/// Checks a secure-messaging MAC over `CLA INS P1 P2 Lc data` (Lc counts the MAC) with
/// IV = `challenge(4) || 00..` (e-purse.md §4.10, §5.3).
pub(crate) fn check_secure_messaging_mac(
    key: &KeyEntry,
    cmd: &CommandApdu,
    challenge: &[u8; 8],
    data: &[u8],
    mac: &[u8],
) -> Result<(), StatusWord> {
    let lc = u8::try_from(cmd.data.len()).map_err(|_| StatusWord::WRONG_LENGTH)?;
    let mut input = Vec::with_capacity(5 + data.len());
    input.extend_from_slice(&[cmd.cla, cmd.ins, cmd.p1, cmd.p2, lc]);
    input.extend_from_slice(data);
    let expected = secure_messaging_mac(&key.algorithm, &key.key, &challenge[..4], &input);
    if ykt_crypto::ct_eq(&expected, mac) {
        Ok(())
    } else {
        Err(SECURE_MESSAGING_MAC_INVALID)
    }
}

/// The common shape `84 <INS> 00 <P2> 04 <MAC>` of the lifecycle commands, checked with the DAMK.
fn check_maintenance_mac(
    ctx: &Context<'_>,
    cmd: &CommandApdu,
    challenge: Option<[u8; 8]>,
) -> Result<(), StatusWord> {
    expect_lc(cmd, 4)?;
    let challenge = challenge.ok_or(CHALLENGE_MISSING)?;
    let damk = keys::first(ctx.read(OBJ_KEYS)?, KeyUsage::Maintenance)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    check_secure_messaging_mac(&damk, cmd, &challenge, &[], &cmd.data)
}

/// `84 1E 00 P2 04 MAC`: P2 `00` blocks temporarily (SELECT → FCI + `6A81`), `01` permanently
/// (SELECT → FCI + `9303`).
// e-purse.md §4.11
pub(crate) fn application_block(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    mut status: AppStatus,
    challenge: Option<[u8; 8]>,
) -> Result<Vec<u8>, StatusWord> {
    let lifecycle = match (cmd.p1, cmd.p2) {
        (0x00, 0x00) => Lifecycle::TemporarilyBlocked,
        (0x00, 0x01) => Lifecycle::PermanentlyBlocked,
        _ => return Err(StatusWord::INCORRECT_P1P2),
    };
    check_maintenance_mac(ctx, cmd, challenge)?;
    status.lifecycle = lifecycle;
    status.store(ctx)?;
    Ok(Vec::new())
}

/// `84 18 00 00 04 MAC`: lifts a temporary block (L, e-purse.md §4.11); on an active application it
/// succeeds and changes nothing.
// e-purse.md §4.11
pub(crate) fn application_unblock(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    mut status: AppStatus,
    challenge: Option<[u8; 8]>,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x00, 0x00)?;
    check_maintenance_mac(ctx, cmd, challenge)?;
    if status.lifecycle != Lifecycle::Active || status.mac_failures != 0 {
        status.lifecycle = Lifecycle::Active;
        status.mac_failures = 0;
        status.store(ctx)?;
    }
    Ok(Vec::new())
}

/// `84 16 00 00 04 MAC`: blocks irreversibly; SELECT is refused with `6A81` afterwards.
///
/// L (e-purse.md §4.11): the runtime gives an applet no handle on other applets, so CARD BLOCK
/// blocks this purse instance only (the second ticket type is blocked by its own CARD BLOCK).
// e-purse.md §4.11
pub(crate) fn card_block(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    mut status: AppStatus,
    challenge: Option<[u8; 8]>,
) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x00, 0x00)?;
    check_maintenance_mac(ctx, cmd, challenge)?;
    status.lifecycle = Lifecycle::CardBlocked;
    status.store(ctx)?;
    Ok(Vec::new())
}
