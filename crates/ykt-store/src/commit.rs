//! One flow move with everything it implies, in one transaction (`Store::commit_step`): the
//! flow row (created, or moved by compare-and-set), the SE, the card instances, the top-up
//! order, refunds and escrows, and the audit records. A process killed in the middle leaves
//! the state before the move or the state after it; a flow moved by someone else first leaves
//! nothing written ([`Error::Conflict`]).

use std::collections::BTreeMap;

use sqlx::Row as _;

use crate::audit::AuditEvent;
use crate::card::CardState;
use crate::error::{Entity, Error, is_foreign_key_violation, is_unique_violation};
use crate::flow::{Flow, FlowUpdate, NewFlow};
use crate::idempotency::RequestCompletion;
use crate::se::SeState;
use crate::topup::TopupState;
use crate::{Store, hex_opt, signed, unsigned};

/// The flow row of a move.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FlowWrite {
    /// A new flow of `device_id`, created at version 1 and moved to `update` (version 2).
    Create {
        /// The flow to create.
        flow: NewFlow,
        /// The device that started it.
        device_id: String,
        /// Its state after its first move.
        update: FlowUpdate,
    },
    /// A move of flow `id` from `from_version`.
    Advance {
        /// The flow id.
        id: String,
        /// The version the move starts from.
        from_version: u64,
        /// The new state.
        update: FlowUpdate,
        /// The SE the flow learned (registration), if it did.
        seid: Option<String>,
    },
}

impl FlowWrite {
    fn id(&self) -> &str {
        match self {
            Self::Create { flow, .. } => &flow.id,
            Self::Advance { id, .. } => id,
        }
    }
}

/// An SE seen or moved by the flow: registered if new, moved forward along §8 if not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeWrite {
    /// The SEID.
    pub seid: String,
    /// The CPLC as read (or empty).
    pub cplc: Vec<u8>,
    /// The profile name.
    pub profile: String,
    /// Its state after the move (only ever moves forward).
    pub state: SeState,
}

/// A card instance as the flow leaves it (created if new).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardWrite {
    /// The SE.
    pub seid: String,
    /// The card number.
    pub card_no: String,
    /// Its state.
    pub state: CardState,
    /// The SSD's AID.
    pub ssd_aid: Option<Vec<u8>>,
    /// The applet's AID.
    pub app_aid: Option<Vec<u8>>,
    /// How the SSD is managed.
    pub management: Option<String>,
    /// The device that holds it.
    pub device_id: String,
    /// True while the flow keeps working on it (no other flow may move it); false releases it.
    pub hold: bool,
    /// Key versions now fixed (versions only, never keys).
    pub key_versions: BTreeMap<String, u8>,
}

/// What the move does to a top-up order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopupWrite {
    /// The order.
    pub order_id: String,
    /// Claim the (paid) order for this flow: it fails with [`Error::Conflict`] if another flow
    /// claimed it or it is not paid.
    pub claim: bool,
    /// The state to move to (from any state that allows it; the same state changes nothing).
    pub state: Option<TopupState>,
    /// The card's online counter of the load.
    pub online_counter: Option<u16>,
    /// The TAC.
    pub tac: Option<Vec<u8>>,
    /// The balance after the load.
    pub new_balance: Option<u64>,
    /// With `state: Some(CANCELLED)`: the refund of the payment, paid in the same transaction
    /// (required there). The order is cancelled only from `PAID` and only when this flow
    /// claimed it ([`Error::Conflict`] otherwise); the refund row carries the order's own card
    /// and amount.
    pub refund: Option<CancelRefund>,
}

/// The refund that goes with cancelling a paid order ([`TopupWrite::refund`]): where the
/// payment goes back to. Card and amount are the order's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelRefund {
    /// The refund id (idempotent: a refund under this id already paid is kept as it is).
    pub refund_id: String,
    /// Where the payment goes back to (the payer's account or payment order).
    pub account: String,
}

/// A refund paid (idempotent by id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundWrite {
    /// The refund id.
    pub refund_id: String,
    /// The card.
    pub card_no: String,
    /// Fen.
    pub amount_fen: u64,
    /// Where it goes.
    pub account: String,
}

