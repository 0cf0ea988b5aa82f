//! Integration tests of the e-purse applet: transcripts (tests/data/*.apdu, see its README.md),
//! error paths with state checks, tearing, properties, counters, the second ticket type.

// Test helpers outside #[test] functions unwrap and panic to report failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod commands;
mod counters;
mod perso;
mod perso_props;
mod perso_refusals;
mod properties;
mod psam;
mod psam_props;
mod second_ticket;
mod support;
mod tearing;
mod vectors;
