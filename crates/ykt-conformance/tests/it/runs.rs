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

/// The SE items on a card that cannot be made fresh: one simulated card behind `Target::Card`,
/// run twice in a row with the sample profile of `ykt se serve`, as on a card in a reader.
#[test]
fn se_items_work_relative_to_the_state_of_one_card() {
    use ykt_conformance::SimCard;
    use ykt_conformance::profile::SAMPLE_SERVE_3DES;
    let catalogue = Catalogue::builtin().unwrap();
    // The card `ykt se serve` presents: the §8 3DES test card, the test ISD (SCP03) and the
    // library INSTALL needs; here also the NFC QR applet, so that the NFC QR items run relative
    // to the card's state too.
    let mut fresh = ykt_purse::testing::danger_test_card_3des().unwrap();
    ykt_nfcqr::testing::test_instance(ykt_nfcqr::NfcQrProfile::default())
        .unwrap()
        .install(&mut fresh)
        .unwrap();
    ykt_conformance::isd::danger_install_test_isd(
        &mut fresh,
        ykt_conformance::isd::IsdChannel::Scp03,
    )
    .unwrap();
    fresh.set_library(Box::new(ykt_conformance::target::SimApplets));
    let mut card = SimCard(fresh);
    let profile = format!("{SAMPLE_SERVE_3DES},nfcqr");
    // First, on the fresh card, the purchase item alone reproduces the brief's worked example.
    let first = run(
        &catalogue,
        &Registry::builtin(),
        Target::Card(&mut card),
        &RunConfig {
            profile: Profile::parse(SAMPLE_SERVE_3DES).unwrap(),
            only: Some("SE-EP-PUR-001".into()),
        },
        RunInfo::default(),
    );
    let pur = first
        .results
        .iter()
        .find(|r| r.item.id == "SE-EP-PUR-001")
        .unwrap();
    assert!(
        pur.outcome.reason.contains("reproduced byte for byte"),
        "{}",
        pur.outcome.reason
    );
    for pass in 1..=2 {
        let run = run(
            &catalogue,
            &Registry::builtin(),
            Target::Card(&mut card),
            &RunConfig {
                profile: Profile::parse(&profile).unwrap(),
                only: None,
            },
            RunInfo::default(),
        );
        assert!(run.is_success(), "pass {pass}:\n{}", show(&run));
        for r in &run.results {
            let sim_only = r
                .item
                .profile
                .iter()
                .any(|f| ["tearing", "fixture", "t2", "alg-sm4"].contains(&f.as_str()));
            let expected = if sim_only {
                Verdict::NotApplicable
            } else {
                Verdict::Pass
            };
            assert_eq!(
                r.outcome.verdict, expected,
                "pass {pass} {}: {}",
                r.item.id, r.outcome.reason
            );
        }
    }
}

#[test]
fn profile_gates_and_only_filter() {
    let run = sim_run("ep,alg-3des", Some("SE-EP-PUR"));
    for r in &run.results {
        let v = r.outcome.verdict;
        if !r.item.id.starts_with("SE-EP-PUR") {
            assert_eq!(v, Verdict::NotRun, "{}", r.item.id);
        } else if r.item.profile.iter().any(|f| f == "fixture") {
            assert_eq!(v, Verdict::NotApplicable, "{}", r.item.id);
        } else {
            assert_eq!(v, Verdict::Pass, "{}: {}", r.item.id, r.outcome.reason);
        }
    }
    assert!(ykt_conformance::runner::matches(
        "*-TEAR-*",
        "SE-T2-TEAR-001"
    ));
    assert!(ykt_conformance::runner::matches(
        "se-ep-pur",
        "SE-EP-PUR-001a"
    ));
    assert!(!ykt_conformance::runner::matches(
        "*-TEAR-*",
        "SE-EP-PUR-001"
    ));
}

/// The QR scanning terminal items against `ykt_qr::Verifier` and its record store: the
/// automatic ones PASS, the others wait for a person's evidence.
#[test]
fn qr_terminal_items_pass_or_need_evidence() {
    use ykt_conformance::catalogue::Method;
    use ykt_conformance::profile::SAMPLE_QR_TERMINAL;
    let catalogue = Catalogue::builtin().unwrap();
    let run = run(
        &catalogue,
        &Registry::builtin(),
        Target::QrTerminal,
        &RunConfig {
            profile: Profile::parse(SAMPLE_QR_TERMINAL).unwrap(),
            only: None,
        },
        RunInfo::default(),
    );
    assert!(run.is_success(), "{}", show(&run));
    assert!(run.results.len() >= 10, "{}", show(&run));
    for r in &run.results {
        let expected = if r.item.method == Method::Auto {
            Verdict::Pass
        } else {
            Verdict::NotRun
        };
        assert_eq!(
            r.outcome.verdict, expected,
            "{}: {}",
            r.item.id, r.outcome.reason
        );
        if expected == Verdict::NotRun {
            assert!(
                r.outcome.reason.contains("evidence"),
                "{}",
                r.outcome.reason
            );
        }
    }
}
