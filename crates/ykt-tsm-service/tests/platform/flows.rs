//! The business flows with the SEI as another server end as they end in one process: open card
//! (authorised and delegated management: tokens and receipts come from the SEI), top-up,
//! balance, transfer out and in, card return, delete.

use ykt_card::Card;
use ykt_tsm::Management;
use ykt_tsm::api::{self, FlowStatus};
use ykt_tsm_service::engine::{Engine, Start};

use crate::support::*;
use crate::two::Two;

/// Opens a card with `management`; gives its card number and SEID.
pub async fn open_as(
    engine: &Engine,
    device: &str,
    txn: &str,
    card: &mut Card,
    management: Management,
) -> (String, String) {
    let first = engine
        .start(
            device,
            txn,
            Start::OpenCard(api::OpenCardReq {
                management,
                city_code: "1000".into(),
            }),
            NOW_MS,
        )
        .await
        .unwrap();
    let done = drive(engine, device, first, card, &mut Log::default())
        .await
        .unwrap();
    assert_eq!(done.status, FlowStatus::Completed);
    assert_eq!(done.instance_state, "ACTIVE");
    let outcome = done.outcome.unwrap();
    (outcome.card_no.unwrap(), outcome.seid.unwrap())
}

async fn run_flow(
    engine: &Engine,
    device: &str,
    txn: &str,
    start: Start,
    card: &mut Card,
) -> api::FlowResp {
    let first = engine.start(device, txn, start, NOW_MS).await.unwrap();
    drive(engine, device, first, card, &mut Log::default())
        .await
        .unwrap()
}

