//! The software backend: the shared suite, then what only it holds (SM4, SM2, RSA,
//! derivations, the e-purse MACs), each cross-checked with ykt-crypto and ykt-gp-host.

use std::sync::Arc;

use ykt_crypto::purse::{self, PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_crypto::{AesKey, Sm2PublicKey, Sm2Signature, Sm4Key, TdesKey};
use ykt_gp_host::Diversification;
use ykt_kms::{
    CipherMode, Derivation, GpStaticKey, KeyRef, KeySpec, KeyType, Kms, KmsError, MacAlgorithm,
    MemoryAudit, PublicKey, SecretBytes, SignatureAlgorithm, SoftwareKms, WrapMode,
};
use ykt_scp::{KeySet, StaticKeys};

use crate::suite::{self, AES128, TDES, assert_no_secret, id};

const SM4: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10,
];
const SM2_SCALAR: [u8; 32] = [
    0x39, 0x45, 0x20, 0x8F, 0x7B, 0x21, 0x44, 0xB1, 0x3F, 0x36, 0xE3, 0x8A, 0xC6, 0xD3, 0x9F, 0x95,
    0x88, 0x93, 0x93, 0x69, 0x28, 0x60, 0xB5, 0x1A, 0x42, 0xFB, 0x81, 0xEF, 0x4D, 0xF7, 0xC5, 0xB8,
];
const ASN: [u8; 8] = [0x31, 0x04, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78];
const KDD: [u8; 10] = [0x00, 0x00, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58];

fn kms() -> (SoftwareKms, Arc<MemoryAudit>) {
    let audit = Arc::new(MemoryAudit::new());
    (SoftwareKms::in_memory(audit.clone()), audit)
}

fn all_secrets() -> Vec<Vec<u8>> {
    let mut s = suite::secrets();
    s.push(SM4.to_vec());
    s.push(SM2_SCALAR.to_vec());
    s
}

#[test]
fn shared_suite() {
    let (kms, audit) = kms();
    suite::run(&kms, &audit, "sw/");
    assert_no_secret(&format!("{kms:?}"), &suite::secrets());
}

#[test]
fn sm4_encrypt_mac_and_wrap() {
    let (kms, _) = kms();
    let k = id("", "sm4/dek", 1);
    let card = id("", "sm4/card", 1);
    kms.import(
        &k,
        KeySpec::internal(KeyType::Sm4),
        &SecretBytes::from_slice(&SM4),
        "t",
    )
    .unwrap();
    kms.import(
        &card,
        KeySpec::exportable(KeyType::Sm4),
        &SecretBytes::from_slice(&AES128),
        "t",
    )
    .unwrap();
    let key = Sm4Key::from_bytes(SM4);
    let data: Vec<u8> = (0..32).collect();
    let r = KeyRef::from(&k);
    assert_eq!(
        kms.encrypt(&r, &CipherMode::Ecb, &data, "t").unwrap(),
        ykt_crypto::ecb_encrypt(&key, &data).unwrap()
    );
    // GB/T 32907 example: plaintext = key gives 681EDF34D206965E86B3E94F536E4246.
    assert_eq!(
        hex::encode_upper(kms.encrypt(&r, &CipherMode::Ecb, &SM4, "t").unwrap()),
        "681EDF34D206965E86B3E94F536E4246"
    );
    assert_eq!(
        kms.mac(&r, &MacAlgorithm::Cmac, &data, "t").unwrap(),
        ykt_crypto::cmac_sm4(&key, &data).to_vec()
    );
    assert_eq!(
        kms.wrap(&KeyRef::from(&card), &r, WrapMode::CbcZeroIv, "STORE DATA")
            .unwrap(),
        ykt_crypto::cbc_encrypt(&key, &[0u8; 16], &AES128).unwrap()
    );
}

