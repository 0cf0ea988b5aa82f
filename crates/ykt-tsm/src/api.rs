//! The business messages between the wallet and the SP-TSM (tsm-gp.md §7, client.md §4): their
//! types, numbers and bodies. Every one travels inside a signed envelope (`ykt-envelope`); this
//! module holds only the bodies, so that the TSM service and the wallet build and read the same
//! JSON.
//!
//! ```text
//!  wallet                                           SP-TSM (SEI-TSM behind it)
//!  EnrolReq {device_pub} ─────────────────────────▶ EnrolResp {device_id}
//!  OpenCardReq / TopupReq / DeleteCardReq / … ─────▶ FlowResp {txn_id, status, relay?, outcome?}
//!  ApduResultReq {response: {session_id, seq, rapdus}} ▶ FlowResp …   (until status COMPLETED)
//!  ResumeReq (after a crash on either side) ───────▶ FlowResp (the TSM probes the SE first)
//!  TopupOrderReq {card, amount} ───────────────────▶ OrderResp {order_id, state}
//! ```
//!
//! \[PROPOSAL\] The message names follow the brief's table (`OpenCardReq`, `TopupReq`,
//! `DeleteCardReq`, `RefundReq`, `TransferOutReq`, `TransferInReq`, `AppQueryReq`) and add the
//! relay's own (`ApduResultReq`, `ResumeReq`), enrolment (`EnrolReq`), orders (`TopupOrderReq`,
//! `OrderQueryReq`, `TestPayReq`) and lock / unlock / card query. Their numbers ([`MESSAGES`])
//! follow the brief's ranges (1xxx SE platform, 3xxx application life cycle, 4xxx notices,
//! 5xxx queries; response = request + 1); the exact values are ours.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::flow::{CardView, EntryView, FlowKind};
use crate::hex::Hex;
use crate::model::Management;
use crate::relay::{RelayRequest, RelayResponse};

/// A message type and its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageDef {
    /// The request's `msg_type`.
    pub request: &'static str,
    /// The request's `msg_no` (the response's is one more).
    pub msg_no: &'static str,
    /// The response's `msg_type`.
    pub response: &'static str,
}

macro_rules! messages {
    ($($(#[$m:meta])* $konst:ident = ($req:literal, $no:literal, $resp:literal);)*) => {
        $($(#[$m])* pub const $konst: MessageDef = MessageDef { request: $req, msg_no: $no, response: $resp };)*
        /// Every message of the business API.
        pub const MESSAGES: &[MessageDef] = &[$($konst,)*];
    };
}

messages! {
    /// Device enrolment: the device's SM2 public key becomes the key its envelopes verify under.
    ENROL = ("EnrolReq", "1001", "EnrolResp");
    /// 申请开卡: the unified download and personalisation.
    OPEN_CARD = ("OpenCardReq", "3001", "FlowResp");
    /// 申请支付 / 充值: the online load of a paid order.
    TOPUP = ("TopupReq", "3011", "FlowResp");
    /// 删除卡片.
    DELETE_CARD = ("DeleteCardReq", "3021", "FlowResp");
    /// 退卡.
    REFUND = ("RefundReq", "3031", "FlowResp");
    /// 迁卡 out (old SE).
    TRANSFER_OUT = ("TransferOutReq", "3041", "FlowResp");
    /// 迁卡 in (new SE).
    TRANSFER_IN = ("TransferInReq", "3043", "FlowResp");
    /// Lock (lost phone).
    LOCK = ("LockReq", "3051", "FlowResp");
    /// Unlock.
    UNLOCK = ("UnlockReq", "3053", "FlowResp");
    /// The SE's answers to the last relay message.
    APDU_RESULT = ("ApduResultReq", "4001", "FlowResp");
    /// Resume a flow after a crash or a lost answer.
    RESUME = ("ResumeReq", "4003", "FlowResp");
    /// A flow's state without moving it.
    FLOW_QUERY = ("FlowQueryReq", "5011", "FlowResp");
    /// 查询: the SE's registry (GET STATUS through the SEI-TSM).
    APP_QUERY = ("AppQueryReq", "5001", "FlowResp");
    /// 查询: the card's data (card number, balance) read through the TSM.
    CARD_QUERY = ("CardQueryReq", "5003", "FlowResp");
    /// A top-up order (before payment).
    TOPUP_ORDER = ("TopupOrderReq", "3013", "OrderResp");
    /// An order's state.
    ORDER_QUERY = ("OrderQueryReq", "5005", "OrderResp");
    /// The built-in test payment provider: pay an order (test deployments only).
    TEST_PAY = ("TestPayReq", "3015", "OrderResp");
    /// The device's cards as the SP-TSM records them.
    CARDS_QUERY = ("CardsQueryReq", "5007", "CardsResp");
}

/// The definition of a request type.
pub fn message(request: &str) -> Option<MessageDef> {
    MESSAGES.iter().copied().find(|m| m.request == request)
}

/// A card number over the wire: the 20 hex digits of the ASN. The full number travels only
/// inside signed, transport-protected envelopes between its holder and its issuer.
pub type CardNo = String;

/// `EnrolReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolReq {
    /// The device's SM2 public key, uncompressed SEC1 (65 bytes).
    pub device_pub: Hex,
    /// The device model (free text, for the SP-TSM's records).
    pub device_model: String,
}

/// `EnrolResp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolResp {
    /// The device id: the `sender_id` of its envelopes from now on.
    pub device_id: String,
    /// The TSM's `receiver_id` and the key id of its signing key.
    pub tsm_id: String,
    /// The TSM's SM2 public key (SEC1), which the wallet pins.
    pub tsm_pub: Hex,
}

/// `OpenCardReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenCardReq {
    /// How the SSD is to be managed.
    pub management: Management,
    /// The city (issuer region) code.
    pub city_code: String,
}

/// A request about one card instance (`DeleteCardReq`, `LockReq`, `UnlockReq`,
/// `CardQueryReq`, `TransferOutReq`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardReq {
    /// The card number.
    pub card_no: CardNo,
    /// The SE (hex SEID).
    pub seid: String,
}

