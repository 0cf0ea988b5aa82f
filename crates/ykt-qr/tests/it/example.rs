//! The brief's worked example (qr-code.md §6), reproduced.
//!
//! The brief's signatures use nonces derived from labels; ours draw them from a seeded RNG, so
//! our codes equal the brief's in every byte except the r ‖ s of the three signatures, and both
//! verify.

use ykt_crypto::{DEFAULT_SM2_ID, Sm2PrivateKey, Sm2PublicKey, Sm2Signature};
use ykt_qr::testing::{self, GENERATION_TIME, TestRng};
use ykt_qr::{Field, QrCode, Rejection, RootKeyRecord, Verifier, VerifierConfig, Version, ids};

use crate::common::{code, example, unhex, verifier};

pub const CODE_80: &str = testing::CODE_80_HEX;

pub const CODE_81: &str = testing::CODE_81_HEX;

pub const ROOT_RECORD: &str = testing::ROOT_RECORD_HEX;

/// A verifier holding the brief's own root key record.
pub fn brief_verifier() -> Verifier {
    let record = RootKeyRecord::decode(&unhex(ROOT_RECORD)).unwrap();
    let mut v = Verifier::new(VerifierConfig::default());
    v.add_root_key(Version::INTEROPERABLE, &record).unwrap();
    v.add_root_key(Version::LOCAL, &record).unwrap();
    v.allow_issuer(ykt_qr::verify::WhitelistEntry {
        org_code: testing::ORG_CODE,
        platform_id: testing::PLATFORM_ID,
        ticket_type: testing::TICKET_TYPE,
    });
    v.allow_local_org(testing::ORG_CODE);
    v
}

const NOW: u64 = GENERATION_TIME as u64 + 10;

#[test]
fn keys_match_the_brief() {
    let root = Sm2PrivateKey::from_bytes(&testing::ROOT_D).unwrap();
    let record = RootKeyRecord::decode(&unhex(ROOT_RECORD)).unwrap();
    assert_eq!(root.public_key().to_bytes()[1..], record.public_key);
    assert_eq!(
        record.public_key_checked().unwrap(),
        *root.public_key(),
        "the record's self-signature verifies"
    );
    let code = QrCode::decode(&unhex(CODE_80)).unwrap();
    let issuer = Sm2PrivateKey::from_bytes(&testing::ISSUER_D).unwrap();
    let user = Sm2PrivateKey::from_bytes(&testing::USER_D).unwrap();
    assert_eq!(
        ykt_qr::compress_public_key(issuer.public_key()),
        code.authorisation.certificate.public_key
    );
    assert_eq!(
        ykt_qr::compress_public_key(user.public_key()),
        code.authorisation.body.user_public_key
    );
}

/// The private keys are d = (SM3(label) mod (n − 1)) + 1.
#[test]
fn keys_derive_from_their_labels() {
    // n − 1 of the SM2 curve, big-endian.
    let n_minus_1 = unhex("fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54122");
    for (label, d) in [
        ("jtqr-example-root-CA", testing::ROOT_D),
        ("jtqr-example-issuer", testing::ISSUER_D),
        ("jtqr-example-user", testing::USER_D),
    ] {
        let mut h = ykt_crypto::sm3(label.as_bytes()).to_vec();
        // h < 2^256 < 2 (n − 1), so one subtraction reduces it.
        if h.as_slice() >= n_minus_1.as_slice() {
            h = sub(&h, &n_minus_1);
        }
        let mut one = vec![0u8; 32];
        one[31] = 1;
        assert_eq!(add(&h, &one), d.to_vec(), "{label}");
    }
}

fn sub(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let v = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(v < 0);
        out[i] = v.rem_euclid(256) as u8;
    }
    out
}

fn add(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        carry = v >> 8;
        out[i] = v as u8;
    }
    out
}

#[test]
fn the_brief_codes_verify() {
    for hex in [CODE_80, CODE_81] {
        let bytes = unhex(hex);
        assert_eq!(bytes.len(), 364);
        let accepted = brief_verifier().verify(&bytes, 200, NOW).unwrap();
        assert_eq!(
            accepted.code.encode(),
            bytes,
            "decode then encode is identity"
        );
    }
    let accepted = brief_verifier().verify(&unhex(CODE_80), 200, NOW).unwrap();
    assert_eq!(accepted.ticket_type, Some(testing::TICKET_TYPE));
    let local = brief_verifier().verify(&unhex(CODE_81), 200, NOW).unwrap();
    assert_eq!(local.ticket_type, None);
}

