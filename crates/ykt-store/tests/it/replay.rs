//! The replay guard of signed messages.

use ykt_store::Error;

use crate::support::{ManualClock, each};

const WINDOW: i64 = 5 * 60 * 1000;

#[tokio::test]
async fn a_message_is_accepted_once_inside_the_window() {
    each(async |db| {
        let t0 = 1_760_000_000_000;
        let clock = ManualClock::new(t0);
        let store = clock.on(&db.store);
        store
            .accept_message("SPTSM-330400", "m1", t0 - 1000, WINDOW)
            .await
            .unwrap();
        let err = store
            .accept_message("SPTSM-330400", "m1", t0 - 1000, WINDOW)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Replayed { ref message_id, .. } if message_id == "m1"));
        // The same id from another sender is another message.
        store
            .accept_message("SEITSM-OEM1", "m1", t0, WINDOW)
            .await
            .unwrap();
        // Outside the window, in the past or the future.
        assert!(matches!(
            store
                .accept_message("SPTSM-330400", "m2", t0 - WINDOW - 1, WINDOW)
                .await,
            Err(Error::Stale { .. })
        ));
        assert!(matches!(
            store
                .accept_message("SPTSM-330400", "m3", t0 + WINDOW + 1, WINDOW)
                .await,
            Err(Error::Stale { .. })
        ));
        store
            .accept_message("SPTSM-330400", "m4", t0 + WINDOW, WINDOW)
            .await
            .unwrap();

        // Later, the old records go; the messages they guarded are stale by then.
        clock.set(t0 + WINDOW + 10_000);
        assert_eq!(store.purge_messages(WINDOW).await.unwrap(), 2);
        assert!(matches!(
            store
                .accept_message("SPTSM-330400", "m1", t0 - 1000, WINDOW)
                .await,
            Err(Error::Stale { .. })
        ));
        assert!(matches!(
            store
                .accept_message("SPTSM-330400", "m4", t0 + WINDOW, WINDOW)
                .await,
            Err(Error::Replayed { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn concurrent_replays_are_accepted_once() {
    each(async |db| {
        let mut tasks = Vec::new();
        let now = 1_760_000_000_000;
        let clock = ManualClock::new(now);
        for _ in 0..10 {
            let store = clock.on(&db.store);
            tasks.push(tokio::spawn(async move {
                store.accept_message("s", "nonce", now, WINDOW).await
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => accepted += 1,
                Err(Error::Replayed { .. }) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(accepted, 1);
    })
    .await;
}
