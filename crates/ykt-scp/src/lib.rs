//! GlobalPlatform secure channels for ykt: SCP02 (`i` = `15`, `55`), SCP03 (`i` = `00`, `10`,
//! `60`, `70` and their S16 forms; AES-128/192/256; levels up to C-MAC + C-DEC + R-MAC + R-ENC)
//! and an SM4 channel built on the SCP03 construction ([`sm4`], L).
//!
//! What it owns: the handshake (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, session keys,
//! cryptograms, pseudo-random card challenges) and the wrapping of commands and responses,
//! for both roles with one implementation: the host ([`HostSession`]) and the card
//! ([`CardSession`]) call the same derivation, MAC and cipher code (`channel`, `handshake`).
//! What it does not own: transports and the card runtime (bytes in, bytes out), the
//! sequence counter's persistence, the GP card manager's commands (PUT KEY, INSTALL, ...) and
//! randomness: host and card challenges come in as arguments. No I/O, `#![no_std]` + `alloc`.
//!
//! ```text
//!  host (HostSession)                                    card (CardSession)
//!  initialize_update(cfg, host challenge) ──IU──▶  on_initialize_update(cmd, keys, seq, random)
//!  on_initialize_update_response ◀── KDD ‖ key info ‖ card challenge ‖ card cryptogram [‖ seq]
//!     (card cryptogram checked)  ──EA──▶  on_external_authenticate (host cryptogram, C-MAC)
//!  on_external_authenticate_response ◀── 9000
//!  wrap(cmd)   ── C-MAC, C-DEC ──▶  unwrap_command ─▶ applet
//!  unwrap(resp) ◀── R-MAC, R-ENC ──  wrap_response ◀─ applet
//! ```
//!
//! A whole session in memory (a card manager routes INS `50` and `82` to the handshake and every
//! other command through `unwrap_command` and `wrap_response`):
//!
//! ```
//! use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
//! use ykt_crypto::AesKey;
//! use ykt_scp::*;
//!
//! let key = |b: u8| AesKey::from_slice(&[b; 16]).unwrap();
//! let keys = KeySet::aes(0x30, key(0x40), key(0x41), key(0x42));
//! let protocol = Protocol::scp03(0x70).unwrap();
//! let aid = vec![0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];
//! let mut card = CardSession::new(CardConfig {
//!     protocol,
//!     aid: aid.clone(),
//!     key_diversification_data: [0; 10],
//!     minimum_level: SecurityLevel::C_MAC,
//! });
//! let config = HostConfig {
//!     keys: keys.clone(),
//!     protocol,
//!     level: SecurityLevel::ALL,
//!     security_domain_aid: Some(aid),
//! };
//! let host_challenge = [0x11; 8]; // the host's randomness
//! let (mut host, iu) = HostSession::initialize_update(config, &host_challenge).unwrap();
//! let data = card.on_initialize_update(&iu, &keys, 1, &[]).unwrap(); // sequence counter 1
//! let ea = host
//!     .on_initialize_update_response(&ResponseApdu::new(data, StatusWord::SUCCESS))
//!     .unwrap();
//! card.on_external_authenticate(&ea).unwrap();
//! host.on_external_authenticate_response(&ResponseApdu::status(StatusWord::SUCCESS))
//!     .unwrap();
//!
//! let cmd = CommandApdu::new(0x80, 0xCA, 0x00, 0x66).with_le(256);
//! let plain = card.unwrap_command(&host.wrap(&cmd).unwrap()).unwrap();
//! assert_eq!(plain, cmd);
//! let reply = ResponseApdu::new(vec![0x66, 0x00], StatusWord::SUCCESS);
//! let wrapped = card.wrap_response(&reply);
//! assert_eq!(host.unwrap(&wrapped).unwrap(), reply);
//! ```
//!
//! A host whose static keys stay in a key store opens the same channel from session keys the
//! store computes: [`HostSession::initialize_update_derived`] and
//! [`HostSession::on_initialize_update_response_derived`] with a [`SessionKeyDeriver`], which
//! answers the few block operations on static keys the handshake needs ([`mod@derive`]); the
//! wrapped commands are the same byte for byte.
//!
//! Errors: the card side answers with status words ([`card::WRONG_HOST_CRYPTOGRAM`],
//! [`card::WRONG_MAC`], [`card::BELOW_SECURITY_LEVEL`], `6700`, `6A86`, ...), and never panics on
//! any command; the host side has [`ScpError`], which keeps "the card said no"
//! ([`ScpError::Card`]) apart from the host's own refusals.
//! Keys are `ykt-crypto` key types: they wipe themselves and print `[redacted]`.
//!
//! References: GlobalPlatform Card Specification v2.2 Appendix E (SCP02), Amendment D v1.1
//! (SCP03), NIST SP 800-108 (KDF), SP 800-38B (CMAC), ISO/IEC 9797-1 (MAC algorithm 3), the
//! project's tsm-gp.md §5 and §9.
#![no_std]

extern crate alloc;

pub mod card;
mod channel;
mod cipher;
pub mod derive;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod host;
mod keys;
mod params;
pub mod sm4;

pub use crate::card::{CardConfig, CardSession};
pub use crate::derive::{
    DeriverError, KeySetDeriver, SessionKeyDeriver, StaticKeyKind, StaticKeyOperation,
    StaticKeyRole,
};
pub use crate::error::{InitializeUpdateError, ParameterError, ResponseError, ScpError};
pub use crate::host::{CardInfo, DerivedHostConfig, HostConfig, HostSession};
pub use crate::keys::{KeySet, StaticKeys};
pub use crate::params::{Protocol, Scp02Options, Scp03Options, SecurityLevel, scp02_i, scp03_i};
