//! Integration tests of ykt-card: transcripts (tests/data/*.apdu), tearing, state files,
//! properties.

// Test helpers outside #[test] functions unwrap and panic to report failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod manage;
mod mf;
mod misc;
mod props;
mod state;
mod support;
mod tearing;
mod transcripts;
mod warning;
