//! The flows end to end (tsm-gp.md §7, §8): open card, top-up, card return, delete, transfer,
//! queries.

use ykt_card::{Atr, Card};
use ykt_purse::testing::danger_test_entropy;
use ykt_tsm::*;

use crate::support::*;

fn purse_transcript(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ykt-purse/tests/data")
        .join(name)
}

/// The card with the scripted randoms of the e-purse brief (a state-file round trip).
fn with_brief_randoms(card: &Card) -> Card {
    let mut c = Card::load_state(
        &card.save_state(),
        Atr::default_t1(),
        Box::new(danger_test_entropy()),
        &Library,
    )
    .unwrap();
    c.set_library(Box::new(Library));
    c.power_on();
    c
}

#[test]
fn open_card_gives_a_purse_that_replays_the_brief_load_and_purchase() {
    let mut world = World::new();
    let mut card = new_se(1);
    let mut log = Log::default();
    let instance = open(&mut world, &mut card, Management::Authorized, &mut log);
    assert_eq!(instance.card_number, test_card().card_number);
    assert_eq!(instance.ssd_aid.as_bytes(), &proposals::SSD_AID);
    // The registry: the SSD PERSONALIZED-or-SELECTABLE, the purse SELECTABLE under it, the ELF.
    let reg = registry(&mut world, &mut card);
    assert_eq!(reg[SSD].0, "SSD");
    assert_eq!(reg[PURSE], ("APP".to_string(), 0x07));
    assert_eq!(reg[PURSE_ELF].0, "PKG");
    assert_eq!(
        reg["A0000001515350"].0, "PKG",
        "the SD package, listed after the applications"
    );
    // The purse answers the §8 traces byte for byte.
    for t in ["ep_s8_1_load_3des.apdu", "ep_s8_2_purchase_3des.apdu"] {
        let mut c = with_brief_randoms(&card);
        assert!(ykt_card::testing::check_transcript(&mut c, purse_transcript(t)) > 0);
    }
    // Relay messages: secured ones carry one command; the last one is marked final.
    assert!(log.requests.last().unwrap().last);
    assert!(
        log.requests
            .iter()
            .all(|r| r.capdus.len() == r.expect.len())
    );
}

#[test]
fn open_card_under_delegated_management_then_delete() {
    let mut world = World::new();
    let mut card = new_se(2);
    let instance = open(
        &mut world,
        &mut card,
        Management::Delegated,
        &mut Log::default(),
    );
    let reg = registry(&mut world, &mut card);
    assert_eq!(reg[PURSE].1, 0x07);
    let mut flow = Flow::delete_card("delete-1", parties(), &instance).unwrap();
    let outcome = drive(&mut flow, &mut world, &mut card, &mut Log::default()).unwrap();
    assert_eq!(outcome.instance.unwrap().state, InstanceState::Deleted);
    let reg = registry(&mut world, &mut card);
    assert!(!reg.contains_key(PURSE) && !reg.contains_key(PURSE_ELF) && !reg.contains_key(SSD));
}

#[test]
fn top_up_of_100_yuan_is_loaded_once_per_order() {
    let mut world = World::new();
    let mut card = new_se(3);
    let instance = open(
        &mut world,
        &mut card,
        Management::Authorized,
        &mut Log::default(),
    );
    let outcome = top_up(
        &mut world,
        &mut card,
        &instance,
        "order-1",
        10_000,
        &mut Log::default(),
    )
    .unwrap();
    let receipt = outcome.load.unwrap();
    assert_eq!((receipt.amount, receipt.new_balance), (10_000, 10_000));
    assert_eq!(receipt.tac.as_bytes().len(), 4);
    assert_eq!(balance(&mut world, &mut card, &instance), 10_000);
    assert!(matches!(
        world.orders.state("order-1"),
        Some(OrderState::Loaded(_))
    ));
    // The same order again: refused before anything reaches the card.
    assert!(matches!(
        top_up(
            &mut world,
            &mut card,
            &instance,
            "order-1",
            10_000,
            &mut Log::default()
        ),
        Err(Error::DuplicateOrder)
    ));
    assert_eq!(balance(&mut world, &mut card, &instance), 10_000);
    // An unpaid order fails at the payment step and loads nothing.
    world.orders.begin("order-2", "s2").unwrap();
    let mut flow = Flow::top_up(
        "s2",
        parties(),
        &instance,
        OrderRef {
            order_id: "order-2".into(),
            amount: 500,
        },
    )
    .unwrap();
    let err = drive(&mut flow, &mut world, &mut card, &mut Log::default()).unwrap_err();
    assert!(matches!(
        err,
        Error::Payment {
            step: StepName::ConfirmPayment,
            error: PaymentError::NotPaid
        }
    ));
    assert_eq!(
        flow.state().instance_state(),
        InstanceState::Failed(StepName::ConfirmPayment)
    );
    assert_eq!(
        flow.state().instance_state().name(),
        "FAILED_CONFIRM_PAYMENT"
    );
    assert_eq!(balance(&mut world, &mut card, &instance), 10_000);
}

