//! The published vectors of tsm-gp.md §9, replayed on the host and on the card.

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_crypto::scp::{scp02_session_key, scp03_kdf_aes, scp03_session_key_aes};
use ykt_crypto::{AesKey, TdesKey};
use ykt_scp::*;

use crate::harness::{Case, cases, hx};

fn aes_keys(c: &Case, version: u8) -> KeySet {
    KeySet::aes(
        version,
        AesKey::from_slice(&c.bytes("enc")).unwrap(),
        AesKey::from_slice(&c.bytes("mac")).unwrap(),
        AesKey::from_slice(&c.bytes("dek")).unwrap(),
    )
}

fn tdes_keys(c: &Case, version: u8) -> KeySet {
    KeySet::tdes(
        version,
        TdesKey::from_slice(&c.bytes("enc")).unwrap(),
        TdesKey::from_slice(&c.bytes("mac")).unwrap(),
        TdesKey::from_slice(&c.bytes("dek")).unwrap(),
    )
}

fn ok(data: Vec<u8>) -> ResponseApdu {
    ResponseApdu::new(data, StatusWord::SUCCESS)
}

#[test]
fn scp03_kaoh_mutual_auth_host() {
    let c = &cases("scp03_kaoh-globalplatform.txt")[0];
    let iu = c.command("initialize_update");
    let config = HostConfig {
        keys: aes_keys(c, iu.p1),
        protocol: Protocol::scp03(c.byte("i")).unwrap(),
        level: SecurityLevel::from_byte(c.byte("level")).unwrap(),
        security_domain_aid: Some(c.bytes("aid")),
    };
    let (mut host, cmd) = HostSession::initialize_update(config, &iu.data).unwrap();
    assert_eq!(hx(&cmd.to_bytes()), hx(&c.bytes("initialize_update")));
    let ea = host
        .on_initialize_update_response(&ok(c.bytes("initialize_update_response")))
        .unwrap();
    assert_eq!(hx(&ea.to_bytes()), hx(&c.bytes("external_authenticate")));
    assert_eq!(hx(&ea.data[..8]), hx(&c.bytes("host_cryptogram")));
    let info = host.card_info().unwrap();
    assert_eq!(info.key_version, c.byte("kvn"));
    assert_eq!(info.sequence_counter, Some(0x1E));
    host.on_external_authenticate_response(&ResponseApdu::status(StatusWord::SUCCESS))
        .unwrap();
    assert!(host.is_open());
}

#[test]
fn scp03_kaoh_session_keys_and_challenge() {
    let c = &cases("scp03_kaoh-globalplatform.txt")[0];
    let enc = AesKey::from_slice(&c.bytes("enc")).unwrap();
    let mac = AesKey::from_slice(&c.bytes("mac")).unwrap();
    let resp = c.bytes("initialize_update_response");
    let context = [&c.command("initialize_update").data[..], &resp[13..21]].concat();
    assert_eq!(
        hx(scp03_session_key_aes(&enc, 0x04, &context).expose()),
        hx(&c.bytes("s_enc"))
    );
    assert_eq!(
        hx(scp03_session_key_aes(&mac, 0x06, &context).expose()),
        hx(&c.bytes("s_mac"))
    );
    assert_eq!(
        hx(scp03_session_key_aes(&mac, 0x07, &context).expose()),
        hx(&c.bytes("s_rmac"))
    );
    let mut challenge = [0u8; 8];
    let seq_aid = [&c.bytes("sequence_counter")[..], &c.bytes("aid")].concat();
    scp03_kdf_aes(&enc, 0x02, &seq_aid, &mut challenge);
    assert_eq!(hx(&challenge), hx(&resp[13..21]));
}

/// The card, given the same keys, AID and counter, gives the kaoh response byte for byte
/// (its pseudo-random challenge included) and accepts the kaoh EXTERNAL AUTHENTICATE.
#[test]
fn scp03_kaoh_mutual_auth_card() {
    let c = &cases("scp03_kaoh-globalplatform.txt")[0];
    let protocol = Protocol::scp03(c.byte("i")).unwrap();
    let mut card = CardSession::new(CardConfig {
        protocol,
        aid: c.bytes("aid"),
        key_diversification_data: [0; 10],
        minimum_level: SecurityLevel::C_MAC,
    });
    let keys = aes_keys(c, c.byte("kvn"));
    let resp = card
        .on_initialize_update(&c.command("initialize_update"), &keys, 0x1E, &[])
        .unwrap();
    assert_eq!(hx(&resp), hx(&c.bytes("initialize_update_response")));
    card.on_external_authenticate(&c.command("external_authenticate"))
        .unwrap();
    assert_eq!(card.level(), Some(SecurityLevel::C_DEC_C_MAC));
}

const STEPS: [&str; 4] = ["case1", "case2", "case3", "case4"];

