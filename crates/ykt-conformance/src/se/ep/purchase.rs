//! Purchase items (conformance.md §4.1 PUR).

use super::*;

/// SE-EP-PUR-001.
pub(in crate::se) fn purchase_ok(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 200)?;
    let extra = section8(s, Some(false), false)?;
    purchase_checked(s, amount)?;
    expect_alg(&s.purse_algorithm()?, "3des")?;
    Ok(format!(
        "MAC2 and TAC verified; balance −{amount}; offline counter +1; EF18 type 06{extra}"
    ))
}

/// SE-EP-PUR-001a: the published vector of e-purse.md §5.4 on a card keyed with its DPK.
pub(in crate::se) fn purchase_vector54(
    s: &mut SeHarness<'_>,
    _p: Params<'_>,
) -> Result<String, Stop> {
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
pub(in crate::se) fn purchase_bad_mac1(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
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
pub(in crate::se) fn purchase_insufficient(
    s: &mut SeHarness<'_>,
    _p: Params<'_>,
) -> Result<String, Stop> {
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
pub(in crate::se) fn purchase_zero_and_all(
    s: &mut SeHarness<'_>,
    _p: Params<'_>,
) -> Result<String, Stop> {
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