#[test]
fn tdes_ecb_wrap_for_put_key() {
    let (kms, _) = kms();
    let dek = id("", "dek", 0x20);
    let k = id("", "new-enc", 0x21);
    kms.import(
        &dek,
        KeySpec::internal(KeyType::Tdes2),
        &SecretBytes::from_slice(&TDES),
        "t",
    )
    .unwrap();
    kms.import(
        &k,
        KeySpec::exportable(KeyType::Tdes2),
        &SecretBytes::from_slice(&suite::TDES_CARD),
        "t",
    )
    .unwrap();
    let t = TdesKey::from_slice(&TDES).unwrap();
    assert_eq!(
        kms.wrap(
            &KeyRef::from(&k),
            &KeyRef::from(&dek),
            WrapMode::Ecb,
            "PUT KEY"
        )
        .unwrap(),
        ykt_crypto::ecb_encrypt(&t, &suite::TDES_CARD).unwrap()
    );
    // And back: a key wrapped under the DEK imports to the same key.
    let blob = ykt_crypto::ecb_encrypt(&t, &suite::TDES_CARD).unwrap();
    let back = id("", "back", 1);
    kms.unwrap_import(
        &back,
        KeySpec::internal(KeyType::Tdes2),
        &KeyRef::from(&dek),
        WrapMode::Ecb,
        &blob,
        "t",
    )
    .unwrap();
    assert_eq!(
        kms.encrypt(&KeyRef::from(&back), &CipherMode::Ecb, &[0u8; 8], "kcv")
            .unwrap(),
        kms.encrypt(&KeyRef::from(&k), &CipherMode::Ecb, &[0u8; 8], "kcv")
            .unwrap()
    );
    // A blob of the wrong length for the key type is refused.
    let e = kms
        .unwrap_import(
            &id("", "short", 1),
            KeySpec::internal(KeyType::Tdes2),
            &KeyRef::from(&dek),
            WrapMode::Ecb,
            &blob[..8],
            "t",
        )
        .unwrap_err();
    assert!(
        matches!(e, KmsError::InvalidMaterial(KeyType::Tdes2)),
        "{e:?}"
    );
}

#[test]
fn aes_cbc_unwrap() {
    let (kms, _) = kms();
    let dek = id("", "dek", 1);
    kms.import(
        &dek,
        KeySpec::internal(KeyType::Aes128),
        &SecretBytes::from_slice(&AES128),
        "t",
    )
    .unwrap();
    let blob = ykt_crypto::cbc_encrypt(
        &AesKey::from_slice(&AES128).unwrap(),
        &[0u8; 16],
        &suite::AES_NEW,
    )
    .unwrap();
    let k = id("", "unwrapped", 1);
    kms.unwrap_import(
        &k,
        KeySpec::internal(KeyType::Aes128),
        &KeyRef::from(&dek),
        WrapMode::CbcZeroIv,
        &blob,
        "t",
    )
    .unwrap();
    assert_eq!(
        kms.encrypt(&KeyRef::from(&k), &CipherMode::Ecb, &[7u8; 16], "t")
            .unwrap(),
        AesKey::from_slice(&suite::AES_NEW)
            .unwrap()
            .encrypt_block(&[7u8; 16])
            .to_vec()
    );
}

