//! Load generator (docs/benchmarks.md, "The TSM: issuance and concurrent sessions"): the TSM in
//! process on 127.0.0.1:0 (the real engine and HTTP server, test keys in memory vaults, a store
//! on `--db`), and `--phones` simulated phones, each with its own blank SE and enrolled device
//! key, opening a card over real HTTP at most `--concurrency` at a time. Every relay message
//! waits `--rtt-ms` on the phone's side before its answer is sent (the simulated APDU round
//! trip). Phones are tokio tasks; the server runs on its own runtime. With `--tls` the server
//! is `serve_tls` (TLS 1.3, a self-signed key made for the run) and every phone's connection a
//! pinned TLS 1.3 connection (`tls::pinned_client_config`), as a wallet's is; without it, plain
//! HTTP.
//!
//! ```text
//! cargo run --release -p ykt-tsm-service --example load -- \
//!     --db postgres://… --phones 400 --concurrency 16 --rtt-ms 0 [--tls]
//! ```
//!
//! Prints one `key value` line per figure: issuances per second (open cards completed ÷ wall
//! time of the open-card phase), the time of each HTTP exchange measured on the phone's side
//! from the first byte written to the last byte read (sealing and the SE's work excluded), the
//! same from the server's `/metrics` histogram (request in to response out, bucket bounds),
//! the largest number of open-card sessions in progress at once, the errors, and on PostgreSQL
//! the write transactions per issuance (transaction ids the open-card phase used).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/http/se.rs"]
mod se;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore};
use ykt_card::Card;
use ykt_crypto::Sm2PrivateKey;
use ykt_envelope::{Code, Envelope, Header, Sm2Signer};
use ykt_store::Store;
use ykt_tsm::api::{self, FlowResp, FlowStatus, MessageDef};
use ykt_tsm::hex::Hex;
use ykt_tsm::relay::relay_on_card;
use ykt_tsm_service::engine::{CardStock, Engine, EngineConfig, Keys};
use ykt_tsm_service::http::tls::{ServerTls, pinned_client_config, self_signed};
use ykt_tsm_service::http::{AdminToken, ServerConfig};

const TSM_ID: &str = "SPTSM-LOAD";
const ADMIN_TOKEN: &str = "admin-token-0123456789";

struct Args {
    db: String,
    phones: usize,
    concurrency: usize,
    rtt: Duration,
    server_threads: usize,
    tls: bool,
}

fn args() -> Args {
    let mut a = Args {
        db: String::new(),
        phones: 100,
        concurrency: 10,
        rtt: Duration::ZERO,
        server_threads: 2,
        tls: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--tls" {
            a.tls = true;
            continue;
        }
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--db" => a.db = value,
            "--phones" => a.phones = value.parse().expect("--phones N"),
            "--concurrency" => a.concurrency = value.parse().expect("--concurrency N"),
            "--rtt-ms" => a.rtt = Duration::from_millis(value.parse().expect("--rtt-ms MS")),
            "--server-threads" => a.server_threads = value.parse().expect("--server-threads N"),
            _ => panic!(
                "unknown flag {flag} (--db, --phones, --concurrency, --rtt-ms, --server-threads, --tls)"
            ),
        }
    }
    if a.db.is_empty() {
        let path = std::env::temp_dir().join(format!("ykt-load-{}.db", std::process::id()));
        a.db = format!("sqlite://{}?mode=rwc", path.display());
    }
    a
}

/// The SQLite files of a database the run made itself (`--db` not given).
fn own_sqlite_files(db: &str) -> Vec<std::path::PathBuf> {
    let Some(path) = db
        .strip_prefix("sqlite://")
        .and_then(|p| p.strip_suffix("?mode=rwc"))
    else {
        return Vec::new();
    };
    if !path.contains("ykt-load-") {
        return Vec::new();
    }
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|s| std::path::PathBuf::from(format!("{path}{s}")))
        .collect()
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A connection's byte stream: plain TCP or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Where the TSM is and how to reach it.
#[derive(Clone)]
struct Target {
    addr: std::net::SocketAddr,
    /// The pinned TLS client configuration (`--tls`), or plain HTTP.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    async fn connect(&self) -> std::io::Result<Box<dyn Io>> {
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(match &self.tls {
            Some(config) => {
                let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, stream)
                    .await?;
                Box::new(tls)
            }
            None => Box::new(stream),
        })
    }
}

/// One keep-alive HTTP/1.1 connection to the TSM, written by hand (the service's own client is
/// blocking; a phone here is a task, not a thread).
struct Connection {
    target: Target,
    stream: Box<dyn Io>,
    buf: Vec<u8>,
    last_used: Instant,
}

