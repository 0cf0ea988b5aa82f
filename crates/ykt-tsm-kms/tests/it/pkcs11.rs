//! `KmsVault` over a SoftHSM2 token: SSD key sets generated in the token, their PUT KEY data
//! wrapped there, and a secure channel opened with session keys the token computes. The flows
//! need the software KMS (the token refuses derivations, the e-purse MACs, composed wraps and
//! SM2; `ykt_kms::pkcs11`), so they are not run here; the test says so when it runs.
//!
//! SoftHSM reads `SOFTHSM2_CONF` when the module is initialised, so [`softhsm`] sets up a token
//! directory and runs this binary again, filtered to [`softhsm_child`], with the variable set
//! (as ykt-kms's PKCS#11 tests do). Without the module the test is skipped with a message,
//! unless `CI` is set: then it fails.

use std::path::PathBuf;
use std::sync::Arc;

use ykt_apdu::{ResponseApdu, StatusWord};
use ykt_crypto::{AesKey, cbc_decrypt, ecb_encrypt};
use ykt_kms::testing::{self, SoftHsmChild};
use ykt_kms::{KeySpec, KeyType, Kms, MemoryAudit, Pkcs11Config, Pkcs11Kms, SecretBytes};
use ykt_scp::{
    CardConfig, CardSession, DerivedHostConfig, HostSession, KeySet, Protocol, SecurityLevel,
    StaticKeyKind,
};
use ykt_tsm::vault::{ChannelDeriver, KeyEncryption};
use ykt_tsm::*;
use ykt_tsm_kms::{KmsVault, Slot, key_id};

use crate::support::TestRng;

const CHILD: &str = "YKT_TSM_KMS_SOFTHSM_CHILD";
const LABEL: &str = "ykt-tsm-kms-test";
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
        what: "KmsVault over PKCS#11 (SoftHSM2)",
        dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tsm-kms-softhsm-{}", std::process::id())),
    };
    let ran = testing::run_softhsm_child(&child).unwrap_or_else(|e| panic!("{e}"));
    if ran.is_none() {
        return;
    }
    eprintln!(
        "NOTE: the ykt-tsm flows run over the software KMS only: the PKCS#11 backend refuses \
         derivations (ISD keys per SE, card keys), the e-purse MACs, composed wraps and SM2"
    );
}

/// Runs only inside the child process that [`softhsm`] starts.
#[test]
fn softhsm_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let config = Pkcs11Config::new(&module(), LABEL, SecretBytes::from_slice(PIN.as_bytes()));
    let audit = Arc::new(MemoryAudit::new());
    let kms: Arc<dyn Kms> = Arc::new(Pkcs11Kms::open(&config, audit.clone()).unwrap());
    let mut vault = KmsVault::new(kms.clone());

    // A known key set in the token (the "under" of PUT KEY), and a set generated there.
    let known = KeyName::new("ssd/known");
    let values = [[0x31u8; 16], [0x32; 16], [0x33; 16]];
    for (slot, v) in [Slot::Enc, Slot::Mac, Slot::Dek].into_iter().zip(values) {
        kms.import(
            &key_id(&known, slot, 0x30).unwrap(),
            KeySpec::internal(KeyType::Aes128),
            &SecretBytes::from_slice(&v),
            "test",
        )
        .unwrap();
    }
    let fresh = KeyName::new("ssd/fresh");
    vault
        .generate_key_set(&fresh, 0x31, &mut TestRng(3))
        .unwrap();
    assert!(vault.contains(&fresh));
    assert_eq!(
        vault
            .channel_key_info(&KeyRef::Named(fresh.clone()))
            .unwrap(),
        (0x31, StaticKeyKind::Aes(16))
    );
    // PUT KEY data under the known set: decrypt it here, check the KCVs the token computed.
    let wrapped = vault
        .wrap_key_set(&fresh, &KeyRef::Named(known), KeyEncryption::StaticDek)
        .unwrap();
    let dek = AesKey::from_slice(&values[2]).unwrap();
    let clear: Vec<AesKey> = (0..3)
        .map(|i| {
            let at = 1 + i * 23 + 3;
            AesKey::from_slice(&cbc_decrypt(&dek, &[0u8; 16], &wrapped.data[at..at + 16]).unwrap())
                .unwrap()
        })
        .collect();
    for (k, kcv) in clear.iter().zip(wrapped.check_values) {
        assert_eq!(ecb_encrypt(k, &[0x01; 16]).unwrap()[..3], kcv);
    }
    // A whole SCP03 session with the fresh keys: the card holds them in clear (as a card
    // does), the host's session keys come from the token.
    let keys = KeySet::aes(0x31, clear[0].clone(), clear[1].clone(), clear[2].clone());
    let protocol = Protocol::scp03(0x70).unwrap();
    let aid = proposals::SSD_AID.to_vec();
    let mut card = CardSession::new(CardConfig {
        protocol,
        aid: aid.clone(),
        key_diversification_data: [0; 10],
        minimum_level: SecurityLevel::C_MAC,
    });
    let (mut host, iu) = HostSession::initialize_update_derived(
        DerivedHostConfig {
            key_version: 0x31,
            key_kind: StaticKeyKind::Aes(16),
            protocol,
            level: SecurityLevel::ALL,
            security_domain_aid: Some(aid),
        },
        &[0x11; 8],
    )
    .unwrap();
    let answer = card.on_initialize_update(&iu, &keys, 5, &[]).unwrap();
    let set = KeyRef::Named(fresh.clone());
    let mut deriver = ChannelDeriver::new(&vault, &set);
    let ea = host
        .on_initialize_update_response_derived(
            &ResponseApdu::new(answer, StatusWord::SUCCESS),
            &mut deriver,
        )
        .unwrap();
    card.on_external_authenticate(&ea).unwrap();
    host.on_external_authenticate_response(&ResponseApdu::status(StatusWord::SUCCESS))
        .unwrap();
    let cmd = ykt_apdu::CommandApdu::new(0x80, 0xCA, 0x00, 0x66).with_le(256);
    assert_eq!(card.unwrap_command(&host.wrap(&cmd).unwrap()).unwrap(), cmd);
    // Every use reached the audit sink.
    let events = audit.take();
    assert!(
        events
            .iter()
            .any(|e| e.operation == ykt_kms::Operation::Mac)
    );
    assert!(
        events
            .iter()
            .any(|e| e.operation == ykt_kms::Operation::Wrap)
    );
    assert!(events.iter().all(|e| e.succeeded));
    // The handover and anything derived are refused, with the software backend named.
    assert_eq!(
        vault.channel_key_info(&KeyRef::Isd {
            master: KeyName::new("sei/isd-master"),
            seid: SeId([0; 10]),
        }),
        Err(VaultError::UnknownKey)
    );
    vault.delete_key(&fresh);
    assert!(!vault.contains(&fresh));
    println!("{vault:?}");
}
