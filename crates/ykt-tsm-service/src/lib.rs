//! The TSM service (JT/T 1059.6, tsm-gp.md §2, §7, §8): the [`ykt_tsm`] flows persisted on
//! [`ykt_store`], behind signed envelopes ([`ykt_envelope`]) over HTTP.
//!
//! * `engine`: flows as persisted, resumable state machines; devices, orders, card instances.
//! * `http`: the axum server (business API, admin API, `/openapi.json`, health, metrics).
//! * `client`: the HTTP client the wallet and the conformance suite use.
//! * `platform`: SEI-TSM and SP-TSM as two servers: the inter-platform API.

#![warn(missing_docs)]

// Each module below is owned by one part of the service; keep edits to your own lines.
pub mod engine;
pub mod http;
pub mod kms_audit;
pub mod platform;

pub use crate::engine::{Engine, EngineConfig, EngineError, Keys};
pub use crate::http::{Backend, BackendError, ServerConfig, TsmClient};
