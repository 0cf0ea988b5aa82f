//! The store-backed payment provider (tsm-gp.md §7, client.md §4.2). `PaymentProvider` is
//! synchronous and the store is not, so what a step may ask is loaded before `Flow::next`
//! ([`Snapshot::load`]) and what it did is written back in the step's transaction
//! ([`Snapshot::writes`]). Every call is idempotent by its id, as the trait requires.

use std::collections::BTreeMap;

use ykt_store::{EscrowWrite, RefundWrite, Store, TopupState};
use ykt_tsm::{CardNumber, FlowKind, FlowState, Payment, PaymentError, PaymentProvider};

use super::EngineError;

/// What the provider knows for one step of one flow, and what the step did. (No Debug: it
/// holds full card numbers.)
#[derive(Default)]
pub struct Snapshot {
    paid: BTreeMap<String, Payment>,
    refunds: BTreeMap<String, Payment>,
    escrows: BTreeMap<String, (Payment, bool)>,
    refund_account: String,
    new_refunds: Vec<RefundWrite>,
    new_escrows: Vec<EscrowWrite>,
}

pub fn card_of(hex: &str) -> Option<CardNumber> {
    let bytes = ykt_tsm::hex::decode(hex)?;
    Some(CardNumber(bytes.try_into().ok()?))
}

impl Snapshot {
    /// Loads the order, refund and escrow the flow in `state` may touch.
    pub async fn load(
        store: &Store,
        flow_id: &str,
        state: &FlowState,
        refund_account: Option<&str>,
    ) -> Result<Self, EngineError> {
        let mut snapshot = Snapshot {
            refund_account: refund_account.unwrap_or_default().to_string(),
            ..Snapshot::default()
        };
        if state.kind == FlowKind::TopUp
            && let Some(order) = &state.order
        {
            // Only the flow that claimed a paid order sees it as paid (exactly one load).
            let row = store.topup(&order.order_id).await?;
            let paid = matches!(
                row.state,
                TopupState::Paid | TopupState::LoadRequested | TopupState::Loaded
            );
            if paid
                && row.flow_id.as_deref() == Some(flow_id)
                && let (Some(card), Ok(amount)) =
                    (card_of(&row.card_no), u32::try_from(row.amount_fen))
            {
                snapshot.paid.insert(
                    row.order_id.clone(),
                    Payment {
                        card_number: card,
                        amount,
                    },
                );
            }
        }
        let refund_id = state
            .transfer_id
            .clone()
            .unwrap_or_else(|| state.session_id.clone());
        if let Some(r) = store.refund(&refund_id).await?
            && let (Some(card), Ok(amount)) = (card_of(&r.card_no), u32::try_from(r.amount_fen))
        {
            snapshot.refunds.insert(
                refund_id.clone(),
                Payment {
                    card_number: card,
                    amount,
                },
            );
        }
        if let Some(transfer_id) = &state.transfer_id
            && let Some(e) = store.escrow(transfer_id).await?
            && let (Some(card), Ok(amount)) = (card_of(&e.card_no), u32::try_from(e.amount_fen))
        {
            snapshot.escrows.insert(
                transfer_id.clone(),
                (
                    Payment {
                        card_number: card,
                        amount,
                    },
                    e.settled,
                ),
            );
        }
        Ok(snapshot)
    }

    /// What the step did: refunds paid and escrows held or settled, for the step's transaction.
    pub fn writes(self) -> (Vec<RefundWrite>, Vec<EscrowWrite>) {
        (self.new_refunds, self.new_escrows)
    }
}

impl PaymentProvider for Snapshot {
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
            Some(_) => Ok(()),
            None => {
                self.refunds.insert(refund_id.to_string(), payment);
                self.new_refunds.push(RefundWrite {
                    refund_id: refund_id.to_string(),
                    card_no: card.danger_full(),
                    amount_fen: u64::from(amount),
                    account: self.refund_account.clone(),
                });
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
                    .insert(transfer_id.to_string(), (payment, false));
                self.new_escrows.push(EscrowWrite::Hold {
                    transfer_id: transfer_id.to_string(),
                    card_no: card.danger_full(),
                    amount_fen: u64::from(amount),
                });
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
        if !*settled {
            *settled = true;
            self.new_escrows.push(EscrowWrite::Settle {
                transfer_id: transfer_id.to_string(),
            });
        }
        Ok(())
    }
}
