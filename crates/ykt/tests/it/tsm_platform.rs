//! The SEI-TSM and the SP-TSM as two `ykt tsm serve` processes joined by the inter-platform API:
//! each learns the other's key with `ykt tsm key`; a wallet enrols, opens, tops up, reads and
//! returns a card and deletes another against the SP; the SP's directory holds no SEI key file; the SEI refuses a
//! sender it does not know and a replay; and the SEI killed during an open card, restarted,
//! lets `ykt wallet resume` finish with one card.

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use serde_json::json;
use ykt_crypto::Sm2PrivateKey;
use ykt_envelope::{Code, Envelope, Header, Sm2Signer};
use ykt_tsm_service::http::TsmClient;

use crate::child::{
    Scratch, WALLET_PASSPHRASE as PASSPHRASE, apdu_results, run, serve_tsm, succeeded, tsm_args,
    tsm_get, wait_output, ykt,
};

const MASKED_CARD_NO: &str = "310410**********0001";
const TIMEOUT: Duration = Duration::from_secs(60);

/// The scratch directory of one test: the two TSMs' directories and databases, and wallets.
struct Setup(Scratch);

impl std::ops::Deref for Setup {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

impl Setup {
    fn new(name: &str) -> Self {
        Self(Scratch::new("platform", name))
    }

    fn run(&self, args: &[&str]) -> Output {
        run(ykt(args).env("YKT_WALLET_PASSPHRASE", PASSPHRASE), TIMEOUT)
    }

    fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    fn wallet(&self, command: &str, wdir: &str, se: &str, args: &[&str]) -> String {
        let (wdir, se) = (self.p(wdir), self.p(se));
        let mut all = vec!["wallet", command, "--dir", &wdir, "--se-state", &se];
        all.extend_from_slice(args);
        self.ok(&all)
    }

    /// `ykt tsm key --dir DIR`.
    fn key(&self, dir: &str) -> String {
        let out = self.ok(&["tsm", "key", "--dir", &self.p(dir)]);
        let key = out.trim().to_string();
        assert_eq!(key.len(), 130, "{out:?}");
        assert_eq!(self.ok(&["tsm", "key", "--dir", &self.p(dir)]).trim(), key);
        key
    }
}

/// `ykt tsm serve ARGS` as a child process, killed on drop.
struct Server {
    child: Child,
    url: String,
    /// The SPKI pin of its TLS key.
    pin: String,
    /// A client pinned to it.
    client: TsmClient,
}

impl Server {
    fn start(s: &Setup, listen: &str, db: &str, dir: &str, args: &[&str]) -> Self {
        let served = serve_tsm(listen, &s.sqlite(db), &s.p(dir), args);
        let client = served.client();
        Self {
            child: served.child,
            url: served.url,
            pin: served.pin,
            client,
        }
    }

    fn addr(&self) -> String {
        self.url.trim_start_matches("https://").to_string()
    }

    /// `wallet enrol --dir WDIR --tsm URL --tsm-pin PIN`.
    fn enrol_args<'a>(&'a self, wdir: &'a str) -> Vec<&'a str> {
        let mut args = vec!["wallet", "enrol", "--dir", wdir];
        args.extend(tsm_args(&self.url, Some(&self.pin)));
        args
    }

