//! The tamper-evident audit log: every key use, card write and operator action.
//!
//! Rows are append-only and numbered from 1. Row `n` stores
//! `hash_n = SM3(hash_{n-1} ‖ canonical_n)`, with `hash_0` 32 zero bytes and
//!
//! ```text
//! canonical_n = "ykt-audit-1" 00 ‖ seq (u64 BE) ‖ at_ms (i64 BE)
//!             ‖ for kind, actor, subject, detail: length (u64 BE) ‖ UTF-8 bytes
//! ```
//!
//! The head row (`audit_head`) holds the last sequence number and hash; appends serialise on it.
//! [`Store::verify_chain`] recomputes the chain and names the first row that was changed, removed
//! or inserted behind the store's back, and a removed tail (head ahead of the last row). Someone
//! able to rewrite the whole table *and* the head can recompute the chain: publish
//! [`Store::audit_head`] elsewhere (a signed daily anchor) to catch that too.
//!
//! No key value belongs in a record: name keys by identifier, version and check value.

use sqlx::Row as _;

use crate::error::{Entity, Error};
use crate::{Store, signed, text_enum, unhex, unsigned};

text_enum! {
    /// What an audit record is about.
    pub enum AuditKind: Entity::AuditRecord {
        /// A key was used (MAC2, session keys, key wrapping, token signing).
        KeyUse = "KEY_USE",
        /// A script that writes the card was released (INSTALL, PUT KEY, STORE DATA, credit).
        CardWrite = "CARD_WRITE",
        /// An operator did something (block an SE, rotate a key, refund by hand).
        OperatorAction = "OPERATOR_ACTION",
        /// A card instance, SE, flow or order changed state (tsm-gp.md §8).
        StateChange = "STATE_CHANGE",
        /// Money moved or was promised: an order paid or loaded, a refund, an escrow.
        Payment = "PAYMENT",
    }
}

/// An event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// The kind of event.
    pub kind: AuditKind,
    /// Who acted (service, operator id).
    pub actor: String,
    /// What was acted on (SEID, card number, key id).
    pub subject: String,
    /// Details (free text or JSON), never a key value.
    pub detail: String,
}

/// A stored audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRecord {
    /// Its sequence number, from 1.
    pub seq: u64,
    /// When it was appended (Unix ms).
    pub at_ms: i64,
    /// The event.
    pub event: AuditEvent,
    /// The previous record's hash (zeros for the first).
    pub prev_hash: [u8; 32],
    /// SM3(prev_hash ‖ canonical bytes).
    pub hash: [u8; 32],
}

/// Why verification stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakReason {
    /// The row's content does not hash to its stored hash (changed in place).
    HashMismatch,
    /// The row's previous-hash is not the previous row's hash (a row before it was replaced).
    LinkMismatch,
    /// The row's sequence number is not the next one (a row before it was removed, or one was
    /// inserted).
    Gap {
        /// The sequence number expected here.
        expected: u64,
    },
    /// The head does not match the last row (rows at the end were removed, or the head changed).
    HeadMismatch {
        /// The sequence number of the last row present (0: none).
        last_row: u64,
    },
}

/// The first broken place in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// The sequence number of the first row that does not verify (for
    /// [`BreakReason::HeadMismatch`], the head's).
    pub seq: u64,
    /// Why.
    pub reason: BreakReason,
}

/// The result of [`Store::verify_chain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainStatus {
    /// Every row verifies and the head matches the last.
    Intact {
        /// The number of rows.
        rows: u64,
        /// The last hash (zeros for an empty log).
        head: [u8; 32],
    },
    /// The first break.
    Broken(ChainBreak),
}

const GENESIS: [u8; 32] = [0; 32];
const DOMAIN: &[u8] = b"ykt-audit-1\0";
const PAGE: i64 = 500;

/// The canonical bytes of a row (see the module docs).
fn canonical(seq: u64, at_ms: i64, event: &AuditEvent) -> Vec<u8> {
    let fields = [
        event.kind.as_str(),
        event.actor.as_str(),
        event.subject.as_str(),
        event.detail.as_str(),
    ];
    let mut out =
        Vec::with_capacity(DOMAIN.len() + 16 + fields.iter().map(|f| 8 + f.len()).sum::<usize>());
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&at_ms.to_be_bytes());
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// `SM3(prev ‖ canonical)`.
fn chain_hash(prev: &[u8; 32], seq: u64, at_ms: i64, event: &AuditEvent) -> [u8; 32] {
    let mut hasher = ykt_crypto::Sm3::new();
    hasher.update(prev);
    hasher.update(&canonical(seq, at_ms, event));
    hasher.finalize()
}

fn hash32(text: &str) -> Result<[u8; 32], Error> {
    let bytes = unhex(Entity::AuditRecord, text)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Error::Corrupt {
        what: Entity::AuditRecord,
        detail: format!("hash of {} bytes", bytes.len()),
    })
}

impl Store {
    /// Appends an event and returns its record; one transaction (head, row, head).
    pub async fn append_audit(&self, event: &AuditEvent) -> Result<AuditRecord, Error> {
        let mut tx = self.begin_write().await?;
        let record = self.append_audit_in(&mut tx, event).await?;
        tx.commit().await?;
        tracing::debug!(
            seq = record.seq,
            kind = event.kind.as_str(),
            "audit record appended"
        );
        Ok(record)
    }

