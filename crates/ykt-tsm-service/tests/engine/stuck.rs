//! Money flows left failed (tsm-gp.md §8): a top-up whose step failed before its MAC2 was
//! issued is proven not credited; one that failed after needs the card's proof.

use ykt_tsm::api::FlowStatus;
use ykt_tsm_service::engine::LoadVerdict;

use crate::support::*;

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
