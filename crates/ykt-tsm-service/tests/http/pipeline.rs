//! The business pipeline: enrolment, signatures, senders, freshness, replays, malformed input.

use serde_json::{Value, json};
use ykt_envelope::{Code, Envelope, response_no};
use ykt_tsm::api;

use crate::support::{Device, TestServer, code, open_card};

#[test]
fn enrol_then_a_signed_request_succeeds() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    assert_eq!(server.fake.calls("enrol"), 1);
    assert!(device.id.starts_with("DEV-"));

    let request = device.seal(&server, api::OPEN_CARD, "txn-1", &open_card());
    let answer = server.send(&request);
    assert_eq!(code(&answer), Code::Ok);
    assert_eq!(answer.msg_type, "FlowResp");
    assert_eq!(answer.msg_no, response_no(api::OPEN_CARD.msg_no));
    let flow: api::FlowResp = answer.body().unwrap();
    assert_eq!(flow.txn_id, "txn-1");
    assert_eq!(flow.status, api::FlowStatus::Running);
    assert_eq!(server.fake.calls("start"), 1);
}

#[test]
fn enrolment_answers_the_tsm_key_and_needs_proof_of_possession() {
    let server = TestServer::start();
    let device = Device::new(9);
    let other = Device::new(10);
    // The body names another device's key than the one that signed: refused.
    let req = api::EnrolReq {
        device_pub: ykt_tsm::hex::Hex(other.public_key().to_bytes().to_vec()),
        device_model: "x".into(),
    };
    let answer = server.send(&device.seal(&server, api::ENROL, "e", &req));
    assert_eq!(code(&answer), Code::BadSignature);
    assert_eq!(server.fake.calls("enrol"), 0);

    let req = api::EnrolReq {
        device_pub: ykt_tsm::hex::Hex(device.public_key().to_bytes().to_vec()),
        device_model: "x".into(),
    };
    let answer = server.send(&device.seal(&server, api::ENROL, "e", &req));
    assert_eq!(code(&answer), Code::Ok);
    let resp: api::EnrolResp = answer.body().unwrap();
    assert_eq!(resp.tsm_pub.0, server.tsm_key.to_bytes().to_vec());
    assert_eq!(resp.tsm_id, crate::support::TSM_ID);

    let req = api::EnrolReq {
        device_pub: ykt_tsm::hex::Hex(vec![4; 65]),
        device_model: "x".into(),
    };
    let answer = server.send(&device.seal(&server, api::ENROL, "e", &req));
    assert_eq!(code(&answer), Code::BadRequest);
}

#[test]
fn a_bad_signature_is_1001() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    let mut request = device.seal(&server, api::OPEN_CARD, "txn-1", &open_card());
    request.body["city_code"] = json!("1000");
    let answer = server.send(&request);
    assert_eq!(code(&answer), Code::BadSignature);
    assert_eq!(Code::BadSignature.http_status(), 401);

    // Signed by another key under the device's id.
    let mut impostor = Device::new(8);
    impostor.id = device.id.clone();
    let answer = server.send(&impostor.seal(&server, api::OPEN_CARD, "txn-1", &open_card()));
    assert_eq!(code(&answer), Code::BadSignature);

    let mut request = device.seal(&server, api::OPEN_CARD, "txn-1", &open_card());
    request.sign = "not base64!".into();
    assert_eq!(code(&server.send(&request)), Code::BadSignature);
    assert_eq!(server.fake.calls("start"), 0);
}

#[test]
fn an_unknown_sender_is_1002() {
    let server = TestServer::start();
    let device = Device::new(7);
    let answer = server.send(&device.seal(&server, api::OPEN_CARD, "txn-1", &open_card()));
    assert_eq!(code(&answer), Code::UnknownSender);
    assert_eq!(server.fake.calls("start"), 0);
}

