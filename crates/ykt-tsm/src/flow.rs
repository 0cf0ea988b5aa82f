//! The flow engine: a flow is a list of steps (tsm-gp.md §7) over one persisted [`FlowState`];
//! [`Flow::next`] consumes the wallet's relay answer and gives the next relay message or the
//! outcome. Secure channels are opened, used and dropped here; the steps only say which
//! commands go where ([`crate::steps`]).
//!
//! ```text
//!  caller (SP-/SEI-TSM service)           Flow                             wallet ─ SE
//!  Flow::open_card(..) ───────────────▶  step 0 begins
//!  next(env, None) ◀── Relay{seq 1} ───  plan: commands of step 0 ─────▶  relay_on_card
//!  persist(flow.state()) ─────────────▶  (store)
//!  next(env, Some(rapdus)) ◀─ Relay ───  check SWs, unwrap (R-MAC), step done? next step;
//!                                        secured command? SELECT+IU ▶ EA ▶ wrapped command
//!  … Done(Outcome)
//!  crash: Flow::resume(persisted) ─────▶ the step in progress is *probed* first (GET STATUS,
//!                                        INITIALIZE UPDATE key version, GET BALANCE, GET
//!                                        TRANSACTION PROVE) and only re-sent when not done
//! ```
//!
//! The persisted state holds no key and no session key: a resumed flow opens new channels.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};
use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_gp_host::commands::put_key::KeyCheckValues;
use ykt_scp::{DerivedHostConfig, HostSession};

use crate::error::{AnswerError, Error};
use crate::hex::Hex;
use crate::model::{CardNumber, InstanceState, Management, PurseCardSpec, SeId, SeState};
use crate::payment::{LoadReceipt, OrderRef, PaymentProvider};
use crate::relay::{Expect, RelayRequest, RelayResponse};
use crate::steps::{self, StepName};
use crate::vault::{ChannelDeriver, Entropy, KeyName, KeyRef, KeyVault, LoadProof};

/// Which TSM performs a step (tsm-gp.md §2): its vault is the one asked.
/// This list is complete: the brief has these two TSM roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::exhaustive_enums)]
pub enum Role {
    /// The SE issuer's TSM: ISD keys, SSD creation and deletion, tokens, receipts.
    Sei,
    /// The service provider's (transit issuer's) TSM: SSD keys, the purse, loads.
    Sp,
}

/// What a step's command runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ctx {
    /// No secure messaging (SELECT, GET DATA, the purse's own commands).
    Plain,
    /// Inside a secure channel to the security domain `aid` with `keys` from `role`'s vault.
    Secure {
        aid: Vec<u8>,
        keys: KeyRef,
        role: Role,
    },
}

/// One command of a step.
#[derive(Clone, Debug)]
pub(crate) struct Cmd {
    pub ctx: Ctx,
    pub apdu: CommandApdu,
    /// The status word required (`None`: any, the step judges).
    pub expect: Option<StatusWord>,
}

impl Cmd {
    pub fn plain(apdu: CommandApdu) -> Self {
        Self {
            ctx: Ctx::Plain,
            apdu,
            expect: Some(StatusWord::SUCCESS),
        }
    }

    pub fn any(mut self) -> Self {
        self.expect = None;
        self
    }
}

/// The names of the keys and parties a flow uses (in the SEI-TSM's and the SP-TSM's vaults).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parties {
    /// SEI: the ISD master keys ([`KeyRef::Isd`]).
    pub isd_master: KeyName,
    /// SEI: the delegated-management token signing key.
    pub token_signer: KeyName,
    /// SEI: the receipt key (KVN 71).
    pub receipt_key: KeyName,
    /// SP: the transport key pair the SSD's initial keys are handed over under.
    pub sp_transport: KeyName,
    /// SP (card issuer platform): the purse master keys, initial PIN and profile.
    pub purse_issuer: KeyName,
}

/// Which business flow (tsm-gp.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FlowKind {
    /// 申请开卡: SE registration to ACTIVE.
    OpenCard,
    /// 申请支付 / 充值: an online load of a paid order.
    TopUp,
    /// 删除卡片.
    DeleteCard,
    /// 退卡: refund of the proven balance, then delete.
    CardReturn,
    /// 迁卡, old SE: balance escrowed, purse locked and deleted.
    TransferOut,
    /// 迁卡, new SE: open card with the same card number, escrowed balance loaded.
    TransferIn,
    /// 查询: the SE's registry (GET STATUS).
    StatusQuery,
    /// ACTIVE → LOCKED (e.g. a lost phone).
    Lock,
    /// LOCKED → ACTIVE.
    Unlock,
    /// 查询: the card's data (card number, balance).
    CardDataQuery,
}