impl Connection {
    async fn open(target: &Target) -> std::io::Result<Self> {
        Ok(Self {
            target: target.clone(),
            stream: target.connect().await?,
            buf: Vec::with_capacity(8192),
            last_used: Instant::now(),
        })
    }

    /// A new connection if this one has been idle long enough for the server to have closed
    /// it (between production and the timed phase a phone may wait a while).
    async fn refresh(&mut self) -> std::io::Result<()> {
        if self.last_used.elapsed() > Duration::from_secs(5) {
            let target = self.target.clone();
            *self = Self::open(&target).await?;
        }
        Ok(())
    }

    /// `POST /v1/{msg_type}`: the HTTP status and the body.
    async fn post(&mut self, msg_type: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let head = format!(
            "POST /v1/{msg_type} HTTP/1.1\r\nHost: tsm\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(&request).await?;
        self.buf.clear();
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        let header_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..header_end]).map_err(|_| bad("header"))?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("status line"))?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .ok_or_else(|| bad("no content-length"))?;
        while self.buf.len() < header_end + length {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        self.last_used = Instant::now();
        Ok((status, self.buf[header_end..header_end + length].to_vec()))
    }
}

/// A phone: its device key, its SE, its connection.
struct Phone {
    index: usize,
    signer: Sm2Signer,
    id: String,
    nonce: u64,
    request: u64,
    card: Card,
    conn: Connection,
}

#[derive(Default)]
struct Stats {
    /// Phone-side time of every exchange during the open-card phase (µs).
    steps: Mutex<Vec<u64>>,
    errors: AtomicU64,
    completed: AtomicU64,
    open_sessions: AtomicUsize,
    most_open: AtomicUsize,
    messages: AtomicU64,
}

impl Phone {
    fn key(index: usize) -> Sm2PrivateKey {
        let mut d = [0x33u8; 32];
        d[..8].copy_from_slice(&(index as u64 + 1).to_be_bytes());
        Sm2PrivateKey::from_bytes(&d).unwrap()
    }

    fn seal(&mut self, def: MessageDef, txn_id: &str, body: &impl Serialize) -> Envelope {
        self.request += 1;
        self.nonce += 1;
        let header = Header {
            msg_type: def.request.into(),
            msg_no: def.msg_no.into(),
            sender_id: self.id.clone(),
            receiver_id: TSM_ID.into(),
            txn_id: txn_id.into(),
            request_id: format!("p{}-r{}", self.index, self.request),
        };
        let mut nonce = [0x5Au8; 16];
        nonce[..8].copy_from_slice(&(self.index as u64).to_be_bytes());
        nonce[8..].copy_from_slice(&self.nonce.to_be_bytes());
        Envelope::seal(&header, body, None, &nonce, now_ms(), &self.signer).unwrap()
    }

    /// Sends `env`; the answer and the time of the exchange. The TSM's signature on the answer
    /// is not checked here (the HTTP tests do): a phone's CPU is not the server's, and on this
    /// machine they share two cores.
    async fn send(&mut self, env: &Envelope) -> Result<(Envelope, Duration), String> {
        let bytes = env.to_vec();
        self.conn
            .refresh()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let t = Instant::now();
        let (status, body) = self
            .conn
            .post(&env.msg_type, &bytes)
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let elapsed = t.elapsed();
        let answer =
            Envelope::from_slice(&body).map_err(|_| format!("HTTP {status}: not an envelope"))?;
        match answer.code() {
            Some(Code::Ok) => Ok((answer, elapsed)),
            other => Err(format!("HTTP {status}: {other:?} {:?}", answer.result)),
        }
    }

    async fn enrol(&mut self) -> Result<(), String> {
        let req = api::EnrolReq {
            device_pub: Hex(self.signer.public_key().to_bytes().to_vec()),
            device_model: "load phone".into(),
        };
        let env = self.seal(api::ENROL, "enrol", &req);
        let (answer, _) = self.send(&env).await?;
        let resp: api::EnrolResp = answer.body().map_err(|e| e.to_string())?;
        self.id = resp.device_id;
        Ok(())
    }