/// Every flow once; what each ended with and the cards' final states, as lines.
async fn scenario(engine: &Engine) -> Vec<String> {
    let mut out = Vec::new();
    let phone = device(engine, 7).await;
    let phone2 = device(engine, 8).await;
    let mut log = Log::default();

    // 申请开卡 (authorised), 充值, balance, 迁卡 out and in (delegated on the new SE).
    let mut se_a = new_se(60);
    let (card_a, seid_a) = open(engine, &phone, "open-a", &mut se_a, &mut log).await;
    let t = top_up(engine, &phone, &mut se_a, &card_a, &seid_a, 1200, &mut log).await;
    out.push(format!(
        "top-up a: {:?}",
        t.outcome.and_then(|o| o.load).map(|l| l.new_balance)
    ));
    let b = balance(engine, &phone, "q-a", &mut se_a, &card_a, &seid_a).await;
    out.push(format!("balance a: {b}"));
    let done = run_flow(
        engine,
        &phone,
        "out-a",
        Start::TransferOut(card_req(&card_a, &seid_a)),
        &mut se_a,
    )
    .await;
    out.push(format!(
        "transfer out a: {} {:?}",
        done.instance_state, done.status
    ));
    let code = done.outcome.unwrap().transfer_code.unwrap();
    let mut se_b = new_se(61);
    let done = run_flow(
        engine,
        &phone2,
        "in-b",
        Start::TransferIn(api::TransferInReq {
            transfer_code: code,
            management: Management::Delegated,
        }),
        &mut se_b,
    )
    .await;
    let outcome = done.outcome.clone().unwrap();
    out.push(format!(
        "transfer in b: {} {:?} same number {} loaded {:?}",
        done.instance_state,
        done.status,
        outcome.card_no.as_deref() == Some(card_a.as_str()),
        outcome.load.map(|l| l.new_balance)
    ));
    let seid_b = outcome.seid.unwrap();

    // Delegated open, top-up, 退卡.
    let mut se_c = new_se(62);
    let (card_c, seid_c) =
        open_as(engine, &phone, "open-c", &mut se_c, Management::Delegated).await;
    top_up(engine, &phone, &mut se_c, &card_c, &seid_c, 300, &mut log).await;
    let done = run_flow(
        engine,
        &phone,
        "return-c",
        Start::Refund(api::RefundReq {
            card_no: card_c.clone(),
            seid: seid_c.clone(),
            refund_account: "acct-1".into(),
        }),
        &mut se_c,
    )
    .await;
    out.push(format!(
        "return c: {} {:?} refund {:?}",
        done.instance_state,
        done.status,
        done.outcome.unwrap().refund
    ));

    // Delegated open, 删除卡片.
    let mut se_d = new_se(63);
    let (card_d, seid_d) =
        open_as(engine, &phone, "open-d", &mut se_d, Management::Delegated).await;
    let done = run_flow(
        engine,
        &phone,
        "delete-d",
        Start::DeleteCard(card_req(&card_d, &seid_d)),
        &mut se_d,
    )
    .await;
    out.push(format!(
        "delete d: {} {:?}",
        done.instance_state, done.status
    ));

    for (seid, card_no) in [
        (&seid_a, &card_a),
        (&seid_b, &card_a),
        (&seid_c, &card_c),
        (&seid_d, &card_d),
    ] {
        let c = engine.store().card(seid, card_no).await.unwrap();
        out.push(format!(
            "card {seid} {card_no}: {:?} {:?}",
            c.state, c.management
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_end_every_flow_as_one_process_does() {
    let db = Db::sqlite();
    let vaults = Vaults::new();
    let one = db.engine(&vaults).await;
    let expected = scenario(&one).await;
    drop(one);
    db.finish().await;
    assert_eq!(expected.len(), 10, "{expected:#?}");
    assert!(expected[0].contains("Some(1200)"), "{expected:#?}");

    let two = Two::start().await;
    let got = scenario(&two.engine).await;
    assert_eq!(got, expected);

    // The SEI did the SEI's work: the SSDs' initial sets are in its vault, not made by the SP;
    // the SP holds its own sets and the handed-over initial ones.
    let seid = seid_of_serial(60);
    let ssd = hex::encode_upper(ykt_tsm::proposals::SSD_AID);
    let initial = ykt_tsm::KeyName(format!("ssd/{seid}/{ssd}/initial"));
    let sp_set = ykt_tsm::KeyName(format!("ssd/{seid}/{ssd}/sp"));
    {
        let sei_vault = two.vaults.sei.0.lock().unwrap();
        let sp_vault = two.vaults.sp.0.lock().unwrap();
        use ykt_tsm::KeyVault as _;
        // Deleted with the transferred-out card on both sides.
        assert!(!sei_vault.contains(&initial) && !sp_vault.contains(&initial));
        assert!(!sei_vault.contains(&sp_set));
        let seid_b = seid_of_serial(61);
        let initial_b = ykt_tsm::KeyName(format!("ssd/{seid_b}/{ssd}/initial"));
        let sp_b = ykt_tsm::KeyName(format!("ssd/{seid_b}/{ssd}/sp"));
        assert!(sei_vault.contains(&initial_b));
        assert!(sp_vault.contains(&sp_b) && !sei_vault.contains(&sp_b));
        assert!(!sp_vault.contains(&parties().isd_master));
        assert!(!sp_vault.contains(&parties().token_signer));
    }

    // Every SEI operation is an audit row in the SEI's store, each naming its SP.
    let sei_store = two.sei_db.store().await;
    let rows = sei_store.audit_records(1, 10_000).await.unwrap();
    assert!(rows.len() > 20, "{}", rows.len());
    assert!(
        rows.iter()
            .all(|r| r.event.actor == "sp-platform:SPTSM-TEST")
    );
    for op in [
        "CreateSSDReq: done",
        "SSDFirstKeysReq: done",
        "SSDKeyHandoverReq: done",
        "ISDChannelOpReq: done",
        "AcquireTokenReq: done",
        "ReceiptVerifyReq: done",
        "DeleteSSDReq: done",
    ] {
        assert!(rows.iter().any(|r| r.event.detail == op), "no {op}");
    }
    assert!(rows.iter().all(|r| r.event.detail.ends_with(": done")));
    // No key value in anything either store keeps (the SEI's idempotency records keep its
    // answers: names, wrapped blobs, tokens, verdicts).
    let seids: Vec<_> = (60..=63).map(seid_of_serial).collect();
    assert_no_key_stored(&sei_store, &two.vaults, &seids).await;
    assert_no_key_stored(two.engine.store(), &two.vaults, &seids).await;
    two.finish().await;
}
