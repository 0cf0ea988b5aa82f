//! The socket side: connect to pcscd, decode frames, answer, reconnect.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::{debug, info, trace, warn};
use ykt_card::Card;

use super::frame::{self, FrameDecoder};
use super::message::{self, TORN_RESPONSE};
use crate::error::TransportError;

/// pcscd's first vpcd slot ("Virtual PCD 00 00") as configured by Debian's `vsmartcard-vpcd`
/// (`/etc/reader.conf.d/vpcd`, `DEVICENAME /dev/null:0x8C7B`). The second slot is port 35964.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 35963));

/// Error a caller's after-command hook may return; it stops [`serve`] as [`TransportError::Hook`].
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// Called after every message from pcscd was applied to the card (APDUs and power controls), with
/// the card, *before* the reply is sent: whatever the hook persists is durable by the time the
/// host sees the response, as on a card whose EEPROM write precedes its answer.
pub type AfterCommand<'a> = Box<dyn FnMut(&Card) -> Result<(), HookError> + Send + 'a>;

/// Knobs of [`serve`]. Start from [`ServeOptions::default`].
#[non_exhaustive]
pub struct ServeOptions<'a> {
    /// First wait after pcscd could not be reached; doubled after each failure.
    pub reconnect_initial: Duration,
    /// Longest wait between connection attempts.
    pub reconnect_max: Duration,
    /// Timeout of one TCP connect attempt.
    pub connect_timeout: Duration,
    /// How often the stop flag is checked while waiting for pcscd's next message.
    pub poll_interval: Duration,
    /// Optional hook, see [`AfterCommand`].
    pub after_command: Option<AfterCommand<'a>>,
}

impl Default for ServeOptions<'_> {
    fn default() -> Self {
        ServeOptions {
            reconnect_initial: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            poll_interval: Duration::from_millis(100),
            after_command: None,
        }
    }
}

impl<'a> ServeOptions<'a> {
    /// Sets the after-command hook.
    pub fn with_after_command(
        mut self,
        hook: impl FnMut(&Card) -> Result<(), HookError> + Send + 'a,
    ) -> Self {
        self.after_command = Some(Box::new(hook));
        self
    }
}

impl core::fmt::Debug for ServeOptions<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("reconnect_initial", &self.reconnect_initial)
            .field("reconnect_max", &self.reconnect_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("poll_interval", &self.poll_interval)
            .field("after_command", &self.after_command.is_some())
            .finish()
    }
}

/// Runs `card` as a vpcd card: a TCP client of pcscd's vpcd driver at `addr` (usually
/// [`DEFAULT_ADDR`]), until `stop` becomes true.
///
/// While pcscd is down or not yet started, connection attempts repeat with exponential backoff.
/// When pcscd closes the connection (it restarted, or was stopped), the card loses power, just as
/// a card pulled from a reader, and serving goes on with the next connection. Returns `Ok(())`
/// once `stop` is seen (within about [`ServeOptions::poll_interval`]); errors only when the
/// after-command hook fails.
pub fn serve(
    card: &mut Card,
    addr: SocketAddr,
    mut options: ServeOptions<'_>,
    stop: &AtomicBool,
) -> Result<(), TransportError> {
    let mut backoff = options.reconnect_initial;
    let mut waiting_announced = false;
    while !stop.load(Ordering::SeqCst) {
        let stream = match TcpStream::connect_timeout(&addr, options.connect_timeout) {
            Ok(stream) => stream,
            Err(error) => {
                if waiting_announced {
                    debug!(%addr, %error, "pcscd still not reachable");
                } else {
                    info!(%addr, %error, "pcscd not reachable; retrying");
                    waiting_announced = true;
                }
                sleep_unless_stopped(backoff, options.poll_interval, stop);
                backoff = (backoff * 2).min(options.reconnect_max);
                continue;
            }
        };
        let _session = tracing::info_span!("vpcd", %addr).entered();
        info!("connected to pcscd: card inserted");
        backoff = options.reconnect_initial;
        waiting_announced = false;
        let outcome = session(card, &stream, &mut options, stop);
        if card.is_powered() {
            card.power_off();
        }
        match outcome {
            Ok(SessionEnd::Stopped) => break,
            Ok(SessionEnd::Closed) => info!("pcscd closed the connection: card removed"),
            Err(SessionError::Io(error)) => warn!(%error, "vpcd connection lost: card removed"),
            Err(SessionError::Fatal(error)) => return Err(error),
        }
    }
    info!("vpcd card stopped");
    Ok(())
}

enum SessionEnd {
    Stopped,
    Closed,
}

enum SessionError {
    Io(std::io::Error),
    Fatal(TransportError),
}

impl From<std::io::Error> for SessionError {
    fn from(e: std::io::Error) -> Self {
        SessionError::Io(e)
    }
}

fn session(
    card: &mut Card,
    mut stream: &TcpStream,
    options: &mut ServeOptions<'_>,
    stop: &AtomicBool,
) -> Result<SessionEnd, SessionError> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(options.poll_interval))?;
    let mut decoder = FrameDecoder::new();
    let mut buffer = vec![0u8; 2 + frame::MAX_PAYLOAD];
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(SessionEnd::Stopped);
        }
        let n = match stream.read(&mut buffer) {
            Ok(0) => return Ok(SessionEnd::Closed),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        quick_ack(stream);
        decoder.push(&buffer[..n]);
        while let Some(payload) = decoder.next_frame() {
            let reply = message::respond(card, &payload);
            if let Some(hook) = options.after_command.as_mut() {
                hook(card).map_err(|e| SessionError::Fatal(TransportError::Hook(e)))?;
            }
            if let Some(reply) = reply {
                let framed = frame::encode(&reply).or_else(|error| {
                    warn!(%error, "response does not fit a vpcd frame; replying 6F00");
                    frame::encode(&TORN_RESPONSE)
                });
                match framed {
                    Ok(bytes) => stream.write_all(&bytes)?,
                    Err(error) => return Err(SessionError::Fatal(error)),
                }
            }
        }
    }
}

/// Sets `TCP_QUICKACK`. Linux leaves quick-ACK mode again on its own, so this runs after every
/// read; without it pcscd waits ~40 ms for a delayed ACK on each APDU (21 APDU/s instead of
/// thousands). Other systems have no such option, and their delayed ACKs are left as they are.
fn quick_ack(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_quickack(true) {
        trace!(%error, "TCP_QUICKACK not set");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}

fn sleep_unless_stopped(total: Duration, slice: Duration, stop: &AtomicBool) {
    let end = Instant::now() + total;
    loop {
        let now = Instant::now();
        if now >= end || stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep((end - now).min(slice));
    }
}
