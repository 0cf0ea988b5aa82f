//! The server: [`ServerConfig`], [`router`], [`serve`] (plain HTTP) and [`serve_tls`] (TLS 1.3,
//! client.md §6.4 Profile B).
//!
//! With operators ([`ServerConfig::with_operators`]) and the [`Engine`] as backend, the
//! registry's routes ([`admin_write_routes_with_clock`], on the config's clock) are served on
//! the same listener, beside the read-only admin views.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::{Future, IntoFuture as _};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;
use ykt_envelope::{Signer, Sm2Signer};
use zeroize::Zeroizing;

use super::admin_write::{Operator, admin_write_routes_with_clock};
use super::backend::Backend;
use super::metrics::Metrics;
use super::tls::ServerTls;
use super::{admin, openapi, pipeline, proposals};
use crate::engine::Engine;

/// A clock giving Unix milliseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The operators' credential for the admin API (`Authorization: Bearer <token>`). Zeroized on
/// drop; `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct AdminToken(Zeroizing<String>);

/// A token too short, or with characters a header cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Fewer than [`AdminToken::MIN_LEN`] characters.
    #[error(
        "the admin token must have at least {} characters",
        AdminToken::MIN_LEN
    )]
    TooShort,
    /// Not printable ASCII without spaces.
    #[error("the admin token must be printable ASCII without spaces")]
    BadCharacter,
}

impl AdminToken {
    /// The shortest token taken.
    pub const MIN_LEN: usize = 16;

    /// A token (surrounding white space removed).
    pub fn new(token: &str) -> Result<Self, TokenError> {
        let t = token.trim();
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadCharacter);
        }
        if t.len() < Self::MIN_LEN {
            return Err(TokenError::TooShort);
        }
        Ok(Self(Zeroizing::new(t.to_string())))
    }

    /// Whether `presented` is this token: compared as SM3 digests in constant time, so neither
    /// the contents nor the length leak through timing.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let ours = ykt_crypto::sm3(self.0.as_bytes());
        let theirs = ykt_crypto::sm3(presented);
        bool::from(ours.ct_eq(&theirs))
    }

    /// The token, for a client's header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

/// How the server runs.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The TSM's id: the `receiver_id` requests must carry and the `sender_id` of responses.
    pub tsm_id: String,
    /// Signs every response envelope.
    pub signer: Arc<dyn Signer + Send + Sync>,
    /// The TSM's SM2 public key (SEC1), given to devices at enrolment (`EnrolResp.tsm_pub`).
    pub tsm_pub: Vec<u8>,
    /// How far a timestamp may be from the clock, either way (ms).
    pub clock_window_ms: i64,
    /// How long the replay guard remembers a message (ms; at least the window).
    pub replay_memory_ms: i64,
    /// How long a completed request's answer is kept for retries (ms).
    pub request_memory_ms: i64,
    /// How long a claim left in progress by another process blocks a retry (ms).
    pub orphan_claim_ms: i64,
    /// The admin API's bearer token.
    pub admin_token: AdminToken,
    /// The largest request body read (bytes).
    pub max_body: usize,
    /// The clock (Unix ms).
    pub clock: Clock,
    /// The operators of the registry routes (`/admin/v1/issuers`, `…/stock`, `…/se-profiles`,
    /// `…/ses/{seid}/profile`, `…/keys`, [`admin_write_routes_with_clock`]), each with its own
    /// token; empty (the default): the registry routes are not served.
    pub operators: Vec<Operator>,
}

impl ServerConfig {
    /// A TSM signing with an SM2 key, with the defaults of [`proposals`] and the system clock.
    pub fn new(tsm_id: impl Into<String>, signer: Sm2Signer, admin_token: AdminToken) -> Self {
        let tsm_pub = signer.public_key().to_bytes().to_vec();
        Self::with_signer(tsm_id, Arc::new(signer), tsm_pub, admin_token)
    }