/// A registry entry as a flow reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    /// `ISD`, `SSD`, `APP` or `PKG`.
    pub kind: String,
    /// The AID.
    pub aid: Hex,
    /// The life cycle byte.
    pub life_cycle: u8,
}

/// The card's data as a query reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardView {
    /// The card number read from EF15 in the FCI.
    pub card_number: CardNumber,
    /// The balance in fen.
    pub balance: u32,
}

/// A card instance (per SE × card number) as the SP-TSM records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardInstance {
    /// The card number.
    pub card_number: CardNumber,
    /// The SE.
    pub seid: SeId,
    /// The SSD's AID.
    pub ssd_aid: Hex,
    /// How the SSD is managed.
    pub management: Management,
    /// The §8 state.
    pub state: InstanceState,
}

/// Everything a flow knows, serialisable: persist it after every [`Flow::next`] (before the
/// relay message goes out) and a crashed flow resumes from it with [`Flow::resume`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowState {
    /// The relay session id.
    pub session_id: String,
    /// The flow.
    pub kind: FlowKind,
    /// Its steps, in order.
    pub steps: Vec<StepName>,
    /// The step in progress (`steps.len()`: finished).
    pub cursor: usize,
    /// True when the step in progress must be probed before anything is re-sent (a resumed or
    /// retried flow).
    pub resume: bool,
    /// The last relay message number issued.
    pub seq: u32,
    /// The step that failed, if the flow failed (`FAILED_<step>`).
    pub failed: Option<StepName>,
    /// Key names.
    pub parties: Parties,
    /// SSD management.
    pub management: Management,
    /// The SSD's AID.
    pub ssd_aid: Hex,
    /// The SE (expected, or learned by registration).
    pub seid: Option<SeId>,
    /// The SE's CPLC as registration read it (the SEI-TSM's SE registry keeps it).
    #[serde(default)]
    pub cplc: Option<Hex>,
    /// The SE's state as the SEI-TSM sees it.
    pub se_state: SeState,
    /// The purse to open (card number, EF15 fields).
    pub card: Option<PurseCardSpec>,
    /// The card number of the instance.
    pub card_number: Option<CardNumber>,
    /// The instance's state (the last good one; see [`FlowState::instance_state`]).
    pub instance: InstanceState,
    /// Every §8 state the instance went through in this flow, in order (an audit trail for
    /// the store; failures included).
    pub history: Vec<InstanceState>,
    /// The balance the card proved (MAC1) or showed, fen.
    pub balance: Option<u32>,
    /// The order being loaded.
    pub order: Option<OrderRef>,
    /// The transfer (escrow) id, for transfers.
    pub transfer_id: Option<String>,
    /// The card's INITIALIZE FOR LOAD answer of the load in progress.
    pub load: Option<LoadProof>,
    /// MAC2 of the load in progress (single-use, bound to the card's random).
    pub mac2: Option<[u8; 4]>,
    /// The date and time of the load in progress (BCD).
    pub load_datetime: [u8; 7],
    /// The completed load.
    pub load_receipt: Option<LoadReceipt>,
    /// The SSD's initial keys as handed over (SM2 ciphertext).
    pub handover: Option<Hex>,
    /// The registry (status query).
    pub registry: Vec<EntryView>,
    /// The card's data (card-data query).
    pub card_view: Option<CardView>,
}

impl FlowState {
    /// The §8 state, `FAILED_<step>` while failed.
    pub fn instance_state(&self) -> InstanceState {
        match self.failed {
            Some(step) => InstanceState::Failed(step),
            None => self.instance,
        }
    }

    /// The SE, which every step after registration needs.
    pub(crate) fn seid(&self, step: StepName) -> Result<SeId, Error> {
        self.seid.ok_or(Error::Answer {
            step,
            error: AnswerError::SeId,
        })
    }

    /// The card number, which every purse step needs.
    pub(crate) fn card_number(&self, step: StepName) -> Result<CardNumber, Error> {
        self.card_number.ok_or(Error::Answer {
            step,
            error: AnswerError::CardNumber,
        })
    }

    /// The ISD keys of this SE.
    pub(crate) fn isd_keys(&self, step: StepName) -> Result<KeyRef, Error> {
        Ok(KeyRef::Isd {
            master: self.parties.isd_master.clone(),
            seid: self.seid(step)?,
        })
    }

