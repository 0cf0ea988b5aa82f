//! Published and shared vectors (tests/data/*.txt, provenance in tests/data/README.md).

use ykt_crypto::*;

use crate::harness::{cases, hx};
use crate::rng::ScriptedRng;

#[test]
fn sm3_gbt32905() {
    for c in cases("sm3_gbt32905.txt") {
        assert_eq!(c.text("alg"), "sm3");
        let msg = c.bytes("msg");
        assert_eq!(hx(&sm3(&msg)), hx(&c.bytes("digest")), "{}", c.location);
        // The incremental hasher agrees when fed in uneven pieces.
        let mut h = Sm3::new();
        for piece in msg.chunks(5) {
            h.update(piece);
        }
        assert_eq!(hx(&h.finalize()), hx(&c.bytes("digest")), "{}", c.location);
    }
}

#[test]
fn sm4_gbt32907() {
    for c in cases("sm4_gbt32907.txt") {
        let key = Sm4Key::from_slice(&c.bytes("key")).unwrap();
        let pt: [u8; 16] = c.array("plaintext");
        let ct: [u8; 16] = c.array("ciphertext");
        match c.text("alg") {
            "sm4-ecb-encrypt" => {
                assert_eq!(key.encrypt_block(&pt), ct, "{}", c.location);
                assert_eq!(key.decrypt_block(&ct), pt, "{}", c.location);
                assert_eq!(ecb_encrypt(&key, &pt).unwrap(), ct);
            }
            "sm4-ecb-encrypt-iterated" => {
                // One million single-block encryptions: the key schedule is rebuilt per call,
                // which keeps this at a few seconds in a debug build (dependencies use opt-level 2).
                let n: u32 = c.text("iterations").parse().unwrap();
                let mut block = pt;
                for _ in 0..n {
                    block = key.encrypt_block(&block);
                }
                assert_eq!(block, ct, "{}", c.location);
            }
            other => panic!("{}: unknown alg {other}", c.location),
        }
    }
}

#[test]
fn aes_fips197() {
    for c in cases("aes_fips197.txt") {
        let key = AesKey::from_slice(&c.bytes("key")).unwrap();
        let pt: [u8; 16] = c.array("plaintext");
        let ct: [u8; 16] = c.array("ciphertext");
        assert_eq!(key.encrypt_block(&pt), ct, "{}", c.location);
        assert_eq!(key.decrypt_block(&ct), pt, "{}", c.location);
    }
}

#[test]
fn des_illustrated() {
    for c in cases("des_des-illustrated.txt") {
        let key = DesKey::from_slice(&c.bytes("key")).unwrap();
        let pt: [u8; 8] = c.array("plaintext");
        let ct: [u8; 8] = c.array("ciphertext");
        assert_eq!(key.encrypt_block(&pt), ct, "{}", c.location);
        assert_eq!(key.decrypt_block(&ct), pt, "{}", c.location);
        // 3DES with K1 = K2 (= K3) degenerates to single DES.
        let mut k16 = [0u8; 16];
        k16[..8].copy_from_slice(key.expose());
        k16[8..].copy_from_slice(key.expose());
        assert_eq!(TdesKey::two_key(k16).encrypt_block(&pt), ct);
        let mut k24 = [0u8; 24];
        k24[..16].copy_from_slice(&k16);
        k24[16..].copy_from_slice(key.expose());
        assert_eq!(TdesKey::three_key(k24).encrypt_block(&pt), ct);
    }
}

