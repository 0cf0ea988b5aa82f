//! `POST /v1/{msg_type}`: the business API's pipeline (tsm-gp.md §7, client.md §6.3 R5).
//!
//! ```text
//!  parse the envelope (unknown members refused) and its body ─ msg_type = path, msg_no,
//!  receiver_id = tsm_id ─ the sender's key (EnrolReq: the body's device_pub) ─ verify ─
//!  check_time ─ replay guard (sender, nonce) ─ idempotency claim (sender, request_id,
//!  SM3 of JCS {msg_type, txn_id, body}) ─ dispatch ─ seal the reply ─ complete the claim
//! ```
//!
//! The replay guard and the claim are one store transaction ([`ykt_store::Store::admit_request`],
//! with the outcomes of the two calls in that order). A flow start, `ApduResultReq` or
//! `ResumeReq` that moves its flow then writes one more: the move inside the backend, which
//! stores the claim's answer in the same transaction ([`super::backend::StepAnswer`]), so that a
//! crash leaves either neither or both. Any other message (and one of those that moves nothing)
//! writes the move, if any, and then the completion of the claim in a transaction of its own.
//! The two calls
//! stay separate only where the claim is not attempted after the guard: a body whose hash cannot
//! be computed, a request id this process is already working on, and the second claim after an
//! orphaned one was released (its nonce is already spent).
//!
//! Every answer, refusals included, is an envelope signed by the TSM with `result.code` and
//! the HTTP status [`Code::http_status`] (a body over the limit: 413).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument as _;
use ykt_crypto::Sm2PublicKey;
use ykt_envelope::{Code, Envelope, EnvelopeError, Header, PeerKey, ResultInfo, response_no};
use ykt_store::{Begun, RequestCompletion, RequestHash};
use ykt_tsm::api::{self, MessageDef};

use super::backend::{Backend, BackendError, Start, StepAnswer};
use super::metrics::FlowMove;
use super::proposals::{ERROR_RESPONSE_TYPE, NONCE_LEN, PURGE_EVERY_MS};
use super::server::{AppState, json_text};

/// The longest id (`sender_id`, `txn_id`, `request_id`) taken, characters.
const MAX_ID_LEN: usize = 128;

/// The nonce lengths taken, bytes (hex in the envelope).
const NONCE_BYTES: std::ops::RangeInclusive<usize> = 8..=64;

/// The handler.
pub(crate) async fn business<B: Backend>(
    State(state): State<AppState<B>>,
    Path(msg_type): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let def = api::message(&msg_type).or_else(|| api::platform_message(&msg_type));
    let label = def.map_or("unknown", |d| d.request);
    let span = tracing::info_span!("tsm.request", msg_type = label);
    let (code, response) = handle(&state, def, body).instrument(span).await;
    state.0.metrics.record(label, code, started.elapsed());
    response
}

/// What the refusal or the reply is addressed with.
struct Ctx {
    /// The response's `msg_type`.
    response_type: String,
    /// The response's `msg_no`.
    response_no: String,
    /// The request's sender (the response's receiver).
    sender: String,
    txn_id: String,
    request_id: String,
}

/// An id as the answer and the log may repeat it: the id if short and printable, else empty.
fn clean(id: &str) -> String {
    if id.len() <= MAX_ID_LEN && !id.chars().any(char::is_control) {
        id.to_string()
    } else {
        String::new()
    }
}

impl Ctx {
    /// From what can be read of a request that may not be an envelope at all.
    fn best_effort(def: Option<MessageDef>, bytes: &[u8]) -> Self {
        let raw: Option<Value> = serde_json::from_slice(bytes).ok();
        let member = |name: &str| {
            raw.as_ref()
                .and_then(|v| v.get(name))
                .and_then(Value::as_str)
                .map(clean)
                .unwrap_or_default()
        };
        Self {
            response_type: def.map_or(ERROR_RESPONSE_TYPE, |d| d.response).to_string(),
            response_no: def.map_or_else(|| "0000".to_string(), |d| response_no(d.msg_no)),
            sender: member("sender_id"),
            txn_id: member("txn_id"),
            request_id: member("request_id"),
        }
    }

