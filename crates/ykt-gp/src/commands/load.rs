//! INSTALL [for load] and LOAD (`80 E8`, GP §11.5.2.3.1, §11.6; tsm-gp.md §3.2).
//!
//! The card runs no downloaded code: its library holds the packages it can run (see
//! `IsdSetup::packages`). A load file therefore *names* one of them, and LOAD makes it
//! present on the card (LOADED in the registry, associated with the SD that loaded it), after
//! which INSTALL may instantiate its modules.
//!
//! ```text
//! LOAD data, all blocks concatenated:   [E2 L { 4F L SD-AID · C3 L signature }]*  C4 L lfdb
//! lfdb (the project's load file data block, \[PROPOSAL\]):
//!                                       "YKT" 01 · ELF AID LV · version (2)
//! ```
//!
//! P2 is the block number, from `00` in steps of one (else `6A86`); P1 `80` marks the last
//! block. When INSTALL [for load] gave a hash (32 bytes: SHA-256 or SM3 as the card is set up;
//! 20-byte SHA-1 hashes are refused with `6A80` because the card has no SHA-1), the LFDB must
//! match it (`6A80` otherwise). DAP blocks are accepted and not verified (no SD here has DAP
//! Verification). A refused LOAD ends the sequence; nothing is registered before the last
//! block.

use alloc::vec::Vec;

use sha2::Digest;
use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Context};

use super::{Sd, aid, lv};
use crate::isd::Volatile;
use crate::life_cycle::LOAD_FILE_LOADED;
use crate::state::{self, Entry, EntryKind};

/// The magic of the project's load file data block.
pub const LFDB_MAGIC: [u8; 4] = *b"YKT\x01";

/// The most load file bytes one LOAD sequence carries.
pub const MAX_LOAD_FILE: usize = 4096;

/// An accepted INSTALL [for load], waiting for its LOAD blocks (volatile).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loading {
    elf: Aid,
    sd: Aid,
    hash: Option<[u8; 32]>,
    next_block: u16,
    data: Vec<u8>,
}

/// The load file data block naming package `elf` at `version`.
pub fn load_file_data_block(elf: &Aid, version: [u8; 2]) -> Vec<u8> {
    let mut out = LFDB_MAGIC.to_vec();
    out.push(elf.as_bytes().len() as u8);
    out.extend_from_slice(elf.as_bytes());
    out.extend_from_slice(&version);
    out
}

/// The whole LOAD payload (to be cut into blocks) for `lfdb`: `C4 <BER length> lfdb`.
pub fn load_file(lfdb: &[u8]) -> Vec<u8> {
    super::tlv(&[0xC4], lfdb)
}

/// INSTALL [for load].
pub(crate) fn for_load(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    volatile: &mut Volatile,
    f: &[&[u8]; 6],
) -> Result<super::install::ContextAids, StatusWord> {
    let elf = aid(f[0])?;
    let target = if f[1].is_empty() {
        sd.aid.clone()
    } else {
        aid(f[1])?
    };
    let hash = match f[2].len() {
        0 => None,
        32 => {
            let mut h = [0u8; 32];
            h.copy_from_slice(f[2]);
            Some(h)
        }
        _ => return Err(StatusWord::WRONG_DATA),
    };
    let g = state::global(ctx)?;
    if state::find(&g, elf.as_bytes())?.is_some() {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    // The target SD is this SD, or (for the ISD) one it knows.
    let known = target == *sd.aid
        || !sd.supplementary
            && matches!(state::find(&g, target.as_bytes())?, Some((_, e)) if e.kind == EntryKind::SecurityDomain);
    if !known {
        return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
    }
    volatile.loading = Some(Loading {
        elf: elf.clone(),
        sd: target.clone(),
        hash,
        next_block: 0,
        data: Vec::new(),
    });
    Ok([elf, target])
}

/// Parses the concatenated LOAD data: the LFDB (the value of `C4`), DAP blocks skipped.
fn lfdb(data: &[u8]) -> Result<&[u8], StatusWord> {
    let bad = StatusWord::WRONG_DATA;
    let mut rest = data;
    loop {
        let (&tag, r) = rest.split_first().ok_or(bad)?;
        let (len, r) = ber_len(r).ok_or(bad)?;
        let (value, r) = r.split_at_checked(len).ok_or(bad)?;
        match tag {
            0xE2 => rest = r,
            0xC4 if r.is_empty() => return Ok(value),
            _ => return Err(bad),
        }
    }
}

fn ber_len(b: &[u8]) -> Option<(usize, &[u8])> {
    match *b {
        [n @ 0..=0x7F, ref r @ ..] => Some((usize::from(n), r)),
        [0x81, n, ref r @ ..] => Some((usize::from(n), r)),
        [0x82, hi, lo, ref r @ ..] => Some((usize::from(u16::from_be_bytes([hi, lo])), r)),
        _ => None,
    }
}

/// LOAD.
pub(crate) fn load(
    ctx: &mut Context<'_>,
    _sd: &Sd<'_>,
    _card_state: crate::life_cycle::CardState,
    volatile: &mut Volatile,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    let Some(mut loading) = volatile.loading.take() else {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    };
    if !matches!(cmd.p1, 0x00 | 0x80) || u16::from(cmd.p2) != loading.next_block {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    if loading.data.len() + cmd.data.len() > MAX_LOAD_FILE {
        return Err(StatusWord::NOT_ENOUGH_MEMORY);
    }
    loading.data.extend_from_slice(&cmd.data);
    loading.next_block += 1;
    if cmd.p1 == 0x00 {
        if loading.next_block > 0xFF {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        volatile.loading = Some(loading);
        return Ok(Vec::new());
    }
    let block = lfdb(&loading.data)?;
    let g = state::global(ctx)?;
    if let Some(expected) = loading.hash {
        let actual: [u8; 32] = match g.read(state::G_OPTIONS)?.first() {
            Some(0x02) => ykt_crypto::sm3(block),
            _ => sha2::Sha256::digest(block).into(),
        };
        if actual != expected {
            return Err(StatusWord::WRONG_DATA);
        }
    }
    let (magic, rest) = block.split_at_checked(4).ok_or(StatusWord::WRONG_DATA)?;
    let (elf, version) = lv(rest)?;
    if magic != LFDB_MAGIC || elf != loading.elf.as_bytes() || version.len() != 2 {
        return Err(StatusWord::WRONG_DATA);
    }
    let known = state::packages(&g)?
        .iter()
        .any(|p| p.elf == loading.elf && p.version[..] == *version);
    if !known {
        return Err(StatusWord::WRONG_DATA);
    }
    let entry = Entry {
        kind: EntryKind::LoadFile,
        aid: loading.elf,
        state: LOAD_FILE_LOADED,
        privileges: [0; 3],
        elf: None,
        sd: Some(loading.sd),
    };
    state::add_entry(&mut state::global(ctx)?, &entry)?;
    Ok(alloc::vec![0x00])
}
