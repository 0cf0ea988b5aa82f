//! A production key hierarchy end to end, as an operator runs it: `ykt tsm init` (passphrase
//! rules, no overwrite, what it prints), card production from the ISD master file (`ykt se
//! produce`), `ykt tsm serve` without `--test-keys` (both roles in one server, and the SEI-TSM
//! and SP-TSM as two servers), a card opened and topped up through `ykt wallet`; a wrong
//! passphrase, a missing hierarchy and mixing with the test keys refused with nothing written;
//! an SE keyed from the PUBLIC test master refused by the production TSM (tsm-gp.md §7 code
//! 4002, the ISD secure channel).

use std::io::BufRead as _;
use std::process::{Child, Command, Output};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::child::{
    Scratch, WALLET_PASSPHRASE as WALLET_PASS, drain, run, served_address, succeeded, tsm_args,
    tsm_client, ykt,
};

const KMS_PASS: &str = "kms-Passphrase-for-tests-9";
const MASKED_CARD_NO: &str = "310410**********0001";
const TIMEOUT: Duration = Duration::from_secs(60);

/// The scratch directory of one test: key directories, ISD master files, databases, cards
/// and wallets.
struct Setup(Scratch);

impl std::ops::Deref for Setup {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

impl Setup {
    fn new(name: &str) -> Self {
        Self(Scratch::new("prod", name))
    }

    /// `ykt ARGS` with `$YKT_KMS_PASSPHRASE` = `kms_pass` (none: unset) and the wallets'
    /// passphrase.
    fn run(&self, kms_pass: Option<&str>, args: &[&str]) -> Output {
        let mut command = ykt(args);
        command.env("YKT_WALLET_PASSPHRASE", WALLET_PASS);
        match kms_pass {
            Some(p) => command.env("YKT_KMS_PASSPHRASE", p),
            None => command.env_remove("YKT_KMS_PASSPHRASE"),
        };
        run(&mut command, TIMEOUT)
    }

    fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(Some(KMS_PASS), args))
    }

    /// Runs `ykt ARGS`, which must fail with exit code 1 and no panic; gives its stderr.
    fn fails(&self, kms_pass: Option<&str>, args: &[&str]) -> String {
        let out = self.run(kms_pass, args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "ykt {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

    /// The names and bytes of every file under `dir` (sorted), to show nothing changed.
    fn snapshot(&self, dir: &str) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(self.path(dir))
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap().to_string();
                (name, std::fs::read(&path).unwrap())
            })
            .collect();
        files.sort();
        files
    }
}

/// A `ykt tsm serve` child on a production hierarchy, killed on drop.
struct Tsm {
    child: Child,
    url: String,
    /// The SPKI pin of its TLS key.
    pin: String,
    stderr: Option<JoinHandle<String>>,
}

impl Tsm {
    /// `ykt tsm serve --test-payments --listen 127.0.0.1:0 --db sqlite://… --dir DIR EXTRA…`
    /// with `$YKT_KMS_PASSPHRASE`; waits for the address it prints.
    fn start(s: &Setup, dir: &str, db: &str, extra: &[&str]) -> Self {
        let mut child = ykt(&["tsm", "serve", "--test-payments", "--listen", "127.0.0.1:0"])
            .args(["--db", &s.sqlite(db), "--dir", &s.p(dir)])
            .args(extra)
            .env("YKT_KMS_PASSPHRASE", KMS_PASS)
            .spawn()
            .unwrap();
        let stderr = Some(drain(child.stderr.take().unwrap()));
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        drain(reader);
        let mut tsm = Self {
            child,
            url: String::new(),
            pin: String::new(),
            stderr,
        };
        match served_address(&first) {
            Some((url, Some(pin))) => (tsm.url, tsm.pin) = (url, pin),
            _ => {
                let _ = tsm.child.kill();
                let _ = tsm.child.wait();
                panic!("no address: {first:?}\n{}", tsm.stderr_text());
            }
        }
        tsm
    }

    /// `wallet enrol --dir WDIR --tsm URL --tsm-pin PIN`.
    fn enrol_args<'a>(&'a self, wdir: &'a str) -> Vec<&'a str> {
        let mut args = vec!["wallet", "enrol", "--dir", wdir];
        args.extend(tsm_args(&self.url, Some(&self.pin)));
        args
    }

