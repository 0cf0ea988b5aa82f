//! The software backend's key file: persistence, refusal of wrong passphrases and damaged
//! files, atomic replacement, and the decoder under arbitrary input.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;
use ykt_kms::software::file::{HEADER_LEN, fuzz_decode, kdf_params_of};
use ykt_kms::{
    CipherMode, DiscardAudit, KdfParams, KeyFileError, KeyRef, KeySpec, KeyType, Kms, KmsError,
    SecretBytes, SignatureAlgorithm, SoftwareKms,
};

use crate::suite::{self, AES128, TDES, assert_no_secret, id};

const SM2_SCALAR: [u8; 32] = [0x17; 32];

/// Cheap KDF parameters, so the tests can decode hundreds of damaged files.
fn cheap() -> KdfParams {
    KdfParams::new(8, 1, 1).unwrap()
}

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ykt-kms-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn pass(p: &str) -> SecretBytes {
    SecretBytes::from_slice(p.as_bytes())
}

fn audit() -> Arc<DiscardAudit> {
    Arc::new(DiscardAudit)
}

/// A key file with a 3DES, an AES and an SM2 key.
fn sample(path: &std::path::Path) -> Vec<u8> {
    let kms = SoftwareKms::create(path, &pass("correct horse"), cheap(), audit()).unwrap();
    kms.import(
        &id("", "isd/enc", 0x20),
        KeySpec::internal(KeyType::Tdes2),
        &SecretBytes::from_slice(&TDES),
        "t",
    )
    .unwrap();
    kms.import(
        &id("", "ssd/dek", 0x30),
        KeySpec::exportable(KeyType::Aes128),
        &SecretBytes::from_slice(&AES128),
        "t",
    )
    .unwrap();
    kms.import(
        &id("", "msg/sign", 1),
        KeySpec::internal(KeyType::Sm2),
        &SecretBytes::from_slice(&SM2_SCALAR),
        "t",
    )
    .unwrap();
    fs::read(path).unwrap()
}

