//! The admin API's registry (`/admin/v1/…`, tsm-gp.md §2, §6, §8): card issuers, card stock,
//! SE profiles, an SE's profile, key versions. Plain JSON behind
//! `Authorization: Bearer <token>` of a named [`Operator`], whose label the audit rows record.
//!
//! | method, path | body → answer |
//! |---|---|
//! | `GET /admin/v1/issuers` | `[IssuerDto]` |
//! | `POST /admin/v1/issuers` | `IssuerDto` → `IssuerDto` |
//! | `GET /admin/v1/stock[?issuer=…]` | `[StockDto]` (with `remaining`) |
//! | `POST /admin/v1/stock` | `StockDto` → `StockDto` |
//! | `GET /admin/v1/se-profiles` | `[SeProfileDto]` |
//! | `POST /admin/v1/se-profiles` | `SeProfileDto` → `SeProfileDto` |
//! | `POST /admin/v1/ses/{seid}/profile` | `{"profile": name}` → `{"seid", "profile"}` |
//! | `GET /admin/v1/keys` | `[KeyVersionView]`: names, roles, versions; never a value |
//! | `GET /admin/v1/money-flows` | `[StuckMoney]`: failed top-ups and transfers in, with what the records prove of their load |
//! | `POST /admin/v1/flows/{id}/abandon` | `{"reason": text}` → `Abandoned`: a `NOT_CREDITED` money flow ended, its order refunded or escrow released |
//!
//! 401 without a known token; 400 `{"error": …}` naming the bad field; 404 for an unknown
//! record; 409 when it exists already or overlaps; a refused write writes nothing.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use ykt_store::{CplcMatch, Issuer, NewIssuer, NewSeProfile, NewStockRange, SeProfile, StockRange};

use super::server::{AdminToken, Clock, json_text};
use crate::engine::Engine;

/// An operator of the admin API: a label for the audit log and a bearer token.
#[derive(Clone)]
pub struct Operator {
    /// The label the audit rows name as actor.
    pub label: String,
    /// The operator's token.
    pub token: AdminToken,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Operator({}, [redacted])", self.label)
    }
}

#[derive(Clone)]
struct WriteState {
    engine: Engine,
    operators: std::sync::Arc<Vec<Operator>>,
    clock: Clock,
}

/// The registry routes, with their state, on the system clock. On their own they serve the
/// registry alone; the server merges [`admin_write_routes_with_clock`] on its own clock.
pub fn admin_write_routes(engine: Engine, operators: Vec<Operator>) -> Router {
    let system = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    admin_write_routes_with_clock(engine, operators, std::sync::Arc::new(system))
}

/// The registry routes on `clock` (Unix ms): the time an abandon moves its flow at. The server
/// merges them, on its [`super::ServerConfig::clock`], into its router when its config names
/// operators ([`super::ServerConfig::with_operators`]).
pub fn admin_write_routes_with_clock(
    engine: Engine,
    operators: Vec<Operator>,
    clock: Clock,
) -> Router {
    Router::new()
        .route("/admin/v1/issuers", get(issuers).post(create_issuer))
        .route("/admin/v1/stock", get(stock).post(add_stock))
        .route("/admin/v1/se-profiles", get(profiles).post(create_profile))
        .route("/admin/v1/ses/{seid}/profile", post(set_profile))
        .route("/admin/v1/keys", get(keys))
        .route("/admin/v1/money-flows", get(money_flows))
        .route("/admin/v1/flows/{id}/abandon", post(abandon_flow))
        .with_state(WriteState {
            engine,
            operators: std::sync::Arc::new(operators),
            clock,
        })
}

/// A card issuer on the wire (byte fields in hex).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerDto {
    /// Id.
    pub issuer_id: String,
    /// Name.
    pub name: String,
    /// EF15 issuer id, 16 hex digits.
    pub ef15_issuer: String,
    /// City code, 4 hex digits.
    pub city_code: String,
    /// The vault's name of the purse-issuer keys.
    pub purse_key: String,
    /// Their key version.
    pub key_version: u8,
}

