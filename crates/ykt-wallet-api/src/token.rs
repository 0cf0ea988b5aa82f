//! Access tokens for other apps (client.md §6.6 "Tokens"): the claims, their canonical bytes,
//! the HMAC-SM3 that seals them under the install's secret, the text form, and the check.
//!
//! ```text
//!  claims {aud, exp, iat, iss, jti, scope[], sub}
//!     │ canonical JSON (members in that order, no white space, scopes sorted)
//!     ▼
//!  payload ──HMAC-SM3(secret)──► mac (32 bytes)
//!  token text = base64url(payload) "." base64url(mac)      (no padding)
//! ```
//!
//! No I/O and no clock: the time (Unix seconds) is an argument, and so is the `jti`
//! ([`crate::grant`] draws it from the OS).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use hmac::{KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::proposals::{AUDIENCE, ISSUER, MAX_APP_ID_LEN, MAX_TTL_SECS};

type HmacSm3 = hmac::Hmac<sm3::Sm3>;

/// The per-install secret that seals tokens: 32 bytes, zeroized on drop, printed `[redacted]`.
/// Keeping it (encrypted at rest, client.md §6.5) is the caller's business.
#[derive(Clone)]
pub struct Secret(Zeroizing<[u8; Secret::LEN]>);

impl Secret {
    /// The secret's length, bytes.
    pub const LEN: usize = 32;

    /// The secret from its bytes.
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret from a slice of exactly [`Secret::LEN`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: [u8; Self::LEN] = bytes.try_into().ok()?;
        Some(Self::from_bytes(array))
    }

    /// The bytes, for the caller's encrypted store only.
    pub fn expose(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// The bytes to fill in place, so a fresh secret is never copied out of zeroizing memory.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; Self::LEN] {
        &mut self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// What a token lets its holder do (client.md §6.6). Anything not granted is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Scope {
    /// `balance:read`: `GET /v1/cards/{id}/balance`.
    #[serde(rename = "balance:read")]
    BalanceRead,
    /// `cards:read`: `GET /v1/cards`.
    #[serde(rename = "cards:read")]
    CardsRead,
    /// `records:read`: `GET /v1/cards/{id}/records`.
    #[serde(rename = "records:read")]
    RecordsRead,
    /// `topup:initiate`: `POST /v1/topups` (a request the user confirms in the wallet).
    #[serde(rename = "topup:initiate")]
    TopupInitiate,
}

impl Scope {
    /// Every scope, in the order of their names.
    pub const ALL: [Scope; 4] = [
        Scope::BalanceRead,
        Scope::CardsRead,
        Scope::RecordsRead,
        Scope::TopupInitiate,
    ];

    /// The scope's name on the wire and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::BalanceRead => "balance:read",
            Scope::CardsRead => "cards:read",
            Scope::RecordsRead => "records:read",
            Scope::TopupInitiate => "topup:initiate",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not one of [`Scope::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope (known: balance:read, cards:read, records:read, topup:initiate)")]
#[non_exhaustive]
pub struct UnknownScope;

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, UnknownScope> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or(UnknownScope)
    }
}

/// The claims a token carries (client.md §6.6). The members are declared in the order of their
/// names, so serde writes them in canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The audience: [`AUDIENCE`].
    pub aud: String,
    /// Not valid from this time on, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds; not valid before.
    pub iat: u64,
    /// The issuer: [`ISSUER`].
    pub iss: String,
    /// The token's id, for revocation.
    pub jti: String,
    /// What the holder may do; sorted, no repeats.
    pub scope: Vec<Scope>,
    /// The app the token was granted to.
    pub sub: String,
}

impl Claims {
    /// Whether the claims grant `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scope.contains(&scope)
    }

    /// `Ok` when the claims grant `scope`, else [`TokenError::MissingScope`] (deny by default).
    pub fn require(&self, scope: Scope) -> Result<(), TokenError> {
        if self.allows(scope) {
            Ok(())
        } else {
            Err(TokenError::MissingScope(scope))
        }
    }

