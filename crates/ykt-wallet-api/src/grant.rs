//! Grants as the user makes them (client.md §6.6: `wallet api grant <app_id> --scope … --ttl
//! 5m`): [`issue`] one token, and a [`GrantBook`] that lists the grants and revokes them.
//! Persisting the secret and the book is the caller's business: [`GrantBook`] and
//! [`Revocations`] are serialisable, [`Secret::expose`] gives the bytes for an encrypted store.

use serde::{Deserialize, Serialize};

use crate::proposals::JTI_LEN;
use crate::token::{self, Claims, IssueError, Revocations, Scope, Secret, Token};

/// Why a grant failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// The request was not valid (app id, scopes, lifetime).
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// The OS random source failed.
    #[error("the OS random source failed")]
    Random(#[source] getrandom::Error),
    /// No grant has that id.
    #[error("no grant has that id")]
    UnknownGrant,
}

/// A new per-install secret from the OS random source.
pub fn new_secret() -> Result<Secret, GrantError> {
    let mut secret = Secret::from_bytes([0u8; Secret::LEN]);
    getrandom::fill(secret.bytes_mut()).map_err(GrantError::Random)?;
    Ok(secret)
}

fn new_jti() -> Result<String, GrantError> {
    let mut bytes = [0u8; JTI_LEN];
    getrandom::fill(&mut bytes).map_err(GrantError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What a grant was: everything but the token itself, which is handed to the app once and
/// never kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// The token's id.
    pub jti: String,
    /// The app.
    pub sub: String,
    /// The scopes granted.
    pub scope: Vec<Scope>,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}

impl From<&Claims> for GrantRecord {
    fn from(claims: &Claims) -> Self {
        Self {
            jti: claims.jti.clone(),
            sub: claims.sub.clone(),
            scope: claims.scope.clone(),
            iat: claims.iat,
            exp: claims.exp,
        }
    }
}

/// A token just issued, and its record.
#[derive(Debug, Clone)]
pub struct IssuedGrant {
    /// The token, for the app.
    pub token: Token,
    /// The record, for the book.
    pub record: GrantRecord,
}

/// Issues a token for `app_id` with `scopes` for `ttl_secs` (at most
/// [`crate::proposals::MAX_TTL_SECS`]) from `now`, with a fresh random `jti`.
pub fn issue(
    secret: &Secret,
    app_id: &str,
    scopes: &[Scope],
    ttl_secs: u64,
    now: u64,
) -> Result<IssuedGrant, GrantError> {
    let jti = new_jti()?;
    let (token, claims) = token::issue(secret, app_id, scopes, ttl_secs, now, &jti)?;
    Ok(IssuedGrant {
        token,
        record: GrantRecord::from(&claims),
    })
}

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GrantState {
    /// Its token is taken.
    Active,
    /// Its token has expired.
    Expired,
    /// Its token was revoked.
    Revoked,
}

/// A grant and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantStatus {
    /// The grant.
    pub grant: GrantRecord,
    /// Where it stands at the time asked.
    pub state: GrantState,
}

/// The grants of an install and their revocations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantBook {
    grants: Vec<GrantRecord>,
    revocations: Revocations,
}

impl GrantBook {
    /// No grants.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`issue`]s a token and records the grant.
    pub fn issue(
        &mut self,
        secret: &Secret,
        app_id: &str,
        scopes: &[Scope],
        ttl_secs: u64,
        now: u64,
    ) -> Result<Token, GrantError> {
        let issued = issue(secret, app_id, scopes, ttl_secs, now)?;
        self.grants.push(issued.record);
        Ok(issued.token)
    }

    /// Revokes the grant with id `jti`. Revoking twice is not an error.
    pub fn revoke(&mut self, jti: &str) -> Result<GrantRecord, GrantError> {
        let grant = self
            .grants
            .iter()
            .find(|g| g.jti == jti)
            .ok_or(GrantError::UnknownGrant)?
            .clone();
        self.revocations.revoke(&grant.jti, grant.exp);
        Ok(grant)
    }

    /// Revokes every grant of `app_id`; gives how many there were.
    pub fn revoke_app(&mut self, app_id: &str) -> usize {
        let mut n = 0;
        for grant in self.grants.iter().filter(|g| g.sub == app_id) {
            self.revocations.revoke(&grant.jti, grant.exp);
            n += 1;
        }
        n
    }

    /// Every grant and where it stands at `now`, oldest first.
    pub fn list(&self, now: u64) -> Vec<GrantStatus> {
        self.grants
            .iter()
            .map(|grant| GrantStatus {
                grant: grant.clone(),
                state: if self.revocations.contains(&grant.jti) {
                    GrantState::Revoked
                } else if now >= grant.exp {
                    GrantState::Expired
                } else {
                    GrantState::Active
                },
            })
            .collect()
    }

    /// The revocation list, for the server's [`token::Verifier`].
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Forgets grants and revocations whose tokens expired by `now`.
    pub fn prune(&mut self, now: u64) {
        self.grants.retain(|g| g.exp > now);
        self.revocations.prune(now);
    }
}
