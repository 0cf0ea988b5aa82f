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
    let clean: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    clean
        .chunks(2)
        .map(|c| {
            let hi = (c[0] as char).to_digit(16).unwrap_or(0);
            let lo = c
                .get(1)
                .and_then(|x| (*x as char).to_digit(16))
                .unwrap_or(0);
            (hi * 16 + lo) as u8
        })
        .collect()
}

/// Checks the FCI layout `6F { 84 AID, A5 { 9F08, 9F0C (30 B) } }` and returns the 9F0C value.
fn check_fci(fci: &[u8], aid: &[u8]) -> Result<Vec<u8>, Stop> {
    let top = tlv::parse_all(fci).map_err(|e| Stop::Fail(format!("FCI is not BER-TLV: {e}")))?;
    ensure(top.len() == 1 && top[0].tag == tlv::Tag::new(0x6F), || {
        "FCI is not one 6F template".into()
    })?;
    let df = tlv::find(fci, 0x84).ok_or_else(|| Stop::Fail("FCI lacks 84 (DF name)".into()))?;
    ensure(df.value == aid, || {
        format!("FCI 84 is {}, expected {}", hex(&df.value), hex(aid))
    })?;
    ensure(tlv::find(fci, 0xA5).is_some(), || "FCI lacks A5".into())?;
    ensure(tlv::find(fci, 0x9F08).is_some(), || {
        "FCI lacks 9F08 (application version)".into()
    })?;
    let dd = tlv::find(fci, 0x9F0C).ok_or_else(|| Stop::Fail("FCI lacks 9F0C".into()))?;
    ensure(dd.value.len() == 30, || {
        format!("9F0C has {} bytes, not 30", dd.value.len())
    })?;
    Ok(dd.value)
}

/// SE-EP-SEL-001.
pub(super) fn select(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let partial = h(p.str("partial", "A0000006320101")?);
    let (_, fci) = s.select()?;
    let dd = check_fci(&fci, &EP_AID)?;
    let ef15 = s.ok(&read_binary(0x15), "READ BINARY EF15")?;
    ensure(dd == ef15, || {
        format!("9F0C {} differs from EF15 {}", hex(&dd), hex(&ef15))
    })?;
    let fci2 = s.ok(&commands::select(&partial), "SELECT by partial name")?;
    check_fci(&fci2, &EP_AID)?;
    Ok(format!(
        "full and partial ({}) name select the e-purse; FCI 6F/84/A5/9F08/9F0C, 9F0C = EF15",
        hex(&partial)
    ))
}

/// SE-EP-SEL-002.
pub(super) fn select_unknown(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let unknown = h(p.str("aid", "A000000632FFFFFF")?);
    s.select()?;
    let b = s.balance()?;
    let r = s.send(&commands::select(&unknown))?;
    expect_sw(&r, 0x6A82, "SELECT of an unknown AID")?;
    let b2 = s.balance()?;
    ensure(b == b2, || {
        "GET BALANCE differs after the failed SELECT".into()
    })?;
    Ok("6A82; the e-purse stays selected (GET BALANCE 9000)".into())
}

fn is_bcd(b: &[u8]) -> bool {
    b.iter().all(|x| x >> 4 <= 9 && x & 0x0F <= 9)
}

