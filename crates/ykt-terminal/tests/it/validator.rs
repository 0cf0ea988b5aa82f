//! The validator against the in-process test card: the card removed, garbage and wrong lengths
//! at every step of purchase, composite purchase and load; a wrong MAC2; SAM errors; the export.

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_card::Card;
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_purse::EP_AID;
use ykt_purse::testing::{
    TEST_MASTER_DLK, TEST_MASTER_DPK, TEST_MASTER_DTK, danger_test_card_3des,
};
use ykt_terminal::export::{self, CSV_HEADER, RecordStatus};
use ykt_terminal::journal::{EntryBody, GreyReason, MemoryStorage, Origin, Resolution};
use ykt_terminal::load::{LoadParams, LoadRecord};
use ykt_terminal::load_host::IssuerLoadHost;
use ykt_terminal::purchase::{CappRecord, PurchaseParams, PurchaseRecord};
use ykt_terminal::recovery::{RecoveryOutcome, SoftwareProofVerifier};
use ykt_terminal::sam::{MasterKey, SoftwareSam};
use ykt_terminal::tac::{load_tac_input, purchase_tac_input, verify_tac};
use ykt_terminal::validator::{GreyCause, Record, Tap, TapOutcome, Validator};
use ykt_terminal::{FlowError, SamError};

pub const TERMINAL: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
pub const TIME: [u8; 7] = [0x20, 0x24, 0x01, 0x15, 0x10, 0x35, 0x00];

/// No answer from the card.
#[derive(Debug)]
pub struct Lost;

/// What goes wrong with the `at`-th command of a tap (1-based).
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Nothing.
    None,
    /// The card is gone before the command reaches it.
    RemovedBefore(usize),
    /// The card runs the command, then the answer is lost.
    LostAfter(usize),
    /// The card runs the command and its answer arrives damaged.
    Garbled(usize, Garble),
    /// The tearing switch cuts the card's power at the given persistent write of the tap.
    Tear(u64),
}

/// How an answer is damaged.
#[derive(Debug, Clone, Copy)]
pub enum Garble {
    /// One data byte short.
    Short,
    /// One data byte too many.
    Long,
    /// Random data of a random length, with `9000`.
    Random(u64),
    /// The answer's status word replaced with `6F00`.
    Status,
    /// One bit of the last data byte flipped.
    FlipLast,
}

fn garble(r: &mut ResponseApdu, g: Garble) {
    match g {
        Garble::Short => {
            r.data.pop();
        }
        Garble::Long => r.data.push(0x00),
        Garble::Random(seed) => {
            let mut rng = crate::journal::Rng(seed | 1);
            let len = rng.below(40) as usize;
            r.data = (0..len).map(|_| rng.next() as u8).collect();
            r.sw = StatusWord::SUCCESS;
        }
        Garble::Status => r.sw = StatusWord(0x6F00),
        Garble::FlipLast => {
            if let Some(b) = r.data.last_mut() {
                *b ^= 0x01;
            }
        }
    }
}

/// A transmit function over `card` that injects `fault`.
pub fn link(
    card: &mut Card,
    fault: Fault,
) -> impl FnMut(&CommandApdu) -> Result<ResponseApdu, Lost> + '_ {
    let mut n = 0;
    if let Fault::Tear(w) = fault {
        card.tear().arm_at(w);
    }
    move |c: &CommandApdu| {
        n += 1;
        if matches!(fault, Fault::RemovedBefore(at) if at == n) {
            return Err(Lost);
        }
        let raw = card.transmit(&c.to_bytes()).map_err(|_| Lost)?;
        let mut r = ResponseApdu::parse(&raw).unwrap();
        match fault {
            Fault::LostAfter(at) if at == n => Err(Lost),
            Fault::Garbled(at, g) if at == n => {
                garble(&mut r, g);
                Ok(r)
            }
            _ => Ok(r),
        }
    }
}

pub fn master(key: [u8; 16]) -> Vec<MasterKey> {
    vec![MasterKey {
        index: 1,
        version: 1,
        key: PurseKey::from_bytes(key),
    }]
}

/// A validator with its journal in memory, its SAM, proof verifier and load host, and a card.
pub struct Rig {
    pub card: Card,
    pub sam: SoftwareSam,
    pub verifier: SoftwareProofVerifier,
    pub host: IssuerLoadHost,
    pub validator: Validator<MemoryStorage>,
}

impl Rig {
    pub fn new() -> Self {
        Self {
            card: danger_test_card_3des().unwrap(),
            sam: SoftwareSam::new(TERMINAL, 1, master(TEST_MASTER_DPK), Sm4Rules::BRIEF),
            verifier: SoftwareProofVerifier::new(master(TEST_MASTER_DPK), Sm4Rules::BRIEF),
            host: IssuerLoadHost::new(master(TEST_MASTER_DLK), Sm4Rules::BRIEF),
            validator: Validator::open(MemoryStorage::new()).unwrap(),
        }
    }

