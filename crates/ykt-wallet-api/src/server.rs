//! The local API server (client.md §6.6): the router, the guards of each transport, and (in
//! `listen`) the listeners: a Unix socket (the default) and loopback HTTP (optional).
//!
//! ```text
//!  request ─► guard: Origin present? ─► 403        (both transports)
//!              Unix: peer uid (SO_PEERCRED) ≠ ours ─► 403
//!              TCP:  Host not on the allow-list ─► 403   (DNS rebinding)
//!          ─► /v1/health (no token)
//!          ─► bearer token: missing, malformed, bad MAC, wrong iss/aud, expired, revoked ─► 401
//!          ─► the caller's bucket empty ─► 429 + Retry-After
//!          ─► the method's scope not granted ─► 403
//!          ─► (top-ups) 3 in the last hour ─► 429 + Retry-After
//!          ─► LocalBackend ─► masked JSON
//! ```
//!
//! Every refusal has a fixed body naming only its class (`{"error":"unauthorised"}`); why a
//! token was refused goes to the debug log, never to the caller.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use serde::{Deserialize, Serialize};
use tokio::net::UnixListener;

use crate::backend::{BackendError, CardHandle, LocalBackend, TopupState};
use crate::limit::{Limited, RateLimiter};
use crate::proposals::{MAX_BODY, MAX_TOPUP_FEN};
use crate::token::{Claims, Revocations, Scope, Secret, Verifier};

mod listen;

pub use self::listen::{ServeError, TcpServer, UnixServer, default_socket_path, serve};

/// The server's clock: milliseconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What the handlers share: the token check, the rate limits, the wallet's backend and the
/// clock. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    verifier: RwLock<Verifier>,
    limiter: Mutex<RateLimiter>,
    backend: Arc<dyn LocalBackend>,
    clock: Clock,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// The state for tokens sealed under `secret`, refusing `revocations`, answering from
    /// `backend`, with the system clock.
    pub fn new(secret: Secret, revocations: Revocations, backend: Arc<dyn LocalBackend>) -> Self {
        Self::with_clock(secret, revocations, backend, Arc::new(system_now_ms))
    }

    /// [`AppState::new`] with a clock of the caller's (milliseconds since the epoch).
    pub fn with_clock(
        secret: Secret,
        revocations: Revocations,
        backend: Arc<dyn LocalBackend>,
        clock: Clock,
    ) -> Self {
        Self(Arc::new(Inner {
            verifier: RwLock::new(Verifier::new(secret, revocations)),
            limiter: Mutex::new(RateLimiter::new()),
            backend,
            clock,
        }))
    }

    /// Revokes the token `jti` (expiring at `exp`) while the server runs; the user's
    /// `wallet api revoke` calls this as well as recording it in its grant book.
    pub fn revoke(&self, jti: &str, exp: u64) {
        self.0
            .verifier
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .revoke(jti, exp);
    }

    /// Replaces the revocation list (the grant book reloaded from the caller's store).
    pub fn set_revocations(&self, revocations: Revocations) {
        let mut verifier = self
            .0
            .verifier
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *verifier = Verifier::new(verifier.secret().clone(), revocations);
    }

    fn now_ms(&self) -> u64 {
        (self.0.clock)()
    }
}

// ---- guards ------------------------------------------------------------------------------------

/// The peer of a Unix-socket connection: its uid from `SO_PEERCRED`, if the kernel gave one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerUid(pub Option<u32>);

impl Connected<IncomingStream<'_, UnixListener>> for PeerUid {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        Self(stream.io().peer_cred().ok().map(|cred| cred.uid()))
    }
}

/// Whether a Unix-socket peer may call (client.md §6.6): only a process of the wallet's own
/// uid; a peer whose uid is unknown is refused.
pub fn peer_allowed(peer: PeerUid, owner_uid: u32) -> bool {
    peer.0 == Some(owner_uid)
}

/// Whether a loopback HTTP request's `Host` is on the allow-list (client.md §6.6, against DNS
/// rebinding): compared whole, ASCII case-insensitively; a missing or non-ASCII `Host` is
/// refused.
pub fn host_allowed(host: Option<&HeaderValue>, allowed: &[String]) -> bool {
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    allowed.iter().any(|a| a.eq_ignore_ascii_case(host))
}

#[derive(Clone)]
enum Guard {
    Unix { owner_uid: u32 },
    Tcp { hosts: Arc<[String]> },
}

