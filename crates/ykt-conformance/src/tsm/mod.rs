//! The TSM and client-software harness (conformance.md §4.8, §4.9; tsm-gp.md §7; client.md §6).
//!
//! ```text
//!  harness (upper tester)                                    TSM under test
//!  Wallet (ykt-wallet SDK, a device key of its own) ─TsmLink─▶ Relay ─TsmAccess─▶ POST /v1/{msg_type}
//!        │                                                 records every envelope, can tamper
//!        └─SeLink─▶ Se: a blank simulated SE (ykt_tsm::testing::blank_se), records every APDU,
//!                   can cut the link at the n-th command
//! ```
//!
//! The harness plays the phone: a device it enrols with its own SM2 key, a blank SE as card
//! production delivers it (keyed by the PUBLIC test hierarchy, `ykt_tsm::vault::test_keys`), and
//! the test payment provider (`TestPayReq`). For the TSM items (`Target::Tsm`) the TSM is under
//! test and the wallet SDK is the harness's tool; for the client items (`Target::Client`) the
//! wallet SDK is under test and the harness sits in the middle of both its links. Both reach the
//! TSM only through [`TsmAccess`], which the binary implements over HTTP: this crate does no I/O.
//!
//! The SE keys of a TSM without the test hierarchy are unknown to the harness: items that need an
//! SE declare the profile feature `tsm-test-keys` and are N/A without it.
//!
//! The remote-payment (online load) items of `catalogue/rp.toml` (RP-LOAD-…) are TSM items too:
//! the SP-TSM is the load host that checks MAC1 and gives MAC2. The SE link can change the
//! card's answers (`LinkMode::tamper_se`) as the TSM link can change the TSM's, and it can fail
//! before a chosen command reaches the SE or after the SE executed it (its answer lost:
//! RP-LOAD-003). RP-QRY-001 and RP-SEC-001 are client items (the wallet SDK's balance and
//! records against the SE's; the scheme of the TSM URL the client used, from `RunInfo::target`).

mod client;
mod items;
mod rp;
mod se;

use std::cell::RefCell;
use std::fmt;

use serde::Serialize;
use ykt_envelope::{Envelope, Header};
use ykt_tsm::api::{self, CardsResp, MessageDef};
use ykt_wallet::testing::TestRng;
use ykt_wallet::{
    LinkError, Links, Persist, PersistError, Progress, SeError, SeLink, TsmLink, Wallet,
    WalletState,
};

pub use self::se::SimSe;
use crate::registry::TsmCheck;
use crate::target::Fault;
use crate::transcript::{Transcript, hex};
use crate::verdict::Stop;

/// Every TSM checker (`target = "tsm"`), by name.
pub(crate) const TSM_CHECKERS: &[(&str, TsmCheck)] = &[
    ("tsm::open_card", items::open_card),
    ("tsm::delegated_management", items::delegated_management),
    ("tsm::cut_and_resume", items::cut_and_resume),
    ("tsm::delete_card", items::delete_card),
    ("tsm::card_return", items::card_return),
    ("tsm::card_return_tampered", items::card_return_tampered),
    ("tsm::transfer", items::transfer),
    ("tsm::envelope", items::envelope),
    ("tsm::refusals", items::refusals),
    ("tsm::idempotency", items::idempotency),
    ("tsm::stale", items::stale),
    ("tsm::key_handover", items::key_handover),
    ("rp::bad_mac1", rp::bad_mac1),
    ("rp::duplicate_request", rp::duplicate_request),
    ("rp::over_limit", rp::over_limit),
    ("rp::full_load", rp::full_load),
    ("rp::lost_credit", rp::lost_credit),
];

/// Every client checker (`target = "client"`), by name.
pub(crate) const CLIENT_CHECKERS: &[(&str, TsmCheck)] = &[
    ("cl::open_card", client::open_card),
    ("cl::flows", client::flows),
    ("cl::canaries", client::canaries_check),
    ("cl::masking", client::masking),
    ("cl::signing", client::signing),
    ("cl::sealed_state", client::sealed_state),
    ("cl::replay", client::replay),
    ("rp::query", rp::query),
    ("rp::transport", rp::transport),
];