    fn of(def: MessageDef, envelope: &Envelope) -> Self {
        Self {
            response_type: def.response.to_string(),
            response_no: response_no(def.msg_no),
            sender: clean(&envelope.sender_id),
            txn_id: clean(&envelope.txn_id),
            request_id: clean(&envelope.request_id),
        }
    }
}

/// A refusal before dispatch.
struct Refusal {
    code: Code,
    msg: String,
    status: Option<StatusCode>,
}

impl Refusal {
    fn new(code: Code, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            status: None,
        }
    }

    fn bad(msg: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, msg)
    }

    fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "business request failed");
        Self::new(Code::Internal, "internal error")
    }
}

impl From<BackendError> for Refusal {
    fn from(e: BackendError) -> Self {
        if e.code == Code::Internal {
            Self::internal(e.message)
        } else {
            Self::new(e.code, e.message)
        }
    }
}

impl From<ykt_store::Error> for Refusal {
    fn from(e: ykt_store::Error) -> Self {
        BackendError::from(e).into()
    }
}

fn envelope_refusal(e: &EnvelopeError) -> Refusal {
    match e {
        // Our own texts, without the JSON they came from.
        EnvelopeError::Malformed(_) => Refusal::bad("the envelope is malformed"),
        EnvelopeError::Body(_) => Refusal::bad("the body is malformed"),
        EnvelopeError::Signer(_) => Refusal::internal(e),
        _ => Refusal::new(e.code(), e.to_string()),
    }
}

/// A JSON error as a message that names at most a member, never a value.
fn safe_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    for prefix in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(rest) = text.strip_prefix(prefix)
            && let Some(end) = rest.find('`')
        {
            let name = &rest[..end];
            if name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return format!("{prefix}{name}`");
            }
        }
    }
    match e.classify() {
        serde_json::error::Category::Syntax => "not JSON".into(),
        serde_json::error::Category::Eof => "truncated JSON".into(),
        serde_json::error::Category::Data => "a member has the wrong type or value".into(),
        serde_json::error::Category::Io => "could not be read".into(),
    }
}

/// A request's body, typed.
enum Request {
    Enrol(api::EnrolReq),
    Start(Start),
    ApduResult(api::ApduResultReq),
    Resume,
    FlowQuery,
    TopupOrder(api::TopupOrderReq),
    OrderQuery(api::OrderReq),
    TestPay(api::OrderReq),
    CardsQuery,
    /// An inter-platform request: the backend reads its body.
    Platform(Value),
}

fn body<T: DeserializeOwned>(def: MessageDef, envelope: &Envelope) -> Result<T, Refusal> {
    serde_json::from_value(envelope.body.clone()).map_err(|e| {
        Refusal::bad(format!(
            "the body is not a {}: {}",
            def.request,
            safe_json_error(&e)
        ))
    })
}

impl Request {
    fn parse(def: MessageDef, e: &Envelope) -> Result<Self, Refusal> {
        Ok(match def {
            d if d == api::ENROL => Request::Enrol(body(d, e)?),
            d if d == api::OPEN_CARD => Request::Start(Start::OpenCard(body(d, e)?)),
            d if d == api::TOPUP => Request::Start(Start::TopUp(body(d, e)?)),
            d if d == api::DELETE_CARD => Request::Start(Start::DeleteCard(body(d, e)?)),
            d if d == api::REFUND => Request::Start(Start::Refund(body(d, e)?)),
            d if d == api::TRANSFER_OUT => Request::Start(Start::TransferOut(body(d, e)?)),
            d if d == api::TRANSFER_IN => Request::Start(Start::TransferIn(body(d, e)?)),
            d if d == api::LOCK => Request::Start(Start::Lock(body(d, e)?)),
            d if d == api::UNLOCK => Request::Start(Start::Unlock(body(d, e)?)),
            d if d == api::APP_QUERY => Request::Start(Start::AppQuery(body(d, e)?)),
            d if d == api::CARD_QUERY => Request::Start(Start::CardQuery(body(d, e)?)),
            d if d == api::APDU_RESULT => Request::ApduResult(body(d, e)?),
            d if d == api::RESUME => body::<api::Empty>(d, e).map(|_| Request::Resume)?,
            d if d == api::FLOW_QUERY => body::<api::Empty>(d, e).map(|_| Request::FlowQuery)?,
            d if d == api::TOPUP_ORDER => Request::TopupOrder(body(d, e)?),
            d if d == api::ORDER_QUERY => Request::OrderQuery(body(d, e)?),
            d if d == api::TEST_PAY => Request::TestPay(body(d, e)?),
            d if d == api::CARDS_QUERY => body::<api::Empty>(d, e).map(|_| Request::CardsQuery)?,
            d if api::PLATFORM_MESSAGES.contains(&d) => Request::Platform(e.body.clone()),
            d => {
                return Err(Refusal::bad(format!("{} is not served here", d.request)));
            }
        })
    }
}

