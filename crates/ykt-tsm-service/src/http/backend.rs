//! What the HTTP layer needs from the TSM behind it (tsm-gp.md §7): the business operations
//! the envelopes ask for, the device keys the signatures verify under, the store the replay
//! guard and the idempotency records live in, and the operator's views for the admin API.
//!
//! The engine implements [`Backend`]; the tests implement it with an in-memory fake.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use ykt_crypto::Sm2PublicKey;
use ykt_envelope::Code;
use ykt_store::{ChainStatus, Entity, Flow, FlowStatus, RequestCompletion, Store};
use ykt_tsm::RelayResponse;
use ykt_tsm::api::{
    AppQueryReq, CardReq, CardsResp, FlowResp, MessageDef, OpenCardReq, OrderReq, OrderResp,
    RefundReq, TopupOrderReq, TransferInReq,
};

/// A refusal or failure of the backend: the result code the response carries and a message
/// for people.
///
/// The message travels to the client in `result.msg` (except for [`Code::Internal`], whose
/// message goes to the log only and is replaced by a generic one), so it must never carry card
/// data, keys, status words or internals.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
#[non_exhaustive]
pub struct BackendError {
    /// The result code.
    pub code: Code,
    /// A short, safe text.
    pub message: String,
}

impl BackendError {
    /// A refusal with `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<ykt_store::Error> for BackendError {
    /// The store's domain outcomes as result codes; anything else is [`Code::Internal`] (its
    /// text goes to the log only, see [`BackendError`]).
    fn from(e: ykt_store::Error) -> Self {
        use ykt_store::Error as E;
        match &e {
            E::NotFound { what, .. } => {
                let code = match what {
                    Entity::Se => Code::SeNotFound,
                    Entity::CardInstance => Code::AppMissing,
                    Entity::Flow => Code::FlowNotFound,
                    Entity::TopupOrder => Code::OrderNotFound,
                    _ => Code::Internal,
                };
                // `what` names the kind of record only; the id (a card number, perhaps) is
                // left out.
                Self::new(code, format!("no such {what}"))
            }
            E::Duplicate { .. } => Self::new(Code::Duplicate, "request_id used with another body"),
            E::InProgress { .. } => Self::new(Code::InProgress, "the request is in progress"),
            E::Replayed { .. } => Self::new(Code::Replayed, "the message was seen before"),
            E::Stale { .. } => Self::new(Code::Stale, "the timestamp is outside the window"),
            E::Conflict { what, .. } | E::IllegalTransition { what, .. } => Self::new(
                Code::StateConflict,
                format!("the {what} is in another state"),
            ),
            _ => Self::new(Code::Internal, e.to_string()),
        }
    }
}

/// The flow a business request starts (the request's body, typed).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Start {
    /// `OpenCardReq`: 申请开卡.
    OpenCard(OpenCardReq),
    /// `TopupReq`: the online load of a paid order.
    TopUp(OrderReq),
    /// `DeleteCardReq`: 删除卡片.
    DeleteCard(CardReq),
    /// `RefundReq`: 退卡.
    Refund(RefundReq),
    /// `TransferOutReq`: 迁卡 out.
    TransferOut(CardReq),
    /// `TransferInReq`: 迁卡 in.
    TransferIn(TransferInReq),
    /// `LockReq`.
    Lock(CardReq),
    /// `UnlockReq`.
    Unlock(CardReq),
    /// `AppQueryReq`: the SE's registry.
    AppQuery(AppQueryReq),
    /// `CardQueryReq`: the card's data.
    CardQuery(CardReq),
}

impl Start {
    /// The request's message type.
    pub fn msg_type(&self) -> &'static str {
        use ykt_tsm::api as a;
        match self {
            Start::OpenCard(_) => a::OPEN_CARD.request,
            Start::TopUp(_) => a::TOPUP.request,
            Start::DeleteCard(_) => a::DELETE_CARD.request,
            Start::Refund(_) => a::REFUND.request,
            Start::TransferOut(_) => a::TRANSFER_OUT.request,
            Start::TransferIn(_) => a::TRANSFER_IN.request,
            Start::Lock(_) => a::LOCK.request,
            Start::Unlock(_) => a::UNLOCK.request,
            Start::AppQuery(_) => a::APP_QUERY.request,
            Start::CardQuery(_) => a::CARD_QUERY.request,
        }
    }
}

impl std::fmt::Debug for Start {
    /// The message type only: the bodies carry card numbers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Start({})", self.msg_type())
    }
}

