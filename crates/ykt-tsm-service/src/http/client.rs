//! The TSM's HTTP client: envelopes out, envelopes back; the documents, the admin getters and
//! the registry's calls (an operator's token; refusals as [`ClientError::Registry`]).
//!
//! TLS 1.3 with SPKI pinning ([`TsmClient::with_tls`], `https://`, client.md §6.4 Profile B; see
//! [`super::tls`]), or plain HTTP for tests and loopback ([`TsmClient::danger_plain_http`],
//! `http://`). [`TsmClient::send`] keeps
//! "the exchange failed" (no connection, a timeout, an answer that is not an envelope:
//! [`ClientError::Transport`], [`ClientError::NotAnEnvelope`]) apart from "the TSM said no",
//! which is a signed envelope with a code other than `0000` and comes back as `Ok`: the caller
//! verifies it under the TSM's key and reads `result`.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{Connector as _, TcpConnector};
use ykt_envelope::{Envelope, ResultInfo};

use super::admin_write::{
    AbandonReq, IssuerDto, Refused, SeProfileDto, SeProfileSet, SetProfile, StockDto,
};
use super::backend::{CardInstanceView, ChainView, FlowView, SeView};
use super::tls::{self, HandshakeFailed, SpkiPin};
use crate::engine::{Abandoned, KeyVersionView, StuckMoney};

/// How long one exchange may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A plain-HTTP client's URL is not `http://…`.
    #[error("a plain-HTTP TSM URL must start with http:// (use TLS for https://)")]
    UnsupportedUrl,
    /// A TLS client's URL is not `https://…`.
    #[error("a TLS TSM URL must start with https://")]
    NotHttps,
    /// A TLS client without a pin.
    #[error("a TLS client of the TSM needs at least one SPKI pin")]
    NoPins,
    /// The TSM's TLS key is none of the pinned keys (client.md §6.4: a miss is fatal). The
    /// handshake was abandoned before any byte of the request was sent.
    #[error(
        "the TSM's TLS key ({presented}) matches none of the pinned keys: refused before any request was sent"
    )]
    PinMismatch {
        /// The pin of the key the server presented.
        presented: SpkiPin,
    },
    /// The TLS handshake failed otherwise (a server without TLS 1.3, a bad handshake
    /// signature); nothing of the request was sent.
    #[error("the TLS handshake with the TSM failed (TLS 1.3 is required): {0}")]
    Tls(#[source] rustls::Error),
    /// The request did not get through, or the answer did not come back.
    #[error("the request to the TSM failed")]
    Transport(#[source] ureq::Error),
    /// An answer that is not an envelope (a proxy's error page, a truncated body).
    #[error("the TSM's answer (HTTP {status}) is not an envelope")]
    NotAnEnvelope {
        /// The HTTP status.
        status: u16,
    },
    /// A document or admin answer that is not the JSON expected.
    #[error("the TSM's answer (HTTP {status}) is not the JSON expected")]
    BadJson {
        /// The HTTP status.
        status: u16,
    },
    /// `GET /health` answered that the TSM (its store) is not available.
    #[error("the TSM is unavailable (HTTP {status})")]
    Unavailable {
        /// The HTTP status.
        status: u16,
    },
    /// The admin API refused (`{"code","msg"}`; 401 for a missing or wrong token).
    #[error("the TSM's admin API refused (HTTP {status}, {}): {}", .result.code, .result.msg)]
    Admin {
        /// The HTTP status.
        status: u16,
        /// The TSM's code and message.
        result: ResultInfo,
    },
    /// The registry refused (`{"error"}`): 400 a malformed field (named in `error`), 401 a
    /// missing or unknown operator token, 404 an unknown record, 409 a record that exists
    /// already or overlaps, or an exhausted stock.
    #[error("the TSM's registry refused (HTTP {status}): {error}")]
    Registry {
        /// The HTTP status.
        status: u16,
        /// The TSM's text.
        error: String,
    },
}

impl ClientError {
    /// Whether the exchange itself failed (as opposed to a refusal the TSM gave).
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Self::Transport(_)
                | Self::NotAnEnvelope { .. }
                | Self::BadJson { .. }
                | Self::PinMismatch { .. }
                | Self::Tls(_)
        )
    }

    /// A ureq error, with a failed TLS handshake told apart (a pin miss, another refusal).
    fn from_ureq(error: ureq::Error) -> Self {
        if let ureq::Error::Other(inner) = &error
            && let Some(failed) = inner.downcast_ref::<HandshakeFailed>()
        {
            return match failed.pin_miss() {
                Some(presented) => Self::PinMismatch { presented },
                None => Self::Tls(failed.0.clone()),
            };
        }
        Self::Transport(error)
    }
}

