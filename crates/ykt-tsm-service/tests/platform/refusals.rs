//! The SEI's refusals: a sender other than the configured SP platform or a key other than its
//! pinned one, a replay, a stale message, business messages, and any request naming a key that
//! is not the SEI role's; the SP's server refuses the inter-platform messages. Every refusal
//! after the envelope checks is an audit row too.

use std::future::IntoFuture as _;

use serde_json::{Value, json};
use ykt_crypto::Sm2PrivateKey;
use ykt_envelope::{Code, Envelope, Header, PeerKey, Sm2Signer};
use ykt_tsm::api::{self, MessageDef};
use ykt_tsm_service::engine::Keys;
use ykt_tsm_service::http::{ServerConfig, TsmClient, router};

use crate::support::*;
use crate::two::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn seal(def: MessageDef, body: &Value, key: &Sm2PrivateKey, sender: &str, at: i64) -> Envelope {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).unwrap();
    let id = hex::encode(nonce);
    Envelope::seal(
        &Header {
            msg_type: def.request.into(),
            msg_no: def.msg_no.into(),
            sender_id: sender.into(),
            receiver_id: SEI_ID.into(),
            txn_id: id.clone(),
            request_id: id,
        },
        body,
        None,
        &nonce,
        at,
        &Sm2Signer::new(key.clone()),
    )
    .unwrap()
}

/// The SP engine's start asks the SEI whether it holds the three keys the parties name.
const STARTUP_QUERIES: usize = 3;

fn seid() -> String {
    seid_of_serial(70).to_string()
}

fn initial() -> String {
    format!(
        "ssd/{}/{}/initial",
        seid(),
        hex::encode_upper(ykt_tsm::proposals::SSD_AID)
    )
}

fn isd(master: &str) -> Value {
    json!({"Isd": {"master": master, "seid": seid_of_serial(70)}})
}

