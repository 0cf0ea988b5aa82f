//! The HTTP server: [`app`] is the router (tests and embedders serve it as they like), [`run`]
//! serves it until SIGINT or SIGTERM, [`spawn`] on a thread of its own until stopped.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use ykt_crypto::{Sm2PublicKey, Sm2Signature};
use zeroize::Zeroizing;

use crate::PROOF_ID;
use crate::issuer_dir::PublishedIssuer;
use crate::policy::{GrantError, Policy};
use crate::random::OsRandom;
use crate::replay::{NonceCache, NonceError};
use crate::wire::{
    AUTHORISATION_REQUEST_TYPE, AuthorisationRequest, AuthorisationResponse, BlacklistTable,
    ErrorBody, ErrorCode, ParametersResponse, RootKeyItem, RootKeysTable, WhitelistItem,
    WhitelistTable,
};

/// The nonce lengths taken, bytes.
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 8..=32;

/// The API credential wallets present as `Authorization: Bearer <token>`. Zeroized on drop;
/// `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct ApiToken(Zeroizing<String>);

/// A token that is too short or has characters a header cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Fewer than [`ApiToken::MIN_LEN`] characters.
    #[error("the API token must have at least {} characters", ApiToken::MIN_LEN)]
    TooShort,
    /// Not printable ASCII without spaces.
    #[error("the API token must be printable ASCII without spaces")]
    BadCharacter,
}

impl ApiToken {
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

    /// Whether `presented` is this token; compared as SM3 digests in constant time, so
    /// neither the contents nor the length leak through timing.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let ours = ykt_crypto::sm3(self.0.as_bytes());
        let theirs = ykt_crypto::sm3(presented);
        bool::from(ours.ct_eq(&theirs))
    }

    /// The token, for the client's header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken([redacted])")
    }
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The credential wallets present.
    pub token: ApiToken,
    /// The caps on what is granted.
    pub policy: Policy,
    /// How far a request's timestamp may be from the service's clock, either way, seconds.
    pub timestamp_window: u64,
    /// The most live nonces kept.
    pub replay_capacity: usize,
    /// The largest request body read, bytes.
    pub max_body: usize,
}

impl ServiceConfig {
    /// Defaults: [`Policy::default`], a window of 300 s, 100,000 nonces, 16 KiB bodies.
    pub fn new(token: ApiToken) -> Self {
        Self {
            token,
            policy: Policy::default(),
            timestamp_window: 300,
            replay_capacity: 100_000,
            max_body: 16 * 1024,
        }
    }
}

/// The service's clock, Unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The state the handlers share.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    issuer: PublishedIssuer,
    config: ServiceConfig,
    parameters: String,
    nonces: Mutex<NonceCache>,
    clock: Clock,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("issuer", &self.0.issuer)
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

/// Why the service did not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The OS random source does not work.
    #[error("the OS random source failed")]
    Random(#[source] getrandom::Error),
    /// The runtime could not be built.
    #[error("starting the runtime")]
    Runtime(#[source] std::io::Error),
    /// The address could not be bound.
    #[error("binding {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving")]
    Serve(#[source] std::io::Error),
    /// The server thread ended without saying why.
    #[error("the server thread ended")]
    Thread,
}

impl AppState {
    /// The state with the system clock.
    pub fn new(issuer: PublishedIssuer, config: ServiceConfig) -> Result<Self, ServeError> {
        Self::with_clock(issuer, config, Arc::new(system_now))
    }

    /// The state with a clock of the caller's (tests).
    pub fn with_clock(
        issuer: PublishedIssuer,
        config: ServiceConfig,
        clock: Clock,
    ) -> Result<Self, ServeError> {
        OsRandom::new().map_err(ServeError::Random)?;
        let parameters = parameters_json(&issuer);
        let nonces = Mutex::new(NonceCache::new(config.replay_capacity));
        Ok(Self(Arc::new(Inner {
            issuer,
            config,
            parameters,
            nonces,
            clock,
        })))
    }
}

fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The router of the three endpoints, with JSON bodies for every refusal.
pub fn app(state: AppState) -> Router {
    let max_body = state.0.config.max_body;
    Router::new()
        .route("/v1/authorisations", post(authorise))
        .route("/v1/parameters", get(parameters))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Serves [`app`] on `addr` until SIGINT or SIGTERM, on a runtime of its own; `on_bound`
/// hears the address bound (port 0 gives an ephemeral one) before the first request.
pub fn run(
    addr: SocketAddr,
    state: AppState,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    run_until(addr, state, on_bound, shutdown_signal())
}

/// A service on a thread of its own, stopped by [`RunningService::stop`] or on drop.
#[derive(Debug)]
pub struct RunningService {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
}

impl RunningService {
    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the service and waits for it.
    pub fn stop(mut self) -> Result<(), ServeError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| ServeError::Thread)?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

/// Starts [`app`] on `addr` on a new thread; gives once the address is bound.
pub fn spawn(addr: SocketAddr, state: AppState) -> Result<RunningService, ServeError> {
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        run_until(
            addr,
            state,
            move |a| {
                let _ = bound_tx.send(a);
            },
            async move {
                let _ = stop_rx.await;
            },
        )
    });
    match bound_rx.recv() {
        Ok(addr) => Ok(RunningService {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }),
        Err(_) => match thread.join() {
            Ok(Err(e)) => Err(e),
            _ => Err(ServeError::Thread),
        },
    }
}

fn run_until(
    addr: SocketAddr,
    state: AppState,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let bound = listener.local_addr().map_err(ServeError::Serve)?;
        tracing::info!(%bound, "ride QR issuer service listening");
        on_bound(bound);
        axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Serve)
    })
}