    /// A purchase tap with `fault`; afterwards the card is powered again and the switch off.
    pub fn purchase(&mut self, params: PurchaseParams, fault: Fault) -> Tap {
        let tap = self
            .validator
            .purchase(
                params,
                &mut self.sam,
                &mut self.verifier,
                link(&mut self.card, fault),
            )
            .unwrap();
        self.settle_card();
        tap
    }

    pub fn load(&mut self, amount: u32, fault: Fault) -> Tap {
        let tap = self
            .validator
            .load(
                load_params(amount),
                &mut self.host,
                &mut self.verifier,
                link(&mut self.card, fault),
            )
            .unwrap();
        self.settle_card();
        tap
    }

    pub fn settle_card(&mut self) {
        self.card.tear().disarm();
        if !self.card.is_powered() {
            self.card.power_on();
        }
    }

    pub fn balance(&mut self) -> u32 {
        let mut t = link(&mut self.card, Fault::None);
        t(&ykt_terminal::commands::select(&EP_AID)).unwrap();
        let r = t(&ykt_terminal::commands::get_balance()).unwrap();
        assert_eq!(r.sw, StatusWord::SUCCESS);
        u32::from_be_bytes(r.data.try_into().unwrap())
    }

    /// The card's (online, offline) counters, read from INITIALIZE FOR LOAD and FOR PURCHASE
    /// (neither writes anything; the sessions they open are dropped by the next SELECT).
    pub fn counters(&mut self) -> (u16, u16) {
        use ykt_terminal::commands as c;
        let mut t = link(&mut self.card, Fault::None);
        let mut counter = |command: CommandApdu| {
            t(&c::select(&EP_AID)).unwrap();
            let r = t(&command).unwrap();
            assert_eq!(r.sw, StatusWord::SUCCESS);
            u16::from_be_bytes([r.data[4], r.data[5]])
        };
        let online = counter(c::initialize_for_load(1, 1, &TERMINAL));
        let offline = counter(c::initialize_for_purchase(false, 1, 0, &TERMINAL));
        (online, offline)
    }

    /// Completed purchases and loads in the journal: (sum of loads) − (sum of purchases).
    pub fn journal_net(&self) -> i64 {
        self.validator
            .journal()
            .entries()
            .iter()
            .map(|e| match &e.body {
                EntryBody::Purchase { record, .. } => -i64::from(record.amount),
                EntryBody::Load { record, .. } => i64::from(record.amount),
                _ => 0,
            })
            .sum()
    }

    /// Every completed record's TAC verifies under the TAC master key.
    pub fn assert_every_tac_verifies(&self) {
        for e in self.validator.journal().entries() {
            match &e.body {
                EntryBody::Purchase { record, .. } => assert!(purchase_tac_ok(record), "{e:?}"),
                EntryBody::Load { record, .. } => assert!(load_tac_ok(record), "{e:?}"),
                _ => {}
            }
        }
    }
}

pub fn purchase_params(amount: u32, composite: bool) -> PurchaseParams {
    PurchaseParams {
        aid: EP_AID.to_vec(),
        key_index: 1,
        amount,
        datetime: TIME,
        composite: composite.then(|| {
            let mut r = vec![0u8; 128];
            r[..5].copy_from_slice(&[0x27, 0x02, 0x7D, 0x01, 0x01]);
            vec![CappRecord {
                p1: 0x02,
                p2: 0xD0,
                data: r,
            }]
        }),
    }
}

pub fn load_params(amount: u32) -> LoadParams {
    LoadParams {
        aid: EP_AID.to_vec(),
        key_index: 1,
        amount,
        terminal_id: TERMINAL,
        datetime: TIME,
    }
}

pub fn purchase_tac_ok(r: &PurchaseRecord) -> bool {
    let input = purchase_tac_input(
        r.amount,
        r.transaction_type,
        &r.terminal_id,
        r.ttsn,
        &r.datetime,
    );
    verify_tac(
        &PurseAlgorithm::Tdes,
        &PurseKey::from_bytes(TEST_MASTER_DTK),
        &r.card.diversifier(),
        &input,
        &r.tac,
    )
}

pub fn load_tac_ok(r: &LoadRecord) -> bool {
    let input = load_tac_input(
        r.new_balance,
        r.online_counter,
        r.amount,
        0x02,
        &r.terminal_id,
        &r.datetime,
    );
    verify_tac(
        &PurseAlgorithm::Tdes,
        &PurseKey::from_bytes(TEST_MASTER_DTK),
        &r.card.diversifier(),
        &input,
        &r.tac,
    )
}

/// A rig whose card holds 10,000 fen (loaded through the validator).
fn loaded() -> Rig {
    let mut rig = Rig::new();
    let tap = rig.load(10_000, Fault::None);
    assert!(
        matches!(tap.outcome, TapOutcome::Completed { .. }),
        "{tap:?}"
    );
    rig
}