    /// Opens a card: OpenCardReq, then one ApduResultReq per relay message.
    async fn open_card(&mut self, rtt: Duration, stats: &Stats) -> Result<(), String> {
        let txn = format!("open-{}", self.index);
        let req = api::OpenCardReq {
            management: ykt_tsm::Management::Authorized,
            city_code: "3304".into(),
        };
        let env = self.seal(api::OPEN_CARD, &txn, &req);
        let (answer, t) = self.send(&env).await?;
        let mut times = vec![t];
        let mut flow: FlowResp = answer.body().map_err(|e| e.to_string())?;
        let open = stats.open_sessions.fetch_add(1, Ordering::SeqCst) + 1;
        stats.most_open.fetch_max(open, Ordering::SeqCst);
        let result = async {
            while flow.status == FlowStatus::Running {
                if times.len() > 200 {
                    return Err("the flow does not end".to_string());
                }
                let relay = flow.relay.clone().ok_or("a running flow without relay")?;
                let card = &mut self.card;
                let response = relay_on_card(&relay, |c| card.transmit(c).unwrap());
                if !rtt.is_zero() {
                    tokio::time::sleep(rtt).await;
                }
                let env = self.seal(api::APDU_RESULT, &txn, &api::ApduResultReq { response });
                let (answer, t) = self.send(&env).await?;
                times.push(t);
                flow = answer.body().map_err(|e| e.to_string())?;
            }
            if flow.status == FlowStatus::Completed {
                Ok(())
            } else {
                Err(format!("flow ended {:?}", flow.status))
            }
        }
        .await;
        stats.open_sessions.fetch_sub(1, Ordering::SeqCst);
        stats
            .messages
            .fetch_add(times.len() as u64, Ordering::Relaxed);
        stats
            .steps
            .lock()
            .await
            .extend(times.iter().map(|t| t.as_micros() as u64));
        result
    }
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        tsm_id: TSM_ID.into(),
        parties: se::parties(),
        card_stock: CardStock {
            issuer_id: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
            start_date: [0x20, 0x24, 0x01, 0x01],
            expiry_date: [0x20, 0x34, 0x12, 0x31],
            number_prefix: [0x31, 0x04, 0x00, 0x00],
        },
        test_payments: true,
    }
}

