//! PIN UNBLOCK, permanent and card block, and the secure-messaging and file-write refusals
//! (e-purse.md §4.9–§4.12; the status words and MAC rules of these commands are L).

use super::*;

/// PIN UNBLOCK `84 24 00 00 Lc <PIN block enciphered with the DPUK> <MAC>` (ykt-purse's L rule:
/// block = `len || PIN || 80 00..`, secure-messaging MAC with the DPUK, IV = GET CHALLENGE).
fn pin_unblock(
    s: &mut SeHarness<'_>,
    alg: &PurseAlgorithm,
    pin: &[u8],
    corrupt_mac: bool,
) -> Result<u16, Stop> {
    let challenge = s.ok(
        &CommandApdu::new(0x00, 0x84, 0x00, 0x00).with_le(4),
        "GET CHALLENGE",
    )?;
    let dpuk = s.card_key(KeyUsage::PinUnblock, alg)?;
    let block_len = match alg {
        PurseAlgorithm::Tdes => 8,
        PurseAlgorithm::Sm4(_) => 16,
    };
    let mut block = vec![0u8; block_len];
    block[0] = pin.len() as u8;
    block[1..1 + pin.len()].copy_from_slice(pin);
    block[1 + pin.len()] = 0x80;
    let enc = match alg {
        PurseAlgorithm::Tdes => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&block);
            ykt_crypto::TdesKey::two_key(*dpuk.expose())
                .encrypt_block(&b)
                .to_vec()
        }
        PurseAlgorithm::Sm4(_) => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&block);
            ykt_crypto::Sm4Key::from_bytes(*dpuk.expose())
                .encrypt_block(&b)
                .to_vec()
        }
    };
    let lc = (enc.len() + 4) as u8;
    let mut input = vec![0x84, 0x24, 0x00, 0x00, lc];
    input.extend_from_slice(&enc);
    let mut mac = purse::secure_messaging_mac(alg, &dpuk, &challenge, &input);
    if corrupt_mac {
        mac[3] ^= 0x01;
    }
    let mut data = enc;
    data.extend_from_slice(&mac);
    s.sw(&CommandApdu::new(0x84, 0x24, 0x00, 0x00).with_data(data))
}

/// SE-EP-PIN-003.
pub(in crate::se) fn pin_unblock_item(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
    let pin = h(p.str("pin", "123456")?);
    let wrong = h(p.str("wrong", "999999")?);
    let bad_mac_sw = p.u16("sw", ykt_purse::status::SECURE_MESSAGING_MAC_INVALID.0)?;
    s.select()?;
    let alg = s.purse_algorithm()?;
    s.select()?;
    let mut n = 0;
    while s.sw(&commands::verify(&wrong))? != 0x6983 {
        n += 1;
        ensure(n < 16, || "no 6983 after 15 wrong PINs".into())?;
    }
    let sw = pin_unblock(s, &alg, &pin, true)?;
    ensure(sw == bad_mac_sw, || {
        format!("PIN UNBLOCK with a bad MAC answered {sw:04X}, expected {bad_mac_sw:04X}")
    })?;
    let sw = s.sw(&commands::verify(&pin))?;
    ensure(sw == 0x6983, || {
        format!("still blocked: the right PIN answered {sw:04X}")
    })?;
    let sw = pin_unblock(s, &alg, &wrong, false)?;
    ensure(sw != 0x9000, || {
        "PIN UNBLOCK with another PIN in the block was accepted".into()
    })?;
    let sw = pin_unblock(s, &alg, &pin, false)?;
    ensure(sw == 0x9000, || format!("PIN UNBLOCK answered {sw:04X}"))?;
    let sw = s.sw(&commands::verify(&pin))?;
    ensure(sw == 0x9000, || {
        format!("after PIN UNBLOCK the PIN answered {sw:04X}")
    })?;
    Ok(format!(
        "blocked PIN: bad MAC {bad_mac_sw:04X}, other PIN refused, good PIN UNBLOCK 9000, PIN verifies again"
    ))
}

