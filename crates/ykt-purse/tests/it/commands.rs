//! Every command, success and error paths: transcripts run with a state check on every error, plus
//! the cases whose MACs depend on later card randoms (computed here as the PSAM/host would).

use ykt_card::Card;
use ykt_card::testing::{Expected, Step, parse_transcript};
use ykt_crypto::purse::PurseAlgorithm;
use ykt_purse::testing::{
    TEST_ASN, danger_test_card, danger_test_card_3des, danger_test_card_sm4, test_card_data,
    test_issuer,
};
use ykt_purse::{EP_AID, PurseProfile};

use crate::support::*;

/// Runs a transcript; on every exchange expected to fail, asserts that the card's persistent
/// state (the whole `save_state` encoding, write counter included) did not change. Only a wrong PIN
/// (`63Cx`, or `6983` when the last try goes) may change it: the try counter is committed first.
pub fn check_transcript_state(card: &mut Card, file: &str) -> usize {
    let text = std::fs::read_to_string(data_path(file)).unwrap();
    let mut exchanges = 0;
    for step in parse_transcript(&text).unwrap() {
        match step {
            Step::PowerOn => {
                card.power_on();
            }
            Step::PowerOff => card.power_off(),
            Step::Reset => {
                card.reset();
            }
            Step::Tear(n) => card.tear().arm_at(n),
            Step::Exchange {
                line,
                command,
                expected,
            } => {
                exchanges += 1;
                let Expected::Bytes(want) = expected else {
                    panic!("{file}:{line}: this runner has no tearing expectations");
                };
                let before = card.save_state();
                let got = card.transmit(&command).unwrap();
                let matches = want.len() == got.len()
                    && want
                        .iter()
                        .zip(&got)
                        .all(|(w, g)| w.is_none_or(|w| w == *g));
                assert!(
                    matches,
                    "{file}:{line}: >> {}\n expected << {}\n actual   << {}",
                    hx(&command),
                    want.iter()
                        .map(|b| b.map_or("xx".to_string(), |b| format!("{b:02X}")))
                        .collect::<String>(),
                    hx(&got)
                );
                let sw = u16::from_be_bytes([got[got.len() - 2], got[got.len() - 1]]);
                let pin_try =
                    matches!(command[1], 0x20 | 0x5E) && (sw & 0xFFF0 == 0x63C0 || sw == 0x6983);
                if sw != 0x9000 && !pin_try {
                    assert!(
                        before == card.save_state(),
                        "{file}:{line}: error {sw:04X} changed the persistent state"
                    );
                }
            }
            other => panic!("{file}: unexpected step {other:?}"),
        }
    }
    exchanges
}

fn run(file: &str, card: fn() -> Result<Card, ykt_purse::IssueError>) {
    let mut card = card().unwrap();
    assert!(check_transcript_state(&mut card, file) > 0);
}

#[test]
fn select_and_files() {
    run("ep_select_files.apdu", danger_test_card_3des);
}

#[test]
fn load_errors() {
    run("ep_load_errors.apdu", danger_test_card_3des);
}

#[test]
fn load_replay() {
    run("ep_load_replay.apdu", danger_test_card_3des);
}

#[test]
fn purchase_errors() {
    run("ep_purchase_errors.apdu", danger_test_card_3des);
}

#[test]
fn composite_errors() {
    run("ep_composite_errors.apdu", danger_test_card_3des);
}

#[test]
fn pin() {
    run("ep_pin.apdu", danger_test_card_3des);
}

#[test]
fn pin_unblock() {
    run("ep_pin_unblock.apdu", danger_test_card_3des);
}

#[test]
fn pin_unblock_sm4() {
    run("ep_pin_unblock_sm4.apdu", danger_test_card_sm4);
}

#[test]
fn application_block() {
    run("ep_block.apdu", danger_test_card_3des);
}