/// A completed request's answer as the idempotency record keeps it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredReply {
    msg_type: String,
    result: ResultInfo,
    body: Value,
}

impl StoredReply {
    /// The answer to a dispatched request of type `def`: its body, or the code and message it
    /// was declined with.
    fn of(def: MessageDef, outcome: Result<Value, (Code, String)>) -> Self {
        let (result, body) = match outcome {
            Ok(body) => (ResultInfo::ok(), body),
            Err((code, msg)) => (
                ResultInfo::error(code, msg),
                Value::Object(Default::default()),
            ),
        };
        Self {
            msg_type: def.response.to_string(),
            result,
            body,
        }
    }

    /// The text the idempotency record keeps; `None` for an internal failure (whose claim is
    /// released, so that the client may retry) or an answer that cannot be encoded.
    fn text(&self) -> Option<String> {
        if self.result.code == Code::Internal {
            return None;
        }
        serde_json::to_string(self)
            .map_err(|e| tracing::error!(error = %e, "encoding a stored response"))
            .ok()
    }
}

/// The code and message a backend's refusal answers with (an internal failure's message is a
/// generic one; its detail goes to the log).
fn declined(refusal: &Refusal) -> (Code, String) {
    (refusal.code, refusal.msg.clone())
}

/// The [`StepAnswer`] of a request that moves a flow: the completion of its claim with exactly the
/// answer [`dispatch_claimed`] would store for the same outcome, committed with the flow move
/// (one transaction instead of two; see `docs/benchmarks.md`).
fn step_answer(
    def: MessageDef,
    scope: &str,
    request_id: &str,
    hash: RequestHash,
) -> Arc<StepAnswer> {
    let (scope, request_id) = (scope.to_string(), request_id.to_string());
    StepAnswer::new(move |outcome: Result<&api::FlowResp, &BackendError>| {
        let outcome = match outcome {
            Ok(resp) => serde_json::to_value(resp).map_err(|_| (Code::Internal, String::new())),
            // An internal failure stores nothing; its message is not needed.
            Err(e) if e.code == Code::Internal => Err((Code::Internal, String::new())),
            Err(e) => Err(declined(&Refusal::from(e.clone()))),
        };
        let response = StoredReply::of(def, outcome).text()?;
        Some(RequestCompletion {
            scope: scope.clone(),
            request_id: request_id.clone(),
            hash,
            response,
        })
    })
}

/// Seals an answer; a failure to sign (or to draw a nonce) is a plain, generic 500.
fn seal<B>(
    state: &AppState<B>,
    ctx: &Ctx,
    msg_type: &str,
    result: ResultInfo,
    body: &Value,
    status: Option<StatusCode>,
) -> Response {
    let config = &state.0.config;
    let status = status.unwrap_or_else(|| {
        StatusCode::from_u16(result.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    });
    let mut nonce = [0u8; NONCE_LEN];
    let sealed = getrandom::fill(&mut nonce)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            let header = Header {
                msg_type: msg_type.to_string(),
                msg_no: ctx.response_no.clone(),
                sender_id: config.tsm_id.clone(),
                receiver_id: ctx.sender.clone(),
                txn_id: ctx.txn_id.clone(),
                request_id: ctx.request_id.clone(),
            };
            Envelope::seal(
                &header,
                body,
                Some(result),
                &nonce,
                state.now(),
                &*config.signer,
            )
            .map_err(|e| e.to_string())
        });
    match sealed {
        Ok(envelope) => json_text(
            status,
            String::from_utf8(envelope.to_vec()).unwrap_or_default(),
        ),
        Err(detail) => {
            tracing::error!(%detail, "sealing a response failed");
            json_text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "{\"code\":\"9999\",\"msg\":\"internal error\"}".to_string(),
            )
        }
    }
}

