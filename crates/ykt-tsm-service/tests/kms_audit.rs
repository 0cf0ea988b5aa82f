//! KMS key use into the store's audit chain (`ykt_tsm_service::kms_audit`): every event a
//! `SoftwareKms` reports becomes a KEY_USE row, the chain verifies, nothing is lost on shutdown,
//! and an unreachable store is counted, not a panic. On SQLite, and on PostgreSQL too when
//! `YKT_TEST_POSTGRES_URL` is set (`scripts/with-postgres`).
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;
use ykt_kms::{
    AuditSink, KeyId, KeyRef, KeySpec, KeyType, Kms, MacAlgorithm, MemoryAudit, SecretBytes,
    SoftwareKms,
};
use ykt_store::{AuditKind, ChainStatus, Store};
use ykt_tsm_service::kms_audit::{BATCH_MAX, KmsAuditLog};

/// The clear value of the imported key: it must appear in no row.
const MATERIAL: [u8; 16] = [0x3C; 16];

/// Both sinks: the one under test and a memory copy to compare with.
struct Tee(KmsAuditLog, Arc<MemoryAudit>);

impl AuditSink for Tee {
    fn record(&self, event: &ykt_kms::AuditEvent) {
        self.0.record(event);
        self.1.record(event);
    }
}

static N: AtomicU32 = AtomicU32::new(0);

/// A fresh store on every backend available, and its cleanup.
async fn stores() -> Vec<(Store, Box<dyn FnOnce()>)> {
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("ykt-kms-audit-{}-{n}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut out: Vec<(Store, Box<dyn FnOnce()>)> = vec![(
        Store::connect(&url).await.unwrap(),
        Box::new(move || {
            for s in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{s}", path.display()));
            }
        }),
    )];
    if let Some(admin) = std::env::var("YKT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        let schema = format!("ykt_kms_audit_{}_{n}", std::process::id());
        let url = ykt_store::danger::create_postgres_schema(&admin, &schema)
            .await
            .unwrap();
        out.push((Store::connect(&url).await.unwrap(), Box::new(|| {})));
    }
    out
}

fn kms_with(log: &KmsAuditLog) -> (SoftwareKms, Arc<MemoryAudit>) {
    let memory = Arc::new(MemoryAudit::new());
    let kms = SoftwareKms::in_memory(Arc::new(Tee(log.clone(), memory.clone())));
    (kms, memory)
}

