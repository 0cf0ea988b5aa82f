//! ykt-tsm-kms's integration tests: ykt-tsm's flows run with `KmsVault` over the software KMS
//! (and the key-set operations over a SoftHSM2 token), against simulated SEs keyed as the
//! ykt-tsm tests key them; the values compared with `MemoryVault`'s; the audit trail; and a
//! search for key bytes where none may be.

// Test helpers outside #[test] functions unwrap and panic to report failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flows;
mod pkcs11;
mod provision;
mod support;
mod vault;
