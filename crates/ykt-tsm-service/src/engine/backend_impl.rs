//! The HTTP layer's [`Backend`] over the engine: delegation, with the engine's errors as
//! result codes. The messages are the errors' own texts, which name no card data, key or
//! status word; a store failure's text goes to the log only (`Code::Internal`).

use std::sync::Arc;

use ykt_crypto::Sm2PublicKey;
use ykt_store::{FlowStatus, Store};
use ykt_tsm::RelayResponse;
use ykt_tsm::api::{CardsResp, FlowResp, OrderResp, TopupOrderReq};

use super::{Engine, EngineError, Start};
use crate::http::backend::{self as b, Backend, BackendError, BackendFuture, FlowView};

impl From<EngineError> for BackendError {
    fn from(e: EngineError) -> Self {
        backend_error(&e)
    }
}

/// The result code and message an engine error answers with (the one conversion, so that an
/// answer stored with a move is the answer given).
pub(super) fn backend_error(e: &EngineError) -> BackendError {
    BackendError::new(e.code(), e.to_string())
}

fn start_of(start: b::Start) -> Start {
    match start {
        b::Start::OpenCard(r) => Start::OpenCard(r),
        b::Start::TopUp(r) => Start::TopUp(r),
        b::Start::DeleteCard(r) => Start::DeleteCard(r),
        b::Start::Refund(r) => Start::Refund(r),
        b::Start::TransferOut(r) => Start::TransferOut(r),
        b::Start::TransferIn(r) => Start::TransferIn(r),
        b::Start::Lock(r) => Start::Lock(r),
        b::Start::Unlock(r) => Start::Unlock(r),
        b::Start::AppQuery(r) => Start::AppQuery(r),
        b::Start::CardQuery(r) => Start::CardQuery(r),
    }
}

impl Backend for Engine {
    fn enrol(&self, device_pub: &Sm2PublicKey, model: &str) -> impl BackendFuture<String> {
        let (engine, key, model) = (self.clone(), device_pub.clone(), model.to_owned());
        async move { Ok(engine.enrol(&key, &model).await?) }
    }

    fn device_key(&self, device_id: &str) -> impl BackendFuture<Sm2PublicKey> {
        let (engine, device) = (self.clone(), device_id.to_owned());
        async move { Ok(engine.device_key(&device).await?) }
    }

    fn start(
        &self,
        device_id: &str,
        txn_id: &str,
        start: b::Start,
        now_ms: i64,
    ) -> impl BackendFuture<FlowResp> {
        let (engine, device, txn) = (self.clone(), device_id.to_owned(), txn_id.to_owned());
        async move { Ok(engine.start(&device, &txn, start_of(start), now_ms).await?) }
    }

    fn start_answered(
        &self,
        device_id: &str,
        txn_id: &str,
        start: b::Start,
        now_ms: i64,
        answer: Arc<b::StepAnswer>,
    ) -> impl BackendFuture<FlowResp> {
        let (engine, device, txn) = (self.clone(), device_id.to_owned(), txn_id.to_owned());
        async move {
            Ok(engine
                .start_answered(&device, &txn, start_of(start), now_ms, Some(&answer))
                .await?)
        }
    }

    fn apdu_result(
        &self,
        device_id: &str,
        txn_id: &str,
        response: &RelayResponse,
        now_ms: i64,
    ) -> impl BackendFuture<FlowResp> {
        let (engine, device, txn, response) = (
            self.clone(),
            device_id.to_owned(),
            txn_id.to_owned(),
            response.clone(),
        );
        async move { Ok(engine.apdu_result(&device, &txn, &response, now_ms).await?) }
    }

    fn apdu_result_answered(
        &self,
        device_id: &str,
        txn_id: &str,
        response: &RelayResponse,
        now_ms: i64,
        answer: Arc<b::StepAnswer>,
    ) -> impl BackendFuture<FlowResp> {
        let (engine, device, txn, response) = (
            self.clone(),
            device_id.to_owned(),
            txn_id.to_owned(),
            response.clone(),
        );
        async move {
            Ok(engine
                .apdu_result_answered(&device, &txn, &response, now_ms, Some(&answer))
                .await?)
        }
    }

    fn resume(&self, device_id: &str, txn_id: &str, now_ms: i64) -> impl BackendFuture<FlowResp> {
        let (engine, device, txn) = (self.clone(), device_id.to_owned(), txn_id.to_owned());
        async move { Ok(engine.resume(&device, &txn, now_ms).await?) }
    }

    fn resume_answered(
        &self,
        device_id: &str,
        txn_id: &str,
        now_ms: i64,
        answer: Arc<b::StepAnswer>,
    ) -> impl BackendFuture<FlowResp> {
        let (engine, device, txn) = (self.clone(), device_id.to_owned(), txn_id.to_owned());
        async move {
            Ok(engine
                .resume_answered(&device, &txn, now_ms, Some(&answer))
                .await?)
        }
    }

    fn flow(&self, device_id: &str, txn_id: &str) -> impl BackendFuture<FlowResp> {
        let (engine, device, txn) = (self.clone(), device_id.to_owned(), txn_id.to_owned());
        async move { Ok(Engine::flow(&engine, &device, &txn).await?) }
    }

    fn create_order(&self, device_id: &str, req: &TopupOrderReq) -> impl BackendFuture<OrderResp> {
        let (engine, device, req) = (self.clone(), device_id.to_owned(), req.clone());
        async move { Ok(engine.create_order(&device, &req).await?) }
    }

    fn order(&self, device_id: &str, order_id: &str) -> impl BackendFuture<OrderResp> {
        let (engine, device, order) = (self.clone(), device_id.to_owned(), order_id.to_owned());
        async move { Ok(engine.order(&device, &order).await?) }
    }

    fn test_pay(&self, device_id: &str, order_id: &str) -> impl BackendFuture<OrderResp> {
        let (engine, device, order) = (self.clone(), device_id.to_owned(), order_id.to_owned());
        async move { Ok(engine.test_pay(&device, &order).await?) }
    }

    fn cards(&self, device_id: &str) -> impl BackendFuture<CardsResp> {
        let (engine, device) = (self.clone(), device_id.to_owned());
        async move { Ok(engine.cards(&device).await?) }
    }

    fn store(&self) -> &Store {
        Engine::store(self)
    }

    /// Flows of any status (the default lists running ones only).
    fn admin_flows(
        &self,
        status: FlowStatus,
        seid: Option<&str>,
    ) -> impl BackendFuture<Vec<FlowView>> {
        let store = Engine::store(self).clone();
        let seid = seid.map(str::to_owned);
        async move {
            Ok(store
                .flows_with_status(status)
                .await?
                .iter()
                .filter(|f| seid.is_none() || f.seid == seid)
                .map(FlowView::from)
                .collect())
        }
    }
}
