//! Top-up orders (tsm-gp.md §7, apply for payment / top-up), exactly once.
//!
//! One order per order id and one per payment order (unique columns); creating the same order
//! again returns it, a different order under a used id or payment is [`Error::AlreadyExists`].
//! The state moves by compare-and-set, and a MAC2 is issued for one card online counter only
//! once across all orders of that card instance.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::error::{Entity, Error, is_foreign_key_violation, is_unique_violation};
use crate::{Store, signed, text_enum, unhex, unsigned};

text_enum! {
    /// A top-up order's state.
    ///
    /// The engine's orders (client.md §4.2) go `CREATED → PAID → LOAD_REQUESTED → LOADED`
    /// (`PAID → LOADED` when the MAC2 and the credit are one move).
    ///
    /// `CREATED → INITIALISED → MAC2_ISSUED → COMPLETED`; `CREATED | INITIALISED → CANCELLED`;
    /// `MAC2_ISSUED → UNCONFIRMED` (no TAC came back: the card may or may not have credited) and
    /// from there `COMPLETED` or `CANCELLED` once the card's counters tell. `PAID → CANCELLED`
    /// when the claiming flow is abandoned with no MAC2 ever issued (refunded in the same move).
    pub enum TopupState: Entity::TopupOrder {
        /// Paid; nothing sent to the card yet.
        Created = "CREATED",
        /// INITIALIZE FOR LOAD answered (balance, online counter, MAC1 checked).
        Initialised = "INITIALISED",
        /// MAC2 issued for the recorded online counter: CREDIT FOR LOAD released.
        Mac2Issued = "MAC2_ISSUED",
        /// The card credited (TAC recorded) (terminal).
        Completed = "COMPLETED",
        /// No TAC came back; reconcile with the card.
        Unconfirmed = "UNCONFIRMED",
        /// Not credited; the payment is to be refunded (terminal).
        Cancelled = "CANCELLED",
        /// Paid (client.md §4.2); a flow may claim it for its load.
        Paid = "PAID",
        /// MAC2 issued for the claiming flow's load (client.md §4.2 `LOAD_REQUESTED`).
        LoadRequested = "LOAD_REQUESTED",
        /// Loaded: the card's TAC checked (client.md §4.2 `LOADED`, terminal).
        Loaded = "LOADED",
    }
}

impl TopupState {
    /// Whether `self → next` is allowed.
    pub fn allows(self, next: TopupState) -> bool {
        use TopupState::*;
        matches!(
            (self, next),
            (Created, Initialised | Cancelled)
                | (Initialised, Mac2Issued | Cancelled)
                | (Mac2Issued, Completed | Unconfirmed)
                | (Unconfirmed, Completed | Cancelled)
                | (Created, Paid)
                | (Paid, LoadRequested | Loaded | Cancelled)
                | (LoadRequested, Loaded)
        )
    }
}

/// A top-up order to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTopup {
    /// The order id.
    pub order_id: String,
    /// The payment order it is paid by.
    pub pay_order_id: String,
    /// The SE.
    pub seid: String,
    /// The card number (the card instance must exist).
    pub card_no: String,
    /// The amount in fen (> 0).
    pub amount_fen: u64,
}

/// What a transition records besides the state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopupUpdate {
    /// The card's online transaction counter the MAC2 is for (needed for `MAC2_ISSUED`).
    pub online_counter: Option<u16>,
    /// The card's TAC (needed for `COMPLETED`).
    pub tac: Option<Vec<u8>>,
}

/// A top-up order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopupOrder {
    /// The order id.
    pub order_id: String,
    /// The payment order.
    pub pay_order_id: String,
    /// The SE.
    pub seid: String,
    /// The card number.
    pub card_no: String,
    /// The amount in fen.
    pub amount_fen: u64,
    /// Its state.
    pub state: TopupState,
    /// The online counter the MAC2 was issued for.
    pub online_counter: Option<u16>,
    /// The card's TAC.
    pub tac: Option<Vec<u8>>,
    /// Bumped by every change.
    pub version: u64,
    /// When it was created (Unix ms).
    pub created_ms: i64,
    /// When it last changed (Unix ms).
    pub updated_ms: i64,
    /// The device that ordered it (engine orders).
    pub device_id: Option<String>,
    /// The payment channel (client.md §2 codes).
    pub pay_channel: Option<String>,
    /// The flow that claimed it for its load.
    pub flow_id: Option<String>,
    /// The balance after the load, fen.
    pub new_balance: Option<u64>,
}