#[test]
fn sm2_sign_verify_with_user_id() {
    let (kms, audit) = kms();
    let k = id("", "msg-sign", 1);
    kms.import(
        &k,
        KeySpec::internal(KeyType::Sm2),
        &SecretBytes::from_slice(&SM2_SCALAR),
        "t",
    )
    .unwrap();
    let alg = SignatureAlgorithm::Sm2Sm3 {
        user_id: ykt_crypto::DEFAULT_SM2_ID.to_vec(),
    };
    let msg = b"message digest";
    let sig = kms.sign(&k, &alg, msg, "TSM message").unwrap();
    assert_eq!(sig.len(), 64);
    kms.verify(&k, &alg, msg, &sig, "t").unwrap();
    let PublicKey::Sm2(public) = kms.public_key(&k).unwrap() else {
        panic!("not SM2")
    };
    let expected = ykt_crypto::Sm2PrivateKey::from_bytes(&SM2_SCALAR).unwrap();
    assert_eq!(&public, expected.public_key());
    let s = Sm2Signature::from_bytes(sig.as_slice().try_into().unwrap()).unwrap();
    Sm2PublicKey::from_sec1_bytes(&public.to_bytes())
        .unwrap()
        .verify(ykt_crypto::DEFAULT_SM2_ID, msg, &s)
        .unwrap();
    // Another user ID, or another message, does not verify.
    let other = SignatureAlgorithm::Sm2Sm3 {
        user_id: b"other".to_vec(),
    };
    assert!(matches!(
        kms.verify(&k, &other, msg, &sig, "t"),
        Err(KmsError::SignatureInvalid)
    ));
    assert!(matches!(
        kms.verify(&k, &alg, b"other", &sig, "t"),
        Err(KmsError::SignatureInvalid)
    ));
    assert!(matches!(
        kms.verify(&k, &alg, msg, &sig[..63], "t"),
        Err(KmsError::SignatureInvalid)
    ));
    // An SM2 key is no RSA key.
    assert!(matches!(
        kms.sign(&k, &SignatureAlgorithm::RsaPkcs1Sha256, msg, "t"),
        Err(KmsError::WrongKeyType { .. })
    ));
    // A generated key signs too, and the SM2 scalar never shows.
    let g = id("", "token-sign", 70);
    kms.generate(&g, KeySpec::internal(KeyType::Sm2), "t")
        .unwrap();
    let sig = kms.sign(&g, &alg, msg, "t").unwrap();
    kms.verify(&g, &alg, msg, &sig, "t").unwrap();
    assert_no_secret(&format!("{:?} {kms:?}", audit.take()), &all_secrets());
}

#[test]
fn rsa_token_key() {
    let (kms, _) = kms();
    let k = id("", "token-key", 0x70);
    kms.generate(&k, KeySpec::internal(KeyType::Rsa), "delegated management")
        .unwrap();
    let msg = b"INSTALL token data";
    let sig = kms
        .sign(&k, &SignatureAlgorithm::RsaPkcs1Sha256, msg, "token")
        .unwrap();
    assert_eq!(sig.len(), 256);
    let PublicKey::Rsa(public) = kms.public_key(&k).unwrap() else {
        panic!("not RSA")
    };
    assert_eq!(public.bits(), 2048);
    public.verify_pkcs1v15_sha256(msg, &sig).unwrap();
    kms.verify(&k, &SignatureAlgorithm::RsaPkcs1Sha256, msg, &sig, "t")
        .unwrap();
    let mut bad = sig.clone();
    bad[10] ^= 1;
    assert!(matches!(
        kms.verify(&k, &SignatureAlgorithm::RsaPkcs1Sha256, msg, &bad, "t"),
        Err(KmsError::SignatureInvalid)
    ));
    // RSA keys are never wrapped out, even when exportable.
    let dek = id("", "dek", 1);
    kms.import(
        &dek,
        KeySpec::internal(KeyType::Aes128),
        &SecretBytes::from_slice(&AES128),
        "t",
    )
    .unwrap();
    let rsa2 = id("", "rsa-exportable", 1);
    kms.generate(&rsa2, KeySpec::exportable(KeyType::Rsa), "t")
        .unwrap();
    let e = kms
        .wrap(
            &KeyRef::from(&rsa2),
            &KeyRef::from(&dek),
            WrapMode::CbcZeroIv,
            "t",
        )
        .unwrap_err();
    assert!(matches!(e, KmsError::WrongKeyType { .. }), "{e:?}");
    // Import from DER: the same public key.
    let sk =
        ykt_crypto::RsaPrivateKey::generate(&mut rand_core::UnwrapErr(getrandom::SysRng), 2048)
            .unwrap();
    let der = sk.to_pkcs8_der().unwrap();
    let imported = id("", "imported-rsa", 1);
    kms.import(
        &imported,
        KeySpec::internal(KeyType::Rsa),
        &SecretBytes::from_slice(&der),
        "t",
    )
    .unwrap();
    assert_eq!(
        kms.public_key(&imported).unwrap(),
        PublicKey::Rsa(sk.public_key().clone())
    );
    assert!(matches!(
        kms.import(
            &id("", "bad-rsa", 1),
            KeySpec::internal(KeyType::Rsa),
            &SecretBytes::from_slice(&der[..100]),
            "t"
        ),
        Err(KmsError::InvalidMaterial(KeyType::Rsa))
    ));
}

