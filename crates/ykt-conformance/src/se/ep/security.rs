//! PIN, lifecycle, malformed commands and SM4 (conformance.md §4.1 PIN, BLK, ERR, SM4).

use super::*;

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
pub(in crate::se) fn pin_verify(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
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
pub(in crate::se) fn pin_change_reload(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
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
pub(in crate::se) fn block(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
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
pub(in crate::se) fn unblock_and_bad_mac(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
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
pub(in crate::se) fn bad_commands(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
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
pub(in crate::se) fn sm4_load_purchase(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
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
