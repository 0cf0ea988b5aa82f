//! Transit e-purse applet (JT/T 978 / T-Union, PBOC EP) for the `ykt-card` runtime: load,
//! purchase, composite (CAPP) purchase, transaction proof, PIN and lifecycle commands, and a second
//! ticket type; no I/O.
//!
//! # What this crate owns
//!
//! * [`PurseApplet`] (kind [`KIND`] = `"ykt.purse"`), the card side of `shared/spec/e-purse.md`:
//!   SELECT with the §1 FCI, files EF15..EF1E (§2, [`files`]), every command of §4.1–§4.12 (one
//!   family per file under `src/commands/`, each handler citing its section), the cryptograms of §5
//!   through `ykt_crypto::purse` (3DES or SM4 chosen per key, see [`keys`]), counters and the
//!   last-transaction proof data of §7.
//! * The persistent layout of an instance (below) and its atomicity: CREDIT and DEBIT stage
//!   balance, counter, proof data, the EF18 record and the cached composite records in one store
//!   transaction, so a power cut at any write leaves all or nothing.
//! * The issuer side: [`IssuerFactory`] (master keys + ASN + card data → personalised
//!   [`IssuedPurse`], the shortcut that writes everything at install), [`PurseAppletFactory`] for
//!   `Card::load_state` and as the library code a card manager installs from, and the §8 test
//!   card in [`testing`].
//! * GlobalPlatform personalisation ([`perso`], layout \[PROPOSAL\] in `docs/purse-dgi.md`): an
//!   instance a card manager creates is empty (SELECT answers `6283`, every other command
//!   `6985`) until STORE DATA blocks of DGIs, forwarded by the security domain through
//!   `Applet::process_data`, have brought every mandatory DGI; the last block writes the whole
//!   purse in one transaction. [`perso::Builder`] makes the blocks on the host side from the
//!   factory's parameters.
//! * The PSAM applet ([`psam`], kind `ykt.psam`, e-purse.md §6): the terminal's secure module as a
//!   second card, with the master keys, MAC1 (`80 70`, single- and two-level), MAC2 (`80 72`), the
//!   persistent TTSN, and the secure-messaging MAC (`80 1A`, `80 FA`); the test PSAM in [`testing`].
//!
//! It does **not** own the dispatcher (SELECT by AID, GET RESPONSE, channels), the file commands'
//! wire handling, the journal or tearing (all `ykt-card`), the cryptographic rules (`ykt-crypto`;
//! every SM4 choice is an `Sm4Rules` field there), nor the terminal/host side.
//!
//! # Flow
//!
//! ```text
//!  terminal                       card (this applet)
//!  SELECT A000000632010105  ───▶  FCI 6F{84 AID, A5{9F08, 9F0C = EF15}}              §1
//!  80 50 00 02 (INIT LOAD)  ───▶  random, SESLK = KDF(DLK), MAC1        [volatile]     §4.3
//!  80 52 (CREDIT, MAC2)     ───▶  check MAC2; balance+, online ctr+, EF18, proof; TAC  §4.4
//!  80 50 01|03 02 (INIT)    ───▶  random (+ SESPK at DEBIT)             [volatile]     §4.5
//!  80 DC (CAPP cache)       ───▶  buffer EF1A/EF1E record               [volatile]     §4.7
//!  80 54 (DEBIT, MAC1)      ───▶  check MAC1; balance−, offline ctr+, EF18, cache,
//!                                 proof; TAC‖MAC2                 [one transaction]  §4.6
//!  80 5A (PROVE)            ───▶  MAC2‖TAC of the last transaction                     §4.8
//! ```
//!
//! # Persistent layout (per instance, in the runtime's namespace for it)
//!
//! | Object | Contents | Changes when |
//! |---|---|---|
//! | `ObjectId(0x0100)` purse, 20 B | balance (4) · online counter (2) · offline counter (2) · last transaction: type (1, `00` = none) · counter used (2) · MAC2 (4) · TAC (4) · RFU (1) | CREDIT, DEBIT |
//! | `ObjectId(0x0101)` status, 10 B | lifecycle (1) · PIN tries left (1) · PIN length (1) · PIN (6, `FF`-padded) · consecutive MAC failures (1) | PIN commands, BLOCK/UNBLOCK, counted MAC failures |
//! | `ObjectId(0x0102)` keys | count (1) · entries of 25 B: usage · index · version · algorithm (6: family, id, SM4 rule codes) · key (16) | personalisation only |
//! | EF15, EF16, EF17 | transparent 30/55/60 B (§2) | personalisation only |
//! | EF18 | cyclic 10 × 23 B ([`files::TransactionRecord`]) | CREDIT, DEBIT (same transaction as the purse object) |
//! | EF1A | linear 4 × 128 B, record *n* personalised with identifier *n* in byte 1 | composite DEBIT (cached UPDATE CAPP DATA CACHE) |
//! | EF1E | cyclic 10 × 48 B | composite DEBIT (cached UPDATE CAPP DATA CACHE) |
//!
//! An instance created by a card manager has none of these objects until the last STORE DATA
//! block creates them all; the absence of the status object is the "not personalised" state.
//! The profile ([`PurseProfile`]) is the instance's installation parameter, kept by the runtime
//! next to the instance and handed back to [`PurseAppletFactory`] by `Card::load_state`.
//! Volatile only (lost on deselect, reset, power loss): the INITIALIZE session with its session key
//! and cached composite records, the GET CHALLENGE random, the PIN-verified flag; and (lost on
//! reset and power loss only) the STORE DATA blocks of a personalisation in progress.
//!
//! Known limits: file commands without secure messaging are answered by the runtime before the
//! applet sees them, so a READ BINARY/RECORD between INITIALIZE and CREDIT/DEBIT does not end the
//! session (every command the applet sees does); RELOAD PIN carries no challenge, so like its PBOC
//! model it can be replayed with the same PIN.
//!
//! # Second ticket type (第二票种)
//!
//! A second instance of the same code at [`SECOND_TICKET_AID`] with [`PurseProfile::SECOND_TICKET`]:
//! its own keys (diversified from its own ASN), balance (in units), counters, EF15..EF1E and proof
//! data, and its ticket-type code in the EF18 records it writes ([`files::TransactionRecord`]). A
//! terminal reaches it by SELECT of the full AID `A000000632010106`; SELECT of the e-purse AID (full,
//! or the partial name `A000000632010105`) never lands on it, because the second AID does not extend
//! the e-purse AID. All of this is L (conformance.md §4.2: Annex A is not public).
//!
//! # Choices the brief leaves open (L)
//!
//! Each lives in one named item: [`SECOND_TICKET_AID`], [`TICKET_TYPE_SECOND`],
//! [`profile::DEFAULT_MAX_BALANCE`] with [`status::LOAD_LIMIT_EXCEEDED`],
//! [`profile::DEFAULT_PROVE_COUNTER`] (pre-increment; N+1 switch), [`profile::DEFAULT_MAC_FAILURE_LIMIT`]
//! (off), [`PIN_TRY_LIMIT`], [`status::PROVE_NOT_AVAILABLE`],
//! [`status::SECURE_MESSAGING_MAC_INVALID`], [`status::CHALLENGE_MISSING`],
//! [`status::CAPP_CACHE_LIMIT`], [`files::EF1A_RECORDS`], [`files::EF1E_RECORDS`], the
//! record-identifier and ticket-type conventions documented in [`files`], and for
//! personalisation the DGI tags of [`perso::dgi`], [`perso::DEFAULT_MAX_BLOCK_DATA`],
//! [`status::NOT_PERSONALISED_SELECT`], [`status::NOT_PERSONALISED`] and the STORE DATA status
//! words of [`status`].

