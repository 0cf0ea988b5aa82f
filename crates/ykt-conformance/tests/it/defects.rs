//! The suite catches defects: cards that break a rule get FAIL with a reason, and a card that
//! stops answering gets INCONCLUSIVE, never PASS.

use ykt_conformance::profile::SAMPLE_SERVE_3DES;
use ykt_conformance::{
    CardAccess, Catalogue, Fault, Profile, Registry, RunConfig, RunInfo, SimCard, Target, Verdict,
    run,
};
use ykt_crypto::purse::{PurseAlgorithm, PurseKey};
use ykt_purse::testing::{TEST_ASN, danger_test_card, test_card_data, test_master_keys};
use ykt_purse::{EP_AID, IssuerFactory, KeyUsage, ProveCounter, PurseProfile};

fn run_on(card: &mut dyn CardAccess, only: &str) -> ykt_conformance::Run {
    run(
        &Catalogue::builtin().unwrap(),
        &Registry::builtin(),
        Target::Card(card),
        &RunConfig {
            profile: Profile::parse(SAMPLE_SERVE_3DES).unwrap(),
            only: Some(only.into()),
        },
        RunInfo::default(),
    )
}

fn verdict<'a>(run: &'a ykt_conformance::Run, id: &str) -> &'a ykt_conformance::Outcome {
    &run.results
        .iter()
        .find(|r| r.item.id == id)
        .unwrap()
        .outcome
}

/// A card personalised with another TAC master key: its TACs do not verify.
#[test]
fn a_card_with_a_wrong_tac_key_fails_the_tac_checks() {
    let mut keys = test_master_keys(PurseAlgorithm::Tdes);
    for k in &mut keys {
        if k.usage == KeyUsage::Tac {
            k.key = PurseKey::from_bytes([0x5A; 16]);
        }
    }
    let purse = IssuerFactory::new(keys)
        .unwrap()
        .issue(&EP_AID, PurseProfile::EPURSE, &test_card_data(TEST_ASN))
        .unwrap();
    let mut card = SimCard(danger_test_card(vec![purse]).unwrap());
    let r = run_on(&mut card, "SE-EP-LOAD-001,SE-EP-PUR-001,SE-EP-SEL-001");
    for id in ["SE-EP-LOAD-001", "SE-EP-PUR-001"] {
        let o = verdict(&r, id);
        assert_eq!(o.verdict, Verdict::Fail, "{id}: {}", o.reason);
        assert!(o.reason.contains("TAC"), "{id}: {}", o.reason);
    }
    assert_eq!(verdict(&r, "SE-EP-SEL-001").verdict, Verdict::Pass);
    assert!(!r.is_success());
    let bad = r
        .results
        .iter()
        .find(|x| x.item.id == "SE-EP-LOAD-001")
        .unwrap();
    assert!(
        bad.transcript.to_string().contains(">> 805000020B"),
        "the trace shows the load"
    );
}

/// A card whose GET TRANSACTION PROVE expects the counter + 1 (the older terminals' variant)
/// does not give the proof for the counter the transaction used.
#[test]
fn a_card_with_the_other_prove_counter_fails_prv_001() {
    let profile = PurseProfile {
        prove_counter: ProveCounter::PostIncrement,
        ..PurseProfile::EPURSE
    };
    let purse = IssuerFactory::new(test_master_keys(PurseAlgorithm::Tdes))
        .unwrap()
        .issue(&EP_AID, profile, &test_card_data(TEST_ASN))
        .unwrap();
    let mut card = SimCard(danger_test_card(vec![purse]).unwrap());
    let r = run_on(&mut card, "SE-EP-PRV-001");
    let o = verdict(&r, "SE-EP-PRV-001");
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
}

/// A card that lets the balance pass the declared limit (1000.00, L) fails the limit item.
#[test]
fn a_card_without_the_declared_balance_limit_is_caught() {
    let profile = PurseProfile {
        max_balance: 1_000_000,
        ..PurseProfile::EPURSE
    };
    let purse = IssuerFactory::new(test_master_keys(PurseAlgorithm::Tdes))
        .unwrap()
        .issue(&EP_AID, profile, &test_card_data(TEST_ASN))
        .unwrap();
    let mut card = SimCard(danger_test_card(vec![purse]).unwrap());
    let r = run_on(&mut card, "SE-EP-LOAD-004");
    let o = verdict(&r, "SE-EP-LOAD-004");
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("was accepted"), "{}", o.reason);
}

/// A card that stops answering after a few commands.
struct Dying {
    inner: SimCard,
    left: usize,
}

impl CardAccess for Dying {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Fault> {
        if self.left == 0 {
            return Err(Fault::Transport("reader unplugged".into()));
        }
        self.left -= 1;
        self.inner.transmit(command)
    }

    fn reset(&mut self) -> Result<(), Fault> {
        self.inner.reset()
    }
}

#[test]
fn a_card_that_stops_answering_is_inconclusive() {
    let mut card = Dying {
        inner: SimCard(ykt_purse::testing::danger_test_card_3des().unwrap()),
        left: 6,
    };
    let r = run_on(&mut card, "SE-EP-LOAD-001");
    let o = verdict(&r, "SE-EP-LOAD-001");
    assert_eq!(o.verdict, Verdict::Inconclusive, "{}", o.reason);
    assert!(o.reason.contains("reader unplugged"), "{}", o.reason);
    let html = ykt_conformance::report::html(&r);
    assert!(html.contains("reader unplugged") && html.contains("id=\"trace-SE-EP-LOAD-001\""));
}
