//! The business flows of tsm-gp.md §7 as step lists over the engine of [`crate::flow`].
//!
//! | flow | steps |
//! |---|---|
//! | open card 申请开卡 | RegisterSe → CreateSsd → SsdFirstKeys → HandOverSsdKeys → RotateSsdKeys → LoadPurse → InstallPurse (→ MakeSelectable, DM) → PersonalisePurse → VerifyActive |
//! | top-up 申请支付 | RegisterSe → ConfirmPayment → InitializeLoad → CreditLoad |
//! | delete card 删除卡片 | RegisterSe → ProveBalance (must be 0) → DeletePurse → DeleteSsd |
//! | card return 退卡 | RegisterSe → ProveBalance → LockPurse → Refund → DeletePurse → DeleteSsd |
//! | transfer out 迁卡 | RegisterSe → ProveBalance → LockPurse → Escrow → DeletePurse → DeleteSsd |
//! | transfer in 迁卡 | open card → ReleaseEscrow → InitializeLoad → CreditLoad → SettleEscrow |
//! | lock / unlock | RegisterSe → LockPurse / UnlockPurse |
//! | status query 查询 | RegisterSe → QueryStatus |
//! | card-data query 查询 | RegisterSe → QueryCardData |

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::Error;
use crate::flow::{CardInstance, Flow, FlowKind, Parties, new_state};
use crate::model::{InstanceState, Management, PurseCardSpec, SeId};
use crate::payment::OrderRef;
use crate::steps::StepName as S;

fn open_card_steps(management: Management) -> Vec<S> {
    let mut steps = alloc::vec![
        S::RegisterSe,
        S::CreateSsd,
        S::SsdFirstKeys,
        S::HandOverSsdKeys,
        S::RotateSsdKeys,
        S::LoadPurse,
        S::InstallPurse,
    ];
    if management == Management::Delegated {
        steps.push(S::MakeSelectable);
    }
    steps.extend([S::PersonalisePurse, S::VerifyActive]);
    steps
}

fn for_instance(
    session_id: &str,
    kind: FlowKind,
    steps: Vec<S>,
    parties: Parties,
    instance: &CardInstance,
    allowed: &[InstanceState],
) -> Result<crate::flow::FlowState, Error> {
    if !allowed.contains(&instance.state) {
        return Err(Error::State);
    }
    let mut state = new_state(session_id, kind, steps, parties, instance.management);
    state.seid = Some(instance.seid);
    state.ssd_aid = instance.ssd_aid.clone();
    state.card_number = Some(instance.card_number);
    state.instance = instance.state;
    state.history = alloc::vec![instance.state];
    Ok(state)
}

impl Flow {
    /// 申请开卡 (tsm-gp.md §7): on the SE in the wallet, from registration to an ACTIVE purse
    /// with `card`'s number, the SSD managed as `management`.
    pub fn open_card(
        session_id: &str,
        parties: Parties,
        management: Management,
        card: PurseCardSpec,
    ) -> Flow {
        let mut state = new_state(
            session_id,
            FlowKind::OpenCard,
            open_card_steps(management),
            parties,
            management,
        );
        state.card = Some(card);
        state.card_number = Some(card.card_number);
        Flow::with_state(state)
    }

    /// 申请支付 / 充值 (tsm-gp.md §7): loads the paid `order` onto the ACTIVE `instance`.
    /// The caller claims the order in its [`crate::OrderBook`] first.
    pub fn top_up(
        session_id: &str,
        parties: Parties,
        instance: &CardInstance,
        order: OrderRef,
    ) -> Result<Flow, Error> {
        let mut state = for_instance(
            session_id,
            FlowKind::TopUp,
            alloc::vec![
                S::RegisterSe,
                S::ConfirmPayment,
                S::InitializeLoad,
                S::CreditLoad
            ],
            parties,
            instance,
            &[InstanceState::Active],
        )?;
        state.order = Some(order);
        Ok(Flow::with_state(state))
    }

    /// 删除卡片: deletes a purse with a zero balance, then its SSD.
    pub fn delete_card(
        session_id: &str,
        parties: Parties,
        instance: &CardInstance,
    ) -> Result<Flow, Error> {
        let mut steps = alloc::vec![S::RegisterSe, S::ProveBalance, S::DeletePurse];
        if crate::proposals::DELETE_SSD_WITH_CARD {
            steps.push(S::DeleteSsd);
        }
        Ok(Flow::with_state(for_instance(
            session_id,
            FlowKind::DeleteCard,
            steps,
            parties,
            instance,
            &[InstanceState::Active, InstanceState::Locked],
        )?))
    }

