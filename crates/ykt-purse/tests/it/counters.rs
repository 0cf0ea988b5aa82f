//! Counters: refusal at FFFF (SE-EP-CTR-002) and 100 mixed transactions (SE-EP-CTR-001).

use ykt_card::Card;
use ykt_card::testing::check_transcript;
use ykt_crypto::purse::PurseAlgorithm;
use ykt_purse::testing::{
    TEST_ASN, danger_test_card, danger_test_card_3des, test_card_data, test_issuer,
};
use ykt_purse::{EP_AID, PurseProfile};

use crate::support::*;

fn card_with_counters(online: u16, offline: u16, balance: u32) -> Card {
    let mut data = test_card_data(TEST_ASN);
    data.online_counter = online;
    data.offline_counter = offline;
    data.balance = balance;
    let purse = test_issuer(PurseAlgorithm::Tdes)
        .unwrap()
        .issue(&EP_AID, PurseProfile::EPURSE, &data)
        .unwrap();
    danger_test_card(vec![purse]).unwrap()
}

/// SE-EP-CTR-002 as a transcript: both counters at FFFF, every INITIALIZE is refused with 9402.
#[test]
fn counters_at_ffff_transcript() {
    let mut card = card_with_counters(0xFFFF, 0xFFFF, 1000);
    check_transcript(&mut card, data_path("ep_counters_ffff.apdu"));
}

/// One step below FFFF the transaction goes through (using FFFE), then the counter is exhausted;
/// the other counter is independent.
#[test]
fn last_transaction_before_ffff() {
    let keys = Keys::test(PurseAlgorithm::Tdes);
    let mut card = card_with_counters(0xFFFE, 0x0000, 1000);
    select_ep(&mut card);
    let l = load(&mut card, &keys, 1);
    assert_eq!(l.counter, 0xFFFE);
    let state = card.save_state();
    assert_eq!(sw(&mut card, &init_load_cmd(1)), 0x9402);
    assert_eq!(state, card.save_state());
    purchase(&mut card, &keys, 1, 1);
    let rec = read_record(&mut card, 0x18, 2).unwrap();
    assert_eq!(&rec[..2], &[0xFF, 0xFE]);
    assert_eq!(snapshot(&mut card, &EP_AID).online, 0xFFFF);

    let mut card = card_with_counters(0x0000, 0xFFFE, 1000);
    select_ep(&mut card);
    let c = purchase_with(&mut card, &keys, 5, 9, &composite_cache(1));
    assert_eq!(c.counter, 0xFFFE);
    assert_eq!(sw(&mut card, &init_purchase_cmd(1, false)), 0x9402);
    assert_eq!(sw(&mut card, &init_purchase_cmd(1, true)), 0x9402);
    load(&mut card, &keys, 1);
    // PROVE still answers for the last transaction at FFFE.
    let (r, s) = send(&mut card, &h("805A0002020000 08"));
    assert_eq!(s, 0x9000);
    assert_eq!(r.len(), 8);
}

/// SE-EP-CTR-001: 100 mixed transactions, some failing; after each, every counter equals the
/// number of successful operations of its kind, and balance, EF18 and PROVE follow a model.
#[test]
fn hundred_mixed_transactions() {
    let keys = Keys::test(PurseAlgorithm::Tdes);
    let mut card = danger_test_card_3des().unwrap();
    select_ep(&mut card);
    let mut model_balance: u32 = 0;
    let mut loads: u16 = 0;
    let mut purchases: u16 = 0;
    let mut records_model: Vec<Vec<u8>> = Vec::new();
    // A fixed pseudo-random walk (xorshift), so the test is reproducible.
    let mut x: u32 = 0x1234_5678;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut last_proof = None;
    for i in 0..100u32 {
        let kind = next() % 6;
        let amount = next() % 3000;
        let record = |counter: u16, amount: u32, ty: u8| {
            let mut r = counter.to_be_bytes().to_vec();
            r.extend_from_slice(&[0, 0, 0]);
            r.extend_from_slice(&amount.to_be_bytes());
            r.push(ty);
            r.extend_from_slice(&TERMINAL);
            r.extend_from_slice(&DATE);
            r.extend_from_slice(&TIME);
            r
        };
        match kind {
            0 | 1 => {
                if model_balance + amount <= 100_000 {
                    let d = load(&mut card, &keys, amount);
                    assert_eq!(d.counter, loads);
                    records_model.insert(0, record(loads, amount, 0x02));
                    last_proof = Some((0x02, loads, [d.mac2, d.tac].concat()));
                    loads += 1;
                    model_balance += amount;
                }
            }
            2 | 3 => {
                let composite = kind == 3;
                if amount <= model_balance {
                    let cache = if composite {
                        composite_cache(i as u8)
                    } else {
                        vec![]
                    };
                    let ty = if composite { 0x09 } else { 0x06 };
                    let d = purchase_with(&mut card, &keys, amount, i, &cache);
                    assert_eq!(d.counter, purchases);
                    records_model.insert(0, record(purchases, amount, ty));
                    last_proof = Some((ty, purchases, [d.mac2, d.tac].concat()));
                    purchases += 1;
                    model_balance -= amount;
                } else {
                    assert_eq!(sw(&mut card, &init_purchase_cmd(amount, composite)), 0x9401);
                }
            }
            4 => {
                // A load with a bad MAC2: nothing counts.
                let (r, s) = send(&mut card, &init_load_cmd(1));
                assert_eq!(s, 0x9000);
                let mut c = credit_cmd(&keys, &r, 1);
                c[5] ^= 0x01;
                assert_eq!(sw(&mut card, &c), 0x9302);
            }
            _ => {
                // A purchase with a bad MAC1: nothing counts.
                let (r, s) = send(&mut card, &init_purchase_cmd(0, false));
                assert_eq!(s, 0x9000);
                let (mut c, _, _) = debit_cmd(&keys, &r, 0, i, false);
                c[15] ^= 0x01;
                assert_eq!(sw(&mut card, &c), 0x9302);
            }
        }
        records_model.truncate(10);
        let snap = snapshot(&mut card, &EP_AID);
        assert_eq!(snap.online, loads, "online counter after {i}");
        assert_eq!(snap.offline, purchases, "offline counter after {i}");
        assert_eq!(snap.balance, model_balance, "balance after {i}");
        assert_eq!(snap.ef18, records_model, "EF18 after {i}");
        assert_eq!(snap.prove, last_proof.clone(), "proof after {i}");
    }
    assert!(
        loads > 10 && purchases > 10,
        "a mixed run ({loads} loads, {purchases} purchases)"
    );
    // SE-EP-FIL-002: EF18 keeps the newest 10 (23-byte) records; record 11 does not exist.
    assert_eq!(records(&mut card, 0x18).len(), 10);
    assert!(records(&mut card, 0x18).iter().all(|r| r.len() == 23));
    assert_eq!(read_record(&mut card, 0x18, 11), None);
}
