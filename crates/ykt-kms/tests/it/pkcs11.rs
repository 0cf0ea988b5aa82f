//! The PKCS#11 backend on a throwaway SoftHSM2 token.
//!
//! SoftHSM reads its configuration from `SOFTHSM2_CONF` when the module is initialised, and
//! a test must not change its own process's environment, so [`softhsm`] sets up a token
//! directory under the target directory and runs this binary again, filtered to
//! [`softhsm_child`], with the variable set. Without the module the test is skipped with a
//! message, unless `CI` is set: then it fails.

use std::path::PathBuf;
use std::sync::Arc;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use ykt_kms::{
    Derivation, KeyRef, KeySpec, KeyType, Kms, KmsError, MacAlgorithm, MemoryAudit, Pkcs11Config,
    Pkcs11Kms, SecretBytes, SignatureAlgorithm, WrapMode,
};

use ykt_kms::testing::{self, SoftHsmChild};

use crate::suite::{self, TDES, assert_no_secret, id};

const CHILD: &str = "YKT_KMS_SOFTHSM_CHILD";
const LABEL: &str = "ykt-kms-test";
const PIN: &str = "5678";

fn module() -> PathBuf {
    testing::softhsm_module()
}

#[test]
fn softhsm() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let child = SoftHsmChild {
        marker: CHILD,
        test: "pkcs11::softhsm_child",
        label: LABEL,
        pin: PIN,
        what: "the PKCS#11 (SoftHSM2) tests",
        dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("softhsm-{}", std::process::id())),
    };
    // `None`: skipped, and said so.
    if let Err(e) = testing::run_softhsm_child(&child) {
        panic!("{e}");
    }
}

/// Runs only inside the child process that [`softhsm`] starts.
#[test]
fn softhsm_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let context = Pkcs11::new(module()).unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let config = Pkcs11Config::new(&module(), LABEL, SecretBytes::from_slice(PIN.as_bytes()));
    let audit = Arc::new(MemoryAudit::new());
    let kms = Pkcs11Kms::with_context(&context, &config, audit.clone()).unwrap();

    // The shared behaviour, cross-checked with ykt-crypto.
    suite::run(&kms, &audit, "hsm/");

    // A composed record cannot be wrapped by the token (C_WrapKey wraps one key alone).
    let composed = id("hsm/", "composed", 1);
    kms.import(
        &composed,
        KeySpec::exportable(KeyType::Aes128),
        &SecretBytes::from_slice(&suite::AES128),
        "t",
    )
    .unwrap();
    audit.take();
    assert!(matches!(
        kms.wrap_composed(
            &[ykt_kms::WrapPart::Key(&KeyRef::from(&composed))],
            &KeyRef::from(&composed),
            WrapMode::CbcZeroIv,
            "t",
        ),
        Err(KmsError::Unsupported { .. })
    ));
    assert!(audit.take().iter().all(|e| !e.succeeded));

    // The token never reveals a key's value: CKA_SENSITIVE is set on every object.
    let session = context
        .open_ro_session(context.get_slots_with_token().unwrap()[0])
        .unwrap();
    let _ = session.login(UserType::User, Some(&AuthPin::new(PIN.into())));
    let objects = session
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
        .unwrap();
    assert!(objects.len() >= 6, "{} objects", objects.len());
    for o in objects {
        let attrs = session
            .get_attributes(o, &[AttributeType::Sensitive, AttributeType::Value])
            .unwrap();
        assert!(attrs.contains(&Attribute::Sensitive(true)), "{attrs:?}");
        assert!(
            !attrs.iter().any(|a| matches!(a, Attribute::Value(_))),
            "a key value was readable"
        );
    }

    // What the token cannot do is refused with a typed error naming the way out.
    let master = id("hsm/", "isd/master-enc", 1);
    let card = id("hsm/", "ssd/card-key", 1);
    let software = |e: KmsError| {
        assert!(
            matches!(
                e,
                KmsError::Unsupported {
                    backend: "pkcs11",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("software backend"), "{e}");
    };
    software(
        kms.wrap(
            &KeyRef::from(&master).diversified(Derivation::Pboc {
                diversifier: [1; 8],
            }),
            &KeyRef::from(&card),
            WrapMode::Ecb,
            "t",
        )
        .unwrap_err(),
    );
    software(
        kms.diversify(
            &KeyRef::from(&master),
            &Derivation::Pboc {
                diversifier: [1; 8],
            },
            &id("hsm/", "d", 1),
            true,
            "t",
        )
        .unwrap_err(),
    );
    software(
        kms.generate(&id("hsm/", "sm2", 1), KeySpec::internal(KeyType::Sm2), "t")
            .unwrap_err(),
    );
    software(
        kms.generate(&id("hsm/", "sm4", 1), KeySpec::internal(KeyType::Sm4), "t")
            .unwrap_err(),
    );
    software(
        kms.generate(&id("hsm/", "rsa", 1), KeySpec::internal(KeyType::Rsa), "t")
            .unwrap_err(),
    );
    software(
        kms.sign(
            &master,
            &SignatureAlgorithm::Sm2Sm3 {
                user_id: b"1234567812345678".to_vec(),
            },
            b"m",
            "t",
        )
        .unwrap_err(),
    );
    software(
        kms.mac(&KeyRef::from(&master), &MacAlgorithm::Cmac, b"m", "t")
            .unwrap_err(),
    );
    // A 3DES key generated in the token has no single-DES companion for the retail MAC.
    software(
        kms.mac(
            &KeyRef::from(&id("hsm/", "fresh-3des", 1)),
            &MacAlgorithm::RetailMac { iv: [0; 8] },
            b"m",
            "t",
        )
        .unwrap_err(),
    );
    // SoftHSM 2.6 has no 3DES key wrapping; a token that has it gives the ECB value.
    let dek3 = id("hsm/", "dek-3des", 0x20);
    kms.import(
        &dek3,
        KeySpec::internal(KeyType::Tdes2),
        &SecretBytes::from_slice(&TDES),
        "t",
    )
    .unwrap();
    match kms.wrap(
        &KeyRef::from(&card),
        &KeyRef::from(&dek3),
        WrapMode::Ecb,
        "PUT KEY",
    ) {
        Ok(blob) => assert_eq!(
            blob,
            ykt_crypto::ecb_encrypt(
                &ykt_crypto::TdesKey::from_slice(&TDES).unwrap(),
                &suite::TDES_CARD
            )
            .unwrap()
        ),
        Err(e) => assert!(
            matches!(
                e,
                KmsError::Unsupported {
                    backend: "pkcs11",
                    ..
                }
            ),
            "{e:?}"
        ),
    }
    assert_no_secret(&format!("{:?} {kms:?}", audit.take()), &suite::secrets());

    // Keys are token objects: another session sees them.
    let again = Pkcs11Kms::with_context(&context, &config, Arc::new(MemoryAudit::new())).unwrap();
    assert_eq!(again.info(&master).unwrap().key_type, KeyType::Tdes2);
    assert!(again.list().unwrap().iter().any(|i| i.id == card));
    // A wrong token label is a typed error.
    let e = Pkcs11Kms::with_context(
        &context,
        &Pkcs11Config::new(
            &module(),
            "no-such-token",
            SecretBytes::from_slice(PIN.as_bytes()),
        ),
        Arc::new(MemoryAudit::new()),
    )
    .unwrap_err();
    assert!(matches!(e, KmsError::TokenNotFound(_)), "{e:?}");
}