    /// The name of the SSD's initial key set (in both vaults); `step` names the step that
    /// needs it in the error when the SE is not known yet.
    pub fn initial_keys(&self, step: StepName) -> Result<KeyName, Error> {
        Ok(KeyName(alloc::format!(
            "ssd/{}/{}/initial",
            self.seid(step)?,
            crate::hex::encode(&self.ssd_aid.0)
        )))
    }

    /// The name of the SP-TSM's own SSD key set (`step` as for [`FlowState::initial_keys`]).
    pub fn sp_keys(&self, step: StepName) -> Result<KeyName, Error> {
        Ok(KeyName(alloc::format!(
            "ssd/{}/{}/sp",
            self.seid(step)?,
            crate::hex::encode(&self.ssd_aid.0)
        )))
    }

    /// Moves the instance to `s`, recording the transition.
    pub(crate) fn set_instance(&mut self, s: InstanceState) {
        if self.instance != s {
            self.instance = s;
            self.history.push(s);
        }
    }

    /// The card instance this state describes.
    pub fn card_instance(&self) -> Option<CardInstance> {
        Some(CardInstance {
            card_number: self.card_number?,
            seid: self.seid?,
            ssd_aid: self.ssd_aid.clone(),
            management: self.management,
            state: self.instance_state(),
        })
    }
}

/// What a flow works with: both TSMs' vaults, the payment provider, randomness and the time.
pub struct Env<'a> {
    /// The SEI-TSM's vault.
    pub sei: &'a mut dyn KeyVault,
    /// The SP-TSM's vault.
    pub sp: &'a mut dyn KeyVault,
    /// The payment provider.
    pub payments: &'a mut dyn PaymentProvider,
    /// Randomness (host challenges, generated keys, SM2).
    pub rng: &'a mut dyn Entropy,
    /// The current date and time, BCD `YYYYMMDDhhmmss` (loads).
    pub now: [u8; 7],
}

impl Env<'_> {
    pub(crate) fn vault(&mut self, role: Role) -> &mut dyn KeyVault {
        match role {
            Role::Sei => self.sei,
            Role::Sp => self.sp,
        }
    }
}

/// The result of a finished flow.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// The flow.
    pub kind: FlowKind,
    /// The card instance after it (when the flow concerns one).
    pub instance: Option<CardInstance>,
    /// The balance proven or loaded, fen.
    pub balance: Option<u32>,
    /// The load (top-up, transfer in).
    pub load: Option<LoadReceipt>,
    /// The registry (status query).
    pub registry: Vec<EntryView>,
    /// The card's data (card-data query).
    pub card: Option<CardView>,
}

/// What [`Flow::next`] gives.
/// This list is complete: a flow either relays a message or is finished.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum Output {
    /// Relay this to the wallet (after persisting [`Flow::state`]).
    Relay(RelayRequest),
    /// The flow is finished.
    Done(Outcome),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Probe,
    Run,
}

struct Channel {
    aid: Vec<u8>,
    keys: KeyRef,
    session: HostSession,
}

enum Pending {
    /// `count` commands of the queue, from `sent`.
    Commands { count: usize },
    /// SELECT and INITIALIZE UPDATE of a channel being opened.
    Opening {
        aid: Vec<u8>,
        keys: KeyRef,
        role: Role,
        session: HostSession,
    },
    /// EXTERNAL AUTHENTICATE.
    Authenticating {
        aid: Vec<u8>,
        keys: KeyRef,
        session: HostSession,
    },
}

/// Authenticated at INITIALIZE UPDATE, EXTERNAL AUTHENTICATE still to send.
struct Opening {
    aid: Vec<u8>,
    keys: KeyRef,
    session: HostSession,
    external_authenticate: CommandApdu,
}

/// What lives only in memory: the open channel and the step's commands and answers.
#[derive(Default)]
pub(crate) struct Runtime {
    phase: Option<Phase>,
    queue: Vec<Cmd>,
    sent: usize,
    pub(crate) results: Vec<ResponseApdu>,
    channel: Option<Channel>,
    opening: Option<Opening>,
    pending: Option<Pending>,
    /// The key version and check values a PUT KEY or DGI 8001 of this step must get back.
    pub(crate) key_check: Option<(u8, KeyCheckValues)>,
}

impl Runtime {
    /// The step's last command (sent and answered).
    pub(crate) fn last_command(&self) -> Option<&CommandApdu> {
        self.sent
            .checked_sub(1)
            .and_then(|i| self.queue.get(i))
            .map(|c| &c.apdu)
    }
}