#[test]
fn application_block_sm4() {
    run("ep_block_sm4.apdu", danger_test_card_sm4);
}

#[test]
fn card_block() {
    run("ep_card_block.apdu", danger_test_card_3des);
}

/// The §8 transcripts, also under the state-checking runner.
#[test]
fn s8_transcripts_under_state_check() {
    run("ep_s8_1_load_3des.apdu", danger_test_card_3des);
    run("ep_s8_2_purchase_3des.apdu", danger_test_card_3des);
    run("ep_s8_2_composite_3des.apdu", danger_test_card_3des);
    run("ep_s8_3_sm4.apdu", danger_test_card_sm4);
    run("ep_s8_3_sm4_composite.apdu", danger_test_card_sm4);
}

/// SE-EP-PUR-004: amount 0, then amount = balance: 9000 both, balance 0, TAC ok.
#[test]
fn purchase_of_zero_and_of_the_whole_balance() {
    for alg in [
        PurseAlgorithm::Tdes,
        PurseAlgorithm::Sm4(Default::default()),
    ] {
        let keys = Keys::test(alg);
        let mut card = match alg {
            PurseAlgorithm::Tdes => danger_test_card_3des(),
            PurseAlgorithm::Sm4(_) => danger_test_card_sm4(),
        }
        .unwrap();
        select_ep(&mut card);
        load(&mut card, &keys, 1234);
        purchase(&mut card, &keys, 0, 7);
        assert_eq!(balance(&mut card), 1234);
        let d = purchase(&mut card, &keys, 1234, 8);
        assert_eq!(balance(&mut card), 0);
        assert_eq!(d.counter, 1);
        assert_eq!(sw(&mut card, &init_purchase_cmd(1, false)), 0x9401);
        // The zero purchase is in EF18 as well.
        let recs = records(&mut card, 0x18);
        assert_eq!(recs.len(), 3);
        assert_eq!(&recs[1][5..10], &[0, 0, 0, 0, 0x06]);
    }
}

/// A second composite purchase with other randoms, composite with only an EF1A record, and with
/// only EF1E records; plain purchases leave EF1A/EF1E alone.
#[test]
fn composite_purchases() {
    let keys = Keys::test(PurseAlgorithm::Tdes);
    let mut card = danger_test_card_3des().unwrap();
    select_ep(&mut card);
    load(&mut card, &keys, 5000);
    purchase_with(&mut card, &keys, 100, 1, &composite_cache(0xA1));
    purchase_with(
        &mut card,
        &keys,
        100,
        2,
        &[update_capp_cmd(0x02, 0x1A, &ef1a_record(0x02, 0xA2))],
    );
    purchase_with(
        &mut card,
        &keys,
        100,
        3,
        &[
            update_capp_cmd(0x00, 0x1E, &ef1e_record(0xA3)),
            update_capp_cmd(0x00, 0x1E, &ef1e_record(0xA4)),
            update_capp_cmd(0x03, 0x1A, &ef1a_record(0x03, 0xA4)),
        ],
    );
    purchase(&mut card, &keys, 100, 4);
    assert_eq!(balance(&mut card), 4600);
    let ef1a = records(&mut card, 0x1A);
    assert_eq!(ef1a[1], ef1a_record(0x02, 0xA2));
    assert_eq!(ef1a[2], ef1a_record(0x03, 0xA4));
    assert_eq!(ef1a[0][..2], [0x00, 0x01]);
    let ef1e = records(&mut card, 0x1E);
    assert_eq!(
        ef1e,
        vec![ef1e_record(0xA4), ef1e_record(0xA3), ef1e_record(0xA1)]
    );
    let ef18 = records(&mut card, 0x18);
    let types: Vec<u8> = ef18.iter().map(|r| r[9]).collect();
    assert_eq!(types, vec![0x06, 0x09, 0x09, 0x09, 0x02]);
    // A short EF1A record is zero-padded to 128 bytes (L).
    let mut short = ef1a_record(0x04, 0xA5);
    short.truncate(20);
    purchase_with(
        &mut card,
        &keys,
        1,
        5,
        &[update_capp_cmd(0x04, 0x1A, &short)],
    );
    let mut padded = short.clone();
    padded.resize(128, 0);
    assert_eq!(read_record(&mut card, 0x1A, 4).unwrap(), padded);
}

