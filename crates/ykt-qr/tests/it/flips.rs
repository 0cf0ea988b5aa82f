//! Every field and every signature flipped: the code is refused, for the right reason.

use ykt_qr::testing::GENERATION_TIME;
use ykt_qr::{CertificateField, DecodeError, Field, Rejection, Version};

use crate::common::{code, example, verifier};

const NOW: u64 = GENERATION_TIME as u64 + 10;

fn verdict(version: Version, mutate: impl Fn(&mut Vec<u8>)) -> Result<(), Rejection> {
    let ex = example(version);
    let mut bytes = code(&ex, GENERATION_TIME).encode();
    mutate(&mut bytes);
    verifier(&ex).verify(&bytes, 100, NOW).map(|_| ())
}

/// The last byte of each field XOR 01 (for the signature fields: the last byte of s), so that
/// fixed header bytes are left alone and each field's coverage by the signatures shows.
#[test]
fn the_last_byte_of_every_field_flipped() {
    let n = 32;
    for version in [Version::INTEROPERABLE, Version::LOCAL] {
        for field in Field::ALL {
            let at = field.range(n).end - 1;
            let got = verdict(version, |b| b[at] ^= 0x01);
            let want = match field {
                Field::Version if version == Version::LOCAL => {
                    // 81 becomes 80: the default IDs, so signature A fails.
                    Err(Rejection::CertificateSignature)
                }
                Field::Version => Err(Rejection::CertificateSignature),
                Field::DataLength => Err(Rejection::Malformed(DecodeError::DataLength {
                    declared: 0x0168,
                    actual: 361,
                })),
                // The last byte of the certificate is in signature A.
                Field::Certificate => Err(Rejection::CertificateSignature),
                // 20 becomes 21: above the 32-byte maximum.
                Field::IssuerDataLength => {
                    Err(Rejection::Malformed(DecodeError::IssuerDataLength(0x21)))
                }
                Field::IssuerSignature => Err(Rejection::IssuerSignature),
                Field::GenerationTime | Field::UserSignature => Err(Rejection::UserSignature),
                _ => Err(Rejection::IssuerSignature),
            };
            assert_eq!(got, want, "{version:?} field {}", field.number());
        }
    }
}

/// Every byte of the code XOR 01: nothing but the tag byte of field 17 leaves it acceptable.
#[test]
fn every_byte_flipped_is_refused_except_the_user_signature_tag() {
    let ex = example(Version::INTEROPERABLE);
    let good = code(&ex, GENERATION_TIME).encode();
    let tag = Field::UserSignature.range(32).start;
    for at in 0..good.len() {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        let got = verifier(&ex).verify(&bytes, 100, NOW);
        if at == tag {
            assert!(got.is_ok(), "the tag of field 17 is not checked");
        } else {
            assert!(got.is_err(), "byte {at} flipped was accepted");
        }
    }
}

#[test]
fn certificate_fields_flipped() {
    let at = Field::Certificate.range(32).start;
    let cases: &[(usize, Rejection)] = &[
        (
            0,
            Rejection::Malformed(DecodeError::Certificate {
                field: CertificateField::RecordHeader,
                value: 0x25,
            }),
        ),
        // Bytes 1–5 are not in signature A for version 80, but they are in signature B.
        (1, Rejection::IssuerSignature),
        (
            5,
            Rejection::UnknownRootKey {
                version: 0x80,
                index: 0x00,
            },
        ),
        (
            6,
            Rejection::Malformed(DecodeError::Certificate {
                field: CertificateField::Format,
                value: 0x13,
            }),
        ),
        (7, Rejection::CertificateSignature),
        (
            11,
            Rejection::Malformed(DecodeError::Certificate {
                field: CertificateField::Expiry,
                value: 0x13,
            }),
        ),
        (12, Rejection::CertificateSignature),
        (13, Rejection::CertificateSignature),
        (
            16,
            Rejection::Malformed(DecodeError::Certificate {
                field: CertificateField::SignatureAlgorithm,
                value: 0x05,
            }),
        ),
        (
            17,
            Rejection::Malformed(DecodeError::Certificate {
                field: CertificateField::EncryptionAlgorithm,
                value: 0x05,
            }),
        ),
        (18, Rejection::CertificateSignature),
        (
            19,
            Rejection::Malformed(DecodeError::Certificate {
                field: CertificateField::PublicKeyLength,
                value: 0x20,
            }),
        ),
        (20, Rejection::CertificateSignature),
        (21, Rejection::CertificateSignature),
        (53, Rejection::CertificateSignature),
        (116, Rejection::CertificateSignature),
    ];
    for (offset, want) in cases {
        let got = verdict(Version::INTEROPERABLE, |b| b[at + offset] ^= 0x01);
        assert_eq!(got, Err(*want), "certificate byte {offset}");
    }
    // For version 81 the service id and index are in the ID of signature A.
    assert_eq!(
        verdict(Version::LOCAL, |b| b[at + 1] ^= 0x01),
        Err(Rejection::CertificateSignature)
    );
}

#[test]
fn each_signature_flipped() {
    let n = 32;
    let a = Field::Certificate.range(n).start + 53;
    let b = Field::IssuerSignature.range(n).start + 1;
    let c = Field::UserSignature.range(n).start + 1;
    for version in [Version::INTEROPERABLE, Version::LOCAL] {
        for (start, want) in [
            (a, Rejection::CertificateSignature),
            (b, Rejection::IssuerSignature),
            (c, Rejection::UserSignature),
        ] {
            for offset in [0, 15, 31, 32, 47, 63] {
                for bit in [0x01, 0x80] {
                    let got = verdict(version, |bytes| bytes[start + offset] ^= bit);
                    assert_eq!(
                        got,
                        Err(want),
                        "{version:?} at {start}+{offset} bit {bit:#x}"
                    );
                }
            }
            // r = 0 and s = 0 are out of range: the signature does not verify either.
            let got = verdict(version, |bytes| bytes[start..start + 32].fill(0));
            assert_eq!(got, Err(want));
            let got = verdict(version, |bytes| bytes[start..start + 64].fill(0xFF));
            assert_eq!(got, Err(want));
        }
    }
}

#[test]
fn the_user_public_key_replaced_by_a_non_point_is_refused() {
    // A valid-looking key of the issuer is refused by signature B before the key is parsed;
    // a code whose issuer really signed a non-point is refused at signature C.
    let got = verdict(Version::INTEROPERABLE, |b| {
        let r = Field::UserPublicKey.range(32);
        b[r.start + 1..r.end].fill(0xFF);
    });
    assert_eq!(got, Err(Rejection::IssuerSignature));
}

#[test]
fn field_13_disagreeing_with_the_length_is_refused() {
    let at = Field::IssuerDataLength.range(0).start;
    let got = verdict(Version::INTEROPERABLE, |b| b[at] = 31);
    assert_eq!(
        got,
        Err(Rejection::Malformed(DecodeError::Length {
            structure: ykt_qr::Structure::Code,
            expected: 363,
            actual: 364,
        }))
    );
}
