//! The SE registry and card instances.

use std::collections::BTreeMap;

use ykt_store::{CardState, Entity, Error, NewCard, NewSe, SeState};

use crate::support::{CARD_NO, SEID, each};

fn new_se() -> NewSe {
    NewSe {
        seid: SEID.into(),
        cplc: hex::decode("4790504000000000").unwrap(),
        profile: "oem1-se-v2".into(),
    }
}

#[tokio::test]
async fn ses_register_move_and_are_not_found() {
    each(async |db| {
        let store = &db.store;
        let err = store.se("nope").await.unwrap_err();
        assert!(
            matches!(err, Error::NotFound { what: Entity::Se, ref id } if id == "nope"),
            "{err:?}"
        );

        let se = store.register_se(&new_se()).await.unwrap();
        assert_eq!((se.state, se.version), (SeState::Registered, 1));
        assert_eq!(se.cplc, new_se().cplc);
        assert!(matches!(
            store.register_se(&new_se()).await,
            Err(Error::AlreadyExists {
                what: Entity::Se,
                ..
            })
        ));

        let se = store
            .move_se(SEID, SeState::Registered, SeState::IsdKeysBound)
            .await
            .unwrap();
        assert_eq!((se.state, se.version), (SeState::IsdKeysBound, 2));
        // From a state it is no longer in.
        assert!(matches!(
            store
                .move_se(SEID, SeState::Registered, SeState::IsdKeysBound)
                .await,
            Err(Error::Conflict {
                what: Entity::Se,
                ..
            })
        ));
        // Not a life-cycle edge.
        assert!(matches!(
            store
                .move_se(SEID, SeState::IsdKeysBound, SeState::Lost)
                .await,
            Err(Error::IllegalTransition { .. })
        ));
        assert!(matches!(
            store
                .move_se("nope", SeState::Registered, SeState::IsdKeysBound)
                .await,
            Err(Error::NotFound {
                what: Entity::Se,
                ..
            })
        ));
        store
            .move_se(SEID, SeState::IsdKeysBound, SeState::Active)
            .await
            .unwrap();
        store
            .move_se(SEID, SeState::Active, SeState::Lost)
            .await
            .unwrap();
        let se = store
            .move_se(SEID, SeState::Lost, SeState::Terminated)
            .await
            .unwrap();
        assert_eq!(se.version, 5);
    })
    .await;
}

#[tokio::test]
async fn card_instances_follow_the_life_cycle() {
    each(async |db| {
        let store = &db.store;
        let card = NewCard {
            seid: SEID.into(),
            card_no: CARD_NO.into(),
            ssd_aid: Some(hex::decode("A000000632010105FF").unwrap()),
            app_aid: None,
            key_versions: BTreeMap::from([("ssd".to_string(), 0x30)]),
        };
        assert!(matches!(
            store.create_card(&card).await,
            Err(Error::NotFound {
                what: Entity::Se,
                ..
            })
        ));
        assert!(matches!(
            store.card(SEID, CARD_NO).await,
            Err(Error::NotFound {
                what: Entity::CardInstance,
                ..
            })
        ));
        store.register_se(&new_se()).await.unwrap();
        let created = store.create_card(&card).await.unwrap();
        assert_eq!(created.state, Initial);
        assert_eq!(created.ssd_aid, card.ssd_aid);
        assert_eq!(created.key_versions, card.key_versions);
        assert!(matches!(
            store.create_card(&card).await,
            Err(Error::AlreadyExists {
                what: Entity::CardInstance,
                ..
            })
        ));

        use CardState::*;
        let path = [
            (Initial, SsdCreating),
            (SsdCreating, FailedSsdCreating),
            (FailedSsdCreating, SsdCreating),
            (SsdCreating, SsdReady),
            (SsdReady, AppLoading),
            (AppLoading, AppInstalled),
            (AppInstalled, Personalising),
            (Personalising, Active),
            (Active, Locked),
            (Locked, Active),
            (Active, Refunding),
            (Refunding, Deleting),
            (Deleting, Deleted),
        ];
        for (from, to) in path {
            let moved = store.move_card(SEID, CARD_NO, from, to).await.unwrap();
            assert_eq!(moved.state, to);
        }
        assert!(matches!(
            store.move_card(SEID, CARD_NO, Deleted, Active).await,
            Err(Error::IllegalTransition { .. })
        ));
        assert!(matches!(
            store.move_card(SEID, CARD_NO, Active, Locked).await,
            Err(Error::Conflict { ref found, .. }) if found == "DELETED"
        ));
        assert!(matches!(
            store.move_card(SEID, "other", Active, Locked).await,
            Err(Error::NotFound {
                what: Entity::CardInstance,
                ..
            })
        ));

        let card = store
            .set_key_version(SEID, CARD_NO, "app", 0x01)
            .await
            .unwrap();
        let card2 = store
            .set_key_version(SEID, CARD_NO, "ssd", 0x31)
            .await
            .unwrap();
        assert_eq!(card2.version, card.version + 1);
        assert_eq!(
            card2.key_versions,
            BTreeMap::from([("app".to_string(), 1), ("ssd".to_string(), 0x31)])
        );
        let card = store
            .set_card_aids(
                SEID,
                CARD_NO,
                None,
                Some(&hex::decode("A000000632010106").unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(
            card.ssd_aid,
            Some(hex::decode("A000000632010105FF").unwrap())
        );
        assert_eq!(card.app_aid, Some(hex::decode("A000000632010106").unwrap()));
        assert!(matches!(
            store.set_key_version(SEID, "other", "app", 1).await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(store.cards_on_se(SEID).await.unwrap(), vec![card]);
    })
    .await;
}

#[test]
fn life_cycles_match_the_brief() {
    use CardState::*;
    assert!(Initial.allows(TransferIn) && TransferIn.allows(SsdCreating));
    assert!(Active.allows(TransferOut) && TransferOut.allows(Deleted));
    assert!(!Initial.allows(Active) && !Deleted.allows(Initial) && !Locked.allows(Deleted));
    for state in CardState::ALL {
        if let Some(failed) = state.failed() {
            assert!(state.allows(failed) && failed.allows(*state));
        }
    }
    assert!(!SeState::Terminated.allows(SeState::Terminated));
    assert!(SeState::Registered.allows(SeState::Terminated));
}