fn valid_date(d: &[u8]) -> bool {
    if d.len() != 4 || !is_bcd(d) {
        return false;
    }
    let month = (d[2] >> 4) * 10 + (d[2] & 0x0F);
    let day = (d[3] >> 4) * 10 + (d[3] & 0x0F);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// SE-EP-FIL-001.
pub(super) fn read_binary_files(s: &mut SeHarness<'_>) -> Result<String, Stop> {
    s.select()?;
    for (sfi, len) in [(0x15u8, 30usize), (0x16, 55), (0x17, 60)] {
        let d = s.ok(&read_binary(sfi), &format!("READ BINARY SFI {sfi:02X}"))?;
        ensure(d.len() == len, || {
            format!("EF{sfi:02X} has {} bytes, expected {len}", d.len())
        })?;
        if sfi == 0x15 {
            ensure(d[8] == 0x02, || {
                format!("EF15[8] (application type) is {:02X}, expected 02", d[8])
            })?;
            ensure(is_bcd(&d[10..20]), || "the ASN is not BCD".into())?;
            ensure(valid_date(&d[20..24]) && valid_date(&d[24..28]), || {
                format!(
                    "start/expiry dates {} / {} are not valid BCD dates",
                    hex(&d[20..24]),
                    hex(&d[24..28])
                )
            })?;
            ensure(d[20..24] <= d[24..28], || "start date after expiry".into())?;
        }
    }
    Ok("EF15/16/17 read by SFI: 30/55/60 bytes; EF15[8]=02; ASN and dates valid BCD".into())
}

/// SE-EP-FIL-001 (registered name).
pub(super) fn read_files(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    read_binary_files(s)
}

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

/// SE-EP-FIL-002.
pub(super) fn read_records(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let depth = p.u8("depth", ykt_purse::files::EF18_RECORDS)?;
    let n = u32::from(depth) + 1;
    s.select()?;
    s.ensure_balance(n)?;
    let mut done = Vec::new();
    for _ in 0..n {
        done.push(s.purchase(1)?);
    }
    let records = s.records(0x18)?;
    ensure(records.len() == usize::from(depth), || {
        format!("EF18 holds {} records, expected {depth}", records.len())
    })?;
    for (i, r) in records.iter().enumerate() {
        let d = &done[done.len() - 1 - i];
        check_record(r, d, &format!("record {}", i + 1))?;
    }
    let r = s.send(&read_record(0x18, depth + 1))?;
    expect_sw(&r, 0x6A83, "READ RECORD past the end")?;
    Ok(format!(
        "after {n} purchases: record 1 newest, {depth} records of 23 bytes, oldest overwritten, 6A83 past the end"
    ))
}

/// SE-EP-BAL-001.
pub(super) fn balance(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 100)?;
    s.select()?;
    s.ensure_room(amount)?;
    let b0 = s.balance()?;
    s.load(amount)?;
    let b1 = s.balance()?;
    ensure(b1 == b0 + amount, || {
        format!("GET BALANCE {b1} after loading {amount} onto {b0}")
    })?;
    let init = s.init_purchase(0, false)?;
    ensure(init.balance == b1, || {
        format!("INITIALIZE shows {} but GET BALANCE {b1}", init.balance)
    })?;
    Ok(format!(
        "80 5C 00 02 04 → 9000 + 4 bytes; {b0} + {amount} = {b1}, as INITIALIZE shows"
    ))
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

/// SE-EP-LOAD-001.
pub(super) fn load_ok(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 10_000)?;
    let extra = section8(s, None, false)?;
    load_checked(s, amount, "3des")?;
    Ok(format!(
        "MAC1 and TAC verified; balance +{amount}; online counter +1; EF18 type 02; PROVE = MAC2‖TAC{extra}"
    ))
}

/// SE-EP-LOAD-002.
pub(super) fn load_bad_mac2(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 1000)?;
    let sw = p.u16("sw", 0x9302)?;
    s.select()?;
    s.ensure_room(amount)?;
    let before = s.snapshot()?;
    let init = s.init_load(amount)?;
    let mut mac2 = s.load_mac2(&init);
    mac2[3] ^= 0x01;
    let r = s.send(&commands::credit_for_load(&LOAD_DATETIME, &mac2))?;
    expect_sw(&r, sw, "CREDIT FOR LOAD with a wrong MAC2")?;
    ensure(r.data.is_empty(), || "the refusal carries data".into())?;
    s.expect_unchanged(&before, "the refused CREDIT")?;
    Ok(format!(
        "{sw:04X}; balance, counters, EF18 and proof data unchanged"
    ))
}

/// SE-EP-LOAD-003.
pub(super) fn credit_without_init(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 1000)?;
    s.select()?;
    s.ensure_room(amount)?;
    let before = s.snapshot()?;
    s.select()?;
    let r = s.send(&commands::credit_for_load(&LOAD_DATETIME, &[0; 4]))?;
    expect_sw(&r, 0x6985, "CREDIT FOR LOAD without INITIALIZE")?;
    // INITIALIZE, then another command, then CREDIT with the right MAC2.
    let init = s.init_load(amount)?;
    let mac2 = s.load_mac2(&init);
    s.balance()?;
    let r = s.send(&commands::credit_for_load(&LOAD_DATETIME, &mac2))?;
    expect_sw(&r, 0x6985, "CREDIT FOR LOAD after GET BALANCE")?;
    s.expect_unchanged(&before, "the refused CREDITs")?;
    Ok("6985 without INITIALIZE and after an intervening GET BALANCE (even with a good MAC2); no change".into())
}

