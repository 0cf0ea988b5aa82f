//! A TLS endpoint that is not the TSM, for checking that a client refuses it (RP-SEC-001,
//! client.md §6.4 tests: "a foreign SPKI → refused before any request byte is sent; a TLS
//! 1.2-only server → refused"). It listens on 127.0.0.1, completes handshakes with a key made
//! for it, counts the application bytes a client sends after a handshake and closes the
//! connection; it never answers.
//! Blocking (one thread per connection), for tests and the conformance harness.

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::version::{TLS12, TLS13};

use super::{ServerTls, SpkiPin, TlsError, self_signed};

/// How long one probe connection may stay silent before it is closed.
const PROBE_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Which TLS the probe server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeTls {
    /// TLS 1.3 (a server with another key than the TSM's).
    Tls13,
    /// TLS 1.2 only (a server a TLS 1.3-only client must refuse whatever its key).
    Tls12Only,
}

/// A running probe server; stopped on drop.
pub struct ProbeServer {
    addr: SocketAddr,
    pin: SpkiPin,
    seen: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    handshakes: AtomicU64,
    application_bytes: AtomicU64,
}

impl ProbeServer {
    /// Starts one on an ephemeral port of 127.0.0.1 with a fresh self-signed key.
    pub fn start(tls: ProbeTls) -> Result<Self, TlsError> {
        let pair = self_signed(&["localhost".to_string(), "127.0.0.1".to_string()])?;
        let versions: &[&'static rustls::SupportedProtocolVersion] = match tls {
            ProbeTls::Tls13 => &[&TLS13],
            ProbeTls::Tls12Only => &[&TLS12],
        };
        let server =
            ServerTls::with_versions(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes(), versions)?;
        let config = server.config();
        let listener = TcpListener::bind("127.0.0.1:0").map_err(TlsError::Listen)?;
        let addr = listener.local_addr().map_err(TlsError::Listen)?;
        let seen = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || accept_loop(&listener, &config, &seen, &stop))
        };
        Ok(Self {
            addr,
            pin: pair.pin,
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The pin of its key.
    pub fn pin(&self) -> SpkiPin {
        self.pin
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.seen.connections.load(Ordering::SeqCst)
    }

    /// Handshakes completed so far.
    pub fn handshakes(&self) -> u64 {
        self.seen.handshakes.load(Ordering::SeqCst)
    }

    /// Application bytes received after a handshake (a request, or part of one).
    pub fn application_bytes(&self) -> u64 {
        self.seen.application_bytes.load(Ordering::SeqCst)
    }

    /// Waits until the connections accepted so far are finished with (their handshake failed
    /// or completed and the client sent what it would), up to `timeout`.
    pub fn settle(&self, timeout: Duration) {
        let start = std::time::Instant::now();
        let mut last = (
            self.connections(),
            self.handshakes(),
            self.application_bytes(),
        );
        while start.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(50));
            let now = (
                self.connections(),
                self.handshakes(),
                self.application_bytes(),
            );
            if now == last {
                return;
            }
            last = now;
        }
    }
}

impl std::fmt::Debug for ProbeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeServer")
            .field("addr", &self.addr)
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl Drop for ProbeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    config: &Arc<rustls::ServerConfig>,
    seen: &Arc<Counters>,
    stop: &AtomicBool,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        seen.connections.fetch_add(1, Ordering::SeqCst);
        let (config, seen) = (Arc::clone(config), Arc::clone(seen));
        std::thread::spawn(move || serve_one(stream, config, &seen));
    }
}

fn serve_one(stream: TcpStream, config: Arc<rustls::ServerConfig>, seen: &Counters) {
    let _ = stream.set_read_timeout(Some(PROBE_READ_TIMEOUT));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    // Drive the handshake first: a client that refuses our key ends it here.
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return;
        }
    }
    seen.handshakes.fetch_add(1, Ordering::SeqCst);
    // The first application bytes are counted and the connection closed (it never answers, so a
    // client that got this far fails at once instead of waiting for its timeout).
    let mut buf = [0u8; 4096];
    if let Ok(n) = tls.read(&mut buf) {
        seen.application_bytes
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::SeqCst);
    }
}
