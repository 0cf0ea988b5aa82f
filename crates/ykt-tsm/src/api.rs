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
use crate::vault::{KeyEncryption, KeyName, KeyRef};

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
    ($(#[$tm:meta])* $table:ident; $($(#[$m:meta])* $konst:ident = ($req:literal, $no:literal, $resp:literal);)*) => {
        $($(#[$m])* pub const $konst: MessageDef = MessageDef { request: $req, msg_no: $no, response: $resp };)*
        $(#[$tm])*
        pub const $table: &[MessageDef] = &[$($konst,)*];
    };
}

messages! {
    /// Every message of the business API.
    MESSAGES;
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

// --- the inter-platform API: SP-TSM → SEI-TSM ----------------------------------------------

messages! {
    /// Every message of the inter-platform API (tsm-gp.md §2, §6, §7): each operation an
    /// SP-TSM asks of the SEI-TSM's vault is one signed envelope from the SP platform to the
    /// SEI platform. `CreateSSDReq`, `DeleteSSDReq` and `AcquireTokenReq` are the brief's
    /// names; the others are \[PROPOSAL\] names for the steps the brief folds into the
    /// `CreateSSD` exchange or does not name. Numbers: 1xxx SEI platform operations (the ISD
    /// channel, tokens, receipts), 2xxx SSD operations; response = request + 1.
    PLATFORM_MESSAGES;
    /// \[PROPOSAL\] The ISD key version and algorithm of an SE (`KeyVault::channel_key_info`).
    ISD_CHANNEL_INFO = ("ISDChannelInfoReq", "1011", "ISDChannelInfoResp");
    /// \[PROPOSAL\] One session-key block of an ISD secure channel's handshake
    /// (`KeyVault::channel_operation`), answered encrypted for the key the request names.
    ISD_CHANNEL_OP = ("ISDChannelOpReq", "1013", "ISDChannelOpResp");
    /// A delegated-management token (tsm-gp.md §4, `KeyVault::sign_token`).
    ACQUIRE_TOKEN = ("AcquireTokenReq", "1015", "AcquireTokenResp");
    /// \[PROPOSAL\] Checks a delegated-management receipt (`KeyVault::verify_receipt`).
    VERIFY_RECEIPT = ("ReceiptVerifyReq", "1017", "ReceiptVerifyResp");
    /// \[PROPOSAL\] Whether the SEI holds one of its keys: its ISD master, token signer or
    /// receipt key, or an SSD's initial key set (`KeyVault::contains`).
    KEY_QUERY = ("KeyQueryReq", "1019", "KeyQueryResp");
    /// An SSD's initial key set is generated in the SEI's vault (`KeyVault::generate_key_set`).
    CREATE_SSD = ("CreateSSDReq", "2001", "CreateSSDResp");
    /// \[PROPOSAL\] The initial key set wrapped under the ISD's DEK for DGI `8001`
    /// (`KeyVault::wrap_key_set`).
    SSD_FIRST_KEYS = ("SSDFirstKeysReq", "2003", "SSDFirstKeysResp");
    /// \[PROPOSAL\] The SSD key handover of tsm-gp.md §6: the initial key set encrypted for the
    /// SP's transport public key (`KeyVault::export_key_set`).
    SSD_KEY_HANDOVER = ("SSDKeyHandoverReq", "2005", "SSDKeyHandoverResp");
    /// The SSD is gone: its initial key set is forgotten (`KeyVault::delete_key`).
    DELETE_SSD = ("DeleteSSDReq", "2007", "DeleteSSDResp");
}

/// The definition of an inter-platform request type.
pub fn platform_message(request: &str) -> Option<MessageDef> {
    PLATFORM_MESSAGES
        .iter()
        .copied()
        .find(|m| m.request == request)
}

/// `KeyQueryReq`, `CreateSSDReq` (with `version`) and `DeleteSSDReq`: a key (an SSD's initial
/// key set) by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsdKeyReq {
    /// The key's name (an initial set's: `FlowState::initial_keys`).
    pub key: KeyName,
    /// `CreateSSDReq`: the key version of the new set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
}

/// `KeyQueryResp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyQueryResp {
    /// True when the SEI holds the key.
    pub present: bool,
}

/// `ISDChannelInfoReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsdChannelInfoReq {
    /// The ISD's keys (`KeyRef::Isd`).
    pub keys: KeyRef,
}

/// `ISDChannelInfoResp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsdChannelInfoResp {
    /// The key version.
    pub version: u8,
    /// `TDES`, `AES` or `SM4`.
    pub algorithm: String,
    /// The key length, bytes.
    pub key_len: u8,
}

