//! The replay guard and the idempotency claim in one transaction (`Store::admit_request`): the
//! outcomes of `accept_message` followed by `begin_request`, and nothing half written.

use ykt_store::danger::Fault;
use ykt_store::{Begun, Error, RequestHash, Store};

use crate::support::{Db, ManualClock, each};

const WINDOW: i64 = 5 * 60 * 1000;
const T0: i64 = 1_760_000_000_000;
const SENDER: &str = "DEV-0001";

async fn rows(db: &Db) -> (i64, i64) {
    (
        db.raw_count("SELECT COUNT(*) FROM seen_message").await,
        db.raw_count("SELECT COUNT(*) FROM idempotency").await,
    )
}

async fn admit(
    store: &Store,
    nonce: &str,
    request_id: &str,
    hash: &RequestHash,
) -> Result<Begun, Error> {
    store
        .admit_request(SENDER, nonce, T0 - 1000, WINDOW, request_id, hash)
        .await
}

#[tokio::test]
async fn a_new_message_records_its_nonce_and_claims_its_request() {
    each(async |db| {
        let store = ManualClock::new(T0).on(&db.store);
        let body = RequestHash::of(b"OpenCardReq body");
        assert_eq!(admit(&store, "n1", "r1", &body).await.unwrap(), Begun::New);
        assert_eq!(rows(db).await, (1, 1));
        // Both rows are the ones the two separate calls write: the nonce is spent, the claim
        // is in progress.
        assert!(matches!(
            store.accept_message(SENDER, "n1", T0 - 1000, WINDOW).await,
            Err(Error::Replayed { .. })
        ));
        assert!(matches!(
            store.begin_request(SENDER, "r1", &body).await,
            Err(Error::InProgress { .. })
        ));
        store
            .complete_request(SENDER, "r1", &body, "answer")
            .await
            .unwrap();
        // Another sender's nonce and request id are its own.
        assert_eq!(
            store
                .admit_request("DEV-0002", "n1", T0, WINDOW, "r1", &body)
                .await
                .unwrap(),
            Begun::New
        );
        assert_eq!(rows(db).await, (2, 2));
    })
    .await;
}

#[tokio::test]
async fn a_replayed_nonce_is_refused_whatever_the_request_id() {
    each(async |db| {
        let store = ManualClock::new(T0).on(&db.store);
        let body = RequestHash::of(b"body");
        assert_eq!(admit(&store, "n1", "r1", &body).await.unwrap(), Begun::New);
        store
            .complete_request(SENDER, "r1", &body, "answer")
            .await
            .unwrap();
        // The replay guard comes first: a replayed nonce is refused even when the request is a
        // completed repeat, and under a new request id nothing is claimed.
        let err = admit(&store, "n1", "r1", &body).await.unwrap_err();
        assert!(
            matches!(err, Error::Replayed { ref message_id, ref sender } if message_id == "n1" && sender == SENDER),
            "{err:?}"
        );
        assert!(matches!(
            admit(&store, "n1", "r2", &body).await,
            Err(Error::Replayed { .. })
        ));
        assert_eq!(rows(db).await, (1, 1));
        assert_eq!(
            store.begin_request(SENDER, "r2", &body).await.unwrap(),
            Begun::New
        );
    })
    .await;
}

#[tokio::test]
async fn a_stale_message_writes_nothing() {
    each(async |db| {
        let store = ManualClock::new(T0).on(&db.store);
        let body = RequestHash::of(b"body");
        for sent in [T0 - WINDOW - 1, T0 + WINDOW + 1] {
            assert!(matches!(
                store
                    .admit_request(SENDER, "n1", sent, WINDOW, "r1", &body)
                    .await,
                Err(Error::Stale { .. })
            ));
        }
        assert_eq!(rows(db).await, (0, 0));
        assert_eq!(
            store
                .admit_request(SENDER, "n1", T0 + WINDOW, WINDOW, "r1", &body)
                .await
                .unwrap(),
            Begun::New
        );
    })
    .await;
}