/// A card stock range on the wire.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockDto {
    /// Id.
    pub range_id: String,
    /// Issuer.
    pub issuer_id: String,
    /// Card number prefix, 8 hex digits.
    pub prefix: String,
    /// First sequence number.
    pub first_seq: u64,
    /// Last sequence number.
    pub last_seq: u64,
    /// First valid date, `YYYYMMDD`.
    pub start_date: String,
    /// Last valid date, `YYYYMMDD`.
    pub expiry_date: String,
    /// Numbers left: in answers only (a request carrying it is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub remaining: Option<u64>,
}

/// An SE profile on the wire.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeProfileDto {
    /// Name.
    pub name: String,
    /// CPLC IC fabricator, 4 hex digits.
    pub ic_fabricator: String,
    /// CPLC IC type, 4 hex digits (absent: any).
    #[serde(default)]
    pub ic_type: Option<String>,
    /// CPLC OS id, 4 hex digits (absent: any).
    #[serde(default)]
    pub os_id: Option<String>,
    /// Memory (KiB).
    pub memory_kb: u64,
    /// `SCP02`, `SCP03` or `SM4`.
    pub scp: String,
    /// Delegated management supported.
    pub delegated_management: bool,
}

/// The body of `POST /admin/v1/ses/{seid}/profile`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetProfile {
    /// The SE profile's name.
    pub profile: String,
}

/// The answer of `POST /admin/v1/ses/{seid}/profile`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeProfileSet {
    /// The SE.
    pub seid: String,
    /// Its profile now.
    pub profile: String,
}

/// The body of `POST /admin/v1/flows/{id}/abandon`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbandonReq {
    /// Why the operator abandons the flow (audited; not empty, at most
    /// [`crate::engine::proposals::ABANDON_REASON_MAX_CHARS`] characters).
    pub reason: String,
}

/// A refused registry request: the text names the bad field or record, never a key or token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refused {
    /// What is wrong.
    pub error: String,
}

type Refusal = (StatusCode, String);

fn bad(msg: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, msg.into())
}

fn hex_field<const N: usize>(field: &str, text: &str) -> Result<[u8; N], Refusal> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; N]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| bad(format!("{field}: {} hex digits", 2 * N)))
}

fn issuer_dto(i: Issuer) -> IssuerDto {
    let i = i.issuer;
    IssuerDto {
        issuer_id: i.issuer_id,
        name: i.name,
        ef15_issuer: hex::encode_upper(i.ef15_issuer),
        city_code: hex::encode_upper(i.city_code),
        purse_key: i.purse_key,
        key_version: i.key_version,
    }
}

fn stock_dto(s: StockRange) -> StockDto {
    let remaining = s.remaining();
    let r = s.range;
    StockDto {
        range_id: r.range_id,
        issuer_id: r.issuer_id,
        prefix: hex::encode_upper(r.prefix),
        first_seq: r.first_seq,
        last_seq: r.last_seq,
        start_date: hex::encode(r.start_date),
        expiry_date: hex::encode(r.expiry_date),
        remaining: Some(remaining),
    }
}

fn profile_dto(p: SeProfile) -> SeProfileDto {
    let p = p.profile;
    SeProfileDto {
        name: p.name,
        ic_fabricator: hex::encode_upper(p.cplc.ic_fabricator),
        ic_type: p.cplc.ic_type.map(hex::encode_upper),
        os_id: p.cplc.os_id.map(hex::encode_upper),
        memory_kb: p.memory_kb,
        scp: p.scp,
        delegated_management: p.delegated_management,
    }
}

fn refuse((status, msg): Refusal) -> Response {
    let text = serde_json::to_string(&Refused { error: msg }).unwrap_or_default();
    let mut response = json_text(status, text);
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn ok<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(text) => json_text(status, text),
        Err(_) => refuse((StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())),
    }
}

