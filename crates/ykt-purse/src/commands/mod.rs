//! Command handlers, one family per file; each cites its section of e-purse.md.

pub(crate) mod balance;
pub(crate) mod block;
pub(crate) mod load;
pub(crate) mod pin;
pub(crate) mod prove;
pub(crate) mod purchase;
pub(crate) mod select;
pub(crate) mod store_data;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;

use crate::profile::PurseProfile;
use crate::state::{AppStatus, Lifecycle};

/// Transaction type codes (e-purse.md §5.6).
pub mod transaction_type {
    /// EP load (圈存).
    pub const LOAD: u8 = 0x02;
    /// EP purchase (消费).
    pub const PURCHASE: u8 = 0x06;
    /// Composite (CAPP) purchase (复合消费).
    pub const COMPOSITE_PURCHASE: u8 = 0x09;
}

/// P2 of INITIALIZE / GET BALANCE selecting the EP (`02`); the ED (`01`) is not implemented, so it
/// gets `6A86` (e-purse.md §4.13: transit EPs seldom support ED).
pub(crate) const P2_EP: u8 = 0x02;

/// `6700` unless the data field has exactly `len` bytes.
pub(crate) fn expect_lc(cmd: &CommandApdu, len: usize) -> Result<(), StatusWord> {
    if cmd.data.len() == len {
        Ok(())
    } else {
        Err(StatusWord::WRONG_LENGTH)
    }
}

/// `6A86` unless P1 and P2 are as given.
pub(crate) fn expect_p1p2(cmd: &CommandApdu, p1: u8, p2: u8) -> Result<(), StatusWord> {
    if cmd.p1 == p1 && cmd.p2 == p2 {
        Ok(())
    } else {
        Err(StatusWord::INCORRECT_P1P2)
    }
}

/// Copies `N` bytes from `data[at..]`; the callers have checked the length.
pub(crate) fn take<const N: usize>(data: &[u8], at: usize) -> Result<[u8; N], StatusWord> {
    data.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(StatusWord::WRONG_LENGTH)
}

/// Handles a bad MAC1/MAC2: counts it when the profile asks for it (committed at once, since the
/// command itself fails), blocks the application at the limit, and returns `9302`.
pub(crate) fn mac_failure(
    ctx: &mut Context<'_>,
    profile: &PurseProfile,
    mut status: AppStatus,
) -> StatusWord {
    if profile.mac_failure_limit == 0 {
        return StatusWord::MAC_INVALID;
    }
    status.mac_failures = status.mac_failures.saturating_add(1);
    if status.mac_failures >= profile.mac_failure_limit {
        status.lifecycle = Lifecycle::TemporarilyBlocked;
    }
    match status.store(ctx).and_then(|()| ctx.commit()) {
        Ok(()) => StatusWord::MAC_INVALID,
        Err(sw) => sw,
    }
}

/// Stages the reset of the MAC-failure count after a good MAC (part of the transaction).
pub(crate) fn mac_success(ctx: &mut Context<'_>, mut status: AppStatus) -> Result<(), StatusWord> {
    if status.mac_failures == 0 {
        return Ok(());
    }
    status.mac_failures = 0;
    status.store(ctx)
}