/// (message, body, expected code) sent by the SP, signed with its key.
fn cases() -> Vec<(MessageDef, Value, Code)> {
    let sp_set = initial().replace("/initial", "/sp");
    let other = Sm2PrivateKey::from_bytes(&[0x44; 32]).unwrap();
    let other_pub = hex::encode(other.public_key().to_bytes());
    vec![
        // The SEI's own operations go through.
        (api::KEY_QUERY, json!({"key": initial()}), Code::Ok),
        (
            api::CREATE_SSD,
            json!({"key": initial(), "version": 1}),
            Code::Ok,
        ),
        (
            api::CREATE_SSD,
            json!({"key": initial(), "version": 1}),
            Code::SsdExists,
        ),
        (
            api::ISD_CHANNEL_INFO,
            json!({"keys": isd("sei/isd-master")}),
            Code::Ok,
        ),
        // The SP's keys, its transport key, its purse keys, another platform's ISD master.
        (api::KEY_QUERY, json!({"key": sp_set}), Code::Forbidden),
        (
            api::CREATE_SSD,
            json!({"key": sp_set, "version": 1}),
            Code::Forbidden,
        ),
        (
            api::DELETE_SSD,
            json!({"key": "sp/transport"}),
            Code::Forbidden,
        ),
        (
            api::ISD_CHANNEL_INFO,
            json!({"keys": isd("other-sei/isd-master")}),
            Code::Forbidden,
        ),
        (
            api::ISD_CHANNEL_INFO,
            json!({"keys": {"Named": "sei/isd-master"}}),
            Code::Forbidden,
        ),
        (
            api::SSD_FIRST_KEYS,
            json!({"key": initial(), "under": {"Named": sp_set}, "encryption": "StaticDek"}),
            Code::Forbidden,
        ),
        (
            api::ACQUIRE_TOKEN,
            json!({"signer": "sp/purse-issuer", "kind": "DELETE", "p1": 0, "p2": 0, "data": "4F00"}),
            Code::Forbidden,
        ),
        (
            api::VERIFY_RECEIPT,
            json!({"key": "sei/token", "response": "00", "kind": "DELETE", "aids": ["A000"]}),
            Code::Forbidden,
        ),
        // The handover goes to the pinned transport key only.
        (
            api::SSD_KEY_HANDOVER,
            json!({"key": initial(), "recipient": other_pub}),
            Code::Forbidden,
        ),
        (
            api::SSD_KEY_HANDOVER,
            json!({"key": initial(), "recipient": hex::encode(transport_pub())}),
            Code::Ok,
        ),
        // Malformed bodies.
        (api::CREATE_SSD, json!({"key": initial()}), Code::BadRequest),
        (
            api::KEY_QUERY,
            json!({"key": initial(), "value": "00"}),
            Code::BadRequest,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sei_serves_its_own_keys_to_its_sp_only() {
    let two = Two::start().await;
    let client = TsmClient::new(&two.sei.url()).unwrap();
    let sei = PeerKey::Sm2(sei_key().public_key().clone());
    let cases = cases();
    for (def, body, code) in &cases {
        let request = seal(*def, body, &sp_key(), SP_ID, now());
        let answer = tokio::task::block_in_place(|| client.send(&request)).unwrap();
        answer.verify(&sei).unwrap();
        assert_eq!(
            answer.code(),
            Some(*code),
            "{} {body}: {:?}",
            def.request,
            answer.result
        );
        assert_eq!(answer.msg_type, def.response);
        // A refusal names at most a key's name.
        let text = serde_json::to_string(&answer).unwrap();
        assert!(!text.contains(&hex::encode_upper(transport_bytes())));
    }
    let wrapped = {
        let (def, body, _) = &cases[13];
        let request = seal(*def, body, &sp_key(), SP_ID, now());
        let answer = tokio::task::block_in_place(|| client.send(&request)).unwrap();
        answer.body["wrapped"].as_str().unwrap().to_string()
    };
    // Only the SP's transport key opens the handover.
    let mut sp_vault = two.vaults.sp.clone();
    use ykt_tsm::KeyVault as _;
    let name = ykt_tsm::KeyName(initial());
    sp_vault
        .import_key_set(
            &name,
            &parties().sp_transport,
            &hex::decode(&wrapped).unwrap(),
        )
        .unwrap();
    assert!(sp_vault.contains(&name));

    // Each operation the envelope checks let through is one audit row, refusals included.
    let rows = two
        .sei_db
        .store()
        .await
        .audit_records(1, 1000)
        .await
        .unwrap();
    assert_eq!(rows.len(), STARTUP_QUERIES + cases.len() + 1, "{rows:#?}");
    assert_eq!(
        rows.iter()
            .filter(|r| r.event.detail.contains("refused"))
            .count(),
        cases.iter().filter(|c| c.2 != Code::Ok).count()
    );
    two.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_senders_keys_replays_and_stale_messages_are_refused() {
    let two = Two::start().await;
    let client = TsmClient::new(&two.sei.url()).unwrap();
    let send = |e: &Envelope| tokio::task::block_in_place(|| client.send(e)).unwrap();
    let body = json!({"key": initial()});
    let stranger = Sm2PrivateKey::from_bytes(&[0x45; 32]).unwrap();
    // Another platform's id: unknown sender.
    let e = seal(api::KEY_QUERY, &body, &stranger, "SPTSM-OTHER", now());
    assert_eq!(send(&e).code(), Some(Code::UnknownSender));
    let e = seal(api::KEY_QUERY, &body, &sp_key(), "SPTSM-OTHER", now());
    assert_eq!(send(&e).code(), Some(Code::UnknownSender));
    // The SP's id with another key: the signature does not verify under the pinned key.
    let e = seal(api::KEY_QUERY, &body, &stranger, SP_ID, now());
    assert_eq!(send(&e).code(), Some(Code::BadSignature));
    // A replay of an accepted message.
    let e = seal(api::KEY_QUERY, &body, &sp_key(), SP_ID, now());
    assert_eq!(send(&e).code(), Some(Code::Ok));
    assert_eq!(send(&e).code(), Some(Code::Replayed));
    // Outside the clock window.
    let e = seal(api::KEY_QUERY, &body, &sp_key(), SP_ID, now() - 3_600_000);
    assert_eq!(send(&e).code(), Some(Code::Stale));
    // The business API is not the SEI's.
    let e = seal(
        api::OPEN_CARD,
        &json!({"management": "Authorized", "city_code": "1000"}),
        &sp_key(),
        SP_ID,
        now(),
    );
    assert_eq!(send(&e).code(), Some(Code::BadRequest));
    // One audit row after the SP's start: the one operation that got through.
    let rows = two
        .sei_db
        .store()
        .await
        .audit_records(1, 1000)
        .await
        .unwrap();
    assert_eq!(rows.len(), STARTUP_QUERIES + 1, "{rows:#?}");
    two.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sp_server_does_not_serve_the_inter_platform_api() {
    let db = Db::sqlite();
    let vaults = Vaults::new();
    let keys: Keys = vaults.keys();
    let engine = ykt_tsm_service::engine::Engine::new(db.store().await, keys, config(true))
        .await
        .unwrap();
    let server = ServerConfig::new(SP_ID, Sm2Signer::new(sp_key()), admin_token());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(axum::serve(listener, router(engine, server)).into_future());
    let client = TsmClient::new(&url).unwrap();
    let mut e = seal(
        api::CREATE_SSD,
        &json!({"key": initial(), "version": 1}),
        &sp_key(),
        "x",
        now(),
    );
    e.receiver_id = SP_ID.into();
    let answer = tokio::task::block_in_place(|| client.send(&e)).unwrap();
    assert_eq!(answer.code(), Some(Code::BadRequest));
    task.abort();
    db.finish().await;
}
