//! Properties: arbitrary APDUs never panic the card and always get a plausible status word.

use proptest::prelude::*;
use ykt_card::{Card, CardError};

use crate::support::{self, AID_A};

fn plausible(response: &[u8]) -> bool {
    response.len() >= 2 && matches!(response[response.len() - 2], 0x61..=0x6F | 0x90..=0x9F)
}

/// Commands shaped like the ones the card knows, with random parameters and lengths.
fn apdu() -> impl Strategy<Value = Vec<u8>> {
    let cla = prop_oneof![
        Just(0x00u8),
        Just(0x80),
        Just(0x04),
        Just(0x84),
        any::<u8>()
    ];
    let ins = prop_oneof![
        Just(0xA4u8),
        Just(0xB0),
        Just(0xB2),
        Just(0xD6),
        Just(0xDC),
        Just(0xE2),
        Just(0xC0),
        Just(0x70),
        Just(0x84),
        Just(0x10),
        Just(0x12),
        Just(0x14),
        Just(0x16),
        Just(0x18),
        Just(0x1C),
        Just(0x20),
        Just(0x42),
        any::<u8>()
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..6),
        proptest::collection::vec(any::<u8>(), 0..40),
        (
            1u8..=20,
            proptest::collection::vec(any::<u8>(), 0..=21),
            proptest::option::of(any::<u8>())
        )
            .prop_map(|(lc, mut d, le)| {
                d.truncate(lc as usize);
                let mut out = vec![d.len() as u8];
                out.extend(d);
                out.extend(le);
                out
            }),
        Just(hex::decode("08A000000632010105").unwrap()),
        Just(hex::decode("05A000000632").unwrap()),
    ];
    (cla, ins, any::<u8>(), any::<u8>(), body).prop_map(|(cla, ins, p1, p2, body)| {
        let mut out = vec![cla, ins, p1, p2];
        out.extend(body);
        out
    })
}

fn session() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(
        prop_oneof![apdu(), proptest::collection::vec(any::<u8>(), 0..300)],
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_apdus_get_a_status_word(commands in session()) {
        let mut card = support::card();
        for cmd in &commands {
            let r = card.transmit(cmd).unwrap();
            prop_assert!(plausible(&r), "{} -> {}", hex::encode_upper(cmd), hex::encode_upper(&r));
        }
    }

    #[test]
    fn arbitrary_apdus_with_a_power_cut(commands in session(), tear in 1u64..60) {
        let mut card = support::card();
        card.tear().arm_at(tear);
        for cmd in &commands {
            match card.transmit(cmd) {
                Ok(r) => prop_assert!(plausible(&r)),
                Err(CardError::PowerLost) => {
                    card.power_on();
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
        card.power_on();
        // Whatever happened, the card is consistent: it saves, loads, selects and answers.
        let mut copy: Card = support::clone_card(&card);
        copy.power_on();
        support::dump(&mut copy, AID_A);
        support::dump(&mut card, AID_A);
    }
}