    /// The `ApduResultReq` requests served so far.
    fn apdu_results(&self) -> u64 {
        apdu_results(&tsm_get(&self.client, "/metrics").unwrap().1)
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SEI and the SP, each pinning the other's key.
fn start_both(s: &Setup) -> (Server, Server) {
    let sp_key = s.key("sp");
    let sei_key = s.key("sei");
    assert_ne!(sp_key, sei_key);
    let sei = Server::start(
        s,
        "127.0.0.1:0",
        "sei.db",
        "sei",
        &["--role", "sei", "--peer-key", &sp_key],
    );
    let sp = Server::start(
        s,
        "127.0.0.1:0",
        "sp.db",
        "sp",
        &[
            "--role",
            "sp",
            "--sei-url",
            &sei.url,
            "--sei-pin",
            &sei.pin,
            "--sei-key",
            &sei_key,
        ],
    );
    (sei, sp)
}

fn seal(body: &serde_json::Value, key: &Sm2PrivateKey, sender: &str) -> Envelope {
    let def = ykt_tsm::api::KEY_QUERY;
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    Envelope::seal(
        &Header {
            msg_type: def.request.into(),
            msg_no: def.msg_no.into(),
            sender_id: sender.into(),
            receiver_id: "SEITSM-YKT-TEST".into(),
            txn_id: hex::encode(nonce),
            request_id: hex::encode(nonce),
        },
        body,
        None,
        &nonce,
        now,
        &Sm2Signer::new(key.clone()),
    )
    .unwrap()
}

#[test]
fn a_card_lives_through_an_sp_whose_sei_is_another_server() {
    let s = Setup::new("life");
    // Each role names what it needs.
    for (role, missing) in [("sp", "--sei-url"), ("sei", "--peer-key")] {
        let out = s.run(&[
            "tsm",
            "serve",
            "--test-keys",
            "--role",
            role,
            "--dir",
            &s.p("x"),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(missing), "{err}");
    }
    assert!(!s.path("x").exists());
    let (sei, sp) = start_both(&s);
    // Each directory holds its own role's key file only.
    assert!(s.path("sp/sp.kms").exists() && !s.path("sp/sei.kms").exists());
    assert!(s.path("sei/sei.kms").exists() && !s.path("sei/sp.kms").exists());

    let w = s.p("w");
    let out = s.ok(&sp.enrol_args(&w));
    assert!(out.contains("device enrolled with SPTSM-YKT-TEST"), "{out}");
    let out = s.wallet("open", "w", "se.card", &[]);
    assert!(
        out.contains(&format!("card {MASKED_CARD_NO} opened (ACTIVE)")),
        "{out}"
    );
    let out = s.wallet("topup", "w", "se.card", &["--amount", "5000"]);
    assert!(out.contains("balance ¥50.00"), "{out}");
    let out = s.wallet("balance", "w", "se.card", &[]);
    assert!(out.contains("balance ¥50.00"), "{out}");
    let out = s.wallet("return", "w", "se.card", &[]);
    assert!(out.contains("¥50.00 refunded"), "{out}");
    let out = s.ok(&["wallet", "cards", "--dir", &s.p("w")]);
    assert!(out.contains("no cards"), "{out}");
    // A second card, deleted (no balance on it).
    let out = s.wallet("open", "w", "se.card", &[]);
    assert!(out.contains("opened (ACTIVE)"), "{out}");
    s.wallet("delete", "w", "se.card", &[]);
    let out = s.ok(&["wallet", "cards", "--dir", &s.p("w")]);
    assert!(out.contains("no cards"), "{out}");

    // The SEI did its part: every operation an audit row, the chain intact.
    let token = std::fs::read_to_string(s.path("sei/admin.token")).unwrap();
    let chain = serde_json::to_value(sei.client.admin_verify_audit(token.trim()).unwrap()).unwrap();
    assert_eq!(chain["intact"], true, "{chain}");
    assert!(chain["rows"].as_u64().unwrap_or(0) > 10, "{chain}");
    // The SEI serves no wallet.
    let w2 = s.p("w2");
    let err = s.run(&sei.enrol_args(&w2));
    assert!(!err.status.success());

    // The SEI refuses a sender it does not know, and a replay of the SP's own message.
    let client = &sei.client;
    let body = json!({"key": "sei/isd-master"});
    let stranger = Sm2PrivateKey::from_bytes(&[0x45; 32]).unwrap();
    let answer = client.send(&seal(&body, &stranger, "SPTSM-OTHER")).unwrap();
    assert_eq!(answer.code(), Some(Code::UnknownSender));
    let answer = client
        .send(&seal(&body, &stranger, "SPTSM-YKT-TEST"))
        .unwrap();
    assert_eq!(answer.code(), Some(Code::BadSignature));
    let sp_key_hex = std::fs::read_to_string(s.path("sp/tsm.key")).unwrap();
    let d: [u8; 32] = hex::decode(sp_key_hex.trim()).unwrap().try_into().unwrap();
    let sp_key = Sm2PrivateKey::from_bytes(&d).unwrap();
    let request = seal(&body, &sp_key, "SPTSM-YKT-TEST");
    assert_eq!(client.send(&request).unwrap().code(), Some(Code::Ok));
    assert_eq!(client.send(&request).unwrap().code(), Some(Code::Replayed));
    drop(sp);
    drop(sei);
}

#[test]
fn the_sei_killed_during_open_card_lets_the_wallet_resume_to_one_card() {
    let s = Setup::new("kill");
    let (sei, sp) = start_both(&s);
    let sei_listen = sei.addr();
    let sei_pin = sei.pin.clone();
    let w = s.p("w");
    s.ok(&sp.enrol_args(&w));
    let se = s.p("se.card");
    let open = ykt(&["wallet", "open", "--dir", &w, "--se-state", &se])
        .env("YKT_WALLET_PASSPHRASE", PASSPHRASE)
        .spawn()
        .unwrap();
    // Killed once the SSD is being made (the SEI's first operations).
    let start = Instant::now();
    while sp.apdu_results() < 2 {
        assert!(start.elapsed() < TIMEOUT, "the open card did not start");
        std::thread::sleep(Duration::from_millis(2));
    }
    sei.kill9();
    let out = wait_output(open, "ykt", TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !out.status.success(),
        "the open card finished without the SEI: {stderr}"
    );

    // The SEI back on the same address, database and directory.
    let sei_key = s.key("sei");
    let sp_key = s.key("sp");
    let sei = Server::start(
        &s,
        &sei_listen,
        "sei.db",
        "sei",
        &["--role", "sei", "--peer-key", &sp_key],
    );
    assert_eq!(s.key("sei"), sei_key);
    // Its TLS pair in the directory is reused: the SP's --sei-pin still matches.
    assert_eq!(sei.pin, sei_pin, "a restart changed the SEI's TLS key");
    let out = s.wallet("resume", "w", "se.card", &[]);
    let cards = s.ok(&["wallet", "cards", "--dir", &w]);
    assert_eq!(cards.matches(MASKED_CARD_NO).count(), 1, "{out}\n{cards}");
    assert!(cards.contains("ACTIVE"), "{out}\n{cards}");
    let token = std::fs::read_to_string(s.path("sp/admin.token")).unwrap();
    let instances = serde_json::to_value(sp.client.admin_all_cards(token.trim()).unwrap()).unwrap();
    assert_eq!(instances.as_array().unwrap().len(), 1, "{instances}");
    assert_eq!(instances[0]["state"], "ACTIVE", "{instances}");
    let out = s.wallet("topup", "w", "se.card", &["--amount", "100"]);
    assert!(out.contains("balance ¥1.00"), "{out}");
    drop(sei);
}

#[test]
fn the_sp_reaches_its_sei_over_pinned_tls_whatever_it_serves_itself() {
    let s = Setup::new("mixed");
    let (sp_key, sei_key) = (s.key("sp"), s.key("sei"));
    let sei = Server::start(
        &s,
        "127.0.0.1:0",
        "sei.db",
        "sei",
        &["--role", "sei", "--peer-key", &sp_key],
    );
    // A wrong pin for the SEI: the SP does not start (it asks the SEI at start).
    let wrong = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let out = s.run(&[
        "tsm",
        "serve",
        "--test-keys",
        "--role",
        "sp",
        "--listen",
        "127.0.0.1:0",
        "--db",
        &s.sqlite("sp0.db"),
        "--dir",
        &s.p("sp0"),
        "--sei-url",
        &sei.url,
        "--sei-pin",
        wrong,
        "--sei-key",
        &sei_key,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("matches none of the pinned keys"), "{err}");
    // An SP serving plain HTTP (--danger-insecure-http) still reaches the https:// SEI over
    // pinned TLS, and a wallet on plain HTTP opens a card through it.
    let sp = Server::start(
        &s,
        "127.0.0.1:0",
        "sp.db",
        "sp",
        &[
            "--role",
            "sp",
            "--danger-insecure-http",
            "--sei-url",
            &sei.url,
            "--sei-pin",
            &sei.pin,
            "--sei-key",
            &sei_key,
        ],
    );
    assert!(sp.url.starts_with("http://"), "{}", sp.url);
    let w = s.p("w");
    let mut enrol = vec!["wallet", "enrol", "--dir", w.as_str()];
    enrol.extend(tsm_args(&sp.url, None));
    s.ok(&enrol);
    let out = s.wallet("open", "w", "se.card", &[]);
    assert!(out.contains("opened (ACTIVE)"), "{out}");
}
