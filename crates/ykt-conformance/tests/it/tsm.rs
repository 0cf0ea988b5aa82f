//! The TSM and client items against a TSM in process (`ykt-tsm-service` on SQLite with the test
//! vaults of `ykt_tsm::testing`, served on 127.0.0.1), as they are and through TsmAccess wrappers
//! that break the TSM on purpose: each break makes the item that should notice it FAIL, so no
//! checker passes vacuously.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ykt_conformance::profile::{self, Profile};
use ykt_conformance::{
    Catalogue, Fault, HttpResponse, LinkProbe, LinkReport, Registry, Run, RunConfig, RunInfo,
    Target, TsmAccess, Verdict, run,
};
use ykt_crypto::Sm2PrivateKey;
use ykt_envelope::{Code, Envelope, ResultInfo, Sm2Signer};
use ykt_tsm_service::engine::CardStock;
use ykt_tsm_service::http::AdminToken;
use ykt_tsm_service::{Engine, EngineConfig, Keys, ServerConfig, TsmClient};

const TSM_ID: &str = "SPTSM-CONFORM-TEST";
/// The in-process TSM's envelope signing key (a test value): the wrappers forge its answers.
const TSM_KEY: [u8; 32] = [0x3C; 32];

/// A TSM on a thread of its own, stopped when the test process ends.
struct LocalTsm {
    url: String,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_tsm(name: &str) -> LocalTsm {
    let dir =
        std::env::temp_dir().join(format!("ykt-conformance-tsm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("tsm.db").display());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let store = ykt_store::Store::connect(&db).await.unwrap();
            let keys = Keys {
                sei: Box::new(ykt_tsm::testing::sei_vault().unwrap()),
                sp: Box::new(ykt_tsm::testing::sp_vault().unwrap()),
            };
            let config = EngineConfig {
                tsm_id: TSM_ID.into(),
                parties: ykt_tsm::testing::test_parties(),
                card_stock: CardStock {
                    issuer_id: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
                    start_date: [0x20, 0x26, 0x01, 0x01],
                    expiry_date: [0x20, 0x35, 0x12, 0x31],
                    number_prefix: [0x31, 0x04, 0x10, 0x00],
                },
                test_payments: true,
            };
            let engine = Engine::new(store, keys, config).await.unwrap();
            let server = ServerConfig::new(
                TSM_ID,
                Sm2Signer::new(Sm2PrivateKey::from_bytes(&TSM_KEY).unwrap()),
                AdminToken::new("conformance-admin-token-0123456789").unwrap(),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            ykt_tsm_service::http::serve(listener, engine, server)
                .await
                .unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    LocalTsm {
        url: format!("http://{addr}"),
        _dir: TempDir(dir),
    }
}

/// The TSM over HTTP as the binary's access is: envelopes out and back, a clock, a seed.
struct Http {
    client: TsmClient,
    seed: u64,
    /// What `link_report` says (RP-SEC-001); `None`: the trait's default.
    link: Option<LinkReport>,
}

impl Http {
    fn new(tsm: &LocalTsm) -> Self {
        Self {
            client: TsmClient::new(&tsm.url).unwrap(),
            seed: 0x5EED,
            link: None,
        }
    }
}

impl TsmAccess for Http {
    fn post(&mut self, path: &str, body: &[u8]) -> Result<HttpResponse, Fault> {
        let msg_type = path.trim_start_matches("/v1/");
        match self.client.send_bytes_with_status(msg_type, body) {
            Ok((status, envelope)) => Ok(HttpResponse {
                status,
                body: envelope.to_vec(),
            }),
            Err(ykt_tsm_service::http::ClientError::NotAnEnvelope { status }) => Ok(HttpResponse {
                status,
                body: Vec::new(),
            }),
            Err(e) => Err(Fault::Transport(e.to_string())),
        }
    }

    fn get(&mut self, _path: &str) -> Result<HttpResponse, Fault> {
        Err(Fault::Transport("GET is not used by these items".into()))
    }

    fn link_report(&mut self) -> LinkReport {
        self.link.clone().unwrap_or(LinkReport::Unknown)
    }

    fn tsm_id(&self) -> String {
        TSM_ID.into()
    }

    fn now_ms(&mut self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn seed(&mut self) -> u64 {
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        self.seed
    }
}

/// What a broken TSM does to an answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Break {
    /// Answers 0000 (forged with the TSM's key) where the TSM refused with one of these codes.
    AcceptRefused(&'static [Code]),
    /// Answers a request_id seen before with the first answer it got (an old answer), where
    /// the TSM refused it as a duplicate or replay.
    ReplayOldAnswer,
    /// Changes the text of every answer's result (the signature kept), enrolment excepted.
    Tamper,
    /// Answers every CardsQueryReq with no cards (forged).
    ForgetCards,
    /// Answers a refused ApduResultReq of a card return (4002: the balance proof did not
    /// verify) with the return COMPLETED and a refund (forged): a TSM that pays whatever the
    /// phone relays.
    PayUnprovenRefund,
    /// Adds 100 fen to the refund of every completed card return (forged).
    InflateRefund,
    /// Flips a bit of the TAC in every completed top-up's load (forged): a host that keeps
    /// another TAC than the card's.
    ForgeTac,
    /// Answers every OrderQueryReq with the order PAID (forged): a host that never closes it.
    KeepOrderOpen,
    /// Adds 100 fen to the balance of every completed card query (forged).
    InflateQueryBalance,
    /// Answers a ResumeReq with the last relay that carried CREDIT FOR LOAD again (forged): a
    /// host that re-sends MAC2 blindly instead of asking the card whether it was credited.
    ResendCredit,
}

struct Broken {
    inner: Http,
    brk: Break,
    answers: BTreeMap<String, Vec<u8>>,
}

impl Broken {
    fn forge(request: &[u8], body: serde_json::Value, response_type: &str) -> Option<Vec<u8>> {
        let request = Envelope::from_slice(request).ok()?;
        let signer = Sm2Signer::new(Sm2PrivateKey::from_bytes(&TSM_KEY).ok()?);
        let now = request.sent_ms().ok()?;
        request
            .reply(
                response_type,
                &body,
                ResultInfo {
                    code: Code::Ok,
                    msg: "ok".into(),
                },
                &[0x77; 16],
                now,
                &signer,
            )
            .ok()
            .map(|e| e.to_vec())
    }
}

impl TsmAccess for Broken {
    fn post(&mut self, path: &str, body: &[u8]) -> Result<HttpResponse, Fault> {
        let mut answer = self.inner.post(path, body)?;
        let Ok(mut envelope) = Envelope::from_slice(&answer.body) else {
            return Ok(answer);
        };
        let request_type = path.trim_start_matches("/v1/");
        let response_type = ykt_tsm::api::message(request_type)
            .map_or("FlowResp", |m| m.response)
            .to_owned();
        match self.brk {
            Break::AcceptRefused(codes) => {
                if envelope.code().is_some_and(|c| codes.contains(&c))
                    && let Some(forged) =
                        Self::forge(body, serde_json::json!({ "cards": [] }), &response_type)
                {
                    answer.status = 200;
                    answer.body = forged;
                }
            }
            Break::ReplayOldAnswer => {
                let id = envelope.request_id.clone();
                match envelope.code() {
                    Some(Code::Duplicate | Code::Replayed) => {
                        if let Some(old) = self.answers.get(&id) {
                            answer.status = 200;
                            answer.body = old.clone();
                        }
                    }
                    _ => {
                        self.answers
                            .entry(id)
                            .or_insert_with(|| answer.body.clone());
                    }
                }
            }
            Break::Tamper => {
                if envelope.msg_type != "EnrolResp"
                    && let Some(result) = envelope.result.as_mut()
                {
                    result.msg.push('!');
                    answer.body = envelope.to_vec();
                }
            }
            Break::PayUnprovenRefund => {
                if request_type == "ApduResultReq"
                    && envelope.code() == Some(Code::CryptogramMismatch)
                {
                    let flow = ykt_tsm::api::FlowResp {
                        txn_id: envelope.txn_id.clone(),
                        kind: ykt_tsm::FlowKind::CardReturn,
                        status: ykt_tsm::api::FlowStatus::Completed,
                        instance_state: "DELETED".into(),
                        step: None,
                        step_index: 0,
                        step_count: 0,
                        relay: None,
                        outcome: Some(ykt_tsm::api::OutcomeView {
                            refund: Some(66_336),
                            ..Default::default()
                        }),
                    };
                    if let Some(forged) =
                        Self::forge(body, serde_json::to_value(flow).unwrap(), "FlowResp")
                    {
                        answer.status = 200;
                        answer.body = forged;
                    }
                }
            }
            Break::InflateRefund => {
                if let Ok(mut flow) = envelope.body::<ykt_tsm::api::FlowResp>()
                    && envelope.code() == Some(Code::Ok)
                    && let Some(refund) = flow.outcome.as_mut().and_then(|o| o.refund.as_mut())
                {
                    *refund += 100;
                    if let Some(forged) =
                        Self::forge(body, serde_json::to_value(flow).unwrap(), "FlowResp")
                    {
                        answer.body = forged;
                    }
                }
            }
            Break::ForgeTac | Break::InflateQueryBalance => {
                if let Ok(mut flow) = envelope.body::<ykt_tsm::api::FlowResp>()
                    && envelope.code() == Some(Code::Ok)
                    && let Some(outcome) = flow.outcome.as_mut()
                {
                    let changed = if self.brk == Break::ForgeTac {
                        outcome.load.as_mut().is_some_and(|l| {
                            let mut tac = l.tac.as_bytes().to_vec();
                            tac[0] ^= 0x01;
                            l.tac = ykt_tsm::hex::Hex(tac);
                            true
                        })
                    } else {
                        let mut changed = false;
                        if let Some(card) = outcome.card.as_mut() {
                            card.balance += 100;
                            changed = true;
                        }
                        if let Some(b) = outcome.balance.as_mut()
                            && flow.kind == ykt_tsm::FlowKind::CardDataQuery
                        {
                            *b += 100;
                            changed = true;
                        }
                        changed
                    };
                    if changed
                        && let Some(forged) =
                            Self::forge(body, serde_json::to_value(flow).unwrap(), "FlowResp")
                    {
                        answer.body = forged;
                    }
                }
            }
            Break::ResendCredit => {
                if let Ok(flow) = envelope.body::<ykt_tsm::api::FlowResp>()
                    && flow.relay.as_ref().is_some_and(|r| {
                        r.capdus
                            .iter()
                            .any(|c| c.as_bytes().starts_with(&[0x80, 0x52]))
                    })
                {
                    self.answers
                        .insert("credit".into(), serde_json::to_vec(&flow).unwrap());
                }
                if request_type == "ResumeReq"
                    && let Some(flow) = self.answers.get("credit")
                    && let Some(forged) =
                        Self::forge(body, serde_json::from_slice(flow).unwrap(), "FlowResp")
                {
                    answer.status = 200;
                    answer.body = forged;
                }
            }
            Break::KeepOrderOpen => {
                if request_type == "OrderQueryReq"
                    && let Ok(mut order) = envelope.body::<ykt_tsm::api::OrderResp>()
                    && envelope.code() == Some(Code::Ok)
                {
                    order.state = "PAID".into();
                    if let Some(forged) =
                        Self::forge(body, serde_json::to_value(order).unwrap(), "OrderResp")
                    {
                        answer.body = forged;
                    }
                }
            }
            Break::ForgetCards => {
                if request_type == "CardsQueryReq"
                    && envelope.code() == Some(Code::Ok)
                    && let Some(forged) =
                        Self::forge(body, serde_json::json!({ "cards": [] }), "CardsResp")
                {
                    answer.body = forged;
                }
            }
        }
        Ok(answer)
    }

    fn get(&mut self, path: &str) -> Result<HttpResponse, Fault> {
        self.inner.get(path)
    }

    fn tsm_id(&self) -> String {
        self.inner.tsm_id()
    }

    fn now_ms(&mut self) -> i64 {
        self.inner.now_ms()
    }

    fn seed(&mut self) -> u64 {
        self.inner.seed()
    }
}

fn run_items(access: &mut dyn TsmAccess, client: bool, only: &str) -> Run {
    run_items_at(access, client, only, "")
}

/// As [`run_items`], the run's target given as `target` (`client:URL` on the command line).
fn run_items_at(access: &mut dyn TsmAccess, client: bool, only: &str, given: &str) -> Run {
    let catalogue = Catalogue::builtin().unwrap();
    let profile = if client {
        profile::SAMPLE_CLIENT
    } else {
        profile::SAMPLE_TSM
    };
    let config = RunConfig {
        profile: Profile::parse(profile).unwrap(),
        only: Some(only.into()),
    };
    let target = if client {
        Target::Client(access)
    } else {
        Target::Tsm(access)
    };
    run(
        &catalogue,
        &Registry::builtin(),
        target,
        &config,
        RunInfo {
            target: given.into(),
            ..RunInfo::default()
        },
    )
}

fn verdict(run: &Run, id: &str) -> (Verdict, String) {
    let r = run.results.iter().find(|r| r.item.id == id).unwrap();
    (r.outcome.verdict, r.outcome.reason.clone())
}

#[test]
fn the_tsm_items_pass_against_the_tsm() {
    let tsm = start_tsm("items");
    let mut http = Http::new(&tsm);
    let run = run_items(&mut http, false, "TSM");
    for r in &run.results {
        let expected = match r.item.id.as_str() {
            // The online load items run in their own test (the_online_load_items_against_the_tsm).
            id if id.starts_with("RP-") => Verdict::NotRun,
            "TSM-PERF-001" => Verdict::NotRun,
            _ => Verdict::Pass,
        };
        assert_eq!(
            r.outcome.verdict, expected,
            "{}: {}\n{}",
            r.item.id, r.outcome.reason, r.transcript
        );
    }
    // The card return items say what they saw: the proof, the lock after it, the refusals.
    let (_, why) = verdict(&run, "TSM-RET-001");
    assert!(
        why.contains("MAC1 verifies") && why.contains("refund 1234 fen"),
        "{why}"
    );
    let (_, why) = verdict(&run, "TSM-RET-002");
    assert!(
        why.contains("the balance changed → 4002") && why.contains("MAC1 changed → 4002"),
        "{why}"
    );
}

#[test]
fn the_online_load_items_against_the_tsm() {
    let tsm = start_tsm("rp");
    let mut http = Http::new(&tsm);
    let run = run_items(&mut http, false, "RP");
    let mut seen = 0;
    for r in &run.results {
        if !r.item.id.starts_with("RP-") {
            continue;
        }
        seen += 1;
        assert_eq!(
            r.outcome.verdict,
            Verdict::Pass,
            "{}: {}\n{}",
            r.item.id,
            r.outcome.reason,
            r.transcript
        );
    }
    assert_eq!(seen, 5);
    let (_, why) = verdict(&run, "RP-LOAD-001");
    assert!(
        why.contains("+1500 exactly")
            && why.contains("the card's TAC verifies under the test keys and the TSM reports it")
            && why.contains("with no CREDIT FOR LOAD"),
        "{why}"
    );
    let (_, why) = verdict(&run, "RP-LOAD-003");
    assert!(
        why.contains("cut after CREDIT FOR LOAD reached the card: resumed with 0 CREDIT FOR LOAD")
            && why.contains(
                "cut before CREDIT FOR LOAD reached the card: resumed with 1 CREDIT FOR LOAD"
            ),
        "{why}"
    );
    let (_, why) = verdict(&run, "RP-LOAD-002");
    assert!(
        why.contains("MAC1 changed → 4002") && why.contains("loaded once"),
        "{why}"
    );
    let (_, why) = verdict(&run, "RP-LOAD-005");
    assert!(
        why.contains("100001 fen refused with") && why.contains("before any payment"),
        "{why}"
    );
}

#[test]
fn the_client_items_pass_against_the_tsm() {
    let tsm = start_tsm("client");
    let mut http = Http::new(&tsm);
    let run = run_items(&mut http, true, "CL");
    for r in &run.results {
        let expected = if r.item.id.starts_with("RP-") {
            // The client's online load items run in their own test.
            Verdict::NotRun
        } else if r.item.method == ykt_conformance::catalogue::Method::Auto {
            Verdict::Pass
        } else {
            Verdict::NotRun
        };
        assert_eq!(
            r.outcome.verdict, expected,
            "{}: {}\n{}",
            r.item.id, r.outcome.reason, r.transcript
        );
        // Each item the harness cannot run against a TSM URL says exactly why.
        if expected == Verdict::NotRun && !r.item.id.starts_with("RP-") {
            assert!(
                r.outcome
                    .reason
                    .contains("not checkable against a TSM URL: "),
                "{}: {}",
                r.item.id,
                r.outcome.reason
            );
        }
    }
    let (_, why) = verdict(&run, "CL-SD-001");
    assert!(why.contains("the MAC2 of each of 2 top-ups"), "{why}");
    assert!(why.contains("a refused delete's error"), "{why}");
    let (_, why) = verdict(&run, "CL-SD-003");
    assert!(why.contains("first 6 + `*` + last 4"), "{why}");
}

#[test]
fn the_client_online_load_items_against_the_tsm() {
    let tsm = start_tsm("rp-client");
    let mut http = Http::new(&tsm);
    let run = run_items_at(&mut http, true, "RP", &format!("client:{}", tsm.url));
    let seen: Vec<&str> = run
        .results
        .iter()
        .filter(|r| r.item.id.starts_with("RP-"))
        .map(|r| r.item.id.as_str())
        .collect();
    assert_eq!(seen, ["RP-QRY-001", "RP-SEC-001"]);
    let (v, why) = verdict(&run, "RP-QRY-001");
    assert_eq!(v, Verdict::Pass, "{why}");
    assert!(
        why.contains("after top-ups of [200, 350, 125]: the wallet shows 675 fen")
            && why.contains("records equal to the SE's"),
        "{why}"
    );
    // The client used the TSM over plain HTTP: the requirement is unmet.
    let (v, why) = verdict(&run, "RP-SEC-001");
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("in plaintext (http://)"), "{why}");
    // An https:// URL (here a TSM reached otherwise) with an access that cannot probe: no PASS.
    let https = "client:https://tsm.example:8443";
    let run = run_items_at(&mut http, true, "RP-SEC-001", https);
    let (v, why) = verdict(&run, "RP-SEC-001");
    assert_eq!(v, Verdict::Inconclusive, "{why}");
    assert!(why.contains("cannot report or probe its link"), "{why}");
    // The access reports pinned TLS and probes: PASS only when every probe was refused with no
    // byte received; one accepted, or bytes received, FAILs; a plaintext report FAILs.
    let refused = |endpoint: &str| LinkProbe {
        endpoint: endpoint.into(),
        refused: true,
        bytes_received: 0,
        detail: "the TSM's TLS key matches none of the pinned keys".into(),
    };
    let pinned = |probes: Vec<LinkProbe>| LinkReport::Pinned {
        version: "TLS 1.3".into(),
        pins: 2,
        probes,
    };
    http.link = Some(pinned(vec![
        refused("another key"),
        refused("TLS 1.2 only"),
    ]));
    let run = run_items_at(&mut http, true, "RP-SEC-001", https);
    let (v, why) = verdict(&run, "RP-SEC-001");
    assert_eq!(v, Verdict::Pass, "{why}");
    assert!(
        why.contains("TLS 1.3 with 2 pinned key(s)") && why.contains("another key; TLS 1.2 only"),
        "{why}"
    );
    let mut leaky = refused("a server that saw the request");
    leaky.bytes_received = 120;
    http.link = Some(pinned(vec![refused("another key"), leaky]));
    let run = run_items_at(&mut http, true, "RP-SEC-001", https);
    let (v, why) = verdict(&run, "RP-SEC-001");
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("a server that saw the request"), "{why}");
    let mut accepted = refused("another key");
    accepted.refused = false;
    http.link = Some(pinned(vec![accepted]));
    let (v, _) = verdict(
        &run_items_at(&mut http, true, "RP-SEC-001", https),
        "RP-SEC-001",
    );
    assert_eq!(v, Verdict::Fail);
    http.link = Some(pinned(Vec::new()));
    let (v, _) = verdict(
        &run_items_at(&mut http, true, "RP-SEC-001", https),
        "RP-SEC-001",
    );
    assert_eq!(v, Verdict::Inconclusive);
    http.link = Some(LinkReport::Plaintext);
    let (v, _) = verdict(
        &run_items_at(&mut http, true, "RP-SEC-001", https),
        "RP-SEC-001",
    );
    assert_eq!(v, Verdict::Fail);
    http.link = None;
    // The TSM in process: no link to secure.
    let run = run_items_at(&mut http, true, "RP-SEC-001", "client");
    let (v, why) = verdict(&run, "RP-SEC-001");
    assert_eq!(v, Verdict::NotApplicable, "{why}");
}

#[test]
fn a_tsm_that_accepts_a_bad_signature_or_a_stale_timestamp_fails() {
    let tsm = start_tsm("accept");
    let mut broken = Broken {
        inner: Http::new(&tsm),
        brk: Break::AcceptRefused(&[Code::BadSignature, Code::Stale]),
        answers: BTreeMap::new(),
    };
    let run = run_items(&mut broken, false, "TSM-MSG-002,TSM-MSG-004");
    let (v, why) = verdict(&run, "TSM-MSG-002");
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("not 1001"), "{why}");
    let (v, why) = verdict(&run, "TSM-MSG-004");
    assert_eq!(v, Verdict::Fail, "{why}");
}

#[test]
fn a_tsm_that_replays_old_answers_fails() {
    let tsm = start_tsm("replay");
    let mut broken = Broken {
        inner: Http::new(&tsm),
        brk: Break::ReplayOldAnswer,
        answers: BTreeMap::new(),
    };
    let run = run_items(&mut broken, false, "TSM-MSG-003");
    let (v, why) = verdict(&run, "TSM-MSG-003");
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("not 1003"), "{why}");
    let run = run_items(&mut broken, true, "CL-AU-003");
    let (v, why) = verdict(&run, "CL-AU-003");
    assert_eq!(v, Verdict::Fail, "{why}");
}

#[test]
fn a_tsm_whose_answers_are_tampered_with_fails() {
    let tsm = start_tsm("tamper");
    let mut broken = Broken {
        inner: Http::new(&tsm),
        brk: Break::Tamper,
        answers: BTreeMap::new(),
    };
    let run = run_items(&mut broken, false, "TSM-MSG-001,TSM-DL-001");
    let (v, why) = verdict(&run, "TSM-MSG-001");
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("does not verify"), "{why}");
    // The wallet refuses the tampered answer, so the card is never opened.
    let (v, why) = verdict(&run, "TSM-DL-001");
    assert_eq!(v, Verdict::Fail, "{why}");
}

