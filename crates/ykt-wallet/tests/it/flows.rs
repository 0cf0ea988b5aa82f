//! The wallet's flows against a scripted TSM (responses signed by a test key) and a fake SE.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use serde_json::{Value, json};
use ykt_crypto::Sm2PrivateKey;
use ykt_envelope::{Code, Envelope, ResultInfo, Sm2Signer, response_no};
use ykt_tsm::api::{self, FlowResp, FlowStatus, LoadView, OrderResp, OutcomeView};
use ykt_tsm::hex::Hex;
use ykt_tsm::{Expect, FlowKind, Management, RelayRequest};
use ykt_wallet::testing::TestRng;
use ykt_wallet::*;

use crate::mask::CANARY;

pub const NOW: i64 = 1_796_169_600_000;
pub const SEID: &str = "1122334455667788AABB";
pub const TSM_ID: &str = "SPTSM-330400";

pub type Responder = Box<dyn FnOnce(&Envelope, &Sm2Signer) -> Result<Envelope, LinkError>>;

/// A TSM that answers each request with the next scripted responder and keeps the requests.
pub struct FakeTsm {
    pub signer: Sm2Signer,
    script: VecDeque<Responder>,
    pub seen: Vec<Envelope>,
}

impl FakeTsm {
    pub fn new() -> Self {
        let mut d = [0x42; 32];
        d[0] = 0x01;
        Self {
            signer: Sm2Signer::new(Sm2PrivateKey::from_bytes(&d).unwrap()),
            script: VecDeque::new(),
            seen: Vec::new(),
        }
    }

    pub fn then(&mut self, r: Responder) -> &mut Self {
        self.script.push_back(r);
        self
    }
}

impl TsmLink for FakeTsm {
    fn send(&mut self, request: &Envelope) -> Result<Envelope, LinkError> {
        self.seen.push(request.clone());
        let next = self.script.pop_front().expect("a scripted response");
        next(request, &self.signer)
    }
}

fn response_type(req: &Envelope) -> &'static str {
    api::message(&req.msg_type).unwrap().response
}

/// A success answering the request with `body`.
pub fn ok(body: Value) -> Responder {
    Box::new(move |req, signer| {
        Ok(req
            .reply(
                response_type(req),
                &body,
                ResultInfo::ok(),
                &[7; 16],
                NOW,
                signer,
            )
            .unwrap())
    })
}

/// A refusal with `code`.
fn refuse(code: Code) -> Responder {
    Box::new(move |req, signer| {
        Ok(req
            .reply(
                response_type(req),
                &json!({}),
                ResultInfo::error(code, "no"),
                &[7; 16],
                NOW,
                signer,
            )
            .unwrap())
    })
}

/// A success changed after signing by `tamper`.
fn tampered(body: Value, tamper: fn(&mut Envelope)) -> Responder {
    Box::new(move |req, signer| {
        let mut e = req
            .reply(
                response_type(req),
                &body,
                ResultInfo::ok(),
                &[7; 16],
                NOW,
                signer,
            )
            .unwrap();
        tamper(&mut e);
        Ok(e)
    })
}

/// A success signed over another header member (`edit` applied before signing).
fn resigned(body: Value, edit: fn(&mut ykt_envelope::Header)) -> Responder {
    Box::new(move |req, signer| {
        let mut header = ykt_envelope::Header {
            msg_type: response_type(req).into(),
            msg_no: response_no(&req.msg_no),
            sender_id: req.receiver_id.clone(),
            receiver_id: req.sender_id.clone(),
            txn_id: req.txn_id.clone(),
            request_id: req.request_id.clone(),
        };
        edit(&mut header);
        Ok(Envelope::seal(
            &header,
            &body,
            Some(ResultInfo::ok()),
            &[7; 16],
            NOW,
            signer,
        )
        .unwrap())
    })
}

fn fail(e: LinkError) -> Responder {
    Box::new(move |_, _| Err(e))
}

pub fn enrol_resp(signer: &Sm2Signer) -> Value {
    json!({
        "device_id": "DEV-0001",
        "tsm_id": TSM_ID,
        "tsm_pub": Hex(signer.public_key().to_bytes().to_vec()),
    })
}

