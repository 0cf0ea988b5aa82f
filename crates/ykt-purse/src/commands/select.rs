//! SELECT of the application (FCI) and the ISO 7816-4 file commands (e-purse.md §1, §2).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Context, Selected};

use crate::commands::store_data::NOT_PERSONALISED_SELECT;
use crate::files::{EF15_LEN, SFI_EF15};
use crate::profile::PurseProfile;
use crate::state::{AppStatus, Lifecycle, OBJ_STATUS};

/// Appends a BER-TLV with a one-byte-or-`81` length (every FCI field here is under 256 bytes).
fn put_tlv(out: &mut Vec<u8>, tag: &[u8], value: &[u8]) {
    out.extend_from_slice(tag);
    // Values here are at most a few dozen bytes; `81 xx` covers up to 255 for safety.
    let len = value.len().min(0xFF) as u8;
    if len >= 0x80 {
        out.push(0x81);
    }
    out.push(len);
    out.extend_from_slice(value);
}

/// The FCI: `6F { 84 <AID>, A5 { 9F08 <version>, 9F0C <EF15> } }` (e-purse.md §1); without
/// `9F0C` before personalisation.
pub(crate) fn fci(aid: &Aid, version: u8, ef15: Option<&[u8]>) -> Vec<u8> {
    let mut a5 = Vec::with_capacity(40);
    put_tlv(&mut a5, &[0x9F, 0x08], &[version]);
    if let Some(ef15) = ef15 {
        put_tlv(&mut a5, &[0x9F, 0x0C], ef15);
    }
    let mut inner = Vec::with_capacity(60);
    put_tlv(&mut inner, &[0x84], aid.as_bytes());
    put_tlv(&mut inner, &[0xA5], &a5);
    let mut out = Vec::with_capacity(64);
    put_tlv(&mut out, &[0x6F], &inner);
    out
}

/// SELECT by AID. Active: FCI + `9000`; temporarily blocked: FCI + `6A81`; permanently blocked:
/// FCI + `9303`; card blocked: refused with `6A81` (L). Not personalised yet: the FCI without
/// EF15 + `6283` ([`NOT_PERSONALISED_SELECT`], L).
// e-purse.md §1; docs/purse-dgi.md
pub(crate) fn select(
    ctx: &mut Context<'_>,
    aid: &Aid,
    profile: &PurseProfile,
) -> Result<Selected, StatusWord> {
    if !ctx.exists(OBJ_STATUS) {
        return Ok(Selected {
            fci: fci(aid, profile.application_version, None),
            sw: NOT_PERSONALISED_SELECT,
        });
    }
    let status = AppStatus::load(ctx)?;
    let sw = match status.lifecycle {
        Lifecycle::Active => StatusWord::SUCCESS,
        Lifecycle::TemporarilyBlocked => StatusWord::FUNCTION_NOT_SUPPORTED,
        Lifecycle::PermanentlyBlocked => StatusWord::APPLICATION_PERMANENTLY_LOCKED,
        Lifecycle::CardBlocked => return Err(StatusWord::FUNCTION_NOT_SUPPORTED),
    };
    let ef15 = ctx.files().read_binary(SFI_EF15, 0, EF15_LEN)?;
    Ok(Selected {
        fci: fci(aid, profile.application_version, Some(&ef15)),
        sw,
    })
}

/// File commands with secure messaging (CLA `04`): the runtime answers the plain forms (SELECT by
/// FID, READ BINARY/RECORD, and the refused UPDATE/APPEND) before the applet sees them. No file of
/// this applet is updatable from outside (e-purse.md §2: the card writes EF18, DEBIT writes
/// EF1A/EF1E), and secure-messaging reads are not offered, so these get `6982`.
// e-purse.md §2, §4.10
pub(crate) fn file_command(
    ctx: &mut Context<'_>,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    ctx.files()
        .process(cmd)
        .unwrap_or(Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED))
}
