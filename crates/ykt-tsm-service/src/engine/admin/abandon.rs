//! The operator's abandon of a stuck money flow (tsm-gp.md §8 "never assume success";
//! [`proposals::ABANDONED_STEP_PREFIX`]): a failed top-up or transfer in whose records prove no
//! MAC2 ever left ([`LoadVerdict::NotCredited`]) is ended for good, and the money it holds is
//! given back: a top-up's paid order is cancelled and refunded, a transfer in's escrow is
//! released for a new transfer in. One store transaction with the operator's audit row.

use serde::{Deserialize, Serialize};
use ykt_store::{
    AuditEvent, AuditKind, CancelRefund, EscrowWrite, FlowStatus, FlowUpdate, FlowWrite,
    StepCommit, TopupState, TopupWrite,
};

use super::LoadVerdict;
use crate::engine::record::{self, Record};
use crate::engine::{Engine, masked, proposals};

/// The key of the flow row's state JSON that keeps the abandon's answer (the domain's record
/// beside it is unchanged), so a repeated abandon answers the same.
const ABANDONED_KEY: &str = "abandoned";

/// What an abandon fails with; [`AbandonError::http_status`] is the admin API's answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AbandonError {
    /// The reason is empty or too long (HTTP 400).
    #[error("reason: {0}")]
    BadReason(&'static str),
    /// No flow with this id (HTTP 404).
    #[error("no such flow")]
    NotFound,
    /// The flow may not be abandoned, and why (HTTP 409); nothing was written.
    #[error("{0}")]
    Refused(&'static str),
    /// Another worker moved the flow first (HTTP 409); nothing was written.
    #[error("the flow was moved concurrently; ask again")]
    Conflict,
    /// A stored flow state does not parse (HTTP 500).
    #[error("stored flow state")]
    Json(#[source] serde_json::Error),
    /// The store failed (HTTP 500; the detail goes to the log only).
    #[error("store error")]
    Store(#[source] ykt_store::Error),
}

impl AbandonError {
    /// The HTTP status of the error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::BadReason(_) => 400,
            Self::NotFound => 404,
            Self::Refused(_) | Self::Conflict => 409,
            Self::Json(_) | Self::Store(_) => 500,
        }
    }
}

impl From<ykt_store::Error> for AbandonError {
    fn from(e: ykt_store::Error) -> Self {
        match e {
            ykt_store::Error::Conflict { .. } => Self::Conflict,
            e => Self::Store(e),
        }
    }
}

impl From<serde_json::Error> for AbandonError {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e)
    }
}

/// The answer of an abandon (the same when asked again). No card number: orders, refunds and
/// escrows by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Abandoned {
    /// The flow (`txn_id`).
    pub txn_id: String,
    /// `top_up` or `transfer_in`.
    pub kind: String,
    /// The failed step it was left at (`FAILED_<step>`).
    pub from_step: String,
    /// Its step now (`ABANDONED_<step>`; store status `FAILED`).
    pub step: String,
    /// What the records proved of its load: always `NOT_CREDITED`.
    pub verdict: LoadVerdict,
    /// The top-up order cancelled (top-ups).
    pub order_id: Option<String>,
    /// The refund of the order's payment.
    pub refund_id: Option<String>,
    /// The escrow released for a new transfer in (transfers in).
    pub transfer_id: Option<String>,
    /// The amount given back, fen.
    pub amount_fen: Option<u64>,
    /// The operator who abandoned it.
    pub operator: String,
    /// Why.
    pub reason: String,
}

/// The reason, trimmed, or why it is refused ([`proposals::ABANDON_REASON_MAX_CHARS`]).
fn checked_reason(reason: &str) -> Result<&str, AbandonError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AbandonError::BadReason("empty"));
    }
    if reason.chars().count() > proposals::ABANDON_REASON_MAX_CHARS {
        return Err(AbandonError::BadReason("too long"));
    }
    if reason.chars().any(char::is_control) {
        return Err(AbandonError::BadReason("control characters"));
    }
    Ok(reason)
}