/// The answer to a registry error (its HTTP status and message; a 500 says no more).
fn registry(status: u16, msg: String) -> Refusal {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %msg, "admin registry request failed");
        return (status, "internal error".into());
    }
    (status, msg)
}

/// The operator presenting a known token, or the 401.
fn operator(state: &WriteState, headers: &HeaderMap) -> Result<String, Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .and_then(|v| v.split_at_checked(7))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"bearer "))
        .map(|(_, t)| t);
    token
        .and_then(|t| state.operators.iter().find(|o| o.token.matches(t)))
        .map(|o| o.label.clone())
        .ok_or_else(|| {
            tracing::warn!("admin request without a valid token");
            (
                StatusCode::UNAUTHORIZED,
                "an admin token is required (Authorization: Bearer …)".into(),
            )
        })
}

fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|e| bad(format!("the body is not valid: {e}")))
}

async fn run(result: impl Future<Output = Result<Response, Refusal>>) -> Response {
    result.await.unwrap_or_else(refuse)
}

async fn issuers(State(s): State<WriteState>, headers: HeaderMap) -> Response {
    run(async {
        operator(&s, &headers)?;
        let list = s
            .engine
            .admin_issuers()
            .await
            .map_err(|e| registry(e.http_status(), e.to_string()))?;
        let list: Vec<_> = list.into_iter().map(issuer_dto).collect();
        Ok(ok(StatusCode::OK, &list))
    })
    .await
}

// tsm-gp.md §6: an issuer names its purse-issuer key and version, never the key.
async fn create_issuer(State(s): State<WriteState>, headers: HeaderMap, b: Bytes) -> Response {
    run(async {
        let actor = operator(&s, &headers)?;
        let dto: IssuerDto = body(&b)?;
        let new = NewIssuer {
            ef15_issuer: hex_field("ef15_issuer", &dto.ef15_issuer)?,
            city_code: hex_field("city_code", &dto.city_code)?,
            issuer_id: dto.issuer_id,
            name: dto.name,
            purse_key: dto.purse_key,
            key_version: dto.key_version,
        };
        let made = s
            .engine
            .admin_create_issuer(&actor, &new)
            .await
            .map_err(|e| registry(e.http_status(), e.to_string()))?;
        Ok(ok(StatusCode::CREATED, &issuer_dto(made)))
    })
    .await
}

async fn stock(State(s): State<WriteState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    run(async {
        operator(&s, &headers)?;
        let issuer = match q.as_deref() {
            None | Some("") => None,
            Some(q) => match q.split_once('=') {
                Some(("issuer", v)) if !v.is_empty() => Some(v.to_string()),
                _ => return Err(bad("the query takes issuer")),
            },
        };
        let list = s
            .engine
            .admin_stock(issuer.as_deref())
            .await
            .map_err(|e| registry(e.http_status(), e.to_string()))?;
        let list: Vec<_> = list.into_iter().map(stock_dto).collect();
        Ok(ok(StatusCode::OK, &list))
    })
    .await
}

async fn add_stock(State(s): State<WriteState>, headers: HeaderMap, b: Bytes) -> Response {
    run(async {
        let actor = operator(&s, &headers)?;
        let dto: StockDto = body(&b)?;
        if dto.remaining.is_some() {
            return Err(bad("remaining: in answers only"));
        }
        let new = NewStockRange {
            prefix: hex_field("prefix", &dto.prefix)?,
            start_date: hex_field("start_date", &dto.start_date)?,
            expiry_date: hex_field("expiry_date", &dto.expiry_date)?,
            range_id: dto.range_id,
            issuer_id: dto.issuer_id,
            first_seq: dto.first_seq,
            last_seq: dto.last_seq,
        };
        let made = s
            .engine
            .admin_add_stock(&actor, &new)
            .await
            .map_err(|e| registry(e.http_status(), e.to_string()))?;
        Ok(ok(StatusCode::CREATED, &stock_dto(made)))
    })
    .await
}

