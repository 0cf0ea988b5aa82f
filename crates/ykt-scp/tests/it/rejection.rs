//! Refusals: wrong cryptograms, replayed, re-ordered and tampered commands, tampered responses,
//! and commands below the session's level.

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_scp::card::{BELOW_SECURITY_LEVEL, WRONG_HOST_CRYPTOGRAM, WRONG_MAC};
use ykt_scp::*;

use crate::roundtrip::all_protocols;
use crate::support::*;

fn cmd(n: u8) -> CommandApdu {
    CommandApdu::new(0x80, 0xE2, 0x90, 0x00).with_data(vec![n; 5])
}

/// Host and card after INITIALIZE UPDATE, and the EXTERNAL AUTHENTICATE the host built.
fn initialized(
    protocol: Protocol,
    keys: &KeySet,
    level: SecurityLevel,
) -> (HostSession, CardSession, CommandApdu) {
    let mut card = CardSession::new(card_config(protocol));
    let hc = random(protocol_challenge_len(protocol), 0x21);
    let (mut host, iu) =
        HostSession::initialize_update(host_config(keys.clone(), protocol, level), &hc).unwrap();
    let resp = card_transmit(&mut card, keys, 5, &iu, echo);
    let ea = host.on_initialize_update_response(&resp).unwrap();
    (host, card, ea)
}

#[test]
fn wrong_host_cryptogram_is_refused_and_the_session_stays_closed() {
    for (protocol, len) in all_protocols() {
        let keys = keys(protocol, 0x30, len);
        for byte in [0usize, 7] {
            let (_, mut card, mut ea) = initialized(protocol, &keys, SecurityLevel::C_MAC);
            ea.data[byte] ^= 0x01;
            assert_eq!(
                card.on_external_authenticate(&ea),
                Err(WRONG_HOST_CRYPTOGRAM)
            );
            assert!(!card.is_open());
            // The untampered EXTERNAL AUTHENTICATE no longer helps: a new IU is needed.
            ea.data[byte] ^= 0x01;
            assert_eq!(
                card.on_external_authenticate(&ea),
                Err(StatusWord::CONDITIONS_NOT_SATISFIED)
            );
            assert_eq!(card.unwrap_command(&ea), Err(BELOW_SECURITY_LEVEL));
        }
    }
}

#[test]
fn flipped_external_authenticate_mac_is_refused() {
    for (protocol, len) in all_protocols() {
        let keys = keys(protocol, 0x30, len);
        let (_, mut card, mut ea) = initialized(protocol, &keys, SecurityLevel::C_MAC);
        let last = ea.data.len() - 1;
        ea.data[last] ^= 0x80;
        assert_eq!(
            card.on_external_authenticate(&ea),
            Err(WRONG_HOST_CRYPTOGRAM)
        );
        assert!(!card.is_open());
    }
}

#[test]
fn wrong_card_cryptogram_is_refused_by_the_host() {
    for (protocol, len) in all_protocols() {
        let keys = keys(protocol, 0x30, len);
        let mut card = CardSession::new(card_config(protocol));
        let hc = random(protocol_challenge_len(protocol), 0x21);
        let config = host_config(keys.clone(), protocol, SecurityLevel::C_MAC);
        let (_, iu) = HostSession::initialize_update(config.clone(), &hc).unwrap();
        let good = card_transmit(&mut card, &keys, 5, &iu, echo);
        // The cryptogram is the last field, before the counter when there is one.
        let at = good.data.len() - 1 - if pseudo(protocol) { 3 } else { 0 };
        let mut bad = good.clone();
        bad.data[at] ^= 0x01;
        let (mut host, _) = HostSession::initialize_update(config.clone(), &hc).unwrap();
        assert_eq!(
            host.on_initialize_update_response(&bad),
            Err(ScpError::InitializeUpdate(
                InitializeUpdateError::CardCryptogram
            ))
        );
        assert!(!host.is_open());
        assert_eq!(host.wrap(&cmd(1)), Err(ScpError::Closed));
        // Other keys: the same refusal.
        let other = keys_other(protocol, len);
        let (mut host, _) =
            HostSession::initialize_update(host_config(other, protocol, SecurityLevel::C_MAC), &hc)
                .unwrap();
        let refused = host.on_initialize_update_response(&good).unwrap_err();
        assert!(
            matches!(refused, ScpError::InitializeUpdate(_)),
            "{refused:?}"
        );
        // A card that says no is reported as the card's status word.
        let (mut host, _) = HostSession::initialize_update(config, &hc).unwrap();
        assert_eq!(
            host.on_initialize_update_response(&ResponseApdu::status(StatusWord(0x6A88))),
            Err(ScpError::Card(StatusWord(0x6A88)))
        );
    }
}

