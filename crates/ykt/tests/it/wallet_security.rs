//! The wallet's security design against the real binary (client.md §6): the canary scan of
//! §6.8 over every flow with `RUST_LOG=trace`, the session lock of §6.10 in `ykt wallet api
//! serve`, `ykt wallet purge` (§6.5) and the process hardening of §6.11.
//!
//! The canaries are the values the wallet handles and must never show or store in clear: the
//! card number, the SEIDs, the passphrase, the purse PIN, the device keys' scalars and the MAC2
//! of every load. Each is looked for as text, hex (either case), decimal and base64 (at every
//! byte alignment when long enough), and as raw bytes in the files.
//!
//! What is scanned: stdout and stderr of every wallet command and of the local API server, the
//! local API's answers, and every version of every file in the wallet directories (taken after
//! each command). Not scanned: the TSM's output (it knows the card number) and the simulated
//! SEs' state files, which sit outside the wallet directories: they are the secure element's
//! memory, which holds the card's keys and PIN by design.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, SeededRandom};

use ykt_tsm_service::http::TsmClient;

use crate::child::{apdu_results, drain, serve_tsm, tsm_args, tsm_get, wait_output};

const YKT: &str = env!("CARGO_BIN_EXE_ykt");
const PASSPHRASE: &str = "Canary-Passphrase-4417";
/// What the binary prints on a panic (`harden::PANIC_TEXT`).
const PANIC_TEXT: &str = "error: E9998: ykt stopped on an internal error.";
/// The first card number the test TSM allocates, and its masked form (client.md §6.7).
const FULL_CARD_NO: &str = "31041000000000000001";
const MASKED_CARD_NO: &str = "310410**********0001";
/// The purse PIN the test TSM personalises (`ykt_purse::testing::TEST_PIN`).
const PIN: [u8; 3] = [0x12, 0x34, 0x56];
/// How long any one step may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A temporary directory, the outputs of everything run in it, and the wallet files seen.
struct Setup {
    root: PathBuf,
    outputs: Mutex<Vec<(String, String)>>,
    files: Mutex<BTreeMap<(PathBuf, Vec<u8>), ()>>,
    wallets: Vec<&'static str>,
}