    /// Appends events in order, all in one transaction (a writer that queues events, such as
    /// the KMS's key-use log, pays one commit per batch): every one or, on failure, none.
    pub async fn append_audit_batch(
        &self,
        events: &[AuditEvent],
    ) -> Result<Vec<AuditRecord>, Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            records.push(self.append_audit_in(&mut tx, event).await?);
        }
        tx.commit().await?;
        tracing::debug!(
            first = records.first().map_or(0, |r| r.seq),
            rows = records.len(),
            "audit records appended"
        );
        Ok(records)
    }

    /// Appends an event inside the caller's write transaction (head, row, head).
    pub(crate) async fn append_audit_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        event: &AuditEvent,
    ) -> Result<AuditRecord, Error> {
        let at_ms = self.now();
        let (seq, prev): (i64, String) =
            sqlx::query_as("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
                .fetch_one(&mut **tx)
                .await?;
        let seq = unsigned(Entity::AuditRecord, seq)?;
        let prev_hash = hash32(&prev)?;
        self.checkpoint("audit.after_head").await?;
        let hash = chain_hash(&prev_hash, seq, at_ms, event);
        sqlx::query(
            "INSERT INTO audit_log (seq, at_ms, kind, actor, subject, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(signed(seq)?)
        .bind(at_ms)
        .bind(event.kind.as_str())
        .bind(&event.actor)
        .bind(&event.subject)
        .bind(&event.detail)
        .bind(hex::encode(prev_hash))
        .bind(hex::encode(hash))
        .execute(&mut **tx)
        .await?;
        self.checkpoint("audit.after_insert").await?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
            .bind(hex::encode(hash))
            .execute(&mut **tx)
            .await?;
        Ok(AuditRecord {
            seq,
            at_ms,
            event: event.clone(),
            prev_hash,
            hash,
        })
    }

    /// The head of the chain: the last sequence number (0: empty) and its hash.
    pub async fn audit_head(&self) -> Result<(u64, [u8; 32]), Error> {
        let (seq, hash): (i64, String) =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok((unsigned(Entity::AuditRecord, seq)?, hash32(&hash)?))
    }

    /// Up to `limit` records from sequence number `from_seq` on, in order.
    pub async fn audit_records(
        &self,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, Error> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, kind, actor, subject, detail, prev_hash, hash FROM audit_log \
             WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(signed(from_seq)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    seq: unsigned(Entity::AuditRecord, row.try_get("seq")?)?,
                    at_ms: row.try_get("at_ms")?,
                    event: AuditEvent {
                        kind: AuditKind::parse(&row.try_get::<String, _>("kind")?)?,
                        actor: row.try_get("actor")?,
                        subject: row.try_get("subject")?,
                        detail: row.try_get("detail")?,
                    },
                    prev_hash: hash32(&row.try_get::<String, _>("prev_hash")?)?,
                    hash: hash32(&row.try_get::<String, _>("hash")?)?,
                })
            })
            .collect()
    }

    /// Recomputes the whole chain and compares it with the head; reports the first break.
    ///
    /// A row whose stored values cannot even be read (unknown kind, bad hex) counts as a
    /// [`BreakReason::HashMismatch`] at that row.
    pub async fn verify_chain(&self) -> Result<ChainStatus, Error> {
        let mut running = GENESIS;
        let mut last = 0u64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, at_ms, kind, actor, subject, detail, prev_hash, hash FROM audit_log \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(signed(last)?)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let seq_raw: i64 = row.try_get("seq")?;
                let expected = last + 1;
                let Ok(seq) = u64::try_from(seq_raw) else {
                    return Ok(broken(expected, BreakReason::Gap { expected }));
                };
                if seq != expected {
                    return Ok(broken(seq, BreakReason::Gap { expected }));
                }
                let Ok((event, prev_hash, hash)) = read_row(row) else {
                    return Ok(broken(seq, BreakReason::HashMismatch));
                };
                if prev_hash != running {
                    return Ok(broken(seq, BreakReason::LinkMismatch));
                }
                let at_ms: i64 = row.try_get("at_ms")?;
                if chain_hash(&prev_hash, seq, at_ms, &event) != hash {
                    return Ok(broken(seq, BreakReason::HashMismatch));
                }
                running = hash;
                last = seq;
            }
        }
        let (head_seq, head_hash) = match self.audit_head().await {
            Ok(head) => head,
            Err(Error::Corrupt { .. }) => (u64::MAX, GENESIS),
            Err(e) => return Err(e),
        };
        if head_seq != last || head_hash != running {
            return Ok(broken(
                head_seq,
                BreakReason::HeadMismatch { last_row: last },
            ));
        }
        Ok(ChainStatus::Intact {
            rows: last,
            head: running,
        })
    }
}

fn broken(seq: u64, reason: BreakReason) -> ChainStatus {
    ChainStatus::Broken(ChainBreak { seq, reason })
}

fn read_row(row: &sqlx::any::AnyRow) -> Result<(AuditEvent, [u8; 32], [u8; 32]), Error> {
    Ok((
        AuditEvent {
            kind: AuditKind::parse(&row.try_get::<String, _>("kind")?)?,
            actor: row.try_get("actor")?,
            subject: row.try_get("subject")?,
            detail: row.try_get("detail")?,
        },
        hash32(&row.try_get::<String, _>("prev_hash")?)?,
        hash32(&row.try_get::<String, _>("hash")?)?,
    ))
}
