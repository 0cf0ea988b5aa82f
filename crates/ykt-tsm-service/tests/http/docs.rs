//! `/openapi.json`, `/metrics`, `/health`.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use ykt_envelope::Code;
use ykt_tsm::api;
use ykt_tsm::hex::Hex;
use ykt_tsm_service::http::openapi::{body_members, platform_body_schema, request_body_schema};

use crate::support::{TestServer, code, open_card};

/// The member names of a value's JSON.
fn members(value: impl serde::Serialize) -> BTreeSet<String> {
    serde_json::to_value(value)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn openapi_lists_every_business_path_and_admin_security() {
    let server = TestServer::start();
    let doc = server.client.openapi().unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for def in api::MESSAGES {
        let path = &paths[&format!("/v1/{}", def.request)]["post"];
        assert!(path.is_object(), "{}", def.request);
        let body = request_body_schema(def.request).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert!(schemas[body].is_object(), "{body}");
        assert!(schemas[def.response].is_object(), "{}", def.response);
        let refs = path.to_string();
        assert!(
            refs.contains(&format!("#/components/schemas/{body}")),
            "{}",
            def.request
        );
        for status in ["200", "400", "401", "409", "413", "500"] {
            assert!(
                path["responses"][status].is_object(),
                "{} {status}",
                def.request
            );
        }
    }
    for admin in [
        "/admin/v1/ses",
        "/admin/v1/cards",
        "/admin/v1/ses/{seid}",
        "/admin/v1/ses/{seid}/cards",
        "/admin/v1/flows",
        "/admin/v1/flows/{id}",
        "/admin/v1/audit/verify",
    ] {
        assert_eq!(
            paths[admin]["get"]["security"],
            json!([{"admin_token": []}]),
            "{admin}"
        );
    }
    for other in ["/health", "/metrics", "/openapi.json"] {
        assert!(paths[other]["get"].is_object(), "{other}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    let codes = doc["components"]["schemas"]["ResultInfo"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(codes.len(), Code::ALL.len());
    assert_eq!(
        doc["components"]["schemas"]["Envelope"]["properties"]["sign_alg"]["enum"],
        json!(["SM2-SM3", "RSA2048-SHA256", "RSA3072-SHA256"])
    );
}

#[test]
fn openapi_lists_the_platform_messages_and_the_registry() {
    let server = TestServer::start();
    let doc = server.client.openapi().unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let schemas = &doc["components"]["schemas"];
    for def in api::PLATFORM_MESSAGES {
        let path = &paths[&format!("/v1/{}", def.request)]["post"];
        assert_eq!(path["tags"], json!(["platform"]), "{}", def.request);
        let body = platform_body_schema(def.request).unwrap();
        assert!(schemas[body].is_object(), "{body}");
        assert!(schemas[def.response].is_object(), "{}", def.response);
        let text = path.to_string();
        for schema in [body, def.response] {
            assert!(
                text.contains(&format!("#/components/schemas/{schema}")),
                "{} {schema}",
                def.request
            );
        }
        assert!(path["responses"]["401"].is_object(), "{}", def.request);
    }
    assert_eq!(platform_body_schema(api::OPEN_CARD.request), None);
    // (path, method, request schema, success status, refusal statuses)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, &'a [&'a str]);
    let registry: &[Case<'_>] = &[
        ("/admin/v1/issuers", "get", None, "200", &["401", "500"]),
        (
            "/admin/v1/issuers",
            "post",
            Some("IssuerDto"),
            "201",
            &["400", "401", "409"],
        ),
        ("/admin/v1/stock", "get", None, "200", &["400", "401"]),
        (
            "/admin/v1/stock",
            "post",
            Some("StockDto"),
            "201",
            &["400", "401", "404", "409"],
        ),
        ("/admin/v1/se-profiles", "get", None, "200", &["401"]),
        (
            "/admin/v1/se-profiles",
            "post",
            Some("SeProfileDto"),
            "201",
            &["400", "401", "409"],
        ),
        (
            "/admin/v1/ses/{seid}/profile",
            "post",
            Some("SetProfile"),
            "200",
            &["400", "401", "404"],
        ),
        ("/admin/v1/keys", "get", None, "200", &["401"]),
        ("/admin/v1/money-flows", "get", None, "200", &["401", "500"]),
        (
            "/admin/v1/flows/{id}/abandon",
            "post",
            Some("AbandonReq"),
            "200",
            &["400", "401", "404", "409", "500"],
        ),
    ];
    for (path, method, request, ok, refusals) in registry {
        let op = &paths[*path][*method];
        assert_eq!(
            op["security"],
            json!([{"operator_token": []}]),
            "{method} {path}"
        );
        assert!(op["responses"][*ok].is_object(), "{method} {path} {ok}");
        for status in *refusals {
            assert_eq!(
                op["responses"][*status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Refused",
                "{method} {path} {status}"
            );
        }
        match request {
            Some(r) => assert_eq!(
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
                format!("#/components/schemas/{r}"),
                "{method} {path}"
            ),
            None => assert!(op["requestBody"].is_null(), "{method} {path}"),
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["operator_token"]["scheme"],
        "bearer"
    );
    // The registry's schemas have the members its answers carry.
    let props = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    };
    let issuer: Value = serde_json::from_str(
        r#"{"issuer_id":"sz","name":"n","ef15_issuer":"0101","city_code":"5180","purse_key":"k","key_version":1}"#,
    )
    .unwrap();
    let issuer: ykt_tsm_service::http::admin_write::IssuerDto =
        serde_json::from_value(issuer).unwrap();
    assert_eq!(props("IssuerDto"), members(&issuer));
    let stock = ykt_tsm_service::http::admin_write::StockDto {
        range_id: "r".into(),
        issuer_id: "i".into(),
        prefix: "31041000".into(),
        first_seq: 1,
        last_seq: 2,
        start_date: "20260101".into(),
        expiry_date: "20361231".into(),
        remaining: Some(2),
    };
    assert_eq!(props("StockDto"), members(&stock));
    for (name, fields) in [
        (
            "SeProfileDto",
            &[
                "name",
                "ic_fabricator",
                "ic_type",
                "os_id",
                "memory_kb",
                "scp",
                "delegated_management",
            ][..],
        ),
        ("SetProfile", &["profile"]),
        ("SeProfileSet", &["seid", "profile"]),
        ("Refused", &["error"]),
        ("AbandonReq", &["reason"]),
        (
            "Abandoned",
            &[
                "txn_id",
                "kind",
                "from_step",
                "step",
                "verdict",
                "order_id",
                "refund_id",
                "transfer_id",
                "amount_fen",
                "operator",
                "reason",
            ],
        ),
        (
            "StuckMoney",
            &[
                "txn_id",
                "kind",
                "step",
                "device_id",
                "order_id",
                "transfer_id",
                "amount_fen",
                "verdict",
                "updated_ms",
            ],
        ),
        (
            "KeyVersionView",
            &[
                "name",
                "role",
                "vault",
                "present",
                "key_type",
                "version",
                "check_value",
            ],
        ),
    ] {
        let want: BTreeSet<String> = fields.iter().map(|f| f.to_string()).collect();
        assert_eq!(props(name), want, "{name}");
    }
}

#[test]
fn platform_schemas_name_the_members_the_types_write() {
    use ykt_tsm::vault::{KeyEncryption, KeyName, KeyRef};
    let isd = KeyRef::Isd {
        master: KeyName::new("isd"),
        seid: ykt_tsm::SeId([1; 10]),
    };
    let key = api::SsdKeyReq {
        key: KeyName::new("ssd"),
        version: Some(1),
    };
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "ISDChannelInfoReq",
            members(api::IsdChannelInfoReq { keys: isd.clone() }),
        ),
        (
            "ISDChannelInfoResp",
            members(api::IsdChannelInfoResp {
                version: 1,
                algorithm: "AES".into(),
                key_len: 16,
            }),
        ),
        (
            "ISDChannelOpReq",
            members(api::IsdChannelOpReq {
                keys: isd.clone(),
                operation: "CMAC".into(),
                key: "MAC".into(),
                data: Hex(vec![1]),
                recipient: Hex(vec![4]),
            }),
        ),
        (
            "ISDChannelOpResp",
            members(api::IsdChannelOpResp {
                wrapped: Hex(vec![1]),
            }),
        ),
        (
            "AcquireTokenReq",
            members(api::AcquireTokenReq {
                signer: KeyName::new("t"),
                kind: "DELETE".into(),
                p1: 0,
                p2: 0,
                data: Hex(vec![]),
            }),
        ),
        (
            "AcquireTokenResp",
            members(api::AcquireTokenResp {
                token: Hex(vec![1]),
            }),
        ),
        (
            "ReceiptVerifyReq",
            members(api::ReceiptVerifyReq {
                key: KeyName::new("r"),
                response: Hex(vec![]),
                kind: "DELETE".into(),
                aids: vec![],
            }),
        ),
        ("ReceiptVerifyResp", members(api::Empty {})),
        ("SsdKeyReq", members(&key)),
        ("KeyQueryResp", members(api::KeyQueryResp { present: true })),
        ("CreateSSDResp", members(api::Empty {})),
        ("DeleteSSDResp", members(api::Empty {})),
        (
            "SSDFirstKeysReq",
            members(api::SsdFirstKeysReq {
                key: KeyName::new("ssd"),
                under: isd,
                encryption: KeyEncryption::StaticDek,
            }),
        ),
        (
            "SSDFirstKeysResp",
            members(api::SsdFirstKeysResp {
                data: Hex(vec![]),
                check_values: [Hex(vec![]), Hex(vec![]), Hex(vec![])],
            }),
        ),
        (
            "SSDKeyHandoverReq",
            members(api::SsdKeyHandoverReq {
                key: KeyName::new("ssd"),
                recipient: Hex(vec![4]),
            }),
        ),
        (
            "SSDKeyHandoverResp",
            members(api::SsdKeyHandoverResp {
                wrapped: Hex(vec![1]),
            }),
        ),
    ];
    for (schema, written) in cases {
        let described: BTreeSet<String> = body_members(schema)
            .unwrap_or_else(|| panic!("no schema {schema}"))
            .into_iter()
            .map(str::to_string)
            .collect();
        assert_eq!(described, written, "{schema}");
    }
}

#[test]
fn body_schemas_name_the_members_the_types_write() {
    let card = api::CardReq {
        card_no: "3104".into(),
        seid: "5345".into(),
    };
    let relay = ykt_tsm::RelayResponse {
        session_id: "s".into(),
        seq: 1,
        rapdus: vec![Hex(vec![0x90, 0])],
    };
    let flow = api::FlowResp {
        txn_id: "t".into(),
        kind: ykt_tsm::FlowKind::OpenCard,
        status: api::FlowStatus::Running,
        instance_state: "NONE".into(),
        step: None,
        step_index: 0,
        step_count: 1,
        relay: None,
        outcome: None,
    };
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "EnrolReq",
            members(api::EnrolReq {
                device_pub: Hex(vec![4]),
                device_model: "m".into(),
            }),
        ),
        (
            "EnrolResp",
            members(api::EnrolResp {
                device_id: "d".into(),
                tsm_id: "t".into(),
                tsm_pub: Hex(vec![4]),
            }),
        ),
        ("OpenCardReq", members(open_card())),
        ("CardReq", members(&card)),
        (
            "RefundReq",
            members(api::RefundReq {
                card_no: "c".into(),
                seid: "s".into(),
                refund_account: "a".into(),
            }),
        ),
        (
            "TransferInReq",
            members(api::TransferInReq {
                transfer_code: "c".into(),
                management: ykt_tsm::Management::Delegated,
            }),
        ),
        (
            "TopupOrderReq",
            members(api::TopupOrderReq {
                card_no: "c".into(),
                seid: "s".into(),
                amount: 1,
                pay_channel: "99".into(),
            }),
        ),
        (
            "OrderReq",
            members(api::OrderReq {
                order_id: "o".into(),
            }),
        ),
        (
            "OrderResp",
            members(api::OrderResp {
                order_id: "o".into(),
                state: "CREATED".into(),
                amount: 1,
            }),
        ),
        ("AppQueryReq", members(api::AppQueryReq { seid: None })),
        (
            "ApduResultReq",
            members(api::ApduResultReq {
                response: relay.clone(),
            }),
        ),
        ("RelayResponse", members(&relay)),
        (
            "RelayRequest",
            members(ykt_tsm::RelayRequest {
                session_id: "s".into(),
                seq: 1,
                capdus: vec![],
                expect: vec![ykt_tsm::Expect::success()],
                last: true,
            }),
        ),
        ("Expect", members(ykt_tsm::Expect::success())),
        ("Empty", members(api::Empty {})),
        ("FlowResp", members(&flow)),
        (
            "CardSummary",
            members(api::CardSummary {
                card_no: "c".into(),
                seid: "s".into(),
                state: "ACTIVE".into(),
            }),
        ),
        ("CardsResp", members(api::CardsResp::default())),
    ];
    for (schema, written) in cases {
        let described: BTreeSet<String> = body_members(schema)
            .unwrap_or_else(|| panic!("no schema {schema}"))
            .into_iter()
            .map(str::to_string)
            .collect();
        assert_eq!(described, written, "{schema}");
    }
}

