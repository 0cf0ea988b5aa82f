//! GET STATUS (`80 F2`, GP §11.4; tsm-gp.md §3.4).
//!
//! # Paging
//!
//! One response carries at most [`MAX_RESPONSE_DATA`] bytes of entries, whole entries only.
//! When more match, the response ends with `6310` ([`MORE_DATA`]) and the ISD keeps a
//! volatile cursor (a [`Listing`]): the request's P1, P2 format and data, and the first entry
//! not yet sent. A "next occurrence" request (P2 b1 set) with the same P1, P2 format and data
//! continues from the cursor (`6310` again while entries remain, `9000` with the last part);
//! with no pending listing, or with other criteria, it gets `6A88` and the cursor stays.
//! Any "first occurrence" GET STATUS drops the cursor (and starts a new one if it pages), as do
//! deselection (SELECT of any application, the ISD included) and power loss or reset.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;

use ykt_card::Aid;

use super::{Sd, tlv};
use crate::isd::{ISD_AID, ISD_PRIVILEGES};
use crate::life_cycle::CardState;
use crate::state::{self, Entry, EntryKind};

/// P1 `80`: the ISD.
pub const P1_ISD: u8 = 0x80;
/// P1 `40`: applications and supplementary security domains.
pub const P1_APPLICATIONS: u8 = 0x40;
/// P1 `20`: executable load files.
pub const P1_LOAD_FILES: u8 = 0x20;
/// P1 `10`: executable load files and their modules.
pub const P1_LOAD_FILES_AND_MODULES: u8 = 0x10;

/// `6310`: more data available (GP §11.4.3), sent with every part of a listing but the last.
pub const MORE_DATA: StatusWord = StatusWord::new(0x63, 0x10);

/// The most entry bytes one GET STATUS response carries: 255 bytes of response data (one
/// short response) less the worst secure-channel wrap, 16 bytes of R-ENC padding and a
/// 16-byte R-MAC, so every part fits one short response at any security level.
pub const MAX_RESPONSE_DATA: usize = 255 - 16 - 16;

/// A listing sent in part: what was asked and where the next part starts (volatile).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    p1: u8,
    format: u8,
    data: Vec<u8>,
    next: usize,
}

/// One registry entry as GET STATUS reports it.
struct Row<'a> {
    aid: &'a [u8],
    state: u8,
    privileges: Option<[u8; 3]>,
    associated_sd: Option<&'a [u8]>,
    /// Load files: the version (`CE`) and, for P1 `10`, the modules (`84`).
    version: Option<[u8; 2]>,
    modules: Vec<&'a [u8]>,
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
    if let Some(p) = row.privileges
        && wanted(&[0xC5])
    {
        body.extend(tlv(&[0xC5], &p));
    }
    if let Some(sd) = row.associated_sd
        && wanted(&[0xCC])
    {
        body.extend(tlv(&[0xCC], sd));
    }
    if let Some(v) = row.version
        && wanted(&[0xCE])
    {
        body.extend(tlv(&[0xCE], &v));
    }
    if wanted(&[0x84]) {
        for m in &row.modules {
            body.extend(tlv(&[0x84], m));
        }
    }
    tlv(&[0xE3], &body)
}

/// GET STATUS: P2 `02` (TLV format) or `00` (legacy format), b1 for the next occurrence;
/// the paging rules of the module documentation, with `cursor` the ISD's pending listing.
/// Load files: P1 `20` (with version `CE`) and `10` (with their modules `84`). A supplementary
/// security domain lists what is associated with it.
pub(crate) fn get_status(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    card_state: CardState,
    cmd: &CommandApdu,
    cursor: &mut Option<Listing>,
) -> Result<Vec<u8>, StatusWord> {
    let next = cmd.p2 & 0x01 != 0;
    if !next {
        *cursor = None;
    }
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
    let format = cmd.p2 & !0x01;
    let start = if next {
        match cursor {
            Some(l) if l.p1 == cmd.p1 && l.format == format && l.data == cmd.data => l.next,
            _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        }
    } else {
        0
    };
    let g = state::global(ctx)?;
    let registry: Vec<Entry> = state::registry(&g)?.into_iter().map(|(_, e)| e).collect();
    let packages = state::packages(&g)?;
    let mut rows = Vec::new();
    match cmd.p1 {
        P1_ISD if !sd.supplementary => rows.push(Row {
            aid: &ISD_AID,
            state: card_state.to_byte(),
            privileges: Some(ISD_PRIVILEGES),
            associated_sd: None,
            version: None,
            modules: Vec::new(),
        }),
        P1_ISD => {}
        P1_APPLICATIONS => {
            for e in registry
                .iter()
                .filter(|e| e.kind != EntryKind::LoadFile && sd.owns(e))
            {
                rows.push(Row {
                    aid: e.aid.as_bytes(),
                    state: e.state,
                    privileges: Some(e.privileges),
                    associated_sd: e.sd.as_ref().map(Aid::as_bytes),
                    version: None,
                    modules: Vec::new(),
                });
            }
        }
        _ => {
            for e in registry
                .iter()
                .filter(|e| e.kind == EntryKind::LoadFile && sd.owns(e))
            {
                let package = packages.iter().find(|p| p.elf == e.aid);
                rows.push(Row {
                    aid: e.aid.as_bytes(),
                    state: e.state,
                    privileges: None,
                    associated_sd: e.sd.as_ref().map(Aid::as_bytes),
                    version: package.map(|p| p.version),
                    modules: if cmd.p1 == P1_LOAD_FILES_AND_MODULES {
                        package
                            .map(|p| p.modules.iter().map(|(m, _)| m.as_bytes()).collect())
                            .unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }
    rows.retain(|r| r.aid.starts_with(prefix));
    if start >= rows.len() {
        *cursor = None;
        return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
    }
    let mut out = Vec::new();
    let mut end = start;
    for row in rows.iter().skip(start) {
        let entry = if tlv_format {
            entry_tlv(row, &tags)
        } else {
            let mut e = Vec::with_capacity(row.aid.len() + 3);
            e.push(row.aid.len() as u8);
            e.extend_from_slice(row.aid);
            e.push(row.state);
            e.push(row.privileges.map_or(0, |p| p[0]));
            e
        };
        // An entry is at most 39 bytes, so the first one always fits.
        if end > start && out.len() + entry.len() > MAX_RESPONSE_DATA {
            break;
        }
        out.extend(entry);
        end += 1;
    }
    *cursor = if end < rows.len() {
        ctx.set_warning(MORE_DATA);
        Some(Listing {
            p1: cmd.p1,
            format,
            data: cmd.data.clone(),
            next: end,
        })
    } else {
        None
    };
    Ok(out)
}
