//! ykt-tsm's integration tests: the flows driven in-process against simulated SEs (ISD with
//! the SD and purse packages), through the relay loop, with crashes, tampering and key searches.

// Test helpers outside #[test] functions unwrap and panic to report failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod channel_vault;
mod flows;
mod resume;
mod security;
mod support;
mod vault_layout;