    /// The canonical bytes the MAC covers: the JSON object with members in name order, no
    /// white space, the scopes sorted and without repeats.
    pub fn canonical(&self) -> Vec<u8> {
        let mut normal = self.clone();
        normal.scope.sort();
        normal.scope.dedup();
        // A struct of strings, integers and unit enums always serialises.
        serde_json::to_vec(&normal).unwrap_or_default()
    }
}

/// Whether `id` is a valid app id or `jti`: 1 to [`MAX_APP_ID_LEN`] characters of
/// `[A-Za-z0-9._-]`, so the canonical JSON never needs an escape.
pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_APP_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A sealed token, as the app presents it (`Authorization: Bearer <token>`). Zeroized on drop,
/// printed `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// The token text, to hand to the app once.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// Why a token was not issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The app id is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error("the app id must be 1 to {MAX_APP_ID_LEN} characters of A-Z a-z 0-9 . _ -")]
    BadAppId,
    /// The `jti` is not a valid id.
    #[error("the token id is not valid")]
    BadJti,
    /// No scope was asked for.
    #[error("a token needs at least one scope")]
    NoScope,
    /// The lifetime is zero.
    #[error("the lifetime must be at least one second")]
    ZeroTtl,
    /// The lifetime is longer than [`MAX_TTL_SECS`].
    #[error("the lifetime must be at most {MAX_TTL_SECS} s")]
    TtlTooLong,
}

/// Why a token was refused. Each case is its own variant; the server answers all of them with
/// the same generic refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not `base64url "." base64url` of canonical claims with a 32-byte MAC.
    #[error("the token is malformed")]
    Malformed,
    /// The MAC is not the install secret's over the payload.
    #[error("the token's MAC does not verify")]
    BadMac,
    /// The issuer is not [`ISSUER`].
    #[error("the token names another issuer")]
    WrongIssuer,
    /// The audience is not [`AUDIENCE`].
    #[error("the token is for another audience")]
    WrongAudience,
    /// The lifetime (`exp − iat`) is longer than [`MAX_TTL_SECS`].
    #[error("the token's lifetime is longer than allowed")]
    LifetimeTooLong,
    /// The time is before `iat`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The time is `exp` or later.
    #[error("the token has expired")]
    Expired,
    /// The token's `jti` was revoked.
    #[error("the token was revoked")]
    Revoked,
    /// The token is valid but does not grant this scope.
    #[error("the token does not grant {0}")]
    MissingScope(Scope),
}

/// Issues a token for `app_id` with `scopes`, valid for `ttl_secs` from `now` (client.md §6.6:
/// TTL ≤ 15 min), with the token id `jti`.
pub fn issue(
    secret: &Secret,
    app_id: &str,
    scopes: &[Scope],
    ttl_secs: u64,
    now: u64,
    jti: &str,
) -> Result<(Token, Claims), IssueError> {
    if !is_valid_id(app_id) {
        return Err(IssueError::BadAppId);
    }
    if !is_valid_id(jti) {
        return Err(IssueError::BadJti);
    }
    if scopes.is_empty() {
        return Err(IssueError::NoScope);
    }
    if ttl_secs == 0 {
        return Err(IssueError::ZeroTtl);
    }
    if ttl_secs > MAX_TTL_SECS {
        return Err(IssueError::TtlTooLong);
    }
    let mut scope = scopes.to_vec();
    scope.sort();
    scope.dedup();
    let claims = Claims {
        aud: AUDIENCE.to_string(),
        exp: now.saturating_add(ttl_secs),
        iat: now,
        iss: ISSUER.to_string(),
        jti: jti.to_string(),
        scope,
        sub: app_id.to_string(),
    };
    Ok((seal(secret, &claims), claims))
}