fn refuse<B>(state: &AppState<B>, ctx: &Ctx, refusal: Refusal) -> (Code, Response) {
    if refusal.code != Code::Internal {
        tracing::warn!(
            code = %refusal.code,
            msg_type = %ctx.response_type,
            sender = %ctx.sender,
            reason = %refusal.msg,
            "business request refused"
        );
    }
    let code = refusal.code;
    let response = seal(
        state,
        ctx,
        &ctx.response_type,
        ResultInfo::error(code, refusal.msg),
        &Value::Object(Default::default()),
        refusal.status,
    );
    (code, response)
}

/// The pipeline; gives the result code (for the metrics) and the response.
async fn handle<B: Backend>(
    state: &AppState<B>,
    def: Option<MessageDef>,
    body: Result<Bytes, BytesRejection>,
) -> (Code, Response) {
    let bytes = match body {
        Ok(b) => b,
        Err(rejection) => {
            let ctx = Ctx::best_effort(def, &[]);
            let refusal = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Refusal {
                    status: Some(StatusCode::PAYLOAD_TOO_LARGE),
                    ..Refusal::bad(format!(
                        "the body is larger than {} bytes",
                        state.0.config.max_body
                    ))
                }
            } else {
                Refusal::bad("the body could not be read")
            };
            return refuse(state, &ctx, refusal);
        }
    };
    let ctx = Ctx::best_effort(def, &bytes);
    let Some(def) = def else {
        return refuse(state, &ctx, Refusal::bad("no such message type"));
    };
    // tsm-gp.md §7: the envelope, every member known.
    let envelope: Envelope = match serde_json::from_slice(&bytes) {
        Ok(e) => e,
        Err(e) => {
            let msg = format!("not an envelope: {}", safe_json_error(&e));
            return refuse(state, &ctx, Refusal::bad(msg));
        }
    };
    let ctx = Ctx::of(def, &envelope);
    match checked(state, def, &envelope).await {
        Ok(checked) => dispatch_claimed(state, &ctx, def, &envelope, checked).await,
        Err(refusal) => refuse(state, &ctx, refusal),
    }
}

/// The checks before dispatch, up to the replay guard; gives the typed request and its hash.
async fn checked<B: Backend>(
    state: &AppState<B>,
    def: MessageDef,
    envelope: &Envelope,
) -> Result<Checked, Refusal> {
    let config = &state.0.config;
    let store = state.0.backend.store();
    // tsm-gp.md §7: the header addresses this message type and this TSM.
    if envelope.msg_type != def.request {
        return Err(Refusal::bad(format!(
            "msg_type does not match the path /v1/{}",
            def.request
        )));
    }
    if envelope.msg_no != def.msg_no {
        return Err(Refusal::bad(format!(
            "msg_no of {} is {}",
            def.request, def.msg_no
        )));
    }
    if envelope.receiver_id != config.tsm_id {
        return Err(Refusal::bad("receiver_id is not this TSM"));
    }
    if envelope.result.is_some() {
        return Err(Refusal::bad("a request carries no result"));
    }
    // The business API or the inter-platform API, as this server's role serves.
    if !state.0.backend.serves(def) {
        return Err(Refusal::bad(format!("{} is not served here", def.request)));
    }
    for (name, value) in [
        ("sender_id", &envelope.sender_id),
        ("request_id", &envelope.request_id),
        ("txn_id", &envelope.txn_id),
    ] {
        if value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
            return Err(Refusal::bad(format!(
                "{name} must be at most {MAX_ID_LEN} printable characters"
            )));
        }
    }
    if envelope.sender_id.is_empty() || envelope.request_id.is_empty() {
        return Err(Refusal::bad("sender_id and request_id must not be empty"));
    }
    if !hex::decode(&envelope.nonce).is_ok_and(|n| NONCE_BYTES.contains(&n.len())) {
        return Err(Refusal::bad(format!(
            "nonce must be {} to {} bytes of hex",
            NONCE_BYTES.start(),
            NONCE_BYTES.end()
        )));
    }
    let request = Request::parse(def, envelope)?;
    // The sender's key: proof of possession for enrolment, the enrolled key otherwise.
    // The replay guard's and the idempotency records' scope is the sender, except for
    // enrolment, where the sender id is the unenrolled device's choice: there it is the key's,
    // so that nobody else can spend a device's nonces or claim its request ids.
    let (key, scope) = match &request {
        Request::Enrol(req) => {
            let key = Sm2PublicKey::from_sec1_bytes(req.device_pub.as_bytes())
                .map_err(|_| Refusal::bad("device_pub is not an SM2 public key"))?;
            let scope = format!("enrol:{}", ykt_envelope::key_id_sm2(&key));
            (key, scope)
        }
        _ => (
            state.0.backend.device_key(&envelope.sender_id).await?,
            envelope.sender_id.clone(),
        ),
    };
    envelope
        .verify(&PeerKey::Sm2(key))
        .map_err(|e| envelope_refusal(&e))?;
    // client.md §6.3 R5: freshness, then the replay guard (after the signature, so forged
    // messages cannot fill it).
    let now = state.now();
    let sent = envelope
        .check_time(now, config.clock_window_ms)
        .map_err(|e| envelope_refusal(&e))?;
    purge_if_due(state, now).await;
    let hashed = serde_json::json!({
        "msg_type": envelope.msg_type,
        "txn_id": envelope.txn_id,
        "body": envelope.body,
    });
    let Ok(canonical) = ykt_envelope::jcs::to_vec(&hashed) else {
        // Nothing to claim: the replay guard alone, then the refusal (a replayed nonce is
        // refused as replayed first).
        store
            .accept_message(&scope, &envelope.nonce, sent, config.clock_window_ms)
            .await?;
        return Err(Refusal::bad("numbers in the body must be integers"));
    };
    Ok(Checked {
        request,
        hash: RequestHash::of(&canonical),
        scope,
        sent_ms: sent,
    })
}