/// SIGINT or SIGTERM; a signal that cannot be watched is logged and left out.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    let int = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot watch SIGINT");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = term => {}
        () = int => {}
    }
    tracing::info!("stopping the ride QR issuer service");
}

// ---- answers -------------------------------------------------------------------------------

/// A refusal: its code, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl fmt::Display) -> Self {
        Self {
            code,
            message: message.to_string(),
        }
    }

    /// A 500 whose details go to the log only.
    fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(%detail, "ride QR issuer service failed");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = ErrorBody {
            code: self.code,
            message: self.message,
        };
        let mut response = json_response(status, &body);
        if self.code == ErrorCode::Unauthorised {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => json_text(status, text),
        Err(e) => {
            tracing::error!(error = %e, "encoding a response");
            json_text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "{\"code\":\"internal\",\"message\":\"internal error\"}".to_string(),
            )
        }
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

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "the endpoint does not take that method",
    )
}

async fn healthz() -> Response {
    json_text(StatusCode::OK, "{\"status\":\"ok\"}".to_string())
}

async fn parameters(State(state): State<AppState>) -> Response {
    json_text(StatusCode::OK, state.0.parameters.clone())
}

fn parameters_json(issuer: &PublishedIssuer) -> String {
    let version = issuer.version();
    let org = hex::encode(issuer.org_code);
    let local = version == ykt_qr::ids::LOCAL_ID_VERSION;
    let whitelist = if local {
        Vec::new()
    } else {
        vec![WhitelistItem {
            org_code: org.clone(),
            platform_id: hex::encode(issuer.platform_id),
        }]
    };
    let body = ParametersResponse {
        code_version: hex::encode([version.value()]),
        issuer_certificate: hex::encode(issuer.issuer.certificate().encode()),
        root_keys: RootKeysTable {
            version: 1,
            entries: vec![RootKeyItem {
                version: hex::encode([version.value()]),
                record: hex::encode(issuer.root_record.encode()),
            }],
        },
        whitelist: WhitelistTable {
            version: u32::from(!whitelist.is_empty()),
            entries: whitelist,
        },
        local_orgs: if local { vec![org] } else { Vec::new() },
        blacklist: BlacklistTable {
            version: issuer.blacklist.version,
            accounts: issuer.blacklist.accounts.iter().map(hex::encode).collect(),
        },
    };
    // The body holds only strings and integers, which always encode.
    serde_json::to_string(&body).unwrap_or_default()
}

// ---- POST /v1/authorisations -----------------------------------------------------------------

