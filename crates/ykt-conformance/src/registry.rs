//! Checkers registered by name. A catalogue item names its checker; loading fails for a name
//! that is not here, and for a checker here that no item uses.

use std::collections::BTreeMap;

use crate::params::Params;
use crate::qt::QtHarness;
use crate::se::SeHarness;
use crate::te::TeHarness;
use crate::tsm::TsmHarness;
use crate::verdict::Stop;

/// A checker of an SE item: drives the card through the harness (which records the
/// transcript) and returns the reason of a PASS, or why it stopped.
pub type SeCheck = fn(&mut SeHarness<'_>, Params<'_>) -> Result<String, Stop>;
/// A checker of a terminal item: runs the terminal under test against the scripted lower tester.
pub type TeCheck = fn(&mut TeHarness, Params<'_>) -> Result<String, Stop>;
/// A checker of a QR scanning terminal item: drives the verifier and record store under test.
pub type QtCheck = fn(&mut QtHarness, Params<'_>) -> Result<String, Stop>;
/// A checker of a TSM or client item: drives the TSM (and the wallet SDK) through the harness.
pub type TsmCheck = fn(&mut TsmHarness<'_>, Params<'_>) -> Result<String, Stop>;

/// One registered checker.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Checker {
    /// For items with `target = "se"`.
    Se(SeCheck),
    /// For items with `target = "terminal"`.
    Terminal(TeCheck),
    /// For items with `target = "qr-terminal"`.
    QrTerminal(QtCheck),
    /// For items with `target = "tsm"`.
    Tsm(TsmCheck),
    /// For items with `target = "client"`.
    Client(TsmCheck),
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Checker::Se(_) => "Checker::Se",
            Checker::Terminal(_) => "Checker::Terminal",
            Checker::QrTerminal(_) => "Checker::QrTerminal",
            Checker::Tsm(_) => "Checker::Tsm",
            Checker::Client(_) => "Checker::Client",
        })
    }
}

/// The target kind a checker serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckerKind {
    /// SE items.
    Se,
    /// Terminal items.
    Terminal,
    /// QR scanning terminal items.
    QrTerminal,
    /// TSM items.
    Tsm,
    /// Client software items.
    Client,
    /// Target kinds without checkers yet.
    Other,
}

/// Checkers by name.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    checkers: BTreeMap<String, Checker>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Every checker of this crate.
    pub fn builtin() -> Registry {
        let mut r = Registry::new();
        for (name, check) in crate::se::CHECKERS {
            r.register(name, Checker::Se(*check));
        }
        for (name, check) in crate::te::CHECKERS {
            r.register(name, Checker::Terminal(*check));
        }
        for (name, check) in crate::qt::CHECKERS {
            r.register(name, Checker::QrTerminal(*check));
        }
        for (name, check) in crate::tsm::TSM_CHECKERS {
            r.register(name, Checker::Tsm(*check));
        }
        for (name, check) in crate::tsm::CLIENT_CHECKERS {
            r.register(name, Checker::Client(*check));
        }
        r
    }

    /// Adds (or replaces) a checker.
    pub fn register(&mut self, name: &str, checker: Checker) {
        self.checkers.insert(name.to_owned(), checker);
    }

    /// Removes a checker (tests use this to prove an item without its checker fails to load).
    pub fn unregister(&mut self, name: &str) -> Option<Checker> {
        self.checkers.remove(name)
    }

    /// The checker named `name`.
    pub fn get(&self, name: &str) -> Option<Checker> {
        self.checkers.get(name).copied()
    }

    /// The kind of the checker named `name`.
    pub fn kind_of(&self, name: &str) -> Option<CheckerKind> {
        self.get(name).map(|c| match c {
            Checker::Se(_) => CheckerKind::Se,
            Checker::Terminal(_) => CheckerKind::Terminal,
            Checker::QrTerminal(_) => CheckerKind::QrTerminal,
            Checker::Tsm(_) => CheckerKind::Tsm,
            Checker::Client(_) => CheckerKind::Client,
        })
    }

    /// Every registered name.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.checkers.keys().map(String::as_str)
    }
}
