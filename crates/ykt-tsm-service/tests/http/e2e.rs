//! End to end over HTTP with the real engine: a device enrols, opens a card on an in-process
//! SE through a relay loop (`ykt_tsm::relay::relay_on_card`), and the admin API sees it.

use ykt_card::Card;
use ykt_envelope::Code;
use ykt_tsm::api::{self, CardsResp, FlowResp, FlowStatus, OrderResp, TopupOrderReq};
use ykt_tsm::relay::relay_on_card;
use ykt_tsm_service::engine::{CardStock, Engine, EngineConfig, Keys};

use crate::se::{new_se, parties, vaults};
use crate::support::{ADMIN_TOKEN, Device, TSM_ID, TestServer, code, open_card};

fn engine_server() -> TestServer<Engine> {
    TestServer::start_backend(
        |store| async move {
            let (sei, sp) = vaults();
            let keys = Keys {
                sei: Box::new(sei),
                sp: Box::new(sp),
            };
            let config = EngineConfig {
                tsm_id: TSM_ID.into(),
                parties: parties(),
                card_stock: CardStock {
                    issuer_id: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
                    start_date: [0x20, 0x24, 0x01, 0x01],
                    expiry_date: [0x20, 0x34, 0x12, 0x31],
                    number_prefix: [0x31, 0x04, 0x00, 0x00],
                },
                test_payments: true,
            };
            Engine::new(store, keys, config).await.unwrap()
        },
        |c| c,
    )
}

/// Relays `flow` to the end on `card`; every answer is sent twice (the second a retry with a
/// new nonce and the same `request_id`), and the retry must get the same answer.
fn drive(
    server: &TestServer<Engine>,
    device: &Device,
    card: &mut Card,
    txn_id: &str,
    mut flow: FlowResp,
) -> FlowResp {
    let mut messages = 0;
    while flow.status == FlowStatus::Running {
        messages += 1;
        assert!(messages < 200, "the flow does not end");
        let relay = flow.relay.clone().expect("a running flow relays");
        let response = relay_on_card(&relay, |c| card.transmit(c).unwrap());
        let body = api::ApduResultReq { response };
        let header = device.header(api::APDU_RESULT, txn_id, &format!("{txn_id}-{messages}"));
        let answer = server.send(&device.seal_as(server.now(), &header, &body));
        assert_eq!(code(&answer), Code::Ok, "{:?}", answer.result);
        let retry = server.send(&device.seal_as(server.now(), &header, &body));
        assert_eq!(retry.body, answer.body);
        flow = answer.body().unwrap();
    }
    flow
}

#[test]
fn open_card_over_http_on_an_in_process_se() {
    let server = engine_server();
    let device = server.enrolled(7);
    let mut card = new_se(1);

    let answer = server.send(&device.seal(&server, api::OPEN_CARD, "open-1", &open_card()));
    assert_eq!(code(&answer), Code::Ok, "{:?}", answer.result);
    let flow = drive(
        &server,
        &device,
        &mut card,
        "open-1",
        answer.body().unwrap(),
    );
    assert_eq!(flow.status, FlowStatus::Completed, "{flow:?}");
    assert_eq!(flow.instance_state, "ACTIVE");
    let outcome = flow.outcome.expect("a completed flow has an outcome");
    let card_no = outcome.card_no.expect("open card gives the card number");
    let seid = outcome.seid.expect("and the SE");
    assert_eq!(outcome.balance, Some(0));

    // The device's cards, over the business API.
    let answer = server.send(&device.seal(&server, api::CARDS_QUERY, "q", &api::Empty {}));
    let cards: CardsResp = answer.body().unwrap();
    assert!(
        cards
            .cards
            .iter()
            .any(|c| c.card_no == card_no && c.seid == seid)
    );

    // The operator's views.
    let c = &server.client;
    let se = c.admin_se(ADMIN_TOKEN, &seid).unwrap();
    assert_eq!(se.seid, seid);
    let instances = c.admin_cards(ADMIN_TOKEN, &seid).unwrap();
    assert!(instances.iter().any(|i| i.card_no == card_no));
    assert!(
        c.admin_flows(ADMIN_TOKEN, "RUNNING", None)
            .unwrap()
            .is_empty()
    );
    let chain = c.admin_verify_audit(ADMIN_TOKEN).unwrap();
    assert!(chain.intact);
    assert!(chain.rows.unwrap() > 0);

    let metrics = c.metrics().unwrap();
    assert!(
        metrics.contains("ykt_tsm_flows_started_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ykt_tsm_flows_completed_total 1"),
        "{metrics}"
    );
}

#[test]
fn top_up_over_http_after_open_card() {
    let server = engine_server();
    let device = server.enrolled(7);
    let mut card = new_se(2);
    let answer = server.send(&device.seal(&server, api::OPEN_CARD, "open-2", &open_card()));
    let flow = drive(
        &server,
        &device,
        &mut card,
        "open-2",
        answer.body().unwrap(),
    );
    let outcome = flow.outcome.unwrap();
    let (card_no, seid) = (outcome.card_no.unwrap(), outcome.seid.unwrap());

    let order = TopupOrderReq {
        card_no: card_no.clone(),
        seid: seid.clone(),
        amount: 1_000,
        pay_channel: "99".into(),
    };
    let answer = server.send(&device.seal(&server, api::TOPUP_ORDER, "order", &order));
    assert_eq!(code(&answer), Code::Ok, "{:?}", answer.result);
    let order: OrderResp = answer.body().unwrap();
    let pay = api::OrderReq {
        order_id: order.order_id.clone(),
    };
    // Not paid yet: the load is refused.
    let answer = server.send(&device.seal(&server, api::TOPUP, "load-0", &pay));
    assert_eq!(code(&answer), Code::NotPaid);
    let answer = server.send(&device.seal(&server, api::TEST_PAY, "pay", &pay));
    assert_eq!(code(&answer), Code::Ok, "{:?}", answer.result);

    let answer = server.send(&device.seal(&server, api::TOPUP, "load-1", &pay));
    assert_eq!(code(&answer), Code::Ok, "{:?}", answer.result);
    let flow = drive(
        &server,
        &device,
        &mut card,
        "load-1",
        answer.body().unwrap(),
    );
    assert_eq!(flow.status, FlowStatus::Completed, "{flow:?}");
    let load = flow
        .outcome
        .unwrap()
        .load
        .expect("a top-up reports its load");
    assert_eq!((load.amount, load.new_balance), (1_000, 1_000));

    let answer = server.send(&device.seal(&server, api::ORDER_QUERY, "q", &pay));
    let order: OrderResp = answer.body().unwrap();
    assert_eq!(order.state, "LOADED");
}
