//! The catalogue as data: one TOML file per object class (conformance.md §3), embedded in the
//! crate, validated at load.
//!
//! Validation: unknown keys are rejected (serde `deny_unknown_fields`), every ID matches the
//! conformance.md §2 pattern `^[A-Z]{2,3}(-[A-Z0-9]{2,5}){1,2}-[0-9]{3}[a-z]?$` and starts with
//! its file's object class, no ID appears twice, every profile feature is known, an item whose
//! confidence is `L` is `provisional`, every item names a registered checker of its target
//! kind, and every registered checker is used by some item.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use crate::profile;
use crate::registry::{CheckerKind, Registry};

/// The SE catalogue (`catalogue/se.toml`).
pub const SE_TOML: &str = include_str!("../catalogue/se.toml");
/// The SE's GlobalPlatform items, card manager and secure channel (`catalogue/gp.toml`).
pub const GP_TOML: &str = include_str!("../catalogue/gp.toml");
/// The SE's NFC QR applet items (`catalogue/nfcqr.toml`).
pub const NFCQR_TOML: &str = include_str!("../catalogue/nfcqr.toml");
/// The acceptance-terminal catalogue (`catalogue/te.toml`).
pub const TE_TOML: &str = include_str!("../catalogue/te.toml");
/// The QR scanning terminal catalogue (`catalogue/qt.toml`).
pub const QT_TOML: &str = include_str!("../catalogue/qt.toml");

/// The TSM catalogue (`catalogue/tsm.toml`).
pub const TSM_TOML: &str = include_str!("../catalogue/tsm.toml");
/// The client software catalogue (`catalogue/cl.toml`).
pub const CL_TOML: &str = include_str!("../catalogue/cl.toml");
/// The remote-payment (online load) items (conformance.md §4.7), run against the TSM as the
/// load host.
pub const RP_TOML: &str = include_str!("../catalogue/rp.toml");

/// Reference into the standard (conformance.md §3 `std_ref`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StdRef {
    /// Document, e.g. `JT/T 1059.8-2025`.
    pub doc: String,
    /// Clause, `TBD` until the text is known.
    pub clause: String,
    /// Official or other-scheme IDs, once known.
    #[serde(default)]
    pub alias: Vec<String>,
}

/// Who the item tests (conformance.md §3 `target`). This enum is complete for the format.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
#[allow(clippy::exhaustive_enums)]
pub enum TargetKind {
    /// A secure element / card.
    Se,
    /// An acceptance terminal (NFC reader).
    Terminal,
    /// A QR scanning terminal.
    QrTerminal,
    /// A face-recognition terminal.
    FaceTerminal,
    /// A TSM.
    Tsm,
    /// Client software.
    Client,
    /// A host system.
    Host,
    /// End to end.
    E2e,
}

/// How the item is carried out.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
#[allow(clippy::exhaustive_enums)]
pub enum Method {
    /// Fully automatic.
    Auto,
    /// The harness checks evidence a person gathered.
    Semi,
    /// By hand.
    Manual,
    /// Documentation review.
    DocReview,
}

/// Where the item comes from.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
#[allow(clippy::exhaustive_enums)]
pub enum Source {
    /// Our proposal.
    Proposal,
    /// A public source.
    Public,
}

/// Confidence in the protocol facts behind the item.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum Confidence {
    /// Several independent sources agree.
    H,
    /// One good source.
    M,
    /// Our guess or inference: the item is provisional.
    L,
}

/// How much a failure weighs (conformance.md §6 decision rule).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
#[allow(clippy::exhaustive_enums)]
pub enum Severity {
    /// Critical.
    Critical,
    /// Major.
    Major,
    /// Minor.
    Minor,
}

