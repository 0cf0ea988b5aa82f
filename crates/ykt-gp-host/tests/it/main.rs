//! Integration tests of the host library: every builder's bytes against hand-checked hex and
//! the brief's §9 vectors, the parsers' totality, the diversification methods against OpenSSL,
//! and whole sessions against the card manager of ykt-gp on a simulated card.

// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod builders;
mod content;
mod diversify;
mod parsers;
mod session;
mod support;
mod vectors;
