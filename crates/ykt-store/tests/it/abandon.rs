//! An abandoned money flow's writes (`Store::commit_step`): a paid order claimed by the flow is
//! cancelled with its refund in the same transaction, an escrow the flow claimed is released
//! for a new claim; each only under its guard, and a refused move writes nothing.

use std::collections::BTreeMap;

use serde_json::json;
use ykt_store::{
    AuditEvent, AuditKind, CancelRefund, CardState, CardWrite, Entity, Error, EscrowWrite,
    FlowStatus, FlowUpdate, FlowWrite, NewFlow, NewTopup, SeState, SeWrite, StepCommit, Store,
    TopupState, TopupUpdate, TopupWrite,
};

use crate::support::each;

const SE: &str = "0A0B0C0D0E0F10111213";
const CARD: &str = "31041000000000000009";

fn update(step: &str, status: FlowStatus) -> FlowUpdate {
    FlowUpdate {
        step: step.into(),
        status,
        state: json!({ "step": step }),
        script: None,
    }
}

fn audit(detail: &str) -> AuditEvent {
    AuditEvent {
        kind: AuditKind::OperatorAction,
        actor: "op-1".into(),
        subject: "flow".into(),
        detail: detail.into(),
    }
}

fn create(id: &str) -> StepCommit {
    StepCommit {
        flow: FlowWrite::Create {
            flow: NewFlow {
                id: id.into(),
                kind: "top_up".into(),
                seid: Some(SE.into()),
                step: "START".into(),
                state: json!({}),
            },
            device_id: "dev-1".into(),
            update: update("FAILED_LOAD", FlowStatus::Running),
        },
        se: None,
        cards: vec![],
        topup: None,
        refunds: vec![],
        escrows: vec![],
        audit: vec![],
        request: None,
    }
}

fn abandon(id: &str, from: u64) -> StepCommit {
    StepCommit {
        flow: FlowWrite::Advance {
            id: id.into(),
            from_version: from,
            update: update("ABANDONED", FlowStatus::Failed),
            seid: None,
        },
        se: None,
        cards: vec![],
        topup: None,
        refunds: vec![],
        escrows: vec![],
        audit: vec![audit(&format!("{id} abandoned"))],
        request: None,
    }
}

fn cancel(order_id: &str) -> Option<TopupWrite> {
    Some(TopupWrite {
        order_id: order_id.into(),
        state: Some(TopupState::Cancelled),
        refund: Some(CancelRefund {
            refund_id: format!("cancel/{order_id}"),
            account: "payer".into(),
        }),
        ..TopupWrite::default()
    })
}

fn claim(id: &str, order_id: &str) -> StepCommit {
    let mut c = create(id);
    c.topup = Some(TopupWrite {
        order_id: order_id.into(),
        claim: true,
        ..TopupWrite::default()
    });
    c
}

async fn setup(store: &Store, orders: &[&str]) {
    let mut open = create("open");
    open.se = Some(SeWrite {
        seid: SE.into(),
        cplc: vec![],
        profile: String::new(),
        state: SeState::Active,
    });
    open.cards = vec![CardWrite {
        seid: SE.into(),
        card_no: CARD.into(),
        state: CardState::Active,
        ssd_aid: None,
        app_aid: None,
        management: None,
        device_id: "dev-1".into(),
        hold: false,
        key_versions: BTreeMap::new(),
    }];
    store.commit_step(&open).await.unwrap();
    for o in orders {
        store
            .create_device_topup(
                &NewTopup {
                    order_id: (*o).into(),
                    pay_order_id: (*o).into(),
                    seid: SE.into(),
                    card_no: CARD.into(),
                    amount_fen: 800,
                },
                "dev-1",
                "99",
            )
            .await
            .unwrap();
        store.pay_topup(o).await.unwrap();
    }
}

fn is_conflict(e: &Error, entity: Entity) -> bool {
    matches!(e, Error::Conflict { what, .. } if *what == entity)
}

