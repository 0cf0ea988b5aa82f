//! The second-ticket priority rule (`ykt_terminal::ticket`) against the in-process test card:
//! rides come from the second ticket while it has any, then the fare from the e-purse; a card
//! without the second ticket pays from the e-purse; EF18 shows which product paid.

use ykt_apdu::StatusWord;
use ykt_purse::testing::{danger_test_card_3des, danger_test_card_with_second_ticket};
use ykt_purse::{EP_AID, SECOND_TICKET_AID, TICKET_TYPE_EPURSE, TICKET_TYPE_SECOND};
use ykt_terminal::load::{LoadFlow, LoadParams};
use ykt_terminal::tap::read_record;
use ykt_terminal::ticket::{self, Choice, ChoiceFlow, RIDE};
use ykt_terminal::validator::{Record, TapOutcome};
use ykt_terminal::{commands, drive};

use crate::validator::{Fault, Rig, TIME, link, load_params, purchase_tac_ok};

const FARE: u32 = 200;

#[test]
fn the_second_ticket_aid_mirrors_the_purse() {
    assert_eq!(ticket::SECOND_TICKET_AID, SECOND_TICKET_AID);
    assert_eq!(commands::PURSE_AID, EP_AID);
}

/// A rig on the card with both products: 10 000 fen on the e-purse, `rides` on the second ticket.
fn rig(rides: u32) -> Rig {
    let mut rig = Rig::new();
    rig.card = danger_test_card_with_second_ticket().unwrap();
    let (flow, first) = LoadFlow::start(load_params(10_000), &mut rig.host);
    drive(flow, first, link(&mut rig.card, Fault::None)).unwrap();
    if rides > 0 {
        let params = LoadParams {
            aid: SECOND_TICKET_AID.to_vec(),
            ..load_params(rides)
        };
        let (flow, first) = LoadFlow::start(params, &mut rig.host);
        drive(flow, first, link(&mut rig.card, Fault::None)).unwrap();
    }
    rig
}

fn choose(rig: &mut Rig) -> Choice {
    let (flow, first) = ChoiceFlow::start();
    drive(flow, first, link(&mut rig.card, Fault::None)).unwrap()
}

/// Choose, then the validator's purchase of the chosen product; the completed record.
fn ride(rig: &mut Rig) -> (Choice, ykt_terminal::purchase::PurchaseRecord) {
    let choice = choose(rig);
    let params = choice.purchase_params(FARE, 1, TIME, None);
    let tap = rig.purchase(params, Fault::None);
    let TapOutcome::Completed {
        record: Record::Purchase(record),
        ..
    } = tap.outcome
    else {
        panic!("the ride did not complete: {tap:?}");
    };
    assert!(purchase_tac_ok(&record));
    (choice, record)
}

fn balance_of(rig: &mut Rig, aid: &[u8]) -> u32 {
    let mut t = link(&mut rig.card, Fault::None);
    assert_eq!(t(&commands::select(aid)).unwrap().sw, StatusWord::SUCCESS);
    let r = t(&commands::get_balance()).unwrap();
    u32::from_be_bytes(r.data.try_into().unwrap())
}

/// The ticket-type byte (2) of the newest EF18 record of `aid`.
fn last_ticket_type(rig: &mut Rig, aid: &[u8]) -> u8 {
    let mut t = link(&mut rig.card, Fault::None);
    t(&commands::select(aid)).unwrap();
    let r = t(&read_record(0x18, 1, 23)).unwrap();
    assert_eq!(r.sw, StatusWord::SUCCESS);
    r.data[2]
}

#[test]
fn rides_come_from_the_second_ticket_then_the_fare_from_the_e_purse() {
    let mut rig = rig(2);
    for left in [2, 1] {
        let (choice, record) = ride(&mut rig);
        assert!(
            matches!(choice, Choice::SecondTicket { rides, .. } if rides == left),
            "{choice:?}"
        );
        assert_eq!((record.amount, record.balance_before), (RIDE, left));
        assert_eq!(balance_of(&mut rig, &SECOND_TICKET_AID), left - 1);
        assert_eq!(balance_of(&mut rig, &EP_AID), 10_000);
        assert_eq!(
            last_ticket_type(&mut rig, &SECOND_TICKET_AID),
            TICKET_TYPE_SECOND
        );
    }
    let (choice, record) = ride(&mut rig);
    assert_eq!(choice, Choice::EPurse);
    assert_eq!((record.amount, record.balance_before), (FARE, 10_000));
    assert_eq!(balance_of(&mut rig, &EP_AID), 10_000 - FARE);
    assert_eq!(balance_of(&mut rig, &SECOND_TICKET_AID), 0);
    assert_eq!(last_ticket_type(&mut rig, &EP_AID), TICKET_TYPE_EPURSE);
}

#[test]
fn a_second_ticket_never_loaded_is_passed_over() {
    let mut rig = rig(0);
    let (choice, record) = ride(&mut rig);
    assert_eq!(choice, Choice::EPurse);
    assert_eq!(record.amount, FARE);
}

#[test]
fn a_card_without_the_second_ticket_pays_from_the_e_purse() {
    let mut rig = Rig::new();
    rig.card = danger_test_card_3des().unwrap();
    let (flow, first) = LoadFlow::start(load_params(1_000), &mut rig.host);
    drive(flow, first, link(&mut rig.card, Fault::None)).unwrap();
    let (choice, record) = ride(&mut rig);
    assert_eq!(choice, Choice::EPurse);
    assert_eq!((record.amount, record.balance_before), (FARE, 1_000));
    assert_eq!(last_ticket_type(&mut rig, &EP_AID), TICKET_TYPE_EPURSE);
}

#[test]
fn purchase_params_name_the_chosen_product() {
    let p = Choice::EPurse.purchase_params(FARE, 1, TIME, None);
    assert_eq!((p.aid.as_slice(), p.amount), (&EP_AID[..], FARE));
}
