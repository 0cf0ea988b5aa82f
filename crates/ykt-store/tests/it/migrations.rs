//! Migrations: applied once, idempotent, the same set on both backends.

use ykt_store::{Error, NewSe, Store};

use crate::support::{SEID, each};

#[tokio::test]
async fn migrations_are_idempotent() {
    each(async |db| {
        let store = &db.store;
        assert_eq!(
            store.applied_migrations().await.unwrap(),
            Store::migration_versions()
        );
        store
            .register_se(&NewSe {
                seid: SEID.into(),
                cplc: vec![1, 2, 3],
                profile: "p".into(),
            })
            .await
            .unwrap();
        // Again on the same pool, and through a second connect (a restarted TSM).
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        let again = Store::connect(&db.url).await.unwrap();
        assert_eq!(
            again.applied_migrations().await.unwrap(),
            Store::migration_versions()
        );
        assert_eq!(again.se(SEID).await.unwrap().cplc, vec![1, 2, 3]);
        again.close().await;
    })
    .await;
}

#[tokio::test]
async fn unsupported_urls_are_refused_without_echoing_them() {
    let err = Store::connect("mysql://root:secret@localhost/db")
        .await
        .unwrap_err();
    let Error::UnsupportedUrl { scheme } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(scheme, "mysql");
    assert!(!err.to_string().contains("secret"));
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    assert_eq!(
        store.applied_migrations().await.unwrap(),
        Store::migration_versions()
    );
    assert!(matches!(store.se("x").await, Err(Error::NotFound { .. })));
}

/// The schema has no column that could hold a key value: card instances keep versions only.
#[test]
fn no_column_holds_a_key() {
    let sql = include_str!("../../migrations/0001_init.sql");
    for line in sql.lines().map(str::trim) {
        if line.starts_with("--") {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        let Some(column) = lower.split_whitespace().next() else {
            continue;
        };
        if column.contains("key") {
            assert!(
                ["key_set", "primary", "foreign"].contains(&column),
                "column {column} looks like it could hold a key"
            );
        }
    }
}

/// Every file in `migrations/` is embedded, numbered 1, 2, … in order.
#[test]
fn every_migration_file_is_embedded_in_order() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut versions: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .map(|name| name[..4].parse().unwrap())
        .collect();
    versions.sort();
    assert_eq!(versions, Store::migration_versions());
    assert_eq!(versions, (1..=versions.len() as i64).collect::<Vec<_>>());
}

/// An applied migration that no longer matches this build's file is refused at connect.
#[tokio::test]
async fn an_edited_applied_migration_is_refused() {
    each(async |db| {
        let zero = if db.backend == "postgres" {
            "'\\x00'::bytea"
        } else {
            "X'00'"
        };
        db.raw_execute(&format!(
            "UPDATE _sqlx_migrations SET checksum = {zero} WHERE version = 1"
        ))
        .await;
        let err = Store::connect(&db.url).await.unwrap_err();
        assert!(matches!(err, Error::Migrate(_)), "{err:?}");
    })
    .await;
}