fn key(name: &str) -> KeyId {
    KeyId::new(name, 1).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kms_event_is_a_key_use_row_and_the_chain_verifies() {
    for (store, cleanup) in stores().await {
        let (log, writer) = KmsAuditLog::start(store.clone(), &tokio::runtime::Handle::current());
        let (kms, memory) = kms_with(&log);
        let mac_key = key("sp-mac");
        kms.import(
            &mac_key,
            KeySpec::internal(KeyType::Tdes2),
            &SecretBytes::new(MATERIAL.to_vec()),
            "test import",
        )
        .unwrap();
        kms.generate(
            &key("sp-dek"),
            KeySpec::internal(KeyType::Sm4),
            "test generate",
        )
        .unwrap();
        let algorithm = MacAlgorithm::RetailMac { iv: [0; 8] };
        let data = b"0123456789abcdef";
        let mac = kms
            .mac(
                &KeyRef::stored(mac_key.clone()),
                &algorithm,
                data,
                "MAC2 card 3104",
            )
            .unwrap();
        kms.verify_mac(
            &KeyRef::stored(mac_key.clone()),
            &algorithm,
            data,
            &mac,
            "check",
        )
        .unwrap();
        // A failed use is reported too.
        assert!(
            kms.verify_mac(
                &KeyRef::stored(mac_key.clone()),
                &algorithm,
                b"other",
                &mac,
                "bad"
            )
            .is_err()
        );
        log.flush().await;

        let events = memory.take();
        assert_eq!(events.len(), 5, "{events:?}");
        let rows = store.audit_records(1, 100).await.unwrap();
        assert_eq!(rows.len(), events.len());
        assert_eq!((log.written(), log.lost()), (5, 0));
        let material_hex = hex::encode(MATERIAL);
        for (row, event) in rows.iter().zip(&events) {
            assert_eq!(row.event.kind, AuditKind::KeyUse);
            assert_eq!(row.event.actor, "kms:software");
            assert_eq!(row.event.subject, event.key.to_string());
            let detail: Value = serde_json::from_str(&row.event.detail).unwrap();
            assert_eq!(detail["purpose"], event.purpose.as_str());
            assert_eq!(detail["algorithm"], event.algorithm);
            assert_eq!(detail["succeeded"], event.succeeded);
            assert_eq!(detail["key"], event.key.to_string());
            for text in [&row.event.detail, &row.event.subject] {
                assert!(!text.to_lowercase().contains(&material_hex), "{text}");
            }
        }
        let operations: Vec<&str> = rows
            .iter()
            .map(|r| {
                let d: Value = serde_json::from_str(&r.event.detail).unwrap();
                match d["operation"].as_str().unwrap() {
                    "import" => "import",
                    "generate" => "generate",
                    "mac" => "mac",
                    "verify_mac" => "verify_mac",
                    other => panic!("{other}"),
                }
            })
            .collect();
        assert_eq!(
            operations,
            ["import", "generate", "mac", "verify_mac", "verify_mac"]
        );
        let outcomes: Vec<bool> = events.iter().map(|e| e.succeeded).collect();
        assert_eq!(outcomes, [true, true, true, true, false]);
        assert_eq!(
            store.verify_chain().await.unwrap(),
            ChainStatus::Intact {
                rows: 5,
                head: rows[4].hash
            }
        );
        writer.shutdown().await;
        store.close().await;
        cleanup();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_writes_everything_queued_and_later_events_are_counted_lost() {
    for (store, cleanup) in stores().await {
        let (log, writer) = KmsAuditLog::start(store.clone(), &tokio::runtime::Handle::current());
        let (kms, _memory) = kms_with(&log);
        let id = key("sp-mac");
        kms.generate(&id, KeySpec::internal(KeyType::Tdes2), "gen")
            .unwrap();
        let algorithm = MacAlgorithm::RetailMac { iv: [0; 8] };
        // More than one batch, queued faster than written.
        let uses = BATCH_MAX + 44;
        for i in 0..uses {
            kms.mac(
                &KeyRef::stored(id.clone()),
                &algorithm,
                &[i as u8; 8],
                "load",
            )
            .unwrap();
        }
        writer.shutdown().await;
        let total = 1 + uses as u64;
        assert_eq!((log.written(), log.lost()), (total, 0));
        assert!(matches!(
            store.verify_chain().await.unwrap(),
            ChainStatus::Intact { rows, .. } if rows == total
        ));
        // After shutdown: no panic, no row, one loss.
        kms.mac(&KeyRef::stored(id.clone()), &algorithm, b"late", "late")
            .unwrap();
        log.flush().await;
        assert_eq!((log.written(), log.lost()), (total, 1));
        assert_eq!(store.audit_head().await.unwrap().0, total);
        store.close().await;
        cleanup();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_is_counted_as_lost_not_a_panic() {
    for (store, cleanup) in stores().await {
        let (log, writer) = KmsAuditLog::start(store.clone(), &tokio::runtime::Handle::current());
        let (kms, _memory) = kms_with(&log);
        store.close().await;
        kms.generate(&key("sp-dek"), KeySpec::internal(KeyType::Sm4), "gen")
            .unwrap();
        kms.generate(&key("sp-mac"), KeySpec::internal(KeyType::Tdes2), "gen")
            .unwrap();
        log.flush().await;
        assert_eq!(log.written(), 0);
        assert_eq!(log.lost(), 2);
        writer.shutdown().await;
        cleanup();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_before_the_store_is_open_wait_for_the_writer() {
    for (store, cleanup) in stores().await {
        // The server opens its keys before its store: the key uses of provisioning queue.
        let (log, pending) = KmsAuditLog::new();
        let (kms, _memory) = kms_with(&log);
        kms.generate(&key("sp-dek"), KeySpec::internal(KeyType::Sm4), "provision")
            .unwrap();
        assert_eq!(store.audit_head().await.unwrap().0, 0);
        let writer = pending.start(store.clone(), &tokio::runtime::Handle::current());
        kms.generate(
            &key("sp-mac"),
            KeySpec::internal(KeyType::Tdes2),
            "provision",
        )
        .unwrap();
        writer.shutdown().await;
        let rows = store.audit_records(1, 10).await.unwrap();
        let subjects: Vec<&str> = rows.iter().map(|r| r.event.subject.as_str()).collect();
        assert_eq!(subjects, ["sp-dek@1", "sp-mac@1"]);
        assert_eq!((log.written(), log.lost()), (2, 0));
        store.close().await;
        cleanup();
    }
    // A queue never given a writer counts its events lost.
    let (log, pending) = KmsAuditLog::new();
    let (kms, _memory) = kms_with(&log);
    kms.generate(&key("k"), KeySpec::internal(KeyType::Sm4), "p")
        .unwrap();
    drop(pending);
    kms.generate(&key("k2"), KeySpec::internal(KeyType::Sm4), "p")
        .unwrap();
    log.flush().await;
    assert_eq!((log.written(), log.lost()), (0, 2));
}