    fn stderr_text(&mut self) -> String {
        self.stderr
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default()
    }

    /// Stops it with SIGTERM; gives its stderr.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let exit = self.child.wait().unwrap();
        let err = self.stderr_text();
        assert!(exit.success(), "{exit:?}: {err}");
        err
    }
}

impl Drop for Tsm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hex after `label` in `text` (up to the next space or `)`).
fn hex_after(text: &str, label: &str) -> String {
    let rest = text
        .split(label)
        .nth(1)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"));
    let hex: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert!(!hex.is_empty(), "{label:?} in {text}");
    hex
}

/// The keys of an ISD master file, and its check values.
fn isd_master_file(s: &Setup, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(s.path(name)).unwrap()).unwrap()
}

fn aes_kcv(key_hex: &str) -> String {
    let key = ykt_crypto::AesKey::from_slice(&hex::decode(key_hex).unwrap()).unwrap();
    hex::encode_upper(&key.encrypt_block(&[1u8; 16])[..3])
}

#[test]
fn init_checks_its_passphrase_prints_no_secret_and_never_overwrites() {
    let s = Setup::new("init");
    let (dir, isd) = (s.p("tsm"), s.p("isd.json"));
    let init = ["tsm", "init", "--dir", &dir, "--new-isd-master", &isd];
    // No passphrase, an empty one, a short one: refused, nothing made.
    let err = s.fails(None, &init);
    assert!(err.contains("YKT_KMS_PASSPHRASE"), "{err}");
    assert!(err.contains("--passphrase-file"), "{err}");
    let err = s.fails(Some(""), &init);
    assert!(err.contains("empty"), "{err}");
    let err = s.fails(Some("short-pass"), &init);
    assert!(err.contains("too short"), "{err}");
    // The SEI role needs card production's ISD master.
    let err = s.fails(Some(KMS_PASS), &["tsm", "init", "--dir", &dir]);
    assert!(err.contains("--new-isd-master"), "{err}");
    assert!(!s.path("tsm").exists() && !s.path("isd.json").exists());

    // From a passphrase file.
    std::fs::write(s.path("pass"), format!("{KMS_PASS}\n")).unwrap();
    let pass_file = s.p("pass");
    let mut with_file = init.to_vec();
    with_file.extend(["--passphrase-file", &pass_file]);
    let out = s.run(None, &with_file);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("SE maker's secret"), "{stderr}");

    // What was made: the file's keys have the check values init printed; no key value and no
    // passphrase in the output.
    let file = isd_master_file(&s, "isd.json");
    assert_eq!(file["format"], "ykt-isd-master/1");
    assert_eq!(file["isd_master"]["kvn"], "30");
    assert!(stdout.contains("KVN 30"), "{stdout}");
    for part in ["enc", "mac", "dek"] {
        let key = file["isd_master"][part].as_str().unwrap();
        let kcv = aes_kcv(key);
        assert_eq!(file["isd_master"]["kcv"][part], kcv.as_str());
        assert!(stdout.contains(&format!("{part} {kcv}")), "{stdout}");
        assert!(!stdout.to_uppercase().contains(key), "{part} key printed");
    }
    let receipt = file["receipt_key"]["key"].as_str().unwrap();
    assert!(
        stdout.contains(&format!("KCV {}", aes_kcv(receipt))),
        "{stdout}"
    );
    assert!(!stdout.to_uppercase().contains(receipt));
    assert!(!stdout.contains(KMS_PASS) && !stderr.contains(KMS_PASS));
    // The token key init printed is the one the file carries.
    assert_eq!(
        hex_after(&stdout, "token signer sei/token (SM2) public key"),
        file["token_key"].as_str().unwrap().to_lowercase()
    );
    hex_after(&stdout, "transport key sp/transport (SM2) public key");
    use std::os::unix::fs::PermissionsExt as _;
    for f in ["sei.kms", "sp.kms", "tsm.key", "hierarchy.json"] {
        let mode = std::fs::metadata(s.path("tsm").join(f))
            .unwrap()
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o600, "{f}");
    }
    let mode = std::fs::metadata(s.path("isd.json")).unwrap().permissions();
    assert_eq!(mode.mode() & 0o777, 0o600);
    // The key files hold no key of the ISD master file in clear.
    for f in ["sei.kms", "sp.kms"] {
        let bytes = std::fs::read(s.path("tsm").join(f)).unwrap();
        let key = hex::decode(file["isd_master"]["enc"].as_str().unwrap()).unwrap();
        assert!(!bytes.windows(16).any(|w| w == key.as_slice()), "{f}");
    }

    // A second init of the same directory is refused and touches nothing.
    let before = s.snapshot("tsm");
    let isd_before = std::fs::read(s.path("isd.json")).unwrap();
    let err = s.fails(
        Some(KMS_PASS),
        &[
            "tsm",
            "init",
            "--dir",
            &dir,
            "--new-isd-master",
            &s.p("isd2.json"),
        ],
    );
    assert!(err.contains("holds a key hierarchy already"), "{err}");
    assert_eq!(s.snapshot("tsm"), before);
    assert!(!s.path("isd2.json").exists());
    // An existing ISD master file is not overwritten either.
    let err = s.fails(
        Some(KMS_PASS),
        &[
            "tsm",
            "init",
            "--dir",
            &s.p("tsm2"),
            "--new-isd-master",
            &isd,
        ],
    );
    assert!(err.contains("exists already"), "{err}");
    assert_eq!(std::fs::read(s.path("isd.json")).unwrap(), isd_before);
    assert!(!s.path("tsm2").exists());

    // A directory of the test hierarchy is not turned into a production one.
    std::fs::create_dir_all(s.path("testdir")).unwrap();
    std::fs::write(s.path("testdir").join("kms.pass"), "00").unwrap();
    let err = s.fails(
        Some(KMS_PASS),
        &["tsm", "init", "--dir", &s.p("testdir"), "--role", "sp"],
    );
    assert!(err.contains("kms.pass"), "{err}");

    // A damaged ISD master file is refused by its check values.
    let text = std::fs::read_to_string(s.path("isd.json")).unwrap();
    let enc = file["isd_master"]["enc"].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        if enc.starts_with('0') { "1" } else { "0" },
        &enc[1..]
    );
    std::fs::write(s.path("bad.json"), text.replace(enc, &flipped)).unwrap();
    let err = s.fails(
        Some(KMS_PASS),
        &[
            "se",
            "produce",
            "--isd-master",
            &s.p("bad.json"),
            "--state",
            &s.p("se.card"),
        ],
    );
    assert!(err.contains("check value of isd_master.enc"), "{err}");
    assert!(!err.contains(&flipped[1..]), "{err}");
    assert!(!s.path("se.card").exists());
}

