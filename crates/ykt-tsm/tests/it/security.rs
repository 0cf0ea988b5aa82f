//! What must never happen: a tampered answer acknowledged, a plaintext key in a script, the
//! SEI-TSM still able to open the SP's SSD, a card number printed in full.

use ykt_crypto::purse::PurseAlgorithm;
use ykt_purse::testing::{TEST_ASN, test_issuer};
use ykt_scp::{HostConfig, HostSession, StaticKeys};
use ykt_tsm::*;

use crate::support::*;

fn key_bytes(keys: &ykt_scp::KeySet) -> Vec<Vec<u8>> {
    match &keys.keys {
        StaticKeys::Aes { enc, mac, dek } => {
            vec![
                enc.expose().to_vec(),
                mac.expose().to_vec(),
                dek.expose().to_vec(),
            ]
        }
        _ => panic!("AES keys expected"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_plaintext_key_in_any_script() {
    let mut world = World::new();
    let mut card = new_se(30);
    let mut log = Log::default();
    let instance = open(&mut world, &mut card, Management::Authorized, &mut log);
    top_up(&mut world, &mut card, &instance, "o", 10_000, &mut log).unwrap();
    let seid = instance.seid;
    let isd = KeyRef::Isd {
        master: parties().isd_master,
        seid,
    };
    let ssd = hex::encode(&proposals::SSD_AID);
    let initial = KeyName(format!("ssd/{seid}/{ssd}/initial"));
    let sp = KeyName(format!("ssd/{seid}/{ssd}/sp"));
    let mut secrets = Vec::new();
    secrets.extend(key_bytes(&world.sei.key_set(&isd).unwrap()));
    secrets.extend(key_bytes(
        &world.sei.key_set(&KeyRef::Named(initial)).unwrap(),
    ));
    secrets.extend(key_bytes(&world.sp.key_set(&KeyRef::Named(sp)).unwrap()));
    secrets.extend(key_bytes(&isd_master()));
    for k in test_issuer(PurseAlgorithm::Tdes)
        .unwrap()
        .card_keys(&TEST_ASN)
    {
        secrets.push(k.key.expose().to_vec());
    }
    assert_eq!(secrets.len(), 12 + 6);
    let all: Vec<u8> = log.capdus().flatten().copied().collect();
    // The PIN's DGI (8010, e-purse PIN 123456) never travels in clear either.
    assert!(!contains(&all, &[0x80, 0x10, 0x03, 0x12, 0x34, 0x56]));
    assert!(all.len() > 1000);
    for s in &secrets {
        // No 8-byte window of any key appears anywhere in what the wallet relays.
        for w in s.windows(8) {
            assert!(!contains(&all, w), "key material in a script");
        }
    }
    // Nor in the persisted state.
    let mut flow = Flow::open_card("x", parties(), Management::Authorized, test_card());
    let _ = flow.next(&mut World::new().env(), None);
    let json = serde_json::to_string(flow.state()).unwrap();
    for s in &secrets {
        assert!(!json.contains(&hex::encode(s)));
    }
}

#[test]
fn after_rotation_the_sei_keys_no_longer_open_the_ssd() {
    let mut world = World::new();
    let mut card = new_se(31);
    let instance = open(
        &mut world,
        &mut card,
        Management::Authorized,
        &mut Log::default(),
    );
    let ssd = hex::encode(&proposals::SSD_AID);
    let seid = instance.seid;
    let try_open = |card: &mut ykt_card::Card, keys: ykt_scp::KeySet| -> bool {
        assert!(
            card.transmit(&hex_cmd(&format!("00A404000A{ssd}00")))
                .unwrap()
                .ends_with(&[0x90, 0x00])
        );
        let (mut s, iu) = HostSession::initialize_update(
            HostConfig {
                keys,
                protocol: proposals::protocol().unwrap(),
                level: proposals::LEVEL,
                security_domain_aid: Some(proposals::SSD_AID.to_vec()),
            },
            &[7; 8],
        )
        .unwrap();
        let r = ykt_apdu::ResponseApdu::parse(&card.transmit(&iu.to_bytes()).unwrap()).unwrap();
        if !r.is_success() {
            return false;
        }
        let Ok(ea) = s.on_initialize_update_response(&r) else {
            return false;
        };
        let r = ykt_apdu::ResponseApdu::parse(&card.transmit(&ea.to_bytes()).unwrap()).unwrap();
        r.is_success() && s.on_external_authenticate_response(&r).is_ok()
    };
    let initial = world
        .sei
        .key_set(&KeyRef::Named(KeyName(format!("ssd/{seid}/{ssd}/initial"))))
        .unwrap();
    let sp = world
        .sp
        .key_set(&KeyRef::Named(KeyName(format!("ssd/{seid}/{ssd}/sp"))))
        .unwrap();
    assert!(
        !try_open(&mut card, initial),
        "the SEI's initial keys still open the SSD"
    );
    assert!(try_open(&mut card, sp));
}

fn hex_cmd(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn a_wrong_mac1_fails_the_top_up_and_loads_nothing() {
    let mut world = World::new();
    let mut card = new_se(32);
    let instance = open(
        &mut world,
        &mut card,
        Management::Authorized,
        &mut Log::default(),
    );
    world.payments.pay("o", instance.card_number, 10_000);
    world.orders.begin("o", "s").unwrap();
    let order = OrderRef {
        order_id: "o".into(),
        amount: 10_000,
    };
    let mut flow = Flow::top_up("s", parties(), &instance, order).unwrap();
    // Flip a bit of MAC1 in the INITIALIZE FOR LOAD answer.
    let mut tamper = |req: &RelayRequest, resp: &mut RelayResponse| {
        for (c, r) in req.capdus.iter().zip(resp.rapdus.iter_mut()) {
            if c.as_bytes()[..4] == [0x80, 0x50, 0x00, 0x02] {
                r.0[15] ^= 0x01;
            }
        }
    };
    let err = drive_with(
        &mut flow,
        &mut world,
        &mut card,
        &mut Log::default(),
        &mut tamper,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Error::Vault {
            step: StepName::InitializeLoad,
            error: VaultError::Mac1Invalid
        }
    ));
    assert_eq!(err.code(), "4002");
    assert_eq!(
        flow.state().instance_state(),
        InstanceState::Failed(StepName::InitializeLoad)
    );
    assert!(flow.state().load_receipt.is_none() && flow.state().mac2.is_none());
    assert!(matches!(
        flow.next(&mut world.env(), None),
        Err(Error::NotWaiting)
    ));
    assert_eq!(balance(&mut world, &mut card, &instance), 0);
    assert!(matches!(
        world.orders.state("o"),
        Some(OrderState::Loading { .. })
    ));
    // FAILED_<step> is resumable: a retry without the tampering loads the order once.
    flow.retry().unwrap();
    let outcome = drive(&mut flow, &mut world, &mut card, &mut Log::default()).unwrap();
    assert_eq!(outcome.load.unwrap().new_balance, 10_000);
    assert_eq!(balance(&mut world, &mut card, &instance), 10_000);
}

#[test]
fn a_wrong_tac_is_not_acknowledged() {
    let mut world = World::new();
    let mut card = new_se(33);
    let instance = open(
        &mut world,
        &mut card,
        Management::Authorized,
        &mut Log::default(),
    );
    world.payments.pay("o", instance.card_number, 100);
    let order = OrderRef {
        order_id: "o".into(),
        amount: 100,
    };
    let mut flow = Flow::top_up("s", parties(), &instance, order).unwrap();
    let mut tamper = |req: &RelayRequest, resp: &mut RelayResponse| {
        if req.capdus[0].as_bytes()[..2] == [0x80, 0x52] {
            resp.rapdus[0].0[0] ^= 0x80;
        }
    };
    let err = drive_with(
        &mut flow,
        &mut world,
        &mut card,
        &mut Log::default(),
        &mut tamper,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Error::Vault {
            step: StepName::CreditLoad,
            error: VaultError::TacInvalid
        }
    ));
    assert!(flow.state().load_receipt.is_none());
}

#[test]
fn a_wrong_receipt_fails_delegated_loading() {
    let mut world = World::with_receipt_key([0x5B; 16]);
    let mut card = new_se(34);
    let mut flow = Flow::open_card("o", parties(), Management::Delegated, test_card());
    let err = drive(&mut flow, &mut world, &mut card, &mut Log::default()).unwrap_err();
    assert!(matches!(
        err,
        Error::Vault {
            step: StepName::LoadPurse,
            error: VaultError::ReceiptInvalid
        }
    ));
    assert_eq!(err.code(), "4003");
    assert_eq!(flow.state().instance_state().name(), "FAILED_LOAD_PURSE");
}

#[test]
fn a_tampered_secured_answer_closes_the_channel_with_a_typed_error() {
    let mut world = World::new();
    let mut card = new_se(35);
    let mut flow = Flow::open_card("o", parties(), Management::Authorized, test_card());
    // Change the data of the first wrapped answer with data (the ISD's INSTALL answer).
    let mut done = false;
    let mut tamper = |req: &RelayRequest, resp: &mut RelayResponse| {
        let c = req.capdus[0].as_bytes();
        if !done && req.capdus.len() == 1 && c[0] == 0x84 && c[1] == 0xE6 {
            let r = &mut resp.rapdus[0].0;
            if r.len() > 2 {
                r[0] ^= 0x01;
                done = true;
            }
        }
    };
    let err = drive_with(
        &mut flow,
        &mut world,
        &mut card,
        &mut Log::default(),
        &mut tamper,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Channel {
                step: StepName::CreateSsd,
                ..
            }
        ),
        "{err:?}"
    );
    // Retried: the probe sees the SSD, and the flow completes without creating it twice.
    flow.retry().unwrap();
    let outcome = drive(&mut flow, &mut world, &mut card, &mut Log::default()).unwrap();
    assert_eq!(outcome.instance.unwrap().state, InstanceState::Active);
}

#[test]
fn card_numbers_print_masked_and_keys_redacted() {
    let n = CardNumber(TEST_ASN.0);
    assert_eq!(n.to_string(), "3104************5678");
    assert_eq!(format!("{n:?}"), "CardNumber(3104************5678)");
    let world = World::new();
    let debug = format!("{:?}", world.sei);
    assert!(!debug.contains("4040404040"));
    let state = Flow::open_card("x", parties(), Management::Authorized, test_card());
    let debug = format!("{state:?}");
    assert!(!debug.contains("31041000000012345678"), "{debug}");
}

#[test]
fn relay_messages_have_the_brief_shape() {
    let req = RelayRequest {
        session_id: "s".into(),
        seq: 1,
        capdus: vec![hex::Hex(vec![0x00, 0xA4])],
        expect: vec![Expect::success(), Expect::any()],
        last: false,
    };
    let json = serde_json::to_value(&req).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"session_id": "s", "seq": 1, "capdus": ["00A4"],
            "expect": [{"sw": "9000"}, {"sw": null}], "final": false})
    );
}

