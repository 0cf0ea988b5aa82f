//! Card runtime: applet dispatcher, ISO/IEC 7816-4 files, and a power-cut-safe persistent
//! store with a tearing switch. Sans-IO: bytes in, bytes out; no clock; randomness injected.
//!
//! ```text
//!   C-APDU bytes ─▶ Card::transmit ─▶ dispatcher ─┬─ SELECT by AID / MF, GET RESPONSE, CLA/INS checks
//!                                                 ├─ fs::Files (interindustry file commands)
//!                                                 └─ Applet::process(Context, CommandApdu)
//!                                                        │ Context: objects, entropy, files
//!                                                        ▼
//!                                           store: RAM staging ─commit─▶ redo journal ─▶ EEPROM pages
//!   R-APDU bytes ◀─ 61xx / 6Cxx rules ◀───────────────────┘
//! ```
//!
//! This crate owns:
//! * [`Card`]: power (`power_on` runs journal recovery), installation of [`Applet`]s, the
//!   dispatcher (SELECT by AID full/partial/next occurrence, SELECT MF, GET RESPONSE and
//!   `61xx`/`6Cxx`, class and instruction checks, MANAGE CHANNEL refusal; rules in the
//!   [`card`] documentation), and the state file ([`Card::save_state`] / [`Card::load_state`]).
//! * The persistent store (module [`store`]): 16-byte EEPROM pages, a page-image redo journal
//!   with CRCs and an atomic commit marker, the [`TearSwitch`] that cuts power during a chosen
//!   page program.
//! * [`fs`]: ISO/IEC 7816-4 transparent, linear fixed and cyclic EFs with SFI addressing.
//! * [`Entropy`] and deterministic, non-cryptographic sources for tests.
//!
//! It knows nothing about transports (PC/SC, vpcd, T=0/T=1 framing), clocks, the e-purse or any
//! cryptography; applets bring their own. `#![no_std]` + `alloc`; the `std` feature only adds
//! the file-reading transcript helper `testing::check_transcript`.
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod aid;
mod applet;
mod atr;
pub mod card;
mod context;
mod entropy;
mod error;
pub mod fs;
pub mod manage;
mod state;
pub mod store;
#[doc(hidden)]
pub mod testing;

pub use aid::{Aid, AidError};
pub use applet::{Applet, AppletFactory, Selected};
pub use atr::{Atr, AtrError};
pub use card::Card;
pub use context::{Context, ObjectId};
pub use entropy::{Entropy, SeededRandom, danger};
pub use error::{CardError, MalformedState, StateError};
pub use fs::{Access, EfSpec, EfStructure, Files};
pub use manage::{InstanceInfo, ManageError};
pub use state::{MAGIC as STATE_MAGIC, VERSION as STATE_VERSION};
pub use store::{PAGE, TearSwitch};
