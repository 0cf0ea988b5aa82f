//! Enrolled devices, named counters, and the read-only views an operator lists (all SEs, all
//! card instances, flows by status, row counts).

use sqlx::Row as _;

use crate::card::CardInstance;
use crate::error::{Entity, Error, is_unique_violation};
use crate::flow::{FLOW_COLUMNS, Flow, FlowStatus};
use crate::se::{SE_COLUMNS, Se};
use crate::{Store, unhex, unsigned};

/// An enrolled device: the key its envelopes verify under.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Device {
    /// The device id (its envelopes' `sender_id`).
    pub device_id: String,
    /// Its SM2 public key (SEC1 bytes).
    pub public_key: Vec<u8>,
    /// The device model it declared.
    pub model: String,
    /// When it enrolled (Unix ms).
    pub created_ms: i64,
}

/// How many rows each table holds (for metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Enrolled devices.
    pub devices: u64,
    /// Registered SEs.
    pub ses: u64,
    /// Card instances, by state name.
    pub cards_by_state: Vec<(String, u64)>,
    /// Flows, by status name.
    pub flows_by_status: Vec<(String, u64)>,
    /// Top-up orders, by state name.
    pub orders_by_state: Vec<(String, u64)>,
    /// Refunds paid.
    pub refunds: u64,
    /// Escrows held (settled or not).
    pub escrows: u64,
    /// Audit records.
    pub audit_records: u64,
}

const CARD_COLUMNS: &str = "seid, card_no, state, ssd_aid, app_aid, version, created_ms, \
                            updated_ms, device_id, management, flow_id";

impl Device {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, Error> {
        Ok(Device {
            device_id: row.try_get("device_id")?,
            public_key: unhex(Entity::Device, &row.try_get::<String, _>("public_key")?)?,
            model: row.try_get("model")?,
            created_ms: row.try_get("created_ms")?,
        })
    }
}

