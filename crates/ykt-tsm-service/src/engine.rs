//! The TSM engine: the `ykt_tsm` flows persisted on `ykt_store`, resumable after a crash
//! (tsm-gp.md §2, §7, §8; client.md §4).
//!
//! What it owns: enrolled devices (the key each device's envelopes verify under), who owns each
//! flow, card instance and order, the live flows (each with its open secure channel) in memory,
//! the store-backed payment provider (orders `CREATED → PAID → LOAD_REQUESTED → LOADED`,
//! refunds, escrows), card numbers (from the registry's card stock, or a store counter while
//! the registry has no issuer: [`proposals::issuer_for_city`]), transfer codes, the registry
//! (issuers, card stock, SE profiles matched at registration, key versions: `admin_*`), and
//! the read-only views an operator lists (`Engine::admin_ses` and the other `admin_*` views).
//!
//! ```text
//!  HTTP layer ── start / apdu_result / resume ──▶ Engine ── per-flow lock ──▶ Flow (in memory)
//!                                                   │  load snapshot (order, refund, escrow)
//!                                                   │  Flow::next(env, response)  (vaults, OS RNG, now)
//!                                                   │  commit_step: flow row (CAS) + SE + card
//!                                                   │   + order + refunds/escrows + audit, one tx
//!                ◀── FlowResp {relay} ──────────────┘  only then is the relay released
//! ```
//!
//! Invariant: every `Flow::next` result is in the store before its relay message reaches the
//! caller, together with everything it implies, in one transaction; a flow not in memory (a
//! restart, or another process moved it) is rebuilt with `Flow::resume`, which probes the SE
//! before anything that changes it is sent again. No key value reaches the store: the vaults
//! keep them, the store gets names, versions, check results.
//!
//! What it does not own: HTTP, envelopes and signatures (the `http` module), key storage (the
//! [`Keys`] vaults), the domain's decisions (`ykt_tsm`), SQL (`ykt_store`).

mod admin;
mod backend_impl;
mod clock;
mod payments;
pub mod proposals;
mod record;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ykt_envelope::Code;
use ykt_store::{
    AuditEvent, AuditKind, EscrowWrite, ReleasedScript, StepCommit, Store, TopupState,
};
use ykt_store::{Entity, FlowStatus as StoreStatus, FlowUpdate, FlowWrite, NewFlow, NewTopup};
use ykt_tsm::api::{self, FlowResp};
use ykt_tsm::hex::Hex;
use ykt_tsm::{CardNumber, Env, Flow, KeyVault, OrderRef, Output, Parties, PurseCardSpec, SeId};

use crate::http::backend::StepAnswer;

pub use admin::{
    AbandonError, Abandoned, AuditView, CardInstanceView, FlowSummary, KeyVersionView, LoadVerdict,
    Metrics, RegistryError, SeView, StuckMoney, proposals_registry,
};
pub use clock::{OsEntropy, bcd_datetime};

use payments::{Snapshot, card_of};
use record::Record;

/// Where new cards come from while the registry has no card issuer
/// ([`proposals::issuer_for_city`]): the EF15 fields every card opened gets and how card numbers
/// are made ([`proposals::card_number`]: the prefix and a store counter, unique and never
/// reused). A transfer in of a number no registry stock range gave keeps the number and takes
/// the other fields from here ([`proposals::range_of`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardStock {
    /// EF15 issuer id.
    pub issuer_id: [u8; 8],
    /// First valid date, BCD `YYYYMMDD`.
    pub start_date: [u8; 4],
    /// Last valid date, BCD `YYYYMMDD`.
    pub expiry_date: [u8; 4],
    /// The first four bytes of every card number.
    pub number_prefix: [u8; 4],
}

impl CardStock {
    fn spec(&self, card_number: CardNumber) -> PurseCardSpec {
        PurseCardSpec {
            card_number,
            issuer_id: self.issuer_id,
            start_date: self.start_date,
            expiry_date: self.expiry_date,
        }
    }
}

/// How the engine is set up.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The TSM's id (the envelopes' `receiver_id`).
    pub tsm_id: String,
    /// The key names of both TSMs.
    pub parties: Parties,
    /// New cards.
    pub card_stock: CardStock,
    /// True when [`Engine::test_pay`] (the built-in test payment provider) may pay orders.
    pub test_payments: bool,
}

