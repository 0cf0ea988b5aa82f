//! Integration tests of ykt-qr: the brief's worked example, round trips, every field and
//! signature flipped, the clock window, replay, the lists, the published vectors
//! (`tests/data/`, see its README.md), OpenSSL cross-checks and decoder fuzzing.
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod example;
mod flips;
mod fuzz;
mod lists;
mod openssl;
mod replay;
mod roundtrip;
mod store;
mod tables;
mod upload;
mod vectors;
mod window;
