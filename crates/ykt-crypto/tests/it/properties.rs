//! Properties: SM2 round trips and bit-flip rejection, MAC sensitivity, CBC round trips.

use proptest::prelude::*;
use ykt_crypto::*;

use crate::rng::TestRng;

fn sm2_key(seed: u64) -> Sm2PrivateKey {
    Sm2PrivateKey::generate(&mut TestRng::new(seed)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn sm2_sign_verify_round_trip(
        seed in any::<u64>(),
        id in proptest::collection::vec(any::<u8>(), 0..40),
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        flip in any::<usize>(),
    ) {
        let key = sm2_key(seed);
        let public = key.public_key();
        let sig = key.sign(&id, &msg).unwrap();
        prop_assert!(public.verify(&id, &msg, &sig).is_ok());
        let hedged = key.sign_with_rng(&mut TestRng::new(seed ^ 1), &id, &msg).unwrap();
        prop_assert!(public.verify(&id, &msg, &hedged).is_ok());
        // Through DER and back.
        prop_assert_eq!(Sm2Signature::from_der(&sig.to_der()).unwrap(), sig);

        // A flipped bit in the signature: malformed or invalid, never accepted.
        let mut bytes = sig.to_bytes();
        bytes[flip % 64] ^= 1 << (flip % 8);
        if let Ok(bad) = Sm2Signature::from_bytes(&bytes) {
            prop_assert_eq!(public.verify(&id, &msg, &bad), Err(Error::SignatureInvalid));
        }
        // A flipped bit in the message or the ID.
        if !msg.is_empty() {
            let mut m = msg.clone();
            m[flip % msg.len()] ^= 1 << (flip % 8);
            prop_assert_eq!(public.verify(&id, &m, &sig), Err(Error::SignatureInvalid));
        }
        if !id.is_empty() {
            let mut i = id.clone();
            i[flip % id.len()] ^= 1 << (flip % 8);
            prop_assert_eq!(public.verify(&i, &msg, &sig), Err(Error::SignatureInvalid));
        }
    }

    #[test]
    fn sm2_encrypt_decrypt_round_trip(
        seed in any::<u64>(),
        msg in proptest::collection::vec(any::<u8>(), 1..200),
        c1c2c3 in any::<bool>(),
        flip in any::<usize>(),
    ) {
        let mode = if c1c2c3 { Sm2CipherMode::C1C2C3 } else { Sm2CipherMode::C1C3C2 };
        let key = sm2_key(seed);
        let ct = key.public_key().encrypt(&mut TestRng::new(seed ^ 2), &msg, mode).unwrap();
        prop_assert_eq!(ct.len(), 65 + 32 + msg.len());
        prop_assert_eq!(ct[0], 0x04);
        prop_assert_eq!(key.decrypt(&ct, mode).unwrap(), msg.clone());
        // Flip a bit after the point (C2 or C3): the C3 check fails.
        let mut bad = ct.clone();
        let i = 65 + flip % (ct.len() - 65);
        bad[i] ^= 1 << (flip % 8);
        prop_assert_eq!(key.decrypt(&bad, mode), Err(Error::DecryptionFailed));
    }

    #[test]
    fn mac_bit_flip_changes_output(
        key in any::<[u8; 16]>(),
        msg in proptest::collection::vec(any::<u8>(), 1..100),
        flip in any::<usize>(),
    ) {
        let mut m = msg.clone();
        m[flip % msg.len()] ^= 1 << (flip % 8);
        let des = DesKey::from_slice(&key[..8]).unwrap();
        let tdes = TdesKey::two_key(key);
        let sm4 = Sm4Key::from_bytes(key);
        let aes = AesKey::from_slice(&key).unwrap();
        prop_assert_ne!(des_cbc_mac(&des, &[0; 8], &msg), des_cbc_mac(&des, &[0; 8], &m));
        prop_assert_ne!(tdes_cbc_mac(&tdes, &[0; 8], &msg), tdes_cbc_mac(&tdes, &[0; 8], &m));
        prop_assert_ne!(retail_mac(&tdes, &[0; 8], &msg).unwrap(), retail_mac(&tdes, &[0; 8], &m).unwrap());
        prop_assert_ne!(sm4_cbc_mac(&sm4, &[0; 16], &msg), sm4_cbc_mac(&sm4, &[0; 16], &m));
        prop_assert_ne!(cmac_sm4(&sm4, &msg), cmac_sm4(&sm4, &m));
        prop_assert_ne!(cmac_aes(&aes, &msg), cmac_aes(&aes, &m));
        prop_assert_ne!(cmac_tdes(&tdes, &msg), cmac_tdes(&tdes, &m));
        // A trailing 80 is not confused with padding: the padding is always appended.
        let mut padded_like = msg.clone();
        padded_like.push(0x80);
        prop_assert_ne!(des_cbc_mac(&des, &[0; 8], &msg), des_cbc_mac(&des, &[0; 8], &padded_like));
    }

    #[test]
    fn cbc_round_trip(
        key in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
        blocks in 0usize..8,
        seed in any::<u64>(),
    ) {
        let data16 = TestRng::new(seed).bytes(blocks * 16);
        let data8 = &data16[..blocks * 8];
        fn check<K: BlockCipherKey>(k: &K, iv: &[u8], data: &[u8]) -> Result<(), TestCaseError> {
            let ct = cbc_encrypt(k, iv, data).unwrap();
            prop_assert_eq!(ct.len(), data.len());
            prop_assert_eq!(cbc_decrypt(k, iv, &ct).unwrap(), data.to_vec());
            let ct = ecb_encrypt(k, data).unwrap();
            prop_assert_eq!(ecb_decrypt(k, &ct).unwrap(), data.to_vec());
            Ok(())
        }
        check(&DesKey::from_slice(&key[..8]).unwrap(), &iv[..8], data8)?;
        check(&TdesKey::from_slice(&key[..16]).unwrap(), &iv[..8], data8)?;
        check(&TdesKey::from_slice(&key[..24]).unwrap(), &iv[..8], data8)?;
        check(&Sm4Key::from_slice(&key[..16]).unwrap(), &iv, &data16)?;
        for n in [16, 24, 32] {
            check(&AesKey::from_slice(&key[..n]).unwrap(), &iv, &data16)?;
        }
    }

    #[test]
    fn padding_round_trip(data in proptest::collection::vec(any::<u8>(), 0..64), bs in prop_oneof![Just(8usize), Just(16usize)]) {
        let padded = pad_iso9797_m2(&data, bs);
        prop_assert!(padded.len().is_multiple_of(bs) && padded.len() > data.len());
        prop_assert_eq!(unpad_iso9797_m2(&padded).unwrap(), &data[..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A master expanded once derives the same card keys as the one-shot `diversify`, for 3DES
    /// and every SM4 rule set.
    #[test]
    fn master_key_schedule_matches_diversify(
        master in any::<[u8; 16]>(),
        div in any::<[u8; 8]>(),
    ) {
        use ykt_crypto::purse::{MasterKeySchedule, PurseAlgorithm, PurseKey, Sm4Rules, diversify};
        let master = PurseKey::from_bytes(master);
        for alg in [PurseAlgorithm::Tdes, PurseAlgorithm::Sm4(Sm4Rules::BRIEF)] {
            let schedule = MasterKeySchedule::new(&alg, &master);
            let (prepared, one_shot) = (schedule.diversify(&div), diversify(&alg, &master, &div));
            prop_assert_eq!(prepared.expose(), one_shot.expose());
        }
    }
}

fn rsa_key() -> RsaPrivateKey {
    let case = &crate::harness::cases("rsa_openssl.txt")[0];
    RsaPrivateKey::from_pkcs8_der(&case.bytes("pkcs8")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The DER decoders are total: random bytes, and damaged real keys, give a key or a typed
    /// error, never a panic.
    #[test]
    fn rsa_decoders_are_total(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        cut in any::<usize>(),
        flip in any::<usize>(),
    ) {
        let _ = RsaPrivateKey::from_pkcs1_der(&bytes);
        let _ = RsaPrivateKey::from_pkcs8_der(&bytes);
        let _ = RsaPublicKey::from_pkcs1_der(&bytes);
        let _ = RsaPublicKey::from_public_key_der(&bytes);
        let _ = RsaPublicKey::from_components(&bytes, &bytes);
        let spki = rsa_key().public_key().to_public_key_der().unwrap();
        let _ = RsaPublicKey::from_public_key_der(&spki[..cut % spki.len()]);
        let mut damaged = spki.clone();
        let i = flip % damaged.len();
        damaged[i] ^= 0x5A;
        let _ = RsaPublicKey::from_public_key_der(&damaged);
    }

    /// Sign and verify round trip; any flipped message or signature bit is refused.
    #[test]
    fn rsa_sign_verify_round_trip(
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        flip in any::<usize>(),
        sig_bytes in proptest::collection::vec(any::<u8>(), 256),
    ) {
        let key = rsa_key();
        let public = key.public_key();
        let sig = key.sign_pkcs1v15_sha256(&msg).unwrap();
        prop_assert!(public.verify_pkcs1v15_sha256(&msg, &sig).is_ok());
        let mut bad = sig.clone();
        bad[flip % 256] ^= 1 << (flip % 8);
        prop_assert_eq!(
            public.verify_pkcs1v15_sha256(&msg, &bad),
            Err(RsaError::SignatureInvalid)
        );
        if !msg.is_empty() {
            let mut other = msg.clone();
            let i = flip % msg.len();
            other[i] ^= 0x80;
            prop_assert_eq!(
                public.verify_pkcs1v15_sha256(&other, &sig),
                Err(RsaError::SignatureInvalid)
            );
        }
        // Random 256-byte strings are refused (with overwhelming probability as invalid,
        // or as out of range when above the modulus), never a panic.
        prop_assert!(public.verify_pkcs1v15_sha256(&msg, &sig_bytes).is_err());
    }
}
