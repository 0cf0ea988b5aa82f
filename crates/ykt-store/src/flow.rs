//! Flows as persisted state machines, with optimistic concurrency.
//!
//! A flow (open card, top-up, delete, …) is a row: its kind, its step, a JSON state blob and a
//! version. Every move is a compare-and-set on the version ([`Store::advance_flow`]), so two
//! workers resuming the same flow cannot both move it. Before the TSM releases an APDU script it
//! records it in the flow ([`FlowUpdate::script`]); after a crash, [`Flow::resume`] tells whether
//! that script may simply be sent again or the SE's state must be read first.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::error::{Entity, Error, is_foreign_key_violation, is_unique_violation};
use crate::{Store, signed, text_enum, unsigned};

text_enum! {
    /// Whether a flow is still running.
    pub enum FlowStatus: Entity::Flow {
        /// Running (or waiting for the client).
        Running = "RUNNING",
        /// Finished successfully (terminal).
        Completed = "COMPLETED",
        /// Given up (terminal).
        Failed = "FAILED",
    }
}

/// The APDU script released to the client whose result is not known yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleasedScript {
    /// The script's sequence number in the flow (the relay object's `seq`).
    pub seq: u64,
    /// Whether sending it twice has the same effect as once (SELECT, GET STATUS, GET DATA), as
    /// opposed to scripts that change the SE (INSTALL, PUT KEY, DELETE, CREDIT FOR LOAD).
    pub idempotent: bool,
}

/// What a worker picking up a running flow must do first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resume {
    /// No script is outstanding: continue from the flow's step.
    Continue,
    /// An idempotent script is outstanding: it may be sent again.
    Resend {
        /// The script's sequence number.
        seq: u64,
    },
    /// A script that changes the SE is outstanding and may or may not have run: read the SE's
    /// state (GET STATUS, the card's counters) and reconcile before anything else. Never send it
    /// again blindly.
    ReadSeFirst {
        /// The script's sequence number.
        seq: u64,
    },
    /// The flow is finished; nothing to resume.
    Finished,
}

/// A flow to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFlow {
    /// The flow id (the §7 `txn_id`).
    pub id: String,
    /// The kind of flow (`open_card`, `topup`, …).
    pub kind: String,
    /// The SE the flow works on, if any (must be registered).
    pub seid: Option<String>,
    /// The first step.
    pub step: String,
    /// The first state blob.
    pub state: serde_json::Value,
}

/// A flow's next state, for [`Store::advance_flow`].
#[derive(Clone, Debug, PartialEq)]
pub struct FlowUpdate {
    /// The new step.
    pub step: String,
    /// The new status.
    pub status: FlowStatus,
    /// The new state blob.
    pub state: serde_json::Value,
    /// The script released with this move (`None`: no script outstanding).
    pub script: Option<ReleasedScript>,
}

/// A flow as stored.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Flow {
    /// The flow id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// The SE it works on.
    pub seid: Option<String>,
    /// Its step.
    pub step: String,
    /// Its status.
    pub status: FlowStatus,
    /// Its state blob.
    pub state: serde_json::Value,
    /// The script outstanding, if any.
    pub script: Option<ReleasedScript>,
    /// The version: 1 at creation, bumped by every move.
    pub version: u64,
    /// When it was created (Unix ms).
    pub created_ms: i64,
    /// When it last moved (Unix ms).
    pub updated_ms: i64,
    /// The device that started it (engine flows).
    pub device_id: Option<String>,
}

impl Flow {
    /// What a worker resuming this flow must do first (see [`Resume`]).
    pub fn resume(&self) -> Resume {
        match (self.status, self.script) {
            (FlowStatus::Completed | FlowStatus::Failed, _) => Resume::Finished,
            (_, None) => Resume::Continue,
            (
                _,
                Some(ReleasedScript {
                    seq,
                    idempotent: true,
                }),
            ) => Resume::Resend { seq },
            (
                _,
                Some(ReleasedScript {
                    seq,
                    idempotent: false,
                }),
            ) => Resume::ReadSeFirst { seq },
        }
    }

    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, Error> {
        let state: String = row.try_get("state")?;
        let state = serde_json::from_str(&state).map_err(|e| Error::Corrupt {
            what: Entity::Flow,
            detail: format!("state is not JSON: {e}"),
        })?;
        let seq: Option<i64> = row.try_get("script_seq")?;
        let idempotent: Option<i64> = row.try_get("script_idempotent")?;
        let script = match (seq, idempotent) {
            (None, None) => None,
            (Some(seq), Some(flag)) => Some(ReleasedScript {
                seq: unsigned(Entity::Flow, seq)?,
                idempotent: flag != 0,
            }),
            _ => {
                return Err(Error::Corrupt {
                    what: Entity::Flow,
                    detail: "script_seq and script_idempotent disagree".into(),
                });
            }
        };
        Ok(Flow {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            seid: row.try_get("seid")?,
            step: row.try_get("step")?,
            status: FlowStatus::parse(&row.try_get::<String, _>("status")?)?,
            state,
            script,
            version: unsigned(Entity::Flow, row.try_get("version")?)?,
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
            device_id: row.try_get("device_id")?,
        })
    }
}

