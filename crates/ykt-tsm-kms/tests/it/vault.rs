//! `KmsVault`'s operations against `MemoryVault`'s on the same keys: ISD keys per SE (the
//! `derive_isd_keys` rule inside the KMS), channel operations, PUT KEY data under ISD keys and
//! under an SCP02 session DEK, the handover between two KMSes, tokens (SM2, RSA), receipts.

use ykt_crypto::{AesKey, TdesKey};
use ykt_gp::dm::{ReceiptContext, TokenKind};
use ykt_kms::{KeySpec, KeyType, Kms, SecretBytes, SignatureAlgorithm};
use ykt_scp::{KeySet, StaticKeyKind, StaticKeyOperation, StaticKeyRole, StaticKeys};
use ykt_tsm::vault::{KeyEncryption, derive_isd_keys};
use ykt_tsm::*;
use ykt_tsm_kms::{KmsVault, Slot, key_id};

use crate::support::*;

fn import_set(kms: &dyn Kms, name: &KeyName, set: &KeySet, exportable: bool) {
    let (ty, keys): (KeyType, Vec<Vec<u8>>) = match &set.keys {
        StaticKeys::Aes { enc, mac, dek } => (
            KeyType::Aes128,
            [enc, mac, dek].map(|k| k.expose().to_vec()).to_vec(),
        ),
        StaticKeys::Tdes { enc, mac, dek } => (
            KeyType::Tdes2,
            [enc, mac, dek].map(|k| k.expose().to_vec()).to_vec(),
        ),
        StaticKeys::Sm4 { .. } => unreachable!(),
    };
    let spec = if exportable {
        KeySpec::exportable(ty)
    } else {
        KeySpec::internal(ty)
    };
    for (slot, v) in [Slot::Enc, Slot::Mac, Slot::Dek].into_iter().zip(keys) {
        kms.import(
            &key_id(name, slot, set.version).unwrap(),
            spec,
            &SecretBytes::new(v),
            "test",
        )
        .unwrap();
    }
}

fn aes_set(version: u8, base: u8) -> KeySet {
    let k = |d: u8| AesKey::from_slice(&[base + d; 16]).unwrap();
    KeySet::aes(version, k(0), k(1), k(2))
}

#[test]
fn isd_keys_channel_and_put_key_equal_the_memory_vaults() {
    let kmses = software_kmses();
    let (kv, _) = kms_vaults(&kmses);
    let (mut mv, _) = memory_vaults();
    let ssd = KeyName::new("ssd/test");
    let set = aes_set(0x30, 0x70);
    import_set(&*kmses.sei, &ssd, &set, true);
    mv.insert_key_set(ssd.clone(), set);
    for serial in [1, 2, 200] {
        let seid = seid_of_serial(serial);
        let isd = KeyRef::Isd {
            master: parties().isd_master,
            seid,
        };
        // The per-SE keys are the rule's: the memory vault's key set is derive_isd_keys.
        let derived = derive_isd_keys(&isd_master(), &seid).unwrap();
        assert_eq!(
            hex::encode(mv.key_set(&isd).unwrap().keys_bytes().as_slice()),
            hex::encode(derived.keys_bytes().as_slice())
        );
        assert_eq!(
            kv.channel_key_info(&isd).unwrap(),
            (0x30, StaticKeyKind::Aes(16))
        );
        for (i, key) in [StaticKeyRole::Enc, StaticKeyRole::Mac, StaticKeyRole::Dek]
            .into_iter()
            .enumerate()
        {
            let data = [
                serial, i as u8, 0xA5, 0x5A, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
            ];
            let op = StaticKeyOperation::Cmac { key, data: &data };
            assert_eq!(
                *kv.channel_operation(&isd, &op).unwrap(),
                *mv.channel_operation(&isd, &op).unwrap()
            );
        }
        assert_eq!(
            kv.wrap_key_set(&ssd, &isd, KeyEncryption::StaticDek)
                .unwrap(),
            mv.wrap_key_set(&ssd, &isd, KeyEncryption::StaticDek)
                .unwrap()
        );
    }
    // Unknown names.
    assert_eq!(
        kv.channel_key_info(&KeyRef::Named(KeyName::new("nope"))),
        Err(VaultError::UnknownKey)
    );
}

trait KeyBytes {
    fn keys_bytes(&self) -> Vec<u8>;
}

impl KeyBytes for KeySet {
    fn keys_bytes(&self) -> Vec<u8> {
        match &self.keys {
            StaticKeys::Aes { enc, mac, dek } => {
                [enc.expose(), mac.expose(), dek.expose()].concat()
            }
            StaticKeys::Tdes { enc, mac, dek } => {
                [enc.expose(), mac.expose(), dek.expose()].concat()
            }
            StaticKeys::Sm4 { enc, mac, dek } => {
                [&enc.expose()[..], &mac.expose()[..], &dek.expose()[..]].concat()
            }
        }
    }
}