/// HMAC-SM3 (RFC 2104 with GB/T 32905 SM3) of `data` under `key`: the MAC that seals tokens.
pub fn hmac_sm3(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length (a long one is hashed first), so this never fails.
    let Ok(mut mac) = HmacSm3::new_from_slice(key) else {
        unreachable_key_length()
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_key_length() -> ! {
    // `Hmac::new_from_slice` refuses no key length; reaching this is a bug in `hmac`.
    std::process::abort()
}

fn mac(secret: &Secret, payload: &[u8]) -> [u8; 32] {
    hmac_sm3(secret.expose(), payload)
}

fn seal(secret: &Secret, claims: &Claims) -> Token {
    let payload = claims.canonical();
    let tag = mac(secret, &payload);
    Token(Zeroizing::new(text::encode(&payload, &tag)))
}

/// The revoked token ids, each with the expiry of its token so the list can be pruned once the
/// token would be refused anyway. Serialisable for the caller's store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocations {
    revoked: BTreeMap<String, u64>,
}

impl Revocations {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Revokes `jti`, whose token expires at `exp`.
    pub fn revoke(&mut self, jti: &str, exp: u64) {
        let entry = self.revoked.entry(jti.to_string()).or_insert(exp);
        *entry = (*entry).max(exp);
    }

    /// Whether `jti` is revoked.
    pub fn contains(&self, jti: &str) -> bool {
        self.revoked.contains_key(jti)
    }

    /// Forgets the ids whose tokens have expired by `now` (they are refused as expired).
    pub fn prune(&mut self, now: u64) {
        self.revoked.retain(|_, exp| *exp > now);
    }

    /// The number of ids on the list.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }
}

/// Checks tokens against the install secret and the revocation list.
#[derive(Debug, Clone)]
pub struct Verifier {
    secret: Secret,
    revocations: Revocations,
}

impl Verifier {
    /// A verifier for tokens sealed under `secret`, refusing the ids in `revocations`.
    pub fn new(secret: Secret, revocations: Revocations) -> Self {
        Self {
            secret,
            revocations,
        }
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The revocation list.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Revokes `jti` (its token expiring at `exp`) from now on.
    pub fn revoke(&mut self, jti: &str, exp: u64) {
        self.revocations.revoke(jti, exp);
    }

    /// Checks the token `text` at `now` (Unix seconds): format, MAC (in constant time), issuer,
    /// audience, lifetime, validity period and revocation, in that order (client.md §6.6).
    pub fn check(&self, text: &[u8], now: u64) -> Result<Claims, TokenError> {
        let (payload, tag) = text::decode(text).ok_or(TokenError::Malformed)?;
        let expected = mac(&self.secret, &payload);
        if !bool::from(expected.ct_eq(&tag)) {
            return Err(TokenError::BadMac);
        }
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.canonical() != payload
            || !is_valid_id(&claims.sub)
            || !is_valid_id(&claims.jti)
            || claims.scope.is_empty()
            || claims.exp <= claims.iat
        {
            return Err(TokenError::Malformed);
        }
        if claims.iss != ISSUER {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != AUDIENCE {
            return Err(TokenError::WrongAudience);
        }
        if claims.exp - claims.iat > MAX_TTL_SECS {
            return Err(TokenError::LifetimeTooLong);
        }
        if now < claims.iat {
            return Err(TokenError::NotYetValid);
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        if self.revocations.contains(&claims.jti) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// [`Verifier::check`], then that the token grants `scope` (deny by default).
    pub fn authorise(&self, text: &[u8], scope: Scope, now: u64) -> Result<Claims, TokenError> {
        let claims = self.check(text, now)?;
        claims.require(scope)?;
        Ok(claims)
    }
}

/// The token text: the one place that knows it is base64url without padding.
mod text {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// The longest token text read, bytes.
    const MAX_LEN: usize = 4096;

    pub(super) fn encode(payload: &[u8], mac: &[u8; 32]) -> String {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// The payload and MAC, or `None`. The engine refuses padding and non-zero trailing bits,
    /// so each byte string has exactly one text.
    pub(super) fn decode(text: &[u8]) -> Option<(Vec<u8>, [u8; 32])> {
        if text.len() > MAX_LEN {
            return None;
        }
        let dot = text.iter().position(|&b| b == b'.')?;
        let (payload, rest) = text.split_at(dot);
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(rest.get(1..)?).ok()?;
        Some((payload, mac.try_into().ok()?))
    }
}

/// Sealing without the issue checks, for tests of the check side.
#[doc(hidden)]
pub mod danger {
    use super::{Claims, Secret, Token};

    /// Seals `claims` as they are (any audience, lifetime or scopes), so tests can make the
    /// tokens a check must refuse.
    pub fn seal_unchecked(secret: &Secret, claims: &Claims) -> Token {
        super::seal(secret, claims)
    }
}
