//! Conformance testing in the model of JT/T 1059.8—2025 (交通一卡通移动支付技术规范 第8部分：检测):
//! a catalogue of test items as data, a runner with ISO/IEC 9646-style verdicts, and reports in
//! HTML and JUnit XML (`shared/spec/conformance.md`).
//!
//! ```text
//!  catalogue/se.toml, gp.toml, nfcqr.toml, te.toml,
//!  qt.toml, tsm.toml, cl.toml, rp.toml ──load + validate──▶ Catalogue ──┐
//!  Registry (checkers by name) ────────────────────────────────┤
//!                                                              ▼
//!  Target::Sim (fresh test card per item) ─┐            runner::run ──▶ Run ──▶ report::html / report::junit
//!  Target::Card (&mut dyn CardAccess)  ────┤   per item: gates (--only, method, needs, profile) → checker
//!  Target::Terminal (flows vs lower tester)┤             → Outcome (PASS/FAIL/INCONCLUSIVE/N/A/NOT_RUN) + Transcript
//!  Target::QrTerminal (ykt_qr::Verifier)  ─┤
//!  Target::Tsm (&mut dyn TsmAccess)  ──────┤  the harness plays the phone: own device key,
//!  Target::Client (&mut dyn TsmAccess) ────┘  blank simulated SEs, the wallet SDK in the middle
//! ```
//!
//! What it owns: the item catalogue ([`catalogue`], embedded with `include_str!`), the profile
//! gate ([`profile`]), the SE harness that plays terminal, PSAM and load host and recomputes
//! every MAC and TAC itself, the GP off-card entity (secure channels, content management,
//! delegated-management tokens and receipts) and the NFC QR wallet and issuer back end
//! ([`se`]), the terminal harness with its scripted lower-tester card and stub PSAM ([`te`]),
//! the QR scanning terminal harness ([`qt`]), the TSM and client-software harness ([`tsm`]:
//! the phone's part with its own device key, blank simulated SEs from `ykt_tsm::testing` and
//! the wallet SDK with the harness in both its links), the runner and the reports.
//!
//! What it does not own: any I/O. A card in a reader reaches the runner through the
//! [`CardAccess`] trait, which the binary implements over its PC/SC channel, and a TSM through
//! [`TsmAccess`] (HTTP, the clock and a seed, in the binary); the reports are
//! strings the binary writes; the date of a run is an argument. Nor the cores it tests: the
//! simulator (`ykt-card`, `ykt-purse`, `ykt-gp`, `ykt-nfcqr`), the terminal flows
//! (`ykt-terminal`) and the QR verifier (`ykt-qr`) are used as they are.
//!
//! # Checkers
//!
//! conformance.md §5 sketches a passive checker fed with events. Most items here must *drive*
//! the target (send a wrong MAC, cut the power, script a bad card answer), so a checker is a
//! function registered by name ([`registry`]) that gets a harness and the item's parameters; the
//! harness records every APDU and event in the item's [`Transcript`], which the reports show, and
//! the checker returns the reason of a PASS or a [`Stop`] (FAIL or INCONCLUSIVE).
//!
//! # Declared profiles
//!
//! An item lists the features it needs ([`profile::FEATURES`]); it runs only when the sample
//! declares them all, else N/A. `tearing` and `fixture` are simulator-only. The sample profiles:
//! `ykt se serve` (the e-purse.md §8 3DES test card and the test ISD of [`isd`]) is
//! [`profile::SAMPLE_SERVE_3DES`] (`ep,alg-3des,gp,isd-scp03,gp-content`; `ep,alg-sm4,…` with
//! `--sm4`, `isd-scp02` / `isd-sm4` with `--isd`; `gp-content`: the ISD can load and install
//! its library's test package), the simulator is [`profile::SAMPLE_SIM`] (also `nfcqr`), the
//! QR scanning terminal [`profile::SAMPLE_QR_TERMINAL`]. Items whose method is not `auto` are
//! NOT_RUN with the evidence they need.
//!
//! # Items on a real card
//!
//! A fresh fixture per item is impossible on a card in a reader, so every SE checker works
//! relative to the card's current state: it reads balance and counters first, loads before a
//! purchase, spends before a load that would pass the balance limit, and undoes PIN and block
//! changes afterwards. It needs the card's keys to be the e-purse brief's §8 test keys.

#![warn(missing_docs)]

pub mod catalogue;
pub mod isd;
pub mod params;
pub mod profile;
pub mod qt;
pub mod registry;
pub mod report;
pub mod runner;
pub mod se;
pub mod target;
pub mod te;
pub mod transcript;
pub mod tsm;
pub mod verdict;

pub use catalogue::{Catalogue, CatalogueError, Item, TargetKind};
pub use profile::Profile;
pub use registry::Registry;
pub use runner::{Run, RunConfig, RunInfo, Target, run};
pub use target::{CardAccess, Fault, SimCard};
pub use transcript::Transcript;
pub use tsm::{HttpResponse, LinkProbe, LinkReport, TsmAccess};
pub use verdict::{Outcome, Stop, Verdict};
