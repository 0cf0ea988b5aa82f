//! Idempotency keys: a repeat gets the stored response, another body is a duplicate.

use ykt_store::{Begun, Error, RequestHash};

use crate::support::{ManualClock, each};

#[tokio::test]
async fn repeats_get_the_stored_response_and_other_bodies_are_duplicates() {
    each(async |db| {
        let store = &db.store;
        let body = RequestHash::of(br#"{"msg_type":"OpenCardReq","body":{"seid":"41"}}"#);
        let other = RequestHash::of(br#"{"msg_type":"OpenCardReq","body":{"seid":"42"}}"#);
        let sender = "SPTSM-330400";

        assert_eq!(
            store.begin_request(sender, "r1", &body).await.unwrap(),
            Begun::New
        );
        assert!(matches!(
            store.begin_request(sender, "r1", &body).await,
            Err(Error::InProgress { .. })
        ));
        assert!(matches!(
            store.begin_request(sender, "r1", &other).await,
            Err(Error::Duplicate { .. })
        ));
        assert!(matches!(
            store.complete_request(sender, "r1", &other, "{}").await,
            Err(Error::Duplicate { .. })
        ));
        let response = r#"{"result":{"code":"0000","msg":"ok"}}"#;
        store
            .complete_request(sender, "r1", &body, response)
            .await
            .unwrap();
        // Completing again with the same response is harmless; with another, a conflict.
        store
            .complete_request(sender, "r1", &body, response)
            .await
            .unwrap();
        assert!(matches!(
            store.complete_request(sender, "r1", &body, "{}").await,
            Err(Error::Conflict { .. })
        ));
        assert_eq!(
            store.begin_request(sender, "r1", &body).await.unwrap(),
            Begun::Stored(response.into())
        );
        let err = store.begin_request(sender, "r1", &other).await.unwrap_err();
        assert!(matches!(err, Error::Duplicate { ref request_id, .. } if request_id == "r1"));
        // Keys are per sender.
        assert_eq!(
            store
                .begin_request("SEITSM-OEM1", "r1", &other)
                .await
                .unwrap(),
            Begun::New
        );
        assert!(matches!(
            store.complete_request(sender, "never", &body, "{}").await,
            Err(Error::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn abandoned_requests_may_be_retried_and_old_records_purged() {
    each(async |db| {
        let clock = ManualClock::new(1_000_000);
        let store = clock.on(&db.store);
        let body = RequestHash::of(b"body");
        assert_eq!(
            store.begin_request("s", "r", &body).await.unwrap(),
            Begun::New
        );
        store.abandon_request("s", "r", &body).await.unwrap();
        assert_eq!(
            store.begin_request("s", "r", &body).await.unwrap(),
            Begun::New
        );
        store
            .complete_request("s", "r", &body, "done")
            .await
            .unwrap();
        // A completed request is final: abandoning it changes nothing.
        store.abandon_request("s", "r", &body).await.unwrap();
        assert_eq!(
            store.begin_request("s", "r", &body).await.unwrap(),
            Begun::Stored("done".into())
        );

        clock.set(2_000_000);
        assert_eq!(
            store.begin_request("s", "newer", &body).await.unwrap(),
            Begun::New
        );
        assert_eq!(store.purge_requests(1_500_000).await.unwrap(), 1);
        assert_eq!(
            store.begin_request("s", "r", &body).await.unwrap(),
            Begun::New
        );
        assert!(matches!(
            store.begin_request("s", "newer", &body).await,
            Err(Error::InProgress { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn concurrent_first_requests_claim_once() {
    each(async |db| {
        let body = RequestHash::of(b"same body");
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let store = db.store.clone();
            tasks.push(tokio::spawn(async move {
                store.begin_request("s", "race", &body).await
            }));
        }
        let mut new = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(Begun::New) => new += 1,
                Err(Error::InProgress { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(new, 1);
    })
    .await;
}
