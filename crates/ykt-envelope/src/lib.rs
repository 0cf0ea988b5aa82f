//! Signed JSON envelopes (tsm-gp.md §7, client.md §6.3): the message format between wallets,
//! the SP-TSM and the SEI-TSM.
//!
//! ```text
//!  { "version":"1.0", "msg_type":"OpenCardReq", "msg_no":"3001", "sender_id", "receiver_id",
//!    "txn_id", "request_id", "nonce", "timestamp":"2026-12-02T08:00:00+08:00",
//!    "body":{…}, "result":{"code":"0000","msg":"ok"} (responses),
//!    "sign_alg":"SM2-SM3", "cert_sn":"<key id>", "sign":"<base64>" }
//!  signature input = JCS (RFC 8785) canonical JSON of the envelope without "sign"
//! ```
//!
//! * [`jcs`]: canonical JSON; [`time`]: RFC 3339 ⇄ Unix ms; [`Code`]: the result codes and
//!   their HTTP statuses.
//! * [`Envelope::seal`] / [`Envelope::reply`] sign with any [`Signer`] ([`Sm2Signer`],
//!   [`RsaSigner`], or a KMS key behind the trait); [`Envelope::verify`] checks a [`PeerKey`];
//!   [`Envelope::check_time`] the replay window's clock half. The other half, "this (sender,
//!   nonce) was not seen inside the window", needs memory across messages and is the
//!   receiver's store's (`ykt_store::Store::accept_message`).
//!
//! No I/O and no clock: times and nonces are arguments.

#![warn(missing_docs)]

mod code;
mod envelope;
mod error;
pub mod jcs;
pub mod time;

pub use crate::code::Code;
pub use crate::envelope::{
    Envelope, Header, PeerKey, ResultInfo, RsaSigner, SignAlg, Signer, Sm2Signer, VERSION,
    key_id_rsa, key_id_sm2, response_no,
};
pub use crate::error::EnvelopeError;
