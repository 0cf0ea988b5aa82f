//! Whole sessions against the card manager (ykt-gp's ISD) on a simulated card: list, info,
//! PUT KEY rotation and reopening, locking applications, the card life cycle, diversified
//! keys, paging, every level, and the error kinds.

use proptest::prelude::*;
use ykt_apdu::StatusWord;
use ykt_card::Card;
use ykt_gp_host::diversify::{Diversification, diversify};
use ykt_gp_host::{CardLifeCycle, EntryKind, Error, GpSession, Privileges, Scope, SessionConfig};
use ykt_scp::{InitializeUpdateError, KeySet, Protocol, ScpError, SecurityLevel};

use crate::support::*;

/// Key id, version, components.
type KeyRow = (u8, u8, Vec<(u8, u8)>);

fn card_for(protocol: Protocol, keys: &KeySet) -> Card {
    card_with(&setup(protocol, keys.clone()))
}

#[test]
fn list_on_every_channel() {
    for (name, protocol, keys) in channels() {
        let mut card = card_for(protocol, &keys);
        let mut s = open(&mut card, protocol, &keys, SecurityLevel::C_MAC).unwrap();
        let registry = s.registry().unwrap();
        let isd = &registry.issuer_security_domain;
        assert_eq!(isd.len(), 1, "{name}");
        assert_eq!(isd[0].kind, EntryKind::IssuerSecurityDomain);
        assert_eq!(hx(&isd[0].aid), "A000000151000000");
        assert_eq!(isd[0].life_cycle, 0x0F);
        assert_eq!(isd[0].privileges, Some(Privileges([0x9E, 0xFE, 0x80])));
        let apps: Vec<String> = registry.applications.iter().map(|e| hx(&e.aid)).collect();
        assert_eq!(apps, [EPURSE_AID, SECOND_AID], "{name}");
        for e in &registry.applications {
            assert_eq!(e.kind, EntryKind::Application);
            assert_eq!(e.life_cycle, 0x07);
            assert_eq!(e.privileges, Some(Privileges::NONE));
        }
        assert_eq!(registry.entries().count(), 3 + registry.load_files.len());
    }
}

#[test]
fn info_cplc_card_data_keys_iin_cin() {
    for (name, protocol, keys) in channels() {
        let mut card = card_for(protocol, &keys);
        let mut s = open(&mut card, protocol, &keys, SecurityLevel::C_MAC).unwrap();
        let cplc = s.cplc().unwrap();
        assert_eq!(cplc.ic_fabricator, [0, 1]);
        assert_eq!(cplc.ic_serial_number, [12, 13, 14, 15]);
        assert_eq!(s.iin().unwrap(), h("00112233"));
        assert_eq!(s.cin().unwrap(), h("0102030405060708"));
        let card_data = s.card_data().unwrap();
        assert_eq!(card_data.gp_version, Some(h("020301")));
        assert_eq!(
            card_data.secure_channels,
            vec![(protocol.scp_id(), protocol.i())],
            "{name}"
        );
        let info = s.key_information().unwrap();
        let ty = match name {
            "scp03" => 0x88,
            "scp02" => 0x80,
            _ => 0x89,
        };
        let ids: Vec<KeyRow> = info
            .iter()
            .map(|k| (k.id, k.version, k.components.clone()))
            .collect();
        assert_eq!(
            ids,
            vec![
                (1, 0x30, vec![(ty, 16)]),
                (2, 0x30, vec![(ty, 16)]),
                (3, 0x30, vec![(ty, 16)])
            ],
            "{name}"
        );
        assert_eq!(s.key_diversification_data(), &TEST_KDD);
        assert_eq!(s.key_version(), 0x30);
        // An absent data object is the card saying no.
        assert!(matches!(
            s.get_data(0x00CF),
            Err(Error::Card {
                sw: StatusWord::REFERENCED_DATA_NOT_FOUND,
                ..
            })
        ));
    }
    // GET DATA needs no session for the card's public data.
    let (_, protocol, keys) = channels().remove(0);
    let mut card = card_for(protocol, &keys);
    let mut t = over(&mut card);
    ykt_gp_host::select(&mut t, &isd()).unwrap();
    let cplc = ykt_gp_host::get_data_plain(&mut t, 0x9F7F).unwrap();
    assert_eq!(cplc.len(), 42);
}

