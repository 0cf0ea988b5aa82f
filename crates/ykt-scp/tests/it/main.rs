//! Integration tests of ykt-scp: the published vectors under `tests/data/` (see its README.md)
//! on both roles, host ↔ card round trips, rejections, properties and OpenSSL cross-checks.
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod derived;
mod harness;
mod openssl;
mod properties;
mod rejection;
mod roundtrip;
mod support;
mod vectors;
