//! Grey-transaction recovery: each state of `RecoveryFlow` on its own, and the randomised torn
//! purchases (power cuts in the card, lost and damaged answers, power cuts of the journal).
//!
//! `bash scripts/soak-torn --count 10000 [--seed S]` runs the soak (it sets `YKT_TORN_PURCHASES`
//! and `YKT_TORN_SEED` for this test); the normal run has 1,000 rides.

use ykt_apdu::{ResponseApdu, StatusWord};
use ykt_card::Card;
use ykt_crypto::purse::Sm4Rules;
use ykt_purse::EP_AID;
use ykt_purse::profile::{DEFAULT_PROVE_COUNTER, ProveCounter as CardProveCounter};
use ykt_purse::testing::{TEST_MASTER_DPK, danger_test_card_3des};
use ykt_terminal::card_data::CardIdentity;
use ykt_terminal::journal::{
    EntryBody, GreyReason, GreyTransaction, JournalError, PendingPurchase, PowerLost,
};
use ykt_terminal::purchase::{PendingDebit, PurchaseRecord};
use ykt_terminal::recovery::{
    PROVE_COUNTER, ProveCounter, RecoveryFlow, RecoveryOutcome, SoftwareProofVerifier,
    prove_counter,
};
use ykt_terminal::validator::{Record, TapOutcome, Validator};
use ykt_terminal::{Flow, FlowError, Step, commands};

use crate::journal::Rng;
use crate::validator::{
    Fault, Garble, Rig, TERMINAL, TIME, link, master, purchase_params, purchase_tac_ok,
};

#[test]
fn the_terminal_sends_the_counter_form_the_card_expects() {
    let same = matches!(
        (PROVE_COUNTER, DEFAULT_PROVE_COUNTER),
        (ProveCounter::PreIncrement, CardProveCounter::PreIncrement)
            | (ProveCounter::PostIncrement, CardProveCounter::PostIncrement)
    );
    assert!(same);
    assert_eq!(prove_counter(7), 7);
}

fn card_identity(card: &mut Card) -> (CardIdentity, ResponseApdu) {
    let r = link(card, Fault::None)(&commands::select(&EP_AID)).unwrap();
    (CardIdentity::from_fci(&r.data).unwrap(), r)
}

/// The grey purchase of e-purse.md §8.2 (random 5E6F7A8B, counter 0, TTSN 1, 200 fen).
fn brief_grey(card: CardIdentity) -> PendingPurchase {
    PendingPurchase {
        aid: EP_AID.to_vec(),
        debit: PendingDebit {
            record: PurchaseRecord {
                card,
                transaction_type: 0x06,
                balance_before: 10_000,
                amount: 200,
                offline_counter: 0,
                ttsn: 1,
                key_version: 1,
                algorithm_id: 0,
                terminal_id: TERMINAL,
                datetime: TIME,
                tac: [0; 4],
                mac2: [0; 4],
            },
            key_index: 1,
            random: [0x5E, 0x6F, 0x7A, 0x8B],
        },
    }
}

fn verifier() -> SoftwareProofVerifier {
    SoftwareProofVerifier::new(master(TEST_MASTER_DPK), Sm4Rules::BRIEF)
}

fn answer(hex: &str) -> ResponseApdu {
    ResponseApdu::parse(&hex::decode(hex.replace(' ', "")).unwrap()).unwrap()
}

/// Runs a recovery of `grey` from SELECT with scripted answers after the real SELECT answer.
fn scripted(
    grey: &PendingPurchase,
    select: ResponseApdu,
    answers: &[&str],
) -> Result<RecoveryOutcome, FlowError> {
    let mut v = verifier();
    let (mut flow, first) = RecoveryFlow::start(GreyTransaction::Purchase(grey), &mut v);
    assert_eq!(first.ins, 0xA4);
    let mut step = flow.on_response(select)?;
    for a in answers {
        let Step::Send(command) = step else {
            panic!("ended early")
        };
        if command.ins == 0x5A {
            // 80 5A 00 06 02 0000 08
            assert_eq!(
                command.to_bytes(),
                hex::decode("805A0006020000 08".replace(' ', "")).unwrap()
            );
        }
        step = flow.on_response(answer(a))?;
    }
    match step {
        Step::Done(outcome) => {
            assert!(matches!(
                flow.on_response(answer("9000")),
                Err(FlowError::AlreadyDone)
            ));
            Ok(outcome)
        }
        Step::Send(c) => panic!("still sending {c:?}"),
    }
}

