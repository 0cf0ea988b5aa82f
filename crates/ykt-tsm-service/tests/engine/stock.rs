//! Open card takes its number from the registry's card stock (tsm-gp.md §2, §7 申请开卡):
//! the issuer of the request's city, one number per card, a refusal when the stock is out
//! (no flow, no number taken); the SE gets the profile its CPLC matches once registered
//! (§8 `REGISTERED`); a transferred card (§7 迁卡) keeps the EF15 fields it was issued with.

use ykt_crypto::purse::{PurseAlgorithm, Sm4Rules};
use ykt_envelope::Code;
use ykt_store::{CplcMatch, NewIssuer, NewSeProfile, NewStockRange};
use ykt_tsm::Management;
use ykt_tsm::api::{self, FlowStatus};
use ykt_tsm::testing::test_cplc;
use ykt_tsm_service::engine::{EngineError, Start, proposals};

use crate::support::*;

/// The EF15 issuer id of city `1000`'s issuer (`0x10 ^ 0x68 = 0x78`).
const EF15_ISSUER: [u8; 8] = [0x05, 0x18, 0x00, 0x00, 0x12, 0x34, 0x56, 0x68];
const SZ_EF15: [u8; 8] = [0x05, 0x18, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78];

fn issuer(id: &str, city: [u8; 2]) -> NewIssuer {
    let mut ef15_issuer = EF15_ISSUER;
    // EF15 issuer ids are unique: the other city's issuer gets its own.
    ef15_issuer[7] ^= city[0];
    NewIssuer {
        issuer_id: id.into(),
        name: format!("issuer {id}"),
        ef15_issuer,
        city_code: city,
        purse_key: parties().purse_issuer.0,
        key_version: 1,
    }
}

fn range(id: &str, issuer: &str, first: u64, last: u64) -> NewStockRange {
    NewStockRange {
        range_id: id.into(),
        issuer_id: issuer.into(),
        prefix: [0x51, 0x80, 0x00, 0x01],
        first_seq: first,
        last_seq: last,
        start_date: [0x20, 0x26, 0x01, 0x01],
        expiry_date: [0x20, 0x36, 0x12, 0x31],
    }
}

fn open_req(city: &str) -> Start {
    Start::OpenCard(api::OpenCardReq {
        management: Management::Authorized,
        city_code: city.into(),
    })
}

/// EF15 of the purse on `card` (SELECT the purse, READ BINARY SFI 15).
fn ef15(card: &mut ykt_card::Card) -> Vec<u8> {
    let mut select = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
    select.extend_from_slice(&proposals::PURSE_AID);
    let r = card.transmit(&select).unwrap();
    assert_eq!(&r[r.len() - 2..], [0x90, 0x00], "SELECT purse");
    let r = card.transmit(&[0x00, 0xB0, 0x95, 0x00, 0x00]).unwrap();
    assert_eq!(&r[r.len() - 2..], [0x90, 0x00], "READ BINARY EF15");
    r[..r.len() - 2].to_vec()
}