fn pseudo(protocol: Protocol) -> bool {
    protocol.pseudo_random_challenge() && !matches!(protocol, Protocol::Scp02(_))
}

fn keys_other(protocol: Protocol, len: usize) -> KeySet {
    let mut k = keys(protocol, 0x30, len);
    let flip = |b: &[u8]| -> Vec<u8> { b.iter().map(|x| x ^ 0x5A).collect() };
    k.keys = match &k.keys {
        StaticKeys::Tdes { enc, mac, dek } => StaticKeys::Tdes {
            enc: ykt_crypto::TdesKey::from_slice(&flip(enc.expose())).unwrap(),
            mac: mac.clone(),
            dek: dek.clone(),
        },
        StaticKeys::Aes { enc, mac, dek } => StaticKeys::Aes {
            enc: enc.clone(),
            mac: ykt_crypto::AesKey::from_slice(&flip(mac.expose())).unwrap(),
            dek: dek.clone(),
        },
        // SCP03 cryptograms come from S-MAC alone, so the MAC key is the one to change.
        StaticKeys::Sm4 { enc, mac, dek } => StaticKeys::Sm4 {
            enc: enc.clone(),
            mac: ykt_crypto::Sm4Key::from_slice(&flip(mac.expose())).unwrap(),
            dek: dek.clone(),
        },
    };
    k
}

/// The pseudo-random challenge is checked when the host knows the AID.
#[test]
fn wrong_pseudo_random_challenge_is_refused() {
    for (protocol, len) in all_protocols() {
        if !protocol.pseudo_random_challenge() {
            continue;
        }
        let keys = keys(protocol, 0x30, len);
        let mut card = CardSession::new(CardConfig {
            aid: vec![0xA0, 0, 0, 0, 0x99],
            ..card_config(protocol)
        });
        let hc = random(protocol_challenge_len(protocol), 0x21);
        let (mut host, iu) = HostSession::initialize_update(
            host_config(keys.clone(), protocol, SecurityLevel::C_MAC),
            &hc,
        )
        .unwrap();
        let resp = card_transmit(&mut card, &keys, 5, &iu, echo);
        assert_eq!(
            host.on_initialize_update_response(&resp),
            Err(ScpError::InitializeUpdate(
                InitializeUpdateError::PseudoRandomChallenge
            ))
        );
    }
}

#[test]
fn replayed_command_breaks_the_chain_and_closes_the_session() {
    for (protocol, len) in all_protocols() {
        let keys = keys(protocol, 0x30, len);
        let mut card = CardSession::new(card_config(protocol));
        let mut host = open(&mut card, &keys, protocol, SecurityLevel::C_MAC, 5);
        let first = host.wrap(&cmd(1)).unwrap();
        assert!(card.unwrap_command(&first).is_ok());
        assert_eq!(card.unwrap_command(&first), Err(WRONG_MAC), "{protocol:?}");
        assert!(!card.is_open());
        // The next honest command is refused too: the session is gone.
        let second = host.wrap(&cmd(2)).unwrap();
        assert_eq!(card.unwrap_command(&second), Err(BELOW_SECURITY_LEVEL));
    }
}

#[test]
fn reordered_commands_are_refused() {
    for (protocol, len) in all_protocols() {
        let keys = keys(protocol, 0x30, len);
        let mut card = CardSession::new(card_config(protocol));
        let mut host = open(&mut card, &keys, protocol, SecurityLevel::C_DEC_C_MAC, 5);
        let first = host.wrap(&cmd(1)).unwrap();
        let second = host.wrap(&cmd(2)).unwrap();
        assert_eq!(card.unwrap_command(&second), Err(WRONG_MAC), "{protocol:?}");
        assert!(!card.is_open());
        assert_eq!(card.unwrap_command(&first), Err(BELOW_SECURITY_LEVEL));
    }
}