#[test]
fn a_tsm_that_forgets_the_card_fails_the_end_state_checks() {
    let tsm = start_tsm("forget");
    let mut broken = Broken {
        inner: Http::new(&tsm),
        brk: Break::ForgetCards,
        answers: BTreeMap::new(),
    };
    let run = run_items(&mut broken, true, "CL-FN-001");
    let (v, why) = verdict(&run, "CL-FN-001");
    assert_eq!(v, Verdict::Fail, "{why}");
    let run = run_items(&mut broken, false, "TSM-DEL-001");
    let (v, why) = verdict(&run, "TSM-DEL-001");
    assert_eq!(v, Verdict::Fail, "{why}");
}

#[test]
fn a_tsm_that_refunds_an_unproven_or_other_balance_fails_the_card_return_items() {
    let tsm = start_tsm("refund");
    let mut broken = Broken {
        inner: Http::new(&tsm),
        brk: Break::PayUnprovenRefund,
        answers: BTreeMap::new(),
    };
    let run = run_items(&mut broken, false, "TSM-RET-002");
    let (v, why) = verdict(&run, "TSM-RET-002");
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("finished a card return"), "{why}");
    broken.brk = Break::InflateRefund;
    let run = run_items(&mut broken, false, "TSM-RET-001");
    let (v, why) = verdict(&run, "TSM-RET-001");
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("refund 1334 fen, but the SE proved"), "{why}");
}