/// `RefundReq` (退卡).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundReq {
    /// The card number.
    pub card_no: CardNo,
    /// The SE.
    pub seid: String,
    /// Where the refund goes (the payment provider's account reference).
    pub refund_account: String,
}

/// `TransferInReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferInReq {
    /// The code the transfer out gave.
    pub transfer_code: String,
    /// How the new SSD is to be managed.
    pub management: Management,
}

/// `TopupOrderReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopupOrderReq {
    /// The card to load.
    pub card_no: CardNo,
    /// Its SE.
    pub seid: String,
    /// Fen.
    pub amount: u32,
    /// The payment channel (client.md §2: `01` UnionPay, `02` Alipay, `03` WeChat, `04` Hebao,
    /// \[PROPOSAL\] `99` the built-in test provider).
    pub pay_channel: String,
}

/// A request about one order (`TopupReq`, `OrderQueryReq`, `TestPayReq`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderReq {
    /// The order id.
    pub order_id: String,
}

/// `OrderResp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderResp {
    /// The order id.
    pub order_id: String,
    /// Its state (`CREATED`, `PAID`, `LOAD_REQUESTED`, `LOADED`, …; client.md §4.2).
    pub state: String,
    /// Fen.
    pub amount: u32,
}

/// `AppQueryReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppQueryReq {
    /// The SE, if known (otherwise the flow reads it from the CPLC).
    pub seid: Option<String>,
}

/// `ApduResultReq`: the SE's answers (the flow is the envelope's `txn_id`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApduResultReq {
    /// The relay answer.
    pub response: RelayResponse,
}

/// `ResumeReq`, `FlowQueryReq` and `CardsQueryReq`: no members (the flow is the `txn_id`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Where a flow is.
/// This list is complete: a flow runs, finishes, or fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(clippy::exhaustive_enums)]
pub enum FlowStatus {
    /// Waiting for the SE's answers to `relay`.
    Running,
    /// Finished; `outcome` holds the result.
    Completed,
    /// A step failed (`instance_state` says which); `ResumeReq` retries it.
    Failed,
}

/// The load a flow made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadView {
    /// The order (or transfer) id.
    pub order_id: String,
    /// Fen loaded.
    pub amount: u32,
    /// The balance after it.
    pub new_balance: u32,
    /// The card's TAC.
    pub tac: Hex,
}

/// A finished flow's result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeView {
    /// The card number of the instance.
    pub card_no: Option<CardNo>,
    /// The SE.
    pub seid: Option<String>,
    /// The card's AID on the SE (what the wallet SELECTs for balance and records).
    pub app_aid: Option<Hex>,
    /// The balance proven or loaded, fen.
    pub balance: Option<u32>,
    /// The load made.
    pub load: Option<LoadView>,
    /// The code the new phone gives to `TransferInReq` (transfer out).
    pub transfer_code: Option<String>,
    /// The refund paid, fen (card return).
    pub refund: Option<u32>,
    /// The SE's registry (status query).
    pub registry: Vec<EntryView>,
    /// The card's data (card query).
    pub card: Option<CardView>,
}

/// `FlowResp`: where a flow is and what to relay next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowResp {
    /// The flow (the envelopes' `txn_id`).
    pub txn_id: String,
    /// Which flow.
    pub kind: FlowKind,
    /// Where it is.
    pub status: FlowStatus,
    /// The card instance's §8 state (`ACTIVE`, `FAILED_CREATE_SSD`, …).
    pub instance_state: String,
    /// The step in progress, its number and the step count (progress bars).
    pub step: Option<String>,
    /// 0-based index of the step in progress.
    pub step_index: u32,
    /// How many steps the flow has.
    pub step_count: u32,
    /// The next relay message (`RUNNING` only).
    pub relay: Option<RelayRequest>,
    /// The result (`COMPLETED` only).
    pub outcome: Option<OutcomeView>,
}

/// One card instance as the SP-TSM records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardSummary {
    /// The card number.
    pub card_no: CardNo,
    /// The SE.
    pub seid: String,
    /// The §8 state.
    pub state: String,
}

/// `CardsResp`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardsResp {
    /// The device's card instances.
    pub cards: Vec<CardSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_in_range_and_requests_unique() {
        let mut nos = alloc::collections::BTreeSet::new();
        let mut names = alloc::collections::BTreeSet::new();
        for m in MESSAGES {
            assert!(nos.insert(m.msg_no), "{}", m.msg_no);
            assert!(names.insert(m.request), "{}", m.request);
            let n: u32 = m.msg_no.parse().unwrap_or(0);
            assert!((1000..6000).contains(&n) && n % 2 == 1, "{}", m.msg_no);
            assert!(!nos.contains(alloc::format!("{:04}", n + 1).as_str()));
            assert_eq!(message(m.request), Some(*m));
        }
    }
}