/// SE-EP-LOAD-004.
pub(super) fn load_over_limit(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let max = p.u32("max_balance", s.max_balance())?;
    let sw = p.u16("sw", ykt_purse::status::LOAD_LIMIT_EXCEEDED.0)?;
    s.select()?;
    let before = s.snapshot()?;
    let amount = max.saturating_sub(before.balance).saturating_add(1);
    s.select()?;
    let r = s.send(&commands::initialize_for_load(KEY_INDEX, amount, &TERMINAL))?;
    ensure(r.sw.0 != 0x9000, || {
        format!(
            "a load of {amount} onto {} (limit {max}) was accepted",
            before.balance
        )
    })?;
    expect_sw(&r, sw, "INITIALIZE FOR LOAD beyond the limit")?;
    s.expect_unchanged(&before, "the refused load")?;
    Ok(format!(
        "a load to {} (limit {max}) refused with {sw:04X}; no change",
        before.balance as u64 + u64::from(amount)
    ))
}

/// SE-EP-LOAD-005.
pub(super) fn unknown_key_index(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let index = p.u8("key_index", 0x7E)?;
    s.select()?;
    let before = s.snapshot()?;
    s.select()?;
    let r = s.send(&commands::initialize_for_load(index, 100, &TERMINAL))?;
    expect_sw(&r, 0x9403, "INITIALIZE FOR LOAD with an unknown key index")?;
    let r = s.send(&commands::initialize_for_purchase(
        false, index, 0, &TERMINAL,
    ))?;
    expect_sw(
        &r,
        0x9403,
        "INITIALIZE FOR PURCHASE with an unknown key index",
    )?;
    s.expect_unchanged(&before, "the refusals")?;
    Ok(format!(
        "key index {index:02X}: 9403 for load and purchase; no change"
    ))
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

/// SE-EP-PUR-001.
pub(super) fn purchase_ok(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 200)?;
    let extra = section8(s, Some(false), false)?;
    purchase_checked(s, amount)?;
    expect_alg(&s.purse_algorithm()?, "3des")?;
    Ok(format!(
        "MAC2 and TAC verified; balance −{amount}; offline counter +1; EF18 type 06{extra}"
    ))
}

/// SE-EP-PUR-001a: the published vector of e-purse.md §5.4 on a card keyed with its DPK.
pub(super) fn purchase_vector54(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    s.select()?;
    let d = s.ok(
        &commands::initialize_for_purchase(false, KEY_INDEX, vector54::AMOUNT, &vector54::TERMINAL),
        "INITIALIZE FOR PURCHASE",
    )?;
    ensure(d.len() == 15, || {
        "INITIALIZE response is not 15 bytes".into()
    })?;
    ensure(d[11..15] == vector54::RANDOM && d[4..6] == [0, 0], || {
        "the fixture did not give random 11223344 / counter 0000".into()
    })?;
    let alg = PurseAlgorithm::Tdes;
    let dpk = purse::PurseKey::from_bytes(vector54::DPK);
    let sk = purse::session_key(
        &alg,
        &dpk,
        &purse::purchase_session_input(vector54::RANDOM, 0, vector54::TTSN),
    );
    let mac1 = purse::session_mac(
        &alg,
        &sk,
        &purchase_mac1_input(
            vector54::AMOUNT,
            commands::transaction_type::PURCHASE,
            &vector54::TERMINAL,
            &vector54::DATETIME,
        ),
    );
    ensure(mac1 == vector54::MAC1, || {
        format!("harness MAC1 {} is not the published F15CAB75", hex(&mac1))
    })?;
    let r = s.ok(
        &commands::debit_for_purchase(vector54::TTSN, &vector54::DATETIME, &mac1),
        "DEBIT FOR PURCHASE",
    )?;
    ensure(r.len() == 8 && r[4..8] == vector54::MAC2, || {
        format!(
            "DEBIT gave {}, expected MAC2 56988A13 at bytes 4..8",
            hex(&r)
        )
    })?;
    Ok("published §5.4 vector: MAC1 F15CAB75 accepted, card MAC2 56988A13".into())
}

