//! The private key never leaves the card (qr-code.md §4.3 "never exported"): no response of a
//! whole life of the card, errors and every transcript included, holds the secret scalar or any
//! 8 consecutive bytes of it, and no `Debug` output of the card or the set-up shows it.

use ykt_card::Card;
use ykt_card::testing::{Step, parse_transcript};
use ykt_nfcqr::NfcQrProfile;
use ykt_nfcqr::testing::{danger_test_card, test_instance};
use ykt_qr::testing::GENERATION_TIME;

use crate::support::*;

/// Every response `commands` get, GET RESPONSE parts included.
fn responses(card: &mut Card, commands: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for c in commands {
        let (mut data, mut s) = send(card, c);
        data.extend_from_slice(&s.to_be_bytes());
        out.push(data);
        while s >> 8 == 0x61 {
            let (mut more, next) = send(card, &[0x00, 0xC0, 0x00, 0x00, (s & 0xFF) as u8]);
            s = next;
            more.extend_from_slice(&s.to_be_bytes());
            out.push(more);
        }
    }
    out
}

fn assert_no_secret(resp: &[u8], what: &str) {
    let d = user_d();
    for w in d.windows(8) {
        assert!(
            !resp.windows(8).any(|r| r == w),
            "{what}: 8 bytes of the private key in {}",
            hx(resp)
        );
    }
}

#[test]
fn no_response_holds_the_private_key() {
    let mut card = fresh(NfcQrProfile {
        max_codes_per_authorisation: 5,
    });
    let mut cmds: Vec<Vec<u8>> = vec![
        GENERATE_KEY.to_vec(),
        GENERATE_KEY.to_vec(),
        h("80E6000000"),
        h("80E6000100"),
        store_cmd(&blob_80()),
        GET_DATA.to_vec(),
        h("80E0010100"),
    ];
    for t in 0..7 {
        cmds.push(code_cmd(GENERATION_TIME + t, t % 2 == 0));
    }
    // Every INS with every P1 in 00..=03 and P2 in 00..=03, with and without data.
    for ins in [0xE0u8, 0xE2, 0xE4, 0xE6, 0xEA, 0xCA, 0xE8, 0xC0, 0xB0, 0xB2] {
        for p1 in 0..4u8 {
            for p2 in 0..4u8 {
                cmds.push(vec![0x80, ins, p1, p2, 0x00]);
                cmds.push(vec![0x80, ins, p1, p2, 0x04, 0x69, 0x24, 0x81, 0x00, 0x00]);
                cmds.push(vec![0x00, ins, p1, p2, 0x00]);
            }
        }
    }
    for (i, r) in responses(&mut card, &cmds).iter().enumerate() {
        assert_no_secret(r, &format!("response {i}"));
    }
    // The life went through: 5 codes (the limit), the §6 key still in place.
    let (st, _) = send(&mut card, &GET_DATA);
    assert_eq!(u32::from_be_bytes(st[13..17].try_into().unwrap()), 5);
    assert!(!format!("{card:?}").contains(&hex::encode(user_d())));
    assert_eq!(
        send(&mut card, &h("80E6000100")),
        (user_public().to_vec(), 0x9000)
    );
}

#[test]
fn no_transcript_response_holds_the_private_key() {
    for name in ["nfcqr_s6_flow.apdu", "nfcqr_errors.apdu"] {
        let text = std::fs::read_to_string(data_path(name)).unwrap();
        let mut card = danger_test_card(NfcQrProfile::default()).unwrap();
        for step in parse_transcript(&text).unwrap() {
            match step {
                Step::Exchange { command, .. } => {
                    let r = card.transmit(&command).unwrap();
                    assert_no_secret(&r, name);
                }
                Step::PowerOn => {
                    card.power_on();
                }
                Step::PowerOff => card.power_off(),
                Step::Reset => {
                    card.reset();
                }
                _ => {}
            }
        }
    }
}

#[test]
fn debug_output_is_redacted() {
    let issued = test_instance(NfcQrProfile::default()).unwrap();
    let text = format!("{issued:?}");
    assert!(text.contains("NfcQrApplet"));
    let key = ykt_crypto::Sm2PrivateKey::from_bytes(&user_d()).unwrap();
    assert!(format!("{key:?}").contains("redacted"));
    assert!(!format!("{key:?}").contains(&hex::encode(user_d())));
}
