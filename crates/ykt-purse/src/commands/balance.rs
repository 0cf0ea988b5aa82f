//! GET BALANCE (e-purse.md §4.2).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;

use super::{P2_EP, expect_lc, expect_p1p2};
use crate::state::PurseState;

/// `80 5C 00 02 04`: the balance, 4 bytes.
// e-purse.md §4.2
pub(crate) fn get_balance(ctx: &mut Context<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
    expect_p1p2(cmd, 0x00, P2_EP)?;
    expect_lc(cmd, 0)?;
    Ok(PurseState::load(ctx)?.balance.to_be_bytes().to_vec())
}
