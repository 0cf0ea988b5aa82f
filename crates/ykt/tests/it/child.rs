//! Child processes of the `ykt` command in these tests: a scratch directory for their files,
//! the command built and run with its output read while the child runs, `ykt tsm serve`
//! started and its address and TLS pin read, and GETs of its paths over the pinned TLS link.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ykt_tsm_service::http::ClientError;
use ykt_tsm_service::http::TsmClient;
use ykt_tsm_service::http::tls::SpkiPin;

/// The `ykt` binary cargo built for these tests.
pub const YKT: &str = env!("CARGO_BIN_EXE_ykt");

/// The wallets' passphrase (`$YKT_WALLET_PASSPHRASE`) in these tests.
pub const WALLET_PASSPHRASE: &str = "Correct-Horse-Battery-7";

/// A scratch directory `$TMPDIR/ykt-KIND-NAME-PID`, made empty when created and removed on
/// drop, holding the key directories, databases and wallets of one test.
pub struct Scratch {
    root: PathBuf,
}

impl Scratch {
    /// A fresh scratch directory for test `name` of the suite `kind`.
    pub fn new(kind: &str, name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("ykt-{kind}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Self { root }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `name` in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `name` in the directory, as a command-line argument.
    pub fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// The URL of the SQLite database file `name` in the directory (made when first opened).
    pub fn sqlite(&self, name: &str) -> String {
        format!("sqlite://{}?mode=rwc", self.p(name))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `ykt ARGS` with `RUST_LOG=info`, stdin closed and stdout and stderr piped; the caller sets
/// the passphrases it needs.
pub fn ykt(args: &[&str]) -> Command {
    let mut command = Command::new(YKT);
    command
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `command` to its end (at most `timeout`, see [`wait_output`]) and gives its output.
pub fn run(command: &mut Command, timeout: Duration) -> Output {
    wait_output(command.spawn().unwrap(), "ykt", timeout)
}

/// The stdout of `ykt ARGS`, which must have succeeded with `out`.
pub fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "ykt {args:?}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Reads `from` to its end on a thread of its own.
pub fn drain(mut from: impl std::io::Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = from.read_to_end(&mut text);
        String::from_utf8_lossy(&text).to_string()
    })
}

/// Waits for `child` to exit (at most `timeout`, then kills it and panics naming `what`) and
/// gives its output (stdout and stderr read as it runs, so that a full pipe cannot stop it).
pub fn wait_output(mut child: Child, what: &str, timeout: Duration) -> Output {
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let text = |t: Option<JoinHandle<String>>| t.map(|t| t.join().unwrap()).unwrap_or_default();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {timeout:?}: {}", text(stderr));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: text(stdout).into_bytes(),
        stderr: text(stderr).into_bytes(),
    }
}

/// A running `ykt tsm serve`: the child, the address and pin it printed, and its output being
/// read.
pub struct ServedTsm {
    pub child: Child,
    /// `https://127.0.0.1:PORT` (`http://…` under `--danger-insecure-http`).
    pub url: String,
    /// The SPKI pin of its TLS key (`sha256/<base64>`); empty for plain HTTP (see
    /// [`ServedTsm::tls_pin`]).
    pub pin: String,
    /// The line that named the address.
    pub first_line: String,
    pub stdout: Option<JoinHandle<String>>,
    pub stderr: Option<JoinHandle<String>>,
}

impl ServedTsm {
    /// A client of it: TLS pinned to its key, or plain HTTP.
    pub fn client(&self) -> TsmClient {
        tsm_client(&self.url, self.tls_pin())
    }

    /// The pin, `None` for a plain-HTTP server.
    pub fn tls_pin(&self) -> Option<&str> {
        (!self.pin.is_empty()).then_some(self.pin.as_str())
    }
}

/// The address and pin in the first line of `ykt tsm serve`: `TSM ID listening on
/// https://ADDR (TLS 1.3); SPKI pin sha256/…`, or `TSM ID listening on http://ADDR (plain
/// HTTP: --danger-insecure-http)` (no pin). `None` when the line names no address.
pub fn served_address(line: &str) -> Option<(String, Option<String>)> {
    let rest = line.trim().split("listening on ").nth(1)?;
    let url = rest.split_whitespace().next()?.to_string();
    let pin = rest.split("SPKI pin ").nth(1).map(|p| p.trim().to_string());
    match (url.starts_with("https://"), &pin) {
        (true, Some(_)) => {}
        (false, None) if url.starts_with("http://") => {}
        _ => return None,
    }
    (!url.ends_with(":0")).then_some((url, pin))
}

/// A client of the TSM at `url`: TLS pinned to `pin`, or plain HTTP when there is none.
pub fn tsm_client(url: &str, pin: Option<&str>) -> TsmClient {
    match pin {
        Some(pin) => TsmClient::with_tls(url, &[SpkiPin::parse(pin).unwrap()]).unwrap(),
        None => TsmClient::danger_plain_http(url).unwrap(),
    }
}

/// The arguments that point `ykt wallet enrol` at the TSM at `url`: `--tsm URL --tsm-pin PIN`,
/// or `--tsm URL --danger-insecure-http` when it has no pin.
pub fn tsm_args<'a>(url: &'a str, pin: Option<&'a str>) -> Vec<&'a str> {
    match pin {
        Some(pin) => vec!["--tsm", url, "--tsm-pin", pin],
        None => vec!["--tsm", url, "--danger-insecure-http"],
    }
}

/// Starts `ykt tsm serve --test-keys --test-payments --listen LISTEN --db DB --dir DIR EXTRA…`
/// (`RUST_LOG=info`) and waits until it prints the address it listens on; panics with its
/// stderr when it prints none.
pub fn serve_tsm(listen: &str, db: &str, dir: &str, extra: &[&str]) -> ServedTsm {
    let mut child = ykt(&["tsm", "serve", "--test-keys", "--test-payments"])
        .args(["--listen", listen, "--db", db, "--dir", dir])
        .args(extra)
        .spawn()
        .unwrap();
    let mut stderr = Some(drain(child.stderr.take().unwrap()));
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first_line = String::new();
    reader.read_line(&mut first_line).unwrap();
    let stdout = Some(drain(reader));
    match served_address(&first_line) {
        Some((url, pin)) => ServedTsm {
            child,
            url,
            pin: pin.unwrap_or_default(),
            first_line,
            stdout,
            stderr,
        },
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.take().unwrap().join().unwrap();
            panic!("no address printed: {first_line:?}\n{err}");
        }
    }
}

/// `GET path` of the TSM `client` talks to: the status and the body as text.
pub fn tsm_get(client: &TsmClient, path: &str) -> Result<(u16, String), ClientError> {
    let (status, body) = client.get_raw(path)?;
    Ok((status, String::from_utf8_lossy(&body).to_string()))
}

/// The `ApduResultReq` requests a TSM served (any result code), summed from its `/metrics` text.
pub fn apdu_results(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("ykt_tsm_requests_total{msg_type=\"ApduResultReq\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
