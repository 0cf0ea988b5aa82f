//! Round trips: encode then decode gives the value back, for every structure, over random field
//! values; the generator's output always verifies.

use proptest::prelude::*;
use ykt_crypto::Sm2PrivateKey;
use ykt_qr::issuer::{self, Issuer, Terms};
use ykt_qr::testing::{self, TestRng};
use ykt_qr::{
    Authorisation, Expiry, IssuerCertificate, QrCode, RootKeyEntry, RootKeyRecord, SignatureField,
    Version,
};

use crate::common::{code, example, verifier};

fn expiry() -> impl Strategy<Value = Expiry> {
    (1u8..=12, 0u8..=99).prop_map(|(m, y)| Expiry::new(m, y).unwrap())
}

fn certificate() -> impl Strategy<Value = IssuerCertificate> {
    (
        any::<[u8; 4]>(),
        any::<u8>(),
        any::<[u8; 4]>(),
        expiry(),
        any::<[u8; 3]>(),
        any::<u8>(),
        (2u8..=3, any::<[u8; 32]>()),
        prop::collection::vec(any::<u8>(), 64),
    )
        .prop_map(
            |(service_id, ca_index, issuer_id, expiry, serial, param, (p, x), sig)| {
                let mut public_key = [0u8; 33];
                public_key[0] = p;
                public_key[1..].copy_from_slice(&x);
                IssuerCertificate {
                    service_id,
                    ca_index,
                    issuer_id,
                    expiry,
                    serial,
                    curve_parameter_id: param,
                    public_key,
                    signature: sig.try_into().unwrap(),
                }
            },
        )
}

fn signature_field() -> impl Strategy<Value = SignatureField> {
    (any::<u8>(), prop::collection::vec(any::<u8>(), 64)).prop_map(|(tag, s)| SignatureField {
        tag,
        signature: s.try_into().unwrap(),
    })
}

fn qr_code() -> impl Strategy<Value = QrCode> {
    (
        0x80u8..=0xFF,
        certificate(),
        (
            any::<[u8; 16]>(),
            any::<[u8; 10]>(),
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            0u32..=0xFF_FFFF,
        ),
        ((2u8..=3, any::<[u8; 32]>()), any::<u32>(), any::<u16>()),
        prop::collection::vec(any::<u8>(), 0..=32),
        signature_field(),
        any::<u32>(),
        signature_field(),
    )
        .prop_map(
            |(
                v,
                certificate,
                (pay, user, org, platform, kind, limit),
                ((p, x), exp, validity),
                data,
                sig_b,
                generated,
                sig_c,
            )| {
                let mut user_public_key = [0u8; 33];
                user_public_key[0] = p;
                user_public_key[1..].copy_from_slice(&x);
                QrCode {
                    authorisation: Authorisation {
                        version: Version::new(v).unwrap(),
                        certificate,
                        body: ykt_qr::CodeBody {
                            payment_account: pay,
                            user_account: user,
                            org_code: org,
                            platform_id: platform,
                            account_type: kind,
                            limit,
                            user_public_key,
                            authorisation_expiry: exp,
                            validity,
                            issuer_data: data,
                        },
                        issuer_signature: sig_b,
                    },
                    generation_time: generated,
                    user_signature: sig_c,
                }
            },
        )
}

proptest! {
    #[test]
    fn codes_round_trip(code in qr_code()) {
        let bytes = code.encode();
        prop_assert_eq!(bytes.len(), 332 + code.authorisation.body.issuer_data.len());
        prop_assert_eq!(&QrCode::decode(&bytes).unwrap(), &code);
        let blob = code.authorisation.encode();
        prop_assert_eq!(&blob[..], &bytes[..blob.len()]);
        prop_assert_eq!(&Authorisation::decode(&blob).unwrap(), &code.authorisation);
    }

    #[test]
    fn certificates_round_trip(cert in certificate()) {
        let bytes = cert.encode();
        prop_assert_eq!(&bytes[6..53], &cert.signed_bytes()[..]);
        prop_assert_eq!(IssuerCertificate::decode(&bytes).unwrap(), cert);
    }

    #[test]
    fn root_key_records_round_trip(
        service_id in any::<[u8; 4]>(),
        index in any::<u8>(),
        expiry in expiry(),
        parameter_id in any::<u8>(),
        key in prop::collection::vec(any::<u8>(), 64),
        sig in prop::collection::vec(any::<u8>(), 64),
        version in 0x80u8..=0xFF,
    ) {
        let record = RootKeyRecord {
            service_id,
            index,
            expiry,
            parameter_id,
            public_key: key.try_into().unwrap(),
            signature: sig.try_into().unwrap(),
        };
        prop_assert_eq!(RootKeyRecord::decode(&record.encode()).unwrap(), record.clone());
        let entry = RootKeyEntry { version: Version::new(version).unwrap(), record };
        prop_assert_eq!(RootKeyEntry::decode(&entry.encode()).unwrap(), entry);
    }

    #[test]
    fn expiry_bcd_round_trips(e in expiry()) {
        prop_assert_eq!(Expiry::from_bcd(e.to_bcd()).unwrap(), e);
    }
}