/// How the answer to a request that moves a flow (a flow start, `ApduResultReq`, `ResumeReq`) is
/// stored for its idempotency claim in the same transaction as the flow move it makes
/// ([`Backend::start_answered`], [`Backend::apdu_result_answered`],
/// [`Backend::resume_answered`]), so that the move
/// and the stored answer are durable together (the pipeline otherwise completes the claim in a
/// transaction of its own after the move).
///
/// The backend asks for the completion of the outcome it is about to give
/// ([`StepAnswer::completion`]: the answer text the pipeline would store for exactly that
/// outcome, or `None` when none is stored, as for an internal failure), commits it with the
/// move, and then says so ([`StepAnswer::mark_stored`]); the pipeline completes the claim itself
/// only when it was not.
pub struct StepAnswer {
    encode: Box<Encode>,
    stored: AtomicBool,
}

/// How a [`StepAnswer`] makes the completion of an outcome.
type Encode = dyn Fn(Result<&FlowResp, &BackendError>) -> Option<RequestCompletion> + Send + Sync;

impl StepAnswer {
    /// A step answer whose completions `encode` makes.
    pub fn new(
        encode: impl Fn(Result<&FlowResp, &BackendError>) -> Option<RequestCompletion>
        + Send
        + Sync
        + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            encode: Box::new(encode),
            stored: AtomicBool::new(false),
        })
    }

    /// The claim's completion for `outcome`, the result the backend is about to answer with;
    /// `None`: nothing is stored for it.
    pub fn completion(
        &self,
        outcome: Result<&FlowResp, &BackendError>,
    ) -> Option<RequestCompletion> {
        (self.encode)(outcome)
    }

    /// Says that the completion was committed together with the move.
    pub fn mark_stored(&self) {
        self.stored.store(true, Ordering::Release);
    }

    /// Whether the completion was committed together with the move.
    pub fn stored(&self) -> bool {
        self.stored.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for StepAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepAnswer")
            .field("stored", &self.stored())
            .finish_non_exhaustive()
    }
}

/// A future the backend returns: `Send`, so the server can run it on any worker.
pub trait BackendFuture<T>: Future<Output = Result<T, BackendError>> + Send {}
impl<T, F: Future<Output = Result<T, BackendError>> + Send> BackendFuture<T> for F {}

