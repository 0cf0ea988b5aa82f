//! Integration tests of ykt-conformance: catalogue validation, the runner on the simulator and
//! the terminal target, and the reports.
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod catalogue;
mod defects;
mod reports;
mod runs;
mod tsm;
mod yubikit;