async fn no_flow(engine: &ykt_tsm_service::Engine, txn: &str) {
    assert!(matches!(
        engine.store().flow(txn).await,
        Err(ykt_store::Error::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_numbers_come_from_the_city_issuers_stock() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let dev = device(&engine, 1).await;
        // Another city's issuer sorts first by id: the request's city decides.
        engine
            .admin_create_issuer("alice", &issuer("a-other", [0x33, 0x04]))
            .await
            .unwrap();
        engine
            .admin_create_issuer("alice", &issuer("sz", [0x10, 0x00]))
            .await
            .unwrap();
        engine
            .admin_add_stock("alice", &range("other", "a-other", 1000, 1099))
            .await
            .unwrap();
        engine
            .admin_add_stock("alice", &range("sz-1", "sz", 41, 42))
            .await
            .unwrap();

        let mut se1 = new_se(1);
        let (card1, _) = open(&engine, &dev, "open-1", &mut se1, &mut Log::default()).await;
        assert_eq!(card1, "51800001000000000041");
        let f = ef15(&mut se1);
        assert_eq!(&f[..8], SZ_EF15, "EF15 issuer id: {}", hex::encode(&f));
        assert!(
            hex::encode(&f).contains("51800001000000000041"),
            "{}",
            hex::encode(&f)
        );
        let mut se2 = new_se(2);
        let (card2, _) = open(&engine, &dev, "open-2", &mut se2, &mut Log::default()).await;
        assert_eq!(card2, "51800001000000000042");
        assert_eq!(
            engine.admin_stock(Some("sz")).await.unwrap()[0].remaining(),
            0
        );
        assert_eq!(
            engine.admin_stock(Some("a-other")).await.unwrap()[0].remaining(),
            100
        );

        // Out of stock: refused with 5001, no flow, nothing taken.
        let e = engine
            .start(&dev, "open-3", open_req("1000"), NOW_MS)
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::StockExhausted), "{e:?}");
        assert_eq!(e.code(), Code::IssuerDeclined);
        no_flow(&engine, "open-3").await;

        // No issuer for the city, or no city at all: 1006, no flow.
        for city in ["9999", "10"] {
            let e = engine
                .start(&dev, "open-4", open_req(city), NOW_MS)
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::BadRequest, "{city}: {e:?}");
            no_flow(&engine, "open-4").await;
        }

        // New stock: the refused request goes on with the new range's first number.
        engine
            .admin_add_stock("alice", &range("sz-2", "sz", 900, 901))
            .await
            .unwrap();
        let mut se3 = new_se(3);
        let first = engine
            .start(&dev, "open-3", open_req("1000"), NOW_MS)
            .await
            .unwrap();
        let done = drive(&engine, &dev, first, &mut se3, &mut Log::default())
            .await
            .unwrap();
        assert_eq!(done.status, FlowStatus::Completed);
        assert_eq!(
            done.outcome.unwrap().card_no.as_deref(),
            Some("51800001000000000900")
        );
        // A retry of a started flow takes no second number.
        engine
            .start(&dev, "open-3", open_req("1000"), NOW_MS)
            .await
            .unwrap();
        let left: u64 = engine
            .admin_stock(Some("sz"))
            .await
            .unwrap()
            .iter()
            .map(|r| r.remaining())
            .sum();
        assert_eq!(left, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_issuers_the_configured_stock_numbers_cards() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let dev = device(&engine, 1).await;
        let mut se = new_se(1);
        let (card, _) = open(&engine, &dev, "open-1", &mut se, &mut Log::default()).await;
        let prefix = hex::encode_upper(config(true).card_stock.number_prefix);
        assert!(card.starts_with(&prefix), "{card}");
        assert_eq!(
            engine
                .store()
                .next_counter(proposals::CARD_NUMBER_COUNTER)
                .await
                .unwrap(),
            2
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_se_gets_the_profile_its_cplc_matches() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let dev = device(&engine, 1).await;
        let cplc = test_cplc(&[2]).unwrap();
        engine
            .admin_create_se_profile(
                "alice",
                &NewSeProfile {
                    name: "serial-2-line".into(),
                    cplc: CplcMatch {
                        ic_fabricator: [cplc[0], cplc[1]],
                        ic_type: Some([cplc[2], cplc[3]]),
                        os_id: None,
                    },
                    memory_kb: 512,
                    scp: "SCP03".into(),
                    delegated_management: true,
                },
            )
            .await
            .unwrap();
        let (_, seid2) = open(&engine, &dev, "open-2", &mut new_se(2), &mut Log::default()).await;
        assert_eq!(
            engine.store().se(&seid2).await.unwrap().profile,
            "serial-2-line"
        );
        // An SE whose CPLC no profile matches stays without one.
        let other = test_cplc(&[1]).unwrap();
        assert_ne!(other[..4], cplc[..4]);
        let (_, seid1) = open(&engine, &dev, "open-1", &mut new_se(1), &mut Log::default()).await;
        assert_eq!(engine.store().se(&seid1).await.unwrap().profile, "");
        let rows = engine.store().audit_records(1, 1000).await.unwrap();
        let matched: Vec<_> = rows
            .iter()
            .filter(|r| r.event.kind == ykt_store::AuditKind::OperatorAction)
            .map(|r| r.event.actor.as_str())
            .collect();
        assert_eq!(matched, ["alice", "tsm:registration"]);
        assert!(engine.admin_verify_audit().await.unwrap().intact);
    })
    .await;
}