pub(crate) const FLOW_COLUMNS: &str = "id, kind, seid, step, status, state, script_seq, \
                                       script_idempotent, version, created_ms, updated_ms, \
                                       device_id";

impl Store {
    /// Creates a running flow at version 1. [`Error::AlreadyExists`] for an id used before,
    /// [`Error::NotFound`] for an SE not registered.
    pub async fn create_flow(&self, flow: &NewFlow) -> Result<Flow, Error> {
        let result = sqlx::query(
            "INSERT INTO flow (id, kind, seid, step, status, state, script_seq, \
             script_idempotent, version, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, 1, $7, $7)",
        )
        .bind(&flow.id)
        .bind(&flow.kind)
        .bind(flow.seid.as_deref())
        .bind(&flow.step)
        .bind(FlowStatus::Running.as_str())
        .bind(flow.state.to_string())
        .bind(self.now())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => self.flow(&flow.id).await,
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                what: Entity::Flow,
                id: flow.id.clone(),
            }),
            Err(e) if is_foreign_key_violation(&e) => Err(Error::not_found(
                Entity::Se,
                flow.seid.clone().unwrap_or_default(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The flow `id`, or [`Error::NotFound`].
    pub async fn flow(&self, id: &str) -> Result<Flow, Error> {
        let sql = format!("SELECT {FLOW_COLUMNS} FROM flow WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Flow, id))?;
        Flow::from_row(&row)
    }

    /// The running flows (of one SE, or of all), oldest first: what a restarted TSM resumes.
    pub async fn running_flows(&self, seid: Option<&str>) -> Result<Vec<Flow>, Error> {
        let sql = format!(
            "SELECT {FLOW_COLUMNS} FROM flow WHERE status = $1 AND ($2 IS NULL OR seid = $2) \
             ORDER BY created_ms, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(FlowStatus::Running.as_str())
            .bind(seid)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Flow::from_row).collect()
    }

    /// Moves the flow from version `from_version` to `to` (version `from_version + 1`), in one
    /// compare-and-set statement.
    ///
    /// If someone else moved it first: [`Error::Conflict`] (re-read and decide again). A finished
    /// flow does not move ([`Error::IllegalTransition`]); an unknown one is [`Error::NotFound`].
    pub async fn advance_flow(
        &self,
        id: &str,
        from_version: u64,
        to: &FlowUpdate,
    ) -> Result<Flow, Error> {
        let (seq, idempotent) = match to.script {
            Some(s) => (Some(signed(s.seq)?), Some(i64::from(s.idempotent))),
            None => (None, None),
        };
        let done = sqlx::query(
            "UPDATE flow SET step = $1, status = $2, state = $3, script_seq = $4, \
             script_idempotent = $5, version = version + 1, updated_ms = $6 \
             WHERE id = $7 AND version = $8 AND status = $9",
        )
        .bind(&to.step)
        .bind(to.status.as_str())
        .bind(to.state.to_string())
        .bind(seq)
        .bind(idempotent)
        .bind(self.now())
        .bind(id)
        .bind(signed(from_version)?)
        .bind(FlowStatus::Running.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return self.flow(id).await;
        }
        let current = self.flow(id).await?;
        if current.version != from_version {
            return Err(Error::Conflict {
                what: Entity::Flow,
                id: id.to_string(),
                expected: format!("version {from_version}"),
                found: format!("version {}", current.version),
            });
        }
        Err(Error::IllegalTransition {
            what: Entity::Flow,
            from: current.status.as_str(),
            to: to.status.as_str(),
        })
    }
}
