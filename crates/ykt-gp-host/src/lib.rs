//! GlobalPlatform card management from the host side: what GlobalPlatformPro and GPShell do,
//! as a sans-IO library.
//!
//! What it owns (GP Card Specification v2.3.1 §11, the project's tsm-gp.md §3, §5):
//! the card management commands as pure builders and total parsers ([`commands`]: GET STATUS,
//! GET DATA, INSTALL, LOAD, DELETE, PUT KEY, STORE DATA, SET STATUS), the static-key
//! diversification methods `emv`, `visa2` and `kdf3` ([`diversify`]), and [`GpSession`], which
//! selects a security domain, opens the secure channel with [`ykt_scp::HostSession`] (SCP02,
//! SCP03 or the SM4 channel, at any level) and runs the commands through it over a transmit
//! function the caller gives: `FnMut(&[u8]) -> Result<Vec<u8>, E>`.
//! What it does not own: transports (the caller's function does the I/O), randomness (the host
//! challenge is an argument), the secure channel's cryptography (ykt-scp), load file formats
//! (a load file data block is bytes) and delegated-management token signing (tokens are bytes).
//! No I/O, `#![no_std]` + `alloc`.
//!
//! ```text
//!  caller                      GpSession (this crate)                  card
//!  transmit fn ◀──────────────  SELECT SD, INITIALIZE UPDATE  ──────────▶ 9000, KDD ‖ …
//!  host challenge ────────────▶ [diversify keys] EXTERNAL AUTHENTICATE ─▶ 9000
//!  session.list(Scope::…) ────▶ commands::get_status ─▶ wrap ─▶ 84 F2 … ─▶ E3… 6310 / 9000
//!                              ◀─ parse ◀─ unwrap (R-MAC) ◀─ [61xx GET RESPONSE]
//! ```
//!
//! A session against the card manager of ykt-gp on a simulated card:
//!
//! ```
//! use ykt_card::{Atr, Card, SeededRandom};
//! use ykt_crypto::AesKey;
//! use ykt_gp::{IsdSetup, install_isd};
//! use ykt_gp_host::{Aid, GpSession, ISD_AID, Scope, SessionConfig};
//! use ykt_scp::{KeySet, Protocol, SecurityLevel};
//!
//! let key = || AesKey::from_slice(&[0x40; 16]).unwrap();
//! let keys = KeySet::aes(0x30, key(), key(), key());
//! let protocol = Protocol::scp03(0x70).unwrap();
//! let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(1)));
//! install_isd(&mut card, &IsdSetup::new(protocol, keys.clone())).unwrap();
//! card.power_on();
//!
//! let config = SessionConfig {
//!     security_domain: Aid::new(&ISD_AID).unwrap(),
//!     keys,
//!     diversification: None,
//!     protocol,
//!     level: SecurityLevel::C_DEC_C_MAC,
//! };
//! let host_challenge = [0x11; 8]; // the caller's randomness
//! let transmit = |apdu: &[u8]| card.transmit(apdu);
//! let mut session = GpSession::open(transmit, config, &host_challenge).unwrap();
//! let isd = session.list(Scope::IssuerSecurityDomain).unwrap();
//! assert_eq!(isd[0].life_cycle, 0x0F); // SECURED
//! ```
//!
//! The builders alone, for scripts relayed by a TSM:
//!
//! ```
//! use ykt_gp_host::Scope;
//! use ykt_gp_host::commands::get_status::get_status;
//!
//! let cmd = get_status(Scope::Applications, false);
//! assert_eq!(cmd.to_bytes(), [0x80, 0xF2, 0x40, 0x02, 0x02, 0x4F, 0x00, 0x00]);
//! ```
//!
//! Errors: builders give [`BuildError`], parsers [`ParseError`]; a session gives [`Error`],
//! which keeps the transport failing ([`Error::Transport`]) apart from the card saying no
//! ([`Error::Card`] with the status word) and from the channel refusing the card
//! ([`Error::Channel`], e.g. a wrong card cryptogram when the keys are wrong).
//! Keys are ykt-crypto key types: they wipe themselves and print `[redacted]`; key values this
//! crate copies (PUT KEY, diversification) sit in `Zeroizing` buffers.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

pub mod commands;
pub mod diversify;
mod error;
mod session;
mod types;

pub use crate::commands::get_data::{CardData, Cplc, KeyInformation};
pub use crate::commands::get_status::{RegistryEntry, Scope};
pub use crate::commands::install::{Install, InstallParameters, Receipt};
pub use crate::commands::load::DapBlock;
pub use crate::commands::store_data::{Encryption, StoreDataOptions, Structure};
pub use crate::diversify::Diversification;
pub use crate::error::{BuildError, Error, Operation, ParseError};
pub use crate::session::{GpSession, Registry, SessionConfig, get_data_plain, select, transceive};
pub use crate::types::{
    Aid, CardLifeCycle, EntryKind, ISD_AID, LifeCycleName, Privileges, life_cycle_name,
};
