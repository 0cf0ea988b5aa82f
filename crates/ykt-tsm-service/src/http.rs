//! The TSM over HTTP (tsm-gp.md §7, client.md §6.3): the business API of signed envelopes, the
//! admin API, `/openapi.json`, `/health` and `/metrics`; and the client.
//!
//! ```text
//!  wallet ──POST /v1/{msg_type} (envelope signed by the device)──▶ pipeline ──▶ Backend
//!         ◀── envelope signed by the TSM (result.code, HTTP status of the code) ──┘
//!  operator ──GET /admin/v1/… (Authorization: Bearer <admin token>)──▶ plain JSON
//! ```
//!
//! # Endpoints
//!
//! | method, path | what |
//! |---|---|
//! | `POST /v1/{msg_type}` | every request type of [`ykt_tsm::api::MESSAGES`] (the engine), or of [`ykt_tsm::api::PLATFORM_MESSAGES`] (the SEI-TSM's [`crate::platform::SeiPlatform`]): [`Backend::serves`] |
//! | `GET /admin/v1/ses`, `…/ses/{seid}`, `…/ses/{seid}/cards`, `…/cards`, `…/flows?status=`, `…/flows/{id}`, `…/audit/verify` | operators' views |
//! | `GET`/`POST /admin/v1/issuers`, `…/stock`, `…/se-profiles`; `POST …/ses/{seid}/profile`; `GET …/keys` | the registry (issuers, card stock, SE profiles, key versions), only when [`ServerConfig::with_operators`] names operators: each its own bearer token, its label the audit actor ([`admin_write`]) |
//! | `GET /openapi.json` | the OpenAPI document ([`openapi::document`]) |
//! | `GET /health` | `{"status":"ok"}` when the store answers |
//! | `GET /metrics` | Prometheus text: requests by type and code, latency, flows |
//!
//! # The pipeline
//!
//! Parse the envelope (unknown members refused) and its body → `msg_type` is the path's,
//! `msg_no` its number, `receiver_id` this TSM, a type this backend serves → the sender's key (for `EnrolReq` the body's
//! `device_pub`: proof of possession; otherwise [`Backend::device_key`]) → verify the
//! signature → the timestamp within the window → the replay guard on sender and nonce and the
//! idempotency claim on sender, `request_id` and the SM3 of the JCS of
//! `{msg_type, txn_id, body}`, both in one store transaction (`Store::admit_request`) →
//! dispatch → seal the reply → complete the claim (`Store::complete_request`).
//! For `EnrolReq` the replay guard and the claim are scoped by the key's id
//! (`enrol:<key id>`) instead of the sender id, which an unenrolled device chooses freely.
//! Every refusal is an envelope signed by the TSM, with `result.code` and the HTTP status
//! [`ykt_envelope::Code::http_status`] (413 for a body over the limit). Messages say what is
//! wrong with the input, never the card data, keys or status words in it; details go to
//! `tracing`.
//!
//! A retry (new nonce, same `request_id` and body) gets the stored answer, sealed again; the
//! same `request_id` with another body is `1003`; a claim still in progress is `1008`. A
//! claim left in progress by a process that died is released once it has blocked retries for
//! [`proposals::ORPHAN_CLAIM_MS`]. Every choice of this kind is in [`proposals`].
//!
//! Boundary: the flows, devices and orders are the [`Backend`]'s; this module adds HTTP, the
//! envelope checks, the clock and the OS random source (response nonces).

mod admin;
pub mod admin_write;
pub mod backend;
pub mod client;
mod metrics;
pub mod openapi;
mod pipeline;
pub mod proposals;
mod server;
pub mod tls;

pub use self::backend::{
    Backend, BackendError, BackendFuture, CardInstanceView, ChainView, FlowView, SeView, Start,
};
pub use self::client::{ClientError, TsmClient};
pub use self::server::{
    AdminToken, Clock, ServerConfig, TLS_HANDSHAKE_TIMEOUT, TokenError, router, serve, serve_tls,
};
