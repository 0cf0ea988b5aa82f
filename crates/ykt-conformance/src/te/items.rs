//! Checkers of the acceptance-terminal items (conformance.md §4.10).

use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_purse::testing::{TEST_MASTER_DPK, TEST_MASTER_DTK};
use ykt_terminal::purchase::{CappRecord, PurchaseRecord};
use ykt_terminal::tac::{load_tac_input, purchase_mac1_input, purchase_tac_input, verify_tac};
use ykt_terminal::{DriveError, commands};

use super::{Action, DATETIME, Rule, TERMINAL, TeHarness, error_kind};
use crate::params::Params;
use crate::se::ep::ef1a_record;
use crate::transcript::hex;
use crate::verdict::{Stop, ensure};

fn algorithm(id: u8) -> Result<PurseAlgorithm, Stop> {
    PurseAlgorithm::from_algorithm_id(id, Sm4Rules::BRIEF)
        .ok_or_else(|| Stop::Inconclusive(format!("unknown algorithm id {id:02X}")))
}

/// The back office's TAC check of a purchase record.
pub(super) fn purchase_tac_ok(r: &PurchaseRecord) -> Result<bool, Stop> {
    let input = purchase_tac_input(
        r.amount,
        r.transaction_type,
        &r.terminal_id,
        r.ttsn,
        &r.datetime,
    );
    Ok(verify_tac(
        &algorithm(r.algorithm_id)?,
        &PurseKey::from_bytes(TEST_MASTER_DTK),
        &r.card.diversifier(),
        &input,
        &r.tac,
    ))
}

fn top_up(t: &mut TeHarness, amount: u32) -> Result<(), Stop> {
    t.inspect(|s| {
        s.select()?;
        s.ensure_balance(amount)
    })
}

/// The lower tester's own MAC1 check of the last DEBIT the terminal sent: recomputed from the
/// INITIALIZE response it passed on and the §8 master purchase key.
fn lt_checks_mac1(t: &TeHarness, init_resp: &[u8], amount: u32, tx: u8) -> Result<(), Stop> {
    let debit = t
        .sent()
        .iter()
        .rev()
        .find(|c| c.ins == 0x54)
        .ok_or_else(|| Stop::Fail("the terminal sent no DEBIT".into()))?;
    ensure(debit.data.len() == 15, || {
        "DEBIT data is not 15 bytes".into()
    })?;
    let ttsn = u32::from_be_bytes([debit.data[0], debit.data[1], debit.data[2], debit.data[3]]);
    let mut dt = [0u8; 7];
    dt.copy_from_slice(&debit.data[4..11]);
    let alg = algorithm(init_resp[10])?;
    let div = ykt_purse::testing::TEST_ASN.diversifier();
    let dpk = ykt_crypto::purse::diversify(&alg, &PurseKey::from_bytes(TEST_MASTER_DPK), &div);
    let mut random = [0u8; 4];
    random.copy_from_slice(&init_resp[11..15]);
    let counter = u16::from_be_bytes([init_resp[4], init_resp[5]]);
    let sk = ykt_crypto::purse::session_key(
        &alg,
        &dpk,
        &ykt_crypto::purse::purchase_session_input(random, counter, ttsn),
    );
    let mac1 =
        ykt_crypto::purse::session_mac(&alg, &sk, &purchase_mac1_input(amount, tx, &TERMINAL, &dt));
    ensure(mac1[..] == debit.data[11..15], || {
        format!(
            "lower tester: the terminal's MAC1 {} is not {}",
            hex(&debit.data[11..15]),
            hex(&mac1)
        )
    })
}

/// TE-EP-PUR-001.
pub(super) fn purchase_ok(t: &mut TeHarness, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 200)?;
    top_up(t, amount)?;
    let before = t.inspect(|s| s.balance())?;
    let record = t
        .purchase(amount, None)
        .map_err(|e| Stop::Fail(format!("the purchase did not complete: {e}")))?;
    let init = t
        .last_answer(0x50)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Stop::Fail("the terminal sent no INITIALIZE".into()))?;
    ensure(init.len() == 17, || {
        "the INITIALIZE answer is not 15 bytes + SW".into()
    })?;
    lt_checks_mac1(t, &init, amount, commands::transaction_type::PURCHASE)?;
    ensure(t.sent_count(0x54) == 1, || {
        "the terminal did not send exactly one DEBIT".into()
    })?;
    let mac2 = record.mac2;
    ensure(t.mac2_was_checked(&mac2), || {
        "the terminal did not have its PSAM check MAC2 (80 72)".into()
    })?;
    ensure(purchase_tac_ok(&record)?, || {
        format!("the record's TAC {} does not verify", hex(&record.tac))
    })?;
    let after = t.inspect(|s| s.balance())?;
    ensure(
        record.balance_before == before && after == before - amount && record.amount == amount,
        || {
            format!(
                "card balance {before} → {after}, record says {} − {}",
                record.balance_before, record.amount
            )
        },
    )?;
    ensure(
        record.terminal_id == TERMINAL && record.datetime == DATETIME,
        || "the record's terminal or date-time is not the terminal's".into(),
    )?;
    Ok(format!(
        "purchase completed: MAC1 verified by the lower tester, 80 72 called, record TAC {} verifies, balance {before} → {after}",
        hex(&record.tac)
    ))
}