/// Taps again without faults until the card's grey entry is gone; returns the last tap.
fn retap_purchase(rig: &mut Rig, amount: u32, composite: bool) -> Tap {
    let tap = rig.purchase(purchase_params(amount, composite), Fault::None);
    assert!(rig.validator.open_grey().is_empty(), "{tap:?}");
    tap
}

#[test]
fn a_purchase_journals_grey_then_completes_and_reproduces_the_brief_example() {
    let mut rig = loaded();
    let tap = rig.purchase(purchase_params(200, false), Fault::None);
    let TapOutcome::Completed {
        seq,
        record: Record::Purchase(p),
    } = &tap.outcome
    else {
        panic!("{tap:?}")
    };
    // e-purse.md §8.2.
    assert_eq!(
        (p.tac, p.mac2),
        ([0x78, 0x7B, 0xD5, 0x17], [0x2F, 0x02, 0x50, 0xC6])
    );
    let entries = rig.validator.journal().entries();
    // 1 pending load, 2 load, 3 pending purchase, 4 purchase resolving 3.
    assert_eq!(*seq, 4);
    assert!(matches!(entries[2].body, EntryBody::PendingPurchase(_)));
    assert!(matches!(
        entries[3].body,
        EntryBody::Purchase {
            origin: Origin::Direct,
            resolves: Some(3),
            ..
        }
    ));
    assert!(rig.validator.open_grey().is_empty());
    assert_eq!(rig.balance(), 9_800);
}

/// Commands of a plain purchase tap: SELECT, INITIALIZE, DEBIT (the composite one adds the cache
/// update before DEBIT).
fn debit_position(composite: bool) -> usize {
    if composite { 4 } else { 3 }
}

#[test]
fn the_card_removed_at_every_step_of_a_purchase_never_charges_twice() {
    for composite in [false, true] {
        let debit = debit_position(composite);
        for at in 1..=debit {
            for after in [false, true] {
                let mut rig = loaded();
                let fault = if after {
                    Fault::LostAfter(at)
                } else {
                    Fault::RemovedBefore(at)
                };
                let tap = rig.purchase(purchase_params(200, composite), fault);
                let step = match tap.outcome {
                    TapOutcome::CardRemoved { step } => {
                        assert!(at < debit, "{tap:?}");
                        step
                    }
                    TapOutcome::Grey {
                        step,
                        cause: GreyCause::NoAnswer,
                        ..
                    } => {
                        assert_eq!(at, debit, "{tap:?}");
                        step
                    }
                    other => panic!("{other:?}"),
                };
                let expected_step = [
                    "SELECT",
                    "INITIALIZE FOR PURCHASE",
                    if composite {
                        "UPDATE CAPP DATA CACHE"
                    } else {
                        "DEBIT FOR PURCHASE"
                    },
                    "DEBIT FOR PURCHASE",
                ][at - 1];
                assert_eq!(step, expected_step);
                let charged = after && at == debit;
                assert_eq!(rig.balance(), if charged { 9_800 } else { 10_000 });
                // The re-tap completes the ride exactly once.
                let tap = retap_purchase(&mut rig, 200, composite);
                match (&tap.outcome, charged) {
                    (TapOutcome::Recovered { .. }, true) => {}
                    (TapOutcome::Completed { .. }, false) => {}
                    other => panic!("{other:?}"),
                }
                if at == debit && !after {
                    assert_eq!(
                        tap.recovered.as_ref().map(|r| &r.1),
                        Some(&RecoveryOutcome::NotCharged)
                    );
                }
                assert_eq!(rig.balance(), 9_800);
                assert_eq!(rig.journal_net(), 9_800);
                rig.assert_every_tac_verifies();
            }
        }
    }
}

