//! The audit log's hash chain: verification, and tampering behind the store's back.

use ykt_store::{AuditEvent, AuditKind, BreakReason, ChainBreak, ChainStatus, Store};

use crate::support::{Db, each};

fn event(i: u32) -> AuditEvent {
    let kind = [
        AuditKind::KeyUse,
        AuditKind::CardWrite,
        AuditKind::OperatorAction,
    ][i as usize % 3];
    AuditEvent {
        kind,
        actor: "sptsm".into(),
        subject: format!("card 31040000000000{i:02}"),
        detail: format!(r#"{{"key":"topup-load","kvn":1,"i":{i}}}"#),
    }
}

async fn append(store: &Store, n: u32) {
    for i in 1..=n {
        let record = store.append_audit(&event(i)).await.unwrap();
        assert_eq!(record.seq, u64::from(i));
    }
}

fn broken(seq: u64, reason: BreakReason) -> ChainStatus {
    ChainStatus::Broken(ChainBreak { seq, reason })
}

/// The documented format: hash_n = SM3(hash_{n-1} ‖ canonical_n).
fn expected_hash(prev: &[u8; 32], seq: u64, at_ms: i64, e: &AuditEvent) -> [u8; 32] {
    let mut bytes = prev.to_vec();
    bytes.extend_from_slice(b"ykt-audit-1\0");
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(&at_ms.to_be_bytes());
    for f in [e.kind.as_str(), &e.actor, &e.subject, &e.detail] {
        bytes.extend_from_slice(&(f.len() as u64).to_be_bytes());
        bytes.extend_from_slice(f.as_bytes());
    }
    ykt_crypto::sm3(&bytes)
}

#[tokio::test]
async fn the_chain_verifies_and_follows_the_documented_format() {
    each(async |db| {
        let store = &db.store;
        assert_eq!(
            store.verify_chain().await.unwrap(),
            ChainStatus::Intact {
                rows: 0,
                head: [0; 32]
            }
        );
        append(store, 5).await;
        let records = store.audit_records(1, 100).await.unwrap();
        assert_eq!(records.len(), 5);
        let mut prev = [0u8; 32];
        for r in &records {
            assert_eq!(r.prev_hash, prev);
            assert_eq!(r.hash, expected_hash(&prev, r.seq, r.at_ms, &r.event));
            prev = r.hash;
        }
        assert_eq!(store.audit_head().await.unwrap(), (5, prev));
        assert_eq!(
            store.verify_chain().await.unwrap(),
            ChainStatus::Intact {
                rows: 5,
                head: prev
            }
        );
        assert_eq!(store.audit_records(4, 1).await.unwrap()[0].event, event(4));
    })
    .await;
}

#[tokio::test]
async fn concurrent_appends_keep_one_chain() {
    each(async |db| {
        let other = Store::connect(&db.url).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..20u32 {
            let store = if i % 2 == 0 {
                db.store.clone()
            } else {
                other.clone()
            };
            tasks.push(tokio::spawn(async move {
                store.append_audit(&event(i)).await.map(|r| r.seq)
            }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap().unwrap());
        }
        seqs.sort();
        assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
        assert!(matches!(
            db.store.verify_chain().await.unwrap(),
            ChainStatus::Intact { rows: 20, .. }
        ));
        other.close().await;
    })
    .await;
}

/// Runs each `(sql, expected)` case on a log of five rows, rebuilt from scratch before each.
async fn tampered(cases: &[(&str, ChainStatus)]) {
    each(async |db: &Db| {
        for (sql, expect) in cases {
            db.raw_execute("DELETE FROM audit_log").await;
            db.raw_execute(&format!(
                "UPDATE audit_head SET seq = 0, hash = '{}' WHERE id = 1",
                hex::encode([0u8; 32])
            ))
            .await;
            append(&db.store, 5).await;
            assert!(db.raw_execute(sql).await >= 1, "{sql}");
            assert_eq!(
                db.store.verify_chain().await.unwrap(),
                *expect,
                "{sql} on {}",
                db.backend
            );
        }
    })
    .await;
}

#[tokio::test]
async fn an_update_behind_the_stores_back_is_detected() {
    tampered(&[
        (
            "UPDATE audit_log SET detail = '{\"key\":\"other\"}' WHERE seq = 3",
            broken(3, BreakReason::HashMismatch),
        ),
        (
            "UPDATE audit_log SET at_ms = at_ms + 1 WHERE seq = 2",
            broken(2, BreakReason::HashMismatch),
        ),
        (
            "UPDATE audit_log SET kind = 'KEY_USE' WHERE seq = 1",
            broken(1, BreakReason::HashMismatch),
        ),
        (
            "UPDATE audit_log SET kind = 'NOT_A_KIND' WHERE seq = 4",
            broken(4, BreakReason::HashMismatch),
        ),
        (
            "UPDATE audit_head SET hash = prev_hash FROM audit_log WHERE audit_log.seq = 5",
            broken(5, BreakReason::HeadMismatch { last_row: 5 }),
        ),
    ])
    .await;
}

#[tokio::test]
async fn a_delete_behind_the_stores_back_is_detected() {
    tampered(&[
        (
            "DELETE FROM audit_log WHERE seq = 2",
            broken(3, BreakReason::Gap { expected: 2 }),
        ),
        (
            "DELETE FROM audit_log WHERE seq = 1",
            broken(2, BreakReason::Gap { expected: 1 }),
        ),
        // The tail: only the head shows it.
        (
            "DELETE FROM audit_log WHERE seq >= 4",
            broken(5, BreakReason::HeadMismatch { last_row: 3 }),
        ),
        (
            "DELETE FROM audit_log",
            broken(5, BreakReason::HeadMismatch { last_row: 0 }),
        ),
    ])
    .await;
}

/// A forger who knows the format rewrites row 3 with a correct hash of its own: row 4's link
/// no longer matches.
#[tokio::test]
async fn a_rehashed_row_breaks_the_next_link() {
    each(async |db| {
        append(&db.store, 5).await;
        let rows = db.store.audit_records(1, 10).await.unwrap();
        let mut forged = rows[2].event.clone();
        forged.detail = "nothing happened".into();
        let hash = expected_hash(&rows[2].prev_hash, 3, rows[2].at_ms, &forged);
        db.raw_execute(&format!(
            "UPDATE audit_log SET detail = 'nothing happened', hash = '{}' WHERE seq = 3",
            hex::encode(hash)
        ))
        .await;
        assert_eq!(
            db.store.verify_chain().await.unwrap(),
            broken(4, BreakReason::LinkMismatch)
        );
    })
    .await;
}

#[tokio::test]
async fn a_batch_is_appended_in_order_in_one_transaction_or_not_at_all() {
    each(async |db| {
        let store = &db.store;
        append(store, 2).await;
        let batch: Vec<AuditEvent> = (3..=6).map(event).collect();
        let records = store.append_audit_batch(&batch).await.unwrap();
        assert_eq!(
            records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [3, 4, 5, 6]
        );
        assert_eq!(
            records[0].prev_hash,
            store.audit_records(2, 1).await.unwrap()[0].hash
        );
        assert!(records.windows(2).all(|w| w[1].prev_hash == w[0].hash));
        assert_eq!(store.audit_records(3, 10).await.unwrap(), records);
        assert!(store.append_audit_batch(&[]).await.unwrap().is_empty());
        // A failure inside a batch (after its first row's insert) leaves none of it.
        db.store
            .danger_inject_fault("audit.after_insert", ykt_store::danger::Fault::Fail);
        let batch: Vec<AuditEvent> = (7..=9).map(event).collect();
        assert!(store.append_audit_batch(&batch).await.is_err());
        assert!(matches!(
            store.verify_chain().await.unwrap(),
            ChainStatus::Intact { rows: 6, .. }
        ));
        assert_eq!(store.append_audit(&event(7)).await.unwrap().seq, 7);
    })
    .await;
}
