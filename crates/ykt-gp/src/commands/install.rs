//! INSTALL (`80 E6`, GP §11.5; tsm-gp.md §3.1): for load, install, make selectable,
//! personalization, extradition and registry update.
//!
//! ```text
//! P1 02 for load          ELF AID · SD AID · LFDB hash · load params · token  (five LVs)
//! P1 04 / 0C install      ELF AID · module AID · instance AID · privileges · params · token
//! P1 08 make selectable   00 · 00 · instance AID · privileges · params · token
//! P1 10 extradition       destination SD AID · 00 · application AID · 00 · params · token
//! P1 20 personalization   00 · 00 · application AID · 00 · 00 · 00
//! P1 40 registry update   SD AID · 00 · application AID · privileges · params · token
//! ```
//!
//! P1 b8 ("more commands follow") is ignored; P2 must be `00`. The install parameters field
//! must hold the `C9` tag (empty `C9 00` allowed); its value is the new instance's install
//! parameters in the card's library. For a security domain (privilege byte 1 `80`) the
//! optional `C9 { 81 02 <SCP> <i> }` picks its secure channel (SCP `02`, `03`, or `04` for the
//! SM4 channel — L, tsm-gp.md §3.9), otherwise it runs the parent's protocol.
//! Response: `00` (no receipt: receipts come with delegated management).
//!
//! Tokens (tsm-gp.md §4, `dm`): the ISD and an SSD with Authorized Management take no token
//! (one present: `6982`); an SSD with Delegated Management must send one for every variant but
//! personalization, verified with the card's token key (KVN 70) over `P1 ‖ P2 ‖ Lc ‖ data`, and
//! gets a receipt back when the card has a receipt key (KVN 71). Every refusal changes nothing.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Context};

use super::{Sd, aid, answer, checked_data, lv, managed};
use crate::dm::ReceiptContext;
use crate::isd::{SSD_KIND, Volatile};
use crate::life_cycle::{ApplicationState, CardState, LOAD_FILE_LOADED};
use crate::state::{self, Entry, EntryKind};

/// P1 bits.
pub const FOR_LOAD: u8 = 0x02;
/// P1: for install.
pub const FOR_INSTALL: u8 = 0x04;
/// P1: for make selectable.
pub const FOR_MAKE_SELECTABLE: u8 = 0x08;
/// P1: for extradition.
pub const FOR_EXTRADITION: u8 = 0x10;
/// P1: for personalization.
pub const FOR_PERSONALIZATION: u8 = 0x20;
/// P1: for registry update.
pub const FOR_REGISTRY_UPDATE: u8 = 0x40;

/// The LV fields of an INSTALL data field: exactly `n` of them (five for load, six for the
/// others; trailing bytes or fewer fields: `6A80`), padded with empty fields to six.
fn fields(data: &[u8], n: usize) -> Result<[&[u8]; 6], StatusWord> {
    let mut out = [&[][..]; 6];
    let mut rest = data;
    for f in out.iter_mut().take(n) {
        let (v, r) = lv(rest)?;
        *f = v;
        rest = r;
    }
    if !rest.is_empty() {
        return Err(StatusWord::WRONG_DATA);
    }
    Ok(out)
}

/// Privileges: 1 or 3 bytes (GP §11.1.2), else `6A80`.
fn privileges(b: &[u8]) -> Result<[u8; 3], StatusWord> {
    match *b {
        [p] => Ok([p, 0, 0]),
        [a, b, c] => Ok([a, b, c]),
        _ => Err(StatusWord::WRONG_DATA),
    }
}

/// The value of `C9` in an install parameters field (`6A80` when absent or malformed).
fn c9(params: &[u8]) -> Result<&[u8], StatusWord> {
    let mut rest = params;
    while let [tag, r @ ..] = rest {
        let (v, r) = lv(r)?;
        if *tag == 0xC9 {
            return Ok(v);
        }
        rest = r;
    }
    Err(StatusWord::WRONG_DATA)
}

