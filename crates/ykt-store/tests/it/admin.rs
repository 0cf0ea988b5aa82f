//! The operators' registry: issuers, card stock, SE profiles; each write audited.

use std::collections::BTreeSet;

use ykt_store::{
    AuditKind, ChainStatus, CplcMatch, Entity, Error, NewIssuer, NewSe, NewSeProfile,
    NewStockRange, Store,
};

use crate::support::{SEID, each};

fn issuer(id: &str, ef15: u8) -> NewIssuer {
    NewIssuer {
        issuer_id: id.into(),
        name: format!("Issuer {id}"),
        ef15_issuer: [0x31, 0x04, 0, 0, 0, 0, 0, ef15],
        city_code: [0x31, 0x04],
        purse_key: "purse-issuer".into(),
        key_version: 1,
    }
}

fn range(id: &str, issuer_id: &str, first: u64, last: u64) -> NewStockRange {
    NewStockRange {
        range_id: id.into(),
        issuer_id: issuer_id.into(),
        prefix: [0x31, 0x04, 0x10, 0x00],
        first_seq: first,
        last_seq: last,
        start_date: [0x20, 0x26, 0x01, 0x01],
        expiry_date: [0x20, 0x36, 0x12, 0x31],
    }
}

fn profile(name: &str, ic_type: Option<[u8; 2]>) -> NewSeProfile {
    NewSeProfile {
        name: name.into(),
        cplc: CplcMatch {
            ic_fabricator: [0x47, 0x90],
            ic_type,
            os_id: None,
        },
        memory_kb: 512,
        scp: "SCP03".into(),
        delegated_management: true,
    }
}

async fn operator_rows(store: &Store) -> Vec<(String, String, String)> {
    store
        .audit_records(1, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.kind == AuditKind::OperatorAction)
        .map(|r| (r.event.actor, r.event.subject, r.event.detail))
        .collect()
}

#[tokio::test]
async fn issuers_are_created_once_and_audited() {
    each(async |db| {
        let store = &db.store;
        let made = store
            .create_issuer("alice", &issuer("sz", 1))
            .await
            .unwrap();
        assert_eq!(made.issuer, issuer("sz", 1));
        // Same id; same EF15 issuer id under another id.
        for dup in [issuer("sz", 2), issuer("gz", 1)] {
            assert!(
                matches!(
                    store.create_issuer("alice", &dup).await,
                    Err(Error::AlreadyExists {
                        what: Entity::Issuer,
                        ..
                    })
                ),
                "{dup:?}"
            );
        }
        store.create_issuer("bob", &issuer("gz", 2)).await.unwrap();
        let ids: Vec<_> = store
            .issuers()
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.issuer.issuer_id)
            .collect();
        assert_eq!(ids, ["gz", "sz"]);
        // Refused writes left no audit row.
        let rows = operator_rows(store).await;
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!((rows[0].0.as_str(), rows[0].1.as_str()), ("alice", "sz"));
        assert!(rows[0].2.contains("before none"), "{}", rows[0].2);
        assert!(matches!(
            store.verify_chain().await.unwrap(),
            ChainStatus::Intact { rows: 2, .. }
        ));
    })
    .await;
}

#[tokio::test]
async fn stock_ranges_refuse_overlaps_and_unknown_issuers() {
    each(async |db| {
        let store = &db.store;
        store.create_issuer("op", &issuer("sz", 1)).await.unwrap();
        let r = store
            .add_stock_range("op", &range("r1", "sz", 1, 100))
            .await
            .unwrap();
        assert_eq!((r.next_seq, r.remaining()), (1, 100));
        for (bad, what) in [
            (range("r2", "sz", 100, 200), Entity::StockRange),
            (range("r2", "sz", 0, 1), Entity::StockRange),
            (range("r1", "sz", 500, 600), Entity::StockRange),
        ] {
            let err = store.add_stock_range("op", &bad).await.unwrap_err();
            assert!(
                matches!(err, Error::AlreadyExists { what: w, .. } if w == what),
                "{bad:?}: {err:?}"
            );
        }
        let err = store
            .add_stock_range("op", &range("r3", "nope", 500, 600))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotFound {
                    what: Entity::Issuer,
                    ..
                }
            ),
            "{err:?}"
        );
        for (first, last) in [(5, 4), (1, 1_000_000_000_000)] {
            assert!(matches!(
                store
                    .add_stock_range("op", &range("r4", "sz", first, last))
                    .await,
                Err(Error::OutOfRange { .. })
            ));
        }
        // Another prefix may reuse the sequence numbers.
        let mut other = range("r5", "sz", 1, 10);
        other.prefix = [0x31, 0x04, 0x20, 0x00];
        store.add_stock_range("op", &other).await.unwrap();
        assert_eq!(store.stock_ranges(Some("sz")).await.unwrap().len(), 2);
        assert_eq!(store.stock_ranges(Some("gz")).await.unwrap().len(), 0);
        assert_eq!(store.stock_ranges(None).await.unwrap().len(), 2);
        assert_eq!(operator_rows(store).await.len(), 3);
        assert!(matches!(
            store.verify_chain().await.unwrap(),
            ChainStatus::Intact { .. }
        ));
    })
    .await;
}

