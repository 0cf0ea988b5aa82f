//! `CardSam` over the in-process PSAM card (`ykt_purse::psam`): the §8.2/§8.3 purchases end to end
//! with two cards, MAC1 and the secure-messaging MAC identical to `SoftwareSam`'s, APPLICATION BLOCK
//! with the PSAM's MAC, the two-level form, and transport failures kept apart from refusals.

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_card::Card;
use ykt_card::danger::ScriptedRandom;
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_purse::psam::diversify_two_level;
use ykt_purse::psam::{DiversificationOrder, TWO_LEVEL_ORDER as PSAM_TWO_LEVEL_ORDER};
use ykt_purse::testing::{
    TEST_ASN, TEST_MASTER_DAMK, TEST_MASTER_DLK, TEST_MASTER_DPK, TEST_MASTER_DTK,
    danger_card_with_entropy, danger_test_card_3des, danger_test_card_sm4, danger_test_psam_3des,
    danger_test_psam_sm4, test_card_data,
};
use ykt_purse::{EP_AID, IssuedPurse, KeyEntry, KeyUsage, PurseProfile};
use ykt_terminal::card_data::CardIdentity;
use ykt_terminal::load::{LoadFlow, LoadParams};
use ykt_terminal::load_host::IssuerLoadHost;
use ykt_terminal::purchase::{CappRecord, PurchaseFlow, PurchaseParams, PurchaseRecord};
use ykt_terminal::sam::{
    CardSam, MasterKey, OpenError, PurchaseSam, SamPurchaseRequest, SoftwareSam, TWO_LEVEL_ORDER,
    TwoLevelOrder,
};
use ykt_terminal::{DriveError, FlowError, SamError, drive};

const TERMINAL: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
const LOAD_TIME: [u8; 7] = [0x20, 0x24, 0x01, 0x15, 0x10, 0x30, 0x00];
const PURCHASE_TIME: [u8; 7] = [0x20, 0x24, 0x01, 0x15, 0x10, 0x35, 0x00];
const SM4: PurseAlgorithm = PurseAlgorithm::Sm4(Sm4Rules::BRIEF);

#[derive(Debug, PartialEq, Eq)]
struct Lost;

fn via(card: &mut Card) -> impl FnMut(&CommandApdu) -> Result<ResponseApdu, Lost> + '_ {
    move |c| {
        card.transmit(&c.to_bytes())
            .map(|r| ResponseApdu::parse(&r).unwrap())
            .map_err(|_| Lost)
    }
}

type Transmit<'a> = Box<dyn FnMut(&CommandApdu) -> Result<ResponseApdu, Lost> + 'a>;

fn card_sam(psam: &mut Card) -> CardSam<Transmit<'_>, Lost> {
    CardSam::open(Box::new(via(psam)) as Transmit<'_>).unwrap()
}

fn master(key: [u8; 16]) -> MasterKey {
    MasterKey {
        index: 1,
        version: 1,
        key: PurseKey::from_bytes(key),
    }
}

fn software_sam(alg: PurseAlgorithm) -> SoftwareSam {
    SoftwareSam::new(TERMINAL, 1, vec![master(TEST_MASTER_DPK)], Sm4Rules::BRIEF)
        .with_maintenance_key(master(TEST_MASTER_DAMK), alg)
}

fn load_10000(card: &mut Card) {
    let mut host = IssuerLoadHost::new(vec![master(TEST_MASTER_DLK)], Sm4Rules::BRIEF);
    let params = LoadParams {
        aid: EP_AID.to_vec(),
        key_index: 1,
        amount: 10_000,
        terminal_id: TERMINAL,
        datetime: LOAD_TIME,
    };
    let (flow, first) = LoadFlow::start(params, &mut host);
    drive(flow, first, via(card)).unwrap();
}

fn purchase(
    card: &mut Card,
    sam: &mut dyn PurchaseSam,
    key_index: u8,
    composite: Option<Vec<CappRecord>>,
) -> Result<PurchaseRecord, DriveError<Lost>> {
    let params = PurchaseParams {
        aid: EP_AID.to_vec(),
        key_index,
        amount: 200,
        datetime: PURCHASE_TIME,
        composite,
    };
    let (flow, first) = PurchaseFlow::start(params, sam);
    drive(flow, first, via(card))
}