/// SE-EP-PUR-002.
pub(super) fn purchase_bad_mac1(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 100)?;
    s.select()?;
    s.ensure_balance(amount)?;
    let before = s.snapshot()?;
    let init = s.init_purchase(amount, false)?;
    let ttsn = s.take_ttsn();
    let (_, mut mac1) = s.purchase_mac1(&init, ttsn)?;
    mac1[0] ^= 0x80;
    let r = s.send(&commands::debit_for_purchase(
        ttsn,
        &PURCHASE_DATETIME,
        &mac1,
    ))?;
    expect_sw(&r, 0x9302, "DEBIT with a wrong MAC1")?;
    ensure(r.data.is_empty(), || "the refusal carries data".into())?;
    s.expect_unchanged(&before, "the refused DEBIT")?;
    Ok("9302; no change".into())
}

/// SE-EP-PUR-003.
pub(super) fn purchase_insufficient(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    s.select()?;
    let before = s.snapshot()?;
    let amount = before.balance.saturating_add(1);
    s.select()?;
    let r = s.send(&commands::initialize_for_purchase(
        false, KEY_INDEX, amount, &TERMINAL,
    ))?;
    expect_sw(&r, 0x9401, "INITIALIZE FOR PURCHASE above the balance")?;
    s.expect_unchanged(&before, "the refusal")?;
    Ok(format!(
        "amount {amount} > balance {}: 9401 at INITIALIZE; no change",
        before.balance
    ))
}

/// SE-EP-PUR-004.
pub(super) fn purchase_zero_and_all(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    s.select()?;
    s.ensure_balance(1)?;
    let zero = s.purchase(0)?;
    let b = s.balance()?;
    ensure(b == zero.balance_before, || {
        "a purchase of 0 changed the balance".into()
    })?;
    let all = s.purchase(b)?;
    let after = s.balance()?;
    ensure(after == 0, || {
        format!("balance {after} after spending all {b}")
    })?;
    ensure(all.amount == b, || "amount mismatch".into())?;
    Ok(format!(
        "amount 0 and amount = balance ({b}) both 9000 with TAC verified; balance 0"
    ))
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

/// SE-EP-CMP-001.
pub(super) fn composite_ok(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 200)?;
    let id = p.u8("record", 0x02)?;
    let extra = section8(s, Some(true), false)?;
    s.select()?;
    s.ensure_balance(amount)?;
    let before = s.snapshot()?;
    let rec = ef1a_record(id, 0x01, before.offline);
    let hist = ef1e_record(0x03, amount);
    let done = s.composite(
        amount,
        &[(id, 0xD0, rec.clone()), (0x00, 0xF0, hist.clone())],
    )?;
    ensure(done.transaction_type == 0x09, || "not type 09".into())?;
    let after = s.snapshot()?;
    ensure(after.balance == before.balance - amount, || {
        "balance not debited".into()
    })?;
    let stored = after
        .ef1a
        .iter()
        .find(|r| r.get(1) == Some(&id))
        .ok_or_else(|| Stop::Fail(format!("no EF1A record with identifier {id:02X}")))?;
    ensure(*stored == rec, || {
        format!(
            "EF1A record {id:02X} is {}, not the cached bytes",
            hex(stored)
        )
    })?;
    ensure(after.ef1e.first() == Some(&hist), || {
        "EF1E record 1 is not the cached record".into()
    })?;
    check_record(
        after.ef18.first().map(Vec::as_slice).unwrap_or(&[]),
        &done,
        "composite",
    )?;
    Ok(format!(
        "80 50 03 02 → 80 DC (EF1A, EF1E) → 80 54: TAC (type 09) verified; EF1A and EF1E hold the cached bytes{extra}"
    ))
}