#[tokio::test]
async fn card_numbers_are_taken_in_order_until_exhausted() {
    each(async |db| {
        let store = &db.store;
        assert!(matches!(
            store.take_card_number("sz").await,
            Err(Error::NotFound { .. })
        ));
        store.create_issuer("op", &issuer("sz", 1)).await.unwrap();
        assert!(matches!(
            store.take_card_number("sz").await,
            Err(Error::Exhausted { .. })
        ));
        store
            .add_stock_range("op", &range("a", "sz", 7, 8))
            .await
            .unwrap();
        store
            .add_stock_range("op", &range("b", "sz", 20, 20))
            .await
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            let t = store.take_card_number("sz").await.unwrap();
            assert_eq!(t.ef15_issuer, issuer("sz", 1).ef15_issuer);
            got.push((t.range_id, t.seq));
        }
        assert_eq!(
            got,
            [("a".into(), 7), ("a".into(), 8), ("b".to_string(), 20)]
        );
        assert!(matches!(
            store.take_card_number("sz").await,
            Err(Error::Exhausted { .. })
        ));
        assert_eq!(store.stock_range("a").await.unwrap().remaining(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takers_never_get_the_same_number() {
    each(async |db| {
        let store = &db.store;
        store.create_issuer("op", &issuer("sz", 1)).await.unwrap();
        store
            .add_stock_range("op", &range("a", "sz", 1, 30))
            .await
            .unwrap();
        store
            .add_stock_range("op", &range("b", "sz", 100, 129))
            .await
            .unwrap();
        // Eight takers on their own stores (pools) of the same database, 10 numbers each:
        // 80 asks for 60 numbers.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let taker = Store::connect(&db.url).await.unwrap();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut exhausted = 0;
                for _ in 0..10 {
                    match taker.take_card_number("sz").await {
                        Ok(t) => mine.push(t.seq),
                        Err(Error::Exhausted { .. }) => exhausted += 1,
                        Err(e) => panic!("{e:?}"),
                    }
                }
                taker.close().await;
                (mine, exhausted)
            }));
        }
        let mut all = Vec::new();
        let mut exhausted = 0;
        for t in tasks {
            let (mine, e) = t.await.unwrap();
            all.extend(mine);
            exhausted += e;
        }
        let unique: BTreeSet<u64> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len(), "a number was given twice");
        let expected: BTreeSet<u64> = (1..=30).chain(100..=129).collect();
        assert_eq!(unique, expected);
        assert_eq!(exhausted, 20);
    })
    .await;
}

#[tokio::test]
async fn se_profiles_match_by_cplc_and_are_set_by_hand() {
    each(async |db| {
        let store = &db.store;
        store
            .create_se_profile("op", &profile("any-4790", None))
            .await
            .unwrap();
        store
            .create_se_profile("op", &profile("4790-5040", Some([0x50, 0x40])))
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_se_profile("op", &profile("any-4790", None))
                .await,
            Err(Error::AlreadyExists {
                what: Entity::SeProfile,
                ..
            })
        ));
        let name = async |cplc: &str| {
            store
                .match_se_profile(&hex::decode(cplc).unwrap())
                .await
                .unwrap()
                .map(|p| p.profile.name)
        };
        // The most specific profile wins; the 9F7F tag is optional.
        assert_eq!(name("47905040aaaa").await.as_deref(), Some("4790-5040"));
        assert_eq!(
            name("9f7f0647905040aaaa").await.as_deref(),
            Some("4790-5040")
        );
        assert_eq!(name("47905041aaaa").await.as_deref(), Some("any-4790"));
        assert_eq!(name("4791504000").await, None);
        assert_eq!(name("47").await, None);

        store
            .register_se(&NewSe {
                seid: SEID.into(),
                cplc: hex::decode("4790504000000000").unwrap(),
                profile: String::new(),
            })
            .await
            .unwrap();
        let se = store.assign_matching_profile("tsm", SEID).await.unwrap();
        assert_eq!(se.profile, "4790-5040");
        let se = store
            .set_se_profile("alice", SEID, "any-4790")
            .await
            .unwrap();
        assert_eq!(se.profile, "any-4790");
        assert!(matches!(
            store.set_se_profile("alice", SEID, "nope").await,
            Err(Error::NotFound {
                what: Entity::SeProfile,
                ..
            })
        ));
        assert!(matches!(
            store.set_se_profile("alice", "nope", "any-4790").await,
            Err(Error::NotFound {
                what: Entity::Se,
                ..
            })
        ));
        let rows = operator_rows(store).await;
        let last = rows.last().unwrap();
        assert_eq!(last.0, "alice");
        assert!(
            last.2.contains("before \"4790-5040\"") && last.2.contains("after \"any-4790\""),
            "{}",
            last.2
        );
        assert!(matches!(
            store.verify_chain().await.unwrap(),
            ChainStatus::Intact { rows: 4, .. }
        ));
    })
    .await;
}