fn composite() -> Option<Vec<CappRecord>> {
    let mut r = vec![0u8; 128];
    r[..5].copy_from_slice(&[0x27, 0x02, 0x7D, 0x01, 0x01]);
    Some(vec![CappRecord {
        p1: 0x02,
        p2: 0xD0,
        data: r,
    }])
}

#[test]
fn open_reads_the_terminal_id_and_the_key_index() {
    let mut psam = danger_test_psam_3des().unwrap();
    let sam = card_sam(&mut psam);
    assert_eq!(sam.terminal_id(), TERMINAL);
    assert_eq!(sam.purchase_key_index(), 1);
    assert_eq!(sam.application_info()[1..], [0u8; 24]);
    assert!(!format!("{sam:?}").contains("key: "));
}

#[test]
fn s8_2_purchase_through_the_psam_card() {
    // e-purse.md §8.1 then §8.2: TTSN 00000001, MAC1 5878A361 (checked by the card's DEBIT),
    // TAC 787BD517, MAC2 2F0250C6 (checked by the PSAM's 80 72).
    let mut card = danger_test_card_3des().unwrap();
    let mut psam = danger_test_psam_3des().unwrap();
    load_10000(&mut card);
    let mut sam = card_sam(&mut psam);
    let index = sam.purchase_key_index();
    let p = purchase(&mut card, &mut sam, index, None).unwrap();
    assert_eq!(
        (p.ttsn, p.terminal_id, p.balance_after()),
        (1, TERMINAL, 9_800)
    );
    assert_eq!(p.tac, [0x78, 0x7B, 0xD5, 0x17]);
    assert_eq!(p.mac2, [0x2F, 0x02, 0x50, 0xC6]);
    // The PSAM's serial goes on: the next purchase gets TTSN 2.
    let p = purchase(&mut card, &mut sam, index, None).unwrap();
    assert_eq!(
        (p.ttsn, p.offline_counter, p.balance_after()),
        (2, 1, 9_600)
    );
}

#[test]
fn s8_2_composite_through_the_psam_card() {
    // e-purse.md §8.2 last line: type 09, MAC2 2F0250C6, TAC 3812A1E8.
    let mut card = danger_test_card_3des().unwrap();
    let mut psam = danger_test_psam_3des().unwrap();
    load_10000(&mut card);
    let mut sam = card_sam(&mut psam);
    let p = purchase(&mut card, &mut sam, 1, composite()).unwrap();
    assert_eq!((p.transaction_type, p.ttsn), (0x09, 1));
    assert_eq!(p.mac2, [0x2F, 0x02, 0x50, 0xC6]);
    assert_eq!(p.tac, [0x38, 0x12, 0xA1, 0xE8]);
}

#[test]
fn s8_3_sm4_purchase_through_the_psam_card() {
    // e-purse.md §8.3 (Sm4Rules::BRIEF, L): MAC2 9DF2C9ED, TAC 3E66EC34.
    let mut card = danger_test_card_sm4().unwrap();
    let mut psam = danger_test_psam_sm4().unwrap();
    load_10000(&mut card);
    let mut sam = card_sam(&mut psam);
    let p = purchase(&mut card, &mut sam, 1, None).unwrap();
    assert_eq!((p.algorithm_id, p.ttsn), (0x04, 1));
    assert_eq!(p.mac2, [0x9D, 0xF2, 0xC9, 0xED]);
    assert_eq!(p.tac, [0x3E, 0x66, 0xEC, 0x34]);
}

fn identity() -> CardIdentity {
    CardIdentity::from_ef15(&ykt_purse::Ef15::encode(&test_card_data(TEST_ASN).ef15)).unwrap()
}

fn requests() -> Vec<SamPurchaseRequest> {
    let mut out = Vec::new();
    for (i, (alg_id, ty)) in [(0x00, 0x06), (0x00, 0x09), (0x04, 0x06), (0x04, 0x09)]
        .into_iter()
        .enumerate()
    {
        for amount in [1u32, 200, 0x00FF_FFFF] {
            out.push(SamPurchaseRequest {
                card: identity(),
                key_index: 1,
                key_version: 1,
                algorithm_id: alg_id,
                random: [0x5E, 0x6F, 0x7A, i as u8],
                offline_counter: amount as u16,
                amount,
                transaction_type: ty,
                datetime: PURCHASE_TIME,
            });
        }
    }
    out
}