/// A request past the checks, its replay guard and claim still to pass.
struct Checked {
    request: Request,
    /// SM3 of JCS {msg_type, txn_id, body}.
    hash: RequestHash,
    /// The replay guard's and the idempotency records' scope.
    scope: String,
    /// The envelope's timestamp, checked against this server's clock.
    sent_ms: i64,
}

async fn purge_if_due<B: Backend>(state: &AppState<B>, now: i64) {
    let last = state.0.last_purge_ms.load(Ordering::Relaxed);
    if now.saturating_sub(last) < PURGE_EVERY_MS
        || state
            .0
            .last_purge_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let config = &state.0.config;
    let store = state.0.backend.store();
    let memory = config.replay_memory_ms.max(config.clock_window_ms);
    if let Err(error) = store.purge_messages(memory).await {
        tracing::warn!(%error, "purging the replay guard failed");
    }
    // A claim is older than any request takes; purging it cannot cut one short.
    let requests = config.request_memory_ms.max(config.orphan_claim_ms);
    if let Err(error) = store.purge_requests(now.saturating_sub(requests)).await {
        tracing::warn!(%error, "purging old idempotency records failed");
    }
}

/// Removes this process's claim from its set when the request ends (or is dropped).
struct ClaimGuard<'a, B> {
    state: &'a AppState<B>,
    key: (String, String),
}

impl<B> Drop for ClaimGuard<'_, B> {
    fn drop(&mut self) {
        let mut claims = self
            .state
            .0
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        claims.ours.remove(&self.key);
    }
}

/// Whether a claim refused as in progress was left by a process no longer working on it:
/// not this process's, and seen stuck for the configured time (see
/// [`super::proposals::ORPHAN_CLAIM_MS`]).
fn orphaned<B>(state: &AppState<B>, key: &(String, String), now: i64) -> bool {
    let mut claims = state
        .0
        .claims
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if claims.ours.contains(key) {
        return false;
    }
    let timeout = state.0.config.orphan_claim_ms;
    if claims.stuck_since.len() > 10_000 {
        claims
            .stuck_since
            .retain(|_, since| now.saturating_sub(*since) < timeout.saturating_mul(2));
    }
    let since = *claims.stuck_since.entry(key.clone()).or_insert(now);
    if now.saturating_sub(since) >= timeout {
        claims.stuck_since.remove(key);
        true
    } else {
        false
    }
}

enum Claimed<'a, B> {
    New(ClaimGuard<'a, B>),
    Stored(String),
}