/// The TSM behind the HTTP layer.
///
/// `device_id` is always the verified `sender_id` of the envelope; `txn_id` its `txn_id`;
/// `now_ms` the server's clock (Unix ms). The admin methods have default implementations over
/// [`Backend::store`].
pub trait Backend: Clone + Send + Sync + 'static {
    /// Enrols a device whose envelope was signed by `device_pub` (proof of possession); gives
    /// the device id its envelopes carry as `sender_id` from now on.
    fn enrol(&self, device_pub: &Sm2PublicKey, model: &str) -> impl BackendFuture<String>;

    /// The key a device's envelopes verify under; [`Code::UnknownSender`] if none.
    fn device_key(&self, device_id: &str) -> impl BackendFuture<Sm2PublicKey>;

    /// Starts a flow.
    fn start(
        &self,
        device_id: &str,
        txn_id: &str,
        start: Start,
        now_ms: i64,
    ) -> impl BackendFuture<FlowResp>;

    /// [`Backend::start`], storing the request's answer with the flow's first move where the
    /// backend can ([`StepAnswer`]). By default it does not: the pipeline completes the claim
    /// after the move.
    fn start_answered(
        &self,
        device_id: &str,
        txn_id: &str,
        start: Start,
        now_ms: i64,
        answer: Arc<StepAnswer>,
    ) -> impl BackendFuture<FlowResp> {
        let _ = answer;
        self.start(device_id, txn_id, start, now_ms)
    }

    /// Moves a flow on with the SE's answers to its last relay message.
    fn apdu_result(
        &self,
        device_id: &str,
        txn_id: &str,
        response: &RelayResponse,
        now_ms: i64,
    ) -> impl BackendFuture<FlowResp>;

    /// [`Backend::apdu_result`], storing the request's answer with the move it makes where the
    /// backend can ([`StepAnswer`]). By default it does not: the pipeline completes the claim
    /// after the move.
    fn apdu_result_answered(
        &self,
        device_id: &str,
        txn_id: &str,
        response: &RelayResponse,
        now_ms: i64,
        answer: Arc<StepAnswer>,
    ) -> impl BackendFuture<FlowResp> {
        let _ = answer;
        self.apdu_result(device_id, txn_id, response, now_ms)
    }

    /// Resumes a flow after a crash or a lost answer.
    fn resume(&self, device_id: &str, txn_id: &str, now_ms: i64) -> impl BackendFuture<FlowResp>;

    /// [`Backend::resume`], storing the request's answer with the move it makes where the
    /// backend can ([`StepAnswer`]). By default it does not: the pipeline completes the claim
    /// after the move.
    fn resume_answered(
        &self,
        device_id: &str,
        txn_id: &str,
        now_ms: i64,
        answer: Arc<StepAnswer>,
    ) -> impl BackendFuture<FlowResp> {
        let _ = answer;
        self.resume(device_id, txn_id, now_ms)
    }

    /// A flow's state, without moving it.
    fn flow(&self, device_id: &str, txn_id: &str) -> impl BackendFuture<FlowResp>;

    /// Creates a top-up order.
    fn create_order(&self, device_id: &str, req: &TopupOrderReq) -> impl BackendFuture<OrderResp>;

    /// An order's state.
    fn order(&self, device_id: &str, order_id: &str) -> impl BackendFuture<OrderResp>;

    /// Pays an order with the built-in test provider.
    fn test_pay(&self, device_id: &str, order_id: &str) -> impl BackendFuture<OrderResp>;

    /// The device's cards.
    fn cards(&self, device_id: &str) -> impl BackendFuture<CardsResp>;

    /// The store (replay guard, idempotency records, the admin views).
    fn store(&self) -> &Store;

    /// Whether this backend serves the message type `def` (by default the business API,
    /// [`ykt_tsm::api::MESSAGES`]); any other is refused with `1006` before its sender's key
    /// is looked up.
    fn serves(&self, def: MessageDef) -> bool {
        ykt_tsm::api::MESSAGES.contains(&def)
    }

    /// An inter-platform request ([`ykt_tsm::api::PLATFORM_MESSAGES`]) from the verified
    /// platform `sender`: its answer's body (`crate::platform::SeiPlatform` serves them).
    fn platform(&self, sender: &str, def: MessageDef, body: Value) -> impl BackendFuture<Value> {
        let _ = (sender, body);
        let msg = format!("{} is not served here", def.request);
        async move { Err(BackendError::new(Code::BadRequest, msg)) }
    }

    /// Admin: every registered SE.
    fn admin_ses(&self) -> impl BackendFuture<Vec<SeView>> {
        let store = self.store().clone();
        async move { Ok(store.ses().await?.into_iter().map(SeView::from).collect()) }
    }

    /// Admin: one SE.
    fn admin_se(&self, seid: &str) -> impl BackendFuture<SeView> {
        let store = self.store().clone();
        let seid = seid.to_owned();
        async move { Ok(SeView::from(store.se(&seid).await?)) }
    }

    /// Admin: the card instances on an SE.
    fn admin_cards(&self, seid: &str) -> impl BackendFuture<Vec<CardInstanceView>> {
        let store = self.store().clone();
        let seid = seid.to_owned();
        async move {
            Ok(store
                .cards_on_se(&seid)
                .await?
                .into_iter()
                .map(CardInstanceView::from)
                .collect())
        }
    }

    /// Admin: every card instance.
    fn admin_all_cards(&self) -> impl BackendFuture<Vec<CardInstanceView>> {
        let store = self.store().clone();
        async move {
            Ok(store
                .card_instances(None)
                .await?
                .into_iter()
                .map(CardInstanceView::from)
                .collect())
        }
    }

    /// Admin: the flows in `status` (of one SE, or of all), oldest first.
    fn admin_flows(
        &self,
        status: FlowStatus,
        seid: Option<&str>,
    ) -> impl BackendFuture<Vec<FlowView>> {
        let store = self.store().clone();
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

    /// Admin: one flow, in any status.
    fn admin_flow(&self, id: &str) -> impl BackendFuture<FlowView> {
        let store = self.store().clone();
        let id = id.to_owned();
        async move { Ok(FlowView::from(&store.flow(&id).await?)) }
    }

    /// Admin: the audit chain's verification (`Store::verify_chain`).
    fn admin_verify_audit(&self) -> impl BackendFuture<ChainView> {
        let store = self.store().clone();
        async move { Ok(ChainView::from(store.verify_chain().await?)) }
    }
}

/// Admin view of a secure element.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeView {
    /// The SEID.
    pub seid: String,
    /// The CPLC, hex.
    pub cplc: String,
    /// The profile name.
    pub profile: String,
    /// The life-cycle state (tsm-gp.md §8).
    pub state: String,
    /// Bumped by every change.
    pub version: u64,
    /// Registered at (Unix ms).
    pub created_ms: i64,
    /// Last changed at (Unix ms).
    pub updated_ms: i64,
}

