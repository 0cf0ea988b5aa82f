//! Multi-statement writes are atomic: a failure or a killed process in the middle leaves the
//! state before.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use ykt_store::danger::{Fault, POINTS};
use ykt_store::{
    AuditEvent, AuditKind, ChainStatus, Entity, Error, NewCard, NewSe, RequestHash, Store,
};

use crate::support::{CARD_NO, Db, SEID, each};

fn event(detail: &str) -> AuditEvent {
    AuditEvent {
        kind: AuditKind::CardWrite,
        actor: "sptsm".into(),
        subject: SEID.into(),
        detail: detail.into(),
    }
}

fn card() -> NewCard {
    NewCard {
        seid: SEID.into(),
        card_no: CARD_NO.into(),
        ssd_aid: None,
        app_aid: None,
        key_versions: BTreeMap::from([("ssd".to_string(), 0x30), ("app".to_string(), 0x01)]),
    }
}

async fn register(store: &Store) {
    store
        .register_se(&NewSe {
            seid: SEID.into(),
            cplc: vec![1],
            profile: "p".into(),
        })
        .await
        .unwrap();
}

/// The state after an interrupted write: the audit chain as before, no half card instance.
async fn assert_state_before(db: &Db, audit_rows: u64) {
    let status = db.store.verify_chain().await.unwrap();
    assert!(
        matches!(status, ChainStatus::Intact { rows, .. } if rows == audit_rows),
        "{status:?} on {}",
        db.backend
    );
    assert!(matches!(
        db.store.card(SEID, CARD_NO).await,
        Err(Error::NotFound {
            what: Entity::CardInstance,
            ..
        })
    ));
    assert_eq!(
        db.raw_count("SELECT COUNT(*) FROM card_key_version").await,
        0
    );
    // No half admission: neither the nonce nor the claim.
    assert_eq!(db.raw_count("SELECT COUNT(*) FROM seen_message").await, 0);
    assert_eq!(db.raw_count("SELECT COUNT(*) FROM idempotency").await, 0);
    // And the store goes on: nothing is left locked.
    let next = db.store.append_audit(&event("after")).await.unwrap();
    assert_eq!(next.seq, audit_rows + 1);
}

/// The write that passes `point`.
async fn interrupted_write(store: &Store, point: &str, detail: &str) -> Result<(), Error> {
    if point.starts_with("audit") {
        store.append_audit(&event(detail)).await.map(drop)
    } else if point.starts_with("admit") {
        let now = 1_760_000_000_000;
        let hash = RequestHash::of(detail.as_bytes());
        store
            .clone()
            .with_clock(move || now)
            .admit_request("sender", "0011223344556677", now, 300_000, "r1", &hash)
            .await
            .map(drop)
    } else {
        store.create_card(&card()).await.map(drop)
    }
}

#[tokio::test]
async fn a_failure_between_statements_leaves_no_half_state() {
    for point in POINTS {
        each(async |db| {
            register(&db.store).await;
            db.store.append_audit(&event("first")).await.unwrap();
            db.store.danger_inject_fault(point, Fault::Fail);
            let result = interrupted_write(&db.store, point, "interrupted").await;
            assert!(
                matches!(result, Err(Error::InjectedFault { .. })),
                "{point}: {result:?}"
            );
            assert_state_before(db, 1).await;
        })
        .await;
    }
}

const CHILD_URL: &str = "YKT_STORE_CHILD_URL";
const CHILD_POINT: &str = "YKT_STORE_CHILD_POINT";

/// The other half of `a_killed_writer_leaves_no_half_state`: run as a child process, it starts a
/// write that stops at the fault point with its transaction open, says so, and waits to be
/// killed. Run as a plain test, it does nothing.
#[tokio::test]
async fn child_writer() {
    let (Ok(url), Ok(point)) = (std::env::var(CHILD_URL), std::env::var(CHILD_POINT)) else {
        return;
    };
    let point: &'static str = POINTS.iter().find(|p| **p == point).unwrap();
    let store = Store::connect(&url).await.unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    store.danger_inject_fault(point, Fault::Hang(tx));
    let writer = store.clone();
    tokio::spawn(async move {
        let _ = interrupted_write(&writer, point, "killed").await;
    });
    tokio::task::spawn_blocking(move || rx.recv().unwrap())
        .await
        .unwrap();
    println!("PAUSED {point}");
    tokio::time::sleep(Duration::from_secs(600)).await;
    panic!("child writer was not killed");
}

#[tokio::test]
async fn a_killed_writer_leaves_no_half_state() {
    for point in POINTS {
        each(async |db| {
            register(&db.store).await;
            db.store.append_audit(&event("first")).await.unwrap();
            let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "atomic::child_writer",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_URL, &db.url)
                .env(CHILD_POINT, point)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let paused = tokio::time::timeout(Duration::from_secs(60), async {
                while let Some(line) = lines.next_line().await.unwrap() {
                    if line.contains("PAUSED ") {
                        return true;
                    }
                }
                false
            })
            .await
            .unwrap();
            assert!(
                paused,
                "{point}: the child ended before reaching the fault point"
            );
            // SIGKILL: no destructor, no rollback from the client side.
            child.kill().await.unwrap();
            assert_state_before(db, 1).await;
        })
        .await;
    }
}
