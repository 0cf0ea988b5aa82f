//! The ride QR issuer service (发码平台, qr-code.md §4.1) over HTTP, and its client.
//!
//! ```text
//!  wallet ──POST /v1/authorisations (bearer token; body signed by the wallet's own key)──► service
//!         ◄── fields 1–15 (hex) + the terms granted ───────── ykt_qr::issuer::authorise
//!  terminal ──GET /v1/parameters──► root key record, issuer certificate, whitelist, blacklist
//! ```
//!
//! # Endpoints
//!
//! | method, path | what | answer |
//! |---|---|---|
//! | `POST /v1/authorisations` | [`wire::AuthorisationRequest`] plus `"signature"` | 200 [`wire::AuthorisationResponse`] |
//! | `GET /v1/parameters` | — | 200 [`wire::ParametersResponse`] |
//! | `GET /healthz` | — | 200 `{"status":"ok"}` |
//!
//! Every refusal is a JSON body `{"code":"…","message":"…"}` ([`wire::ErrorBody`]) with a
//! stable [`wire::ErrorCode`] and the HTTP status [`wire::ErrorCode::status`] gives;
//! 5xx bodies are generic and the details go to the log.
//!
//! # Proof of possession and replay
//!
//! The wallet signs its request with the key it wants authorised: SM2-SM3 with the user ID
//! `1234567812345678` ([`ykt_crypto::DEFAULT_SM2_ID`], the ID of the brief's version `80`
//! codes, §2.4), over the canonical JSON ([`ykt_envelope::jcs`]: keys sorted, no white space; RFC 8785
//! for the integers and strings the body holds) of the whole body without its `signature`
//! member. The signature is raw r ‖ s (64 bytes) in hex, as the codes carry it. Every member
//! of the body is signed, so nothing can be added or changed in transit.
//!
//! The body's `timestamp` (Unix seconds) must be within [`server::ServiceConfig`]'s
//! `timestamp_window` of the service's clock (`stale` otherwise); its `nonce` (8 to 32 bytes,
//! hex) must not have been seen in that window (`replayed`). The service keeps each nonce in
//! memory until its timestamp has left the window, so a replay is refused for as long as it
//! could pass the clock check; when the cache is full of live nonces the service refuses new
//! requests (`busy`) rather than forget one. A restarted service has an empty cache, and the
//! timestamp window is what bounds a replay across a restart.
//!
//! Only enrolled wallets get codes: the request carries `Authorization: Bearer <token>`, the
//! API token configured on the service ([`server::ApiToken`]), compared in constant time.
//!
//! # Policy
//!
//! [`policy::Policy`] caps the single-payment limit (field 9), the authorisation's lifetime
//! (field 11 − now) and the code validity (field 12). A request above a cap is **clamped**:
//! the service grants the cap and says so in `clamped`; the wallet sees the terms granted.
//! A request the service cannot grant at all is **refused** with `policy`: a zero limit,
//! lifetime or validity, or a user account outside the issuer's org code.
//!
//! # Deployment
//!
//! The service speaks plain HTTP/1.1 and the client only plain HTTP: in production TLS is
//! terminated in front of the service (a reverse proxy or load balancer), so no TLS stack is
//! built here. The issuer key is read from the directory `ykt qr issuer init` wrote
//! ([`issuer_dir`]); it is never logged and prints `[redacted]`.
//!
//! Boundary: the code format, the signatures and the authorisation itself are `ykt-qr`'s; this
//! crate adds HTTP, files, the clock and the OS random source.

pub mod client;
pub mod issuer_dir;
pub mod policy;
mod random;
pub mod replay;
pub mod server;
pub mod wire;

pub use crate::client::{
    Client, ClientError, Granted, PublishedParameters, ResponseError, authorise, parameters,
};
pub use crate::issuer_dir::{Blacklist, LoadError, PublishedIssuer};
pub use crate::policy::Policy;
pub use crate::server::{
    ApiToken, AppState, RunningService, ServeError, ServiceConfig, app, run, spawn,
};
pub use crate::wire::ErrorCode;

/// The SM2 user ID of the proof-of-possession signature (the brief's default ID, §2.4).
pub const PROOF_ID: &[u8] = ykt_crypto::DEFAULT_SM2_ID;

/// An account id for logs and messages: the first 6 and last 4 hex digits, the rest masked.
pub fn mask_account(account: &[u8]) -> String {
    let hex = hex::encode(account);
    if hex.len() <= 10 {
        return "*".repeat(hex.len());
    }
    format!(
        "{}{}{}",
        &hex[..6],
        "*".repeat(hex.len() - 10),
        &hex[hex.len() - 4..]
    )
}