/// SE-EP-CMP-002.
pub(super) fn composite_debit_fails(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 100)?;
    s.select()?;
    s.ensure_balance(amount)?;
    let before = s.snapshot()?;
    let init = s.init_purchase(amount, true)?;
    let rec = ef1a_record(0x02, 0x01, 0xEEEE);
    s.ok(
        &commands::update_capp_data_cache(0x02, 0xD0, &rec),
        "UPDATE CAPP DATA CACHE",
    )?;
    s.ok(
        &commands::update_capp_data_cache(0x00, 0xF0, &ef1e_record(0x03, amount)),
        "UPDATE CAPP DATA CACHE",
    )?;
    let ttsn = s.take_ttsn();
    let (_, mut mac1) = s.purchase_mac1(&init, ttsn)?;
    mac1[1] ^= 0x01;
    let r = s.send(&commands::debit_for_purchase(
        ttsn,
        &PURCHASE_DATETIME,
        &mac1,
    ))?;
    expect_sw(&r, 0x9302, "composite DEBIT with a wrong MAC1")?;
    s.expect_unchanged(&before, "the failed composite DEBIT")?;
    Ok(
        "DEBIT refused 9302 after two cached records; EF1A/EF1E and everything else unchanged"
            .into(),
    )
}

/// SE-EP-CMP-003.
pub(super) fn capp_cache_outside_session(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
    let sw = p.u16("sw", 0x6985)?;
    s.select()?;
    s.ensure_balance(1)?;
    let before = s.snapshot()?;
    s.select()?;
    let rec = ef1a_record(0x02, 0x02, 0xDDDD);
    let r = s.send(&commands::update_capp_data_cache(0x02, 0xD0, &rec))?;
    expect_sw(&r, sw, "UPDATE CAPP DATA CACHE with no session")?;
    s.init_purchase(1, false)?;
    let r = s.send(&commands::update_capp_data_cache(0x02, 0xD0, &rec))?;
    expect_sw(&r, sw, "UPDATE CAPP DATA CACHE after a plain INITIALIZE")?;
    s.expect_unchanged(&before, "the refused cache commands")?;
    Ok(format!(
        "{sw:04X} outside a session and after a plain INITIALIZE; EF1A unchanged"
    ))
}

/// SE-EP-CTR-001.
pub(super) fn counters_mixed(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let ops = p.u32("ops", 100)?;
    s.select()?;
    let loads = ops.div_ceil(4);
    s.ensure_room(loads * 200)?;
    s.ensure_balance(ops * 20)?;
    let (on0, off0) = s.counters()?;
    s.set_quiet(true);
    let (mut n_load, mut n_purchase) = (0u16, 0u16);
    for i in 0..ops {
        match i % 5 {
            0 => {
                s.load(200)?;
                n_load += 1;
            }
            1 => {
                s.purchase(50)?;
                n_purchase += 1;
            }
            2 => {
                let rec = ef1a_record(0x01, 0x01, i as u16);
                s.composite(30, &[(0x01, 0xD0, rec)])?;
                n_purchase += 1;
            }
            3 => {
                // A refused DEBIT must not count.
                let init = s.init_purchase(10, false)?;
                let ttsn = s.take_ttsn();
                let (_, mut mac1) = s.purchase_mac1(&init, ttsn)?;
                mac1[2] ^= 0x10;
                let r = s.send(&commands::debit_for_purchase(
                    ttsn,
                    &PURCHASE_DATETIME,
                    &mac1,
                ))?;
                expect_sw(&r, 0x9302, "DEBIT with a wrong MAC1")?;
            }
            _ => {
                // A refused CREDIT must not count.
                let init = s.init_load(10)?;
                let mut mac2 = s.load_mac2(&init);
                mac2[0] ^= 0x01;
                let r = s.send(&commands::credit_for_load(&LOAD_DATETIME, &mac2))?;
                expect_sw(&r, 0x9302, "CREDIT with a wrong MAC2")?;
            }
        }
    }
    s.set_quiet(false);
    s.note(format!(
        "{ops} operations: {n_load} loads, {n_purchase} purchases, the rest refused"
    ));
    let (on1, off1) = s.counters()?;
    ensure(
        on1 == on0.wrapping_add(n_load) && off1 == off0.wrapping_add(n_purchase),
        || {
            format!(
                "online {on0}→{on1} (expected +{n_load}), offline {off0}→{off1} (expected +{n_purchase})"
            )
        },
    )?;
    Ok(format!(
        "{ops} mixed operations: online +{n_load}, offline +{n_purchase}; refused ones not counted"
    ))
}

