//! The runner: per item a fresh fixture where the target allows it, the profile and target
//! gates, the checker, and the verdict with its transcript.
//!
//! | target | fixture per item | items |
//! |---|---|---|
//! | [`Target::Sim`] | a fresh in-process test card (the item's `fixture` parameter) | `target = "se"` |
//! | [`Target::Card`] | none possible: the one card, reset before each item | `target = "se"`, except `tearing`/`fixture` ones (N/A) |
//! | [`Target::Terminal`] | a fresh lower-tester card, PSAM and host | `target = "terminal"` |
//! | [`Target::QrTerminal`] | a fresh verifier and record store | `target = "qr-terminal"` |
//! | [`Target::Tsm`] | fresh blank SEs and an enrolled device of the harness's | `target = "tsm"` |
//! | [`Target::Client`] | the wallet SDK, fresh per item, with the harness in both its links | `target = "client"` |
//!
//! Items whose method is not `auto` are NOT_RUN, with the evidence a person must supply.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::catalogue::{Catalogue, Item, Method, TargetKind};
use crate::isd::IsdChannel;
use crate::params::Params;
use crate::profile::Profile;
use crate::qt::QtHarness;
use crate::registry::{Checker, Registry};
use crate::se::SeHarness;
use crate::target::{CardAccess, SimCard, sim_fixture};
use crate::te::TeHarness;
use crate::transcript::Transcript;
use crate::tsm::{TsmAccess, TsmHarness};
use crate::verdict::{Outcome, Verdict};

/// Features only the simulator can offer, whatever a profile declares.
pub const SIM_ONLY: [&str; 2] = ["tearing", "fixture"];

/// What the run talks to.
#[non_exhaustive]
pub enum Target<'a> {
    /// The in-process simulator: a fresh test card per item.
    Sim,
    /// One card behind [`CardAccess`] (a reader): items work relative to its state.
    Card(&'a mut dyn CardAccess),
    /// The terminal under test with the scripted lower tester.
    Terminal,
    /// The QR scanning terminal under test: `ykt_qr::Verifier` and its record store, in
    /// process, fresh per item.
    QrTerminal,
    /// The TSM under test behind [`TsmAccess`] (the binary's HTTP client): the harness plays
    /// the phone (its own device key, blank simulated SEs, the test payment provider).
    Tsm(&'a mut dyn TsmAccess),
    /// The client software under test: this project's wallet SDK, driven by the harness, which
    /// sits in the middle of its TSM link (over [`TsmAccess`]) and its SE link.
    Client(&'a mut dyn TsmAccess),
}

impl Target<'_> {
    fn kind(&self) -> TargetKind {
        match self {
            Target::Sim | Target::Card(_) => TargetKind::Se,
            Target::Terminal => TargetKind::Terminal,
            Target::QrTerminal => TargetKind::QrTerminal,
            Target::Tsm(_) => TargetKind::Tsm,
            Target::Client(_) => TargetKind::Client,
        }
    }
}

/// Run options.
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    /// The sample's declared profile.
    pub profile: Profile,
    /// Only items matching one of these comma-separated patterns (see [`matches()`]); the others
    /// are NOT_RUN.
    pub only: Option<String>,
}

/// Run metadata for the reports.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// Target as given on the command line, e.g. `sim` or `pcsc:Virtual PCD 00 00`.
    pub target: String,
    /// The declared profile.
    pub profile: String,
    /// Date and time of the run (given by the caller; this crate has no clock).
    pub date: String,
    /// Version of the tool.
    pub version: String,
}

/// The result of one item.
#[derive(Clone, Debug)]
pub struct ItemResult {
    /// The item.
    pub item: Item,
    /// Verdict and reason.
    pub outcome: Outcome,
    /// What was exchanged.
    pub transcript: Transcript,
}

/// A whole run.
#[derive(Clone, Debug)]
pub struct Run {
    /// Metadata.
    pub info: RunInfo,
    /// Results in catalogue order.
    pub results: Vec<ItemResult>,
}

impl Run {
    /// Number of results with `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome.verdict == verdict)
            .count()
    }

    /// True when nothing FAILed and nothing was INCONCLUSIVE.
    pub fn is_success(&self) -> bool {
        !self.results.iter().any(|r| r.outcome.verdict.is_bad())
    }
}