#[test]
fn scp03_pysim_host() {
    for c in cases("scp03_pysim.txt") {
        let iu = c.command("initialize_update");
        let ea_expected = c.command("external_authenticate");
        let level = SecurityLevel::from_byte(ea_expected.p1).unwrap();
        let resp = c.bytes("initialize_update_response");
        let config = HostConfig {
            keys: aes_keys(&c, iu.p1),
            protocol: Protocol::scp03(resp[12]).unwrap(),
            level,
            // The vectors' security domain AID is not published: the pseudo-random challenge
            // is not checked (the card cryptogram still is).
            security_domain_aid: None,
        };
        let (mut host, cmd) = HostSession::initialize_update(config, &iu.data).unwrap();
        assert_eq!(hx(&cmd.to_bytes()), hx(&iu.to_bytes()), "{}", c.location);
        let ea = host.on_initialize_update_response(&ok(resp)).unwrap();
        assert_eq!(
            hx(&ea.to_bytes()),
            hx(&ea_expected.to_bytes()),
            "{}",
            c.location
        );
        host.on_external_authenticate_response(&ResponseApdu::status(StatusWord::SUCCESS))
            .unwrap();
        let wrapped = host.wrap(&c.command("get_eid_plain")).unwrap();
        assert_eq!(
            hx(&wrapped.to_bytes()),
            hx(&c.bytes("get_eid")),
            "{} get_eid",
            c.location
        );
        let plain = host.unwrap(&ok(c.bytes("get_eid_response"))).unwrap();
        assert_eq!(
            hx(&plain.data),
            hx(&c.bytes("get_eid_response_plain")),
            "{}",
            c.location
        );
        for step in STEPS {
            let wrapped = host.wrap(&c.command(&format!("{step}_plain"))).unwrap();
            assert_eq!(
                hx(&wrapped.to_bytes()),
                hx(&c.bytes(step)),
                "{} {step}",
                c.location
            );
        }
    }
}

/// The card replays the pysim sessions: same response to INITIALIZE UPDATE (with the
/// published card challenge forced in), the EXTERNAL AUTHENTICATE and every wrapped command
/// accepted and unwrapped to the plain command, and the wrapped GET DATA response reproduced.
#[test]
fn scp03_pysim_card() {
    for c in cases("scp03_pysim.txt") {
        let resp = c.bytes("initialize_update_response");
        let protocol = Protocol::scp03(resp[12]).unwrap();
        let mut card = CardSession::new(CardConfig {
            protocol,
            aid: vec![0xA0, 0, 0, 0, 0x87],
            key_diversification_data: [0; 10],
            minimum_level: SecurityLevel::NONE,
        });
        let keys = aes_keys(&c, c.byte("kvn"));
        let seq = u32::from_be_bytes([0, resp[29], resp[30], resp[31]]);
        let answer = card
            .danger_on_initialize_update_with_challenge(
                &c.command("initialize_update"),
                &keys,
                seq,
                &resp[13..21],
            )
            .unwrap();
        assert_eq!(hx(&answer), hx(&resp), "{}", c.location);
        card.on_external_authenticate(&c.command("external_authenticate"))
            .unwrap();
        let plain = card.unwrap_command(&c.command("get_eid")).unwrap();
        let mut want = c.command("get_eid_plain");
        assert_eq!(plain, want, "{}", c.location);
        let wrapped = card.wrap_response(&ok(c.bytes("get_eid_response_plain")));
        assert_eq!(
            hx(&wrapped.data),
            hx(&c.bytes("get_eid_response")),
            "{}",
            c.location
        );
        for step in STEPS {
            want = c.command(&format!("{step}_plain"));
            let plain = card.unwrap_command(&c.command(step)).unwrap();
            assert_eq!(plain, want, "{} {step}", c.location);
        }
    }
}

#[test]
fn scp02_pysim_session_keys() {
    let c = &cases("scp02_pysim.txt")[0];
    let seq = [0x00, 0x01];
    let enc = TdesKey::from_slice(&c.bytes("enc")).unwrap();
    let mac = TdesKey::from_slice(&c.bytes("mac")).unwrap();
    let dek = TdesKey::from_slice(&c.bytes("dek")).unwrap();
    for (key, constant, want) in [
        (&enc, [0x01, 0x82], "s_enc"),
        (&mac, [0x01, 0x01], "s_cmac"),
        (&mac, [0x01, 0x02], "s_rmac"),
        (&dek, [0x01, 0x81], "s_dek"),
    ] {
        assert_eq!(
            hx(scp02_session_key(key, constant, seq).expose()),
            hx(&c.bytes(want))
        );
    }
}

