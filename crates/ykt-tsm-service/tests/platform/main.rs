//! SEI-TSM and SP-TSM as two servers (tsm-gp.md §2, §6, §7): the SP's engine with the SEI's
//! vault behind `RemoteSeiVault` over real loopback HTTP to a SEI router on a runtime of its
//! own, against the same flows in one process; the SEI's refusals; the link failing mid-flow.

// Test helpers outside #[test] functions unwrap and panic to report failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod flows;
mod http;
mod link;
mod refusals;
#[allow(dead_code)]
#[path = "../engine/support.rs"]
mod support;
mod two;
