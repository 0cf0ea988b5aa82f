//! The simulator as a vpcd card: pcscd and every PC/SC tool (opensc-tool, pcsc_scan, pyscard, the
//! `pcsc` crate) talk to an in-process [`ykt_card::Card`] as if it sat in a reader.
//!
//! ```text
//!  PC/SC client ──SCardTransmit──▶ pcscd ──libifdvpcd──▶ TCP 127.0.0.1:35963 ◀── serve(card)
//!                                                          (pcscd listens, the card connects)
//! ```
//!
//! Wire protocol (vsmartcard's vpcd, as shipped in Debian 12): every message is
//! `len: u16 BE || len bytes`. A one-byte message is a control byte: `00` power off, `01` power
//! on, `02` reset (no reply to these three), `04` GET ATR (reply: one frame with the ATR, at any
//! time, even powered off). A longer message is a C-APDU; the reply is one frame with
//! `data || SW1 SW2`. The card never speaks unasked. See [`message::TORN_RESPONSE`] for the one
//! case where the reply is not the card's own.

pub mod frame;
pub mod message;
mod serve;

pub use message::{Message, TORN_RESPONSE, respond};
pub use serve::{AfterCommand, DEFAULT_ADDR, HookError, ServeOptions, serve};
