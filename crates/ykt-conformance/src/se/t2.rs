//! Checkers of the second ticket type items (conformance.md §4.2; all L: Annex A is not public).

use ykt_apdu::CommandApdu;
use ykt_purse::{EP_AID, SECOND_TICKET_AID};
use ykt_terminal::commands;

use super::{SeHarness, expect_sw};
use crate::params::Params;
use crate::transcript::hex;
use crate::verdict::{Stop, ensure};

/// Balance limit of the second ticket (units), unless the item says otherwise (L).
const T2_MAX: u32 = ykt_purse::PurseProfile::SECOND_TICKET.max_balance;

fn use_t2(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<(), Stop> {
    s.use_aid(&SECOND_TICKET_AID);
    s.set_max_balance(p.u32("max_balance", T2_MAX)?);
    Ok(())
}

fn use_ep(s: &mut SeHarness<'_>) {
    s.use_aid(&EP_AID);
    s.set_max_balance(super::DEFAULT_MAX_BALANCE);
}

/// SE-T2-SEL-001.
pub(super) fn select(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let (ep, _) = s.select()?;
    use_t2(s, p)?;
    let (t2, fci) = s.select()?;
    let df = ykt_apdu::tlv::find(&fci, 0x84)
        .ok_or_else(|| Stop::Fail("the second ticket's FCI lacks 84".into()))?;
    ensure(df.value == SECOND_TICKET_AID, || {
        format!("FCI 84 is {}", hex(&df.value))
    })?;
    let ef15 = s.ok(
        &super::read_binary(0x15),
        "READ BINARY EF15 of the second ticket",
    )?;
    ensure(ef15.len() == 30 && ef15[8] == 0x02, || {
        format!(
            "second ticket EF15 {} is not 30 bytes with type 02",
            hex(&ef15)
        )
    })?;
    ensure(t2.asn != ep.asn, || {
        "the second ticket shares the e-purse's ASN".into()
    })?;
    let b = s.balance()?;
    ensure(b <= T2_MAX, || {
        format!("second ticket balance {b} above its limit")
    })?;
    // Discovery through the RID: first occurrence is the e-purse, next the second ticket.
    let rid = &EP_AID[..5];
    let first = s.ok(
        &commands::select(rid),
        "SELECT of the RID, first occurrence",
    )?;
    let next = s.ok(
        &CommandApdu::new(0x00, 0xA4, 0x04, 0x02)
            .with_data(rid.to_vec())
            .with_le(256),
        "SELECT of the RID, next occurrence",
    )?;
    let name = |fci: &[u8]| ykt_apdu::tlv::find(fci, 0x84).map(|t| t.value);
    ensure(
        name(&first).as_deref() == Some(&EP_AID[..])
            && name(&next).as_deref() == Some(&SECOND_TICKET_AID[..]),
        || "the RID's first and next occurrences are not the e-purse and the second ticket".into(),
    )?;
    Ok(format!(
        "A000000632010106 selectable with its own ASN and EF15; balance {b} units; RID next occurrence finds it"
    ))
}

/// SE-T2-PUR-001.
pub(super) fn purchase(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let units = p.u32("units", 1)?;
    s.select()?;
    let ep_before = s.balance()?;
    use_t2(s, p)?;
    s.select()?;
    s.ensure_balance(units)?;
    let before = s.snapshot()?;
    let done = s.purchase(units)?;
    let after = s.snapshot()?;
    ensure(after.balance == before.balance - units, || {
        format!(
            "second ticket {} → {}, expected −{units}",
            before.balance, after.balance
        )
    })?;
    ensure(after.offline == before.offline.wrapping_add(1), || {
        "the second ticket's offline counter did not step".into()
    })?;
    use_ep(s);
    s.select()?;
    let ep_after = s.balance()?;
    ensure(ep_after == ep_before, || {
        format!("e-purse balance {ep_before} → {ep_after} after a second-ticket ride")
    })?;
    Ok(format!(
        "−{units} unit(s) on the second ticket, TAC {} verified with its own keys; e-purse unchanged",
        hex(&done.tac)
    ))
}

/// SE-T2-PUR-002.
pub(super) fn exhausted_fallback(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    use_t2(s, p)?;
    s.select()?;
    let b = s.balance()?;
    if b > 0 {
        s.note(format!("using up the second ticket's {b} units"));
        s.purchase(b)?;
    }
    let r = s.send(&commands::initialize_for_purchase(
        false,
        super::KEY_INDEX,
        1,
        &super::TERMINAL,
    ))?;
    expect_sw(&r, 0x9401, "a ride on the exhausted second ticket")?;
    use_ep(s);
    s.select()?;
    s.ensure_balance(200)?;
    s.purchase(200)?;
    Ok(
        "exhausted second ticket refused with 9401; the e-purse purchase that follows is 9000"
            .into(),
    )
}

/// SE-T2-REC-001.
pub(super) fn record_ticket_type(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let t2_type = p.u8("ticket_type", ykt_purse::TICKET_TYPE_SECOND)?;
    s.select()?;
    s.ensure_balance(10)?;
    s.purchase(10)?;
    let ep = s.records(0x18)?;
    use_t2(s, p)?;
    s.select()?;
    s.ensure_balance(1)?;
    s.purchase(1)?;
    let t2 = s.records(0x18)?;
    let ep1 = ep
        .first()
        .ok_or_else(|| Stop::Fail("no e-purse record".into()))?;
    let t21 = t2
        .first()
        .ok_or_else(|| Stop::Fail("no second-ticket record".into()))?;
    ensure(
        ep1.len() == 23 && ep1[2] == ykt_purse::TICKET_TYPE_EPURSE,
        || format!("e-purse record {} does not show ticket type 00", hex(ep1)),
    )?;
    ensure(t21.len() == 23 && t21[2] == t2_type, || {
        format!(
            "second-ticket record {} does not show ticket type {t2_type:02X}",
            hex(t21)
        )
    })?;
    Ok(format!(
        "EF18 byte 2: e-purse 00, second ticket {t2_type:02X}"
    ))
}
