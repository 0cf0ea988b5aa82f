//! 迁卡 (tsm-gp.md §7 transfer): the old phone's card proven, locked, escrowed and deleted
//! under a transfer code; the new phone opens a card with the same number on its own SE and
//! gets the escrowed balance loaded online. The code works once.

use ykt_store::CardState;
use ykt_tsm::Management;
use ykt_tsm::api::{self, FlowStatus};
use ykt_tsm_service::engine::{EngineError, Start};

use crate::support::*;

#[tokio::test]
async fn transfer_keeps_the_card_number_and_balance() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let old_phone = device(&engine, 7).await;
        let new_phone = device(&engine, 8).await;
        let mut old_se = new_se(50);
        let mut new_se = new_se(51);
        let mut log = Log::default();
        let (card_no, old_seid) = open(&engine, &old_phone, "open-50", &mut old_se, &mut log).await;
        top_up(
            &engine,
            &old_phone,
            &mut old_se,
            &card_no,
            &old_seid,
            2300,
            &mut log,
        )
        .await;

        let first = engine
            .start(
                &old_phone,
                "out-50",
                Start::TransferOut(card_req(&card_no, &old_seid)),
                NOW_MS,
            )
            .await
            .unwrap();
        // The code is only shown once the balance is escrowed and the card gone.
        assert!(first.outcome.is_none());
        let done = drive(&engine, &old_phone, first, &mut old_se, &mut log)
            .await
            .unwrap();
        assert_eq!(done.instance_state, "DELETED");
        let outcome = done.outcome.unwrap();
        assert_eq!(outcome.balance, Some(2300));
        let code = outcome.transfer_code.unwrap();
        assert_eq!(code.len(), 20);
        let escrow = engine
            .store()
            .escrow(&ykt_tsm_service::engine::proposals::transfer_id(&code))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((escrow.amount_fen, escrow.settled), (2300, false));
        assert_eq!(escrow.card_no, card_no);
        // The store keeps the code's hash only, never the code, outside the flow's own record.
        let dump = engine.store().danger_dump_text().await.unwrap();
        assert!(
            dump.iter()
                .filter(|(column, _)| column.starts_with("escrow"))
                .all(|(_, text)| !text.contains(&code))
        );

        let e = engine
            .start(
                &new_phone,
                "in-wrong",
                Start::TransferIn(api::TransferInReq {
                    transfer_code: "00".repeat(10),
                    management: Management::Authorized,
                }),
                NOW_MS,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::UnknownTransfer), "{e:?}");

        let first = engine
            .start(
                &new_phone,
                "in-51",
                Start::TransferIn(api::TransferInReq {
                    transfer_code: code.to_lowercase(),
                    management: Management::Authorized,
                }),
                NOW_MS,
            )
            .await
            .unwrap();
        let done = drive(&engine, &new_phone, first, &mut new_se, &mut log)
            .await
            .unwrap();
        assert_eq!(done.status, FlowStatus::Completed);
        assert_eq!(done.instance_state, "ACTIVE");
        let outcome = done.outcome.unwrap();
        let new_seid = outcome.seid.unwrap();
        assert_eq!(outcome.card_no.as_deref(), Some(card_no.as_str()));
        assert_ne!(new_seid, old_seid);
        assert_eq!(outcome.load.unwrap().new_balance, 2300);
        assert_eq!(
            balance(
                &engine,
                &new_phone,
                "q-51",
                &mut new_se,
                &card_no,
                &new_seid
            )
            .await,
            2300
        );
        let escrow = engine
            .store()
            .escrow(&ykt_tsm_service::engine::proposals::transfer_id(&code))
            .await
            .unwrap()
            .unwrap();
        assert!(escrow.settled);
        assert_eq!(escrow.claimed_by.as_deref(), Some("in-51"));

        // Both instances of the number, each with its phone.
        let old = engine.store().card(&old_seid, &card_no).await.unwrap();
        let new = engine.store().card(&new_seid, &card_no).await.unwrap();
        assert_eq!(
            (old.state, old.device_id.as_deref()),
            (CardState::Deleted, Some(old_phone.as_str()))
        );
        assert_eq!(
            (new.state, new.device_id.as_deref()),
            (CardState::Active, Some(new_phone.as_str()))
        );
        let e = engine
            .start(
                &old_phone,
                "q-x",
                Start::CardQuery(card_req(&card_no, &new_seid)),
                NOW_MS,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::Forbidden), "{e:?}");

        // The code works once.
        let e = engine
            .start(
                &new_phone,
                "in-again",
                Start::TransferIn(api::TransferInReq {
                    transfer_code: code.clone(),
                    management: Management::Authorized,
                }),
                NOW_MS,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, EngineError::UnknownTransfer), "{e:?}");
        assert_no_key_stored(
            engine.store(),
            &vaults,
            &[seid_of_serial(50), seid_of_serial(51)],
        )
        .await;
    })
    .await;
}
