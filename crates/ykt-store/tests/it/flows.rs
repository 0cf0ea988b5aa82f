//! Flows: compare-and-set moves, concurrent workers, resumption after a crash.

use serde_json::json;
use ykt_store::{
    Entity, Error, FlowStatus, FlowUpdate, NewFlow, NewSe, ReleasedScript, Resume, Store,
};

use crate::support::{SEID, each};

fn new_flow(id: &str) -> NewFlow {
    NewFlow {
        id: id.into(),
        kind: "open_card".into(),
        seid: Some(SEID.into()),
        step: "create_ssd".into(),
        state: json!({"city": "330400", "attempt": 0}),
    }
}

async fn register(store: &Store) {
    store
        .register_se(&NewSe {
            seid: SEID.into(),
            cplc: vec![0x47, 0x90],
            profile: "p".into(),
        })
        .await
        .unwrap();
}

fn update(step: &str, attempt: u32, script: Option<ReleasedScript>) -> FlowUpdate {
    FlowUpdate {
        step: step.into(),
        status: FlowStatus::Running,
        state: json!({"city": "330400", "attempt": attempt}),
        script,
    }
}

#[tokio::test]
async fn flows_move_by_compare_and_set() {
    each(async |db| {
        let store = &db.store;
        assert!(matches!(
            store.flow("f1").await,
            Err(Error::NotFound {
                what: Entity::Flow,
                ..
            })
        ));
        assert!(matches!(
            store.create_flow(&new_flow("f1")).await,
            Err(Error::NotFound {
                what: Entity::Se,
                ..
            })
        ));
        register(store).await;
        let flow = store.create_flow(&new_flow("f1")).await.unwrap();
        assert_eq!(
            (flow.version, flow.status, flow.resume()),
            (1, FlowStatus::Running, Resume::Continue)
        );
        assert_eq!(flow.state, json!({"city": "330400", "attempt": 0}));
        assert!(matches!(
            store.create_flow(&new_flow("f1")).await,
            Err(Error::AlreadyExists {
                what: Entity::Flow,
                ..
            })
        ));

        let moved = store
            .advance_flow("f1", 1, &update("put_key", 1, None))
            .await
            .unwrap();
        assert_eq!((moved.version, moved.step.as_str()), (2, "put_key"));
        assert_eq!(moved.state["attempt"], 1);
        let err = store
            .advance_flow("f1", 1, &update("x", 9, None))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Conflict { ref expected, ref found, .. }
                if expected == "version 1" && found == "version 2"),
            "{err:?}"
        );
        assert!(matches!(
            store.advance_flow("nope", 1, &update("x", 9, None)).await,
            Err(Error::NotFound {
                what: Entity::Flow,
                ..
            })
        ));
        let mut done = update("done", 2, None);
        done.status = FlowStatus::Completed;
        let finished = store.advance_flow("f1", 2, &done).await.unwrap();
        assert_eq!(finished.resume(), Resume::Finished);
        assert!(matches!(
            store.advance_flow("f1", 3, &update("again", 3, None)).await,
            Err(Error::IllegalTransition {
                what: Entity::Flow,
                ..
            })
        ));
    })
    .await;
}

#[tokio::test]
async fn concurrent_advances_exactly_one_wins() {
    each(async |db| {
        register(&db.store).await;
        // Two pools on the same database, as two TSM instances would have.
        let other = Store::connect(&db.url).await.unwrap();
        for round in 0..5u64 {
            let id = format!("race-{round}");
            db.store.create_flow(&new_flow(&id)).await.unwrap();
            let mut tasks = Vec::new();
            for worker in 0..12u32 {
                let store = if worker % 2 == 0 {
                    db.store.clone()
                } else {
                    other.clone()
                };
                let id = id.clone();
                tasks.push(tokio::spawn(async move {
                    store
                        .advance_flow(&id, 1, &update(&format!("by-{worker}"), worker, None))
                        .await
                }));
            }
            let mut winners = Vec::new();
            for task in tasks {
                match task.await.unwrap() {
                    Ok(flow) => winners.push(flow),
                    Err(Error::Conflict { .. }) => {}
                    Err(e) => panic!("round {round}: {e:?}"),
                }
            }
            assert_eq!(winners.len(), 1, "round {round}");
            let stored = db.store.flow(&id).await.unwrap();
            assert_eq!(stored.version, 2);
            assert_eq!(stored.step, winners[0].step);
            assert_eq!(stored.state, winners[0].state);
        }
        other.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_restarted_tsm_never_resends_a_non_idempotent_script_blindly() {
    each(async |db| {
        register(&db.store).await;
        for id in ["install", "status", "idle"] {
            db.store.create_flow(&new_flow(id)).await.unwrap();
        }
        db.store
            .advance_flow(
                "install",
                1,
                &update(
                    "install_app",
                    1,
                    Some(ReleasedScript {
                        seq: 3,
                        idempotent: false,
                    }),
                ),
            )
            .await
            .unwrap();
        db.store
            .advance_flow(
                "status",
                1,
                &update(
                    "get_status",
                    1,
                    Some(ReleasedScript {
                        seq: 1,
                        idempotent: true,
                    }),
                ),
            )
            .await
            .unwrap();
        // The process dies; a new one opens the database and picks the flows up.
        db.store.close().await;
        let restarted = Store::connect(&db.url).await.unwrap();
        let running = restarted.running_flows(Some(SEID)).await.unwrap();
        let resume: Vec<(String, Resume)> =
            running.iter().map(|f| (f.id.clone(), f.resume())).collect();
        assert_eq!(resume.len(), 3);
        assert!(resume.contains(&("install".into(), Resume::ReadSeFirst { seq: 3 })));
        assert!(resume.contains(&("status".into(), Resume::Resend { seq: 1 })));
        assert!(resume.contains(&("idle".into(), Resume::Continue)));
        assert_eq!(
            restarted.running_flows(Some("other-se")).await.unwrap(),
            vec![]
        );
        assert_eq!(restarted.running_flows(None).await.unwrap().len(), 3);

        // After reading the SE (the applet is there), the flow moves on with no script outstanding.
        let flow = restarted.flow("install").await.unwrap();
        let moved = restarted
            .advance_flow("install", flow.version, &update("personalise", 2, None))
            .await
            .unwrap();
        assert_eq!(moved.resume(), Resume::Continue);
        restarted.close().await;
    })
    .await;
}
