//! Envelopes: sealing, verifying, tampering, the clock window, RSA, canonical JSON vectors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Value, json};
use ykt_crypto::{RsaPrivateKey, Sm2PrivateKey};
use ykt_envelope::*;

const NOW: i64 = 1_796_169_600_000; // 2026-12-02T08:00:00+08:00

fn sm2(seed: u8) -> Sm2PrivateKey {
    let mut d = [seed; 32];
    d[0] = 0x01;
    Sm2PrivateKey::from_bytes(&d).unwrap()
}

fn header() -> Header {
    Header {
        msg_type: "OpenCardReq".into(),
        msg_no: "3001".into(),
        sender_id: "DEV-0001".into(),
        receiver_id: "SPTSM-330400".into(),
        txn_id: "txn-1".into(),
        request_id: "req-1".into(),
    }
}

fn sealed(signer: &dyn Signer) -> Envelope {
    Envelope::seal(
        &header(),
        &json!({"management": "Authorized", "city_code": "330400", "n": 7}),
        None,
        &[0xA5; 16],
        NOW,
        signer,
    )
    .unwrap()
}

#[test]
fn sm2_round_trip_through_json() {
    let signer = Sm2Signer::new(sm2(7));
    let env = sealed(&signer);
    assert_eq!(env.timestamp, "2026-12-02T08:00:00+08:00");
    assert_eq!(env.sign_alg, SignAlg::Sm2Sm3);
    assert_eq!(env.cert_sn, key_id_sm2(signer.public_key()));
    let back = Envelope::from_slice(&env.to_vec()).unwrap();
    assert_eq!(back, env);
    back.verify(&PeerKey::Sm2(signer.public_key().clone()))
        .unwrap();
    assert_eq!(back.check_time(NOW + 299_000, 300_000).unwrap(), NOW);
    let body: Value = back.body().unwrap();
    assert_eq!(body["city_code"], "330400");
}

#[test]
fn member_order_and_white_space_do_not_matter() {
    let signer = Sm2Signer::new(sm2(7));
    let env = sealed(&signer);
    let value: Value = serde_json::from_slice(&env.to_vec()).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    let back = Envelope::from_slice(&pretty).unwrap();
    back.verify(&PeerKey::Sm2(signer.public_key().clone()))
        .unwrap();
}

#[test]
fn every_member_is_covered() {
    let signer = Sm2Signer::new(sm2(7));
    let key = PeerKey::Sm2(signer.public_key().clone());
    let env = sealed(&signer);
    let original: Value = serde_json::from_slice(&env.to_vec()).unwrap();
    let members: Vec<String> = original.as_object().unwrap().keys().cloned().collect();
    for name in members {
        if name == "sign" {
            continue;
        }
        let mut v = original.clone();
        v[&name] = match &v[&name] {
            Value::String(s) if name == "timestamp" => {
                Value::String(s.replace("08:00:00+", "08:00:01+"))
            }
            Value::String(s) if name == "sign_alg" => Value::String(if s == "SM2-SM3" {
                "RSA2048-SHA256".into()
            } else {
                s.clone()
            }),
            Value::String(s) => Value::String(format!("{s}0")),
            Value::Object(_) => json!({"management": "Delegated", "city_code": "330400", "n": 7}),
            other => panic!("{name}: {other}"),
        };
        let tampered: Envelope = serde_json::from_value(v).unwrap();
        let err = tampered.verify(&key).unwrap_err();
        assert!(
            matches!(
                err,
                EnvelopeError::BadSignature
                    | EnvelopeError::AlgorithmMismatch
                    | EnvelopeError::Version
            ),
            "{name}: {err:?}"
        );
    }
    // An added member is refused before any signature check.
    let mut v = original.clone();
    v["extra"] = json!(1);
    assert!(matches!(
        Envelope::from_slice(&serde_json::to_vec(&v).unwrap()),
        Err(EnvelopeError::Malformed(_))
    ));
}

#[test]
fn another_key_or_a_flipped_signature_is_refused() {
    let signer = Sm2Signer::new(sm2(7));
    let env = sealed(&signer);
    let other = Sm2Signer::new(sm2(8));
    assert_eq!(
        env.verify(&PeerKey::Sm2(other.public_key().clone())),
        Err(EnvelopeError::BadSignature)
    );
    let mut flipped = env.clone();
    let mut sig = flipped.sign.into_bytes();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    flipped.sign = String::from_utf8(sig).unwrap();
    assert_eq!(
        flipped.verify(&PeerKey::Sm2(signer.public_key().clone())),
        Err(EnvelopeError::BadSignature)
    );
    let mut garbage = env;
    garbage.sign = "%%%".into();
    assert_eq!(
        garbage.verify(&PeerKey::Sm2(signer.public_key().clone())),
        Err(EnvelopeError::BadSignature)
    );
}