#[test]
fn each_recovery_state_decides_precisely() {
    let mut card = danger_test_card_3des().unwrap();
    let (identity, select) = card_identity(&mut card);
    let grey = brief_grey(identity.clone());
    // The brief's proof: MAC2 2F0250C6, TAC 787BD517.
    let outcome = scripted(
        &grey,
        select.clone(),
        &["00002648 9000", "2F0250C6787BD517 9000"],
    );
    let Ok(RecoveryOutcome::Purchase(p)) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (p.mac2, p.tac),
        ([0x2F, 0x02, 0x50, 0xC6], [0x78, 0x7B, 0xD5, 0x17])
    );
    assert!(purchase_tac_ok(&p));
    // Not charged: no proof and the balance as before.
    assert_eq!(
        scripted(&grey, select.clone(), &["00002710 9000", "9406"]),
        Ok(RecoveryOutcome::NotCharged)
    );
    // No proof but the balance moved.
    assert_eq!(
        scripted(&grey, select.clone(), &["00002648 9000", "9406"]),
        Ok(RecoveryOutcome::LeftGrey(GreyReason::ProofRefused(
            StatusWord(0x9406)
        )))
    );
    // A proof whose MAC2 is another session's.
    assert_eq!(
        scripted(
            &grey,
            select.clone(),
            &["00002648 9000", "11111111787BD517 9000"]
        ),
        Ok(RecoveryOutcome::LeftGrey(GreyReason::Mac2Invalid {
            mac2: [0x11; 4],
            tac: [0x78, 0x7B, 0xD5, 0x17]
        }))
    );
    // Answers that prove nothing leave the entry open (errors).
    assert_eq!(
        scripted(&grey, select.clone(), &["00002648 9000", "6F00"]),
        Err(FlowError::CardRefused {
            step: "GET TRANSACTION PROVE",
            sw: StatusWord(0x6F00)
        })
    );
    assert_eq!(
        scripted(
            &grey,
            select.clone(),
            &["00002648 9000", "2F0250C6787BD5 9000"]
        ),
        Err(FlowError::MalformedResponse {
            step: "GET TRANSACTION PROVE",
            len: 7
        })
    );
    assert_eq!(
        scripted(&grey, select.clone(), &["002648 9000"]),
        Err(FlowError::MalformedResponse {
            step: "GET BALANCE",
            len: 3
        })
    );
    assert_eq!(
        scripted(&grey, select.clone(), &["6A81"]),
        Err(FlowError::CardRefused {
            step: "GET BALANCE",
            sw: StatusWord(0x6A81)
        })
    );
    assert_eq!(
        scripted(&grey, answer("6A82"), &[]),
        Err(FlowError::CardRefused {
            step: "SELECT",
            sw: StatusWord(0x6A82)
        })
    );
    // Another card: nothing is asked of it.
    let mut other = brief_grey(identity);
    other.debit.record.card.asn[9] ^= 1;
    assert_eq!(
        scripted(&other, select, &[]),
        Ok(RecoveryOutcome::DifferentCard)
    );
}

/// A verifier that always fails with `error`.
struct Failing(ykt_terminal::SamError);

impl ykt_terminal::recovery::ProofVerifier for Failing {
    fn verify_proved_mac2(
        &mut self,
        _: &PendingPurchase,
        _: &[u8; 4],
    ) -> Result<(), ykt_terminal::SamError> {
        Err(self.0)
    }
}

#[test]
fn a_proof_that_cannot_be_checked_here_is_left_grey_and_a_failing_sam_leaves_it_open() {
    use ykt_terminal::SamError;
    let mut card = danger_test_card_3des().unwrap();
    let (identity, _) = card_identity(&mut card);
    let grey = brief_grey(identity);
    let proof = "2F0250C6787BD517 9000";
    let unverified = RecoveryOutcome::LeftGrey(GreyReason::Unverified {
        mac2: [0x2F, 0x02, 0x50, 0xC6],
        tac: [0x78, 0x7B, 0xD5, 0x17],
    });
    let cases = [
        (
            SamError::UnknownKey {
                index: 1,
                version: 1,
            },
            Some(&unverified),
        ),
        (SamError::UnknownAlgorithm(0), Some(&unverified)),
        (SamError::NoPurchaseInProgress, Some(&unverified)),
        (SamError::Transport, None),
        (
            SamError::MalformedResponse {
                command: "80 72",
                len: 1,
            },
            None,
        ),
    ];
    for (error, expected) in cases {
        let mut v = Failing(error);
        let (mut flow, get_balance) =
            RecoveryFlow::after_select(GreyTransaction::Purchase(&grey), &mut v);
        assert_eq!(get_balance.ins, 0x5C);
        flow.on_response(answer("00002648 9000")).unwrap();
        match (flow.on_response(answer(proof)), expected) {
            (Ok(Step::Done(outcome)), Some(expected)) => assert_eq!(&outcome, expected),
            (Err(FlowError::Sam(e)), None) => assert_eq!(e, error),
            (other, _) => panic!("{error:?}: {other:?}"),
        }
    }
    // A verifier without the key, as a terminal with only a PSAM has.
    let mut v = SoftwareProofVerifier::new(vec![], Sm4Rules::BRIEF);
    let (mut flow, _) = RecoveryFlow::after_select(GreyTransaction::Purchase(&grey), &mut v);
    flow.on_response(answer("00002648 9000")).unwrap();
    assert!(matches!(
        flow.on_response(answer(proof)),
        Ok(Step::Done(RecoveryOutcome::LeftGrey(
            GreyReason::Unverified { .. }
        )))
    ));
}

