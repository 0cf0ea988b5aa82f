//! The ykt-store suite. Every test runs against SQLite (a temp file) and, when
//! `YKT_TEST_POSTGRES_URL` is set (`scripts/with-postgres`), against PostgreSQL too, each on
//! a fresh database (a temp SQLite file; a PostgreSQL schema of its own).
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod abandon;
mod admin;
mod admit;
mod atomic;
mod audit;
mod commit;
mod flows;
mod idempotency;
mod migrations;
mod replay;
mod se_card;
mod support;
mod topup;
