//! `ykt tsm serve` and the card commands of `ykt wallet` as a new user runs them: a card opened,
//! topped up, read, transferred to a second phone and returned; bad input refused with a clear
//! error; and the TSM killed (SIGKILL) in the middle of open card, restarted on the same database,
//! with the wallet's `resume` (or a second `open`) leaving exactly one active card that credits a
//! top-up once.

use std::process::{Child, Command, Output};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ykt_tsm_service::http::TsmClient;

use crate::child::{
    Scratch, WALLET_PASSPHRASE, apdu_results, run, serve_tsm, succeeded, tsm_args, tsm_get,
    wait_output, ykt,
};

/// The wallets' passphrase: it must appear in no output and in no file of a wallet directory.
const PASSPHRASE: &str = WALLET_PASSPHRASE;
/// The first card number the test TSM allocates (prefix 31041000, counter 1), and its masked
/// form. The full number must appear nowhere a user sees.
const FULL_CARD_NO: &str = "31041000000000000001";
const MASKED_CARD_NO: &str = "310410**********0001";
/// How long any one step may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A scratch directory, and every output of the commands run in it.
struct Setup {
    dir: Scratch,
    outputs: Mutex<Vec<String>>,
}

impl std::ops::Deref for Setup {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.dir
    }
}

impl Setup {
    fn new(name: &str) -> Self {
        Self {
            dir: Scratch::new("tsm", name),
            outputs: Mutex::new(Vec::new()),
        }
    }

    fn keep(&self, text: String) {
        self.outputs.lock().unwrap().push(text);
    }

    /// `ykt ARGS` with the passphrase `pass` (none: unset).
    fn run_with(&self, pass: Option<&str>, args: &[&str]) -> Output {
        let mut command = ykt(args);
        match pass {
            Some(p) => command.env("YKT_WALLET_PASSPHRASE", p),
            None => command.env_remove("YKT_WALLET_PASSPHRASE"),
        };
        let out = run(&mut command, TIMEOUT);
        self.keep(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        out
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(Some(PASSPHRASE), args)
    }

    /// Runs `ykt ARGS`, which must succeed; gives its stdout.
    fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    /// Runs `ykt ARGS`, which must fail with exit code `code`; gives its stderr.
    fn fails(&self, pass: Option<&str>, code: i32, args: &[&str]) -> String {
        let out = self.run_with(pass, args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(code), "ykt {args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked"),
            "ykt {args:?} panicked: {stderr}"
        );
        stderr
    }

    /// `ykt wallet enrol` of the wallet `wdir` with `tsm` (its URL and pin).
    fn enrol(&self, wdir: &str, tsm: &Tsm) {
        let out = self.ok(&tsm.enrol_args(&self.p(wdir)));
        assert!(
            out.contains("device enrolled with SPTSM-YKT-TEST"),
            "enrol: {out:?}"
        );
    }

    /// `ykt wallet COMMAND --dir WDIR --se-state SE ARGS`.
    fn wallet_se(&self, command: &str, wdir: &str, se: &str, args: &[&str]) -> Output {
        let (wdir, se) = (self.p(wdir), self.p(se));
        let mut all = vec!["wallet", command, "--dir", &wdir, "--se-state", &se];
        all.extend_from_slice(args);
        self.run(&all)
    }

    fn wallet_se_ok(&self, command: &str, wdir: &str, se: &str, args: &[&str]) -> String {
        let out = self.wallet_se(command, wdir, se, args);
        succeeded(&[&["wallet", command], args].concat(), out)
    }

    fn cards(&self, wdir: &str) -> String {
        self.ok(&["wallet", "cards", "--dir", &self.p(wdir)])
    }

    /// No output kept so far holds the full card number or the passphrase.
    fn assert_outputs_clean(&self) {
        let outputs = self.outputs.lock().unwrap();
        assert!(!outputs.is_empty());
        for out in outputs.iter() {
            assert!(!out.contains(FULL_CARD_NO), "full card number shown: {out}");
            assert!(!out.contains(PASSPHRASE), "passphrase shown: {out}");
        }
    }

    /// No file of the wallet directory `wdir` holds the passphrase or the card number (as text
    /// or as its BCD bytes).
    fn assert_wallet_files_clean(&self, wdir: &str) {
        let bcd = hex::decode(FULL_CARD_NO).unwrap();
        let entries: Vec<_> = std::fs::read_dir(self.path(wdir)).unwrap().collect();
        assert!(!entries.is_empty());
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            for (what, needle) in [
                ("passphrase", PASSPHRASE.as_bytes()),
                ("card number", FULL_CARD_NO.as_bytes()),
                ("card number (BCD)", bcd.as_slice()),
            ] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds the {what}",
                    path.display()
                );
            }
        }
    }
}

