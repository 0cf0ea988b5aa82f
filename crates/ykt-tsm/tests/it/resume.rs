//! Crashes (tsm-gp.md §8): the flow's memory is lost after any relay message — before it
//! reached the card, or after the card ran it and before its answer came back — and the flow is
//! rebuilt from its last persisted state. It probes the card before re-sending anything.

use ykt_card::Card;
use ykt_tsm::*;

use crate::support::*;

/// Runs `make()` against `card`, crashing once at relay message `crash_at` (1-based):
/// `after_card` decides whether the lost message reached the card. Returns the outcome and the
/// log of everything the card saw.
fn run_with_crash(
    world: &mut World,
    card: &mut Card,
    mut flow: Flow,
    crash_at: u32,
    after_card: bool,
    log: &mut Log,
) -> Outcome {
    let mut response: Option<RelayResponse> = None;
    let mut crashed = false;
    loop {
        let out = flow
            .next(&mut world.env(), response.take().as_ref())
            .unwrap();
        // The store: persisted before the message is released.
        let persisted = serde_json::to_string(flow.state()).unwrap();
        match out {
            Output::Done(outcome) => return outcome,
            Output::Relay(req) => {
                if !crashed && req.seq == crash_at {
                    crashed = true;
                    if after_card {
                        let resp = relay(card, &req);
                        log.requests.push(req);
                        log.responses.push(resp);
                    }
                    drop(flow);
                    let state: FlowState = serde_json::from_str(&persisted).unwrap();
                    flow = Flow::resume(state);
                    continue;
                }
                let resp = relay(card, &req);
                log.requests.push(req);
                log.responses.push(resp.clone());
                response = Some(resp);
            }
        }
    }
}

#[test]
fn open_card_survives_a_crash_at_every_message() {
    let mut world = World::new();
    let mut card = new_se(20);
    let mut log = Log::default();
    open(&mut world, &mut card, Management::Authorized, &mut log);
    let messages = log.requests.len() as u32;
    let expected = registry(&mut world, &mut card);
    assert!(messages > 15, "{messages}");
    for crash_at in 1..=messages {
        for after_card in [false, true] {
            let mut world = World::new();
            let mut card = new_se(20);
            let mut log = Log::default();
            let flow = Flow::open_card("open-1", parties(), Management::Authorized, test_card());
            let outcome =
                run_with_crash(&mut world, &mut card, flow, crash_at, after_card, &mut log);
            let what = format!("crash at {crash_at}, after card: {after_card}");
            assert_eq!(
                outcome.instance.unwrap().state,
                InstanceState::Active,
                "{what}"
            );
            // The purse's last (secret) block and the SSD's DGI 8001 were each accepted once.
            assert_eq!(log.accepted_store_data(0xE8), 1, "{what}");
            assert_eq!(log.accepted_store_data(0x88), 1, "{what}");
            assert_eq!(registry(&mut world, &mut card), expected, "{what}");
        }
    }
}

#[test]
fn delegated_open_card_survives_a_crash_at_every_message() {
    let mut world = World::new();
    let mut card = new_se(21);
    let mut log = Log::default();
    open(&mut world, &mut card, Management::Delegated, &mut log);
    let messages = log.requests.len() as u32;
    let expected = registry(&mut world, &mut card);
    for crash_at in 1..=messages {
        let mut world = World::new();
        let mut card = new_se(21);
        let mut log = Log::default();
        let flow = Flow::open_card("open-1", parties(), Management::Delegated, test_card());
        let outcome = run_with_crash(&mut world, &mut card, flow, crash_at, true, &mut log);
        assert_eq!(outcome.instance.unwrap().state, InstanceState::Active);
        assert_eq!(log.accepted_store_data(0xE8), 1);
        assert_eq!(
            registry(&mut world, &mut card),
            expected,
            "crash at {crash_at}"
        );
    }
}

#[test]
fn top_up_survives_a_crash_at_every_message_and_loads_once() {
    let mut base_world = World::new();
    let mut base = new_se(22);
    let instance = open(
        &mut base_world,
        &mut base,
        Management::Authorized,
        &mut Log::default(),
    );
    let mut log = Log::default();
    top_up(
        &mut base_world,
        &mut base.clone_state(),
        &instance,
        "o",
        100,
        &mut log,
    )
    .unwrap();
    let messages = log.requests.len() as u32;
    for crash_at in 1..=messages {
        for after_card in [false, true] {
            let mut world = World::new();
            let mut card = new_se(22);
            let instance = open(
                &mut world,
                &mut card,
                Management::Authorized,
                &mut Log::default(),
            );
            world.payments.pay("o", instance.card_number, 10_000);
            let flow = Flow::top_up(
                "topup-o",
                parties(),
                &instance,
                OrderRef {
                    order_id: "o".into(),
                    amount: 10_000,
                },
            )
            .unwrap();
            let outcome = run_with_crash(
                &mut world,
                &mut card,
                flow,
                crash_at,
                after_card,
                &mut Log::default(),
            );
            let what = format!("crash at {crash_at}, after card: {after_card}");
            assert_eq!(outcome.load.unwrap().new_balance, 10_000, "{what}");
            assert_eq!(balance(&mut world, &mut card, &instance), 10_000, "{what}");
        }
    }
}

#[test]
fn card_return_survives_a_crash_at_every_message() {
    let setup = |world: &mut World, card: &mut Card| {
        let instance = open(world, card, Management::Authorized, &mut Log::default());
        top_up(world, card, &instance, "o", 777, &mut Log::default()).unwrap();
        instance
    };
    let mut world = World::new();
    let mut card = new_se(23);
    let instance = setup(&mut world, &mut card);
    let mut log = Log::default();
    let mut flow = Flow::card_return("r", parties(), &instance).unwrap();
    drive(&mut flow, &mut world, &mut card, &mut log).unwrap();
    let messages = log.requests.len() as u32;
    for crash_at in 1..=messages {
        let mut world = World::new();
        let mut card = new_se(23);
        let instance = setup(&mut world, &mut card);
        let flow = Flow::card_return("r", parties(), &instance).unwrap();
        let outcome = run_with_crash(
            &mut world,
            &mut card,
            flow,
            crash_at,
            true,
            &mut Log::default(),
        );
        assert_eq!(outcome.balance, Some(777), "crash at {crash_at}");
        assert_eq!(world.payments.refunds["r"].amount, 777);
        assert_eq!(world.payments.refunds.len(), 1);
        assert!(!registry(&mut world, &mut card).contains_key(PURSE));
    }
}

/// A clone of a card through its state file.
trait CloneState {
    fn clone_state(&self) -> Card;
}

impl CloneState for Card {
    fn clone_state(&self) -> Card {
        let mut c = Card::load_state(
            &self.save_state(),
            ykt_card::Atr::default_t1(),
            Box::new(ykt_card::SeededRandom::new(99)),
            &Library,
        )
        .unwrap();
        c.set_library(Box::new(Library));
        c.power_on();
        c
    }
}
