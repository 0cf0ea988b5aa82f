//! Integration tests of the NFC QR applet: transcripts (tests/data/*.apdu, see its README.md),
//! error paths with state checks, codes checked by the terminal's verifier and by OpenSSL,
//! secrecy of the private key, tearing, state files, properties.

// Test helpers outside #[test] functions unwrap and panic to report failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod commands;
mod properties;
mod secrecy;
mod support;
mod tearing;
mod transcripts;
mod verify;
