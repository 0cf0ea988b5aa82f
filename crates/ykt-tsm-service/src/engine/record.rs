//! What the engine persists in a flow row (the domain's `FlowState` and the relay message
//! outstanding) and what it derives from it: the `FlowResp` (tsm-gp.md §7), the card-instance,
//! SE and order rows (§8, client.md §4.2) and the audit records of a move.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ykt_store::{
    AuditEvent, AuditKind, CardState, CardWrite, SeState, SeWrite, TopupState, TopupWrite,
};
use ykt_tsm::api::{FlowResp, FlowStatus, LoadView, OutcomeView};
use ykt_tsm::hex::Hex;
use ykt_tsm::{FlowKind, FlowState, InstanceState, Management, RelayRequest, Role, StepName};

use super::proposals;

/// The JSON of a flow row's `state` column. No key, session key or PIN: the domain's state
/// holds none, and the relay's secured commands are encrypted under session keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The domain's state.
    pub flow: FlowState,
    /// The relay message released and not answered yet.
    pub relay: Option<RelayRequest>,
    /// The transfer code (transfer out), shown in the outcome.
    pub transfer_code: Option<String>,
    /// Where a card return's refund goes.
    pub refund_account: Option<String>,
    /// The result code of the last failure.
    pub error_code: Option<String>,
    /// True once a relay message that writes the card was released.
    #[serde(default)]
    pub wrote_card: bool,
}

/// True when a failure ends the flow for good (the store's `FAILED`) and frees its card: the
/// flow never released a card write, so the card is as it was, and it is not a load (a load
/// keeps its order and is retried, client.md §4.2). Any other failure stays retryable and keeps
/// the card (tsm-gp.md §8 `FAILED_<step>` "with resumable retry").
pub fn gives_up(record: &Record) -> bool {
    record.flow.failed.is_some()
        && !record.wrote_card
        && !matches!(record.flow.kind, FlowKind::TopUp | FlowKind::TransferIn)
}

/// The store's `kind` column.
pub fn kind_name(kind: FlowKind) -> &'static str {
    match kind {
        FlowKind::OpenCard => "open_card",
        FlowKind::TopUp => "top_up",
        FlowKind::DeleteCard => "delete_card",
        FlowKind::CardReturn => "card_return",
        FlowKind::TransferOut => "transfer_out",
        FlowKind::TransferIn => "transfer_in",
        FlowKind::StatusQuery => "status_query",
        FlowKind::Lock => "lock",
        FlowKind::Unlock => "unlock",
        FlowKind::CardDataQuery => "card_data_query",
        _ => "other",
    }
}

/// True for flows that change a card instance (queries only read).
pub fn writes_card(kind: FlowKind) -> bool {
    !matches!(kind, FlowKind::StatusQuery | FlowKind::CardDataQuery)
}

/// The flow's status.
pub fn status(state: &FlowState) -> FlowStatus {
    if state.failed.is_some() {
        FlowStatus::Failed
    } else if state.cursor >= state.steps.len() {
        FlowStatus::Completed
    } else {
        FlowStatus::Running
    }
}

/// The store's `step` column: the step in progress, `FAILED_<step>`, or `DONE`.
pub fn step_name(state: &FlowState) -> String {
    match (state.failed, state.steps.get(state.cursor)) {
        (Some(step), _) => format!("FAILED_{}", step.upper()),
        (None, Some(step)) => step.upper().to_string(),
        (None, None) => "DONE".to_string(),
    }
}

/// The `FlowResp` of a persisted flow.
pub fn view(txn_id: &str, record: &Record) -> FlowResp {
    let state = &record.flow;
    let status = status(state);
    let outcome = (status == FlowStatus::Completed).then(|| OutcomeView {
        card_no: state.card_number.map(|c| c.danger_full()),
        seid: state.seid.map(|s| s.to_string()),
        app_aid: state
            .card_number
            .is_some()
            .then(|| Hex(proposals::PURSE_AID.to_vec())),
        balance: state.balance,
        load: state.load_receipt.as_ref().map(|r| LoadView {
            order_id: r.order_id.clone(),
            amount: r.amount,
            new_balance: r.new_balance,
            tac: r.tac.clone(),
        }),
        transfer_code: record.transfer_code.clone(),
        refund: (state.kind == FlowKind::CardReturn)
            .then_some(state.balance)
            .flatten(),
        registry: state.registry.clone(),
        card: state.card_view,
    });
    FlowResp {
        txn_id: txn_id.to_string(),
        kind: state.kind,
        status,
        instance_state: state.instance_state().name(),
        step: state.steps.get(state.cursor).map(|s| s.upper().to_string()),
        step_index: u32::try_from(state.cursor).unwrap_or(u32::MAX),
        step_count: u32::try_from(state.steps.len()).unwrap_or(u32::MAX),
        relay: if status == FlowStatus::Running {
            record.relay.clone()
        } else {
            None
        },
        outcome,
    }
}

