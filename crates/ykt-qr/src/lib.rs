//! The JT/T ride QR code (交通一卡通二维码, 乘车码): the payload format, the SM2 chain from the
//! root CA to the user's signature, the generator side (issuer authorisation and the wallet's
//! code at display time) and the scanning terminal's offline verification.
//!
//! The brief is the project's `shared/spec/qr-code.md`; section numbers below are its own.
//!
//! ```text
//!  root CA ──signature A──► issuer certificate (field 3, §2.2)
//!                               │ issuer key
//!  issuer (发码机构) ──signature B──► fields 3–14: accounts, limit, user public key, validity
//!                                        │ = Authorisation (fields 1–15, the back end's blob)
//!  wallet, at display time ──signature C──► fields 1–16 (+ generation time) = QrCode
//!                                              │ raw bytes in a QR symbol (byte mode)
//!  terminal: Verifier::verify(code, fare, now) ─► Accepted | Rejection
//!            root keys by (version, index), whitelist, blacklist, clock skew, replay cache
//! ```
//!
//! What it owns: the byte layout of the code ([`code`]), the certificate and root key record
//! ([`cert`]), the SM2 user IDs of each signature ([`ids`]), generation ([`ca`], [`issuer`],
//! [`wallet`]) and the verification rules of §3.1 ([`verify`]) with the replay cache
//! ([`replay`]), a model of a drifting terminal clock ([`clock`]), and the records of accepted
//! codes with their upload as signed batches of JSON lines ([`record`], §5), kept across power
//! loss in an append-only log over a [`store::Storage`] ([`store`]), and the terminal
//! parameter files 4026 and 4020 with their SHA-1 ([`tables`], §2.3).
//! What it does not own: the primitives (SM2 and SM3 come from `ykt-crypto`), QR symbol
//! rendering and scanning, transport of the blob and of uploads (HTTP), and files (a
//! [`store::Storage`] on a file belongs to an adapter crate).
//! No I/O, no clock and no randomness of its own: times and RNGs are arguments.
//! `#![no_std]` + `alloc`.
//!
//! Every decoder is total: any byte string gives a value or a typed [`DecodeError`], never a
//! panic.
#![no_std]

extern crate alloc;

pub mod ca;
pub mod cert;
pub mod clock;
pub mod code;
mod error;
pub mod ids;
pub mod issuer;
pub mod record;
pub mod replay;
pub mod store;
pub mod tables;
pub mod testing;
pub mod verify;
pub mod wallet;

pub use crate::cert::{Expiry, IssuerCertificate, RootKeyEntry, RootKeyRecord};
pub use crate::code::{Authorisation, CodeBody, Field, QrCode, SignatureField, Version};
pub use crate::error::{CertificateField, DecodeError, Error, RootKeyField, Structure};
pub use crate::tables::{RootKeyTable, TableError, WhitelistTable};
pub use crate::verify::{Accepted, Rejection, Verdict, Verifier, VerifierConfig};

/// The compressed SEC1 form (`02`/`03` ‖ X, 33 bytes) of an SM2 public key, as fields 3 and 10
/// carry it (§1.1, §2.2).
pub fn compress_public_key(key: &ykt_crypto::Sm2PublicKey) -> [u8; 33] {
    let point = key.to_bytes();
    let mut out = [0u8; 33];
    out[0] = 0x02 | (point[64] & 1);
    out[1..].copy_from_slice(&point[1..33]);
    out
}