async fn audit_rows(store: &Store) -> u64 {
    store.audit_head().await.unwrap().0
}

#[tokio::test]
async fn a_paid_order_claimed_by_the_flow_is_cancelled_with_its_refund() {
    each(async |db| {
        let store = &db.store;
        setup(store, &["o1"]).await;
        store.commit_step(&claim("t1", "o1")).await.unwrap();
        store.commit_step(&create("t2")).await.unwrap();
        let rows = audit_rows(store).await;

        // Another flow may not cancel it: nothing written, its flow still running.
        let mut wrong = abandon("t2", 2);
        wrong.topup = cancel("o1");
        let e = store.commit_step(&wrong).await.unwrap_err();
        assert!(is_conflict(&e, Entity::TopupOrder), "{e:?}");
        assert_eq!(store.flow("t2").await.unwrap().status, FlowStatus::Running);

        // A cancel without its refund is refused.
        let mut bare = abandon("t1", 2);
        bare.topup = cancel("o1");
        bare.topup.as_mut().unwrap().refund = None;
        let e = store.commit_step(&bare).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::MissingField {
                    field: "refund",
                    ..
                }
            ),
            "{e:?}"
        );
        // Nor does the order move outside a flow's move.
        let e = store
            .move_topup(
                "o1",
                TopupState::Paid,
                TopupState::Cancelled,
                &TopupUpdate::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::IllegalTransition { .. }), "{e:?}");
        assert_eq!(store.topup("o1").await.unwrap().state, TopupState::Paid);
        assert!(store.refund("cancel/o1").await.unwrap().is_none());
        assert_eq!(audit_rows(store).await, rows);

        let mut good = abandon("t1", 2);
        good.topup = cancel("o1");
        let flow = store.commit_step(&good).await.unwrap();
        assert_eq!((flow.status, flow.version), (FlowStatus::Failed, 3));
        let o = store.topup("o1").await.unwrap();
        assert_eq!(
            (o.state, o.flow_id.as_deref()),
            (TopupState::Cancelled, Some("t1"))
        );
        let r = store.refund("cancel/o1").await.unwrap().unwrap();
        assert_eq!(
            (r.card_no.as_str(), r.amount_fen, r.account.as_str()),
            (CARD, 800, "payer")
        );
        assert_eq!(audit_rows(store).await, rows + 1);

        // The same abandon again: the flow has moved, nothing is written twice.
        let e = store.commit_step(&good).await.unwrap_err();
        assert!(is_conflict(&e, Entity::Flow), "{e:?}");
        assert_eq!(store.counts().await.unwrap().refunds, 1);
        assert_eq!(audit_rows(store).await, rows + 1);
    })
    .await;
}

#[tokio::test]
async fn an_order_past_paid_is_not_cancelled() {
    each(async |db| {
        let store = &db.store;
        setup(store, &["o2"]).await;
        store.commit_step(&claim("t3", "o2")).await.unwrap();
        let mut load = abandon("t3", 2);
        load.flow = FlowWrite::Advance {
            id: "t3".into(),
            from_version: 2,
            update: update("LOAD", FlowStatus::Running),
            seid: None,
        };
        load.topup = Some(TopupWrite {
            order_id: "o2".into(),
            state: Some(TopupState::LoadRequested),
            online_counter: Some(4),
            ..TopupWrite::default()
        });
        store.commit_step(&load).await.unwrap();
        let mut c = abandon("t3", 3);
        c.topup = cancel("o2");
        let e = store.commit_step(&c).await.unwrap_err();
        assert!(
            matches!(e, Error::IllegalTransition { .. } | Error::Conflict { .. }),
            "{e:?}"
        );
        assert_eq!(
            store.topup("o2").await.unwrap().state,
            TopupState::LoadRequested
        );
        assert!(store.refund("cancel/o2").await.unwrap().is_none());
        assert_eq!(store.flow("t3").await.unwrap().status, FlowStatus::Running);
    })
    .await;
}