/// The store's card state for the domain's (a failure is the `FAILED_` form of the state the
/// instance was in, where §8 names one; otherwise the instance keeps its last good state).
pub fn card_state(state: &FlowState) -> CardState {
    let base = match state.instance {
        InstanceState::None => CardState::Initial,
        InstanceState::SsdCreating => CardState::SsdCreating,
        InstanceState::SsdReady => CardState::SsdReady,
        InstanceState::AppLoading => CardState::AppLoading,
        InstanceState::AppInstalled => CardState::AppInstalled,
        InstanceState::Personalising => CardState::Personalising,
        InstanceState::Active => CardState::Active,
        InstanceState::Locked => CardState::Locked,
        InstanceState::Refunding => CardState::Refunding,
        InstanceState::Deleting => CardState::Deleting,
        InstanceState::Deleted => CardState::Deleted,
        InstanceState::TransferOut => CardState::TransferOut,
        InstanceState::TransferIn => CardState::TransferIn,
        _ => CardState::Initial,
    };
    match state.failed {
        Some(_) => base.failed().unwrap_or(base),
        None => base,
    }
}

/// The domain's state of a stored card instance.
pub fn instance_state(state: CardState) -> InstanceState {
    match state {
        CardState::Initial => InstanceState::None,
        CardState::SsdCreating => InstanceState::SsdCreating,
        CardState::SsdReady => InstanceState::SsdReady,
        CardState::AppLoading => InstanceState::AppLoading,
        CardState::AppInstalled => InstanceState::AppInstalled,
        CardState::Personalising => InstanceState::Personalising,
        CardState::Active => InstanceState::Active,
        CardState::Locked => InstanceState::Locked,
        CardState::Refunding => InstanceState::Refunding,
        CardState::Deleting => InstanceState::Deleting,
        CardState::Deleted => InstanceState::Deleted,
        CardState::TransferOut => InstanceState::TransferOut,
        CardState::TransferIn => InstanceState::TransferIn,
        CardState::FailedSsdCreating => InstanceState::Failed(StepName::CreateSsd),
        CardState::FailedAppLoading => InstanceState::Failed(StepName::LoadPurse),
        CardState::FailedPersonalising => InstanceState::Failed(StepName::PersonalisePurse),
        CardState::FailedRefunding => InstanceState::Failed(StepName::Refund),
        CardState::FailedDeleting => InstanceState::Failed(StepName::DeletePurse),
        CardState::FailedTransferOut => InstanceState::Failed(StepName::Escrow),
        _ => InstanceState::Failed(StepName::RegisterSe),
    }
}

/// The store's name of a management mode.
pub fn management_name(m: Management) -> &'static str {
    match m {
        Management::Authorized => "AUTHORIZED",
        Management::Delegated => "DELEGATED",
    }
}

/// The management mode of a stored name.
pub fn management_of(name: Option<&str>) -> Management {
    match name {
        Some("DELEGATED") => Management::Delegated,
        _ => Management::Authorized,
    }
}

/// The SE row a move leaves, once the flow knows the SE.
pub fn se_write(state: &FlowState) -> Option<SeWrite> {
    let seid = state.seid?;
    let se_state = match state.se_state {
        ykt_tsm::SeState::Registered => SeState::Registered,
        ykt_tsm::SeState::IsdKeysBound => SeState::IsdKeysBound,
        _ => return None,
    };
    Some(SeWrite {
        seid: seid.to_string(),
        cplc: state.cplc.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
        profile: String::new(),
        state: se_state,
    })
}