/// client.md §6.3 R5 and tsm-gp.md §7 `request_id`: passes the replay guard and claims the
/// request, or finds its stored answer.
async fn claim<'a, B: Backend>(
    state: &'a AppState<B>,
    envelope: &Envelope,
    checked: &Checked,
) -> Result<Claimed<'a, B>, Refusal> {
    let store = state.0.backend.store();
    let (hash, scope) = (&checked.hash, checked.scope.as_str());
    let key = (scope.to_string(), envelope.request_id.clone());
    let window_ms = state.0.config.clock_window_ms;
    // Whether the nonce is spent: the first claim spends it in the same transaction.
    let mut spent = false;
    let mut released = false;
    loop {
        // Marked ours before the claim exists, so no other request of this process takes
        // it for an orphan in between.
        let mut guard = None;
        {
            let mut claims = state
                .0
                .claims
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !claims.ours.contains(&key) {
                claims.ours.insert(key.clone());
                guard = Some(ClaimGuard {
                    state,
                    key: key.clone(),
                });
            }
        }
        let Some(guard) = guard else {
            if !spent {
                store
                    .accept_message(scope, &envelope.nonce, checked.sent_ms, window_ms)
                    .await?;
            }
            return Err(Refusal::new(Code::InProgress, "the request is in progress"));
        };
        let begun = if spent {
            store.begin_request(scope, &envelope.request_id, hash).await
        } else {
            let admitted = store
                .admit_request(
                    scope,
                    &envelope.nonce,
                    checked.sent_ms,
                    window_ms,
                    &envelope.request_id,
                    hash,
                )
                .await;
            // Spent unless refused before the nonce was recorded (stale, replayed, the
            // database failing).
            spent = matches!(
                admitted,
                Ok(_)
                    | Err(ykt_store::Error::InProgress { .. } | ykt_store::Error::Duplicate { .. })
            );
            admitted
        };
        match begun {
            Ok(Begun::New) => return Ok(Claimed::New(guard)),
            Ok(Begun::Stored(text)) => return Ok(Claimed::Stored(text)),
            Ok(_) => return Err(Refusal::internal("unknown idempotency outcome")),
            Err(ykt_store::Error::InProgress { .. }) => {
                drop(guard);
                if !released && orphaned(state, &key, state.now()) {
                    tracing::warn!(
                        scope,
                        request_id = %envelope.request_id,
                        "releasing an idempotency claim left in progress"
                    );
                    store
                        .abandon_request(scope, &envelope.request_id, hash)
                        .await?;
                    released = true;
                    continue;
                }
                return Err(Refusal::new(Code::InProgress, "the request is in progress"));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn dispatch_claimed<B: Backend>(
    state: &AppState<B>,
    ctx: &Ctx,
    def: MessageDef,
    envelope: &Envelope,
    checked: Checked,
) -> (Code, Response) {
    let guard = match claim(state, envelope, &checked).await {
        Ok(Claimed::New(guard)) => guard,
        Ok(Claimed::Stored(text)) => return answer_stored(state, ctx, &text),
        Err(refusal) => return refuse(state, ctx, refusal),
    };
    let Checked {
        request,
        hash,
        scope,
        ..
    } = checked;
    let scope = scope.as_str();
    // A request that moves a flow has its answer stored with the move.
    let answer = matches!(
        request,
        Request::Start(_) | Request::ApduResult(_) | Request::Resume
    )
    .then(|| step_answer(def, scope, &envelope.request_id, hash));
    let outcome = dispatch(state, def, envelope, request, answer.clone()).await;
    let (outcome, flow_move) = match outcome {
        Ok((body, flow_move)) => (Ok(body), flow_move),
        Err(e) => {
            let refusal = Refusal::from(e);
            if refusal.code != Code::Internal {
                tracing::info!(
                    code = %refusal.code,
                    msg_type = def.request,
                    sender = %envelope.sender_id,
                    reason = %refusal.msg,
                    "business request declined"
                );
            }
            (Err(declined(&refusal)), None)
        }
    };
    let stored = StoredReply::of(def, outcome);
    let code = stored.result.code;
    let response = seal(
        state,
        ctx,
        def.response,
        stored.result.clone(),
        &stored.body,
        None,
    );
    let store = state.0.backend.store();
    let (sender, request_id) = (scope, &envelope.request_id);
    let done = if answer.as_ref().is_some_and(|a| a.stored()) {
        // Completed in the move's own transaction.
        Ok(())
    } else if code == Code::Internal {
        store.abandon_request(sender, request_id, &hash).await
    } else {
        match stored.text() {
            Some(text) => {
                store
                    .complete_request(sender, request_id, &hash, &text)
                    .await
            }
            None => Ok(()),
        }
    };
    if let Err(error) = done {
        // The claim stays in progress; once this process lets go of it below, a retry
        // releases it after the orphan timeout.
        tracing::error!(%error, "completing an idempotency claim failed");
    }
    drop(guard);
    if let (Code::Ok, Some(m)) = (code, flow_move) {
        state.0.metrics.flow(m);
    }
    (code, response)
}

fn answer_stored<B>(state: &AppState<B>, ctx: &Ctx, text: &str) -> (Code, Response) {
    match serde_json::from_str::<StoredReply>(text) {
        Ok(stored) => {
            let code = stored.result.code;
            let response = seal(
                state,
                ctx,
                &stored.msg_type,
                stored.result,
                &stored.body,
                None,
            );
            (code, response)
        }
        Err(e) => refuse(
            state,
            ctx,
            Refusal::internal(format!("stored response: {e}")),
        ),
    }
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, BackendError> {
    serde_json::to_value(value).map_err(|e| BackendError::new(Code::Internal, e.to_string()))
}

fn flow_move(resp: &api::FlowResp, started: bool) -> FlowMove {
    FlowMove {
        started,
        completed: resp.status == api::FlowStatus::Completed,
        failed: resp.status == api::FlowStatus::Failed,
    }
}

/// tsm-gp.md §7 message table: each request to its backend call.
async fn dispatch<B: Backend>(
    state: &AppState<B>,
    def: MessageDef,
    envelope: &Envelope,
    request: Request,
    answer: Option<Arc<StepAnswer>>,
) -> Result<(Value, Option<FlowMove>), BackendError> {
    let backend = &state.0.backend;
    let device = envelope.sender_id.as_str();
    let txn = envelope.txn_id.as_str();
    let now = state.now();
    match request {
        Request::Enrol(req) => {
            let key = Sm2PublicKey::from_sec1_bytes(req.device_pub.as_bytes())
                .map_err(|_| BackendError::new(Code::BadRequest, "device_pub is not a key"))?;
            let device_id = backend.enrol(&key, &req.device_model).await?;
            let config = &state.0.config;
            let resp = api::EnrolResp {
                device_id,
                tsm_id: config.tsm_id.clone(),
                tsm_pub: ykt_tsm::hex::Hex(config.tsm_pub.clone()),
            };
            Ok((to_value(&resp)?, None))
        }
        Request::Start(start) => {
            let resp = match answer {
                Some(answer) => {
                    backend
                        .start_answered(device, txn, start, now, answer)
                        .await?
                }
                None => backend.start(device, txn, start, now).await?,
            };
            Ok((to_value(&resp)?, Some(flow_move(&resp, true))))
        }
        Request::ApduResult(req) => {
            let resp = match answer {
                Some(answer) => {
                    backend
                        .apdu_result_answered(device, txn, &req.response, now, answer)
                        .await?
                }
                None => backend.apdu_result(device, txn, &req.response, now).await?,
            };
            Ok((to_value(&resp)?, Some(flow_move(&resp, false))))
        }
        Request::Resume => {
            let resp = match answer {
                Some(answer) => backend.resume_answered(device, txn, now, answer).await?,
                None => backend.resume(device, txn, now).await?,
            };
            Ok((to_value(&resp)?, Some(flow_move(&resp, false))))
        }
        Request::FlowQuery => Ok((to_value(&backend.flow(device, txn).await?)?, None)),
        Request::TopupOrder(req) => {
            Ok((to_value(&backend.create_order(device, &req).await?)?, None))
        }
        Request::OrderQuery(req) => Ok((
            to_value(&backend.order(device, &req.order_id).await?)?,
            None,
        )),
        Request::TestPay(req) => Ok((
            to_value(&backend.test_pay(device, &req.order_id).await?)?,
            None,
        )),
        Request::CardsQuery => Ok((to_value(&backend.cards(device).await?)?, None)),
        Request::Platform(body) => Ok((backend.platform(device, def, body).await?, None)),
    }
}
