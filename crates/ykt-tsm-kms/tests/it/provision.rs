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
    // The ISD master, the receipt key, the token signer, and the SSD master (3 keys).
    assert_eq!(keys.len(), 8);
    assert!(keys.iter().all(|k| !k.exportable));
    assert!(sei.derives_ssd_keys());
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

/// An SE from card production keyed from shared keys: the test SE's CPLC and library, its card
/// manager keyed with `master` diversified by its SEID, `token` as the token verification key
/// and `receipt` as the receipt key.
fn produced_se(
    serial: u8,
    master: &ykt_scp::KeySet,
    token: &[u8],
    receipt: [u8; 16],
) -> ykt_card::Card {
    let mut setup = testing::isd_setup(&[serial]).unwrap();
    setup.keys = vault::derive_isd_keys(master, &seid_of_serial(serial)).unwrap();
    setup.token_key = Some(ykt_gp::dm::TokenKey::Sm2(
        ykt_crypto::Sm2PublicKey::from_sec1_bytes(token).unwrap(),
    ));
    setup.receipt_key = Some((ykt_gp::dm::ReceiptAlgorithm::AesCmac, receipt));
    let entropy = Box::new(ykt_card::SeededRandom::new(u64::from(serial)));
    let mut card = ykt_card::Card::new(ykt_card::Atr::default_t1(), entropy);
    card.set_library(Box::new(testing::Library));
    ykt_gp::install_isd(&mut card, &setup).unwrap();
    card.power_on();
    card
}

