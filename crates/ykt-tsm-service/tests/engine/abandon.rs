//! The operator's abandon of a stuck money flow (tsm-gp.md §8 "never assume success"): a
//! failed top-up with no MAC2 issued ends with its order cancelled and refunded, a failed
//! transfer in with its escrow released for a new transfer in; a flow whose MAC2 left is
//! refused; repeated, the same answer and nothing written twice.

use ykt_store::{AuditKind, FlowStatus as StoreStatus, Store};
use ykt_tsm::Management;
use ykt_tsm::api::{self, FlowStatus};
use ykt_tsm_service::engine::{AbandonError, LoadVerdict, Start, proposals};

use crate::support::*;

async fn operator_rows(store: &Store, actor: &str) -> Vec<ykt_store::AuditRecord> {
    store
        .audit_records(1, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.actor == actor)
        .collect()
}

#[tokio::test]
async fn a_top_up_never_credited_is_abandoned_and_refunded_once() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 45).await;
        let mut card = new_se(240);
        let mut log = Log::default();
        let (card_no, seid) = open(&engine, &device, "open-240", &mut card, &mut log).await;

        // INITIALIZE FOR LOAD refused: no MAC2 ever left.
        let (txn, order_id) = failing_top_up(
            &engine,
            &device,
            &mut card,
            (&card_no, &seid),
            300,
            [0x80, 0x50],
        )
        .await;
        assert_eq!(
            engine.admin_stuck_money().await.unwrap()[0].verdict,
            LoadVerdict::NotCredited
        );

        // Refusals write nothing.
        let head = engine.store().audit_head().await.unwrap();
        let e = engine
            .admin_abandon_flow("op-ana", &txn, "  ", NOW_MS)
            .await
            .unwrap_err();
        assert!(matches!(e, AbandonError::BadReason(_)), "{e:?}");
        assert_eq!(e.http_status(), 400);
        let long = "x".repeat(proposals::ABANDON_REASON_MAX_CHARS + 1);
        let e = engine
            .admin_abandon_flow("op-ana", &txn, &long, NOW_MS)
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), 400);
        let e = engine
            .admin_abandon_flow("op-ana", "no-such-flow", "gone", NOW_MS)
            .await
            .unwrap_err();
        assert!(matches!(e, AbandonError::NotFound), "{e:?}");
        assert_eq!(e.http_status(), 404);
        let e = engine
            .admin_abandon_flow("op-ana", "open-240", "not money", NOW_MS)
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), 409);
        assert!(e.to_string().contains("not a money flow"), "{e}");
        assert_eq!(engine.store().audit_head().await.unwrap(), head);
        assert_eq!(
            engine.order(&device, &order_id).await.unwrap().state,
            "PAID"
        );

        let done = engine
            .admin_abandon_flow("op-ana", &txn, " payer asked for the money back ", NOW_MS)
            .await
            .unwrap();
        assert_eq!(done.txn_id, txn);
        assert_eq!(done.verdict, LoadVerdict::NotCredited);
        assert_eq!(done.order_id.as_deref(), Some(order_id.as_str()));
        assert_eq!(done.amount_fen, Some(300));
        assert_eq!(done.operator, "op-ana");
        assert_eq!(done.reason, "payer asked for the money back");
        assert!(done.from_step.starts_with("FAILED_"), "{}", done.from_step);
        assert!(
            done.step.starts_with(proposals::ABANDONED_STEP_PREFIX),
            "{}",
            done.step
        );
        // The order is cancelled and its payment refunded, on the order's card and amount.
        assert_eq!(
            engine.order(&device, &order_id).await.unwrap().state,
            "CANCELLED"
        );
        let refund_id = done.refund_id.clone().unwrap();
        let refund = engine.store().refund(&refund_id).await.unwrap().unwrap();
        assert_eq!(
            (refund.card_no.as_str(), refund.amount_fen),
            (card_no.as_str(), 300)
        );
        assert!(refund.account.contains(&order_id), "{}", refund.account);
        let row = engine.store().flow(&txn).await.unwrap();
        assert_eq!(
            (row.status, row.step.as_str()),
            (StoreStatus::Failed, done.step.as_str())
        );
        // The card instance is free again.
        assert_eq!(
            engine.store().card(&seid, &card_no).await.unwrap().flow_id,
            None
        );
        assert!(engine.admin_stuck_money().await.unwrap().is_empty());
        // The operator's audit row: who, why, before → after; no card number.
        let rows = operator_rows(engine.store(), "op-ana").await;
        let action = rows
            .iter()
            .find(|r| r.event.kind == AuditKind::OperatorAction)
            .expect("an OPERATOR_ACTION row");
        assert_eq!(action.event.subject, format!("flow/{txn}"));
        let detail: serde_json::Value = serde_json::from_str(&action.event.detail).unwrap();
        assert_eq!(detail["reason"], "payer asked for the money back");
        assert_eq!(detail["before"], done.from_step.as_str());
        assert_eq!(detail["after"], done.step.as_str());
        assert!(rows.iter().all(|r| !r.event.detail.contains(&card_no)));
        assert!(!serde_json::to_string(&done).unwrap().contains(&card_no));

        // Again, even with another reason: the same answer, nothing written.
        let head = engine.store().audit_head().await.unwrap();
        let again = engine
            .admin_abandon_flow("op-bo", &txn, "once more", NOW_MS)
            .await
            .unwrap();
        assert_eq!(again, done);
        assert_eq!(engine.store().audit_head().await.unwrap(), head);
        assert_eq!(engine.store().counts().await.unwrap().refunds, 1);
        // A resume leaves it as it is.
        let view = engine.resume(&device, &txn, NOW_MS).await.unwrap();
        assert_ne!(view.status, FlowStatus::Completed);
        assert_eq!(
            engine.store().flow(&txn).await.unwrap().version,
            row.version
        );

        // CREDIT FOR LOAD refused: a MAC2 left, the card must prove; refused with why.
        let (late, late_order) = failing_top_up(
            &engine,
            &device,
            &mut card,
            (&card_no, &seid),
            200,
            [0x80, 0x52],
        )
        .await;
        let head = engine.store().audit_head().await.unwrap();
        let e = engine
            .admin_abandon_flow("op-ana", &late, "give up", NOW_MS)
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), 409);
        assert!(e.to_string().contains("CARD_MUST_PROVE"), "{e}");
        assert_eq!(engine.store().audit_head().await.unwrap(), head);
        assert_eq!(
            engine.order(&device, &late_order).await.unwrap().state,
            "LOAD_REQUESTED"
        );
        assert_eq!(
            engine.store().flow(&late).await.unwrap().status,
            StoreStatus::Running
        );
    })
    .await;
}

