//! Registry operations and the card numbers the open-card flow will take.

use std::collections::BTreeSet;

use ykt_store::{AuditKind, CplcMatch, NewIssuer, NewSe, NewSeProfile, NewStockRange};

use crate::support::{Vaults, each, parties};

fn issuer(id: &str) -> NewIssuer {
    NewIssuer {
        issuer_id: id.into(),
        name: "Shenzhen Tong".into(),
        ef15_issuer: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
        city_code: [0x51, 0x80],
        purse_key: parties().purse_issuer.0,
        key_version: 3,
    }
}

fn range(id: &str, first: u64, last: u64) -> NewStockRange {
    NewStockRange {
        range_id: id.into(),
        issuer_id: "sz".into(),
        prefix: [0x31, 0x04, 0x10, 0x00],
        first_seq: first,
        last_seq: last,
        start_date: [0x20, 0x26, 0x01, 0x01],
        expiry_date: [0x20, 0x36, 0x12, 0x31],
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let cases: Vec<(NewIssuer, &str)> = vec![
            (
                NewIssuer {
                    issuer_id: String::new(),
                    ..issuer("x")
                },
                "issuer_id",
            ),
            (
                NewIssuer {
                    issuer_id: "a b".into(),
                    ..issuer("x")
                },
                "issuer_id",
            ),
            (
                NewIssuer {
                    name: " ".into(),
                    ..issuer("x")
                },
                "name",
            ),
            (
                NewIssuer {
                    purse_key: "key/../x".into(),
                    ..issuer("x")
                },
                "purse_key",
            ),
        ];
        for (bad, field) in cases {
            let err = engine.admin_create_issuer("alice", &bad).await.unwrap_err();
            assert_eq!(err.http_status(), 400, "{bad:?}");
            assert!(err.to_string().starts_with(field), "{err}");
        }
        engine
            .admin_create_issuer("alice", &issuer("sz"))
            .await
            .unwrap();
        let bad_ranges = [
            (
                NewStockRange {
                    start_date: [0x20, 0x26, 0x13, 0x01],
                    ..range("r", 1, 2)
                },
                "start_date",
            ),
            (
                NewStockRange {
                    expiry_date: [0x20, 0x2A, 0x01, 0x01],
                    ..range("r", 1, 2)
                },
                "expiry_date",
            ),
            (
                NewStockRange {
                    expiry_date: [0x20, 0x25, 0x01, 0x01],
                    ..range("r", 1, 2)
                },
                "expiry_date",
            ),
            (range("r", 3, 2), "last_seq"),
        ];
        for (bad, field) in bad_ranges {
            let err = engine.admin_add_stock("alice", &bad).await.unwrap_err();
            assert_eq!(err.http_status(), 400, "{bad:?}");
            assert!(err.to_string().starts_with(field), "{err}");
        }
        let mut profile = NewSeProfile {
            name: "p".into(),
            cplc: CplcMatch {
                ic_fabricator: [0x47, 0x90],
                ic_type: None,
                os_id: None,
            },
            memory_kb: 256,
            scp: "SCP99".into(),
            delegated_management: false,
        };
        let err = engine
            .admin_create_se_profile("alice", &profile)
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 400);
        profile.scp = "SCP03".into();
        engine
            .admin_create_se_profile("alice", &profile)
            .await
            .unwrap();
        // Nothing refused was written: one issuer, one profile, two audit rows.
        assert_eq!(engine.admin_issuers().await.unwrap().len(), 1);
        assert!(engine.admin_stock(None).await.unwrap().is_empty());
        let audit = engine.admin_verify_audit().await.unwrap();
        assert!(audit.intact);
        assert_eq!(audit.rows, 2);
    })
    .await;
}

