//! The flows an engine keeps in memory (tsm-gp.md §8): a flow leaves memory when it ends or
//! has been idle past `proposals::LIVE_FLOW_IDLE_MS` at a scan (at most one per
//! `proposals::LIVE_SWEEP_INTERVAL_MS`), and a flow evicted mid-way goes on from the store.

use ykt_tsm::Management;
use ykt_tsm::api::{self, FlowStatus};
use ykt_tsm_service::engine::{EngineError, Start, proposals};

use crate::support::*;

async fn live(engine: &ykt_tsm_service::engine::Engine) -> u64 {
    engine.admin_metrics().await.unwrap().live_flows
}

fn open_req() -> Start {
    Start::OpenCard(api::OpenCardReq {
        management: Management::Authorized,
        city_code: "1000".into(),
    })
}

#[tokio::test]
async fn ended_flows_leave_memory() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 41).await;
        for i in 0..4u8 {
            let mut card = new_se(200 + i);
            let mut log = Log::default();
            let first = engine
                .start(&device, &format!("live-open-{i}"), open_req(), NOW_MS)
                .await
                .unwrap();
            assert_eq!(live(&engine).await, 1, "a running flow is kept");
            let done = drive(&engine, &device, first, &mut card, &mut log)
                .await
                .unwrap();
            assert_eq!(done.status, FlowStatus::Completed);
            assert_eq!(live(&engine).await, 0, "after flow {i}");
        }
        // Asking about flows that do not exist leaves nothing behind either.
        for i in 0..3 {
            let r = engine
                .resume(&device, &format!("no-such-{i}"), NOW_MS)
                .await;
            assert!(matches!(r, Err(EngineError::FlowNotFound)), "{r:?}");
        }
        assert_eq!(live(&engine).await, 0);
    })
    .await;
}

#[tokio::test]
async fn an_idle_flow_is_evicted_and_goes_on_from_the_store() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 42).await;
        let mut card = new_se(210);
        let mut log = Log::default();
        let mut resp = engine
            .start(&device, "live-idle", open_req(), NOW_MS)
            .await
            .unwrap();
        for _ in 0..2 {
            let answer = relay(&mut card, resp.relay.as_ref().unwrap(), &mut log);
            resp = engine
                .apdu_result(&device, "live-idle", &answer, NOW_MS)
                .await
                .unwrap();
        }
        assert_eq!(resp.status, FlowStatus::Running);
        // Another request just before the bound scans the live flows and keeps this one …
        let almost = NOW_MS + proposals::LIVE_FLOW_IDLE_MS - 1;
        let r = engine.resume(&device, "live-other", almost).await;
        assert!(matches!(r, Err(EngineError::FlowNotFound)), "{r:?}");
        assert_eq!(live(&engine).await, 1);
        // … the next scan, a sweep interval later and so past the bound, evicts it.
        let later = almost + proposals::LIVE_SWEEP_INTERVAL_MS;
        let r = engine.resume(&device, "live-other", later).await;
        assert!(matches!(r, Err(EngineError::FlowNotFound)), "{r:?}");
        assert_eq!(live(&engine).await, 0);
        // The wallet's answer to the outstanding message: the flow is rebuilt from the store
        // (its channel is gone), probes the SE and ends with the card opened.
        let answer = relay(&mut card, resp.relay.as_ref().unwrap(), &mut log);
        let resp = engine
            .apdu_result(&device, "live-idle", &answer, later)
            .await
            .unwrap();
        let done = drive(&engine, &device, resp, &mut card, &mut log)
            .await
            .unwrap();
        assert_eq!(done.status, FlowStatus::Completed);
        assert_eq!(done.instance_state, "ACTIVE");
        assert_eq!(done.outcome.unwrap().balance, Some(0));
        assert_eq!(live(&engine).await, 0);
    })
    .await;
}

#[tokio::test]
async fn holds_scan_for_idle_flows_only_once_per_sweep_interval() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 44).await;
        let mut card = new_se(230);
        let mut log = Log::default();
        let resp = engine
            .start(&device, "live-sweep", open_req(), NOW_MS)
            .await
            .unwrap();
        let answer = relay(&mut card, resp.relay.as_ref().unwrap(), &mut log);
        let resp = engine
            .apdu_result(&device, "live-sweep", &answer, NOW_MS)
            .await
            .unwrap();
        assert_eq!(resp.status, FlowStatus::Running);
        let other = async |at: i64| {
            let r = engine.resume(&device, "live-sweep-other", at).await;
            assert!(matches!(r, Err(EngineError::FlowNotFound)), "{r:?}");
            live(&engine).await
        };
        // A scan just before the idle bound keeps the flow.
        let scanned = NOW_MS + proposals::LIVE_FLOW_IDLE_MS - 1;
        assert_eq!(other(scanned).await, 1);
        // Past the bound but before the next scan is due, holds do not scan: it stays.
        let idle = NOW_MS + proposals::LIVE_FLOW_IDLE_MS;
        assert_eq!(other(idle).await, 1);
        let next = scanned + proposals::LIVE_SWEEP_INTERVAL_MS;
        assert_eq!(other(next - 1).await, 1);
        // The first hold at the sweep time scans and evicts it.
        assert_eq!(other(next).await, 0);
        // The flow goes on from the store.
        let answer = relay(&mut card, resp.relay.as_ref().unwrap(), &mut log);
        let resp = engine
            .apdu_result(&device, "live-sweep", &answer, next)
            .await
            .unwrap();
        let done = drive(&engine, &device, resp, &mut card, &mut log)
            .await
            .unwrap();
        assert_eq!(done.status, FlowStatus::Completed);
        assert_eq!(live(&engine).await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_answer_twice_at_once_moves_the_flow_once() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 43).await;
        let mut card = new_se(220);
        let mut log = Log::default();
        let mut resp = engine
            .start(&device, "live-race", open_req(), NOW_MS)
            .await
            .unwrap();
        while resp.status == FlowStatus::Running {
            let answer = relay(&mut card, resp.relay.as_ref().unwrap(), &mut log);
            let version = engine.store().flow("live-race").await.unwrap().version;
            let (a, b) = tokio::join!(
                engine.apdu_result(&device, "live-race", &answer, NOW_MS),
                engine.apdu_result(&device, "live-race", &answer, NOW_MS)
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            // One task moved the flow; the other, serialised behind it, saw the new state.
            assert_eq!(
                engine.store().flow("live-race").await.unwrap().version,
                version + 1
            );
            assert_eq!(a.status, b.status);
            assert_eq!(
                a.relay.as_ref().map(|r| r.seq),
                b.relay.as_ref().map(|r| r.seq)
            );
            resp = a;
        }
        assert_eq!(resp.status, FlowStatus::Completed);
        assert_eq!(live(&engine).await, 0);
    })
    .await;
}
