//! The GlobalPlatform card manager: security domains as card applets — the issuer security
//! domain (ISD) and supplementary security domains (SSDs).
//!
//! What it owns (GP Card Specification v2.3.1, the project's tsm-gp.md §3–§5): the card life
//! cycle (§5.1: OP_READY → INITIALIZED → SECURED ⇄ CARD_LOCKED → TERMINATED), each SD's key sets
//! with their versions, types and KCVs and its persistent SCP sequence counter, the registry of
//! applications, SDs and load files with life cycles, privileges and associations, the card's
//! library of loadable packages, the secure channel (through [`ykt_scp::CardSession`]) and the
//! commands GET DATA, GET STATUS, SET STATUS, PUT KEY, INSTALL, LOAD, DELETE and STORE DATA
//! ([`commands`]); delegated management with tokens and receipts ([`dm`]).
//! The registry and the card's instances change together: INSTALL, DELETE and SET STATUS go
//! through `ykt-card`'s content management (`ykt_card::manage`), so a locked or merely
//! INSTALLED application is not selectable.
//! What it does not own: the dispatcher (SELECT stays `ykt-card`'s), DAP verification, code
//! download (a load file names a library package: [`commands::load`]).
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
