//! A card's life through the engine: open (tsm-gp.md §7 申请开卡), top-up with an order paid by
//! the test provider (client.md §4), card query, lock and unlock, card return with its refund
//! recorded, delete; ownership; the audit chain; no key value in the store.

use ykt_store::{AuditKind, CardState, ChainStatus};
use ykt_tsm::api::FlowStatus;
use ykt_tsm_service::engine::{EngineError, Start, proposals};

use crate::support::*;

#[tokio::test]
async fn open_card_end_to_end() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 7).await;
        let mut card = new_se(1);
        let mut log = Log::default();
        let (card_no, seid) = open(&engine, &device, "open-1", &mut card, &mut log).await;
        assert_eq!(seid, seid_of_serial(1).to_string());
        assert_eq!(&card_no[..8], "31041000");
        assert_eq!(log.accepted_store_data(0xE8), 1);

        let stored = engine.store().card(&seid, &card_no).await.unwrap();
        assert_eq!(stored.state, CardState::Active);
        assert_eq!(stored.device_id.as_deref(), Some(device.as_str()));
        assert_eq!(stored.flow_id, None);
        assert_eq!(stored.app_aid.as_deref(), Some(&proposals::PURSE_AID[..]));
        assert_eq!(
            stored.key_versions.get("ssd"),
            Some(&ykt_tsm::proposals::SSD_SP_KEY_VERSION)
        );
        let cards = engine.cards(&device).await.unwrap();
        assert_eq!(cards.cards.len(), 1);
        assert_eq!(cards.cards[0].state, "ACTIVE");

        // The same txn again is the same flow, finished.
        let again = engine.flow(&device, "open-1").await.unwrap();
        assert_eq!(again.status, FlowStatus::Completed);
        assert_eq!(again.step_index, again.step_count);
        assert_eq!(
            again.outcome.unwrap().card_no.as_deref(),
            Some(card_no.as_str())
        );
    })
    .await;
}

#[test]
fn the_purse_aid_is_the_purse_crates() {
    assert_eq!(proposals::PURSE_AID, ykt_purse::EP_AID);
}

