//! The tap flow (SELECT, READ RECORD EF1A, GET BALANCE) and screening against the lists, on the
//! in-process test card; the helpers here serve the transit and block tests too.

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_card::Card;
use ykt_crypto::purse::{PurseKey, Sm4Rules};
use ykt_purse::EP_AID;
use ykt_purse::testing::{
    TEST_ASN, TEST_MASTER_DLK, TEST_MASTER_DPK, danger_test_card_3des, test_card_data, test_issuer,
};
use ykt_terminal::lists::{CardBlacklist, IssuerWhitelist};
use ykt_terminal::load::{LoadFlow, LoadParams};
use ykt_terminal::load_host::IssuerLoadHost;
use ykt_terminal::sam::{MasterKey, SoftwareSam};
use ykt_terminal::tap::{self, CardSnapshot, ScreenRefusal, Screening, TapFlow};
use ykt_terminal::{DriveError, FlowError, drive};

pub(crate) const TERMINAL: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
pub(crate) const TEST_ISSUER_PREFIX: [u8; 4] = [0x01, 0x01, 0x10, 0x00];

#[derive(Debug)]
pub(crate) struct Lost;

pub(crate) fn via(card: &mut Card) -> impl FnMut(&CommandApdu) -> Result<ResponseApdu, Lost> + '_ {
    move |c| {
        card.transmit(&c.to_bytes())
            .map(|r| ResponseApdu::parse(&r).unwrap())
            .map_err(|_| Lost)
    }
}

pub(crate) fn master(key: [u8; 16]) -> Vec<MasterKey> {
    vec![MasterKey {
        index: 1,
        version: 1,
        key: PurseKey::from_bytes(key),
    }]
}

pub(crate) fn sam() -> SoftwareSam {
    SoftwareSam::new(TERMINAL, 1, master(TEST_MASTER_DPK), Sm4Rules::BRIEF)
}

/// The 3DES test card of e-purse.md §8 loaded with `amount`.
pub(crate) fn card_with(amount: u32) -> Card {
    let mut card = danger_test_card_3des().unwrap();
    let mut host = IssuerLoadHost::new(master(TEST_MASTER_DLK), Sm4Rules::BRIEF);
    let params = LoadParams {
        aid: EP_AID.to_vec(),
        key_index: 1,
        amount,
        terminal_id: TERMINAL,
        datetime: [0x20, 0x26, 0x01, 0x15, 0x07, 0x00, 0x00],
    };
    let (flow, first) = LoadFlow::start(params, &mut host);
    drive(flow, first, via(&mut card)).unwrap();
    card
}

pub(crate) fn tap(card: &mut Card) -> Result<CardSnapshot, DriveError<Lost>> {
    let (flow, first) = TapFlow::start(&EP_AID);
    drive(flow, first, via(card))
}

pub(crate) fn lists() -> (IssuerWhitelist, CardBlacklist) {
    (
        IssuerWhitelist::from_unsorted(1, vec![TEST_ISSUER_PREFIX]),
        CardBlacklist::empty(1),
    )
}

#[test]
fn tap_reads_identity_blank_ef1a_and_balance() {
    let mut card = card_with(10_000);
    let s = tap(&mut card).unwrap();
    assert_eq!(s.card.asn, TEST_ASN.0);
    assert_eq!(s.balance, 10_000);
    assert_eq!(s.ef1a, Ok(None));
    assert_eq!(s.ef1a_bytes.len(), 128);
    assert_eq!(s.ef1a_bytes[1], 0x02);
}

#[test]
fn the_ef1a_read_is_00_b2_02_d4_80() {
    assert_eq!(tap::read_ef1a().to_bytes(), [0x00, 0xB2, 0x02, 0xD4, 0x80]);
}

#[test]
fn screening_admits_blocks_and_refuses() {
    let mut card = card_with(0);
    let s = tap(&mut card).unwrap();
    let (white, black) = lists();
    assert_eq!(tap::screen(&s, &white, &black), Screening::Admit);

    let black = CardBlacklist::from_unsorted(2, vec![[0x99; 10], TEST_ASN.0]);
    assert_eq!(tap::screen(&s, &white, &black), Screening::Block);

    let other = IssuerWhitelist::from_unsorted(1, vec![[0x02, 0x02, 0x20, 0x00]]);
    assert_eq!(
        tap::screen(&s, &other, &black),
        Screening::Refuse(ScreenRefusal::IssuerNotAccepted)
    );
}

#[test]
fn screening_refuses_a_disabled_or_non_purse_application() {
    let (white, black) = lists();
    for (application_type, application_version, refusal) in [
        (0x01, 0x01, ScreenRefusal::NotAnEPurse(0x01)),
        (0x02, 0x00, ScreenRefusal::NotEnabled(0x00)),
    ] {
        let mut data = test_card_data(TEST_ASN);
        data.ef15.application_type = application_type;
        data.ef15.application_version = application_version;
        let purse = test_issuer(ykt_crypto::purse::PurseAlgorithm::Tdes)
            .unwrap()
            .issue(&EP_AID, ykt_purse::PurseProfile::EPURSE, &data)
            .unwrap();
        let mut card = ykt_purse::testing::danger_test_card(vec![purse]).unwrap();
        let s = tap(&mut card).unwrap();
        assert_eq!(tap::screen(&s, &white, &black), Screening::Refuse(refusal));
    }
}

#[test]
fn a_card_without_the_purse_or_with_a_short_balance_is_precise() {
    let mut card = card_with(0);
    let (flow, first) = TapFlow::start(&[0xA0, 0x00, 0x00, 0x06, 0x32, 0x09]);
    let err = drive(flow, first, via(&mut card)).unwrap_err();
    assert!(
        matches!(
            err,
            DriveError::Flow(FlowError::CardRefused {
                step: "SELECT",
                sw: StatusWord::FILE_NOT_FOUND
            })
        ),
        "{err:?}"
    );

    let (flow, first) = TapFlow::start(&EP_AID);
    let err = drive(flow, first, |c: &CommandApdu| {
        let mut r = via(&mut card)(c)?;
        if c.ins == 0x5C {
            r.data.truncate(3);
        }
        Ok::<_, Lost>(r)
    })
    .unwrap_err();
    assert!(matches!(
        err,
        DriveError::Flow(FlowError::MalformedResponse {
            step: "GET BALANCE",
            len: 3
        })
    ));
}