    /// 退卡: the balance proven by the card (MAC1), the purse locked, the balance refunded
    /// through the payment provider (refund id = `session_id`), the purse and SSD deleted.
    pub fn card_return(
        session_id: &str,
        parties: Parties,
        instance: &CardInstance,
    ) -> Result<Flow, Error> {
        let mut steps = alloc::vec![
            S::RegisterSe,
            S::ProveBalance,
            S::LockPurse,
            S::Refund,
            S::DeletePurse
        ];
        if crate::proposals::DELETE_SSD_WITH_CARD {
            steps.push(S::DeleteSsd);
        }
        Ok(Flow::with_state(for_instance(
            session_id,
            FlowKind::CardReturn,
            steps,
            parties,
            instance,
            &[InstanceState::Active],
        )?))
    }

    /// 迁卡, the old SE: balance proven and escrowed under `transfer_id`, purse locked and
    /// deleted, SSD deleted.
    pub fn transfer_out(
        session_id: &str,
        parties: Parties,
        instance: &CardInstance,
        transfer_id: &str,
    ) -> Result<Flow, Error> {
        let mut steps = alloc::vec![
            S::RegisterSe,
            S::ProveBalance,
            S::LockPurse,
            S::Escrow,
            S::DeletePurse
        ];
        if crate::proposals::DELETE_SSD_WITH_CARD {
            steps.push(S::DeleteSsd);
        }
        let mut state = for_instance(
            session_id,
            FlowKind::TransferOut,
            steps,
            parties,
            instance,
            &[InstanceState::Active],
        )?;
        state.transfer_id = Some(String::from(transfer_id));
        Ok(Flow::with_state(state))
    }

    /// 迁卡, the new SE: the card opened again with the same card number, then the balance
    /// escrowed under `transfer_id` loaded online and the escrow settled.
    pub fn transfer_in(
        session_id: &str,
        parties: Parties,
        management: Management,
        card: PurseCardSpec,
        transfer_id: &str,
    ) -> Flow {
        let mut steps = open_card_steps(management);
        steps.extend([
            S::ReleaseEscrow,
            S::InitializeLoad,
            S::CreditLoad,
            S::SettleEscrow,
        ]);
        let mut state = new_state(session_id, FlowKind::TransferIn, steps, parties, management);
        state.card = Some(card);
        state.card_number = Some(card.card_number);
        state.instance = InstanceState::TransferIn;
        state.history = alloc::vec![InstanceState::TransferIn];
        state.transfer_id = Some(String::from(transfer_id));
        Flow::with_state(state)
    }

    /// ACTIVE → LOCKED: no terminal reaches the purse until it is unlocked.
    pub fn lock_card(
        session_id: &str,
        parties: Parties,
        instance: &CardInstance,
    ) -> Result<Flow, Error> {
        Ok(Flow::with_state(for_instance(
            session_id,
            FlowKind::Lock,
            alloc::vec![S::RegisterSe, S::LockPurse],
            parties,
            instance,
            &[InstanceState::Active],
        )?))
    }

    /// LOCKED → ACTIVE.
    pub fn unlock_card(
        session_id: &str,
        parties: Parties,
        instance: &CardInstance,
    ) -> Result<Flow, Error> {
        Ok(Flow::with_state(for_instance(
            session_id,
            FlowKind::Unlock,
            alloc::vec![S::RegisterSe, S::UnlockPurse],
            parties,
            instance,
            &[InstanceState::Locked],
        )?))
    }

    /// 查询 (JT/T 10.2 analogue): the SE's registry, through the ISD (`seid`: the SE expected,
    /// or `None` for whatever SE answers).
    pub fn status_query(session_id: &str, parties: Parties, seid: Option<SeId>) -> Flow {
        let mut state = new_state(
            session_id,
            FlowKind::StatusQuery,
            alloc::vec![S::RegisterSe, S::QueryStatus],
            parties,
            Management::Authorized,
        );
        state.seid = seid;
        Flow::with_state(state)
    }

    /// 查询: the card number and balance the purse shows.
    pub fn card_data_query(
        session_id: &str,
        parties: Parties,
        instance: &CardInstance,
    ) -> Result<Flow, Error> {
        Ok(Flow::with_state(for_instance(
            session_id,
            FlowKind::CardDataQuery,
            alloc::vec![S::RegisterSe, S::QueryCardData],
            parties,
            instance,
            &[InstanceState::Active],
        )?))
    }
}