/// A flow: its persisted state and its in-memory runtime.
pub struct Flow {
    state: FlowState,
    rt: Runtime,
}

impl core::fmt::Debug for Flow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Flow")
            .field("state", &self.state)
            .field("channel_open", &self.rt.channel.is_some())
            .finish_non_exhaustive()
    }
}

impl Flow {
    pub(crate) fn with_state(state: FlowState) -> Self {
        Self {
            state,
            rt: Runtime::default(),
        }
    }

    /// The state to persist.
    pub fn state(&self) -> &FlowState {
        &self.state
    }

    /// A flow rebuilt from its last persisted state after a crash: the step in progress is
    /// probed on the card before anything is re-sent (tsm-gp.md §8 "never assume success").
    pub fn resume(mut state: FlowState) -> Self {
        state.resume = true;
        Self::with_state(state)
    }

    /// After a failure: clears `FAILED_<step>` and probes the failed step again.
    pub fn retry(&mut self) -> Result<(), Error> {
        if self.state.failed.take().is_none() {
            return Err(Error::NotWaiting);
        }
        self.state.resume = true;
        self.rt = Runtime::default();
        Ok(())
    }

    /// True once the flow is finished.
    pub fn is_done(&self) -> bool {
        self.state.cursor >= self.state.steps.len()
    }

    /// Consumes the wallet's answer to the last relay message (`None` on the first call and
    /// after [`Flow::resume`] or [`Flow::retry`]) and gives the next message or the outcome.
    /// An error marks the flow `FAILED_<step>`; nothing of the failed step is acknowledged.
    pub fn next(
        &mut self,
        env: &mut Env<'_>,
        response: Option<&RelayResponse>,
    ) -> Result<Output, Error> {
        if self.state.failed.is_some() {
            return Err(Error::NotWaiting);
        }
        let result = self.advance(env, response);
        if let Err(e) = &result
            && !matches!(e, Error::Relay | Error::NotWaiting)
        {
            let step = self
                .state
                .steps
                .get(self.state.cursor)
                .copied()
                .or(e.step());
            self.state.failed = step;
            if let Some(step) = step {
                self.state.history.push(InstanceState::Failed(step));
            }
            self.rt = Runtime::default();
        }
        result
    }

    fn advance(
        &mut self,
        env: &mut Env<'_>,
        response: Option<&RelayResponse>,
    ) -> Result<Output, Error> {
        match (response, self.rt.pending.take()) {
            (Some(resp), Some(pending)) => {
                if resp.session_id != self.state.session_id || resp.seq != self.state.seq {
                    self.rt.pending = Some(pending);
                    return Err(Error::Relay);
                }
                self.consume(env, pending, resp)?;
            }
            (None, None) => {}
            (_, pending) => {
                self.rt.pending = pending;
                return Err(Error::NotWaiting);
            }
        }
        loop {
            let Some(&step) = self.state.steps.get(self.state.cursor) else {
                return Ok(Output::Done(self.outcome()));
            };
            match self.rt.phase {
                None => {
                    if let Some(s) = steps::entering(step) {
                        self.state.set_instance(s);
                    }
                    self.rt.results.clear();
                    self.rt.sent = 0;
                    let probe = if self.state.resume {
                        steps::probe(&self.state, step)?
                    } else {
                        None
                    };
                    match probe {
                        Some(cmds) => {
                            self.rt.queue = cmds;
                            self.rt.phase = Some(Phase::Probe);
                        }
                        None => self.plan(env, step)?,
                    }
                }
                Some(_) if self.rt.sent < self.rt.queue.len() => return self.emit(env, step),
                Some(Phase::Probe) => {
                    let results = core::mem::take(&mut self.rt.results);
                    if steps::decide(&mut self.state, env, step, &results)? {
                        self.complete(step);
                    } else {
                        self.plan(env, step)?;
                    }
                }
                Some(Phase::Run) => {
                    let results = core::mem::take(&mut self.rt.results);
                    let more = steps::finish(&mut self.state, env, step, &results, &self.rt)?;
                    if more.is_empty() {
                        self.complete(step);
                    } else {
                        self.rt.queue.extend(more);
                    }
                }
            }
        }
    }

    fn plan(&mut self, env: &mut Env<'_>, step: StepName) -> Result<(), Error> {
        self.rt.key_check = None;
        self.rt.queue = steps::run(&mut self.state, env, step, &mut self.rt)?;
        self.rt.results.clear();
        self.rt.sent = 0;
        self.rt.phase = Some(Phase::Run);
        Ok(())
    }