async fn authorise(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match handle_authorise(&state, &headers, body) {
        Ok(answer) => json_response(StatusCode::OK, &answer),
        Err(e) => {
            if e.code != ErrorCode::Internal {
                tracing::warn!(code = %e.code, message = %e.message, "authorisation refused");
            }
            e.into_response()
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

fn handle_authorise(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<AuthorisationResponse, ApiError> {
    let inner = &state.0;
    let config = &inner.config;
    match bearer(headers) {
        Some(token) if config.token.matches(token) => {}
        Some(_) => return Err(ApiError::new(ErrorCode::Unauthorised, "unknown API token")),
        None => {
            return Err(ApiError::new(
                ErrorCode::Unauthorised,
                "an API token is required (Authorization: Bearer …)",
            ));
        }
    }
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::TooLarge,
                format!("the body is larger than {} bytes", config.max_body),
            )
        } else {
            ApiError::new(ErrorCode::BadRequest, "the body could not be read")
        }
    })?;
    let bad = |m: String| ApiError::new(ErrorCode::BadRequest, m);
    let mut value: Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| bad("the body must be a JSON object".into()))?;
    let signature = match object.remove("signature") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(bad("signature must be a hex string".into())),
        None => return Err(bad("the body has no signature".into())),
    };
    let signed = ykt_envelope::jcs::to_vec(&value).map_err(|e| bad(e.to_string()))?;
    let request: AuthorisationRequest = serde_json::from_value(value)
        .map_err(|e| bad(format!("not an authorisation request: {e}")))?;
    if request.msg_type != AUTHORISATION_REQUEST_TYPE {
        return Err(bad(format!(
            "msg_type must be {AUTHORISATION_REQUEST_TYPE}"
        )));
    }
    let key_bytes = hex::decode(request.user_public_key.trim())
        .map_err(|_| bad("user_public_key is not hex".into()))?;
    let key = Sm2PublicKey::from_sec1_bytes(&key_bytes)
        .map_err(|_| bad("user_public_key is not an SM2 public key".into()))?;
    let nonce = hex::decode(&request.nonce)
        .ok()
        .filter(|n| NONCE_LEN.contains(&n.len()))
        .ok_or_else(|| {
            bad(format!(
                "nonce must be {} to {} bytes of hex",
                NONCE_LEN.start(),
                NONCE_LEN.end()
            ))
        })?;
    let mut raw = [0u8; 64];
    hex::decode_to_slice(&signature, &mut raw)
        .map_err(|_| bad("signature must be 64 bytes (r ‖ s) of hex".into()))?;
    let refused = || {
        ApiError::new(
            ErrorCode::BadSignature,
            "the signature is not the key's over the canonical body",
        )
    };
    let signature = Sm2Signature::from_bytes(&raw).map_err(|_| refused())?;
    key.verify(PROOF_ID, &signed, &signature)
        .map_err(|_| refused())?;

    let now = (inner.clock)();
    if request.timestamp.abs_diff(now) > config.timestamp_window {
        return Err(ApiError::new(
            ErrorCode::Stale,
            format!(
                "the timestamp is more than {} s from the service's clock",
                config.timestamp_window
            ),
        ));
    }
    let until = request.timestamp.saturating_add(config.timestamp_window);
    inner
        .nonces
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(&nonce, until, now)
        .map_err(|e| match e {
            NonceError::Replayed => ApiError::new(ErrorCode::Replayed, "the nonce was used before"),
            _ => ApiError::new(ErrorCode::Busy, "too many requests; try again later"),
        })?;

    let grant = config
        .policy
        .grant(&inner.issuer, &key, &request.terms, now)
        .map_err(|e| match e {
            GrantError::Refused(r) => ApiError::new(ErrorCode::Policy, r),
            other => ApiError::new(ErrorCode::BadRequest, other),
        })?;
    let mut rng = OsRandom::new().map_err(ApiError::internal)?;
    let blob = ykt_qr::issuer::authorise(&inner.issuer.issuer, &key, &grant.terms, &mut rng)
        .map_err(ApiError::internal)?;
    tracing::info!(
        account = %crate::mask_account(&grant.terms.user_account),
        limit = grant.terms.limit,
        expiry = grant.terms.authorisation_expiry,
        clamped = ?grant.clamped,
        "authorisation granted"
    );
    Ok(AuthorisationResponse {
        authorisation: hex::encode(blob.encode()),
        granted: grant.to_wire(),
        clamped: grant.clamped.iter().map(|c| (*c).to_string()).collect(),
    })
}
