//! Idempotency records (tsm-gp.md §7 `request_id`).
//!
//! A state-changing call first claims its key ([`Store::begin_request`]), does its work, then
//! stores its response ([`Store::complete_request`]). A repeat with the same body gets the stored
//! response; the same key with another body is [`Error::Duplicate`]; a repeat while the first is
//! still running is [`Error::InProgress`]. A call that fails before changing anything releases its
//! claim ([`Store::abandon_request`]) so the client may retry. A flow move may store the
//! response in its own transaction instead ([`crate::StepCommit::request`]).

use crate::Store;
use crate::error::{Entity, Error, is_unique_violation};

/// The SM3 hash of a request's canonical body (the §7 envelope in JCS form without `sign`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestHash(pub [u8; 32]);

impl RequestHash {
    /// The hash of `canonical_body`.
    pub fn of(canonical_body: &[u8]) -> Self {
        RequestHash(ykt_crypto::sm3(canonical_body))
    }

    pub(crate) fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// A claimed request's completion written in the same transaction as the flow move it made
/// ([`crate::StepCommit::request`]): the move and the stored response are durable together, so
/// a retry after a crash finds the response, never a claim left in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestCompletion {
    /// The claim's scope (as given to [`Store::begin_request`]).
    pub scope: String,
    /// The request id.
    pub request_id: String,
    /// The claimed body's hash.
    pub hash: RequestHash,
    /// The response to store.
    pub response: String,
}

/// The outcome of claiming an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Begun {
    /// The key is new and now claimed: do the work, then [`Store::complete_request`].
    New,
    /// The same request was completed before: answer with this stored response, do nothing.
    Stored(String),
}

impl Store {
    /// Claims `request_id` (scoped by `scope`, typically the sender id) for a request whose
    /// canonical body hashes to `hash`.
    pub async fn begin_request(
        &self,
        scope: &str,
        request_id: &str,
        hash: &RequestHash,
    ) -> Result<Begun, Error> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency (scope, request_id, request_hash, response, created_ms, \
             completed_ms) VALUES ($1, $2, $3, NULL, $4, NULL)",
        )
        .bind(scope)
        .bind(request_id)
        .bind(hash.hex())
        .bind(self.now())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(Begun::New),
            Err(e) if is_unique_violation(&e) => {
                let (stored_hash, response) = self.request(scope, request_id).await?;
                if stored_hash != hash.hex() {
                    return Err(duplicate(scope, request_id));
                }
                match response {
                    Some(response) => Ok(Begun::Stored(response)),
                    None => Err(Error::InProgress {
                        scope: scope.to_string(),
                        request_id: request_id.to_string(),
                    }),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the response of a claimed request. Completing it again with the same response is a
    /// no-op; with another, [`Error::Conflict`]. [`Error::NotFound`] if it was never claimed,
    /// [`Error::Duplicate`] if `hash` is not the claimed body's.
    pub async fn complete_request(
        &self,
        scope: &str,
        request_id: &str,
        hash: &RequestHash,
        response: &str,
    ) -> Result<(), Error> {
        let done = sqlx::query(
            "UPDATE idempotency SET response = $1, completed_ms = $2 \
             WHERE scope = $3 AND request_id = $4 AND request_hash = $5 AND response IS NULL",
        )
        .bind(response)
        .bind(self.now())
        .bind(scope)
        .bind(request_id)
        .bind(hash.hex())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let (stored_hash, stored) = self.request(scope, request_id).await?;
        completion_outcome(scope, request_id, hash, &stored_hash, stored, response)
    }

    /// [`Store::complete_request`] inside a write transaction. Nothing is written (and the caller's
    /// transaction must be rolled back) on an error.
    pub(crate) async fn complete_request_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        done: &RequestCompletion,
    ) -> Result<(), Error> {
        let (scope, request_id) = (done.scope.as_str(), done.request_id.as_str());
        let updated = sqlx::query(
            "UPDATE idempotency SET response = $1, completed_ms = $2 \
             WHERE scope = $3 AND request_id = $4 AND request_hash = $5 AND response IS NULL",
        )
        .bind(&done.response)
        .bind(self.now())
        .bind(scope)
        .bind(request_id)
        .bind(done.hash.hex())
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 1 {
            return Ok(());
        }
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT request_hash, response FROM idempotency WHERE scope = $1 AND request_id = $2",
        )
        .bind(scope)
        .bind(request_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((stored_hash, stored)) = row else {
            return Err(Error::not_found(
                Entity::Request,
                format!("{scope}/{request_id}"),
            ));
        };
        completion_outcome(
            scope,
            request_id,
            &done.hash,
            &stored_hash,
            stored,
            &done.response,
        )
    }

    /// Releases the claim on a request that failed before changing anything, so that the client
    /// may retry it. A completed request stays (its response is final).
    pub async fn abandon_request(
        &self,
        scope: &str,
        request_id: &str,
        hash: &RequestHash,
    ) -> Result<(), Error> {
        sqlx::query(
            "DELETE FROM idempotency WHERE scope = $1 AND request_id = $2 \
             AND request_hash = $3 AND response IS NULL",
        )
        .bind(scope)
        .bind(request_id)
        .bind(hash.hex())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes idempotency records created before `before_ms` (Unix ms); returns how many.
    pub async fn purge_requests(&self, before_ms: i64) -> Result<u64, Error> {
        let done = sqlx::query("DELETE FROM idempotency WHERE created_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn request(
        &self,
        scope: &str,
        request_id: &str,
    ) -> Result<(String, Option<String>), Error> {
        sqlx::query_as(
            "SELECT request_hash, response FROM idempotency WHERE scope = $1 AND request_id = $2",
        )
        .bind(scope)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found(Entity::Request, format!("{scope}/{request_id}")))
    }
}

/// A completion that updated nothing: the same response stored before is a no-op, anything else
/// an error.
fn completion_outcome(
    scope: &str,
    request_id: &str,
    hash: &RequestHash,
    stored_hash: &str,
    stored: Option<String>,
    response: &str,
) -> Result<(), Error> {
    if stored_hash != hash.hex() {
        return Err(duplicate(scope, request_id));
    }
    match stored {
        Some(stored) if stored == response => Ok(()),
        _ => Err(Error::Conflict {
            what: Entity::Request,
            id: format!("{scope}/{request_id}"),
            expected: "no response yet".into(),
            found: "another response".into(),
        }),
    }
}

pub(crate) fn duplicate(scope: &str, request_id: &str) -> Error {
    Error::Duplicate {
        scope: scope.to_string(),
        request_id: request_id.to_string(),
    }
}
