//! Checkers of the SE e-purse items (conformance.md §4.1).

use ykt_apdu::CommandApdu;
use ykt_apdu::tlv;
use ykt_crypto::purse::{self, PurseAlgorithm, Sm4Rules};
use ykt_purse::{EP_AID, KeyUsage};
use ykt_terminal::commands;
use ykt_terminal::tac::purchase_mac1_input;

use super::{
    Done, KEY_INDEX, LOAD_DATETIME, PURCHASE_DATETIME, SeHarness, TERMINAL, expect_sw, read_binary,
    read_record,
};
use crate::params::Params;
use crate::target::vector54;
use crate::transcript::hex;
use crate::verdict::{Stop, ensure};

fn h(s: &str) -> Vec<u8> {
    crate::transcript::unhex(s)
}

mod composite;
mod files;
mod lifecycle;
mod load;
mod purchase;
mod security;

pub(super) use composite::*;
pub(super) use files::*;
pub(super) use lifecycle::*;
pub(super) use load::*;
pub(super) use purchase::*;
pub(super) use security::*;

fn check_record(r: &[u8], done: &Done, what: &str) -> Result<(), Stop> {
    ensure(r.len() == 23, || {
        format!("{what}: EF18 record has {} bytes, not 23", r.len())
    })?;
    let counter = u16::from_be_bytes([r[0], r[1]]);
    let amount = u32::from_be_bytes([r[5], r[6], r[7], r[8]]);
    let dt = if done.transaction_type == commands::transaction_type::LOAD {
        LOAD_DATETIME
    } else {
        PURCHASE_DATETIME
    };
    ensure(
        counter == done.counter
            && amount == done.amount
            && r[9] == done.transaction_type
            && r[10..16] == TERMINAL
            && r[16..23] == dt,
        || {
            format!(
                "{what}: EF18 record {} does not show counter {:04X}, amount {}, type {:02X}, terminal {}, date-time {}",
                hex(r),
                done.counter,
                done.amount,
                done.transaction_type,
                hex(&TERMINAL),
                hex(&dt)
            )
        },
    )
}

fn expect_alg(alg: &PurseAlgorithm, want: &str) -> Result<(), Stop> {
    let ok = matches!(
        (alg, want),
        (PurseAlgorithm::Tdes, "3des") | (PurseAlgorithm::Sm4(_), "sm4")
    );
    ensure(ok, || {
        format!(
            "the card announced algorithm id {:02X}, the item checks {want}",
            alg.algorithm_id()
        )
    })
}

/// Expected values of the e-purse brief's §8 worked example on a fresh test card.
struct Section8 {
    name: &'static str,
    load_mac1: &'static str,
    load_tac: &'static str,
    purchase_mac1: &'static str,
    purchase_mac2: &'static str,
    purchase_tac: &'static str,
}

const SECTION8_3DES: Section8 = Section8 {
    name: "§8.1/§8.2",
    load_mac1: "4E903E9F",
    load_tac: "643614FE",
    purchase_mac1: "5878A361",
    purchase_mac2: "2F0250C6",
    purchase_tac: "787BD517",
};
const SECTION8_3DES_COMPOSITE: Section8 = Section8 {
    name: "§8.1/§8.2 composite",
    purchase_mac1: "D619B285",
    purchase_tac: "3812A1E8",
    ..SECTION8_3DES
};
const SECTION8_SM4: Section8 = Section8 {
    name: "§8.3",
    load_mac1: "3033E121",
    load_tac: "EA50903C",
    purchase_mac1: "316D3563",
    purchase_mac2: "9DF2C9ED",
    purchase_tac: "3E66EC34",
};

/// On a fresh §8 test card (balance 0, counter 0, first random `1A2B3C4D`: the simulator, or
/// `ykt se serve` without a state file) the brief's worked example must reproduce byte for
/// byte: the load of 100.00, then (`purchase` = `Some(composite)`) the purchase of 2.00. On any
/// other card this does nothing. The caller's own relative checks follow either way.
fn section8(s: &mut SeHarness<'_>, purchase: Option<bool>, sm4: bool) -> Result<String, Stop> {
    s.select()?;
    if s.balance()? != 0 {
        return Ok(String::new());
    }
    let load = s.load(10_000)?;
    if load.random != [0x1A, 0x2B, 0x3C, 0x4D] || load.counter != 0 {
        return Ok(String::new());
    }
    let v = match (sm4, purchase == Some(true)) {
        (false, false) => &SECTION8_3DES,
        (false, true) => &SECTION8_3DES_COMPOSITE,
        (true, _) => &SECTION8_SM4,
    };
    ensure(
        load.mac1 == h(v.load_mac1)[..] && load.tac == h(v.load_tac)[..],
        || {
            format!(
                "{} load: MAC1 {} TAC {}, the brief has {} / {}",
                v.name,
                hex(&load.mac1),
                hex(&load.tac),
                v.load_mac1,
                v.load_tac
            )
        },
    )?;
    let Some(composite) = purchase else {
        return Ok(format!("; fresh card: {} load reproduced", v.name));
    };
    let done = if composite {
        s.composite(200, &[])?
    } else {
        s.purchase(200)?
    };
    ensure(
        done.mac1 == h(v.purchase_mac1)[..]
            && done.mac2 == h(v.purchase_mac2)[..]
            && done.tac == h(v.purchase_tac)[..],
        || {
            format!(
                "{} purchase: MAC1 {} MAC2 {} TAC {}, the brief has {} / {} / {}",
                v.name,
                hex(&done.mac1),
                hex(&done.mac2),
                hex(&done.tac),
                v.purchase_mac1,
                v.purchase_mac2,
                v.purchase_tac
            )
        },
    )?;
    Ok(format!(
        "; fresh card: {} load and purchase reproduced byte for byte",
        v.name
    ))
}