/// The same requests through a software SAM and a PSAM card: identical TTSN and MAC1, and each
/// accepts the other's MAC2 check the same way.
fn compare(software: &mut SoftwareSam, card: &mut dyn PurchaseSam, alg_id: u8) {
    for r in requests().into_iter().filter(|r| r.algorithm_id == alg_id) {
        let a = software.init_purchase(&r).unwrap();
        let b = card.init_purchase(&r).unwrap();
        assert_eq!(a, b, "{r:?}");
        assert_eq!(card.verify_mac2(&[0; 4]), Err(SamError::Mac2Invalid));
        assert_eq!(
            card.verify_mac2(&[0; 4]),
            Err(SamError::NoPurchaseInProgress)
        );
        assert_eq!(software.verify_mac2(&[0; 4]), Err(SamError::Mac2Invalid));
    }
}

#[test]
fn card_sam_and_software_sam_give_identical_mac1() {
    let mut psam = danger_test_psam_3des().unwrap();
    let mut card = card_sam(&mut psam);
    compare(&mut software_sam(PurseAlgorithm::Tdes), &mut card, 0x00);
    let mut psam = danger_test_psam_sm4().unwrap();
    let mut card = card_sam(&mut psam);
    compare(&mut software_sam(SM4), &mut card, 0x04);
}

#[test]
fn card_sam_and_software_sam_agree_in_two_levels() {
    assert_eq!(
        (TWO_LEVEL_ORDER, PSAM_TWO_LEVEL_ORDER),
        (
            TwoLevelOrder::IssuerThenCard,
            DiversificationOrder::IssuerThenCard
        ),
        "the software SAM and the PSAM must diversify in the same order"
    );
    for (alg, alg_id) in [(PurseAlgorithm::Tdes, 0x00), (SM4, 0x04)] {
        let mut psam = if alg_id == 0 {
            danger_test_psam_3des().unwrap()
        } else {
            danger_test_psam_sm4().unwrap()
        };
        let mut card = card_sam(&mut psam)
            .with_two_level_diversification()
            .with_maintenance_key(1, alg);
        let mut software = software_sam(alg).with_two_level_diversification();
        compare(&mut software, &mut card, alg_id);
        let single = software_sam(alg).init_purchase(&requests()[0]).unwrap();
        assert_ne!(
            single.mac1,
            software_sam(alg)
                .with_two_level_diversification()
                .init_purchase(&requests()[0])
                .unwrap()
                .mac1
        );
        for challenge in [[0x1A, 0x2B, 0x3C, 0x4D], [0, 0, 0, 0]] {
            let command = [0x84, 0x1E, 0x00, 0x00, 0x04];
            assert_eq!(
                card.secure_messaging_mac(&identity(), challenge, &command),
                software.secure_messaging_mac(&identity(), challenge, &command)
            );
        }
    }
    // psam_host.py: the two-level 3DES DAMK MAC of 841E000004 with challenge 1A2B3C4D.
    let mut software = software_sam(PurseAlgorithm::Tdes).with_two_level_diversification();
    assert_eq!(
        software.secure_messaging_mac(
            &identity(),
            [0x1A, 0x2B, 0x3C, 0x4D],
            &[0x84, 0x1E, 0, 0, 4]
        ),
        Ok([0x2B, 0x97, 0x90, 0xD7])
    );
}