fn action(p: Params<'_>) -> Result<Action, Stop> {
    Ok(match p.str("action", "")? {
        "corrupt" => Action::Corrupt {
            index: p.u32("index", 0)? as usize,
            mask: p.u8("mask", 0xFF)?,
        },
        "truncate" => Action::Truncate(p.u32("len", 0)? as usize),
        "replace" => Action::Replace(crate::transcript::unhex(p.str("response", "")?)),
        "refuse" => Action::Refuse(p.u16("sw", 0x6F00)?),
        "remove-after" => Action::RemoveAfter,
        "remove-before" => Action::RemoveBefore,
        other => {
            return Err(Stop::Inconclusive(format!(
                "catalogue parameter action = {other:?} is not a lower-tester action"
            )));
        }
    })
}

/// TE-EP-PUR-002..008, TE-EP-CMP-002, TE-EP-LOAD-002..005: the lower tester spoils one card
/// answer; the terminal must stop with the expected refusal, record nothing as good, and send
/// no command with `forbid` INS after it.
pub(super) fn refuses_bad_answer(t: &mut TeHarness, p: Params<'_>) -> Result<String, Stop> {
    let flow = p.str("flow", "purchase")?.to_owned();
    let ins = p.u8("ins", 0x54)?;
    let expect = p.str("expect", "")?.to_owned();
    let forbid = p.u8("forbid", 0)?;
    let amount = p.u32("amount", 100)?;
    top_up(t, amount)?;
    let before = t.inspect(|s| s.snapshot())?;
    t.script(Rule {
        ins,
        nth: 1,
        action: action(p)?,
    });
    let result = match flow.as_str() {
        "purchase" => t.purchase(amount, None).map(|_| ()),
        "composite" => {
            let rec = CappRecord {
                p1: 0x02,
                p2: 0xD0,
                data: ef1a_record(0x02, 0x01, 1),
            };
            t.purchase(amount, Some(vec![rec])).map(|_| ())
        }
        "load" => t.load(amount).map(|_| ()),
        other => return Err(Stop::Inconclusive(format!("unknown flow {other:?}"))),
    };
    let err = match result {
        Ok(()) => {
            return Err(Stop::Fail(format!(
                "the terminal completed the {flow} although the card's answer was spoiled"
            )));
        }
        Err(e) => e,
    };
    let kind = error_kind(&err);
    ensure(kind == expect, || {
        format!("the terminal stopped with {kind} ({err}), expected {expect}")
    })?;
    if forbid != 0 {
        ensure(t.sent_count(forbid) == 0, || {
            format!("the terminal still sent INS {forbid:02X} after the bad answer")
        })?;
    }
    t.clear_script();
    t.retap()?;
    let after = t.inspect(|s| s.snapshot())?;
    let changed = before.diff(&after);
    let card_changed = if changed.is_empty() {
        "card unchanged".to_owned()
    } else {
        format!("card: {changed}")
    };
    Ok(format!(
        "terminal refused with {kind}: {err}; {}{card_changed}",
        if forbid != 0 {
            format!("no INS {forbid:02X} sent; ")
        } else {
            String::new()
        }
    ))
}

/// TE-EP-PUR-007: the card leaves the field after executing DEBIT. The terminal must not
/// report a completed purchase nor a plain refusal: the outcome is unknown (transport), which
/// is what grey-record recovery starts from.
pub(super) fn removed_after_debit(t: &mut TeHarness, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 150)?;
    top_up(t, amount)?;
    let before = t.inspect(|s| s.balance())?;
    t.script(Rule {
        ins: 0x54,
        nth: 1,
        action: Action::RemoveAfter,
    });
    let r = t.purchase(amount, None);
    let err = match r {
        Ok(_) => {
            return Err(Stop::Fail(
                "the terminal reported a completed purchase without the card's answer".into(),
            ));
        }
        Err(e) => e,
    };
    ensure(matches!(err, DriveError::Transport(_)), || {
        format!("the terminal reported {err}, not an unknown outcome")
    })?;
    t.clear_script();
    t.retap()?;
    let after = t.inspect(|s| {
        s.select()?;
        s.balance()
    })?;
    ensure(after == before - amount, || {
        format!("lower tester: the card should have debited ({before} → {after})")
    })?;
    Ok(format!(
        "card debited ({before} → {after}) but its answer lost: the terminal reports an unknown outcome, not success"
    ))
}

