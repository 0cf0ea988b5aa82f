//! Load, purchase and composite purchase through `ykt_terminal::drive` against the in-process test
//! card; the §8 worked example must reproduce byte for byte, and every refusal must be precise.

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_card::Card;
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_purse::testing::{
    TEST_MASTER_DLK, TEST_MASTER_DPK, TEST_MASTER_DTK, danger_test_card_3des, danger_test_card_sm4,
    danger_test_card_with_second_ticket,
};
use ykt_purse::{EP_AID, SECOND_TICKET_AID};
use ykt_terminal::load::{LoadFlow, LoadParams, LoadRecord};
use ykt_terminal::load_host::IssuerLoadHost;
use ykt_terminal::purchase::{CappRecord, PurchaseFlow, PurchaseParams, PurchaseRecord};
use ykt_terminal::sam::{MasterKey, SoftwareSam};
use ykt_terminal::tac::{load_tac_input, purchase_tac_input, verify_tac};
use ykt_terminal::{DriveError, FlowError, HostError, SamError, drive};

const TERMINAL: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
const LOAD_TIME: [u8; 7] = [0x20, 0x24, 0x01, 0x15, 0x10, 0x30, 0x00];
const PURCHASE_TIME: [u8; 7] = [0x20, 0x24, 0x01, 0x15, 0x10, 0x35, 0x00];

fn master(key: [u8; 16]) -> Vec<MasterKey> {
    vec![MasterKey {
        index: 1,
        version: 1,
        key: PurseKey::from_bytes(key),
    }]
}

fn issuer_host() -> IssuerLoadHost {
    IssuerLoadHost::new(master(TEST_MASTER_DLK), Sm4Rules::BRIEF)
}

fn sam() -> SoftwareSam {
    SoftwareSam::new(TERMINAL, 1, master(TEST_MASTER_DPK), Sm4Rules::BRIEF)
}

#[derive(Debug)]
struct Lost;

fn via(card: &mut Card) -> impl FnMut(&CommandApdu) -> Result<ResponseApdu, Lost> + '_ {
    move |c| {
        card.transmit(&c.to_bytes())
            .map(|r| ResponseApdu::parse(&r).unwrap())
            .map_err(|_| Lost)
    }
}

fn load_params(amount: u32) -> LoadParams {
    LoadParams {
        aid: EP_AID.to_vec(),
        key_index: 1,
        amount,
        terminal_id: TERMINAL,
        datetime: LOAD_TIME,
    }
}

fn purchase_params(amount: u32, composite: Option<Vec<CappRecord>>) -> PurchaseParams {
    PurchaseParams {
        aid: EP_AID.to_vec(),
        key_index: 1,
        amount,
        datetime: PURCHASE_TIME,
        composite,
    }
}

fn load(card: &mut Card, amount: u32) -> Result<LoadRecord, DriveError<Lost>> {
    let mut host = issuer_host();
    let (flow, first) = LoadFlow::start(load_params(amount), &mut host);
    drive(flow, first, via(card))
}

fn purchase(
    card: &mut Card,
    sam: &mut SoftwareSam,
    params: PurchaseParams,
) -> Result<PurchaseRecord, DriveError<Lost>> {
    let (flow, first) = PurchaseFlow::start(params, sam);
    drive(flow, first, via(card))
}

fn balance(card: &mut Card, aid: &[u8]) -> u32 {
    via(card)(&ykt_terminal::commands::select(aid)).unwrap();
    let r = via(card)(&ykt_terminal::commands::get_balance()).unwrap();
    assert_eq!(r.sw, StatusWord::SUCCESS);
    u32::from_be_bytes(r.data.try_into().unwrap())
}

fn ef1a_record() -> Vec<u8> {
    // e-purse.md §2 EF1A: tag 27 02, length 7D, valid flag 01, composite flag 01, rest zero.
    let mut r = vec![0u8; 128];
    r[..5].copy_from_slice(&[0x27, 0x02, 0x7D, 0x01, 0x01]);
    r
}

fn composite() -> Option<Vec<CappRecord>> {
    Some(vec![CappRecord {
        p1: 0x02,
        p2: 0xD0,
        data: ef1a_record(),
    }])
}

fn tac_ok_load(alg: &PurseAlgorithm, r: &LoadRecord) -> bool {
    let input = load_tac_input(
        r.new_balance,
        r.online_counter,
        r.amount,
        0x02,
        &r.terminal_id,
        &r.datetime,
    );
    verify_tac(
        alg,
        &PurseKey::from_bytes(TEST_MASTER_DTK),
        &r.card.diversifier(),
        &input,
        &r.tac,
    )
}