/// What the move does to an escrow.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EscrowWrite {
    /// Hold `amount_fen` of `card_no` for `transfer_id` (idempotent by id).
    Hold {
        /// The transfer id.
        transfer_id: String,
        /// The card.
        card_no: String,
        /// Fen.
        amount_fen: u64,
    },
    /// Claim the escrow for this flow (one transfer-in flow per escrow).
    Claim {
        /// The transfer id.
        transfer_id: String,
    },
    /// The balance is on the new card: settled.
    Settle {
        /// The transfer id.
        transfer_id: String,
    },
    /// Give the escrow up for this flow: `claimed_by` is cleared, so a new transfer-in flow may
    /// claim the balance. Only when this flow claimed it and it is not settled
    /// ([`Error::Conflict`] otherwise: the balance may be on a card).
    Release {
        /// The transfer id.
        transfer_id: String,
    },
}

/// One flow move and its effects.
#[derive(Clone, Debug, PartialEq)]
pub struct StepCommit {
    /// The flow row.
    pub flow: FlowWrite,
    /// The SE.
    pub se: Option<SeWrite>,
    /// Card instances.
    pub cards: Vec<CardWrite>,
    /// The top-up order.
    pub topup: Option<TopupWrite>,
    /// Refunds.
    pub refunds: Vec<RefundWrite>,
    /// Escrows.
    pub escrows: Vec<EscrowWrite>,
    /// Audit records, appended in order.
    pub audit: Vec<AuditEvent>,
    /// The claimed request whose response this move stores, in the same transaction
    /// ([`Store::complete_request`] semantics: the same response stored before changes nothing;
    /// a claim missing, of another body or completed with another response fails the whole
    /// move, nothing written).
    pub request: Option<RequestCompletion>,
}

/// A refund as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refund {
    /// The refund id.
    pub refund_id: String,
    /// The card.
    pub card_no: String,
    /// Fen.
    pub amount_fen: u64,
    /// Where it went.
    pub account: String,
    /// When (Unix ms).
    pub created_ms: i64,
}

/// An escrow as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Escrow {
    /// The transfer id.
    pub transfer_id: String,
    /// The card.
    pub card_no: String,
    /// Fen.
    pub amount_fen: u64,
    /// Loaded on the new card.
    pub settled: bool,
    /// The transfer-in flow that claimed it.
    pub claimed_by: Option<String>,
}

fn se_rank(state: SeState) -> i64 {
    match state {
        SeState::Registered => 1,
        SeState::IsdKeysBound => 2,
        SeState::Active => 3,
        SeState::Lost => 4,
        SeState::Terminated => 5,
    }
}

fn conflict(what: Entity, id: &str, expected: &str, found: impl Into<String>) -> Error {
    Error::Conflict {
        what,
        id: id.to_string(),
        expected: expected.to_string(),
        found: found.into(),
    }
}