#[test]
fn timestamps_outside_the_window_are_1004() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    for (offset, expected) in [
        (-300_001, Code::Stale),
        (300_001, Code::Stale),
        (-3_600_000, Code::Stale),
        (-299_000, Code::Ok),
        (299_000, Code::Ok),
    ] {
        let header = device.header(api::LOCK, "txn-l", &format!("lock{offset}"));
        let body = api::CardReq {
            card_no: "31040000000000000001".into(),
            seid: "5345".into(),
        };
        let request = device.seal_as(server.now() + offset, &header, &body);
        assert_eq!(code(&server.send(&request)), expected, "offset {offset}");
    }
    assert_eq!(server.fake.calls("start"), 2);
}

#[test]
fn the_same_bytes_twice_are_1005_without_a_second_call() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    let bytes = device
        .seal(&server, api::OPEN_CARD, "txn-1", &open_card())
        .to_vec();
    let (_, first) = server.send_raw("OpenCardReq", &bytes);
    assert_eq!(code(&first), Code::Ok);
    let (status, second) = server.send_raw("OpenCardReq", &bytes);
    assert_eq!((status, code(&second)), (409, Code::Replayed));
    assert_eq!(server.fake.calls("start"), 1);
}

/// A request that is not one this TSM serves: (what, path, bytes).
fn malformed(server: &TestServer, device: &Device) -> Vec<(&'static str, String, Vec<u8>)> {
    let good = device.seal(server, api::OPEN_CARD, "txn-m", &open_card());
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_slice(&good.to_vec()).unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let mut other_receiver = device.header(api::OPEN_CARD, "txn-m", "r-other");
    other_receiver.receiver_id = "SPTSM-ELSEWHERE".into();
    let mut wrong_no = device.header(api::OPEN_CARD, "txn-m", "r-no");
    wrong_no.msg_no = "3003".into();
    let mut body_extra = open_card_value();
    body_extra["pin"] = json!("123456");
    vec![
        (
            "wrong receiver",
            "OpenCardReq".into(),
            device
                .seal_as(server.now(), &other_receiver, &open_card())
                .to_vec(),
        ),
        ("path mismatch", "LockReq".into(), good.to_vec()),
        ("unknown path", "NoSuchReq".into(), good.to_vec()),
        (
            "wrong msg_no",
            "OpenCardReq".into(),
            device
                .seal_as(server.now(), &wrong_no, &open_card())
                .to_vec(),
        ),
        (
            "unknown envelope member",
            "OpenCardReq".into(),
            with(&|v| v["extra"] = json!(1)),
        ),
        (
            "missing envelope member",
            "OpenCardReq".into(),
            with(&|v| {
                v.as_object_mut().unwrap().remove("nonce");
            }),
        ),
        (
            "unknown body member",
            "OpenCardReq".into(),
            device
                .seal(server, api::OPEN_CARD, "txn-m", &body_extra)
                .to_vec(),
        ),
        (
            "body of another type",
            "OpenCardReq".into(),
            device
                .seal(server, api::OPEN_CARD, "txn-m", &json!({"order_id": "o"}))
                .to_vec(),
        ),
        ("not JSON", "OpenCardReq".into(), b"{not json".to_vec()),
        ("empty", "OpenCardReq".into(), Vec::new()),
        (
            "JSON but not an object",
            "OpenCardReq".into(),
            b"[1,2]".to_vec(),
        ),
        (
            "long sender_id",
            "OpenCardReq".into(),
            with(&|v| v["sender_id"] = json!("x".repeat(4000))),
        ),
        (
            "control characters in request_id",
            "OpenCardReq".into(),
            with(&|v| v["request_id"] = json!("a\nb")),
        ),
        (
            "short nonce",
            "OpenCardReq".into(),
            with(&|v| v["nonce"] = json!("00")),
        ),
    ]
}

fn open_card_value() -> Value {
    serde_json::to_value(open_card()).unwrap()
}