#[tokio::test]
async fn a_card_from_top_up_to_return() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 7).await;
        let other = device_of(&engine, 9).await;
        let mut card = new_se(2);
        let mut log = Log::default();
        let (card_no, seid) = open(&engine, &device, "open-2", &mut card, &mut log).await;

        // Another device sees neither the flow nor the card.
        assert!(matches!(
            engine.flow(&other, "open-2").await,
            Err(EngineError::Forbidden)
        ));
        let e = engine
            .start(
                &other,
                "lock-x",
                Start::Lock(card_req(&card_no, &seid)),
                NOW_MS,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::Forbidden), "{e:?}");
        assert_eq!(e.code(), ykt_envelope::Code::Forbidden);
        assert!(matches!(
            engine.flow(&device, "nope").await,
            Err(EngineError::FlowNotFound)
        ));
        assert!(matches!(
            engine.order(&device, "nope").await,
            Err(EngineError::OrderNotFound)
        ));

        // An order of nothing, or of more than the purse can ever hold, is refused when it is
        // ordered (RP-LOAD-005); the largest the purse can hold is accepted.
        let max = proposals::MAX_ORDER_FEN;
        for (amount, ok) in [(0, false), (max + 1, false), (u32::MAX, false), (max, true)] {
            let r = engine
                .create_order(
                    &device,
                    &ykt_tsm::api::TopupOrderReq {
                        card_no: card_no.clone(),
                        seid: seid.clone(),
                        amount,
                        pay_channel: "99".into(),
                    },
                )
                .await;
            match r {
                Ok(_) => assert!(ok, "an order of {amount} fen was accepted"),
                Err(e) => {
                    assert!(!ok, "an order of {amount} fen was refused: {e:?}");
                    assert!(matches!(e, EngineError::BadRequest("amount")), "{e:?}");
                }
            }
        }

        // An order not paid is refused; a paid one loads once.
        let order = engine
            .create_order(
                &device,
                &ykt_tsm::api::TopupOrderReq {
                    card_no: card_no.clone(),
                    seid: seid.clone(),
                    amount: 1500,
                    pay_channel: "99".into(),
                },
            )
            .await
            .unwrap();
        let e = engine
            .start(
                &device,
                "topup-unpaid",
                Start::TopUp(ykt_tsm::api::OrderReq {
                    order_id: order.order_id.clone(),
                }),
                NOW_MS,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), ykt_envelope::Code::NotPaid);
        assert!(matches!(
            engine.order(&other, &order.order_id).await,
            Err(EngineError::Forbidden)
        ));
        engine.test_pay(&device, &order.order_id).await.unwrap();
        let first = engine
            .start(
                &device,
                "topup-1",
                Start::TopUp(ykt_tsm::api::OrderReq {
                    order_id: order.order_id.clone(),
                }),
                NOW_MS,
            )
            .await
            .unwrap();
        assert_eq!(first.step.as_deref(), Some("REGISTER_SE"));
        assert_eq!(first.step_count, 4);
        // A second flow for the same order is refused while the first holds it.
        let e = engine
            .start(
                &device,
                "topup-1b",
                Start::TopUp(ykt_tsm::api::OrderReq {
                    order_id: order.order_id.clone(),
                }),
                NOW_MS,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), ykt_envelope::Code::Duplicate);
        let done = drive(&engine, &device, first, &mut card, &mut log)
            .await
            .unwrap();
        let load = done.outcome.unwrap().load.unwrap();
        assert_eq!((load.amount, load.new_balance), (1500, 1500));
        assert_eq!(log.accepted_credits(), 1);
        let stored = engine.store().topup(&order.order_id).await.unwrap();
        assert_eq!(stored.state.as_str(), "LOADED");
        assert_eq!(stored.new_balance, Some(1500));
        assert_eq!(stored.tac.as_deref(), Some(load.tac.as_bytes()));
        assert_eq!(
            engine.order(&device, &order.order_id).await.unwrap().state,
            "LOADED"
        );
        // Loaded orders do not load again.
        let e = engine
            .start(
                &device,
                "topup-again",
                Start::TopUp(ykt_tsm::api::OrderReq {
                    order_id: order.order_id.clone(),
                }),
                NOW_MS,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), ykt_envelope::Code::Duplicate);

        assert_eq!(
            balance(&engine, &device, "q-1", &mut card, &card_no, &seid).await,
            1500
        );

        // Lock, then unlock.
        let first = engine
            .start(
                &device,
                "lock-1",
                Start::Lock(card_req(&card_no, &seid)),
                NOW_MS,
            )
            .await
            .unwrap();
        let done = drive(&engine, &device, first, &mut card, &mut log)
            .await
            .unwrap();
        assert_eq!(done.instance_state, "LOCKED");
        assert_eq!(
            engine.store().card(&seid, &card_no).await.unwrap().state,
            CardState::Locked
        );
        let e = engine
            .start(
                &device,
                "lock-2",
                Start::Lock(card_req(&card_no, &seid)),
                NOW_MS,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), ykt_envelope::Code::StateConflict);
        let first = engine
            .start(
                &device,
                "unlock-1",
                Start::Unlock(card_req(&card_no, &seid)),
                NOW_MS,
            )
            .await
            .unwrap();
        let done = drive(&engine, &device, first, &mut card, &mut log)
            .await
            .unwrap();
        assert_eq!(done.instance_state, "ACTIVE");

        // Delete is refused with a balance (tsm-gp.md §7 code 5002).
        let first = engine
            .start(
                &device,
                "delete-1",
                Start::DeleteCard(card_req(&card_no, &seid)),
                NOW_MS,
            )
            .await
            .unwrap();
        let e = drive(&engine, &device, first, &mut card, &mut log)
            .await
            .unwrap_err();
        assert_eq!(e.code(), ykt_envelope::Code::BalanceNotZero);
        assert_eq!(
            engine.flow(&device, "delete-1").await.unwrap().status,
            FlowStatus::Failed
        );

        // Card return: the proven balance refunded to the account, the card deleted.
        let first = engine
            .start(
                &device,
                "return-1",
                Start::Refund(ykt_tsm::api::RefundReq {
                    card_no: card_no.clone(),
                    seid: seid.clone(),
                    refund_account: "acct-42".into(),
                }),
                NOW_MS,
            )
            .await;
        // The refused delete wrote nothing to the card: it gave up and freed the card.
        let first = first.unwrap();
        let done = drive(&engine, &device, first, &mut card, &mut log)
            .await
            .unwrap();
        assert_eq!(done.instance_state, "DELETED");
        assert_eq!(done.outcome.unwrap().refund, Some(1500));
        let refund = engine.store().refund("return-1").await.unwrap().unwrap();
        assert_eq!(
            (refund.amount_fen, refund.account.as_str()),
            (1500, "acct-42")
        );
        let failed = engine.store().flow("delete-1").await.unwrap();
        assert_eq!(failed.status.as_str(), "FAILED");
        assert_eq!(failed.step, "FAILED_PROVE_BALANCE");
        // A resume of a flow that gave up changes nothing.
        let again = engine.resume(&device, "delete-1", NOW_MS).await.unwrap();
        assert_eq!(again.status, FlowStatus::Failed);
        assert!(again.relay.is_none());
    })
    .await;
}