/// SE-EP-CTR-002 (fixture `counters-fffe`).
pub(super) fn counter_at_max(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    s.select()?;
    let (on, off) = s.counters()?;
    ensure(on == 0xFFFE && off == 0xFFFE, || {
        format!("the fixture has counters {on:04X}/{off:04X}, not FFFE")
    })?;
    s.load(100)?;
    s.purchase(100)?;
    let before = s.snapshot()?;
    s.select()?;
    let r = s.send(&commands::initialize_for_load(KEY_INDEX, 100, &TERMINAL))?;
    expect_sw(&r, 0x9402, "INITIALIZE FOR LOAD at counter FFFF")?;
    let r = s.send(&commands::initialize_for_purchase(
        false, KEY_INDEX, 100, &TERMINAL,
    ))?;
    expect_sw(&r, 0x9402, "INITIALIZE FOR PURCHASE at counter FFFF")?;
    s.expect_unchanged(&before, "the refusals")?;
    Ok("FFFE → FFFF by one load and one purchase; then both refused with 9402; no change".into())
}

/// SE-EP-PRV-001.
pub(super) fn prove_ok(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    s.select()?;
    s.ensure_balance(300)?;
    let done = s.purchase(100)?;
    let proof = s.ok(
        &commands::get_transaction_prove(0x06, done.counter),
        "GET TRANSACTION PROVE",
    )?;
    let mut expected = done.mac2.to_vec();
    expected.extend_from_slice(&done.tac);
    ensure(proof == expected, || {
        format!(
            "PROVE gave {}, DEBIT gave MAC2‖TAC {}",
            hex(&proof),
            hex(&expected)
        )
    })?;
    let rec = ef1a_record(0x01, 0x01, done.counter);
    let cmp = s.composite(100, &[(0x01, 0xD0, rec)])?;
    let proof = s.ok(
        &commands::get_transaction_prove(0x09, cmp.counter),
        "GET TRANSACTION PROVE (composite)",
    )?;
    let mut expected = cmp.mac2.to_vec();
    expected.extend_from_slice(&cmp.tac);
    ensure(proof == expected, || {
        format!(
            "PROVE 09 gave {}, DEBIT gave {}",
            hex(&proof),
            hex(&expected)
        )
    })?;
    Ok("PROVE (06 and 09, pre-increment counter) = MAC2‖TAC of the last DEBIT".into())
}

/// SE-EP-PRV-002.
pub(super) fn prove_mismatch(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let sw = p.u16("sw", ykt_purse::status::PROVE_NOT_AVAILABLE.0)?;
    s.select()?;
    s.ensure_balance(100)?;
    let done = s.purchase(50)?;
    for (ty, ctr, what) in [
        (0x06, done.counter.wrapping_add(1), "counter + 1"),
        (0x06, done.counter.wrapping_add(7), "another counter"),
        (0x02, done.counter, "type 02 after a purchase"),
        (0x09, done.counter, "type 09 after a plain purchase"),
    ] {
        let r = s.send(&commands::get_transaction_prove(ty, ctr))?;
        expect_sw(&r, sw, &format!("PROVE with {what}"))?;
        ensure(r.data.is_empty(), || {
            format!("PROVE with {what} returned data")
        })?;
    }
    Ok(format!("wrong counter or type: {sw:04X} and no data"))
}

/// VERIFY with `pin`.
fn verify(s: &mut SeHarness<'_>, pin: &[u8]) -> Result<u16, Stop> {
    s.sw(&commands::verify(pin))
}

/// RELOAD PIN `80 5E 00 00 Lc <PIN> <MAC>`, MAC = TAC rule with the DRPK (L, ykt-purse).
fn reload_pin(s: &mut SeHarness<'_>, alg: &PurseAlgorithm, pin: &[u8]) -> Result<u16, Stop> {
    let drpk = s.card_key(KeyUsage::PinReload, alg)?;
    let mac = purse::tac(alg, &drpk, pin);
    let mut data = pin.to_vec();
    data.extend_from_slice(&mac);
    s.sw(&CommandApdu::new(0x80, 0x5E, 0x00, 0x00).with_data(data))
}

