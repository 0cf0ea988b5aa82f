//! Restarts (tsm-gp.md §8): the engine is dropped after each persisted step in turn — with the
//! step's relay message run on the card or lost on the way — and a new engine on the same
//! database takes the flow over with `resume` (or with the lost answer arriving late). The
//! flow ends as it would have, the card is written exactly once, and no step the store had
//! acknowledged is done again.

use ykt_card::Card;
use ykt_store::{CardState, FlowStatus as StoreStatus};
use ykt_tsm::api::{self, FlowResp, FlowStatus};
use ykt_tsm::{Management, RelayResponse};
use ykt_tsm_service::engine::{Engine, Start};

use crate::support::*;

/// How the new engine hears of the flow again.
#[derive(Clone, Copy, Debug)]
enum Comeback {
    /// The wallet asks to resume.
    Resume,
    /// The wallet sends the answer the old engine never got.
    LateAnswer,
}

/// Drives the flow `first` started on `engine`; at relay message `crash_at` the engine goes
/// away (after the card ran the message when `after_card`) and a new one takes over.
#[allow(clippy::too_many_arguments)]
async fn crash_once(
    db: &Db,
    vaults: &Vaults,
    engine: Engine,
    device: &str,
    mut resp: FlowResp,
    card: &mut Card,
    crash_at: usize,
    after_card: bool,
    comeback: Comeback,
    log: &mut Log,
) -> (Engine, FlowResp) {
    let txn = resp.txn_id.clone();
    let mut n = 1;
    loop {
        assert_eq!(
            resp.status,
            FlowStatus::Running,
            "crash point {crash_at} past the end"
        );
        let req = resp.relay.clone().unwrap();
        if n == crash_at {
            let acknowledged = resp.step_index;
            let late: Option<RelayResponse> = after_card.then(|| relay(card, &req, log));
            let version = engine.store().flow(&txn).await.unwrap().version;
            engine.store().close().await;
            drop(engine);
            let engine = db.engine(vaults).await;
            let resumed = match (comeback, late) {
                (Comeback::LateAnswer, Some(late)) => {
                    engine.apdu_result(device, &txn, &late, NOW_MS).await
                }
                _ => engine.resume(device, &txn, NOW_MS).await,
            }
            .unwrap();
            assert!(
                resumed.step_index >= acknowledged,
                "a persisted step was lost"
            );
            assert_eq!(
                engine.store().flow(&txn).await.unwrap().version,
                version + 1
            );
            let done = drive(&engine, device, resumed, card, log).await.unwrap();
            return (engine, done);
        }
        let answer = relay(card, &req, log);
        resp = engine
            .apdu_result(device, &txn, &answer, NOW_MS)
            .await
            .unwrap();
        n += 1;
    }
}

fn open_req() -> Start {
    Start::OpenCard(api::OpenCardReq {
        management: Management::Authorized,
        city_code: "1000".into(),
    })
}