impl Engine {
    /// Abandons the failed money flow `txn_id` for operator `actor` (the rules:
    /// [`proposals::ABANDONED_STEP_PREFIX`]). The flow, the cancel and refund of its order or
    /// the release of its escrow, its card instance's release and the `OPERATOR_ACTION` audit
    /// row (operator, reason, before → after) commit together or not at all. A flow abandoned
    /// already answers as it did then, and nothing is written.
    pub async fn admin_abandon_flow(
        &self,
        actor: &str,
        txn_id: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Abandoned, AbandonError> {
        let reason = checked_reason(reason)?;
        // Held like any move of the flow: no device request moves it meanwhile.
        let mut slot = self.hold(txn_id, now_ms).await;
        let row = match self.store().flow(txn_id).await {
            Ok(row) => row,
            Err(ykt_store::Error::NotFound { .. }) => return Err(AbandonError::NotFound),
            Err(e) => return Err(AbandonError::Store(e)),
        };
        if !matches!(row.kind.as_str(), "top_up" | "transfer_in") {
            return Err(AbandonError::Refused(
                "not a money flow: only a failed top-up or transfer in is abandoned",
            ));
        }
        if let Some(done) = row.state.get(ABANDONED_KEY) {
            return Ok(serde_json::from_value(done.clone())?);
        }
        if row.status != FlowStatus::Running || !row.step.starts_with("FAILED_") {
            return Err(AbandonError::Refused(
                "the flow has not failed: it runs or has ended",
            ));
        }
        let record: Record = serde_json::from_value(row.state.clone())?;
        let flow = &record.flow;
        if flow.mac2.is_some() {
            return Err(AbandonError::Refused(
                "CARD_MUST_PROVE: a MAC2 was issued for this flow, so the card may have been \
                 credited; only the card's proof (a resume) settles it",
            ));
        }
        let step = format!(
            "{}{}",
            proposals::ABANDONED_STEP_PREFIX,
            row.step.trim_start_matches("FAILED_")
        );
        let mut answer = Abandoned {
            txn_id: txn_id.to_string(),
            kind: row.kind.clone(),
            from_step: row.step.clone(),
            step: step.clone(),
            verdict: LoadVerdict::NotCredited,
            order_id: None,
            refund_id: None,
            transfer_id: None,
            amount_fen: None,
            operator: actor.to_string(),
            reason: reason.to_string(),
        };
        let mut audit = Vec::new();
        let mut topup = None;
        if let Some(order_ref) = &flow.order {
            let order = self.store().topup(&order_ref.order_id).await?;
            if order.state == TopupState::Paid && order.flow_id.as_deref() == Some(txn_id) {
                let (refund_id, account) = proposals::abandon_refund(
                    &order.order_id,
                    order.pay_channel.as_deref(),
                    &order.pay_order_id,
                );
                audit.push(AuditEvent {
                    kind: AuditKind::Payment,
                    actor: actor.to_string(),
                    subject: format!("refund/{refund_id}"),
                    detail: format!(
                        "{} fen refunded for {} (order {} cancelled)",
                        order.amount_fen,
                        masked(&order.card_no),
                        order.order_id
                    ),
                });
                topup = Some(TopupWrite {
                    order_id: order.order_id.clone(),
                    state: Some(TopupState::Cancelled),
                    refund: Some(CancelRefund {
                        refund_id: refund_id.clone(),
                        account,
                    }),
                    ..TopupWrite::default()
                });
                answer.order_id = Some(order.order_id);
                answer.refund_id = Some(refund_id);
                answer.amount_fen = Some(order.amount_fen);
            }
        }
        let mut escrows = Vec::new();
        if let Some(transfer_id) = &flow.transfer_id
            && let Some(escrow) = self.store().escrow(transfer_id).await?
            && !escrow.settled
            && escrow.claimed_by.as_deref() == Some(txn_id)
        {
            audit.push(AuditEvent {
                kind: AuditKind::Payment,
                actor: actor.to_string(),
                subject: "escrow".into(),
                detail: format!("{transfer_id}: released by {txn_id}"),
            });
            escrows.push(EscrowWrite::Release {
                transfer_id: transfer_id.clone(),
            });
            answer.transfer_id = Some(transfer_id.clone());
            answer.amount_fen = Some(escrow.amount_fen);
        }
        audit.insert(
            0,
            AuditEvent {
                kind: AuditKind::OperatorAction,
                actor: actor.to_string(),
                subject: format!("flow/{txn_id}"),
                detail: serde_json::json!({
                    "action": "abandon",
                    "reason": reason,
                    "before": row.step,
                    "after": step,
                    "verdict": "NOT_CREDITED",
                    "order_id": answer.order_id,
                    "refund_id": answer.refund_id,
                    "transfer_id": answer.transfer_id,
                    "amount_fen": answer.amount_fen,
                })
                .to_string(),
            },
        );
        let mut state = serde_json::to_value(&record)?;
        if let Some(map) = state.as_object_mut() {
            map.insert(ABANDONED_KEY.into(), serde_json::to_value(&answer)?);
        }
        let device_id = row.device_id.clone().unwrap_or_default();
        let commit = StepCommit {
            flow: FlowWrite::Advance {
                id: txn_id.to_string(),
                from_version: row.version,
                update: FlowUpdate {
                    step,
                    status: FlowStatus::Failed,
                    state,
                    script: None,
                },
                seid: None,
            },
            se: None,
            cards: record::card_write(flow, &device_id, true)
                .into_iter()
                .collect(),
            topup,
            refunds: Vec::new(),
            escrows,
            audit,
            request: None,
        };
        // Whatever happens, the flow is rebuilt from the store when next touched.
        slot.flow = None;
        self.store().commit_step(&commit).await?;
        tracing::info!(
            txn_id,
            kind = answer.kind.as_str(),
            operator = actor,
            "money flow abandoned"
        );
        Ok(answer)
    }
}