impl Store {
    /// Enrols the device with `public_key` under `device_id`; a key enrolled before keeps its
    /// first id (and that device is returned). [`Error::AlreadyExists`] if `device_id` is taken
    /// by another key.
    pub async fn enrol_device(
        &self,
        device_id: &str,
        public_key: &[u8],
        model: &str,
    ) -> Result<Device, Error> {
        let key = hex::encode(public_key);
        if let Some(existing) = self.device_by_key(&key).await? {
            return Ok(existing);
        }
        let inserted = sqlx::query(
            "INSERT INTO device (device_id, public_key, model, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(device_id)
        .bind(&key)
        .bind(model)
        .bind(self.now())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => self.device(device_id).await,
            Err(e) if is_unique_violation(&e) => match self.device_by_key(&key).await? {
                // Another process enrolled the same key at the same time.
                Some(existing) => Ok(existing),
                None => Err(Error::AlreadyExists {
                    what: Entity::Device,
                    id: device_id.to_string(),
                }),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn device_by_key(&self, key_hex: &str) -> Result<Option<Device>, Error> {
        let row = sqlx::query(
            "SELECT device_id, public_key, model, created_ms FROM device WHERE public_key = $1",
        )
        .bind(key_hex)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Device::from_row).transpose()
    }

    /// The device `device_id`, or [`Error::NotFound`].
    pub async fn device(&self, device_id: &str) -> Result<Device, Error> {
        let row = sqlx::query(
            "SELECT device_id, public_key, model, created_ms FROM device WHERE device_id = $1",
        )
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found(Entity::Device, device_id))?;
        Device::from_row(&row)
    }

    /// The next value of the counter `name` (1 the first time). Each value is given once, even
    /// if the caller never uses it.
    pub async fn next_counter(&self, name: &str) -> Result<u64, Error> {
        let (value,): (i64,) = sqlx::query_as(
            "INSERT INTO counter (name, value) VALUES ($1, 1) \
             ON CONFLICT (name) DO UPDATE SET value = counter.value + 1 RETURNING value",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        unsigned(Entity::Device, value)
    }

    /// Every registered SE, by SEID.
    pub async fn ses(&self) -> Result<Vec<Se>, Error> {
        let sql = format!("SELECT {SE_COLUMNS} FROM se ORDER BY seid");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Se::from_row).collect()
    }

    /// Every card instance (of one device, or of all), by SE and card number.
    pub async fn card_instances(
        &self,
        device_id: Option<&str>,
    ) -> Result<Vec<CardInstance>, Error> {
        let sql = format!(
            "SELECT {CARD_COLUMNS} FROM card_instance WHERE ($1 IS NULL OR device_id = $1) \
             ORDER BY seid, card_no"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(device_id)
            .fetch_all(&self.pool)
            .await?;
        let mut cards = Vec::with_capacity(rows.len());
        for row in &rows {
            let seid: String = row.try_get("seid")?;
            let card_no: String = row.try_get("card_no")?;
            let keys = self.key_versions(&seid, &card_no).await?;
            cards.push(CardInstance::from_row(row, keys)?);
        }
        Ok(cards)
    }

    /// The card instances with card number `card_no`, on any SE.
    pub async fn cards_with_number(&self, card_no: &str) -> Result<Vec<CardInstance>, Error> {
        let sql =
            format!("SELECT {CARD_COLUMNS} FROM card_instance WHERE card_no = $1 ORDER BY seid");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(card_no)
            .fetch_all(&self.pool)
            .await?;
        let mut cards = Vec::with_capacity(rows.len());
        for row in &rows {
            let seid: String = row.try_get("seid")?;
            let keys = self.key_versions(&seid, card_no).await?;
            cards.push(CardInstance::from_row(row, keys)?);
        }
        Ok(cards)
    }

    /// The flows with `status`, oldest first.
    pub async fn flows_with_status(&self, status: FlowStatus) -> Result<Vec<Flow>, Error> {
        let sql =
            format!("SELECT {FLOW_COLUMNS} FROM flow WHERE status = $1 ORDER BY created_ms, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Flow::from_row).collect()
    }

    /// Row counts for metrics.
    pub async fn counts(&self) -> Result<Counts, Error> {
        let count = |table: &'static str| async move {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_one(&self.pool)
                .await?;
            unsigned(Entity::AuditRecord, n)
        };
        let grouped = |table: &'static str, column: &'static str| async move {
            let sql = format!(
                "SELECT {column}, COUNT(*) FROM {table} GROUP BY {column} ORDER BY {column}"
            );
            let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(&self.pool)
                .await?;
            rows.into_iter()
                .map(|(k, n)| Ok((k, unsigned(Entity::AuditRecord, n)?)))
                .collect::<Result<Vec<_>, Error>>()
        };
        Ok(Counts {
            devices: count("device").await?,
            ses: count("se").await?,
            cards_by_state: grouped("card_instance", "state").await?,
            flows_by_status: grouped("flow", "status").await?,
            orders_by_state: grouped("topup_order", "state").await?,
            refunds: count("refund").await?,
            escrows: count("escrow").await?,
            audit_records: count("audit_log").await?,
        })
    }

    /// Every text value of every row of every table the store owns, as `(table, text)`: what a
    /// test scans to prove that no key value is stored.
    #[doc(hidden)]
    pub async fn danger_dump_text(&self) -> Result<Vec<(String, String)>, Error> {
        const TABLES: &[(&str, &[&str])] = &[
            ("se", &["seid", "cplc", "profile", "state"]),
            (
                "card_instance",
                &[
                    "seid",
                    "card_no",
                    "state",
                    "ssd_aid",
                    "app_aid",
                    "device_id",
                    "management",
                    "flow_id",
                ],
            ),
            ("card_key_version", &["seid", "card_no", "key_set"]),
            (
                "flow",
                &["id", "kind", "seid", "step", "status", "state", "device_id"],
            ),
            (
                "idempotency",
                &["scope", "request_id", "request_hash", "response"],
            ),
            ("seen_message", &["sender", "message_id"]),
            (
                "topup_order",
                &[
                    "order_id",
                    "pay_order_id",
                    "seid",
                    "card_no",
                    "state",
                    "tac",
                    "device_id",
                    "pay_channel",
                    "flow_id",
                ],
            ),
            (
                "audit_log",
                &["kind", "actor", "subject", "detail", "prev_hash", "hash"],
            ),
            ("audit_head", &["hash"]),
            ("device", &["device_id", "public_key", "model"]),
            ("counter", &["name"]),
            ("refund", &["refund_id", "card_no", "account"]),
            ("escrow", &["transfer_id", "card_no", "claimed_by"]),
        ];
        let mut out = Vec::new();
        for (table, columns) in TABLES {
            for column in *columns {
                let sql = format!("SELECT {column} FROM {table}");
                let rows: Vec<(Option<String>,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await?;
                out.extend(
                    rows.into_iter()
                        .filter_map(|(v,)| v)
                        .map(|v| (format!("{table}.{column}"), v)),
                );
            }
        }
        Ok(out)
    }
}