impl TopupOrder {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, Error> {
        let counter: Option<i64> = row.try_get("online_counter")?;
        let online_counter = counter
            .map(|c| {
                u16::try_from(c).map_err(|_| Error::Corrupt {
                    what: Entity::TopupOrder,
                    detail: format!("online counter {c}"),
                })
            })
            .transpose()?;
        let tac: Option<String> = row.try_get("tac")?;
        Ok(TopupOrder {
            order_id: row.try_get("order_id")?,
            pay_order_id: row.try_get("pay_order_id")?,
            seid: row.try_get("seid")?,
            card_no: row.try_get("card_no")?,
            amount_fen: unsigned(Entity::TopupOrder, row.try_get("amount_fen")?)?,
            state: TopupState::parse(&row.try_get::<String, _>("state")?)?,
            online_counter,
            tac: tac.map(|t| unhex(Entity::TopupOrder, &t)).transpose()?,
            version: unsigned(Entity::TopupOrder, row.try_get("version")?)?,
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
            device_id: row.try_get("device_id")?,
            pay_channel: row.try_get("pay_channel")?,
            flow_id: row.try_get("flow_id")?,
            new_balance: row
                .try_get::<Option<i64>, _>("new_balance")?
                .map(|b| unsigned(Entity::TopupOrder, b))
                .transpose()?,
        })
    }

    fn same_order(&self, new: &NewTopup) -> bool {
        self.order_id == new.order_id
            && self.pay_order_id == new.pay_order_id
            && self.seid == new.seid
            && self.card_no == new.card_no
            && self.amount_fen == new.amount_fen
    }
}

pub(crate) const TOPUP_COLUMNS: &str = "order_id, pay_order_id, seid, card_no, amount_fen, state, \
                             online_counter, tac, version, created_ms, updated_ms, device_id, \
                             pay_channel, flow_id, new_balance";

impl Store {
    /// Creates an order of `device_id`, paid through `pay_channel`, in state `CREATED`, with
    /// the payment order id equal to the order id. The same order again returns it.
    pub async fn create_device_topup(
        &self,
        order: &NewTopup,
        device_id: &str,
        pay_channel: &str,
    ) -> Result<TopupOrder, Error> {
        let created = self.create_topup(order).await?;
        if created.device_id.is_some() {
            return Ok(created);
        }
        sqlx::query(
            "UPDATE topup_order SET device_id = $1, pay_channel = $2 \
             WHERE order_id = $3 AND device_id IS NULL",
        )
        .bind(device_id)
        .bind(pay_channel)
        .bind(&order.order_id)
        .execute(&self.pool)
        .await?;
        self.topup(&order.order_id).await
    }

