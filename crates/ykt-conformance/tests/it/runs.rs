//! The whole catalogue against the simulator and the terminal target.

use ykt_conformance::profile::{SAMPLE_SIM, SAMPLE_TERMINAL};
use ykt_conformance::{Catalogue, Profile, Registry, RunConfig, RunInfo, Target, Verdict, run};

pub fn sim_run(profile: &str, only: Option<&str>) -> ykt_conformance::Run {
    let catalogue = Catalogue::builtin().unwrap();
    let config = RunConfig {
        profile: Profile::parse(profile).unwrap(),
        only: only.map(str::to_owned),
    };
    run(
        &catalogue,
        &Registry::builtin(),
        Target::Sim,
        &config,
        RunInfo {
            target: "sim".into(),
            profile: profile.into(),
            date: "2026-12-01T00:00:00Z".into(),
            version: "test".into(),
        },
    )
}

fn show(run: &ykt_conformance::Run) -> String {
    let mut s = String::new();
    for r in &run.results {
        s.push_str(&format!(
            "{} {} {}\n",
            r.item.id, r.outcome.verdict, r.outcome.reason
        ));
        if r.outcome.verdict.is_bad() {
            s.push_str(&r.transcript.to_string());
        }
    }
    s
}

#[test]
fn every_se_item_passes_on_the_simulator() {
    let run = sim_run(SAMPLE_SIM, None);
    assert!(run.is_success(), "{}", show(&run));
    assert_eq!(
        run.count(Verdict::Pass),
        run.results.len(),
        "{}",
        show(&run)
    );
}

#[test]
fn terminal_items_pass_or_wait_for_their_module() {
    let catalogue = Catalogue::builtin().unwrap();
    let run = run(
        &catalogue,
        &Registry::builtin(),
        Target::Terminal,
        &RunConfig {
            profile: Profile::parse(SAMPLE_TERMINAL).unwrap(),
            only: None,
        },
        RunInfo::default(),
    );
    assert!(run.is_success(), "{}", show(&run));
    for r in &run.results {
        match &r.item.needs {
            Some(_) => assert_eq!(r.outcome.verdict, Verdict::NotRun, "{}", r.item.id),
            None => assert_eq!(
                r.outcome.verdict,
                Verdict::Pass,
                "{}: {}",
                r.item.id,
                r.outcome.reason
            ),
        }
    }
}