    /// A TSM signing with any signer (a KMS key); `tsm_pub` is its SM2 public key (SEC1).
    pub fn with_signer(
        tsm_id: impl Into<String>,
        signer: Arc<dyn Signer + Send + Sync>,
        tsm_pub: Vec<u8>,
        admin_token: AdminToken,
    ) -> Self {
        Self {
            tsm_id: tsm_id.into(),
            signer,
            tsm_pub,
            clock_window_ms: proposals::CLOCK_WINDOW_MS,
            replay_memory_ms: proposals::REPLAY_MEMORY_MS,
            orphan_claim_ms: proposals::ORPHAN_CLAIM_MS,
            request_memory_ms: proposals::REQUEST_MEMORY_MS,
            admin_token,
            max_body: proposals::MAX_BODY,
            clock: Arc::new(system_now),
            operators: Vec::new(),
        }
    }

    /// The same with the registry's operators: [`router`] over an [`Engine`] then serves the
    /// registry routes, each write audited under the operator's label. A backend that is not an
    /// `Engine` (the SEI-TSM's `SeiPlatform`) has no registry; the operators are then ignored,
    /// with a warning in the log.
    pub fn with_operators(mut self, operators: Vec<Operator>) -> Self {
        self.operators = operators;
        self
    }

    /// The same with another clock (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The same with another body limit.
    pub fn with_max_body(mut self, max_body: usize) -> Self {
        self.max_body = max_body;
        self
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("tsm_id", &self.tsm_id)
            .field("key_id", &self.signer.key_id())
            .field("clock_window_ms", &self.clock_window_ms)
            .field("replay_memory_ms", &self.replay_memory_ms)
            .field("orphan_claim_ms", &self.orphan_claim_ms)
            .field("request_memory_ms", &self.request_memory_ms)
            .field("admin_token", &self.admin_token)
            .field("max_body", &self.max_body)
            .field("operators", &self.operators)
            .finish_non_exhaustive()
    }
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The idempotency claims this process holds, and the claims of others it has seen stuck.
#[derive(Default)]
pub(crate) struct Claims {
    /// (scope, request_id) of the requests this process is working on.
    pub(crate) ours: HashSet<(String, String)>,
    /// When this process first saw a claim it does not hold refused as in progress.
    pub(crate) stuck_since: HashMap<(String, String), i64>,
}

/// What the handlers share.
pub(crate) struct Shared<B> {
    pub(crate) backend: B,
    pub(crate) config: ServerConfig,
    pub(crate) metrics: Metrics,
    pub(crate) claims: Mutex<Claims>,
    pub(crate) last_purge_ms: AtomicI64,
    pub(crate) openapi: String,
}

/// The handlers' state.
pub(crate) struct AppState<B>(pub(crate) Arc<Shared<B>>);

impl<B> Clone for AppState<B> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<B> AppState<B> {
    pub(crate) fn now(&self) -> i64 {
        (self.0.config.clock)()
    }
}

/// The router: the business API (`POST /v1/{msg_type}`), the admin API (`/admin/v1/…`),
/// `GET /openapi.json`, `GET /health` and `GET /metrics`; and, when the config names operators
/// and the backend is the [`Engine`], the registry routes ([`admin_write_routes_with_clock`]).
pub fn router<B: Backend>(backend: B, config: ServerConfig) -> Router {
    let max_body = config.max_body;
    let registry = registry_routes(&backend, &config.operators, &config.clock);
    let state = AppState(Arc::new(Shared {
        backend,
        config,
        metrics: Metrics::default(),
        claims: Mutex::new(Claims::default()),
        last_purge_ms: AtomicI64::new(i64::MIN),
        openapi: openapi::document_json(),
    }));
    Router::new()
        .route("/v1/{msg_type}", post(pipeline::business::<B>))
        .route("/admin/v1/ses", get(admin::ses::<B>))
        .route("/admin/v1/ses/{seid}", get(admin::se::<B>))
        .route("/admin/v1/cards", get(admin::all_cards::<B>))
        .route("/admin/v1/ses/{seid}/cards", get(admin::cards::<B>))
        .route("/admin/v1/flows", get(admin::flows::<B>))
        .route("/admin/v1/flows/{id}", get(admin::flow::<B>))
        .route("/admin/v1/audit/verify", get(admin::verify_audit::<B>))
        .route("/openapi.json", get(openapi_json::<B>))
        .route("/health", get(health::<B>))
        .route("/metrics", get(metrics::<B>))
        .fallback(not_found)
        .with_state(state)
        .merge(registry.unwrap_or_default())
        .layer(DefaultBodyLimit::max(max_body))
}

/// The registry routes of `backend` when it is the [`Engine`] and operators are given.
fn registry_routes<B: Backend>(
    backend: &B,
    operators: &[Operator],
    clock: &Clock,
) -> Option<Router> {
    if operators.is_empty() {
        return None;
    }
    match (backend as &dyn std::any::Any).downcast_ref::<Engine>() {
        Some(engine) => Some(admin_write_routes_with_clock(
            engine.clone(),
            operators.to_vec(),
            clock.clone(),
        )),
        None => {
            tracing::warn!("this backend has no registry: the operators' routes are not served");
            None
        }
    }
}

/// Serves [`router`] on `listener` until the future is dropped (or the listener fails).
pub fn serve<B: Backend>(
    listener: TcpListener,
    backend: B,
    config: ServerConfig,
) -> impl Future<Output = std::io::Result<()>> + Send {
    axum::serve(listener, router(backend, config)).into_future()
}

/// How long a client has to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves [`router`] over TLS 1.3 (client.md §6.4 Profile B) on `listener` until the future is
/// dropped (as [`serve`], it does not end on its own).
///
/// Each connection is handled in its own task: the TLS handshake (at most
/// [`TLS_HANDSHAKE_TIMEOUT`]), then HTTP/1.1 through the same router as [`serve`], body limit
/// included. A failed handshake or connection is logged at debug and the loop goes on; an
/// accept error of one connection (reset or aborted before it was accepted) too; any other
/// accept error (out of file descriptors) is logged and accept tried again a second later.
pub fn serve_tls<B: Backend>(
    listener: TcpListener,
    backend: B,
    config: ServerConfig,
    tls: ServerTls,
) -> impl Future<Output = std::io::Result<()>> + Send {
    let app = router(backend, config);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
    async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => {
                    tracing::debug!(%error, "a connection failed before it was accepted");
                    continue;
                }
                // Out of file descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), or any
                // other failure of accept: the server goes on after a pause, as `axum::serve`
                // does, instead of ending with the connections it is serving.
                Err(error) => {
                    tracing::error!(%error, "accept failed; trying again in a second");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let stream =
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                let service = hyper_util::service::TowerToHyperService::new(app);
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%peer, %error, "TLS connection ended with an error");
                }
            });
        }
    }
}