#[tokio::test]
async fn conflicts_and_unknown_records() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        engine
            .admin_create_issuer("alice", &issuer("sz"))
            .await
            .unwrap();
        let err = engine
            .admin_create_issuer("alice", &issuer("sz"))
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 409, "{err}");
        engine
            .admin_add_stock("alice", &range("r1", 1, 10))
            .await
            .unwrap();
        let err = engine
            .admin_add_stock("alice", &range("r2", 10, 20))
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 409, "{err}");
        let err = engine
            .admin_add_stock(
                "alice",
                &NewStockRange {
                    issuer_id: "nope".into(),
                    ..range("r3", 100, 200)
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 404, "{err}");
        let err = engine
            .admin_set_se_profile("alice", "00", "nope")
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 404, "{err}");
        let err = engine.take_card_spec("nope").await.unwrap_err();
        assert_eq!(err.http_status(), 404, "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn card_specs_come_from_stock_once_each() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        engine
            .admin_create_issuer("alice", &issuer("sz"))
            .await
            .unwrap();
        engine
            .admin_add_stock("alice", &range("r1", 41, 60))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..6 {
                    if let Ok(spec) = engine.take_card_spec("sz").await {
                        mine.push(spec);
                    }
                }
                mine
            }));
        }
        let mut specs = Vec::new();
        for t in tasks {
            specs.extend(t.await.unwrap());
        }
        assert_eq!(specs.len(), 20);
        let numbers: BTreeSet<[u8; 10]> = specs.iter().map(|s| s.card_number.0).collect();
        assert_eq!(numbers.len(), 20, "a card number was given twice");
        // Prefix ‖ 12 BCD digits of the sequence; the EF15 fields of the issuer and range.
        assert!(numbers.contains(&[0x31, 0x04, 0x10, 0x00, 0, 0, 0, 0, 0, 0x41]));
        assert!(numbers.contains(&[0x31, 0x04, 0x10, 0x00, 0, 0, 0, 0, 0, 0x60]));
        assert!(specs.iter().all(|s| s.issuer_id == issuer("sz").ef15_issuer
            && s.start_date == [0x20, 0x26, 0x01, 0x01]
            && s.expiry_date == [0x20, 0x36, 0x12, 0x31]));
        let stock = engine.admin_stock(Some("sz")).await.unwrap();
        assert_eq!(stock[0].remaining(), 0);
        assert_eq!(
            engine.take_card_spec("sz").await.unwrap_err().http_status(),
            409
        );
    })
    .await;
}

#[tokio::test]
async fn profiles_match_at_registration_and_operator_rows_chain() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let profile = NewSeProfile {
            name: "oem-4790".into(),
            cplc: CplcMatch {
                ic_fabricator: [0x47, 0x90],
                ic_type: Some([0x50, 0x40]),
                os_id: None,
            },
            memory_kb: 1024,
            scp: "SM4".into(),
            delegated_management: true,
        };
        engine
            .admin_create_se_profile("alice", &profile)
            .await
            .unwrap();
        engine
            .store()
            .register_se(&NewSe {
                seid: "0102".into(),
                cplc: hex::decode("9f7f2a47905040").unwrap(),
                profile: String::new(),
            })
            .await
            .unwrap();
        let se = engine.match_se_profile("0102").await.unwrap();
        assert_eq!(se.profile, "oem-4790");
        let rows = engine.store().audit_records(1, 100).await.unwrap();
        let ops: Vec<_> = rows
            .iter()
            .filter(|r| r.event.kind == AuditKind::OperatorAction)
            .map(|r| r.event.actor.as_str())
            .collect();
        assert_eq!(ops, ["alice", "tsm:registration"]);
        assert!(engine.admin_verify_audit().await.unwrap().intact);
    })
    .await;
}

#[tokio::test]
async fn key_versions_name_keys_without_values() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        engine
            .admin_create_issuer("alice", &issuer("sz"))
            .await
            .unwrap();
        engine
            .admin_create_issuer(
                "alice",
                &NewIssuer {
                    issuer_id: "gz".into(),
                    ef15_issuer: [2; 8],
                    purse_key: "missing-key".into(),
                    ..issuer("gz")
                },
            )
            .await
            .unwrap();
        let keys = engine.admin_key_versions().await.unwrap();
        let role = |r: &str| keys.iter().find(|k| k.role == r).unwrap();
        for r in [
            "isd_master",
            "token_signer",
            "receipt_key",
            "sp_transport",
            "purse_issuer",
        ] {
            assert!(role(r).present, "{r}");
        }
        assert_eq!(role("isd_master").vault, "SEI");
        assert_eq!(role("purse_issuer:sz").version, Some(3));
        assert!(role("purse_issuer:sz").present);
        assert!(!role("purse_issuer:gz").present);
        assert!(keys.iter().all(|k| k.check_value.is_none()));
        // Nothing in the answer looks like key material: no long hex string.
        let text = format!("{keys:?}");
        assert!(
            !text
                .split(|c: char| !c.is_ascii_hexdigit())
                .any(|w| w.len() >= 16),
            "{text}"
        );
    })
    .await;
}