/// Transfers the card `card_no` on `from` (of `old_phone`) to `to` (of `new_phone`); gives the
/// new instance's SEID.
async fn transfer(
    engine: &ykt_tsm_service::Engine,
    (old_phone, new_phone): (&str, &str),
    (card_no, seid): (&str, &str),
    from: &mut ykt_card::Card,
    to: &mut ykt_card::Card,
    tag: &str,
) -> String {
    let mut log = Log::default();
    let first = engine
        .start(
            old_phone,
            &format!("out-{tag}"),
            Start::TransferOut(card_req(card_no, seid)),
            NOW_MS,
        )
        .await
        .unwrap();
    let done = drive(engine, old_phone, first, from, &mut log)
        .await
        .unwrap();
    assert_eq!(done.instance_state, "DELETED");
    let code = done.outcome.unwrap().transfer_code.unwrap();
    let first = engine
        .start(
            new_phone,
            &format!("in-{tag}"),
            Start::TransferIn(api::TransferInReq {
                transfer_code: code,
                management: Management::Authorized,
            }),
            NOW_MS,
        )
        .await
        .unwrap();
    let done = drive(engine, new_phone, first, to, &mut log).await.unwrap();
    assert_eq!(done.status, FlowStatus::Completed);
    let outcome = done.outcome.unwrap();
    assert_eq!(outcome.card_no.as_deref(), Some(card_no));
    outcome.seid.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transferred_card_keeps_the_ef15_it_was_issued_with() {
    each(async |db| {
        let engine = db.engine(&Vaults::new()).await;
        let old_phone = device(&engine, 1).await;
        let new_phone = device(&engine, 2).await;

        // Opened before the registry had an issuer: the configured stock's fields, kept.
        let mut se1 = new_se(61);
        let (plain, seid1) = open(
            &engine,
            &old_phone,
            "open-61",
            &mut se1,
            &mut Log::default(),
        )
        .await;
        let plain_ef15 = ef15(&mut se1);
        assert_eq!(&plain_ef15[..8], config(true).card_stock.issuer_id);

        engine
            .admin_create_issuer("alice", &issuer("sz", [0x10, 0x00]))
            .await
            .unwrap();
        engine
            .admin_add_stock("alice", &range("sz-1", "sz", 41, 49))
            .await
            .unwrap();
        let mut se2 = new_se(62);
        let (issued, seid2) = open(
            &engine,
            &old_phone,
            "open-62",
            &mut se2,
            &mut Log::default(),
        )
        .await;
        assert_eq!(issued, "51800001000000000041");
        let issued_ef15 = ef15(&mut se2);
        assert_eq!(&issued_ef15[..8], SZ_EF15);
        // Another issuer range with other dates: the transferred card keeps its own.
        engine
            .admin_add_stock(
                "alice",
                &NewStockRange {
                    start_date: [0x20, 0x27, 0x01, 0x01],
                    expiry_date: [0x20, 0x37, 0x12, 0x31],
                    ..range("sz-2", "sz", 500, 509)
                },
            )
            .await
            .unwrap();

        let mut se3 = new_se(63);
        transfer(
            &engine,
            (&old_phone, &new_phone),
            (&issued, &seid2),
            &mut se2,
            &mut se3,
            "63",
        )
        .await;
        assert_eq!(hex::encode(ef15(&mut se3)), hex::encode(&issued_ef15));
        assert_ne!(issued_ef15[..8], config(true).card_stock.issuer_id);

        let mut se4 = new_se(64);
        transfer(
            &engine,
            (&old_phone, &new_phone),
            (&plain, &seid1),
            &mut se1,
            &mut se4,
            "64",
        )
        .await;
        assert_eq!(hex::encode(ef15(&mut se4)), hex::encode(&plain_ef15));
        // A transfer takes no number from the stock.
        assert_eq!(
            engine.admin_stock(Some("sz")).await.unwrap()[0].remaining(),
            8
        );
    })
    .await;
}

/// The purse key name a stored flow runs under.
async fn purse_key_of_flow(engine: &ykt_tsm_service::Engine, txn: &str) -> String {
    let row = engine.store().flow(txn).await.unwrap();
    row.state["flow"]["parties"]["purse_issuer"]
        .as_str()
        .unwrap_or_else(|| panic!("no purse key in {txn}: {}", row.state["flow"]["parties"]))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_uses_its_issuers_purse_key() {
    each(async |db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let dev = device(&engine, 1).await;
        const SZ_KEY: &str = "sp/purse-issuer-sz";
        engine
            .admin_create_issuer(
                "alice",
                &NewIssuer {
                    purse_key: SZ_KEY.into(),
                    ..issuer("sz", [0x10, 0x00])
                },
            )
            .await
            .unwrap();
        engine
            .admin_add_stock("alice", &range("sz-1", "sz", 41, 49))
            .await
            .unwrap();

        // The vault lacks the issuer's key: refused, no flow, no number taken.
        let e = engine
            .start(&dev, "open-k1", open_req("1000"), NOW_MS)
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::PurseKeyMissing), "{e:?}");
        assert_eq!(e.code(), Code::Internal);
        no_flow(&engine, "open-k1").await;
        assert_eq!(
            engine.admin_stock(Some("sz")).await.unwrap()[0].remaining(),
            9
        );

        // The key arrives, with master keys other than the configured issuer's.
        let masters = ykt_purse::testing::test_master_keys(PurseAlgorithm::Tdes)
            .into_iter()
            .enumerate()
            .map(|(i, mut k)| {
                k.key = ykt_crypto::purse::PurseKey::from_bytes(std::array::from_fn(|j| {
                    (i * 16 + j) as u8 ^ 0xA5
                }));
                k
            })
            .collect();
        vaults.sp.0.lock().unwrap().insert_purse_issuer(
            ykt_tsm::KeyName::new(SZ_KEY),
            masters,
            &ykt_tsm::testing::test_keys::TEST_PIN,
            ykt_purse::PurseProfile::EPURSE,
            Sm4Rules::BRIEF,
        );
        let mut se = new_se(71);
        let mut log = Log::default();
        let (card_no, seid) = open(&engine, &dev, "open-k2", &mut se, &mut log).await;
        assert_eq!(card_no, "51800001000000000041");
        assert_eq!(purse_key_of_flow(&engine, "open-k2").await, SZ_KEY);
        // A load on the card runs under the same key: its MAC1 and TAC check out.
        let done = top_up(&engine, &dev, &mut se, &card_no, &seid, 700, &mut log).await;
        assert_eq!(done.outcome.unwrap().load.unwrap().new_balance, 700);
        assert_eq!(purse_key_of_flow(&engine, &done.txn_id).await, SZ_KEY);
        assert_eq!(
            balance(&engine, &dev, "q-k", &mut se, &card_no, &seid).await,
            700
        );
    })
    .await;
}