#[test]
fn garbage_and_wrong_lengths_at_every_step_of_a_purchase_are_precise() {
    let garbles = [
        Garble::Short,
        Garble::Long,
        Garble::Random(7),
        Garble::Random(8),
        Garble::Status,
    ];
    for composite in [false, true] {
        let debit = debit_position(composite);
        for at in 1..=debit {
            for g in garbles {
                let mut rig = loaded();
                let tap = rig.purchase(purchase_params(200, composite), Fault::Garbled(at, g));
                match &tap.outcome {
                    TapOutcome::Grey {
                        step: "DEBIT FOR PURCHASE",
                        cause: GreyCause::Flow(_),
                        ..
                    } => assert_eq!(at, debit),
                    TapOutcome::Refused { sw, .. } => {
                        assert!(at < debit);
                        assert_eq!(*sw, StatusWord(0x6F00));
                    }
                    TapOutcome::Failed { error, .. } => {
                        assert!(at < debit, "{tap:?}");
                        assert!(
                            matches!(
                                error,
                                FlowError::MalformedResponse { .. } | FlowError::NotAPurse
                            ),
                            "{error:?}"
                        );
                    }
                    // A cache update answer has no data, and a SELECT answer may carry more
                    // than the FCI: extra data there passes unseen.
                    TapOutcome::Completed { .. }
                        if (composite && at == 3) || (at == 1 && matches!(g, Garble::Long)) => {}
                    other => panic!("{at} {g:?}: {other:?}"),
                }
                let ride_paid = matches!(tap.outcome, TapOutcome::Completed { .. });
                if !ride_paid {
                    let tap = retap_purchase(&mut rig, 200, composite);
                    assert!(
                        matches!(
                            tap.outcome,
                            TapOutcome::Completed { .. } | TapOutcome::Recovered { .. }
                        ),
                        "{tap:?}"
                    );
                }
                assert_eq!(rig.balance(), 9_800, "{at} {g:?}");
                assert_eq!(rig.journal_net(), 9_800, "{at} {g:?}");
                rig.assert_every_tac_verifies();
            }
        }
    }
}

#[test]
fn a_wrong_mac2_from_the_card_stays_grey_then_the_proof_completes_it() {
    let mut rig = loaded();
    let tap = rig.purchase(
        purchase_params(200, false),
        Fault::Garbled(3, Garble::FlipLast),
    );
    assert!(
        matches!(
            tap.outcome,
            TapOutcome::Grey {
                seq: 3,
                step: "DEBIT FOR PURCHASE",
                cause: GreyCause::Flow(FlowError::Sam(SamError::Mac2Invalid)),
            }
        ),
        "{tap:?}"
    );
    let tap = rig.purchase(purchase_params(200, false), Fault::None);
    let TapOutcome::Recovered {
        record: Record::Purchase(p),
        ..
    } = &tap.outcome
    else {
        panic!("{tap:?}")
    };
    assert_eq!(p.mac2, [0x2F, 0x02, 0x50, 0xC6]);
    assert!(purchase_tac_ok(p));
    assert_eq!(rig.balance(), 9_800);
}

#[test]
fn a_card_whose_proof_mac2_is_wrong_too_is_left_grey_and_not_charged_again() {
    let mut rig = loaded();
    rig.purchase(
        purchase_params(200, false),
        Fault::Garbled(3, Garble::FlipLast),
    );
    // SELECT, GET BALANCE, GET TRANSACTION PROVE: byte 3 of the proof is MAC2's last.
    let tap = rig
        .validator
        .purchase(
            purchase_params(200, false),
            &mut rig.sam,
            &mut rig.verifier,
            {
                let mut t = link(&mut rig.card, Fault::None);
                move |c: &CommandApdu| {
                    let mut r = t(c)?;
                    if c.ins == 0x5A {
                        r.data[3] ^= 1;
                    }
                    Ok::<_, Lost>(r)
                }
            },
        )
        .unwrap();
    let TapOutcome::LeftGrey {
        seq: 3,
        reason: GreyReason::Mac2Invalid { .. },
    } = tap.outcome
    else {
        panic!("{tap:?}")
    };
    assert_eq!(rig.balance(), 9_800);
    assert!(rig.validator.open_grey().is_empty());
    let records = export::settlement_records(rig.validator.journal().entries());
    let grey: Vec<_> = records
        .iter()
        .filter(|r| r.status == RecordStatus::Grey)
        .collect();
    assert_eq!(grey.len(), 1);
    assert!(grey[0].tac.is_some());
}

#[test]
fn sam_errors_stop_before_debit_and_journal_nothing() {
    let mut rig = loaded();
    let before = rig.validator.journal().entries().len();
    rig.sam = SoftwareSam::new(TERMINAL, 1, vec![], Sm4Rules::BRIEF);
    let tap = rig.purchase(purchase_params(200, false), Fault::None);
    assert_eq!(
        tap.outcome,
        TapOutcome::Failed {
            step: "INITIALIZE FOR PURCHASE",
            error: FlowError::Sam(SamError::UnknownKey {
                index: 1,
                version: 1
            }),
        }
    );
    rig.sam = SoftwareSam::new(TERMINAL, u32::MAX, master(TEST_MASTER_DPK), Sm4Rules::BRIEF);
    let tap = rig.purchase(purchase_params(200, false), Fault::None);
    assert_eq!(
        tap.outcome,
        TapOutcome::Failed {
            step: "INITIALIZE FOR PURCHASE",
            error: FlowError::Sam(SamError::SerialExhausted),
        }
    );
    assert_eq!(rig.validator.journal().entries().len(), before);
    // A SAM with the wrong master key: the card refuses DEBIT (9302); that is after DEBIT went
    // out, so it stays grey until the card shows it was not charged.
    rig.sam = SoftwareSam::new(TERMINAL, 1, master(TEST_MASTER_DLK), Sm4Rules::BRIEF);
    let tap = rig.purchase(purchase_params(200, false), Fault::None);
    assert!(
        matches!(
            tap.outcome,
            TapOutcome::Grey {
                step: "DEBIT FOR PURCHASE",
                cause: GreyCause::Flow(FlowError::CardRefused {
                    sw: StatusWord::MAC_INVALID,
                    ..
                }),
                ..
            }
        ),
        "{tap:?}"
    );
    rig.sam = SoftwareSam::new(TERMINAL, 9, master(TEST_MASTER_DPK), Sm4Rules::BRIEF);
    let tap = rig.purchase(purchase_params(200, false), Fault::None);
    assert!(
        matches!(tap.outcome, TapOutcome::Completed { .. }),
        "{tap:?}"
    );
    assert_eq!(
        tap.recovered.map(|r| r.1),
        Some(RecoveryOutcome::NotCharged)
    );
    assert_eq!(rig.balance(), 9_800);
}