/// An HTTP answer: status and body bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// A TSM the harness can reach. The binary implements it over HTTP (`ykt conform --target
/// tsm:URL`), so this crate itself never does I/O; tests wrap it to break the TSM on purpose.
pub trait TsmAccess {
    /// POSTs `body` (JSON) to `path` (e.g. `/v1/OpenCardReq`).
    fn post(&mut self, path: &str, body: &[u8]) -> Result<HttpResponse, Fault>;
    /// GETs `path` (e.g. `/health`).
    fn get(&mut self, path: &str) -> Result<HttpResponse, Fault>;
    /// The TSM's id (the `receiver_id` wallets address).
    fn tsm_id(&self) -> String;
    /// The time now, Unix milliseconds (the TSM checks envelope timestamps against its clock).
    fn now_ms(&mut self) -> i64;
    /// A fresh seed for the run's device keys, nonces, request ids and SE serials: a TSM that
    /// outlives a run must not see the same device, SE or `request_id` twice.
    fn seed(&mut self) -> u64;
    /// RP-SEC-001 (client.md §6.4): how the client's link to the TSM is secured, and how that
    /// link answered probes of endpoints that are not the TSM (run by the access, which does
    /// the I/O). The default: the access cannot say.
    fn link_report(&mut self) -> LinkReport {
        LinkReport::Unknown
    }
}

/// What the client's link to the TSM is (RP-SEC-001).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkReport {
    /// The access cannot say, or cannot probe.
    Unknown,
    /// Plain HTTP.
    Plaintext,
    /// TLS with the server's key pinned (`pins` keys), and the probes of the link.
    Pinned {
        /// The TLS version the link requires (e.g. `TLS 1.3`).
        version: String,
        /// How many keys are pinned (the current and backups).
        pins: usize,
        /// The probes, each an endpoint the client must refuse.
        probes: Vec<LinkProbe>,
    },
}

/// One probe of the client's link: an endpoint that is not the TSM, and what the client did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkProbe {
    /// The endpoint (e.g. "a TLS 1.3 server on 127.0.0.1 with a key of its own").
    pub endpoint: String,
    /// True when the client refused it.
    pub refused: bool,
    /// Application bytes the endpoint received from the client (a refusal "before any request
    /// byte" leaves 0).
    pub bytes_received: u64,
    /// The client's error or answer, as it reported it.
    pub detail: String,
}

/// The harness of one TSM or client item.
pub struct TsmHarness<'a> {
    access: &'a mut dyn TsmAccess,
    log: RefCell<Transcript>,
    rng: TestRng,
    seed: u64,
    tsm_id: String,
    /// SEs made so far in this item (each gets its own serial).
    ses: u8,
    /// Every request envelope the harness's wallets sent, in order.
    requests: Vec<Envelope>,
    /// Every response envelope they got, in order (as received: before any tampering).
    responses: Vec<Envelope>,
    /// The raw bytes of every request and response (for the canary and key scans).
    wire: Vec<u8>,
    /// Everything the wallet returned or reported (results' `Debug`, errors' text, progress).
    shown: Vec<String>,
    /// The target as given to the run (`RunInfo::target`, e.g. `client:http://host:port`).
    target: String,
}

impl fmt::Debug for TsmHarness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsmHarness")
            .field("tsm_id", &self.tsm_id)
            .field("requests", &self.requests.len())
            .finish_non_exhaustive()
    }
}

/// Changes a response envelope before the wallet sees it (the signature is kept); true when it
/// changed something.
pub(crate) type Tamper = Box<dyn FnMut(&mut Envelope) -> bool>;

/// Changes the SE's answer to a command (`command`, `answer`) before the wallet relays it to
/// the TSM; true when it changed something.
pub(crate) type SeTamper = Box<dyn FnMut(&[u8], &mut Vec<u8>) -> bool>;

