//! The QR scanning terminal harness (conformance.md §4.12; qr-code.md §3, §5): the
//! implementation under test is `ykt_qr::Verifier` with its record store
//! (`ykt_qr::store::RecordStore` over `MemoryStorage`, which cuts power at any byte) and the
//! upload (`ykt_qr::record`), in process, fresh per item.
//!
//! The harness plays the code generators (the qr-code.md §6 test chain, `ykt_qr::testing`), the
//! terminal's clock (every time is an argument) and the back end that receives uploads. Items
//! whose method is `semi` or `manual` (reader decode rates, clock drift, the maintenance port,
//! storage full) are NOT_RUN with the evidence they need.

mod items;

use ykt_qr::testing::{self, Example, TestRng};
use ykt_qr::{QrCode, Verifier, VerifierConfig, Version};

use crate::registry::QtCheck;
use crate::transcript::Transcript;
use crate::verdict::Stop;

/// Every QR terminal checker, by name.
pub(crate) const CHECKERS: &[(&str, QtCheck)] = &[
    ("qt::store_power_cut", items::store_power_cut),
    ("qt::freshness", items::freshness),
    ("qt::vectors", items::vectors),
    ("qt::break_signatures", items::break_signatures),
    ("qt::lists", items::lists),
    ("qt::upload", items::upload),
    ("qt::parameter_files", items::parameter_files),
];

/// Seed of the harness's signature nonces.
const RNG_SEED: u64 = 0x5154_0001;

/// The harness of one QR terminal item.
#[derive(Debug)]
pub struct QtHarness {
    transcript: Transcript,
    rng: TestRng,
}

impl QtHarness {
    /// A fresh harness.
    pub fn new() -> Result<QtHarness, Stop> {
        Ok(QtHarness {
            transcript: Transcript::new(),
            rng: TestRng::new(RNG_SEED),
        })
    }

    /// Records an event in the item's transcript.
    pub fn note(&mut self, text: impl Into<String>) {
        self.transcript.event(text);
    }

    /// The transcript so far.
    pub fn into_transcript(self) -> Transcript {
        self.transcript
    }

    /// The §6 chain of `version`.
    fn example(&mut self, version: Version) -> Result<Example, Stop> {
        Example::new(version, &testing::terms(), &mut self.rng).map_err(qr("the §6 chain"))
    }

    /// A terminal that holds the chain's root key, whitelists its issuer and admits its org
    /// code as local, with `skew`.
    fn verifier(&mut self, ex: &Example, skew: u32) -> Result<Verifier, Stop> {
        let config = VerifierConfig {
            clock_skew: skew,
            ..VerifierConfig::default()
        };
        ex.verifier(config, &mut self.rng)
            .map_err(qr("the terminal's parameters"))
    }

    /// A code of `ex` generated at `time`.
    fn code(&mut self, ex: &Example, time: u32) -> Result<QrCode, Stop> {
        ex.code(time, &mut self.rng).map_err(qr("a code"))
    }
}

fn qr(what: &str) -> impl Fn(ykt_qr::Error) -> Stop + '_ {
    move |e| Stop::Inconclusive(format!("{what}: {e}"))
}
