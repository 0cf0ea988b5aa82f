//! BER-TLV vectors (tests/data/tlv_cases.txt) and helpers.

use ykt_apdu::tlv::{self, Tag, Tlv, TlvError};

use crate::{fields, vectors};

fn error_name(e: TlvError) -> &'static str {
    match e {
        TlvError::Truncated => "Truncated",
        TlvError::TagTooLong => "TagTooLong",
        TlvError::IndefiniteLength => "IndefiniteLength",
        TlvError::LengthTooLong => "LengthTooLong",
        TlvError::NotConstructed => "NotConstructed",
        _ => "unknown",
    }
}

#[test]
fn tlv_vectors() {
    let mut seen = 0;
    for (line, bytes, expect) in vectors("tlv_cases.txt") {
        let f = fields(&expect);
        let parsed = tlv::parse_all(&bytes);
        if let Some(err) = f.get("error") {
            assert_eq!(
                error_name(parsed.expect_err(&format!("line {line}"))),
                err,
                "line {line}"
            );
            seen += 1;
            continue;
        }
        let objects = parsed.unwrap_or_else(|e| panic!("line {line}: {e}"));
        assert_eq!(objects.len().to_string(), f["ok"], "line {line}");
        let first = &objects[0];
        assert_eq!(
            hex::encode_upper(first.tag.to_bytes()),
            f["tag"],
            "line {line}: tag"
        );
        assert_eq!(first.value.len().to_string(), f["len"], "line {line}: len");
        let reencoded: Vec<u8> = objects.iter().flat_map(Tlv::to_bytes).collect();
        let minimal = f
            .get("reencode")
            .map(|r| hex::decode(r).unwrap())
            .unwrap_or(bytes);
        assert_eq!(reencoded, minimal, "line {line}: minimal re-encoding");
        seen += 1;
    }
    assert!(seen >= 15);
}

#[test]
fn constructed_children_and_find() {
    let fci = Tlv::constructed(
        0x6F,
        &[
            Tlv::new(0x84, hex::decode("A000000632010105").unwrap()),
            Tlv::constructed(
                0xA5,
                &[
                    Tlv::new(0x9F08, vec![0x02]),
                    Tlv::new(0x9F0C, vec![0xAA; 30]),
                ],
            ),
        ],
    );
    let bytes = fci.to_bytes();
    assert_eq!(&bytes[..4], &[0x6F, 0x31, 0x84, 0x08]);
    assert!(fci.is_constructed());
    let children = fci.children().unwrap();
    assert_eq!(children.len(), 2);
    assert_eq!(children[1].children().unwrap()[0].value, [0x02]);
    assert_eq!(children[0].children(), Err(TlvError::NotConstructed));
    assert_eq!(tlv::find(&bytes, 0x9F08).unwrap().value, [0x02]);
    assert_eq!(tlv::find(&bytes, 0x84).unwrap().value.len(), 8);
    assert_eq!(tlv::find(&bytes, 0x9F0C).unwrap().value.len(), 30);
    assert!(tlv::find(&bytes, 0x88).is_none());
    assert!(tlv::find(&[0x6F, 0x05, 0x84], 0x84).is_none());
}

#[test]
fn tags_and_lengths() {
    assert_eq!(Tag::new(0x9F08).to_bytes(), [0x9F, 0x08]);
    assert_eq!(Tag::new(0).to_bytes(), [0x00]);
    assert_eq!(format!("{:?}", Tag::new(0xBF0C)), "Tag(BF0C)");
    assert!(Tag::new(0xBF0C).is_constructed());
    assert!(!Tag::new(0x9F08).is_constructed());
    assert_eq!(Tag::new(0x9F08).class(), 2);
    assert_eq!(Tag::new(0x61).class(), 1);
    assert_eq!(
        Tag::parse(&[0x9F, 0x81, 0x01, 0xFF]),
        Ok((Tag::new(0x9F8101), 3))
    );
    assert_eq!(tlv::encode_length(0x7F), [0x7F]);
    assert_eq!(tlv::encode_length(0x80), [0x81, 0x80]);
    assert_eq!(tlv::encode_length(0x1234), [0x82, 0x12, 0x34]);
    assert_eq!(tlv::encode_length(0x0102_0304), [0x84, 1, 2, 3, 4]);
    assert_eq!(tlv::decode_length(&[0x83, 1, 0, 0]), Ok((0x01_0000, 4)));
    assert_eq!(tlv::decode_length(&[0x80]), Err(TlvError::IndefiniteLength));
}