/// Counts of what the torn rides went through.
#[derive(Debug, Default)]
struct Tally {
    rides: u64,
    taps: u64,
    grey: u64,
    recovered: u64,
    not_charged: u64,
    journal_cuts: u64,
    card_cuts: u64,
    loads: u64,
}

fn first_fault(rng: &mut Rng, commands: u64) -> Fault {
    let at = 1 + rng.below(commands) as usize;
    match rng.below(10) {
        0 => Fault::None,
        1 | 2 => Fault::RemovedBefore(at),
        3 | 4 => Fault::LostAfter(at),
        5..=7 => Fault::Tear(1 + rng.below(40)),
        _ => Fault::Garbled(
            at,
            match rng.below(5) {
                0 => Garble::Short,
                1 => Garble::Long,
                2 => Garble::Status,
                3 => Garble::FlipLast,
                _ => Garble::Random(rng.next()),
            },
        ),
    }
}

/// Faults of a re-tap: every fault but damaged proof data, which would rightly be left grey.
fn retap_fault(rng: &mut Rng, commands: u64) -> Fault {
    let at = 1 + rng.below(commands) as usize;
    match rng.below(8) {
        0 => Fault::RemovedBefore(at),
        1 => Fault::LostAfter(at),
        2 => Fault::Tear(1 + rng.below(40)),
        3 => Fault::Garbled(at, Garble::Status),
        4 => Fault::Garbled(at, Garble::Short),
        _ => Fault::None,
    }
}

/// One tap; a cut of the journal's storage (`journal_cut`) restarts the terminal.
fn tap(
    rig: &mut Rig,
    load: Option<u32>,
    amount: u32,
    composite: bool,
    fault: Fault,
    journal_cut: Option<u64>,
    tally: &mut Tally,
) -> Option<TapOutcome> {
    tally.taps += 1;
    if let Some(n) = journal_cut {
        rig.validator
            .danger_storage_mut()
            .arm_at_keeping(n, (tally.taps % 23) as usize);
    }
    let writes = rig.card.persistent_writes();
    let result = match load {
        Some(amount) => rig.validator.load(
            crate::validator::load_params(amount),
            &mut rig.host,
            &mut rig.verifier,
            link(&mut rig.card, fault),
        ),
        None => rig.validator.purchase(
            purchase_params(amount, composite),
            &mut rig.sam,
            &mut rig.verifier,
            link(&mut rig.card, fault),
        ),
    };
    if !rig.card.is_powered()
        && matches!(fault, Fault::Tear(_))
        && rig.card.persistent_writes() > writes
    {
        tally.card_cuts += 1;
    }
    rig.settle_card();
    rig.validator.danger_storage_mut().arm_at(0);
    match result {
        Ok(t) => {
            if let Some((_, outcome)) = &t.recovered {
                match outcome {
                    RecoveryOutcome::NotCharged => tally.not_charged += 1,
                    RecoveryOutcome::Purchase(_) | RecoveryOutcome::Load(_) => tally.recovered += 1,
                    other => panic!("{other:?}"),
                }
            }
            if matches!(t.outcome, TapOutcome::Grey { .. }) {
                tally.grey += 1;
            }
            Some(t.outcome)
        }
        Err(JournalError::Storage(PowerLost)) => {
            tally.journal_cuts += 1;
            let mut storage = std::mem::replace(
                &mut rig.validator,
                Validator::open(ykt_terminal::journal::MemoryStorage::new()).unwrap(),
            )
            .into_storage();
            storage.power_on();
            rig.validator = Validator::open(storage).unwrap();
            None
        }
        Err(e) => panic!("{e:?}"),
    }
}