#[test]
fn sm2_gmt0003_sign() {
    for c in cases("sm2_gmt0003.txt")
        .into_iter()
        .filter(|c| c.text("alg") == "sm2-sign")
    {
        let private = Sm2PrivateKey::from_bytes(&c.array("private")).unwrap();
        let mut point = vec![0x04];
        point.extend(c.bytes("public_x"));
        point.extend(c.bytes("public_y"));
        assert_eq!(
            hx(&private.public_key().to_bytes()),
            hx(&point),
            "{}",
            c.location
        );
        let public = Sm2PublicKey::from_sec1_bytes(&point).unwrap();
        let id = c.bytes("id");
        let msg = c.bytes("msg");
        assert_eq!(id, DEFAULT_SM2_ID);
        assert_eq!(hx(&public.identity_hash(&id).unwrap()), hx(&c.bytes("z")));
        assert_eq!(
            hx(&public.message_hash(&id, &msg).unwrap()),
            hx(&c.bytes("e"))
        );

        let mut rs = [0u8; 64];
        rs[..32].copy_from_slice(&c.bytes("r"));
        rs[32..].copy_from_slice(&c.bytes("s"));
        let sig = Sm2Signature::from_bytes(&rs).unwrap();
        public.verify(&id, &msg, &sig).unwrap();

        // DER form: both r and s have the top bit set, so each INTEGER gets a 00 prefix.
        let der = sig.to_der();
        let expected = format!("3046022100{}022100{}", hx(&sig.r()), hx(&sig.s()));
        assert_eq!(hx(&der), expected);
        assert_eq!(Sm2Signature::from_der(&der).unwrap(), sig);

        // Another ID, another message or another key must not verify.
        assert_eq!(public.verify(b"", &msg, &sig), Err(Error::SignatureInvalid));
        assert_eq!(
            public.verify(&id, b"message digesT", &sig),
            Err(Error::SignatureInvalid)
        );
        let other = Sm2PrivateKey::from_bytes(&[0x11; 32]).unwrap();
        assert_eq!(
            other.public_key().verify(&id, &msg, &sig),
            Err(Error::SignatureInvalid)
        );

        // Our own (deterministic) signature verifies too.
        let own = private.sign(&id, &msg).unwrap();
        public.verify(&id, &msg, &own).unwrap();
    }
}

#[test]
fn sm2_gmt0003_encrypt() {
    for c in cases("sm2_gmt0003.txt")
        .into_iter()
        .filter(|c| c.text("alg") == "sm2-encrypt")
    {
        let private = Sm2PrivateKey::from_bytes(&c.array("private")).unwrap();
        let msg = c.bytes("msg");
        // The file's c1 is X1 || Y1 (64 bytes, X1 happens to start with 04): the point
        // encoding adds the 04 prefix (see tests/data/README.md).
        let c1 = [&[0x04][..], &c.bytes("c1")].concat();
        assert_eq!(c1.len(), 65);
        let (c2, c3) = (c.bytes("c2"), c.bytes("c3"));
        let c1c3c2 = [c1.clone(), c3.clone(), c2.clone()].concat();
        let c1c2c3 = [c1, c2, c3].concat();
        assert_eq!(
            private.decrypt(&c1c3c2, Sm2CipherMode::C1C3C2).unwrap(),
            msg
        );
        assert_eq!(
            private.decrypt(&c1c2c3, Sm2CipherMode::C1C2C3).unwrap(),
            msg
        );
        assert_eq!(
            private.decrypt(&c1c3c2, Sm2CipherMode::C1C2C3),
            Err(Error::DecryptionFailed)
        );

        // With the standard's k injected as the random source, encryption reproduces the vector.
        let mut rng = ScriptedRng::new(&c.bytes("k"));
        let ct = private
            .public_key()
            .encrypt(&mut rng, &msg, Sm2CipherMode::C1C3C2)
            .unwrap();
        assert_eq!(hx(&ct), hx(&c1c3c2), "{}", c.location);
        let mut rng = ScriptedRng::new(&c.bytes("k"));
        let ct = private
            .public_key()
            .encrypt(&mut rng, &msg, Sm2CipherMode::C1C2C3)
            .unwrap();
        assert_eq!(hx(&ct), hx(&c1c2c3), "{}", c.location);
    }
}

#[test]
fn mac_chosen() {
    for c in cases("mac_chosen.txt") {
        let msg = c.bytes("msg");
        let key = c.bytes("key");
        let got: Vec<u8> = match c.text("alg") {
            "sm4-cbcmac-m2" => {
                sm4_cbc_mac(&Sm4Key::from_slice(&key).unwrap(), &[0; 16], &msg).to_vec()
            }
            "tdes2-full-cbcmac-m2" => {
                tdes_cbc_mac(&TdesKey::from_slice(&key).unwrap(), &[0; 8], &msg).to_vec()
            }
            "sm4-cmac" => cmac_sm4(&Sm4Key::from_slice(&key).unwrap(), &msg).to_vec(),
            "aes128-cmac" => cmac_aes(&AesKey::from_slice(&key).unwrap(), &msg).to_vec(),
            other => panic!("{}: unknown alg {other}", c.location),
        };
        assert_eq!(hx(&got), hx(&c.bytes("mac")), "{}", c.location);
    }
}