#[test]
fn pboc_diversification_per_card() {
    let (kms, audit) = kms();
    let mk3 = id("", "purse/dpk-master", 1);
    let mk4 = id("", "purse/dpk-master-sm4", 1);
    let dek = id("", "ssd/dek", 1);
    kms.import(
        &mk3,
        KeySpec::exportable(KeyType::Tdes2),
        &SecretBytes::from_slice(&TDES),
        "t",
    )
    .unwrap();
    kms.import(
        &mk4,
        KeySpec::exportable(KeyType::Sm4),
        &SecretBytes::from_slice(&SM4),
        "t",
    )
    .unwrap();
    kms.import(
        &dek,
        KeySpec::internal(KeyType::Aes128),
        &SecretBytes::from_slice(&AES128),
        "t",
    )
    .unwrap();
    let step = Derivation::Pboc { diversifier: ASN };
    let card3 = ykt_crypto::diversify_tdes(&TdesKey::from_slice(&TDES).unwrap(), &ASN);
    let card4 = ykt_crypto::diversify_sm4(&Sm4Key::from_bytes(SM4), &ASN);
    // Same as the purse module's rule.
    assert_eq!(
        card3.expose(),
        purse::diversify(&PurseAlgorithm::Tdes, &PurseKey::from_bytes(TDES), &ASN).expose()
    );
    let d3 = KeyRef::from(&mk3).diversified(step.clone());
    let d4 = KeyRef::from(&mk4).diversified(step.clone());
    // The card key leaves only wrapped under the DEK, for personalisation STORE DATA.
    assert_eq!(
        kms.wrap(&d3, &KeyRef::from(&dek), WrapMode::CbcZeroIv, "personalise")
            .unwrap(),
        ykt_crypto::cbc_encrypt(
            &AesKey::from_slice(&AES128).unwrap(),
            &[0u8; 16],
            card3.expose()
        )
        .unwrap()
    );
    assert_eq!(
        kms.wrap(&d4, &KeyRef::from(&dek), WrapMode::CbcZeroIv, "personalise")
            .unwrap(),
        ykt_crypto::cbc_encrypt(
            &AesKey::from_slice(&AES128).unwrap(),
            &[0u8; 16],
            card4.expose()
        )
        .unwrap()
    );
    // MAC1 check and MAC2 with the derived DPK / DLK (3DES and SM4).
    let input = purse::purchase_session_input([1, 2, 3, 4], 5, 0x0000_1234);
    let data = [
        0x00u8, 0x00, 0x00, 0x64, 0x06, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12,
    ];
    for (r, alg, key) in [
        (
            &d3,
            PurseAlgorithm::Tdes,
            PurseKey::from_slice(card3.expose()).unwrap(),
        ),
        (
            &d4,
            PurseAlgorithm::Sm4(Sm4Rules::BRIEF),
            PurseKey::from_bytes(*card4.expose()),
        ),
    ] {
        let mac_alg = MacAlgorithm::PurseSession {
            session_input: input,
            sm4_rules: Sm4Rules::BRIEF,
        };
        let expected = purse::session_mac(&alg, &purse::session_key(&alg, &key, &input), &data);
        assert_eq!(
            kms.mac(r, &mac_alg, &data, "MAC1").unwrap(),
            expected.to_vec()
        );
        kms.verify_mac(r, &mac_alg, &data, &expected, "MAC1 check")
            .unwrap();
        assert!(matches!(
            kms.verify_mac(r, &mac_alg, &data, &[0; 4], "MAC1 check"),
            Err(KmsError::MacMismatch)
        ));
        let tac = MacAlgorithm::PurseTac {
            sm4_rules: Sm4Rules::BRIEF,
        };
        assert_eq!(
            kms.mac(r, &tac, &data, "TAC").unwrap(),
            purse::tac(&alg, &key, &data).to_vec()
        );
    }
    // Stored: the derived key becomes a key of its own.
    let stored = id("", "card/3104000012345678/dpk", 1);
    let info = kms
        .diversify(&KeyRef::from(&mk3), &step, &stored, true, "issue card")
        .unwrap();
    assert_eq!(info.key_type, KeyType::Tdes2);
    assert_eq!(
        kms.encrypt(&KeyRef::from(&stored), &CipherMode::Ecb, &[0; 8], "t")
            .unwrap(),
        card3.encrypt_block(&[0; 8]).to_vec()
    );
    // PBOC diversification needs a 3DES or SM4 master.
    let e = kms
        .wrap(
            &KeyRef::from(&dek).diversified(step),
            &KeyRef::from(&dek),
            WrapMode::CbcZeroIv,
            "t",
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            KmsError::WrongKeyType { .. } | KmsError::NotExportable(_)
        ),
        "{e:?}"
    );
    let events = audit.take();
    assert!(
        events
            .iter()
            .any(|e| e.derivations == ["pboc"] && e.key == mk3 && e.purpose == "MAC1 check")
    );
    assert_no_secret(&format!("{events:?}"), &all_secrets());
}

