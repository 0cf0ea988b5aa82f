//! A fake pcscd (the listening side of the vpcd protocol), the served card in a thread, and the
//! transcript runner.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ykt_card::Card;
use ykt_transport::TransportError;
use ykt_transport::vpcd::{self, ServeOptions};

const TIMEOUT: Duration = Duration::from_secs(5);

/// The listening side of vpcd, as pcscd's driver would be.
pub struct FakePcscd {
    listener: TcpListener,
}

impl FakePcscd {
    pub fn bind() -> Self {
        Self::bind_to(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn bind_to(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        FakePcscd { listener }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Waits for the card to connect.
    pub fn accept(&self) -> Peer {
        let start = Instant::now();
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                    return Peer { stream };
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    assert!(start.elapsed() < TIMEOUT, "the card did not connect");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

/// One connection from the card.
pub struct Peer {
    pub stream: TcpStream,
}

impl Peer {
    pub fn send(&mut self, payload: &[u8]) {
        self.stream
            .write_all(&vpcd::frame::encode(payload).unwrap())
            .unwrap();
    }

    pub fn recv(&mut self) -> Vec<u8> {
        let mut len = [0u8; 2];
        self.stream
            .read_exact(&mut len)
            .expect("reply frame header");
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream
            .read_exact(&mut payload)
            .expect("reply frame payload");
        payload
    }

    pub fn exchange(&mut self, payload: &[u8]) -> Vec<u8> {
        self.send(payload);
        self.recv()
    }

    /// Asserts that nothing arrives within 150 ms.
    pub fn expect_silence(&mut self) {
        self.stream
            .set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("expected no reply, got {other:?} {byte:02X?}"),
        }
        self.stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    }
}

/// A card served by `vpcd::serve` in its own thread.
pub struct Served {
    pub stop: Arc<AtomicBool>,
    handle: JoinHandle<(Card, Result<(), TransportError>)>,
}

impl Served {
    pub fn start(card: Card, addr: SocketAddr, options: ServeOptions<'static>) -> Served {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut card = card;
            let result = vpcd::serve(&mut card, addr, options, &flag);
            (card, result)
        });
        Served { stop, handle }
    }

    /// Raises the stop flag and returns the card and the result; serving must end promptly.
    pub fn stop(self) -> (Card, Result<(), TransportError>) {
        self.stop.store(true, Ordering::SeqCst);
        self.join()
    }

    /// Waits for `serve` to return on its own (within the timeout).
    pub fn join(self) -> (Card, Result<(), TransportError>) {
        let start = Instant::now();
        while !self.handle.is_finished() {
            assert!(start.elapsed() < TIMEOUT, "serve did not return");
            std::thread::sleep(Duration::from_millis(5));
        }
        self.handle.join().unwrap()
    }
}

/// Fast reconnects and stop checks, so tests run quickly.
pub fn quick_options() -> ServeOptions<'static> {
    let mut options = ServeOptions::default();
    options.reconnect_initial = Duration::from_millis(10);
    options.reconnect_max = Duration::from_millis(50);
    options.poll_interval = Duration::from_millis(20);
    options
}

/// Hex with spaces allowed.
pub fn unhex(text: &str) -> Vec<u8> {
    let clean: String = text.split_whitespace().collect();
    hex::decode(&clean).unwrap_or_else(|e| panic!("bad hex {text:?}: {e}"))
}

/// Runs a `tests/data/*.txt` vpcd transcript (format in the file header) against `peer`.
pub fn run_transcript(peer: &mut Peer, transcript: &str, atr: &[u8]) {
    let lines: Vec<(usize, &str)> = transcript
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for (n, line) in &lines {
        if let Some(command) = line.strip_prefix(">>") {
            peer.send(&unhex(command));
        } else if let Some(expected) = line.strip_prefix("<<") {
            let expected = match expected.trim() {
                "ATR" => atr.to_vec(),
                hex => unhex(hex),
            };
            let got = peer.recv();
            assert_eq!(
                hex::encode_upper(&got),
                hex::encode_upper(&expected),
                "transcript line {n}: {line}"
            );
        } else {
            panic!("transcript line {n}: neither >> nor <<: {line}");
        }
    }
    peer.expect_silence();
}
