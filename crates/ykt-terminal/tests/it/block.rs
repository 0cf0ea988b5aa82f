//! A blacklisted card is blocked through `BlockFlow` with the SAM's secure-messaging MAC, and then
//! refused at SELECT (e-purse.md §4.9–§4.11); the whole validator sequence tap → screen → block or
//! decide → purchase.

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_crypto::purse::{self, PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_purse::EP_AID;
use ykt_purse::testing::{TEST_ASN, TEST_MASTER_DAMK, TEST_MASTER_DPK};
use ykt_terminal::block::{self, BlockFlow, BlockMode, Blocked, DEFAULT_BLOCK_MODE};
use ykt_terminal::commands;
use ykt_terminal::lists::{CardBlacklist, IssuerWhitelist};
use ykt_terminal::purchase::PurchaseFlow;
use ykt_terminal::sam::{MasterKey, SoftwareSam};
use ykt_terminal::tap::{self, Screening};
use ykt_terminal::transit::{
    BcdDateTime, Decision, FareTable, GateRole, Site, StationRef, TransitConfig,
};
use ykt_terminal::{DriveError, FlowError, drive};

use crate::tap::{Lost, TERMINAL, TEST_ISSUER_PREFIX, card_with, master, tap, via};

fn maintenance_sam(damk: [u8; 16]) -> SoftwareSam {
    let key = MasterKey {
        index: 1,
        version: 1,
        key: PurseKey::from_bytes(damk),
    };
    SoftwareSam::new(TERMINAL, 1, master(TEST_MASTER_DPK), Sm4Rules::BRIEF)
        .with_maintenance_key(key, PurseAlgorithm::Tdes)
}

fn block(
    card: &mut ykt_card::Card,
    mode: BlockMode,
    damk: [u8; 16],
) -> Result<Blocked, DriveError<Lost>> {
    let snapshot = tap(card).unwrap();
    let mut sam = maintenance_sam(damk);
    let (flow, first) = BlockFlow::start(snapshot.card, mode, &mut sam);
    assert_eq!(first.to_bytes(), [0x00, 0x84, 0x00, 0x00, 0x04]);
    drive(flow, first, via(card))
}

fn select_sw(card: &mut ykt_card::Card) -> StatusWord {
    via(card)(&commands::select(&EP_AID)).unwrap().sw
}

#[test]
fn a_blacklisted_card_is_blocked_temporarily_and_select_answers_6a81() {
    let mut card = card_with(1_000);
    let snapshot = tap(&mut card).unwrap();
    let white = IssuerWhitelist::from_unsorted(1, vec![TEST_ISSUER_PREFIX]);
    let black = CardBlacklist::from_unsorted(1, vec![TEST_ASN.0]);
    assert_eq!(tap::screen(&snapshot, &white, &black), Screening::Block);
    assert_eq!(DEFAULT_BLOCK_MODE, BlockMode::Temporary);
    let blocked = block(&mut card, DEFAULT_BLOCK_MODE, TEST_MASTER_DAMK).unwrap();
    assert_eq!(blocked.mode, BlockMode::Temporary);
    assert_eq!(blocked.card.asn, TEST_ASN.0);
    assert_eq!(select_sw(&mut card), StatusWord::FUNCTION_NOT_SUPPORTED);
    // The next tap stops at SELECT.
    let err = tap(&mut card).unwrap_err();
    assert!(matches!(
        err,
        DriveError::Flow(FlowError::CardRefused {
            step: "SELECT",
            sw: StatusWord::FUNCTION_NOT_SUPPORTED
        })
    ));
}

#[test]
fn a_permanent_block_makes_select_answer_9303() {
    let mut card = card_with(0);
    block(&mut card, BlockMode::Permanent, TEST_MASTER_DAMK).unwrap();
    assert_eq!(
        select_sw(&mut card),
        StatusWord::APPLICATION_PERMANENTLY_LOCKED
    );
}

#[test]
fn the_block_command_carries_the_retail_mac_over_its_header_with_the_challenge_as_iv() {
    // Recompute the MAC outside the SAM: DAMK diversified by the ASN, e-purse.md §3.2, §4.10, §5.3.
    let mut card = card_with(0);
    let snapshot = tap(&mut card).unwrap();
    let mut sam = maintenance_sam(TEST_MASTER_DAMK);
    let (mut flow, first) = BlockFlow::start(snapshot.card.clone(), BlockMode::Temporary, &mut sam);
    let challenge = via(&mut card)(&first).unwrap();
    use ykt_terminal::{Flow, Step};
    let Step::Send(command) = flow.on_response(challenge.clone()).unwrap() else {
        panic!()
    };
    let damk = purse::diversify(
        &PurseAlgorithm::Tdes,
        &PurseKey::from_bytes(TEST_MASTER_DAMK),
        &snapshot.card.diversifier(),
    );
    let mac = purse::secure_messaging_mac(
        &PurseAlgorithm::Tdes,
        &damk,
        &challenge.data,
        &[0x84, 0x1E, 0x00, 0x00, 0x04],
    );
    let mut expected = vec![0x84, 0x1E, 0x00, 0x00, 0x04];
    expected.extend_from_slice(&mac);
    assert_eq!(command.to_bytes(), expected);
    assert_eq!(
        block::application_block_header(BlockMode::Permanent),
        [0x84, 0x1E, 0x00, 0x01, 0x04]
    );
}

#[test]
fn a_wrong_maintenance_key_is_refused_by_the_card_and_nothing_is_blocked() {
    let mut card = card_with(0);
    let err = block(&mut card, BlockMode::Temporary, TEST_MASTER_DPK).unwrap_err();
    assert!(
        matches!(
            err,
            DriveError::Flow(FlowError::CardRefused {
                step: "APPLICATION BLOCK",
                sw: ykt_purse::status::SECURE_MESSAGING_MAC_INVALID
            })
        ),
        "{err:?}"
    );
    assert_eq!(select_sw(&mut card), StatusWord::SUCCESS);
}

#[test]
fn a_sam_without_a_maintenance_key_refuses_and_a_short_challenge_is_malformed() {
    let mut card = card_with(0);
    let snapshot = tap(&mut card).unwrap();
    let mut sam = crate::tap::sam();
    let (flow, first) = BlockFlow::start(snapshot.card.clone(), BlockMode::Temporary, &mut sam);
    let err = drive(flow, first, via(&mut card)).unwrap_err();
    assert!(
        matches!(err, DriveError::Flow(FlowError::Sam(_))),
        "{err:?}"
    );

    let mut sam = maintenance_sam(TEST_MASTER_DAMK);
    let (flow, first) = BlockFlow::start(snapshot.card, BlockMode::Temporary, &mut sam);
    let err = drive(flow, first, |c: &CommandApdu| {
        let mut r = via(&mut card)(c)?;
        r.data.truncate(2);
        Ok::<_, Lost>(r)
    })
    .unwrap_err();
    assert!(matches!(
        err,
        DriveError::Flow(FlowError::MalformedResponse {
            step: "GET CHALLENGE",
            len: 2
        })
    ));
}

/// What a validator does with one tap: screen, then block or decide and pay.
fn validator_tap(
    card: &mut ykt_card::Card,
    white: &IssuerWhitelist,
    black: &CardBlacklist,
    site: &Site,
    now: BcdDateTime,
    config: &TransitConfig,
) -> String {
    let snapshot = tap(card).unwrap();
    match tap::screen(&snapshot, white, black) {
        Screening::Refuse(r) => format!("refused: {r}"),
        Screening::Block => {
            let mut sam = maintenance_sam(TEST_MASTER_DAMK);
            let (flow, first) = BlockFlow::start(snapshot.card, DEFAULT_BLOCK_MODE, &mut sam);
            drive(flow, first, via(card)).unwrap();
            "blocked".into()
        }
        Screening::Admit => match snapshot.decide(site, now, config) {
            Decision::Refuse(r) => format!("refused: {r}"),
            d => {
                let mut sam = crate::tap::sam();
                let params = d.charge().unwrap().purchase_params(1, now);
                let (flow, first) = PurchaseFlow::start(params, &mut sam);
                let p = drive(flow, first, via(card)).unwrap();
                format!("paid {}", p.amount)
            }
        },
    }
}

#[test]
fn the_validator_sequence_refuses_blocks_or_charges() {
    let mut fares = FareTable::new();
    fares.flat(901, 200).unwrap();
    let config = TransitConfig::proposed(fares);
    let site = Site {
        terminal_id: TERMINAL,
        city: [0x10, 0x00],
        institution: [0x51, 0, 0, 0, 0, 0, 0, 1],
        operator: [0, 1],
        station: StationRef::new(901, 17),
        vehicle: *b"BUS90117",
        direction: 0,
        industry: ykt_terminal::transit::industry::BUS,
        role: GateRole::Single,
    };
    let now = BcdDateTime::new([0x20, 0x26, 0x01, 0x15, 0x09, 0x30, 0x00]).unwrap();
    let white = IssuerWhitelist::from_unsorted(1, vec![TEST_ISSUER_PREFIX]);
    let other_white = IssuerWhitelist::from_unsorted(1, vec![[0x09, 0x09, 0x09, 0x09]]);
    let clean = CardBlacklist::empty(1);
    let black = CardBlacklist::from_unsorted(2, vec![TEST_ASN.0]);

    let mut card = card_with(1_000);
    let mut run = |w: &IssuerWhitelist, b: &CardBlacklist| {
        validator_tap(&mut card, w, b, &site, now, &config)
    };
    assert_eq!(
        run(&other_white, &clean),
        "refused: the card's issuer is not accepted here"
    );
    assert_eq!(run(&white, &clean), "paid 200");
    assert_eq!(run(&white, &black), "blocked");
    let err = tap(&mut card).unwrap_err();
    assert!(matches!(
        err,
        DriveError::Flow(FlowError::CardRefused {
            sw: StatusWord::FUNCTION_NOT_SUPPORTED,
            ..
        })
    ));
}

const VALIDATOR_BLOCK: &str = include_str!("../data/validator_block.apdu");

fn transcript_lines(prefix: &str) -> Vec<Vec<u8>> {
    VALIDATOR_BLOCK
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|l| hex::decode(l.replace(' ', "")).unwrap())
        .collect()
}

