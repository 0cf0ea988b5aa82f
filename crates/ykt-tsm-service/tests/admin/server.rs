//! The registry routes on the TSM server's own listener (`ServerConfig::with_operators`), beside
//! the business API and the read-only admin views.

use ykt_crypto::Sm2PrivateKey;
use ykt_envelope::Sm2Signer;
use ykt_store::AuditKind;
use ykt_tsm_service::http::admin_write::Operator;
use ykt_tsm_service::http::{AdminToken, ServerConfig};

use crate::http::{ISSUER, TOKEN, call};
use crate::support::{Vaults, each};

const VIEW_TOKEN: &str = "viewer-token-0123456789";
const STOCK: &str = r#"{"range_id":"r1","issuer_id":"sz","prefix":"31041000","first_seq":1,"last_seq":3,"start_date":"20260101","expiry_date":"20361231"}"#;

pub fn config(operators: Vec<Operator>) -> ServerConfig {
    let key = Sm2PrivateKey::from_bytes(&[0x42; 32]).unwrap();
    ServerConfig::new(
        "tsm-test",
        Sm2Signer::new(key),
        AdminToken::new(VIEW_TOKEN).unwrap(),
    )
    .with_operators(operators)
}

async fn http(
    base: &str,
    method: &'static str,
    path: &'static str,
    token: Option<&'static str>,
    body: &str,
) -> (u16, String) {
    let (base, body) = (base.to_string(), body.to_string());
    tokio::task::spawn_blocking(move || call(&base, method, path, token, &body))
        .await
        .unwrap()
}

async fn operator_rows(engine: &ykt_tsm_service::Engine) -> Vec<String> {
    let rows = engine.store().audit_records(1, 1000).await.unwrap();
    rows.iter()
        .filter(|r| r.event.kind == AuditKind::OperatorAction)
        .map(|r| r.event.actor.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_serves_the_registry_to_its_operators() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let ops = vec![Operator {
            label: "alice".into(),
            token: AdminToken::new(TOKEN).unwrap(),
        }];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = ykt_tsm_service::http::serve(listener, engine.clone(), config(ops));
        let task = tokio::spawn(server);

        // Refused: no token, another operator's token, the viewers' token. Nothing written.
        let (status, text) = http(&base, "POST", "/admin/v1/issuers", None, ISSUER).await;
        assert_eq!(status, 401, "{text}");
        assert!(text.contains("an admin token is required"), "{text}");
        let wrong = Some("mallory-token-0123456789");
        assert_eq!(
            http(&base, "POST", "/admin/v1/issuers", wrong, ISSUER)
                .await
                .0,
            401
        );
        let viewer = Some(VIEW_TOKEN);
        assert_eq!(
            http(&base, "POST", "/admin/v1/stock", viewer, STOCK)
                .await
                .0,
            401
        );
        assert!(engine.admin_issuers().await.unwrap().is_empty());
        assert!(operator_rows(&engine).await.is_empty());

        // The operator creates an issuer and adds stock; both audited under the label.
        let (status, text) = http(&base, "POST", "/admin/v1/issuers", Some(TOKEN), ISSUER).await;
        assert_eq!(status, 201, "{text}");
        assert!(text.contains("\"issuer_id\":\"sz\""), "{text}");
        let (status, text) = http(&base, "POST", "/admin/v1/stock", Some(TOKEN), STOCK).await;
        assert_eq!(status, 201, "{text}");
        let (status, text) = http(&base, "GET", "/admin/v1/stock?issuer=sz", Some(TOKEN), "").await;
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("\"remaining\":3"), "{text}");
        assert_eq!(operator_rows(&engine).await, ["alice", "alice"]);
        assert_eq!(
            engine.admin_stock(Some("sz")).await.unwrap()[0].remaining(),
            3
        );

        // The read-only views still answer the viewers' token on the same listener, and
        // not the operator's.
        assert_eq!(http(&base, "GET", "/admin/v1/ses", viewer, "").await.0, 200);
        assert_eq!(
            http(&base, "GET", "/admin/v1/ses", Some(TOKEN), "").await.0,
            401
        );
        assert_eq!(http(&base, "GET", "/health", None, "").await.0, 200);
        assert!(engine.admin_verify_audit().await.unwrap().intact);
        task.abort();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_operators_the_registry_is_not_served() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(ykt_tsm_service::http::serve(
            listener,
            engine.clone(),
            config(Vec::new()),
        ));
        let (status, text) = http(&base, "POST", "/admin/v1/issuers", Some(TOKEN), ISSUER).await;
        assert_eq!(status, 404, "{text}");
        let (status, _) = http(&base, "GET", "/admin/v1/issuers", Some(VIEW_TOKEN), "").await;
        assert_eq!(status, 404);
        assert!(engine.admin_issuers().await.unwrap().is_empty());
        assert_eq!(
            http(&base, "GET", "/admin/v1/ses", Some(VIEW_TOKEN), "")
                .await
                .0,
            200
        );
        task.abort();
    })
    .await;
}