/// An answer's headers: (name in lower case, value).
pub type Headers = Vec<(String, String)>;

/// The status and the body's bytes of an answer (ureq's 10 MB limit).
fn read_answer(
    response: &mut ureq::http::Response<ureq::Body>,
) -> Result<(u16, Vec<u8>), ClientError> {
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .read_to_vec()
        .map_err(ClientError::from_ureq)?;
    Ok((status, bytes))
}

/// An answer's body as text, invalid UTF-8 replaced (as ureq's `read_to_string` does).
fn text((status, bytes): (u16, Vec<u8>)) -> (u16, String) {
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// A client of one TSM.
#[derive(Debug, Clone)]
pub struct TsmClient {
    base: String,
    agent: ureq::Agent,
}

impl TsmClient {
    /// A plain-HTTP client of the TSM at `base_url` (`http://host:port`, a path prefix
    /// allowed); the same as [`TsmClient::danger_plain_http`].
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::danger_plain_http(base_url)
    }

    /// A plain-HTTP client of the TSM at `base_url` (`http://…` only): for tests and loopback,
    /// never across a network (client.md §6.4, `danger_insecure_transport`).
    pub fn danger_plain_http(base_url: &str) -> Result<Self, ClientError> {
        if !base_url.starts_with("http://") {
            return Err(ClientError::UnsupportedUrl);
        }
        Ok(Self {
            base: base_url.trim_end_matches('/').to_string(),
            agent: ureq::Agent::new_with_config(Self::agent_config()),
        })
    }

    /// A TLS client of the TSM at `base_url` (`https://…` only) that accepts the server iff its
    /// key is one of `pins` (the current key and a backup; at least one). This is where the
    /// transport profile of client.md §6.4 is chosen: Profile B, TLS 1.3 over rustls; Profile A
    /// (TLCP via Tongsuo) is not built, see [`super::tls`]. No CA, host name or validity
    /// check is made: the pin is the server's identity. A miss fails the handshake
    /// ([`ClientError::PinMismatch`]), as does a server without TLS 1.3 ([`ClientError::Tls`]),
    /// both before a byte of the request is written.
    pub fn with_tls(base_url: &str, pins: &[SpkiPin]) -> Result<Self, ClientError> {
        if !base_url.starts_with("https://") {
            return Err(ClientError::NotHttps);
        }
        if pins.is_empty() {
            return Err(ClientError::NoPins);
        }
        let tls = tls::client_config(pins).map_err(ClientError::Tls)?;
        let connector = ().chain(TcpConnector::default()).chain(tls::PinnedConnector::new(tls));
        Ok(Self {
            base: base_url.trim_end_matches('/').to_string(),
            agent: ureq::Agent::with_parts(
                // Straight to the TSM: the connector chain has no proxy stage, so proxy
                // settings from the environment are not taken.
                Self::agent_config_builder().proxy(None).build(),
                connector,
                DefaultResolver::default(),
            ),
        })
    }

    fn agent_config() -> ureq::config::Config {
        Self::agent_config_builder().build()
    }

    fn agent_config_builder() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a sealed request to `POST /v1/{msg_type}`; gives the TSM's envelope, whatever its
    /// code (check its signature and `result`).
    pub fn send(&self, request: &Envelope) -> Result<Envelope, ClientError> {
        self.send_bytes(&request.msg_type, &request.to_vec())
    }

    /// Sends raw bytes to `POST /v1/{msg_type}` (tests of refusals; replays of captured bytes).
    pub fn send_bytes(&self, msg_type: &str, body: &[u8]) -> Result<Envelope, ClientError> {
        let (status, text) = self.post(&format!("/v1/{msg_type}"), body)?;
        Envelope::from_slice(text.as_bytes()).map_err(|_| ClientError::NotAnEnvelope { status })
    }

    /// [`TsmClient::send_bytes`] with the HTTP status.
    pub fn send_bytes_with_status(
        &self,
        msg_type: &str,
        body: &[u8],
    ) -> Result<(u16, Envelope), ClientError> {
        let (status, text) = self.post(&format!("/v1/{msg_type}"), body)?;
        let envelope = Envelope::from_slice(text.as_bytes())
            .map_err(|_| ClientError::NotAnEnvelope { status })?;
        Ok((status, envelope))
    }

    /// POSTs `body` (JSON) to `path` (e.g. `/v1/EnrolReq`): the status and the body's bytes as
    /// they came, whatever they are (a conformance harness judges them).
    pub fn post_raw(&self, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), ClientError> {
        self.post_with(path, body, None)
    }

    /// GETs `path` (e.g. `/health`): the status and the body's bytes as they came.
    pub fn get_raw(&self, path: &str) -> Result<(u16, Vec<u8>), ClientError> {
        self.get_raw_with_token(path, None)
            .map(|(status, _, body)| (status, body))
    }

    /// [`TsmClient::get_raw`] with an optional bearer token (the admin API), also giving the
    /// answer's headers (names lower case).
    pub fn get_raw_with_token(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<(u16, Headers, Vec<u8>), ClientError> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.call().map_err(ClientError::from_ureq)?;
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let (status, bytes) = read_answer(&mut response)?;
        Ok((status, headers, bytes))
    }

    fn post(&self, path: &str, body: &[u8]) -> Result<(u16, String), ClientError> {
        self.post_with(path, body, None).map(text)
    }

    fn post_with(
        &self,
        path: &str,
        body: &[u8],
        token: Option<&str>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.send(body).map_err(ClientError::from_ureq)?;
        read_answer(&mut response)
    }

    fn get(&self, path: &str, token: Option<&str>) -> Result<(u16, String), ClientError> {
        self.get_raw_with_token(path, token)
            .map(|(status, _, body)| text((status, body)))
    }

    fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<T, ClientError> {
        let (status, text) = self.get(path, token)?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|_| ClientError::BadJson { status });
        }
        match serde_json::from_str::<ResultInfo>(&text) {
            Ok(result) => Err(ClientError::Admin { status, result }),
            Err(_) => Err(ClientError::BadJson { status }),
        }
    }

    /// A registry answer: the JSON of `T` on success, [`ClientError::Registry`] on a refusal.
    fn registry_answer<T: DeserializeOwned>(
        (status, text): (u16, String),
    ) -> Result<T, ClientError> {
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|_| ClientError::BadJson { status });
        }
        match serde_json::from_str::<Refused>(&text) {
            Ok(r) => Err(ClientError::Registry {
                status,
                error: r.error,
            }),
            Err(_) => Err(ClientError::BadJson { status }),
        }
    }

    fn registry_get<T: DeserializeOwned>(&self, path: &str, token: &str) -> Result<T, ClientError> {
        Self::registry_answer(self.get(path, Some(token))?)
    }

    fn registry_post<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|_| ClientError::BadJson { status: 0 })?;
        Self::registry_answer(text(self.post_with(path, &body, Some(token))?))
    }

    /// Registry (operator `token`): every card issuer.
    pub fn registry_issuers(&self, token: &str) -> Result<Vec<IssuerDto>, ClientError> {
        self.registry_get("/admin/v1/issuers", token)
    }

    /// Registry: creates a card issuer; gives it as stored.
    pub fn create_issuer(&self, token: &str, issuer: &IssuerDto) -> Result<IssuerDto, ClientError> {
        self.registry_post("/admin/v1/issuers", token, issuer)
    }

    /// Registry: the card stock ranges of an issuer (`None`: all), with the numbers left.
    pub fn registry_stock(
        &self,
        token: &str,
        issuer: Option<&str>,
    ) -> Result<Vec<StockDto>, ClientError> {
        let path = match issuer {
            Some(i) => format!("/admin/v1/stock?issuer={}", escape(i)),
            None => "/admin/v1/stock".to_string(),
        };
        self.registry_get(&path, token)
    }

    /// Registry: adds a card stock range (`remaining` left `None`); gives it as stored.
    pub fn add_stock(&self, token: &str, range: &StockDto) -> Result<StockDto, ClientError> {
        self.registry_post("/admin/v1/stock", token, range)
    }

    /// Registry: every SE profile.
    pub fn registry_se_profiles(&self, token: &str) -> Result<Vec<SeProfileDto>, ClientError> {
        self.registry_get("/admin/v1/se-profiles", token)
    }

    /// Registry: creates an SE profile; gives it as stored.
    pub fn create_se_profile(
        &self,
        token: &str,
        profile: &SeProfileDto,
    ) -> Result<SeProfileDto, ClientError> {
        self.registry_post("/admin/v1/se-profiles", token, profile)
    }

    /// Registry: sets an SE's profile by hand.
    pub fn assign_se_profile(
        &self,
        token: &str,
        seid: &str,
        profile: &str,
    ) -> Result<SeProfileSet, ClientError> {
        self.registry_post(
            &format!("/admin/v1/ses/{}/profile", escape(seid)),
            token,
            &SetProfile {
                profile: profile.to_string(),
            },
        )
    }

    /// Registry: the keys the TSM uses, by name, role and version (never a value).
    pub fn key_versions(&self, token: &str) -> Result<Vec<KeyVersionView>, ClientError> {
        self.registry_get("/admin/v1/keys", token)
    }

    /// The failed top-ups and transfers in, with what the TSM's records prove of their load
    /// (`GET /admin/v1/money-flows`).
    pub fn money_flows(&self, token: &str) -> Result<Vec<StuckMoney>, ClientError> {
        self.registry_get("/admin/v1/money-flows", token)
    }

    /// Abandons the failed money flow `txn_id` proven `NOT_CREDITED`, for `reason`
    /// (`POST /admin/v1/flows/{id}/abandon`): the same answer when asked again; a refusal is
    /// [`ClientError::Registry`] with its status (400, 404, 409) and text.
    pub fn abandon_flow(
        &self,
        token: &str,
        txn_id: &str,
        reason: &str,
    ) -> Result<Abandoned, ClientError> {
        self.registry_post(
            &format!("/admin/v1/flows/{}/abandon", escape(txn_id)),
            token,
            &AbandonReq {
                reason: reason.to_string(),
            },
        )
    }

    /// `GET /openapi.json`.
    pub fn openapi(&self) -> Result<Value, ClientError> {
        self.get_json("/openapi.json", None)
    }

    /// `GET /health`: `Ok` with the status text (`ok`) when the TSM and its store answer,
    /// [`ClientError::Unavailable`] when the TSM answers that its store does not.
    pub fn health(&self) -> Result<String, ClientError> {
        let (status, text) = self.get("/health", None)?;
        if !(200..300).contains(&status) {
            return Err(ClientError::Unavailable { status });
        }
        let value: Value =
            serde_json::from_str(&text).map_err(|_| ClientError::BadJson { status })?;
        value
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(ClientError::BadJson { status })
    }

    /// `GET /metrics`, the Prometheus text.
    pub fn metrics(&self) -> Result<String, ClientError> {
        Ok(self.get("/metrics", None)?.1)
    }

    /// Admin: every registered SE.
    pub fn admin_ses(&self, token: &str) -> Result<Vec<SeView>, ClientError> {
        self.get_json("/admin/v1/ses", Some(token))
    }

    /// Admin: every card instance.
    pub fn admin_all_cards(&self, token: &str) -> Result<Vec<CardInstanceView>, ClientError> {
        self.get_json("/admin/v1/cards", Some(token))
    }

    /// Admin: one SE.
    pub fn admin_se(&self, token: &str, seid: &str) -> Result<SeView, ClientError> {
        self.get_json(&format!("/admin/v1/ses/{}", escape(seid)), Some(token))
    }

    /// Admin: the card instances on an SE.
    pub fn admin_cards(
        &self,
        token: &str,
        seid: &str,
    ) -> Result<Vec<CardInstanceView>, ClientError> {
        self.get_json(
            &format!("/admin/v1/ses/{}/cards", escape(seid)),
            Some(token),
        )
    }

    /// Admin: the flows in `status` (`RUNNING`, …), of one SE or of all.
    pub fn admin_flows(
        &self,
        token: &str,
        status: &str,
        seid: Option<&str>,
    ) -> Result<Vec<FlowView>, ClientError> {
        let mut path = format!("/admin/v1/flows?status={}", escape(status));
        if let Some(seid) = seid {
            path.push_str(&format!("&seid={}", escape(seid)));
        }
        self.get_json(&path, Some(token))
    }

    /// Admin: one flow.
    pub fn admin_flow(&self, token: &str, id: &str) -> Result<FlowView, ClientError> {
        self.get_json(&format!("/admin/v1/flows/{}", escape(id)), Some(token))
    }

    /// Admin: the audit chain's verification.
    pub fn admin_verify_audit(&self, token: &str) -> Result<ChainView, ClientError> {
        self.get_json("/admin/v1/audit/verify", Some(token))
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