/// File commands answered by the runtime do not end an INITIALIZE session (the applet never sees
/// them); any command the applet sees does.
#[test]
fn file_reads_between_initialize_and_debit() {
    let keys = Keys::test(PurseAlgorithm::Tdes);
    let mut card = danger_test_card_3des().unwrap();
    select_ep(&mut card);
    load(&mut card, &keys, 500);
    let (r, s) = send(&mut card, &init_purchase_cmd(100, false));
    assert_eq!(s, 0x9000);
    assert!(read_record(&mut card, 0x18, 1).is_some());
    let (debit, _, _) = debit_cmd(&keys, &r, 100, 9, false);
    assert_eq!(sw(&mut card, &debit), 0x9000);
    let (r, _) = send(&mut card, &init_purchase_cmd(100, false));
    assert_eq!(sw(&mut card, &h("805C000204")), 0x9000);
    let (debit, _, _) = debit_cmd(&keys, &r, 100, 10, false);
    assert_eq!(sw(&mut card, &debit), 0x6985);
}

/// GET TRANSACTION PROVE after each kind of transaction returns the values of the last one, for
/// exactly its type and counter.
#[test]
fn prove_tracks_the_last_transaction() {
    let keys = Keys::test(PurseAlgorithm::Tdes);
    let mut card = danger_test_card_3des().unwrap();
    select_ep(&mut card);
    let prove = |card: &mut Card, ty: u8, ctr: u16| {
        let mut c = vec![0x80, 0x5A, 0x00, ty, 0x02];
        c.extend_from_slice(&ctr.to_be_bytes());
        c.push(0x08);
        send(card, &c)
    };
    for i in 0..3u16 {
        let l = load(&mut card, &keys, 1000);
        assert_eq!(l.counter, i);
        let (r, s) = prove(&mut card, 0x02, i);
        assert_eq!(s, 0x9000);
        assert_eq!(r, [l.mac2, l.tac].concat());
        let p = purchase(&mut card, &keys, 10, u32::from(i));
        assert_eq!(prove(&mut card, 0x02, i).1, 0x9406);
        assert_eq!(p.counter, 2 * i);
        assert_eq!(prove(&mut card, 0x06, p.counter + 1).1, 0x9406);
        assert_eq!(
            prove(&mut card, 0x06, p.counter).0,
            [p.mac2, p.tac].concat()
        );
        let c = purchase_with(&mut card, &keys, 10, 100, &composite_cache(1));
        assert_eq!(c.counter, 2 * i + 1);
        assert_eq!(prove(&mut card, 0x06, p.counter).1, 0x9406);
        assert_eq!(
            prove(&mut card, 0x09, c.counter).0,
            [c.mac2, c.tac].concat()
        );
    }
}

/// The N+1 compatibility switch of GET TRANSACTION PROVE (e-purse.md §4.8).
#[test]
fn prove_counter_plus_one_switch() {
    let profile = PurseProfile {
        prove_counter: ykt_purse::ProveCounter::PostIncrement,
        ..PurseProfile::EPURSE
    };
    let purse = test_issuer(PurseAlgorithm::Tdes)
        .unwrap()
        .issue(&EP_AID, profile, &test_card_data(TEST_ASN))
        .unwrap();
    let mut card = danger_test_card(vec![purse]).unwrap();
    let keys = Keys::test(PurseAlgorithm::Tdes);
    select_ep(&mut card);
    let l = load(&mut card, &keys, 1000);
    assert_eq!(sw(&mut card, &h("805A0002020000 08")), 0x9406);
    let (r, s) = send(&mut card, &h("805A0002020001 08"));
    assert_eq!((r, s), ([l.mac2, l.tac].concat(), 0x9000));
    // The profile survives save/load (install parameters).
    let mut card = reload(&card.save_state());
    select_ep(&mut card);
    assert_eq!(sw(&mut card, &h("805A0002020001 08")), 0x9000);
}