#[tokio::test]
async fn an_escrow_is_released_only_by_its_claimant_and_only_unsettled() {
    each(async |db| {
        let store = &db.store;
        setup(store, &[]).await;
        let mut hold = create("out");
        hold.escrows = vec![EscrowWrite::Hold {
            transfer_id: "x1".into(),
            card_no: CARD.into(),
            amount_fen: 900,
        }];
        store.commit_step(&hold).await.unwrap();
        let claim_x1 = |id: &str| {
            let mut c = create(id);
            c.escrows = vec![EscrowWrite::Claim {
                transfer_id: "x1".into(),
            }];
            c
        };
        let release = |id: &str, from: u64| {
            let mut c = abandon(id, from);
            c.escrows = vec![EscrowWrite::Release {
                transfer_id: "x1".into(),
            }];
            c
        };
        store.commit_step(&claim_x1("in-1")).await.unwrap();
        store.commit_step(&create("in-2")).await.unwrap();
        let rows = audit_rows(store).await;

        // Not its claimant: refused, nothing written.
        let e = store.commit_step(&release("in-2", 2)).await.unwrap_err();
        assert!(is_conflict(&e, Entity::Escrow), "{e:?}");
        assert_eq!(
            store
                .escrow("x1")
                .await
                .unwrap()
                .unwrap()
                .claimed_by
                .as_deref(),
            Some("in-1")
        );
        assert_eq!(
            store.flow("in-2").await.unwrap().status,
            FlowStatus::Running
        );
        assert_eq!(audit_rows(store).await, rows);

        let flow = store.commit_step(&release("in-1", 2)).await.unwrap();
        assert_eq!(flow.status, FlowStatus::Failed);
        let e = store.escrow("x1").await.unwrap().unwrap();
        assert_eq!((e.claimed_by, e.settled, e.amount_fen), (None, false, 900));

        // A new transfer in claims it, settles it; a settled escrow is not released.
        store.commit_step(&claim_x1("in-3")).await.unwrap();
        let mut settle = abandon("in-3", 2);
        settle.flow = FlowWrite::Advance {
            id: "in-3".into(),
            from_version: 2,
            update: update("LOADED", FlowStatus::Running),
            seid: None,
        };
        settle.escrows = vec![EscrowWrite::Settle {
            transfer_id: "x1".into(),
        }];
        store.commit_step(&settle).await.unwrap();
        let e = store.commit_step(&release("in-3", 3)).await.unwrap_err();
        assert!(is_conflict(&e, Entity::Escrow), "{e:?}");
        let e = store.escrow("x1").await.unwrap().unwrap();
        assert_eq!((e.claimed_by.as_deref(), e.settled), (Some("in-3"), true));
        assert_eq!(
            store.flow("in-3").await.unwrap().status,
            FlowStatus::Running
        );
    })
    .await;
}

#[tokio::test]
async fn a_refused_release_undoes_the_cancel_in_the_same_move() {
    each(async |db| {
        let store = &db.store;
        setup(store, &["o3"]).await;
        store.commit_step(&claim("t4", "o3")).await.unwrap();
        let rows = audit_rows(store).await;
        // The cancel is valid, the release of an escrow it never claimed is not.
        let mut both = abandon("t4", 2);
        both.topup = cancel("o3");
        both.escrows = vec![EscrowWrite::Release {
            transfer_id: "nope".into(),
        }];
        let e = store.commit_step(&both).await.unwrap_err();
        assert!(is_conflict(&e, Entity::Escrow), "{e:?}");
        let o = store.topup("o3").await.unwrap();
        assert_eq!(o.state, TopupState::Paid);
        assert!(store.refund("cancel/o3").await.unwrap().is_none());
        let f = store.flow("t4").await.unwrap();
        assert_eq!((f.status, f.version), (FlowStatus::Running, 2));
        assert_eq!(audit_rows(store).await, rows);
    })
    .await;
}
