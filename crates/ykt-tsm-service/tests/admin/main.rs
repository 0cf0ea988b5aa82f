//! The operators' registry through `Engine`: issuers, card stock and the card numbers taken
//! from it, SE profiles, key versions; bad input, conflicts, and the audit chain verifying with
//! the operator rows in it. On SQLite and, when `YKT_TEST_POSTGRES_URL` is set, PostgreSQL.

// Test helpers outside #[test] functions unwrap and panic to report failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

// The engine suite's helpers (vaults, engines on a fresh database); not every one is used here.
#[allow(dead_code)]
#[path = "../engine/support.rs"]
mod support;

mod abandon;
mod client;
mod http;
mod registry;
mod server;
