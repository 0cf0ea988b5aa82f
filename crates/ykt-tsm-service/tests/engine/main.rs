//! The TSM engine's integration tests: flows driven through `Engine` against simulated SEs in
//! process (the wallet's relay is `ykt_tsm::relay::relay_on_card`), on SQLite and, when
//! `YKT_TEST_POSTGRES_URL` is set, on PostgreSQL; engines dropped and rebuilt mid-flow.

// Test helpers outside #[test] functions unwrap and panic to report failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod abandon;
mod backend;
mod concurrency;
mod lifecycle;
mod live;
mod replay;
mod restart;
mod stock;
mod stuck;
mod support;
mod transfer;