#[test]
fn a_relay_answer_of_another_message_is_refused_without_failing_the_flow() {
    let mut world = World::new();
    let mut card = new_se(36);
    let mut flow = Flow::open_card("o", parties(), Management::Authorized, test_card());
    let Output::Relay(req) = flow.next(&mut world.env(), None).unwrap() else {
        panic!("a relay message first");
    };
    let mut resp = relay(&mut card, &req);
    resp.seq += 1;
    assert!(matches!(
        flow.next(&mut world.env(), Some(&resp)),
        Err(Error::Relay)
    ));
    resp.seq -= 1;
    resp.session_id = "other".into();
    assert!(matches!(
        flow.next(&mut world.env(), Some(&resp)),
        Err(Error::Relay)
    ));
    assert!(flow.state().failed.is_none());
    resp.session_id = "o".into();
    assert!(matches!(
        flow.next(&mut world.env(), Some(&resp)),
        Ok(Output::Relay(_))
    ));
}

#[test]
fn the_wallet_side_of_the_relay_completes_61xx_and_6cxx_and_stops_at_a_surprise() {
    use ykt_tsm::relay::relay_on_card;
    let req = RelayRequest {
        session_id: "s".into(),
        seq: 1,
        capdus: vec![
            hex::Hex(vec![0x00, 0xB0, 0x00, 0x00, 0x00]),
            hex::Hex(vec![0x00, 0xB2, 0x01, 0x04, 0x00]),
            hex::Hex(vec![0x80, 0x5C, 0x00, 0x02, 0x04]),
            hex::Hex(vec![0x80, 0x5C, 0x00, 0x02, 0x04]),
        ],
        expect: vec![
            Expect::success(),
            Expect::success(),
            Expect::success(),
            Expect::any(),
        ],
        last: false,
    };
    let mut sent = Vec::new();
    let resp = relay_on_card(&req, |c| {
        sent.push(c.to_vec());
        match c {
            [0x00, 0xB0, 0x00, 0x00, 0x00] => vec![0xAA, 0x61, 0x02],
            [0x00, 0xC0, 0x00, 0x00, 0x02] => vec![0xBB, 0xCC, 0x90, 0x00],
            [0x00, 0xB2, 0x01, 0x04, 0x00] => vec![0x6C, 0x03],
            [0x00, 0xB2, 0x01, 0x04, 0x03] => vec![1, 2, 3, 0x90, 0x00],
            _ => vec![0x69, 0x85],
        }
    });
    assert_eq!(
        resp.rapdus,
        vec![
            hex::Hex(vec![0xAA, 0xBB, 0xCC, 0x90, 0x00]),
            hex::Hex(vec![1, 2, 3, 0x90, 0x00]),
            hex::Hex(vec![0x69, 0x85]),
        ],
        "the fourth command is not sent after an unexpected status"
    );
    assert_eq!(sent.len(), 5);
}