/// The two TSMs' key vaults (tsm-gp.md §2, §6).
pub struct Keys {
    /// The SEI-TSM's vault (ISD keys, tokens, receipts).
    pub sei: Box<dyn KeyVault + Send>,
    /// The SP-TSM's vault (SSD keys, purse keys, transport key).
    pub sp: Box<dyn KeyVault + Send>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

/// What the engine's calls fail with; [`EngineError::code`] is the envelope's result code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No device is enrolled under this id.
    #[error("unknown device")]
    UnknownDevice,
    /// The flow, card or order belongs to another device.
    #[error("another device's flow, card or order")]
    Forbidden,
    /// No flow with this id.
    #[error("no such flow")]
    FlowNotFound,
    /// The other platform (the SEI-TSM) could not be reached during the flow's move; nothing
    /// moved, and the same request (or a resume) can be sent again.
    #[error("the SEI-TSM is unreachable; try again")]
    PlatformUnavailable,
    /// No order with this id.
    #[error("no such order")]
    OrderNotFound,
    /// No card instance with this SE and card number.
    #[error("no such card instance")]
    CardNotFound,
    /// The order is not paid.
    #[error("order not paid")]
    NotPaid,
    /// The order was loaded, or another flow is loading it.
    #[error("order loaded or being loaded")]
    OrderTaken,
    /// No transfer is waiting under this code (or another phone took it).
    #[error("unknown transfer code")]
    UnknownTransfer,
    /// The built-in test payment provider is off.
    #[error("test payments are off")]
    TestPaymentsOff,
    /// A field of the request is malformed.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The card instance or order is not in a state that allows this.
    #[error("state conflict: {0}")]
    State(&'static str),
    /// Another worker moved the flow first; ask again.
    #[error("the flow was moved concurrently")]
    Conflict,
    /// The flow could not start (the card instance's state does not allow it).
    #[error("flow refused")]
    Refused(#[source] ykt_tsm::Error),
    /// A step failed; the flow is `FAILED_<step>` and `resume` retries it.
    #[error("step {step} failed")]
    StepFailed {
        /// The step (`CREATE_SSD`, …).
        step: String,
        /// The domain's error.
        #[source]
        source: ykt_tsm::Error,
    },
    /// No card issuer of the registry serves the request's city (`OpenCardReq.city_code`).
    #[error("no card issuer serves this city")]
    NoIssuer,
    /// The city's card issuer has no card number left; no flow started, no number taken.
    /// An operator adds stock (`POST /admin/v1/stock`) and the wallet asks again.
    #[error("the card issuer has no card numbers left")]
    StockExhausted,
    /// The card's issuer names a purse key (`ykt_store::NewIssuer::purse_key`) the SP-TSM's
    /// vault does not hold; nothing started, and no card number was taken.
    #[error("the SP-TSM vault lacks the card issuer's purse key")]
    PurseKeyMissing,
    /// The engine's configuration does not fit its vaults.
    #[error("configuration: {0}")]
    Config(&'static str),
    /// A stored flow state does not parse.
    #[error("stored flow state")]
    Json(#[from] serde_json::Error),
    /// The store failed.
    #[error("store")]
    Store(#[from] ykt_store::Error),
}

impl EngineError {
    /// The result code of the response (tsm-gp.md §7 error codes).
    pub fn code(&self) -> Code {
        let domain = |e: &ykt_tsm::Error| Code::parse(e.code()).unwrap_or(Code::Internal);
        match self {
            Self::UnknownDevice => Code::UnknownSender,
            Self::Forbidden | Self::TestPaymentsOff | Self::UnknownTransfer => Code::Forbidden,
            Self::FlowNotFound => Code::FlowNotFound,
            Self::OrderNotFound => Code::OrderNotFound,
            Self::CardNotFound => Code::AppMissing,
            Self::NotPaid => Code::NotPaid,
            Self::NoIssuer => Code::BadRequest,
            // [PROPOSAL] (`proposals::issuer_for_city`): the issuer declines to issue a card.
            Self::StockExhausted => Code::IssuerDeclined,
            Self::OrderTaken => Code::Duplicate,
            Self::BadRequest(_) => Code::BadRequest,
            Self::State(_) | Self::Conflict => Code::StateConflict,
            Self::Refused(e) | Self::StepFailed { source: e, .. } => domain(e),
            // Internal: the request's idempotency claim is released, so a retry runs again.
            Self::Config(_)
            | Self::Json(_)
            | Self::Store(_)
            | Self::PlatformUnavailable
            | Self::PurseKeyMissing => Code::Internal,
        }
    }
}

/// A flow to start (tsm-gp.md §7 business messages). Debug names the flow only: the bodies
/// carry card numbers.
#[derive(Clone)]
#[non_exhaustive]
pub enum Start {
    /// 申请开卡.
    OpenCard(api::OpenCardReq),
    /// 申请支付 / 充值 of a paid order.
    TopUp(api::OrderReq),
    /// 删除卡片.
    DeleteCard(api::CardReq),
    /// 退卡.
    Refund(api::RefundReq),
    /// 迁卡, old SE.
    TransferOut(api::CardReq),
    /// 迁卡, new SE.
    TransferIn(api::TransferInReq),
    /// Lock.
    Lock(api::CardReq),
    /// Unlock.
    Unlock(api::CardReq),
    /// 查询: the SE's registry.
    AppQuery(api::AppQueryReq),
    /// 查询: the card's data.
    CardQuery(api::CardReq),
}

impl std::fmt::Debug for Start {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::OpenCard(_) => "Start::OpenCard",
            Self::TopUp(_) => "Start::TopUp",
            Self::DeleteCard(_) => "Start::DeleteCard",
            Self::Refund(_) => "Start::Refund",
            Self::TransferOut(_) => "Start::TransferOut",
            Self::TransferIn(_) => "Start::TransferIn",
            Self::Lock(_) => "Start::Lock",
            Self::Unlock(_) => "Start::Unlock",
            Self::AppQuery(_) => "Start::AppQuery",
            Self::CardQuery(_) => "Start::CardQuery",
        })
    }
}

/// A live flow, the store version it was last persisted at, and when it was last used.
#[derive(Default)]
struct Slot {
    flow: Option<Flow>,
    version: u64,
    used_ms: i64,
}

/// A slot of the live map, shared by the tasks that hold or wait on it.
type SharedSlot = Arc<tokio::sync::Mutex<Slot>>;

/// The live flows by transaction id, and when they were last scanned for idle ones.
#[derive(Default)]
struct Live {
    slots: HashMap<String, SharedSlot>,
    /// The time of the last idle scan (`None` before the first hold).
    swept_ms: Option<i64>,
}

impl Live {
    /// Whether a hold at `now_ms` scans for idle slots: the first one does, then one at least
    /// [`proposals::LIVE_SWEEP_INTERVAL_MS`] after (or before, if the clock went back) the
    /// last scan.
    fn sweep_due(&self, now_ms: i64) -> bool {
        self.swept_ms.is_none_or(|last| {
            now_ms.abs_diff(last) >= proposals::LIVE_SWEEP_INTERVAL_MS.unsigned_abs()
        })
    }
}

/// A slot held by one task for one operation on its flow. Dropping it (the operation ended,
/// or its future was dropped) gives the slot back: see [`Held::drop`].
struct Held<'a> {
    engine: &'a Engine,
    txn_id: String,
    now_ms: i64,
    guard: Option<tokio::sync::OwnedMutexGuard<Slot>>,
}

impl std::ops::Deref for Held<'_> {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        self.guard
            .as_deref()
            .unwrap_or_else(|| unreachable!("held until dropped"))
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Slot {
        self.guard
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("held until dropped"))
    }
}

