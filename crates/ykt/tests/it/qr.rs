//! `ykt qr`, `ykt wallet qr` and `ykt terminal qr`: a test issuer, a wallet showing its code,
//! and a scanning terminal that accepts it once, refuses replays, expired codes and blacklisted
//! accounts, survives restarts, and uploads a signed batch.

use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const YKT: &str = env!("CARGO_BIN_EXE_ykt");

/// The time of every test (2025-11-24T16:00:00Z), in Unix seconds.
const T: u64 = 1_764_000_000;
/// The account the wallet asks for.
const ACCOUNT: &str = "9999000112345678901f";

struct Setup {
    root: PathBuf,
}

impl Setup {
    /// An issuer, a wallet authorised by it and a terminal holding its parameters.
    fn new(name: &str) -> Self {
        let s = Self::empty(name);
        let at = T.to_string();
        s.ok(&["qr", "issuer", "init", "--dir", s.p("issuer"), "--at", &at]);
        s.ok(&[
            "wallet",
            "qr",
            "init",
            "--dir",
            s.p("wallet"),
            "--issuer",
            s.p("issuer"),
            "--account",
            ACCOUNT,
            "--at",
            &at,
        ]);
        s.terminal_ok(&["params", "--from", s.p("issuer")]);
        s
    }

    /// An empty directory for the roles.
    fn empty(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("ykt-qr-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Self { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn p(&self, name: &str) -> &str {
        // The tests' temporary paths are UTF-8.
        Box::leak(
            self.path(name)
                .to_str()
                .unwrap()
                .to_string()
                .into_boxed_str(),
        )
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(YKT)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn terminal(&self, args: &[&str]) -> Output {
        let mut all = vec!["terminal", "--dir", self.p("terminal"), "qr"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    fn terminal_ok(&self, args: &[&str]) -> String {
        let out = self.terminal(args);
        assert!(
            out.status.success(),
            "{args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The wallet's code generated at `at`, as a PNG; gives its path.
    fn show(&self, at: u64, name: &str) -> PathBuf {
        let png = self.path(name);
        let out = self.ok(&[
            "wallet",
            "qr",
            "show",
            "--dir",
            self.p("wallet"),
            "--png",
            png.to_str().unwrap(),
            "--at",
            &at.to_string(),
        ]);
        // The symbol went to stdout in half blocks.
        assert!(out.contains('█') && out.lines().count() > 30, "{out}");
        png
    }

    /// Scans `image` at `at`: (exit code, stdout).
    fn scan(&self, at: u64, image: &Path, extra: &[&str]) -> (i32, String) {
        let at = at.to_string();
        let mut args = vec!["scan", "--at", &at, image.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = self.terminal(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        (out.status.code().unwrap(), format!("{stdout}{stderr}"))
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn a_shown_code_is_accepted_once_refused_as_a_replay_and_uploaded_signed() {
    let s = Setup::new("chain");
    for key in [
        "issuer/root-ca.key",
        "issuer/issuer.key",
        "wallet/device.key",
    ] {
        let mode = std::fs::metadata(s.path(key)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let png = s.show(T, "code.png");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));

    let (code, out) = s.scan(T + 5, &png, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("accepted") && out.contains("record #1"),
        "{out}"
    );
    // Account ids are masked.
    assert!(out.contains("999900") && !out.contains(ACCOUNT), "{out}");

    // A new process: the replay cache comes back from the record log.
    let (code, out) = s.scan(T + 6, &png, &[]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("refused: code already used [Replay]"), "{out}");

    let batch = s.path("batch.jsonl");
    let out = s.terminal_ok(&["upload", "--out", batch.to_str().unwrap()]);
    assert!(out.contains("1 records"), "{out}");
    let text = std::fs::read(&batch).unwrap();
    let lines: Vec<&str> = std::str::from_utf8(&text).unwrap().lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("{\"seq\":1,") && lines[0].contains(ACCOUNT));
    assert!(lines[1].starts_with("{\"batch_signature\":"));
    // Clearing checks the signature with the terminal's public key and the sequence.
    let public = std::fs::read_to_string(s.path("terminal/qr-terminal.pub")).unwrap();
    let key =
        ykt_crypto::Sm2PublicKey::from_sec1_bytes(&hex::decode(public.trim()).unwrap()).unwrap();
    assert_eq!(ykt_qr::record::open(&text, &key, 1), Ok(1));

    // Nothing new to upload the second time.
    let out = s.terminal_ok(&["upload", "--out", batch.to_str().unwrap()]);
    assert!(out.contains("no records"), "{out}");
}

#[test]
fn a_code_older_than_its_validity_and_the_skew_is_refused_as_expired() {
    let s = Setup::new("expired");
    // Validity 60 s, skew 30 s: 1000 s old is long gone.
    let png = s.show(T - 1000, "old.png");
    let (code, out) = s.scan(T, &png, &[]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("refused: code expired [CodeExpired]"), "{out}");
    // The edge: 90 s old passes, 91 s does not; a wider skew admits it.
    let png = s.show(T - 91, "edge.png");
    let (code, out) = s.scan(T, &png, &[]);
    assert_eq!(code, 5, "{out}");
    let (code, out) = s.scan(T, &png, &["--clock-skew", "31"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_fast_terminal_clock_is_modelled_and_pgm_frames_are_read() {
    let s = Setup::new("clock");
    let png = s.show(T, "code.png");
    // The same code as a camera frame dump.
    let payload = ykt_qr_symbol::scan(&std::fs::read(&png).unwrap()).unwrap();
    let frame = ykt_qr_symbol::Symbol::encode(&payload)
        .unwrap()
        .to_frame(3, 4)
        .unwrap();
    let pgm = s.path("frame.pgm");
    std::fs::write(&pgm, frame.to_pgm()).unwrap();
    // A terminal clock 200 s fast sees the code as expired; one 40 s slow as not yet valid.
    let (code, out) = s.scan(T + 5, &pgm, &["--clock-offset", "200"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("[CodeExpired]"), "{out}");
    let (code, out) = s.scan(T + 5, &pgm, &["--clock-offset", "-40"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("[NotYetValid]"), "{out}");
    let (code, out) = s.scan(T + 5, &pgm, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_blacklisted_account_is_refused() {
    let s = Setup::new("blacklist");
    let out = s.terminal_ok(&["params", "--block-account", ACCOUNT]);
    assert!(out.contains("1 blacklisted accounts (version 1)"), "{out}");
    let png = s.show(T, "code.png");
    let (code, out) = s.scan(T + 1, &png, &[]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("refused: account blacklisted [AccountBlacklisted]"),
        "{out}"
    );
    s.terminal_ok(&["params", "--unblock-account", ACCOUNT]);
    let (code, out) = s.scan(T + 2, &png, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn garbage_images_give_a_clear_error_not_a_panic() {
    let s = Setup::new("garbage");
    let mut fake_png = b"\x89PNG\r\n\x1a\n".to_vec();
    fake_png.extend_from_slice(&[0x5A; 300]);
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("fake.png", fake_png, "unreadable PNG"),
        (
            "text.png",
            b"not an image at all".to_vec(),
            "not a PNG or binary PGM",
        ),
        (
            "blank.pgm",
            {
                let mut v = b"P5 64 64 255\n".to_vec();
                v.extend_from_slice(&[255; 64 * 64]);
                v
            },
            "no QR symbol found",
        ),
    ];
    for (name, bytes, reason) in cases {
        let path = s.path(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, out) = s.scan(T, &path, &[]);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(out.contains(reason), "{name}: {out}");
        assert!(out.contains("held no readable QR code"), "{name}: {out}");
    }
    let (code, out) = s.scan(T, &s.path("missing.png"), &[]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn a_record_torn_by_a_kill_is_dropped_and_the_accepted_codes_stay_refused() {
    let s = Setup::new("torn");
    let first = s.show(T, "first.png");
    let (code, out) = s.scan(T + 1, &first, &[]);
    assert_eq!(code, 0, "{out}");
    // A kill during the next append leaves a frame cut short at the end of the log.
    let log = s.path("terminal/qr-records.ykr");
    let mut bytes = std::fs::read(&log).unwrap();
    let whole = bytes.len();
    let head = bytes[..40].to_vec();
    bytes.extend_from_slice(&head);
    std::fs::write(&log, &bytes).unwrap();
    // The accepted code is still known; the torn frame is overwritten by the next record.
    let (code, out) = s.scan(T + 2, &first, &[]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("[Replay]"), "{out}");
    let second = s.show(T + 3, "second.png");
    let (code, out) = s.scan(T + 4, &second, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("record #2"), "{out}");
    assert_eq!(std::fs::read(&log).unwrap().len(), 2 * whole);
    let batch = s.path("batch.jsonl");
    let out = s.terminal_ok(&["upload", "--out", batch.to_str().unwrap()]);
    assert!(out.contains("2 records (#1–#2)"), "{out}");
}

#[test]
fn the_issuer_authorises_a_key_given_as_hex_or_as_a_file() {
    let s = Setup::new("authorise");
    let public = s.path("wallet/device.pub");
    let hex_key = std::fs::read_to_string(&public).unwrap();
    let blob = s.path("blob.hex");
    s.ok(&[
        "qr",
        "issuer",
        "authorise",
        "--dir",
        s.p("issuer"),
        "--user-key",
        public.to_str().unwrap(),
        "--limit",
        "500",
        "--valid-for",
        "2h",
        "--account",
        ACCOUNT,
        "--at",
        &T.to_string(),
        "--out",
        blob.to_str().unwrap(),
    ]);
    let bytes = hex::decode(std::fs::read_to_string(&blob).unwrap().trim()).unwrap();
    let auth = ykt_qr::Authorisation::decode(&bytes).unwrap();
    assert_eq!(auth.body.limit, 500);
    assert_eq!(u64::from(auth.body.authorisation_expiry), T + 7200);
    assert_eq!(hex::encode(auth.body.user_account), ACCOUNT);
    assert_eq!(hex::encode(auth.body.user_public_key), hex_key.trim());
    // On stdout when no file is named.
    let out = s.ok(&[
        "qr",
        "issuer",
        "authorise",
        "--dir",
        s.p("issuer"),
        "--user-key",
        hex_key.trim(),
        "--limit",
        "1",
        "--valid-for",
        "60s",
    ]);
    assert!(ykt_qr::Authorisation::decode(&hex::decode(out.trim()).unwrap()).is_ok());
    // A second init never replaces keys.
    let out = s.run(&["qr", "issuer", "init", "--dir", s.p("issuer")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds keys"));
}

/// `ykt qr issuer serve` as a child process, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(YKT)
            .args(["qr", "issuer", "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(url) = line
            .trim()
            .strip_prefix("issuer service listening on ")
            .map(str::to_string)
        else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "no address printed: {line:?}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        };
        Self { child, url }
    }

    /// Stops the server with SIGTERM and gives its stderr.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let mut stderr = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "{exit:?}: {stderr}");
        stderr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn qr_over_http_the_served_issuer_authorises_a_wallet_whose_code_the_terminal_accepts() {
    let s = Setup::empty("http");
    s.ok(&["qr", "issuer", "init", "--dir", s.p("issuer")]);
    let server = Server::start(&["--dir", s.p("issuer"), "--max-limit", "1500"]);
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    // The token file was made at the first start, private.
    let token_path = s.path("issuer/api.token");
    let mode = std::fs::metadata(&token_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_path).unwrap();
    let token = token.trim();

    // A wrong token is refused with the service's code.
    let out = s.run(&[
        "wallet",
        "qr",
        "init",
        "--dir",
        s.p("wallet"),
        "--issuer-url",
        &server.url,
        "--token",
        "not-the-token-of-this-issuer",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused (unauthorised, HTTP 401)"),
        "{stderr}"
    );

    // The wallet asks for 20 yuan; the service grants its cap of 15.
    let out = s.run(&[
        "wallet",
        "qr",
        "init",
        "--dir",
        s.p("wallet"),
        "--issuer-url",
        &server.url,
        "--token",
        token,
        "--account",
        ACCOUNT,
        "--limit",
        "2000",
        "--valid-for",
        "2h",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("the issuer clamped limit"), "{stderr}");
    assert!(stdout.contains("limit ¥15.00"), "{stdout}");
    // The account is masked in the output.
    assert!(!stdout.contains(ACCOUNT), "{stdout}");
    let blob = std::fs::read_to_string(s.path("wallet/authorisation")).unwrap();
    let auth = ykt_qr::Authorisation::decode(&hex::decode(blob.trim()).unwrap()).unwrap();
    assert_eq!(auth.body.limit, 1500);
    assert_eq!(hex::encode(auth.body.user_account), ACCOUNT);

    // The terminal takes its parameters from the service and accepts the code once.
    let out = s.terminal_ok(&["params", "--from-url", &server.url]);
    assert!(out.contains("1 root keys, 1 whitelist entries"), "{out}");
    let now = unix_now();
    let png = s.show(now, "code.png");
    let (code, out) = s.scan(now + 2, &png, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("accepted"), "{out}");
    let (code, out) = s.scan(now + 3, &png, &[]);
    assert_eq!(code, 5, "{out}");

    // Plain HTTP only, and a service that is not there is a transport failure.
    let out = s.terminal(&["params", "--from-url", "https://127.0.0.1:1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("must start with http://"));

    let url = server.url.clone();
    let stderr = server.stop();
    assert!(stderr.contains("issuer service stopped"), "{stderr}");
    assert!(!stderr.contains(token), "the token was logged: {stderr}");
    let out = s.terminal(&["params", "--from-url", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("request to the issuer service failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn parameter_files_4026_and_4020_exported_by_the_issuer_are_installed_only_whole_and_newer() {
    let s = Setup::empty("tables");
    let at = T.to_string();
    s.ok(&["qr", "issuer", "init", "--dir", s.p("issuer"), "--at", &at]);
    s.ok(&[
        "wallet",
        "qr",
        "init",
        "--dir",
        s.p("wallet"),
        "--issuer",
        s.p("issuer"),
        "--account",
        ACCOUNT,
        "--at",
        &at,
    ]);
    let export = |version: &str, f26: &str, f20: &str| {
        s.ok(&[
            "qr",
            "issuer",
            "export-tables",
            "--dir",
            s.p("issuer"),
            "--out-4026",
            s.p(f26),
            "--out-4020",
            s.p(f20),
            "--table-version",
            version,
            "--ticket-type",
            "07",
        ])
    };
    let out = export("3", "v3.4026", "v3.4020");
    assert!(
        out.contains("ticket type 07") && out.contains("version 3"),
        "{out}"
    );
    let f26 = std::fs::read(s.path("v3.4026")).unwrap();
    let f20 = std::fs::read(s.path("v3.4020")).unwrap();
    // Headers: version 3, one record, big-endian; 32 + 160 and 28 + 16 bytes.
    assert_eq!((f26.len(), &f26[..8]), (192, &[0, 0, 0, 3, 0, 0, 0, 1][..]));
    assert_eq!((f20.len(), &f20[..8]), (44, &[0, 0, 0, 3, 0, 0, 0, 1][..]));

    // A flipped byte in either file: refused, nothing installed.
    let mut bad = f20.clone();
    bad[40] ^= 0x01;
    std::fs::write(s.path("bad.4020"), &bad).unwrap();
    let tables = |f26: &str, f20: &str| {
        s.terminal(&["params", "--table-4026", s.p(f26), "--table-4020", s.p(f20)])
    };
    let out = tables("v3.4026", "bad.4020");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("SHA-1"), "{err}");
    assert!(!s.path("terminal/qr-params.txt").exists());

    let out = tables("v3.4026", "v3.4020");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 root keys (version 3), 1 whitelist entries (version 3)"),
        "{text}"
    );

    // The same version again, or a truncated file: refused, the tables held unchanged.
    let out = tables("v3.4026", "v3.4020");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not newer"), "{err}");
    std::fs::write(s.path("cut.4026"), &f26[..100]).unwrap();
    export("4", "v4.4026", "v4.4020");
    let out = tables("cut.4026", "v4.4020");
    assert!(!out.status.success());
    let held = std::fs::read_to_string(s.path("terminal/qr-params.txt")).unwrap();
    assert!(
        held.contains("roots_version = 3") && held.contains("whitelist_version = 3"),
        "{held}"
    );

    // The installed tables admit the issuer's code, mapped to ticket type 07.
    let png = s.show(T, "code.png");
    let (code, out) = s.scan(T + 1, &png, &[]);
    assert_eq!(code, 0, "{out}");
    let batch = s.path("batch.jsonl");
    s.terminal_ok(&["upload", "--out", batch.to_str().unwrap()]);
    let batch = std::fs::read_to_string(&batch).unwrap();
    assert!(
        batch.contains("\"ticket_type\":7") && batch.contains("\"4026\":3,\"4020\":3"),
        "{batch}"
    );
}