/// A profile may require a verified PIN before a load (e-purse.md §4.1).
#[test]
fn load_may_require_the_pin() {
    let profile = PurseProfile {
        pin_required_for_load: true,
        ..PurseProfile::EPURSE
    };
    let purse = test_issuer(PurseAlgorithm::Tdes)
        .unwrap()
        .issue(&EP_AID, profile, &test_card_data(TEST_ASN))
        .unwrap();
    let mut card = danger_test_card(vec![purse]).unwrap();
    let keys = Keys::test(PurseAlgorithm::Tdes);
    select_ep(&mut card);
    assert_eq!(sw(&mut card, &init_load_cmd(100)), 0x6982);
    assert_eq!(sw(&mut card, &h("0020000003123456")), 0x9000);
    load(&mut card, &keys, 100);
    // The verified state is volatile.
    card.reset();
    select_ep(&mut card);
    assert_eq!(sw(&mut card, &init_load_cmd(100)), 0x6982);
}

/// MAC-failure counting (L, off by default): with a limit of 3, three bad MACs in a row block the
/// application temporarily; a good MAC resets the count; APPLICATION UNBLOCK lifts the block.
#[test]
fn mac_failure_limit() {
    let profile = PurseProfile {
        mac_failure_limit: 3,
        ..PurseProfile::EPURSE
    };
    let purse = test_issuer(PurseAlgorithm::Tdes)
        .unwrap()
        .issue(&EP_AID, profile, &test_card_data(TEST_ASN))
        .unwrap();
    let mut card = danger_test_card(vec![purse]).unwrap();
    let keys = Keys::test(PurseAlgorithm::Tdes);
    select_ep(&mut card);
    let bad_credit = |card: &mut Card| {
        let (r, s) = send(card, &init_load_cmd(100));
        assert_eq!(s, 0x9000);
        let mut c = credit_cmd(&keys, &r, 100);
        c[12] ^= 1;
        sw(card, &c)
    };
    assert_eq!(bad_credit(&mut card), 0x9302);
    assert_eq!(bad_credit(&mut card), 0x9302);
    load(&mut card, &keys, 100);
    assert_eq!(bad_credit(&mut card), 0x9302);
    assert_eq!(bad_credit(&mut card), 0x9302);
    let before = card.save_state();
    let (r, _) = send(&mut card, &init_purchase_cmd(10, false));
    let (mut debit, _, _) = debit_cmd(&keys, &r, 10, 1, false);
    debit[16] ^= 1;
    assert_eq!(sw(&mut card, &debit), 0x9302);
    assert_ne!(
        before,
        card.save_state(),
        "the failure is counted persistently"
    );
    assert_eq!(sw(&mut card, &h("805C000204")), 0x6A81);
    assert_eq!(select_ep(&mut card), 0x6A81);
    // The count survives power loss, and so does the block.
    let mut card = reload(&card.save_state());
    assert_eq!(select_ep(&mut card), 0x6A81);
    assert_eq!(maintenance(&mut card, &keys, 0x84, 0x18, 0, 0), 0x9000);
    assert_eq!(select_ep(&mut card), 0x9000);
    assert_eq!(balance(&mut card), 100);
    assert_eq!(bad_credit(&mut card), 0x9302);
    assert_eq!(bad_credit(&mut card), 0x9302);
    assert_eq!(select_ep(&mut card), 0x9000);
}

