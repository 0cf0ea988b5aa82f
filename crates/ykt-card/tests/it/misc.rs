//! ATR, AID, entropy, installation.

use ykt_apdu::StatusWord;
use ykt_card::danger::ScriptedRandom;
use ykt_card::{Aid, AidError, Atr, AtrError, Card, CardError, Entropy, SeededRandom};

use crate::support::{self, AID_A};

#[test]
fn default_atr() {
    let atr = Atr::default_t1();
    assert_eq!(hex::encode_upper(atr.as_bytes()), "3B838001796B7464");
    assert_eq!(Atr::new(atr.as_bytes()), Ok(atr.clone()));
    assert_eq!(&atr.as_bytes()[4..7], b"ykt");
    assert_eq!(Atr::with_historical(b"ykt").unwrap(), atr);
    // The ATR pcscd accepted through vpcd.
    assert!(Atr::new(&[0x3B, 0x80, 0x80, 0x01, 0x01]).is_ok());
    // T=0 only: no TCK.
    assert!(Atr::new(&[0x3B, 0x00]).is_ok());
    assert_eq!(
        Atr::new(&[0x3B, 0x80, 0x80, 0x01, 0x02]),
        Err(AtrError::CheckByteMismatch {
            expected: 0x01,
            found: 0x02
        })
    );
    assert_eq!(
        Atr::new(&[0x3B, 0x80, 0x80, 0x01]),
        Err(AtrError::Truncated)
    );
    assert_eq!(Atr::new(&[0x3B, 0x00, 0x00]), Err(AtrError::TrailingBytes));
    assert_eq!(Atr::new(&[0x3C, 0x00]), Err(AtrError::InvalidTs(0x3C)));
    assert_eq!(Atr::new(&[]), Err(AtrError::Truncated));
    assert_eq!(
        Atr::with_historical(&[0; 16]),
        Err(AtrError::TooManyHistoricalBytes(16))
    );
    let mut card = support::card();
    assert_eq!(card.power_on(), atr);
    assert_eq!(card.atr(), &atr);
}

#[test]
fn aid() {
    assert_eq!(Aid::new(&[0xA0; 4]), Err(AidError::Length(4)));
    assert_eq!(Aid::new(&[0xA0; 17]), Err(AidError::Length(17)));
    let aid = Aid::new(&hex::decode(AID_A).unwrap()).unwrap();
    assert!(aid.starts_with(&[0xA0, 0x00]));
    assert!(aid.starts_with(&[]));
    assert!(!aid.starts_with(&[0xA1]));
    assert_eq!(format!("{aid}"), AID_A);
    assert_eq!(format!("{aid:?}"), format!("Aid({AID_A})"));
}

#[test]
fn entropy_is_deterministic() {
    let mut a = SeededRandom::new(1);
    let mut b = SeededRandom::new(1);
    let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
    a.fill(&mut x);
    b.fill(&mut y);
    assert_eq!(x, y);
    assert_ne!(x, [0; 13]);
    let mut s = ScriptedRandom::new([vec![1, 2, 3], vec![4]], 1);
    let mut buf = [0u8; 2];
    s.fill(&mut buf);
    assert_eq!(buf, [1, 2]);
    let mut buf = [0u8; 10];
    s.fill(&mut buf);
    assert_eq!(&buf[..2], &[3, 4]);
    assert_eq!(s.remaining_script(), 0);
    let mut seeded = [0u8; 8];
    SeededRandom::new(1).fill(&mut seeded);
    assert_eq!(&buf[2..], &seeded);
}

#[test]
fn scripted_challenge_through_the_card() {
    let mut card = Card::new(
        Atr::default_t1(),
        Box::new(ScriptedRandom::new([vec![0x11; 8]], 0)),
    );
    support::install(&mut card, AID_A).unwrap();
    card.power_on();
    support::select(&mut card, AID_A);
    assert_eq!(support::ok(&mut card, "0084000008"), [0x11; 8]);
}

#[test]
fn installation_rules() {
    let mut card = support::card();
    assert_eq!(
        support::install(&mut card, AID_A),
        Err(CardError::DuplicateAid(
            Aid::new(&hex::decode(AID_A).unwrap()).unwrap()
        ))
    );
    let applet = support::TestApplet::new("A000000001");
    assert_eq!(
        card.install(Box::new(applet), |_| Err(StatusWord::WRONG_DATA)),
        Err(CardError::InstallRejected(StatusWord::WRONG_DATA))
    );
    // The rejected installation left nothing behind: the same AID installs fine.
    support::install(&mut card, "A000000001").unwrap();
    assert_eq!(card.applets().count(), 4);
    support::select(&mut card, "A000000001");
}

#[test]
fn power_states() {
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(0)));
    assert!(!card.is_powered());
    assert_eq!(card.transmit(&[0, 0xA4, 0, 0]), Err(CardError::NotPowered));
    card.power_on();
    assert!(card.is_powered());
    assert_eq!(
        card.transmit(&[0, 0xA4, 0, 0]).unwrap(),
        [0x6F, 0x04, 0x83, 0x02, 0x3F, 0x00, 0x90, 0x00]
    );
    card.power_off();
    assert_eq!(card.transmit(&[0, 0xA4, 0, 0]), Err(CardError::NotPowered));
    card.reset();
    assert!(card.is_powered());
    assert!(format!("{card:?}").contains("powered: true"));
}

#[test]
fn transactions_commit_all_or_nothing() {
    let mut card = support::card();
    let before = support::dump(&mut card, AID_A);
    // 80 16 writes everything, then fails: nothing is kept.
    assert_eq!(support::send(&mut card, "80160000"), [0x69, 0x85]);
    assert_eq!(support::dump(&mut card, AID_A), before);
    // 80 18: counter committed early, the blob write after it is discarded.
    assert_eq!(support::send(&mut card, "80180000"), [0x69, 0x85]);
    let after = support::dump(&mut card, AID_A);
    assert_eq!(&after[..4], &[0, 0, 0, 1]);
    assert_eq!(&after[4..], &before[4..]);
    // A 6Cxx answer means "not executed": the multi-write returning the counter (4 bytes)
    // asked with Le 02 writes nothing.
    let writes = card.persistent_writes();
    assert_eq!(support::send(&mut card, "8010050102"), [0x6C, 0x04]);
    assert_eq!(card.persistent_writes(), writes);
    assert_eq!(support::dump(&mut card, AID_A), after);
    assert_eq!(support::ok(&mut card, "8010050104"), [0, 0, 0, 2]);
    assert!(card.persistent_writes() > writes);
}

#[test]
fn instances_are_isolated() {
    let mut card = support::card();
    support::select(&mut card, AID_A);
    support::ok(&mut card, "80100700");
    let b = support::dump(&mut card, support::AID_B);
    assert_eq!(&b[..4], &[0, 0, 0, 0]);
    let a = support::dump(&mut card, AID_A);
    assert_eq!(&a[..4], &[0, 0, 0, 1]);
}

#[test]
fn card_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Card>();
}
