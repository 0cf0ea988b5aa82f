//! The TSM domain (JT/T 1059.6 model, `shared/spec/tsm-gp.md`): the SEI-TSM and SP-TSM roles
//! (§2), the key hierarchy and SSD handover (§6), the business flows with their APDU relay (§7)
//! and the card-instance life cycle (§8), sans-IO.
//!
//! What it owns:
//! * [`Flow`]: open card (申请开卡), top-up (申请支付), delete card, card return (退卡),
//!   transfer out / in (迁卡), status and card-data queries ([`flows`]), each a list of steps
//!   ([`StepName`], table in [`steps`]) over one serialisable [`FlowState`]. [`Flow::next`]
//!   takes the wallet's [`RelayResponse`] and gives the next [`RelayRequest`] or the
//!   [`Outcome`]; the caller persists [`Flow::state`] before relaying. After a crash
//!   [`Flow::resume`] probes the card (GET STATUS, INITIALIZE UPDATE key version, GET BALANCE,
//!   GET TRANSACTION PROVE) before any non-idempotent step is sent again.
//! * [`KeyVault`]: every secret operation (ISD keys per SE, SSD key sets, wrapping for PUT KEY
//!   and DGI `8001`, the SM2 handover, purse personalisation blocks encrypted under the SSD
//!   DEK, MAC1 / MAC2 / TAC, tokens, receipts) by key name; [`MemoryVault`] for tests.
//! * [`PaymentProvider`] with [`TestProvider`], and [`OrderBook`] (exactly one load per order).
//! * The business messages' bodies and numbers ([`api`]), which the service and the wallet
//!   share.
//! * Every uncertain choice in [`proposals`].
//! * With the feature `testing`, `testing`: a test deployment's blank SE (as card production
//!   delivers it), vaults and key names, all from the PUBLIC test keys of [`vault::test_keys`].
//!
//! What it does not own: HTTP, the JSON envelopes and their signatures (tsm-gp.md §7,
//! `ykt-envelope`), storage (a store persists [`FlowState`] and [`OrderBook`]), the wallet (the
//! wallet's half of the relay is [`relay::relay_on_card`]), clocks (the time is
//! [`Env::now`]) and randomness ([`Env::rng`]). No I/O, `#![no_std]` + `alloc`.
//!
//! ```text
//!   wallet ─ SE                SP-TSM / SEI-TSM service              this crate
//!   OpenCardReq ─────────────▶ Flow::open_card(..)
//!                 ◀── relay ── persist(state); next(env, None) ────▶ RegisterSe: SELECT ISD, CPLC
//!   rapdus ──────────────────▶ next(env, Some(rapdus)) ─────────────▶ CreateSsd (ISD channel) …
//!                                 env.sei / env.sp: KeyVault          RotateSsdKeys (SSD channel)
//!                                 env.payments: PaymentProvider       LoadPurse, InstallPurse,
//!                                                                     PersonalisePurse, VerifyActive
//!                 ◀──────────── Done(Outcome{instance: ACTIVE})
//! ```
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

pub mod api;
mod error;
pub mod flow;
pub mod flows;
pub mod hex;
pub mod model;
pub mod payment;
pub mod proposals;
pub mod relay;
pub mod steps;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vault;

pub use crate::error::{AnswerError, Error, PaymentError, VaultError};
pub use crate::flow::{
    CardInstance, CardView, EntryView, Env, Flow, FlowKind, FlowState, Outcome, Output, Parties,
    Role,
};
pub use crate::model::{CardNumber, InstanceState, Management, PurseCardSpec, SeId, SeState};
pub use crate::payment::{
    LoadReceipt, OrderBook, OrderRef, OrderState, Payment, PaymentProvider, TestProvider,
};
pub use crate::relay::{Expect, RelayRequest, RelayResponse};
pub use crate::steps::StepName;
pub use crate::vault::{
    Entropy, KeyName, KeyRef, KeyVault, LoadProof, MemoryVault, PersoBlock, WrappedKeySet,
};