/// SE-EP-PIN-001.
pub(super) fn pin_verify(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let pin = h(p.str("pin", "123456")?);
    let wrong = h(p.str("wrong", "999999")?);
    s.select()?;
    let alg = s.purse_algorithm()?;
    s.select()?;
    let sw = verify(s, &pin)?;
    ensure(sw == 0x9000, || {
        format!("VERIFY with the right PIN answered {sw:04X}")
    })?;
    let mut last = 16u16;
    let mut steps = Vec::new();
    loop {
        let sw = verify(s, &wrong)?;
        steps.push(format!("{sw:04X}"));
        if sw == 0x6983 {
            break;
        }
        ensure(sw & 0xFFF0 == 0x63C0, || {
            format!("wrong PIN answered {sw:04X}")
        })?;
        let left = sw & 0x000F;
        ensure(left < last, || {
            format!("tries left did not decrease: {steps:?}")
        })?;
        ensure(steps.len() < 16, || "no 6983 after 15 wrong PINs".into())?;
        last = left;
    }
    ensure(last == 1 || steps.len() == 1, || {
        format!("the count did not reach 1 before 6983: {steps:?}")
    })?;
    let sw = verify(s, &pin)?;
    ensure(sw == 0x6983, || {
        format!("blocked PIN: right PIN answered {sw:04X}")
    })?;
    // Restore the sample (RELOAD PIN, L).
    let sw = reload_pin(s, &alg, &pin)?;
    if sw != 0x9000 || verify(s, &pin)? != 0x9000 {
        return Err(Stop::Inconclusive(format!(
            "checks passed, but the PIN could not be restored by RELOAD PIN ({sw:04X})"
        )));
    }
    Ok(format!(
        "9000, then {}; right PIN refused once blocked; restored by RELOAD PIN",
        steps.join(" ")
    ))
}

/// SE-EP-PIN-002.
pub(super) fn pin_change_reload(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let pin = h(p.str("pin", "123456")?);
    let new = h(p.str("new", "654321")?);
    s.select()?;
    let alg = s.purse_algorithm()?;
    s.select()?;
    let mut data = pin.clone();
    data.push(0xFF);
    data.extend_from_slice(&new);
    let sw = s.sw(&CommandApdu::new(0x80, 0x5E, 0x01, 0x00).with_data(data))?;
    ensure(sw == 0x9000, || format!("CHANGE PIN answered {sw:04X}"))?;
    ensure(verify(s, &new)? == 0x9000, || {
        "the new PIN does not verify".into()
    })?;
    let sw = verify(s, &pin)?;
    ensure(sw & 0xFFF0 == 0x63C0, || {
        format!("the old PIN answered {sw:04X}")
    })?;
    ensure(verify(s, &new)? == 0x9000, || {
        "the new PIN does not verify".into()
    })?;
    // RELOAD PIN back to the original.
    let sw = reload_pin(s, &alg, &pin)?;
    ensure(sw == 0x9000, || format!("RELOAD PIN answered {sw:04X}"))?;
    ensure(verify(s, &pin)? == 0x9000, || {
        "the reloaded PIN does not verify".into()
    })?;
    let sw = verify(s, &new)?;
    ensure(sw & 0xFFF0 == 0x63C0, || {
        format!("the replaced PIN answered {sw:04X}")
    })?;
    ensure(verify(s, &pin)? == 0x9000, || {
        "the reloaded PIN does not verify".into()
    })?;
    Ok("CHANGE PIN: new verifies, old fails; RELOAD PIN: reloaded verifies, replaced fails".into())
}

