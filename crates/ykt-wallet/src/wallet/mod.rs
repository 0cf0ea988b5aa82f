//! The wallet's flows (client.md §2, §4; tsm-gp.md §7): enrolment, open card, top-up, offline
//! balance and records, query, delete, card return, transfer out and in, resume.
//!
//! ```text
//!  request:  Envelope::seal(header {device → TSM, txn_id, request_id}, body, fresh nonce, now_ms)
//!  response: verify under the pinned TSM key → sender, receiver, txn_id, request_id, type
//!            → timestamp window → result code 0000 → body        (before any APDU reaches the SE)
//!  FlowResp RUNNING {relay} ──relay_on_card over SeLink──► ApduResultReq ──► FlowResp …
//!  FlowResp COMPLETED {outcome} → the wallet's cards; FAILED → WalletError::FlowFailed
//! ```

mod cards;
mod offline;
mod topup;

use rand_core::CryptoRng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use ykt_envelope::{Code, Envelope, Header, PeerKey, response_no};
use ykt_purse::files::TransactionRecord;
use ykt_tsm::api::{
    self, ApduResultReq, CardReq, EnrolReq, EnrolResp, FlowResp, FlowStatus, MessageDef,
    OpenCardReq, OrderReq, OrderResp, OutcomeView, RefundReq, TopupOrderReq, TransferInReq,
};
use ykt_tsm::hex::Hex;
use ykt_tsm::relay::relay_on_card;
use ykt_tsm::{Expect, FlowKind, Management, RelayRequest, RelayResponse};

use crate::device::DeviceKey;
use crate::error::{Member, WalletError};
use crate::link::{Persist, SeLink, TsmLink};
use crate::mask::{CardNo, Seid};
use crate::proposals;
use crate::state::{
    CardRecord, JournalEntry, JournalStep, OpenFlow, TsmPin, WalletState, card_hash,
};

/// A step of a flow, for progress bars.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The step's name (the TSM's step names, or the wallet's own: `order`, `pay`, `select`, …).
    pub step: String,
    /// 0-based index of the step.
    pub index: u32,
    /// How many steps there are (0 when unknown).
    pub count: u32,
}

/// The caller's side of a flow: the links, persistence and the progress callback.
pub struct Links<'a> {
    /// The SP-TSM.
    pub tsm: &'a mut dyn TsmLink,
    /// The SE.
    pub se: &'a mut dyn SeLink,
    /// Where the state is saved.
    pub persist: &'a mut dyn Persist,
    /// Progress reports.
    pub progress: &'a mut dyn FnMut(Progress),
}

/// The result of a top-up.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopUp {
    /// The order.
    pub order_id: String,
    /// Fen loaded.
    pub amount: u32,
    /// The balance after the load, fen.
    pub new_balance: u32,
}

/// A card's data read through the TSM.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CardQuery {
    /// The card.
    pub card_no: CardNo,
    /// Its balance, fen, if the TSM read it.
    pub balance: Option<u32>,
}

/// The code the new phone gives to `transfer_in`. `Debug` redacts it; the app shows it with
/// [`TransferCode::reveal`].
#[derive(Clone, PartialEq, Eq)]
pub struct TransferCode(String);

impl TransferCode {
    /// A code the user typed.
    pub fn new(code: impl Into<String>) -> Self {
        Self(code.into())
    }

    /// The code, to show to the user or to send in `TransferInReq`.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for TransferCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TransferCode([redacted])")
    }
}

