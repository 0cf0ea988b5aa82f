//! The registry routes over HTTP: tokens, bad input, conflicts, the audit rows' actor.

use ykt_store::AuditKind;
use ykt_tsm_service::http::AdminToken;
use ykt_tsm_service::http::admin_write::{Operator, admin_write_routes};

use crate::support::{Vaults, each};

pub const TOKEN: &str = "alice-token-0123456789";

pub fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let url = format!("{base}{path}");
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut response = if method == "GET" {
        let mut r = agent.get(&url);
        if let Some(a) = &auth {
            r = r.header("Authorization", a);
        }
        r.call().unwrap()
    } else {
        let mut r = agent.post(&url).header("Content-Type", "application/json");
        if let Some(a) = &auth {
            r = r.header("Authorization", a);
        }
        r.send(body).unwrap()
    };
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

pub const ISSUER: &str = r#"{"issuer_id":"sz","name":"Shenzhen Tong","ef15_issuer":"01011000FFFFFFFF","city_code":"5180","purse_key":"purse-issuer","key_version":2}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_routes_answer_and_audit_the_operator() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let ops = vec![Operator {
            label: "alice".into(),
            token: AdminToken::new(TOKEN).unwrap(),
        }];
        let app = admin_write_routes(engine.clone(), ops);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let cases: Vec<(&str, &str, Option<&str>, String, u16)> = vec![
            ("GET", "/admin/v1/issuers", None, String::new(), 401),
            ("POST", "/admin/v1/issuers", Some("wrong-token-0123456789"), ISSUER.into(), 401),
            ("GET", "/admin/v1/keys", None, String::new(), 401),
            ("POST", "/admin/v1/issuers", Some(TOKEN), ISSUER.into(), 201),
            ("POST", "/admin/v1/issuers", Some(TOKEN), ISSUER.into(), 409),
            ("POST", "/admin/v1/issuers", Some(TOKEN), ISSUER.replace("5180", "51"), 400),
            ("POST", "/admin/v1/issuers", Some(TOKEN), ISSUER.replace("\"name\"", "\"nom\""), 400),
            ("POST", "/admin/v1/issuers", Some(TOKEN), "{".into(), 400),
            (
                "POST",
                "/admin/v1/stock",
                Some(TOKEN),
                r#"{"range_id":"r1","issuer_id":"sz","prefix":"31041000","first_seq":1,"last_seq":10,"start_date":"20260101","expiry_date":"20361231"}"#.into(),
                201,
            ),
            (
                "POST",
                "/admin/v1/stock",
                Some(TOKEN),
                r#"{"range_id":"r2","issuer_id":"sz","prefix":"31041000","first_seq":5,"last_seq":20,"start_date":"20260101","expiry_date":"20361231"}"#.into(),
                409,
            ),
            (
                "POST",
                "/admin/v1/stock",
                Some(TOKEN),
                r#"{"range_id":"r3","issuer_id":"sz","prefix":"31041001","first_seq":1,"last_seq":10,"start_date":"20260101","expiry_date":"20361231","remaining":10}"#.into(),
                400,
            ),
            ("GET", "/admin/v1/stock?issuer=sz", Some(TOKEN), String::new(), 200),
            ("GET", "/admin/v1/stock?bogus=1", Some(TOKEN), String::new(), 400),
            ("POST", "/admin/v1/ses/0102/profile", Some(TOKEN), r#"{"profile":"x"}"#.into(), 404),
            (
                "POST",
                "/admin/v1/se-profiles",
                Some(TOKEN),
                r#"{"name":"oem","ic_fabricator":"4790","memory_kb":512,"scp":"SCP03","delegated_management":true}"#.into(),
                201,
            ),
            ("GET", "/admin/v1/se-profiles", Some(TOKEN), String::new(), 200),
            ("GET", "/admin/v1/keys", Some(TOKEN), String::new(), 200),
            ("GET", "/admin/v1/money-flows", None, String::new(), 401),
            ("GET", "/admin/v1/money-flows", Some(TOKEN), String::new(), 200),
        ];
        for (method, path, token, body, want) in cases {
            let base = base.clone();
            let (status, text) = tokio::task::spawn_blocking(move || {
                call(&base, method, path, token, &body)
            })
            .await
            .unwrap();
            assert_eq!(status, want, "{method} {path}: {text}");
            if path == "/admin/v1/stock?issuer=sz" {
                assert!(text.contains("\"remaining\":10"), "{text}");
            }
            if path == "/admin/v1/money-flows" && status == 200 {
                // No money flow has failed here.
                assert_eq!(text, "[]");
            }
            if path == "/admin/v1/keys" && status == 200 {
                assert!(text.contains("purse_issuer:sz") && !text.contains("value\":\""), "{text}");
            }
        }
        let rows = engine.store().audit_records(1, 100).await.unwrap();
        let ops: Vec<_> = rows
            .iter()
            .filter(|r| r.event.kind == AuditKind::OperatorAction)
            .map(|r| r.event.actor.as_str())
            .collect();
        assert_eq!(ops, ["alice", "alice", "alice"]);
        assert!(engine.admin_verify_audit().await.unwrap().intact);
    })
    .await;
}
