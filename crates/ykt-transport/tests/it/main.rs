//! Integration tests of ykt-transport: the vpcd card against a fake pcscd (a `TcpListener` in the
//! test, so no pcscd is needed), and the in-process channel. Transcripts live in `tests/data/`.
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod in_process;
mod nv;
mod vpcd;
