//! The registry routes on the TSM server's own listener (`ServerConfig::with_operators`), beside
//! the business API and the read-only admin views.

use ykt_crypto::Sm2PrivateKey;
use ykt_envelope::{Code, PeerKey, Sm2Signer};
use ykt_store::AuditKind;
use ykt_tsm::Management;
use ykt_tsm::api;
use ykt_tsm::hex::Hex;
use ykt_tsm_service::http::admin_write::Operator;
use ykt_tsm_service::http::{AdminToken, ServerConfig};

use crate::http::{ISSUER, TOKEN, call};
use crate::support::{Vaults, each, parties};

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

fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_millis()).unwrap()
}

/// A device's signed request to the server (system clock, as the server's).
fn sealed(
    signer: &Sm2Signer,
    sender: &str,
    def: api::MessageDef,
    n: u8,
    body: &impl serde::Serialize,
) -> ykt_envelope::Envelope {
    let header = ykt_envelope::Header {
        msg_type: def.request.into(),
        msg_no: def.msg_no.into(),
        sender_id: sender.into(),
        receiver_id: "tsm-test".into(),
        txn_id: format!("txn-{n}"),
        request_id: format!("req-{n}"),
    };
    ykt_envelope::Envelope::seal(&header, body, None, &[n; 16], now_ms(), signer).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_stock_is_a_signed_5001_and_starts_nothing() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let ops = vec![Operator {
            label: "alice".into(),
            token: AdminToken::new(TOKEN).unwrap(),
        }];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(ykt_tsm_service::http::serve(
            listener,
            engine.clone(),
            config(ops),
        ));
        // City 5180's issuer, under the purse key the vault holds, with one number, already
        // taken.
        let issuer = ISSUER.replace(
            "\"purse_key\":\"purse-issuer\"",
            &format!("\"purse_key\":\"{}\"", parties().purse_issuer.0),
        );
        assert_ne!(issuer, ISSUER);
        let one = STOCK.replace("\"last_seq\":3", "\"last_seq\":1");
        assert_eq!(
            http(&base, "POST", "/admin/v1/issuers", Some(TOKEN), &issuer)
                .await
                .0,
            201
        );
        assert_eq!(
            http(&base, "POST", "/admin/v1/stock", Some(TOKEN), &one)
                .await
                .0,
            201
        );
        engine.take_card_spec("sz").await.unwrap();

        let tsm_pub = PeerKey::Sm2(
            Sm2PrivateKey::from_bytes(&[0x42; 32])
                .unwrap()
                .public_key()
                .clone(),
        );
        let (status, code, txn) = tokio::task::spawn_blocking(move || {
            let client = ykt_tsm_service::TsmClient::new(&base).unwrap();
            let device = Sm2Signer::new(Sm2PrivateKey::from_bytes(&[7; 32]).unwrap());
            let enrol = api::EnrolReq {
                device_pub: Hex(device.public_key().to_bytes().to_vec()),
                device_model: "test phone".into(),
            };
            let sender = format!("enrol-{}", ykt_envelope::key_id_sm2(device.public_key()));
            let answer = client
                .send(&sealed(&device, &sender, api::ENROL, 1, &enrol))
                .unwrap();
            answer.verify(&tsm_pub).unwrap();
            let id = answer.body::<api::EnrolResp>().unwrap().device_id;
            let open = api::OpenCardReq {
                management: Management::Authorized,
                city_code: "5180".into(),
            };
            let req = sealed(&device, &id, api::OPEN_CARD, 2, &open);
            let (status, answer) = client
                .send_bytes_with_status(&req.msg_type, &req.to_vec())
                .unwrap();
            answer.verify(&tsm_pub).unwrap();
            (status, answer.code().unwrap(), req.txn_id)
        })
        .await
        .unwrap();
        assert_eq!((status, code), (402, Code::IssuerDeclined));
        assert!(matches!(
            engine.store().flow(&txn).await,
            Err(ykt_store::Error::NotFound { .. })
        ));
        assert_eq!(
            engine.admin_stock(Some("sz")).await.unwrap()[0].remaining(),
            0
        );
        task.abort();
    })
    .await;
}
