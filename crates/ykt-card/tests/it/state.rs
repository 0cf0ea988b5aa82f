//! The state file: round trip, corruption, truncation, versions, unknown applets.

use ykt_card::{
    AppletFactory, Atr, Card, MalformedState, STATE_MAGIC, STATE_VERSION, SeededRandom, StateError,
};

use crate::support::{self, AID_A, AID_B, Factory, dump, ok, select};

fn load(bytes: &[u8]) -> Result<Card, StateError> {
    Card::load_state(
        bytes,
        Atr::default_t1(),
        Box::new(SeededRandom::new(7)),
        &Factory,
    )
}

/// A card with some history.
fn used_card() -> Card {
    let mut card = support::card();
    select(&mut card, AID_A);
    for k in 1..=5 {
        ok(&mut card, &format!("8010{k:02X}00"));
    }
    ok(&mut card, "00E200C80411223344");
    card
}

fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&body);
    body.extend_from_slice(&crc.to_be_bytes());
    body
}

#[test]
fn round_trip() {
    let mut card = used_card();
    let saved = card.save_state();
    assert_eq!(&saved[..8], b"YKTCARD\0");
    assert_eq!(&saved[..8], &STATE_MAGIC);
    assert_eq!(u16::from_be_bytes([saved[8], saved[9]]), STATE_VERSION);
    let mut loaded = load(&saved).unwrap();
    assert!(!loaded.is_powered());
    assert_eq!(loaded.save_state(), saved);
    assert_eq!(loaded.persistent_writes(), card.persistent_writes());
    loaded.power_on();
    for aid in [AID_A, AID_B] {
        assert_eq!(dump(&mut loaded, aid), dump(&mut card, aid));
    }
    assert_eq!(
        loaded.applets().collect::<Vec<_>>(),
        card.applets().collect::<Vec<_>>()
    );
    // A fresh card round-trips too.
    let blank = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(0)));
    assert_eq!(
        load(&blank.save_state()).unwrap().save_state(),
        blank.save_state()
    );
}

#[test]
fn every_single_byte_corruption_is_rejected() {
    let saved = used_card().save_state();
    for i in 0..saved.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = saved.clone();
            bad[i] ^= flip;
            let err = load(&bad)
                .err()
                .unwrap_or_else(|| panic!("byte {i} ^ {flip:02X} accepted"));
            if i >= 14 {
                assert_eq!(err, StateError::ChecksumMismatch, "byte {i}");
            }
        }
    }
}

#[test]
fn every_truncation_is_rejected() {
    let saved = used_card().save_state();
    for len in 0..saved.len() {
        let err = load(&saved[..len])
            .err()
            .unwrap_or_else(|| panic!("length {len} accepted"));
        assert_eq!(err, StateError::Truncated, "length {len}");
    }
    let mut longer = saved.clone();
    longer.push(0);
    assert_eq!(
        load(&longer).err(),
        Some(StateError::Malformed(MalformedState::TrailingBytes))
    );
}

#[test]
fn foreign_files_and_versions() {
    assert_eq!(
        load(b"PK\x03\x04 not a card").err(),
        Some(StateError::NotAStateFile)
    );
    assert_eq!(load(b"").err(), Some(StateError::Truncated));
    assert_eq!(
        load(b"YKTCARD\x01rest of it").err(),
        Some(StateError::NotAStateFile)
    );
    let saved = used_card().save_state();
    let mut future = saved[..saved.len() - 4].to_vec();
    future[8..10].copy_from_slice(&2u16.to_be_bytes());
    assert_eq!(
        load(&with_crc(future)).err(),
        Some(StateError::UnsupportedVersion(2))
    );
}

#[test]
fn unknown_applet_kind() {
    struct Nothing;
    impl AppletFactory for Nothing {
        fn create(
            &self,
            _: &str,
            _: &ykt_card::Aid,
            _: &[u8],
        ) -> Option<Box<dyn ykt_card::Applet + Send>> {
            None
        }
    }
    let saved = used_card().save_state();
    let err = Card::load_state(
        &saved,
        Atr::default_t1(),
        Box::new(SeededRandom::new(0)),
        &Nothing,
    )
    .err();
    assert_eq!(err, Some(StateError::UnknownApplet("ykt.test".into())));
    assert!(err.unwrap().to_string().contains("ykt.test"));
}

#[test]
fn checksummed_but_malformed() {
    let saved = support::card().save_state();
    let body = &saved[..saved.len() - 4];
    // Offsets: header 14, next namespace 2, writes 8, data length 4.
    let data_len = u32::from_be_bytes(body[24..28].try_into().unwrap()) as usize;
    // A heap entry length pointing past the heap top.
    let mut bad = body.to_vec();
    bad[28 + 16 + 5..28 + 16 + 9].copy_from_slice(&0x00FF_FFFFu32.to_be_bytes());
    assert_eq!(
        load(&with_crc(bad)).err(),
        Some(StateError::Malformed(MalformedState::EepromImage))
    );
    // A data region that is not whole pages.
    let mut bad = body.to_vec();
    bad[24..28].copy_from_slice(&((data_len - 1) as u32).to_be_bytes());
    let err = load(&with_crc(bad)).err().unwrap();
    assert!(matches!(err, StateError::Malformed(_)), "{err:?}");
    // An applet AID of 3 bytes: find the first entry (after the journal and the count).
    let journal_at = 28 + data_len;
    let journal_len =
        u32::from_be_bytes(body[journal_at..journal_at + 4].try_into().unwrap()) as usize;
    let entries = journal_at + 4 + journal_len + 2;
    let kind_len = body[entries + 2] as usize;
    let aid_at = entries + 3 + kind_len;
    let mut bad = body.to_vec();
    bad[aid_at] = 3;
    let err = load(&with_crc(bad)).err().unwrap();
    assert!(matches!(err, StateError::Malformed(_)), "{err:?}");
    // A namespace beyond the counter.
    let mut bad = body.to_vec();
    bad[entries..entries + 2].copy_from_slice(&0xFFFFu16.to_be_bytes());
    assert_eq!(
        load(&with_crc(bad)).err(),
        Some(StateError::Malformed(MalformedState::NamespaceOutOfRange))
    );
}
