//! Load items (conformance.md §4.1 LOAD).

use super::*;

/// SE-EP-LOAD-001.
pub(in crate::se) fn load_ok(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 10_000)?;
    let extra = section8(s, None, false)?;
    load_checked(s, amount, "3des")?;
    Ok(format!(
        "MAC1 and TAC verified; balance +{amount}; online counter +1; EF18 type 02; PROVE = MAC2‖TAC{extra}"
    ))
}

/// SE-EP-LOAD-002.
pub(in crate::se) fn load_bad_mac2(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
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
pub(in crate::se) fn credit_without_init(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
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
pub(in crate::se) fn load_over_limit(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
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
pub(in crate::se) fn unknown_key_index(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
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
