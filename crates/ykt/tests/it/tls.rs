//! The TSM link over TLS 1.3 with SPKI pins, as an operator and a user run it (client.md §6.4,
//! Profile B): the pin `ykt tsm serve` prints is the one `ykt tsm pin` prints and the one
//! openssl computes from its certificate; a wallet given a wrong pin sends nothing, one given
//! a backup pin next to the right one enrols; plain HTTP only when both ends ask for it; a
//! half-present TLS pair refused at start; an operator's own certificate and key served; the
//! private key made at first start kept with mode 0600.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Output;
use std::time::Duration;

use crate::child::{
    Scratch, ServedTsm, WALLET_PASSPHRASE, run, serve_tsm, succeeded, tsm_get, ykt,
};

/// How long any one step may take.
const TIMEOUT: Duration = Duration::from_secs(60);
/// A well-formed pin of no key any TSM here holds.
const WRONG_PIN: &str = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
/// The start of the `/metrics` line that counts enrolments.
const ENROL_METRIC: &str = "ykt_tsm_requests_total{msg_type=\"EnrolReq\"";

/// `ykt ARGS` with the wallets' passphrase, run to its end.
fn ykt_run(args: &[&str]) -> Output {
    run(
        ykt(args).env("YKT_WALLET_PASSPHRASE", WALLET_PASSPHRASE),
        TIMEOUT,
    )
}

fn ok(args: &[&str]) -> String {
    succeeded(args, ykt_run(args))
}

/// Runs `ykt ARGS`, which must fail with exit code 1 and no panic; gives its stderr.
fn fails(args: &[&str]) -> String {
    let out = ykt_run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "ykt {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "ykt {args:?}: {stderr}");
    stderr
}

/// A served TSM, killed on drop.
struct Running(ServedTsm);

impl std::ops::Deref for Running {
    type Target = ServedTsm;
    fn deref(&self) -> &ServedTsm {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut ServedTsm {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

/// The test TSM of `s` (database `tsm.db`, directory `tsm`) with `extra` arguments.
fn start(s: &Scratch, extra: &[&str]) -> Running {
    Running(serve_tsm(
        "127.0.0.1:0",
        &s.sqlite("tsm.db"),
        &s.p("tsm"),
        extra,
    ))
}

/// `wallet enrol --dir WDIR --tsm URL` and `more`.
fn enrol_args<'a>(wdir: &'a str, url: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["wallet", "enrol", "--dir", wdir, "--tsm", url];
    args.extend_from_slice(more);
    args
}

/// The `EnrolReq` lines of the TSM's `/metrics`.
fn enrol_metrics(tsm: &ServedTsm) -> Vec<String> {
    let (status, metrics) = tsm_get(&tsm.client(), "/metrics").unwrap();
    assert_eq!(status, 200, "{metrics}");
    metrics
        .lines()
        .filter(|l| l.starts_with(ENROL_METRIC))
        .map(str::to_string)
        .collect()
}

/// The pin by the openssl pipeline of client.md §6.4 (the SHA-256 of the certificate's DER
/// SubjectPublicKeyInfo, base64).
fn openssl_pin(cert: &str) -> String {
    let pipeline = format!(
        "openssl x509 -pubkey -noout -in '{cert}' | openssl pkey -pubin -outform der \
         | openssl dgst -sha256 -binary | base64"
    );
    let out = std::process::Command::new("bash")
        .args(["-o", "pipefail", "-c", &pipeline])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{pipeline}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b64 = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(b64.len(), 44, "{b64:?}");
    format!("sha256/{b64}")
}

/// client.md §6.4: a pin miss is fatal before any request byte: the wallet fails with E1001,
/// and the TSM served no enrolment; the right pin then enrols.
#[test]
fn a_wallet_with_a_wrong_pin_sends_nothing_and_says_e1001() {
    let s = Scratch::new("tls", "wrong-pin");
    let tsm = start(&s, &[]);
    assert!(enrol_metrics(&tsm).is_empty(), "{:?}", enrol_metrics(&tsm));
    let w = s.p("w");
    let err = fails(&enrol_args(&w, &tsm.url, &["--tsm-pin", WRONG_PIN]));
    assert!(err.contains("E1001"), "{err}");
    assert!(
        err.contains("could not prove it is the service; nothing was sent to it"),
        "{err}"
    );
    assert!(
        enrol_metrics(&tsm).is_empty(),
        "the TSM saw an enrolment: {:?}",
        enrol_metrics(&tsm)
    );
    assert!(!s.path("w").join("tsm.url").exists());
    // The same wallet with the right pin enrols, and the TSM counts it.
    let pin = tsm.pin.as_str();
    let out = ok(&enrol_args(&w, &tsm.url, &["--tsm-pin", pin]));
    assert!(out.contains("device enrolled with SPTSM-YKT-TEST"), "{out}");
    let lines = enrol_metrics(&tsm);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].ends_with(" 1"), "{lines:?}");
    let file = std::fs::read_to_string(s.path("w").join("tsm.url")).unwrap();
    assert_eq!(
        file.lines().collect::<Vec<_>>(),
        [&tsm.url, &format!("pin {pin}")]
    );
}

