//! The SE registry (tsm-gp.md §8, SE life cycle).

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::error::{Entity, Error, is_unique_violation};
use crate::{Store, text_enum, unhex, unsigned};

text_enum! {
    /// SE life cycle (tsm-gp.md §8): `UNKNOWN → REGISTERED → ISD_KEYS_BOUND → ACTIVE → LOST |
    /// TERMINATED`. `UNKNOWN` is an SE with no record.
    pub enum SeState: Entity::Se {
        /// CPLC and SEID seen.
        Registered = "REGISTERED",
        /// The ISD's keys are bound to the SE.
        IsdKeysBound = "ISD_KEYS_BOUND",
        /// In service.
        Active = "ACTIVE",
        /// Reported lost (terminal).
        Lost = "LOST",
        /// Terminated (terminal).
        Terminated = "TERMINATED",
    }
}

impl SeState {
    /// Whether the life cycle allows `self → next`: the §8 chain, `ACTIVE → LOST`, and
    /// `TERMINATED` from any state but itself.
    pub fn allows(self, next: SeState) -> bool {
        use SeState::*;
        matches!(
            (self, next),
            (Registered, IsdKeysBound)
                | (IsdKeysBound, Active)
                | (Active, Lost)
                | (Registered | IsdKeysBound | Active | Lost, Terminated)
        )
    }
}

/// A secure element to register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSe {
    /// The SE identifier.
    pub seid: String,
    /// The card production life cycle data (CPLC, GET DATA `9F7F`), as read.
    pub cplc: Vec<u8>,
    /// The device or SE profile name (memory, GP version, supported SCPs).
    pub profile: String,
}

/// A registered secure element.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Se {
    /// The SE identifier.
    pub seid: String,
    /// Its CPLC.
    pub cplc: Vec<u8>,
    /// Its profile name.
    pub profile: String,
    /// Its life-cycle state.
    pub state: SeState,
    /// Bumped by every change.
    pub version: u64,
    /// When it was registered (Unix ms).
    pub created_ms: i64,
    /// When it last changed (Unix ms).
    pub updated_ms: i64,
}

impl Se {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, Error> {
        Ok(Se {
            seid: row.try_get("seid")?,
            cplc: unhex(Entity::Se, &row.try_get::<String, _>("cplc")?)?,
            profile: row.try_get("profile")?,
            state: SeState::parse(&row.try_get::<String, _>("state")?)?,
            version: unsigned(Entity::Se, row.try_get("version")?)?,
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
        })
    }
}

pub(crate) const SE_COLUMNS: &str = "seid, cplc, profile, state, version, created_ms, updated_ms";

impl Store {
    /// Registers an SE in state `REGISTERED`; an SEID registered before is
    /// [`Error::AlreadyExists`].
    pub async fn register_se(&self, se: &NewSe) -> Result<Se, Error> {
        let now = self.now();
        let result = sqlx::query(
            "INSERT INTO se (seid, cplc, profile, state, version, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, 1, $5, $5)",
        )
        .bind(&se.seid)
        .bind(hex::encode(&se.cplc))
        .bind(&se.profile)
        .bind(SeState::Registered.as_str())
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => self.se(&se.seid).await,
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                what: Entity::Se,
                id: se.seid.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The SE `seid`, or [`Error::NotFound`].
    pub async fn se(&self, seid: &str) -> Result<Se, Error> {
        let sql = format!("SELECT {SE_COLUMNS} FROM se WHERE seid = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(seid)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Se, seid))?;
        Se::from_row(&row)
    }

    /// Moves the SE from `from` to `to`: [`Error::IllegalTransition`] if the life cycle forbids
    /// it, [`Error::Conflict`] if the SE is no longer in `from`.
    pub async fn move_se(&self, seid: &str, from: SeState, to: SeState) -> Result<Se, Error> {
        if !from.allows(to) {
            return Err(Error::IllegalTransition {
                what: Entity::Se,
                from: from.as_str(),
                to: to.as_str(),
            });
        }
        let done = sqlx::query(
            "UPDATE se SET state = $1, version = version + 1, updated_ms = $2 \
             WHERE seid = $3 AND state = $4",
        )
        .bind(to.as_str())
        .bind(self.now())
        .bind(seid)
        .bind(from.as_str())
        .execute(&self.pool)
        .await?;
        let se = self.se(seid).await?;
        if done.rows_affected() == 0 {
            return Err(Error::Conflict {
                what: Entity::Se,
                id: seid.to_string(),
                expected: from.to_string(),
                found: se.state.to_string(),
            });
        }
        Ok(se)
    }
}
