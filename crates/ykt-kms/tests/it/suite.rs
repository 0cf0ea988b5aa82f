//! The behaviour both backends share, for the algorithms both support (2-key 3DES, AES-128,
//! AES-256), each value recomputed with ykt-crypto in the clear.

use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_crypto::{AesKey, TdesKey};
use ykt_kms::{
    AuditEvent, CipherMode, KeyId, KeyRef, KeySpec, KeyType, Kms, KmsError, MacAlgorithm,
    MemoryAudit, Operation, SecretBytes, WrapMode,
};

pub const TDES: [u8; 16] = [
    0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F,
];
pub const TDES_CARD: [u8; 16] = [
    0x1B, 0x2C, 0x3D, 0x4E, 0x5F, 0x60, 0x71, 0x82, 0x93, 0xA4, 0xB5, 0xC6, 0xD7, 0xE8, 0xF9, 0x0A,
];
pub const AES128: [u8; 16] = [
    0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF,
];
pub const AES256: [u8; 32] = [
    0x3A, 0x91, 0x5C, 0x07, 0xE2, 0x6B, 0xD4, 0x18, 0x8F, 0x23, 0x76, 0xAB, 0x50, 0xC9, 0x14, 0xEE,
    0x67, 0x02, 0xBD, 0x48, 0xF1, 0x3C, 0x95, 0x2A, 0xD8, 0x61, 0x0E, 0xB7, 0x4C, 0xA3, 0x1F, 0x86,
];
pub const AES_NEW: [u8; 16] = [
    0x5E, 0xC3, 0x08, 0x9D, 0x72, 0x1B, 0xE4, 0x36, 0xA9, 0x4F, 0xD0, 0x65, 0x2C, 0xB8, 0x17, 0xF3,
];

/// RFC 3394 §4.1: the KEK, the key data and the wrapped result.
pub const RFC3394_KEK: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
];
pub const RFC3394_KEY: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
];
pub const RFC3394_WRAPPED: [u8; 24] = [
    0x1F, 0xA6, 0x8B, 0x0A, 0x81, 0x12, 0xB4, 0x47, 0xAE, 0xF3, 0x4B, 0xD8, 0xFB, 0x5A, 0x7B, 0x82,
    0x9D, 0x3E, 0x86, 0x23, 0x71, 0xD2, 0xCF, 0xE5,
];

/// Every secret the suite imports.
pub fn secrets() -> Vec<Vec<u8>> {
    vec![
        TDES.to_vec(),
        TDES_CARD.to_vec(),
        AES128.to_vec(),
        AES256.to_vec(),
        AES_NEW.to_vec(),
        RFC3394_KEK.to_vec(),
        RFC3394_KEY.to_vec(),
    ]
}

/// Fails if `text` shows any of `secrets` (or their first or last 8 bytes) in hex.
pub fn assert_no_secret(text: &str, secrets: &[Vec<u8>]) {
    let lower = text.to_ascii_lowercase().replace([' ', ',', ':'], "");
    for s in secrets {
        for part in [&s[..], &s[..8], &s[s.len() - 8..]] {
            let h = hex::encode(part);
            assert!(!lower.contains(&h), "secret bytes {h} appear in: {text}");
        }
        // Decimal byte lists, as a derived Debug of a byte array would print them.
        let decimal = format!("{:?}", &s[..8]).replace(' ', "");
        assert!(
            !text
                .replace(' ', "")
                .contains(&decimal[1..decimal.len() - 1]),
            "secret bytes appear in: {text}"
        );
    }
}

pub fn id(prefix: &str, name: &str, version: u8) -> KeyId {
    KeyId::new(&format!("{prefix}{name}"), version).unwrap()
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 37 + 11) as u8).collect()
}