async fn device_of(engine: &ykt_tsm_service::engine::Engine, seed: u8) -> String {
    device(engine, seed).await
}

#[tokio::test]
async fn card_return_refunds_and_delete_deletes() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 7).await;
        let mut card = new_se(3);
        let mut log = Log::default();
        let (card_no, seid) = open(&engine, &device, "open-3", &mut card, &mut log).await;
        top_up(&engine, &device, &mut card, &card_no, &seid, 800, &mut log).await;
        let first = engine
            .start(
                &device,
                "return-3",
                Start::Refund(ykt_tsm::api::RefundReq {
                    card_no: card_no.clone(),
                    seid: seid.clone(),
                    refund_account: "acct-42".into(),
                }),
                NOW_MS,
            )
            .await
            .unwrap();
        let done = drive(&engine, &device, first, &mut card, &mut log)
            .await
            .unwrap();
        assert_eq!(done.instance_state, "DELETED");
        let outcome = done.outcome.unwrap();
        assert_eq!((outcome.refund, outcome.balance), (Some(800), Some(800)));
        let refund = engine.store().refund("return-3").await.unwrap().unwrap();
        assert_eq!(
            (refund.amount_fen, refund.account.as_str()),
            (800, "acct-42")
        );
        assert_eq!(refund.card_no, card_no);
        let stored = engine.store().card(&seid, &card_no).await.unwrap();
        assert_eq!((stored.state, stored.flow_id), (CardState::Deleted, None));

        // A second card on the same SE, with a zero balance, is deleted outright.
        let (card_no2, _) = open(&engine, &device, "open-3b", &mut card, &mut log).await;
        assert_ne!(card_no2, card_no);
        let first = engine
            .start(
                &device,
                "delete-3",
                Start::DeleteCard(card_req(&card_no2, &seid)),
                NOW_MS,
            )
            .await
            .unwrap();
        let done = drive(&engine, &device, first, &mut card, &mut log)
            .await
            .unwrap();
        assert_eq!(done.instance_state, "DELETED");
        assert_eq!(done.outcome.unwrap().balance, Some(0));

        // The audit chain verifies and names the key uses (by name, never by value).
        let status = engine.store().verify_chain().await.unwrap();
        assert!(
            matches!(status, ChainStatus::Intact { rows, .. } if rows > 20),
            "{status:?}"
        );
        let records = engine.store().audit_records(1, 100_000).await.unwrap();
        let isd = format!("sei/isd-master@{seid}");
        for (kind, subject) in [
            (AuditKind::KeyUse, isd.as_str()),
            (AuditKind::KeyUse, "sp/purse-issuer"),
            (AuditKind::KeyUse, "sp/transport"),
        ] {
            assert!(
                records
                    .iter()
                    .any(|r| r.event.kind == kind && r.event.subject == subject),
                "{kind} {subject}"
            );
        }
        assert!(records.iter().any(|r| r.event.kind == AuditKind::CardWrite));
        assert!(records.iter().any(|r| r.event.kind == AuditKind::Payment
            && r.event.subject == "refund/return-3"));
        assert!(
            records
                .iter()
                .any(|r| r.event.kind == AuditKind::StateChange
                    && r.event.detail.ends_with("PERSONALISING -> ACTIVE"))
        );
        // Card numbers in the audit log are masked.
        assert!(
            records
                .iter()
                .all(|r| !r.event.subject.contains(&card_no) && !r.event.detail.contains(&card_no))
        );
        let view = engine.admin_verify_audit().await.unwrap();
        assert!(view.intact);
        assert_no_key_stored(engine.store(), &vaults, &[seid_of_serial(3)]).await;
    })
    .await;
}

#[tokio::test]
async fn delegated_open_card_records_the_tokens() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 7).await;
        let mut card = new_se(4);
        let first = engine
            .start(
                &device,
                "open-dm",
                Start::OpenCard(ykt_tsm::api::OpenCardReq {
                    management: ykt_tsm::Management::Delegated,
                    city_code: "1000".into(),
                }),
                NOW_MS,
            )
            .await
            .unwrap();
        assert_eq!(first.step_count, 10);
        let done = drive(&engine, &device, first, &mut card, &mut Log::default())
            .await
            .unwrap();
        assert_eq!(done.instance_state, "ACTIVE");
        let outcome = done.outcome.unwrap();
        let row = engine
            .store()
            .card(
                outcome.seid.as_deref().unwrap(),
                outcome.card_no.as_deref().unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(row.management.as_deref(), Some("DELEGATED"));
        let records = engine.store().audit_records(1, 100_000).await.unwrap();
        for subject in ["sei/token", "sei/receipt"] {
            assert!(
                records
                    .iter()
                    .any(|r| r.event.kind == AuditKind::KeyUse && r.event.subject == subject)
            );
        }
        assert!(records.iter().any(|r| r.event.subject.starts_with("se/")
            && r.event.detail.ends_with("Registered -> IsdKeysBound")));
    })
    .await;
}