impl Drop for Held<'_> {
    /// Unlocks the slot and evicts it when it keeps no flow in memory (the flow ended, failed,
    /// was never found, or must be rebuilt from the store anyway) and no other task holds or
    /// waits on it. The count is read under the map lock, and a slot is only reachable through
    /// the map, so nobody can take a new hold between the check and the removal: two tasks
    /// never run the same flow from two slots.
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        guard.used_ms = self.now_ms;
        let empty = guard.flow.is_none();
        let slot = tokio::sync::OwnedMutexGuard::mutex(&guard).clone();
        drop(guard);
        if !empty {
            return;
        }
        let mut live = lock(&self.engine.inner.live);
        // Two holders: the map and `slot` here.
        if live
            .slots
            .get(&self.txn_id)
            .is_some_and(|s| Arc::ptr_eq(s, &slot) && Arc::strong_count(&slot) == 2)
        {
            live.slots.remove(&self.txn_id);
        }
    }
}

/// A vault behind its own lock.
type VaultLock = Mutex<Box<dyn KeyVault + Send>>;

/// A locked vault.
type VaultGuard<'a> = MutexGuard<'a, Box<dyn KeyVault + Send>>;

/// What the engine shares.
///
/// Locks: each vault has its own ([`Engine::vaults`]), so work on one TSM's keys does not wait
/// for the other's; where both are held (a flow's move: `Env` borrows both), the SEI-TSM's is
/// taken first, then the SP-TSM's, always in that order. A vault lock is held only in
/// synchronous code, never across an `.await`; `live` is held for single map operations. A
/// slot leaves `live` when nobody holds or waits on it and it keeps no flow in memory, or has
/// been idle past [`proposals::LIVE_FLOW_IDLE_MS`] when a hold scans (at most once per
/// [`proposals::LIVE_SWEEP_INTERVAL_MS`]; `Engine::hold`, `Held`).
struct Inner {
    store: Store,
    config: EngineConfig,
    sei: VaultLock,
    sp: VaultLock,
    live: Mutex<Live>,
}

/// The TSM engine. Cloning is cheap and shares everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tsm_id", &self.inner.config.tsm_id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a lock was held leaves data that is still consistent for our uses (the
    // vaults and the map of live flows change in single calls).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a new flow brings besides its domain state.
#[derive(Default)]
struct Extras {
    transfer_code: Option<String>,
    refund_account: Option<String>,
    claim_escrow: Option<String>,
}

/// Upper-case hex of a wire identifier, checked.
fn normalise_hex(s: &str, len: usize, what: &'static str) -> Result<String, EngineError> {
    let bytes = ykt_tsm::hex::decode(s.trim()).ok_or(EngineError::BadRequest(what))?;
    if bytes.len() != len {
        return Err(EngineError::BadRequest(what));
    }
    Ok(ykt_tsm::hex::encode(&bytes))
}

fn seid_of(s: &str) -> Result<SeId, EngineError> {
    let bytes = ykt_tsm::hex::decode(s.trim()).ok_or(EngineError::BadRequest("seid"))?;
    Ok(SeId(
        bytes
            .try_into()
            .map_err(|_| EngineError::BadRequest("seid"))?,
    ))
}

impl Engine {
    /// An engine on `store` with the two TSMs' vaults; the vaults must hold the keys
    /// `config.parties` names.
    pub async fn new(store: Store, keys: Keys, config: EngineConfig) -> Result<Self, EngineError> {
        let p = &config.parties;
        // The SEI's vault may be another platform's: asked where blocking is allowed.
        let (sei_ok, unreachable) = crate::platform::blocking(|| {
            crate::platform::take_link_failure();
            let ok = [&p.isd_master, &p.token_signer, &p.receipt_key]
                .iter()
                .all(|k| keys.sei.contains(k));
            (ok, crate::platform::take_link_failure())
        });
        if unreachable {
            return Err(EngineError::PlatformUnavailable);
        }
        let sp_ok = [&p.sp_transport, &p.purse_issuer]
            .iter()
            .all(|k| keys.sp.contains(k));
        if !sei_ok {
            return Err(EngineError::Config(
                "the SEI-TSM vault lacks a key the parties name",
            ));
        }
        if !sp_ok {
            return Err(EngineError::Config(
                "the SP-TSM vault lacks a key the parties name",
            ));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                config,
                sei: Mutex::new(keys.sei),
                sp: Mutex::new(keys.sp),
                live: Mutex::new(Live::default()),
            }),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Enrols a device by its SM2 public key and gives its id; the same key again gives the
    /// same id.
    pub async fn enrol(
        &self,
        device_pub: &ykt_crypto::Sm2PublicKey,
        model: &str,
    ) -> Result<String, EngineError> {
        let key = device_pub.to_bytes();
        let digest = ykt_crypto::sm3(&key);
        let device_id = format!("dev-{}", hex::encode(&digest[..12]));
        let device = self.store().enrol_device(&device_id, &key, model).await?;
        self.audit_now(AuditEvent {
            kind: AuditKind::StateChange,
            actor: "sp-tsm".into(),
            subject: format!("device/{}", device.device_id),
            detail: format!("enrolled ({})", model.chars().take(64).collect::<String>()),
        })
        .await?;
        Ok(device.device_id)
    }

    /// The key a device's envelopes verify under ([`EngineError::UnknownDevice`] if none).
    pub async fn device_key(
        &self,
        device_id: &str,
    ) -> Result<ykt_crypto::Sm2PublicKey, EngineError> {
        let device = self.device(device_id).await?;
        ykt_crypto::Sm2PublicKey::from_sec1_bytes(&device.public_key)
            .map_err(|_| EngineError::Config("a stored device key does not parse"))
    }

    async fn device(&self, device_id: &str) -> Result<ykt_store::Device, EngineError> {
        match self.store().device(device_id).await {
            Ok(d) => Ok(d),
            Err(ykt_store::Error::NotFound { .. }) => Err(EngineError::UnknownDevice),
            Err(e) => Err(e.into()),
        }
    }

    async fn audit_now(&self, event: AuditEvent) -> Result<(), EngineError> {
        self.store().append_audit(&event).await?;
        Ok(())
    }

    /// Both vaults, locked in the fixed order: the SEI-TSM's, then the SP-TSM's (see
    /// `Inner`). Callers that need one vault lock only that one.
    fn vaults(&self) -> (VaultGuard<'_>, VaultGuard<'_>) {
        let sei = lock(&self.inner.sei);
        let sp = lock(&self.inner.sp);
        (sei, sp)
    }

