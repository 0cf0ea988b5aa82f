//! STORE DATA (`80 E2`, GP §11.11; tsm-gp.md §3.7): to the application INSTALL
//! [for personalization] named, or to this security domain itself.
//!
//! ```text
//! P1: b8 last block · b7 b6 encryption (00 none, 01 application dependent, 11 encrypted)
//!     · b5 b4 structure (00 none, 01 DGI, 10 BER-TLV) · b1 response expected
//! P2: block number
//! ```
//!
//! * **To an application** (after INSTALL [for personalization]): the command goes to the
//!   application's `Applet::process_data` as the host sent it, with one change: when P1 says
//!   `11` (encrypted), this SD first decrypts the whole data field with its key-encryption key
//!   — the SCP02 session DEK (3DES-ECB) or the static K-DEK (AES/SM4-CBC, ICV zero) — and
//!   removes the ISO/IEC 9797-1 method 2 padding (`80 00…`), so the application receives
//!   plaintext and the P1 bits that say it came encrypted ([`DECRYPT_RULE`]).
//! * **To a supplementary security domain** (INSTALL [for personalization] naming it): DGI
//!   [`DGI_SD_KEYS`] (`8001`) holds a PUT KEY data field (new KVN · three key blocks, encrypted
//!   under this SD's session exactly as PUT KEY's): this SD decrypts and checks it and hands
//!   the key set over to the new SD, which answers KVN · KCVs. This is how an SSD gets its first
//!   keys (\[PROPOSAL\], tsm-gp.md §6 "SSD initial keyset … put by the SEI-TSM": GP leaves the
//!   mechanism to the card). The SD is then PERSONALIZED (`0F`).
//! * **To this SD itself** (the ISD only): BER-TLV `42` (IIN) and `45` (CIN), at most 16 bytes.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Context};
use ykt_crypto::{cbc_decrypt, ecb_decrypt};
use ykt_scp::{Protocol, StaticKeys};

use super::Sd;
use super::put_key::{decode_key_set, store_key_set};
use crate::isd::{Session, Volatile, key_type_for};
use crate::life_cycle::{CardState, SD_PERSONALIZED};
use crate::state::{self, EntryKind, G_IDENTITY};

/// DGI of a supplementary security domain's key set (\[PROPOSAL\], module docs).
pub const DGI_SD_KEYS: u16 = 0x8001;

/// How encrypted STORE DATA reaches an application: the SD decrypts the whole data field and
/// strips method 2 padding (\[PROPOSAL\]: GP leaves the split between SD and application to
/// the application's personalisation profile; this is the one place that decides).
pub const DECRYPT_RULE: &str =
    "whole data field, SD key-encryption key, ISO/IEC 9797-1 method 2 padding";

/// The internal command an SD's parent delivers with a decrypted key set (not reachable from
/// the host: only a card manager delivers): `80 D8 00 81` · the key slot encoding.
const HANDOVER: (u8, u8) = (0x80, 0xD8);

/// STORE DATA.
pub(crate) fn store_data(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    session: &Session,
    card_state: CardState,
    volatile: &mut Volatile,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    if card_state == CardState::CardLocked {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    let encrypted = cmd.p1 & 0x60 == 0x60;
    let structure = (cmd.p1 >> 3) & 0x03;
    let Some(target) = volatile.personalizing.clone() else {
        return own_data(ctx, sd, cmd, encrypted, structure);
    };
    let g = state::global(ctx)?;
    let kind = state::find(&g, target.as_bytes())?.map(|(_, e)| e.kind);
    if kind == Some(EntryKind::SecurityDomain) {
        return sd_keys(ctx, sd, session, &target, cmd, structure);
    }
    let mut forwarded = cmd.clone();
    if encrypted {
        forwarded.data = decrypt(session, sd.protocol, &cmd.data)?;
    }
    forwarded.cla = 0x80;
    ctx.deliver(&target, &forwarded)
}

/// Decrypts a STORE DATA data field ([`DECRYPT_RULE`]); `6A80` when it is no whole number of
/// blocks or its padding is wrong.
fn decrypt(session: &Session, protocol: Protocol, data: &[u8]) -> Result<Vec<u8>, StatusWord> {
    let bad = StatusWord::WRONG_DATA;
    let clear = match (protocol, &session.keys.keys) {
        (Protocol::Scp02(_), _) => {
            let dek = session.channel.scp02_session_dek().ok_or(bad)?;
            ecb_decrypt(dek, data).map_err(|_| bad)?
        }
        (_, StaticKeys::Aes { dek, .. }) => cbc_decrypt(dek, &[0u8; 16], data).map_err(|_| bad)?,
        (_, StaticKeys::Sm4 { dek, .. }) => cbc_decrypt(dek, &[0u8; 16], data).map_err(|_| bad)?,
        _ => return Err(bad),
    };
    let end = clear.iter().rposition(|b| *b != 0).ok_or(bad)?;
    if clear[end] != 0x80 {
        return Err(bad);
    }
    Ok(clear[..end].to_vec())
}

/// One DGI at the start of `data`: tag, value, rest (length 1 byte, or `FF` + 2 bytes).
fn dgi(data: &[u8]) -> Result<(u16, &[u8], &[u8]), StatusWord> {
    let bad = StatusWord::WRONG_DATA;
    let [t0, t1, rest @ ..] = data else {
        return Err(bad);
    };
    let (len, rest) = match rest {
        [0xFF, hi, lo, r @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), r),
        [n, r @ ..] => (usize::from(*n), r),
        [] => return Err(bad),
    };
    let (value, rest) = rest.split_at_checked(len).ok_or(bad)?;
    Ok((u16::from_be_bytes([*t0, *t1]), value, rest))
}