/// The card-instance row a move leaves (flows that change a card, once SE and number are
/// known); the flow holds the row until it completes.
pub fn card_write(state: &FlowState, device_id: &str, release: bool) -> Option<CardWrite> {
    if !writes_card(state.kind) {
        return None;
    }
    let seid = state.seid?;
    let card = state.card_number?;
    let done = release || status(state) == FlowStatus::Completed;
    let mut key_versions = BTreeMap::new();
    if let Some(i) = state
        .steps
        .iter()
        .position(|s| *s == StepName::RotateSsdKeys)
        && state.cursor > i
    {
        key_versions.insert("ssd".to_string(), ykt_tsm::proposals::SSD_SP_KEY_VERSION);
    }
    Some(CardWrite {
        seid: seid.to_string(),
        card_no: card.danger_full(),
        state: card_state(state),
        ssd_aid: Some(state.ssd_aid.0.clone()),
        // The purse's AID once it is installed (open card and transfer in install it).
        app_aid: (!matches!(state.kind, FlowKind::OpenCard | FlowKind::TransferIn)
            || state.history.contains(&InstanceState::AppInstalled))
        .then(|| proposals::PURSE_AID.to_vec()),
        management: Some(management_name(state.management).to_string()),
        device_id: device_id.to_string(),
        hold: !done,
        key_versions,
    })
}

/// What a top-up move does to its order: claimed at the start, `LOAD_REQUESTED` once the MAC2
/// is out, `LOADED` with the TAC checked.
pub fn topup_write(before: Option<&FlowState>, after: &FlowState) -> Option<TopupWrite> {
    if after.kind != FlowKind::TopUp {
        return None;
    }
    let order = after.order.as_ref()?;
    let mut write = TopupWrite {
        order_id: order.order_id.clone(),
        claim: before.is_none(),
        ..TopupWrite::default()
    };
    if let Some(receipt) = &after.load_receipt {
        write.state = Some(TopupState::Loaded);
        write.tac = Some(receipt.tac.0.clone());
        write.new_balance = Some(u64::from(receipt.new_balance));
        write.online_counter = after.load.map(|l| l.online_counter);
    } else if after.mac2.is_some() {
        write.state = Some(TopupState::LoadRequested);
        write.online_counter = after.load.map(|l| l.online_counter);
    } else if !write.claim {
        return None;
    }
    Some(write)
}

fn role_actor(role: Role) -> &'static str {
    match role {
        Role::Sei => "sei-tsm",
        Role::Sp => "sp-tsm",
    }
}

/// The keys a step uses (by name, never by value), with the TSM that holds them.
fn step_keys(state: &FlowState, step: StepName) -> Vec<(Role, String, &'static str)> {
    let seid = state.seid.map(|s| s.to_string()).unwrap_or_default();
    let p = &state.parties;
    let isd = format!("{}@{seid}", p.isd_master.0);
    // The domain's own names (empty before the SE is known: no step using them runs then).
    let initial = state.initial_keys(step).map(|k| k.0).unwrap_or_default();
    let sp = state.sp_keys(step).map(|k| k.0).unwrap_or_default();
    let delegated = state.management == Management::Delegated;
    let mut keys = match step {
        StepName::CreateSsd
        | StepName::DeleteSsd
        | StepName::QueryStatus
        | StepName::LockPurse
        | StepName::UnlockPurse => vec![(Role::Sei, isd, "secure channel (ISD)")],
        StepName::SsdFirstKeys => vec![
            (Role::Sei, isd, "secure channel (ISD)"),
            (
                Role::Sei,
                initial,
                "generate, wrap under the ISD DEK (DGI 8001)",
            ),
        ],
        StepName::HandOverSsdKeys => vec![
            (
                Role::Sei,
                initial.clone(),
                "export under the SP transport key (SM2)",
            ),
            (Role::Sp, p.sp_transport.0.clone(), "import (SM2 decrypt)"),
        ],
        StepName::RotateSsdKeys => vec![
            (Role::Sp, initial, "secure channel (SSD initial keys)"),
            (
                Role::Sp,
                sp,
                "generate, wrap under the initial DEK (PUT KEY)",
            ),
        ],
        StepName::LoadPurse
        | StepName::InstallPurse
        | StepName::MakeSelectable
        | StepName::DeletePurse => {
            vec![(Role::Sp, sp, "secure channel (SSD)")]
        }
        StepName::PersonalisePurse => vec![
            (
                Role::Sp,
                sp,
                "secure channel (SSD), DEK for the secret blocks",
            ),
            (
                Role::Sp,
                p.purse_issuer.0.clone(),
                "purse keys diversified by the ASN",
            ),
        ],
        StepName::InitializeLoad => vec![(Role::Sp, p.purse_issuer.0.clone(), "MAC1 check, MAC2")],
        StepName::CreditLoad => vec![(Role::Sp, p.purse_issuer.0.clone(), "TAC check")],
        StepName::ProveBalance => vec![(Role::Sp, p.purse_issuer.0.clone(), "MAC1 check")],
        _ => Vec::new(),
    };
    if delegated
        && matches!(
            step,
            StepName::LoadPurse
                | StepName::InstallPurse
                | StepName::MakeSelectable
                | StepName::DeletePurse
        )
    {
        keys.push((
            Role::Sei,
            p.token_signer.0.clone(),
            "delegated-management token",
        ));
        keys.push((Role::Sei, p.receipt_key.0.clone(), "receipt check"));
    }
    keys
}

