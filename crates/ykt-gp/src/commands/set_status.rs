//! SET STATUS (`80 F0`, GP §11.10; tsm-gp.md §3.5): the card life cycle (P1 `80`) and an
//! application's (P1 `40`: lock, unlock, application-specific states).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;

use super::managed;
use crate::isd::ISD_AID;
use crate::life_cycle::{ApplicationState, CardState};
use crate::state::{self, EntryKind, G_LIFE_CYCLE};

/// P1 `80`: the card (ISD) life cycle.
pub const P1_CARD: u8 = 0x80;
/// P1 `40`: an application or supplementary security domain.
pub const P1_APPLICATION: u8 = 0x40;
/// P1 `60`: a security domain and its associated applications (kaoh/globalplatform's coding;
/// pysim's `C0` is accepted too — tsm-gp.md §3.5, M).
pub const P1_SD_AND_APPLICATIONS: u8 = 0x60;

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
            state::global(ctx)?.write(G_LIFE_CYCLE, 0, &[to.to_byte()])?;
            Ok(Vec::new())
        }
        P1_APPLICATION | P1_SD_AND_APPLICATIONS | 0xC0 => {
            if !(5..=16).contains(&cmd.data.len()) {
                return Err(StatusWord::WRONG_DATA);
            }
            if cmd.data == ISD_AID || card_state == CardState::CardLocked {
                return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
            }
            let g = state::global(ctx)?;
            let registry = state::registry(&g)?;
            let (slot, entry) = registry
                .iter()
                .find(|(_, e)| {
                    e.aid.as_bytes() == cmd.data.as_slice() && e.kind != EntryKind::LoadFile
                })
                .cloned()
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
            let mut targets = alloc::vec![(slot, entry.clone())];
            if cmd.p1 != P1_APPLICATION {
                if entry.kind != EntryKind::SecurityDomain {
                    return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
                }
                targets.extend(
                    registry
                        .iter()
                        .filter(|(_, e)| {
                            e.kind != EntryKind::LoadFile && e.sd.as_ref() == Some(&entry.aid)
                        })
                        .cloned(),
                );
            }
            for (i, (slot, mut e)) in targets.into_iter().enumerate() {
                let Some(next) = ApplicationState(e.state).after_set_status(cmd.p2) else {
                    if i == 0 {
                        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
                    }
                    // An associated application already in the target state stays.
                    continue;
                };
                e.state = next.0;
                // SELECT reaches an unlocked application that is at least SELECTABLE.
                let selectable = !next.is_locked() && next.0 & 0x07 == 0x07;
                ctx.set_selectable(&e.aid, selectable).map_err(managed)?;
                state::put_entry(&mut state::global(ctx)?, slot, &e)?;
            }
            Ok(Vec::new())
        }
        _ => Err(StatusWord::INCORRECT_P1P2),
    }
}