/// One test item (conformance.md §3).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// ID, e.g. `SE-EP-PUR-003`.
    pub id: String,
    /// Title.
    pub title: String,
    /// Chinese title.
    #[serde(default)]
    pub title_zh: Option<String>,
    /// Place in the standard's structure, top to leaf.
    pub category: Vec<String>,
    /// Reference into the standard.
    pub std_ref: StdRef,
    /// Brief sections the item rests on, e.g. `e-purse.md#4.3`.
    pub brief_ref: Vec<String>,
    /// The requirement ("shall" sentence).
    pub requirement: String,
    /// Who is tested.
    pub target: TargetKind,
    /// How.
    pub method: Method,
    /// Where the item comes from.
    pub source: Source,
    /// Confidence in the facts behind it.
    pub confidence: Confidence,
    /// True if it rests on an L fact.
    pub provisional: bool,
    /// Weight of a failure.
    pub severity: Severity,
    /// Features the sample must declare.
    pub profile: Vec<String>,
    /// Preconditions.
    #[serde(default)]
    pub preconditions: Vec<String>,
    /// Steps.
    pub steps: Vec<String>,
    /// Pass criteria.
    pub pass: String,
    /// Name of the checker (see [`Registry`]); empty for a `semi`, `manual` or `doc-review`
    /// item that the harness does not run.
    #[serde(default)]
    pub checker: String,
    /// For items that are not `auto`: the evidence a person must supply for the verdict.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Parameters handed to the checker.
    #[serde(default)]
    pub params: toml::Table,
    /// A module this item needs that is not wired into the harness yet; the item is NOT_RUN.
    #[serde(default)]
    pub needs: Option<String>,
}

impl Item {
    /// The category shown in reports: the leaf of `category`.
    pub fn leaf_category(&self) -> &str {
        self.category.last().map(String::as_str).unwrap_or("")
    }

    /// The reference shown in reports: the standard clause and the brief sections.
    pub fn reference(&self) -> String {
        let mut parts = vec![format!("{} {}", self.std_ref.doc, self.std_ref.clause)];
        parts.extend(self.std_ref.alias.iter().map(|a| format!("alias {a}")));
        parts.extend(self.brief_ref.iter().cloned());
        parts.join("; ")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    item: Vec<Item>,
}

/// Why a catalogue could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogueError {
    /// The TOML does not parse or breaks the schema (unknown key, wrong type, missing field).
    Syntax {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// An ID does not match the conformance.md §2 pattern, or not its file's object class.
    BadId {
        /// The ID.
        id: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Two items share an ID.
    DuplicateId(String),
    /// An item names a checker that is not registered.
    UnknownChecker {
        /// The item.
        id: String,
        /// The checker it names.
        checker: String,
    },
    /// An item names a checker of another target kind.
    CheckerKindMismatch {
        /// The item.
        id: String,
        /// The checker it names.
        checker: String,
    },
    /// A registered checker no item uses.
    UnusedChecker(String),
    /// An item names an unknown profile feature.
    UnknownFeature {
        /// The item.
        id: String,
        /// The feature.
        feature: String,
    },
    /// An item of confidence L is not marked provisional.
    NotProvisional(String),
}

impl fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { file, message } => write!(f, "{file}: {message}"),
            Self::BadId { id, why } => write!(f, "item ID {id:?}: {why}"),
            Self::DuplicateId(id) => write!(f, "item ID {id} appears twice"),
            Self::UnknownChecker { id, checker } => {
                write!(
                    f,
                    "item {id} names checker {checker:?}, which does not exist"
                )
            }
            Self::CheckerKindMismatch { id, checker } => write!(
                f,
                "item {id} names checker {checker:?}, which is for another target kind"
            ),
            Self::UnusedChecker(name) => {
                write!(f, "checker {name:?} is registered but no item uses it")
            }
            Self::UnknownFeature { id, feature } => {
                write!(f, "item {id} needs unknown profile feature {feature:?}")
            }
            Self::NotProvisional(id) => {
                write!(f, "item {id} rests on an L fact but is not provisional")
            }
        }
    }
}

impl std::error::Error for CatalogueError {}

/// Whether `id` matches `^[A-Z]{2,3}(-[A-Z0-9]{2,5}){1,2}-[0-9]{3}[a-z]?$` (conformance.md §2).
pub fn is_valid_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    if !(3..=4).contains(&parts.len()) {
        return false;
    }
    let object = parts[0];
    let last = parts[parts.len() - 1];
    let middle = &parts[1..parts.len() - 1];
    let object_ok =
        (2..=3).contains(&object.len()) && object.bytes().all(|b| b.is_ascii_uppercase());
    let middle_ok = middle.iter().all(|p| {
        (2..=5).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    });
    let lb = last.as_bytes();
    let last_ok = match lb.len() {
        3 => lb.iter().all(u8::is_ascii_digit),
        4 => lb[..3].iter().all(u8::is_ascii_digit) && lb[3].is_ascii_lowercase(),
        _ => false,
    };
    object_ok && middle_ok && last_ok
}

