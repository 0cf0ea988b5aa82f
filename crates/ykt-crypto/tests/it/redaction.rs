//! Secrets never reach Debug output.

use ykt_crypto::purse::{PurseAlgorithm, PurseKey, session_key};
use ykt_crypto::*;

fn assert_redacted(debug: String, secret: &[u8]) {
    assert!(debug.contains("[redacted]"), "{debug}");
    let lower = hex::encode(secret);
    let upper = hex::encode_upper(secret);
    assert!(
        !debug.contains(&lower) && !debug.contains(&upper),
        "{debug}"
    );
    // Not even a 4-byte run of the key in either case, nor the decimal byte list.
    for w in secret.windows(4) {
        assert!(
            !debug.contains(&hex::encode(w)) && !debug.contains(&hex::encode_upper(w)),
            "{debug}"
        );
    }
    assert!(!debug.contains(&secret[0].to_string()), "{debug}");
}

#[test]
fn key_debug_is_redacted() {
    let bytes: Vec<u8> = (0xA1..=0xC0).collect();
    assert_redacted(
        format!("{:?}", DesKey::from_slice(&bytes[..8]).unwrap()),
        &bytes[..8],
    );
    assert_redacted(
        format!("{:?}", TdesKey::from_slice(&bytes[..16]).unwrap()),
        &bytes[..16],
    );
    assert_redacted(
        format!("{:?}", TdesKey::from_slice(&bytes[..24]).unwrap()),
        &bytes[..24],
    );
    assert_redacted(
        format!("{:?}", Sm4Key::from_slice(&bytes[..16]).unwrap()),
        &bytes[..16],
    );
    for n in [16, 24, 32] {
        assert_redacted(
            format!("{:?}", AesKey::from_slice(&bytes[..n]).unwrap()),
            &bytes[..n],
        );
    }
    let purse = PurseKey::from_slice(&bytes[..16]).unwrap();
    assert_redacted(format!("{purse:?}"), &bytes[..16]);
    let sk = session_key(&PurseAlgorithm::Tdes, &purse, &[1; 8]);
    assert_redacted(format!("{sk:?}"), sk.expose());
    let d: [u8; 32] = bytes[..32].try_into().unwrap();
    let sm2 = Sm2PrivateKey::from_bytes(&d).unwrap();
    assert_redacted(format!("{sm2:?}"), &d);
    // Public values stay printable.
    assert!(format!("{:?}", sm2.public_key()).starts_with("Sm2PublicKey(04"));
}

#[test]
fn rsa_private_key_debug_is_redacted() {
    let case = &crate::harness::cases("rsa_openssl.txt")[0];
    let key = RsaPrivateKey::from_pkcs8_der(&case.bytes("pkcs8")).unwrap();
    let debug = format!("{key:?}");
    assert_eq!(debug, "RsaPrivateKey([redacted])");
    assert!(format!("{:?}", key.public_key()).starts_with("RsaPublicKey(2048 bits, n = C9ACB2D2"));
}
