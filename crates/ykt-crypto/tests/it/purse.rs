//! E-purse cryptograms: the brief's §5.4 published vector and §8 worked example
//! (tests/data/purse_epurse-brief.txt), plus the SM4 rule switches.

use ykt_crypto::purse::*;

use crate::harness::{Case, cases, hx};

fn algorithm(c: &Case) -> PurseAlgorithm {
    match c.text("purse") {
        "tdes" => PurseAlgorithm::Tdes,
        "sm4-brief" => PurseAlgorithm::Sm4(Sm4Rules::BRIEF),
        other => panic!("{}: unknown purse algorithm {other}", c.location),
    }
}

fn key(c: &Case, field: &str) -> PurseKey {
    PurseKey::from_bytes(c.array(field))
}

fn counter(c: &Case, field: &str) -> u16 {
    u16::from_be_bytes(c.array(field))
}

/// Runs one case of the brief's vector file; returns a description of a mismatch.
fn check(c: &Case) -> Result<(), String> {
    let (got, want) = match c.text("op") {
        "diversify" => {
            let card = diversify(&algorithm(c), &key(c, "master"), &c.array("div"));
            (card.expose().to_vec(), c.bytes("key"))
        }
        "tac-key" => (
            tdes_tac_key(&key(c, "dtk")).expose().to_vec(),
            c.bytes("k_tac"),
        ),
        "load-session-key" => {
            let input = load_session_input(c.array("random"), counter(c, "online_counter"));
            let sk = session_key(&algorithm(c), &key(c, "key"), &input);
            (sk.expose().to_vec(), c.bytes("session_key"))
        }
        "purchase-session-key" => {
            let input = purchase_session_input(
                c.array("random"),
                counter(c, "offline_counter"),
                u32::from_be_bytes(c.array("ttsn")),
            );
            let sk = session_key(&algorithm(c), &key(c, "key"), &input);
            (sk.expose().to_vec(), c.bytes("session_key"))
        }
        "session-mac" => {
            let sk = SessionKey::from_slice(&c.bytes("session_key")).unwrap();
            (
                session_mac(&algorithm(c), &sk, &c.bytes("data")).to_vec(),
                c.bytes("mac"),
            )
        }
        "tac" => (
            tac(&algorithm(c), &key(c, "dtk"), &c.bytes("data")).to_vec(),
            c.bytes("tac"),
        ),
        other => return Err(format!("{}: unknown op {other}", c.location)),
    };
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{} ({}): got {}, want {}",
            c.location,
            c.text("op"),
            hx(&got),
            hx(&want)
        ))
    }
}