#[test]
fn insufficient_balance_is_a_refusal_and_nothing_is_grey() {
    let mut rig = Rig::new();
    let tap = rig.purchase(purchase_params(1, false), Fault::None);
    assert_eq!(
        tap.outcome,
        TapOutcome::Refused {
            step: "INITIALIZE FOR PURCHASE",
            sw: StatusWord::INSUFFICIENT_BALANCE
        }
    );
    assert!(rig.validator.journal().entries().is_empty());
}

#[test]
fn the_card_removed_or_garbled_at_every_step_of_a_load_never_credits_twice() {
    let faults = |at| {
        [
            Fault::RemovedBefore(at),
            Fault::LostAfter(at),
            Fault::Garbled(at, Garble::Short),
            Fault::Garbled(at, Garble::Random(at as u64)),
            Fault::Garbled(at, Garble::Status),
        ]
    };
    for at in 1..=3 {
        for fault in faults(at) {
            let mut rig = Rig::new();
            let tap = rig.load(10_000, fault);
            match &tap.outcome {
                TapOutcome::Grey {
                    step: "CREDIT FOR LOAD",
                    ..
                } => assert_eq!(at, 3),
                TapOutcome::CardRemoved { .. }
                | TapOutcome::Failed { .. }
                | TapOutcome::Refused { .. } => assert!(at < 3, "{tap:?}"),
                other => panic!("{other:?}"),
            }
            let credited = rig.balance() == 10_000;
            let tap = rig.load(10_000, Fault::None);
            match (&tap.outcome, credited) {
                (
                    TapOutcome::Recovered {
                        record: Record::Load(l),
                        ..
                    },
                    true,
                ) => assert!(load_tac_ok(l)),
                (TapOutcome::Completed { .. }, false) => {}
                other => panic!("{fault:?}: {other:?}"),
            }
            assert_eq!(rig.balance(), 10_000, "{fault:?}");
            assert_eq!(rig.journal_net(), 10_000, "{fault:?}");
            assert!(rig.validator.open_grey().is_empty());
            rig.assert_every_tac_verifies();
        }
    }
}

#[test]
fn a_grey_load_is_recovered_at_a_purchase_tap_which_then_charges() {
    let mut rig = Rig::new();
    rig.load(10_000, Fault::LostAfter(3));
    let tap = rig.purchase(purchase_params(200, false), Fault::None);
    assert!(matches!(tap.recovered, Some((1, RecoveryOutcome::Load(_)))));
    assert!(
        matches!(tap.outcome, TapOutcome::Completed { .. }),
        "{tap:?}"
    );
    assert_eq!(rig.balance(), 9_800);
    assert_eq!(rig.journal_net(), 9_800);
}

#[test]
fn a_grey_entry_whose_recovery_gets_no_answer_blocks_new_transactions_on_that_card() {
    let mut rig = loaded();
    rig.purchase(purchase_params(200, false), Fault::LostAfter(3));
    // SELECT answers, GET BALANCE does not.
    let tap = rig.purchase(purchase_params(200, false), Fault::RemovedBefore(2));
    assert_eq!(
        tap.outcome,
        TapOutcome::Grey {
            seq: 3,
            step: "GET BALANCE",
            cause: GreyCause::NoAnswer
        }
    );
    let tap = rig.purchase(
        purchase_params(200, false),
        Fault::Garbled(3, Garble::Short),
    );
    assert!(matches!(
        tap.outcome,
        TapOutcome::Grey {
            seq: 3,
            step: "GET TRANSACTION PROVE",
            cause: GreyCause::Flow(FlowError::MalformedResponse { len: 7, .. })
        }
    ));
    assert_eq!(rig.balance(), 9_800);
    let tap = rig.purchase(purchase_params(200, false), Fault::None);
    assert!(matches!(tap.outcome, TapOutcome::Recovered { .. }));
    assert_eq!(rig.balance(), 9_800);
}

