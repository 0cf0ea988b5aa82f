//! ykt-tsm's flows with `KmsVault` over the software KMS: the same story as with
//! `MemoryVault`, every key use audited, and no key byte in any state, message or Debug form.

use std::collections::BTreeSet;

use ykt_crypto::purse::PurseAlgorithm;
use ykt_crypto::{AesKey, cbc_decrypt};
use ykt_kms::{KeySpec, KeyType, SecretBytes};
use ykt_purse::testing::{TEST_ASN, test_master_keys};
use ykt_scp::StaticKeys;
use ykt_tsm::vault::{KeyEncryption, derive_isd_keys};
use ykt_tsm::*;
use ykt_tsm_kms::{KmsVault, Slot, key_id};

use crate::support::*;

#[test]
fn open_top_up_return_as_with_the_memory_vault() {
    for management in [Management::Authorized, Management::Delegated] {
        let (sei, sp) = memory_vaults();
        let mut memory = World::new(sei, sp);
        let mut card = new_se(7);
        let want = story_with(&mut memory, &mut card, management);

        let kmses = software_kmses();
        let (sei, sp) = kms_vaults(&kmses);
        let mut kms = World::new(sei, sp);
        let mut card = new_se(7);
        let got = story_with(&mut kms, &mut card, management);
        assert_eq!(got, want, "{management:?}");
        assert_eq!(got.opened.state, InstanceState::Active);
        assert_eq!(got.returned.unwrap().state, InstanceState::Deleted);
        if management == Management::Authorized {
            assert_eq!(got.loaded, Some(10_000));
            assert_eq!(got.queried, 10_000);
            assert_eq!(got.returned_balance, Some(10_000));
            assert!(!got.registry_after.is_empty());
        }
    }
}

fn story_with<V: KeyVault>(
    world: &mut World<V>,
    card: &mut ykt_card::Card,
    m: Management,
) -> Story {
    if m == Management::Authorized {
        story(world, card)
    } else {
        story_delegated(world, card)
    }
}

/// Open card and card return under Delegated Management (tokens and receipts); no load.
fn story_delegated<V: KeyVault>(world: &mut World<V>, card: &mut ykt_card::Card) -> Story {
    let mut flow = Flow::open_card("open-d", parties(), Management::Delegated, test_card());
    let opened = drive(&mut flow, world, card).unwrap();
    let instance = opened.instance.clone().unwrap();
    let mut flow = Flow::card_return("return-d", parties(), &instance).unwrap();
    let returned = drive(&mut flow, world, card).unwrap();
    Story {
        opened: instance,
        opened_balance: opened.balance,
        loaded: None,
        queried: 0,
        returned: returned.instance,
        returned_balance: returned.balance,
        registry_after: Vec::new(),
    }
}

#[test]
fn the_audit_sinks_see_every_key_use() {
    let kmses = software_kmses();
    let (sei, sp) = kms_vaults(&kmses);
    kmses.sei_audit.take();
    kmses.sp_audit.take();
    let mut world = World::new(sei, sp);
    let mut card = new_se(8);
    story(&mut world, &mut card);
    let mut flow = Flow::open_card("open-d", parties(), Management::Delegated, test_card());
    let opened = drive(&mut flow, &mut world, &mut card).unwrap();
    let mut flow = Flow::card_return("return-d", parties(), &opened.instance.unwrap()).unwrap();
    drive(&mut flow, &mut world, &mut card).unwrap();

    let names = |events: &[ykt_kms::AuditEvent]| -> BTreeSet<String> {
        assert!(events.iter().all(|e| e.succeeded), "{events:#?}");
        events
            .iter()
            .flat_map(|e| [Some(&e.key), e.other_key.as_ref()])
            .flatten()
            .map(|k| k.name().to_string())
            .collect()
    };
    let sei = names(&kmses.sei_audit.take());
    let sp = names(&kmses.sp_audit.take());
    let p = parties();
    let seid = seid_of_serial(8);
    let ssd = hex::encode(&proposals::SSD_AID);
    let initial = KeyName(format!("ssd/{seid}/{ssd}/initial"));
    let sp_set = KeyName(format!("ssd/{seid}/{ssd}/sp"));
    let mut want_sei = vec![
        key_id(&p.token_signer, Slot::TokenSigner, 1).unwrap(),
        key_id(&p.receipt_key, Slot::Receipt, 1).unwrap(),
    ];
    let mut want_sp = vec![key_id(&p.sp_transport, Slot::Transport, 1).unwrap()];
    // The SSD's key sets are derived from each role's SSD master (nothing per SSD stored); the
    // SP holds the handed-over initial set only until the card confirmed its own.
    let sei_master = KeyName(ykt_tsm_kms::SEI_SSD_MASTER.to_string());
    let sp_master = KeyName(ykt_tsm_kms::SP_SSD_MASTER.to_string());
    for slot in [Slot::Enc, Slot::Mac, Slot::Dek] {
        want_sei.push(key_id(&p.isd_master, slot, 0x30).unwrap());
        want_sei.push(key_id(&sei_master, slot, 1).unwrap());
        want_sp.push(key_id(&initial, slot, 0x30).unwrap());
        want_sp.push(key_id(&sp_master, slot, 1).unwrap());
    }
    for m in test_master_keys(PurseAlgorithm::Tdes) {
        let slot = Slot::PurseMaster {
            usage: m.usage,
            index: m.index,
        };
        want_sp.push(key_id(&p.purse_issuer, slot, m.version).unwrap());
    }
    for id in &want_sei {
        assert!(
            sei.contains(id.name()),
            "{id} not in the SEI's audit: {sei:?}"
        );
    }
    for id in &want_sp {
        assert!(sp.contains(id.name()), "{id} not in the SP's audit: {sp:?}");
    }
    // Nothing else was used.
    let all: BTreeSet<String> = want_sei
        .iter()
        .chain(&want_sp)
        .map(|i| i.name().to_string())
        .collect();
    assert!(
        sei.iter().chain(&sp).all(|n| all.contains(n)),
        "{sei:?} {sp:?}"
    );
    // No SSD key set is stored in either KMS after the flows.
    for (kms, set) in [
        (&kmses.sei, &initial),
        (&kmses.sp, &initial),
        (&kmses.sp, &sp_set),
    ] {
        let prefix = format!("{}/", set.0);
        assert!(
            !kms.list()
                .unwrap()
                .iter()
                .any(|k| k.id.name().starts_with(&prefix))
        );
    }
}

