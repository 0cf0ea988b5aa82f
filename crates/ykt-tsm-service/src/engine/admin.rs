//! The operator's read-only views (admin API): SEs, card instances (card numbers masked),
//! flows by status, the audit chain's verification, counters for metrics, and the money flows
//! left failed ([`Engine::admin_stuck_money`]) and the operator's abandon of one
//! ([`Engine::admin_abandon_flow`]).

use serde::Serialize;
use ykt_store::{ChainStatus, FlowStatus};

use super::payments::card_of;
use super::{Engine, EngineError};

/// A registered SE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeView {
    /// The SEID (hex).
    pub seid: String,
    /// The §8 state.
    pub state: String,
    /// When it was registered (Unix ms).
    pub created_ms: i64,
}

/// A card instance, its number masked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardInstanceView {
    /// The SE.
    pub seid: String,
    /// The card number, masked (`3104************5678`).
    pub card_no: String,
    /// The §8 state.
    pub state: String,
    /// The device that holds it.
    pub device_id: Option<String>,
    /// The flow working on it.
    pub flow_id: Option<String>,
}

/// A flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowSummary {
    /// The flow (`txn_id`).
    pub txn_id: String,
    /// Its kind.
    pub kind: String,
    /// `RUNNING`, `COMPLETED`, `FAILED`.
    pub status: String,
    /// The step in progress or `FAILED_<step>`.
    pub step: String,
    /// The SE.
    pub seid: Option<String>,
    /// The device.
    pub device_id: Option<String>,
    /// Its version (moves).
    pub version: u64,
    /// When it last moved (Unix ms).
    pub updated_ms: i64,
}

/// The audit chain's verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditView {
    /// True when every row verifies and the head matches.
    pub intact: bool,
    /// Rows verified.
    pub rows: u64,
    /// The head hash (hex) when intact.
    pub head: Option<String>,
    /// The first broken row, when broken.
    pub broken_at: Option<u64>,
    /// Why, when broken.
    pub reason: Option<String>,
}

/// Counters for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// Enrolled devices.
    pub devices: u64,
    /// Registered SEs.
    pub ses: u64,
    /// Card instances by state.
    pub cards_by_state: Vec<(String, u64)>,
    /// Flows by status.
    pub flows_by_status: Vec<(String, u64)>,
    /// Orders by state.
    pub orders_by_state: Vec<(String, u64)>,
    /// Refunds paid.
    pub refunds: u64,
    /// Escrows.
    pub escrows: u64,
    /// Audit records.
    pub audit_records: u64,
    /// Flows live in this process's memory.
    pub live_flows: u64,
}

/// What the TSM's records prove of a failed money flow's load (tsm-gp.md §8 "never assume
/// success").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum LoadVerdict {
    /// No MAC2 was ever issued for the flow: its stored record (persisted before any relay
    /// message leaves, and MAC2 is never cleared once set) holds none, so no CREDIT FOR LOAD
    /// of it reached a card. The money was not credited.
    NotCredited,
    /// A MAC2 was issued: the card may have been credited, and only the card can tell (a
    /// resume probes it: GET TRANSACTION PROVE of the recorded online counter).
    CardMustProve,
}

/// A top-up or transfer-in flow whose step failed and waits for a resume, with money at stake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct StuckMoney {
    /// The flow (`txn_id`).
    pub txn_id: String,
    /// `top_up` or `transfer_in`.
    pub kind: String,
    /// `FAILED_<step>`.
    pub step: String,
    /// The device that runs it.
    pub device_id: Option<String>,
    /// The top-up order it loads (top-ups).
    pub order_id: Option<String>,
    /// The escrow it claims (transfers in).
    pub transfer_id: Option<String>,
    /// The amount at stake, fen.
    pub amount_fen: Option<u64>,
    /// What the records prove.
    pub verdict: LoadVerdict,
    /// When it last moved (Unix ms).
    pub updated_ms: i64,
}

