//! The two backends and a fresh database on each (an SQLite file; a PostgreSQL schema).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use sqlx::{Connection, Executor};
use ykt_store::{NewCard, NewSe, Store};

/// A fresh, migrated database and a store on it.
pub struct Db {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Its URL (to open more stores on the same database).
    pub url: String,
    /// A store on it.
    pub store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    Files(Vec<PathBuf>),
    Schema { admin_url: String, name: String },
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The PostgreSQL server URL for tests, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("YKT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// `url` with the session's search path set to `schema`, so that everything the store creates
/// lands in that schema: a fresh database for each test at the cost of a `CREATE SCHEMA`.
fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

impl Db {
    pub async fn sqlite() -> Db {
        let path = std::env::temp_dir().join(format!("{}.db", unique("ykt-store")));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = Store::connect(&url).await.unwrap();
        let files = ["", "-wal", "-shm", "-journal"]
            .iter()
            .map(|s| PathBuf::from(format!("{}{s}", path.display())))
            .collect();
        Db {
            backend: "sqlite",
            url,
            store,
            cleanup: Cleanup::Files(files),
        }
    }

    pub async fn postgres(admin_url: &str) -> Db {
        let name = unique("ykt_test");
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("YKT_TEST_POSTGRES_URL is set but the server cannot be reached");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .unwrap();
        admin.close().await.unwrap();
        let url = with_schema(admin_url, &name);
        let store = Store::connect(&url).await.unwrap();
        Db {
            backend: "postgres",
            url,
            store,
            cleanup: Cleanup::Schema {
                admin_url: admin_url.to_string(),
                name,
            },
        }
    }

    /// Closes the store and removes the database.
    pub async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Files(files) => {
                for f in files {
                    let _ = std::fs::remove_file(f);
                }
            }
            Cleanup::Schema { admin_url, name } => {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
                admin
                    .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
                    .await
                    .unwrap();
                admin.close().await.unwrap();
            }
        }
    }

    /// A raw connection to the database, for changes made behind the store's back.
    pub async fn raw(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.url).await.unwrap()
    }

    /// Runs `sql` on a raw connection, returning the rows affected.
    pub async fn raw_execute(&self, sql: &str) -> u64 {
        let mut conn = self.raw().await;
        let done = conn
            .execute(sqlx::AssertSqlSafe(sql.to_string()))
            .await
            .unwrap();
        conn.close().await.unwrap();
        done.rows_affected()
    }

    /// Counts rows with a raw `SELECT COUNT(*) …`.
    pub async fn raw_count(&self, sql: &str) -> i64 {
        let mut conn = self.raw().await;
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        n
    }
}

/// Runs `test` on a fresh database of every backend available.
pub async fn each(test: impl AsyncFn(&Db)) {
    let mut dbs = vec![Db::sqlite().await];
    if let Some(url) = postgres_url() {
        dbs.push(Db::postgres(&url).await);
    }
    for db in dbs {
        eprintln!("-- backend {}", db.backend);
        test(&db).await;
        db.finish().await;
    }
}

/// A manual clock (Unix ms) for a store.
#[derive(Clone)]
pub struct ManualClock(pub Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn on(&self, store: &Store) -> Store {
        let c = self.0.clone();
        store.clone().with_clock(move || c.load(Ordering::SeqCst))
    }
}

pub const SEID: &str = "4190871100000001";
pub const CARD_NO: &str = "3104000000000001";

/// An SE registered and a card instance on it.
pub async fn se_with_card(store: &Store) {
    store
        .register_se(&NewSe {
            seid: SEID.into(),
            cplc: vec![0x47, 0x90, 0x50, 0x40],
            profile: "test-se".into(),
        })
        .await
        .unwrap();
    store
        .create_card(&NewCard {
            seid: SEID.into(),
            card_no: CARD_NO.into(),
            ssd_aid: None,
            app_aid: None,
            key_versions: BTreeMap::new(),
        })
        .await
        .unwrap();
}

#[test]
fn the_search_path_is_appended() {
    assert_eq!(
        with_schema("postgres://postgres@127.0.0.1:5/postgres", "s"),
        "postgres://postgres@127.0.0.1:5/postgres?options=-c%20search_path%3Ds"
    );
    assert_eq!(
        with_schema("postgres://h/db?sslmode=disable", "s"),
        "postgres://h/db?sslmode=disable&options=-c%20search_path%3Ds"
    );
}
