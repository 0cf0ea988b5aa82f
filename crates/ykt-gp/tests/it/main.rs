//! Integration tests of the card manager: transcripts (tests/data/*.apdu, see its README.md),
//! the secure channel on every protocol, GET DATA, GET STATUS, SET STATUS, PUT KEY, tearing,
//! state files and properties.

// Test helpers outside #[test] functions unwrap and panic to report failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod commands;
mod content;
mod delegated;
mod dm;
mod paging;
mod properties;
mod purse_perso;
mod put_key;
mod session;
mod support;
mod tearing;
mod transcripts;