fn new_keys(name: &str, version: u8) -> KeySet {
    match name {
        "scp03" => aes_keys(version, 0x70),
        "scp02" => tdes_keys(version, 0x70),
        _ => sm4_keys(version, 0x70),
    }
}

#[test]
fn put_key_rotation_then_reopen_with_the_new_keys() {
    for level in [SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC] {
        for (name, protocol, keys) in channels() {
            let mut card = card_for(protocol, &keys);
            let rotated = new_keys(name, 0x31);
            {
                let mut s = open(&mut card, protocol, &keys, level).unwrap();
                s.put_key(Some(0x30), &rotated).unwrap();
                // The session runs on: the card keeps the keys it was opened with.
                assert_eq!(s.key_information().unwrap()[0].version, 0x31, "{name}");
            }
            // The old version is gone.
            match open(&mut card, protocol, &keys, level) {
                Err(Error::Card {
                    operation: ykt_gp_host::Operation::InitializeUpdate,
                    sw: StatusWord::REFERENCED_DATA_NOT_FOUND,
                }) => {}
                other => panic!("{name}: old keys: {other:?}"),
            }
            // Any key version (KVN 00) with the old key values: wrong cryptogram.
            let mut old_values = keys.clone();
            old_values.version = 0;
            match open(&mut card, protocol, &old_values, level) {
                Err(e) if e.is_wrong_keys() => {}
                other => panic!("{name}: old key values: {other:?}"),
            }
            let mut s = open(&mut card, protocol, &rotated, level).unwrap();
            assert_eq!(s.key_version(), 0x31);
            // Add a second key set and use it.
            let added = new_keys(name, 0x32);
            s.put_key(None, &added).unwrap();
            drop(s);
            let mut s = open(&mut card, protocol, &added, level).unwrap();
            let versions: Vec<u8> = s
                .key_information()
                .unwrap()
                .iter()
                .map(|k| k.version)
                .collect();
            assert_eq!(versions, [0x31, 0x31, 0x31, 0x32, 0x32, 0x32], "{name}");
        }
    }
}

#[test]
fn put_key_of_a_version_in_use_is_refused_by_the_card() {
    let (name, protocol, keys) = channels().remove(0);
    let mut card = card_for(protocol, &keys);
    let mut s = open(&mut card, protocol, &keys, SecurityLevel::C_MAC).unwrap();
    // Adding a key set whose version exists already: 6A80, keys unchanged.
    let err = s.put_key(None, &new_keys(name, 0x30)).unwrap_err();
    assert_eq!(err.status_word(), Some(StatusWord::WRONG_DATA));
    assert_eq!(s.key_information().unwrap().len(), 3);
}

#[test]
fn lock_and_unlock_an_application() {
    for (name, protocol, keys) in channels() {
        let mut card = card_for(protocol, &keys);
        let mut s = open(&mut card, protocol, &keys, SecurityLevel::C_MAC).unwrap();
        let app = aid(EPURSE_AID);
        s.lock(&app).unwrap();
        let state =
            |s: &mut GpSession<Transmit<'_>>| s.list(Scope::Applications).unwrap()[0].life_cycle;
        assert_eq!(state(&mut s), 0x87, "{name}");
        // Locking twice is a transition GP forbids.
        assert_eq!(
            s.lock(&app).unwrap_err().status_word(),
            Some(StatusWord::CONDITIONS_NOT_SATISFIED)
        );
        s.unlock(&app).unwrap();
        assert_eq!(state(&mut s), 0x07, "{name}");
        // Unknown application.
        assert_eq!(
            s.lock(&aid("A0000006329999")).unwrap_err().status_word(),
            Some(StatusWord::REFERENCED_DATA_NOT_FOUND)
        );
    }
}