/// A purse whose purchase key is diversified in two levels, paid through the 36-byte 80 70.
#[test]
fn two_level_purchase_end_to_end() {
    for (alg, mac2) in [
        (PurseAlgorithm::Tdes, [0x57, 0x96, 0x0F, 0x81]),
        (SM4, [0x00, 0xAB, 0xA1, 0xEE]),
    ] {
        let mut data = test_card_data(TEST_ASN);
        data.balance = 10_000;
        let key = |usage, master: [u8; 16]| KeyEntry {
            usage,
            index: 1,
            version: 1,
            algorithm: alg,
            key: diversify_two_level(
                &alg,
                &PurseKey::from_bytes(master),
                &TEST_ASN.diversifier(),
                &data.ef15.issuer_id,
                PSAM_TWO_LEVEL_ORDER,
            ),
        };
        let keys = [
            key(KeyUsage::Purchase, TEST_MASTER_DPK),
            key(KeyUsage::Tac, TEST_MASTER_DTK),
        ];
        let purse =
            IssuedPurse::from_card_keys(&EP_AID, PurseProfile::EPURSE, &data, &keys).unwrap();
        let random = vec![0x5E, 0x6F, 0x7A, 0x8B];
        let entropy = ScriptedRandom::new([random.clone(), random], 9);
        let mut card = danger_card_with_entropy(vec![purse], Box::new(entropy)).unwrap();
        let mut psam = if alg == PurseAlgorithm::Tdes {
            danger_test_psam_3des().unwrap()
        } else {
            danger_test_psam_sm4().unwrap()
        };
        // Single-level MAC1 is refused by the card (9302); the PSAM's serial is used anyway.
        let mut single = card_sam(&mut psam);
        let err = purchase(&mut card, &mut single, 1, None).unwrap_err();
        assert!(matches!(
            err,
            DriveError::Flow(FlowError::CardRefused {
                sw: StatusWord::MAC_INVALID,
                ..
            })
        ));
        drop(single);
        let mut two = card_sam(&mut psam).with_two_level_diversification();
        let p = purchase(&mut card, &mut two, 1, None).unwrap();
        assert_eq!((p.ttsn, p.balance_after()), (2, 9_800));
        // psam_host.py: two-level, type 06, TTSN 00000002; and the software SAM's session agrees.
        assert_eq!(p.mac2, mac2);
        let mut software =
            SoftwareSam::new(TERMINAL, 2, vec![master(TEST_MASTER_DPK)], Sm4Rules::BRIEF)
                .with_two_level_diversification();
        let r = SamPurchaseRequest {
            card: p.card.clone(),
            key_index: 1,
            key_version: 1,
            algorithm_id: p.algorithm_id,
            random: [0x5E, 0x6F, 0x7A, 0x8B],
            offline_counter: 0,
            amount: 200,
            transaction_type: 0x06,
            datetime: PURCHASE_TIME,
        };
        software.init_purchase(&r).unwrap();
        assert_eq!(software.verify_mac2(&p.mac2), Ok(()));
    }
}

/// GET CHALLENGE, the SAM's MAC, APPLICATION BLOCK (e-purse.md §4.9–§4.11).
fn block(card: &mut Card, sam: &mut dyn PurchaseSam, flip: bool) -> StatusWord {
    let mut send = via(card);
    let fci = send(&ykt_terminal::commands::select(&EP_AID)).unwrap();
    assert_eq!(fci.sw, StatusWord::SUCCESS);
    let identity = CardIdentity::from_fci(&fci.data).unwrap();
    let challenge = send(&CommandApdu::new(0x00, 0x84, 0x00, 0x00).with_le(4)).unwrap();
    let command = [0x84, 0x1E, 0x00, 0x00, 0x04];
    let mut mac = sam
        .secure_messaging_mac(&identity, challenge.data.try_into().unwrap(), &command)
        .unwrap();
    if flip {
        mac[0] ^= 0x80;
    }
    send(&CommandApdu::new(0x84, 0x1E, 0x00, 0x00).with_data(mac.to_vec()))
        .unwrap()
        .sw
}

#[test]
fn application_block_with_the_psam_mac() {
    for alg in [PurseAlgorithm::Tdes, SM4] {
        let (mut card, mut psam) = if alg == PurseAlgorithm::Tdes {
            (
                danger_test_card_3des().unwrap(),
                danger_test_psam_3des().unwrap(),
            )
        } else {
            (
                danger_test_card_sm4().unwrap(),
                danger_test_psam_sm4().unwrap(),
            )
        };
        let mut sam = card_sam(&mut psam).with_maintenance_key(1, alg);
        assert_eq!(block(&mut card, &mut sam, true), StatusWord(0x6988));
        assert_eq!(block(&mut card, &mut sam, false), StatusWord::SUCCESS);
        let fci = via(&mut card)(&ykt_terminal::commands::select(&EP_AID)).unwrap();
        assert_eq!(
            fci.sw,
            StatusWord::FUNCTION_NOT_SUPPORTED,
            "SELECT of a blocked purse"
        );
        // The software SAM's MAC is the same, so it blocks another card just as well.
        let mut card = if alg == PurseAlgorithm::Tdes {
            danger_test_card_3des().unwrap()
        } else {
            danger_test_card_sm4().unwrap()
        };
        assert_eq!(
            block(&mut card, &mut software_sam(alg), false),
            StatusWord::SUCCESS
        );
    }
}