/// SCP02: session keys (3DES-CBC) and PUT KEY under the session DEK, as the memory vault.
#[test]
fn scp02_channel_and_session_dek_put_key() {
    let kmses = software_kmses();
    let kv = KmsVault::new(kmses.sp.clone());
    let mut mv = MemoryVault::new();
    let t = |b: u8| TdesKey::from_slice(&[b; 16]).unwrap();
    let isd = KeySet::tdes(0x20, t(0x10), t(0x21), t(0x32));
    let new = KeySet::tdes(0x21, t(0x43), t(0x54), t(0x65));
    let (isd_name, new_name) = (KeyName::new("scp02/isd"), KeyName::new("scp02/new"));
    import_set(&*kmses.sp, &isd_name, &isd, false);
    import_set(&*kmses.sp, &new_name, &new, true);
    mv.insert_key_set(isd_name.clone(), isd);
    mv.insert_key_set(new_name.clone(), new);
    let isd = KeyRef::Named(isd_name);
    assert_eq!(
        kv.channel_key_info(&isd).unwrap(),
        (0x20, StaticKeyKind::Tdes)
    );
    let data = [0x01, 0x82, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for key in [StaticKeyRole::Enc, StaticKeyRole::Mac, StaticKeyRole::Dek] {
        let op = StaticKeyOperation::TdesCbc { key, data: &data };
        assert_eq!(
            *kv.channel_operation(&isd, &op).unwrap(),
            *mv.channel_operation(&isd, &op).unwrap()
        );
    }
    let enc = KeyEncryption::Scp02SessionDek {
        sequence_counter: [0x00, 0x05],
    };
    let got = kv.wrap_key_set(&new_name, &isd, enc).unwrap();
    assert_eq!(got, mv.wrap_key_set(&new_name, &isd, enc).unwrap());
    // A 3DES set has no static-DEK PUT KEY (SCP02 uses the session DEK).
    assert_eq!(
        kv.wrap_key_set(&new_name, &isd, KeyEncryption::StaticDek),
        Err(VaultError::KeyType)
    );
}

/// The SSD handover between two KMS vaults, and into a memory vault: the imported keys work
/// the same (their CMACs agree).
#[test]
fn handover_between_kms_vaults() {
    let kmses = software_kmses();
    let (mut sei, mut sp) = kms_vaults(&kmses);
    let (_, mut msp) = memory_vaults();
    let name = KeyName::new("ssd/handover");
    sei.generate_key_set(&name, 0x30, &mut TestRng(1)).unwrap();
    assert_eq!(
        sei.generate_key_set(&name, 0x30, &mut TestRng(1)),
        Err(VaultError::KeyExists)
    );
    let public = sp.transport_public_key(&parties().sp_transport).unwrap();
    assert_eq!(
        public,
        msp.transport_public_key(&parties().sp_transport).unwrap()
    );
    let blob = sei.export_key_set(&name, &public, &mut TestRng(2)).unwrap();
    let mut damaged = blob.clone();
    damaged[70] ^= 0x01;
    assert_eq!(
        sp.import_key_set(&name, &parties().sp_transport, &damaged),
        Err(VaultError::Unwrap)
    );
    assert!(!sp.contains(&name));
    sp.import_key_set(&name, &parties().sp_transport, &blob)
        .unwrap();
    sp.import_key_set(&name, &parties().sp_transport, &blob)
        .unwrap();
    msp.import_key_set(&name, &parties().sp_transport, &blob)
        .unwrap();
    let set = KeyRef::Named(name.clone());
    assert_eq!(
        sp.channel_key_info(&set).unwrap(),
        (0x30, StaticKeyKind::Aes(16))
    );
    for key in [StaticKeyRole::Enc, StaticKeyRole::Mac, StaticKeyRole::Dek] {
        let op = StaticKeyOperation::Cmac {
            key,
            data: b"handover",
        };
        let a = sei.channel_operation(&set, &op).unwrap();
        assert_eq!(*a, *sp.channel_operation(&set, &op).unwrap());
        assert_eq!(*a, *msp.channel_operation(&set, &op).unwrap());
    }
    // Another set under the same name is refused, and the scratch copy is gone.
    let other = KeyName::new("ssd/other");
    sei.generate_key_set(&other, 0x30, &mut TestRng(3)).unwrap();
    let blob2 = sei
        .export_key_set(&other, &public, &mut TestRng(4))
        .unwrap();
    assert_eq!(
        sp.import_key_set(&name, &parties().sp_transport, &blob2),
        Err(VaultError::KeyExists)
    );
    assert!(
        !kmses
            .sp
            .list()
            .unwrap()
            .iter()
            .any(|k| k.id.name().contains("reimport") || k.id.name().starts_with("h/"))
    );
    assert_eq!(*a_enc(&sp, &set), *a_enc(&sei, &set));
    sp.delete_key(&name);
    assert!(!sp.contains(&name));
}

#[test]
fn tokens_sm2_and_rsa_verify_with_the_cards_key() {
    let kmses = software_kmses();
    let (sei, _) = kms_vaults(&kmses);
    let (msei, _) = memory_vaults();
    let data = [0x07, 0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x00, 0x00];
    let p = parties();
    let t = sei
        .sign_token(&p.token_signer, TokenKind::Load, 0x02, 0x00, &data)
        .unwrap();
    let input = ykt_gp::dm::token_input(TokenKind::Load, 0x02, 0x00, &data).unwrap();
    token_signer()
        .verification_key()
        .verify(TokenKind::Load, 0x02, 0x00, &data, &t)
        .unwrap();
    // The memory vault's token verifies the same way (SM2 signatures differ per signing).
    let m = msei
        .sign_token(&p.token_signer, TokenKind::Load, 0x02, 0x00, &data)
        .unwrap();
    assert_eq!(m.len(), t.len());
    token_signer()
        .verification_key()
        .verify(TokenKind::Load, 0x02, 0x00, &data, &m)
        .unwrap();
    let mut forged = t.clone();
    forged[5] ^= 1;
    assert!(
        token_signer()
            .verification_key()
            .verify(TokenKind::Load, 0x02, 0x00, &data, &forged)
            .is_err()
    );
    // RSA, generated in the KMS.
    let rsa = KeyName::new("sei/token-rsa");
    let id = key_id(&rsa, Slot::TokenSigner, 1).unwrap();
    kmses
        .sei
        .generate(&id, KeySpec::internal(KeyType::Rsa), "test")
        .unwrap();
    let t = sei
        .sign_token(&rsa, TokenKind::Load, 0x02, 0x00, &data)
        .unwrap();
    kmses
        .sei
        .verify(&id, &SignatureAlgorithm::RsaPkcs1Sha256, &input, &t, "test")
        .unwrap();
    let ykt_kms::PublicKey::Rsa(public) = kmses.sei.public_key(&id).unwrap() else {
        unreachable!()
    };
    ykt_gp::dm::TokenKey::Rsa(public)
        .verify(TokenKind::Load, 0x02, 0x00, &data, &t)
        .unwrap();
}

#[test]
fn receipts_as_the_memory_vault_judges_them() {
    let kmses = software_kmses();
    let (sei, _) = kms_vaults(&kmses);
    let (msei, _) = memory_vaults();
    let key = ykt_gp::dm::ReceiptKey::aes(AesKey::from_slice(&RECEIPT_KEY).unwrap());
    let elf = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01];
    let sd = proposals::SSD_AID;
    let context = ReceiptContext::Load {
        elf_aid: &elf,
        sd_aid: &sd,
    };
    let good = ykt_gp::dm::receipt(&key, 3, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], &context)
        .unwrap()
        .to_response();
    let mut bad = good.clone();
    bad[3] ^= 1;
    let p = parties();
    for response in [good.clone(), bad, vec![0x00], vec![0x10, 1, 2]] {
        assert_eq!(
            sei.verify_receipt(&p.receipt_key, &response, &context),
            msei.verify_receipt(&p.receipt_key, &response, &context),
            "{}",
            hex::encode(&response)
        );
    }
    assert_eq!(sei.verify_receipt(&p.receipt_key, &good, &context), Ok(()));
}

