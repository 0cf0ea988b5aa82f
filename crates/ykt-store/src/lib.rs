//! The TSM's persistent state over sqlx: SQLite as the embedded default, PostgreSQL in production.
//!
//! [`Store::connect`] takes `sqlite://path?mode=rwc` (or `sqlite::memory:`) or `postgres://…`,
//! runs the numbered migrations (`migrations/0001_init.sql`, …; one set for both dialects) and
//! gives typed repositories, as `async` methods on [`Store`]; no SQL leaves this crate:
//!
//! * secure elements ([`Se`], tsm-gp.md §8 SE life cycle) and card instances per SE × card
//!   number ([`CardInstance`], §8 card life cycle, AIDs, key *versions*);
//! * flows as persisted state machines ([`Flow`]): a compare-and-set [`Store::advance_flow`] on a
//!   version number, and [`Flow::resume`], which says whether a script released before a crash
//!   may be sent again or the SE's state must be read first;
//! * idempotency records (§7 `request_id`: a repeat gets the stored response, another body under
//!   the same id is [`Error::Duplicate`]) and the replay guard of signed messages (a message id
//!   seen inside the window is [`Error::Replayed`]), and both in one transaction for a signed
//!   request ([`Store::admit_request`]);
//! * top-up orders ([`TopupOrder`]): one per order id and per payment, one MAC2 per card online
//!   counter;
//! * the operators' registry: card issuers ([`Issuer`]), card stock ranges ([`StockRange`]; a
//!   number is taken once, [`Store::take_card_number`]), SE profiles matched by CPLC
//!   ([`SeProfile`]) and each SE's profile; every operator write appends its audit row in the
//!   same transaction;
//! * the audit log ([`AuditRecord`]): append-only, each row chained by
//!   SM3(previous hash ‖ canonical row bytes); [`Store::verify_chain`] finds the first row changed
//!   or removed behind the store's back.
//!
//! ```text
//!  ykt-tsm (domain) ──typed calls──▶ Store ──sqlx Any──┬── SQLite file (embedded default)
//!                                                      └── PostgreSQL (production)
//! ```
//!
//! It deliberately owns no TSM decisions (which script to send, when to rotate keys) and no wire
//! format; row structs stay private. No key value is ever stored: the API takes no key type, and
//! card instances record key versions only. Multi-statement writes are one transaction each, so a
//! process killed in the middle leaves the state before or the state after.
//!
//! The store reads the wall clock for its timestamps; [`Store::with_clock`] replaces it (tests).
//!
//! # One schema, two dialects
//!
//! Queries go through sqlx's `Any` driver at run time (no compile-time checked macros, so no
//! database is needed to build), with `$n` placeholders, which SQLite accepts too. The migrations
//! keep to what both dialects read the same way: `TEXT` and `BIGINT` columns only (byte strings
//! as lowercase hex, times as Unix milliseconds, flags as 0/1), no autoincrement (the audit log
//! numbers its rows itself), `ON CONFLICT … DO UPDATE`, `UPDATE … RETURNING`. A change is a new
//! file `migrations/NNNN_name.sql` added to the list in this file; an applied file is never
//! edited (sqlx checks each one's checksum). Should the dialects ever need to differ, the list
//! becomes one per [`Dialect`] with the same version numbers.
//!
//! Write transactions begin with `BEGIN IMMEDIATE` on SQLite, so that concurrent writers queue on
//! the busy timeout instead of failing to upgrade a read lock; compare-and-set moves are single
//! `UPDATE … WHERE version = $n` statements on both.

#![warn(missing_docs)]

mod admin;
mod admit;
mod audit;
mod card;
mod commit;
mod device;
mod error;
mod flow;
mod idempotency;
mod replay;
mod se;
mod topup;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};

pub use admin::{
    CplcMatch, Issuer, NewIssuer, NewSeProfile, NewStockRange, SeProfile, StockRange, TakenNumber,
};
pub use audit::{AuditEvent, AuditKind, AuditRecord, BreakReason, ChainBreak, ChainStatus};
pub use card::{CardInstance, CardState, NewCard};
pub use commit::{
    CancelRefund, CardWrite, Escrow, EscrowWrite, FlowWrite, Refund, RefundWrite, SeWrite,
    StepCommit, TopupWrite,
};
pub use device::{Counts, Device};
pub use error::{Entity, Error};
pub use flow::{Flow, FlowStatus, FlowUpdate, NewFlow, ReleasedScript, Resume};
pub use idempotency::{Begun, RequestCompletion, RequestHash};
pub use se::{NewSe, Se, SeState};
pub use topup::{NewTopup, TopupOrder, TopupState, TopupUpdate};

