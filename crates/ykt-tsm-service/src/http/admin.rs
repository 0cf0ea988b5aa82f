//! The admin API (`/admin/v1/…`): plain JSON for operators, behind
//! `Authorization: Bearer <admin token>` (401 without it or with another token).
//!
//! | path | answer |
//! |---|---|
//! | `GET /admin/v1/ses` | `[`[`SeView`]`]` |
//! | `GET /admin/v1/ses/{seid}` | [`SeView`] |
//! | `GET /admin/v1/ses/{seid}/cards` | `[`[`CardInstanceView`]`]` |
//! | `GET /admin/v1/cards` | `[`[`CardInstanceView`]`]` |
//! | `GET /admin/v1/flows?status=RUNNING\|COMPLETED\|FAILED[&seid=…]` | `[`[`FlowView`]`]` |
//! | `GET /admin/v1/flows/{id}` | [`FlowView`] |
//! | `GET /admin/v1/audit/verify` | [`ChainView`] |
//!
//! A refusal is `{"code":"…","msg":"…"}` with the code's HTTP status.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use ykt_envelope::{Code, ResultInfo};
use ykt_store::FlowStatus;

use super::backend::{Backend, BackendError};
#[cfg(doc)]
use super::backend::{CardInstanceView, ChainView, FlowView, SeView};
use super::server::{AppState, json_text};

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

fn refusal(code: Code, msg: &str) -> Response {
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = serde_json::to_string(&ResultInfo::error(code, msg)).unwrap_or_default();
    json_text(status, text)
}

/// The 401 answer, unless the request carries the admin token.
fn unauthorised<B>(state: &AppState<B>, headers: &HeaderMap) -> Option<Response> {
    match bearer(headers) {
        Some(token) if state.0.config.admin_token.matches(token) => None,
        _ => {
            tracing::warn!("admin request without a valid token");
            let mut response = refusal(
                Code::UnknownSender,
                "an admin token is required (Authorization: Bearer …)",
            );
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(response)
        }
    }
}

fn answer<T: Serialize>(result: Result<T, BackendError>) -> Response {
    match result {
        Ok(value) => match serde_json::to_string(&value) {
            Ok(text) => json_text(StatusCode::OK, text),
            Err(e) => {
                tracing::error!(error = %e, "encoding an admin answer");
                refusal(Code::Internal, "internal error")
            }
        },
        Err(e) if e.code == Code::Internal => {
            tracing::error!(detail = %e.message, "admin request failed");
            refusal(Code::Internal, "internal error")
        }
        Err(e) => refusal(e.code, &e.message),
    }
}

pub(crate) async fn ses<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    answer(state.0.backend.admin_ses().await)
}

pub(crate) async fn all_cards<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    answer(state.0.backend.admin_all_cards().await)
}

pub(crate) async fn se<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
    Path(seid): Path<String>,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    answer(state.0.backend.admin_se(&seid).await)
}

pub(crate) async fn cards<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
    Path(seid): Path<String>,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    answer(state.0.backend.admin_cards(&seid).await)
}

/// Decodes `%xx` and `+` of a query value.
fn unescape(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

pub(crate) async fn flows<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    let mut status = FlowStatus::Running;
    let mut seid = None;
    for pair in query.as_deref().unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(value) = unescape(value) else {
            return refusal(Code::BadRequest, "the query is not well encoded");
        };
        match name {
            "status" => {
                let Some(s) = FlowStatus::ALL.iter().find(|s| s.as_str() == value) else {
                    return refusal(Code::BadRequest, "status is RUNNING, COMPLETED or FAILED");
                };
                status = *s;
            }
            "seid" => seid = Some(value),
            _ => return refusal(Code::BadRequest, "the query takes status and seid"),
        }
    }
    answer(state.0.backend.admin_flows(status, seid.as_deref()).await)
}

pub(crate) async fn flow<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    answer(state.0.backend.admin_flow(&id).await)
}

pub(crate) async fn verify_audit<B: Backend>(
    State(state): State<AppState<B>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorised(&state, &headers) {
        return r;
    }
    answer(state.0.backend.admin_verify_audit().await)
}
