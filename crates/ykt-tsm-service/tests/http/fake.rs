//! An in-memory backend that counts its calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ykt_crypto::Sm2PublicKey;
use ykt_envelope::{Code, key_id_sm2};
use ykt_store::Store;
use ykt_tsm::RelayResponse;
use ykt_tsm::api::{CardSummary, CardsResp, FlowResp, FlowStatus, OrderResp, TopupOrderReq};
use ykt_tsm::flow::FlowKind;
use ykt_tsm_service::http::{Backend, BackendError, Start};

#[derive(Default)]
struct Inner {
    devices: Mutex<HashMap<String, Sm2PublicKey>>,
    calls: Mutex<HashMap<&'static str, usize>>,
    fail_next: Mutex<Option<BackendError>>,
    delay_ms: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct FakeBackend {
    store: Store,
    inner: Arc<Inner>,
}

impl FakeBackend {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            inner: Arc::default(),
        }
    }

    /// How many times `method` was called.
    pub fn calls(&self, method: &str) -> usize {
        self.inner
            .calls
            .lock()
            .unwrap()
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// The next business call fails with `e`.
    pub fn fail_next(&self, e: BackendError) {
        *self.inner.fail_next.lock().unwrap() = Some(e);
    }

    /// Every later `start` takes this long.
    pub fn delay_starts(&self, ms: u64) {
        self.inner
            .delay_ms
            .store(ms, std::sync::atomic::Ordering::SeqCst);
    }

    fn called(&self, method: &'static str) -> Result<(), BackendError> {
        *self.inner.calls.lock().unwrap().entry(method).or_default() += 1;
        match self.inner.fail_next.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn flow(txn_id: &str, kind: FlowKind, status: FlowStatus) -> FlowResp {
    FlowResp {
        txn_id: txn_id.to_string(),
        kind,
        status,
        instance_state: "NONE".into(),
        step: Some("select_isd".into()),
        step_index: 0,
        step_count: 3,
        relay: None,
        outcome: None,
    }
}

impl Backend for FakeBackend {
    async fn enrol(&self, device_pub: &Sm2PublicKey, _model: &str) -> Result<String, BackendError> {
        self.called("enrol")?;
        let id = format!("DEV-{}", key_id_sm2(device_pub));
        self.inner
            .devices
            .lock()
            .unwrap()
            .insert(id.clone(), device_pub.clone());
        Ok(id)
    }

    async fn device_key(&self, device_id: &str) -> Result<Sm2PublicKey, BackendError> {
        self.inner
            .devices
            .lock()
            .unwrap()
            .get(device_id)
            .cloned()
            .ok_or_else(|| BackendError::new(Code::UnknownSender, "no such device"))
    }

    async fn start(
        &self,
        _device_id: &str,
        txn_id: &str,
        start: Start,
        _now_ms: i64,
    ) -> Result<FlowResp, BackendError> {
        self.called("start")?;
        let delay = self
            .inner
            .delay_ms
            .load(std::sync::atomic::Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        let kind = match start {
            Start::OpenCard(_) => FlowKind::OpenCard,
            Start::Lock(_) => FlowKind::Lock,
            _ => FlowKind::CardDataQuery,
        };
        Ok(flow(txn_id, kind, FlowStatus::Running))
    }

    async fn apdu_result(
        &self,
        _device_id: &str,
        txn_id: &str,
        _response: &RelayResponse,
        _now_ms: i64,
    ) -> Result<FlowResp, BackendError> {
        self.called("apdu_result")?;
        Ok(flow(txn_id, FlowKind::OpenCard, FlowStatus::Completed))
    }

    async fn resume(
        &self,
        _device_id: &str,
        txn_id: &str,
        _now_ms: i64,
    ) -> Result<FlowResp, BackendError> {
        self.called("resume")?;
        Ok(flow(txn_id, FlowKind::OpenCard, FlowStatus::Failed))
    }

    async fn flow(&self, _device_id: &str, txn_id: &str) -> Result<FlowResp, BackendError> {
        self.called("flow")?;
        Ok(flow(txn_id, FlowKind::OpenCard, FlowStatus::Running))
    }

    async fn create_order(
        &self,
        _device_id: &str,
        req: &TopupOrderReq,
    ) -> Result<OrderResp, BackendError> {
        self.called("create_order")?;
        Ok(OrderResp {
            order_id: "ORDER-1".into(),
            state: "CREATED".into(),
            amount: req.amount,
        })
    }

    async fn order(&self, _device_id: &str, order_id: &str) -> Result<OrderResp, BackendError> {
        self.called("order")?;
        Err(BackendError::new(
            Code::OrderNotFound,
            format!("no order {}", order_id.len()),
        ))
    }

    async fn test_pay(&self, _device_id: &str, order_id: &str) -> Result<OrderResp, BackendError> {
        self.called("test_pay")?;
        Ok(OrderResp {
            order_id: order_id.to_string(),
            state: "PAID".into(),
            amount: 100,
        })
    }

    async fn cards(&self, _device_id: &str) -> Result<CardsResp, BackendError> {
        self.called("cards")?;
        Ok(CardsResp {
            cards: vec![CardSummary {
                card_no: "31040000000000000001".into(),
                seid: "5345".into(),
                state: "ACTIVE".into(),
            }],
        })
    }

    fn store(&self) -> &Store {
        &self.store
    }
}