#[test]
fn epurse_brief_vectors() {
    let all = cases("purse_epurse-brief.txt");
    let failures: Vec<String> = all.iter().filter_map(|c| check(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // §5.4: 3 values; §8.1/8.2: 3 keys, K_TAC, 4 load, 4 purchase, 2 composite; §8.3: 3 keys,
    // 4 load, 4 purchase, 2 composite.
    assert_eq!(all.len(), 3 + 14 + 13, "case count");
}

#[test]
fn session_inputs() {
    assert_eq!(
        load_session_input([0x1A, 0x2B, 0x3C, 0x4D], 0x0102),
        [0x1A, 0x2B, 0x3C, 0x4D, 1, 2, 0x80, 0]
    );
    assert_eq!(
        purchase_session_input([1, 2, 3, 4], 0xA0B0, 0x1122_3344),
        [1, 2, 3, 4, 0xA0, 0xB0, 0x33, 0x44]
    );
}

#[test]
fn algorithm_ids() {
    assert_eq!(PurseAlgorithm::Tdes.algorithm_id(), 0x00);
    assert_eq!(PurseAlgorithm::Sm4(Sm4Rules::BRIEF).algorithm_id(), 0x04);
    let custom = Sm4Rules::BRIEF.with_algorithm_id(0x02);
    assert_eq!(PurseAlgorithm::Sm4(custom).algorithm_id(), 0x02);
    assert_eq!(
        PurseAlgorithm::from_algorithm_id(0x00, Sm4Rules::BRIEF),
        Some(PurseAlgorithm::Tdes)
    );
    assert_eq!(
        PurseAlgorithm::from_algorithm_id(0x04, Sm4Rules::BRIEF),
        Some(PurseAlgorithm::Sm4(Sm4Rules::BRIEF))
    );
    assert_eq!(
        PurseAlgorithm::from_algorithm_id(0x01, Sm4Rules::BRIEF),
        None
    );
    assert_eq!(Sm4Rules::default(), Sm4Rules::BRIEF);
}

/// Each SM4 switch changes the value it governs, and only that one; the alternative computes
/// what its documentation says.
#[test]
fn sm4_rule_switches() {
    let brief = PurseAlgorithm::Sm4(Sm4Rules::BRIEF);
    let dpk = PurseKey::from_bytes([0x23; 16]);
    let input = purchase_session_input([1, 2, 3, 4], 5, 6);
    let data = b"\x00\x00\x00\xC8";

    // (a) session padding
    let zeros = PurseAlgorithm::Sm4(Sm4Rules::BRIEF.with_session_padding(SessionPadding::Zeros));
    let sk_zero = session_key(&zeros, &dpk, &input);
    let mut block = [0u8; 16];
    block[..8].copy_from_slice(&input);
    let sm4 = ykt_crypto::Sm4Key::from_bytes(*dpk.expose());
    assert_eq!(sk_zero.expose(), sm4.encrypt_block(&block));
    block[8] = 0x80;
    assert_eq!(
        session_key(&brief, &dpk, &input).expose(),
        sm4.encrypt_block(&block)
    );

    // (b) MAC output
    let sk = session_key(&brief, &dpk, &input);
    let xor =
        PurseAlgorithm::Sm4(Sm4Rules::BRIEF.with_mac_output(MacOutput::LeftXorRightFirstFour));
    let full = ykt_crypto::sm4_cbc_mac(
        &ykt_crypto::Sm4Key::from_slice(sk.expose()).unwrap(),
        &[0; 16],
        data,
    );
    assert_eq!(session_mac(&brief, &sk, data), full[..4]);
    let folded: Vec<u8> = (0..4).map(|i| full[i] ^ full[i + 8]).collect();
    assert_eq!(session_mac(&xor, &sk, data).to_vec(), folded);

    // (c) TAC key
    let dtk = PurseKey::from_bytes(*b"0123456789abcdef");
    let halves = PurseAlgorithm::Sm4(Sm4Rules::BRIEF.with_tac_key(TacKey::XorHalvesZeroPadded));
    let mut k = [0u8; 16];
    for (i, b) in k.iter_mut().take(8).enumerate() {
        *b = dtk.expose()[i] ^ dtk.expose()[i + 8];
    }
    let want = ykt_crypto::pboc_mac_sm4(&ykt_crypto::Sm4Key::from_bytes(k), &[0; 16], data);
    assert_eq!(tac(&halves, &dtk, data), want);
    let want = ykt_crypto::pboc_mac_sm4(
        &ykt_crypto::Sm4Key::from_bytes(*dtk.expose()),
        &[0; 16],
        data,
    );
    assert_eq!(tac(&brief, &dtk, data), want);
}

#[test]
fn secure_messaging_mac_forms() {
    let damk = PurseKey::from_bytes(
        hex::decode("0123456789ABCDEFFEDCBA9876543210")
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let data = hex::decode("04D695000C0102030405060708").unwrap();
    // 3DES: the retail MAC of tests/data/retailmac_openssl.txt, IV = challenge || 00000000.
    let mac = secure_messaging_mac(
        &PurseAlgorithm::Tdes,
        &damk,
        &[0x11, 0x22, 0x33, 0x44],
        &data,
    );
    assert_eq!(hx(&mac), "945F3003");
    // A full 8-byte IV gives the same result when its tail is zero.
    let mac8 = secure_messaging_mac(
        &PurseAlgorithm::Tdes,
        &damk,
        &[0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0],
        &data,
    );
    assert_eq!(mac, mac8);
    // SM4: CBC-SM4 MAC with IV = challenge || 00 x 12, first 4 bytes (L).
    let sm4 = PurseAlgorithm::Sm4(Sm4Rules::BRIEF);
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&[0x11, 0x22, 0x33, 0x44]);
    let want =
        ykt_crypto::pboc_mac_sm4(&ykt_crypto::Sm4Key::from_bytes(*damk.expose()), &iv, &data);
    assert_eq!(
        secure_messaging_mac(&sm4, &damk, &[0x11, 0x22, 0x33, 0x44], &data),
        want
    );
}

#[test]
fn session_mac_follows_the_session_key() {
    // The MAC is a function of the session key and data; MAC checks compare in constant time.
    let dlk = PurseKey::from_bytes([0x42; 16]);
    let sk = session_key(&PurseAlgorithm::Tdes, &dlk, &load_session_input([9; 4], 1));
    let mac = session_mac(&PurseAlgorithm::Tdes, &sk, b"data");
    assert!(ykt_crypto::ct_eq(
        &mac,
        &session_mac(&PurseAlgorithm::Tdes, &sk, b"data")
    ));
    assert!(!ykt_crypto::ct_eq(
        &mac,
        &session_mac(&PurseAlgorithm::Tdes, &sk, b"datA")
    ));
    assert!(matches!(
        SessionKey::from_slice(&[0; 12]),
        Err(ykt_crypto::Error::InvalidKeyLength { actual: 12, .. })
    ));
}
