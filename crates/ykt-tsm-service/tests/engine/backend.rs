//! The engine as the HTTP layer's `Backend`: the calls delegate, the futures are `Send`, and
//! the engine's refusals keep their result codes.

use std::sync::{Arc, Mutex};

use ykt_envelope::Code;
use ykt_store::{Begun, FlowStatus as StoreStatus, RequestCompletion, RequestHash};
use ykt_tsm::api;
use ykt_tsm_service::engine::Engine;
use ykt_tsm_service::http::backend::{self as b, Backend, BackendError};

use crate::support::*;

fn is_backend<B: Backend>(_: &B) {}

#[tokio::test]
async fn the_engine_is_a_backend() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine: Engine = db.engine(&vaults).await;
        is_backend(&engine);
        let key = ykt_crypto::Sm2PrivateKey::from_bytes(&[0x33; 32]).unwrap();
        let device = Backend::enrol(&engine, key.public_key(), "phone")
            .await
            .unwrap();
        assert_eq!(
            Backend::enrol(&engine, key.public_key(), "phone")
                .await
                .unwrap(),
            device
        );
        assert_eq!(
            Backend::device_key(&engine, &device)
                .await
                .unwrap()
                .to_bytes(),
            key.public_key().to_bytes()
        );
        let e: BackendError = Backend::device_key(&engine, "dev-none").await.unwrap_err();
        assert_eq!(e.code, Code::UnknownSender);
        let mut card = new_se(60);
        let mut resp = Backend::start(
            &engine,
            &device,
            "open-60",
            b::Start::OpenCard(api::OpenCardReq {
                management: ykt_tsm::Management::Authorized,
                city_code: "1000".into(),
            }),
            NOW_MS,
        )
        .await
        .unwrap();
        let running = Backend::admin_flows(&engine, StoreStatus::Running, None)
            .await
            .unwrap();
        assert_eq!(running.len(), 1);
        assert_eq!(running[0].id, "open-60");
        let mut log = Log::default();
        while resp.status == api::FlowStatus::Running {
            let answer = relay(&mut card, resp.relay.as_ref().unwrap(), &mut log);
            resp = Backend::apdu_result(&engine, &device, "open-60", &answer, NOW_MS)
                .await
                .unwrap();
        }
        assert_eq!(resp.instance_state, "ACTIVE");
        let done = Backend::admin_flows(&engine, StoreStatus::Completed, None)
            .await
            .unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].step, "DONE");
        let cards = Backend::cards(&engine, &device).await.unwrap();
        assert_eq!(cards.cards.len(), 1);
        let e = Backend::order(&engine, &device, "ORD-none")
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::OrderNotFound);
        let e = Backend::flow(&engine, &device, "none").await.unwrap_err();
        assert_eq!(e.code, Code::FlowNotFound);
        // The operator's own views.
        let ses = engine.admin_ses().await.unwrap();
        assert_eq!(ses.len(), 1);
        // The SE registry keeps the CPLC registration read (GET DATA 9F7F: 42 bytes).
        let se = engine.store().se(&ses[0].seid).await.unwrap();
        assert_eq!(se.cplc.len(), 42);
        let views = engine.admin_cards().await.unwrap();
        assert_eq!(views.len(), 1);
        assert!(views[0].card_no.contains('*'));
        let metrics = engine.admin_metrics().await.unwrap();
        assert_eq!((metrics.devices, metrics.ses), (1, 1));
        assert!(metrics.audit_records > 10);
    })
    .await;
}

/// A step answer for `request_id` of scope `dev` whose texts are the outcome's JSON (or its
/// code), each one also kept in `made`.
fn answer_for(request_id: &str, made: &Arc<Mutex<Vec<String>>>) -> Arc<b::StepAnswer> {
    let (request_id, made) = (request_id.to_string(), made.clone());
    b::StepAnswer::new(move |outcome| {
        let response = match outcome {
            Ok(resp) => serde_json::to_string(resp).unwrap(),
            Err(e) => e.code.to_string(),
        };
        made.lock().unwrap().push(response.clone());
        Some(RequestCompletion {
            scope: "dev".into(),
            request_id: request_id.clone(),
            hash: RequestHash::of(request_id.as_bytes()),
            response,
        })
    })
}

#[tokio::test]
async fn a_step_stores_its_request_answer_with_its_move() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine: Engine = db.engine(&vaults).await;
        let store = engine.store().clone();
        let device = device(&engine, 0x34).await;
        let mut card = new_se(61);
        let txn = "open-61";
        let made = Arc::new(Mutex::new(Vec::new()));
        // The flow's first move stores the start's answer.
        let hash0 = RequestHash::of(b"r0");
        assert_eq!(
            store.begin_request("dev", "r0", &hash0).await.unwrap(),
            Begun::New
        );
        let started = answer_for("r0", &made);
        let resp = Backend::start_answered(
            &engine,
            &device,
            txn,
            b::Start::OpenCard(api::OpenCardReq {
                management: ykt_tsm::Management::Authorized,
                city_code: "1000".into(),
            }),
            NOW_MS,
            started.clone(),
        )
        .await
        .unwrap();
        assert!(started.stored());
        assert_eq!(
            store.begin_request("dev", "r0", &hash0).await.unwrap(),
            Begun::Stored(serde_json::to_string(&resp).unwrap())
        );
        let mut log = Log::default();
        let first = relay(&mut card, resp.relay.as_ref().unwrap(), &mut log);
        let version = store.flow(txn).await.unwrap().version;

        // A completion that cannot be stored (no such claim) refuses the whole move.
        let unclaimed = answer_for("r-none", &made);
        Backend::apdu_result_answered(&engine, &device, txn, &first, NOW_MS, unclaimed.clone())
            .await
            .unwrap_err();
        assert!(!unclaimed.stored());
        assert_eq!(store.flow(txn).await.unwrap().version, version);

        // Claimed: the move and the answer commit together; nothing else completes the claim.
        let hash = RequestHash::of(b"r1");
        assert_eq!(
            store.begin_request("dev", "r1", &hash).await.unwrap(),
            Begun::New
        );
        let answer = answer_for("r1", &made);
        let moved =
            Backend::apdu_result_answered(&engine, &device, txn, &first, NOW_MS, answer.clone())
                .await
                .unwrap();
        assert!(answer.stored());
        assert_eq!(store.flow(txn).await.unwrap().version, version + 1);
        let text = serde_json::to_string(&moved).unwrap();
        assert_eq!(made.lock().unwrap().last(), Some(&text));
        assert_eq!(
            store.begin_request("dev", "r1", &hash).await.unwrap(),
            Begun::Stored(text)
        );

        // The same answers again move nothing, so they store nothing: the claim stays open
        // for the caller to complete.
        let hash2 = RequestHash::of(b"r2");
        assert_eq!(
            store.begin_request("dev", "r2", &hash2).await.unwrap(),
            Begun::New
        );
        let again = answer_for("r2", &made);
        let view =
            Backend::apdu_result_answered(&engine, &device, txn, &first, NOW_MS, again.clone())
                .await
                .unwrap();
        assert_eq!(view, moved);
        assert!(!again.stored());
        assert_eq!(store.flow(txn).await.unwrap().version, version + 1);
        assert!(matches!(
            store.begin_request("dev", "r2", &hash2).await,
            Err(ykt_store::Error::InProgress { .. })
        ));
    })
    .await;
}