/// Runs the suite; key names start with `prefix`. Returns the events and errors it saw, for
/// the caller's own secrecy checks.
pub fn run(kms: &dyn Kms, audit: &MemoryAudit, prefix: &str) {
    let tdes = id(prefix, "isd/master-enc", 1);
    let card = id(prefix, "ssd/card-key", 1);
    let dek = id(prefix, "ssd/dek", 0x30);
    let aes256 = id(prefix, "aes256", 2);
    let fresh = id(prefix, "fresh", 1);
    let unwrapped = id(prefix, "unwrapped", 1);

    kms.import(
        &tdes,
        KeySpec::internal(KeyType::Tdes2),
        &SecretBytes::from_slice(&TDES),
        "ceremony",
    )
    .unwrap();
    kms.import(
        &card,
        KeySpec::exportable(KeyType::Tdes2),
        &SecretBytes::from_slice(&TDES_CARD),
        "ceremony",
    )
    .unwrap();
    kms.import(
        &dek,
        KeySpec::internal(KeyType::Aes128),
        &SecretBytes::from_slice(&AES128),
        "ceremony",
    )
    .unwrap();
    let info = kms
        .import(
            &aes256,
            KeySpec::exportable(KeyType::Aes256),
            &SecretBytes::from_slice(&AES256),
            "ceremony",
        )
        .unwrap();
    assert_eq!(info.key_type, KeyType::Aes256);
    assert!(info.exportable);

    // Identities are never reused.
    let again = kms.import(
        &tdes,
        KeySpec::internal(KeyType::Tdes2),
        &SecretBytes::from_slice(&TDES),
        "again",
    );
    assert!(matches!(again, Err(KmsError::KeyExists(_))), "{again:?}");
    // Material of the wrong length is refused, without echoing it.
    let bad = kms.import(
        &id(prefix, "bad", 1),
        KeySpec::internal(KeyType::Aes128),
        &SecretBytes::from_slice(&TDES[..15]),
        "bad",
    );
    assert!(
        matches!(bad, Err(KmsError::InvalidMaterial(KeyType::Aes128))),
        "{bad:?}"
    );

    let info = kms.info(&tdes).unwrap();
    assert_eq!((info.key_type, info.exportable), (KeyType::Tdes2, false));
    assert_eq!(kms.info(&dek).unwrap().key_type, KeyType::Aes128);
    let listed: Vec<KeyId> = kms.list().unwrap().into_iter().map(|i| i.id).collect();
    for k in [&tdes, &card, &dek, &aes256] {
        assert!(listed.contains(k), "{k} not in {listed:?}");
    }

    // Encryption, against ykt-crypto.
    let t = TdesKey::from_slice(&TDES).unwrap();
    let a128 = AesKey::from_slice(&AES128).unwrap();
    let a256 = AesKey::from_slice(&AES256).unwrap();
    let iv8 = vec![0xA5u8; 8];
    let iv16 = vec![0x5Au8; 16];
    let r = |k: &KeyId| KeyRef::from(k);
    assert_eq!(
        kms.encrypt(&r(&tdes), &CipherMode::Ecb, &data(24), "t")
            .unwrap(),
        ykt_crypto::ecb_encrypt(&t, &data(24)).unwrap()
    );
    assert_eq!(
        kms.encrypt(
            &r(&tdes),
            &CipherMode::Cbc { iv: iv8.clone() },
            &data(32),
            "t"
        )
        .unwrap(),
        ykt_crypto::cbc_encrypt(&t, &iv8, &data(32)).unwrap()
    );
    assert_eq!(
        kms.encrypt(&r(&dek), &CipherMode::Ecb, &data(32), "t")
            .unwrap(),
        ykt_crypto::ecb_encrypt(&a128, &data(32)).unwrap()
    );
    assert_eq!(
        kms.encrypt(
            &r(&aes256),
            &CipherMode::Cbc { iv: iv16.clone() },
            &data(48),
            "t"
        )
        .unwrap(),
        ykt_crypto::cbc_encrypt(&a256, &iv16, &data(48)).unwrap()
    );
    // A GP key check value: the first 3 bytes of ECB over a fixed block.
    let kcv = kms
        .encrypt(&r(&tdes), &CipherMode::Ecb, &[0u8; 8], "kcv")
        .unwrap();
    assert_eq!(kcv, t.encrypt_block(&[0u8; 8]).to_vec());
    let e = kms
        .encrypt(&r(&tdes), &CipherMode::Ecb, &data(7), "t")
        .unwrap_err();
    assert!(matches!(e, KmsError::InvalidInput(_)), "{e:?}");
    let e = kms
        .encrypt(
            &r(&dek),
            &CipherMode::Cbc { iv: iv8.clone() },
            &data(16),
            "t",
        )
        .unwrap_err();
    assert!(matches!(e, KmsError::InvalidInput(_)), "{e:?}");

    // MACs, against ykt-crypto, for lengths around the block boundaries.
    for n in [0usize, 1, 7, 8, 9, 16, 23, 40] {
        let m = data(n);
        let iv = [0x11u8; 8];
        assert_eq!(
            kms.mac(&r(&tdes), &MacAlgorithm::RetailMac { iv }, &m, "t")
                .unwrap(),
            ykt_crypto::retail_mac(&t, &iv, &m).unwrap().to_vec(),
            "retail MAC over {n} bytes"
        );
        assert_eq!(
            kms.mac(&r(&tdes), &MacAlgorithm::TdesCbcMac { iv }, &m, "t")
                .unwrap(),
            ykt_crypto::tdes_cbc_mac(&t, &iv, &m).to_vec(),
            "3DES CBC-MAC over {n} bytes"
        );
        assert_eq!(
            kms.mac(&r(&dek), &MacAlgorithm::Cmac, &m, "t").unwrap(),
            ykt_crypto::cmac_aes(&a128, &m).to_vec()
        );
        assert_eq!(
            kms.mac(&r(&aes256), &MacAlgorithm::Cmac, &m, "t").unwrap(),
            ykt_crypto::cmac_aes(&a256, &m).to_vec()
        );
        let sm = MacAlgorithm::PurseSecureMessaging {
            iv: vec![1, 2, 3, 4],
            sm4_rules: Sm4Rules::BRIEF,
        };
        assert_eq!(
            kms.mac(&r(&tdes), &sm, &m, "t").unwrap(),
            ykt_crypto::purse::secure_messaging_mac(
                &PurseAlgorithm::Tdes,
                &PurseKey::from_bytes(TDES),
                &[1, 2, 3, 4],
                &m
            )
            .to_vec()
        );
    }
    let m = data(21);
    let cmac = ykt_crypto::cmac_aes(&a128, &m);
    kms.verify_mac(&r(&dek), &MacAlgorithm::Cmac, &m, &cmac, "MAC check")
        .unwrap();
    let mut wrong = cmac;
    wrong[15] ^= 1;
    let e = kms
        .verify_mac(&r(&dek), &MacAlgorithm::Cmac, &m, &wrong, "MAC check")
        .unwrap_err();
    assert!(matches!(e, KmsError::MacMismatch), "{e:?}");
    let e = kms
        .mac(&r(&dek), &MacAlgorithm::RetailMac { iv: [0; 8] }, &m, "t")
        .unwrap_err();
    assert!(matches!(e, KmsError::WrongKeyType { .. }), "{e:?}");

    // Wrapping for PUT KEY under an AES DEK (CBC, ICV 0), against ykt-crypto.
    let zero16 = [0u8; 16];
    assert_eq!(
        kms.wrap(&r(&aes256), &r(&dek), WrapMode::CbcZeroIv, "PUT KEY")
            .unwrap(),
        ykt_crypto::cbc_encrypt(&a128, &zero16, &AES256).unwrap()
    );
    assert_eq!(
        kms.wrap(&r(&card), &r(&dek), WrapMode::CbcZeroIv, "PUT KEY")
            .unwrap(),
        ykt_crypto::cbc_encrypt(&a128, &zero16, &TDES_CARD).unwrap()
    );
    let e = kms
        .wrap(&r(&tdes), &r(&dek), WrapMode::CbcZeroIv, "PUT KEY")
        .unwrap_err();
    assert!(matches!(e, KmsError::NotExportable(_)), "{e:?}");
    let e = kms
        .wrap(&r(&dek), &r(&dek), WrapMode::CbcZeroIv, "PUT KEY")
        .unwrap_err();
    assert!(matches!(e, KmsError::NotExportable(_)), "{e:?}");

    // A key arriving wrapped is unwrapped inside the KMS and works: RFC 3394 §4.1 (128-bit
    // key data under a 128-bit KEK).
    let kek = id(prefix, "transport-kek", 1);
    kms.import(
        &kek,
        KeySpec::internal(KeyType::Aes128),
        &SecretBytes::from_slice(&RFC3394_KEK),
        "ceremony",
    )
    .unwrap();
    let info = kms
        .unwrap_import(
            &unwrapped,
            KeySpec::exportable(KeyType::Aes128),
            &r(&kek),
            WrapMode::AesKeyWrap,
            &RFC3394_WRAPPED,
            "SSD key handover",
        )
        .unwrap();
    assert_eq!(info.key_type, KeyType::Aes128);
    assert_eq!(
        kms.encrypt(&r(&unwrapped), &CipherMode::Ecb, &data(16), "t")
            .unwrap(),
        ykt_crypto::ecb_encrypt(&AesKey::from_slice(&RFC3394_KEY).unwrap(), &data(16)).unwrap()
    );
    assert_eq!(
        kms.wrap(&r(&unwrapped), &r(&kek), WrapMode::AesKeyWrap, "t")
            .unwrap(),
        RFC3394_WRAPPED
    );
    // A damaged blob fails the key wrap's integrity check and stores nothing.
    let mut damaged = RFC3394_WRAPPED;
    damaged[5] ^= 0x40;
    let e = kms
        .unwrap_import(
            &id(prefix, "damaged", 1),
            KeySpec::internal(KeyType::Aes128),
            &r(&kek),
            WrapMode::AesKeyWrap,
            &damaged,
            "t",
        )
        .unwrap_err();
    assert!(
        matches!(e, KmsError::InvalidMaterial(_) | KmsError::Pkcs11 { .. }),
        "{e:?}"
    );
    assert!(matches!(
        kms.info(&id(prefix, "damaged", 1)),
        Err(KmsError::KeyNotFound(_))
    ));
    // A 256-bit key and a 3DES key travel the same way, round trip.
    let blob = kms
        .wrap(&r(&aes256), &r(&kek), WrapMode::AesKeyWrap, "t")
        .unwrap();
    assert_eq!(blob.len(), 40);
    let back = id(prefix, "aes256-back", 2);
    kms.unwrap_import(
        &back,
        KeySpec::internal(KeyType::Aes256),
        &r(&kek),
        WrapMode::AesKeyWrap,
        &blob,
        "t",
    )
    .unwrap();
    assert_eq!(
        kms.encrypt(&r(&back), &CipherMode::Ecb, &data(16), "t")
            .unwrap(),
        ykt_crypto::ecb_encrypt(&a256, &data(16)).unwrap()
    );
    let blob = kms
        .wrap(&r(&card), &r(&kek), WrapMode::AesKeyWrap, "t")
        .unwrap();
    let card_back = id(prefix, "card-back", 1);
    kms.unwrap_import(
        &card_back,
        KeySpec::internal(KeyType::Tdes2),
        &r(&kek),
        WrapMode::AesKeyWrap,
        &blob,
        "t",
    )
    .unwrap();
    assert_eq!(
        kms.mac(
            &r(&card_back),
            &MacAlgorithm::TdesCbcMac { iv: [0; 8] },
            &data(20),
            "t"
        )
        .unwrap(),
        ykt_crypto::tdes_cbc_mac(
            &TdesKey::from_slice(&TDES_CARD).unwrap(),
            &[0; 8],
            &data(20)
        )
        .to_vec()
    );
    // Key wrap needs an AES wrapping key.
    assert!(
        kms.wrap(&r(&card), &r(&tdes), WrapMode::AesKeyWrap, "t")
            .is_err()
    );

    // Generated keys work and are refused a second time.
    let g = kms
        .generate(&fresh, KeySpec::exportable(KeyType::Aes128), "new SSD key")
        .unwrap();
    assert_eq!(g.key_type, KeyType::Aes128);
    let c1 = kms
        .encrypt(&r(&fresh), &CipherMode::Ecb, &[0u8; 16], "kcv")
        .unwrap();
    assert_eq!(c1.len(), 16);
    assert!(matches!(
        kms.generate(&fresh, KeySpec::exportable(KeyType::Aes128), "x"),
        Err(KmsError::KeyExists(_))
    ));
    let wrapped = kms
        .wrap(&r(&fresh), &r(&dek), WrapMode::CbcZeroIv, "PUT KEY")
        .unwrap();
    assert_eq!(wrapped.len(), 16);
    let g3 = kms
        .generate(
            &id(prefix, "fresh-3des", 1),
            KeySpec::internal(KeyType::Tdes2),
            "new",
        )
        .unwrap();
    assert_eq!(g3.key_type, KeyType::Tdes2);

    // Unknown keys.
    let ghost = id(prefix, "ghost", 9);
    assert!(matches!(kms.info(&ghost), Err(KmsError::KeyNotFound(_))));
    assert!(matches!(
        kms.encrypt(&r(&ghost), &CipherMode::Ecb, &[0; 16], "t"),
        Err(KmsError::KeyNotFound(_))
    ));

    // Destroy.
    kms.destroy(&fresh, "rotation").unwrap();
    assert!(matches!(kms.info(&fresh), Err(KmsError::KeyNotFound(_))));
    assert!(matches!(
        kms.destroy(&fresh, "rotation"),
        Err(KmsError::KeyNotFound(_))
    ));

    // SM keys never reach a backend that cannot hold them; the software backend takes them.
    let sm4 = kms.import(
        &id(prefix, "sm4", 1),
        KeySpec::internal(KeyType::Sm4),
        &SecretBytes::from_slice(&AES128),
        "t",
    );
    if kms.backend() == "pkcs11" {
        let e = sm4.unwrap_err();
        assert!(matches!(e, KmsError::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("software backend"), "{e}");
    } else {
        sm4.unwrap();
    }

    // Audit: every use above produced an event naming the key and the purpose, and no event
    // shows material.
    let events: Vec<AuditEvent> = audit.take();
    assert!(events.iter().any(|e| e.operation == Operation::Wrap
        && e.key == aes256
        && e.other_key.as_ref() == Some(&dek)
        && e.purpose == "PUT KEY"
        && e.succeeded));
    assert!(
        events
            .iter()
            .any(|e| e.key == dek && e.purpose == "MAC check" && !e.succeeded)
    );
    assert!(
        events
            .iter()
            .any(|e| e.key == tdes && e.purpose == "PUT KEY" && !e.succeeded)
    );
    assert!(events.iter().all(|e| e.backend == kms.backend()));
    assert!(events.len() > 60, "{} events", events.len());
    let text = format!("{events:?} {kms:?}", kms = kms.list().unwrap());
    assert_no_secret(&text, &secrets());

    // Errors show no material either.
    let errors = [
        format!("{:?} {}", again.unwrap_err(), "x"),
        format!("{:?}", bad.unwrap_err()),
        format!("{e:?} {e}"),
    ];
    for text in errors {
        assert_no_secret(&text, &secrets());
    }
}