fn tac_ok_purchase(alg: &PurseAlgorithm, r: &PurchaseRecord) -> bool {
    let input = purchase_tac_input(
        r.amount,
        r.transaction_type,
        &r.terminal_id,
        r.ttsn,
        &r.datetime,
    );
    verify_tac(
        alg,
        &PurseKey::from_bytes(TEST_MASTER_DTK),
        &r.card.diversifier(),
        &input,
        &r.tac,
    )
}

#[test]
fn load_and_purchase_reproduce_the_brief_3des_example() {
    // e-purse.md §8.1 and §8.2.
    let mut card = danger_test_card_3des().unwrap();
    let l = load(&mut card, 10_000).unwrap();
    assert_eq!(
        (l.old_balance, l.new_balance, l.online_counter),
        (0, 10_000, 0)
    );
    assert_eq!(l.tac, [0x64, 0x36, 0x14, 0xFE]);
    assert_eq!(l.card.masked_number().to_string(), "3104************5678");
    assert!(tac_ok_load(&PurseAlgorithm::Tdes, &l));

    let mut sam = sam();
    let p = purchase(&mut card, &mut sam, purchase_params(200, None)).unwrap();
    assert_eq!(
        (
            p.balance_before,
            p.offline_counter,
            p.ttsn,
            p.transaction_type
        ),
        (10_000, 0, 1, 0x06)
    );
    assert_eq!(p.tac, [0x78, 0x7B, 0xD5, 0x17]);
    assert_eq!(p.mac2, [0x2F, 0x02, 0x50, 0xC6]);
    assert!(tac_ok_purchase(&PurseAlgorithm::Tdes, &p));
    assert_eq!(sam.next_ttsn(), 2);
    assert_eq!(balance(&mut card, &EP_AID), 9_800);
}

#[test]
fn composite_purchase_reproduces_the_brief_3des_example() {
    // e-purse.md §8.2, last paragraph: type 09, MAC2 2F0250C6, TAC 3812A1E8.
    let mut card = danger_test_card_3des().unwrap();
    load(&mut card, 10_000).unwrap();
    let p = purchase(&mut card, &mut sam(), purchase_params(200, composite())).unwrap();
    assert_eq!(p.transaction_type, 0x09);
    assert_eq!(p.mac2, [0x2F, 0x02, 0x50, 0xC6]);
    assert_eq!(p.tac, [0x38, 0x12, 0xA1, 0xE8]);
    assert!(tac_ok_purchase(&PurseAlgorithm::Tdes, &p));
    // The cached EF1A record was committed with the debit (READ RECORD 02 of SFI 1A by number).
    let r = via(&mut card)(&CommandApdu::new(0x00, 0xB2, 0x02, 0xD4).with_le(256)).unwrap();
    assert_eq!((r.sw, r.data), (StatusWord::SUCCESS, ef1a_record()));
}

#[test]
fn load_and_purchase_reproduce_the_brief_sm4_example() {
    // e-purse.md §8.3 under Sm4Rules::BRIEF.
    let alg = PurseAlgorithm::Sm4(Sm4Rules::BRIEF);
    let mut card = danger_test_card_sm4().unwrap();
    let l = load(&mut card, 10_000).unwrap();
    assert_eq!(l.algorithm_id, 0x04);
    assert_eq!(l.tac, [0xEA, 0x50, 0x90, 0x3C]);
    assert!(tac_ok_load(&alg, &l));
    let p = purchase(&mut card, &mut sam(), purchase_params(200, None)).unwrap();
    assert_eq!(p.mac2, [0x9D, 0xF2, 0xC9, 0xED]);
    assert_eq!(p.tac, [0x3E, 0x66, 0xEC, 0x34]);
    assert!(tac_ok_purchase(&alg, &p));
}

#[test]
fn second_ticket_is_reached_by_its_own_aid_and_keeps_its_own_balance() {
    let mut card = danger_test_card_with_second_ticket().unwrap();
    load(&mut card, 10_000).unwrap();
    let mut host = issuer_host();
    let params = LoadParams {
        aid: SECOND_TICKET_AID.to_vec(),
        ..load_params(10)
    };
    let (flow, first) = LoadFlow::start(params, &mut host);
    let l = drive(flow, first, via(&mut card)).unwrap();
    assert!(tac_ok_load(&PurseAlgorithm::Tdes, &l));
    let params = PurchaseParams {
        aid: SECOND_TICKET_AID.to_vec(),
        ..purchase_params(1, None)
    };
    let p = purchase(&mut card, &mut sam(), params).unwrap();
    assert!(tac_ok_purchase(&PurseAlgorithm::Tdes, &p));
    assert_eq!(balance(&mut card, &SECOND_TICKET_AID), 9);
    assert_eq!(balance(&mut card, &EP_AID), 10_000);
}