#[test]
fn gp_static_key_diversification_matches_gp_host() {
    let (kms, _) = kms();
    let isd3 = id("", "isd/master", 0x20);
    let isd_aes = id("", "isd/master-aes", 0x30);
    let isd_sm4 = id("", "isd/master-sm4", 0x30);
    kms.import(
        &isd3,
        KeySpec::exportable(KeyType::Tdes2),
        &SecretBytes::from_slice(&TDES),
        "t",
    )
    .unwrap();
    kms.import(
        &isd_aes,
        KeySpec::exportable(KeyType::Aes256),
        &SecretBytes::from_slice(&suite::AES256),
        "t",
    )
    .unwrap();
    kms.import(
        &isd_sm4,
        KeySpec::exportable(KeyType::Sm4),
        &SecretBytes::from_slice(&SM4),
        "t",
    )
    .unwrap();
    let t = TdesKey::from_slice(&TDES).unwrap();
    let a = AesKey::from_slice(&suite::AES256).unwrap();
    let s = Sm4Key::from_bytes(SM4);
    let sets = [
        (
            isd3.clone(),
            Diversification::Emv,
            KeySet::tdes(0, t.clone(), t.clone(), t.clone()),
        ),
        (
            isd3.clone(),
            Diversification::Visa2,
            KeySet::tdes(0, t.clone(), t.clone(), t.clone()),
        ),
        (
            isd_aes.clone(),
            Diversification::Kdf3,
            KeySet::aes(0, a.clone(), a.clone(), a.clone()),
        ),
        (
            isd_sm4.clone(),
            Diversification::Kdf3,
            KeySet::sm4(0, s.clone(), s.clone(), s.clone()),
        ),
    ];
    for (master, method, set) in sets {
        let expected = ykt_gp_host::diversify::diversify(&set, method, &KDD, 0).unwrap();
        let values: [Vec<u8>; 3] = match expected.keys {
            StaticKeys::Tdes { enc, mac, dek } => [
                enc.expose().to_vec(),
                mac.expose().to_vec(),
                dek.expose().to_vec(),
            ],
            StaticKeys::Aes { enc, mac, dek } => [
                enc.expose().to_vec(),
                mac.expose().to_vec(),
                dek.expose().to_vec(),
            ],
            StaticKeys::Sm4 { enc, mac, dek } => [
                enc.expose().to_vec(),
                mac.expose().to_vec(),
                dek.expose().to_vec(),
            ],
        };
        for (which, value) in [GpStaticKey::Enc, GpStaticKey::Mac, GpStaticKey::Dek]
            .into_iter()
            .zip(values)
        {
            let step = match method {
                Diversification::Emv => Derivation::GpEmv {
                    kdd: KDD,
                    key: which,
                },
                Diversification::Visa2 => Derivation::GpVisa2 {
                    kdd: KDD,
                    key: which,
                },
                Diversification::Kdf3 => Derivation::GpKdf3 {
                    kdd: KDD,
                    key: which,
                },
            };
            let derived_id = id(
                "",
                &format!("se/{}/{}/{which:?}", master.name(), step.name()),
                1,
            );
            kms.diversify(
                &KeyRef::from(&master),
                &step,
                &derived_id,
                true,
                "per-SE keys",
            )
            .unwrap();
            // Compare through a KCV-style encryption of a fixed block.
            let block = vec![
                0x01u8;
                kms.info(&derived_id)
                    .unwrap()
                    .key_type
                    .block_size()
                    .unwrap()
            ];
            let got = kms
                .encrypt(&KeyRef::from(&derived_id), &CipherMode::Ecb, &block, "kcv")
                .unwrap();
            let want = match master == isd3 {
                true => {
                    ykt_crypto::ecb_encrypt(&TdesKey::from_slice(&value).unwrap(), &block).unwrap()
                }
                false if master == isd_aes => {
                    ykt_crypto::ecb_encrypt(&AesKey::from_slice(&value).unwrap(), &block).unwrap()
                }
                false => {
                    ykt_crypto::ecb_encrypt(&Sm4Key::from_slice(&value).unwrap(), &block).unwrap()
                }
            };
            assert_eq!(got, want, "{method:?} {which:?}");
        }
    }
    // emv on an AES master, kdf3 on a 3DES master: refused.
    let e = kms
        .diversify(
            &KeyRef::from(&isd_aes),
            &Derivation::GpEmv {
                kdd: KDD,
                key: GpStaticKey::Enc,
            },
            &id("", "x", 1),
            true,
            "t",
        )
        .unwrap_err();
    assert!(matches!(e, KmsError::WrongKeyType { .. }), "{e:?}");
    let e = kms
        .diversify(
            &KeyRef::from(&isd3),
            &Derivation::GpKdf3 {
                kdd: KDD,
                key: GpStaticKey::Enc,
            },
            &id("", "x", 1),
            true,
            "t",
        )
        .unwrap_err();
    assert!(matches!(e, KmsError::WrongKeyType { .. }), "{e:?}");
}