#[test]
fn the_clock_window_is_both_ways() {
    let env = sealed(&Sm2Signer::new(sm2(7)));
    assert_eq!(
        env.check_time(NOW + 300_001, 300_000),
        Err(EnvelopeError::Stale)
    );
    assert_eq!(
        env.check_time(NOW - 300_001, 300_000),
        Err(EnvelopeError::Stale)
    );
    assert_eq!(EnvelopeError::Stale.code(), Code::Stale);
    let mut bad = env;
    bad.timestamp = "yesterday".into();
    assert_eq!(bad.check_time(NOW, 300_000), Err(EnvelopeError::Timestamp));
}

#[test]
fn replies_swap_parties_and_number_plus_one() {
    let client = Sm2Signer::new(sm2(7));
    let server = Sm2Signer::new(sm2(9));
    let req = sealed(&client);
    let resp = req
        .reply(
            "OpenCardResp",
            &json!({"ok": true}),
            ResultInfo::ok(),
            &[1; 16],
            NOW + 5,
            &server,
        )
        .unwrap();
    assert_eq!(resp.msg_no, "3002");
    assert_eq!(resp.sender_id, req.receiver_id);
    assert_eq!(resp.receiver_id, req.sender_id);
    assert_eq!(
        (resp.txn_id.as_str(), resp.request_id.as_str()),
        ("txn-1", "req-1")
    );
    assert_eq!(resp.code(), Some(Code::Ok));
    resp.verify(&PeerKey::Sm2(server.public_key().clone()))
        .unwrap();
    assert_eq!(response_no("0999"), "1000");
}

#[test]
fn rsa_2048_signs_and_an_sm2_key_does_not_verify_it() {
    let mut rng = TestRng(5);
    let key = RsaPrivateKey::generate(&mut rng, 2048).unwrap();
    let public = key.public_key().clone();
    let signer = RsaSigner::new(key).unwrap();
    let env = sealed(&signer);
    assert_eq!(env.sign_alg, SignAlg::Rsa2048Sha256);
    env.verify(&PeerKey::Rsa(public)).unwrap();
    let sm2_key = Sm2Signer::new(sm2(7));
    assert_eq!(
        env.verify(&PeerKey::Sm2(sm2_key.public_key().clone())),
        Err(EnvelopeError::AlgorithmMismatch)
    );
}

#[test]
fn short_nonces_and_fractions_are_refused() {
    let signer = Sm2Signer::new(sm2(7));
    assert!(Envelope::seal(&header(), &json!({}), None, &[1; 7], NOW, &signer).is_err());
    assert_eq!(
        Envelope::seal(&header(), &json!({"x": 1.5}), None, &[1; 8], NOW, &signer).unwrap_err(),
        EnvelopeError::NotCanonical
    );
}

/// RFC 8785 §3.2.3 ordering example (names sorted by UTF-16 code units) and §3.2.2.2 escapes.
#[test]
fn jcs_vectors() {
    let v: Value = serde_json::from_str(
        r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
    )
    .unwrap();
    let out = String::from_utf8(jcs::to_vec(&v).unwrap()).unwrap();
    let names: Vec<&str> = vec![
        "\r",
        "1",
        "\u{80}",
        "\u{f6}",
        "\u{20ac}",
        "\u{1f600}",
        "\u{fb33}",
    ];
    let mut at = 0;
    for n in names {
        let needle = serde_json::to_string(n).unwrap();
        let pos = out[at..]
            .find(&needle)
            .unwrap_or_else(|| panic!("{n:?} in {out}"))
            + at;
        at = pos + needle.len();
    }
    let s: Value = serde_json::from_str(r#"{"a":"\u0000\u001f\"\\\/\b\f\n\r\t\u007f"}"#).unwrap();
    assert_eq!(
        String::from_utf8(jcs::to_vec(&s).unwrap()).unwrap(),
        "{\"a\":\"\\u0000\\u001f\\\"\\\\/\\b\\f\\n\\r\\t\u{7f}\"}"
    );
}

struct TestRng(u64);
impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for c in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_be_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for TestRng {}

proptest! {
    #[test]
    fn any_body_round_trips_and_verifies(city in "[0-9A-Za-z\u{4e00}-\u{9fa5}]{0,12}", n in any::<i64>(), flag in any::<bool>()) {
        let signer = Sm2Signer::new(sm2(3));
        let env = Envelope::seal(&header(), &json!({"city": city, "n": n, "flag": flag, "list": [n, null]}), None, &[9; 16], NOW, &signer).unwrap();
        let back = Envelope::from_slice(&env.to_vec()).unwrap();
        prop_assert!(back.verify(&PeerKey::Sm2(signer.public_key().clone())).is_ok());
    }
}