/// With the default profile a bad MAC changes nothing persistent, however often.
#[test]
fn bad_macs_change_nothing_by_default() {
    let keys = Keys::test(PurseAlgorithm::Tdes);
    let mut card = danger_test_card_3des().unwrap();
    select_ep(&mut card);
    load(&mut card, &keys, 100);
    let state = card.save_state();
    for _ in 0..20 {
        let (r, _) = send(&mut card, &init_load_cmd(100));
        let mut c = credit_cmd(&keys, &r, 100);
        c[14] ^= 0x80;
        assert_eq!(sw(&mut card, &c), 0x9302);
    }
    assert_eq!(state, card.save_state());
    assert_eq!(select_ep(&mut card), 0x9000);
}

/// Secure messaging on an SM4 card and a mixed card: the algorithm follows each key.
#[test]
fn mixed_algorithm_card() {
    use ykt_crypto::purse::PurseKey;
    use ykt_purse::testing::{TEST_MASTER_DLK, TEST_MASTER_DPK, TEST_MASTER_DTK, test_master_keys};
    use ykt_purse::{IssuerFactory, KeyUsage, MasterKey};
    // 3DES keys at index 01 and SM4 keys at index 02 (load, purchase, TAC).
    let sm4 = PurseAlgorithm::Sm4(Default::default());
    let mut masters = test_master_keys(PurseAlgorithm::Tdes);
    for (usage, key) in [
        (KeyUsage::Load, TEST_MASTER_DLK),
        (KeyUsage::Purchase, TEST_MASTER_DPK),
        (KeyUsage::Tac, TEST_MASTER_DTK),
    ] {
        masters.push(MasterKey {
            usage,
            index: 0x02,
            version: 0x07,
            algorithm: sm4,
            key: PurseKey::from_bytes(key),
        });
    }
    let purse = IssuerFactory::new(masters)
        .unwrap()
        .issue(&EP_AID, PurseProfile::EPURSE, &test_card_data(TEST_ASN))
        .unwrap();
    let mut card = danger_test_card(vec![purse]).unwrap();
    select_ep(&mut card);
    // §8.1 with the 3DES key at index 01.
    let (r, _) = send(&mut card, &init_load_cmd(10000));
    assert_eq!(hx(&r), "00000000000001001A2B3C4D4E903E9F");
    let (_, s) = send(
        &mut card,
        &credit_cmd(&Keys::test(PurseAlgorithm::Tdes), &r, 10000),
    );
    assert_eq!(s, 0x9000);
    // The SM4 DPK at index 02: version 07, algorithm id 04, MAC1/MAC2/TAC under SM4 (§8.3 keys).
    let mut c = init_purchase_cmd(200, false);
    c[5] = 0x02;
    let (r, s) = send(&mut card, &c);
    assert_eq!(s, 0x9000);
    assert_eq!(hx(&r), "00002710000000000007045E6F7A8B");
    let (debit, mac2, tac) = debit_cmd(&Keys::test(sm4), &r, 200, 1, false);
    let (resp, s) = send(&mut card, &debit);
    assert_eq!(s, 0x9000);
    assert_eq!(resp, [tac, mac2].concat());
    // MAC2 depends only on SESPK and the amount: the §8.3 value.
    assert_eq!(hx(&mac2), "9DF2C9ED");
}

/// The AppletFactory re-creates the instance from a state file: the purse keeps working.
#[test]
fn state_file_round_trip() {
    let keys = Keys::test(PurseAlgorithm::Tdes);
    let mut card = danger_test_card_3des().unwrap();
    select_ep(&mut card);
    load(&mut card, &keys, 3000);
    purchase_with(&mut card, &keys, 100, 1, &composite_cache(7));
    let before = snapshot(&mut card, &EP_AID);
    let mut card = reload(&card.save_state());
    assert_eq!(snapshot(&mut card, &EP_AID), before);
    select_ep(&mut card);
    purchase(&mut card, &keys, 100, 2);
    assert_eq!(balance(&mut card), 2800);
}
