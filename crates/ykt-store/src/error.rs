//! The store's error type.

use std::fmt;

/// What kind of record an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entity {
    /// A secure element.
    Se,
    /// A card instance (SE × card number).
    CardInstance,
    /// A flow.
    Flow,
    /// An idempotency record.
    Request,
    /// A seen signed message.
    Message,
    /// A top-up order.
    TopupOrder,
    /// An audit record.
    AuditRecord,
    /// An enrolled device.
    Device,
    /// A refund.
    Refund,
    /// A transfer's escrow.
    Escrow,
    /// A card issuer.
    Issuer,
    /// A range of card stock.
    StockRange,
    /// An SE profile.
    SeProfile,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Se => "SE",
            Entity::CardInstance => "card instance",
            Entity::Flow => "flow",
            Entity::Request => "request",
            Entity::Message => "message",
            Entity::TopupOrder => "top-up order",
            Entity::AuditRecord => "audit record",
            Entity::Device => "device",
            Entity::Refund => "refund",
            Entity::Escrow => "escrow",
            Entity::Issuer => "issuer",
            Entity::StockRange => "card stock range",
            Entity::SeProfile => "SE profile",
        })
    }
}

/// Everything a store call can fail with.
///
/// The domain outcomes (`NotFound` … `Stale`) are what callers match on; `Database` and `Migrate`
/// are the database failing, and `Corrupt` a stored value this build cannot read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL's scheme is neither `sqlite:` nor `postgres://` (only the scheme is kept: the rest
    /// may carry a password).
    #[error("unsupported database URL scheme {scheme:?} (expected sqlite: or postgres://)")]
    UnsupportedUrl {
        /// The scheme given.
        scheme: String,
    },
    /// No such record.
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of record.
        what: Entity,
        /// Its identifier.
        id: String,
    },
    /// A record with this identifier (or unique field) exists already.
    #[error("{what} {id} exists already")]
    AlreadyExists {
        /// The kind of record.
        what: Entity,
        /// Its identifier.
        id: String,
    },
    /// Someone else moved the record first: its version or state is not the one the caller
    /// started from. Re-read and decide again.
    #[error("{what} {id} was changed concurrently: expected {expected}, found {found}")]
    Conflict {
        /// The kind of record.
        what: Entity,
        /// Its identifier.
        id: String,
        /// The version or state the caller expected.
        expected: String,
        /// The version or state stored.
        found: String,
    },
    /// The life cycle does not allow this transition (tsm-gp.md §8).
    #[error("{what} cannot move from {from} to {to}")]
    IllegalTransition {
        /// The kind of record.
        what: Entity,
        /// The current state.
        from: &'static str,
        /// The state asked for.
        to: &'static str,
    },
    /// A field a transition needs is missing (for example the online counter of a MAC2).
    #[error("{what}: moving to {to} needs {field}")]
    MissingField {
        /// The kind of record.
        what: Entity,
        /// The state asked for.
        to: &'static str,
        /// The field missing.
        field: &'static str,
    },
    /// The idempotency key was used before with a different request body (tsm-gp.md §7
    /// `E_DUPLICATE`, code 1003).
    #[error("request {request_id} of {scope} was used before with a different body")]
    Duplicate {
        /// The sender or other scope of the key.
        scope: String,
        /// The idempotency key.
        request_id: String,
    },
    /// The same request is still being processed (begun, neither completed nor abandoned).
    #[error("request {request_id} of {scope} is in progress")]
    InProgress {
        /// The sender or other scope of the key.
        scope: String,
        /// The idempotency key.
        request_id: String,
    },
    /// This signed message was seen before inside the replay window.
    #[error("message {message_id} from {sender} was seen before")]
    Replayed {
        /// The sender.
        sender: String,
        /// The message id or nonce.
        message_id: String,
    },
    /// The message's timestamp lies outside the replay window, where replays can no longer be
    /// told apart.
    #[error("message {message_id} from {sender} is outside the replay window")]
    Stale {
        /// The sender.
        sender: String,
        /// The message id or nonce.
        message_id: String,
    },
    /// The issuer's card stock has no number left (every range used up, or none).
    #[error("card stock of issuer {issuer} is exhausted")]
    Exhausted {
        /// The issuer.
        issuer: String,
    },
    /// A number does not fit the database's signed 64-bit integers.
    #[error("value {value} is out of range")]
    OutOfRange {
        /// The value.
        value: u64,
    },
    /// A stored value this build cannot read (unknown state name, bad hex, bad JSON).
    #[error("corrupt {what} in the database: {detail}")]
    Corrupt {
        /// The kind of record.
        what: Entity,
        /// What was wrong.
        detail: String,
    },
    /// The database failed (connection, constraint, I/O).
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A migration failed, or the database's applied migrations differ from this build's.
    #[error("migration error")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A fault injected for an atomicity test (`Store::danger_inject_fault`).
    #[doc(hidden)]
    #[error("injected fault at {point}")]
    InjectedFault {
        /// The fault point.
        point: &'static str,
    },
}

impl Error {
    pub(crate) fn not_found(what: Entity, id: impl Into<String>) -> Self {
        Error::NotFound {
            what,
            id: id.into(),
        }
    }
}

/// Whether a database error is a unique-key (or primary-key) violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// Whether a database error is a foreign-key violation.
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_foreign_key_violation(),
        _ => false,
    }
}