#[test]
fn keys_survive_a_reopen_and_the_file_holds_no_material() {
    let d = dir("reopen");
    let path = d.join("keys.ykms");
    let bytes = sample(&path);
    assert_no_secret(
        &hex::encode(&bytes),
        &[TDES.to_vec(), AES128.to_vec(), SM2_SCALAR.to_vec()],
    );
    assert_eq!(kdf_params_of(&bytes).unwrap(), cheap());
    let kms = SoftwareKms::open(&path, &pass("correct horse"), audit()).unwrap();
    let listed: Vec<_> = kms
        .list()
        .unwrap()
        .into_iter()
        .map(|i| (i.id.to_string(), i.key_type, i.exportable))
        .collect();
    assert_eq!(
        listed,
        [
            ("isd/enc@32".to_string(), KeyType::Tdes2, false),
            ("msg/sign@1".to_string(), KeyType::Sm2, false),
            ("ssd/dek@48".to_string(), KeyType::Aes128, true),
        ]
    );
    let t = ykt_crypto::TdesKey::from_slice(&TDES).unwrap();
    assert_eq!(
        kms.encrypt(
            &KeyRef::from(&id("", "isd/enc", 0x20)),
            &CipherMode::Ecb,
            &[0; 8],
            "t"
        )
        .unwrap(),
        t.encrypt_block(&[0; 8]).to_vec()
    );
    let alg = SignatureAlgorithm::Sm2Sm3 {
        user_id: ykt_crypto::DEFAULT_SM2_ID.to_vec(),
    };
    let sig = kms.sign(&id("", "msg/sign", 1), &alg, b"m", "t").unwrap();
    kms.verify(&id("", "msg/sign", 1), &alg, b"m", &sig, "t")
        .unwrap();
    // Destroy is persisted too; each save uses a fresh nonce.
    kms.destroy(&id("", "ssd/dek", 0x30), "t").unwrap();
    let after = fs::read(&path).unwrap();
    assert_ne!(after[37..49], bytes[37..49]);
    let kms = SoftwareKms::open(&path, &pass("correct horse"), audit()).unwrap();
    assert_eq!(kms.list().unwrap().len(), 2);
    // Only the owner may read the file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // No temporary file is left behind.
    let names: Vec<_> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn the_default_kdf_is_memory_hard() {
    let p = KdfParams::default();
    assert!(p.memory_kib() >= 64 * 1024);
    assert!(p.iterations() >= 3);
    assert!(KdfParams::new(4, 1, 1).is_err());
    assert!(KdfParams::new(8, 0, 1).is_err());
    assert!(KdfParams::new(KdfParams::MAX_MEMORY_KIB + 1, 1, 1).is_err());
}

#[test]
fn wrong_passphrase_is_refused_and_the_file_left_alone() {
    let d = dir("wrong");
    let path = d.join("keys.ykms");
    let bytes = sample(&path);
    let e = SoftwareKms::open(&path, &pass("correct horse "), audit()).unwrap_err();
    assert!(
        matches!(e, KmsError::KeyFile(KeyFileError::Authentication)),
        "{e:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn truncated_files_are_refused() {
    let d = dir("trunc");
    let path = d.join("keys.ykms");
    let bytes = sample(&path);
    let cut = d.join("cut.ykms");
    for n in 0..bytes.len() {
        fs::write(&cut, &bytes[..n]).unwrap();
        let e = SoftwareKms::open(&cut, &pass("correct horse"), audit()).unwrap_err();
        assert!(matches!(e, KmsError::KeyFile(_)), "{n}: {e:?}");
        if n >= 8 {
            assert!(
                matches!(e, KmsError::KeyFile(KeyFileError::Truncated)),
                "{n}: {e:?}"
            );
        }
    }
    // A byte too many is refused as well.
    let mut long = bytes.clone();
    long.push(0);
    fs::write(&cut, &long).unwrap();
    let e = SoftwareKms::open(&cut, &pass("correct horse"), audit()).unwrap_err();
    assert!(
        matches!(e, KmsError::KeyFile(KeyFileError::TrailingBytes)),
        "{e:?}"
    );
}

#[test]
fn every_flipped_bit_is_refused() {
    let d = dir("flip");
    let path = d.join("keys.ykms");
    let bytes = sample(&path);
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[i] ^= 1 << bit;
            // The memory bound keeps a flipped memory-cost bit from asking for gigabytes.
            let e = fuzz_decode(&damaged, b"correct horse", 1024).unwrap_err();
            assert!(
                matches!(e, KmsError::KeyFile(_)),
                "byte {i} bit {bit}: {e:?}"
            );
            if i >= HEADER_LEN {
                assert!(
                    matches!(e, KmsError::KeyFile(KeyFileError::Authentication)),
                    "byte {i}: {e:?}"
                );
            }
        }
    }
    assert_eq!(fuzz_decode(&bytes, b"correct horse", 1024).unwrap(), 3);
}