    /// The orders of a card instance, oldest first.
    pub async fn topups_of_card(
        &self,
        seid: &str,
        card_no: &str,
    ) -> Result<Vec<TopupOrder>, Error> {
        let sql = format!(
            "SELECT {TOPUP_COLUMNS} FROM topup_order WHERE seid = $1 AND card_no = $2 \
             ORDER BY created_ms, order_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(seid)
            .bind(card_no)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(TopupOrder::from_row).collect()
    }

    /// Creates the order in state `CREATED`, or returns it if this very order exists already.
    ///
    /// [`Error::AlreadyExists`] if the order id or the payment order is taken by another order,
    /// [`Error::NotFound`] if the card instance does not exist.
    pub async fn create_topup(&self, order: &NewTopup) -> Result<TopupOrder, Error> {
        let inserted = sqlx::query(
            "INSERT INTO topup_order (order_id, pay_order_id, seid, card_no, amount_fen, state, \
             online_counter, tac, version, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, 1, $7, $7)",
        )
        .bind(&order.order_id)
        .bind(&order.pay_order_id)
        .bind(&order.seid)
        .bind(&order.card_no)
        .bind(signed(order.amount_fen)?)
        .bind(TopupState::Created.as_str())
        .bind(self.now())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => self.topup(&order.order_id).await,
            Err(e) if is_unique_violation(&e) => match self.topup(&order.order_id).await {
                Ok(existing) if existing.same_order(order) => Ok(existing),
                Ok(_) | Err(Error::NotFound { .. }) => Err(Error::AlreadyExists {
                    what: Entity::TopupOrder,
                    id: format!("{} (payment {})", order.order_id, order.pay_order_id),
                }),
                Err(e) => Err(e),
            },
            Err(e) if is_foreign_key_violation(&e) => Err(Error::not_found(
                Entity::CardInstance,
                format!("{}/{}", order.seid, order.card_no),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The order, or [`Error::NotFound`].
    pub async fn topup(&self, order_id: &str) -> Result<TopupOrder, Error> {
        let sql = format!("SELECT {TOPUP_COLUMNS} FROM topup_order WHERE order_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(order_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::not_found(Entity::TopupOrder, order_id))?;
        TopupOrder::from_row(&row)
    }

    /// Moves the order from `from` to `to`, recording `update`'s fields (a `None` keeps the
    /// stored value).
    ///
    /// `MAC2_ISSUED` needs the online counter and `COMPLETED` the TAC ([`Error::MissingField`]);
    /// a MAC2 already issued for that counter of the card is [`Error::AlreadyExists`]; an order no
    /// longer in `from` is [`Error::Conflict`]. `PAID → CANCELLED` is refused here: it goes with
    /// its refund through [`Store::commit_step`] ([`crate::TopupWrite::refund`]).
    pub async fn move_topup(
        &self,
        order_id: &str,
        from: TopupState,
        to: TopupState,
        update: &TopupUpdate,
    ) -> Result<TopupOrder, Error> {
        // `PAID → CANCELLED` is the abandoned flow's move only, with its refund, in
        // `Store::commit_step` (`TopupWrite::refund`).
        if !from.allows(to) || (from, to) == (TopupState::Paid, TopupState::Cancelled) {
            return Err(Error::IllegalTransition {
                what: Entity::TopupOrder,
                from: from.as_str(),
                to: to.as_str(),
            });
        }
        let current = self.topup(order_id).await?;
        let missing = |field| Error::MissingField {
            what: Entity::TopupOrder,
            to: to.as_str(),
            field,
        };
        if to == TopupState::Mac2Issued
            && update.online_counter.or(current.online_counter).is_none()
        {
            return Err(missing("online_counter"));
        }
        if to == TopupState::Completed && update.tac.is_none() && current.tac.is_none() {
            return Err(missing("tac"));
        }
        let result = sqlx::query(
            "UPDATE topup_order SET state = $1, online_counter = COALESCE($2, online_counter), \
             tac = COALESCE($3, tac), version = version + 1, updated_ms = $4 \
             WHERE order_id = $5 AND state = $6",
        )
        .bind(to.as_str())
        .bind(update.online_counter.map(i64::from))
        .bind(update.tac.as_deref().map(hex::encode))
        .bind(self.now())
        .bind(order_id)
        .bind(from.as_str())
        .execute(&self.pool)
        .await;
        let done = match result {
            Ok(done) => done,
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::AlreadyExists {
                    what: Entity::TopupOrder,
                    id: format!(
                        "MAC2 for {}/{} online counter {}",
                        current.seid,
                        current.card_no,
                        update
                            .online_counter
                            .map(|c| c.to_string())
                            .unwrap_or_default()
                    ),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let order = self.topup(order_id).await?;
        if done.rows_affected() == 0 {
            return Err(Error::Conflict {
                what: Entity::TopupOrder,
                id: order_id.to_string(),
                expected: from.to_string(),
                found: order.state.to_string(),
            });
        }
        Ok(order)
    }
}
