//! Money flows left failed (tsm-gp.md §8): a top-up whose step failed before its MAC2 was
//! issued is proven not credited; one that failed after needs the card's proof.

use ykt_tsm::api::{self, FlowStatus};
use ykt_tsm_service::engine::{LoadVerdict, Start};

use crate::support::*;

/// Orders and pays `amount` for the card and starts its load; answers every message from the
/// card until the first command starting with `refuse` (CLA INS), which the card refuses.
async fn failing_top_up(
    engine: &ykt_tsm_service::Engine,
    device: &str,
    card: &mut ykt_card::Card,
    (card_no, seid): (&str, &str),
    amount: u32,
    refuse: [u8; 2],
) -> (String, String) {
    let order = engine
        .create_order(
            device,
            &api::TopupOrderReq {
                card_no: card_no.into(),
                seid: seid.into(),
                amount,
                pay_channel: "99".into(),
            },
        )
        .await
        .unwrap();
    engine.test_pay(device, &order.order_id).await.unwrap();
    let txn = format!("topup-{}", order.order_id);
    let mut resp = engine
        .start(
            device,
            &txn,
            Start::TopUp(api::OrderReq {
                order_id: order.order_id.clone(),
            }),
            NOW_MS,
        )
        .await
        .unwrap();
    let mut log = Log::default();
    loop {
        let req = resp.relay.clone().unwrap();
        let answer = if req.capdus.iter().any(|c| c.as_bytes().starts_with(&refuse)) {
            ykt_tsm::RelayResponse {
                session_id: req.session_id.clone(),
                seq: req.seq,
                rapdus: vec![ykt_tsm::hex::Hex(vec![0x6A, 0x80])],
            }
        } else {
            relay(card, &req, &mut log)
        };
        match engine.apdu_result(device, &txn, &answer, NOW_MS).await {
            Ok(next) => resp = next,
            Err(_) => break,
        }
        assert_eq!(resp.status, FlowStatus::Running, "{txn} ended");
    }
    (txn, order.order_id)
}

#[tokio::test]
async fn failed_top_ups_are_listed_with_what_the_records_prove() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 44).await;
        let mut card = new_se(230);
        let mut log = Log::default();
        let (card_no, seid) = open(&engine, &device, "open-230", &mut card, &mut log).await;
        assert!(engine.admin_stuck_money().await.unwrap().is_empty());

        // INITIALIZE FOR LOAD refused: no MAC2 ever left.
        let (early, early_order) = failing_top_up(
            &engine,
            &device,
            &mut card,
            (&card_no, &seid),
            300,
            [0x80, 0x50],
        )
        .await;
        let stuck = engine.admin_stuck_money().await.unwrap();
        assert_eq!(stuck.len(), 1, "{stuck:?}");
        assert_eq!(stuck[0].txn_id, early);
        assert_eq!(stuck[0].kind, "top_up");
        assert!(stuck[0].step.starts_with("FAILED_"), "{}", stuck[0].step);
        assert_eq!(stuck[0].order_id.as_deref(), Some(early_order.as_str()));
        assert_eq!(stuck[0].amount_fen, Some(300));
        assert_eq!(stuck[0].verdict, LoadVerdict::NotCredited);
        // The admin API's answer (`GET /admin/v1/money-flows`) names no card number.
        let json = serde_json::to_value(&stuck[0]).unwrap();
        assert_eq!(json["verdict"], "NOT_CREDITED");
        assert!(!json.to_string().contains(&card_no), "{json}");
        assert_eq!(
            engine.order(&device, &early_order).await.unwrap().state,
            "PAID"
        );

        // The resume finishes it: nothing is stuck any more.
        let resumed = engine.resume(&device, &early, NOW_MS).await.unwrap();
        let done = drive(&engine, &device, resumed, &mut card, &mut log)
            .await
            .unwrap();
        assert_eq!(done.status, FlowStatus::Completed);
        assert!(engine.admin_stuck_money().await.unwrap().is_empty());

        // CREDIT FOR LOAD refused: a MAC2 left, only the card can tell.
        let (late, late_order) = failing_top_up(
            &engine,
            &device,
            &mut card,
            (&card_no, &seid),
            200,
            [0x80, 0x52],
        )
        .await;
        let stuck = engine.admin_stuck_money().await.unwrap();
        assert_eq!(stuck.len(), 1, "{stuck:?}");
        assert_eq!(stuck[0].txn_id, late);
        assert_eq!(stuck[0].amount_fen, Some(200));
        assert_eq!(stuck[0].verdict, LoadVerdict::CardMustProve);
        assert_eq!(
            engine.order(&device, &late_order).await.unwrap().state,
            "LOAD_REQUESTED"
        );
    })
    .await;
}
