//! `KmsVault::provision` (a fresh hierarchy, every key generated in the KMS) and a vault over a
//! key file that survives a restart of the service between two flows.

use std::sync::Arc;

use ykt_crypto::purse::{PurseAlgorithm, Sm4Rules};
use ykt_kms::{KdfParams, KeyType, Kms, MemoryAudit, SecretBytes, SoftwareKms};
use ykt_purse::testing::{TEST_PIN, test_master_keys};
use ykt_scp::StaticKeyKind;
use ykt_tsm::vault::{MasterKeyInfo, TokenKind};
use ykt_tsm::*;
use ykt_tsm_kms::{KmsVault, PurseIssuerSetup};

use crate::support::*;

#[test]
fn a_fresh_sp_hierarchy_opens_and_loads_a_card() {
    for algorithm in [PurseAlgorithm::Tdes, PurseAlgorithm::Sm4(Sm4Rules::BRIEF)] {
        let kmses = software_kmses();
        let sei = KmsVault::provision_test_keys(kmses.sei.clone(), &parties(), Role::Sei).unwrap();
        let setup = PurseIssuerSetup::new(algorithm, &[0x12, 0x34, 0x56]);
        let sp = KmsVault::provision(kmses.sp.clone(), &parties(), Role::Sp, &setup).unwrap();
        // Only generated keys, none of the test values: the transport key differs.
        let (_, msp) = memory_vaults();
        assert_ne!(
            sp.transport_public_key(&parties().sp_transport).unwrap(),
            msp.transport_public_key(&parties().sp_transport).unwrap()
        );
        let mut world = World::new(sei, sp);
        let mut card = new_se(11);
        let s = story(&mut world, &mut card);
        assert_eq!(s.loaded, Some(10_000), "{algorithm:?}");
        assert_eq!(s.returned_balance, Some(10_000));
        let types: Vec<KeyType> = kmses
            .sp
            .list()
            .unwrap()
            .iter()
            .map(|k| k.key_type)
            .collect();
        assert!(types.contains(&KeyType::Sm2));
    }
}

#[test]
fn a_fresh_sei_hierarchy_is_internal() {
    let kms: Arc<dyn Kms> = Arc::new(SoftwareKms::in_memory(Arc::new(MemoryAudit::new())));
    let setup = PurseIssuerSetup::new(PurseAlgorithm::Tdes, &TEST_PIN);
    let sei = KmsVault::provision(kms.clone(), &parties(), Role::Sei, &setup).unwrap();
    let keys = kms.list().unwrap();
    assert_eq!(keys.len(), 5);
    assert!(keys.iter().all(|k| !k.exportable));
    let isd = KeyRef::Isd {
        master: parties().isd_master,
        seid: seid_of_serial(1),
    };
    assert_eq!(
        sei.channel_key_info(&isd).unwrap(),
        (0x30, StaticKeyKind::Aes(16))
    );
    let token = sei
        .sign_token(
            &parties().token_signer,
            TokenKind::Load,
            0x02,
            0,
            &[1, 2, 3],
        )
        .unwrap();
    assert_eq!(token.len(), 64);
    // Provisioning twice refuses to replace anything.
    assert!(KmsVault::provision(kms, &parties(), Role::Sei, &setup).is_err());
}

/// Open card with one process, top-up with the next: the SP's KMS is a key file opened again,
/// and the issuer's configuration (key list, PIN, profile) is registered again at start.
#[test]
fn a_key_file_vault_survives_a_restart() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tsm-kms-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sp.keys");
    let pass = SecretBytes::from_slice(b"correct horse battery staple");
    let audit = Arc::new(MemoryAudit::new());
    let file: Arc<dyn Kms> = Arc::new(
        SoftwareKms::create(
            &path,
            &pass,
            KdfParams::new(8, 1, 1).unwrap(),
            audit.clone(),
        )
        .unwrap(),
    );
    let kmses = software_kmses();
    let sei = KmsVault::provision_test_keys(kmses.sei.clone(), &parties(), Role::Sei).unwrap();
    let sp = KmsVault::provision_test_keys(file, &parties(), Role::Sp).unwrap();
    let mut world = World::new(sei, sp);
    let mut card = new_se(12);
    let mut flow = Flow::open_card("open-1", parties(), Management::Authorized, test_card());
    let instance = drive(&mut flow, &mut world, &mut card)
        .unwrap()
        .instance
        .unwrap();

    // Restart: a new SP vault over the key file opened again.
    let reopened: Arc<dyn Kms> = Arc::new(SoftwareKms::open(&path, &pass, audit).unwrap());
    let mut sp = KmsVault::new(reopened);
    sp.register_purse_issuer(
        parties().purse_issuer,
        test_master_keys(PurseAlgorithm::Tdes)
            .iter()
            .map(MasterKeyInfo::from)
            .collect(),
        &TEST_PIN,
        ykt_purse::PurseProfile::EPURSE,
        Sm4Rules::BRIEF,
    );
    world.sp = sp;
    world.payments.pay("o1", instance.card_number, 700);
    world.orders.begin("o1", "topup-o1").unwrap();
    let mut flow = Flow::top_up(
        "topup-o1",
        parties(),
        &instance,
        OrderRef {
            order_id: "o1".to_string(),
            amount: 700,
        },
    )
    .unwrap();
    assert_eq!(
        drive(&mut flow, &mut world, &mut card).unwrap().balance,
        Some(700)
    );
    // The key file holds no key value in clear.
    let bytes = std::fs::read(&path).unwrap();
    for m in test_master_keys(PurseAlgorithm::Tdes) {
        let k = m.key.expose();
        assert!(!bytes.windows(k.len()).any(|w| w == k));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