#[test]
fn expiry_ends_at_the_first_second_of_the_next_month() {
    // 12/30 ends at 2031-01-01T00:00Z; 02/28 at 2028-03-01 (a leap year).
    let dec30 = Expiry::new(12, 30).unwrap();
    assert_eq!(dec30.end(), 1_924_992_000);
    assert!(!dec30.has_passed(1_924_991_999));
    assert!(dec30.has_passed(1_924_992_000));
    assert_eq!(Expiry::new(2, 28).unwrap().end(), 1_835_481_600);
    assert_eq!(Expiry::new(11, 25).unwrap().end(), 1_764_547_200);
    assert!(Expiry::from_bcd([0x13, 0x30]).is_err());
    assert!(Expiry::from_bcd([0x00, 0x30]).is_err());
    assert!(Expiry::from_bcd([0x12, 0x3A]).is_err());
}

#[test]
fn generated_codes_verify_for_many_times_and_terms() {
    for version in [Version::INTEROPERABLE, Version::LOCAL] {
        let ex = example(version);
        let mut v = verifier(&ex);
        for dt in [0u32, 1, 59, 1000, 50_000] {
            let t = testing::GENERATION_TIME + dt;
            let bytes = code(&ex, t).encode();
            let accepted = v.verify(&bytes, 2000, u64::from(t)).unwrap();
            assert_eq!(accepted.code.encode(), bytes);
            assert_eq!(accepted.fare, 2000);
        }
    }
    // N from 0 to 32.
    let ex = example(Version::INTEROPERABLE);
    let mut rng = TestRng::new(77);
    for n in [0usize, 1, 16, 31, 32] {
        let terms = Terms {
            issuer_data: vec![0xA5; n],
            ..testing::terms()
        };
        let auth = issuer::authorise(&ex.issuer, ex.user.public_key(), &terms, &mut rng).unwrap();
        let bytes = ykt_qr::wallet::generate(&auth, &ex.user, testing::GENERATION_TIME, &mut rng)
            .unwrap()
            .encode();
        assert_eq!(bytes.len(), 332 + n);
        assert_eq!(u16::from_be_bytes([bytes[1], bytes[2]]) as usize, 329 + n);
        verifier(&ex)
            .verify(&bytes, 1, u64::from(testing::GENERATION_TIME))
            .unwrap();
    }
}

#[test]
fn the_generator_refuses_what_it_cannot_encode() {
    let ex = example(Version::INTEROPERABLE);
    let mut rng = TestRng::new(3);
    let long = Terms {
        issuer_data: vec![0; 33],
        ..testing::terms()
    };
    assert_eq!(
        issuer::authorise(&ex.issuer, ex.user.public_key(), &long, &mut rng),
        Err(ykt_qr::Error::IssuerDataTooLong(33))
    );
    let big = Terms {
        limit: 0x0100_0000,
        ..testing::terms()
    };
    assert!(matches!(
        issuer::authorise(&ex.issuer, ex.user.public_key(), &big, &mut rng),
        Err(ykt_qr::Error::ValueOutOfRange { .. })
    ));
    // A device key other than field 10's, and an issuer key other than the certificate's.
    let other = Sm2PrivateKey::from_bytes(&testing::ISSUER_D).unwrap();
    assert!(matches!(
        ykt_qr::wallet::generate(
            &ex.authorisation,
            &other,
            testing::GENERATION_TIME,
            &mut rng
        ),
        Err(ykt_qr::Error::KeyMismatch(_))
    ));
    let user = Sm2PrivateKey::from_bytes(&testing::USER_D).unwrap();
    assert!(matches!(
        Issuer::new(
            user,
            ex.issuer.certificate().clone(),
            Version::INTEROPERABLE
        ),
        Err(ykt_qr::Error::KeyMismatch(_))
    ));
}

#[test]
fn secrets_do_not_print() {
    let ex = example(Version::INTEROPERABLE);
    let debug = format!("{ex:?}");
    for d in [testing::ROOT_D, testing::ISSUER_D, testing::USER_D] {
        assert!(!debug.to_lowercase().contains(&hex::encode(d)));
    }
    assert!(debug.contains("[redacted]"));
}

#[test]
fn the_blob_counts_the_completed_code() {
    let ex = example(Version::INTEROPERABLE);
    let mut blob = ex.authorisation.encode();
    assert_eq!(blob.len(), 263 + 32);
    assert_eq!(u16::from_be_bytes([blob[1], blob[2]]), 329 + 32);
    blob[2] ^= 0x01;
    assert_eq!(
        Authorisation::decode(&blob),
        Err(ykt_qr::DecodeError::DataLength {
            declared: 360,
            actual: 361
        })
    );
}