/// What one wallet call through [`TsmHarness::with_links`] may do to the links.
#[derive(Default)]
pub(crate) struct LinkMode {
    /// Changes a response envelope before the wallet sees it (the signature is kept); true when
    /// it changed something.
    pub tamper: Option<Tamper>,
    /// Changes an SE answer before the wallet sees it (the man in the middle on the SE link).
    pub tamper_se: Option<SeTamper>,
    /// The SE link fails at this command (0-based, counted over the call).
    pub cut_se_at: Option<usize>,
    /// The SE link fails before the first command this matches reaches the SE (once).
    pub cut_se_before: Option<fn(&[u8]) -> bool>,
    /// The first command this matches reaches the SE and is executed, but its answer is lost:
    /// the link fails on the way back (once).
    pub lose_se_answer: Option<fn(&[u8]) -> bool>,
}

/// What happened on the links during one wallet call.
#[derive(Clone, Debug, Default)]
pub(crate) struct LinkStats {
    /// Commands the SE received.
    pub apdus: usize,
    /// Responses tampered with.
    pub tampered: usize,
    /// SE answers tampered with.
    pub se_tampered: usize,
    /// The SE's command/response pairs (the SE's own answers, before any tampering).
    pub exchanges: Vec<(Vec<u8>, Vec<u8>)>,
}

/// \[PROPOSAL\] The city code the harness opens cards for (the test deployment's).
pub(crate) const CITY_CODE: &str = "1000";
/// \[PROPOSAL\] The device model the harness enrols as.
const DEVICE_MODEL: &str = "ykt-conformance harness";

impl<'a> TsmHarness<'a> {
    /// A fresh harness over `access`; `item` makes the seed differ per item.
    pub fn new(access: &'a mut dyn TsmAccess, item: &str) -> TsmHarness<'a> {
        let mut seed = access.seed();
        for b in item.bytes() {
            seed = seed.rotate_left(5) ^ u64::from(b);
        }
        let tsm_id = access.tsm_id();
        TsmHarness {
            access,
            log: RefCell::new(Transcript::new()),
            rng: TestRng::new(seed),
            seed,
            tsm_id,
            ses: 0,
            requests: Vec::new(),
            responses: Vec::new(),
            wire: Vec::new(),
            shown: Vec::new(),
            target: String::new(),
        }
    }

    /// The harness of `item` for a run whose target was given as `target` (`RunInfo::target`,
    /// e.g. `client:http://host:port`).
    pub(crate) fn for_target(
        access: &'a mut dyn TsmAccess,
        item: &str,
        target: &str,
    ) -> TsmHarness<'a> {
        let mut h = TsmHarness::new(access, item);
        h.target = target.to_owned();
        h
    }

    /// The target as given to the run (`RunInfo::target`; empty when not given).
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// [`TsmAccess::link_report`] of the access.
    pub(crate) fn link_report(&mut self) -> LinkReport {
        self.access.link_report()
    }

    /// Records an event.
    pub fn note(&self, text: impl Into<String>) {
        self.log.borrow_mut().event(text);
    }

    /// The transcript.
    pub fn into_transcript(self) -> Transcript {
        self.log.into_inner()
    }

    pub(crate) fn now_ms(&mut self) -> i64 {
        self.access.now_ms()
    }

    pub(crate) fn tsm_id(&self) -> &str {
        &self.tsm_id
    }

    pub(crate) fn requests(&self) -> &[Envelope] {
        &self.requests
    }

    pub(crate) fn responses(&self) -> &[Envelope] {
        &self.responses
    }

    pub(crate) fn wire(&self) -> &[u8] {
        &self.wire
    }

    pub(crate) fn shown(&self) -> &[String] {
        &self.shown
    }

    pub(crate) fn show(&mut self, text: String) {
        self.shown.push(text);
    }

    pub(crate) fn rng(&mut self) -> &mut TestRng {
        &mut self.rng
    }

