//! One flow move and its effects in one transaction (`Store::commit_step`): the flow's
//! compare-and-set, card instances held by one flow, orders claimed once, escrows claimed
//! once; a refused move writes nothing (not even its audit records). Devices and counters.

use std::collections::BTreeMap;

use serde_json::json;
use ykt_store::{
    AuditEvent, AuditKind, Begun, CardState, CardWrite, Entity, Error, EscrowWrite, FlowStatus,
    FlowUpdate, FlowWrite, NewFlow, NewTopup, RefundWrite, RequestCompletion, RequestHash, SeState,
    SeWrite, StepCommit, Store, TopupState, TopupWrite,
};

use crate::support::each;

const SE: &str = "0A0B0C0D0E0F10111213";
const CARD: &str = "31041000000000000001";

fn update(step: &str, status: FlowStatus) -> FlowUpdate {
    FlowUpdate {
        step: step.into(),
        status,
        state: json!({ "step": step }),
        script: None,
    }
}

fn card(state: CardState, hold: bool) -> CardWrite {
    CardWrite {
        seid: SE.into(),
        card_no: CARD.into(),
        state,
        ssd_aid: Some(vec![0xA0, 0x01]),
        app_aid: None,
        management: Some("AUTHORIZED".into()),
        device_id: "dev-1".into(),
        hold,
        key_versions: BTreeMap::from([("ssd".to_string(), 0x31)]),
    }
}

fn audit(detail: &str) -> AuditEvent {
    AuditEvent {
        kind: AuditKind::StateChange,
        actor: "test".into(),
        subject: "flow".into(),
        detail: detail.into(),
    }
}

fn create(id: &str, cards: Vec<CardWrite>) -> StepCommit {
    StepCommit {
        flow: FlowWrite::Create {
            flow: NewFlow {
                id: id.into(),
                kind: "open_card".into(),
                seid: None,
                step: "REGISTER_SE".into(),
                state: json!({}),
            },
            device_id: "dev-1".into(),
            update: update("CREATE_SSD", FlowStatus::Running),
        },
        se: Some(SeWrite {
            seid: SE.into(),
            cplc: vec![],
            profile: String::new(),
            state: SeState::IsdKeysBound,
        }),
        cards,
        topup: None,
        refunds: vec![],
        escrows: vec![],
        audit: vec![audit(&format!("{id} created"))],
        request: None,
    }
}

fn advance(id: &str, from: u64, cards: Vec<CardWrite>) -> StepCommit {
    StepCommit {
        flow: FlowWrite::Advance {
            id: id.into(),
            from_version: from,
            update: update("NEXT", FlowStatus::Running),
            seid: Some(SE.into()),
        },
        se: None,
        cards,
        topup: None,
        refunds: vec![],
        escrows: vec![],
        audit: vec![audit(&format!("{id} moved from {from}"))],
        request: None,
    }
}

async fn audit_rows(store: &Store) -> u64 {
    store.audit_head().await.unwrap().0
}