#[test]
fn card_return_refunds_exactly_the_balance_and_removes_the_instance() {
    let mut world = World::new();
    let mut card = new_se(4);
    let instance = open(
        &mut world,
        &mut card,
        Management::Authorized,
        &mut Log::default(),
    );
    top_up(
        &mut world,
        &mut card,
        &instance,
        "o1",
        10_000,
        &mut Log::default(),
    )
    .unwrap();
    let mut flow = Flow::card_return("return-1", parties(), &instance).unwrap();
    let outcome = drive(&mut flow, &mut world, &mut card, &mut Log::default()).unwrap();
    assert_eq!(outcome.balance, Some(10_000));
    assert_eq!(outcome.instance.unwrap().state, InstanceState::Deleted);
    let refund = world.payments.refunds["return-1"];
    assert_eq!(
        (refund.card_number, refund.amount),
        (instance.card_number, 10_000)
    );
    let reg = registry(&mut world, &mut card);
    assert!(!reg.contains_key(PURSE), "{reg:?}");
    assert!(!reg.contains_key(SSD), "{reg:?}");
    // The SE can be opened again afterwards.
    open(
        &mut world,
        &mut card,
        Management::Authorized,
        &mut Log::default(),
    );
}

#[test]
fn delete_card_with_a_balance_is_refused() {
    let mut world = World::new();
    let mut card = new_se(5);
    let instance = open(
        &mut world,
        &mut card,
        Management::Authorized,
        &mut Log::default(),
    );
    top_up(
        &mut world,
        &mut card,
        &instance,
        "o1",
        1,
        &mut Log::default(),
    )
    .unwrap();
    let mut flow = Flow::delete_card("delete-1", parties(), &instance).unwrap();
    let err = drive(&mut flow, &mut world, &mut card, &mut Log::default()).unwrap_err();
    assert!(matches!(err, Error::BalanceNotZero { balance: 1 }));
    assert_eq!(err.code(), "5002");
    assert_eq!(registry(&mut world, &mut card)[PURSE].1, 0x07);
}

#[test]
fn transfer_moves_the_balance_to_a_second_se() {
    let mut world = World::new();
    let mut old = new_se(6);
    let mut new = new_se(7);
    let instance = open(
        &mut world,
        &mut old,
        Management::Authorized,
        &mut Log::default(),
    );
    top_up(
        &mut world,
        &mut old,
        &instance,
        "o1",
        4_321,
        &mut Log::default(),
    )
    .unwrap();
    let mut out = Flow::transfer_out("out-1", parties(), &instance, "transfer-1").unwrap();
    let outcome = drive(&mut out, &mut world, &mut old, &mut Log::default()).unwrap();
    assert_eq!(outcome.balance, Some(4_321));
    assert_eq!(outcome.instance.unwrap().state, InstanceState::Deleted);
    assert_eq!(world.payments.escrows["transfer-1"].0.amount, 4_321);
    assert!(!registry(&mut world, &mut old).contains_key(PURSE));

    let mut inflow = Flow::transfer_in(
        "in-1",
        parties(),
        Management::Authorized,
        test_card(),
        "transfer-1",
    );
    assert_eq!(inflow.state().instance_state(), InstanceState::TransferIn);
    let outcome = drive(&mut inflow, &mut world, &mut new, &mut Log::default()).unwrap();
    let moved = outcome.instance.unwrap();
    assert_eq!(moved.state, InstanceState::Active);
    assert_eq!(moved.card_number, instance.card_number);
    assert_ne!(moved.seid, instance.seid);
    assert_eq!(outcome.load.unwrap().new_balance, 4_321);
    assert!(world.payments.escrows["transfer-1"].1, "escrow settled");
    assert_eq!(balance(&mut world, &mut new, &moved), 4_321);
}