/// DGI 8001 for a new SD: decrypt under this SD's session, hand over, mark PERSONALIZED.
fn sd_keys(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    session: &Session,
    target: &Aid,
    cmd: &CommandApdu,
    structure: u8,
) -> Result<Vec<u8>, StatusWord> {
    if structure != 0x01 {
        return Err(StatusWord::WRONG_DATA);
    }
    let (tag, value, rest) = dgi(&cmd.data)?;
    if tag != DGI_SD_KEYS {
        return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
    }
    if !rest.is_empty() {
        return Err(StatusWord::WRONG_DATA);
    }
    let ty = value.get(1).copied().ok_or(StatusWord::WRONG_DATA)?;
    let keys = decode_key_set(session, sd.protocol, ty, value)?;
    let handover = CommandApdu::new(HANDOVER.0, HANDOVER.1, 0x00, 0x81)
        .with_data(state::encode_slot(&keys)?.to_vec());
    let answer = ctx.deliver(target, &handover)?;
    let mut g = state::global(ctx)?;
    if let Some((slot, mut entry)) = state::find(&g, target.as_bytes())?
        && cmd.p1 & 0x80 != 0
    {
        entry.state = SD_PERSONALIZED;
        state::put_entry(&mut g, slot, &entry)?;
    }
    Ok(answer)
}

/// STORE DATA to the SD itself: the ISD's IIN and CIN.
fn own_data(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    cmd: &CommandApdu,
    encrypted: bool,
    structure: u8,
) -> Result<Vec<u8>, StatusWord> {
    if sd.supplementary {
        return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
    }
    if encrypted || structure != 0x02 {
        return Err(StatusWord::WRONG_DATA);
    }
    let g = state::global(ctx)?;
    let identity = state::identity(&g)?;
    let (mut iin, mut cin) = (identity.iin, identity.cin);
    let mut rest = cmd.data.as_slice();
    while let [t0, r @ ..] = rest {
        let (tag, r) = if t0 & 0x1F == 0x1F {
            let (&t1, r) = r.split_first().ok_or(StatusWord::WRONG_DATA)?;
            (u16::from_be_bytes([*t0, t1]), r)
        } else {
            (u16::from(*t0), r)
        };
        let (&n, r) = r.split_first().ok_or(StatusWord::WRONG_DATA)?;
        let (value, r) = r
            .split_at_checked(usize::from(n))
            .ok_or(StatusWord::WRONG_DATA)?;
        match tag {
            0x42 => iin = value.to_vec(),
            0x45 => cin = value.to_vec(),
            _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        }
        rest = r;
    }
    if !rest.is_empty() || cmd.data.is_empty() {
        return Err(StatusWord::WRONG_DATA);
    }
    let cplc: [u8; state::CPLC_LEN] = identity
        .cplc
        .as_slice()
        .try_into()
        .map_err(|_| StatusWord::UNKNOWN)?;
    let bytes = state::encode_identity(&identity.kdd, &iin, &cin, &cplc)?;
    state::global(ctx)?.write(G_IDENTITY, 0, &bytes)?;
    Ok(Vec::new())
}

/// An SD receiving its keys from its parent (`Applet::process_data`): the handover command
/// of the module docs. The key type must suit the SD's protocol (`6A80`).
pub(crate) fn receive_keys(
    ctx: &mut Context<'_>,
    protocol: Protocol,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    if (cmd.cla, cmd.ins) != HANDOVER || cmd.p1 != 0x00 || cmd.p2 != 0x81 {
        return Err(StatusWord::INS_NOT_SUPPORTED);
    }
    let bad = StatusWord::WRONG_DATA;
    let [version, ty, len, keys @ ..] = cmd.data.as_slice() else {
        return Err(bad);
    };
    if *ty != key_type_for(protocol) || keys.len() != 3 * 32 {
        return Err(bad);
    }
    let n = usize::from(*len);
    let k = |i: usize| keys.get(i * 32..i * 32 + n).ok_or(bad);
    let set = state::key_set(*version, *ty, [k(0)?, k(1)?, k(2)?]).ok_or(bad)?;
    let present = state::key_slots(ctx)?
        .iter()
        .flatten()
        .any(|s| s.version == *version);
    let replace = if present { *version } else { 0 };
    store_key_set(ctx, replace, &set)
}
