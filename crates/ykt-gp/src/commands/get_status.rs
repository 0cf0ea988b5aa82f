//! GET STATUS (`80 F2`, GP §11.4; tsm-gp.md §3.4).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;

use super::tlv;
use crate::isd::{ISD_AID, ISD_PRIVILEGES};
use crate::life_cycle::CardState;
use crate::state;

/// P1 `80`: the ISD.
pub const P1_ISD: u8 = 0x80;
/// P1 `40`: applications and supplementary security domains.
pub const P1_APPLICATIONS: u8 = 0x40;
/// P1 `20`: executable load files.
pub const P1_LOAD_FILES: u8 = 0x20;
/// P1 `10`: executable load files and their modules.
pub const P1_LOAD_FILES_AND_MODULES: u8 = 0x10;

/// One registry entry as GET STATUS reports it.
struct Row<'a> {
    aid: &'a [u8],
    state: u8,
    privileges: [u8; 3],
    associated_sd: Option<&'a [u8]>,
}

/// The tags of a `5C` tag list; `None` asks for all.
type TagList = Option<Vec<Vec<u8>>>;

/// Parses `4F L prefix [5C L tag-list]`; `6A80` for anything else.
fn parse(data: &[u8]) -> Result<(&[u8], TagList), StatusWord> {
    let bad = StatusWord::WRONG_DATA;
    let [0x4F, len, rest @ ..] = data else {
        return Err(bad);
    };
    let len = usize::from(*len);
    if len > 16 {
        return Err(bad);
    }
    let prefix = rest.get(..len).ok_or(bad)?;
    let rest = &rest[len..];
    if rest.is_empty() {
        return Ok((prefix, None));
    }
    let [0x5C, len, list @ ..] = rest else {
        return Err(bad);
    };
    if usize::from(*len) != list.len() || list.is_empty() {
        return Err(bad);
    }
    let mut tags = Vec::new();
    let mut i = 0;
    while i < list.len() {
        let n = if list[i] & 0x1F == 0x1F { 2 } else { 1 };
        tags.push(list.get(i..i + n).ok_or(bad)?.to_vec());
        i += n;
    }
    Ok((prefix, Some(tags)))
}

fn entry_tlv(row: &Row<'_>, tags: &TagList) -> Vec<u8> {
    let wanted = |t: &[u8]| tags.as_ref().is_none_or(|l| l.iter().any(|x| x == t));
    let mut body = Vec::new();
    if wanted(&[0x4F]) {
        body.extend(tlv(&[0x4F], row.aid));
    }
    if wanted(&[0x9F, 0x70]) {
        body.extend(tlv(&[0x9F, 0x70], &[row.state]));
    }
    if wanted(&[0xC5]) {
        body.extend(tlv(&[0xC5], &row.privileges));
    }
    if let Some(sd) = row.associated_sd
        && wanted(&[0xCC])
    {
        body.extend(tlv(&[0xCC], sd));
    }
    tlv(&[0xE3], &body)
}

/// GET STATUS: P2 `02` (TLV format) or `00` (legacy format), first occurrence. All matching
/// entries come back in one response; "next occurrence" (P2 b1) therefore finds none (`6A88`).
/// Load files (P1 `20`, `10`) do not exist until LOAD does: `6A88`.
pub fn get_status(
    ctx: &mut Context<'_>,
    card_state: CardState,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    if !matches!(
        cmd.p1,
        P1_ISD | P1_APPLICATIONS | P1_LOAD_FILES | P1_LOAD_FILES_AND_MODULES
    ) {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    let tlv_format = match cmd.p2 & !0x01 {
        0x02 => true,
        0x00 => false,
        _ => return Err(StatusWord::INCORRECT_P1P2),
    };
    let (prefix, tags) = parse(&cmd.data)?;
    if !tlv_format && tags.is_some() {
        return Err(StatusWord::WRONG_DATA);
    }
    if cmd.p2 & 0x01 != 0 {
        return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
    }
    let registry = state::registry(ctx)?;
    let mut rows = Vec::new();
    match cmd.p1 {
        P1_ISD => rows.push(Row {
            aid: &ISD_AID,
            state: card_state.to_byte(),
            privileges: ISD_PRIVILEGES,
            associated_sd: None,
        }),
        P1_APPLICATIONS => {
            for (_, e) in &registry {
                rows.push(Row {
                    aid: e.aid.as_bytes(),
                    state: e.state.0,
                    privileges: e.privileges,
                    associated_sd: Some(&ISD_AID),
                });
            }
        }
        _ => {}
    }
    rows.retain(|r| r.aid.starts_with(prefix));
    if rows.is_empty() {
        return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
    }
    let mut out = Vec::new();
    for row in &rows {
        if tlv_format {
            out.extend(entry_tlv(row, &tags));
        } else {
            out.push(row.aid.len() as u8);
            out.extend_from_slice(row.aid);
            out.push(row.state);
            out.push(row.privileges[0]);
        }
    }
    Ok(out)
}
