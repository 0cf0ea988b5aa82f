//! Card instances: one per SE × card number (tsm-gp.md §8, card instance life cycle).

use std::collections::BTreeMap;

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::error::{Entity, Error, is_foreign_key_violation, is_unique_violation};
use crate::{Store, hex_opt, text_enum, unhex, unsigned};

text_enum! {
    /// Card instance life cycle (tsm-gp.md §8).
    ///
    /// `NONE → SSD_CREATING → SSD_READY → APP_LOADING → APP_INSTALLED → PERSONALISING → ACTIVE
    /// ⇄ LOCKED`; `ACTIVE → REFUNDING → DELETING → DELETED`; `ACTIVE → DELETING` (the delete-card
    /// flow); `ACTIVE → TRANSFER_OUT → DELETED`; on the new SE `NONE → TRANSFER_IN →
    /// SSD_CREATING → …`. Each step `S` may fail to `FAILED_S` and be retried from there.
    pub enum CardState: Entity::CardInstance {
        /// §8 `NONE` (stored as `NONE`): the instance is recorded, nothing is on the SE yet.
        Initial = "NONE",
        /// Creating the supplementary security domain.
        SsdCreating = "SSD_CREATING",
        /// The SSD exists and is keyed.
        SsdReady = "SSD_READY",
        /// Loading and installing the transit applet.
        AppLoading = "APP_LOADING",
        /// The applet is installed.
        AppInstalled = "APP_INSTALLED",
        /// Personalising the applet.
        Personalising = "PERSONALISING",
        /// In service.
        Active = "ACTIVE",
        /// Locked.
        Locked = "LOCKED",
        /// Refunding the balance.
        Refunding = "REFUNDING",
        /// Deleting the applet (and SSD).
        Deleting = "DELETING",
        /// Deleted (terminal).
        Deleted = "DELETED",
        /// Moving out to another SE.
        TransferOut = "TRANSFER_OUT",
        /// Moving in from another SE.
        TransferIn = "TRANSFER_IN",
        /// `SSD_CREATING` failed; retry.
        FailedSsdCreating = "FAILED_SSD_CREATING",
        /// `APP_LOADING` failed; retry.
        FailedAppLoading = "FAILED_APP_LOADING",
        /// `PERSONALISING` failed; retry.
        FailedPersonalising = "FAILED_PERSONALISING",
        /// `REFUNDING` failed; retry.
        FailedRefunding = "FAILED_REFUNDING",
        /// `DELETING` failed; retry.
        FailedDeleting = "FAILED_DELETING",
        /// `TRANSFER_OUT` failed; retry.
        FailedTransferOut = "FAILED_TRANSFER_OUT",
        /// `TRANSFER_IN` failed; retry.
        FailedTransferIn = "FAILED_TRANSFER_IN",
    }
}

impl CardState {
    /// The failure state of a step (`SSD_CREATING → FAILED_SSD_CREATING`), or `None` for a state
    /// that is not a step.
    pub fn failed(self) -> Option<CardState> {
        use CardState::*;
        Some(match self {
            SsdCreating => FailedSsdCreating,
            AppLoading => FailedAppLoading,
            Personalising => FailedPersonalising,
            Refunding => FailedRefunding,
            Deleting => FailedDeleting,
            TransferOut => FailedTransferOut,
            TransferIn => FailedTransferIn,
            _ => return None,
        })
    }

    /// Whether the life cycle allows `self → next`.
    pub fn allows(self, next: CardState) -> bool {
        use CardState::*;
        if self.failed() == Some(next) || next.failed() == Some(self) {
            return true;
        }
        matches!(
            (self, next),
            (Initial, SsdCreating | TransferIn)
                | (TransferIn, SsdCreating)
                | (SsdCreating, SsdReady)
                | (SsdReady, AppLoading)
                | (AppLoading, AppInstalled)
                | (AppInstalled, Personalising)
                | (Personalising, Active)
                | (Active, Locked | Refunding | Deleting | TransferOut)
                | (Locked, Active)
                | (Refunding, Deleting)
                | (Deleting | TransferOut, Deleted)
        )
    }
}

/// A card instance to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCard {
    /// The SE it lives on (must be registered).
    pub seid: String,
    /// The card number (application serial number).
    pub card_no: String,
    /// The SSD's AID, when known.
    pub ssd_aid: Option<Vec<u8>>,
    /// The transit applet's AID, when known.
    pub app_aid: Option<Vec<u8>>,
    /// Key versions already fixed, by key set (versions only: never key values).
    pub key_versions: BTreeMap<String, u8>,
}