#[tokio::test]
async fn a_repeated_request_gets_its_stored_answer_and_spends_its_nonce() {
    each(async |db| {
        let store = ManualClock::new(T0).on(&db.store);
        let body = RequestHash::of(b"body");
        assert_eq!(admit(&store, "n1", "r1", &body).await.unwrap(), Begun::New);
        store
            .complete_request(SENDER, "r1", &body, "the stored answer")
            .await
            .unwrap();
        assert_eq!(
            admit(&store, "n2", "r1", &body).await.unwrap(),
            Begun::Stored("the stored answer".into())
        );
        // The repeat's nonce was spent, as accept_message would have spent it.
        assert_eq!(rows(db).await, (2, 1));
        assert!(matches!(
            admit(&store, "n2", "r1", &body).await,
            Err(Error::Replayed { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn the_same_request_id_with_another_body_is_a_duplicate() {
    each(async |db| {
        let store = ManualClock::new(T0).on(&db.store);
        let body = RequestHash::of(b"body");
        let other = RequestHash::of(b"another body");
        assert_eq!(admit(&store, "n1", "r1", &body).await.unwrap(), Begun::New);
        // In progress or completed, another body under the id is a duplicate.
        let err = admit(&store, "n2", "r1", &other).await.unwrap_err();
        assert!(
            matches!(err, Error::Duplicate { ref request_id, .. } if request_id == "r1"),
            "{err:?}"
        );
        store
            .complete_request(SENDER, "r1", &body, "answer")
            .await
            .unwrap();
        assert!(matches!(
            admit(&store, "n3", "r1", &other).await,
            Err(Error::Duplicate { .. })
        ));
        // The claim is untouched; both nonces are spent.
        assert_eq!(rows(db).await, (3, 1));
        assert_eq!(
            admit(&store, "n4", "r1", &body).await.unwrap(),
            Begun::Stored("answer".into())
        );
    })
    .await;
}

#[tokio::test]
async fn a_claim_in_progress_is_refused_and_may_be_released_and_claimed_again() {
    each(async |db| {
        let store = ManualClock::new(T0).on(&db.store);
        let body = RequestHash::of(b"body");
        assert_eq!(admit(&store, "n1", "r1", &body).await.unwrap(), Begun::New);
        let err = admit(&store, "n2", "r1", &body).await.unwrap_err();
        assert!(
            matches!(err, Error::InProgress { ref request_id, .. } if request_id == "r1"),
            "{err:?}"
        );
        assert_eq!(rows(db).await, (2, 1));
        // The orphan release: the claim goes, and is claimed again without a new nonce.
        store.abandon_request(SENDER, "r1", &body).await.unwrap();
        assert_eq!(rows(db).await, (2, 0));
        assert_eq!(
            store.begin_request(SENDER, "r1", &body).await.unwrap(),
            Begun::New
        );
    })
    .await;
}

#[tokio::test]
async fn a_failure_leaves_neither_the_nonce_nor_the_claim() {
    for point in ["admit.after_nonce", "admit.before_commit"] {
        each(async |db| {
            let store = ManualClock::new(T0).on(&db.store);
            let body = RequestHash::of(b"body");
            db.store.danger_inject_fault(point, Fault::Fail);
            let err = admit(&store, "n1", "r1", &body).await.unwrap_err();
            assert!(
                matches!(err, Error::InjectedFault { .. }),
                "{point}: {err:?}"
            );
            assert_eq!(rows(db).await, (0, 0), "{point}");
            // The client's retry of the same message goes through.
            assert_eq!(admit(&store, "n1", "r1", &body).await.unwrap(), Begun::New);
            assert_eq!(rows(db).await, (1, 1));
        })
        .await;
    }
}

#[tokio::test]
async fn concurrent_admissions_claim_once() {
    each(async |db| {
        let store = ManualClock::new(T0).on(&db.store);
        let body = RequestHash::of(b"same body");
        let mut tasks = Vec::new();
        for i in 0..10 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                // Five distinct nonces, each sent twice; one request id.
                let nonce = format!("n{}", i % 5);
                admit(&store, &nonce, "race", &body).await
            }));
        }
        let (mut new, mut in_progress, mut replayed) = (0, 0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(Begun::New) => new += 1,
                Err(Error::InProgress { .. }) => in_progress += 1,
                Err(Error::Replayed { .. }) => replayed += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((new, in_progress, replayed), (1, 4, 5));
        assert_eq!(rows(db).await, (5, 1));
    })
    .await;
}