#[test]
fn a_terminal_restart_between_the_lost_answer_and_the_retap_still_recovers() {
    let mut rig = loaded();
    rig.purchase(purchase_params(200, false), Fault::LostAfter(3));
    let storage = std::mem::replace(
        &mut rig.validator,
        Validator::open(MemoryStorage::new()).unwrap(),
    )
    .into_storage();
    rig.validator = Validator::open(storage).unwrap();
    rig.sam = SoftwareSam::new(TERMINAL, 2, master(TEST_MASTER_DPK), Sm4Rules::BRIEF);
    let tap = rig.purchase(purchase_params(200, false), Fault::None);
    assert!(
        matches!(tap.outcome, TapOutcome::Recovered { .. }),
        "{tap:?}"
    );
    rig.assert_every_tac_verifies();
}

#[test]
fn the_export_lists_completed_recovered_and_grey_records() {
    let mut rig = loaded();
    rig.purchase(purchase_params(200, false), Fault::None);
    rig.purchase(purchase_params(100, true), Fault::LostAfter(4));
    rig.purchase(purchase_params(100, true), Fault::None); // recovered
    rig.purchase(purchase_params(50, false), Fault::RemovedBefore(3)); // open grey
    let records = export::settlement_records(rig.validator.journal().entries());
    let statuses: Vec<(RecordStatus, &str)> =
        records.iter().map(|r| (r.status, r.kind())).collect();
    assert_eq!(
        statuses,
        [
            (RecordStatus::Completed, "load"),
            (RecordStatus::Completed, "purchase"),
            (RecordStatus::Recovered, "composite_purchase"),
            (RecordStatus::Grey, "purchase"),
        ]
    );

    let json = export::json_lines(&records);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[1]["card_number"], "31041000000012345678");
    assert_eq!(lines[1]["tac"], "787BD517");
    assert_eq!(lines[1]["mac2"], "2F0250C6");
    assert_eq!(lines[1]["psam_ttsn"], 1);
    assert_eq!(lines[1]["balance_after"], 9_800);
    assert_eq!(lines[1]["datetime"], "20240115103500");
    assert_eq!(lines[0]["psam_ttsn"], serde_json::Value::Null);
    assert_eq!(lines[0]["transaction_type"], "02");
    assert_eq!(lines[2]["status"], "recovered");
    assert_eq!(lines[3]["grey"], true);
    assert_eq!(lines[3]["tac"], serde_json::Value::Null);

    let csv = export::csv(&records);
    let mut rows = csv.lines();
    assert_eq!(rows.next(), Some(CSV_HEADER));
    let columns = CSV_HEADER.split(',').count();
    for (row, json) in rows.zip(&lines) {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields.len(), columns, "{row}");
        for (name, field) in CSV_HEADER.split(',').zip(&fields) {
            let expected = match &json[name] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(b) => u8::from(*b).to_string(),
                other => other.to_string(),
            };
            assert_eq!(*field, expected, "{name} in {row}");
        }
    }
    // A grey entry confirmed not charged leaves no record.
    let tap = rig.purchase(purchase_params(50, false), Fault::None);
    assert!(matches!(tap.outcome, TapOutcome::Completed { .. }));
    let records = export::settlement_records(rig.validator.journal().entries());
    assert!(records.iter().all(|r| r.status != RecordStatus::Grey));
    assert!(rig.validator.journal().entries().iter().any(|e| matches!(
        e.body,
        EntryBody::Resolution {
            resolution: Resolution::NotCharged,
            ..
        }
    )));
}

#[test]
fn the_flows_tell_their_pending_debit_and_credit_exactly_while_that_command_is_out() {
    use ykt_terminal::load::LoadFlow;
    use ykt_terminal::purchase::PurchaseFlow;
    use ykt_terminal::{Flow, Step};

    let mut rig = Rig::new();
    let (mut flow, mut command) = LoadFlow::start(load_params(10_000), &mut rig.host);
    let mut t = link(&mut rig.card, Fault::None);
    let record = loop {
        let pending = flow.pending_credit().cloned();
        assert_eq!(pending.is_some(), command.ins == 0x52, "{command:?}");
        if let Some(p) = &pending {
            assert_eq!((p.record.old_balance, p.record.new_balance), (0, 10_000));
            assert_eq!(p.record.tac, [0; 4]);
        }
        match flow.on_response(t(&command).unwrap()).unwrap() {
            Step::Send(next) => command = next,
            Step::Done(record) => break record,
        }
    };
    assert!(flow.pending_credit().is_none());
    assert!(load_tac_ok(&record));

    for composite in [false, true] {
        let (mut flow, mut command) =
            PurchaseFlow::start(purchase_params(200, composite), &mut rig.sam);
        let record = loop {
            let pending = flow.pending_debit().cloned();
            assert_eq!(pending.is_some(), command.ins == 0x54, "{command:?}");
            if let Some(p) = &pending {
                assert_eq!(
                    (p.record.amount, p.record.mac2, p.key_index),
                    (200, [0; 4], 1)
                );
            }
            match flow.on_response(t(&command).unwrap()).unwrap() {
                Step::Send(next) => command = next,
                Step::Done(record) => break record,
            }
        };
        assert!(flow.pending_debit().is_none());
        assert!(purchase_tac_ok(&record));
    }
}