#[test]
fn any_flipped_bit_of_a_wrapped_command_is_refused() {
    for (protocol, len) in all_protocols() {
        let keys = keys(protocol, 0x30, len);
        for level in [SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC] {
            let wire = {
                let mut card = CardSession::new(card_config(protocol));
                let mut host = open(&mut card, &keys, protocol, level, 5);
                host.wrap(&cmd(3)).unwrap().to_bytes()
            };
            // Header bytes after CLA, and every data byte (MAC included).
            for at in (1..4).chain(5..wire.len()) {
                let mut card = CardSession::new(card_config(protocol));
                let _host = open(&mut card, &keys, protocol, level, 5);
                let mut bad = wire.clone();
                bad[at] ^= 0x04;
                let bad = CommandApdu::parse(&bad).unwrap();
                assert_eq!(
                    card.unwrap_command(&bad),
                    Err(WRONG_MAC),
                    "{protocol:?} {at}"
                );
                assert!(!card.is_open());
            }
        }
    }
}

#[test]
fn command_below_the_session_level_is_refused() {
    for (protocol, len) in all_protocols() {
        let keys = keys(protocol, 0x30, len);
        let mut card = CardSession::new(card_config(protocol));
        let _host = open(&mut card, &keys, protocol, SecurityLevel::C_MAC, 5);
        assert_eq!(card.unwrap_command(&cmd(1)), Err(BELOW_SECURITY_LEVEL));
        assert!(!card.is_open());
        // A session at C-MAC does not satisfy a command that needs C-DEC (e.g. PUT KEY).
        let _host = open(&mut card, &keys, protocol, SecurityLevel::C_MAC, 6);
        assert_eq!(card.require(SecurityLevel::C_MAC), Ok(()));
        assert_eq!(
            card.require(SecurityLevel::C_DEC_C_MAC),
            Err(BELOW_SECURITY_LEVEL)
        );
        // A card that demands C-DEC refuses EXTERNAL AUTHENTICATE at C-MAC.
        let mut strict = CardSession::new(CardConfig {
            minimum_level: SecurityLevel::C_DEC_C_MAC,
            ..card_config(protocol)
        });
        let hc = random(protocol_challenge_len(protocol), 0x21);
        let (mut host, iu) = HostSession::initialize_update(
            host_config(keys.clone(), protocol, SecurityLevel::C_MAC),
            &hc,
        )
        .unwrap();
        let resp = card_transmit(&mut strict, &keys, 5, &iu, echo);
        let ea = host.on_initialize_update_response(&resp).unwrap();
        let resp = card_transmit(&mut strict, &keys, 5, &ea, echo);
        assert_eq!(resp.sw, BELOW_SECURITY_LEVEL);
        assert_eq!(
            host.on_external_authenticate_response(&resp),
            Err(ScpError::Card(BELOW_SECURITY_LEVEL))
        );
        assert!(!strict.is_open());
    }
}

#[test]
fn levels_the_i_parameter_lacks_are_refused() {
    let scp02 = Protocol::scp02(0x15).unwrap();
    let keys02 = keys(scp02, 0x20, 16);
    let hc = random(8, 1);
    assert!(matches!(
        HostSession::initialize_update(host_config(keys02, scp02, SecurityLevel::C_MAC_R_MAC), &hc),
        Err(ScpError::Parameter(
            ParameterError::LevelNotSupported { .. }
        ))
    ));
    let scp03 = Protocol::scp03(0x10).unwrap();
    let keys03 = keys(scp03, 0x30, 16);
    assert!(matches!(
        HostSession::initialize_update(host_config(keys03.clone(), scp03, SecurityLevel::ALL), &hc),
        Err(ScpError::Parameter(
            ParameterError::LevelNotSupported { .. }
        ))
    ));
    // The card refuses such a level in EXTERNAL AUTHENTICATE with 6A86.
    let (_, mut card, mut ea) = initialized(scp03, &keys03, SecurityLevel::C_MAC);
    ea.p1 = 0x33;
    assert_eq!(
        card.on_external_authenticate(&ea),
        Err(StatusWord::INCORRECT_P1P2)
    );
    assert!(Protocol::scp03(0x40).is_err());
    assert!(Protocol::scp02(0x1A).is_err());
}