#[test]
fn a_flow_for_one_se_refuses_another() {
    let mut world = World::new();
    let mut a = new_se(8);
    let mut b = new_se(9);
    let instance = open(
        &mut world,
        &mut a,
        Management::Authorized,
        &mut Log::default(),
    );
    let mut flow = Flow::card_data_query("q", parties(), &instance).unwrap();
    let err = drive(&mut flow, &mut world, &mut b, &mut Log::default()).unwrap_err();
    assert!(matches!(
        err,
        Error::Answer {
            step: StepName::RegisterSe,
            error: AnswerError::SeId
        }
    ));
}

#[test]
fn open_card_walks_the_life_cycle_of_the_brief() {
    let mut world = World::new();
    let mut card = new_se(10);
    let mut flow = Flow::open_card("open-1", parties(), Management::Authorized, test_card());
    drive(&mut flow, &mut world, &mut card, &mut Log::default()).unwrap();
    let names: Vec<String> = flow
        .state()
        .history
        .iter()
        .map(InstanceState::name)
        .collect();
    assert_eq!(
        names,
        [
            "NONE",
            "SSD_CREATING",
            "SSD_READY",
            "APP_LOADING",
            "APP_INSTALLED",
            "PERSONALISING",
            "ACTIVE"
        ]
    );
    assert_eq!(flow.state().se_state, SeState::IsdKeysBound);
}

#[test]
fn lock_and_unlock() {
    let mut world = World::new();
    let mut card = new_se(11);
    let instance = open(
        &mut world,
        &mut card,
        Management::Authorized,
        &mut Log::default(),
    );
    let mut flow = Flow::lock_card("lock", parties(), &instance).unwrap();
    let locked = drive(&mut flow, &mut world, &mut card, &mut Log::default())
        .unwrap()
        .instance
        .unwrap();
    assert_eq!(locked.state, InstanceState::Locked);
    assert_eq!(registry(&mut world, &mut card)[PURSE].1 & 0x80, 0x80);
    // A terminal cannot select the locked purse.
    let sw = card
        .transmit(&hex::decode("00A4040008A00000063201010500").unwrap())
        .unwrap();
    assert_ne!(sw[sw.len() - 2..], [0x90, 0x00]);
    assert!(matches!(
        Flow::top_up(
            "t",
            parties(),
            &locked,
            OrderRef {
                order_id: "o".into(),
                amount: 1
            }
        ),
        Err(Error::State)
    ));
    let mut flow = Flow::unlock_card("unlock", parties(), &locked).unwrap();
    let active = drive(&mut flow, &mut world, &mut card, &mut Log::default())
        .unwrap()
        .instance
        .unwrap();
    assert_eq!(active.state, InstanceState::Active);
    assert_eq!(balance(&mut world, &mut card, &active), 0);
}

#[test]
fn a_status_query_follows_6310_through_every_part() {
    let mut world = World::new();
    let mut card = new_se_with(12, 16);
    open(
        &mut world,
        &mut card,
        Management::Authorized,
        &mut Log::default(),
    );
    let mut log = Log::default();
    let mut flow = Flow::status_query("status", parties(), None);
    drive(&mut flow, &mut world, &mut card, &mut log).unwrap();
    let parts = log
        .responses
        .iter()
        .flat_map(|r| &r.rapdus)
        .filter(|r| r.as_bytes().ends_with(&[0x63, 0x10]))
        .count();
    assert!(parts >= 1, "the listing came in parts");
    let reg = registry(&mut world, &mut card);
    let others = reg.keys().filter(|k| k.starts_with("A000000999")).count();
    assert_eq!(others, 16, "{reg:?}");
    assert!(reg.contains_key(PURSE) && reg.contains_key(SSD) && reg.contains_key(PURSE_ELF));
}