/// A validated catalogue: items in file order, SE first.
#[derive(Clone, Debug)]
pub struct Catalogue {
    items: Vec<Item>,
}

impl Catalogue {
    /// The embedded catalogue, validated against the built-in checkers.
    pub fn builtin() -> Result<Catalogue, CatalogueError> {
        Catalogue::load(
            &[
                ("se.toml", "SE", SE_TOML),
                ("gp.toml", "SE", GP_TOML),
                ("nfcqr.toml", "SE", NFCQR_TOML),
                ("te.toml", "TE", TE_TOML),
                ("qt.toml", "QT", QT_TOML),
                ("tsm.toml", "TSM", TSM_TOML),
                ("cl.toml", "CL", CL_TOML),
                ("rp.toml", "RP", RP_TOML),
            ],
            &Registry::builtin(),
        )
    }

    /// Loads and validates `files` (name, object-class prefix, TOML text) against `registry`.
    pub fn load(
        files: &[(&str, &str, &str)],
        registry: &Registry,
    ) -> Result<Catalogue, CatalogueError> {
        let mut items = Vec::new();
        for (name, object, text) in files {
            let file: File = toml::from_str(text).map_err(|e| CatalogueError::Syntax {
                file: (*name).to_owned(),
                message: e.to_string(),
            })?;
            for item in file.item {
                if !is_valid_id(&item.id) {
                    return Err(CatalogueError::BadId {
                        id: item.id,
                        why: "does not match ^[A-Z]{2,3}(-[A-Z0-9]{2,5}){1,2}-[0-9]{3}[a-z]?$",
                    });
                }
                if item.id.split('-').next() != Some(*object) {
                    return Err(CatalogueError::BadId {
                        id: item.id,
                        why: "its object class is not the one of its file",
                    });
                }
                items.push(item);
            }
        }
        let mut seen = BTreeSet::new();
        let mut used = BTreeSet::new();
        for item in &items {
            if !seen.insert(item.id.as_str()) {
                return Err(CatalogueError::DuplicateId(item.id.clone()));
            }
            if let Some(feature) = item.profile.iter().find(|f| !profile::is_known(f)) {
                return Err(CatalogueError::UnknownFeature {
                    id: item.id.clone(),
                    feature: feature.clone(),
                });
            }
            if item.confidence == Confidence::L && !item.provisional {
                return Err(CatalogueError::NotProvisional(item.id.clone()));
            }
            if item.checker.is_empty() && item.method != Method::Auto {
                continue;
            }
            let kind =
                registry
                    .kind_of(&item.checker)
                    .ok_or_else(|| CatalogueError::UnknownChecker {
                        id: item.id.clone(),
                        checker: item.checker.clone(),
                    })?;
            let expected = match item.target {
                TargetKind::Se => CheckerKind::Se,
                TargetKind::Terminal => CheckerKind::Terminal,
                TargetKind::QrTerminal => CheckerKind::QrTerminal,
                TargetKind::Tsm => CheckerKind::Tsm,
                TargetKind::Client => CheckerKind::Client,
                _ => CheckerKind::Other,
            };
            if kind != expected {
                return Err(CatalogueError::CheckerKindMismatch {
                    id: item.id.clone(),
                    checker: item.checker.clone(),
                });
            }
            used.insert(item.checker.as_str());
        }
        if let Some(unused) = registry.names().find(|n| !used.contains(n)) {
            return Err(CatalogueError::UnusedChecker(unused.to_owned()));
        }
        Ok(Catalogue { items })
    }

    /// Every item, in catalogue order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The item with `id`.
    pub fn get(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }

    /// Item counts per (object class, area), e.g. `("SE", "EP") → 28`.
    pub fn counts_by_area(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for item in &self.items {
            let mut parts = item.id.split('-');
            let object = parts.next().unwrap_or("").to_owned();
            let area = parts.next().unwrap_or("").to_owned();
            *out.entry((object, area)).or_insert(0) += 1;
        }
        out
    }
}
