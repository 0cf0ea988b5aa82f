//! The card life-cycle flows through the TSM (tsm-gp.md §7): open card, query, delete, card
//! return, transfer out and in, and resume.

use super::*;

impl Wallet {
    /// 申请开卡 (tsm-gp.md §7 "Open card", client.md §2 application download and
    /// personalisation): the TSM's scripts relayed to the SE; the new card joins the wallet.
    pub fn open_card<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        management: Management,
        city_code: &str,
    ) -> Result<CardRecord, WalletError> {
        let body = OpenCardReq {
            management,
            city_code: city_code.into(),
        };
        let outcome = self.start_flow(
            links,
            now_ms,
            rng,
            api::OPEN_CARD,
            FlowKind::OpenCard,
            None,
            &body,
        )?;
        self.finish(links, now_ms, FlowKind::OpenCard, None, outcome)
            .and_then(|f| f.card.ok_or(WalletError::Protocol))
    }

    /// 查询 through the TSM (`CardQueryReq`): the card's data as the TSM reads it on the SE.
    pub fn query<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        card: &CardNo,
    ) -> Result<CardQuery, WalletError> {
        let body = self.card_req(card)?;
        let outcome = self.start_flow(
            links,
            now_ms,
            rng,
            api::CARD_QUERY,
            FlowKind::CardDataQuery,
            Some(card),
            &body,
        )?;
        let finished = self.finish(links, now_ms, FlowKind::CardDataQuery, Some(card), outcome)?;
        Ok(CardQuery {
            card_no: card.clone(),
            balance: finished.balance,
        })
    }

    /// 删除卡片 (`DeleteCardReq`): the card leaves the SE and the wallet.
    pub fn delete<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        card: &CardNo,
    ) -> Result<(), WalletError> {
        let body = self.card_req(card)?;
        let outcome = self.start_flow(
            links,
            now_ms,
            rng,
            api::DELETE_CARD,
            FlowKind::DeleteCard,
            Some(card),
            &body,
        )?;
        self.finish(links, now_ms, FlowKind::DeleteCard, Some(card), outcome)?;
        Ok(())
    }

    /// 退卡 (`RefundReq`): the balance proven on the SE is refunded to `refund_account`, the card
    /// deleted. Returns the refund in fen.
    pub fn refund<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        card: &CardNo,
        refund_account: &str,
    ) -> Result<u32, WalletError> {
        let req = self.card_req(card)?;
        let body = RefundReq {
            card_no: req.card_no,
            seid: req.seid,
            refund_account: refund_account.into(),
        };
        let outcome = self.start_flow(
            links,
            now_ms,
            rng,
            api::REFUND,
            FlowKind::CardReturn,
            Some(card),
            &body,
        )?;
        self.finish(links, now_ms, FlowKind::CardReturn, Some(card), outcome)?
            .refund
            .ok_or(WalletError::Protocol)
    }

    /// 迁卡 out (`TransferOutReq`): the balance escrowed, the card deleted from this SE; the
    /// code goes to the new phone.
    pub fn transfer_out<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        card: &CardNo,
    ) -> Result<TransferCode, WalletError> {
        let body = self.card_req(card)?;
        let outcome = self.start_flow(
            links,
            now_ms,
            rng,
            api::TRANSFER_OUT,
            FlowKind::TransferOut,
            Some(card),
            &body,
        )?;
        self.finish(links, now_ms, FlowKind::TransferOut, Some(card), outcome)?
            .transfer_code
            .ok_or(WalletError::Protocol)
    }

    /// 迁卡 in (`TransferInReq`): the card opened on this SE with its number and escrowed
    /// balance.
    pub fn transfer_in<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        code: &TransferCode,
        management: Management,
    ) -> Result<CardRecord, WalletError> {
        let body = TransferInReq {
            transfer_code: code.reveal().into(),
            management,
        };
        let outcome = self.start_flow(
            links,
            now_ms,
            rng,
            api::TRANSFER_IN,
            FlowKind::TransferIn,
            None,
            &body,
        )?;
        self.finish(links, now_ms, FlowKind::TransferIn, None, outcome)?
            .card
            .ok_or(WalletError::Protocol)
    }

    /// Continues a flow left open (`ResumeReq`, client.md §4.2): the TSM probes the SE before it
    /// re-sends anything that changes the card; the outcome is applied as the flow's own.
    pub fn resume<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        txn_id: &str,
    ) -> Result<Resumed, WalletError> {
        let flow = self
            .state
            .flows
            .iter()
            .find(|f| f.txn_id == txn_id)
            .cloned()
            .ok_or(WalletError::UnknownFlow)?;
        let first = match self.call(links, now_ms, rng, api::RESUME, txn_id, &api::Empty {}) {
            // The request that would have started it never reached the TSM (or was refused
            // before the flow began): nothing to finish, and nothing to remember.
            Err(WalletError::Refused(Code::FlowNotFound)) => {
                self.state.flows.retain(|f| f.txn_id != txn_id);
                links.persist.persist(&self.state)?;
                return Err(WalletError::UnknownFlow);
            }
            other => other?,
        };
        let outcome = self.drive(links, now_ms, rng, txn_id, first)?;
        let finished = self.finish(links, now_ms, flow.kind, flow.card_no.as_ref(), outcome)?;
        Ok(Resumed {
            kind: flow.kind,
            card: finished.card,
            top_up: finished.top_up,
        })
    }
}