/// A FlowResp for the request's txn_id: RUNNING with `relay`, or COMPLETED with `outcome`.
pub fn flow(
    kind: FlowKind,
    relay: Option<RelayRequest>,
    outcome: Option<OutcomeView>,
) -> Responder {
    Box::new(move |req, signer| {
        let status = if outcome.is_some() {
            FlowStatus::Completed
        } else {
            FlowStatus::Running
        };
        let body = FlowResp {
            txn_id: req.txn_id.clone(),
            kind,
            status,
            instance_state: "ACTIVE".into(),
            step: Some("step".into()),
            step_index: 1,
            step_count: 3,
            relay,
            outcome,
        };
        Ok(req
            .reply(
                response_type(req),
                &body,
                ResultInfo::ok(),
                &[7; 16],
                NOW,
                signer,
            )
            .unwrap())
    })
}

pub fn relay(seq: u32, capdus: &[&[u8]]) -> RelayRequest {
    RelayRequest {
        session_id: "s-1".into(),
        seq,
        capdus: capdus.iter().map(|c| Hex(c.to_vec())).collect(),
        expect: capdus.iter().map(|_| Expect::success()).collect(),
        last: false,
    }
}

fn opened() -> OutcomeView {
    OutcomeView {
        card_no: Some(CANARY.into()),
        seid: Some(SEID.into()),
        app_aid: Some(Hex(ykt_purse::EP_AID.to_vec())),
        balance: Some(0),
        ..OutcomeView::default()
    }
}

const INIT_LOAD: &[u8] = &[
    0x80, 0x50, 0x00, 0x02, 0x0B, 0x01, 0, 0, 0x01, 0xF4, 1, 2, 3, 4, 5, 6, 0x10,
];
const CREDIT: &[u8] = &[
    0x80, 0x52, 0x00, 0x00, 0x0B, 0x20, 0x26, 0x12, 0x02, 0x08, 0, 0, 0xAA, 0xBB, 0xCC, 0xDD, 0x04,
];

/// What the SE saw, and the journal as last persisted when each CREDIT FOR LOAD arrived.
#[derive(Default)]
struct World {
    commands: Vec<Vec<u8>>,
    persisted: Vec<Vec<JournalEntry>>,
    journal_at_credit: Vec<Option<JournalEntry>>,
    se_fails_at: Option<usize>,
    persist_fails: bool,
}

struct FakeSe(Rc<RefCell<World>>);

impl SeLink for FakeSe {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, SeError> {
        let mut w = self.0.borrow_mut();
        if w.se_fails_at == Some(w.commands.len()) {
            w.se_fails_at = None;
            return Err(SeError::Communication);
        }
        w.commands.push(capdu.to_vec());
        Ok(match capdu {
            [0x80, 0x50, 0x00, 0x02, ..] => {
                // Balance 1234, online counter 7, key version 1, algorithm 0, random, MAC1.
                vec![
                    0, 0, 0x04, 0xD2, 0, 7, 1, 0, 0x1A, 0x2B, 0x3C, 0x4D, 9, 9, 9, 9, 0x90, 0x00,
                ]
            }
            [0x80, 0x52, ..] => {
                let entry = w.persisted.last().and_then(|j| j.first().cloned());
                w.journal_at_credit.push(entry);
                vec![0xEA, 0x50, 0x90, 0x3C, 0x90, 0x00]
            }
            [0x80, 0x5C, 0x00, 0x02, 0x04] => vec![0, 0, 0x04, 0xD2, 0x90, 0x00],
            [0x00, 0xB2, n, 0xC4, 0x17] if *n <= 2 => {
                let mut r = vec![0u8; 23];
                r[1] = *n;
                r[8] = 100 * n;
                r[9] = 0x02;
                r.extend_from_slice(&[0x90, 0x00]);
                r
            }
            [0x00, 0xB2, ..] => vec![0x6A, 0x83],
            _ => vec![0x90, 0x00],
        })
    }
}

struct Harness {
    tsm: FakeTsm,
    world: Rc<RefCell<World>>,
    progress: Vec<Progress>,
    wallet: Wallet,
    rng: TestRng,
}

impl Harness {
    fn new() -> Self {
        Self {
            tsm: FakeTsm::new(),
            world: Rc::default(),
            progress: Vec::new(),
            wallet: Wallet::default(),
            rng: TestRng::new(5),
        }
    }

