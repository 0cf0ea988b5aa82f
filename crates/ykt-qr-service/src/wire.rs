//! The JSON bodies of the service: the only types here that derive serde. Binary values are
//! lowercase hex; times are Unix seconds; amounts are fen.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// The `msg_type` of an authorisation request (the project's envelope style, tsm-gp.md §7).
pub const AUTHORISATION_REQUEST_TYPE: &str = "QrAuthoriseReq";

/// `POST /v1/authorisations`: what the wallet asks for. On the wire the body also has
/// `"signature"`: hex r ‖ s of the wallet key's SM2-SM3 signature over the canonical JSON of
/// every other member ([`ykt_envelope::jcs`], ID [`crate::PROOF_ID`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorisationRequest {
    /// Always [`AUTHORISATION_REQUEST_TYPE`].
    pub msg_type: String,
    /// The wallet's SM2 public key to authorise (field 10): 33-byte compressed or 65-byte
    /// `04 ‖ X ‖ Y`, hex.
    pub user_public_key: String,
    /// The terms asked for.
    pub terms: RequestedTerms,
    /// When the wallet made the request, Unix seconds.
    pub timestamp: u64,
    /// 8 to 32 random bytes, hex, never used twice.
    pub nonce: String,
}

/// The terms a wallet asks for (as `ykt wallet qr init`'s options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedTerms {
    /// Single-payment limit in fen (field 9).
    pub limit: u32,
    /// How long the authorisation lasts, seconds (field 11 = the service's now + this).
    pub valid_for: u64,
    /// Code validity in seconds (field 12).
    pub validity: u16,
    /// User account (field 5), 10 bytes hex; by default the issuer's org code and digits
    /// from the key's SM3 hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Payment account (field 4), 16 ASCII characters; by default `PAY` and 13 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_account: Option<String>,
    /// Account type (field 8), 1 byte hex.
    pub account_type: String,
    /// Issuer-defined data (field 14), at most 32 bytes hex.
    #[serde(default)]
    pub issuer_data: String,
}

/// 200 answer to `POST /v1/authorisations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorisationResponse {
    /// Fields 1–15 (the blob of §4.1), hex.
    pub authorisation: String,
    /// What was granted.
    pub granted: GrantedTerms,
    /// The terms clamped to the service's caps: any of `limit`, `valid_for`, `validity`.
    pub clamped: Vec<String>,
}

/// The terms in the blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedTerms {
    /// Field 9, fen.
    pub limit: u32,
    /// Seconds from the service's now to field 11.
    pub valid_for: u64,
    /// Field 11, Unix seconds.
    pub authorisation_expiry: u32,
    /// Field 12, seconds.
    pub validity: u16,
    /// Field 5, hex.
    pub account: String,
    /// Field 4, ASCII.
    pub payment_account: String,
    /// Field 8, hex.
    pub account_type: String,
    /// Field 14, hex.
    pub issuer_data: String,
}

/// 200 answer to `GET /v1/parameters`: what a terminal installs (§2.3), as
/// `ykt terminal qr params --from ISSUERDIR` reads it from the issuer's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParametersResponse {
    /// The code version the issuer signs (`80`, `81`, …), hex.
    pub code_version: String,
    /// The issuer certificate (field 3), hex.
    pub issuer_certificate: String,
    /// Parameter 4026.
    pub root_keys: RootKeysTable,
    /// Parameter 4020: the issuer's (org code, platform id) for interoperable codes; empty
    /// for local (`81`) codes, whose org code is in `local_orgs`.
    pub whitelist: WhitelistTable,
    /// Org codes admitted for local codes, hex.
    pub local_orgs: Vec<String>,
    /// Blacklisted user accounts.
    pub blacklist: BlacklistTable,
}

/// The root key table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootKeysTable {
    /// Table version (1: the service publishes one record).
    pub version: u32,
    /// The records.
    pub entries: Vec<RootKeyItem>,
}

/// One root key record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootKeyItem {
    /// The code version the record serves, hex.
    pub version: String,
    /// The 144-byte record, hex.
    pub record: String,
}

/// The whitelist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhitelistTable {
    /// Table version (1 with an entry, 0 without).
    pub version: u32,
    /// The entries; the terminal maps each to its own ticket type.
    pub entries: Vec<WhitelistItem>,
}

/// One whitelisted issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhitelistItem {
    /// Field 6, hex.
    pub org_code: String,
    /// Field 7, hex.
    pub platform_id: String,
}

/// The blacklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistTable {
    /// Table version (0: none published).
    pub version: u32,
    /// User accounts (field 5), hex.
    pub accounts: Vec<String>,
}

/// Every refusal's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code.
    pub code: ErrorCode,
    /// For people; never a secret or a full account number.
    pub message: String,
}

/// The stable codes of refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: not JSON, a missing or unknown member, a wrong type, bad hex, not a key.
    BadRequest,
    /// 401: no bearer token, or not the service's.
    Unauthorised,
    /// 403: the signature is not the requested key's over the canonical body.
    BadSignature,
    /// 403: the timestamp is outside the service's window.
    Stale,
    /// 409: the nonce was used within the window.
    Replayed,
    /// 422: terms the service does not grant at all.
    Policy,
    /// 413: the body is larger than the service reads.
    TooLarge,
    /// 404: no such endpoint.
    NotFound,
    /// 405: the endpoint does not take that method.
    MethodNotAllowed,
    /// 503: the replay cache is full of live nonces; try again later.
    Busy,
    /// 500: the service failed; the log has the details.
    Internal,
}

impl ErrorCode {
    /// The HTTP status the service answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorised => StatusCode::UNAUTHORIZED,
            Self::BadSignature | Self::Stale => StatusCode::FORBIDDEN,
            Self::Replayed => StatusCode::CONFLICT,
            Self::Policy => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code as it is on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorised => "unauthorised",
            Self::BadSignature => "bad_signature",
            Self::Stale => "stale",
            Self::Replayed => "replayed",
            Self::Policy => "policy",
            Self::TooLarge => "too_large",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Busy => "busy",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