/// The value of a metric line, 0 if absent.
fn metric(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start).and_then(|r| r.strip_prefix(' ')))
        .map_or(0, |v| v.parse().unwrap())
}

#[test]
fn metrics_count_what_was_done() {
    let server = TestServer::start();
    let device = server.enrolled(7);
    let request = device.seal(&server, api::OPEN_CARD, "txn-1", &open_card());
    let bytes = request.to_vec();
    assert_eq!(code(&server.send_raw("OpenCardReq", &bytes).1), Code::Ok);
    assert_eq!(
        code(&server.send_raw("OpenCardReq", &bytes).1),
        Code::Replayed
    );
    let relay = json!({"response": {"session_id": "s", "seq": 1, "rapdus": ["9000"]}});
    let done = server.send(&device.seal(&server, api::APDU_RESULT, "txn-1", &relay));
    assert_eq!(code(&done), Code::Ok);
    let failed = server.send(&device.seal(&server, api::RESUME, "txn-2", &json!({})));
    assert_eq!(code(&failed), Code::Ok);
    server.send_raw("NoSuchReq", b"{}");

    let text = server.client.metrics().unwrap();
    for (line, value) in [
        (
            r#"ykt_tsm_requests_total{msg_type="EnrolReq",code="0000"}"#,
            1,
        ),
        (
            r#"ykt_tsm_requests_total{msg_type="OpenCardReq",code="0000"}"#,
            1,
        ),
        (
            r#"ykt_tsm_requests_total{msg_type="OpenCardReq",code="1005"}"#,
            1,
        ),
        (
            r#"ykt_tsm_requests_total{msg_type="ApduResultReq",code="0000"}"#,
            1,
        ),
        (
            r#"ykt_tsm_requests_total{msg_type="unknown",code="1006"}"#,
            1,
        ),
        (
            r#"ykt_tsm_request_duration_seconds_count{msg_type="OpenCardReq"}"#,
            2,
        ),
        (
            r#"ykt_tsm_request_duration_seconds_bucket{msg_type="OpenCardReq",le="+Inf"}"#,
            2,
        ),
        ("ykt_tsm_flows_started_total", 1),
        ("ykt_tsm_flows_completed_total", 1),
        ("ykt_tsm_flows_failed_total", 1),
    ] {
        assert_eq!(metric(&text, line), value, "{line}\n{text}");
    }
    assert!(text.contains("# TYPE ykt_tsm_request_duration_seconds histogram"));
    // Buckets are cumulative.
    let buckets: Vec<u64> = text
        .lines()
        .filter(|l| {
            l.starts_with(r#"ykt_tsm_request_duration_seconds_bucket{msg_type="OpenCardReq""#)
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
}

#[test]
fn health_says_ok_while_the_store_answers() {
    let server = TestServer::start();
    assert_eq!(server.client.health().unwrap(), "ok");
    server.rt.block_on(server.store.close());
    assert!(matches!(
        server.client.health(),
        Err(ykt_tsm_service::http::ClientError::Unavailable { status: 503 })
    ));
    let _: Value = server.client.openapi().unwrap();
}
