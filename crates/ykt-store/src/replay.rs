//! The replay guard for signed messages.
//!
//! A signed envelope carries a sender, a message id (or nonce) and a timestamp. Inside the
//! window (`now ± window`) the guard remembers every id it accepted, and a second one is
//! [`Error::Replayed`]; outside it a message is [`Error::Stale`], since its record may have been
//! purged. Purging records older than the window therefore loses nothing.

use crate::Store;
use crate::error::{Error, is_unique_violation};

impl Store {
    /// Accepts the message `message_id` from `sender`, signed at `sent_ms` (Unix ms), once:
    /// [`Error::Stale`] if `sent_ms` is further than `window_ms` from the store's clock,
    /// [`Error::Replayed`] if it was accepted before.
    ///
    /// Call it after the signature has been verified, so that forged messages cannot fill it.
    pub async fn accept_message(
        &self,
        sender: &str,
        message_id: &str,
        sent_ms: i64,
        window_ms: i64,
    ) -> Result<(), Error> {
        let now = self.now();
        if now.abs_diff(sent_ms) > window_ms.unsigned_abs() {
            return Err(Error::Stale {
                sender: sender.to_string(),
                message_id: message_id.to_string(),
            });
        }
        let inserted = sqlx::query(
            "INSERT INTO seen_message (sender, message_id, sent_ms, seen_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(sender)
        .bind(message_id)
        .bind(sent_ms)
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Replayed {
                sender: sender.to_string(),
                message_id: message_id.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Forgets the messages signed more than `window_ms` before the store's clock (they would be
    /// [`Error::Stale`] anyway); returns how many.
    pub async fn purge_messages(&self, window_ms: i64) -> Result<u64, Error> {
        let cutoff = self.now().saturating_sub(window_ms.saturating_abs());
        let done = sqlx::query("DELETE FROM seen_message WHERE sent_ms < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