/// A card instance.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CardInstance {
    /// The SE.
    pub seid: String,
    /// The card number.
    pub card_no: String,
    /// Its life-cycle state.
    pub state: CardState,
    /// The SSD's AID.
    pub ssd_aid: Option<Vec<u8>>,
    /// The transit applet's AID.
    pub app_aid: Option<Vec<u8>>,
    /// Key versions by key set.
    pub key_versions: BTreeMap<String, u8>,
    /// Bumped by every change.
    pub version: u64,
    /// When it was recorded (Unix ms).
    pub created_ms: i64,
    /// When it last changed (Unix ms).
    pub updated_ms: i64,
    /// The device that holds it (engine instances).
    pub device_id: Option<String>,
    /// How its SSD is managed (`AUTHORIZED`, `DELEGATED`).
    pub management: Option<String>,
    /// The flow working on it, if one holds it.
    pub flow_id: Option<String>,
}

impl CardInstance {
    pub(crate) fn from_row(
        row: &AnyRow,
        key_versions: BTreeMap<String, u8>,
    ) -> Result<Self, Error> {
        let aid = |column: &str| -> Result<Option<Vec<u8>>, Error> {
            row.try_get::<Option<String>, _>(column)?
                .map(|h| unhex(Entity::CardInstance, &h))
                .transpose()
        };
        Ok(CardInstance {
            seid: row.try_get("seid")?,
            card_no: row.try_get("card_no")?,
            state: CardState::parse(&row.try_get::<String, _>("state")?)?,
            ssd_aid: aid("ssd_aid")?,
            app_aid: aid("app_aid")?,
            key_versions,
            version: unsigned(Entity::CardInstance, row.try_get("version")?)?,
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
            device_id: row.try_get("device_id")?,
            management: row.try_get("management")?,
            flow_id: row.try_get("flow_id")?,
        })
    }
}

fn card_id(seid: &str, card_no: &str) -> String {
    format!("{seid}/{card_no}")
}

