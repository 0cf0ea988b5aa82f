//! Properties: encode/parse round trips and total parsers.

use proptest::prelude::*;
use ykt_apdu::tlv::{self, Tlv};
use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};

/// Data lengths around the short/extended boundaries.
fn data_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        1usize..=8,
        250usize..=260,
        Just(255usize),
        Just(256usize),
        1usize..=700
    ]
}

fn le() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        Just(None),
        (1usize..=256).prop_map(Some),
        Just(Some(256)),
        Just(Some(257)),
        Just(Some(65_536)),
        (1usize..=65_536).prop_map(Some),
    ]
}

fn command() -> impl Strategy<Value = CommandApdu> {
    (any::<[u8; 4]>(), data_len(), le()).prop_flat_map(|(h, n, le)| {
        proptest::collection::vec(any::<u8>(), n).prop_map(move |data| CommandApdu {
            cla: h[0],
            ins: h[1],
            p1: h[2],
            p2: h[3],
            data,
            le,
        })
    })
}

/// A BER-TLV tag value of 1 to 3 bytes with a valid encoding.
fn tag() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u8>()
            .prop_filter("single-byte", |b| b & 0x1F != 0x1F)
            .prop_map(u32::from),
        (any::<u8>(), 0u8..0x80).prop_map(|(a, b)| (u32::from(a | 0x1F) << 8) | u32::from(b)),
        (any::<u8>(), 0x80u8..=0xFF, 0u8..0x80)
            .prop_map(|(a, b, c)| (u32::from(a | 0x1F) << 16) | (u32::from(b) << 8) | u32::from(c)),
    ]
}

/// Sets or clears bit 6 of the first tag byte.
fn set_constructed(tag: u32, constructed: bool) -> u32 {
    let bytes = (32 - tag.leading_zeros()).div_ceil(8).max(1);
    let bit = 0x20u32 << (8 * (bytes - 1));
    if constructed { tag | bit } else { tag & !bit }
}

fn tlv_tree() -> impl Strategy<Value = Tlv> {
    let leaf = (tag(), proptest::collection::vec(any::<u8>(), 0..300))
        .prop_map(|(t, v)| Tlv::new(set_constructed(t, false), v));
    leaf.prop_recursive(3, 24, 4, |inner| {
        (tag(), proptest::collection::vec(inner, 0..4))
            .prop_map(|(t, children)| Tlv::constructed(set_constructed(t, true), &children))
    })
}

proptest! {
    #[test]
    fn command_round_trip(cmd in command()) {
        let bytes = cmd.to_bytes();
        let parsed = CommandApdu::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &cmd);
        prop_assert_eq!(parsed.is_extended(), bytes.len() > 4 && bytes[4] == 0 && bytes.len() > 5);
        let expected_case = match (cmd.data.is_empty(), cmd.le.is_some()) {
            (true, false) => 1, (true, true) => 2, (false, false) => 3, (false, true) => 4,
        };
        prop_assert_eq!(parsed.case(), expected_case);
    }

    #[test]
    fn command_parse_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(cmd) = CommandApdu::parse(&bytes) {
            // Whatever parses re-encodes into something that parses to the same command.
            prop_assert_eq!(CommandApdu::parse(&cmd.to_bytes()).unwrap(), cmd);
        }
    }

    #[test]
    fn command_parse_structured_noise(h in any::<[u8; 4]>(), b1 in prop_oneof![Just(0u8), any::<u8>()],
                                      rest in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = h.to_vec();
        bytes.push(b1);
        bytes.extend(rest);
        let _ = CommandApdu::parse(&bytes);
    }

    #[test]
    fn response_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300), sw in any::<u16>()) {
        let r = ResponseApdu::new(data, StatusWord(sw));
        prop_assert_eq!(ResponseApdu::parse(&r.to_bytes()).unwrap(), r);
    }

    #[test]
    fn tlv_round_trip(objects in proptest::collection::vec(tlv_tree(), 0..4)) {
        let bytes: Vec<u8> = objects.iter().flat_map(Tlv::to_bytes).collect();
        let parsed = tlv::parse_all(&bytes).unwrap();
        prop_assert_eq!(&parsed, &objects);
        for object in &parsed {
            if object.is_constructed() {
                let children = object.children().unwrap();
                let again: Vec<u8> = children.iter().flat_map(Tlv::to_bytes).collect();
                prop_assert_eq!(again, object.value.clone());
            }
            prop_assert_eq!(tlv::find(&bytes, object.tag.value()).is_some(), true);
        }
    }

    #[test]
    fn tlv_parse_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..400), tag in any::<u32>()) {
        if let Ok(objects) = tlv::parse_all(&bytes) {
            for o in &objects {
                let _ = o.children();
            }
        }
        let _ = tlv::find(&bytes, tag);
    }
}