#[test]
fn key_names_are_checked() {
    assert!(ykt_kms::KeyId::new("", 1).is_err());
    assert!(ykt_kms::KeyId::new("with space", 1).is_err());
    assert!(ykt_kms::KeyId::new(&"a".repeat(65), 1).is_err());
    assert!(ykt_kms::KeyId::new("isd/A000000151000000/enc-1.x_y", 1).is_ok());
}

#[test]
fn secret_bytes_print_redacted() {
    let s = SecretBytes::from_slice(&TDES);
    assert_eq!(format!("{s:?}"), "SecretBytes([redacted])");
}

/// The SCP02 session-key derivation gives the session DEK of the pysim vector (tsm-gp.md §9.3),
/// and a key set PUT KEY encrypts under it equals `ykt-gp-host`'s own encryption.
#[test]
fn scp02_session_derivation() {
    let (kms, audit) = kms();
    let dek_value: [u8; 16] = [
        0x10, 0x21, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
        0x0F,
    ];
    let dek = id("", "isd/dek", 0x20);
    kms.import(
        &dek,
        KeySpec::internal(KeyType::Tdes2),
        &SecretBytes::from_slice(&dek_value),
        "t",
    )
    .unwrap();
    let card = id("", "card/key", 1);
    kms.import(
        &card,
        KeySpec::exportable(KeyType::Tdes2),
        &SecretBytes::from_slice(&TDES),
        "t",
    )
    .unwrap();
    let session = KeyRef::from(&dek).diversified(Derivation::Scp02Session {
        constant: [0x01, 0x81],
        sequence_counter: [0x00, 0x01],
    });
    let want = ykt_crypto::scp::scp02_session_key(
        &TdesKey::from_slice(&dek_value).unwrap(),
        [0x01, 0x81],
        [0x00, 0x01],
    );
    assert_eq!(
        hex::encode_upper(want.expose()),
        "511DB767812597722109C867F9D7257A"
    );
    let wrapped = kms
        .wrap(&KeyRef::from(&card), &session, WrapMode::Ecb, "put key")
        .unwrap();
    assert_eq!(wrapped, ykt_crypto::ecb_encrypt(&want, &TDES).unwrap());
    let events = audit.take();
    let last = events.last().unwrap();
    assert_eq!(last.other_key.as_ref(), Some(&dek));
    kms.encrypt(&session, &CipherMode::Ecb, &[0u8; 8], "t")
        .unwrap();
    assert_eq!(audit.take()[0].derivations, vec!["scp02-session"]);
    // Only 3DES keys have SCP02 session keys.
    kms.import(
        &id("", "aes", 1),
        KeySpec::internal(KeyType::Aes128),
        &SecretBytes::from_slice(&AES128),
        "t",
    )
    .unwrap();
    let aes = KeyRef::from(&id("", "aes", 1)).diversified(Derivation::Scp02Session {
        constant: [0x01, 0x81],
        sequence_counter: [0x00, 0x01],
    });
    assert!(matches!(
        kms.encrypt(&aes, &CipherMode::Ecb, &[0u8; 16], "t"),
        Err(KmsError::WrongKeyType { .. })
    ));
}