/// A blank SE for phone `index`, built as [`se::new_se`] builds one, with the whole index as
/// the serial (`new_se` takes a one-byte serial: every 256th phone would share a SEID).
fn blank_se(index: usize) -> Card {
    use ykt_tsm::testing::{SeOptions, blank_se};

    let serial = u32::try_from(index).unwrap().to_be_bytes();
    let entropy = Box::new(ykt_card::SeededRandom::new(index as u64 + 1));
    blank_se(&SeOptions::wide_serial(&serial), entropy).unwrap()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// From the Prometheus text: the bucket bound under which fraction `p` of `msg_type`'s
/// requests fell, and the count.
fn histogram_quantile(metrics: &str, msg_type: &str, p: f64) -> (String, u64) {
    let prefix = format!("ykt_tsm_request_duration_seconds_bucket{{msg_type=\"{msg_type}\",le=\"");
    let buckets: Vec<(String, u64)> = metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, n) = rest.split_once("\"} ")?;
            Some((le.to_string(), n.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0, |b| b.1);
    let want = (total as f64 * p).ceil() as u64;
    let le = buckets
        .iter()
        .find(|b| b.1 >= want)
        .map_or_else(|| "none".into(), |b| b.0.clone());
    (le, total)
}

async fn xid(url: &str) -> Option<i64> {
    use sqlx::Connection as _;
    let mut c = sqlx::PgConnection::connect(url).await.ok()?;
    let (x,): (i64,) = sqlx::query_as("SELECT txid_current()")
        .fetch_one(&mut c)
        .await
        .ok()?;
    Some(x)
}

async fn metrics(target: &Target) -> String {
    let mut stream = target.connect().await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: tsm\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    // A TLS server may end without close_notify; what arrived is the answer.
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn main() {
    let a = args();
    let postgres = a.db.starts_with("postgres");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.server_threads)
        .thread_name("tsm")
        .enable_all()
        .build()
        .unwrap();
    let target = server_rt.block_on(async {
        let store = Store::connect(&a.db).await.expect("the store");
        let (sei, sp) = se::vaults();
        let keys = Keys {
            sei: Box::new(sei),
            sp: Box::new(sp),
        };
        let engine = Engine::new(store, keys, engine_config()).await.unwrap();
        let tsm = Sm2PrivateKey::from_bytes(&[0x42; 32]).unwrap();
        let config = ServerConfig::new(
            TSM_ID,
            Sm2Signer::new(tsm),
            AdminToken::new(ADMIN_TOKEN).unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        if a.tls {
            let pair = self_signed(&["localhost".to_string()]).unwrap();
            let tls =
                ServerTls::from_pem(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes()).unwrap();
            let server = ykt_tsm_service::http::serve_tls(listener, engine, config, tls);
            tokio::spawn(async move { server.await.unwrap() });
            Target {
                addr,
                tls: Some(pinned_client_config(&[pair.pin]).unwrap()),
            }
        } else {
            let server = ykt_tsm_service::http::serve(listener, engine, config);
            tokio::spawn(async move { server.await.unwrap() });
            Target { addr, tls: None }
        }
    });

    let phones_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("phones")
        .enable_all()
        .build()
        .unwrap();
    phones_rt.block_on(async {
        // Production: blank SEs, connections, enrolment (not timed).
        let t = Instant::now();
        let mut phones = Vec::with_capacity(a.phones);
        for index in 0..a.phones {
            let signer = Sm2Signer::new(Phone::key(index));
            let id = format!("enrol-{}", ykt_envelope::key_id_sm2(signer.public_key()));
            phones.push(Phone {
                index,
                signer,
                id,
                nonce: 0,
                request: 0,
                card: blank_se(index),
                conn: Connection::open(&target).await.expect("connect"),
            });
        }
        let gate = Arc::new(Semaphore::new(64));
        let mut tasks = Vec::new();
        for mut phone in phones {
            let gate = Arc::clone(&gate);
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                phone.enrol().await.expect("enrolment");
                phone
            }));
        }
        let mut phones = Vec::with_capacity(a.phones);
        for task in tasks {
            phones.push(task.await.unwrap());
        }
        println!("setup_s {:.1}", t.elapsed().as_secs_f64());

        let before = if postgres { xid(&a.db).await } else { None };
        let before_metrics = metrics(&target).await;
        let stats = Arc::new(Stats::default());
        let gate = Arc::new(Semaphore::new(a.concurrency));
        let t = Instant::now();
        let mut tasks = Vec::new();
        for mut phone in phones {
            let (gate, stats, rtt) = (Arc::clone(&gate), Arc::clone(&stats), a.rtt);
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                match phone.open_card(rtt, &stats).await {
                    Ok(()) => {
                        stats.completed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("phone {}: {e}", phone.index);
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let wall = t.elapsed().as_secs_f64();
        let after = if postgres { xid(&a.db).await } else { None };
        let text = metrics(&target).await;

        let completed = stats.completed.load(Ordering::Relaxed);
        let mut steps = std::mem::take(&mut *stats.steps.lock().await);
        steps.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        println!("db {}", if postgres { "postgres" } else { "sqlite" });
        println!("phones {}", a.phones);
        println!("concurrency {}", a.concurrency);
        println!("rtt_ms {}", a.rtt.as_millis());
        println!("transport {}", if a.tls { "tls13" } else { "http" });
        println!("completed {completed}");
        println!("errors {}", stats.errors.load(Ordering::Relaxed));
        println!("wall_s {wall:.2}");
        println!("issuances_per_s {:.2}", completed as f64 / wall);
        println!(
            "messages_per_issuance {:.1}",
            stats.messages.load(Ordering::Relaxed) as f64 / completed.max(1) as f64
        );
        println!(
            "most_open_sessions {}",
            stats.most_open.load(Ordering::SeqCst)
        );
        println!("steps {}", steps.len());
        println!("step_p50_ms {:.2}", ms(percentile(&steps, 0.50)));
        println!("step_p99_ms {:.2}", ms(percentile(&steps, 0.99)));
        println!("step_max_ms {:.2}", ms(steps.last().copied().unwrap_or(0)));
        for def in [api::OPEN_CARD, api::APDU_RESULT] {
            // Counted from the start of the open-card phase (enrolment is not in these types).
            let (_, n_before) = histogram_quantile(&before_metrics, def.request, 0.99);
            let (le, n) = histogram_quantile(&text, def.request, 0.99);
            let (le50, _) = histogram_quantile(&text, def.request, 0.50);
            println!(
                "server_{}_count {}\nserver_{}_p50_le_s {le50}\nserver_{}_p99_le_s {le}",
                def.request,
                n - n_before,
                def.request,
                def.request
            );
        }
        if let (Some(b), Some(e)) = (before, after) {
            // The second txid_current() call takes one id itself.
            let used = e - b - 1;
            println!("write_transactions {used}");
            println!(
                "write_transactions_per_issuance {:.2}",
                used as f64 / completed.max(1) as f64
            );
        }
        println!(
            "loadavg {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split(' ')
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    });
    drop(server_rt);
    for f in own_sqlite_files(&a.db) {
        let _ = std::fs::remove_file(f);
    }
}