/// `ykt tsm serve` as a child process, killed on drop.
struct Tsm {
    child: Child,
    url: String,
    /// The SPKI pin of its TLS key.
    pin: String,
    /// A client pinned to it.
    client: TsmClient,
    first_line: String,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Tsm {
    /// Starts the test TSM on `listen` with its database and directory in `s`; waits until it
    /// prints its address.
    fn start(s: &Setup, listen: &str) -> Self {
        let served = serve_tsm(listen, &s.sqlite("tsm.db"), &s.p("tsm"), &[]);
        let client = served.client();
        let tsm = Self {
            child: served.child,
            url: served.url,
            pin: served.pin,
            client,
            first_line: served.first_line,
            stdout: served.stdout,
            stderr: served.stderr,
        };
        assert!(tsm.url.starts_with("https://127.0.0.1:"), "{}", tsm.url);
        assert!(tsm.first_line.contains("(TLS 1.3)"), "{}", tsm.first_line);
        tsm
    }

    /// `127.0.0.1:PORT`.
    fn addr(&self) -> &str {
        self.url.trim_start_matches("https://")
    }

    /// `wallet enrol --dir WDIR --tsm URL --tsm-pin PIN`.
    fn enrol_args<'a>(&'a self, wdir: &'a str) -> Vec<&'a str> {
        let mut args = vec!["wallet", "enrol", "--dir", wdir];
        args.extend(tsm_args(&self.url, Some(&self.pin)));
        args
    }

    /// `GET path` (with the admin token from `s` when `admin`): status and body.
    fn get(&self, s: &Setup, path: &str, admin: bool) -> (u16, String) {
        let token =
            admin.then(|| std::fs::read_to_string(s.path("tsm").join("admin.token")).unwrap());
        let (status, headers, body) = self
            .client
            .get_raw_with_token(path, token.as_deref().map(str::trim))
            .unwrap();
        assert!(
            !headers
                .iter()
                .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked")),
            "chunked answer to {path}"
        );
        (status, String::from_utf8_lossy(&body).to_string())
    }

    /// The `ApduResultReq` requests served so far (any result code), from `/metrics`; `None`
    /// once the TSM does not answer.
    fn apdu_results(&self) -> Option<u64> {
        let (_, body) = tsm_get(&self.client, "/metrics").ok()?;
        Some(apdu_results(&body))
    }

    /// The card instances the TSM records (admin API).
    fn card_instances(&self, s: &Setup) -> Vec<serde_json::Value> {
        let (status, body) = self.get(s, "/admin/v1/cards", true);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Stops it with SIGTERM; it must exit 0. Gives its stdout and stderr.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.wait();
        let out = self.collect();
        assert!(exit.success(), "{exit:?}: {out}");
        out
    }

    /// Kills it with SIGKILL. Gives its stdout and stderr.
    fn kill9(mut self) -> String {
        self.child.kill().unwrap();
        self.wait();
        self.collect()
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            assert!(start.elapsed() < TIMEOUT, "the TSM did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn collect(&mut self) -> String {
        let out = self
            .stdout
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        let err = self
            .stderr
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        format!("{}{out}{err}", self.first_line)
    }
}

impl Drop for Tsm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The transfer code in `transfer-out`'s output.
fn transfer_code(out: &str) -> String {
    let code = out
        .split("--code ")
        .nth(1)
        .unwrap_or_else(|| panic!("no transfer code in {out:?}"))
        .trim()
        .to_string();
    assert!(
        !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric()),
        "{code:?}"
    );
    code
}

#[test]
fn a_new_user_opens_tops_up_transfers_and_returns_a_card_through_the_served_tsm() {
    let s = Setup::new("user");
    let tsm = Tsm::start(&s, "127.0.0.1:0");
    let (w1, w2) = ("w1", "w2");

    // The key files do not grow with the cards: each SSD's key sets are derived from the
    // roles' SSD masters, and the SP's copy of the handed-over initial set goes once the card
    // has its own (docs/benchmarks.md, the key file's growth).
    let kms_sizes =
        || ["sei.kms", "sp.kms"].map(|f| std::fs::metadata(s.path("tsm").join(f)).unwrap().len());
    let before = kms_sizes();
    s.enrol(w1, &tsm);
    let out = s.wallet_se_ok("open", w1, "se.card", &[]);
    assert!(
        out.contains(&format!("card {MASKED_CARD_NO} opened (ACTIVE)")),
        "{out}"
    );
    assert_eq!(kms_sizes(), before, "a key file grew with an open card");
    let out = s.wallet_se_ok("topup", w1, "se.card", &["--amount", "5000"]);
    assert!(out.contains("¥50.00 loaded"), "{out}");
    assert!(out.contains("balance ¥50.00"), "{out}");
    let out = s.wallet_se_ok("balance", w1, "se.card", &[]);
    assert!(
        out.contains(&format!("card {MASKED_CARD_NO}: balance ¥50.00")),
        "{out}"
    );
    let out = s.wallet_se_ok("records", w1, "se.card", &[]);
    assert!(out.contains(": 1 records"), "{out}");
    let loads: Vec<_> = out.lines().filter(|l| l.contains(" load ")).collect();
    assert_eq!(loads.len(), 1, "{out}");
    assert!(loads[0].contains("¥50.00"), "{out}");
    let out = s.cards(w1);
    assert!(out.contains(&format!("1: card {MASKED_CARD_NO}")), "{out}");
    assert!(out.contains("ACTIVE"), "{out}");
    assert!(out.contains("balance ¥50.00"), "{out}");

    // 迁卡: out of the first phone, into a second wallet on a second SE.
    let out = s.wallet_se_ok("transfer-out", w1, "se.card", &[]);
    let code = transfer_code(&out);
    assert!(s.cards(w1).contains("no cards"));
    s.enrol(w2, &tsm);
    let out = s.wallet_se_ok(
        "transfer-in",
        w2,
        "se2.card",
        &["--se-serial", "2", "--code", &code],
    );
    assert!(
        out.contains(&format!("card {MASKED_CARD_NO} arrived (ACTIVE)")),
        "{out}"
    );
    let out = s.wallet_se_ok("balance", w2, "se2.card", &[]);
    assert!(out.contains("balance ¥50.00"), "{out}");
    assert_eq!(kms_sizes(), before, "a key file grew with a transfer");

    // 退卡: the balance refunded, the card gone.
    let out = s.wallet_se_ok("return", w2, "se2.card", &[]);
    assert!(out.contains("¥50.00 refunded"), "{out}");
    assert!(s.cards(w2).contains("no cards"));

    // The TSM knows the number in full; its user-facing output does not show it.
    let instances = tsm.card_instances(&s);
    assert_eq!(instances.len(), 2, "{instances:?}");
    assert!(instances.iter().all(|c| c["card_no"] == FULL_CARD_NO));
    let tsm_out = tsm.stop();
    assert!(tsm_out.contains("TSM stopped"), "{tsm_out}");
    s.keep(tsm_out);
    s.assert_outputs_clean();
    let all = s.outputs.lock().unwrap().join("\n");
    assert!(all.contains(MASKED_CARD_NO));
    s.assert_wallet_files_clean(w1);
    s.assert_wallet_files_clean(w2);
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let s = Setup::new("bad");
    // A TSM where nothing listens: a plain sentence, no panic; enrolment can be retried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nowhere = format!("https://{closed}");
    // A well-formed pin: nothing answers to check it against.
    let any_pin = format!("sha256/{}=", "A".repeat(43));
    let w = s.p("w");
    let err = s.fails(
        Some(PASSPHRASE),
        1,
        &[
            "wallet",
            "enrol",
            "--dir",
            &w,
            "--tsm",
            &nowhere,
            "--tsm-pin",
            &any_pin,
        ],
    );
    assert!(err.contains("cannot be reached"), "{err}");

    let tsm = Tsm::start(&s, "127.0.0.1:0");
    s.enrol("w", &tsm);
    let err = s.fails(Some(PASSPHRASE), 1, &tsm.enrol_args(&w));
    assert!(err.contains("enrolled already"), "{err}");
    s.wallet_se_ok("open", "w", "se.card", &[]);

    // A wrong passphrase: refused, the wallet file left as it was.
    let sealed = s.path("w").join("wallet.sealed");
    let before = std::fs::read(&sealed).unwrap();
    let (w, se) = (s.p("w"), s.p("se.card"));
    for args in [
        vec!["wallet", "balance", "--dir", &w, "--se-state", &se],
        vec![
            "wallet",
            "topup",
            "--dir",
            &w,
            "--se-state",
            &se,
            "--amount",
            "100",
        ],
        vec!["wallet", "cards", "--dir", &w],
    ] {
        let err = s.fails(Some("not-the-passphrase"), 1, &args);
        assert!(err.to_lowercase().contains("wrong passphrase"), "{err}");
        let err = s.fails(None, 1, &args);
        assert!(err.contains("YKT_WALLET_PASSPHRASE"), "{err}");
    }
    assert_eq!(
        std::fs::read(&sealed).unwrap(),
        before,
        "wallet file changed"
    );

    // Usage errors (exit 2) name what is missing.
    let err = s.fails(
        Some(PASSPHRASE),
        2,
        &["wallet", "topup", "--dir", &w, "--se-state", &se],
    );
    assert!(err.contains("--amount"), "{err}");
    let err = s.fails(Some(PASSPHRASE), 1, &["wallet", "open", "--dir", &w]);
    assert!(
        err.contains("--se-state") && err.contains("--reader"),
        "{err}"
    );
    // Without --test-keys the server wants the production hierarchy of `ykt tsm init`.
    let err = s.fails(
        None,
        1,
        &[
            "tsm",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            &s.p("tsm2"),
        ],
    );
    assert!(err.contains("ykt tsm init"), "{err}");
    assert!(err.contains("--test-keys"), "{err}");
    assert!(!s.path("tsm2").exists());

    // Nothing of that changed the card.
    let out = s.wallet_se_ok("balance", "w", "se.card", &[]);
    assert!(out.contains("balance ¥0.00"), "{out}");
    assert_eq!(s.cards("w").matches(MASKED_CARD_NO).count(), 1);
    s.keep(tsm.stop());
    s.assert_outputs_clean();
    s.assert_wallet_files_clean("w");
}

/// Polls `done` every few milliseconds until it holds or [`TIMEOUT`] passes.
fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One kill point: the TSM SIGKILLed once it has served `k` APDU results of an open card.
fn kill_during_open_card(k: u64) {
    let s = Setup::new(&format!("kill{k}"));
    let tsm = Tsm::start(&s, "127.0.0.1:0");
    let listen = tsm.addr().to_string();
    let pin = tsm.pin.clone();
    s.enrol("w", &tsm);
    let (w, se) = (s.p("w"), s.p("se.card"));
    let mut open = ykt(&["wallet", "open", "--dir", &w, "--se-state", &se])
        .env("YKT_WALLET_PASSPHRASE", PASSPHRASE)
        .spawn()
        .unwrap();
    poll(&format!("{k} APDU results (k = {k})"), || {
        tsm.apdu_results().is_some_and(|n| n >= k) || open.try_wait().unwrap().is_some()
    });
    s.keep(tsm.kill9());
    let out = wait_output(open, "wallet open", TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    s.keep(format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)));
    assert!(!stderr.contains("panicked"), "k = {k}: {stderr}");
    if !out.status.success() {
        assert!(stderr.contains("cannot be reached"), "k = {k}: {stderr}");
    }

