//! Composite purchase, counters and transaction proof (conformance.md §4.1 CMP, CTR, PRV).

use super::*;

/// SE-EP-CMP-001.
pub(in crate::se) fn composite_ok(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
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
pub(in crate::se) fn composite_debit_fails(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
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
pub(in crate::se) fn capp_cache_outside_session(
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
pub(in crate::se) fn counters_mixed(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
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
pub(in crate::se) fn counter_at_max(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
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
pub(in crate::se) fn prove_ok(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
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
pub(in crate::se) fn prove_mismatch(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
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
