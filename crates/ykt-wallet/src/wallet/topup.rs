//! 充值 (client.md §4): the order, the payment, the load and its journal.

use super::*;

impl Wallet {
    /// 充值 (client.md §4.1): a top-up order, its payment, then the load. With
    /// [`proposals::TEST_PAY_CHANNEL`] the wallet pays through the test provider (`TestPayReq`);
    /// with a real channel the app pays through that channel's SDK first, and this checks the
    /// order is paid ([`WalletError::Refused`] with `NotPaid` otherwise; [`Self::load`] later).
    #[allow(clippy::too_many_arguments)]
    pub fn top_up<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        card: &CardNo,
        amount: u32,
        pay_channel: &str,
    ) -> Result<TopUp, WalletError> {
        let record = self.card_record(card)?;
        self.enrolment()?;
        (links.progress)(Progress {
            step: "order".into(),
            index: 0,
            count: 3,
        });
        // client.md §4.1 step 1: the order.
        let order_txn = new_id(rng);
        let order: OrderResp = self.call(
            links,
            now_ms,
            rng,
            api::TOPUP_ORDER,
            &order_txn,
            &TopupOrderReq {
                card_no: record.card_no.danger_full().into(),
                seid: record.seid.danger_full().into(),
                amount,
                pay_channel: pay_channel.into(),
            },
        )?;
        self.state.journal.push(JournalEntry {
            order_no: order.order_id.clone(),
            txn_id: None,
            card_hash: card_hash(card),
            step: JournalStep::Ordered,
            balance_before: None,
            online_counter_before: None,
            amount,
            last_sw: None,
        });
        links.persist.persist(&self.state)?;
        // Step 2: the payment. The client never decides "paid" itself: the TSM's order says so.
        (links.progress)(Progress {
            step: "pay".into(),
            index: 1,
            count: 3,
        });
        let def = if pay_channel == proposals::TEST_PAY_CHANNEL {
            api::TEST_PAY
        } else {
            api::ORDER_QUERY
        };
        let paid: OrderResp = self.call(
            links,
            now_ms,
            rng,
            def,
            &order_txn,
            &OrderReq {
                order_id: order.order_id.clone(),
            },
        )?;
        if paid.order_id != order.order_id {
            return Err(WalletError::Protocol);
        }
        if paid.state != "PAID" {
            return Err(WalletError::Refused(Code::NotPaid));
        }
        self.load(links, now_ms, rng, card, &order.order_id)
    }

    /// client.md §4.1 steps 3–6: the load of a paid order (`TopupReq`), INITIALIZE and CREDIT
    /// FOR LOAD relayed with the journal saved before each.
    pub fn load<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        card: &CardNo,
        order_id: &str,
    ) -> Result<TopUp, WalletError> {
        self.card_record(card)?;
        self.enrolment()?;
        let txn_id = new_id(rng);
        let hash = card_hash(card);
        let entry = match self
            .state
            .journal
            .iter_mut()
            .find(|e| e.order_no == order_id)
        {
            Some(e) => e,
            None => {
                self.state.journal.push(JournalEntry {
                    order_no: order_id.into(),
                    txn_id: None,
                    card_hash: hash,
                    step: JournalStep::Paid,
                    balance_before: None,
                    online_counter_before: None,
                    amount: 0,
                    last_sw: None,
                });
                let n = self.state.journal.len() - 1;
                &mut self.state.journal[n]
            }
        };
        entry.step = JournalStep::Paid;
        entry.txn_id = Some(txn_id.clone());
        self.state.flows.push(OpenFlow {
            txn_id: txn_id.clone(),
            kind: FlowKind::TopUp,
            card_no: Some(card.clone()),
            started_ms: now_ms,
        });
        links.persist.persist(&self.state)?;
        let body = OrderReq {
            order_id: order_id.into(),
        };
        let first = self.call(links, now_ms, rng, api::TOPUP, &txn_id, &body)?;
        let outcome = self.drive(links, now_ms, rng, &txn_id, first)?;
        self.finish(links, now_ms, FlowKind::TopUp, Some(card), outcome)?
            .top_up
            .ok_or(WalletError::Protocol)
    }

    /// client.md §4.2: the journal entry of a top-up is written and saved before each card
    /// command; a relay message with CREDIT FOR LOAD marks "MAC2 issued".
    pub(super) fn journal_before(
        &mut self,
        links: &mut Links<'_>,
        txn_id: &str,
        relay: &RelayRequest,
    ) -> Result<(), WalletError> {
        let Some(entry) = self
            .state
            .journal
            .iter_mut()
            .find(|e| e.txn_id.as_deref() == Some(txn_id))
        else {
            return Ok(());
        };
        entry.step = if relay
            .capdus
            .iter()
            .any(|c| is_credit_for_load(c.as_bytes()))
        {
            JournalStep::CreditForLoad
        } else if entry.step == JournalStep::CreditForLoad {
            // Commands after the credit (a proof read on resume) keep the stronger step.
            JournalStep::CreditForLoad
        } else {
            JournalStep::InitializeForLoad
        };
        links.persist.persist(&self.state)?;
        Ok(())
    }

    /// Notes the SE's answers in the journal: the last status word, and the balance and online
    /// counter before the load from INITIALIZE FOR LOAD. True when an entry changed.
    pub(super) fn journal_after(
        &mut self,
        txn_id: &str,
        relay: &RelayRequest,
        answer: Option<&RelayResponse>,
    ) -> bool {
        let Some(entry) = self
            .state
            .journal
            .iter_mut()
            .find(|e| e.txn_id.as_deref() == Some(txn_id))
        else {
            return false;
        };
        let Some(answer) = answer else {
            entry.last_sw = None;
            return true;
        };
        for (capdu, rapdu) in relay.capdus.iter().zip(&answer.rapdus) {
            let r = rapdu.as_bytes();
            if is_initialize_for_load(capdu.as_bytes()) && r.len() == 18 && sw_of(r) == [0x90, 0x00]
            {
                // e-purse.md §4.3: balance (4) ‖ online counter (2) ‖ key version ‖ algorithm
                // ‖ random (4) ‖ MAC1 (4). Only the first two are kept.
                entry.balance_before = Some(u32::from_be_bytes([r[0], r[1], r[2], r[3]]));
                entry.online_counter_before = Some(u16::from_be_bytes([r[4], r[5]]));
            }
        }
        entry.last_sw = answer
            .rapdus
            .last()
            .map(|r| ykt_tsm::hex::encode(&sw_of(r.as_bytes())));
        true
    }
}