#[test]
fn tampered_responses_are_refused_by_the_host() {
    for (protocol, len) in all_protocols() {
        let keys = keys(protocol, 0x30, len);
        for level in [SecurityLevel::C_MAC_R_MAC, SecurityLevel::ALL] {
            if protocol.check_level(level).is_err() {
                continue;
            }
            let mut card = CardSession::new(card_config(protocol));
            let mut host = open(&mut card, &keys, protocol, level, 5);
            let resp = card_transmit(&mut card, &keys, 5, &host.wrap(&cmd(1)).unwrap(), echo);
            let mut bad = resp.clone();
            bad.data[0] ^= 0x01;
            assert_eq!(
                host.unwrap(&bad),
                Err(ScpError::Response(ResponseError::Mac))
            );
            assert!(!host.is_open());
            // A warning status word is R-MACed too; a bare 9000 is missing its MAC.
            let mut host = open(&mut card, &keys, protocol, level, 6);
            card_transmit(&mut card, &keys, 6, &host.wrap(&cmd(1)).unwrap(), echo);
            assert_eq!(
                host.unwrap(&ResponseApdu::status(StatusWord::SUCCESS)),
                Err(ScpError::Response(ResponseError::MissingMac))
            );
            // Error status words come back bare and pass.
            let mut host = open(&mut card, &keys, protocol, level, 7);
            let resp = card_transmit(&mut card, &keys, 7, &host.wrap(&cmd(1)).unwrap(), |_| {
                ResponseApdu::status(StatusWord::FILE_NOT_FOUND)
            });
            assert_eq!(resp, ResponseApdu::status(StatusWord::FILE_NOT_FOUND));
            assert_eq!(host.unwrap(&resp).unwrap(), resp);
        }
    }
}

/// Malformed INITIALIZE UPDATE and EXTERNAL AUTHENTICATE commands get precise status words.
#[test]
fn malformed_handshake_commands_get_precise_status_words() {
    let protocol = Protocol::scp03(0x70).unwrap();
    let keys = keys(protocol, 0x30, 16);
    let mut card = CardSession::new(card_config(protocol));
    let iu = |p1, p2, data: &[u8]| CommandApdu::new(0x80, 0x50, p1, p2).with_data(data.to_vec());
    for (cmd, sw) in [
        (iu(0x00, 0x00, &[1; 7]), StatusWord::WRONG_LENGTH),
        (iu(0x00, 0x00, &[]), StatusWord::WRONG_LENGTH),
        (iu(0x00, 0x01, &[1; 8]), StatusWord::INCORRECT_P1P2),
        (
            iu(0x31, 0x00, &[1; 8]),
            StatusWord::REFERENCED_DATA_NOT_FOUND,
        ),
    ] {
        assert_eq!(card.on_initialize_update(&cmd, &keys, 1, &[]), Err(sw));
    }
    assert_eq!(
        card.on_initialize_update(&iu(0x30, 0x00, &[1; 8]), &keys, 0x0100_0000, &[]),
        Err(StatusWord::CONDITIONS_NOT_SATISFIED)
    );
    let (_, mut card, ea) = initialized(protocol, &keys, SecurityLevel::C_MAC);
    let mut short = ea.clone();
    short.data.pop();
    assert_eq!(
        card.on_external_authenticate(&short),
        Err(StatusWord::WRONG_LENGTH)
    );
    for p1 in [0x02, 0x05, 0x31, 0xFF] {
        let (_, mut card, mut bad) = initialized(protocol, &keys, SecurityLevel::C_MAC);
        bad.p1 = p1;
        assert_eq!(
            card.on_external_authenticate(&bad),
            Err(StatusWord::INCORRECT_P1P2)
        );
    }
    let (_, mut card, mut plain) = initialized(protocol, &keys, SecurityLevel::C_MAC);
    plain.cla = 0x80;
    assert_eq!(
        card.on_external_authenticate(&plain),
        Err(BELOW_SECURITY_LEVEL)
    );
    let mut fresh = CardSession::new(card_config(protocol));
    assert_eq!(
        fresh.on_external_authenticate(&ea),
        Err(StatusWord::CONDITIONS_NOT_SATISFIED)
    );
}