    fn complete(&mut self, step: StepName) {
        if let Some(s) = steps::leaving(step) {
            self.state.set_instance(s);
        }
        self.state.cursor += 1;
        self.state.resume = false;
        self.rt.phase = None;
        self.rt.queue.clear();
        self.rt.results.clear();
        self.rt.sent = 0;
    }

    fn request(&mut self, capdus: Vec<Hex>, expect: Vec<Expect>, last: bool) -> Output {
        self.state.seq += 1;
        Output::Relay(RelayRequest {
            session_id: self.state.session_id.clone(),
            seq: self.state.seq,
            capdus,
            expect,
            last,
        })
    }

    fn emit(&mut self, env: &mut Env<'_>, step: StepName) -> Result<Output, Error> {
        let channel_err = |error| Error::Channel { step, error };
        let is_last_step =
            self.state.cursor + 1 == self.state.steps.len() && self.rt.phase == Some(Phase::Run);
        let expect_of = |c: &Cmd| match c.expect {
            Some(sw) => Expect {
                sw: Some(Hex(sw.to_bytes().to_vec())),
            },
            None => Expect::any(),
        };
        let cmd = self.rt.queue.get(self.rt.sent).ok_or(Error::NotWaiting)?;
        match cmd.ctx.clone() {
            Ctx::Plain => {
                // A plain SELECT ends any secure channel on the card; drop ours with it.
                self.rt.channel = None;
                let batch: Vec<&Cmd> = self.rt.queue[self.rt.sent..]
                    .iter()
                    .take_while(|c| c.ctx == Ctx::Plain)
                    .collect();
                let count = batch.len();
                let capdus = batch.iter().map(|c| Hex(c.apdu.to_bytes())).collect();
                let expect = batch.iter().map(|c| expect_of(c)).collect();
                let last = is_last_step && self.rt.sent + count == self.rt.queue.len();
                self.rt.pending = Some(Pending::Commands { count });
                Ok(self.request(capdus, expect, last))
            }
            Ctx::Secure { aid, keys, role } => {
                if let Some(open) = self.rt.opening.take() {
                    let ea = Hex(open.external_authenticate.to_bytes());
                    self.rt.pending = Some(Pending::Authenticating {
                        aid: open.aid,
                        keys: open.keys,
                        session: open.session,
                    });
                    return Ok(self.request(
                        alloc::vec![ea],
                        alloc::vec![Expect::success()],
                        false,
                    ));
                }
                if let Some(ch) = self
                    .rt
                    .channel
                    .as_mut()
                    .filter(|c| c.aid == aid && c.keys == keys)
                {
                    let wrapped = ch.session.wrap(&cmd.apdu).map_err(channel_err)?;
                    let expect = expect_of(cmd);
                    let last = is_last_step && self.rt.sent + 1 == self.rt.queue.len();
                    self.rt.pending = Some(Pending::Commands { count: 1 });
                    return Ok(self.request(
                        alloc::vec![Hex(wrapped.to_bytes())],
                        alloc::vec![expect],
                        last,
                    ));
                }
                // tsm-gp.md §5, §6: the static keys stay in the vault; the session keys are
                // computed there when the card's INITIALIZE UPDATE answer is in.
                let (key_version, key_kind) = env
                    .vault(role)
                    .channel_key_info(&keys)
                    .map_err(|error| Error::Vault { step, error })?;
                let mut challenge = [0u8; 8];
                env.rng.fill(&mut challenge);
                let protocol = crate::proposals::protocol()
                    .map_err(|e| channel_err(ykt_scp::ScpError::Parameter(e)))?;
                let (session, iu) = HostSession::initialize_update_derived(
                    DerivedHostConfig {
                        key_version,
                        key_kind,
                        protocol,
                        level: crate::proposals::LEVEL,
                        security_domain_aid: Some(aid.clone()),
                    },
                    &challenge,
                )
                .map_err(channel_err)?;
                let select = steps::select(&aid);
                self.rt.channel = None;
                self.rt.pending = Some(Pending::Opening {
                    aid,
                    keys,
                    role,
                    session,
                });
                Ok(self.request(
                    alloc::vec![Hex(select.to_bytes()), Hex(iu.to_bytes())],
                    alloc::vec![Expect::success(), Expect::success()],
                    false,
                ))
            }
        }
    }