#[test]
fn scp02_pysim_host() {
    let c = &cases("scp02_pysim.txt")[0];
    let iu = c.command("initialize_update");
    let config = HostConfig {
        keys: tdes_keys(c, c.byte("kvn")),
        protocol: Protocol::scp02(c.byte("i")).unwrap(),
        level: SecurityLevel::C_MAC,
        security_domain_aid: None,
    };
    let (mut host, cmd) = HostSession::initialize_update(config, &iu.data).unwrap();
    assert_eq!(hx(&cmd.to_bytes()), hx(&iu.to_bytes()));
    let ea = host
        .on_initialize_update_response(&ok(c.bytes("initialize_update_response")))
        .unwrap();
    assert_eq!(hx(&ea.to_bytes()), hx(&c.bytes("external_authenticate")));
    host.on_external_authenticate_response(&ResponseApdu::status(StatusWord::SUCCESS))
        .unwrap();
    assert!(host.scp02_session_dek().is_some());
    for step in STEPS {
        let wrapped = host.wrap(&c.command(&format!("{step}_plain"))).unwrap();
        assert_eq!(hx(&wrapped.to_bytes()), hx(&c.bytes(step)), "{step}");
    }
}

#[test]
fn scp02_pysim_card() {
    let c = &cases("scp02_pysim.txt")[0];
    let resp = c.bytes("initialize_update_response");
    let protocol = Protocol::scp02(c.byte("i")).unwrap();
    let mut card = CardSession::new(CardConfig {
        protocol,
        aid: vec![0xA0, 0, 0, 0, 0x87],
        key_diversification_data: [0; 10],
        minimum_level: SecurityLevel::NONE,
    });
    // The card answers with its own key version (70); ask for "first available".
    let keys = tdes_keys(c, resp[10]);
    let mut iu: CommandApdu = c.command("initialize_update");
    iu.p1 = 0x00;
    let answer = card
        .on_initialize_update(&iu, &keys, 0x0001, &resp[14..20])
        .unwrap();
    assert_eq!(hx(&answer), hx(&resp));
    card.on_external_authenticate(&c.command("external_authenticate"))
        .unwrap();
    for step in STEPS {
        let plain = card.unwrap_command(&c.command(step)).unwrap();
        assert_eq!(plain, c.command(&format!("{step}_plain")), "{step}");
    }
}

/// kaoh/globalplatform's SCP02 sessions: the card accepts and decrypts every wrapped command in
/// order (C-MAC with ICV encryption over the plain data, C-DEC), and the host, given the plain
/// commands, reproduces every wrapped command byte for byte.
#[test]
fn scp02_kaoh_sessions_both_roles() {
    for c in cases("scp02_kaoh-globalplatform.txt") {
        let key = || TdesKey::from_slice(&c.bytes("key")).unwrap();
        let resp = c.bytes("initialize_update_response");
        let keys = KeySet::tdes(resp[10], key(), key(), key());
        let protocol = Protocol::scp02(0x15).unwrap();
        let level = SecurityLevel::from_byte(c.byte("level")).unwrap();
        let n: usize = c.text("commands").parse().unwrap();
        // Card.
        let mut card = CardSession::new(CardConfig {
            protocol,
            aid: vec![0xA0, 0, 0, 0, 3, 0, 0, 0],
            key_diversification_data: resp[..10].try_into().unwrap(),
            minimum_level: SecurityLevel::C_MAC,
        });
        let seq = u32::from(u16::from_be_bytes([resp[12], resp[13]]));
        let answer = card
            .on_initialize_update(&c.command("initialize_update"), &keys, seq, &resp[14..20])
            .unwrap();
        assert_eq!(hx(&answer), hx(&resp), "{}", c.location);
        card.on_external_authenticate(&c.command("external_authenticate"))
            .unwrap();
        let mut plains = Vec::new();
        for i in 1..=n {
            let plain = card
                .unwrap_command(&c.command(&format!("command{i}")))
                .unwrap_or_else(|sw| panic!("{} command{i}: {sw:?}", c.location));
            if let Some(want) = c.optional_bytes(&format!("command{i}_plain")) {
                assert_eq!(
                    hx(&plain.to_bytes()),
                    hx(&want),
                    "{} command{i}",
                    c.location
                );
            }
            plains.push(plain);
        }
        // Host.
        let iu = c.command("initialize_update");
        let mut config = HostConfig {
            keys: keys.clone(),
            protocol,
            level,
            security_domain_aid: None,
        };
        // The command asks for the first available key version (00); the card answers 01.
        config.keys.version = iu.p1;
        let (mut host, cmd) = HostSession::initialize_update(config, &iu.data).unwrap();
        assert_eq!(cmd, iu);
        let ea = host.on_initialize_update_response(&ok(resp)).unwrap();
        assert_eq!(hx(&ea.to_bytes()), hx(&c.bytes("external_authenticate")));
        host.on_external_authenticate_response(&ResponseApdu::status(StatusWord::SUCCESS))
            .unwrap();
        for (i, plain) in plains.iter().enumerate() {
            let wrapped = host.wrap(plain).unwrap();
            let want = c.bytes(&format!("command{}", i + 1));
            assert_eq!(
                hx(&wrapped.to_bytes()),
                hx(&want),
                "{} command{}",
                c.location,
                i + 1
            );
            let resp = ResponseApdu::parse(&c.bytes(&format!("response{}", i + 1))).unwrap();
            assert_eq!(host.unwrap(&resp).unwrap(), resp);
        }
    }
}

