//! Top-up orders: exactly once per order, per payment and per card online counter.

use ykt_store::{Entity, Error, NewTopup, TopupState, TopupUpdate};

use crate::support::{CARD_NO, SEID, each, se_with_card};

fn order(id: &str, pay: &str) -> NewTopup {
    NewTopup {
        order_id: id.into(),
        pay_order_id: pay.into(),
        seid: SEID.into(),
        card_no: CARD_NO.into(),
        amount_fen: 5000,
    }
}

fn counter(n: u16) -> TopupUpdate {
    TopupUpdate {
        online_counter: Some(n),
        tac: None,
    }
}

#[tokio::test]
async fn orders_are_created_once() {
    each(async |db| {
        let store = &db.store;
        assert!(matches!(
            store.create_topup(&order("o1", "p1")).await,
            Err(Error::NotFound {
                what: Entity::CardInstance,
                ..
            })
        ));
        assert!(matches!(
            store.topup("o1").await,
            Err(Error::NotFound {
                what: Entity::TopupOrder,
                ..
            })
        ));
        se_with_card(store).await;
        let created = store.create_topup(&order("o1", "p1")).await.unwrap();
        assert_eq!(
            (created.state, created.amount_fen, created.version),
            (TopupState::Created, 5000, 1)
        );
        // The same order again: the stored one.
        assert_eq!(
            store.create_topup(&order("o1", "p1")).await.unwrap(),
            created
        );
        // Another order under the same id, or paid by the same payment.
        let mut changed = order("o1", "p1");
        changed.amount_fen = 9000;
        assert!(matches!(
            store.create_topup(&changed).await,
            Err(Error::AlreadyExists { .. })
        ));
        assert!(matches!(
            store.create_topup(&order("o2", "p1")).await,
            Err(Error::AlreadyExists { .. })
        ));
        let mut zero = order("o3", "p3");
        zero.amount_fen = 0;
        assert!(matches!(
            store.create_topup(&zero).await,
            Err(Error::Database(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn a_mac2_is_issued_once_per_online_counter() {
    each(async |db| {
        let store = &db.store;
        se_with_card(store).await;
        store.create_topup(&order("o1", "p1")).await.unwrap();
        store.create_topup(&order("o2", "p2")).await.unwrap();
        let none = TopupUpdate::default();
        for id in ["o1", "o2"] {
            store
                .move_topup(id, TopupState::Created, TopupState::Initialised, &none)
                .await
                .unwrap();
        }
        assert!(matches!(
            store
                .move_topup("o1", TopupState::Initialised, TopupState::Mac2Issued, &none)
                .await,
            Err(Error::MissingField {
                field: "online_counter",
                ..
            })
        ));

        // Two workers race to issue the MAC2 of o1: one wins.
        let c7 = counter(7);
        let (a, b) = tokio::join!(
            store.move_topup("o1", TopupState::Initialised, TopupState::Mac2Issued, &c7),
            store.move_topup("o1", TopupState::Initialised, TopupState::Mac2Issued, &c7),
        );
        assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
        assert!(matches!(a.err().or(b.err()), Some(Error::Conflict { .. })));

        // Another order may not get a MAC2 for the same counter of the same card.
        assert!(matches!(
            store
                .move_topup(
                    "o2",
                    TopupState::Initialised,
                    TopupState::Mac2Issued,
                    &counter(7)
                )
                .await,
            Err(Error::AlreadyExists {
                what: Entity::TopupOrder,
                ..
            })
        ));
        assert_eq!(
            store.topup("o2").await.unwrap().state,
            TopupState::Initialised
        );
        store
            .move_topup(
                "o2",
                TopupState::Initialised,
                TopupState::Mac2Issued,
                &counter(8),
            )
            .await
            .unwrap();

        assert!(matches!(
            store
                .move_topup("o1", TopupState::Mac2Issued, TopupState::Completed, &none)
                .await,
            Err(Error::MissingField { field: "tac", .. })
        ));
        let tac = TopupUpdate {
            online_counter: None,
            tac: Some(vec![0xDE, 0xAD, 0xBE, 0xEF]),
        };
        let done = store
            .move_topup("o1", TopupState::Mac2Issued, TopupState::Completed, &tac)
            .await
            .unwrap();
        assert_eq!(
            (done.online_counter, done.tac.as_deref()),
            (Some(7), Some(&[0xDE, 0xAD, 0xBE, 0xEF][..]))
        );
        assert!(matches!(
            store
                .move_topup("o1", TopupState::Completed, TopupState::Cancelled, &none)
                .await,
            Err(Error::IllegalTransition { .. })
        ));
        // No TAC for o2: unconfirmed until the card's counters tell.
        store
            .move_topup("o2", TopupState::Mac2Issued, TopupState::Unconfirmed, &none)
            .await
            .unwrap();
        let o2 = store
            .move_topup("o2", TopupState::Unconfirmed, TopupState::Cancelled, &none)
            .await
            .unwrap();
        assert_eq!((o2.state, o2.version), (TopupState::Cancelled, 5));
        assert!(matches!(
            store
                .move_topup("nope", TopupState::Created, TopupState::Initialised, &none)
                .await,
            Err(Error::NotFound { .. })
        ));
    })
    .await;
}