/// The subject of a card's audit records: SE and masked card number.
fn card_subject(state: &FlowState) -> String {
    match (state.seid, state.card_number) {
        (Some(seid), Some(card)) => format!("{seid}/{card}"),
        (Some(seid), None) => seid.to_string(),
        (None, Some(card)) => card.to_string(),
        (None, None) => String::new(),
    }
}

/// The audit records of one move from `before` (`None`: the flow is new) to `after` that
/// released `relay`: the keys of each step entered, the card writes released, every state
/// change of the instance and of the flow.
pub fn audit(
    txn_id: &str,
    before: Option<&FlowState>,
    after: &FlowState,
    relay: Option<&RelayRequest>,
) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    let kind = kind_name(after.kind);
    if before.is_none() {
        events.push(AuditEvent {
            kind: AuditKind::StateChange,
            actor: "sp-tsm".into(),
            subject: format!("flow/{txn_id}"),
            detail: format!("{kind} started"),
        });
    }
    let first = match before {
        None => 0,
        Some(b) => b.cursor + 1,
    };
    for i in first..=after.cursor {
        let Some(&step) = after.steps.get(i) else {
            break;
        };
        for (role, key, what) in step_keys(after, step) {
            events.push(AuditEvent {
                kind: AuditKind::KeyUse,
                actor: role_actor(role).into(),
                subject: key,
                detail: format!("{kind} {txn_id} {}: {what}", step.upper()),
            });
        }
    }
    if let Some(relay) = relay {
        let writes: Vec<String> = relay
            .capdus
            .iter()
            .filter(|c| !proposals::is_read_only(c.as_bytes()))
            .map(|c| format!("{:02X}", c.as_bytes().get(1).copied().unwrap_or(0)))
            .collect();
        if !writes.is_empty() {
            events.push(AuditEvent {
                kind: AuditKind::CardWrite,
                actor: role_actor(after.steps.get(after.cursor).map_or(Role::Sp, |s| s.role()))
                    .into(),
                subject: card_subject(after),
                detail: format!(
                    "{kind} {txn_id} {} seq {}: INS {}",
                    step_name(after),
                    relay.seq,
                    writes.join(" ")
                ),
            });
        }
    }
    let seen = before.map_or(1, |b| b.history.len());
    let mut previous = before
        .and_then(|b| b.history.last().copied())
        .or_else(|| after.history.first().copied());
    for state in after.history.iter().skip(seen) {
        events.push(AuditEvent {
            kind: AuditKind::StateChange,
            actor: "sp-tsm".into(),
            subject: card_subject(after),
            detail: format!(
                "{kind} {txn_id}: {} -> {}",
                previous.map(|p| p.name()).unwrap_or_default(),
                state.name()
            ),
        });
        previous = Some(*state);
    }
    if let Some(b) = before
        && b.se_state != after.se_state
        && let Some(seid) = after.seid
    {
        events.push(AuditEvent {
            kind: AuditKind::StateChange,
            actor: "sei-tsm".into(),
            subject: format!("se/{seid}"),
            detail: format!("{kind} {txn_id}: {:?} -> {:?}", b.se_state, after.se_state),
        });
    }
    let was = before.map(status);
    let now = status(after);
    if was.is_some() && was != Some(now) && now != FlowStatus::Running {
        events.push(AuditEvent {
            kind: AuditKind::StateChange,
            actor: "sp-tsm".into(),
            subject: format!("flow/{txn_id}"),
            detail: format!("{kind} {}", step_name(after)),
        });
    }
    events
}