/// TE-EP-CMP-001: composite entry then exit; EF1A bytes and fare as expected.
pub(super) fn composite_entry_exit(t: &mut TeHarness, p: Params<'_>) -> Result<String, Stop> {
    let fare = p.u32("fare", 400)?;
    let max_fare = p.u32("max_fare", 800)?;
    top_up(t, max_fare)?;
    let before = t.inspect(|s| s.balance())?;
    let mut entry = ef1a_record(0x02, 0x01, 7);
    entry[53..57].copy_from_slice(&max_fare.to_be_bytes());
    let r1 = t
        .purchase(
            0,
            Some(vec![CappRecord {
                p1: 0x02,
                p2: 0xD0,
                data: entry.clone(),
            }]),
        )
        .map_err(|e| Stop::Fail(format!("entry did not complete: {e}")))?;
    let stored = t.inspect(|s| s.records(0x1A))?;
    ensure(stored.contains(&entry), || {
        "after entry, EF1A does not hold the entry record (state 01)".into()
    })?;
    let mut exit = entry.clone();
    exit[14] = 0x02;
    exit[96..100].copy_from_slice(&fare.to_be_bytes());
    let r2 = t
        .purchase(
            fare,
            Some(vec![CappRecord {
                p1: 0x02,
                p2: 0xD0,
                data: exit.clone(),
            }]),
        )
        .map_err(|e| Stop::Fail(format!("exit did not complete: {e}")))?;
    let stored = t.inspect(|s| s.records(0x1A))?;
    ensure(stored.contains(&exit), || {
        "after exit, EF1A does not hold the exit record (state 02)".into()
    })?;
    let after = t.inspect(|s| s.balance())?;
    ensure(after == before - fare, || {
        format!("balance {before} → {after}, fare {fare}")
    })?;
    for (what, r) in [("entry", &r1), ("exit", &r2)] {
        ensure(
            r.transaction_type == commands::transaction_type::COMPOSITE,
            || format!("{what} record is not type 09"),
        )?;
        ensure(purchase_tac_ok(r)?, || {
            format!("{what} TAC does not verify")
        })?;
    }
    Ok(format!(
        "entry (0, state 01, max fare {max_fare}) and exit (fare {fare}, state 02): EF1A as sent, balance {before} → {after}, both TACs verify"
    ))
}

/// TE-EP-LOAD-001.
pub(super) fn load_ok(t: &mut TeHarness, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 5_000)?;
    let before = t.inspect(|s| {
        s.select()?;
        s.balance()
    })?;
    let record = t
        .load(amount)
        .map_err(|e| Stop::Fail(format!("the load did not complete: {e}")))?;
    let input = load_tac_input(
        record.new_balance,
        record.online_counter,
        record.amount,
        commands::transaction_type::LOAD,
        &record.terminal_id,
        &record.datetime,
    );
    ensure(
        verify_tac(
            &algorithm(record.algorithm_id)?,
            &PurseKey::from_bytes(TEST_MASTER_DTK),
            &record.card.diversifier(),
            &input,
            &record.tac,
        ),
        || format!("the load TAC {} does not verify", hex(&record.tac)),
    )?;
    let after = t.inspect(|s| s.balance())?;
    ensure(
        after == before + amount && record.new_balance == after,
        || {
            format!(
                "balance {before} → {after}, record says {}",
                record.new_balance
            )
        },
    )?;
    Ok(format!(
        "load completed: host MAC1/MAC2, TAC {} verifies, balance {before} → {after}",
        hex(&record.tac)
    ))
}

/// TE-EP-REC-001: consecutive purchases give contiguous TTSNs and valid TACs.
pub(super) fn record_integrity(t: &mut TeHarness, p: Params<'_>) -> Result<String, Stop> {
    let n = p.u32("purchases", 3)?;
    top_up(t, n * 100)?;
    let first = t.next_ttsn();
    let mut records = Vec::new();
    for i in 0..n {
        let r = t
            .purchase(100, None)
            .map_err(|e| Stop::Fail(format!("purchase {} did not complete: {e}", i + 1)))?;
        records.push(r);
    }
    for (i, r) in records.iter().enumerate() {
        ensure(r.ttsn == first + i as u32, || {
            format!(
                "record {} has TTSN {:08X}, expected {:08X}",
                i + 1,
                r.ttsn,
                first + i as u32
            )
        })?;
        ensure(purchase_tac_ok(r)?, || {
            format!("record {} TAC does not verify", i + 1)
        })?;
        let mut tampered = r.clone();
        tampered.amount += 1;
        ensure(!purchase_tac_ok(&tampered)?, || {
            format!("record {}: a tampered amount still verifies", i + 1)
        })?;
        if i > 0 {
            ensure(
                r.offline_counter == records[i - 1].offline_counter + 1,
                || "card counters are not consecutive".into(),
            )?;
        }
    }
    ensure(t.next_ttsn() == first + n, || {
        "the PSAM's TTSN does not match the records".into()
    })?;
    Ok(format!(
        "{n} records: TTSN {first:08X}.. contiguous, TACs verify, a tampered amount is detected"
    ))
}
