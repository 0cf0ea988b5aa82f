//! `POST /admin/v1/flows/{id}/abandon` through `TsmClient::abandon_flow`: the operator's
//! abandon of a failed top-up proven not credited, its refusals by HTTP status, and the same
//! answer when asked again.

use ykt_store::AuditKind;
use ykt_tsm::api::{self, FlowStatus};
use ykt_tsm_service::engine::{LoadVerdict, Start};
use ykt_tsm_service::http::admin_write::Operator;
use ykt_tsm_service::http::{AdminToken, ClientError, TsmClient};

use crate::http::{TOKEN, call};
use crate::server::config;
use crate::support::*;

fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Registry { status, error }) => (status, error),
        other => panic!("not a registry refusal: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_abandons_a_top_up_never_credited_over_http() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let device = device(&engine, 48).await;
        let mut card = new_se(244);
        let mut log = Log::default();
        let (card_no, seid) = open(&engine, &device, "open-244", &mut card, &mut log).await;
        let (early, order_id) = failing_top_up(
            &engine,
            &device,
            &mut card,
            (&card_no, &seid),
            400,
            [0x80, 0x50],
        )
        .await;
        let ops = vec![Operator {
            label: "alice".into(),
            token: AdminToken::new(TOKEN).unwrap(),
        }];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(ykt_tsm_service::http::serve(
            listener,
            engine.clone(),
            config(ops),
        ));
        let b = base.clone();
        let number = card_no.clone();
        let (first, card_no_seen) = tokio::task::spawn_blocking(move || {
            let base = b;
            let c = TsmClient::new(&base).unwrap();
            let stuck = c.money_flows(TOKEN).unwrap();
            assert_eq!(stuck.len(), 1, "{stuck:?}");
            let bad_token = c.abandon_flow("wrong-token-0123456789", &early, "refund");
            assert_eq!(refusal(bad_token).0, 401);
            assert_eq!(refusal(c.abandon_flow(TOKEN, &early, "")).0, 400);
            assert_eq!(
                refusal(c.abandon_flow(TOKEN, &early, &"y".repeat(201))).0,
                400
            );
            let path = format!("/admin/v1/flows/{early}/abandon");
            let (status, _) = call(&base, "POST", &path, Some(TOKEN), r#"{"why":"x"}"#);
            assert_eq!(status, 400);
            assert_eq!(refusal(c.abandon_flow(TOKEN, "nobody", "refund")).0, 404);
            let (status, error) = refusal(c.abandon_flow(TOKEN, "open-244", "refund"));
            assert_eq!(status, 409);
            assert!(error.contains("not a money flow"), "{error}");

            let done = c.abandon_flow(TOKEN, &early, "the payer gave up").unwrap();
            assert_eq!(done.verdict, LoadVerdict::NotCredited);
            assert_eq!(done.operator, "alice");
            assert_eq!(done.order_id.as_deref(), Some(order_id.as_str()));
            assert_eq!(done.amount_fen, Some(400));
            assert_eq!(c.abandon_flow(TOKEN, &early, "again").unwrap(), done);
            let (status, text) = call(&base, "POST", &path, Some(TOKEN), r#"{"reason":"x"}"#);
            assert_eq!(status, 200);
            assert_eq!(text, serde_json::to_string(&done).unwrap());
            assert!(c.money_flows(TOKEN).unwrap().is_empty());
            (done, text.contains(&number))
        })
        .await
        .unwrap();
        // A MAC2 left for this one: refused with why, and it stays listed.
        let (late, _) = failing_top_up(
            &engine,
            &device,
            &mut card,
            (&card_no, &seid),
            400,
            [0x80, 0x52],
        )
        .await;
        tokio::task::spawn_blocking(move || {
            let c = TsmClient::new(&base).unwrap();
            let (status, error) = refusal(c.abandon_flow(TOKEN, &late, "refund"));
            assert_eq!(status, 409);
            assert!(error.contains("CARD_MUST_PROVE"), "{error}");
            let stuck = c.money_flows(TOKEN).unwrap();
            assert_eq!(stuck.len(), 1, "{stuck:?}");
            assert_eq!(stuck[0].verdict, LoadVerdict::CardMustProve);
        })
        .await
        .unwrap();
        assert!(!card_no_seen, "the answer names no card number");
        let order = engine
            .order(&device, &first.order_id.unwrap())
            .await
            .unwrap();
        assert_eq!(order.state, "CANCELLED");
        let refund = engine
            .store()
            .refund(&first.refund_id.unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(refund.amount_fen, 400);
        let actions: Vec<_> = engine
            .store()
            .audit_records(1, 100_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event.kind == AuditKind::OperatorAction && r.event.actor == "alice")
            .collect();
        assert_eq!(actions.len(), 1, "{actions:?}");
        assert!(actions[0].event.detail.contains("the payer gave up"));
        task.abort();
    })
    .await;
}

/// The abandon route moves its flow at the server's clock (`ServerConfig::clock`), not the
/// system's: the hold it takes scans the live flows for idle ones
/// (`proposals::LIVE_SWEEP_INTERVAL_MS`) only when that clock says a scan is due, and evicts
/// only flows idle by that clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandon_runs_at_the_server_clock() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    use ykt_tsm_service::engine::proposals;

    // The system clock is well past the engine's test time: by it, a flow last moved at
    // NOW_MS is idle, and a scan is due.
    let system_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    assert!(
        system_ms > NOW_MS + proposals::LIVE_FLOW_IDLE_MS + proposals::LIVE_SWEEP_INTERVAL_MS,
        "the system clock is before the test time"
    );
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let live = async || engine.admin_metrics().await.unwrap().live_flows;
        let device = device(&engine, 49).await;
        let mut card = new_se(245);
        let mut log = Log::default();
        let (card_no, seid) = open(&engine, &device, "open-245", &mut card, &mut log).await;
        let (failed, _) = failing_top_up(
            &engine,
            &device,
            &mut card,
            (&card_no, &seid),
            400,
            [0x80, 0x50],
        )
        .await;
        // A flow left running in memory on another device, last moved at NOW_MS.
        let other = crate::support::device(&engine, 50).await;
        let running = engine
            .start(
                &other,
                "clock-open",
                Start::OpenCard(api::OpenCardReq {
                    management: ykt_tsm::Management::Authorized,
                    city_code: "1000".into(),
                }),
                NOW_MS,
            )
            .await
            .unwrap();
        assert_eq!(running.status, FlowStatus::Running);
        // The failed top-up is kept in memory too (a resume may retry its step).
        assert_eq!(live().await, 2);

        let clock = Arc::new(AtomicI64::new(NOW_MS + 1));
        let c = clock.clone();
        let ops = vec![Operator {
            label: "alice".into(),
            token: AdminToken::new(TOKEN).unwrap(),
        }];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(ykt_tsm_service::http::serve(
            listener,
            engine.clone(),
            config(ops).with_clock(move || c.load(Ordering::SeqCst)),
        ));
        let abandon = |reason: &'static str| {
            let (base, failed) = (base.clone(), failed.clone());
            tokio::task::spawn_blocking(move || {
                TsmClient::new(&base)
                    .unwrap()
                    .abandon_flow(TOKEN, &failed, reason)
                    .unwrap()
            })
        };
        // At the server's NOW_MS + 1 no scan is due: the abandoned flow leaves memory (it
        // ended), the running one stays.
        let done = abandon("the payer gave up").await.unwrap();
        assert_eq!(done.verdict, LoadVerdict::NotCredited);
        assert_eq!(live().await, 1, "the abandon ran at another clock");
        // The server's clock past the idle bound and the scan interval: the same request (it
        // answers as before) scans and evicts the running flow.
        clock.store(
            NOW_MS + proposals::LIVE_FLOW_IDLE_MS + proposals::LIVE_SWEEP_INTERVAL_MS,
            Ordering::SeqCst,
        );
        assert_eq!(abandon("again").await.unwrap(), done);
        assert_eq!(live().await, 0);
        task.abort();
    })
    .await;
}