#[test]
fn step_names_match_the_flows_errors() {
    use ykt_terminal::commands as c;
    use ykt_terminal::validator::step_name;
    let names: Vec<&str> = [
        c::select(&EP_AID),
        c::initialize_for_load(1, 1, &TERMINAL),
        c::credit_for_load(&TIME, &[0; 4]),
        c::initialize_for_purchase(false, 1, 1, &TERMINAL),
        c::initialize_for_purchase(true, 1, 1, &TERMINAL),
        c::update_capp_data_cache(2, 0xD0, &[0; 128]),
        c::debit_for_purchase(1, &TIME, &[0; 4]),
        c::get_balance(),
        c::get_transaction_prove(6, 0),
        c::verify(&[0x12, 0x34]),
    ]
    .iter()
    .map(step_name)
    .collect();
    assert_eq!(
        names,
        [
            "SELECT",
            "INITIALIZE FOR LOAD",
            "CREDIT FOR LOAD",
            "INITIALIZE FOR PURCHASE",
            "INITIALIZE FOR PURCHASE",
            "UPDATE CAPP DATA CACHE",
            "DEBIT FOR PURCHASE",
            "GET BALANCE",
            "GET TRANSACTION PROVE",
            "COMMAND",
        ]
    );
}

/// Reopens the validator's journal after its storage lost power, as a restarted terminal does.
fn restart(rig: &mut Rig) {
    let mut storage = std::mem::replace(
        &mut rig.validator,
        Validator::open(MemoryStorage::new()).unwrap(),
    )
    .into_storage();
    storage.power_on();
    rig.validator = Validator::open(storage).unwrap();
}

#[test]
fn a_power_cut_at_every_card_write_of_a_debit_is_recovered_once() {
    for composite in [false, true] {
        let mut fired = 0;
        for w in 1.. {
            let mut rig = loaded();
            let tap = rig.purchase(purchase_params(200, composite), Fault::Tear(w));
            if matches!(tap.outcome, TapOutcome::Completed { .. }) {
                break; // the debit needs fewer than `w` writes
            }
            assert!(
                matches!(
                    tap.outcome,
                    TapOutcome::Grey {
                        step: "DEBIT FOR PURCHASE",
                        cause: GreyCause::NoAnswer,
                        ..
                    }
                ),
                "{tap:?}"
            );
            fired += 1;
            let charged = rig.balance() == 9_800;
            let tap = retap_purchase(&mut rig, 200, composite);
            match (&tap.outcome, charged) {
                (TapOutcome::Recovered { .. }, true) | (TapOutcome::Completed { .. }, false) => {}
                other => panic!("write {w}: {other:?}"),
            }
            assert_eq!((rig.balance(), rig.journal_net()), (9_800, 9_800));
            rig.assert_every_tac_verifies();
        }
        assert!(fired >= 4, "{fired}");
    }
}

#[test]
fn a_power_cut_at_every_journal_write_of_a_tap_never_charges_twice() {
    // Writes of a plain tap: the grey entry, then the record. Of a re-tap after a lost answer:
    // the recovered record. Each is cut, keeping several lengths of the torn write.
    for (lost, writes) in [(false, 2), (true, 1)] {
        for n in 1..=writes {
            for keep in [0, 1, 9, 40, usize::MAX] {
                let mut rig = loaded();
                if lost {
                    rig.purchase(purchase_params(200, false), Fault::LostAfter(3));
                }
                rig.validator.danger_storage_mut().arm_at_keeping(n, keep);
                let result = rig.validator.purchase(
                    purchase_params(200, false),
                    &mut rig.sam,
                    &mut rig.verifier,
                    link(&mut rig.card, Fault::None),
                );
                assert!(
                    matches!(result, Err(ykt_terminal::journal::JournalError::Storage(_))),
                    "{result:?}"
                );
                restart(&mut rig);
                let tap = retap_purchase(&mut rig, 200, false);
                assert!(
                    matches!(
                        tap.outcome,
                        TapOutcome::Completed { .. } | TapOutcome::Recovered { .. }
                    ),
                    "{tap:?}"
                );
                assert_eq!((rig.balance(), rig.journal_net()), (9_800, 9_800));
                rig.assert_every_tac_verifies();
            }
        }
    }
}