#[test]
fn key_names_map_deterministically() {
    let a = key_id(&KeyName::new("sei/isd-master"), Slot::Enc, 0x30).unwrap();
    assert_eq!(a.name(), "sei/isd-master/enc");
    assert_eq!(
        a,
        key_id(&KeyName::new("sei/isd-master"), Slot::Enc, 0x30).unwrap()
    );
    // A name the KMS cannot take is hashed, the same way every time, apart from others.
    let long = KeyName(format!("ssd/{}", "x".repeat(80)));
    let b = key_id(&long, Slot::Mac, 1).unwrap();
    assert!(b.name().starts_with("h/") && b.name().ends_with("/mac"));
    assert_eq!(b, key_id(&long, Slot::Mac, 1).unwrap());
    assert_ne!(
        b,
        key_id(&KeyName(format!("ssd/{}", "y".repeat(80))), Slot::Mac, 1).unwrap()
    );
    let odd = key_id(&KeyName::new("sp issuer ü"), Slot::Receipt, 1).unwrap();
    assert!(odd.name().starts_with("h/"));
}

fn a_enc(vault: &KmsVault, set: &KeyRef) -> zeroize::Zeroizing<[u8; 16]> {
    let op = StaticKeyOperation::Cmac {
        key: StaticKeyRole::Enc,
        data: b"which set",
    };
    vault.channel_operation(set, &op).unwrap()
}
