//! tsm-gp.md §7 `request_id`: retries, duplicates, claims left by a crash, internal failures.

use serde_json::json;
use ykt_envelope::{Code, jcs};
use ykt_store::RequestHash;
use ykt_tsm::api;
use ykt_tsm_service::http::BackendError;
use ykt_tsm_service::http::proposals::ORPHAN_CLAIM_MS;

use crate::support::{TestServer, code, open_card};

#[test]
fn a_retry_with_a_new_nonce_gets_the_same_answer_without_a_second_call() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    let header = device.header(api::OPEN_CARD, "txn-1", "req-open");
    let first = server.send(&device.seal_as(server.now(), &header, &open_card()));
    server.advance(1_000);
    let retry = device.seal_as(server.now(), &header, &open_card());
    let second = server.send(&retry);
    assert_eq!(code(&second), Code::Ok);
    assert_eq!(second.body, first.body);
    assert_eq!(second.result, first.result);
    assert_eq!(second.msg_type, first.msg_type);
    // Sealed again: a fresh nonce and this retry's time.
    assert_ne!(second.nonce, first.nonce);
    assert_ne!(second.timestamp, first.timestamp);
    assert_eq!(server.fake.calls("start"), 1);

    // A declined request's answer is final too.
    let header = device.header(api::ORDER_QUERY, "t", "req-order");
    let body = json!({"order_id": "O-9"});
    let a = server.send(&device.seal_as(server.now(), &header, &body));
    let b = server.send(&device.seal_as(server.now(), &header, &body));
    assert_eq!(
        (code(&a), code(&b)),
        (Code::OrderNotFound, Code::OrderNotFound)
    );
    assert_eq!(a.result, b.result);
    assert_eq!(server.fake.calls("order"), 1);
}

#[test]
fn the_same_request_id_with_another_body_is_1003() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    let header = device.header(api::OPEN_CARD, "txn-1", "req-open");
    assert_eq!(
        code(&server.send(&device.seal_as(server.now(), &header, &open_card()))),
        Code::Ok
    );
    let mut other = open_card();
    other.city_code = "1000".into();
    let answer = server.send(&device.seal_as(server.now(), &header, &other));
    assert_eq!(code(&answer), Code::Duplicate);
    // Another txn_id is another request too.
    let header = device.header(api::OPEN_CARD, "txn-2", "req-open");
    let answer = server.send(&device.seal_as(server.now(), &header, &open_card()));
    assert_eq!(code(&answer), Code::Duplicate);
    assert_eq!(server.fake.calls("start"), 1);
}

#[test]
fn a_claim_left_by_a_crashed_process_blocks_retries_only_until_the_timeout() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    let body = serde_json::to_value(open_card()).unwrap();
    let hashed = json!({"msg_type": "OpenCardReq", "txn_id": "txn-1", "body": body});
    let hash = RequestHash::of(&jcs::to_vec(&hashed).unwrap());
    // Another process claimed the request and died before completing it.
    server
        .rt
        .block_on(server.store.begin_request(&device.id, "req-crash", &hash))
        .unwrap();
    let header = device.header(api::OPEN_CARD, "txn-1", "req-crash");
    let answer = server.send(&device.seal_as(server.now(), &header, &open_card()));
    assert_eq!(code(&answer), Code::InProgress);
    server.advance(ORPHAN_CLAIM_MS - 1);
    let answer = server.send(&device.seal_as(server.now(), &header, &open_card()));
    assert_eq!(code(&answer), Code::InProgress);
    assert_eq!(server.fake.calls("start"), 0);
    server.advance(1);
    let answer = server.send(&device.seal_as(server.now(), &header, &open_card()));
    assert_eq!(code(&answer), Code::Ok);
    assert_eq!(server.fake.calls("start"), 1);
    // Now completed: the next retry gets the stored answer.
    let again = server.send(&device.seal_as(server.now(), &header, &open_card()));
    assert_eq!(again.body, answer.body);
    assert_eq!(server.fake.calls("start"), 1);
}

#[test]
fn an_internal_failure_releases_the_claim_and_says_nothing_of_itself() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    server.fake.fail_next(BackendError::new(
        Code::Internal,
        "database at 10.0.0.1 refused",
    ));
    let header = device.header(api::OPEN_CARD, "txn-1", "req-open");
    let answer = server.send(&device.seal_as(server.now(), &header, &open_card()));
    assert_eq!(code(&answer), Code::Internal);
    assert_eq!(answer.result.as_ref().unwrap().msg, "internal error");
    let answer = server.send(&device.seal_as(server.now(), &header, &open_card()));
    assert_eq!(code(&answer), Code::Ok);
    assert_eq!(server.fake.calls("start"), 2);
}

#[test]
fn a_retry_while_the_first_is_running_is_1008_and_the_work_is_done_once() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    server.fake.delay_starts(500);
    let header = device.header(api::OPEN_CARD, "txn-1", "req-slow");
    let first = device.seal_as(server.now(), &header, &open_card());
    let retry = device.seal_as(server.now(), &header, &open_card());
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| server.send(&first));
        std::thread::sleep(std::time::Duration::from_millis(150));
        let b = server.send(&retry);
        (a.join().unwrap(), b)
    });
    assert_eq!((code(&a), code(&b)), (Code::Ok, Code::InProgress));
    assert_eq!(server.fake.calls("start"), 1);
    // Once the first is done, a retry gets its answer.
    let again = server.send(&device.seal_as(server.now(), &header, &open_card()));
    assert_eq!(again.body, a.body);
    assert_eq!(server.fake.calls("start"), 1);
}

#[test]
fn old_idempotency_records_are_purged() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    let header = device.header(api::OPEN_CARD, "txn-1", "req-old");
    assert_eq!(
        code(&server.send(&device.seal_as(server.now(), &header, &open_card()))),
        Code::Ok
    );
    server.advance(1_000);
    let answer = server.send(&device.seal_as(server.now(), &header, &open_card()));
    assert_eq!(code(&answer), Code::Ok);
    assert_eq!(server.fake.calls("start"), 1);
    // A day later (past a purge interval) the same request is new again.
    server.advance(ykt_tsm_service::http::proposals::REQUEST_MEMORY_MS + 60_001);
    let answer = server.send(&device.seal_as(server.now(), &header, &open_card()));
    assert_eq!(code(&answer), Code::Ok);
    assert_eq!(server.fake.calls("start"), 2);
}
