//! Command and response APDU vectors (tests/data/apdu_cases.txt).

use ykt_apdu::{CommandApdu, ParseError, ResponseApdu, StatusWord};

use crate::{fields, vectors};

fn error_name(e: ParseError) -> &'static str {
    match e {
        ParseError::TooShort { .. } => "TooShort",
        ParseError::LengthMismatch { .. } => "LengthMismatch",
        ParseError::TruncatedExtendedLength => "TruncatedExtendedLength",
        ParseError::ZeroLc => "ZeroLc",
        _ => "unknown",
    }
}

#[test]
fn apdu_case_vectors() {
    let mut seen = 0;
    for (line, bytes, expect) in vectors("apdu_cases.txt") {
        let f = fields(&expect);
        let parsed = CommandApdu::parse(&bytes);
        if let Some(err) = f.get("error") {
            let got = parsed.expect_err(&format!("line {line}: should fail"));
            assert_eq!(error_name(got), err, "line {line}");
            assert!(!got.to_string().is_empty());
            seen += 1;
            continue;
        }
        let cmd = parsed.unwrap_or_else(|e| panic!("line {line}: {e}"));
        assert_eq!(cmd.case().to_string(), f["case"], "line {line}: case");
        assert_eq!(
            cmd.is_extended(),
            f.contains_key("ext"),
            "line {line}: extended"
        );
        let data = f
            .get("data")
            .map(|d| hex::decode(d).unwrap())
            .unwrap_or_default();
        assert_eq!(cmd.data, data, "line {line}: data");
        let le = f.get("le").map(|l| l.parse::<usize>().unwrap());
        assert_eq!(cmd.le, le, "line {line}: le");
        let reencoded = f
            .get("reencode")
            .map(|r| hex::decode(r).unwrap())
            .unwrap_or(bytes.clone());
        assert_eq!(cmd.to_bytes(), reencoded, "line {line}: encoding");
        seen += 1;
    }
    assert!(seen >= 25, "{seen} vectors");
}

#[test]
fn builder_encodings() {
    let select = CommandApdu::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(hex::decode("A000000632010105").unwrap())
        .with_le(256);
    assert_eq!(
        hex::encode_upper(select.to_bytes()),
        "00A4040008A00000063201010500"
    );
    assert_eq!(select.case(), 4);
    // Le 0 means "no Le field".
    let c = CommandApdu::new(0x00, 0x84, 0, 0).with_le(0);
    assert_eq!(c.le, None);
    assert_eq!(c.case(), 1);
    assert_eq!(c.to_bytes(), [0x00, 0x84, 0, 0]);
    // Only the Le forces the extended form.
    let c = CommandApdu::new(0x00, 0xB0, 0, 0).with_le(65_536);
    assert_eq!(c.to_bytes(), [0x00, 0xB0, 0, 0, 0, 0, 0]);
    // Data longer than 255 with a short Le: extended with a two-byte Le.
    let c = CommandApdu::new(0x80, 0xD6, 0, 0)
        .with_data(vec![0xAA; 300])
        .with_le(1);
    let b = c.to_bytes();
    assert_eq!(&b[4..7], &[0x00, 0x01, 0x2C]);
    assert_eq!(&b[b.len() - 2..], &[0x00, 0x01]);
    assert_eq!(CommandApdu::parse(&b).unwrap(), c);
}

#[test]
fn response_apdu() {
    let r = ResponseApdu::parse(&hex::decode("0102039000").unwrap()).unwrap();
    assert_eq!(r.data, [1, 2, 3]);
    assert_eq!(r.sw, StatusWord::SUCCESS);
    assert!(r.is_success());
    assert_eq!(r.to_bytes(), hex::decode("0102039000").unwrap());
    assert_eq!(
        ResponseApdu::parse(&[0x6A, 0x82]).unwrap(),
        ResponseApdu::status(StatusWord::FILE_NOT_FOUND)
    );
    assert_eq!(
        ResponseApdu::parse(&[0x90]),
        Err(ParseError::TooShort { len: 1 })
    );
    assert_eq!(
        ResponseApdu::parse(&[]),
        Err(ParseError::TooShort { len: 0 })
    );
    assert_eq!(
        ResponseApdu::new(vec![0xAB], StatusWord::bytes_remaining(0x10)).to_bytes(),
        [0xAB, 0x61, 0x10]
    );
}