#[tokio::test]
async fn an_abandoned_transfer_in_gives_its_escrow_to_a_new_one() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let old_phone = device(&engine, 46).await;
        let new_phone = device(&engine, 47).await;
        let mut old_se = new_se(241);
        let mut stuck_se = new_se(242);
        let mut third_se = new_se(243);
        let mut log = Log::default();
        let (card_no, old_seid) =
            open(&engine, &old_phone, "open-241", &mut old_se, &mut log).await;
        top_up(
            &engine,
            &old_phone,
            &mut old_se,
            &card_no,
            &old_seid,
            1500,
            &mut log,
        )
        .await;
        let first = engine
            .start(
                &old_phone,
                "out-241",
                Start::TransferOut(card_req(&card_no, &old_seid)),
                NOW_MS,
            )
            .await
            .unwrap();
        let done = drive(&engine, &old_phone, first, &mut old_se, &mut log)
            .await
            .unwrap();
        let code = done.outcome.unwrap().transfer_code.unwrap();
        let transfer_id = proposals::transfer_id(&code);

        // The new card's INITIALIZE FOR LOAD refused: no MAC2 left.
        let start_in = |txn: &'static str| {
            let engine = &engine;
            let new_phone = &new_phone;
            let code = code.clone();
            async move {
                engine
                    .start(
                        new_phone,
                        txn,
                        Start::TransferIn(api::TransferInReq {
                            transfer_code: code,
                            management: Management::Authorized,
                        }),
                        NOW_MS,
                    )
                    .await
            }
        };
        let resp = start_in("in-242").await.unwrap();
        drive_refusing(&engine, &new_phone, resp, &mut stuck_se, [0x80, 0x50]).await;
        let stuck = engine.admin_stuck_money().await.unwrap();
        assert_eq!(stuck.len(), 1, "{stuck:?}");
        assert_eq!(
            (stuck[0].txn_id.as_str(), stuck[0].verdict),
            ("in-242", LoadVerdict::NotCredited)
        );
        // While it holds the escrow, the code is taken.
        assert!(start_in("in-early").await.is_err());

        // Two operators at once: one abandon is written, both get its answer.
        let (a, b) = tokio::join!(
            engine.admin_abandon_flow("op-ana", "in-242", "the phone was lost", NOW_MS),
            engine.admin_abandon_flow("op-bo", "in-242", "the phone was lost", NOW_MS),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a, b);
        let done = a;
        let actions = engine
            .store()
            .audit_records(1, 100_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event.kind == AuditKind::OperatorAction)
            .count();
        assert_eq!(actions, 1);
        // The new SE's card instance is no longer held by the flow.
        let held = engine
            .store()
            .card(&seid_of_serial(242).to_string(), &card_no)
            .await
            .unwrap();
        assert_eq!(held.flow_id, None);
        assert_eq!(done.transfer_id.as_deref(), Some(transfer_id.as_str()));
        assert_eq!(done.amount_fen, Some(1500));
        assert_eq!(done.order_id, None);
        let escrow = engine.store().escrow(&transfer_id).await.unwrap().unwrap();
        assert_eq!((escrow.claimed_by, escrow.settled), (None, false));

        // A new transfer in with the same code gets the balance.
        let resp = start_in("in-243").await.unwrap();
        let done = drive(&engine, &new_phone, resp, &mut third_se, &mut log)
            .await
            .unwrap();
        assert_eq!(done.status, FlowStatus::Completed);
        assert_eq!(done.outcome.unwrap().load.unwrap().new_balance, 1500);
        let escrow = engine.store().escrow(&transfer_id).await.unwrap().unwrap();
        assert_eq!(
            (escrow.claimed_by.as_deref(), escrow.settled),
            (Some("in-243"), true)
        );
        // The abandoned flow cannot take it back.
        let again = engine
            .admin_abandon_flow("op-ana", "in-242", "again", NOW_MS)
            .await
            .unwrap();
        assert_eq!(again.transfer_id.as_deref(), Some(transfer_id.as_str()));
        assert_eq!(
            engine.store().flow("in-242").await.unwrap().status,
            StoreStatus::Failed
        );
    })
    .await;
}
