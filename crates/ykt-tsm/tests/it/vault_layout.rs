//! The layout helpers a vault that keeps its keys elsewhere builds on (`purse_perso_template`,
//! `wrapped_key_set`, the handover header): filled in with clear keys they give exactly what
//! `MemoryVault` gives.

use ykt_crypto::purse::{PurseAlgorithm, Sm4Rules};
use ykt_crypto::{AesKey, cbc_encrypt, ecb_encrypt};
use ykt_gp_host::commands::put_key::{self, KeyEncryptionKey};
use ykt_purse::PurseProfile;
use ykt_purse::testing::{TEST_PIN, test_master_keys};
use ykt_scp::{KeySet, StaticKeyKind, StaticKeys};
use ykt_tsm::vault::{
    HANDOVER_HEADER_LEN, MasterKeyInfo, PersoPart, encode_handover, handover_header,
    key_check_input, parse_handover_header, purse_perso_template, wrapped_key_set,
};
use ykt_tsm::*;

use crate::support::test_card;

fn aes_set(version: u8, base: u8) -> KeySet {
    let k = |d: u8| AesKey::from_slice(&[base + d; 16]).unwrap();
    KeySet::aes(version, k(0), k(1), k(2))
}

#[test]
fn perso_template_filled_in_equals_the_memory_vaults_blocks() {
    for alg in [PurseAlgorithm::Tdes, PurseAlgorithm::Sm4(Sm4Rules::BRIEF)] {
        let masters = test_master_keys(alg);
        let mut vault = MemoryVault::new();
        let issuer = KeyName::new("issuer");
        vault.insert_purse_issuer(
            issuer.clone(),
            masters.clone(),
            &TEST_PIN,
            PurseProfile::EPURSE,
            Sm4Rules::BRIEF,
        );
        let ssd = KeyName::new("ssd");
        let set = aes_set(0x31, 0x60);
        vault.insert_key_set(ssd.clone(), set.clone());
        let want = vault
            .purse_perso_blocks(&issuer, &test_card(), &KeyRef::Named(ssd))
            .unwrap();

        let infos: Vec<MasterKeyInfo> = masters.iter().map(MasterKeyInfo::from).collect();
        let template =
            purse_perso_template(&infos, &TEST_PIN, PurseProfile::EPURSE, &test_card()).unwrap();
        let card_keys = ykt_purse::IssuerFactory::new(masters)
            .unwrap()
            .card_keys(&test_card().card_number.asn());
        let StaticKeys::Aes { dek, .. } = &set.keys else {
            unreachable!()
        };
        assert_eq!(template.len(), want.len());
        let mut seen = 0;
        for (t, w) in template.iter().zip(&want) {
            assert_eq!((t.p1, t.p2), (w.p1, w.p2));
            let mut plain = Vec::new();
            for part in &t.parts {
                match part {
                    PersoPart::Clear(b) => plain.extend_from_slice(b),
                    PersoPart::CardKey(n) => {
                        seen += 1;
                        plain.extend_from_slice(card_keys[*n].key.expose());
                    }
                    _ => unreachable!(),
                }
            }
            let data = if t.encrypted {
                cbc_encrypt(dek, &[0u8; 16], &plain).unwrap()
            } else {
                plain
            };
            assert_eq!(hex::encode(&data), hex::encode(&w.data));
        }
        assert_eq!(seen, card_keys.len());
        // The template carries no card key value.
        let debug = format!("{template:?}");
        for k in &card_keys {
            assert!(!debug.contains(&hex::encode(k.key.expose())));
        }
    }
}

#[test]
fn wrapped_key_set_equals_put_key_data() {
    let new = aes_set(0x31, 0x70);
    let under = aes_set(0x30, 0x50);
    let (want, want_kcv) =
        put_key::key_set_data(&new, &KeyEncryptionKey::Static(&under.keys)).unwrap();
    let (StaticKeys::Aes { enc, mac, dek }, StaticKeys::Aes { dek: kek, .. }) =
        (&new.keys, &under.keys)
    else {
        unreachable!()
    };
    let input = key_check_input(StaticKeyKind::Aes(16));
    let block = |k: &AesKey| {
        let kcv = ecb_encrypt(k, &input).unwrap();
        (
            cbc_encrypt(kek, &[0u8; 16], k.expose()).unwrap(),
            [kcv[0], kcv[1], kcv[2]],
        )
    };
    let got = wrapped_key_set(
        0x31,
        StaticKeyKind::Aes(16),
        16,
        [block(enc), block(mac), block(dek)],
    )
    .unwrap();
    assert_eq!(hex::encode(&got.data), hex::encode(&want));
    assert_eq!(got.check_values, want_kcv);
    assert!(
        wrapped_key_set(
            0x80,
            StaticKeyKind::Aes(16),
            16,
            [block(enc), block(mac), block(dek)]
        )
        .is_err()
    );
}

#[test]
fn handover_header_is_the_encodings_prefix() {
    let set = aes_set(0x30, 0x10);
    let plain = encode_handover(&set).unwrap();
    assert_eq!(&plain[..HANDOVER_HEADER_LEN], &handover_header(0x30, 16));
    assert_eq!(parse_handover_header(&plain[..3]), Some((0x30, 16)));
    assert_eq!(parse_handover_header(&[0x30, 0x80, 16]), None);
}