#[tokio::test]
async fn open_card_survives_a_restart_after_every_step() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 7).await;
        let mut log = Log::default();
        let mut base = new_se(10);
        open(&engine, &device, "open-base", &mut base, &mut log).await;
        let messages = log.requests.len();
        assert!(messages > 15, "{messages}");
        let mut serial = 11u8;
        let mut engine = engine;
        for crash_at in 1..=messages {
            for (after_card, comeback) in [
                (false, Comeback::Resume),
                (true, Comeback::Resume),
                (true, Comeback::LateAnswer),
            ] {
                let what = format!("crash at {crash_at}, after card {after_card}, {comeback:?}");
                let mut card = new_se(serial);
                serial += 1;
                let txn = format!("open-{crash_at}-{after_card}-{comeback:?}");
                let first = engine
                    .start(&device, &txn, open_req(), NOW_MS)
                    .await
                    .unwrap();
                let mut log = Log::default();
                let (next, done) = crash_once(
                    db, &vaults, engine, &device, first, &mut card, crash_at, after_card, comeback,
                    &mut log,
                )
                .await;
                engine = next;
                assert_eq!(done.status, FlowStatus::Completed, "{what}");
                assert_eq!(done.instance_state, "ACTIVE", "{what}");
                // The purse's secret block and the SSD's first keys were each taken once.
                assert_eq!(log.accepted_store_data(0xE8), 1, "{what}");
                assert_eq!(log.accepted_store_data(0x88), 1, "{what}");
                let outcome = done.outcome.unwrap();
                let (card_no, seid) = (outcome.card_no.unwrap(), outcome.seid.unwrap());
                let row = engine.store().card(&seid, &card_no).await.unwrap();
                assert_eq!(
                    (row.state, row.flow_id),
                    (CardState::Active, None),
                    "{what}"
                );
                let flow = engine.store().flow(&txn).await.unwrap();
                assert_eq!(flow.status, StoreStatus::Completed, "{what}");
                assert_eq!(
                    balance(
                        &engine,
                        &device,
                        &format!("q-{txn}"),
                        &mut card,
                        &card_no,
                        &seid
                    )
                    .await,
                    0,
                    "{what}"
                );
            }
        }
        assert!(matches!(
            engine.store().verify_chain().await.unwrap(),
            ykt_store::ChainStatus::Intact { .. }
        ));
    })
    .await;
}

#[tokio::test]
async fn top_up_survives_a_restart_after_every_step_and_loads_once() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let mut engine = db.engine(&vaults).await;
        let device = device(&engine, 7).await;
        let mut card = new_se(90);
        let (card_no, seid) =
            open(&engine, &device, "open-90", &mut card, &mut Log::default()).await;
        let mut log = Log::default();
        top_up(&engine, &device, &mut card, &card_no, &seid, 100, &mut log).await;
        let messages = log.requests.len();
        assert!(messages >= 3, "{messages}");
        let mut expected = 100u32;
        for crash_at in 1..=messages {
            for (after_card, comeback) in [
                (false, Comeback::Resume),
                (true, Comeback::Resume),
                (true, Comeback::LateAnswer),
            ] {
                let what = format!("crash at {crash_at}, after card {after_card}, {comeback:?}");
                let amount = 10 + crash_at as u32;
                let order = engine
                    .create_order(
                        &device,
                        &api::TopupOrderReq {
                            card_no: card_no.clone(),
                            seid: seid.clone(),
                            amount,
                            pay_channel: "99".into(),
                        },
                    )
                    .await
                    .unwrap();
                engine.test_pay(&device, &order.order_id).await.unwrap();
                let txn = format!("topup-{crash_at}-{after_card}-{comeback:?}");
                let first = engine
                    .start(
                        &device,
                        &txn,
                        Start::TopUp(api::OrderReq {
                            order_id: order.order_id.clone(),
                        }),
                        NOW_MS,
                    )
                    .await
                    .unwrap();
                let mut log = Log::default();
                let (next, done) = crash_once(
                    db, &vaults, engine, &device, first, &mut card, crash_at, after_card, comeback,
                    &mut log,
                )
                .await;
                engine = next;
                expected += amount;
                assert_eq!(done.status, FlowStatus::Completed, "{what}");
                let load = done.outcome.unwrap().load.unwrap();
                assert_eq!(
                    (load.amount, load.new_balance),
                    (amount, expected),
                    "{what}"
                );
                assert_eq!(log.accepted_credits(), 1, "{what}");
                let stored = engine.store().topup(&order.order_id).await.unwrap();
                assert_eq!(stored.state.as_str(), "LOADED", "{what}");
                assert_eq!(stored.new_balance, Some(u64::from(expected)), "{what}");
            }
        }
        assert_eq!(
            balance(&engine, &device, "q-end", &mut card, &card_no, &seid).await,
            expected
        );
    })
    .await;
}