impl From<ykt_store::Se> for SeView {
    fn from(se: ykt_store::Se) -> Self {
        Self {
            seid: se.seid,
            cplc: hex::encode(se.cplc),
            profile: se.profile,
            state: se.state.as_str().to_string(),
            version: se.version,
            created_ms: se.created_ms,
            updated_ms: se.updated_ms,
        }
    }
}

/// Admin view of a card instance (key versions only, never key values).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardInstanceView {
    /// The SE.
    pub seid: String,
    /// The card number.
    pub card_no: String,
    /// The life-cycle state (tsm-gp.md §8).
    pub state: String,
    /// The SSD's AID, hex.
    pub ssd_aid: Option<String>,
    /// The transit applet's AID, hex.
    pub app_aid: Option<String>,
    /// Key versions by key set.
    pub key_versions: BTreeMap<String, u8>,
    /// Bumped by every change.
    pub version: u64,
    /// Recorded at (Unix ms).
    pub created_ms: i64,
    /// Last changed at (Unix ms).
    pub updated_ms: i64,
}

impl From<ykt_store::CardInstance> for CardInstanceView {
    fn from(c: ykt_store::CardInstance) -> Self {
        Self {
            seid: c.seid,
            card_no: c.card_no,
            state: c.state.as_str().to_string(),
            ssd_aid: c.ssd_aid.map(hex::encode),
            app_aid: c.app_aid.map(hex::encode),
            key_versions: c.key_versions,
            version: c.version,
            created_ms: c.created_ms,
            updated_ms: c.updated_ms,
        }
    }
}

/// Admin view of a flow. The state blob is left out (it is the engine's, and may hold card
/// data).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowView {
    /// The flow id (`txn_id`).
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Its SE.
    pub seid: Option<String>,
    /// The device that started it.
    pub device_id: Option<String>,
    /// Its step.
    pub step: String,
    /// `RUNNING`, `COMPLETED` or `FAILED`.
    pub status: String,
    /// The sequence number of the script released and not answered yet.
    pub outstanding_seq: Option<u64>,
    /// Whether that script may be sent again as it is.
    pub outstanding_idempotent: Option<bool>,
    /// Bumped by every move.
    pub version: u64,
    /// Created at (Unix ms).
    pub created_ms: i64,
    /// Last moved at (Unix ms).
    pub updated_ms: i64,
}

impl From<&Flow> for FlowView {
    fn from(f: &Flow) -> Self {
        Self {
            id: f.id.clone(),
            kind: f.kind.clone(),
            seid: f.seid.clone(),
            device_id: f.device_id.clone(),
            step: f.step.clone(),
            status: f.status.as_str().to_string(),
            outstanding_seq: f.script.map(|s| s.seq),
            outstanding_idempotent: f.script.map(|s| s.idempotent),
            version: f.version,
            created_ms: f.created_ms,
            updated_ms: f.updated_ms,
        }
    }
}

/// Admin view of the audit chain's verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainView {
    /// Every row verifies and the head matches the last.
    pub intact: bool,
    /// The number of rows (intact chain).
    pub rows: Option<u64>,
    /// The head hash, hex (intact chain).
    pub head: Option<String>,
    /// The first row that does not verify (broken chain).
    pub break_seq: Option<u64>,
    /// Why (broken chain): `HASH_MISMATCH`, `LINK_MISMATCH`, `GAP`, `HEAD_MISMATCH`.
    pub reason: Option<String>,
}

impl From<ChainStatus> for ChainView {
    fn from(status: ChainStatus) -> Self {
        use ykt_store::BreakReason as R;
        match status {
            ChainStatus::Intact { rows, head } => Self {
                intact: true,
                rows: Some(rows),
                head: Some(hex::encode(head)),
                break_seq: None,
                reason: None,
            },
            ChainStatus::Broken(b) => Self {
                intact: false,
                rows: None,
                head: None,
                break_seq: Some(b.seq),
                reason: Some(
                    match b.reason {
                        R::HashMismatch => "HASH_MISMATCH",
                        R::LinkMismatch => "LINK_MISMATCH",
                        R::Gap { .. } => "GAP",
                        R::HeadMismatch { .. } => "HEAD_MISMATCH",
                        _ => "OTHER",
                    }
                    .to_string(),
                ),
            },
            _ => Self {
                intact: false,
                rows: None,
                head: None,
                break_seq: None,
                reason: Some("OTHER".to_string()),
            },
        }
    }
}
