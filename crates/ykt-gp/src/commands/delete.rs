//! DELETE (`80 E4`, GP §11.2; tsm-gp.md §3.3): an application, a security domain or a load
//! file, alone (P2 `00`) or with its related objects (P2 `80`); or a key version of this SD.
//!
//! ```text
//! data = 4F L AID [B6 … control reference template]    (card content)
//!      | D2 01 KVN [D0 01 key id]                      (keys of this SD)
//! ```
//!
//! Related objects: a load file's instances, and a security domain's associated applications
//! and load files (recursively). Without P2 `80` a load file with instances, or an SD with
//! associated content, is refused with `6985`. The ISD cannot be deleted (`6985`), nor an SD
//! while it is the one processing the command. A `9E` token is required from an SSD with
//! Delegated Management and refused from the others (`6982`, `commands::checked_data`).
//! Response `00`, or the receipt under Delegated Management.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Context};

use super::{Sd, aid, answer, checked_data, managed};
use crate::isd::ISD_AID;
use crate::life_cycle::CardState;
use crate::state::{self, Entry, EntryKind, OBJ_KEYS, SLOT_LEN};

/// DELETE.
pub(crate) fn delete(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    card_state: CardState,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    if cmd.p1 != 0x00 || !matches!(cmd.p2, 0x00 | 0x80) {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    if card_state == CardState::CardLocked {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    match cmd.data.first() {
        Some(0x4F) => content(ctx, sd, cmd),
        Some(0xD2 | 0xD0) => keys(ctx, &cmd.data),
        _ => Err(StatusWord::WRONG_DATA),
    }
}

fn content(ctx: &mut Context<'_>, sd: &Sd<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
    let bad = StatusWord::WRONG_DATA;
    let g = state::global(ctx)?;
    let mode = sd.management(&g)?;
    let signed = checked_data(&g, mode, cmd)?;
    let [0x4F, n, rest @ ..] = signed else {
        return Err(bad);
    };
    let (target, rest) = rest.split_at_checked(usize::from(*n)).ok_or(bad)?;
    let target = aid(target)?;
    match rest {
        [] => {}
        [0xB6, n, crt @ ..] if usize::from(*n) == crt.len() => {}
        _ => return Err(bad),
    }
    if target.as_bytes() == ISD_AID || target == *sd.aid {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    let registry: Vec<Entry> = state::registry(&g)?.into_iter().map(|(_, e)| e).collect();
    let entry = registry
        .iter()
        .find(|e| e.aid == target && sd.owns(e))
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    let doomed = related(&registry, entry);
    if doomed.len() > 1 && cmd.p2 != 0x80 {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    if doomed.iter().any(|a| a == sd.aid) {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    for aid in &doomed {
        let e = registry.iter().find(|e| &e.aid == aid);
        if e.is_some_and(|e| e.kind != EntryKind::LoadFile) {
            ctx.delete_instance(aid).map_err(managed)?;
        }
        let mut g = state::global(ctx)?;
        if let Some((slot, _)) = state::find(&g, aid.as_bytes())? {
            state::remove_entry(&mut g, slot)?;
        }
    }
    answer(
        ctx,
        mode,
        &crate::dm::ReceiptContext::Delete {
            aid: target.as_bytes(),
        },
    )
}

/// `entry` and everything that goes with it (GP §11.2.2.1): a load file's instances; an SD's
/// associated applications, SDs and load files, recursively. `entry` comes first.
fn related(registry: &[Entry], entry: &Entry) -> Vec<Aid> {
    let mut out = alloc::vec![entry.aid.clone()];
    let mut i = 0;
    while let Some(current) = out.get(i).cloned() {
        let Some(e) = registry.iter().find(|e| e.aid == current) else {
            i += 1;
            continue;
        };
        for other in registry {
            let linked = match e.kind {
                EntryKind::LoadFile => other.elf.as_ref() == Some(&e.aid),
                EntryKind::SecurityDomain => other.sd.as_ref() == Some(&e.aid),
                EntryKind::Application => false,
            };
            if linked && !out.contains(&other.aid) {
                out.push(other.aid.clone());
            }
        }
        i += 1;
    }
    out
}

/// Deletes key version `D2 01 KVN` of this SD (`D0` key identifiers name one of the three
/// keys of a set, which always go together here: refused with `6A80` unless `D2` is there too).
fn keys(ctx: &mut Context<'_>, data: &[u8]) -> Result<Vec<u8>, StatusWord> {
    let bad = StatusWord::WRONG_DATA;
    let mut kvn = None;
    let mut rest = data;
    while let [tag, 0x01, v, r @ ..] = rest {
        match tag {
            0xD2 => kvn = Some(*v),
            0xD0 => {}
            _ => return Err(bad),
        }
        rest = r;
    }
    if !rest.is_empty() {
        return Err(bad);
    }
    let kvn = kvn.ok_or(bad)?;
    let slots = state::key_slots(ctx)?;
    let slot = slots
        .iter()
        .position(|s| s.as_ref().is_some_and(|k| k.version == kvn))
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    if slots.iter().flatten().count() == 1 {
        // The last key set: the SD could never open a channel again.
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    ctx.write(OBJ_KEYS, slot * SLOT_LEN, &[0; SLOT_LEN])?;
    Ok(alloc::vec![0x00])
}