impl Drop for TransferCode {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// The wallet: its state and the flows over it. No I/O of its own.
#[derive(Debug, Default)]
pub struct Wallet {
    state: WalletState,
}

fn new_id<R: CryptoRng + ?Sized>(rng: &mut R) -> String {
    // A UUID version 4 (RFC 9562 §5.4) from 16 random bytes.
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let h = ykt_tsm::hex::encode(&b).to_lowercase();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn sw_of(response: &[u8]) -> [u8; 2] {
    match response {
        [.., a, b] => [*a, *b],
        _ => [0x6F, 0x00],
    }
}

/// Is `capdu` CREDIT FOR LOAD (`80 52`, e-purse.md §4.4)?
fn is_credit_for_load(capdu: &[u8]) -> bool {
    matches!(capdu, [0x80, 0x52, ..])
}

/// Is `capdu` INITIALIZE FOR LOAD (`80 50 00 02`, e-purse.md §4.3)?
fn is_initialize_for_load(capdu: &[u8]) -> bool {
    matches!(capdu, [0x80, 0x50, 0x00, 0x02, ..])
}

impl Wallet {
    /// A wallet over a state (a fresh one, or one opened from the sealed file).
    pub fn new(state: WalletState) -> Self {
        Self { state }
    }

    /// The state (to seal and save).
    pub fn state(&self) -> &WalletState {
        &self.state
    }

    /// The state, giving up the wallet.
    pub fn into_state(self) -> WalletState {
        self.state
    }

    /// The cards on this device.
    pub fn cards(&self) -> &[CardRecord] {
        &self.state.cards
    }

    /// The flows left open (the app was killed, a link failed): `resume` each (client.md §4.2).
    pub fn open_flows(&self) -> &[OpenFlow] {
        &self.state.flows
    }

    /// The top-up journal: orders paid or being loaded.
    pub fn journal(&self) -> &[JournalEntry] {
        &self.state.journal
    }

    /// Pins the TSM before enrolment (its id and key from configuration); `enrol` then refuses
    /// any other key.
    pub fn pin_tsm(&mut self, pin: TsmPin) {
        self.state.tsm = Some(pin);
    }

    /// Creates the device key if there is none (client.md §6.1) and saves it.
    pub fn ensure_device_key<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        rng: &mut R,
    ) -> Result<(), WalletError> {
        if self.state.device_key.is_none() {
            self.state.device_key = Some(DeviceKey::generate(rng).ok_or(WalletError::Random)?);
            links.persist.persist(&self.state)?;
        }
        Ok(())
    }

    /// Enrols the device with the TSM `tsm_id` (`EnrolReq`, client.md §6.1): registers its
    /// public key and pins the TSM's key from `EnrolResp`. The response must come from `tsm_id`
    /// and verify under the key it carries, which must be the pinned key if one was pinned with
    /// [`Self::pin_tsm`] (otherwise the first key is trusted).
    pub fn enrol<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        tsm_id: &str,
        device_model: &str,
    ) -> Result<(), WalletError> {
        if self.state.device_id.is_some() {
            return Err(WalletError::AlreadyEnrolled);
        }
        if self.state.tsm.as_ref().is_some_and(|p| p.tsm_id != tsm_id) {
            return Err(WalletError::Mismatch(Member::Sender));
        }
        self.ensure_device_key(links, rng)?;
        let key = self
            .state
            .device_key
            .as_ref()
            .ok_or(WalletError::NotEnrolled)?;
        let body = EnrolReq {
            device_pub: Hex(key.public_key().to_bytes().to_vec()),
            device_model: device_model.into(),
        };
        let sender = format!("{}{}", proposals::ENROL_SENDER_PREFIX, key.key_id());
        let pinned = self.state.tsm.as_ref().and_then(TsmPin::key);
        let txn_id = new_id(rng);
        (links.progress)(Progress {
            step: "enrol".into(),
            index: 0,
            count: 1,
        });
        let (request, response) = self.send(
            links,
            now_ms,
            rng,
            api::ENROL,
            &sender,
            tsm_id,
            &txn_id,
            &body,
        )?;
        // The key to verify under is in the body: read it, then verify before using anything
        // else of the response.
        let resp: EnrolResp = response.body().map_err(|_| WalletError::Protocol)?;
        let pin = TsmPin {
            tsm_id: resp.tsm_id.clone(),
            tsm_pub: resp.tsm_pub.clone(),
        };
        let tsm_key = pin.key().ok_or(WalletError::Protocol)?;
        if pinned.as_ref().is_some_and(|p| p != &tsm_key) {
            return Err(WalletError::Mismatch(Member::TsmKey));
        }
        check_response(
            &request,
            &response,
            &tsm_key,
            api::ENROL,
            now_ms,
            Some(tsm_id),
        )?;
        if resp.tsm_id != tsm_id {
            return Err(WalletError::Mismatch(Member::Sender));
        }
        self.state.device_id = Some(resp.device_id);
        self.state.tsm = Some(pin);
        links.persist.persist(&self.state)?;
        Ok(())
    }