    fn run<T>(&mut self, f: impl FnOnce(&mut Wallet, &mut Links<'_>, &mut TestRng) -> T) -> T {
        let mut se = FakeSe(self.world.clone());
        let world = self.world.clone();
        let mut persist = move |s: &WalletState| {
            let mut w = world.borrow_mut();
            if w.persist_fails {
                return Err(PersistError::new());
            }
            w.persisted.push(s.journal.clone());
            Ok(())
        };
        let progress = &mut self.progress;
        let mut on_progress = |p: Progress| progress.push(p);
        let mut links = Links {
            tsm: &mut self.tsm,
            se: &mut se,
            persist: &mut persist,
            progress: &mut on_progress,
        };
        f(&mut self.wallet, &mut links, &mut self.rng)
    }

    fn enrolled() -> Self {
        let mut h = Self::new();
        let body = enrol_resp(&h.tsm.signer);
        h.tsm.then(ok(body));
        h.run(|w, l, r| w.enrol(l, NOW, r, TSM_ID, "test phone"))
            .unwrap();
        h
    }

    fn with_card() -> Self {
        let mut h = Self::enrolled();
        h.tsm
            .then(flow(
                FlowKind::OpenCard,
                Some(relay(1, &[&[0x80, 0xE6, 0x0C, 0x00]])),
                None,
            ))
            .then(flow(FlowKind::OpenCard, None, Some(opened())));
        h.run(|w, l, r| w.open_card(l, NOW, r, Management::Authorized, "330400"))
            .unwrap();
        h.world.borrow_mut().commands.clear();
        h
    }

    fn commands(&self) -> usize {
        self.world.borrow().commands.len()
    }
}

fn card() -> CardNo {
    CardNo::new(CANARY)
}

#[test]
fn enrol_pins_the_tsm_and_open_card_adds_the_card() {
    let mut h = Harness::enrolled();
    let pin = h.wallet.state().tsm.clone().unwrap();
    assert_eq!(pin.tsm_id, TSM_ID);
    assert_eq!(h.wallet.state().device_id.as_deref(), Some("DEV-0001"));
    let enrol = &h.tsm.seen[0];
    assert_eq!(enrol.msg_type, "EnrolReq");
    assert!(enrol.sender_id.starts_with(proposals::ENROL_SENDER_PREFIX));

    h.tsm
        .then(flow(
            FlowKind::OpenCard,
            Some(relay(
                1,
                &[&[0x80, 0xE6, 0x0C, 0x00], &[0x80, 0xE2, 0x90, 0x00]],
            )),
            None,
        ))
        .then(flow(FlowKind::OpenCard, None, Some(opened())));
    let card = h
        .run(|w, l, r| w.open_card(l, NOW, r, Management::Authorized, "330400"))
        .unwrap();
    assert_eq!(card.card_no.danger_full(), CANARY);
    assert_eq!(h.wallet.cards().len(), 1);
    assert!(h.wallet.open_flows().is_empty());
    assert_eq!(h.commands(), 2);
    // Every request signed by the device, from the enrolled id to the pinned TSM, one txn.
    let open = &h.tsm.seen[1];
    let result = &h.tsm.seen[2];
    assert_eq!(
        (open.msg_type.as_str(), result.msg_type.as_str()),
        ("OpenCardReq", "ApduResultReq")
    );
    assert_eq!(open.txn_id, result.txn_id);
    assert_ne!(open.request_id, result.request_id);
    assert_ne!(open.nonce, result.nonce);
    for e in &h.tsm.seen[1..] {
        assert_eq!(
            (e.sender_id.as_str(), e.receiver_id.as_str()),
            ("DEV-0001", TSM_ID)
        );
    }
    let rapdus: api::ApduResultReq = result.body().unwrap();
    assert_eq!(rapdus.response.rapdus.len(), 2);
    assert!(h.progress.iter().any(|p| p.step == "step" && p.count == 3));
}

#[test]
fn enrol_refuses_another_tsm_id() {
    let mut h = Harness::new();
    let mut body = enrol_resp(&h.tsm.signer);
    body["tsm_id"] = json!("SPTSM-OTHER");
    h.tsm.then(ok(body));
    let err = h
        .run(|w, l, r| w.enrol(l, NOW, r, TSM_ID, "m"))
        .unwrap_err();
    assert_eq!(err, WalletError::Mismatch(Member::Sender));
    assert!(h.wallet.state().tsm.is_none());
    assert_eq!(h.tsm.seen[0].receiver_id, TSM_ID);
}

#[test]
fn enrol_refuses_a_key_other_than_the_pinned_one() {
    let mut h = Harness::new();
    let other = Sm2PrivateKey::generate(&mut TestRng::new(77)).unwrap();
    h.wallet.pin_tsm(TsmPin {
        tsm_id: TSM_ID.into(),
        tsm_pub: Hex(other.public_key().to_bytes().to_vec()),
    });
    let body = enrol_resp(&h.tsm.signer);
    h.tsm.then(ok(body));
    let err = h
        .run(|w, l, r| w.enrol(l, NOW, r, TSM_ID, "m"))
        .unwrap_err();
    assert_eq!(err, WalletError::Mismatch(Member::TsmKey));
    assert!(h.wallet.state().device_id.is_none());
}

// client.md §6.3: nothing of a response that does not verify reaches the SE.
#[test]
fn a_tampered_response_sends_nothing_to_the_se() {
    let tampers: [fn(&mut Envelope); 4] = [
        |e| e.body["relay"]["capdus"][0] = json!("80E60C0001"),
        |e| e.sign = e.sign.chars().rev().collect(),
        |e| e.timestamp = "2026-12-02T08:00:01+08:00".into(),
        |e| e.sender_id = TSM_ID.to_string() + "X",
    ];
    for tamper in tampers {
        let mut h = Harness::enrolled();
        let body = serde_json::to_value(FlowResp {
            txn_id: String::new(),
            kind: FlowKind::OpenCard,
            status: FlowStatus::Running,
            instance_state: "SSD_CREATING".into(),
            step: None,
            step_index: 0,
            step_count: 1,
            relay: Some(relay(1, &[&[0x80, 0xE6, 0x0C, 0x00]])),
            outcome: None,
        })
        .unwrap();
        h.tsm.then(tampered(body, tamper));
        let err = h
            .run(|w, l, r| w.open_card(l, NOW, r, Management::Authorized, "330400"))
            .unwrap_err();
        assert_eq!(err, WalletError::BadSignature);
        assert_eq!(h.commands(), 0);
        assert_eq!(err.user_code(), "E1100");
    }
}

#[test]
fn a_response_for_another_request_is_refused() {
    type Edit = fn(&mut ykt_envelope::Header);
    let edits: [(Edit, Member); 4] = [
        (|h| h.txn_id = "other".into(), Member::TxnId),
        (|h| h.request_id = "other".into(), Member::RequestId),
        (|h| h.receiver_id = "DEV-0002".into(), Member::Receiver),
        (|h| h.msg_type = "OrderResp".into(), Member::MessageType),
    ];
    for (edit, member) in edits {
        let mut h = Harness::enrolled();
        h.tsm.then(resigned(json!({}), edit));
        let err = h
            .run(|w, l, r| w.open_card(l, NOW, r, Management::Authorized, "330400"))
            .unwrap_err();
        assert_eq!(err, WalletError::Mismatch(member));
        assert_eq!(h.commands(), 0);
    }
    // The envelope is right but the FlowResp names another flow.
    let mut h = Harness::enrolled();
    h.tsm.then(Box::new(|req, signer| {
        let mut body = serde_json::to_value(FlowResp {
            txn_id: "other".into(),
            kind: FlowKind::OpenCard,
            status: FlowStatus::Running,
            instance_state: "SSD_CREATING".into(),
            step: None,
            step_index: 0,
            step_count: 1,
            relay: Some(relay(1, &[&[0x80, 0xE6, 0x0C, 0x00]])),
            outcome: None,
        })
        .unwrap();
        body["kind"] = json!("OpenCard");
        Ok(req
            .reply("FlowResp", &body, ResultInfo::ok(), &[7; 16], NOW, signer)
            .unwrap())
    }));
    let err = h
        .run(|w, l, r| w.open_card(l, NOW, r, Management::Authorized, "330400"))
        .unwrap_err();
    assert_eq!(err, WalletError::Mismatch(Member::TxnId));
    assert_eq!(h.commands(), 0);
}

#[test]
fn a_stale_response_is_refused() {
    let mut h = Harness::enrolled();
    h.tsm
        .then(flow(FlowKind::OpenCard, Some(relay(1, &[&[0x80]])), None));
    let err = h
        .run(|w, l, r| w.open_card(l, NOW + 301_000, r, Management::Authorized, "330400"))
        .unwrap_err();
    assert_eq!(err, WalletError::Stale);
    assert_eq!(h.commands(), 0);
}

#[test]
fn result_codes_become_typed_errors_with_user_text() {
    for (code, user) in [
        (Code::AppExists, "E3003"),
        (Code::BalanceNotZero, "E5002"),
        (Code::NotPaid, "E5004"),
        (Code::UnknownSender, "E2001"),
        (Code::CryptogramMismatch, "E3006"),
        // Codes the wallet has no sentence for: the generic one.
        (Code::ReceiptInvalid, "E9999"),
        (Code::Internal, "E9999"),
    ] {
        let mut h = Harness::enrolled();
        h.tsm.then(refuse(code));
        let err = h
            .run(|w, l, r| w.open_card(l, NOW, r, Management::Authorized, "330400"))
            .unwrap_err();
        assert_eq!(err, WalletError::Refused(code));
        assert_eq!(err.user_code(), user, "{code}");
        assert_eq!(err.to_string(), err.user_message());
    }
}

#[test]
fn an_unknown_result_code_on_the_wire_is_a_generic_refusal() {
    let tsm = FakeTsm::new();
    let req = Envelope::seal(
        &ykt_envelope::Header {
            msg_type: "OpenCardReq".into(),
            msg_no: "3001".into(),
            sender_id: "DEV-0001".into(),
            receiver_id: TSM_ID.into(),
            txn_id: "t".into(),
            request_id: "r".into(),
        },
        &json!({}),
        None,
        &[1; 16],
        NOW,
        &tsm.signer,
    )
    .unwrap();
    let resp = req
        .reply(
            "FlowResp",
            &json!({}),
            ResultInfo::error(Code::Internal, "x"),
            &[2; 16],
            NOW,
            &tsm.signer,
        )
        .unwrap();
    let text = String::from_utf8(resp.to_vec())
        .unwrap()
        .replace("\"9999\"", "\"7777\"");
    assert_eq!(decode_response(text.as_bytes()), Err(LinkError::Malformed));
    assert!(decode_response(&resp.to_vec()).is_ok());
    assert_eq!(WalletError::Link(LinkError::Malformed).user_code(), "E1100");
}

#[test]
fn retries_keep_the_request_id_and_change_the_nonce() {
    let mut h = Harness::enrolled();
    h.tsm
        .then(fail(LinkError::Timeout))
        .then(fail(LinkError::Unreachable))
        .then(flow(FlowKind::OpenCard, None, Some(opened())));
    h.run(|w, l, r| w.open_card(l, NOW, r, Management::Authorized, "330400"))
        .unwrap();
    let tries = &h.tsm.seen[1..4];
    assert!(
        tries
            .iter()
            .all(|e| e.request_id == tries[0].request_id && e.txn_id == tries[0].txn_id)
    );
    assert_ne!(tries[0].nonce, tries[1].nonce);
    assert_ne!(tries[1].nonce, tries[2].nonce);

    // A malformed answer is not retried; too many timeouts give up.
    let mut h = Harness::enrolled();
    h.tsm.then(fail(LinkError::Malformed));
    let err = h
        .run(|w, l, r| w.open_card(l, NOW, r, Management::Authorized, "330400"))
        .unwrap_err();
    assert_eq!(err, WalletError::Link(LinkError::Malformed));
    let mut h = Harness::enrolled();
    for _ in 0..proposals::MAX_ATTEMPTS {
        h.tsm.then(fail(LinkError::Timeout));
    }
    let err = h
        .run(|w, l, r| w.open_card(l, NOW, r, Management::Authorized, "330400"))
        .unwrap_err();
    assert_eq!(err.user_code(), "E1000");
    assert_eq!(h.tsm.seen.len(), 1 + proposals::MAX_ATTEMPTS as usize);
    // The flow stays open for resume.
    assert_eq!(h.wallet.open_flows().len(), 1);
}

pub fn order(state: &str) -> Value {
    serde_json::to_value(OrderResp {
        order_id: "ORD-1".into(),
        state: state.into(),
        amount: 500,
    })
    .unwrap()
}

fn loaded() -> OutcomeView {
    OutcomeView {
        load: Some(LoadView {
            order_id: "ORD-1".into(),
            amount: 500,
            new_balance: 1734,
            tac: Hex(vec![0xEA, 0x50, 0x90, 0x3C]),
        }),
        ..OutcomeView::default()
    }
}

#[test]
fn top_up_journals_before_the_credit() {
    let mut h = Harness::with_card();
    h.tsm
        .then(ok(order("CREATED")))
        .then(ok(order("PAID")))
        .then(flow(
            FlowKind::TopUp,
            Some(relay(1, &[&[0x00, 0xA4, 0x04, 0x00], INIT_LOAD])),
            None,
        ))
        .then(flow(FlowKind::TopUp, Some(relay(2, &[CREDIT])), None))
        .then(flow(FlowKind::TopUp, None, Some(loaded())));
    let done = h
        .run(|w, l, r| w.top_up(l, NOW, r, &card(), 500, proposals::TEST_PAY_CHANNEL))
        .unwrap();
    assert_eq!((done.amount, done.new_balance), (500, 1734));
    let types: Vec<&str> = h.tsm.seen.iter().map(|e| e.msg_type.as_str()).collect();
    assert_eq!(
        &types[types.len() - 5..],
        [
            "TopupOrderReq",
            "TestPayReq",
            "TopupReq",
            "ApduResultReq",
            "ApduResultReq"
        ]
    );
    let w = h.world.borrow();
    assert_eq!(w.journal_at_credit.len(), 1);
    let entry = w.journal_at_credit[0]
        .clone()
        .expect("a journal entry saved before the credit");
    assert_eq!(entry.step, JournalStep::CreditForLoad);
    assert_eq!(entry.order_no, "ORD-1");
    assert_eq!(entry.balance_before, Some(1234));
    assert_eq!(entry.online_counter_before, Some(7));
    assert_eq!(entry.amount, 500);
    assert_ne!(entry.card_hash, CANARY);
    // Loaded: the entry is gone and the balance known.
    drop(w);
    assert!(h.wallet.journal().is_empty());
    assert!(h.wallet.open_flows().is_empty());
    assert_eq!(h.wallet.cards()[0].balance, Some((1734, NOW)));
}

#[test]
fn a_failed_save_sends_no_card_command() {
    let mut h = Harness::with_card();
    h.tsm.then(ok(order("CREATED"))).then(ok(order("PAID")));
    h.world.borrow_mut().persist_fails = true;
    let err = h
        .run(|w, l, r| w.top_up(l, NOW, r, &card(), 500, proposals::TEST_PAY_CHANNEL))
        .unwrap_err();
    assert_eq!(err.user_code(), "E7001");
    assert_eq!(h.commands(), 0);
}

#[test]
fn an_unpaid_order_is_not_loaded() {
    let mut h = Harness::with_card();
    h.tsm.then(ok(order("CREATED"))).then(ok(order("PAYING")));
    let err = h
        .run(|w, l, r| w.top_up(l, NOW, r, &card(), 500, "02"))
        .unwrap_err();
    assert_eq!(err, WalletError::Refused(Code::NotPaid));
    assert_eq!(h.tsm.seen.last().unwrap().msg_type, "OrderQueryReq");
    assert_eq!(h.wallet.journal()[0].step, JournalStep::Ordered);
    assert_eq!(h.commands(), 0);
}

// The SE link breaks during the credit: the flow and the journal stay (the app would be killed
// here just the same); at the next start `resume` finishes it through ResumeReq.
#[test]
fn a_broken_top_up_resumes() {
    let mut h = Harness::with_card();
    h.tsm
        .then(ok(order("CREATED")))
        .then(ok(order("PAID")))
        .then(flow(FlowKind::TopUp, Some(relay(1, &[INIT_LOAD])), None))
        .then(flow(FlowKind::TopUp, Some(relay(2, &[CREDIT])), None));
    h.world.borrow_mut().se_fails_at = Some(1);
    let err = h
        .run(|w, l, r| w.top_up(l, NOW, r, &card(), 500, proposals::TEST_PAY_CHANNEL))
        .unwrap_err();
    assert_eq!(err, WalletError::Se(SeError::Communication));
    assert_eq!(h.wallet.journal()[0].step, JournalStep::CreditForLoad);
    let txn = h.wallet.open_flows()[0].txn_id.clone();
    assert_eq!(h.wallet.open_flows()[0].kind, FlowKind::TopUp);

    // The TSM probes the card (GET BALANCE) and reports the load.
    h.tsm
        .then(flow(
            FlowKind::TopUp,
            Some(relay(3, &[&[0x80, 0x5C, 0x00, 0x02, 0x04]])),
            None,
        ))
        .then(flow(FlowKind::TopUp, None, Some(loaded())));
    let resumed = h.run(|w, l, r| w.resume(l, NOW, r, &txn)).unwrap();
    assert_eq!(resumed.top_up.unwrap().new_balance, 1734);
    assert_eq!(h.tsm.seen[h.tsm.seen.len() - 2].msg_type, "ResumeReq");
    assert!(h.wallet.journal().is_empty());
    assert!(h.wallet.open_flows().is_empty());
    assert_eq!(
        h.run(|w, l, r| w.resume(l, NOW, r, &txn)).unwrap_err(),
        WalletError::UnknownFlow
    );
}

#[test]
fn a_failed_flow_is_typed() {
    let mut h = Harness::with_card();
    h.tsm.then(Box::new(|req, signer| {
        let body = FlowResp {
            txn_id: req.txn_id.clone(),
            kind: FlowKind::DeleteCard,
            status: FlowStatus::Failed,
            instance_state: "FAILED_DELETE".into(),
            step: None,
            step_index: 0,
            step_count: 1,
            relay: None,
            outcome: None,
        };
        Ok(req
            .reply("FlowResp", &body, ResultInfo::ok(), &[7; 16], NOW, signer)
            .unwrap())
    }));
    let err = h.run(|w, l, r| w.delete(l, NOW, r, &card())).unwrap_err();
    assert_eq!(
        err,
        WalletError::FlowFailed {
            kind: FlowKind::DeleteCard,
            instance_state: "FAILED_DELETE".into()
        }
    );
    assert_eq!(h.wallet.cards().len(), 1);
}

#[test]
fn balance_and_records_offline() {
    let mut h = Harness::with_card();
    let balance = h.run(|w, l, _| w.balance(l, NOW + 5, &card())).unwrap();
    assert_eq!(balance, 1234);
    assert_eq!(h.wallet.cards()[0].balance, Some((1234, NOW + 5)));
    {
        let w = h.world.borrow();
        let mut select = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
        select.extend_from_slice(&ykt_purse::EP_AID);
        select.push(0x00);
        assert_eq!(w.commands, vec![select, vec![0x80, 0x5C, 0x00, 0x02, 0x04]]);
    }
    h.world.borrow_mut().commands.clear();
    let records = h.run(|w, l, _| w.records(l, &card())).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!((records[0].counter, records[0].amount), (1, 100));
    assert_eq!((records[1].counter, records[1].amount), (2, 200));
    assert_eq!(
        h.world.borrow().commands.last().unwrap(),
        &vec![0x00, 0xB2, 3, 0xC4, 0x17]
    );
    assert!(h.tsm.seen.len() == 3, "offline: no TSM request");
    let other = CardNo::new("3100999999999999");
    assert_eq!(
        h.run(|w, l, _| w.balance(l, NOW, &other)).unwrap_err(),
        WalletError::UnknownCard
    );
}

#[test]
fn query_refund_transfer_and_delete() {
    let mut h = Harness::with_card();
    h.tsm.then(flow(
        FlowKind::CardDataQuery,
        None,
        Some(OutcomeView {
            balance: Some(900),
            ..OutcomeView::default()
        }),
    ));
    let q = h.run(|w, l, r| w.query(l, NOW, r, &card())).unwrap();
    assert_eq!(q.balance, Some(900));
    let sent: api::CardReq = h.tsm.seen.last().unwrap().body().unwrap();
    assert_eq!((sent.card_no.as_str(), sent.seid.as_str()), (CANARY, SEID));

    h.tsm.then(flow(
        FlowKind::TransferOut,
        None,
        Some(OutcomeView {
            transfer_code: Some("TC-123456".into()),
            ..OutcomeView::default()
        }),
    ));
    let code = h.run(|w, l, r| w.transfer_out(l, NOW, r, &card())).unwrap();
    assert_eq!(code.reveal(), "TC-123456");
    assert!(!format!("{code:?}").contains("123456"));
    assert!(h.wallet.cards().is_empty());

    h.tsm.then(flow(FlowKind::TransferIn, None, Some(opened())));
    h.run(|w, l, r| w.transfer_in(l, NOW, r, &code, Management::Delegated))
        .unwrap();
    let sent: api::TransferInReq = h.tsm.seen.last().unwrap().body().unwrap();
    assert_eq!(sent.transfer_code, "TC-123456");
    assert_eq!(h.wallet.cards().len(), 1);

    h.tsm.then(flow(
        FlowKind::CardReturn,
        None,
        Some(OutcomeView {
            refund: Some(900),
            ..OutcomeView::default()
        }),
    ));
    assert_eq!(
        h.run(|w, l, r| w.refund(l, NOW, r, &card(), "ACC-1"))
            .unwrap(),
        900
    );
    assert!(h.wallet.cards().is_empty());

    let mut h = Harness::with_card();
    h.tsm.then(flow(
        FlowKind::DeleteCard,
        None,
        Some(OutcomeView::default()),
    ));
    h.run(|w, l, r| w.delete(l, NOW, r, &card())).unwrap();
    assert!(h.wallet.cards().is_empty());
    assert!(h.wallet.open_flows().is_empty());
}

#[test]
fn flows_need_enrolment() {
    let mut h = Harness::new();
    let err = h
        .run(|w, l, r| w.open_card(l, NOW, r, Management::Authorized, "330400"))
        .unwrap_err();
    assert_eq!(err, WalletError::NotEnrolled);
    assert!(h.tsm.seen.is_empty());
}

// client.md §6.8: the canary card number is in no Debug, Display or error text of the wallet's
// types, while the state holds it.
#[test]
fn no_canary_in_debug_display_or_errors() {
    let mut h = Harness::with_card();
    h.tsm
        .then(ok(order("CREATED")))
        .then(ok(order("PAID")))
        .then(flow(FlowKind::TopUp, Some(relay(1, &[INIT_LOAD])), None))
        .then(flow(FlowKind::TopUp, Some(relay(2, &[CREDIT])), None));
    h.world.borrow_mut().se_fails_at = Some(1);
    let err = h
        .run(|w, l, r| w.top_up(l, NOW, r, &card(), 500, proposals::TEST_PAY_CHANNEL))
        .unwrap_err();
    let q = CardQuery::clone(&{
        h.tsm.then(flow(
            FlowKind::CardDataQuery,
            None,
            Some(OutcomeView {
                balance: Some(1),
                ..OutcomeView::default()
            }),
        ));
        h.run(|w, l, r| w.query(l, NOW, r, &card())).unwrap()
    });
    let errors = [
        err.clone(),
        WalletError::CardRefused { sw: [0x6A, 0x82] },
        WalletError::Refused(Code::AppMissing),
        WalletError::FlowFailed {
            kind: FlowKind::TopUp,
            instance_state: "FAILED_LOAD".into(),
        },
        WalletError::Mismatch(Member::TxnId),
    ];
    let mut texts = vec![
        format!("{:?}", h.wallet),
        format!("{:#?}", h.wallet.state()),
        format!("{:?}", h.wallet.cards()),
        format!("{:?} {:?}", h.wallet.open_flows(), h.wallet.journal()),
        format!("{q:?}"),
        format!("{:?}", h.progress),
        format!("{:?}", h.wallet.state().to_records()),
    ];
    for e in &errors {
        texts.push(format!("{e} {e:?} {} {}", e.user_code(), e.user_message()));
        assert!(!e.user_message().contains("6A82"));
        assert!(!e.to_string().contains("6A82"));
    }
    let canaries = [
        CANARY.to_string(),
        CANARY[6..12].to_string(),
        SEID.to_string(),
        "3344556677".into(),
    ];
    for t in &texts {
        for c in &canaries {
            assert!(!t.contains(c.as_str()), "{c} in {t}");
        }
    }
    // The full number is still there for the wire.
    assert_eq!(h.wallet.cards()[0].card_no.danger_full(), CANARY);
}