#[test]
fn the_brief_fields_decode() {
    let code = QrCode::decode(&unhex(CODE_80)).unwrap();
    let a = &code.authorisation;
    assert_eq!(a.version, Version::INTEROPERABLE);
    assert_eq!(a.certificate.ca_index, 0x01);
    assert_eq!(a.certificate.issuer_id, [0x99, 0x99, 0x00, 0x01]);
    assert_eq!(a.certificate.expiry.to_bcd(), [0x12, 0x30]);
    assert_eq!(a.certificate.serial, [0, 0, 1]);
    assert_eq!(a.certificate.service_id, ykt_qr::cert::SERVICE_ID);
    assert_eq!(&a.body.payment_account, b"PAY0000000000001");
    assert_eq!(a.body.user_account, testing::USER_ACCOUNT);
    assert_eq!(a.body.org_code, testing::ORG_CODE);
    assert_eq!(a.body.platform_id, testing::PLATFORM_ID);
    assert_eq!(a.body.account_type, 0x01);
    assert_eq!(a.body.limit, 2000);
    assert_eq!(a.body.authorisation_expiry, 1_764_086_400);
    assert_eq!(a.body.validity, 60);
    assert_eq!(a.body.issuer_data, (0u8..32).collect::<Vec<_>>());
    assert_eq!(a.issuer_signature.tag, 0x15);
    assert_eq!(code.generation_time, 1_764_000_000);
    assert_eq!(code.user_signature.tag, 0x15);
}

#[test]
fn our_generator_gives_the_brief_bytes_but_the_signatures() {
    for (version, hex) in [(Version::INTEROPERABLE, CODE_80), (Version::LOCAL, CODE_81)] {
        let brief = unhex(hex);
        let ours = code(&example(version), GENERATION_TIME).encode();
        assert_eq!(ours.len(), brief.len());
        let sig_a = 3 + 53..3 + 117;
        let n = 32;
        let sig_b = Field::IssuerSignature.range(n).start + 1..Field::IssuerSignature.range(n).end;
        let sig_c = Field::UserSignature.range(n).start + 1..Field::UserSignature.range(n).end;
        for i in 0..brief.len() {
            if sig_a.contains(&i) || sig_b.contains(&i) || sig_c.contains(&i) {
                continue;
            }
            assert_eq!(ours[i], brief[i], "{version:?} byte {i}");
        }
        brief_verifier().verify(&ours, 200, NOW).unwrap();
    }
}

#[test]
fn check_values_z_and_e() {
    let code = QrCode::decode(&unhex(CODE_80)).unwrap();
    let user = Sm2PublicKey::from_sec1_bytes(&code.authorisation.body.user_public_key).unwrap();
    assert_eq!(
        hex::encode(user.identity_hash(DEFAULT_SM2_ID).unwrap()),
        "df08fde893da43565d57bb22a8256bf831354c656f13bf09f1ab575fea0bb8bb"
    );
    assert_eq!(
        hex::encode(
            user.message_hash(DEFAULT_SM2_ID, &code.user_signed_bytes())
                .unwrap()
        ),
        "4c8a873e325d2f7dab0d1748df5d5d5ff4252e002bd40368578cc466f482a589"
    );
}

#[test]
fn the_81_ids_are_the_briefs() {
    let code = QrCode::decode(&unhex(CODE_81)).unwrap();
    let a = &code.authorisation;
    assert_eq!(
        ids::certificate_id(a.version, &a.certificate),
        unhex("0101000001")
    );
    assert_eq!(
        ids::issuer_id(a.version, &a.body),
        unhex("9999000199990002")
    );
    assert_eq!(
        ids::user_id(a.version, &a.body),
        unhex("9999000112345678901F")
    );
}

// The brief's negative tests.

#[test]
fn a_bit_flipped_in_field_16_fails_signature_c() {
    let mut bytes = unhex(CODE_80);
    bytes[Field::GenerationTime.range(32).end - 1] ^= 0x01;
    assert_eq!(
        brief_verifier().verify(&bytes, 200, NOW),
        Err(Rejection::UserSignature)
    );
}

#[test]
fn the_81_user_signature_fails_under_the_default_id() {
    let code = QrCode::decode(&unhex(CODE_81)).unwrap();
    let user = Sm2PublicKey::from_sec1_bytes(&code.authorisation.body.user_public_key).unwrap();
    let sig = Sm2Signature::from_bytes(&code.user_signature.signature).unwrap();
    let msg = code.user_signed_bytes();
    assert!(user.verify(DEFAULT_SM2_ID, &msg, &sig).is_err());
    user.verify(&testing::USER_ACCOUNT, &msg, &sig).unwrap();
}

#[test]
fn a_code_dated_120_s_ahead_fails_the_skew_check() {
    // The terminal's clock is 120 s behind the code's generation time.
    let now = u64::from(GENERATION_TIME) - 120;
    assert_eq!(
        brief_verifier().verify(&unhex(CODE_80), 200, now),
        Err(Rejection::NotYetValid)
    );
}

#[test]
fn the_same_code_twice_is_a_replay() {
    let mut v = brief_verifier();
    v.verify(&unhex(CODE_80), 200, NOW).unwrap();
    assert_eq!(
        v.verify(&unhex(CODE_80), 200, NOW + 1),
        Err(Rejection::Replay)
    );
    // A fresh verifier with the generator's own record also accepts it.
    verifier(&example(Version::INTEROPERABLE))
        .verify(&unhex(CODE_80), 200, NOW)
        .unwrap();
    let _ = TestRng::new(0);
}