async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    // client.md §6.6: any request with an `Origin` header is refused (a browser page).
    if request.headers().contains_key(header::ORIGIN) {
        tracing::warn!("local API request with an Origin header refused");
        return ApiError::Forbidden.into_response();
    }
    let allowed = match &guard {
        Guard::Unix { owner_uid } => {
            // Without the connection's peer the uid cannot be checked: refuse.
            let peer = request
                .extensions()
                .get::<ConnectInfo<PeerUid>>()
                .map_or(PeerUid(None), |info| info.0);
            let ok = peer_allowed(peer, *owner_uid);
            if !ok {
                tracing::warn!(peer = ?peer.0, "local API caller of another uid refused");
            }
            ok
        }
        Guard::Tcp { hosts } => {
            // An absolute-form target (`GET http://host/…`) names a host too; it must be on
            // the list as well.
            let target_ok = request.uri().authority().is_none_or(|authority| {
                hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(authority.as_str()))
            });
            let ok = target_ok && host_allowed(request.headers().get(header::HOST), hosts);
            if !ok {
                tracing::warn!("local API request with a Host not on the allow-list refused");
            }
            ok
        }
    };
    if !allowed {
        let mut response = ApiError::Forbidden.into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    next.run(request).await
}

// ---- refusals ----------------------------------------------------------------------------------

/// The refusal classes, each with a fixed body (client.md §6.6: "no detail").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: the request is not one the API takes.
    BadRequest,
    /// 401: no token, or a token that is not valid.
    Unauthorised,
    /// 403: the scope is not granted, or the guard refused the caller.
    Forbidden,
    /// 404: no such endpoint or card.
    NotFound,
    /// 405: the endpoint does not take the method.
    MethodNotAllowed,
    /// 413: the body is too large.
    TooLarge,
    /// 429: over a rate limit; retry after so many seconds.
    TooManyRequests {
        /// Seconds.
        retry_after_secs: u64,
    },
    /// 503: the wallet cannot answer now.
    Unavailable,
    /// 503: the wallet is locked (client.md §6.10) until its user unlocks it.
    Locked,
    /// 500: a fault of the server; details in the log only.
    Internal,
}

impl ApiError {
    /// The stable code in the body.
    pub fn code(self) -> &'static str {
        match self {
            ApiError::BadRequest => "bad_request",
            ApiError::Unauthorised => "unauthorised",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::TooLarge => "too_large",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::Unavailable => "unavailable",
            ApiError::Locked => "locked",
            ApiError::Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ApiError::BadRequest => StatusCode::BAD_REQUEST,
            ApiError::Unauthorised => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable | ApiError::Locked => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(%detail, "local API failed");
        ApiError::Internal
    }
}