    /// A fresh blank SE with a serial of its own (from the run's seed and the count).
    pub(crate) fn new_se(&mut self) -> Result<SimSe, Stop> {
        self.ses += 1;
        let mut serial = (self.seed ^ u64::from(self.ses).wrapping_mul(0x9E37_79B9)).to_be_bytes();
        serial[7] = self.ses;
        let se = SimSe::blank(&serial, self.seed.wrapping_add(u64::from(self.ses)))?;
        self.log.borrow_mut().mask_card_number(&se.seid_padded());
        self.note(format!(
            "a blank SE from card production, SEID {}",
            se.seid_hex()
        ));
        Ok(se)
    }

    /// Runs `f` (a wallet flow) with links through the harness: the TSM link over
    /// [`TsmAccess`], the SE link to `se`.
    pub(crate) fn with_links<T>(
        &mut self,
        se: &mut SimSe,
        mode: LinkMode,
        f: impl FnOnce(&mut Links<'_>, i64, &mut TestRng) -> T,
    ) -> (T, LinkStats) {
        let now = self.access.now_ms();
        let mut relay = Relay {
            access: &mut *self.access,
            log: &self.log,
            tamper: mode.tamper,
            requests: &mut self.requests,
            responses: &mut self.responses,
            wire: &mut self.wire,
            tampered: 0,
        };
        let mut link = SeRecorder {
            se,
            log: &self.log,
            cut_at: mode.cut_se_at,
            cut_before: mode.cut_se_before,
            lose_answer: mode.lose_se_answer,
            tamper: mode.tamper_se,
            tampered: 0,
            count: 0,
            exchanges: Vec::new(),
        };
        let mut persist = NoPersist;
        let mut steps = Vec::new();
        let mut progress = |p: Progress| steps.push(p.step);
        let out = {
            let mut links = Links {
                tsm: &mut relay,
                se: &mut link,
                persist: &mut persist,
                progress: &mut progress,
            };
            f(&mut links, now, &mut self.rng)
        };
        let stats = LinkStats {
            apdus: link.count,
            tampered: relay.tampered,
            se_tampered: link.tampered,
            exchanges: link.exchanges,
        };
        self.shown.extend(steps);
        (out, stats)
    }

    /// An enrolled wallet (a device key of its own, the TSM's key pinned from `EnrolResp`).
    pub(crate) fn enrolled_wallet(&mut self, se: &mut SimSe) -> Result<Wallet, Stop> {
        let mut wallet = Wallet::new(WalletState::default());
        let tsm_id = self.tsm_id.clone();
        let (r, _) = self.with_links(se, LinkMode::default(), |links, now, rng| {
            wallet.enrol(links, now, rng, &tsm_id, DEVICE_MODEL)
        });
        r.map_err(|e| Stop::Inconclusive(format!("enrolment with {tsm_id} failed: {e}")))?;
        self.note("device enrolled (EnrolReq), the TSM's key pinned");
        Ok(wallet)
    }

    /// Seals and sends a request as the wallet's device, outside the wallet (the harness's own
    /// probes), and gives the response envelope as it came (not verified).
    pub(crate) fn call_as<B: Serialize>(
        &mut self,
        wallet: &Wallet,
        def: MessageDef,
        txn_id: &str,
        body: &B,
    ) -> Result<(u16, Envelope), Stop> {
        let request = self.seal_as(wallet, def, txn_id, body, 0)?;
        self.post_envelope(&request.msg_type, &request.to_vec())
    }

    /// A request sealed as the wallet's device, its timestamp shifted by `skew_ms`.
    pub(crate) fn seal_as<B: Serialize>(
        &mut self,
        wallet: &Wallet,
        def: MessageDef,
        txn_id: &str,
        body: &B,
        skew_ms: i64,
    ) -> Result<Envelope, Stop> {
        let state = wallet.state();
        let key = state
            .device_key
            .as_ref()
            .ok_or_else(|| Stop::Inconclusive("the wallet has no device key".into()))?;
        let sender = state
            .device_id
            .clone()
            .ok_or_else(|| Stop::Inconclusive("the wallet is not enrolled".into()))?;
        let header = Header {
            msg_type: def.request.into(),
            msg_no: def.msg_no.into(),
            sender_id: sender,
            receiver_id: self.tsm_id.clone(),
            txn_id: txn_id.into(),
            request_id: self.fresh_id(),
        };
        let mut nonce = [0u8; 16];
        rand_core::Rng::fill_bytes(&mut self.rng, &mut nonce);
        let now = self.access.now_ms() + skew_ms;
        Envelope::seal(&header, body, None, &nonce, now, &key.signer())
            .map_err(|e| Stop::Inconclusive(format!("sealing {}: {e}", def.request)))
    }

    /// A fresh id (UUID-shaped, from the harness's RNG).
    pub(crate) fn fresh_id(&mut self) -> String {
        let mut b = [0u8; 16];
        rand_core::Rng::fill_bytes(&mut self.rng, &mut b);
        let h = hex(&b).to_lowercase();
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    /// POSTs raw bytes to `/v1/{msg_type}`; the answer must be an envelope (FAIL otherwise:
    /// every answer of the business API, refusals included, is a signed envelope).
    pub(crate) fn post_envelope(
        &mut self,
        msg_type: &str,
        bytes: &[u8],
    ) -> Result<(u16, Envelope), Stop> {
        let path = format!("/v1/{msg_type}");
        self.wire.extend_from_slice(bytes);
        let answer = self
            .access
            .post(&path, bytes)
            .map_err(|f| Stop::Inconclusive(format!("POST {path}: {f}")))?;
        self.wire.extend_from_slice(&answer.body);
        let envelope = Envelope::from_slice(&answer.body).map_err(|e| {
            Stop::Fail(format!(
                "POST {path}: HTTP {} with a body that is not an envelope ({e})",
                answer.status
            ))
        })?;
        self.note(format!(
            "harness → TSM {msg_type}: HTTP {}, {} {}",
            answer.status,
            envelope.msg_type,
            envelope.code().map_or("(no result)", |c| c.as_str())
        ));
        Ok((answer.status, envelope))
    }

    /// The device's cards as the TSM records them (`CardsQueryReq`, tsm-gp.md §7 query), from a
    /// response that verifies under the pinned TSM key.
    pub(crate) fn tsm_cards(&mut self, wallet: &Wallet) -> Result<CardsResp, Stop> {
        let txn = self.fresh_id();
        let (_, response) = self.call_as(wallet, api::CARDS_QUERY, &txn, &api::Empty {})?;
        verify_tsm(wallet, &response)?;
        if response.code() != Some(ykt_envelope::Code::Ok) {
            return Err(Stop::Inconclusive(format!(
                "CardsQueryReq refused with {:?}",
                response.code()
            )));
        }
        response
            .body()
            .map_err(|e| Stop::Fail(format!("CardsResp body: {e}")))
    }
}

/// The response verifies under the TSM key the wallet pinned at enrolment.
pub(crate) fn verify_tsm(wallet: &Wallet, response: &Envelope) -> Result<(), Stop> {
    let key = wallet
        .state()
        .tsm
        .as_ref()
        .and_then(ykt_wallet::TsmPin::key)
        .ok_or_else(|| Stop::Inconclusive("no TSM key pinned".into()))?;
    response
        .verify(&ykt_envelope::PeerKey::Sm2(key))
        .map_err(|e| {
            Stop::Fail(format!(
                "the TSM's {} does not verify under its enrolment key: {e}",
                response.msg_type
            ))
        })
}

/// A card number's state in the TSM's records (`None`: not listed).
pub(crate) fn card_state(cards: &CardsResp, card_no: &str) -> Option<String> {
    cards
        .cards
        .iter()
        .rev()
        .find(|c| c.card_no.eq_ignore_ascii_case(card_no))
        .map(|c| c.state.clone())
}

/// The TSM link through the harness.
struct Relay<'h> {
    access: &'h mut dyn TsmAccess,
    log: &'h RefCell<Transcript>,
    tamper: Option<Tamper>,
    requests: &'h mut Vec<Envelope>,
    responses: &'h mut Vec<Envelope>,
    wire: &'h mut Vec<u8>,
    tampered: usize,
}

impl TsmLink for Relay<'_> {
    fn send(&mut self, request: &Envelope) -> Result<Envelope, LinkError> {
        let bytes = request.to_vec();
        let path = format!("/v1/{}", request.msg_type);
        self.wire.extend_from_slice(&bytes);
        self.requests.push(request.clone());
        let answer = match self.access.post(&path, &bytes) {
            Ok(a) => a,
            Err(f) => {
                self.log.borrow_mut().event(format!(
                    "wallet → TSM {}: no answer ({f})",
                    request.msg_type
                ));
                return Err(LinkError::Unreachable);
            }
        };
        self.wire.extend_from_slice(&answer.body);
        let Ok(mut envelope) = Envelope::from_slice(&answer.body) else {
            self.log.borrow_mut().event(format!(
                "wallet → TSM {}: HTTP {}, not an envelope",
                request.msg_type, answer.status
            ));
            return Err(LinkError::Malformed);
        };
        self.responses.push(envelope.clone());
        let mut note = format!(
            "wallet → TSM {} ({} bytes): HTTP {}, {} {}",
            request.msg_type,
            bytes.len(),
            answer.status,
            envelope.msg_type,
            envelope.code().map_or("-", |c| c.as_str())
        );
        if let Some(tamper) = self.tamper.as_mut()
            && tamper(&mut envelope)
        {
            self.tampered += 1;
            note.push_str(" [tampered by the harness]");
        }
        self.log.borrow_mut().event(note);
        Ok(envelope)
    }
}