/// The keys shared with card production are imported (internal), the token signer generated;
/// the hierarchy reopened from its key files with `KmsVault::open` opens a card on an SE keyed
/// from the shared keys, and refuses an SE keyed from the test master.
#[test]
fn a_shared_hierarchy_reopened_from_key_files_opens_a_card_on_a_produced_se() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tsm-kms-shared-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pass = SecretBytes::from_slice(b"correct horse battery staple");
    let params = KdfParams::new(8, 1, 1).unwrap();
    let audit = Arc::new(MemoryAudit::new());
    let enc = [0x61u8; 16];
    let mac = [0x62u8; 16];
    let dek = [0x63u8; 16];
    let receipt = [0x64u8; 16];
    let shared = ykt_tsm_kms::SharedSeKeys::new(
        0x31,
        [enc, mac, dek].map(|k| SecretBytes::from_slice(&k)),
        SecretBytes::from_slice(&receipt),
    );
    assert!(!format!("{shared:?}").contains("6161"));
    let setup = PurseIssuerSetup::new(PurseAlgorithm::Tdes, &TEST_PIN);
    let token = {
        let file: Arc<dyn Kms> = Arc::new(
            SoftwareKms::create(&dir.join("sei.kms"), &pass, params, audit.clone()).unwrap(),
        );
        let sei =
            KmsVault::provision_shared(file.clone(), &parties(), Role::Sei, &setup, Some(&shared))
                .unwrap();
        assert!(file.list().unwrap().iter().all(|k| !k.exportable));
        // The check values are the keys' (AES: the first 3 bytes of E(01 × 16)).
        let kcv = |k: &[u8; 16]| {
            let b = ykt_crypto::AesKey::from_slice(k)
                .unwrap()
                .encrypt_block(&[1u8; 16]);
            [b[0], b[1], b[2]]
        };
        assert_eq!(
            sei.isd_master_check_values(&parties().isd_master).unwrap(),
            (0x31, [kcv(&enc), kcv(&mac), kcv(&dek)])
        );
        assert_eq!(
            sei.receipt_check_value(&parties().receipt_key).unwrap(),
            kcv(&receipt)
        );
        sei.token_public_key(&parties().token_signer).unwrap()
    };
    {
        let file: Arc<dyn Kms> = Arc::new(
            SoftwareKms::create(&dir.join("sp.kms"), &pass, params, audit.clone()).unwrap(),
        );
        KmsVault::provision(file, &parties(), Role::Sp, &setup).unwrap();
    }
    let reopen = |name: &str, role| {
        let kms: Arc<dyn Kms> =
            Arc::new(SoftwareKms::open(&dir.join(name), &pass, audit.clone()).unwrap());
        KmsVault::open(kms, &parties(), role, &setup).unwrap()
    };
    let mut world = World::new(reopen("sei.kms", Role::Sei), reopen("sp.kms", Role::Sp));
    let master = ykt_scp::KeySet::aes(
        0x31,
        ykt_crypto::AesKey::from_slice(&enc).unwrap(),
        ykt_crypto::AesKey::from_slice(&mac).unwrap(),
        ykt_crypto::AesKey::from_slice(&dek).unwrap(),
    );
    let mut card = produced_se(21, &master, &token, receipt);
    let s = story(&mut world, &mut card);
    assert_eq!(s.loaded, Some(10_000));

    // An SE keyed from the test ISD master: the channel to its card manager fails.
    let mut test_se = new_se(22);
    let mut flow = Flow::open_card("open-2", parties(), Management::Authorized, test_card());
    assert!(drive(&mut flow, &mut world, &mut test_se).is_err());

    // Opening an SP hierarchy as SEI (keys missing) and one of the other purse algorithm
    // (keys of another type) are refused.
    let kms: Arc<dyn Kms> =
        Arc::new(SoftwareKms::open(&dir.join("sp.kms"), &pass, audit.clone()).unwrap());
    assert!(matches!(
        KmsVault::open(kms.clone(), &parties(), Role::Sei, &setup),
        Err(ykt_kms::KmsError::KeyNotFound(_))
    ));
    let sm4 = PurseIssuerSetup::new(PurseAlgorithm::Sm4(Sm4Rules::BRIEF), &TEST_PIN);
    assert!(matches!(
        KmsVault::open(kms, &parties(), Role::Sp, &sm4),
        Err(ykt_kms::KmsError::WrongKeyType { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A hierarchy made before SSD masters existed (none in its KMS) is opened as it was: its SSD
/// key sets are generated and stored; one with a master derives them and stores nothing, and
/// a set stored under a name is used as stored either way.
#[test]
fn ssd_key_sets_are_derived_with_a_master_and_stored_without_one() {
    let kms: Arc<dyn Kms> = Arc::new(SoftwareKms::in_memory(Arc::new(MemoryAudit::new())));
    let setup = PurseIssuerSetup::new(PurseAlgorithm::Tdes, &TEST_PIN);
    let mut sei = KmsVault::provision(kms.clone(), &parties(), Role::Sei, &setup).unwrap();
    assert!(sei.derives_ssd_keys());
    let name = KeyName(format!(
        "ssd/{}/A000000151535041C001/initial",
        seid_of_serial(3)
    ));
    let count = || kms.list().unwrap().len();
    let keys_before = count();
    // Derived: there without being stored, and generating it is refused as existing.
    assert!(sei.contains(&name));
    let mut rng = TestRng(7);
    assert_eq!(
        sei.generate_key_set(&name, 0x30, &mut rng),
        Err(VaultError::KeyExists)
    );
    assert_eq!(
        sei.channel_key_info(&KeyRef::Named(name.clone())).unwrap(),
        (0x30, StaticKeyKind::Aes(16))
    );
    assert_eq!(count(), keys_before);
    // Another role's names are not this master's to derive.
    let sp_name = KeyName(format!("ssd/{}/A000000151535041C001/sp", seid_of_serial(3)));
    assert!(!sei.contains(&sp_name));

    // Without the master: the old behaviour.
    for k in kms.list().unwrap() {
        if k.id.name().starts_with(ykt_tsm_kms::SEI_SSD_MASTER) {
            kms.destroy(&k.id, "t").unwrap();
        }
    }
    let mut old = KmsVault::open(kms.clone(), &parties(), Role::Sei, &setup).unwrap();
    assert!(!old.derives_ssd_keys());
    assert!(!old.contains(&name));
    old.generate_key_set(&name, 0x30, &mut rng).unwrap();
    assert!(old.contains(&name));
    assert_eq!(
        count(),
        keys_before - 3 + 3,
        "the master's three keys gone, the set's three stored"
    );
    // A master made later: the stored set still wins for its name (the same keys: the same
    // check values in PUT KEY data), and nothing more is stored.
    let isd = KeyRef::Isd {
        master: parties().isd_master,
        seid: seid_of_serial(3),
    };
    let kcvs = |v: &KmsVault| {
        v.wrap_key_set(&name, &isd, vault::KeyEncryption::StaticDek)
            .unwrap()
            .check_values
    };
    let stored = kcvs(&old);
    KmsVault::make_ssd_master(&*kms, Role::Sei).unwrap();
    let again = KmsVault::open(kms.clone(), &parties(), Role::Sei, &setup).unwrap();
    assert!(again.derives_ssd_keys());
    let keys_now = count();
    assert_eq!(kcvs(&again), stored);
    assert_eq!(count(), keys_now);
    // And a name with nothing stored is derived from the new master: other keys.
    let other = KeyName(format!(
        "ssd/{}/A000000151535041C001/initial",
        seid_of_serial(4)
    ));
    let derived = again
        .wrap_key_set(&other, &isd, vault::KeyEncryption::StaticDek)
        .unwrap()
        .check_values;
    assert_ne!(derived, stored);
    drop(sei);
}
