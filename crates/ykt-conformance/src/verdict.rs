//! Verdicts (ISO/IEC 9646 style, conformance.md §3) and how a checker stops.

use std::fmt;

/// The verdict of one item. This enum is complete: conformance.md §3 names exactly these five.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(clippy::exhaustive_enums)]
pub enum Verdict {
    /// The target met the pass criteria.
    Pass,
    /// The target broke a pass criterion.
    Fail,
    /// The harness or the lower tester could not tell: transport or harness fault.
    Inconclusive,
    /// Not applicable: the sample's declared profile lacks a feature the item needs, or the
    /// target cannot offer the fixture (tearing, a personalised fixture card).
    NotApplicable,
    /// Not run: left out by `--only`, or waiting for a feature that is not wired yet.
    NotRun,
}

impl Verdict {
    /// Every verdict, in report order.
    pub const ALL: [Verdict; 5] = [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::Inconclusive,
        Verdict::NotApplicable,
        Verdict::NotRun,
    ];

    /// The label used in reports: `PASS`, `FAIL`, `INCONCLUSIVE`, `N/A`, `NOT_RUN`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
            Verdict::NotApplicable => "N/A",
            Verdict::NotRun => "NOT_RUN",
        }
    }

    /// True for the verdicts that make a run unsuccessful (FAIL, INCONCLUSIVE).
    pub fn is_bad(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Inconclusive)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A verdict with the reason a person can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Why: what was measured, or what went wrong.
    pub reason: String,
}

impl Outcome {
    /// An outcome.
    pub fn new(verdict: Verdict, reason: impl Into<String>) -> Outcome {
        Outcome {
            verdict,
            reason: reason.into(),
        }
    }
}

/// Why a checker stopped before reaching PASS. Checkers return `Result<String, Stop>`: `Ok`
/// carries the reason of a PASS.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stop {
    /// A pass criterion is broken (verdict FAIL).
    Fail(String),
    /// The harness could not decide: no response, a lower-tester or set-up fault (INCONCLUSIVE).
    Inconclusive(String),
    /// The card lost power during a command (the tearing switch, or a card pulled out).
    PowerLost,
    /// The sample turned out not to offer what the item tests (e.g. a TSM whose open card does
    /// not use delegated management): N/A, with the reason.
    NotApplicable(String),
}

impl Stop {
    /// The outcome this stop gives.
    pub fn outcome(self) -> Outcome {
        match self {
            Stop::Fail(r) => Outcome::new(Verdict::Fail, r),
            Stop::Inconclusive(r) => Outcome::new(Verdict::Inconclusive, r),
            Stop::PowerLost => Outcome::new(
                Verdict::Inconclusive,
                "the card lost power during a command",
            ),
            Stop::NotApplicable(r) => Outcome::new(Verdict::NotApplicable, r),
        }
    }
}

/// `Err(Stop::Fail(..))` unless `condition` holds.
pub fn ensure(condition: bool, reason: impl FnOnce() -> String) -> Result<(), Stop> {
    if condition {
        Ok(())
    } else {
        Err(Stop::Fail(reason()))
    }
}
