//! Integration tests of ykt-crypto: vector files under `tests/data/` (see its README.md),
//! cross-checks against the OpenSSL CLI, and properties.
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod openssl;
mod properties;
mod purse;
mod redaction;
mod rng;
mod vectors;
