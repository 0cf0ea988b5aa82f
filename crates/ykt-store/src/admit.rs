//! One write transaction for a signed request's replay guard and idempotency claim.
//!
//! A state-changing signed request passes the replay guard ([`Store::accept_message`]) and then
//! claims its idempotency key ([`Store::begin_request`]). [`Store::admit_request`] does both in
//! one transaction with the same outcomes, so a request pays one commit for them, not two.

use crate::Store;
use crate::error::{Entity, Error, is_unique_violation};
use crate::idempotency::{Begun, RequestHash, duplicate};

impl Store {
    /// The replay guard and the idempotency claim of one signed request, in one transaction:
    /// exactly [`Store::accept_message`]`(scope, nonce, sent_ms, window_ms)` followed, if it
    /// succeeded, by [`Store::begin_request`]`(scope, request_id, hash)`.
    ///
    /// * [`Error::Stale`] if `sent_ms` is further than `window_ms` from the store's clock, and
    ///   [`Error::Replayed`] if the nonce was accepted before (whatever the request id): nothing
    ///   is written;
    /// * [`Begun::New`]: the nonce is recorded and the key claimed; do the work, then
    ///   [`Store::complete_request`] (or [`Store::abandon_request`]);
    /// * [`Begun::Stored`], [`Error::Duplicate`] and [`Error::InProgress`], as
    ///   [`Store::begin_request`] gives them: the nonce **is** recorded (it was spent, as with the
    ///   two calls), the claim is not touched;
    /// * any other error (the database failing): neither the nonce nor the claim is written.
    ///
    /// A caller that releases an orphaned claim after [`Error::InProgress`] retries the claim
    /// alone with [`Store::begin_request`]: the nonce is already spent.
    pub async fn admit_request(
        &self,
        scope: &str,
        nonce: &str,
        sent_ms: i64,
        window_ms: i64,
        request_id: &str,
        hash: &RequestHash,
    ) -> Result<Begun, Error> {
        let now = self.now();
        if now.abs_diff(sent_ms) > window_ms.unsigned_abs() {
            return Err(Error::Stale {
                sender: scope.to_string(),
                message_id: nonce.to_string(),
            });
        }
        let replayed = || Error::Replayed {
            sender: scope.to_string(),
            message_id: nonce.to_string(),
        };
        let mut tx = self.begin_write().await?;
        // ON CONFLICT DO NOTHING rather than a caught unique violation: on PostgreSQL a failed
        // statement aborts the whole transaction.
        let seen = sqlx::query(
            "INSERT INTO seen_message (sender, message_id, sent_ms, seen_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(scope)
        .bind(nonce)
        .bind(sent_ms)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match seen {
            Ok(done) if done.rows_affected() == 1 => {}
            Ok(_) => return Err(replayed()),
            Err(e) if is_unique_violation(&e) => return Err(replayed()),
            Err(e) => return Err(e.into()),
        }
        self.checkpoint("admit.after_nonce").await?;
        let claimed = sqlx::query(
            "INSERT INTO idempotency (scope, request_id, request_hash, response, created_ms, \
             completed_ms) VALUES ($1, $2, $3, NULL, $4, NULL) ON CONFLICT DO NOTHING",
        )
        .bind(scope)
        .bind(request_id)
        .bind(hash.hex())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let outcome = if claimed.rows_affected() == 1 {
            Ok(Begun::New)
        } else {
            let (stored_hash, response): (String, Option<String>) = sqlx::query_as(
                "SELECT request_hash, response FROM idempotency \
                 WHERE scope = $1 AND request_id = $2",
            )
            .bind(scope)
            .bind(request_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Request, format!("{scope}/{request_id}")))?;
            if stored_hash != hash.hex() {
                Err(duplicate(scope, request_id))
            } else {
                match response {
                    Some(response) => Ok(Begun::Stored(response)),
                    None => Err(Error::InProgress {
                        scope: scope.to_string(),
                        request_id: request_id.to_string(),
                    }),
                }
            }
        };
        self.checkpoint("admit.before_commit").await?;
        tx.commit().await?;
        outcome
    }
}
