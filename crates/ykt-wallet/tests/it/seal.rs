//! The sealed state (client.md §6.5): PBKDF2-HMAC-SM3 against OpenSSL, round trips, bit flips,
//! a wrong passphrase, and no card number or SEID in the sealed bytes.

use std::process::Command;

use ykt_crypto::Sm2PrivateKey;
use ykt_tsm::FlowKind;
use ykt_tsm::hex::Hex;
use ykt_wallet::seal::{PBKDF2_ITERATIONS, pbkdf2_hmac_sm3};
use ykt_wallet::testing::TestRng;
use ykt_wallet::*;

use crate::mask::CANARY;

const SEID: &str = "1122334455667788AABBCCDD";

fn openssl_pbkdf2_sm3(pass: &str, salt: &str, iter: u32) -> Option<Vec<u8>> {
    let out = Command::new("openssl")
        .args([
            "kdf",
            "-keylen",
            "32",
            "-kdfopt",
            "digest:SM3",
            "-kdfopt",
            &format!("pass:{pass}"),
            "-kdfopt",
            &format!("salt:{salt}"),
            "-kdfopt",
            &format!("iter:{iter}"),
            "PBKDF2",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    ykt_tsm::hex::decode(&text.trim().replace(':', ""))
}

#[test]
fn pbkdf2_hmac_sm3_matches_openssl() {
    let cases = [
        ("password", "saltsaltsaltsalt", 1000),
        ("correct horse battery staple", "0123456789abcdef", 1),
        ("p", "s", 2),
    ];
    for (pass, salt, iter) in cases {
        let Some(expected) = openssl_pbkdf2_sm3(pass, salt, iter) else {
            println!("skipped: this openssl has no `kdf ... digest:SM3 PBKDF2`");
            return;
        };
        let mut ours = [0u8; 32];
        pbkdf2_hmac_sm3(pass.as_bytes(), salt.as_bytes(), iter, &mut ours);
        assert_eq!(ours.to_vec(), expected, "{pass} {salt} {iter}");
    }
    // Longer than one PRF block: the second block's index is 2 (RFC 8018 §5.2).
    let mut two = [0u8; 40];
    pbkdf2_hmac_sm3(b"password", b"saltsaltsaltsalt", 1000, &mut two);
    let mut one = [0u8; 32];
    pbkdf2_hmac_sm3(b"password", b"saltsaltsaltsalt", 1000, &mut one);
    assert_eq!(two[..32], one[..]);
    assert_ne!(two[32..], one[..8]);
}

// A file that names fewer iterations (checksum recomputed) is refused before any KDF runs.
#[test]
fn fewer_iterations_are_refused() {
    let mut rng = TestRng::new(3);
    let key = SealKey::create(b"pw", &mut rng);
    let mut file = state().seal(&key, &mut rng).unwrap();
    assert_eq!(file[10..14], PBKDF2_ITERATIONS.to_be_bytes());
    file[10..14].copy_from_slice(&1000u32.to_be_bytes());
    let n = file.len() - 32;
    let sum = ykt_crypto::sm3(&file[..n]);
    file[n..].copy_from_slice(&sum);
    assert!(matches!(
        WalletState::open(b"pw", &file),
        Err(StateError::Seal(SealError::StoreCorrupt(
            Corruption::Parameters
        )))
    ));
}

fn state() -> WalletState {
    let mut rng = TestRng::new(9);
    WalletState {
        device_key: DeviceKey::generate(&mut rng),
        device_id: Some("DEV-0001".into()),
        tsm: Some(TsmPin {
            tsm_id: "SPTSM-330400".into(),
            tsm_pub: Hex(Sm2PrivateKey::generate(&mut rng)
                .unwrap()
                .public_key()
                .to_bytes()
                .to_vec()),
        }),
        cards: vec![CardRecord {
            card_no: CardNo::new(CANARY),
            seid: Seid::new(SEID),
            app_aid: Hex(ykt_purse::EP_AID.to_vec()),
            state: "ACTIVE".into(),
            balance: Some((1234, 1_796_169_600_000)),
        }],
        flows: vec![OpenFlow {
            txn_id: "txn-1".into(),
            kind: FlowKind::TopUp,
            card_no: Some(CardNo::new(CANARY)),
            started_ms: 1_796_169_600_000,
        }],
        journal: vec![JournalEntry {
            order_no: "ORD-1".into(),
            txn_id: Some("txn-1".into()),
            card_hash: state::card_hash(&CardNo::new(CANARY)),
            step: JournalStep::CreditForLoad,
            balance_before: Some(1234),
            online_counter_before: Some(7),
            amount: 500,
            last_sw: Some("9000".into()),
        }],
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn round_trip_wrong_passphrase_and_no_plaintext() {
    let mut rng = TestRng::new(1);
    let s = state();
    let key = SealKey::create(b"correct horse", &mut rng);
    let file = s.seal(&key, &mut rng).unwrap();
    let (key2, back) = WalletState::open(b"correct horse", &file).unwrap();
    assert_eq!(back.cards, s.cards);
    assert_eq!(back.flows, s.flows);
    assert_eq!(back.journal, s.journal);
    assert_eq!(back.tsm, s.tsm);
    assert_eq!(back.device_id, s.device_id);
    assert_eq!(
        back.device_key.as_ref().unwrap().public_key(),
        s.device_key.as_ref().unwrap().public_key()
    );
    // The key from opening seals the next version; fresh nonces make it differ.
    let again = back.seal(&key2, &mut rng).unwrap();
    assert_ne!(again, file);
    assert!(WalletState::open(b"correct horse", &again).is_ok());

    assert!(matches!(
        WalletState::open(b"Correct horse", &file),
        Err(StateError::Seal(SealError::WrongPassphrase))
    ));

    let scalar = {
        let records = s.to_records();
        records[0].data.to_vec()
    };
    for needle in [
        CANARY.as_bytes().to_vec(),
        SEID.as_bytes().to_vec(),
        ykt_tsm::hex::decode(CANARY).unwrap(),
        ykt_tsm::hex::decode(SEID).unwrap(),
        scalar,
    ] {
        assert!(!contains(&file, &needle), "{needle:02X?}");
    }
}

#[test]
fn every_flipped_bit_is_store_corrupt() {
    let mut rng = TestRng::new(2);
    let key = SealKey::create(b"pw", &mut rng);
    let file = state().seal(&key, &mut rng).unwrap();
    // Every byte, one bit each (the bit varies with the offset): header, salt, wrapped DEK,
    // record types, ids (AAD), nonces, ciphertexts, tags and the checksum.
    for at in 0..file.len() {
        let mut bad = file.clone();
        bad[at] ^= 1 << (at % 8);
        match WalletState::open(b"pw", &bad) {
            Err(StateError::Seal(SealError::StoreCorrupt(_))) => {}
            other => panic!("byte {at}: {:?}", other.map(|_| ())),
        }
    }
    for n in [0, 10, file.len() - 1] {
        assert!(matches!(
            WalletState::open(b"pw", &file[..n]),
            Err(StateError::Seal(SealError::StoreCorrupt(_)))
        ));
    }
}

#[test]
fn debug_of_the_state_masks_and_redacts() {
    let s = state();
    let text = format!("{s:?} {:?}", s.to_records());
    assert!(!text.contains(CANARY), "{text}");
    assert!(!text.contains(SEID), "{text}");
    assert!(text.contains("[redacted]"));
}
