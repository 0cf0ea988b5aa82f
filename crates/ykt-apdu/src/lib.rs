//! ISO/IEC 7816-4 application protocol data units, status words and BER-TLV.
//!
//! This crate owns the byte formats that cross the card interface:
//!
//! * [`CommandApdu`]: the command APDU of ISO/IEC 7816-4:2020 §5.1 in all seven cases
//!   (1, 2S, 3S, 4S, 2E, 3E, 4E), parsed totally (every byte string gives a value or a typed
//!   [`ParseError`], never a panic) and encoded in the shortest form that can carry it.
//! * [`ResponseApdu`] and [`StatusWord`] (ISO/IEC 7816-4 §5.6, plus the PBOC/JT/T e-purse status
//!   words `93xx`/`94xx` listed in the e-purse brief §4).
//! * [`tlv`]: BER-TLV data objects (ISO/IEC 7816-4 §6.3, ISO/IEC 8825-1) with multi-byte tags,
//!   definite lengths up to four length bytes, and constructed objects.
//!
//! It deliberately does not own any transport (T=0 procedure bytes, T=1 blocks, PC/SC), logical
//! channel or GET RESPONSE handling (that is the card runtime, `ykt-card`), secure messaging, or
//! the meaning of any command. No I/O, no allocation beyond `alloc`, `#![no_std]`.
//!
//! ```text
//!   bytes ──CommandApdu::parse──▶ CommandApdu ──to_bytes──▶ bytes
//!   bytes ──ResponseApdu::parse─▶ ResponseApdu { data, sw: StatusWord }
//! ```
#![no_std]

extern crate alloc;

mod command;
mod error;
mod response;
mod status;
pub mod tlv;

pub use command::{CommandApdu, MAX_DATA_LEN, MAX_LE};
pub use error::ParseError;
pub use response::ResponseApdu;
pub use status::StatusWord;