#[test]
fn without_a_maintenance_key_the_mac_is_a_typed_error() {
    let mut software =
        SoftwareSam::new(TERMINAL, 1, vec![master(TEST_MASTER_DPK)], Sm4Rules::BRIEF);
    let command = [0x84, 0x1E, 0x00, 0x00, 0x04];
    assert_eq!(
        software.secure_messaging_mac(&identity(), [0; 4], &command),
        Err(SamError::NoMaintenanceKey)
    );
    let mut psam = danger_test_psam_3des().unwrap();
    let mut sam = card_sam(&mut psam);
    assert_eq!(
        sam.secure_messaging_mac(&identity(), [0; 4], &command),
        Err(SamError::NoMaintenanceKey)
    );
    drop(sam);
    // A version the PSAM does not hold: its 9403 means the same.
    let mut sam = card_sam(&mut psam).with_maintenance_key(7, PurseAlgorithm::Tdes);
    assert_eq!(
        sam.secure_messaging_mac(&identity(), [0; 4], &command),
        Err(SamError::NoMaintenanceKey)
    );
    drop(sam);
    let mut sam = card_sam(&mut psam).with_maintenance_key(1, PurseAlgorithm::Tdes);
    assert_eq!(
        sam.secure_messaging_mac(&identity(), [0; 4], &[0; 250]),
        Err(SamError::CommandTooLong(250))
    );
}

#[test]
fn psam_refusals_are_typed() {
    let mut psam = danger_test_psam_3des().unwrap();
    let mut sam = card_sam(&mut psam);
    assert_eq!(
        sam.verify_mac2(&[0; 4]),
        Err(SamError::NoPurchaseInProgress)
    );
    let mut r = requests().remove(0);
    r.key_version = 9;
    assert_eq!(
        sam.init_purchase(&r),
        Err(SamError::UnknownKey {
            index: 1,
            version: 9
        })
    );
    r.key_version = 1;
    r.key_index = 2;
    assert_eq!(
        sam.init_purchase(&r),
        Err(SamError::UnknownKey {
            index: 2,
            version: 1
        })
    );
    r.key_index = 1;
    r.transaction_type = 0x02;
    assert_eq!(
        sam.init_purchase(&r),
        Err(SamError::Refused {
            command: "80 70 (MAC1)",
            sw: StatusWord::WRONG_DATA
        })
    );
    // None of that used a serial.
    r.transaction_type = 0x06;
    assert_eq!(sam.init_purchase(&r).unwrap().ttsn, 1);
}

#[test]
fn transport_failures_stay_apart_from_refusals() {
    // Open: the transport fails at the first command.
    let failing = |_: &CommandApdu| -> Result<ResponseApdu, Lost> { Err(Lost) };
    assert!(matches!(
        CardSam::open(failing),
        Err(OpenError::Transport(Lost))
    ));
    // Open on a card without a PSAM: the MF has no EF16 (6A82), a refusal.
    let mut purse = danger_test_card_3des().unwrap();
    match CardSam::open(via(&mut purse)) {
        Err(OpenError::Sam(SamError::Refused { command, sw })) => {
            assert_eq!(
                (command, sw),
                ("READ BINARY EF16", StatusWord::FILE_NOT_FOUND)
            );
        }
        other => panic!("{other:?}"),
    }
    // After open: the PSAM loses power in the middle of 80 70.
    let mut psam = danger_test_psam_3des().unwrap();
    let r = requests().remove(0);
    psam.tear().arm_at(1);
    let mut sam = CardSam::open(Box::new(via(&mut psam)) as Transmit<'_>).unwrap();
    assert_eq!(sam.init_purchase(&r), Err(SamError::Transport));
    assert_eq!(sam.take_transport_error(), Some(Lost));
    assert_eq!(sam.take_transport_error(), None);
    // Through a flow, a PSAM transport failure is a SAM error, not the card's transport.
    let mut card = danger_test_card_3des().unwrap();
    load_10000(&mut card);
    match purchase(&mut card, &mut sam, 1, None) {
        Err(DriveError::Flow(FlowError::Sam(SamError::Transport))) => {}
        other => panic!("{other:?}"),
    }
}