    fn consume(
        &mut self,
        env: &mut Env<'_>,
        pending: Pending,
        resp: &RelayResponse,
    ) -> Result<(), Error> {
        let step = self
            .state
            .steps
            .get(self.state.cursor)
            .copied()
            .ok_or(Error::NotWaiting)?;
        let answer = |error| Error::Answer { step, error };
        let parse = |raw: &Hex| {
            ResponseApdu::parse(raw.as_bytes()).map_err(|_| answer(AnswerError::Length))
        };
        let card = |sw| Error::Card { step, sw };
        match pending {
            Pending::Commands { count } => {
                if resp.rapdus.len() > count {
                    return Err(answer(AnswerError::ResponseCount));
                }
                for raw in &resp.rapdus {
                    let mut r = parse(raw)?;
                    let cmd = self.rt.queue.get(self.rt.sent).ok_or(Error::NotWaiting)?;
                    if matches!(cmd.ctx, Ctx::Secure { .. })
                        && (r.sw == StatusWord::SUCCESS || r.sw.is_warning())
                    {
                        let ch = self.rt.channel.as_mut().ok_or(Error::NotWaiting)?;
                        r = match ch.session.unwrap(&r) {
                            Ok(r) => r,
                            Err(error) => {
                                self.rt.channel = None;
                                return Err(Error::Channel { step, error });
                            }
                        };
                    }
                    if let Some(sw) = cmd.expect
                        && r.sw != sw
                    {
                        return Err(card(r.sw));
                    }
                    self.rt.results.push(r);
                    self.rt.sent += 1;
                }
                if resp.rapdus.len() < count {
                    return Err(answer(AnswerError::ResponseCount));
                }
                Ok(())
            }
            Pending::Opening {
                aid,
                keys,
                role,
                mut session,
            } => {
                let [select, iu] = &resp.rapdus[..] else {
                    return Err(match resp.rapdus.first().map(parse) {
                        Some(Ok(r)) if r.sw != StatusWord::SUCCESS => card(r.sw),
                        _ => answer(AnswerError::ResponseCount),
                    });
                };
                let select = parse(select)?;
                if select.sw != StatusWord::SUCCESS {
                    return Err(card(select.sw));
                }
                let iu = parse(iu)?;
                if iu.sw != StatusWord::SUCCESS {
                    return Err(card(iu.sw));
                }
                let mut deriver = ChannelDeriver::new(&*env.vault(role), &keys);
                let external_authenticate = session
                    .on_initialize_update_response_derived(&iu, &mut deriver)
                    .map_err(|error| match deriver.error() {
                        Some(error) => Error::Vault { step, error },
                        None => Error::Channel { step, error },
                    })?;
                self.rt.opening = Some(Opening {
                    aid,
                    keys,
                    session,
                    external_authenticate,
                });
                Ok(())
            }
            Pending::Authenticating {
                aid,
                keys,
                mut session,
            } => {
                let [ea] = &resp.rapdus[..] else {
                    return Err(answer(AnswerError::ResponseCount));
                };
                let ea = parse(ea)?;
                if ea.sw != StatusWord::SUCCESS {
                    return Err(card(ea.sw));
                }
                session
                    .on_external_authenticate_response(&ea)
                    .map_err(|error| Error::Channel { step, error })?;
                self.rt.channel = Some(Channel { aid, keys, session });
                Ok(())
            }
        }
    }

    fn outcome(&self) -> Outcome {
        Outcome {
            kind: self.state.kind,
            instance: self.state.card_instance(),
            balance: self.state.balance,
            load: self.state.load_receipt.clone(),
            registry: self.state.registry.clone(),
            card: self.state.card_view,
        }
    }
}

/// A new state for `kind` with `steps`.
pub(crate) fn new_state(
    session_id: &str,
    kind: FlowKind,
    steps: Vec<StepName>,
    parties: Parties,
    management: Management,
) -> FlowState {
    FlowState {
        session_id: String::from(session_id),
        kind,
        steps,
        cursor: 0,
        resume: false,
        seq: 0,
        failed: None,
        parties,
        management,
        ssd_aid: Hex(crate::proposals::SSD_AID.to_vec()),
        seid: None,
        cplc: None,
        se_state: SeState::Unknown,
        card: None,
        card_number: None,
        instance: InstanceState::None,
        history: alloc::vec![InstanceState::None],
        balance: None,
        order: None,
        transfer_id: None,
        load: None,
        mac2: None,
        load_datetime: [0; 7],
        load_receipt: None,
        handover: None,
        registry: Vec::new(),
        card_view: None,
    }
}