impl Store {
    /// Records a card instance in state `NONE`, with its key versions, in one transaction.
    ///
    /// [`Error::NotFound`] if the SE is not registered, [`Error::AlreadyExists`] if the SE has
    /// this card number already.
    pub async fn create_card(&self, card: &NewCard) -> Result<CardInstance, Error> {
        let now = self.now();
        let id = card_id(&card.seid, &card.card_no);
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO card_instance \
             (seid, card_no, state, ssd_aid, app_aid, version, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
        )
        .bind(&card.seid)
        .bind(&card.card_no)
        .bind(CardState::Initial.as_str())
        .bind(hex_opt(card.ssd_aid.as_deref()))
        .bind(hex_opt(card.app_aid.as_deref()))
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::AlreadyExists {
                    what: Entity::CardInstance,
                    id,
                });
            }
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(Error::not_found(Entity::Se, &card.seid));
            }
            Err(e) => return Err(e.into()),
        }
        self.checkpoint("card.after_instance").await?;
        for (key_set, kvn) in &card.key_versions {
            sqlx::query(
                "INSERT INTO card_key_version (seid, card_no, key_set, kvn) VALUES ($1, $2, $3, $4)",
            )
            .bind(&card.seid)
            .bind(&card.card_no)
            .bind(key_set)
            .bind(i64::from(*kvn))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.card(&card.seid, &card.card_no).await
    }

    /// The card instance, or [`Error::NotFound`].
    pub async fn card(&self, seid: &str, card_no: &str) -> Result<CardInstance, Error> {
        let row = sqlx::query(
            "SELECT seid, card_no, state, ssd_aid, app_aid, version, created_ms, updated_ms, \
             device_id, management, flow_id FROM card_instance WHERE seid = $1 AND card_no = $2",
        )
        .bind(seid)
        .bind(card_no)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found(Entity::CardInstance, card_id(seid, card_no)))?;
        let keys = self.key_versions(seid, card_no).await?;
        CardInstance::from_row(&row, keys)
    }

    /// The card instances on an SE, by card number.
    pub async fn cards_on_se(&self, seid: &str) -> Result<Vec<CardInstance>, Error> {
        let rows = sqlx::query(
            "SELECT seid, card_no, state, ssd_aid, app_aid, version, created_ms, updated_ms, \
             device_id, management, flow_id FROM card_instance WHERE seid = $1 ORDER BY card_no",
        )
        .bind(seid)
        .fetch_all(&self.pool)
        .await?;
        let mut cards = Vec::with_capacity(rows.len());
        for row in &rows {
            let card_no: String = row.try_get("card_no")?;
            let keys = self.key_versions(seid, &card_no).await?;
            cards.push(CardInstance::from_row(row, keys)?);
        }
        Ok(cards)
    }

    pub(crate) async fn key_versions(
        &self,
        seid: &str,
        card_no: &str,
    ) -> Result<BTreeMap<String, u8>, Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT key_set, kvn FROM card_key_version WHERE seid = $1 AND card_no = $2",
        )
        .bind(seid)
        .bind(card_no)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(set, kvn)| {
                let kvn = u8::try_from(kvn).map_err(|_| Error::Corrupt {
                    what: Entity::CardInstance,
                    detail: format!("key version {kvn}"),
                })?;
                Ok((set, kvn))
            })
            .collect()
    }

    /// Moves the card instance from `from` to `to`: [`Error::IllegalTransition`] if §8 forbids it,
    /// [`Error::Conflict`] if the instance is no longer in `from`.
    pub async fn move_card(
        &self,
        seid: &str,
        card_no: &str,
        from: CardState,
        to: CardState,
    ) -> Result<CardInstance, Error> {
        if !from.allows(to) {
            return Err(Error::IllegalTransition {
                what: Entity::CardInstance,
                from: from.as_str(),
                to: to.as_str(),
            });
        }
        let done = sqlx::query(
            "UPDATE card_instance SET state = $1, version = version + 1, updated_ms = $2 \
             WHERE seid = $3 AND card_no = $4 AND state = $5",
        )
        .bind(to.as_str())
        .bind(self.now())
        .bind(seid)
        .bind(card_no)
        .bind(from.as_str())
        .execute(&self.pool)
        .await?;
        let card = self.card(seid, card_no).await?;
        if done.rows_affected() == 0 {
            return Err(Error::Conflict {
                what: Entity::CardInstance,
                id: card_id(seid, card_no),
                expected: from.to_string(),
                found: card.state.to_string(),
            });
        }
        Ok(card)
    }

    /// Records the AIDs of the instance's SSD and applet (a `None` leaves the stored one).
    pub async fn set_card_aids(
        &self,
        seid: &str,
        card_no: &str,
        ssd_aid: Option<&[u8]>,
        app_aid: Option<&[u8]>,
    ) -> Result<CardInstance, Error> {
        let done = sqlx::query(
            "UPDATE card_instance SET ssd_aid = COALESCE($1, ssd_aid), \
             app_aid = COALESCE($2, app_aid), version = version + 1, updated_ms = $3 \
             WHERE seid = $4 AND card_no = $5",
        )
        .bind(hex_opt(ssd_aid))
        .bind(hex_opt(app_aid))
        .bind(self.now())
        .bind(seid)
        .bind(card_no)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(
                Entity::CardInstance,
                card_id(seid, card_no),
            ));
        }
        self.card(seid, card_no).await
    }

    /// Records that the instance's key set `key_set` now has version `kvn` (after a PUT KEY the
    /// card confirmed). Only the version is stored, never the key.
    pub async fn set_key_version(
        &self,
        seid: &str,
        card_no: &str,
        key_set: &str,
        kvn: u8,
    ) -> Result<CardInstance, Error> {
        let mut tx = self.begin_write().await?;
        let touched = sqlx::query(
            "UPDATE card_instance SET version = version + 1, updated_ms = $1 \
             WHERE seid = $2 AND card_no = $3",
        )
        .bind(self.now())
        .bind(seid)
        .bind(card_no)
        .execute(&mut *tx)
        .await?;
        if touched.rows_affected() == 0 {
            return Err(Error::not_found(
                Entity::CardInstance,
                card_id(seid, card_no),
            ));
        }
        sqlx::query(
            "INSERT INTO card_key_version (seid, card_no, key_set, kvn) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (seid, card_no, key_set) DO UPDATE SET kvn = excluded.kvn",
        )
        .bind(seid)
        .bind(card_no)
        .bind(key_set)
        .bind(i64::from(kvn))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.card(seid, card_no).await
    }
}