/// `ISDChannelOpReq`: the inputs of one handshake block, never a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsdChannelOpReq {
    /// The ISD's keys (`KeyRef::Isd`).
    pub keys: KeyRef,
    /// `TDES_CBC` (SCP02) or `CMAC` (SCP03, SM4 channel).
    pub operation: String,
    /// Which static key: `ENC`, `MAC` or `DEK`.
    pub key: String,
    /// The block's input.
    pub data: Hex,
    /// The SM2 public key (SEC1) the result is encrypted for.
    pub recipient: Hex,
}

/// `ISDChannelOpResp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsdChannelOpResp {
    /// The 16-byte result, SM2-encrypted (C1C3C2) for the request's `recipient`.
    pub wrapped: Hex,
}

/// `AcquireTokenReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquireTokenReq {
    /// The SEI's token signing key.
    pub signer: KeyName,
    /// The command: `LOAD`, `INSTALL`, `MAKE_SELECTABLE`, `EXTRADITION`, `REGISTRY_UPDATE` or
    /// `DELETE`.
    pub kind: String,
    /// The command's P1.
    pub p1: u8,
    /// The command's P2.
    pub p2: u8,
    /// The command's data field before the token.
    pub data: Hex,
}

/// `AcquireTokenResp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquireTokenResp {
    /// The token.
    pub token: Hex,
}

/// `ReceiptVerifyReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptVerifyReq {
    /// The SEI's receipt key.
    pub key: KeyName,
    /// The card's response data (confirmation and receipt).
    pub response: Hex,
    /// The command: as `AcquireTokenReq.kind`.
    pub kind: String,
    /// The context's AIDs in the order of `ReceiptContext`'s fields.
    pub aids: Vec<Hex>,
}

/// `SSDFirstKeysReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsdFirstKeysReq {
    /// The SSD's initial key set.
    pub key: KeyName,
    /// The ISD whose DEK wraps it (`KeyRef::Isd`).
    pub under: KeyRef,
    /// How.
    pub encryption: KeyEncryption,
}

/// `SSDFirstKeysResp`: the wrapped set, as `WrappedKeySet`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsdFirstKeysResp {
    /// PUT KEY's data field: KVN and the encrypted keys with their KCVs.
    pub data: Hex,
    /// The three check values.
    pub check_values: [Hex; 3],
}

/// `SSDKeyHandoverReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsdKeyHandoverReq {
    /// The SSD's initial key set.
    pub key: KeyName,
    /// The SP's transport public key (SEC1), which the SEI checks against the one it pins.
    pub recipient: Hex,
}

/// `SSDKeyHandoverResp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsdKeyHandoverResp {
    /// The set encrypted for the transport key (`proposals::HANDOVER_CIPHER`).
    pub wrapped: Hex,
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
        for m in PLATFORM_MESSAGES {
            assert!(nos.insert(m.msg_no), "{}", m.msg_no);
            assert!(names.insert(m.request), "{}", m.request);
            let n: u32 = m.msg_no.parse().unwrap_or(0);
            assert!((1000..3000).contains(&n) && n % 2 == 1, "{}", m.msg_no);
            assert!(!nos.contains(alloc::format!("{:04}", n + 1).as_str()));
            assert_eq!(platform_message(m.request), Some(*m));
            assert_eq!(message(m.request), None);
        }
    }
}