impl Setup {
    fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("ykt-sec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Self {
            root,
            outputs: Mutex::new(Vec::new()),
            files: Mutex::new(BTreeMap::new()),
            wallets: vec!["w1", "w2"],
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    fn keep(&self, what: &str, text: String) {
        self.outputs.lock().unwrap().push((what.to_string(), text));
    }

    /// Every file of the wallet directories as it is now.
    fn snapshot(&self) {
        let mut files = self.files.lock().unwrap();
        for w in &self.wallets {
            let Ok(entries) = std::fs::read_dir(self.path(w)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if let Ok(bytes) = std::fs::read(&path) {
                    files.insert((path, bytes), ());
                }
            }
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(YKT);
        command
            .args(args)
            .env("RUST_LOG", "trace")
            .env("YKT_WALLET_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// `ykt ARGS` with the passphrase and `RUST_LOG=trace`; its output is kept and the wallet
    /// files snapshotted.
    fn run(&self, args: &[&str]) -> Output {
        let child = self.command(args).spawn().unwrap();
        let out = wait_output(child, &format!("ykt {args:?}"), TIMEOUT);
        self.keep(
            &format!("ykt {args:?}"),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        );
        self.snapshot();
        out
    }

    /// `ykt ARGS`, which must succeed: its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ykt {args:?}: {:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ykt wallet COMMAND --dir WDIR --se-state SE ARGS`, which must succeed.
    fn wallet_se(&self, command: &str, wdir: &str, se: &str, args: &[&str]) -> String {
        let (wdir, se) = (self.p(wdir), self.p(se));
        let mut all = vec!["wallet", command, "--dir", &wdir, "--se-state", &se];
        all.extend_from_slice(args);
        self.ok(&all)
    }

    fn enrol(&self, wdir: &str, tsm: &Tsm) {
        let wdir = self.p(wdir);
        let mut args = vec!["wallet", "enrol", "--dir", &wdir];
        args.extend(tsm_args(&tsm.url, Some(&tsm.pin)));
        let out = self.ok(&args);
        assert!(out.contains("device enrolled"), "{out}");
    }

    fn grant(&self, wdir: &str, app: &str, scope: &str) -> String {
        let out = self.ok(&[
            "wallet",
            "api",
            "grant",
            "--dir",
            &self.p(wdir),
            "--app",
            app,
            "--scope",
            scope,
        ]);
        out.trim().to_string()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for a child that was told to stop; gives its output.
fn finish(
    mut child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: JoinHandle<String>,
) -> String {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = stdout.map(|t| t.join().unwrap()).unwrap_or_default();
    format!("{out}{}", stderr.join().unwrap())
}

// ---- the TSM -----------------------------------------------------------------------------------

/// `ykt tsm serve` as a child process, killed on drop.
struct Tsm {
    child: Option<Child>,
    url: String,
    /// The SPKI pin of its TLS key.
    pin: String,
    /// A client pinned to it.
    client: TsmClient,
}

impl Tsm {
    fn start(s: &Setup, listen: &str) -> Self {
        let db = format!("sqlite://{}?mode=rwc", s.p("tsm.db"));
        let served = serve_tsm(listen, &db, &s.p("tsm"), &[]);
        let client = served.client();
        Self {
            child: Some(served.child),
            url: served.url,
            pin: served.pin,
            client,
        }
    }

    fn addr(&self) -> String {
        self.url.trim_start_matches("https://").to_string()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The `ApduResultReq` requests served so far, from `/metrics`.
    fn apdu_results(&self) -> Option<u64> {
        let (_, body) = tsm_get(&self.client, "/metrics").ok()?;
        Some(apdu_results(&body))
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Tsm {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---- the local API server ----------------------------------------------------------------------

/// `ykt wallet api serve` as a child process.
struct Api {
    child: Option<Child>,
    socket: String,
    http: String,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Api {
    fn start(s: &Setup, wdir: &str, se: &str, extra: &[&str]) -> Self {
        let socket = s.p(&format!("{wdir}.sock"));
        let (w, se) = (s.p(wdir), s.p(se));
        let mut args = vec!["wallet", "api", "serve", "--dir", &w, "--se-state", &se];
        args.extend(["--socket", &socket, "--http-port", "0"]);
        args.extend_from_slice(extra);
        let mut child = s.command(&args).spawn().unwrap();
        let stderr = Some(drain(child.stderr.take().unwrap()));
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        lines.read_line(&mut first).unwrap();
        let mut second = String::new();
        lines.read_line(&mut second).unwrap();
        let stdout = Some(drain(lines));
        assert!(first.trim().ends_with(&socket), "{first}");
        let http = second
            .trim()
            .split("listening on http://")
            .nth(1)
            .unwrap_or_else(|| panic!("no HTTP address: {second}"))
            .to_string();
        let api = Self {
            child: Some(child),
            socket,
            http,
            stdout,
            stderr,
        };
        let start = Instant::now();
        while api.call("/v1/health", None, &[]).0 != 200 {
            assert!(start.elapsed() < TIMEOUT, "no server on {}", api.socket);
            std::thread::sleep(Duration::from_millis(50));
        }
        api
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// `curl --unix-socket` of `path` with `token` and more curl arguments: status and body.
    fn call(&self, path: &str, token: Option<&str>, more: &[&str]) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "--max-time", "30", "--unix-socket", &self.socket])
            .args(["-w", "\n%{http_code}"]);
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        cmd.args(more);
        let out = cmd.arg(format!("http://localhost{path}")).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// `curl` over loopback HTTP with the `Host` header `host`: status and body.
    fn call_http(&self, host: &str, path: &str, token: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "30", "-w", "\n%{http_code}"])
            .args(["-H", &format!("Host: {host}")])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .arg(format!("http://{}{path}", self.http))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// SIGTERM; gives everything it printed.
    fn stop(mut self) -> String {
        let child = self.child.take().unwrap();
        sigterm(&child);
        finish(child, self.stdout.take(), self.stderr.take().unwrap())
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `/proc/<pid>/limits`' core-file limits (soft, hard).
fn core_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_else(|| panic!("{limits}"));
    let mut fields = line.split_whitespace().skip(4);
    (
        fields.next().unwrap().to_string(),
        fields.next().unwrap().to_string(),
    )
}

// ---- the SE and the sealed state, read the way only a test may --------------------------------

struct Applets;

impl AppletFactory for Applets {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        ykt_purse::factory::PurseAppletFactory
            .create(kind, aid, params)
            .or_else(|| ykt_gp::IsdFactory.create(kind, aid, params))
    }
}

/// The MAC2 of the last load on the simulated SE in `se` (GET TRANSACTION PROVE, e-purse.md
/// §4.8), whichever counter convention the purse uses.
fn last_mac2(se: &Path) -> [u8; 4] {
    let bytes = std::fs::read(se).unwrap();
    let mut card = Card::load_state(
        &bytes,
        Atr::default_t1(),
        Box::new(SeededRandom::new(7)),
        &Applets,
    )
    .unwrap();
    card.power_on();
    let mut select = hex::decode("00A4040008").unwrap();
    select.extend_from_slice(&ykt_purse::EP_AID);
    let r = card.transmit(&select).unwrap();
    assert_eq!(&r[r.len() - 2..], [0x90, 0x00], "SELECT purse");
    for counter in 0u16..=8 {
        let mut prove = hex::decode("805A000202").unwrap();
        prove.extend_from_slice(&counter.to_be_bytes());
        prove.push(0x08);
        let r = card.transmit(&prove).unwrap();
        if r.len() == 10 && r[8..] == [0x90, 0x00] {
            return r[..4].try_into().unwrap();
        }
    }
    panic!("no load proof on {}", se.display());
}

/// The device key's scalar in the sealed state of `wdir`.
fn device_scalar(s: &Setup, wdir: &str) -> Vec<u8> {
    let bytes = std::fs::read(s.path(wdir).join("wallet.sealed")).unwrap();
    let (_, records) = ykt_wallet::SealKey::open(PASSPHRASE.as_bytes(), &bytes).unwrap();
    let record = records
        .iter()
        .find(|r| r.kind == ykt_wallet::state::record_type::DEVICE_KEY)
        .unwrap();
    assert_eq!(record.data.len(), 32);
    record.data.to_vec()
}

// ---- canary forms ------------------------------------------------------------------------------

/// The decimal digits of `bytes` as one big-endian number.
fn decimal(bytes: &[u8]) -> String {
    let mut digits = vec![0u8]; // little-endian decimal digits
    for &b in bytes {
        let mut carry = u32::from(b);
        for d in digits.iter_mut() {
            let v = u32::from(*d) * 256 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 (RFC 4648 §4, or §5 with `URL_SAFE`) of `data`, with padding.
fn base64(data: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The base64 characters that `bytes` alone determine when encoded after `shift` other bytes
/// (standard and URL-safe alphabets).
fn base64_at(bytes: &[u8], shift: usize) -> Vec<String> {
    let mut data = vec![0u8; shift];
    data.extend_from_slice(bytes);
    let first = (8 * shift).div_ceil(6);
    let last = 8 * (shift + bytes.len()) / 6;
    [base64(&data, STANDARD), base64(&data, URL_SAFE)]
        .into_iter()
        .map(|e| e[first..last].to_string())
        .collect()
}

/// The forms of a byte canary looked for in text: hex in either case, decimal (when at least 8
/// digits: shorter numbers occur by chance), base64 at each alignment whose fixed part has at
/// least 6 characters (and the aligned form of a short canary).
fn byte_forms(bytes: &[u8]) -> Vec<String> {
    let mut forms = vec![hex::encode(bytes), hex::encode_upper(bytes)];
    let dec = decimal(bytes);
    if dec.len() >= 8 {
        forms.push(dec);
    }
    for shift in 0..3 {
        for b in base64_at(bytes, shift) {
            if b.len() >= 6 || (shift == 0 && b.len() >= 4) {
                forms.push(b);
            }
        }
    }
    forms
}

/// A named canary: its text forms, and the raw byte strings looked for in files.
struct Canary {
    name: String,
    text: Vec<String>,
    raw: Vec<Vec<u8>>,
}

fn canaries(seids: &[[u8; 10]], scalars: &[Vec<u8>], mac2s: &[[u8; 4]]) -> Vec<Canary> {
    let card_bcd = hex::decode(FULL_CARD_NO).unwrap();
    let mut all = vec![
        Canary {
            name: "card number".into(),
            text: {
                let mut t = byte_forms(&card_bcd);
                t.extend(byte_forms(FULL_CARD_NO.as_bytes()));
                // The 16 digits after the prefix: a number shown without its issuer prefix.
                t.push(FULL_CARD_NO[4..].to_string());
                t
            },
            raw: vec![card_bcd.clone(), FULL_CARD_NO.as_bytes().to_vec()],
        },
        Canary {
            name: "passphrase".into(),
            text: {
                let mut t = byte_forms(PASSPHRASE.as_bytes());
                t.push(PASSPHRASE.to_string());
                t
            },
            raw: vec![PASSPHRASE.as_bytes().to_vec()],
        },
        Canary {
            name: "PIN".into(),
            // hex (digits only), decimal of the 3 bytes, base64 aligned.
            text: vec![
                hex::encode(PIN),
                decimal(&PIN),
                base64_at(&PIN, 0)[0].clone(),
            ],
            // Raw PIN bytes are looked for only in files that are not sealed (3 bytes occur in
            // ciphertext by chance).
            raw: vec![],
        },
    ];
    for (i, seid) in seids.iter().enumerate() {
        all.push(Canary {
            name: format!("SEID {}", i + 1),
            text: byte_forms(seid),
            raw: vec![seid.to_vec()],
        });
    }
    for (i, scalar) in scalars.iter().enumerate() {
        all.push(Canary {
            name: format!("device key {}", i + 1),
            text: byte_forms(scalar),
            raw: vec![scalar.clone()],
        });
    }
    for (i, mac2) in mac2s.iter().enumerate() {
        all.push(Canary {
            name: format!("MAC2 of load {}", i + 1),
            text: byte_forms(mac2),
            raw: vec![mac2.to_vec()],
        });
    }
    all
}

/// `text` without the fractional seconds of log timestamps (`…T08:01:02.123456Z`), which are
/// six random digits each and would match short decimal canaries by chance.
fn without_timestamps(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('.') {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let digits = tail[1..].bytes().take_while(u8::is_ascii_digit).count();
        let is_time = head.len() >= 8
            && head.as_bytes()[head.len() - 3] == b':'
            && tail[1 + digits..].starts_with('Z');
        if is_time && digits > 0 {
            rest = &tail[1 + digits..];
        } else {
            out.push('.');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that no kept output and no wallet file version holds any canary in any form.
fn assert_no_canary(s: &Setup, canaries: &[Canary]) {
    let outputs = s.outputs.lock().unwrap();
    assert!(!outputs.is_empty());
    for (what, text) in outputs.iter() {
        assert!(!text.contains("panicked"), "{what} panicked: {text}");
        let clean = without_timestamps(text);
        for c in canaries {
            for form in &c.text {
                assert!(
                    !clean.contains(form.as_str()),
                    "{what}: the {} as {form:?}:\n{text}",
                    c.name
                );
            }
        }
    }
    let files = s.files.lock().unwrap();
    assert!(!files.is_empty());
    for (path, bytes) in files.keys() {
        let sealed = bytes.starts_with(ykt_wallet::seal::MAGIC);
        for c in canaries {
            for form in c
                .text
                .iter()
                .map(|t| t.as_bytes())
                .chain(c.raw.iter().map(Vec::as_slice))
            {
                assert!(
                    !contains(bytes, form),
                    "{} holds the {} ({:?})",
                    path.display(),
                    c.name,
                    String::from_utf8_lossy(form)
                );
            }
        }
        if !sealed {
            assert!(!contains(bytes, &PIN), "{} holds the PIN", path.display());
        }
    }
}

// ---- the tests ---------------------------------------------------------------------------------

/// The transfer code in `transfer-out`'s output.
fn transfer_code(out: &str) -> String {
    out.split("--code ")
        .nth(1)
        .unwrap_or_else(|| panic!("no transfer code in {out:?}"))
        .trim()
        .to_string()
}

/// client.md §6.8: every flow with trace logging, and no canary anywhere.
#[test]
fn no_canary_reaches_an_output_or_a_wallet_file_in_any_flow() {
    let s = Setup::new("canary");
    let mut tsm = Tsm::start(&s, "127.0.0.1:0");
    let listen = tsm.addr();
    let mut mac2s = Vec::new();

    // Enrol and open card.
    s.enrol("w1", &tsm);
    let out = s.wallet_se("open", "w1", "se1.card", &[]);
    assert!(out.contains(MASKED_CARD_NO), "{out}");
    // Top-up.
    let out = s.wallet_se("topup", "w1", "se1.card", &["--amount", "5000"]);
    assert!(out.contains("balance ¥50.00"), "{out}");
    mac2s.push(last_mac2(&s.path("se1.card")));

    // A torn top-up: the TSM killed while the load runs, restarted, the wallet resumes.
    let before = tsm.apdu_results().unwrap();
    let topup = s
        .command(&[
            "wallet",
            "topup",
            "--dir",
            &s.p("w1"),
            "--se-state",
            &s.p("se1.card"),
            "--amount",
            "300",
        ])
        .spawn()
        .unwrap();
    let start = Instant::now();
    while tsm.apdu_results().is_some_and(|n| n <= before) {
        assert!(start.elapsed() < TIMEOUT, "the top-up did not start");
        std::thread::sleep(Duration::from_millis(2));
    }
    tsm.kill9();
    let out = wait_output(topup, "torn top-up", TIMEOUT);
    s.keep(
        "torn top-up",
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error: E"), "a user code: {err}");
    }
    s.snapshot();
    let mut tsm = Tsm::start(&s, &listen);
    s.wallet_se("resume", "w1", "se1.card", &[]);
    let out = s.wallet_se("balance", "w1", "se1.card", &[]);
    // The load had started (an APDU result served), so the order was paid: once resumed, it
    // is loaded exactly once.
    assert!(out.contains("balance ¥53.00"), "{out}");
    mac2s.push(last_mac2(&s.path("se1.card")));
    s.wallet_se("records", "w1", "se1.card", &[]);
    s.ok(&["wallet", "cards", "--dir", &s.p("w1")]);

    // The local API: misuse, then proper calls and a top-up the user confirms.
    let token = s.grant(
        "w1",
        "app.canary",
        "cards:read,balance:read,records:read,topup:initiate",
    );
    let narrow = s.grant("w1", "app.narrow", "cards:read");
    let api = Api::start(&s, "w1", "se1.card", &[]);
    // client.md §6.11: the serving wallet is hardened.
    assert_eq!(core_limit(api.pid()), ("0".into(), "0".into()));
    assert_eq!(core_limit(tsm.pid()), ("0".into(), "0".into()));
    let mut answers = Vec::new();
    let mut bad = token.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == 'A' { 'B' } else { 'A' });
    for (path, tok, more, status) in [
        ("/v1/cards", None, vec![], 401),
        ("/v1/cards", Some(bad.as_str()), vec![], 401),
        ("/v1/cards", Some("not-a-token"), vec![], 401),
        (
            "/v1/cards",
            Some(token.as_str()),
            vec!["-H", "Origin: https://evil.example"],
            403,
        ),
        ("/v1/cards", Some(token.as_str()), vec![], 200),
        ("/v1/nowhere", Some(token.as_str()), vec![], 404),
    ] {
        let (code, body) = api.call(path, tok, &more);
        assert_eq!(code, status, "{path}: {body}");
        answers.push(body);
    }
    let (_, cards) = api.call("/v1/cards", Some(&token), &[]);
    let cards: serde_json::Value = serde_json::from_str(&cards).unwrap();
    let id = cards["cards"][0]["id"].as_str().unwrap().to_string();
    let balance_path = format!("/v1/cards/{id}/balance");
    let (code, body) = api.call(&balance_path, Some(&narrow), &[]);
    assert_eq!(code, 403, "{body}");
    answers.push(body);
    let (code, body) = api.call_http("evil.example", &balance_path, &token);
    assert_eq!(code, 403, "{body}");
    answers.push(body);
    for path in [balance_path.clone(), format!("/v1/cards/{id}/records")] {
        let (code, body) = api.call(&path, Some(&token), &[]);
        assert_eq!(code, 200, "{path}: {body}");
        answers.push(body);
    }
    let body = format!("{{\"card\":\"{id}\",\"amount_fen\":200}}");
    let (code, answer) = api.call(
        "/v1/topups",
        Some(&token),
        &["-H", "Content-Type: application/json", "--data", &body],
    );
    assert_eq!(code, 202, "{answer}");
    let request: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let request_id = request["id"].as_str().unwrap().to_string();
    answers.push(answer);
    // A burst: the rate limit answers 429.
    let mut limited = 0;
    for _ in 0..15 {
        let (code, body) = api.call("/v1/cards", Some(&narrow), &[]);
        limited += usize::from(code == 429);
        answers.push(body);
    }
    assert!(limited > 0, "no 429 in a burst of 15");
    // The user confirms the app's request: a top-up.
    let out = s.ok(&[
        "wallet",
        "api",
        "confirm",
        "--dir",
        &s.p("w1"),
        "--se-state",
        &s.p("se1.card"),
        "--id",
        &request_id,
    ]);
    assert!(out.contains("confirmed"), "{out}");
    mac2s.push(last_mac2(&s.path("se1.card")));
    let served = api.stop();
    assert!(
        served.contains("process hardened") && served.contains("dumpable=0"),
        "no hardening report: {served}"
    );
    s.keep("the local API server", served);
    s.keep("the local API's answers", answers.join("\n"));
    s.snapshot();

    // Transfer to a second phone, and return there.
    let out = s.wallet_se("transfer-out", "w1", "se1.card", &[]);
    let code = transfer_code(&out);
    s.enrol("w2", &tsm);
    let out = s.wallet_se(
        "transfer-in",
        "w2",
        "se2.card",
        &["--se-serial", "2", "--code", &code],
    );
    assert!(out.contains(MASKED_CARD_NO), "{out}");
    let out = s.wallet_se("return", "w2", "se2.card", &[]);
    assert!(out.contains("refunded"), "{out}");
    s.ok(&["wallet", "cards", "--dir", &s.p("w2")]);
    tsm.kill9();

    // The canaries known only now: the device keys (from the sealed states) and the SEIDs.
    let scalars = vec![device_scalar(&s, "w1"), device_scalar(&s, "w2")];
    let seids = [1u8, 2].map(|serial| ykt_tsm::testing::seid_of_serial(&[serial]).unwrap().0);
    let all = canaries(&seids, &scalars, &mac2s);
    // The scan finds what it looks for: each canary's forms are in a text made of them.
    let probe = all
        .iter()
        .flat_map(|c| c.text.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    for c in &all {
        assert!(!c.text.is_empty(), "{}", c.name);
        assert!(c.text.iter().all(|f| probe.contains(f.as_str())));
    }
    assert_eq!(decimal(&[0x01, 0x00]), "256");
    // RFC 4648 §10 vectors.
    for (text, b64) in [
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(text.as_bytes(), STANDARD), b64);
    }
    assert_eq!(decimal(&PIN), "1193046");
    assert_no_canary(&s, &all);
    let outputs = s.outputs.lock().unwrap();
    assert!(
        outputs.iter().any(|(_, t)| t.contains(MASKED_CARD_NO)),
        "the masked number is shown"
    );
    assert!(
        outputs
            .iter()
            .filter(|(_, t)| t.contains(" DEBUG ") && t.contains("process hardened"))
            .count()
            > 10,
        "logging below info was on in every command"
    );
}

/// client.md §6.10 and §6.5: a serving wallet locks when idle (503 "locked"), a restart with
/// the passphrase unlocks it; purge refuses while the server runs, asks first, warns of the
/// active card, and leaves nothing of the wallet.
#[test]
fn the_served_wallet_locks_when_idle_and_purge_leaves_nothing() {
    let s = Setup::new("session");
    let tsm = Tsm::start(&s, "127.0.0.1:0");
    s.enrol("w1", &tsm);
    // This wallet keeps its simulated SE in its own directory: purge deletes it too.
    s.wallet_se("open", "w1", "w1/se.card", &[]);
    let token = s.grant("w1", "app.idle", "cards:read");

    // client.md §6.8: a panic prints a fixed text and a code, nothing of the panic itself.
    // Printing to a closed stdout panics in Rust's `println!` (EPIPE); the reader is closed
    // before the command has derived its key.
    let mut child = s
        .command(&["wallet", "cards", "--dir", &s.p("w1")])
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = wait_output(child, "wallet cards to a closed pipe", TIMEOUT);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(101), "{err}");
    assert!(err.contains(PANIC_TEXT), "{err}");
    assert!(!err.contains("panicked") && !err.contains("stdio"), "{err}");

    let api = Api::start(&s, "w1", "w1/se.card", &["--idle-lock", "2s"]);
    let (code, body) = api.call("/v1/cards", Some(&token), &[]);
    assert_eq!(code, 200, "{body}");
    // Purge refuses while the server runs, and deletes nothing.
    let out = s.run(&["wallet", "purge", "--dir", &s.p("w1"), "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("another ykt process"), "{err}");
    assert!(s.path("w1").join("wallet.sealed").exists());
    // Idle past the lock: every call is refused as locked, health still answers.
    std::thread::sleep(Duration::from_millis(3_500));
    let (code, body) = api.call("/v1/cards", Some(&token), &[]);
    assert_eq!((code, body.as_str()), (503, "{\"error\":\"locked\"}"));
    assert_eq!(api.call("/v1/health", None, &[]).0, 200);
    let served = api.stop();
    assert!(served.contains("wallet locked"), "{served}");
    s.keep("the local API server", served);
    // The way to unlock: start the server again with the passphrase.
    let api = Api::start(&s, "w1", "w1/se.card", &[]);
    let (code, body) = api.call("/v1/cards", Some(&token), &[]);
    assert_eq!(code, 200, "{body}");
    s.keep("the local API server", api.stop());
    // The idle lock cannot be set beyond 5 minutes.
    let out = s.run(&[
        "wallet",
        "api",
        "serve",
        "--dir",
        &s.p("w1"),
        "--se-state",
        &s.p("w1/se.card"),
        "--idle-lock",
        "6m",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--idle-lock"));

    // Purge without --yes asks; no answer (stdin closed) purges nothing.
    let out = s.run(&["wallet", "purge", "--dir", &s.p("w1")]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("not purged"), "{err}");
    assert!(
        err.contains("ACTIVE") && err.contains("ykt wallet return"),
        "{err}"
    );
    assert!(err.contains(MASKED_CARD_NO), "{err}");
    for name in ["wallet.sealed", "tsm.url", "api.sealed", "se.card"] {
        assert!(s.path("w1").join(name).exists(), "{name}");
    }
    // A file of the user's own in the directory is left alone.
    std::fs::write(s.path("w1").join("notes.txt"), "mine").unwrap();
    let out = s.ok(&["wallet", "purge", "--dir", &s.p("w1"), "--yes"]);
    assert!(out.contains("wallet purged"), "{out}");
    let left: Vec<String> = std::fs::read_dir(s.path("w1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["notes.txt"]);
    std::fs::remove_file(s.path("w1").join("notes.txt")).unwrap();
    // The same again on an empty directory: nothing to purge; then the directory goes.
    let out = s.run(&["wallet", "purge", "--dir", &s.p("w1"), "--yes"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no wallet"));
    // After purge the wallet is gone for every command.
    let out = s.run(&[
        "wallet",
        "balance",
        "--dir",
        &s.p("w1"),
        "--se-state",
        &s.p("se-elsewhere.card"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("there is no wallet"), "{err}");
    assert!(!s.path("se-elsewhere.card").exists());
    let out = s.run(&["wallet", "cards", "--dir", &s.p("w1")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no wallet"));
    // An enrolled wallet with no card purges with --yes, and the directory goes with it.
    s.enrol("w2", &tsm);
    let out = s.ok(&["wallet", "purge", "--dir", &s.p("w2"), "--yes"]);
    assert!(out.contains("removed"), "{out}");
    assert!(!s.path("w2").exists());
}