/// client.md §6.4: an `http://` address is refused unless the user asks for plain HTTP, before
/// anything connects to it; asked for on both ends, plain HTTP works.
#[test]
fn plain_http_needs_the_danger_flag_on_both_ends() {
    let s = Scratch::new("tls", "plain");
    // Something listens where the address points: it must see no connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let w = s.p("w");
    let err = fails(&enrol_args(&w, &url, &[]));
    assert!(err.contains("--danger-insecure-http"), "{err}");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the refused enrol connected: {other:?}"),
    }
    assert!(!s.path("w").exists(), "the refused enrol made the wallet");

    let tsm = start(&s, &["--danger-insecure-http"]);
    assert!(tsm.url.starts_with("http://127.0.0.1:"), "{}", tsm.url);
    assert!(tsm.tls_pin().is_none(), "{}", tsm.first_line);
    assert!(
        tsm.first_line
            .contains("(plain HTTP: --danger-insecure-http)"),
        "{}",
        tsm.first_line
    );
    // Nothing to pin on a plain server; the TLS pair is not made.
    assert!(!s.path("tsm").join("tls.key").exists());
    let err = fails(&enrol_args(&w, &tsm.url, &[]));
    assert!(err.contains("--danger-insecure-http"), "{err}");
    let out = ok(&enrol_args(&w, &tsm.url, &["--danger-insecure-http"]));
    assert!(out.contains("device enrolled with SPTSM-YKT-TEST"), "{out}");
    let file = std::fs::read_to_string(s.path("w").join("tsm.url")).unwrap();
    assert_eq!(
        file.lines().collect::<Vec<_>>(),
        [tsm.url.as_str(), "danger-insecure-http"]
    );
    // The wallet keeps using plain HTTP: it opens a card through it.
    let se = s.p("se.card");
    let out = ok(&["wallet", "open", "--dir", &w, "--se-state", &se]);
    assert!(out.contains("opened (ACTIVE)"), "{out}");
    assert_eq!(enrol_metrics(&tsm).len(), 1);
}

/// The pin three ways: the serve line, `ykt tsm pin --dir` and openssl, all the same; the
/// pair made at first start is kept (the private key mode 0600) and served again.
#[test]
fn the_pin_of_the_serve_line_is_tsm_pin_and_openssl() {
    let s = Scratch::new("tls", "pin");
    let dir = s.p("tsm");
    // No certificate yet: `ykt tsm pin` says where it comes from.
    let err = fails(&["tsm", "pin", "--dir", &dir]);
    assert!(
        err.contains("tls.crt") && err.contains("ykt tsm serve"),
        "{err}"
    );
    let mut tsm = start(&s, &[]);
    let served = tsm.pin.clone();
    assert!(tsm.first_line.contains("(TLS 1.3)"), "{}", tsm.first_line);
    let printed = ok(&["tsm", "pin", "--dir", &dir]);
    assert_eq!(printed.trim(), served);
    let cert = s.path("tsm").join("tls.crt");
    assert_eq!(openssl_pin(cert.to_str().unwrap()), served);
    let cert_pin = ok(&["tsm", "pin", "--cert", cert.to_str().unwrap()]);
    assert_eq!(cert_pin.trim(), served);

    // The private key is the owner's alone.
    let key = s.path("tsm").join("tls.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "tls.key has mode {mode:o}");

    // A second start on the same directory serves the same pair.
    tsm.child.kill().unwrap();
    tsm.child.wait().unwrap();
    let again = start(&s, &[]);
    assert_eq!(again.pin, served);
    assert_eq!(ok(&["tsm", "pin", "--dir", &dir]).trim(), served);
}

/// A directory that holds one half of the TLS pair: serve refuses, naming both files, and
/// makes no new pair over the half it found; with the pair whole again it serves its pin.
#[test]
fn a_half_tls_pair_is_refused_at_start() {
    let s = Scratch::new("tls", "half");
    let mut tsm = start(&s, &[]);
    let pin = tsm.pin.clone();
    tsm.child.kill().unwrap();
    tsm.child.wait().unwrap();
    let (db, dir) = (s.sqlite("tsm.db"), s.p("tsm"));
    let serve = [
        "tsm",
        "serve",
        "--test-keys",
        "--test-payments",
        "--listen",
        "127.0.0.1:0",
        "--db",
        &db,
        "--dir",
        &dir,
    ];
    let cert = s.path("tsm").join("tls.crt");
    let key = s.path("tsm").join("tls.key");
    let pair = [
        (cert.clone(), std::fs::read(&cert).unwrap()),
        (key.clone(), std::fs::read(&key).unwrap()),
    ];
    for (missing, kept) in [(&key, &cert), (&cert, &key)] {
        for (path, bytes) in &pair {
            std::fs::write(path, bytes).unwrap();
        }
        std::fs::remove_file(missing).unwrap();
        let kept_bytes = std::fs::read(kept).unwrap();
        let out = ykt_run(&serve);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains("tls.crt") && stderr.contains("tls.key"),
            "{stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening"),
            "served with half a pair"
        );
        assert!(!missing.exists(), "{} was made again", missing.display());
        assert_eq!(std::fs::read(kept).unwrap(), kept_bytes);
    }
    // The missing half restored: the same pin.
    for (path, bytes) in &pair {
        std::fs::write(path, bytes).unwrap();
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let tsm = start(&s, &[]);
    assert_eq!(tsm.pin, pin);
}

