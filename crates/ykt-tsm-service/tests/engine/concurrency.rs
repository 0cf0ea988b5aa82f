//! Two processes on one database (tsm-gp.md §8): both get the same answer of the same flow at
//! once. The store's compare-and-set lets one move the flow; the other moves nothing, and the
//! flow still ends with the card written once.

use ykt_tsm::Management;
use ykt_tsm::api::{self, FlowStatus};
use ykt_tsm_service::engine::{EngineError, Start};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_engines_moves_a_flow() {
    each(async |db: &Db| {
        let vaults = Vaults::new();
        let a = db.engine(&vaults).await;
        let b = db.engine(&vaults).await;
        let device = device(&a, 7).await;
        for race_at in 1..=12usize {
            let txn = format!("open-race-{race_at}");
            let mut card = new_se(120 + race_at as u8);
            let mut log = Log::default();
            let mut resp = a
                .start(
                    &device,
                    &txn,
                    Start::OpenCard(api::OpenCardReq {
                        management: Management::Authorized,
                        city_code: "1000".into(),
                    }),
                    NOW_MS,
                )
                .await
                .unwrap();
            for _ in 1..race_at {
                let answer = relay(&mut card, resp.relay.as_ref().unwrap(), &mut log);
                resp = a.apdu_result(&device, &txn, &answer, NOW_MS).await.unwrap();
            }
            let answer = relay(&mut card, resp.relay.as_ref().unwrap(), &mut log);
            let version = a.store().flow(&txn).await.unwrap().version;
            let (ra, rb) = tokio::join!(
                a.apdu_result(&device, &txn, &answer, NOW_MS),
                b.apdu_result(&device, &txn, &answer, NOW_MS)
            );
            for r in [&ra, &rb] {
                assert!(
                    matches!(r, Ok(_) | Err(EngineError::Conflict)),
                    "race at {race_at}: {r:?}"
                );
            }
            assert_eq!(
                a.store().flow(&txn).await.unwrap().version,
                version + 1,
                "race at {race_at}"
            );
            // Whichever won, the flow goes on from the store.
            let current = a.flow(&device, &txn).await.unwrap();
            let done = drive(&a, &device, current, &mut card, &mut log)
                .await
                .unwrap();
            assert_eq!(done.status, FlowStatus::Completed, "race at {race_at}");
            assert_eq!(done.instance_state, "ACTIVE");
            assert_eq!(log.accepted_store_data(0xE8), 1, "race at {race_at}");
            assert_eq!(log.accepted_store_data(0x88), 1, "race at {race_at}");
        }
    })
    .await;
}
