//! `TsmClient`'s registry calls against the server: each call's answer, and its refusals as
//! `ClientError::Registry` with the HTTP status and the TSM's text.

use ykt_store::NewSe;
use ykt_tsm_service::http::admin_write::{IssuerDto, Operator, SeProfileDto, StockDto};
use ykt_tsm_service::http::{AdminToken, ClientError, TsmClient};

use crate::http::TOKEN;
use crate::server::config;
use crate::support::{Vaults, each};

fn issuer() -> IssuerDto {
    IssuerDto {
        issuer_id: "sz".into(),
        name: "Shenzhen Tong".into(),
        ef15_issuer: "01011000FFFFFFFF".into(),
        city_code: "5180".into(),
        purse_key: "purse-issuer".into(),
        key_version: 2,
    }
}

fn stock(range_id: &str, first: u64, last: u64) -> StockDto {
    StockDto {
        range_id: range_id.into(),
        issuer_id: "sz".into(),
        prefix: "51800001".into(),
        first_seq: first,
        last_seq: last,
        start_date: "20260101".into(),
        expiry_date: "20361231".into(),
        remaining: None,
    }
}

fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Registry { status, error }) => (status, error),
        other => panic!("not a registry refusal: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_drives_the_registry() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        engine
            .store()
            .register_se(&NewSe {
                seid: "0102".into(),
                cplc: hex::decode("9f7f2a47905040").unwrap(),
                profile: String::new(),
            })
            .await
            .unwrap();
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
        tokio::task::spawn_blocking(move || {
            let c = TsmClient::new(&base).unwrap();
            let made = c.create_issuer(TOKEN, &issuer()).unwrap();
            assert_eq!((made.issuer_id.as_str(), made.key_version), ("sz", 2));
            assert_eq!(made.ef15_issuer, "01011000FFFFFFFF");
            let (status, error) = refusal(c.create_issuer(TOKEN, &issuer()));
            assert_eq!(status, 409, "{error}");
            let mut bad = issuer();
            bad.city_code = "51".into();
            bad.issuer_id = "other".into();
            let (status, error) = refusal(c.create_issuer(TOKEN, &bad));
            assert_eq!(status, 400);
            assert!(error.contains("city_code"), "{error}");
            let (status, _) = refusal(c.registry_issuers("nobody-token-0123456789"));
            assert_eq!(status, 401);
            assert_eq!(c.registry_issuers(TOKEN).unwrap().len(), 1);

            let range = c.add_stock(TOKEN, &stock("r1", 1, 5)).unwrap();
            assert_eq!(range.remaining, Some(5));
            let (status, _) = refusal(c.add_stock(TOKEN, &stock("r2", 3, 9)));
            assert_eq!(status, 409);
            let mut unknown = stock("r3", 100, 101);
            unknown.issuer_id = "nobody".into();
            assert_eq!(refusal(c.add_stock(TOKEN, &unknown)).0, 404);
            let listed = c.registry_stock(TOKEN, Some("sz")).unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].range_id, "r1");
            assert!(c.registry_stock(TOKEN, Some("nobody")).unwrap().is_empty());
            assert_eq!(c.registry_stock(TOKEN, None).unwrap().len(), 1);

            let profile = SeProfileDto {
                name: "oem".into(),
                ic_fabricator: "4790".into(),
                ic_type: None,
                os_id: None,
                memory_kb: 512,
                scp: "SCP03".into(),
                delegated_management: true,
            };
            let made = c.create_se_profile(TOKEN, &profile).unwrap();
            assert_eq!(made.ic_fabricator, "4790");
            let mut bad = profile;
            bad.name = "other".into();
            bad.scp = "SCP99".into();
            assert_eq!(refusal(c.create_se_profile(TOKEN, &bad)).0, 400);
            assert_eq!(c.registry_se_profiles(TOKEN).unwrap().len(), 1);
            let set = c.assign_se_profile(TOKEN, "0102", "oem").unwrap();
            assert_eq!((set.seid.as_str(), set.profile.as_str()), ("0102", "oem"));
            assert_eq!(refusal(c.assign_se_profile(TOKEN, "0102", "none")).0, 404);

            let keys = c.key_versions(TOKEN).unwrap();
            let sz = keys.iter().find(|k| k.role == "purse_issuer:sz").unwrap();
            assert_eq!((sz.vault.as_str(), sz.version), ("SP", Some(2)));
            assert!(keys.iter().any(|k| k.role == "isd_master" && k.present));
            assert_eq!(c.money_flows(TOKEN).unwrap(), []);
            assert_eq!(refusal(c.money_flows("wrong-token-0123456789")).0, 401);
        })
        .await
        .unwrap();
        assert_eq!(engine.store().se("0102").await.unwrap().profile, "oem");
        task.abort();
    })
    .await;
}