#[test]
fn a_host_with_the_wrong_master_key_refuses_mac1_and_nothing_is_loaded() {
    let mut card = danger_test_card_3des().unwrap();
    let mut host = IssuerLoadHost::new(master(TEST_MASTER_DPK), Sm4Rules::BRIEF);
    let (flow, first) = LoadFlow::start(load_params(10_000), &mut host);
    let err = drive(flow, first, via(&mut card)).unwrap_err();
    assert!(
        matches!(
            err,
            DriveError::Flow(FlowError::Host(HostError::Mac1Invalid))
        ),
        "{err:?}"
    );
    assert_eq!(balance(&mut card, &EP_AID), 0);
}

#[test]
fn a_sam_with_the_wrong_master_key_is_refused_by_the_card_with_9302() {
    let mut card = danger_test_card_3des().unwrap();
    load(&mut card, 10_000).unwrap();
    let mut sam = SoftwareSam::new(TERMINAL, 1, master(TEST_MASTER_DLK), Sm4Rules::BRIEF);
    let err = purchase(&mut card, &mut sam, purchase_params(200, None)).unwrap_err();
    match err {
        DriveError::Flow(FlowError::CardRefused { sw, .. }) => {
            assert_eq!(sw, StatusWord::MAC_INVALID)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(balance(&mut card, &EP_AID), 10_000);
}

#[test]
fn unknown_key_and_insufficient_balance_are_precise() {
    let mut card = danger_test_card_3des().unwrap();
    let err = purchase(&mut card, &mut sam(), purchase_params(1, None)).unwrap_err();
    match err {
        DriveError::Flow(FlowError::CardRefused { step, sw }) => {
            assert_eq!(
                (step, sw),
                ("INITIALIZE FOR PURCHASE", StatusWord::INSUFFICIENT_BALANCE)
            );
        }
        other => panic!("{other:?}"),
    }
    load(&mut card, 100).unwrap();
    let mut sam = SoftwareSam::new(TERMINAL, 1, vec![], Sm4Rules::BRIEF);
    let err = purchase(&mut card, &mut sam, purchase_params(1, None)).unwrap_err();
    assert!(matches!(
        err,
        DriveError::Flow(FlowError::Sam(SamError::UnknownKey {
            index: 1,
            version: 1
        }))
    ));
}

#[test]
fn a_forged_mac2_is_caught_by_the_sam() {
    let mut card = danger_test_card_3des().unwrap();
    load(&mut card, 10_000).unwrap();
    let mut sam = sam();
    let (flow, first) = PurchaseFlow::start(purchase_params(200, None), &mut sam);
    let err = drive(flow, first, |c: &CommandApdu| {
        let mut r = ResponseApdu::parse(&card.transmit(&c.to_bytes()).unwrap()).unwrap();
        if c.ins == 0x54 {
            r.data[7] ^= 1;
        }
        Ok::<_, Lost>(r)
    })
    .unwrap_err();
    assert!(
        matches!(err, DriveError::Flow(FlowError::Sam(SamError::Mac2Invalid))),
        "{err:?}"
    );
}

#[test]
fn malformed_answers_and_transport_failures_are_told_apart() {
    let mut card = danger_test_card_3des().unwrap();
    let mut host = issuer_host();
    let (flow, first) = LoadFlow::start(load_params(1), &mut host);
    let err = drive(flow, first, |c: &CommandApdu| {
        let mut r = ResponseApdu::parse(&card.transmit(&c.to_bytes()).unwrap()).unwrap();
        if c.ins == 0x50 {
            r.data.truncate(15);
        }
        Ok::<_, Lost>(r)
    })
    .unwrap_err();
    assert!(matches!(
        err,
        DriveError::Flow(FlowError::MalformedResponse {
            step: "INITIALIZE FOR LOAD",
            len: 15
        })
    ));

    let mut host = issuer_host();
    let (flow, first) = LoadFlow::start(load_params(1), &mut host);
    let err = drive(flow, first, |_: &CommandApdu| Err::<ResponseApdu, _>(Lost)).unwrap_err();
    assert!(matches!(err, DriveError::Transport(Lost)));

    // Not a purse: the FCI carries no 9F0C.
    let mut host = issuer_host();
    let (flow, first) = LoadFlow::start(load_params(1), &mut host);
    let err = drive(flow, first, |_: &CommandApdu| {
        Ok::<_, Lost>(ResponseApdu::new(vec![0x6F, 0x00], StatusWord::SUCCESS))
    })
    .unwrap_err();
    assert!(matches!(err, DriveError::Flow(FlowError::NotAPurse)));
}