#[tokio::test]
async fn a_move_is_all_or_nothing() {
    each(async |db| {
        let store = &db.store;
        let flow = store
            .commit_step(&create("f1", vec![card(CardState::SsdCreating, true)]))
            .await
            .unwrap();
        assert_eq!((flow.version, flow.step.as_str()), (2, "CREATE_SSD"));
        assert_eq!(flow.device_id.as_deref(), Some("dev-1"));
        assert_eq!(store.se(SE).await.unwrap().state, SeState::IsdKeysBound);
        let c = store.card(SE, CARD).await.unwrap();
        assert_eq!(
            (c.state, c.flow_id.as_deref()),
            (CardState::SsdCreating, Some("f1"))
        );
        assert_eq!(c.key_versions.get("ssd"), Some(&0x31));
        assert_eq!(audit_rows(store).await, 1);

        // A stale version: nothing of the move is written.
        let e = store
            .commit_step(&advance("f1", 1, vec![card(CardState::SsdReady, true)]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Conflict {
                    what: Entity::Flow,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            store.card(SE, CARD).await.unwrap().state,
            CardState::SsdCreating
        );
        assert_eq!(audit_rows(store).await, 1);

        // Another flow may not move the held card, and its own move is undone with it.
        store.commit_step(&create("f2", vec![])).await.unwrap();
        let e = store
            .commit_step(&advance("f2", 2, vec![card(CardState::Deleted, false)]))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Conflict {
                    what: Entity::CardInstance,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(store.flow("f2").await.unwrap().version, 2);
        assert_eq!(audit_rows(store).await, 2);

        // The holder moves it and lets it go; then the other may.
        let moved = store
            .commit_step(&advance("f1", 2, vec![card(CardState::Active, false)]))
            .await
            .unwrap();
        assert_eq!((moved.version, moved.seid.as_deref()), (3, Some(SE)));
        let c = store.card(SE, CARD).await.unwrap();
        assert_eq!((c.state, c.flow_id), (CardState::Active, None));
        store
            .commit_step(&advance("f2", 2, vec![card(CardState::Locked, true)]))
            .await
            .unwrap();
        assert_eq!(
            store.card(SE, CARD).await.unwrap().flow_id.as_deref(),
            Some("f2")
        );
        assert_eq!(audit_rows(store).await, 4);
        assert!(matches!(
            store.verify_chain().await.unwrap(),
            ykt_store::ChainStatus::Intact { rows: 4, .. }
        ));

        // An SE never moves back.
        let mut back = create("f3", vec![]);
        back.se.as_mut().unwrap().state = SeState::Registered;
        store.commit_step(&back).await.unwrap();
        assert_eq!(store.se(SE).await.unwrap().state, SeState::IsdKeysBound);
        assert!(matches!(
            store.commit_step(&create("f3", vec![])).await,
            Err(Error::AlreadyExists {
                what: Entity::Flow,
                ..
            })
        ));
    })
    .await;
}

fn completion(request_id: &str, body: &[u8], response: &str) -> RequestCompletion {
    RequestCompletion {
        scope: "dev-1".into(),
        request_id: request_id.into(),
        hash: RequestHash::of(body),
        response: response.into(),
    }
}

#[tokio::test]
async fn a_move_stores_its_request_answer_in_the_same_transaction() {
    each(async |db| {
        let store = &db.store;
        let hash = RequestHash::of(b"step 1");
        assert_eq!(
            store.begin_request("dev-1", "r1", &hash).await.unwrap(),
            Begun::New
        );
        let mut step = create("f1", vec![]);
        step.request = Some(completion("r1", b"step 1", "answer 1"));
        store.commit_step(&step).await.unwrap();
        // A repeat gets the answer stored with the move; completing it again the same way
        // changes nothing.
        assert_eq!(
            store.begin_request("dev-1", "r1", &hash).await.unwrap(),
            Begun::Stored("answer 1".into())
        );
        store
            .complete_request("dev-1", "r1", &hash, "answer 1")
            .await
            .unwrap();

        // A claim completed with another answer: the whole move is refused, nothing written.
        let mut again = advance("f1", 2, vec![card(CardState::SsdCreating, true)]);
        again.request = Some(completion("r1", b"step 1", "answer 2"));
        let e = store.commit_step(&again).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Conflict {
                    what: Entity::Request,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(store.flow("f1").await.unwrap().version, 2);
        assert!(store.card(SE, CARD).await.is_err());
        assert_eq!(audit_rows(store).await, 1);

        // Another body under the claimed id, or no claim at all: refused the same way.
        again.request = Some(completion("r1", b"another body", "answer 2"));
        assert!(matches!(
            store.commit_step(&again).await,
            Err(Error::Duplicate { .. })
        ));
        again.request = Some(completion("never-claimed", b"x", "answer"));
        assert!(matches!(
            store.commit_step(&again).await,
            Err(Error::NotFound {
                what: Entity::Request,
                ..
            })
        ));
        assert_eq!(store.flow("f1").await.unwrap().version, 2);
        assert_eq!(audit_rows(store).await, 1);

        // Without a completion the move goes on as before.
        again.request = None;
        assert_eq!(store.commit_step(&again).await.unwrap().version, 3);
    })
    .await;
}

#[tokio::test]
async fn an_order_is_claimed_by_one_flow_once_paid() {
    each(async |db| {
        let store = &db.store;
        store
            .commit_step(&create("open", vec![card(CardState::Active, false)]))
            .await
            .unwrap();
        let order = store
            .create_device_topup(
                &NewTopup {
                    order_id: "o1".into(),
                    pay_order_id: "o1".into(),
                    seid: SE.into(),
                    card_no: CARD.into(),
                    amount_fen: 500,
                },
                "dev-1",
                "99",
            )
            .await
            .unwrap();
        assert_eq!(order.state, TopupState::Created);
        assert_eq!(
            (order.device_id.as_deref(), order.pay_channel.as_deref()),
            (Some("dev-1"), Some("99"))
        );
        let claim = |id: &str| {
            let mut c = create(id, vec![]);
            c.topup = Some(TopupWrite {
                order_id: "o1".into(),
                claim: true,
                ..TopupWrite::default()
            });
            c
        };
        // Not paid: no claim, and no flow either.
        let e = store.commit_step(&claim("t1")).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Conflict {
                    what: Entity::TopupOrder,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(store.flow("t1").await.is_err());
        assert_eq!(store.pay_topup("o1").await.unwrap().state, TopupState::Paid);
        assert_eq!(store.pay_topup("o1").await.unwrap().state, TopupState::Paid);
        store.commit_step(&claim("t1")).await.unwrap();
        let e = store.commit_step(&claim("t2")).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Conflict {
                    what: Entity::TopupOrder,
                    ..
                }
            ),
            "{e:?}"
        );
        // Only the claiming flow moves it on.
        let mut load = advance("t1", 2, vec![]);
        load.topup = Some(TopupWrite {
            order_id: "o1".into(),
            state: Some(TopupState::LoadRequested),
            online_counter: Some(3),
            ..TopupWrite::default()
        });
        store.commit_step(&load).await.unwrap();
        let mut done = advance("t1", 3, vec![]);
        done.topup = Some(TopupWrite {
            order_id: "o1".into(),
            state: Some(TopupState::Loaded),
            tac: Some(vec![1, 2, 3, 4]),
            new_balance: Some(500),
            ..TopupWrite::default()
        });
        store.commit_step(&done).await.unwrap();
        let o = store.topup("o1").await.unwrap();
        assert_eq!(
            (
                o.state,
                o.flow_id.as_deref(),
                o.online_counter,
                o.new_balance
            ),
            (TopupState::Loaded, Some("t1"), Some(3), Some(500))
        );
        assert_eq!(o.tac.as_deref(), Some(&[1u8, 2, 3, 4][..]));
        assert_eq!(store.topups_of_card(SE, CARD).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn refunds_and_escrows_once_by_id() {
    each(async |db| {
        let store = &db.store;
        let mut c = create("r1", vec![]);
        c.refunds = vec![RefundWrite {
            refund_id: "r1".into(),
            card_no: CARD.into(),
            amount_fen: 700,
            account: "acct".into(),
        }];
        c.escrows = vec![EscrowWrite::Hold {
            transfer_id: "x1".into(),
            card_no: CARD.into(),
            amount_fen: 700,
        }];
        store.commit_step(&c).await.unwrap();
        let mut again = advance("r1", 2, vec![]);
        again.refunds = c.refunds.clone();
        again.escrows = c.escrows.clone();
        store.commit_step(&again).await.unwrap();
        let r = store.refund("r1").await.unwrap().unwrap();
        assert_eq!((r.amount_fen, r.account.as_str()), (700, "acct"));
        assert_eq!(store.counts().await.unwrap().refunds, 1);
        let claim = |id: &str| {
            let mut c = create(id, vec![]);
            c.escrows = vec![EscrowWrite::Claim {
                transfer_id: "x1".into(),
            }];
            c
        };
        store.commit_step(&claim("in-1")).await.unwrap();
        let e = store.commit_step(&claim("in-2")).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Conflict {
                    what: Entity::Escrow,
                    ..
                }
            ),
            "{e:?}"
        );
        let mut settle = advance("in-1", 2, vec![]);
        settle.escrows = vec![EscrowWrite::Settle {
            transfer_id: "x1".into(),
        }];
        store.commit_step(&settle).await.unwrap();
        let e = store.escrow("x1").await.unwrap().unwrap();
        assert_eq!((e.settled, e.claimed_by.as_deref()), (true, Some("in-1")));
        assert!(store.escrow("x2").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn devices_and_counters() {
    each(async |db| {
        let store = &db.store;
        let d = store
            .enrol_device("dev-a", &[4, 1, 2], "phone")
            .await
            .unwrap();
        assert_eq!(
            (d.device_id.as_str(), d.public_key.as_slice()),
            ("dev-a", &[4u8, 1, 2][..])
        );
        // The same key keeps its first id; another key may not take a used id.
        assert_eq!(
            store
                .enrol_device("dev-b", &[4, 1, 2], "x")
                .await
                .unwrap()
                .device_id,
            "dev-a"
        );
        assert!(matches!(
            store.enrol_device("dev-a", &[4, 9, 9], "x").await,
            Err(Error::AlreadyExists {
                what: Entity::Device,
                ..
            })
        ));
        assert!(matches!(
            store.device("dev-b").await,
            Err(Error::NotFound {
                what: Entity::Device,
                ..
            })
        ));
        for expected in 1..=3 {
            assert_eq!(store.next_counter("card").await.unwrap(), expected);
        }
        assert_eq!(store.next_counter("other").await.unwrap(), 1);
        assert_eq!(store.counts().await.unwrap().devices, 1);
    })
    .await;
}
