//! Integration tests of ykt-kms: one behaviour suite run against both backends and
//! cross-checked with ykt-crypto in the clear, the software backend's national algorithms,
//! derivations and key file, and the PKCS#11 backend on a throwaway SoftHSM2 token.
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod key_file;
mod pkcs11;
mod software;
mod suite;