/// An operator's own certificate and key (`--tls-cert`, `--tls-key`, made by openssl): served,
/// its pin the one `ykt tsm pin --cert` prints, and a wallet pinned to it enrols; no pair is
/// made in the directory.
#[test]
fn an_operators_certificate_is_served_and_pinned() {
    let s = Scratch::new("tls", "own");
    let (key, cert) = (s.p("k.pem"), s.p("c.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-keyout", &key])
        .args(["-out", &cert, "-days", "1", "-subj", "/CN=localhost"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tsm = start(&s, &["--tls-cert", &cert, "--tls-key", &key]);
    let pin = tsm.pin.clone();
    assert_eq!(ok(&["tsm", "pin", "--cert", &cert]).trim(), pin);
    assert_eq!(openssl_pin(&cert), pin);
    assert!(!s.path("tsm").join("tls.crt").exists());
    assert!(!s.path("tsm").join("tls.key").exists());
    let w = s.p("w");
    let out = ok(&enrol_args(&w, &tsm.url, &["--tsm-pin", &pin]));
    assert!(out.contains("device enrolled with SPTSM-YKT-TEST"), "{out}");
    // A key that does not belong to the certificate is refused at start.
    let (other_key, other_cert) = (s.p("k2.pem"), s.p("c2.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &other_key,
        ])
        .args(["-out", &other_cert, "-days", "1", "-subj", "/CN=localhost"])
        .output()
        .unwrap();
    assert!(made.status.success());
    let (db, dir) = (s.sqlite("tsm2.db"), s.p("tsm2"));
    let out = ykt_run(&[
        "tsm",
        "serve",
        "--test-keys",
        "--listen",
        "127.0.0.1:0",
        "--db",
        &db,
        "--dir",
        &dir,
        "--tls-cert",
        &cert,
        "--tls-key",
        &other_key,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("k2.pem") && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "served a certificate with another's key"
    );
    // One of the two alone is a usage error that names the other.
    let out = ykt_run(&[
        "tsm",
        "serve",
        "--test-keys",
        "--listen",
        "127.0.0.1:0",
        "--db",
        &db,
        "--dir",
        &dir,
        "--tls-cert",
        &cert,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

/// client.md §6.4: a wallet may hold the current pin and a backup; a server whose key is either
/// is accepted, so [wrong, right] enrols, and both pins are kept for the next commands.
#[test]
fn a_wallet_with_a_backup_pin_enrols() {
    let s = Scratch::new("tls", "backup");
    let tsm = start(&s, &[]);
    let pin = tsm.pin.clone();
    let w = s.p("w");
    let out = ok(&enrol_args(
        &w,
        &tsm.url,
        &["--tsm-pin", WRONG_PIN, "--tsm-pin", &pin],
    ));
    assert!(out.contains("device enrolled with SPTSM-YKT-TEST"), "{out}");
    let file = std::fs::read_to_string(s.path("w").join("tsm.url")).unwrap();
    assert_eq!(
        file.lines().collect::<Vec<_>>(),
        [
            tsm.url.clone(),
            format!("pin {WRONG_PIN}"),
            format!("pin {pin}")
        ]
    );
    // The next command reads both pins from the wallet and reaches the TSM.
    let se = s.p("se.card");
    let out = ok(&["wallet", "open", "--dir", &w, "--se-state", &se]);
    assert!(out.contains("opened (ACTIVE)"), "{out}");
}

/// Out of file descriptors, the TLS server pauses its accept loop and goes on once connections
/// close, as a plain-HTTP one does; it does not end (with the wallets' sessions) at the first
/// `EMFILE`. The child's descriptor limit is lowered with `prlimit` (util-linux) while it runs.
#[test]
fn a_tls_server_out_of_file_descriptors_goes_on() {
    let s = Scratch::new("tls", "emfile");
    let tsm = start(&s, &[]);
    let client = tsm.client();
    assert_eq!(client.health().unwrap(), "ok");
    let pid = tsm.child.id();
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = (open_fds + 8).to_string();
    let lowered = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("prlimit (util-linux)");
    assert!(lowered.success());
    // More connections than descriptors left: some wait in the backlog while accept fails.
    let addr = tsm.url.trim_start_matches("https://").to_string();
    let hogs: Vec<std::net::TcpStream> = (0..40)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    drop(hogs);
    // The server is still there and serves again once the idle connections are gone.
    let start_wait = std::time::Instant::now();
    let answered = loop {
        match client.health() {
            Ok(text) => break text,
            Err(_) if start_wait.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => panic!("the TSM no longer answers: {e}"),
        }
    };
    assert_eq!(answered, "ok");
    let mut tsm = tsm;
    assert!(
        tsm.child.try_wait().unwrap().is_none(),
        "the TSM exited under EMFILE"
    );
}