#[test]
fn malformed_requests_are_1006_400_and_signed() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    for (what, path, bytes) in malformed(&server, &device) {
        let (status, answer) = server.send_raw(&path, &bytes);
        assert_eq!((status, code(&answer)), (400, Code::BadRequest), "{what}");
        let msg = &answer.result.as_ref().unwrap().msg;
        assert!(!msg.is_empty() && !msg.contains("123456"), "{what}: {msg}");
        // Ids are repeated only when short and printable.
        for id in [&answer.receiver_id, &answer.request_id, &answer.txn_id] {
            assert!(id.len() <= 128 && !id.contains('\n'), "{what}");
        }
    }
    assert_eq!(server.fake.calls("start"), 0);
}

#[test]
fn refusal_messages_name_the_member() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    let mut body = open_card_value();
    body["pin"] = json!("123456");
    let answer = server.send(&device.seal(&server, api::OPEN_CARD, "t", &body));
    assert_eq!(
        answer.result.unwrap().msg,
        "the body is not a OpenCardReq: unknown field `pin`"
    );
    let (_, answer) = server.send_raw("NoSuchReq", b"{}");
    assert_eq!(answer.msg_type, "ErrorResp");
}

#[test]
fn a_body_over_the_limit_is_413() {
    let server = TestServer::start_with(|c| c.with_max_body(2048));
    let device = server.enrolled(7);
    let mut body = open_card_value();
    body["city_code"] = json!("9".repeat(4096));
    let request = device.seal(&server, api::OPEN_CARD, "t", &body);
    let (status, answer) = server.send_raw("OpenCardReq", &request.to_vec());
    assert_eq!((status, code(&answer)), (413, Code::BadRequest));
    assert_eq!(server.fake.calls("start"), 0);
}

#[test]
fn each_request_type_reaches_its_backend_call() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    let card = json!({"card_no": "31040000000000000001", "seid": "5345"});
    let order = json!({"order_id": "ORDER-1"});
    let relay = json!({"response": {"session_id": "s", "seq": 1, "rapdus": ["9000"]}});
    let cases: Vec<(api::MessageDef, Value, &str, Code)> = vec![
        (api::OPEN_CARD, open_card_value(), "start", Code::Ok),
        (api::TOPUP, order.clone(), "start", Code::Ok),
        (api::DELETE_CARD, card.clone(), "start", Code::Ok),
        (
            api::REFUND,
            json!({"card_no": "3104", "seid": "5345", "refund_account": "acct"}),
            "start",
            Code::Ok,
        ),
        (api::TRANSFER_OUT, card.clone(), "start", Code::Ok),
        (
            api::TRANSFER_IN,
            json!({"transfer_code": "T", "management": "Delegated"}),
            "start",
            Code::Ok,
        ),
        (api::LOCK, card.clone(), "start", Code::Ok),
        (api::UNLOCK, card.clone(), "start", Code::Ok),
        (api::APP_QUERY, json!({"seid": null}), "start", Code::Ok),
        (api::CARD_QUERY, card.clone(), "start", Code::Ok),
        (api::APDU_RESULT, relay, "apdu_result", Code::Ok),
        (api::RESUME, json!({}), "resume", Code::Ok),
        (api::FLOW_QUERY, json!({}), "flow", Code::Ok),
        (
            api::TOPUP_ORDER,
            json!({"card_no": "3104", "seid": "5345", "amount": 100, "pay_channel": "99"}),
            "create_order",
            Code::Ok,
        ),
        (
            api::ORDER_QUERY,
            order.clone(),
            "order",
            Code::OrderNotFound,
        ),
        (api::TEST_PAY, order, "test_pay", Code::Ok),
        (api::CARDS_QUERY, json!({}), "cards", Code::Ok),
    ];
    // Every request type but enrolment is covered.
    assert_eq!(cases.len() + 1, api::MESSAGES.len());
    for (def, body, method, expected) in cases {
        let before = server.fake.calls(method);
        let answer = server.send(&device.seal(&server, def, "txn-x", &body));
        assert_eq!(code(&answer), expected, "{}", def.request);
        assert_eq!(answer.msg_type, def.response, "{}", def.request);
        assert_eq!(server.fake.calls(method), before + 1, "{}", def.request);
    }
}