impl Engine {
    /// The money flows (top-ups, transfers in) whose step failed: they never give up on their
    /// own (a card may have been written), so they wait for a resume. For each, what the
    /// records prove of its load ([`LoadVerdict`]): the rule an operator action resolving one
    /// must follow.
    pub async fn admin_stuck_money(&self) -> Result<Vec<StuckMoney>, EngineError> {
        let mut out = Vec::new();
        for row in self.store().flows_with_status(FlowStatus::Running).await? {
            if !matches!(row.kind.as_str(), "top_up" | "transfer_in")
                || !row.step.starts_with("FAILED_")
            {
                continue;
            }
            let record: super::record::Record = serde_json::from_value(row.state.clone())?;
            let flow = &record.flow;
            let amount_fen = match (&flow.order, &flow.transfer_id) {
                (Some(order), _) => Some(u64::from(order.amount)),
                (None, Some(id)) => self.store().escrow(id).await?.map(|e| e.amount_fen),
                (None, None) => None,
            };
            out.push(StuckMoney {
                verdict: if flow.mac2.is_none() {
                    LoadVerdict::NotCredited
                } else {
                    LoadVerdict::CardMustProve
                },
                order_id: flow.order.as_ref().map(|o| o.order_id.clone()),
                transfer_id: flow.transfer_id.clone(),
                amount_fen,
                txn_id: row.id,
                kind: row.kind,
                step: row.step,
                device_id: row.device_id,
                updated_ms: row.updated_ms,
            });
        }
        Ok(out)
    }

    /// Every registered SE.
    pub async fn admin_ses(&self) -> Result<Vec<SeView>, EngineError> {
        Ok(self
            .store()
            .ses()
            .await?
            .into_iter()
            .map(|s| SeView {
                seid: s.seid,
                state: s.state.as_str().to_string(),
                created_ms: s.created_ms,
            })
            .collect())
    }

    /// Every card instance, numbers masked.
    pub async fn admin_cards(&self) -> Result<Vec<CardInstanceView>, EngineError> {
        Ok(self
            .store()
            .card_instances(None)
            .await?
            .into_iter()
            .map(|c| CardInstanceView {
                card_no: card_of(&c.card_no).map_or_else(|| "?".into(), |n| n.to_string()),
                seid: c.seid,
                state: c.state.as_str().to_string(),
                device_id: c.device_id,
                flow_id: c.flow_id,
            })
            .collect())
    }

    /// The flows with store status `status` (`RUNNING` includes failed flows waiting for a
    /// retry: their step is `FAILED_<step>`).
    pub async fn admin_flows(&self, status: FlowStatus) -> Result<Vec<FlowSummary>, EngineError> {
        Ok(self
            .store()
            .flows_with_status(status)
            .await?
            .into_iter()
            .map(|f| FlowSummary {
                txn_id: f.id,
                kind: f.kind,
                status: f.status.as_str().to_string(),
                step: f.step,
                seid: f.seid,
                device_id: f.device_id,
                version: f.version,
                updated_ms: f.updated_ms,
            })
            .collect())
    }

    /// Verifies the audit chain.
    pub async fn admin_verify_audit(&self) -> Result<AuditView, EngineError> {
        Ok(match self.store().verify_chain().await? {
            ChainStatus::Intact { rows, head } => AuditView {
                intact: true,
                rows,
                head: Some(hex::encode(head)),
                broken_at: None,
                reason: None,
            },
            ChainStatus::Broken(b) => AuditView {
                intact: false,
                rows: 0,
                head: None,
                broken_at: Some(b.seq),
                reason: Some(format!("{:?}", b.reason)),
            },
            _ => AuditView {
                intact: false,
                rows: 0,
                head: None,
                broken_at: None,
                reason: Some("unknown".into()),
            },
        })
    }

    /// Counters for metrics.
    pub async fn admin_metrics(&self) -> Result<Metrics, EngineError> {
        let c = self.store().counts().await?;
        Ok(Metrics {
            devices: c.devices,
            ses: c.ses,
            cards_by_state: c.cards_by_state,
            flows_by_status: c.flows_by_status,
            orders_by_state: c.orders_by_state,
            refunds: c.refunds,
            escrows: c.escrows,
            audit_records: c.audit_records,
            live_flows: self.live_flows() as u64,
        })
    }
}

mod abandon;
mod registry;

pub use abandon::{AbandonError, Abandoned};
pub use registry::{KeyVersionView, RegistryError, proposals_registry};
