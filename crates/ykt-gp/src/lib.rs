//! The GlobalPlatform card manager: the issuer security domain (ISD) as a card applet.
//!
//! What it owns (GP Card Specification v2.3.1, the project's tsm-gp.md §3, §5): the card life
//! cycle (§5.1: OP_READY → INITIALIZED → SECURED ⇄ CARD_LOCKED → TERMINATED), the ISD's key sets
//! with their versions, types and KCVs, the persistent SCP sequence counter, the registry of the
//! applications on the card with their life cycle states and privileges, the secure channel
//! (through [`ykt_scp::CardSession`]) and the commands GET DATA, GET STATUS, SET STATUS and
//! PUT KEY.
//! What it does not own (yet): INSTALL, LOAD, DELETE, STORE DATA, supplementary security
//! domains, delegated management; the card runtime's dispatcher (ykt-card) decides which applet
//! a command reaches, so application locking is recorded here but not yet enforced at SELECT.
//!
//! ```text
//!  host                       ykt-card dispatcher         Isd (this crate)
//!  SELECT A000000151000000 ──▶ select ─────────────────▶ FCI
//!  80 50 INITIALIZE UPDATE ──▶ process ────────────────▶ CardSession::on_initialize_update
//!                                                         (sequence counter + 1, committed)
//!  84 82 EXTERNAL AUTH     ──▶ process ────────────────▶ CardSession::on_external_authenticate
//!  84 xx command           ──▶ process ──▶ unwrap_command ─▶ level check ─▶ commands::*
//!                                          ◀── wrap_response ◀── data / status word
//! ```
//!
//! Persistent state lives in the card's store (one transaction per command, so a torn
//! PUT KEY or SET STATUS leaves the old state or the new one); the layout of the objects is
//! documented in the private `state` module.
//! Errors are status words; no host input makes the applet panic.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

pub mod commands;
pub mod dm;
pub mod isd;
pub mod life_cycle;
mod state;

pub use crate::isd::{
    ApplicationEntry, ISD_AID, ISD_PRIVILEGES, Isd, IsdFactory, IsdSetup, KIND, LfdbHash, Package,
    SD_MODULE, SD_PACKAGE, SSD_KIND, install_isd, sd_package,
};
pub use crate::life_cycle::{ApplicationState, CardState};
