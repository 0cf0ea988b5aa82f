//! GET TRANSACTION PROVE (取交易认证; e-purse.md §4.8, §7).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;

use super::{expect_lc, take, transaction_type};
use crate::profile::{ProveCounter, PurseProfile};
use crate::state::PurseState;

/// Status word when the asked transaction is not the last one (or there is none).
///
/// L (e-purse.md §4.8 leaves it open: "`9403`/`6A80`?"): `9406`, "required MAC not available",
/// which says exactly that the card holds no MAC2/TAC for that transaction.
pub const PROVE_NOT_AVAILABLE: StatusWord = StatusWord::MAC_NOT_AVAILABLE;

/// `80 5A 00 <type> 02 <counter> 08`: MAC2 (4) · TAC (4) of the last transaction, if its type and
/// counter match. The counter convention is [`PurseProfile::prove_counter`].
// e-purse.md §4.8
pub(crate) fn get_transaction_prove(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
    profile: &PurseProfile,
) -> Result<Vec<u8>, StatusWord> {
    if cmd.p1 != 0x00
        || ![
            transaction_type::LOAD,
            transaction_type::PURCHASE,
            transaction_type::COMPOSITE_PURCHASE,
        ]
        .contains(&cmd.p2)
    {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    expect_lc(cmd, 2)?;
    let asked = u16::from_be_bytes(take(&cmd.data, 0)?);
    let last = PurseState::load(ctx)?.last.ok_or(PROVE_NOT_AVAILABLE)?;
    let expected = match profile.prove_counter {
        ProveCounter::PreIncrement => Some(last.counter),
        ProveCounter::PostIncrement => last.counter.checked_add(1),
    };
    if last.transaction_type != cmd.p2 || expected != Some(asked) {
        return Err(PROVE_NOT_AVAILABLE);
    }
    let mut out = Vec::with_capacity(8);
    out.extend_from_slice(&last.mac2);
    out.extend_from_slice(&last.tac);
    Ok(out)
}
