//! The second ticket type (第二票种, conformance.md §4.2, L): a second instance of the applet with
//! its own AID, profile, keys, balance, counters and EF18.

use ykt_card::Card;
use ykt_card::testing::check_transcript;
use ykt_crypto::purse::PurseAlgorithm;
use ykt_purse::testing::{TEST_SECOND_TICKET_ASN, danger_test_card_with_second_ticket};
use ykt_purse::{EP_AID, SECOND_TICKET_AID};

use crate::support::*;

fn keys() -> (Keys, Keys) {
    (
        Keys::test(PurseAlgorithm::Tdes),
        Keys::for_asn(PurseAlgorithm::Tdes, &TEST_SECOND_TICKET_ASN),
    )
}

/// SE-T2-SEL-001: discovery and selection, as a transcript.
#[test]
fn selection_transcript() {
    let mut card = danger_test_card_with_second_ticket().unwrap();
    check_transcript(&mut card, data_path("t2_select.apdu"));
}

/// SE-T2-PUR-001 / SE-T2-REC-001: deducting from the second ticket leaves the e-purse alone, and
/// each instance's records show its ticket type.
#[test]
fn deduct_from_the_second_ticket() {
    let (ep, t2) = keys();
    let mut card = danger_test_card_with_second_ticket().unwrap();
    select_ep(&mut card);
    load(&mut card, &ep, 1000);
    assert_eq!(select_aid(&mut card, &SECOND_TICKET_AID), 0x9000);
    assert_eq!(balance(&mut card), 0);
    let l = load(&mut card, &t2, 20);
    assert_eq!(l.counter, 0, "its own online counter");
    let p = purchase(&mut card, &t2, 1, 1);
    assert_eq!(p.counter, 0, "its own offline counter");
    assert_eq!(balance(&mut card), 19);
    let recs = records(&mut card, 0x18);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0][2], ykt_purse::TICKET_TYPE_SECOND);
    assert_eq!(recs[0][9], 0x06);
    select_ep(&mut card);
    assert_eq!(balance(&mut card), 1000);
    let recs = records(&mut card, 0x18);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0][2], ykt_purse::TICKET_TYPE_EPURSE);
    assert_eq!(
        &recs[0][2..5],
        &[0, 0, 0],
        "e-purse records keep the PBOC layout"
    );
}

/// SE-T2-PUR-002: an exhausted second ticket refuses (9401); the terminal falls back to the e-purse.
#[test]
fn exhausted_second_ticket_falls_back_to_the_e_purse() {
    let (ep, t2) = keys();
    let mut card = danger_test_card_with_second_ticket().unwrap();
    select_ep(&mut card);
    load(&mut card, &ep, 500);
    select_aid(&mut card, &SECOND_TICKET_AID);
    load(&mut card, &t2, 2);
    purchase(&mut card, &t2, 1, 1);
    purchase(&mut card, &t2, 1, 2);
    assert_eq!(sw(&mut card, &init_purchase_cmd(1, false)), 0x9401);
    select_ep(&mut card);
    purchase(&mut card, &ep, 200, 3);
    assert_eq!(balance(&mut card), 300);
}

/// The instances do not share keys, limits or sessions.
#[test]
fn instances_are_independent() {
    let (ep, t2) = keys();
    let mut card = danger_test_card_with_second_ticket().unwrap();
    select_aid(&mut card, &SECOND_TICKET_AID);
    // The second ticket's profile caps it at 100 units (L).
    assert_eq!(sw(&mut card, &init_load_cmd(101)), 0x6A80);
    // The e-purse keys do not work on it.
    let (r, s) = send(&mut card, &init_load_cmd(10));
    assert_eq!(s, 0x9000);
    assert_eq!(sw(&mut card, &credit_cmd(&ep, &r, 10)), 0x9302);
    // A session does not survive selecting the other instance.
    let (r, _) = send(&mut card, &init_load_cmd(10));
    select_ep(&mut card);
    select_aid(&mut card, &SECOND_TICKET_AID);
    assert_eq!(sw(&mut card, &credit_cmd(&t2, &r, 10)), 0x6985);
    assert_eq!(balance(&mut card), 0);
    // Blocking the second ticket leaves the e-purse usable.
    assert_eq!(maintenance(&mut card, &t2, 0x84, 0x1E, 0, 0), 0x9000);
    assert_eq!(select_aid(&mut card, &SECOND_TICKET_AID), 0x6A81);
    assert_eq!(select_ep(&mut card), 0x9000);
    load(&mut card, &ep, 10);
    // Both survive a state file round trip.
    let mut card = reload(&card.save_state());
    assert_eq!(select_aid(&mut card, &SECOND_TICKET_AID), 0x6A81);
    assert_eq!(snapshot(&mut card, &EP_AID).balance, 10);
}

/// PIN management uses the instance's own DRPK/DPUK and PIN.
#[test]
fn pin_keys_are_per_instance() {
    use ykt_crypto::TdesKey;
    use ykt_crypto::purse::{secure_messaging_mac, tac};
    let (ep, t2) = keys();
    let mut card = danger_test_card_with_second_ticket().unwrap();
    select_aid(&mut card, &SECOND_TICKET_AID);
    let reload_pin = |k: &Keys, pin: &[u8]| {
        let mut c = vec![0x80, 0x5E, 0x00, 0x00, (pin.len() + 4) as u8];
        c.extend_from_slice(pin);
        c.extend_from_slice(&tac(&k.alg, &k.drpk, pin));
        c
    };
    assert_eq!(sw(&mut card, &reload_pin(&ep, &[0x24, 0x68])), 0x9302);
    assert_eq!(sw(&mut card, &reload_pin(&t2, &[0x24, 0x68])), 0x9000);
    for _ in 0..3 {
        sw(&mut card, &h("0020000002 1111"));
    }
    assert_eq!(sw(&mut card, &h("0020000002 2468")), 0x6983);
    // PIN UNBLOCK with the second ticket's DPUK (the e-purse's is refused).
    let unblock = |card: &mut Card, k: &Keys| {
        let (ch, s) = send(card, &h("0084000004"));
        assert_eq!(s, 0x9000);
        let block =
            TdesKey::two_key(*k.dpuk.expose()).encrypt_block(&[0x02, 0x24, 0x68, 0x80, 0, 0, 0, 0]);
        let mut c = h("842400000C");
        c.extend_from_slice(&block);
        let mac = secure_messaging_mac(&k.alg, &k.dpuk, &ch, &c);
        c.extend_from_slice(&mac);
        sw(card, &c)
    };
    assert_eq!(unblock(&mut card, &ep), 0x6988);
    assert_eq!(unblock(&mut card, &t2), 0x9000);
    assert_eq!(sw(&mut card, &h("0020000002 2468")), 0x9000);
    // The e-purse PIN is untouched.
    select_ep(&mut card);
    assert_eq!(sw(&mut card, &h("0020000003 123456")), 0x9000);
}
