//! The wallet's retries, replays and reorderings of `ApduResultReq` (tsm-gp.md §7 relay `seq`):
//! an answer to any message but the outstanding one gives the current state and moves nothing.

use ykt_tsm::api::{self, FlowStatus};
use ykt_tsm::{Management, RelayResponse};
use ykt_tsm_service::engine::Start;

use crate::support::*;

#[tokio::test]
async fn replayed_and_reordered_answers_change_nothing() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let engine = db.engine(&vaults).await;
        let device = device(&engine, 7).await;
        let other = crate::support::device(&engine, 8).await;
        let mut card = new_se(40);
        let mut log = Log::default();
        let mut resp = engine
            .start(
                &device,
                "open-40",
                Start::OpenCard(api::OpenCardReq {
                    management: Management::Authorized,
                    city_code: "1000".into(),
                }),
                NOW_MS,
            )
            .await
            .unwrap();
        let mut answers: Vec<RelayResponse> = Vec::new();
        while resp.status == FlowStatus::Running {
            let req = resp.relay.clone().unwrap();
            let answer = relay(&mut card, &req, &mut log);
            answers.push(answer.clone());
            resp = engine
                .apdu_result(&device, "open-40", &answer, NOW_MS)
                .await
                .unwrap();
            if answers.len() < 4 || resp.status != FlowStatus::Running {
                continue;
            }
            let version = engine.store().flow("open-40").await.unwrap().version;
            // Every earlier answer again, newest first.
            for old in answers.iter().rev() {
                let again = engine
                    .apdu_result(&device, "open-40", old, NOW_MS)
                    .await
                    .unwrap();
                assert_eq!(again, resp);
            }
            // An answer to a message not sent yet, and one of another session.
            let mut ahead = answers.last().unwrap().clone();
            ahead.seq += 2;
            assert_eq!(
                engine
                    .apdu_result(&device, "open-40", &ahead, NOW_MS)
                    .await
                    .unwrap(),
                resp
            );
            let mut stranger = answers.last().unwrap().clone();
            stranger.seq = resp.relay.as_ref().unwrap().seq;
            stranger.session_id = "someone-else".into();
            assert_eq!(
                engine
                    .apdu_result(&device, "open-40", &stranger, NOW_MS)
                    .await
                    .unwrap(),
                resp
            );
            // Another device's answer is refused outright.
            let e = engine
                .apdu_result(&other, "open-40", &stranger, NOW_MS)
                .await
                .unwrap_err();
            assert_eq!(e.code(), ykt_envelope::Code::Forbidden);
            assert_eq!(
                engine.store().flow("open-40").await.unwrap().version,
                version
            );
        }
        assert_eq!(resp.status, FlowStatus::Completed);
        assert_eq!(log.accepted_store_data(0xE8), 1);
        // After the end, every old answer gives the finished flow.
        for old in &answers {
            assert_eq!(
                engine
                    .apdu_result(&device, "open-40", old, NOW_MS)
                    .await
                    .unwrap(),
                resp
            );
        }
        // Starting the same txn again is the same flow.
        let again = engine
            .start(
                &device,
                "open-40",
                Start::OpenCard(api::OpenCardReq {
                    management: Management::Delegated,
                    city_code: "1000".into(),
                }),
                NOW_MS,
            )
            .await
            .unwrap();
        assert_eq!(again, resp);
        assert_eq!(engine.cards(&device).await.unwrap().cards.len(), 1);
        assert!(engine.cards(&other).await.unwrap().cards.is_empty());
    })
    .await;
}
