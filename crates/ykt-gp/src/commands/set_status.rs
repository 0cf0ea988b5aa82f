//! SET STATUS (`80 F0`, GP §11.10; tsm-gp.md §3.5): the card life cycle (P1 `80`) and an
//! application's (P1 `40`: lock, unlock, application-specific states).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;

use crate::isd::ISD_AID;
use crate::life_cycle::CardState;
use crate::state::{self, ENTRY_LEN, OBJ_LIFE_CYCLE, OBJ_REGISTRY};

/// P1 `80`: the card (ISD) life cycle.
pub const P1_CARD: u8 = 0x80;
/// P1 `40`: an application or supplementary security domain.
pub const P1_APPLICATION: u8 = 0x40;

/// SET STATUS. A transition GP forbids gets `6985` and changes nothing; an unknown state
/// coding `6A80`; an AID not in the registry `6A88`.
pub fn set_status(
    ctx: &mut Context<'_>,
    card_state: CardState,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    match cmd.p1 {
        P1_CARD => {
            if !(cmd.data.is_empty() || cmd.data == ISD_AID) {
                return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
            }
            let to = CardState::from_byte(cmd.p2).ok_or(StatusWord::WRONG_DATA)?;
            if !card_state.may_become(to) {
                return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
            }
            ctx.write(OBJ_LIFE_CYCLE, 0, &[to.to_byte()])?;
            Ok(Vec::new())
        }
        P1_APPLICATION => {
            if !(5..=16).contains(&cmd.data.len()) {
                return Err(StatusWord::WRONG_DATA);
            }
            if cmd.data == ISD_AID || card_state == CardState::CardLocked {
                return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
            }
            let (slot, entry) = state::registry(ctx)?
                .into_iter()
                .find(|(_, e)| e.aid.as_bytes() == cmd.data.as_slice())
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
            let next = entry
                .state
                .after_set_status(cmd.p2)
                .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
            // The life cycle byte sits after the length and the 16-byte AID field.
            ctx.write(OBJ_REGISTRY, slot * ENTRY_LEN + 17, &[next.0])?;
            Ok(Vec::new())
        }
        _ => Err(StatusWord::INCORRECT_P1P2),
    }
}