#[test]
fn an_sm4_purchase_whose_answer_was_lost_is_recovered_with_a_valid_tac() {
    let mut rig = Rig {
        card: ykt_purse::testing::danger_test_card_sm4().unwrap(),
        ..Rig::new()
    };
    assert!(matches!(
        rig.load(10_000, Fault::None).outcome,
        TapOutcome::Completed { .. }
    ));
    let tap = rig.purchase(purchase_params(200, false), Fault::LostAfter(3));
    assert!(matches!(tap.outcome, TapOutcome::Grey { .. }), "{tap:?}");
    let tap = rig.purchase(purchase_params(200, false), Fault::None);
    let TapOutcome::Recovered {
        record: Record::Purchase(p),
        ..
    } = &tap.outcome
    else {
        panic!("{tap:?}")
    };
    // e-purse.md §8.3: MAC2 9DF2C9ED, TAC 3E66EC34 (same inputs: second card random, TTSN 1).
    assert_eq!((p.algorithm_id, p.mac2), (0x04, [0x9D, 0xF2, 0xC9, 0xED]));
    assert_eq!(p.tac, [0x3E, 0x66, 0xEC, 0x34]);
    let input = purchase_tac_input(p.amount, 0x06, &p.terminal_id, p.ttsn, &p.datetime);
    assert!(verify_tac(
        &PurseAlgorithm::Sm4(Sm4Rules::BRIEF),
        &PurseKey::from_bytes(TEST_MASTER_DTK),
        &p.card.diversifier(),
        &input,
        &p.tac,
    ));
    assert_eq!(rig.balance(), 9_800);
}

type PsamLink<'a> = Box<dyn FnMut(&CommandApdu) -> Result<ResponseApdu, Lost> + 'a>;

#[test]
fn a_terminal_with_only_a_psam_recovers_through_the_psam_session() {
    use ykt_terminal::recovery::NoLocalVerifier;
    use ykt_terminal::sam::CardSam;

    let mut rig = loaded();
    let mut psam = ykt_purse::testing::danger_test_psam_3des().unwrap();
    let mut sam = CardSam::open(Box::new(link(&mut psam, Fault::None)) as PsamLink<'_>).unwrap();
    let tap = rig
        .validator
        .purchase(
            purchase_params(200, false),
            &mut sam,
            &mut NoLocalVerifier,
            link(&mut rig.card, Fault::LostAfter(3)),
        )
        .unwrap();
    assert!(matches!(tap.outcome, TapOutcome::Grey { .. }), "{tap:?}");
    // The re-tap: the PSAM still holds the lost purchase's session, and `80 72` checks the proof.
    let tap = rig
        .validator
        .purchase(
            purchase_params(200, false),
            &mut sam,
            &mut NoLocalVerifier,
            link(&mut rig.card, Fault::None),
        )
        .unwrap();
    let TapOutcome::Recovered {
        record: Record::Purchase(p),
        ..
    } = &tap.outcome
    else {
        panic!("{tap:?}")
    };
    assert!(purchase_tac_ok(p));
    assert_eq!(rig.balance(), 9_800);
    assert_eq!(rig.journal_net(), 9_800);
}

#[test]
fn a_proof_nothing_here_can_check_is_left_grey_with_its_tac_for_settlement() {
    use ykt_terminal::recovery::NoLocalVerifier;

    let mut rig = loaded();
    rig.purchase(purchase_params(200, false), Fault::LostAfter(3));
    // A restart loses the SAM session; this terminal holds no master keys.
    restart(&mut rig);
    let tap = rig
        .validator
        .purchase(
            purchase_params(200, false),
            &mut rig.sam,
            &mut NoLocalVerifier,
            link(&mut rig.card, Fault::None),
        )
        .unwrap();
    let TapOutcome::LeftGrey {
        seq: 3,
        reason: GreyReason::Unverified { mac2, tac },
    } = tap.outcome
    else {
        panic!("{tap:?}")
    };
    assert_eq!(
        (mac2, tac),
        ([0x2F, 0x02, 0x50, 0xC6], [0x78, 0x7B, 0xD5, 0x17])
    );
    assert_eq!(rig.balance(), 9_800, "not charged again");
    let records = export::settlement_records(rig.validator.journal().entries());
    let grey = records.last().unwrap();
    assert_eq!(
        (grey.status, grey.tac, grey.mac2),
        (RecordStatus::Grey, Some(tac), Some(mac2))
    );
    // Settlement recomputes the TAC of the grey record and accepts it.
    let entry = rig.validator.journal().entry(3).unwrap();
    let EntryBody::PendingPurchase(pending) = &entry.body else {
        panic!("{entry:?}")
    };
    let record = PurchaseRecord {
        tac,
        mac2,
        ..pending.debit.record.clone()
    };
    assert!(purchase_tac_ok(&record));
    // The next tap is a new ride.
    let tap = rig.purchase(purchase_params(200, false), Fault::None);
    assert!(
        matches!(tap.outcome, TapOutcome::Completed { .. }),
        "{tap:?}"
    );
}