#[test]
fn the_tap_and_block_flows_send_exactly_the_validator_block_transcript() {
    // The transcript itself holds against a fresh card.
    let mut card = ykt_purse::testing::danger_test_card_3des().unwrap();
    assert_eq!(
        ykt_card::testing::run_transcript(&mut card, VALIDATOR_BLOCK).unwrap(),
        6
    );

    // And the flows produce it byte for byte, with the MAC of the independent host script.
    let mut card = ykt_purse::testing::danger_test_card_3des().unwrap();
    let mut trace: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut record = |c: &CommandApdu| {
        let r = via(&mut card)(c)?;
        trace.push((c.to_bytes(), r.to_bytes()));
        Ok::<_, Lost>(r)
    };
    let (flow, first) = tap::TapFlow::start(&EP_AID);
    let snapshot = drive(flow, first, &mut record).unwrap();
    let black = CardBlacklist::from_unsorted(1, vec![TEST_ASN.0]);
    let white = IssuerWhitelist::from_unsorted(1, vec![TEST_ISSUER_PREFIX]);
    assert_eq!(tap::screen(&snapshot, &white, &black), Screening::Block);
    let mut sam = maintenance_sam(TEST_MASTER_DAMK);
    let (flow, first) = BlockFlow::start(snapshot.card, DEFAULT_BLOCK_MODE, &mut sam);
    drive(flow, first, &mut record).unwrap();
    record(&commands::select(&EP_AID)).unwrap();
    let (commands, responses): (Vec<_>, Vec<_>) = trace.into_iter().unzip();
    assert_eq!(commands, transcript_lines(">> "));
    assert_eq!(responses, transcript_lines("<< "));
}