/// kaoh/globalplatform's SCP03 sessions against real cards, on both roles: the card gives the
/// same INITIALIZE UPDATE response (its pseudo-random challenge from the AID and counter),
/// accepts EXTERNAL AUTHENTICATE and unwraps every command to the plain command; the host
/// reproduces every wrapped command and unwraps every response; and the card, given the plain
/// response, reproduces the card's wrapped response (R-MAC and R-ENC at level 33).
#[test]
fn scp03_kaoh_sessions_both_roles() {
    for c in cases("scp03_kaoh-sessions.txt") {
        let at = |what: &str| format!("{} ({}) {what}", c.location, c.text("name"));
        let resp = c.bytes("initialize_update_response");
        let iu = c.command("initialize_update");
        let protocol = Protocol::scp03(resp[12]).unwrap();
        let level = SecurityLevel::from_byte(c.byte("level")).unwrap();
        let card_keys = aes_keys(&c, resp[10]);
        if let Some(want) = c.optional_bytes("s_enc") {
            let context = [&iu.data[..], &resp[13..21]].concat();
            let enc = AesKey::from_slice(&c.bytes("enc")).unwrap();
            let mac = AesKey::from_slice(&c.bytes("mac")).unwrap();
            let s_enc = scp03_session_key_aes(&enc, 0x04, &context);
            assert_eq!(hx(s_enc.expose()), hx(&want));
            let s_mac = scp03_session_key_aes(&mac, 0x06, &context);
            assert_eq!(hx(s_mac.expose()), hx(&c.bytes("s_mac")));
            let s_rmac = scp03_session_key_aes(&mac, 0x07, &context);
            assert_eq!(hx(s_rmac.expose()), hx(&c.bytes("s_rmac")));
        }
        let aid = c.optional_bytes("aid");
        let mut card = CardSession::new(CardConfig {
            protocol,
            aid: aid.clone().unwrap_or_default(),
            key_diversification_data: resp[..10].try_into().unwrap(),
            minimum_level: SecurityLevel::C_MAC,
        });
        let n = resp.len();
        let seq = u32::from_be_bytes([0, resp[n - 3], resp[n - 2], resp[n - 1]]);
        let answer = if aid.is_some() {
            card.on_initialize_update(&iu, &card_keys, seq, &[])
        } else {
            card.danger_on_initialize_update_with_challenge(&iu, &card_keys, seq, &resp[13..21])
        }
        .unwrap();
        assert_eq!(hx(&answer), hx(&resp), "{}", at("IU response"));
        card.on_external_authenticate(&c.command("external_authenticate"))
            .unwrap_or_else(|sw| panic!("{}: {sw:?}", at("EA")));

        let config = HostConfig {
            keys: aes_keys(&c, iu.p1),
            protocol,
            level,
            security_domain_aid: aid,
        };
        let (mut host, cmd) = HostSession::initialize_update(config, &iu.data).unwrap();
        assert_eq!(cmd, iu);
        let ea = host.on_initialize_update_response(&ok(resp)).unwrap();
        assert_eq!(
            hx(&ea.to_bytes()),
            hx(&c.bytes("external_authenticate")),
            "{}",
            at("EA")
        );
        host.on_external_authenticate_response(&ResponseApdu::status(StatusWord::SUCCESS))
            .unwrap();

        let count: usize = c.text("commands").parse().unwrap();
        for i in 1..=count {
            let wire = c.command(&format!("command{i}"));
            let plain = card
                .unwrap_command(&wire)
                .unwrap_or_else(|sw| panic!("{}: {sw:?}", at(&format!("command{i}"))));
            assert_eq!(
                plain,
                c.command(&format!("command{i}_plain")),
                "{}",
                at("plain")
            );
            let wrapped = host.wrap(&plain).unwrap();
            assert_eq!(
                hx(&wrapped.to_bytes()),
                hx(&wire.to_bytes()),
                "{}",
                at("wrap")
            );
            let recorded = ResponseApdu::parse(&c.bytes(&format!("response{i}"))).unwrap();
            let unwrapped = host
                .unwrap(&recorded)
                .unwrap_or_else(|e| panic!("{}: {e:?}", at(&format!("response{i}"))));
            assert_eq!(card.wrap_response(&unwrapped), recorded, "{}", at("R-MAC"));
        }
    }
}