    /// Sends one request (retrying retryable link failures with a fresh nonce and the same
    /// `request_id`) and returns the request and the unverified response.
    #[allow(clippy::too_many_arguments)]
    fn send<R: CryptoRng + ?Sized, B: Serialize>(
        &self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        def: MessageDef,
        sender: &str,
        receiver: &str,
        txn_id: &str,
        body: &B,
    ) -> Result<(Envelope, Envelope), WalletError> {
        let key = self
            .state
            .device_key
            .as_ref()
            .ok_or(WalletError::NotEnrolled)?;
        let signer = key.signer();
        let header = Header {
            msg_type: def.request.into(),
            msg_no: def.msg_no.into(),
            sender_id: sender.into(),
            receiver_id: receiver.into(),
            txn_id: txn_id.into(),
            request_id: new_id(rng),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut nonce = [0u8; 16];
            rng.fill_bytes(&mut nonce);
            // tsm-gp.md §7: every message a fresh envelope; client.md §6.3.
            let request = Envelope::seal(&header, body, None, &nonce, now_ms, &signer)
                .map_err(|_| WalletError::Protocol)?;
            match links.tsm.send(&request) {
                Ok(response) => return Ok((request, response)),
                Err(e) if e.is_retryable() && attempt < proposals::MAX_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One request to the enrolled TSM, its response checked (client.md §6.3) and its body.
    fn call<R: CryptoRng + ?Sized, B: Serialize, T: DeserializeOwned>(
        &self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        def: MessageDef,
        txn_id: &str,
        body: &B,
    ) -> Result<T, WalletError> {
        let (device_id, pin) = self.enrolment()?;
        let key = pin.key().ok_or(WalletError::NotEnrolled)?;
        let (request, response) = self.send(
            links,
            now_ms,
            rng,
            def,
            &device_id,
            &pin.tsm_id,
            txn_id,
            body,
        )?;
        check_response(&request, &response, &key, def, now_ms, Some(&pin.tsm_id))?;
        response.body().map_err(|_| WalletError::Protocol)
    }

    fn enrolment(&self) -> Result<(String, TsmPin), WalletError> {
        match (&self.state.device_id, &self.state.tsm) {
            (Some(id), Some(pin)) if self.state.device_key.is_some() => {
                Ok((id.clone(), pin.clone()))
            }
            _ => Err(WalletError::NotEnrolled),
        }
    }

    fn card_record(&self, card: &CardNo) -> Result<CardRecord, WalletError> {
        self.state
            .card(card)
            .cloned()
            .ok_or(WalletError::UnknownCard)
    }

    fn card_req(&self, card: &CardNo) -> Result<CardReq, WalletError> {
        let record = self.card_record(card)?;
        Ok(CardReq {
            card_no: record.card_no.danger_full().into(),
            seid: record.seid.danger_full().into(),
        })
    }

    /// Starts a flow: records it as open (saved before the first request), runs it, and
    /// applies its outcome.
    #[allow(clippy::too_many_arguments)]
    fn start_flow<R: CryptoRng + ?Sized, B: Serialize>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        def: MessageDef,
        kind: FlowKind,
        card: Option<&CardNo>,
        body: &B,
    ) -> Result<OutcomeView, WalletError> {
        self.enrolment()?;
        let txn_id = new_id(rng);
        self.state.flows.push(OpenFlow {
            txn_id: txn_id.clone(),
            kind,
            card_no: card.cloned(),
            started_ms: now_ms,
        });
        links.persist.persist(&self.state)?;
        let first = self.call(links, now_ms, rng, def, &txn_id, body)?;
        self.drive(links, now_ms, rng, &txn_id, first)
    }

    /// Runs a flow from a `FlowResp` to its end: each relay message to the SE and its answers
    /// back, until COMPLETED or FAILED.
    fn drive<R: CryptoRng + ?Sized>(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        rng: &mut R,
        txn_id: &str,
        mut resp: FlowResp,
    ) -> Result<OutcomeView, WalletError> {
        loop {
            if resp.txn_id != txn_id {
                return Err(WalletError::Mismatch(Member::TxnId));
            }
            (links.progress)(Progress {
                step: resp.step.clone().unwrap_or_default(),
                index: resp.step_index,
                count: resp.step_count,
            });
            match resp.status {
                FlowStatus::Completed => {
                    let outcome = resp.outcome.ok_or(WalletError::Protocol)?;
                    self.state.flows.retain(|f| f.txn_id != txn_id);
                    return Ok(outcome);
                }
                FlowStatus::Failed => {
                    return Err(WalletError::FlowFailed {
                        kind: resp.kind,
                        instance_state: resp.instance_state,
                    });
                }
                FlowStatus::Running => {
                    let relay = resp.relay.ok_or(WalletError::Protocol)?;
                    self.journal_before(links, txn_id, &relay)?;
                    let answer = relay_over(links.se, &relay);
                    let journalled = self.journal_after(txn_id, &relay, answer.as_ref().ok());
                    if journalled {
                        links.persist.persist(&self.state)?;
                    }
                    let response = answer?;
                    resp = self.call(
                        links,
                        now_ms,
                        rng,
                        api::APDU_RESULT,
                        txn_id,
                        &ApduResultReq { response },
                    )?;
                }
            }
        }
    }

    /// Applies a finished flow to the wallet's state and saves it.
    fn finish(
        &mut self,
        links: &mut Links<'_>,
        now_ms: i64,
        kind: FlowKind,
        card: Option<&CardNo>,
        outcome: OutcomeView,
    ) -> Result<Finished, WalletError> {
        let mut finished = Finished::default();
        match kind {
            FlowKind::OpenCard | FlowKind::TransferIn => {
                let record = CardRecord {
                    card_no: CardNo::new(outcome.card_no.clone().ok_or(WalletError::Protocol)?),
                    seid: Seid::new(outcome.seid.clone().ok_or(WalletError::Protocol)?),
                    app_aid: outcome.app_aid.clone().ok_or(WalletError::Protocol)?,
                    state: "ACTIVE".into(),
                    balance: outcome.balance.map(|b| (b, now_ms)),
                };
                self.state.cards.retain(|c| c.card_no != record.card_no);
                self.state.cards.push(record.clone());
                finished.card = Some(record);
            }
            FlowKind::DeleteCard | FlowKind::CardReturn | FlowKind::TransferOut => {
                if let Some(card) = card {
                    self.state.cards.retain(|c| &c.card_no != card);
                }
            }
            FlowKind::TopUp => {
                let load = outcome.load.clone().ok_or(WalletError::Protocol)?;
                if let Some(card) = card
                    && let Some(c) = self.state.cards.iter_mut().find(|c| &c.card_no == card)
                {
                    c.balance = Some((load.new_balance, now_ms));
                }
                self.state.journal.retain(|e| e.order_no != load.order_id);
                finished.top_up = Some(TopUp {
                    order_id: load.order_id,
                    amount: load.amount,
                    new_balance: load.new_balance,
                });
            }
            FlowKind::CardDataQuery => {
                let balance = outcome.card.as_ref().map(|c| c.balance).or(outcome.balance);
                if let Some(card) = card
                    && let Some(c) = self.state.cards.iter_mut().find(|c| &c.card_no == card)
                    && let Some(b) = balance
                {
                    c.balance = Some((b, now_ms));
                }
                finished.balance = balance;
            }
            _ => {}
        }
        finished.refund = outcome.refund;
        finished.transfer_code = outcome.transfer_code.clone().map(TransferCode);
        links.persist.persist(&self.state)?;
        Ok(finished)
    }
}

/// What a resumed flow gave.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resumed {
    /// Which flow it was.
    pub kind: FlowKind,
    /// The card an open card or transfer in added.
    pub card: Option<CardRecord>,
    /// The load a top-up made.
    pub top_up: Option<TopUp>,
}

#[derive(Default)]
struct Finished {
    card: Option<CardRecord>,
    top_up: Option<TopUp>,
    balance: Option<u32>,
    refund: Option<u32>,
    transfer_code: Option<TransferCode>,
}

/// client.md §6.3: checks a response before anything of it is used — the signature under the
/// pinned key first, then that it answers this request, then its time and result code.
fn check_response(
    request: &Envelope,
    response: &Envelope,
    key: &ykt_crypto::Sm2PublicKey,
    def: MessageDef,
    now_ms: i64,
    tsm_id: Option<&str>,
) -> Result<(), WalletError> {
    response
        .verify(&PeerKey::Sm2(key.clone()))
        .map_err(|_| WalletError::BadSignature)?;
    if tsm_id.is_some_and(|id| response.sender_id != id) {
        return Err(WalletError::Mismatch(Member::Sender));
    }
    if response.receiver_id != request.sender_id {
        return Err(WalletError::Mismatch(Member::Receiver));
    }
    if response.txn_id != request.txn_id {
        return Err(WalletError::Mismatch(Member::TxnId));
    }
    if response.request_id != request.request_id {
        return Err(WalletError::Mismatch(Member::RequestId));
    }
    response
        .check_time(now_ms, proposals::RESPONSE_WINDOW_MS)
        .map_err(|_| WalletError::Stale)?;
    match response.code() {
        Some(Code::Ok) => {}
        Some(code) => return Err(WalletError::Refused(code)),
        None => return Err(WalletError::Protocol),
    }
    // A refusal may come in a generic response type; a success must be this request's.
    if response.msg_type != def.response || response.msg_no != response_no(def.msg_no) {
        return Err(WalletError::Mismatch(Member::MessageType));
    }
    Ok(())
}

/// The wallet's half of a relay message over the SE link (`ykt_tsm::relay::relay_on_card`);
/// a link failure stops the message and is the error.
fn relay_over(se: &mut dyn SeLink, relay: &RelayRequest) -> Result<RelayResponse, WalletError> {
    let mut failure = None;
    let answer = relay_on_card(relay, |capdu| {
        if failure.is_some() {
            return vec![0x6F, 0x00];
        }
        match se.transmit(capdu) {
            Ok(r) => r,
            Err(e) => {
                failure = Some(e);
                vec![0x6F, 0x00]
            }
        }
    });
    match failure {
        Some(e) => Err(WalletError::Se(e)),
        None => Ok(answer),
    }
}
