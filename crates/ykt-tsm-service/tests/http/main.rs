//! The TSM's HTTP layer over a real socket: a server on 127.0.0.1:0 with the fake backend and a
//! store on a temporary SQLite file, driven by the blocking client.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod admin;
mod docs;
mod e2e;
mod fake;
mod idempotency;
mod pipeline;
mod se;
mod support;
mod tls;