#[test]
fn retail_mac_openssl() {
    for c in cases("retailmac_openssl.txt") {
        let key = TdesKey::from_slice(&c.bytes("key")).unwrap();
        let mac = retail_mac(&key, &c.array("iv"), &c.bytes("msg")).unwrap();
        assert_eq!(hx(&mac), hx(&c.bytes("mac")), "{}", c.location);
        // Over one padded block the retail MAC is plain 3DES (= the full-3DES CBC-MAC); over
        // more blocks the two differ.
        let full = tdes_cbc_mac(&key, &c.array("iv"), &c.bytes("msg"));
        assert_eq!(mac == full, c.bytes("msg").len() < 8, "{}", c.location);
    }
    let three = TdesKey::three_key([7; 24]);
    assert!(matches!(
        retail_mac(&three, &[0; 8], b""),
        Err(Error::InvalidKeyLength { actual: 24, .. })
    ));
}

#[test]
fn padding_method_2() {
    assert_eq!(pad_iso9797_m2(&[], 8), [0x80, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(pad_iso9797_m2(&[1; 8], 8).len(), 16);
    assert_eq!(pad_iso9797_m2(&[1; 7], 8), [1, 1, 1, 1, 1, 1, 1, 0x80]);
    assert_eq!(pad_iso9797_m2(&[1; 3], 16).len(), 16);
    assert_eq!(
        unpad_iso9797_m2(&pad_iso9797_m2(&[0, 0x80, 0], 8)).unwrap(),
        [0, 0x80, 0]
    );
    assert_eq!(unpad_iso9797_m2(&[1, 0, 0]), Err(Error::InvalidPadding));
    assert_eq!(unpad_iso9797_m2(&[0, 0]), Err(Error::InvalidPadding));
}

#[test]
fn mode_errors_are_typed() {
    let key = Sm4Key::from_bytes([1; 16]);
    assert_eq!(
        ecb_encrypt(&key, &[0; 15]),
        Err(Error::NotBlockAligned {
            block_size: 16,
            actual: 15
        })
    );
    assert_eq!(
        cbc_encrypt(&key, &[0; 8], &[0; 16]),
        Err(Error::InvalidIvLength {
            block_size: 16,
            actual: 8
        })
    );
    assert!(matches!(
        DesKey::from_slice(&[0; 7]),
        Err(Error::InvalidKeyLength { actual: 7, .. })
    ));
    assert!(matches!(
        TdesKey::from_slice(&[0; 8]),
        Err(Error::InvalidKeyLength { actual: 8, .. })
    ));
    assert!(matches!(
        AesKey::from_slice(&[0; 20]),
        Err(Error::InvalidKeyLength { actual: 20, .. })
    ));
    assert_eq!(
        Sm2PrivateKey::from_bytes(&[0; 32]).err(),
        Some(Error::InvalidPrivateKey)
    );
    assert_eq!(
        Sm2PrivateKey::from_bytes(&[0xFF; 32]).err(),
        Some(Error::InvalidPrivateKey)
    );
    assert_eq!(
        Sm2PublicKey::from_sec1_bytes(&[4; 65]).err(),
        Some(Error::InvalidPublicKey)
    );
    assert_eq!(
        Sm2Signature::from_bytes(&[0; 64]).err(),
        Some(Error::MalformedSignature)
    );
    assert_eq!(
        Sm2Signature::from_der(&[0x30, 0]).err(),
        Some(Error::MalformedSignature)
    );
    assert!(ct_eq(b"abcd", b"abcd"));
    assert!(!ct_eq(b"abcd", b"abce"));
    assert!(!ct_eq(b"abcd", b"abc"));
}

#[test]
fn pboc_mac_helpers_truncate_the_full_block() {
    let des = DesKey::from_bytes([0x13; 8]);
    let full = des_cbc_mac(&des, &[0; 8], b"abc");
    assert_eq!(pboc_mac_des(&des, &[0; 8], b"abc"), full[..4]);
    let sm4 = Sm4Key::from_bytes([0x13; 16]);
    let full = sm4_cbc_mac(&sm4, &[0; 16], b"abc");
    assert_eq!(pboc_mac_sm4(&sm4, &[0; 16], b"abc"), full[..4]);
}

/// The fixed OpenSSL RSA-2048 key pair: both private forms give the same key, the public forms
/// re-encode byte for byte, and PKCS#1 v1.5 SHA-256 signing reproduces OpenSSL's signature.
#[test]
fn rsa_openssl_key_pair() {
    for c in cases("rsa_openssl.txt") {
        let from_pkcs1 = RsaPrivateKey::from_pkcs1_der(&c.bytes("pkcs1")).unwrap();
        let from_pkcs8 = RsaPrivateKey::from_pkcs8_der(&c.bytes("pkcs8")).unwrap();
        let public = from_pkcs8.public_key();
        assert_eq!(from_pkcs1.public_key(), public, "{}", c.location);
        assert_eq!(public.bits(), 2048);
        assert_eq!(public.size(), 256);
        assert_eq!(hx(&public.modulus()), hx(&c.bytes("n")));
        assert_eq!(hx(&public.exponent()), hx(&c.bytes("e")));
        assert_eq!(
            hx(&public.to_pkcs1_der().unwrap()),
            hx(&c.bytes("pkcs1_public"))
        );
        assert_eq!(
            hx(&public.to_public_key_der().unwrap()),
            hx(&c.bytes("spki"))
        );
        assert_eq!(
            hx(&from_pkcs8.to_pkcs8_der().unwrap()),
            hx(&c.bytes("pkcs8"))
        );
        for decoded in [
            RsaPublicKey::from_pkcs1_der(&c.bytes("pkcs1_public")).unwrap(),
            RsaPublicKey::from_public_key_der(&c.bytes("spki")).unwrap(),
            RsaPublicKey::from_components(&c.bytes("n"), &c.bytes("e")).unwrap(),
            RsaPublicKey::from_components(&[&[0, 0][..], &c.bytes("n")].concat(), &[0, 1, 0, 1])
                .unwrap(),
        ] {
            assert_eq!(&decoded, public);
        }
        let (msg, sig) = (c.bytes("msg"), c.bytes("sig"));
        public.verify_pkcs1v15_sha256(&msg, &sig).unwrap();
        // PKCS#1 v1.5 is deterministic: our signature is OpenSSL's, blinded or not.
        assert_eq!(
            hx(&from_pkcs1.sign_pkcs1v15_sha256(&msg).unwrap()),
            hx(&sig)
        );
        let mut rng = crate::rng::TestRng::new(11);
        assert_eq!(
            hx(&from_pkcs8
                .sign_pkcs1v15_sha256_with_rng(&mut rng, &msg)
                .unwrap()),
            hx(&sig)
        );
        // Tampered message, tampered signature, truncated signature.
        assert_eq!(
            public.verify_pkcs1v15_sha256(&[&msg[..], b"."].concat(), &sig),
            Err(RsaError::SignatureInvalid)
        );
        for i in [0, 100, 255] {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                public.verify_pkcs1v15_sha256(&msg, &bad),
                Err(RsaError::SignatureInvalid)
            );
        }
        assert_eq!(
            public.verify_pkcs1v15_sha256(&msg, &sig[1..]),
            Err(RsaError::SignatureLength {
                expected: 256,
                actual: 255
            })
        );
        // A private key is not a public key, nor the other way round.
        assert_eq!(
            RsaPublicKey::from_public_key_der(&c.bytes("pkcs8")),
            Err(RsaError::MalformedKey)
        );
        assert_eq!(
            RsaPrivateKey::from_pkcs8_der(&c.bytes("spki")).unwrap_err(),
            RsaError::MalformedKey
        );
    }
}

/// Key sizes outside 2048..=4096 bits are refused, loading and generating.
#[test]
fn rsa_key_sizes() {
    let mut rng = crate::rng::TestRng::new(12);
    assert_eq!(
        RsaPrivateKey::generate(&mut rng, 1024).unwrap_err(),
        RsaError::UnsupportedKeySize { bits: 1024 }
    );
    assert_eq!(
        RsaPrivateKey::generate(&mut rng, 8192).unwrap_err(),
        RsaError::UnsupportedKeySize { bits: 8192 }
    );
    let mut small = vec![0xC5u8; 128];
    small[127] = 0x01;
    assert_eq!(
        RsaPublicKey::from_components(&small, &[1, 0, 1]),
        Err(RsaError::UnsupportedKeySize { bits: 1024 })
    );
    assert_eq!(
        RsaPublicKey::from_components(&[], &[3]),
        Err(RsaError::MalformedKey)
    );
    // An even modulus is not an RSA key.
    let mut even = vec![0xC5u8; 256];
    even[255] = 0x02;
    assert_eq!(
        RsaPublicKey::from_components(&even, &[1, 0, 1]),
        Err(RsaError::MalformedKey)
    );
}