/// The load of SE-EP-LOAD-001 and SE-EP-SM4-001, with every state check.
fn load_checked(s: &mut SeHarness<'_>, amount: u32, alg: &str) -> Result<(Done, String), Stop> {
    s.select()?;
    s.ensure_room(amount)?;
    let before = s.snapshot()?;
    let done = s.load(amount)?;
    expect_alg(&s.purse_algorithm()?, alg)?;
    ensure(
        done.balance_before == before.balance && done.counter == before.online,
        || "INITIALIZE FOR LOAD showed another balance or counter than the card had".into(),
    )?;
    let after = s.snapshot()?;
    ensure(after.balance == before.balance + amount, || {
        format!(
            "balance {} after loading {amount} onto {}",
            after.balance, before.balance
        )
    })?;
    ensure(
        after.online == before.online.wrapping_add(1) && after.offline == before.offline,
        || {
            format!(
                "counters online {}→{}, offline {}→{}; expected online +1 only",
                before.online, after.online, before.offline, after.offline
            )
        },
    )?;
    let rec = after
        .ef18
        .first()
        .ok_or_else(|| Stop::Fail("no EF18 record after the load".into()))?;
    check_record(rec, &done, "load")?;
    let mut proof = done.mac2.to_vec();
    proof.extend_from_slice(&done.tac);
    ensure(after.prove == Some((0x9000, proof)), || {
        "GET TRANSACTION PROVE does not give the load's MAC2 and TAC".into()
    })?;
    let fresh = before.balance == 0 && before.online == 0;
    Ok((done, format!("fresh card: {fresh}")))
}

/// The purchase of SE-EP-PUR-001 / SM4-001 with every state check.
fn purchase_checked(s: &mut SeHarness<'_>, amount: u32) -> Result<Done, Stop> {
    s.select()?;
    s.ensure_balance(amount)?;
    let before = s.snapshot()?;
    let done = s.purchase(amount)?;
    ensure(
        done.balance_before == before.balance && done.counter == before.offline,
        || "INITIALIZE FOR PURCHASE showed another balance or counter than the card had".into(),
    )?;
    let after = s.snapshot()?;
    ensure(after.balance == before.balance - amount, || {
        format!(
            "balance {} after spending {amount} of {}",
            after.balance, before.balance
        )
    })?;
    ensure(
        after.offline == before.offline.wrapping_add(1) && after.online == before.online,
        || {
            format!(
                "counters online {}→{}, offline {}→{}; expected offline +1 only",
                before.online, after.online, before.offline, after.offline
            )
        },
    )?;
    let rec = after
        .ef18
        .first()
        .ok_or_else(|| Stop::Fail("no EF18 record after the purchase".into()))?;
    check_record(rec, &done, "purchase")?;
    Ok(done)
}

/// An EF1A composite record (e-purse.md §2) with record identifier `id`, state `state` and the
/// transaction serial `serial`.
pub(crate) fn ef1a_record(id: u8, state: u8, serial: u16) -> Vec<u8> {
    let mut r = vec![0u8; 128];
    r[0] = 0x27;
    r[1] = id;
    r[2] = 0x7D;
    r[3] = 0x01;
    r[4] = 0x01;
    r[12..14].copy_from_slice(&serial.to_be_bytes());
    r[14] = state;
    r
}

/// An EF1E history record (e-purse.md §2) of type `kind` with amount `amount`.
pub(crate) fn ef1e_record(kind: u8, amount: u32) -> Vec<u8> {
    let mut r = vec![0u8; 48];
    r[0] = kind;
    r[3..9].copy_from_slice(&TERMINAL);
    r[9] = 0x01;
    r[17..21].copy_from_slice(&amount.to_be_bytes());
    r
}