#![no_std]
#![warn(missing_docs)]

extern crate alloc;

mod applet;
mod commands;
pub mod factory;
pub mod files;
pub mod keys;
pub mod perso;
pub mod profile;
pub mod psam;
mod state;
pub mod testing;

pub use applet::{KIND, PurseApplet};
pub use factory::{
    Asn, CardData, Ef15, IssueError, IssuedPurse, IssuerFactory, MasterKey, PurseAppletFactory,
};
pub use keys::{KeyEntry, KeyUsage};
pub use profile::{ProveCounter, PurseProfile, TICKET_TYPE_EPURSE, TICKET_TYPE_SECOND};
pub use state::{LastTransaction, Lifecycle, PIN_TRY_LIMIT, PurseState};

/// Public names of the status-word choices made by the command handlers.
pub mod status {
    pub use crate::commands::block::{CHALLENGE_MISSING, SECURE_MESSAGING_MAC_INVALID};
    pub use crate::commands::prove::PROVE_NOT_AVAILABLE;
    pub use crate::commands::purchase::CAPP_CACHE_LIMIT;
    pub use crate::commands::store_data::{
        ALREADY_PERSONALISED, BAD_BLOCK_PARAMETERS, DGI_INVALID, DGI_NOT_ENCRYPTED, DGI_STRUCTURE,
        DGI_UNKNOWN, NOT_PERSONALISED, NOT_PERSONALISED_SELECT, PERSONALISATION_INCOMPLETE,
    };
    pub use crate::commands::transaction_type;
    pub use crate::profile::LOAD_LIMIT_EXCEEDED;
}

/// AID of the T-Union / Ministry of Transport e-purse (e-purse.md §1, H).
pub const EP_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05];

/// AID of the second ticket type (第二票种).
///
/// L (conformance.md §4.2; Annex A is not public): `A000000632010106`, under the Ministry of
/// Transport RID `A000000632` and next to the e-purse's `...0105`. It deliberately does not extend
/// the e-purse AID, so partial-name selection of `A000000632010105` cannot reach the second ticket
/// by mistake and debit it as money.
pub const SECOND_TICKET_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x06];