/// Whether `id` matches `pattern`: `*` stands for any run of characters; a pattern without `*`
/// matches IDs that start with it (`SE-EP-PUR` selects every purchase item). Case-insensitive.
pub fn matches(pattern: &str, id: &str) -> bool {
    let pattern = pattern.to_ascii_uppercase();
    let id = id.to_ascii_uppercase();
    if !pattern.contains('*') {
        return id.starts_with(&pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = id.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Runs every item of the target's kind.
pub fn run(
    catalogue: &Catalogue,
    registry: &Registry,
    mut target: Target<'_>,
    config: &RunConfig,
    info: RunInfo,
) -> Run {
    let kind = target.kind();
    let mut results = Vec::new();
    for item in catalogue.items().iter().filter(|i| i.target == kind) {
        let (outcome, transcript) = run_item(item, registry, &mut target, config, &info.target);
        results.push(ItemResult {
            item: item.clone(),
            outcome,
            transcript,
        });
    }
    Run { info, results }
}

fn gate(item: &Item, target: &Target<'_>, config: &RunConfig) -> Option<Outcome> {
    if let Some(only) = &config.only
        && !only.split(',').any(|p| matches(p.trim(), &item.id))
    {
        return Some(Outcome::new(
            Verdict::NotRun,
            format!("not selected by --only {only}"),
        ));
    }
    if item.method != Method::Auto {
        let evidence = if item.evidence.is_empty() {
            String::new()
        } else {
            format!(": {}", item.evidence.join("; "))
        };
        return Some(Outcome::new(
            Verdict::NotRun,
            format!(
                "{} item: the verdict needs evidence a person supplies{evidence}",
                format!("{:?}", item.method).to_lowercase()
            ),
        ));
    }
    if let Some(module) = &item.needs {
        return Some(Outcome::new(
            Verdict::NotRun,
            format!("needs {module}, which is not wired into the harness yet"),
        ));
    }
    let missing = config.profile.missing(&item.profile);
    if !missing.is_empty() {
        return Some(Outcome::new(
            Verdict::NotApplicable,
            format!("the declared profile lacks {}", missing.join(", ")),
        ));
    }
    if matches!(target, Target::Card(_))
        && let Some(f) = item.profile.iter().find(|f| SIM_ONLY.contains(&f.as_str()))
    {
        return Some(Outcome::new(
            Verdict::NotApplicable,
            format!("{f} can only run on the simulator (--target sim)"),
        ));
    }
    None
}

fn run_item(
    item: &Item,
    registry: &Registry,
    target: &mut Target<'_>,
    config: &RunConfig,
    given: &str,
) -> (Outcome, Transcript) {
    if let Some(outcome) = gate(item, target, config) {
        return (outcome, Transcript::new());
    }
    let params = Params(&item.params);
    let fixture = params.str("fixture", "3des").unwrap_or("3des").to_owned();
    let Some(checker) = registry.get(&item.checker) else {
        return (
            Outcome::new(
                Verdict::Inconclusive,
                format!("no checker {}", item.checker),
            ),
            Transcript::new(),
        );
    };
    let caught = catch_unwind(AssertUnwindSafe(|| match (checker, target) {
        (Checker::Se(check), Target::Sim) => {
            let card = match sim_fixture(&fixture) {
                Ok(c) => c,
                Err(e) => {
                    return (
                        Outcome::new(Verdict::Inconclusive, e.to_string()),
                        Transcript::new(),
                    );
                }
            };
            let mut sim = SimCard(card);
            let mut h = SeHarness::new(&mut sim);
            h.set_isd(match fixture.as_str() {
                "isd-scp02" => Some(IsdChannel::Scp02),
                "isd-sm4" => Some(IsdChannel::Sm4),
                _ => IsdChannel::from_profile(&config.profile),
            });
            let r = check(&mut h, params);
            (to_outcome(r), h.into_transcript())
        }
        (Checker::Se(check), Target::Card(card)) => {
            let mut h = SeHarness::new(&mut **card);
            h.set_isd(IsdChannel::from_profile(&config.profile));
            if let Err(stop) = h.reset() {
                return (stop.outcome(), h.into_transcript());
            }
            let r = check(&mut h, params);
            (to_outcome(r), h.into_transcript())
        }
        (Checker::Terminal(check), Target::Terminal) => match TeHarness::new(&fixture) {
            Ok(mut t) => {
                let r = check(&mut t, params);
                (to_outcome(r), t.transcript())
            }
            Err(stop) => (stop.outcome(), Transcript::new()),
        },
        (Checker::QrTerminal(check), Target::QrTerminal) => match QtHarness::new() {
            Ok(mut q) => {
                let r = check(&mut q, params);
                (to_outcome(r), q.into_transcript())
            }
            Err(stop) => (stop.outcome(), Transcript::new()),
        },
        (Checker::Tsm(check), Target::Tsm(access))
        | (Checker::Client(check), Target::Client(access)) => {
            let mut h = TsmHarness::for_target(&mut **access, &item.id, given);
            let r = check(&mut h, params);
            (to_outcome(r), h.into_transcript())
        }
        _ => (
            Outcome::new(Verdict::Inconclusive, "checker and target kinds differ"),
            Transcript::new(),
        ),
    }));
    caught.unwrap_or_else(|_| {
        (
            Outcome::new(
                Verdict::Inconclusive,
                "the harness panicked (a harness bug)",
            ),
            Transcript::new(),
        )
    })
}

fn to_outcome(r: Result<String, crate::verdict::Stop>) -> Outcome {
    match r {
        Ok(reason) => Outcome::new(Verdict::Pass, reason),
        Err(stop) => stop.outcome(),
    }
}