impl From<Limited> for ApiError {
    fn from(limited: Limited) -> Self {
        ApiError::TooManyRequests {
            retry_after_secs: limited.retry_after_secs,
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(error: BackendError) -> Self {
        match error {
            BackendError::UnknownCard => ApiError::NotFound,
            BackendError::BadAmount => ApiError::BadRequest,
            BackendError::Locked => ApiError::Locked,
            _ => ApiError::Unavailable,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = format!("{{\"error\":\"{}\"}}", self.code());
        let mut response = json_text(self.status(), body);
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorised => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

fn json_text(status: StatusCode, text: String) -> Response {
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

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => json_text(status, text),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

// ---- the router --------------------------------------------------------------------------------

fn routes(state: AppState, guard_kind: Guard) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/cards", get(cards))
        .route("/v1/cards/{id}/balance", get(balance))
        .route("/v1/cards/{id}/records", get(records))
        .route("/v1/topups", post(topup))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(guard_kind, guard))
        .with_state(state)
}

/// The router for a Unix socket whose callers must have the uid `owner_uid`. Serve it with
/// connect info [`PeerUid`] (as [`UnixServer::serve`] does): without it every call is refused.
pub fn unix_app(state: AppState, owner_uid: u32) -> Router {
    routes(state, Guard::Unix { owner_uid })
}

/// The router for loopback HTTP, taking only the `Host` values in `allowed_hosts`.
pub fn tcp_app(state: AppState, allowed_hosts: Vec<String>) -> Router {
    routes(
        state,
        Guard::Tcp {
            hosts: allowed_hosts.into(),
        },
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

// client.md §6.6: the only endpoint without a token.
async fn health() -> Response {
    json_text(StatusCode::OK, "{\"status\":\"ok\"}".to_string())
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

/// client.md §6.6 "Tokens", "Rate limits": the token, then the caller's bucket, then the
/// method's scope (deny by default).
fn authorise(state: &AppState, headers: &HeaderMap, scope: Scope) -> Result<Claims, ApiError> {
    let now_ms = state.now_ms();
    let token = bearer(headers).ok_or(ApiError::Unauthorised)?;
    let claims = state
        .0
        .verifier
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .check(token, now_ms / 1000)
        .map_err(|error| {
            tracing::debug!(%error, "local API token refused");
            ApiError::Unauthorised
        })?;
    state
        .0
        .limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .call(&claims.sub, now_ms)
        .inspect_err(|_| tracing::info!(app = %claims.sub, "local API caller rate-limited"))?;
    claims.require(scope).map_err(|error| {
        tracing::info!(app = %claims.sub, %error, "local API call outside the token's scopes");
        ApiError::Forbidden
    })?;
    Ok(claims)
}

/// Runs a backend call off the event loop (it may reach the secure element).
async fn backend<T: Send + 'static>(
    state: &AppState,
    call: impl FnOnce(&dyn LocalBackend) -> Result<T, BackendError> + Send + 'static,
) -> Result<T, ApiError> {
    let backend = Arc::clone(&state.0.backend);
    let answer = tokio::task::spawn_blocking(move || call(backend.as_ref()))
        .await
        .map_err(ApiError::internal)?;
    answer.map_err(|error| {
        tracing::debug!(%error, "local API backend refused");
        ApiError::from(error)
    })
}

fn handle(id: &str) -> Result<CardHandle, ApiError> {
    CardHandle::new(id).ok_or(ApiError::NotFound)
}

#[derive(Serialize)]
struct CardView {
    id: String,
    number: String,
    label: String,
}

#[derive(Serialize)]
struct CardsView {
    cards: Vec<CardView>,
}

// client.md §6.6, §6.7: the cards with opaque ids and masked numbers.
async fn cards(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorise(&state, &headers, Scope::CardsRead)?;
    let cards = backend(&state, |b| b.cards()).await?;
    let view = CardsView {
        cards: cards
            .into_iter()
            .map(|card| CardView {
                id: card.handle.as_str().to_string(),
                number: card.number.masked(),
                label: card.label,
            })
            .collect(),
    };
    Ok(json(StatusCode::OK, &view))
}

#[derive(Serialize)]
struct BalanceView {
    id: String,
    balance_fen: i64,
}

// client.md §6.6: balance:read.
async fn balance(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorise(&state, &headers, Scope::BalanceRead)?;
    let card = handle(&id)?;
    let id = card.as_str().to_string();
    let balance = backend(&state, move |b| b.balance(&card)).await?;
    Ok(json(
        StatusCode::OK,
        &BalanceView {
            id,
            balance_fen: balance.amount_fen,
        },
    ))
}

#[derive(Serialize)]
struct RecordView {
    time: u64,
    kind: &'static str,
    amount_fen: u64,
}

#[derive(Serialize)]
struct RecordsView {
    id: String,
    records: Vec<RecordView>,
}

// client.md §6.6: records:read.
async fn records(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorise(&state, &headers, Scope::RecordsRead)?;
    let card = handle(&id)?;
    let id = card.as_str().to_string();
    let records = backend(&state, move |b| b.records(&card)).await?;
    let view = RecordsView {
        id,
        records: records
            .into_iter()
            .map(|r| RecordView {
                time: r.time,
                kind: r.kind.as_str(),
                amount_fen: r.amount_fen,
            })
            .collect(),
    };
    Ok(json(StatusCode::OK, &view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopupBody {
    card: String,
    amount_fen: u64,
}

#[derive(Serialize)]
struct TopupView {
    id: String,
    state: &'static str,
}

// client.md §6.6: topup:initiate, at most 3 an hour, and only a PENDING_USER request.
async fn topup(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let claims = authorise(&state, &headers, Scope::TopupInitiate)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest
        }
    })?;
    let request: TopupBody = serde_json::from_slice(&body).map_err(|_| ApiError::BadRequest)?;
    if request.amount_fen == 0 || request.amount_fen > MAX_TOPUP_FEN {
        return Err(ApiError::BadRequest);
    }
    let card = CardHandle::new(&request.card).ok_or(ApiError::BadRequest)?;
    // Counted once the request is well formed, before the wallet sees it, so probing for
    // cards counts too.
    state
        .0
        .limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .topup(&claims.sub, state.now_ms())
        .inspect_err(|_| tracing::info!(app = %claims.sub, "local API top-up limit reached"))?;
    let app = claims.sub.clone();
    let amount = request.amount_fen;
    let id = backend(&state, move |b| b.request_topup(&app, &card, amount)).await?;
    tracing::info!(app = %claims.sub, amount, "top-up requested; waiting for the user");
    Ok(json(
        StatusCode::ACCEPTED,
        &TopupView {
            id: id.0,
            state: TopupState::PendingUser.as_str(),
        },
    ))
}