#[test]
fn an_existing_file_is_never_replaced_by_a_new_one() {
    let d = dir("exists");
    let path = d.join("keys.ykms");
    let bytes = sample(&path);
    let e = SoftwareKms::create(&path, &pass("other"), cheap(), audit()).unwrap_err();
    assert!(
        matches!(e, KmsError::KeyFile(KeyFileError::AlreadyExists)),
        "{e:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_file_changed_on_disk_is_not_overwritten() {
    let d = dir("changed");
    let path = d.join("keys.ykms");
    sample(&path);
    let kms = SoftwareKms::open(&path, &pass("correct horse"), audit()).unwrap();
    // Someone else saves the file meanwhile.
    let other = SoftwareKms::open(&path, &pass("correct horse"), audit()).unwrap();
    other
        .generate(&id("", "other", 1), KeySpec::internal(KeyType::Aes256), "t")
        .unwrap();
    let theirs = fs::read(&path).unwrap();
    let e = kms
        .generate(&id("", "mine", 1), KeySpec::internal(KeyType::Aes256), "t")
        .unwrap_err();
    assert!(
        matches!(e, KmsError::KeyFile(KeyFileError::ChangedOnDisk)),
        "{e:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), theirs);
    // The refused change was undone in memory too.
    assert!(matches!(
        kms.info(&id("", "mine", 1)),
        Err(KmsError::KeyNotFound(_))
    ));
}

#[test]
fn an_oversized_kdf_is_refused_before_hashing() {
    let d = dir("bound");
    let path = d.join("keys.ykms");
    sample(&path);
    let e = SoftwareKms::open_bounded(&path, &pass("correct horse"), 4, audit()).unwrap_err();
    assert!(
        matches!(e, KmsError::KeyFile(KeyFileError::KdfParameters)),
        "{e:?}"
    );
}

#[test]
fn key_file_errors_show_no_material() {
    let d = dir("errs");
    let path = d.join("keys.ykms");
    sample(&path);
    let e = SoftwareKms::open(&path, &pass("nope"), audit()).unwrap_err();
    assert_no_secret(&format!("{e:?} {e}"), &suite::secrets());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoder_is_total_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(fuzz_decode(&bytes, b"p", 64).is_err());
    }

    #[test]
    fn decoder_is_total_on_files_with_a_valid_magic(tail in proptest::collection::vec(any::<u8>(), 0..160)) {
        let mut bytes = b"YKTKMS\0\x01\x01".to_vec();
        bytes.extend_from_slice(&tail);
        prop_assert!(fuzz_decode(&bytes, b"p", 64).is_err());
    }

    #[test]
    fn decoder_refuses_damaged_sample_files(at in 0usize..400, value in any::<u8>()) {
        let d = dir(&format!("prop-{at}-{value}"));
        let path = d.join("keys.ykms");
        let bytes = sample(&path);
        let mut damaged = bytes.clone();
        let i = at % damaged.len();
        prop_assume!(damaged[i] != value);
        damaged[i] = value;
        prop_assert!(fuzz_decode(&damaged, b"correct horse", 1024).is_err());
        let _ = fs::remove_dir_all(&d);
    }
}

/// A master made with `KeySpec::internal_master` never leaves the KMS, but the keys derived
/// from it may, wrapped; the flag survives a reopen, and a file written before the flag existed
/// (the bit clear) opens with it off.
#[test]
fn an_internal_master_exports_its_derivations_only_and_keeps_the_flag_on_disk() {
    let path = dir("internal-master").join("k.kms");
    let master = id("", "ssd-master/enc", 1);
    let plain_internal = id("", "isd-master/enc", 1);
    let dek = id("", "dek", 1);
    let derived = |m: &ykt_kms::KeyId| {
        KeyRef::from(m).diversified(ykt_kms::Derivation::GpKdf3 {
            kdd: [7; 10],
            key: ykt_kms::GpStaticKey::Enc,
        })
    };
    {
        let kms = SoftwareKms::create(&path, &pass("correct horse"), cheap(), audit()).unwrap();
        let material = SecretBytes::from_slice(&AES128);
        kms.import(
            &master,
            KeySpec::internal_master(KeyType::Aes128),
            &material,
            "t",
        )
        .unwrap();
        kms.import(
            &plain_internal,
            KeySpec::internal(KeyType::Aes128),
            &material,
            "t",
        )
        .unwrap();
        kms.import(&dek, KeySpec::internal(KeyType::Aes128), &material, "t")
            .unwrap();
    }
    let kms = SoftwareKms::open(&path, &pass("correct horse"), audit()).unwrap();
    let under = KeyRef::from(&dek);
    let wrap = |k: &KeyRef| kms.wrap(k, &under, ykt_kms::WrapMode::CbcZeroIv, "t");
    assert!(matches!(
        wrap(&KeyRef::from(&master)),
        Err(KmsError::NotExportable(_))
    ));
    let wrapped = wrap(&derived(&master)).unwrap();
    assert_eq!(wrapped.len(), 16);
    // A plain internal key's derivations stay inside.
    assert!(matches!(
        wrap(&derived(&plain_internal)),
        Err(KmsError::NotExportable(_))
    ));
}