async fn profiles(State(s): State<WriteState>, headers: HeaderMap) -> Response {
    run(async {
        operator(&s, &headers)?;
        let list = s
            .engine
            .admin_se_profiles()
            .await
            .map_err(|e| registry(e.http_status(), e.to_string()))?;
        let list: Vec<_> = list.into_iter().map(profile_dto).collect();
        Ok(ok(StatusCode::OK, &list))
    })
    .await
}

async fn create_profile(State(s): State<WriteState>, headers: HeaderMap, b: Bytes) -> Response {
    run(async {
        let actor = operator(&s, &headers)?;
        let dto: SeProfileDto = body(&b)?;
        let new = NewSeProfile {
            cplc: CplcMatch {
                ic_fabricator: hex_field("ic_fabricator", &dto.ic_fabricator)?,
                ic_type: dto
                    .ic_type
                    .as_deref()
                    .map(|t| hex_field("ic_type", t))
                    .transpose()?,
                os_id: dto
                    .os_id
                    .as_deref()
                    .map(|t| hex_field("os_id", t))
                    .transpose()?,
            },
            name: dto.name,
            memory_kb: dto.memory_kb,
            scp: dto.scp,
            delegated_management: dto.delegated_management,
        };
        let made = s
            .engine
            .admin_create_se_profile(&actor, &new)
            .await
            .map_err(|e| registry(e.http_status(), e.to_string()))?;
        Ok(ok(StatusCode::CREATED, &profile_dto(made)))
    })
    .await
}

// tsm-gp.md §8 SE registry: the operator sets the profile by hand.
async fn set_profile(
    State(s): State<WriteState>,
    headers: HeaderMap,
    Path(seid): Path<String>,
    b: Bytes,
) -> Response {
    run(async {
        let actor = operator(&s, &headers)?;
        let req: SetProfile = body(&b)?;
        let se = s
            .engine
            .admin_set_se_profile(&actor, &seid, &req.profile)
            .await
            .map_err(|e| registry(e.http_status(), e.to_string()))?;
        Ok(ok(
            StatusCode::OK,
            &SeProfileSet {
                seid: se.seid,
                profile: se.profile,
            },
        ))
    })
    .await
}

async fn keys(State(s): State<WriteState>, headers: HeaderMap) -> Response {
    run(async {
        operator(&s, &headers)?;
        let list = s
            .engine
            .admin_key_versions()
            .await
            .map_err(|e| registry(e.http_status(), e.to_string()))?;
        Ok(ok(StatusCode::OK, &list))
    })
    .await
}

/// The failed money flows and what the records prove of each (tsm-gp.md §8;
/// [`Engine::admin_stuck_money`]): the card numbers never appear, orders and escrows by id.
async fn money_flows(State(s): State<WriteState>, headers: HeaderMap) -> Response {
    run(async {
        operator(&s, &headers)?;
        let list = s.engine.admin_stuck_money().await.map_err(|e| {
            tracing::error!(error = %e, "listing the failed money flows");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        })?;
        Ok(ok(StatusCode::OK, &list))
    })
    .await
}

/// The operator's abandon of a failed money flow proven `NOT_CREDITED` (\[PROPOSAL\]
/// `engine::proposals::ABANDONED_STEP_PREFIX`; tsm-gp.md §8 "never assume success";
/// [`Engine::admin_abandon_flow`]): 400 for a bad reason, 404 for an unknown flow, 409 naming
/// why (`CARD_MUST_PROVE`, not a failed money flow); asked again, the same answer.
async fn abandon_flow(
    State(s): State<WriteState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    b: Bytes,
) -> Response {
    run(async {
        let actor = operator(&s, &headers)?;
        let req: AbandonReq = body(&b)?;
        let now_ms = (s.clock)();
        let done = s
            .engine
            .admin_abandon_flow(&actor, &id, &req.reason, now_ms)
            .await
            .map_err(|e| registry(e.http_status(), e.to_string()))?;
        Ok(ok(StatusCode::OK, &done))
    })
    .await
}