/// A card that refuses a command fails the step (`FAILED_<step>`, the card's code); the next
/// `resume` probes the card and finishes the flow.
#[tokio::test]
async fn a_refused_command_fails_the_step_and_resume_retries_it() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 7).await;
        let mut card = new_se(5);
        let mut log = Log::default();
        let mut resp = engine
            .start(
                &device,
                "open-refused",
                Start::OpenCard(ykt_tsm::api::OpenCardReq {
                    management: ykt_tsm::Management::Authorized,
                    city_code: "1000".into(),
                }),
                NOW_MS,
            )
            .await
            .unwrap();
        // The first card write (INSTALL of the SSD) comes back refused, unsent.
        let error = loop {
            let req = resp.relay.clone().unwrap();
            let writes = req
                .capdus
                .iter()
                .any(|c| !proposals::is_read_only(c.as_bytes()));
            let answer = if writes {
                ykt_tsm::RelayResponse {
                    session_id: req.session_id.clone(),
                    seq: req.seq,
                    rapdus: vec![ykt_tsm::hex::Hex(vec![0x6A, 0x80])],
                }
            } else {
                relay(&mut card, &req, &mut log)
            };
            match engine
                .apdu_result(&device, "open-refused", &answer, NOW_MS)
                .await
            {
                Ok(next) => resp = next,
                Err(e) => break e,
            }
        };
        assert_eq!(error.code(), ykt_envelope::Code::ApduError, "{error:?}");
        let failed = engine.flow(&device, "open-refused").await.unwrap();
        assert_eq!(failed.status, FlowStatus::Failed);
        assert_eq!(failed.instance_state, "FAILED_CREATE_SSD");
        assert!(failed.relay.is_none());
        let row = engine.store().flow("open-refused").await.unwrap();
        assert_eq!(
            (row.status.as_str(), row.step.as_str()),
            ("RUNNING", "FAILED_CREATE_SSD")
        );
        let resumed = engine
            .resume(&device, "open-refused", NOW_MS)
            .await
            .unwrap();
        assert_eq!(resumed.status, FlowStatus::Running);
        let done = drive(&engine, &device, resumed, &mut card, &mut log)
            .await
            .unwrap();
        assert_eq!(done.instance_state, "ACTIVE");
        assert_eq!(log.accepted_store_data(0xE8), 1);
    })
    .await;
}

#[test]
fn a_start_prints_no_card_number() {
    let start = Start::Lock(card_req("31041000000000001234", "0A0B0C0D0E0F10111213"));
    let text = format!("{start:?}");
    assert_eq!(text, "Start::Lock");
}

/// tsm-gp.md §8: one flow at a time changes a card instance.
#[tokio::test]
async fn a_card_busy_with_a_flow_refuses_another() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 7).await;
        let mut card = new_se(6);
        let mut log = Log::default();
        let (card_no, seid) = open(&engine, &device, "open-6", &mut card, &mut log).await;
        let lock = engine
            .start(
                &device,
                "lock-6",
                Start::Lock(card_req(&card_no, &seid)),
                NOW_MS,
            )
            .await
            .unwrap();
        assert_eq!(lock.status, FlowStatus::Running);
        let e = engine
            .start(
                &device,
                "delete-6",
                Start::DeleteCard(card_req(&card_no, &seid)),
                NOW_MS,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), ykt_envelope::Code::StateConflict, "{e:?}");
        assert!(engine.store().flow("delete-6").await.is_err());
        // A query only reads, and may run meanwhile.
        assert_eq!(
            balance(&engine, &device, "q-6", &mut card, &card_no, &seid).await,
            0
        );
        let done = drive(&engine, &device, lock, &mut card, &mut log)
            .await
            .unwrap();
        assert_eq!(done.instance_state, "LOCKED");
        let row = engine.store().card(&seid, &card_no).await.unwrap();
        assert_eq!((row.state, row.flow_id), (CardState::Locked, None));
    })
    .await;
}
