//! The wallet's local API for other apps (JT/T 1059.5—2025 change 5: "other apps must not call
//! the client's interfaces without authorisation"; client.md §6.6, a \[PROPOSAL\] throughout).
//!
//! ```text
//!  user ── wallet api grant <app> --scope … --ttl 5m ──► grant::issue ──► token (to the app)
//!  app ──HTTP over $XDG_RUNTIME_DIR/ykt-wallet.sock (0600, same uid) or 127.0.0.1──► server
//!        Authorization: Bearer <token>
//!  server: guard ─► token::Verifier ─► limit::RateLimiter ─► scope ─► LocalBackend (the wallet)
//!        ◄── masked JSON: opaque card ids, card numbers as 310012******9012
//! ```
//!
//! | method, path | scope | answer |
//! |---|---|---|
//! | `GET /v1/health` | — (no token) | `{"status":"ok"}` |
//! | `GET /v1/cards` | `cards:read` | `{"cards":[{"id","number" (masked),"label"}]}` |
//! | `GET /v1/cards/{id}/balance` | `balance:read` | `{"id","balance_fen"}` |
//! | `GET /v1/cards/{id}/records` | `records:read` | `{"id","records":[{"time","kind","amount_fen"}]}` |
//! | `POST /v1/topups` `{"card","amount_fen"}` | `topup:initiate` | 202 `{"id","state":"PENDING_USER"}` |
//!
//! Refusals: 401 (no, malformed, badly sealed, expired, not yet valid, revoked token, or one for
//! another issuer or audience), 403 (scope not granted, an `Origin` header, a `Host` not on the
//! allow-list, a caller of another uid), 429 with `Retry-After`, 503 `locked` (the wallet's session
//! locked after idling, client.md §6.10) or `unavailable`; each with a fixed body
//! `{"error":"<class>"}` and no detail.
//!
//! - [`token`] (no I/O, time as an argument): the claims, their canonical JSON, HMAC-SM3 under
//!   the per-install [`Secret`], the token text, the [`Verifier`] with its [`Revocations`].
//! - [`limit`] (no I/O): a token bucket per caller and the hourly top-up allowance.
//! - [`grant`]: what the CLI calls to issue, list and revoke grants (random `jti`s from the OS).
//! - [`server`] (tokio + axum): the guards, the router and the two listeners; [`serve`] runs
//!   both until the caller's shutdown future completes.
//! - [`backend`]: the [`LocalBackend`] trait the wallet implements, and [`MemoryBackend`].
//! - [`mod@mask`]: card numbers as other apps see them.
//! - [`proposals`]: every choice the public texts leave open, one constant each.
//!
//! Boundary: no wallet logic, no storage: the data comes through [`LocalBackend`], and the secret
//! and the grant book are kept by the caller. A top-up from another app is only ever a request
//! the user confirms in the wallet.

pub mod backend;
pub mod grant;
pub mod limit;
pub mod mask;
pub mod proposals;
pub mod server;
pub mod token;

pub use crate::backend::{
    BackendError, Balance, Card, CardHandle, LocalBackend, MemoryBackend, RecordKind, TopupId,
    TopupRequest, TopupState, TransactionRecord,
};
pub use crate::grant::{GrantBook, GrantError, GrantRecord, GrantState, GrantStatus, IssuedGrant};
pub use crate::limit::{Limited, RateLimiter};
pub use crate::mask::{CardNumber, mask};
pub use crate::server::{
    ApiError, AppState, Clock, PeerUid, ServeError, TcpServer, UnixServer, default_socket_path,
    host_allowed, peer_allowed, serve, tcp_app, unix_app,
};
pub use crate::token::{
    Claims, IssueError, Revocations, Scope, Secret, Token, TokenError, UnknownScope, Verifier,
};
