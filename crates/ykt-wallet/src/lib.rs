//! The wallet SDK (JT/T 1059.5—2025 client software; client.md): the device's identity, the
//! business flows between the SP-TSM and the SE, masked views of personal data and the sealed
//! local state.
//!
//! ```text
//!  app / CLI ──► Wallet (flows) ──TsmLink──► SP-TSM   (signed envelopes, ykt-envelope)
//!                   │  verify under the pinned TSM key, txn_id, result code
//!                   └──SeLink──► SE   (relay scripts: ykt_tsm::relay::relay_on_card;
//!                                      balance and records read offline)
//!  WalletState ──seal──► bytes (SM4-GCM, DEK wrapped by PBKDF2-HMAC-SM3)  ──► the CLI's file
//! ```
//!
//! No I/O: no sockets, files or clocks (client.md §3). The links are traits the caller wires
//! (HTTP, PC/SC, an in-process card), time is an argument (`now_ms`), randomness an RNG argument,
//! and persistence a [`Persist`] callback the wallet calls before each card command of a top-up.
//!
//! * [`Wallet`]: `enrol`, `open_card`, `top_up` (order → payment → `load`), `balance` and
//!   `records` (offline on the SE), `query`, `delete`, `refund`, `transfer_out`, `transfer_in`,
//!   `resume`, `cards`, `open_flows`, `journal`; each flow takes [`Links`] (the two links,
//!   persistence, a [`Progress`] callback), `now_ms` and an RNG.
//! * [`WalletState`]: device key, enrolment ([`TsmPin`]), cards, open flows, the top-up journal;
//!   [`WalletState::seal`] / [`WalletState::open`] over [`seal`].
//! * [`mask`]: the masked shapes and the [`CardNo`] / [`Seid`] newtypes.
//! * [`Session`]: the unlocked session of a long-running wallet (client.md §6.10): locks after
//!   5 min idle; top-up, return and transfer need an unlock within the last 60 s.
//! * [`WalletError`]: typed, with a user code `Exxxx` and a sentence (client.md §6.9).
//! * [`proposals`]: our choices where the briefs are silent.

#![warn(missing_docs)]

pub mod device;
pub mod error;
pub mod link;
pub mod mask;
pub mod proposals;
pub mod seal;
pub mod session;
pub mod state;
#[doc(hidden)]
pub mod testing;
mod wallet;

pub use crate::device::DeviceKey;
pub use crate::error::{Member, WalletError};
pub use crate::link::{
    LinkError, Persist, PersistError, SeError, SeLink, TsmLink, decode_response,
};
pub use crate::mask::{CardNo, Seid};
pub use crate::seal::{Corruption, SealError, SealKey};
pub use crate::session::{Operation, Session};
pub use crate::state::{
    CardRecord, JournalEntry, JournalStep, OpenFlow, StateError, TsmPin, WalletState,
};
pub use crate::wallet::{CardQuery, Links, Progress, Resumed, TopUp, TransferCode, Wallet};