#[test]
fn the_client_keeps_transport_failures_apart() {
    use ykt_tsm_service::http::{ClientError, TsmClient};
    assert!(matches!(
        TsmClient::new("https://127.0.0.1:1"),
        Err(ClientError::UnsupportedUrl)
    ));
    // Port 9 (discard) on loopback: nothing listens there in the test environment.
    let client = TsmClient::new("http://127.0.0.1:9").unwrap();
    let device = Device::new(7);
    let header = device.header(api::OPEN_CARD, "t", "r");
    let request: Envelope = device.seal_as(0, &header, &open_card());
    let e = client.send(&request).unwrap_err();
    assert!(e.is_transport(), "{e:?}");

    let server = TestServer::start();
    assert_eq!(server.client.health().unwrap(), "ok");
    // A refusal is an envelope, not an error.
    assert_eq!(
        code(&server.client.send(&request).unwrap()),
        Code::UnknownSender
    );
    // A path that answers no envelope is a transport-class failure.
    let e = TsmClient::new(&format!("{}/nowhere", server.client.base_url()))
        .unwrap()
        .send_bytes("x", b"{}")
        .unwrap_err();
    assert!(e.is_transport(), "{e:?}");
}

#[test]
fn nobody_else_can_claim_a_device_s_enrolment_request_id() {
    let server = TestServer::start();
    let victim = Device::new(9);
    let mut attacker = Device::new(20);
    attacker.id = victim.id.clone();
    let enrol = |d: &Device| api::EnrolReq {
        device_pub: ykt_tsm::hex::Hex(d.public_key().to_bytes().to_vec()),
        device_model: "m".into(),
    };
    let header = victim.header(api::ENROL, "e", "req-1");
    let first = attacker.seal_as(server.now(), &header, &enrol(&attacker));
    assert_eq!(code(&server.send(&first)), Code::Ok);
    let answer = server.send(&victim.seal_as(server.now(), &header, &enrol(&victim)));
    assert_eq!(code(&answer), Code::Ok, "{:?}", answer.result);
    assert_eq!(server.fake.calls("enrol"), 2);
}

/// client.md §6.3 R5 before tsm-gp.md §7 `request_id`: a nonce seen before is refused under any
/// request id, and the refused message claims nothing (the replay guard and the claim are one
/// store transaction, the guard first).
#[test]
fn a_replayed_nonce_under_a_new_request_id_is_1005_and_claims_nothing() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    // The same key and counter: the twin's nonces are the device's, one for one.
    let mut twin = Device::new(7);
    twin.id = device.id.clone();
    let _enrolment_nonce = twin.nonce();
    let first = device.seal(&server, api::OPEN_CARD, "txn-1", &open_card());
    assert_eq!(code(&server.send(&first)), Code::Ok);
    let header = twin.header(api::OPEN_CARD, "txn-2", "another-request");
    let replayed = twin.seal_as(server.now(), &header, &open_card());
    assert_eq!(replayed.nonce, first.nonce);
    let (status, answer) = server.send_raw("OpenCardReq", &replayed.to_vec());
    assert_eq!((status, code(&answer)), (409, Code::Replayed));
    assert_eq!(server.fake.calls("start"), 1);
    // The request id was not claimed: under a fresh nonce it is a new request.
    let header = device.header(api::OPEN_CARD, "txn-2", "another-request");
    let fresh = device.seal_as(server.now(), &header, &open_card());
    assert_eq!(code(&server.send(&fresh)), Code::Ok);
    assert_eq!(server.fake.calls("start"), 2);
}