/// The SE link through the harness: records each APDU, fails at `cut_at`, and changes answers
/// with `tamper`.
struct SeRecorder<'h> {
    se: &'h mut SimSe,
    log: &'h RefCell<Transcript>,
    cut_at: Option<usize>,
    cut_before: Option<fn(&[u8]) -> bool>,
    lose_answer: Option<fn(&[u8]) -> bool>,
    tamper: Option<SeTamper>,
    tampered: usize,
    count: usize,
    exchanges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl SeLink for SeRecorder<'_> {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, SeError> {
        if self.cut_at == Some(self.count) {
            self.log
                .borrow_mut()
                .no_response("the harness cut the SE link here");
            self.cut_at = None;
            return Err(SeError::Communication);
        }
        if self.cut_before.is_some_and(|m| m(capdu)) {
            let mut log = self.log.borrow_mut();
            log.event("the harness cut the SE link before this command reached the SE:");
            log.command(capdu);
            log.no_response("the command never reached the SE");
            self.cut_before = None;
            return Err(SeError::Communication);
        }
        self.count += 1;
        let mut log = self.log.borrow_mut();
        log.command(capdu);
        let r = self
            .se
            .transmit(capdu)
            .map_err(|_| SeError::Communication)?;
        log.response(&r);
        self.exchanges.push((capdu.to_vec(), r.clone()));
        if self.lose_answer.is_some_and(|m| m(capdu)) {
            log.no_response("the SE executed this command; the harness cut the link before its answer reached the wallet");
            self.lose_answer = None;
            return Err(SeError::Communication);
        }
        let mut answer = r;
        if let Some(tamper) = self.tamper.as_mut()
            && tamper(capdu, &mut answer)
        {
            self.tampered += 1;
            log.event("the harness changed this answer before the wallet relayed it:");
            log.response(&answer);
        }
        Ok(answer)
    }
}

/// The harness keeps the wallet's state in memory (CL-AU-002 seals it itself).
struct NoPersist;

impl Persist for NoPersist {
    fn persist(&mut self, _state: &WalletState) -> Result<(), PersistError> {
        Ok(())
    }
}