#[test]
fn a_production_tsm_opens_a_card_on_a_produced_se_and_refuses_a_test_keyed_one() {
    let s = Setup::new("both");
    let (dir, isd) = (s.p("tsm"), s.p("isd.json"));
    // Serving before init: a clear error, nothing made.
    let err = s.fails(
        Some(KMS_PASS),
        &["tsm", "serve", "--dir", &dir, "--listen", "127.0.0.1:0"],
    );
    assert!(err.contains("ykt tsm init"), "{err}");
    assert!(!s.path("tsm").exists());

    s.ok(&[
        "tsm",
        "init",
        "--dir",
        &dir,
        "--new-isd-master",
        &isd,
        "--purse-algorithm",
        "sm4",
    ]);
    let out = s.ok(&[
        "se",
        "produce",
        "--isd-master",
        &isd,
        "--serial",
        "5",
        "--state",
        &s.p("se.card"),
    ]);
    assert!(out.contains("serial 5"), "{out}");
    let err = s.fails(
        Some(KMS_PASS),
        &[
            "se",
            "produce",
            "--isd-master",
            &isd,
            "--state",
            &s.p("se.card"),
        ],
    );
    assert!(err.contains("exists already"), "{err}");

    // A wrong passphrase, none, or the test keys on this directory: refused, nothing written.
    let before = s.snapshot("tsm");
    let serve = [
        "tsm",
        "serve",
        "--dir",
        &dir,
        "--listen",
        "127.0.0.1:0",
        "--db",
    ];
    let db = s.sqlite("tsm.db");
    let mut args = serve.to_vec();
    args.push(&db);
    let err = s.fails(Some("not-the-kms-passphrase"), &args);
    assert!(err.contains("wrong passphrase"), "{err}");
    let err = s.fails(None, &args);
    assert!(err.contains("YKT_KMS_PASSPHRASE"), "{err}");
    let mut test = args.clone();
    test.push("--test-keys");
    let err = s.fails(Some(KMS_PASS), &test);
    assert!(err.contains("do not mix"), "{err}");
    assert_eq!(
        s.snapshot("tsm"),
        before,
        "a refused start wrote to the directory"
    );
    assert!(!s.path("tsm.db").exists());

    let tsm = Tsm::start(&s, "tsm", "tsm.db", &[]);
    s.ok(&tsm.enrol_args(&s.p("w")));
    let wallet = |w: &str, se: &str, cmd: &[&str]| {
        let (w, se) = (s.p(w), s.p(se));
        let mut all = vec!["wallet", cmd[0], "--dir", &w, "--se-state", &se];
        all.extend_from_slice(&cmd[1..]);
        s.run(Some(KMS_PASS), &all)
    };
    let out = wallet("w", "se.card", &["open"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("card {MASKED_CARD_NO} opened (ACTIVE)")),
        "{text}"
    );
    let out = wallet("w", "se.card", &["topup", "--amount", "300"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("balance ¥3.00"), "{text}");

    // An SE keyed from the PUBLIC test ISD master (the wallet makes one for a new state
    // file): the production TSM's channel to its card manager fails, code 4002.
    s.ok(&tsm.enrol_args(&s.p("w2")));
    let out = wallet("w2", "test.card", &["open"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "a test-keyed SE was opened: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("E3006"), "the wallet does not say why: {err}");
    let cards = s.ok(&["wallet", "cards", "--dir", &s.p("w2")]);
    assert!(!cards.contains("ACTIVE"), "{cards}");

    // The admin API: one active card.
    let token = std::fs::read_to_string(s.path("tsm").join("admin.token")).unwrap();
    let cards = tsm_client(&tsm.url, Some(&tsm.pin))
        .admin_all_cards(token.trim())
        .unwrap();
    let active = cards.iter().filter(|c| c.state == "ACTIVE").count();
    assert_eq!(active, 1, "{cards:?}");
    let log = tsm.stop();
    assert!(log.contains("production key hierarchy in"), "{log}");
    assert!(log.contains("code=\"4002\""), "{log}");
    assert!(!log.contains(KMS_PASS));
}

#[test]
fn the_sei_and_sp_roles_serve_production_hierarchies_of_their_own() {
    let s = Setup::new("split");
    // The SE maker makes the ISD master file; the SEI-TSM imports it.
    let out = s.ok(&["se", "new-isd-master", "--out", &s.p("isd.json")]);
    assert!(out.contains("KVN 30"), "{out}");
    let sei_out = s.ok(&[
        "tsm",
        "init",
        "--dir",
        &s.p("sei"),
        "--role",
        "sei",
        "--isd-master",
        &s.p("isd.json"),
    ]);
    assert!(!s.path("sei").join("sp.kms").exists());
    let file = isd_master_file(&s, "isd.json");
    assert!(
        file.get("token_key").is_none(),
        "init changed the SE maker's file"
    );
    let kcv = aes_kcv(file["isd_master"]["mac"].as_str().unwrap());
    assert!(sei_out.contains(&format!("mac {kcv}")), "{sei_out}");
    let token = hex_after(&sei_out, "--token-key");
    let sei_key = hex_after(&sei_out, "envelope signing key (SM2) public key");
    let sp_out = s.ok(&["tsm", "init", "--dir", &s.p("sp"), "--role", "sp"]);
    assert!(!s.path("sp").join("sei.kms").exists());
    let transport = hex_after(&sp_out, "transport key sp/transport (SM2) public key");
    let sp_key = hex_after(&sp_out, "envelope signing key (SM2) public key");

    // Card production without the token key cannot key the SE's delegated management.
    let err = s.fails(
        Some(KMS_PASS),
        &[
            "se",
            "produce",
            "--isd-master",
            &s.p("isd.json"),
            "--state",
            &s.p("se.card"),
        ],
    );
    assert!(err.contains("--token-key"), "{err}");
    s.ok(&[
        "se",
        "produce",
        "--isd-master",
        &s.p("isd.json"),
        "--token-key",
        &token,
        "--state",
        &s.p("se.card"),
    ]);

    // The SEI server needs the SP's transport key; the SP's directory has no SEI keys.
    let db = s.sqlite("x.db");
    let err = s.fails(
        Some(KMS_PASS),
        &[
            "tsm",
            "serve",
            "--role",
            "sei",
            "--dir",
            &s.p("sei"),
            "--peer-key",
            &sp_key,
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db,
        ],
    );
    assert!(err.contains("--peer-transport-key"), "{err}");
    let err = s.fails(
        Some(KMS_PASS),
        &[
            "tsm",
            "serve",
            "--role",
            "both",
            "--dir",
            &s.p("sp"),
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db,
        ],
    );
    assert!(err.contains("no sei keys"), "{err}");

    let sei = Tsm::start(
        &s,
        "sei",
        "sei.db",
        &[
            "--role",
            "sei",
            "--peer-key",
            &sp_key,
            "--peer-transport-key",
            &transport,
        ],
    );
    let sp = Tsm::start(
        &s,
        "sp",
        "sp.db",
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
    s.ok(&sp.enrol_args(&s.p("w")));
    let out = s.ok(&[
        "wallet",
        "open",
        "--dir",
        &s.p("w"),
        "--se-state",
        &s.p("se.card"),
    ]);
    assert!(
        out.contains(&format!("card {MASKED_CARD_NO} opened (ACTIVE)")),
        "{out}"
    );
    let out = s.ok(&[
        "wallet",
        "topup",
        "--dir",
        &s.p("w"),
        "--se-state",
        &s.p("se.card"),
        "--amount",
        "200",
    ]);
    assert!(out.contains("balance ¥2.00"), "{out}");
    let log = sp.stop();
    assert!(log.contains("production key hierarchy in"), "{log}");
    sei.stop();
}

/// The audit chain of `db`: every record in order, and whether the chain verifies.
fn audit_chain(db: &str) -> (Vec<ykt_store::AuditRecord>, bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = ykt_store::Store::connect(db).await.unwrap();
        let records = store.audit_records(1, 10_000).await.unwrap();
        let intact = matches!(
            store.verify_chain().await.unwrap(),
            ykt_store::ChainStatus::Intact { .. }
        );
        (records, intact)
    })
}

#[test]
fn init_with_a_database_records_the_ceremony_in_its_audit_chain() {
    let s = Setup::new("init-audit");
    let db = s.sqlite("tsm.db");
    let out = s.ok(&[
        "tsm",
        "init",
        "--dir",
        &s.p("tsm"),
        "--new-isd-master",
        &s.p("isd.json"),
        "--db",
        &db,
    ]);
    let (records, intact) = audit_chain(&db);
    assert!(intact);
    // Every key the ceremony made or imported is a KEY_USE row, and the count is the one printed.
    assert!(
        out.contains(&format!(
            "{} key events of this ceremony in the audit log",
            records.len()
        )),
        "{out}\n{records:?}"
    );
    assert!(records.len() >= 5, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r.event.kind == ykt_store::AuditKind::KeyUse),
        "{records:?}"
    );
    let subjects: Vec<&str> = records.iter().map(|r| r.event.subject.as_str()).collect();
    let isd_master = ykt_tsm::testing::test_parties().isd_master.0;
    assert!(
        subjects.iter().any(|s| s.contains(&isd_master)),
        "{subjects:?}"
    );
    // No key value in the rows: the ISD master file's keys do not appear in any detail.
    let file = isd_master_file(&s, "isd.json");
    let text: String = records
        .iter()
        .map(|r| format!("{:?}", r.event))
        .collect::<String>()
        .to_ascii_lowercase();
    for key in ["enc", "mac", "dek"] {
        let value = file["isd_master"][key]
            .as_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(!text.contains(&value), "the {key} key is in the audit rows");
    }
    // A second platform initialised on the same database appends to the same chain.
    s.ok(&[
        "tsm",
        "init",
        "--dir",
        &s.p("sp"),
        "--role",
        "sp",
        "--db",
        &db,
    ]);
    let (more, intact) = audit_chain(&db);
    assert!(intact);
    assert!(more.len() > records.len());
    // Without --db nothing is recorded, and the output says so.
    let out = s.run(
        Some(KMS_PASS),
        &["tsm", "init", "--dir", &s.p("other"), "--role", "sp"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("give --db to write them"),
        "{out:?}"
    );
}