#[test]
fn a_host_that_loads_on_a_bad_mac1_or_twice_fails_the_online_load_items() {
    let tsm = start_tsm("rp-broken");
    let mut broken = Broken {
        inner: Http::new(&tsm),
        brk: Break::AcceptRefused(&[Code::CryptogramMismatch]),
        answers: BTreeMap::new(),
    };
    let run = run_items(&mut broken, false, "RP-LOAD-002");
    let (v, why) = verdict(&run, "RP-LOAD-002");
    assert_eq!(v, Verdict::Fail, "{why}");
    broken.brk = Break::AcceptRefused(&[
        Code::Duplicate,
        Code::StateConflict,
        Code::Forbidden,
        Code::NotPaid,
        Code::OrderNotFound,
    ]);
    let run = run_items(&mut broken, false, "RP-LOAD-004");
    let (v, why) = verdict(&run, "RP-LOAD-004");
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("could be credited twice"), "{why}");
}

#[test]
fn a_host_that_keeps_another_tac_or_leaves_the_order_open_fails_the_load_items() {
    let tsm = start_tsm("rp-open");
    let mut broken = Broken {
        inner: Http::new(&tsm),
        brk: Break::ForgeTac,
        answers: BTreeMap::new(),
    };
    let run = run_items(&mut broken, false, "RP-LOAD-001");
    let (v, why) = verdict(&run, "RP-LOAD-001");
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(why.contains("not the card's"), "{why}");
    broken.brk = Break::KeepOrderOpen;
    let run = run_items(&mut broken, false, "RP-LOAD-001,RP-LOAD-003");
    for id in ["RP-LOAD-001", "RP-LOAD-003"] {
        let (v, why) = verdict(&run, id);
        assert_eq!(v, Verdict::Fail, "{id}: {why}");
        assert!(why.contains("the order is PAID"), "{id}: {why}");
    }
    broken.brk = Break::ResendCredit;
    let run = run_items(&mut broken, false, "RP-LOAD-003");
    let (v, why) = verdict(&run, "RP-LOAD-003");
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(
        why.contains(
            "on resume 1 CREDIT FOR LOAD reached the card already credited (1 re-sent blindly"
        ),
        "{why}"
    );
    broken.brk = Break::InflateQueryBalance;
    let run = run_items(&mut broken, true, "RP-QRY-001");
    let (v, why) = verdict(&run, "RP-QRY-001");
    assert_eq!(v, Verdict::Fail, "{why}");
    assert!(
        why.contains("the card query through the TSM shows Some(775), the SE holds 675"),
        "{why}"
    );
}

#[test]
fn without_the_test_keys_the_se_items_are_not_applicable() {
    let tsm = start_tsm("profile");
    let mut http = Http::new(&tsm);
    let catalogue = Catalogue::builtin().unwrap();
    let config = RunConfig {
        profile: Profile::parse("tsm").unwrap(),
        only: Some("TSM-DL-001,TSM-MSG-004".into()),
    };
    let run = run(
        &catalogue,
        &Registry::builtin(),
        Target::Tsm(&mut http),
        &config,
        RunInfo::default(),
    );
    assert_eq!(verdict(&run, "TSM-DL-001").0, Verdict::NotApplicable);
    assert_eq!(verdict(&run, "TSM-MSG-004").0, Verdict::Pass);
}
