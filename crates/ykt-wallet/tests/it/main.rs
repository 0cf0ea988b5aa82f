//! The wallet SDK's integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod card;
mod e2e;
mod errors;
mod flows;
mod mask;
mod seal;