#[test]
fn card_life_cycle_lock_unlock_terminate() {
    let (_, protocol, keys) = channels().remove(0);
    let mut card = card_for(protocol, &keys);
    {
        let mut s = open(&mut card, protocol, &keys, SecurityLevel::C_MAC).unwrap();
        s.set_card_state(CardLifeCycle::CardLocked).unwrap();
        assert_eq!(
            s.list(Scope::IssuerSecurityDomain).unwrap()[0].life_cycle,
            0x7F
        );
        s.set_card_state(CardLifeCycle::Secured).unwrap();
        assert_eq!(
            s.list(Scope::IssuerSecurityDomain).unwrap()[0].life_cycle,
            0x0F
        );
        // Back to INITIALIZED is forbidden.
        assert_eq!(
            s.set_card_state(CardLifeCycle::Initialized)
                .unwrap_err()
                .status_word(),
            Some(StatusWord::CONDITIONS_NOT_SATISFIED)
        );
        s.set_card_state(CardLifeCycle::Terminated).unwrap();
    }
    // A terminated card opens no more sessions.
    let err = open(&mut card, protocol, &keys, SecurityLevel::C_MAC).unwrap_err();
    assert_eq!(
        err.status_word(),
        Some(StatusWord::CONDITIONS_NOT_SATISFIED)
    );
}

#[test]
fn diversified_keys_open_with_the_master_and_the_method() {
    let cases = [
        ("scp02", Diversification::Emv),
        ("scp02", Diversification::Visa2),
        ("scp03", Diversification::Kdf3),
        ("sm4", Diversification::Kdf3),
    ];
    for (name, method) in cases {
        let (_, protocol, master) = channels().into_iter().find(|c| c.0 == name).unwrap();
        let card_keys = diversify(&master, method, &TEST_KDD, 0x30).unwrap();
        let mut card = card_for(protocol, &card_keys);
        let config = SessionConfig {
            diversification: Some(method),
            ..config(protocol, master.clone(), SecurityLevel::C_MAC)
        };
        let mut s = GpSession::open(over(&mut card), config, &[0x22; 8]).unwrap();
        assert_eq!(
            s.list(Scope::Applications).unwrap().len(),
            2,
            "{name} {method:?}"
        );
        // PUT KEY under the diversified K-DEK (SCP03, SM4) or session DEK (SCP02).
        s.put_key(Some(0x30), &new_keys(name, 0x31)).unwrap();
        drop(s);
        // The master itself does not open the card.
        assert!(matches!(
            open(&mut card, protocol, &master, SecurityLevel::C_MAC),
            Err(Error::Card { .. } | Error::Channel(_))
        ));
    }
}

#[test]
fn every_level_of_every_channel() {
    for (name, protocol, keys) in channels() {
        let levels: &[SecurityLevel] = if name == "scp02" {
            &[SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC]
        } else {
            &[
                SecurityLevel::C_MAC,
                SecurityLevel::C_DEC_C_MAC,
                SecurityLevel::C_MAC_R_MAC,
                SecurityLevel::C_DEC_C_MAC_R_MAC,
                SecurityLevel::ALL,
            ]
        };
        for &level in levels {
            let mut card = card_for(protocol, &keys);
            let mut s = open(&mut card, protocol, &keys, level).unwrap();
            assert_eq!(s.level(), level);
            assert_eq!(
                s.registry().unwrap().applications.len(),
                2,
                "{name} {level:?}"
            );
            let app = aid(SECOND_AID);
            s.lock(&app).unwrap();
            s.unlock(&app).unwrap();
            assert_eq!(s.cplc().unwrap().ic_type, [2, 3]);
        }
    }
}

#[test]
fn max_block_size_leaves_room_for_secure_messaging() {
    let sizes = [
        ("scp03", SecurityLevel::C_MAC, 247),
        ("scp03", SecurityLevel::C_DEC_C_MAC, 239),
        ("scp03", SecurityLevel::ALL, 239),
        ("scp02", SecurityLevel::C_MAC, 247),
        ("scp02", SecurityLevel::C_DEC_C_MAC, 239),
    ];
    for (name, level, size) in sizes {
        let (_, protocol, keys) = channels().into_iter().find(|c| c.0 == name).unwrap();
        let mut card = card_for(protocol, &keys);
        let s = open(&mut card, protocol, &keys, level).unwrap();
        assert_eq!(s.max_block_size(), size, "{name} {level:?}");
    }
}