/// The numbered migrations, embedded at build time. Both dialects run the same files.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "engine", include_str!("../migrations/0002_engine.sql")),
    (3, "admin", include_str!("../migrations/0003_admin.sql")),
];

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// An SQLite file (or `sqlite::memory:`).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A clock giving Unix milliseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The TSM's store: a connection pool and the repositories as methods.
///
/// Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    clock: Clock,
    fault: Arc<Mutex<Option<(&'static str, danger::Fault)>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: it is not kept, and not printed.
        f.debug_struct("Store")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://…`) and runs
    /// the migrations not yet applied.
    ///
    /// An SQLite file is switched to WAL journaling (readers do not wait for the writer).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(Error::UnsupportedUrl {
                scheme: scheme.chars().take(32).collect(),
            });
        };
        sqlx::any::install_default_drivers();
        let options: AnyConnectOptions = url.parse().map_err(Error::Database)?;
        let in_memory = dialect == Dialect::Sqlite
            && (url.starts_with("sqlite::memory:") || url.contains("mode=memory"));
        let mut pool_options = AnyPoolOptions::new();
        if in_memory {
            // Every connection to an in-memory database would be a new, empty database.
            pool_options = pool_options.max_connections(1);
        }
        let pool = pool_options.connect_with(options).await?;
        if dialect == Dialect::Sqlite && !in_memory {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let store = Store {
            pool,
            dialect,
            clock: Arc::new(system_clock),
            fault: Arc::new(Mutex::new(None)),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Runs the migrations not yet applied (also done by [`Store::connect`]; running it again
    /// changes nothing).
    pub async fn migrate(&self) -> Result<(), Error> {
        migrator().run(&self.pool).await?;
        Ok(())
    }

    /// The versions of the migrations this build knows, in order.
    pub fn migration_versions() -> Vec<i64> {
        MIGRATIONS.iter().map(|(v, _, _)| *v).collect()
    }

    /// The versions applied to the database, in order.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, Error> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    /// Replaces the clock (Unix milliseconds) the store stamps rows with and measures the replay
    /// window by.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The database this store talks to.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Begins a transaction that will write. SQLite takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so a transaction that reads first never fails to upgrade its lock.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, Error> {
        let tx = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// A fault-injection point between the statements of a multi-statement write.
    async fn checkpoint(&self, point: &'static str) -> Result<(), Error> {
        let armed = match self.fault.lock() {
            Ok(mut slot) if slot.as_ref().is_some_and(|(p, _)| *p == point) => {
                slot.take().map(|(_, f)| f)
            }
            _ => None,
        };
        match armed {
            None => Ok(()),
            Some(danger::Fault::Fail) => Err(Error::InjectedFault { point }),
            Some(danger::Fault::Hang(notify)) => {
                // The receiver may be gone; the hang is what matters.
                let _ = notify.send(point);
                std::future::pending::<()>().await;
                Ok(())
            }
        }
    }

    /// Arms a fault at a named point inside a multi-statement write (see [`danger`]); the next
    /// write that reaches it fails or hangs there, with its transaction open.
    #[doc(hidden)]
    pub fn danger_inject_fault(&self, point: &'static str, fault: danger::Fault) {
        if let Ok(mut slot) = self.fault.lock() {
            *slot = Some((point, fault));
        }
    }
}

/// Fault injection for tests of atomicity. Never used outside tests.
#[doc(hidden)]
pub mod danger {
    /// What an armed fault point does.
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum Fault {
        /// Return [`crate::Error::InjectedFault`]: the open transaction is dropped.
        Fail,
        /// Send the point's name on the channel, then never finish (the test kills the process).
        Hang(std::sync::mpsc::Sender<&'static str>),
    }

    /// Creates the PostgreSQL schema `name` on the server at `admin_url` and gives a URL whose
    /// sessions work in it (a fresh database per test). Tests only.
    pub async fn create_postgres_schema(
        admin_url: &str,
        name: &str,
    ) -> Result<String, crate::Error> {
        use sqlx::{Connection as _, Executor as _};
        let mut admin = sqlx::PgConnection::connect(admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await?;
        admin.close().await?;
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        Ok(format!("{admin_url}{sep}options=-c%20search_path%3D{name}"))
    }

    /// Drops the schema [`create_postgres_schema`] made. Tests only.
    pub async fn drop_postgres_schema(admin_url: &str, name: &str) -> Result<(), crate::Error> {
        use sqlx::{Connection as _, Executor as _};
        let mut admin = sqlx::PgConnection::connect(admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
            .await?;
        admin.close().await?;
        Ok(())
    }

    /// The fault points, one per gap between statements of a multi-statement write.
    pub const POINTS: &[&str] = &[
        "admit.after_nonce",
        "admit.before_commit",
        "audit.after_head",
        "audit.after_insert",
        "card.after_instance",
    ];
}

fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                (*description).into(),
                MigrationType::Simple,
                sqlx::SqlStr::from_static(sql),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

fn system_clock() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Declares a text-coded enum: `as_str`, `parse` (a stored value this build does not know is
/// [`Error::Corrupt`]), and `Display`.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident : $entity:path { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stored (and spec) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub(crate) fn parse(text: &str) -> Result<Self, $crate::Error> {
                match text {
                    $($text => Ok($name::$variant),)*
                    _ => Err($crate::Error::Corrupt {
                        what: $entity,
                        detail: format!("unknown {} {text:?}", stringify!($name)),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

/// Hex of optional bytes, for a nullable TEXT column.
fn hex_opt(bytes: Option<&[u8]>) -> Option<String> {
    bytes.map(hex::encode)
}

/// Bytes from a hex TEXT column.
fn unhex(what: Entity, text: &str) -> Result<Vec<u8>, Error> {
    hex::decode(text).map_err(|e| Error::Corrupt {
        what,
        detail: format!("bad hex: {e}"),
    })
}

/// A non-negative BIGINT column as `u64`.
fn unsigned(what: Entity, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::Corrupt {
        what,
        detail: format!("negative value {value}"),
    })
}

/// A `u64` for a BIGINT column.
fn signed(value: u64) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| Error::OutOfRange { value })
}