impl Store {
    /// Writes one flow move and everything it implies in one transaction, and returns the
    /// flow as stored. [`Error::Conflict`] (nothing written) if the flow moved since
    /// `from_version`, a card instance is held by another flow, the order is claimed by another
    /// flow or not paid, or the escrow is claimed by another flow.
    pub async fn commit_step(&self, step: &StepCommit) -> Result<Flow, Error> {
        let now = self.now();
        let flow_id = step.flow.id().to_string();
        let mut tx = self.begin_write().await?;

        if let Some(se) = &step.se {
            sqlx::query(
                "INSERT INTO se (seid, cplc, profile, state, version, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, 1, $5, $5) ON CONFLICT (seid) DO NOTHING",
            )
            .bind(&se.seid)
            .bind(hex::encode(&se.cplc))
            .bind(&se.profile)
            .bind(se.state.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let current: (String,) = sqlx::query_as("SELECT state FROM se WHERE seid = $1")
                .bind(&se.seid)
                .fetch_one(&mut *tx)
                .await?;
            let current = SeState::parse(&current.0)?;
            if se_rank(se.state) > se_rank(current) && current.allows(se.state) {
                sqlx::query(
                    "UPDATE se SET state = $1, version = version + 1, updated_ms = $2 \
                     WHERE seid = $3",
                )
                .bind(se.state.as_str())
                .bind(now)
                .bind(&se.seid)
                .execute(&mut *tx)
                .await?;
            }
        }

        match &step.flow {
            FlowWrite::Create {
                flow,
                device_id,
                update,
            } => {
                let (seq, idempotent) = script_columns(update)?;
                let inserted = sqlx::query(
                    "INSERT INTO flow (id, kind, seid, step, status, state, script_seq, \
                     script_idempotent, version, created_ms, updated_ms, device_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 2, $9, $9, $10)",
                )
                .bind(&flow.id)
                .bind(&flow.kind)
                .bind(flow.seid.as_deref())
                .bind(&update.step)
                .bind(update.status.as_str())
                .bind(update.state.to_string())
                .bind(seq)
                .bind(idempotent)
                .bind(now)
                .bind(device_id)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::AlreadyExists {
                            what: Entity::Flow,
                            id: flow.id.clone(),
                        });
                    }
                    Err(e) if is_foreign_key_violation(&e) => {
                        return Err(Error::not_found(
                            Entity::Se,
                            flow.seid.clone().unwrap_or_default(),
                        ));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            FlowWrite::Advance {
                id,
                from_version,
                update,
                seid,
            } => {
                let (seq, idempotent) = script_columns(update)?;
                let done = sqlx::query(
                    "UPDATE flow SET step = $1, status = $2, state = $3, script_seq = $4, \
                     script_idempotent = $5, version = version + 1, updated_ms = $6, \
                     seid = COALESCE($7, seid) \
                     WHERE id = $8 AND version = $9 AND status = $10",
                )
                .bind(&update.step)
                .bind(update.status.as_str())
                .bind(update.state.to_string())
                .bind(seq)
                .bind(idempotent)
                .bind(now)
                .bind(seid.as_deref())
                .bind(id)
                .bind(signed(*from_version)?)
                .bind(crate::flow::FlowStatus::Running.as_str())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    drop(tx);
                    let current = self.flow(id).await?;
                    return Err(conflict(
                        Entity::Flow,
                        id,
                        &format!("version {from_version}"),
                        format!("version {} ({})", current.version, current.status),
                    ));
                }
            }
        }

        for card in &step.cards {
            let holder = card.hold.then_some(flow_id.as_str());
            let written = sqlx::query(
                "INSERT INTO card_instance (seid, card_no, state, ssd_aid, app_aid, version, \
                 created_ms, updated_ms, device_id, management, flow_id) \
                 VALUES ($1, $2, $3, $4, $5, 1, $6, $6, $7, $8, $9) \
                 ON CONFLICT (seid, card_no) DO UPDATE SET state = excluded.state, \
                 ssd_aid = COALESCE(excluded.ssd_aid, card_instance.ssd_aid), \
                 app_aid = COALESCE(excluded.app_aid, card_instance.app_aid), \
                 management = COALESCE(excluded.management, card_instance.management), \
                 device_id = excluded.device_id, flow_id = excluded.flow_id, \
                 version = card_instance.version + 1, updated_ms = excluded.updated_ms \
                 WHERE card_instance.flow_id IS NULL OR card_instance.flow_id = $10",
            )
            .bind(&card.seid)
            .bind(&card.card_no)
            .bind(card.state.as_str())
            .bind(hex_opt(card.ssd_aid.as_deref()))
            .bind(hex_opt(card.app_aid.as_deref()))
            .bind(now)
            .bind(&card.device_id)
            .bind(card.management.as_deref())
            .bind(holder)
            .bind(&flow_id)
            .execute(&mut *tx)
            .await;
            let written = match written {
                Ok(w) => w,
                Err(e) if is_foreign_key_violation(&e) => {
                    return Err(Error::not_found(Entity::Se, &card.seid));
                }
                Err(e) => return Err(e.into()),
            };
            if written.rows_affected() != 1 {
                return Err(conflict(
                    Entity::CardInstance,
                    &format!("{}/{}", card.seid, card.card_no),
                    "no other flow",
                    "held by another flow",
                ));
            }
            for (key_set, kvn) in &card.key_versions {
                sqlx::query(
                    "INSERT INTO card_key_version (seid, card_no, key_set, kvn) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (seid, card_no, key_set) DO UPDATE SET kvn = excluded.kvn",
                )
                .bind(&card.seid)
                .bind(&card.card_no)
                .bind(key_set)
                .bind(i64::from(*kvn))
                .execute(&mut *tx)
                .await?;
            }
        }

        if let Some(topup) = &step.topup {
            self.write_topup(&mut tx, &flow_id, topup, now).await?;
        }

        for refund in &step.refunds {
            sqlx::query(
                "INSERT INTO refund (refund_id, card_no, amount_fen, account, created_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (refund_id) DO NOTHING",
            )
            .bind(&refund.refund_id)
            .bind(&refund.card_no)
            .bind(signed(refund.amount_fen)?)
            .bind(&refund.account)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }

        for escrow in &step.escrows {
            match escrow {
                EscrowWrite::Hold {
                    transfer_id,
                    card_no,
                    amount_fen,
                } => {
                    sqlx::query(
                        "INSERT INTO escrow (transfer_id, card_no, amount_fen, settled, \
                         claimed_by, created_ms, updated_ms) VALUES ($1, $2, $3, 0, NULL, $4, $4) \
                         ON CONFLICT (transfer_id) DO NOTHING",
                    )
                    .bind(transfer_id)
                    .bind(card_no)
                    .bind(signed(*amount_fen)?)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                EscrowWrite::Claim { transfer_id } => {
                    let done = sqlx::query(
                        "UPDATE escrow SET claimed_by = $1, updated_ms = $2 WHERE transfer_id = $3 \
                         AND settled = 0 AND (claimed_by IS NULL OR claimed_by = $1)",
                    )
                    .bind(&flow_id)
                    .bind(now)
                    .bind(transfer_id)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Err(conflict(
                            Entity::Escrow,
                            transfer_id,
                            "held and unclaimed",
                            "claimed, settled or missing",
                        ));
                    }
                }
                EscrowWrite::Release { transfer_id } => {
                    let done = sqlx::query(
                        "UPDATE escrow SET claimed_by = NULL, updated_ms = $1 \
                         WHERE transfer_id = $2 AND settled = 0 AND claimed_by = $3",
                    )
                    .bind(now)
                    .bind(transfer_id)
                    .bind(&flow_id)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Err(conflict(
                            Entity::Escrow,
                            transfer_id,
                            "claimed by this flow and not settled",
                            "settled, claimed by another flow or missing",
                        ));
                    }
                }
                EscrowWrite::Settle { transfer_id } => {
                    sqlx::query(
                        "UPDATE escrow SET settled = 1, updated_ms = $1 WHERE transfer_id = $2",
                    )
                    .bind(now)
                    .bind(transfer_id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }

        for event in &step.audit {
            self.append_audit_in(&mut tx, event).await?;
        }
        if let Some(done) = &step.request {
            self.complete_request_in(&mut tx, done).await?;
        }
        tx.commit().await?;
        self.flow(&flow_id).await
    }

    async fn write_topup(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        flow_id: &str,
        topup: &TopupWrite,
        now: i64,
    ) -> Result<(), Error> {
        let row = sqlx::query(
            "SELECT state, flow_id, card_no, amount_fen FROM topup_order WHERE order_id = $1",
        )
        .bind(&topup.order_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::not_found(Entity::TopupOrder, &topup.order_id))?;
        let state = TopupState::parse(&row.try_get::<String, _>("state")?)?;
        let holder: Option<String> = row.try_get("flow_id")?;
        if topup.claim {
            if holder.as_deref().is_some_and(|h| h != flow_id) {
                return Err(conflict(
                    Entity::TopupOrder,
                    &topup.order_id,
                    "unclaimed",
                    "claimed by another flow",
                ));
            }
            if holder.is_none() && state != TopupState::Paid {
                return Err(conflict(
                    Entity::TopupOrder,
                    &topup.order_id,
                    TopupState::Paid.as_str(),
                    state.as_str(),
                ));
            }
        } else if holder.as_deref() != Some(flow_id) {
            return Err(conflict(
                Entity::TopupOrder,
                &topup.order_id,
                "claimed by this flow",
                "not claimed by it",
            ));
        }
        let to = match topup.state {
            Some(to) if to != state => {
                if !state.allows(to) {
                    return Err(Error::IllegalTransition {
                        what: Entity::TopupOrder,
                        from: state.as_str(),
                        to: to.as_str(),
                    });
                }
                to
            }
            _ => state,
        };
        if to == TopupState::Cancelled && state != TopupState::Cancelled {
            // Cancelling a paid order claimed by this flow, and refunding it, are one write.
            if state != TopupState::Paid {
                return Err(conflict(
                    Entity::TopupOrder,
                    &topup.order_id,
                    TopupState::Paid.as_str(),
                    state.as_str(),
                ));
            }
            if holder.as_deref() != Some(flow_id) {
                return Err(conflict(
                    Entity::TopupOrder,
                    &topup.order_id,
                    "claimed by this flow",
                    "not claimed by it",
                ));
            }
            let refund = topup.refund.as_ref().ok_or(Error::MissingField {
                what: Entity::TopupOrder,
                to: TopupState::Cancelled.as_str(),
                field: "refund",
            })?;
            let card_no: String = row.try_get("card_no")?;
            let amount: i64 = row.try_get("amount_fen")?;
            sqlx::query(
                "INSERT INTO refund (refund_id, card_no, amount_fen, account, created_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (refund_id) DO NOTHING",
            )
            .bind(&refund.refund_id)
            .bind(&card_no)
            .bind(amount)
            .bind(&refund.account)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        let result = sqlx::query(
            "UPDATE topup_order SET state = $1, flow_id = $2, \
             online_counter = COALESCE($3, online_counter), tac = COALESCE($4, tac), \
             new_balance = COALESCE($5, new_balance), version = version + 1, updated_ms = $6 \
             WHERE order_id = $7",
        )
        .bind(to.as_str())
        .bind(flow_id)
        .bind(topup.online_counter.map(i64::from))
        .bind(topup.tac.as_deref().map(hex::encode))
        .bind(topup.new_balance.map(signed).transpose()?)
        .bind(now)
        .bind(&topup.order_id)
        .execute(&mut **tx)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                what: Entity::TopupOrder,
                id: format!("MAC2 for the online counter of order {}", topup.order_id),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves an order `CREATED → PAID` (the payment provider's confirmation); an order paid
    /// already stays as it is.
    pub async fn pay_topup(&self, order_id: &str) -> Result<crate::TopupOrder, Error> {
        sqlx::query(
            "UPDATE topup_order SET state = $1, version = version + 1, updated_ms = $2 \
             WHERE order_id = $3 AND state = $4",
        )
        .bind(TopupState::Paid.as_str())
        .bind(self.now())
        .bind(order_id)
        .bind(TopupState::Created.as_str())
        .execute(&self.pool)
        .await?;
        self.topup(order_id).await
    }

    /// The refund `refund_id`, if paid.
    pub async fn refund(&self, refund_id: &str) -> Result<Option<Refund>, Error> {
        let row = sqlx::query(
            "SELECT refund_id, card_no, amount_fen, account, created_ms FROM refund \
             WHERE refund_id = $1",
        )
        .bind(refund_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Refund {
                refund_id: row.try_get("refund_id")?,
                card_no: row.try_get("card_no")?,
                amount_fen: unsigned(Entity::Refund, row.try_get("amount_fen")?)?,
                account: row.try_get("account")?,
                created_ms: row.try_get("created_ms")?,
            })
        })
        .transpose()
    }

    /// The escrow `transfer_id`, if held.
    pub async fn escrow(&self, transfer_id: &str) -> Result<Option<Escrow>, Error> {
        let row = sqlx::query(
            "SELECT transfer_id, card_no, amount_fen, settled, claimed_by FROM escrow \
             WHERE transfer_id = $1",
        )
        .bind(transfer_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Escrow {
                transfer_id: row.try_get("transfer_id")?,
                card_no: row.try_get("card_no")?,
                amount_fen: unsigned(Entity::Escrow, row.try_get("amount_fen")?)?,
                settled: row.try_get::<i64, _>("settled")? != 0,
                claimed_by: row.try_get("claimed_by")?,
            })
        })
        .transpose()
    }
}

fn script_columns(update: &FlowUpdate) -> Result<(Option<i64>, Option<i64>), Error> {
    Ok(match update.script {
        Some(s) => (Some(signed(s.seq)?), Some(i64::from(s.idempotent))),
        None => (None, None),
    })
}