/// A composed record: clear bytes with derived card keys between them, encrypted in one CBC
/// chain under the DEK, equal to the clear computation; one audit event per key and one for
/// the encryption; a key that is not exportable is refused and nothing is encrypted.
#[test]
fn wrap_composed_records() {
    let (kms, audit) = kms();
    let master = id("", "purse/master", 1);
    kms.import(
        &master,
        KeySpec::exportable(KeyType::Tdes2),
        &SecretBytes::from_slice(&TDES),
        "t",
    )
    .unwrap();
    let dek = id("", "ssd/dek", 0x30);
    kms.import(
        &dek,
        KeySpec::internal(KeyType::Aes128),
        &SecretBytes::from_slice(&AES128),
        "t",
    )
    .unwrap();
    audit.take();
    let card = KeyRef::from(&master).diversified(Derivation::Pboc { diversifier: ASN });
    let head = [0x80, 0x00, 0x19, 0x01, 0x01, 0x01, 0, 0, 0, 0, 0, 0];
    let tail = [0x80, 0, 0, 0];
    let got = kms
        .wrap_composed(
            &[
                ykt_kms::WrapPart::Clear(&head),
                ykt_kms::WrapPart::Key(&card),
                ykt_kms::WrapPart::Clear(&tail),
            ],
            &KeyRef::from(&dek),
            WrapMode::CbcZeroIv,
            "personalise",
        )
        .unwrap();
    let card_value = ykt_crypto::diversify_tdes(&TdesKey::from_slice(&TDES).unwrap(), &ASN);
    let plain = [&head[..], card_value.expose(), &tail].concat();
    let want =
        ykt_crypto::cbc_encrypt(&AesKey::from_slice(&AES128).unwrap(), &[0u8; 16], &plain).unwrap();
    assert_eq!(got, want);
    let events = audit.take();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].key, master);
    assert_eq!(events[0].derivations, vec!["pboc"]);
    assert_eq!(events[0].other_key.as_ref(), Some(&dek));
    assert!(
        events
            .iter()
            .all(|e| e.succeeded && e.purpose == "personalise")
    );
    // Not whole blocks.
    assert!(
        kms.wrap_composed(
            &[
                ykt_kms::WrapPart::Key(&card),
                ykt_kms::WrapPart::Clear(&[1])
            ],
            &KeyRef::from(&dek),
            WrapMode::CbcZeroIv,
            "t",
        )
        .is_err()
    );
    // The DEK itself is internal: it cannot be a part.
    assert!(matches!(
        kms.wrap_composed(
            &[ykt_kms::WrapPart::Key(&KeyRef::from(&dek))],
            &KeyRef::from(&dek),
            WrapMode::CbcZeroIv,
            "t",
        ),
        Err(KmsError::NotExportable(_))
    ));
}