    fn live_flows(&self) -> usize {
        lock(&self.inner.live).slots.len()
    }

    /// Holds the slot of flow `txn_id`, waiting for any other task on the same flow. When a
    /// scan is due ([`proposals::LIVE_SWEEP_INTERVAL_MS`] since the last), slots idle past
    /// [`proposals::LIVE_FLOW_IDLE_MS`] that nobody holds or waits on are evicted first (their
    /// flows are rebuilt from the store when next moved).
    async fn hold(&self, txn_id: &str, now_ms: i64) -> Held<'_> {
        let slot = {
            let mut live = lock(&self.inner.live);
            if live.sweep_due(now_ms) {
                live.swept_ms = Some(now_ms);
                live.slots.retain(|id, s| {
                    // Only the map holds it: nobody can lock it, so `try_lock` succeeds.
                    id == txn_id
                        || Arc::strong_count(s) > 1
                        || s.try_lock().is_ok_and(|s| {
                            now_ms.saturating_sub(s.used_ms) < proposals::LIVE_FLOW_IDLE_MS
                        })
                });
            }
            live.slots.entry(txn_id.to_string()).or_default().clone()
        };
        let guard = slot.lock_owned().await;
        Held {
            engine: self,
            txn_id: txn_id.to_string(),
            now_ms,
            guard: Some(guard),
        }
    }

    /// The stored flow `txn_id` of `device_id` and its record.
    async fn load_flow(
        &self,
        device_id: &str,
        txn_id: &str,
    ) -> Result<(ykt_store::Flow, Record), EngineError> {
        let row = match self.store().flow(txn_id).await {
            Ok(row) => row,
            Err(ykt_store::Error::NotFound { .. }) => return Err(EngineError::FlowNotFound),
            Err(e) => return Err(e.into()),
        };
        if row.device_id.as_deref() != Some(device_id) {
            return Err(EngineError::Forbidden);
        }
        let record: Record = serde_json::from_value(row.state.clone())?;
        Ok((row, record))
    }

    /// The card instance `seid`/`card_no` of `device_id`, as the domain sees it.
    async fn card_instance(
        &self,
        device_id: &str,
        seid: &str,
        card_no: &str,
    ) -> Result<ykt_tsm::CardInstance, EngineError> {
        let seid = normalise_hex(seid, 10, "seid")?;
        let card_no = normalise_hex(card_no, 10, "card_no")?;
        let row = match self.store().card(&seid, &card_no).await {
            Ok(row) => row,
            Err(ykt_store::Error::NotFound { .. }) => return Err(EngineError::CardNotFound),
            Err(e) => return Err(e.into()),
        };
        if row.device_id.as_deref() != Some(device_id) {
            return Err(EngineError::Forbidden);
        }
        let card_number = card_of(&row.card_no).ok_or(EngineError::CardNotFound)?;
        Ok(ykt_tsm::CardInstance {
            card_number,
            seid: seid_of(&row.seid)?,
            ssd_aid: Hex(row
                .ssd_aid
                .clone()
                .unwrap_or_else(|| ykt_tsm::proposals::SSD_AID.to_vec())),
            management: record::management_of(row.management.as_deref()),
            state: record::instance_state(row.state),
        })
    }

    /// Starts a flow under `txn_id` and gives its first relay message. A `txn_id` used before
    /// by the same device gives that flow's current state (a client's retry).
    pub async fn start(
        &self,
        device_id: &str,
        txn_id: &str,
        start: Start,
        now_ms: i64,
    ) -> Result<FlowResp, EngineError> {
        self.start_answered(device_id, txn_id, start, now_ms, None)
            .await
    }

    /// [`Engine::start`], and the flow's first move commits `answer`'s completion of the
    /// request's idempotency claim in its own transaction (see
    /// [`crate::http::backend::StepAnswer`]); a start that moves nothing stores nothing.
    pub(crate) async fn start_answered(
        &self,
        device_id: &str,
        txn_id: &str,
        start: Start,
        now_ms: i64,
        answer: Option<&StepAnswer>,
    ) -> Result<FlowResp, EngineError> {
        self.device(device_id).await?;
        if txn_id.is_empty() || txn_id.len() > 128 {
            return Err(EngineError::BadRequest("txn_id"));
        }
        let mut slot = self.hold(txn_id, now_ms).await;
        match self.load_flow(device_id, txn_id).await {
            Ok((_, record)) => return Ok(record::view(txn_id, &record)),
            Err(EngineError::FlowNotFound) => {}
            Err(e) => return Err(e),
        }
        let parties = self.inner.config.parties.clone();
        let mut extras = Extras::default();
        let refused = EngineError::Refused;
        let flow = match start {
            // tsm-gp.md §7 申请开卡: a card number from the city's issuer's stock (§2 SE
            // registry), taken once; nothing starts when the stock is exhausted.
            Start::OpenCard(req) => {
                let (spec, parties) = self.open_card_spec(&req.city_code).await?;
                Flow::open_card(txn_id, parties, req.management, spec)
            }
            // tsm-gp.md §7 申请支付; client.md §4.2: only a paid order nobody loads yet.
            Start::TopUp(req) => {
                let order = self.owned_order(device_id, &req.order_id).await?;
                match order.state {
                    TopupState::Created => return Err(EngineError::NotPaid),
                    TopupState::Paid if order.flow_id.is_none() => {}
                    _ => return Err(EngineError::OrderTaken),
                }
                let instance = self
                    .card_instance(device_id, &order.seid, &order.card_no)
                    .await?;
                let parties = self.parties_of_card(instance.card_number).await?;
                let amount = u32::try_from(order.amount_fen)
                    .map_err(|_| EngineError::BadRequest("amount"))?;
                Flow::top_up(
                    txn_id,
                    parties,
                    &instance,
                    OrderRef {
                        order_id: order.order_id.clone(),
                        amount,
                    },
                )
                .map_err(refused)?
            }
            Start::DeleteCard(req) => {
                let instance = self
                    .card_instance(device_id, &req.seid, &req.card_no)
                    .await?;
                let parties = self.parties_of_card(instance.card_number).await?;
                Flow::delete_card(txn_id, parties, &instance).map_err(refused)?
            }
            // tsm-gp.md §7 退卡: the refund goes to the account named here.
            Start::Refund(req) => {
                let instance = self
                    .card_instance(device_id, &req.seid, &req.card_no)
                    .await?;
                let parties = self.parties_of_card(instance.card_number).await?;
                extras.refund_account = Some(req.refund_account.clone());
                Flow::card_return(txn_id, parties, &instance).map_err(refused)?
            }
            // tsm-gp.md §7 迁卡: a random transfer code; the escrow is kept under its hash.
            Start::TransferOut(req) => {
                let instance = self
                    .card_instance(device_id, &req.seid, &req.card_no)
                    .await?;
                let parties = self.parties_of_card(instance.card_number).await?;
                let code =
                    ykt_tsm::hex::encode(&clock::random_bytes(proposals::TRANSFER_CODE_BYTES));
                let transfer_id = proposals::transfer_id(&code);
                extras.transfer_code = Some(code);
                Flow::transfer_out(txn_id, parties, &instance, &transfer_id).map_err(refused)?
            }
            // tsm-gp.md §7 迁卡 in: the same card number, the escrowed balance loaded online.
            Start::TransferIn(req) => {
                let transfer_id = proposals::transfer_id(&req.transfer_code);
                let escrow = self
                    .store()
                    .escrow(&transfer_id)
                    .await?
                    .ok_or(EngineError::UnknownTransfer)?;
                if escrow.settled || escrow.claimed_by.as_deref().is_some_and(|c| c != txn_id) {
                    return Err(EngineError::UnknownTransfer);
                }
                let card = card_of(&escrow.card_no).ok_or(EngineError::UnknownTransfer)?;
                extras.claim_escrow = Some(transfer_id.clone());
                let (spec, parties) = self.transfer_in_spec(card).await?;
                Flow::transfer_in(txn_id, parties, req.management, spec, &transfer_id)
            }
            Start::Lock(req) => {
                let instance = self
                    .card_instance(device_id, &req.seid, &req.card_no)
                    .await?;
                let parties = self.parties_of_card(instance.card_number).await?;
                Flow::lock_card(txn_id, parties, &instance).map_err(refused)?
            }
            Start::Unlock(req) => {
                let instance = self
                    .card_instance(device_id, &req.seid, &req.card_no)
                    .await?;
                let parties = self.parties_of_card(instance.card_number).await?;
                Flow::unlock_card(txn_id, parties, &instance).map_err(refused)?
            }
            Start::AppQuery(req) => {
                let seid = req.seid.as_deref().map(seid_of).transpose()?;
                Flow::status_query(txn_id, parties, seid)
            }
            Start::CardQuery(req) => {
                let instance = self
                    .card_instance(device_id, &req.seid, &req.card_no)
                    .await?;
                let parties = self.parties_of_card(instance.card_number).await?;
                Flow::card_data_query(txn_id, parties, &instance).map_err(refused)?
            }
        };
        let record = Record {
            flow: flow.state().clone(),
            relay: None,
            transfer_code: extras.transfer_code.take(),
            refund_account: extras.refund_account.take(),
            error_code: None,
            wrote_card: false,
        };
        self.step(
            &mut slot,
            device_id,
            txn_id,
            None,
            record,
            flow,
            None,
            now_ms,
            extras.claim_escrow,
            answer,
        )
        .await
    }

    /// The EF15 fields of a card to open for `city_code` (4 hex digits): with issuers in the
    /// registry, a number from the stock of the issuer [`proposals::issuer_for_city`] picks
    /// ([`Engine::take_card_spec`]); with none, the configured [`CardStock`] and the store
    /// counter [`proposals::CARD_NUMBER_COUNTER`].
    ///
    /// With it, the flow's parties: the issuer's purse key ([`Engine::parties_of_issuer`]),
    /// checked before a number is taken.
    async fn open_card_spec(
        &self,
        city_code: &str,
    ) -> Result<(PurseCardSpec, Parties), EngineError> {
        let issuers = self.store().issuers().await?;
        if issuers.is_empty() {
            let serial = self
                .store()
                .next_counter(proposals::CARD_NUMBER_COUNTER)
                .await?;
            let number = proposals::card_number(self.inner.config.card_stock.number_prefix, serial)
                .ok_or(EngineError::Config("card numbers are exhausted"))?;
            return Ok((
                self.inner.config.card_stock.spec(CardNumber(number)),
                self.parties_of_issuer(None)?,
            ));
        }
        let city: [u8; 2] = ykt_tsm::hex::decode(city_code.trim())
            .and_then(|b| b.try_into().ok())
            .ok_or(EngineError::BadRequest("city_code"))?;
        let issuer = proposals::issuer_for_city(&issuers, city).ok_or(EngineError::NoIssuer)?;
        let parties = self.parties_of_issuer(Some(issuer))?;
        self.take_card_spec(&issuer.issuer.issuer_id)
            .await
            .map(|spec| (spec, parties))
            .map_err(|e| match e {
                RegistryError::Exhausted(_) => EngineError::StockExhausted,
                // The issuer was listed a moment ago; gone now only if the store changed under us.
                RegistryError::NotFound(_) => EngineError::NoIssuer,
                RegistryError::Store(e) => EngineError::Store(e),
                _ => EngineError::Config("the card stock refused the issuer"),
            })
    }

    /// The EF15 fields of the card a transfer in opens for `card`: those its number was issued
    /// with by the registry ([`proposals::range_of`]), else the configured [`CardStock`]'s.
    ///
    /// With it, the flow's parties: the purse key of the issuer the number was issued by.
    async fn transfer_in_spec(
        &self,
        card: CardNumber,
    ) -> Result<(PurseCardSpec, Parties), EngineError> {
        let Some((range, issuer)) = self.issued_by(card).await? else {
            return Ok((
                self.inner.config.card_stock.spec(card),
                self.parties_of_issuer(None)?,
            ));
        };
        let spec = PurseCardSpec {
            card_number: card,
            issuer_id: issuer.issuer.ef15_issuer,
            start_date: range.range.start_date,
            expiry_date: range.range.expiry_date,
        };
        Ok((spec, self.parties_of_issuer(Some(&issuer))?))
    }

    /// The registry stock range and issuer that gave `card` its number
    /// ([`proposals::range_of`]), if any.
    async fn issued_by(
        &self,
        card: CardNumber,
    ) -> Result<Option<(ykt_store::StockRange, ykt_store::Issuer)>, EngineError> {
        let ranges = self.store().stock_ranges(None).await?;
        let Some(range) = proposals::range_of(&ranges, card.0) else {
            return Ok(None);
        };
        let issuer = self.store().issuer(&range.range.issuer_id).await?;
        Ok(Some((range.clone(), issuer)))
    }

    /// The parties of a flow on a card of `issuer` (`None`: a card no registry issuer gave):
    /// the configured ones, with the issuer's purse key (`ykt_store::NewIssuer::purse_key`)
    /// in place of [`Parties::purse_issuer`] when it names another
    /// ([`proposals::purse_key_of`]). A purse key the SP-TSM's vault does not hold is
    /// [`EngineError::PurseKeyMissing`].
    fn parties_of_issuer(
        &self,
        issuer: Option<&ykt_store::Issuer>,
    ) -> Result<Parties, EngineError> {
        let mut parties = self.inner.config.parties.clone();
        let Some(name) = issuer.and_then(|i| proposals::purse_key_of(&parties, i)) else {
            return Ok(parties);
        };
        // The SP's vault may be another platform's too: asked where blocking is allowed.
        let present = crate::platform::blocking(|| lock(&self.inner.sp).contains(&name));
        if !present {
            return Err(EngineError::PurseKeyMissing);
        }
        parties.purse_issuer = name;
        Ok(parties)
    }

    /// The parties of a flow on the card `card` ([`Engine::parties_of_issuer`] of the issuer
    /// that gave its number).
    async fn parties_of_card(&self, card: CardNumber) -> Result<Parties, EngineError> {
        let issued = self.issued_by(card).await?;
        self.parties_of_issuer(issued.as_ref().map(|(_, issuer)| issuer))
    }

    /// The wallet's answers to the outstanding relay message. Answers to any other message (a
    /// retry, a reordered or replayed request) give the current state and move nothing.
    pub async fn apdu_result(
        &self,
        device_id: &str,
        txn_id: &str,
        response: &ykt_tsm::RelayResponse,
        now_ms: i64,
    ) -> Result<FlowResp, EngineError> {
        self.apdu_result_answered(device_id, txn_id, response, now_ms, None)
            .await
    }

    /// [`Engine::apdu_result`], and the move it makes commits `answer`'s completion of the
    /// request's idempotency claim in its own transaction (see
    /// [`crate::http::backend::StepAnswer`]); an answer that moves nothing stores nothing.
    pub(crate) async fn apdu_result_answered(
        &self,
        device_id: &str,
        txn_id: &str,
        response: &ykt_tsm::RelayResponse,
        now_ms: i64,
        answer: Option<&StepAnswer>,
    ) -> Result<FlowResp, EngineError> {
        self.device(device_id).await?;
        let mut slot = self.hold(txn_id, now_ms).await;
        let (row, record) = self.load_flow(device_id, txn_id).await?;
        let outstanding = record
            .relay
            .as_ref()
            .is_some_and(|r| r.seq == response.seq && r.session_id == response.session_id);
        if row.status != StoreStatus::Running || !outstanding {
            return Ok(record::view(txn_id, &record));
        }
        let live = slot.flow.take().filter(|_| slot.version == row.version);
        match live {
            Some(flow) => {
                self.step(
                    &mut slot,
                    device_id,
                    txn_id,
                    Some(row.version),
                    record,
                    flow,
                    Some(response),
                    now_ms,
                    None,
                    answer,
                )
                .await
            }
            None => {
                // tsm-gp.md §8: the flow's memory is gone (a restart, or another worker); the
                // answer cannot be checked without the channel it was made under, so the flow
                // is rebuilt from the store and probes the SE first.
                let flow = Flow::resume(record.flow.clone());
                self.step(
                    &mut slot,
                    device_id,
                    txn_id,
                    Some(row.version),
                    record,
                    flow,
                    None,
                    now_ms,
                    None,
                    answer,
                )
                .await
            }
        }
    }

    /// Resumes a flow after a crash or a lost answer on either side, or retries a failed step:
    /// the flow is rebuilt from the store and probes the SE before re-sending anything that
    /// changes it.
    pub async fn resume(
        &self,
        device_id: &str,
        txn_id: &str,
        now_ms: i64,
    ) -> Result<FlowResp, EngineError> {
        self.resume_answered(device_id, txn_id, now_ms, None).await
    }

    /// [`Engine::resume`], and the move it makes commits `answer`'s completion of the
    /// request's idempotency claim in its own transaction (see
    /// [`crate::http::backend::StepAnswer`]); a resume that moves nothing stores nothing.
    pub(crate) async fn resume_answered(
        &self,
        device_id: &str,
        txn_id: &str,
        now_ms: i64,
        answer: Option<&StepAnswer>,
    ) -> Result<FlowResp, EngineError> {
        self.device(device_id).await?;
        let mut slot = self.hold(txn_id, now_ms).await;
        let (row, record) = self.load_flow(device_id, txn_id).await?;
        if row.status != StoreStatus::Running {
            return Ok(record::view(txn_id, &record));
        }
        slot.flow = None;
        let mut flow = Flow::resume(record.flow.clone());
        if flow.state().failed.is_some() {
            flow.retry().map_err(EngineError::Refused)?;
        }
        self.step(
            &mut slot,
            device_id,
            txn_id,
            Some(row.version),
            record,
            flow,
            None,
            now_ms,
            None,
            answer,
        )
        .await
    }

    /// A flow's current state, without moving it.
    pub async fn flow(&self, device_id: &str, txn_id: &str) -> Result<FlowResp, EngineError> {
        self.device(device_id).await?;
        let (_, record) = self.load_flow(device_id, txn_id).await?;
        Ok(record::view(txn_id, &record))
    }

    /// One move of `flow`, persisted with everything it implies before its relay message is
    /// given out (tsm-gp.md §8 "every transition persisted before the APDU script is
    /// released"); with `answer`, the request's stored answer too (tsm-gp.md §7 `request_id`):
    /// the outcome is decided before the commit, and the one committed is the one returned.
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &self,
        slot: &mut Slot,
        device_id: &str,
        txn_id: &str,
        from_version: Option<u64>,
        mut record: Record,
        mut flow: Flow,
        response: Option<&ykt_tsm::RelayResponse>,
        now_ms: i64,
        claim_escrow: Option<String>,
        answer: Option<&StepAnswer>,
    ) -> Result<FlowResp, EngineError> {
        let before = from_version.map(|_| record.flow.clone());
        let mut snapshot = Snapshot::load(
            self.store(),
            txn_id,
            flow.state(),
            record.refund_account.as_deref(),
        )
        .await?;
        // A vault may be another platform's (`crate::platform::RemoteSeiVault`): the move runs
        // where blocking is allowed, and a link that failed during it throws the move away
        // (the flow stays as stored; a retry or a resume goes on once the link is back).
        let (result, link_failed) = crate::platform::blocking(|| {
            let (mut sei, mut sp) = self.vaults();
            let mut rng = OsEntropy;
            let mut env = Env {
                sei: &mut **sei,
                sp: &mut **sp,
                payments: &mut snapshot,
                rng: &mut rng,
                now: bcd_datetime(now_ms),
            };
            crate::platform::take_link_failure();
            let result = flow.next(&mut env, response);
            (result, crate::platform::take_link_failure())
        });
        if link_failed {
            slot.flow = None;
            tracing::warn!(
                txn_id,
                "the SEI-TSM did not answer; the flow waits for a retry"
            );
            return Err(EngineError::PlatformUnavailable);
        }
        let (relay, error) = match result {
            Ok(Output::Relay(r)) => (Some(r), None),
            Ok(Output::Done(_)) => (None, None),
            // Not this flow's message, or nothing to consume: nothing moved.
            Err(ykt_tsm::Error::Relay | ykt_tsm::Error::NotWaiting) if from_version.is_some() => {
                slot.flow = Some(flow);
                return Ok(record::view(txn_id, &record));
            }
            Err(e) => (None, Some(e)),
        };
        let state = flow.state().clone();
        record.flow = state.clone();
        record.relay = relay.clone();
        record.error_code = error.as_ref().map(|e| e.code().to_string());
        record.wrote_card |= relay.as_ref().is_some_and(|r| {
            r.capdus
                .iter()
                .any(|c| !proposals::is_read_only(c.as_bytes()))
        });
        let completed = record::status(&state) == api::FlowStatus::Completed;
        let given_up = record::gives_up(&record);
        let update = FlowUpdate {
            step: record::step_name(&state),
            status: if completed {
                StoreStatus::Completed
            } else if given_up {
                StoreStatus::Failed
            } else {
                StoreStatus::Running
            },
            state: serde_json::to_value(&record)?,
            script: relay.as_ref().map(|r| ReleasedScript {
                seq: u64::from(r.seq),
                idempotent: r
                    .capdus
                    .iter()
                    .all(|c| proposals::is_read_only(c.as_bytes())),
            }),
        };
        let flow_write = match from_version {
            None => FlowWrite::Create {
                flow: NewFlow {
                    id: txn_id.to_string(),
                    kind: record::kind_name(state.kind).to_string(),
                    seid: state.seid.map(|s| s.to_string()),
                    step: update.step.clone(),
                    state: update.state.clone(),
                },
                device_id: device_id.to_string(),
                update,
            },
            Some(v) => FlowWrite::Advance {
                id: txn_id.to_string(),
                from_version: v,
                update,
                seid: state.seid.map(|s| s.to_string()),
            },
        };
        let (refunds, mut escrows) = snapshot.writes();
        if let Some(transfer_id) = claim_escrow {
            escrows.insert(0, EscrowWrite::Claim { transfer_id });
        }
        let mut audit = record::audit(txn_id, before.as_ref(), &state, relay.as_ref());
        for r in &refunds {
            audit.push(AuditEvent {
                kind: AuditKind::Payment,
                actor: "sp-tsm".into(),
                subject: format!("refund/{}", r.refund_id),
                detail: format!("{} fen refunded for {}", r.amount_fen, masked(&r.card_no)),
            });
        }
        for e in &escrows {
            let detail = match e {
                EscrowWrite::Hold {
                    transfer_id,
                    card_no,
                    amount_fen,
                } => format!(
                    "{transfer_id}: {amount_fen} fen of {} held",
                    masked(card_no)
                ),
                EscrowWrite::Claim { transfer_id } => format!("{transfer_id}: claimed by {txn_id}"),
                EscrowWrite::Settle { transfer_id } => format!("{transfer_id}: settled"),
                _ => String::new(),
            };
            audit.push(AuditEvent {
                kind: AuditKind::Payment,
                actor: "sp-tsm".into(),
                subject: "escrow".into(),
                detail,
            });
        }
        let topup = record::topup_write(before.as_ref(), &state);
        if let Some(t) = &topup
            && let Some(s) = t.state
        {
            audit.push(AuditEvent {
                kind: AuditKind::Payment,
                actor: "sp-tsm".into(),
                subject: format!("order/{}", t.order_id),
                detail: format!("{txn_id}: {s}"),
            });
        }
        // The outcome this move answers with, decided now so that its stored answer commits
        // with the move.
        let view = record::view(txn_id, &record);
        let failure = error.map(|source| EngineError::StepFailed {
            step: record::step_name(&state),
            source,
        });
        let request = answer.and_then(|a| match &failure {
            Some(e) => a.completion(Err(&backend_impl::backend_error(e))),
            None => a.completion(Ok(&view)),
        });
        let answered = request.is_some();
        let commit = StepCommit {
            flow: flow_write,
            se: record::se_write(&state),
            cards: record::card_write(&state, device_id, given_up)
                .into_iter()
                .collect(),
            topup,
            refunds,
            escrows,
            audit,
            request,
        };
        match self.store().commit_step(&commit).await {
            Ok(row) => {
                tracing::debug!(
                    txn_id,
                    kind = row.kind.as_str(),
                    step = row.step.as_str(),
                    status = row.status.as_str(),
                    version = row.version,
                    relay_seq = relay.as_ref().map(|r| r.seq),
                    "flow moved"
                );
                if completed {
                    tracing::info!(txn_id, kind = row.kind.as_str(), "flow completed");
                } else if let Some(EngineError::StepFailed { source, .. }) = &failure {
                    tracing::warn!(
                        txn_id,
                        step = row.step.as_str(),
                        code = source.code(),
                        "step failed"
                    );
                }
                if let Some(a) = answer.filter(|_| answered) {
                    a.mark_stored();
                }
                slot.version = row.version;
                slot.flow = (!completed && !given_up).then_some(flow);
            }
            Err(e) => {
                slot.flow = None;
                return Err(match e {
                    ykt_store::Error::Conflict { what, .. } => match what {
                        Entity::TopupOrder => EngineError::OrderTaken,
                        Entity::CardInstance => {
                            EngineError::State("another flow is working on the card")
                        }
                        Entity::Escrow => EngineError::UnknownTransfer,
                        _ => EngineError::Conflict,
                    },
                    ykt_store::Error::AlreadyExists {
                        what: Entity::Flow, ..
                    } => EngineError::Conflict,
                    e => EngineError::Store(e),
                });
            }
        }
        // tsm-gp.md §8 `REGISTERED (CPLC/SEID seen)`: once the move that first knows the SE's
        // CPLC is committed, the SE gets the registry profile its CPLC matches (none: it stays
        // without one, and an operator may set it). The move stands either way.
        let cplc_seen = state.cplc.is_some() && before.as_ref().is_none_or(|b| b.cplc.is_none());
        if let Some(se) = commit.se.as_ref().filter(|_| cplc_seen)
            && let Err(error) = self.match_se_profile(&se.seid).await
        {
            tracing::warn!(txn_id, %error, "the SE's profile could not be matched");
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(view),
        }
    }

    async fn owned_order(
        &self,
        device_id: &str,
        order_id: &str,
    ) -> Result<ykt_store::TopupOrder, EngineError> {
        let order = match self.store().topup(order_id).await {
            Ok(o) => o,
            Err(ykt_store::Error::NotFound { .. }) => return Err(EngineError::OrderNotFound),
            Err(e) => return Err(e.into()),
        };
        if order.device_id.as_deref() != Some(device_id) {
            return Err(EngineError::Forbidden);
        }
        Ok(order)
    }

    /// A top-up order for one of the device's ACTIVE cards (client.md §4.1 step 1), `CREATED`.
    pub async fn create_order(
        &self,
        device_id: &str,
        req: &api::TopupOrderReq,
    ) -> Result<api::OrderResp, EngineError> {
        self.device(device_id).await?;
        // conformance.md RP-LOAD-005: an order the purse could never load is refused now,
        // before it is paid.
        if req.amount == 0 || req.amount > proposals::MAX_ORDER_FEN {
            return Err(EngineError::BadRequest("amount"));
        }
        if req.pay_channel.is_empty() || req.pay_channel.len() > 8 {
            return Err(EngineError::BadRequest("pay_channel"));
        }
        let instance = self
            .card_instance(device_id, &req.seid, &req.card_no)
            .await?;
        if instance.state != ykt_tsm::InstanceState::Active {
            return Err(EngineError::State("the card is not ACTIVE"));
        }
        let order_id = format!("ORD{}", ykt_tsm::hex::encode(&clock::random_bytes(12)));
        let order = self
            .store()
            .create_device_topup(
                &NewTopup {
                    order_id: order_id.clone(),
                    pay_order_id: order_id.clone(),
                    seid: instance.seid.to_string(),
                    card_no: instance.card_number.danger_full(),
                    amount_fen: u64::from(req.amount),
                },
                device_id,
                &req.pay_channel,
            )
            .await?;
        self.audit_now(AuditEvent {
            kind: AuditKind::Payment,
            actor: "sp-tsm".into(),
            subject: format!("order/{order_id}"),
            detail: format!(
                "CREATED: {} fen for {}/{} via {}",
                req.amount, instance.seid, instance.card_number, req.pay_channel
            ),
        })
        .await?;
        Ok(order_resp(&order))
    }

    /// An order of the device.
    pub async fn order(
        &self,
        device_id: &str,
        order_id: &str,
    ) -> Result<api::OrderResp, EngineError> {
        self.device(device_id).await?;
        Ok(order_resp(&self.owned_order(device_id, order_id).await?))
    }

    /// The built-in test payment provider pays the order (only when
    /// [`EngineConfig::test_payments`]); paying a paid order changes nothing.
    pub async fn test_pay(
        &self,
        device_id: &str,
        order_id: &str,
    ) -> Result<api::OrderResp, EngineError> {
        if !self.inner.config.test_payments {
            return Err(EngineError::TestPaymentsOff);
        }
        self.device(device_id).await?;
        let order = self.owned_order(device_id, order_id).await?;
        if order.state != TopupState::Created {
            return Ok(order_resp(&order));
        }
        let paid = self.store().pay_topup(order_id).await?;
        self.audit_now(AuditEvent {
            kind: AuditKind::Payment,
            actor: "test-payments".into(),
            subject: format!("order/{order_id}"),
            detail: format!("PAID: {} fen", paid.amount_fen),
        })
        .await?;
        Ok(order_resp(&paid))
    }

    /// The device's card instances.
    pub async fn cards(&self, device_id: &str) -> Result<api::CardsResp, EngineError> {
        self.device(device_id).await?;
        let cards = self.store().card_instances(Some(device_id)).await?;
        Ok(api::CardsResp {
            cards: cards
                .into_iter()
                .map(|c| api::CardSummary {
                    card_no: c.card_no,
                    seid: c.seid,
                    state: c.state.as_str().to_string(),
                })
                .collect(),
        })
    }
}

fn masked(card_no: &str) -> String {
    card_of(card_no).map_or_else(|| "card".to_string(), |c| c.to_string())
}

fn order_resp(order: &ykt_store::TopupOrder) -> api::OrderResp {
    api::OrderResp {
        order_id: order.order_id.clone(),
        state: order.state.as_str().to_string(),
        amount: u32::try_from(order.amount_fen).unwrap_or(u32::MAX),
    }
}