/// INSTALL.
pub(crate) fn install(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    card_state: CardState,
    volatile: &mut Volatile,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    if cmd.p2 != 0x00 {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    if card_state == CardState::CardLocked {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    let p1 = cmd.p1 & 0x7F;
    if p1 == FOR_PERSONALIZATION {
        let f = fields(&cmd.data, 6)?;
        return for_personalization(ctx, sd, volatile, &f);
    }
    if !matches!(
        p1,
        FOR_LOAD | FOR_INSTALL | 0x0C | FOR_MAKE_SELECTABLE | FOR_EXTRADITION | FOR_REGISTRY_UPDATE
    ) {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    let g = state::global(ctx)?;
    let mode = sd.management(&g)?;
    let signed = checked_data(&g, mode, cmd)?;
    let f = fields(signed, if p1 == FOR_LOAD { 4 } else { 5 })?;
    let aids = match p1 {
        FOR_LOAD => super::load::for_load(ctx, sd, volatile, &f)?,
        FOR_INSTALL | 0x0C => for_install(ctx, sd, &f, p1 & FOR_MAKE_SELECTABLE != 0)?,
        FOR_MAKE_SELECTABLE => make_selectable(ctx, sd, &f)?,
        FOR_EXTRADITION => extradition(ctx, sd, &f)?,
        _ => registry_update(ctx, sd, &f)?,
    };
    let [a, b] = [aids[0].as_bytes(), aids[1].as_bytes()];
    let context = match p1 {
        FOR_LOAD => ReceiptContext::Load {
            elf_aid: a,
            sd_aid: b,
        },
        FOR_INSTALL | 0x0C => ReceiptContext::Install {
            elf_aid: a,
            instance_aid: b,
        },
        FOR_MAKE_SELECTABLE => ReceiptContext::MakeSelectable { instance_aid: b },
        FOR_EXTRADITION => ReceiptContext::Extradition {
            sd_aid: a,
            app_aid: b,
        },
        _ => ReceiptContext::RegistryUpdate {
            sd_aid: a,
            app_aid: b,
        },
    };
    answer(ctx, mode, &context)
}

/// The two AIDs of a receipt's context (tsm-gp.md §4): load file and SD, load file and
/// instance, instance (twice, make selectable), destination SD and application, SD and
/// application.
pub(crate) type ContextAids = [Aid; 2];

/// `[for install]` and `[for install and make selectable]` (GP §11.5.2.3.2).
fn for_install(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    f: &[&[u8]; 6],
    selectable: bool,
) -> Result<ContextAids, StatusWord> {
    let elf = aid(f[0])?;
    let module = aid(f[1])?;
    let instance = aid(f[2])?;
    let privileges = privileges(f[3])?;
    let params = c9(f[4])?;
    let g = state::global(ctx)?;
    // The load file must be on the card and the module in it.
    match state::find(&g, elf.as_bytes())? {
        Some((_, e)) if e.kind == EntryKind::LoadFile && e.state == LOAD_FILE_LOADED => {}
        _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
    }
    let kind = state::packages(&g)?
        .into_iter()
        .find(|p| p.elf == elf)
        .and_then(|p| p.modules.into_iter().find(|(m, _)| *m == module))
        .map(|(_, k)| k)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    if state::find(&g, instance.as_bytes())?.is_some() {
        return Err(StatusWord::WRONG_DATA);
    }
    let is_sd = privileges[0] & 0x80 != 0;
    if is_sd != (kind == SSD_KIND) {
        return Err(StatusWord::WRONG_DATA);
    }
    if is_sd {
        let params = sd_params(sd, params)?;
        ctx.install_manager_instance(&kind, &instance, &params, selectable)
            .map_err(managed)?;
    } else {
        ctx.install_instance(&kind, &instance, params, selectable)
            .map_err(managed)?;
    }
    let state = if selectable {
        ApplicationState::SELECTABLE.0
    } else {
        ApplicationState::INSTALLED.0
    };
    let entry = Entry {
        kind: if is_sd {
            EntryKind::SecurityDomain
        } else {
            EntryKind::Application
        },
        aid: instance.clone(),
        state,
        privileges,
        elf: Some(elf.clone()),
        sd: Some(sd.aid.clone()),
    };
    state::add_entry(&mut state::global(ctx)?, &entry)?;
    Ok([elf, instance])
}

/// A new SD's library parameters (`IsdFactory`): family · i · minimum level, from
/// `C9 { 81 02 <SCP> <i> }` or the parent's protocol.
fn sd_params(parent: &Sd<'_>, c9: &[u8]) -> Result<Vec<u8>, StatusWord> {
    let (mut family, mut i) = match parent.protocol {
        ykt_scp::Protocol::Scp02(_) => (0x02, parent.protocol.i()),
        ykt_scp::Protocol::Scp03(_) => (0x03, parent.protocol.i()),
        ykt_scp::Protocol::Sm4(_) => (0x04, parent.protocol.i()),
    };
    let mut rest = c9;
    while let [tag, r @ ..] = rest {
        let (v, r) = lv(r)?;
        if *tag == 0x81 {
            let [f, ii] = *v else {
                return Err(StatusWord::WRONG_DATA);
            };
            family = f;
            i = ii;
        }
        rest = r;
    }
    let ok = match family {
        0x02 => ykt_scp::Protocol::scp02(i).is_ok(),
        0x03 => ykt_scp::Protocol::scp03(i).is_ok(),
        0x04 => ykt_scp::Protocol::sm4(i).is_ok(),
        _ => false,
    };
    if !ok {
        return Err(StatusWord::WRONG_DATA);
    }
    Ok(alloc::vec![
        family,
        i,
        ykt_scp::SecurityLevel::C_MAC.to_byte()
    ])
}

/// The registry entry of an application or SD this SD manages (`6A88` otherwise).
fn managed_entry(g: &Context<'_>, sd: &Sd<'_>, aid: &Aid) -> Result<(usize, Entry), StatusWord> {
    match state::find(g, aid.as_bytes())? {
        Some((slot, e)) if e.kind != EntryKind::LoadFile && sd.owns(&e) => Ok((slot, e)),
        _ => Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
    }
}

/// `[for make selectable]` (GP §11.5.2.3.3): INSTALLED → SELECTABLE.
fn make_selectable(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    f: &[&[u8]; 6],
) -> Result<ContextAids, StatusWord> {
    if !f[0].is_empty() || !f[1].is_empty() {
        return Err(StatusWord::WRONG_DATA);
    }
    let instance = aid(f[2])?;
    let g = state::global(ctx)?;
    let (slot, mut entry) = managed_entry(&g, sd, &instance)?;
    if entry.state != ApplicationState::INSTALLED.0 {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    if !f[3].is_empty() {
        entry.privileges = privileges(f[3])?;
    }
    entry.state = ApplicationState::SELECTABLE.0;
    ctx.set_selectable(&instance, true).map_err(managed)?;
    state::put_entry(&mut state::global(ctx)?, slot, &entry)?;
    Ok([instance.clone(), instance])
}

/// `[for personalization]` (GP §11.5.2.3.4): STORE DATA to this SD goes to the application
/// until another command than STORE DATA arrives.
fn for_personalization(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    volatile: &mut Volatile,
    f: &[&[u8]; 6],
) -> Result<Vec<u8>, StatusWord> {
    if f.iter().enumerate().any(|(i, v)| i != 2 && !v.is_empty()) {
        return Err(StatusWord::WRONG_DATA);
    }
    let app = aid(f[2])?;
    let g = state::global(ctx)?;
    let (_, entry) = managed_entry(&g, sd, &app)?;
    if ApplicationState(entry.state).is_locked() {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    volatile.personalizing = Some(app);
    Ok(alloc::vec![0x00])
}

/// `[for extradition]` (GP §11.5.2.3.5): the application (or load file) moves to another SD.
fn extradition(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    f: &[&[u8]; 6],
) -> Result<ContextAids, StatusWord> {
    if !f[1].is_empty() || !f[3].is_empty() {
        return Err(StatusWord::WRONG_DATA);
    }
    let dest = aid(f[0])?;
    let app = aid(f[2])?;
    let mut g = state::global(ctx)?;
    let dest_is_sd = dest.as_bytes() == crate::isd::ISD_AID
        || matches!(state::find(&g, dest.as_bytes())?, Some((_, e)) if e.kind == EntryKind::SecurityDomain);
    if !dest_is_sd || dest == app {
        return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
    }
    let (slot, mut entry) = match state::find(&g, app.as_bytes())? {
        Some((slot, e)) if sd.owns(&e) => (slot, e),
        _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
    };
    entry.sd = Some(dest.clone());
    state::put_entry(&mut g, slot, &entry)?;
    Ok([dest, app])
}

/// `[for registry update]` (GP §11.5.2.3.7): new privileges, and a new associated SD when the
/// first field names one.
fn registry_update(
    ctx: &mut Context<'_>,
    sd: &Sd<'_>,
    f: &[&[u8]; 6],
) -> Result<ContextAids, StatusWord> {
    if !f[1].is_empty() {
        return Err(StatusWord::WRONG_DATA);
    }
    let app = aid(f[2])?;
    let mut g = state::global(ctx)?;
    let (slot, mut entry) = managed_entry(&g, sd, &app)?;
    if !f[3].is_empty() {
        let p = privileges(f[3])?;
        // The SD bit is what the instance is; it cannot change.
        if (p[0] ^ entry.privileges[0]) & 0x80 != 0 {
            return Err(StatusWord::WRONG_DATA);
        }
        entry.privileges = p;
    }
    if !f[0].is_empty() {
        let dest = aid(f[0])?;
        let ok = dest.as_bytes() == crate::isd::ISD_AID
            || matches!(state::find(&g, dest.as_bytes())?, Some((_, e)) if e.kind == EntryKind::SecurityDomain);
        if !ok || dest == app {
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        entry.sd = Some(dest);
    }
    let owner = entry.sd.clone().unwrap_or_else(|| sd.aid.clone());
    state::put_entry(&mut g, slot, &entry)?;
    Ok([owner, app])
}
