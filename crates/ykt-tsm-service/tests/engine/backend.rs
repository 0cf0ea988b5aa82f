//! The engine as the HTTP layer's `Backend`: the calls delegate, the futures are `Send`, and
//! the engine's refusals keep their result codes.

use ykt_envelope::Code;
use ykt_store::FlowStatus as StoreStatus;
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