    // Restarted on the same database, directory and address: the TLS pair in the directory
    // is reused, so the wallet's pin still matches.
    let tsm = Tsm::start(&s, &listen);
    assert_eq!(tsm.pin, pin, "k = {k}: a restart changed the TLS key");
    let resumed = s.wallet_se_ok("resume", "w", "se.card", &[]);
    if !s.cards("w").contains(MASKED_CARD_NO) {
        assert!(
            resumed.contains("no open flow") || resumed.contains("forgotten"),
            "k = {k}: {resumed}"
        );
        s.wallet_se_ok("open", "w", "se.card", &[]);
    }
    let cards = s.cards("w");
    assert_eq!(cards.matches(MASKED_CARD_NO).count(), 1, "k = {k}: {cards}");
    assert!(cards.contains("ACTIVE"), "k = {k}: {cards}");
    assert!(!cards.contains("open flow"), "k = {k}: {cards}");
    // The TSM holds one card instance, active, on this SE.
    let instances = tsm.card_instances(&s);
    assert_eq!(instances.len(), 1, "k = {k}: {instances:?}");
    assert_eq!(instances[0]["state"], "ACTIVE", "k = {k}: {instances:?}");

    // The purse answers and credits a top-up exactly once.
    let out = s.wallet_se_ok("balance", "w", "se.card", &[]);
    assert!(out.contains("balance ¥0.00"), "k = {k}: {out}");
    let out = s.wallet_se_ok("topup", "w", "se.card", &["--amount", "100"]);
    assert!(out.contains("balance ¥1.00"), "k = {k}: {out}");
    let out = s.wallet_se_ok("balance", "w", "se.card", &[]);
    assert!(out.contains("balance ¥1.00"), "k = {k}: {out}");
    let out = s.wallet_se_ok("records", "w", "se.card", &[]);
    assert!(out.contains(": 1 records"), "k = {k}: {out}");
    s.keep(tsm.stop());
    s.assert_outputs_clean();
}

/// The open-card flow's APDU results at which the TSM is killed: early (the security domain
/// being made), the middle (the purse loaded and installed) and late (personalisation). The
/// flow has 18.
const KILL_POINTS: [u64; 5] = [2, 5, 9, 13, 17];

#[test]
fn the_tsm_killed_during_open_card_leaves_one_active_card_after_restart_and_resume() {
    for k in KILL_POINTS {
        kill_during_open_card(k);
    }
}
