//! Card channels: how host code reaches a card, and how the simulated card reaches PC/SC.
//!
//! This crate owns all I/O between host code and a card:
//!
//! * [`CardChannel`]: one C-APDU in, one R-APDU out, plus reset. Its error, [`TransportError`],
//!   means "no response"; a card that said no is a status word in the [`ykt_apdu::ResponseApdu`]
//!   (or [`Error::Card`] from [`CardChannel::transmit_checked`]).
//! * [`InProcess`]: a [`ykt_card::Card`] called directly.
//! * [`PcscChannel`] (feature `pcsc`, on by default): a card in a PC/SC reader via libpcsclite.
//! * [`nv`]: the terminal's transaction journal in a file (`fsync` on flush).
//! * [`vpcd`]: the other direction, the simulated card as a *card* behind pcscd's vpcd driver, so
//!   opensc-tool, pcsc_scan, pyscard and [`PcscChannel`] can talk to it.
//!
//! ```text
//!  host flow ──CardChannel──┬── InProcess ──────────────────────────────▶ Card
//!                           └── PcscChannel ─▶ pcscd ─▶ vpcd TCP ─▶ vpcd::serve ─▶ Card
//! ```
//!
//! It deliberately does not own APDU encoding (`ykt-apdu`), the card runtime and its persistence
//! format (`ykt-card`), nor any applet or terminal logic: bytes pass through untouched (no GET
//! RESPONSE chaining, no secure messaging). It never installs a tracing subscriber; APDU headers
//! and status words are logged at `debug`, data at `trace` with PINs and keys redacted
//! ([`redact`]).

#![warn(missing_docs)]

mod channel;
mod error;
mod in_process;
pub mod nv;
#[cfg(feature = "pcsc")]
mod pcsc_channel;
pub mod redact;
pub mod vpcd;

pub use channel::CardChannel;
pub use error::{Error, TransportError};
pub use in_process::InProcess;
#[cfg(feature = "pcsc")]
pub use pcsc_channel::PcscChannel;