/// A key set sealed for another KMS's SM2 key and opened there: the keys arrive with the
/// version the header names and the same values (their MACs agree); a damaged blob, a short
/// one or a taken name imports nothing.
#[test]
fn seal_for_and_open_import() {
    let (sender, sender_audit) = kms();
    let (receiver, receiver_audit) = kms();
    let transport = id("", "transport", 1);
    receiver
        .import(
            &transport,
            KeySpec::internal(KeyType::Sm2),
            &SecretBytes::from_slice(&SM2_SCALAR),
            "t",
        )
        .unwrap();
    let PublicKey::Sm2(public) = receiver.public_key(&transport).unwrap() else {
        panic!("an SM2 key");
    };
    let names = ["set/enc", "set/mac", "set/dek"];
    for (i, n) in names.iter().enumerate() {
        sender
            .import(
                &id("", n, 0x30),
                KeySpec::exportable(KeyType::Aes128),
                &SecretBytes::from_slice(&[i as u8 + 1; 16]),
                "t",
            )
            .unwrap();
    }
    sender_audit.take();
    let refs: Vec<KeyRef> = names
        .iter()
        .map(|n| KeyRef::from(&id("", n, 0x30)))
        .collect();
    let header = [0x30, 0x88, 0x10];
    let mut parts = vec![ykt_kms::WrapPart::Clear(&header)];
    parts.extend(refs.iter().map(ykt_kms::WrapPart::Key));
    let sealed = sender
        .seal_for(
            &parts,
            &public,
            ykt_crypto::Sm2CipherMode::C1C3C2,
            "handover",
        )
        .unwrap();
    assert_eq!(sender_audit.take().len(), 3);
    assert_no_secret(
        &hex::encode(&sealed),
        &[vec![1; 16], vec![2; 16], vec![3; 16]],
    );
    let layout = |h: &[u8]| {
        assert_eq!(h, &header);
        Ok(names
            .iter()
            .map(|n| {
                (
                    id("", &format!("in/{n}"), h[0]),
                    KeySpec::exportable(KeyType::Aes128),
                )
            })
            .collect())
    };
    let open = |blob: &[u8]| {
        receiver.open_import(
            &KeyRef::from(&transport),
            ykt_crypto::Sm2CipherMode::C1C3C2,
            blob,
            3,
            &layout,
            "handover",
        )
    };
    let mut damaged = sealed.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(open(&damaged).is_err());
    assert_eq!(receiver.list().unwrap().len(), 1);
    let infos = open(&sealed).unwrap();
    assert_eq!(infos.len(), 3);
    assert!(receiver_audit.take().iter().any(|e| e.succeeded));
    for (i, n) in names.iter().enumerate() {
        let mac = |k: &dyn Kms, key: KeyRef| k.mac(&key, &MacAlgorithm::Cmac, b"x", "t").unwrap();
        assert_eq!(
            mac(&receiver, KeyRef::from(&id("", &format!("in/{n}"), 0x30))),
            mac(&sender, refs[i].clone())
        );
    }
    // Again: the names are taken, nothing changes.
    assert!(matches!(open(&sealed), Err(KmsError::KeyExists(_))));
    assert_eq!(receiver.list().unwrap().len(), 4);
}
