//! The admin API: bearer token, the views over the store.

use ykt_envelope::Code;
use ykt_store::{NewCard, NewSe};
use ykt_tsm_service::http::{ClientError, TsmClient};

use crate::support::{ADMIN_TOKEN, TestServer};

fn raw_get(client: &TsmClient, path: &str, auth: Option<&str>) -> u16 {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut request = agent.get(format!("{}{path}", client.base_url()));
    if let Some(a) = auth {
        request = request.header("Authorization", a);
    }
    request.call().unwrap().status().as_u16()
}

#[test]
fn admin_paths_need_the_bearer_token() {
    let server = TestServer::start();
    let wrong_token = format!("Bearer {ADMIN_TOKEN}x");
    let right_token = format!("Bearer {ADMIN_TOKEN}");
    for path in [
        "/admin/v1/ses",
        "/admin/v1/cards",
        "/admin/v1/ses/5345",
        "/admin/v1/ses/5345/cards",
        "/admin/v1/flows",
        "/admin/v1/flows/txn-1",
        "/admin/v1/audit/verify",
    ] {
        assert_eq!(raw_get(&server.client, path, None), 401, "{path}");
        assert_eq!(
            raw_get(&server.client, path, Some(&wrong_token)),
            401,
            "{path}"
        );
        assert_eq!(
            raw_get(&server.client, path, Some("Basic abc")),
            401,
            "{path}"
        );
        assert_ne!(
            raw_get(&server.client, path, Some(&right_token)),
            401,
            "{path}"
        );
    }
    match server.client.admin_verify_audit("not-the-token") {
        Err(ClientError::Admin { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn admin_views_show_the_store() {
    let server = TestServer::start();
    let c = &server.client;
    server.rt.block_on(async {
        server
            .store
            .register_se(&NewSe {
                seid: "5345".into(),
                cplc: vec![0x9F, 0x7F],
                profile: "sim".into(),
            })
            .await
            .unwrap();
        server
            .store
            .create_card(&NewCard {
                seid: "5345".into(),
                card_no: "31040000000000000001".into(),
                ssd_aid: None,
                app_aid: Some(vec![0xA0, 0x00]),
                key_versions: [("purse".to_string(), 1u8)].into_iter().collect(),
            })
            .await
            .unwrap();
    });
    let ses = c.admin_ses(ADMIN_TOKEN).unwrap();
    assert_eq!(
        ses.iter().map(|s| s.seid.as_str()).collect::<Vec<_>>(),
        ["5345"]
    );
    assert_eq!(c.admin_all_cards(ADMIN_TOKEN).unwrap().len(), 1);
    let se = c.admin_se(ADMIN_TOKEN, "5345").unwrap();
    assert_eq!((se.seid.as_str(), se.cplc.as_str()), ("5345", "9f7f"));
    let cards = c.admin_cards(ADMIN_TOKEN, "5345").unwrap();
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].app_aid.as_deref(), Some("a000"));
    assert_eq!(cards[0].key_versions.get("purse"), Some(&1));
    assert!(
        c.admin_flows(ADMIN_TOKEN, "RUNNING", None)
            .unwrap()
            .is_empty()
    );
    assert!(
        c.admin_flows(ADMIN_TOKEN, "RUNNING", Some("5345"))
            .unwrap()
            .is_empty()
    );
    let chain = c.admin_verify_audit(ADMIN_TOKEN).unwrap();
    assert!(chain.intact);
    assert_eq!(chain.rows, Some(0));

    for (result, code, status) in [
        (
            c.admin_se(ADMIN_TOKEN, "0000").map(drop),
            Code::SeNotFound,
            404,
        ),
        (
            c.admin_flow(ADMIN_TOKEN, "txn-none").map(drop),
            Code::FlowNotFound,
            404,
        ),
        (
            c.admin_flows(ADMIN_TOKEN, "DONE", None).map(drop),
            Code::BadRequest,
            400,
        ),
        (
            c.admin_flows(ADMIN_TOKEN, "RUNNING&x=1", None).map(drop),
            Code::BadRequest,
            400,
        ),
    ] {
        match result {
            Err(ClientError::Admin { status: s, result }) => {
                assert_eq!((s, result.code), (status, code));
            }
            other => panic!("{other:?}"),
        }
    }
}