/// SE-EP-BLK-001.
pub(super) fn block(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    s.select()?;
    let alg = s.purse_algorithm()?;
    s.ensure_balance(10)?;
    s.select()?;
    let sw = s.maintenance(&alg, [0x84, 0x1E, 0x00, 0x00], false)?;
    ensure(sw == 0x9000, || {
        format!("APPLICATION BLOCK answered {sw:04X}")
    })?;
    let r = s.send(&commands::select(&EP_AID))?;
    let select_sw = r.sw.0;
    let init_sw = s.sw(&commands::initialize_for_purchase(
        false, KEY_INDEX, 1, &TERMINAL,
    ))?;
    // Restore the sample before judging.
    let unblock = s.maintenance(&alg, [0x84, 0x18, 0x00, 0x00], false)?;
    expect_sw(&r, 0x6A81, "SELECT of the blocked application")?;
    ensure(init_sw == 0x6A81, || {
        format!("INITIALIZE FOR PURCHASE on the blocked application answered {init_sw:04X}")
    })?;
    if unblock != 0x9000 {
        return Err(Stop::Inconclusive(format!(
            "checks passed, but APPLICATION UNBLOCK (L) answered {unblock:04X}: the sample stays blocked"
        )));
    }
    Ok(format!(
        "BLOCK 9000; SELECT {select_sw:04X}; purchase refused 6A81; unblocked afterwards"
    ))
}

/// SE-EP-BLK-002.
pub(super) fn unblock_and_bad_mac(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let bad_sw = p.u16("sw", ykt_purse::status::SECURE_MESSAGING_MAC_INVALID.0)?;
    s.select()?;
    let alg = s.purse_algorithm()?;
    s.ensure_balance(10)?;
    s.select()?;
    let sw = s.maintenance(&alg, [0x84, 0x1E, 0x00, 0x00], true)?;
    expect_sw(
        &ykt_apdu::ResponseApdu::status(ykt_apdu::StatusWord(sw)),
        bad_sw,
        "BLOCK with a bad MAC",
    )?;
    let r = s.send(&commands::select(&EP_AID))?;
    expect_sw(&r, 0x9000, "SELECT after the refused BLOCK")?;
    s.purchase(1)?;
    s.select()?;
    let sw = s.maintenance(&alg, [0x84, 0x1E, 0x00, 0x00], false)?;
    ensure(sw == 0x9000, || {
        format!("APPLICATION BLOCK answered {sw:04X}")
    })?;
    s.send(&commands::select(&EP_AID))?;
    let sw = s.maintenance(&alg, [0x84, 0x18, 0x00, 0x00], false)?;
    ensure(sw == 0x9000, || {
        format!("APPLICATION UNBLOCK answered {sw:04X}")
    })?;
    let r = s.send(&commands::select(&EP_AID))?;
    expect_sw(&r, 0x9000, "SELECT after UNBLOCK")?;
    s.purchase(1)?;
    Ok(format!(
        "bad MAC: {bad_sw:04X}, application still active; UNBLOCK restores purchases"
    ))
}

/// SE-EP-ERR-001.
pub(super) fn bad_commands(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    s.select()?;
    let before = s.snapshot()?;
    s.select()?;
    let cases: [(&str, &str, u16); 6] = [
        (
            "INITIALIZE FOR LOAD, Lc 0A",
            "805000020A0100002710112233445510",
            0x6700,
        ),
        ("GET BALANCE with data", "805C0002020000", 0x6700),
        ("CLA A0", "A05C000204", 0x6E00),
        ("GET BALANCE with CLA 00", "005C000204", 0x6E00),
        ("INS FE", "80FE000000", 0x6D00),
        ("GET BALANCE P2 03", "805C000304", 0x6A86),
    ];
    for (what, cmd, sw) in cases {
        let r = s.send_bytes(&h(cmd))?;
        expect_sw(&r, sw, what)?;
    }
    s.expect_unchanged(&before, "the malformed commands")?;
    Ok("6700 / 6E00 / 6D00 / 6A86 as expected; no change".into())
}

/// SE-EP-SM4-001 (fixture `sm4`).
pub(super) fn sm4_load_purchase(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let alg_id = p.u8("algorithm_id", Sm4Rules::BRIEF.algorithm_id)?;
    let extra = section8(s, Some(false), true)?;
    s.select()?;
    let alg = s.purse_algorithm()?;
    ensure(alg.algorithm_id() == alg_id, || {
        format!(
            "algorithm id {:02X}, expected {alg_id:02X}",
            alg.algorithm_id()
        )
    })?;
    load_checked(s, 10_000, "sm4")?;
    purchase_checked(s, 200)?;
    Ok(format!(
        "algorithm id {alg_id:02X}: load and purchase MAC/TAC verified under the brief's SM4 rules{extra}"
    ))
}
