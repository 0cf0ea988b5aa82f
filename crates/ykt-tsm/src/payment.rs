//! The payment side of 申请支付 (top-up), card return and transfer (tsm-gp.md §7, client.md §4):
//! a [`PaymentProvider`] adapter confirms that an order is paid, pays refunds and holds
//! transferred balances in escrow; [`TestProvider`] is the built-in one for tests.
//! [`OrderBook`] is what makes a top-up happen exactly once per order.

use alloc::collections::BTreeMap;
use alloc::string::String;

use serde::{Deserialize, Serialize};

use crate::error::{Error, PaymentError};
use crate::hex::Hex;
use crate::model::CardNumber;

/// An order to load `amount` fen onto a card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRef {
    /// The order id (the payment provider's and the idempotency key of the top-up).
    pub order_id: String,
    /// The amount in fen.
    pub amount: u32,
}

/// What the provider says was paid (or escrowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payment {
    /// The card the money is for.
    pub card_number: CardNumber,
    /// The amount in fen.
    pub amount: u32,
}

/// A payment provider (bank, wallet operator) as the SP-TSM sees it. Every call is idempotent
/// by its id, so a resumed flow may repeat it.
pub trait PaymentProvider {
    /// Is `order_id` paid, for which card and how much?
    fn confirm(&mut self, order_id: &str) -> Result<Payment, PaymentError>;
    /// Refunds `amount` for `card` (card return); once per `refund_id`.
    fn refund(
        &mut self,
        refund_id: &str,
        card: &CardNumber,
        amount: u32,
    ) -> Result<(), PaymentError>;
    /// Holds `amount` of `card` in escrow for the transfer `transfer_id`.
    fn escrow(
        &mut self,
        transfer_id: &str,
        card: &CardNumber,
        amount: u32,
    ) -> Result<(), PaymentError>;
    /// What is held for `transfer_id`.
    fn escrowed(&mut self, transfer_id: &str) -> Result<Payment, PaymentError>;
    /// Releases the escrow of `transfer_id` once its balance is on the new card.
    fn settle_escrow(&mut self, transfer_id: &str) -> Result<(), PaymentError>;
}

/// A provider in memory: orders are paid by the test, refunds and escrows are recorded.
#[derive(Debug, Default)]
pub struct TestProvider {
    paid: BTreeMap<String, Payment>,
    /// Refunds paid, by refund id.
    pub refunds: BTreeMap<String, Payment>,
    /// Escrows, by transfer id, with "settled".
    pub escrows: BTreeMap<String, (Payment, bool)>,
}

impl TestProvider {
    /// A provider with no orders.
    pub fn new() -> Self {
        Self::default()
    }

    /// The holder paid `amount` for `card` under `order_id`.
    pub fn pay(&mut self, order_id: &str, card: CardNumber, amount: u32) {
        self.paid.insert(
            String::from(order_id),
            Payment {
                card_number: card,
                amount,
            },
        );
    }
}

impl PaymentProvider for TestProvider {
    fn confirm(&mut self, order_id: &str) -> Result<Payment, PaymentError> {
        self.paid
            .get(order_id)
            .copied()
            .ok_or(PaymentError::NotPaid)
    }

    fn refund(
        &mut self,
        refund_id: &str,
        card: &CardNumber,
        amount: u32,
    ) -> Result<(), PaymentError> {
        let payment = Payment {
            card_number: *card,
            amount,
        };
        match self.refunds.get(refund_id) {
            Some(p) if *p != payment => Err(PaymentError::AmountMismatch),
            _ => {
                self.refunds.insert(String::from(refund_id), payment);
                Ok(())
            }
        }
    }

    fn escrow(
        &mut self,
        transfer_id: &str,
        card: &CardNumber,
        amount: u32,
    ) -> Result<(), PaymentError> {
        let payment = Payment {
            card_number: *card,
            amount,
        };
        match self.escrows.get(transfer_id) {
            Some((p, _)) if *p != payment => Err(PaymentError::AmountMismatch),
            Some(_) => Ok(()),
            None => {
                self.escrows
                    .insert(String::from(transfer_id), (payment, false));
                Ok(())
            }
        }
    }

    fn escrowed(&mut self, transfer_id: &str) -> Result<Payment, PaymentError> {
        self.escrows
            .get(transfer_id)
            .map(|(p, _)| *p)
            .ok_or(PaymentError::UnknownOrder)
    }

    fn settle_escrow(&mut self, transfer_id: &str) -> Result<(), PaymentError> {
        let (_, settled) = self
            .escrows
            .get_mut(transfer_id)
            .ok_or(PaymentError::UnknownOrder)?;
        *settled = true;
        Ok(())
    }
}

/// A completed online load (the outcome of a top-up).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReceipt {
    /// The order (or transfer) id.
    pub order_id: String,
    /// The amount loaded, fen.
    pub amount: u32,
    /// The balance after the load, fen.
    pub new_balance: u32,
    /// The card's TAC over the load, checked by the issuer's vault.
    pub tac: Hex,
}

/// Where an order is (the SP-TSM's record; a store persists it with the flow's state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum OrderState {
    /// A top-up flow (this session) is loading it.
    Loading {
        /// The flow's session id.
        session_id: String,
    },
    /// Loaded.
    Loaded(LoadReceipt),
}

/// Exactly once per order (tsm-gp.md §7 `request_id` idempotency): an order starts one top-up
/// session, and a loaded order is never loaded again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderBook {
    orders: BTreeMap<String, OrderState>,
}

impl OrderBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims `order_id` for `session_id`; the same session may claim it again (resume).
    pub fn begin(&mut self, order_id: &str, session_id: &str) -> Result<(), Error> {
        match self.orders.get(order_id) {
            Some(OrderState::Loaded(_)) => Err(Error::DuplicateOrder),
            Some(OrderState::Loading { session_id: s }) if s != session_id => {
                Err(Error::DuplicateOrder)
            }
            _ => {
                self.orders.insert(
                    String::from(order_id),
                    OrderState::Loading {
                        session_id: String::from(session_id),
                    },
                );
                Ok(())
            }
        }
    }

    /// Records the load of an order.
    pub fn complete(&mut self, receipt: LoadReceipt) {
        self.orders
            .insert(receipt.order_id.clone(), OrderState::Loaded(receipt));
    }

    /// The order's state.
    pub fn state(&self, order_id: &str) -> Option<&OrderState> {
        self.orders.get(order_id)
    }
}