/// Paging: 20 more applications than fit one response, listed across `6310` parts.
#[test]
fn list_follows_6310_paging() {
    let (_, protocol, keys) = channels().remove(0);
    let mut card = Card::new(
        ykt_card::Atr::default_t1(),
        Box::new(ykt_card::SeededRandom::new(3)),
    );
    let aids: Vec<String> = (0..20).map(|i| format!("A0000006320101{i:02X}")).collect();
    for a in &aids {
        card.install(Box::new(Plain(ykt_card::Aid::new(&h(a)).unwrap())), |_| {
            Ok(())
        })
        .unwrap();
    }
    ykt_gp::install_isd(&mut card, &setup(protocol, keys.clone())).unwrap();
    card.power_on();
    let mut parts = 0;
    let mut counting = |cmd: &[u8]| {
        if cmd[1] == 0xF2 && cmd[2] == 0x40 {
            parts += 1;
        }
        card.transmit(cmd)
    };
    let mut s = GpSession::open(
        &mut counting,
        config(protocol, keys, SecurityLevel::ALL),
        &[0x33; 8],
    )
    .unwrap();
    let listed: Vec<String> = s
        .list(Scope::Applications)
        .unwrap()
        .iter()
        .map(|e| hx(&e.aid))
        .collect();
    drop(s);
    assert_eq!(listed, aids);
    assert!(parts >= 3, "{parts} parts");
}

#[test]
fn transport_failure_is_not_a_card_refusal() {
    let (_, protocol, keys) = channels().remove(0);
    let failing = |_: &[u8]| -> Result<Vec<u8>, std::io::Error> {
        Err(std::io::Error::other("reader unplugged"))
    };
    let err = GpSession::open(
        failing,
        config(protocol, keys, SecurityLevel::C_MAC),
        &[0; 8],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(err.status_word(), None);
    assert!(err.to_string().starts_with("transport failed"));
}

#[test]
fn wrong_keys_give_a_clear_error() {
    let (name, protocol, keys) = channels().remove(0);
    let mut card = card_for(protocol, &keys);
    let mut wrong = new_keys(name, 0x30);
    wrong.version = 0x30;
    let err = open(&mut card, protocol, &wrong, SecurityLevel::C_MAC).unwrap_err();
    // i = 70: the pseudo-random card challenge gives the wrong keys away first.
    assert!(matches!(
        err,
        Error::Channel(ScpError::InitializeUpdate(
            InitializeUpdateError::PseudoRandomChallenge
        ))
    ));
    assert!(err.is_wrong_keys());
    assert!(
        err.to_string().contains("does not hold these keys"),
        "{err}"
    );
    // SCP03 i = 00 (random challenge): the card cryptogram.
    let p00 = Protocol::scp03(0x00).unwrap();
    let mut card00 = card_for(p00, &keys);
    let err = open(&mut card00, p00, &wrong, SecurityLevel::C_MAC).unwrap_err();
    assert!(matches!(
        err,
        Error::Channel(ScpError::InitializeUpdate(
            InitializeUpdateError::CardCryptogram
        ))
    ));
    assert!(err.to_string().contains("wrong card cryptogram"), "{err}");
    // The wrong SD: SELECT refused.
    let cfg = SessionConfig {
        security_domain: aid("A000000151535041"),
        ..config(protocol, keys, SecurityLevel::C_MAC)
    };
    let err = GpSession::open(over(&mut card), cfg, &[0; 8]).unwrap_err();
    assert!(matches!(
        err,
        Error::Card {
            operation: ykt_gp_host::Operation::Select,
            ..
        }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// After a real handshake, any bytes as the card's answers give values or typed errors,
    /// never a panic.
    #[test]
    fn garbage_responses_never_panic(
        answers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..12),
        level in prop_oneof![Just(SecurityLevel::C_MAC), Just(SecurityLevel::ALL)],
    ) {
        let (_, protocol, keys) = channels().remove(0);
        let mut card = card_for(protocol, &keys);
        let mut handshake = 3;
        let mut answers = answers.into_iter();
        let transmit = |cmd: &[u8]| -> Result<Vec<u8>, std::io::Error> {
            if handshake > 0 {
                handshake -= 1;
                return Ok(card.transmit(cmd).unwrap());
            }
            Ok(answers.next().unwrap_or_else(|| vec![0x90, 0x00]))
        };
        let mut s = GpSession::open(transmit, config(protocol, keys, level), &[0x44; 8]).unwrap();
        let _ = s.list(Scope::Applications);
        let _ = s.cplc();
        let _ = s.key_information();
        let _ = s.card_data();
        let _ = s.put_key(Some(0x30), &aes_keys(0x31, 1));
        let _ = s.lock(&aid(EPURSE_AID));
        let _ = s.delete(&aid(EPURSE_AID), false, None);
        let _ = s.list(Scope::LoadFiles);
    }
}