/// How long `serve_tls` waits after `accept` failed for want of resources before it tries again.
const ACCEPT_RETRY: Duration = Duration::from_secs(1);

/// Errors of one connection in `accept`, not of the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::Interrupted
    )
}

/// A JSON response from text.
pub(crate) fn json_text(status: StatusCode, text: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
}

async fn not_found() -> Response {
    json_text(
        StatusCode::NOT_FOUND,
        "{\"code\":\"1006\",\"msg\":\"no such endpoint\"}".to_string(),
    )
}

async fn openapi_json<B: Backend>(
    axum::extract::State(state): axum::extract::State<AppState<B>>,
) -> Response {
    json_text(StatusCode::OK, state.0.openapi.clone())
}

/// `GET /health`: `{"status":"ok"}` when the store answers (a read of its migrations).
async fn health<B: Backend>(
    axum::extract::State(state): axum::extract::State<AppState<B>>,
) -> Response {
    match state.0.backend.store().applied_migrations().await {
        Ok(_) => json_text(StatusCode::OK, "{\"status\":\"ok\"}".to_string()),
        Err(error) => {
            tracing::error!(%error, "health: the store does not answer");
            json_text(
                StatusCode::SERVICE_UNAVAILABLE,
                "{\"status\":\"unavailable\"}".to_string(),
            )
        }
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics<B: Backend>(
    axum::extract::State(state): axum::extract::State<AppState<B>>,
) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.0.metrics.render(),
    )
        .into_response()
}