/// The values of a key set in a KMS, read the only way there is: wrapped under a probe key
/// set imported for the test, then decrypted here.
fn recover(vault: &KmsVault, set: &KeyName) -> Vec<Vec<u8>> {
    let probe = KeyName::new("test/probe");
    let dek = [0x99u8; 16];
    for slot in [Slot::Enc, Slot::Mac, Slot::Dek] {
        let id = key_id(&probe, slot, 0x7E).unwrap();
        if vault.kms().info(&id).is_err() {
            vault
                .kms()
                .import(
                    &id,
                    KeySpec::internal(KeyType::Aes128),
                    &SecretBytes::from_slice(&dek),
                    "test",
                )
                .unwrap();
        }
    }
    let wrapped = vault
        .wrap_key_set(set, &KeyRef::Named(probe), KeyEncryption::StaticDek)
        .unwrap();
    let dek = AesKey::from_slice(&dek).unwrap();
    (0..3)
        .map(|i| {
            let at = 1 + i * 23 + 3;
            cbc_decrypt(&dek, &[0u8; 16], &wrapped.data[at..at + 16]).unwrap()
        })
        .collect()
}

#[test]
fn no_static_key_in_states_messages_or_debug() {
    let kmses = software_kmses();
    let (sei, sp) = kms_vaults(&kmses);
    let mut world = World::new(sei, sp);
    let mut card = new_se(9);
    let mut flow = Flow::open_card("open-1", parties(), Management::Authorized, test_card());
    let instance = drive(&mut flow, &mut world, &mut card)
        .unwrap()
        .instance
        .unwrap();
    world.payments.pay("o1", instance.card_number, 500);
    world.orders.begin("o1", "topup-o1").unwrap();
    let mut flow = Flow::top_up(
        "topup-o1",
        parties(),
        &instance,
        OrderRef {
            order_id: "o1".to_string(),
            amount: 500,
        },
    )
    .unwrap();
    drive(&mut flow, &mut world, &mut card).unwrap();

    let seid = instance.seid;
    let ssd = hex::encode(&proposals::SSD_AID);
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    secrets.extend(recover(
        &world.sei,
        &KeyName(format!("ssd/{seid}/{ssd}/initial")),
    ));
    secrets.extend(recover(&world.sp, &KeyName(format!("ssd/{seid}/{ssd}/sp"))));
    for set in [isd_master(), derive_isd_keys(&isd_master(), &seid).unwrap()] {
        let StaticKeys::Aes { enc, mac, dek } = &set.keys else {
            unreachable!()
        };
        secrets.extend([enc, mac, dek].map(|k| k.expose().to_vec()));
    }
    secrets.push(token_scalar().to_vec());
    secrets.push(transport_scalar().to_vec());
    secrets.push(RECEIPT_KEY.to_vec());
    let masters = test_master_keys(PurseAlgorithm::Tdes);
    for m in &masters {
        secrets.push(m.key.expose().to_vec());
    }
    for k in ykt_purse::IssuerFactory::new(masters)
        .unwrap()
        .card_keys(&TEST_ASN)
    {
        secrets.push(k.key.expose().to_vec());
    }
    assert_eq!(secrets.len(), 6 + 6 + 3 + 6 + 6);
    // The SSD keys are real keys (the recovery found distinct values).
    assert_eq!(secrets[..6].iter().collect::<BTreeSet<_>>().len(), 6);

    let mut haystack = world.states.join("\n");
    haystack.push_str(&world.relayed.join("\n"));
    haystack.push_str(&format!("{:?}{:?}", world.sei, world.sp));
    let haystack = haystack.to_ascii_uppercase();
    assert!(world.states.len() > 10 && world.relayed.len() > 10);
    for s in &secrets {
        let h = hex::encode(s).to_ascii_uppercase();
        assert!(!haystack.contains(&h), "key bytes {h} found");
        // Nor half of one (a 3DES half, an SM2 scalar's first half).
        assert!(
            !haystack.contains(&h[..16]),
            "key bytes {h} (first half) found"
        );
    }
}
