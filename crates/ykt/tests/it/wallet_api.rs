//! `ykt wallet api …` (client.md §6.6) against a real wallet: the test TSM (`ykt tsm serve`), a
//! card enrolled and opened on a simulated SE, tokens granted on the command line, and the local
//! API served on a Unix socket and called with `curl --unix-socket`.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::child::{served_address, tsm_args};

const YKT: &str = env!("CARGO_BIN_EXE_ykt");
const PASSPHRASE: &str = "local api test passphrase";

/// A child process killed on drop (a failing test leaves no server behind).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Setup {
    dir: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ykt-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn p(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `ykt ARGS` with the wallet's passphrase: its stdout; panics with stderr when it fails.
    fn ykt(&self, args: &[&str]) -> String {
        let out = Command::new(YKT)
            .args(args)
            .env("YKT_WALLET_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "ykt {args:?} failed:\n{stdout}\n{stderr}"
        );
        stdout
    }

    /// `ykt tsm serve` on loopback: the server, its URL and the SPKI pin of its TLS key.
    fn tsm(&self) -> (Killed, String, String) {
        let db = format!("sqlite://{}?mode=rwc", self.p("tsm.db"));
        let mut child = Command::new(YKT)
            .args(["tsm", "serve", "--test-keys", "--test-payments"])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--db",
                &db,
                "--dir",
                &self.p("tsm"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some((url, Some(pin))) = served_address(&line) else {
            panic!("no address and pin printed: {line:?}")
        };
        (Killed(child), url, pin)
    }

    /// `ykt wallet api serve` on a socket in the test directory and on loopback HTTP; waits
    /// for the socket. Gives the server, the socket and the HTTP address.
    fn serve(&self) -> (Killed, String, String) {
        let socket = self.p("api.sock");
        let mut child = Command::new(YKT)
            .args(["wallet", "api", "serve", "--dir", &self.p("w")])
            .args(["--se-state", &self.p("se.card"), "--socket", &socket])
            .args(["--http-port", "0"])
            .env("YKT_WALLET_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let server = Killed(child);
        let first = lines.next().unwrap().unwrap();
        assert!(first.ends_with(&socket), "{first}");
        let second = lines.next().unwrap().unwrap();
        let http = second
            .split("listening on http://")
            .nth(1)
            .unwrap_or_else(|| panic!("no HTTP address: {second}"))
            .to_string();
        let start = Instant::now();
        while curl(&socket, "/v1/health", None).0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no server on {socket}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        (server, socket, http)
    }
}

/// `curl --unix-socket SOCKET` of `path` (a POST when `body` is given) with `token`: status
/// and body.
fn curl_with(
    socket: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "30", "--unix-socket", socket])
        .args(["-w", "\n%{http_code}"]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data", b]);
    }
    let out = cmd.arg(format!("http://localhost{path}")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    (code.trim().parse().unwrap_or(0), json)
}

/// `curl` over loopback HTTP to `addr` with the `Host` header `host`: the status.
fn curl_http(addr: &str, host: &str, path: &str, token: &str) -> u16 {
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "30",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-H", &format!("Host: {host}")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("http://{addr}{path}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn curl(socket: &str, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    curl_with(socket, path, token, None)
}

fn grant(s: &Setup, app: &str, scope: &str) -> String {
    let out = s.ykt(&[
        "wallet",
        "api",
        "grant",
        "--dir",
        &s.p("w"),
        "--app",
        app,
        "--scope",
        scope,
        "--ttl",
        "5m",
    ]);
    let token = out.trim().to_string();
    assert_eq!(out.lines().count(), 1, "the token alone on stdout: {out:?}");
    assert!(!token.is_empty() && !token.contains(' '), "{token:?}");
    token
}

/// The balance the CLI reads on the SE, in fen (`balance ¥12.34`).
fn cli_balance(s: &Setup) -> i64 {
    let out = s.ykt(&[
        "wallet",
        "balance",
        "--dir",
        &s.p("w"),
        "--se-state",
        &s.p("se.card"),
    ]);
    let yuan = out.trim().rsplit(' ').next().unwrap();
    let digits: String = yuan.chars().filter(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_local_api_over_a_real_wallet_grant_scopes_topup_confirm_revoke() {
    let s = Setup::new("e2e");
    let (_tsm, url, pin) = s.tsm();
    let w = s.p("w");
    let se = s.p("se.card");
    s.ykt(
        &[
            &["wallet", "enrol", "--dir", &w][..],
            &tsm_args(&url, Some(&pin)),
        ]
        .concat(),
    );
    s.ykt(&["wallet", "open", "--dir", &w, "--se-state", &se]);
    s.ykt(&[
        "wallet",
        "topup",
        "--dir",
        &w,
        "--se-state",
        &se,
        "--amount",
        "1234",
    ]);
    let before = cli_balance(&s);
    assert_eq!(before, 1234);

    // client.md §6.6: a balance-only token; the secret and the book are kept private.
    let balance_token = grant(&s, "com.example.transit", "balance:read");
    // The secret is sealed under the wallet's passphrase: granting without it fails.
    assert_eq!(mode(&s.dir.join("w").join("api.sealed")), 0o600);
    assert_eq!(mode(&s.dir.join("w").join("api.grants.json")), 0o600);
    assert!(!s.dir.join("w").join("api.secret").exists());
    for pass in [None, Some("not the wallet's passphrase")] {
        let mut cmd = Command::new(YKT);
        cmd.args(["wallet", "api", "grant", "--dir", &w, "--app", "x"])
            .args(["--scope", "balance:read"])
            .env_remove("YKT_WALLET_PASSPHRASE");
        if let Some(p) = pass {
            cmd.env("YKT_WALLET_PASSPHRASE", p);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{pass:?}");
        assert!(out.stdout.is_empty(), "{pass:?}");
    }

    let (mut server, socket, http) = s.serve();

    // No token: 401. The card list needs cards:read, which this token lacks: 403.
    assert_eq!(curl(&socket, "/v1/cards", None).0, 401);
    assert_eq!(curl(&socket, "/v1/cards", Some(&balance_token)).0, 403);
    let cards_token = grant(&s, "com.example.transit", "cards:read");
    let (status, cards) = curl(&socket, "/v1/cards", Some(&cards_token));
    assert_eq!(status, 200, "{cards}");
    let card = &cards["cards"][0];
    let id = card["id"].as_str().unwrap().to_string();
    let number = card["number"].as_str().unwrap();
    assert!(number.contains('*'), "masked: {number}");
    let cli_cards = s.ykt(&["wallet", "cards", "--dir", &w]);
    let (head, tail) = number.split_once('*').unwrap();
    let tail = tail.trim_start_matches('*');
    assert!(
        cli_cards.contains(head) && cli_cards.contains(tail),
        "{cli_cards}"
    );

    // The real balance, read on the SE, with the balance token.
    let balance_path = format!("/v1/cards/{id}/balance");
    let (status, balance) = curl(&socket, &balance_path, Some(&balance_token));
    assert_eq!(status, 200, "{balance}");
    assert_eq!(balance["balance_fen"], serde_json::json!(before));
    assert_eq!(curl(&socket, &balance_path, None).0, 401);
    assert_eq!(
        curl(
            &socket,
            "/v1/cards/nosuchcard/balance",
            Some(&balance_token)
        )
        .0,
        404
    );
    // The same on loopback HTTP, for the allowed Host only (client.md §6.6, DNS rebinding).
    assert_eq!(curl_http(&http, &http, &balance_path, &balance_token), 200);
    assert_eq!(
        curl_http(&http, "evil.example", &balance_path, &balance_token),
        403
    );

    // Records need records:read.
    let records_path = format!("/v1/cards/{id}/records");
    assert_eq!(curl(&socket, &records_path, Some(&balance_token)).0, 403);
    let records_token = grant(&s, "com.example.transit", "records:read");
    let (status, records) = curl(&socket, &records_path, Some(&records_token));
    assert_eq!(status, 200, "{records}");
    let first = &records["records"][0];
    assert_eq!(first["kind"], "load", "{records}");
    assert_eq!(first["amount_fen"], serde_json::json!(1234));
    // The record's BCD date and time (China Standard Time) as Unix seconds: the load was just now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = first["time"].as_u64().unwrap();
    assert!(at.abs_diff(now) < 600, "record time {at}, now {now}");

    // A top-up request needs topup:initiate and stays PENDING_USER until the user confirms.
    let topup_body = format!(r#"{{"card":"{id}","amount_fen":500}}"#);
    assert_eq!(
        curl_with(
            &socket,
            "/v1/topups",
            Some(&balance_token),
            Some(&topup_body)
        )
        .0,
        403
    );
    let topup_token = grant(&s, "com.example.topper", "balance:read,topup:initiate");
    let (status, request) = curl_with(&socket, "/v1/topups", Some(&topup_token), Some(&topup_body));
    assert_eq!(status, 202, "{request}");
    assert_eq!(request["state"], "PENDING_USER");
    let request_id = request["id"].as_str().unwrap().to_string();
    let listed = s.ykt(&["wallet", "api", "requests", "--dir", &w]);
    assert!(
        listed.contains(&request_id) && listed.contains("PENDING_USER"),
        "{listed}"
    );
    let (_, balance) = curl(&socket, &balance_path, Some(&topup_token));
    assert_eq!(balance["balance_fen"], serde_json::json!(before));

    s.ykt(&[
        "wallet",
        "api",
        "confirm",
        "--dir",
        &w,
        "--se-state",
        &se,
        "--id",
        &request_id,
    ]);
    let listed = s.ykt(&["wallet", "api", "requests", "--dir", &w]);
    assert!(listed.contains("CONFIRMED"), "{listed}");
    let (status, balance) = curl(&socket, &balance_path, Some(&topup_token));
    assert_eq!(status, 200, "{balance}");
    assert_eq!(balance["balance_fen"], serde_json::json!(before + 500));
    // A request is answered once.
    let again = Command::new(YKT)
        .args(["wallet", "api", "confirm", "--dir", &w, "--se-state", &se])
        .args(["--id", &request_id])
        .env("YKT_WALLET_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(cli_balance(&s), before + 500);

    // A declined request loads nothing.
    let (_, request) = curl_with(&socket, "/v1/topups", Some(&topup_token), Some(&topup_body));
    let declined = request["id"].as_str().unwrap().to_string();
    s.ykt(&["wallet", "api", "deny", "--dir", &w, "--id", &declined]);
    assert!(
        s.ykt(&["wallet", "api", "requests", "--dir", &w])
            .contains("DECLINED")
    );
    assert_eq!(cli_balance(&s), before + 500);

    // Revoking: the running server reads the grant book again and the token is 401.
    let jti = s
        .ykt(&["wallet", "api", "list", "--dir", &w])
        .lines()
        .find(|l| l.contains("com.example.transit") && l.contains("balance:read"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .unwrap();
    let book_path = s.dir.join("w").join("api.grants.json");
    let old_book = std::fs::read(&book_path).unwrap();
    s.ykt(&["wallet", "api", "revoke", "--dir", &w, "--jti", &jti]);
    let start = Instant::now();
    while curl(&socket, &balance_path, Some(&balance_token)).0 != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still taken after revoke"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = s.ykt(&["wallet", "api", "list", "--dir", &w]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&jti) && l.contains("revoked")),
        "{listed}"
    );
    // A book changed outside the wallet is refused; an older book put back (its MAC checks)
    // does not lift a revocation the server has seen.
    let new_book = std::fs::read(&book_path).unwrap();
    let mut forged: serde_json::Value = serde_json::from_slice(&new_book).unwrap();
    forged["book"] = serde_json::json!(
        forged["book"]
            .as_str()
            .unwrap()
            .replace(&jti, "00000000000000000000000000000000")
    );
    std::fs::write(&book_path, serde_json::to_vec(&forged).unwrap()).unwrap();
    let list = Command::new(YKT)
        .args(["wallet", "api", "list", "--dir", &w])
        .env("YKT_WALLET_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(!list.status.success());
    std::fs::write(&book_path, &old_book).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(curl(&socket, &balance_path, Some(&balance_token)).0, 401);
    std::fs::write(&book_path, &new_book).unwrap();

    // The other grants still work; revoking the app ends them too.
    assert_eq!(curl(&socket, &balance_path, Some(&topup_token)).0, 200);
    s.ykt(&[
        "wallet",
        "api",
        "revoke",
        "--dir",
        &w,
        "--app",
        "com.example.topper",
    ]);
    let start = Instant::now();
    while curl(&socket, &balance_path, Some(&topup_token)).0 != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still taken after revoke"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // SIGHUP reads the grant book again; the server goes on.
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "SIGHUP stopped the server"
    );
    assert_eq!(curl(&socket, "/v1/health", None).0, 200);
    assert_eq!(curl(&socket, &balance_path, Some(&balance_token)).0, 401);

    // SIGTERM stops the server, which removes its socket.
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the server did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(!Path::new(&socket).exists());
}

#[test]
fn grants_refuse_unknown_scopes_and_long_ttls_and_need_a_wallet() {
    let s = Setup::new("refusals");
    let run = |args: &[&str]| {
        Command::new(YKT)
            .args(args)
            .env("YKT_WALLET_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let w = s.p("w");
    let no_wallet = run(&[
        "wallet",
        "api",
        "grant",
        "--dir",
        &w,
        "--app",
        "a",
        "--scope",
        "balance:read",
    ]);
    assert!(!no_wallet.status.success());
    assert!(no_wallet.stdout.is_empty());
    std::fs::create_dir_all(s.dir.join("w")).unwrap();
    std::fs::write(s.dir.join("w").join("wallet.sealed"), b"not a sealed state").unwrap();
    for (scope, ttl, why) in [
        ("balance:write", "5m", "scope"),
        ("balance:read", "16m", "ttl"),
        ("balance:read", "0", "ttl"),
        ("balance:read", "5x", "ttl"),
    ] {
        let out = run(&[
            "wallet", "api", "grant", "--dir", &w, "--app", "a", "--scope", scope, "--ttl", ttl,
        ]);
        assert!(!out.status.success(), "{scope} {ttl}");
        assert!(out.stdout.is_empty(), "{scope} {ttl}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{scope} {ttl}: {err}");
    }
    // A passphrase that does not open the wallet makes no secret.
    let out = run(&[
        "wallet",
        "api",
        "grant",
        "--dir",
        &w,
        "--app",
        "a",
        "--scope",
        "balance:read",
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(!s.dir.join("w").join("api.sealed").exists());
}