/// SE-EP-BLK-003 (simulator: the card is destroyed): permanent APPLICATION BLOCK, then CARD BLOCK
/// on a second fresh card.
pub(in crate::se) fn permanent_and_card_block(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
    let locked = p.u16("sw", 0x9303)?;
    s.select()?;
    let alg = s.purse_algorithm()?;
    s.select()?;
    let sw = s.maintenance(&alg, [0x84, 0x1E, 0x00, 0x01], false)?;
    ensure(sw == 0x9000, || {
        format!("permanent APPLICATION BLOCK answered {sw:04X}")
    })?;
    let r = s.send(&commands::select(&EP_AID))?;
    expect_sw(&r, locked, "SELECT after the permanent block")?;
    let init = s.sw(&commands::initialize_for_purchase(
        false, KEY_INDEX, 0, &TERMINAL,
    ))?;
    let balance = s.sw(&commands::get_balance())?;
    let unblock = s.sw(&CommandApdu::new(0x84, 0x18, 0x00, 0x00).with_data(vec![0; 4]))?;
    ensure(
        init == locked && balance == locked && unblock == locked,
        || {
            format!(
                "permanently blocked: INITIALIZE {init:04X}, GET BALANCE {balance:04X}, UNBLOCK {unblock:04X}"
            )
        },
    )?;
    // CARD BLOCK on a second, fresh card.
    let mut second = crate::target::sim_fixture("3des")
        .map(crate::target::SimCard)
        .map_err(|e| Stop::Inconclusive(e.to_string()))?;
    let mut t = SeHarness::new(&mut second);
    t.select()?;
    let sw = t.maintenance(&alg, [0x84, 0x16, 0x00, 0x00], false)?;
    let after = t.sw(&commands::select(&EP_AID))?;
    let trace = t.into_transcript().to_string();
    s.note(format!("second card:\n{trace}"));
    ensure(sw == 0x9000, || format!("CARD BLOCK answered {sw:04X}"))?;
    ensure(after == 0x6A81, || {
        format!("SELECT after CARD BLOCK answered {after:04X}")
    })?;
    Ok(format!(
        "permanent block: SELECT and every command {locked:04X}; CARD BLOCK: SELECT refused 6A81"
    ))
}

/// SE-EP-ERR-002.
pub(in crate::se) fn secure_messaging_and_writes(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
    let no_challenge = p.u16("sw", ykt_purse::status::CHALLENGE_MISSING.0)?;
    s.select()?;
    let before = s.snapshot()?;
    s.select()?;
    let r = s.send(&CommandApdu::new(0x84, 0x1E, 0x00, 0x00).with_data(vec![0x11; 4]))?;
    expect_sw(&r, no_challenge, "APPLICATION BLOCK without GET CHALLENGE")?;
    let r = s.send(&CommandApdu::new(0x00, 0x84, 0x00, 0x00).with_le(5))?;
    expect_sw(&r, 0x6700, "GET CHALLENGE of 5 bytes")?;
    let mut refused = Vec::new();
    for (what, cmd) in [
        ("UPDATE BINARY EF15", h("00D6950001FF")),
        ("UPDATE RECORD EF18", {
            let mut c = h("00DC01C417");
            c.extend_from_slice(&[0u8; 23]);
            c
        }),
        ("APPEND RECORD EF18", {
            let mut c = h("00E200C017");
            c.extend_from_slice(&[0u8; 23]);
            c
        }),
    ] {
        let r = s.send_bytes(&cmd)?;
        ensure(r.sw.0 != 0x9000, || {
            format!("{what} from outside was accepted")
        })?;
        refused.push(format!("{what} {:04X}", r.sw.0));
    }
    let ef15 = s.ok(&read_binary(0x15), "READ BINARY EF15")?;
    s.expect_unchanged(&before, "the refused commands")?;
    ensure(ef15.len() == 30, || "EF15 changed length".into())?;
    Ok(format!(
        "secure messaging without challenge {no_challenge:04X}; GET CHALLENGE Le 05 6700; {}; no change",
        refused.join(", ")
    ))
}