fn torn_rides(rides: u64, seed: u64) -> Tally {
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let mut rig = Rig::new();
    let mut expected: i64 = 0;
    for ride in 0..rides {
        // Every 200 rides a new card and terminal, so that the journal stays small.
        if ride.is_multiple_of(200) && ride > 0 {
            rig = Rig::new();
            expected = 0;
        }
        let balance = rig.balance();
        let (load, amount, composite) = if balance < 2_000 {
            tally.loads += 1;
            (Some(5_000 + rng.below(5_000) as u32), 0, false)
        } else {
            (None, rng.below(300) as u32, rng.below(3) == 0)
        };
        let commands = match (load, composite) {
            (Some(_), _) => 3,
            (None, true) => 4,
            (None, false) => 3,
        };
        let mut fault = first_fault(&mut rng, commands);
        // CREDIT FOR LOAD answers a bare TAC, which no terminal can check: a damaged one is
        // settlement's to catch (it recomputes every TAC), so loads get no bit flips here.
        if let (Some(_), Fault::Garbled(at, Garble::FlipLast)) = (load, fault) {
            fault = Fault::Garbled(at, Garble::Short);
        }
        let mut journal_cut = (rng.below(8) == 0).then(|| 1 + rng.below(2));
        let mut tries = 0;
        loop {
            tries += 1;
            assert!(tries < 60, "ride {ride} (seed {seed:#x}) never completed");
            let outcome = tap(
                &mut rig,
                load,
                amount,
                composite,
                fault,
                journal_cut,
                &mut tally,
            );
            let done = match (&outcome, load) {
                (
                    Some(
                        TapOutcome::Completed {
                            record: Record::Load(_),
                            ..
                        }
                        | TapOutcome::Recovered {
                            record: Record::Load(_),
                            ..
                        },
                    ),
                    Some(a),
                ) => {
                    expected += i64::from(a);
                    true
                }
                (
                    Some(
                        TapOutcome::Completed {
                            record: Record::Purchase(_),
                            ..
                        }
                        | TapOutcome::Recovered {
                            record: Record::Purchase(_),
                            ..
                        },
                    ),
                    None,
                ) => {
                    expected -= i64::from(amount);
                    true
                }
                (Some(TapOutcome::LeftGrey { .. }), _) => panic!("ride {ride}: left grey"),
                _ => false,
            };
            // The card and the journal agree after every tap: completed records add up to
            // the balance, whatever is still grey is the only thing unaccounted.
            let balance = i64::from(rig.balance());
            let open = rig.validator.open_grey();
            assert!(open.len() <= 1, "ride {ride}: {open:?}");
            if open.is_empty() {
                assert_eq!(
                    balance,
                    rig.journal_net(),
                    "ride {ride} (seed {seed:#x}): journal and card disagree"
                );
            }
            if done {
                assert!(open.is_empty());
                assert_eq!(
                    balance, expected,
                    "ride {ride} (seed {seed:#x}): charged twice or not at all"
                );
                break;
            }
            let commands = commands + 2;
            fault = retap_fault(&mut rng, commands);
            journal_cut = (rng.below(10) == 0).then(|| 1 + rng.below(3));
        }
        tally.rides += 1;
        if ride % 50 == 49 || ride + 1 == rides {
            rig.assert_every_tac_verifies();
            assert_no_duplicate_records(&mut rig);
        }
    }
    tally
}

/// No transaction is recorded twice (same card counter and type), and the card counted exactly
/// the transactions the journal holds.
fn assert_no_duplicate_records(rig: &mut Rig) {
    let (mut loads, mut purchases) = (0u16, 0u16);
    for e in rig.validator.journal().entries() {
        match e.body {
            EntryBody::Purchase { .. } => purchases += 1,
            EntryBody::Load { .. } => loads += 1,
            _ => {}
        }
    }
    assert_eq!(rig.counters(), (loads, purchases));
    let mut seen = std::collections::BTreeSet::new();
    for e in rig.validator.journal().entries() {
        let key = match &e.body {
            EntryBody::Purchase { record, .. } => (0, record.offline_counter),
            EntryBody::Load { record, .. } => (1, record.online_counter),
            _ => continue,
        };
        assert!(seen.insert(key), "recorded twice: {e:?}");
    }
}

#[test]
fn torn_purchases_never_charge_twice_and_every_recovered_tac_verifies() {
    let rides = std::env::var("YKT_TORN_PURCHASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let seed = std::env::var("YKT_TORN_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x594B_5454_4F52_4E31);
    let tally = torn_rides(rides, seed);
    eprintln!("{tally:?}");
    assert_eq!(tally.rides, rides);
    // The faults did happen: grey entries, recoveries both ways, cuts of the card and journal.
    assert!(tally.grey > rides / 20, "{tally:?}");
    assert!(tally.recovered > rides / 50, "{tally:?}");
    assert!(tally.not_charged > rides / 50, "{tally:?}");
    assert!(tally.card_cuts > rides / 50, "{tally:?}");
    assert!(tally.journal_cuts > rides / 50, "{tally:?}");
}
