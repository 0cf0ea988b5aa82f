//! The wallet's local state (client.md §4.2, §6.5): the device key, the enrolment (device id, the
//! TSM's id and pinned key), the cards, the open flows and the top-up journal; sealed as records
//! by [`crate::seal`].

use serde::{Deserialize, Serialize};
use ykt_crypto::Sm2PublicKey;
use ykt_tsm::FlowKind;
use ykt_tsm::hex::Hex;
use zeroize::Zeroizing;

use crate::device::DeviceKey;
use crate::mask::{CardNo, Seid, danger_serde};
use crate::seal::{Record, SealError, SealKey};

/// The record types of the sealed state.
pub mod record_type {
    /// The device key's 32-byte scalar (id `device`).
    pub const DEVICE_KEY: u8 = 1;
    /// The enrolment, open flows and journal as JSON (id `state`).
    pub const STATE: u8 = 2;
    /// One card as JSON (id `card-<n>`).
    pub const CARD: u8 = 3;
}

/// The TSM the wallet is enrolled with (from `EnrolResp`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TsmPin {
    /// The TSM's id (the `receiver_id` of requests, the `sender_id` of its responses).
    pub tsm_id: String,
    /// Its SM2 public key (SEC1), under which every response must verify.
    pub tsm_pub: Hex,
}

impl TsmPin {
    /// The pinned key.
    pub fn key(&self) -> Option<Sm2PublicKey> {
        Sm2PublicKey::from_sec1_bytes(self.tsm_pub.as_bytes()).ok()
    }
}

/// One card on this device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRecord {
    /// The card number.
    #[serde(serialize_with = "danger_serde::card_no")]
    #[serde(deserialize_with = "danger_serde::de_card_no")]
    pub card_no: CardNo,
    /// The SE it lives on.
    #[serde(serialize_with = "danger_serde::seid")]
    #[serde(deserialize_with = "danger_serde::de_seid")]
    pub seid: Seid,
    /// Its application AID on the SE.
    pub app_aid: Hex,
    /// The last known §8 state (`ACTIVE`, `LOCKED`, …).
    pub state: String,
    /// The last known balance (fen) and when it was read (Unix ms).
    pub balance: Option<(u32, i64)>,
}

/// A flow started and not yet finished (client.md §4.2: the journal says so at the next start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFlow {
    /// The flow's `txn_id`.
    pub txn_id: String,
    /// Which flow.
    pub kind: FlowKind,
    /// The card it is about, if known.
    #[serde(default, with = "opt_card_no")]
    pub card_no: Option<CardNo>,
    /// When it started (Unix ms).
    pub started_ms: i64,
}

/// A top-up journal entry (client.md §4.2), written and persisted before each card command of
/// the load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The order.
    pub order_no: String,
    /// The load flow's `txn_id`, once the load has started.
    pub txn_id: Option<String>,
    /// The first 8 bytes of SM3 of the card number, hex: which card, without the number.
    pub card_hash: String,
    /// The step about to run or last run ([`JournalStep`]).
    pub step: JournalStep,
    /// The balance before the load (from INITIALIZE FOR LOAD), fen.
    pub balance_before: Option<u32>,
    /// The online counter before the load (from INITIALIZE FOR LOAD).
    pub online_counter_before: Option<u16>,
    /// Fen.
    pub amount: u32,
    /// The status word of the last card command, hex.
    pub last_sw: Option<String>,
}

/// Where a top-up is (client.md §4.2).
/// This list is complete: the steps of the brief's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(clippy::exhaustive_enums)]
pub enum JournalStep {
    /// The order exists, not paid.
    Ordered,
    /// The payment provider says paid.
    Paid,
    /// About to send INITIALIZE FOR LOAD (or any command before the credit).
    InitializeForLoad,
    /// About to send CREDIT FOR LOAD (MAC2 issued: the outcome is unknown until its answer).
    CreditForLoad,
    /// The TSM reported the load complete.
    Loaded,
}

/// The hash that names a card in the journal.
pub fn card_hash(card: &CardNo) -> String {
    ykt_tsm::hex::encode(&ykt_crypto::sm3(card.danger_full().as_bytes())[..8])
}

mod opt_card_no {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::mask::CardNo;

    pub(super) fn serialize<S: Serializer>(v: &Option<CardNo>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(c) => s.serialize_some(c.danger_full()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CardNo>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(CardNo::new))
    }
}

/// Everything the wallet keeps. `Debug` masks card numbers and SEIDs and redacts the key.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WalletState {
    /// The device key (sealed as its own record, never in the JSON).
    #[serde(skip)]
    pub device_key: Option<DeviceKey>,
    /// The device id the TSM gave at enrolment.
    pub device_id: Option<String>,
    /// The TSM, pinned at enrolment.
    pub tsm: Option<TsmPin>,
    /// The cards (sealed one record each, never in the JSON of the state record).
    #[serde(skip)]
    pub cards: Vec<CardRecord>,
    /// Flows started and not finished.
    pub flows: Vec<OpenFlow>,
    /// The top-up journal.
    pub journal: Vec<JournalEntry>,
}

/// Why a state could not be read from its records.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The sealed file did not open.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A record opened but its contents are not what its type says.
    #[error("a record of the wallet state is malformed")]
    Malformed,
}

impl WalletState {
    /// The records to seal.
    pub fn to_records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        if let Some(key) = &self.device_key {
            out.push(Record {
                kind: record_type::DEVICE_KEY,
                id: b"device".to_vec(),
                data: Zeroizing::new(key.danger_scalar().to_vec()),
            });
        }
        // Strings, numbers and options only: serialising cannot fail.
        out.push(Record {
            kind: record_type::STATE,
            id: b"state".to_vec(),
            data: Zeroizing::new(serde_json::to_vec(self).unwrap_or_default()),
        });
        for (i, card) in self.cards.iter().enumerate() {
            out.push(Record {
                kind: record_type::CARD,
                id: format!("card-{i}").into_bytes(),
                data: Zeroizing::new(serde_json::to_vec(card).unwrap_or_default()),
            });
        }
        out
    }

    /// The state from its records.
    pub fn from_records(records: &[Record]) -> Result<WalletState, StateError> {
        let mut state = WalletState::default();
        let mut seen_state = false;
        for r in records {
            match r.kind {
                record_type::DEVICE_KEY => {
                    let scalar: &[u8; 32] = r
                        .data
                        .as_slice()
                        .try_into()
                        .map_err(|_| StateError::Malformed)?;
                    state.device_key =
                        Some(DeviceKey::from_scalar(scalar).ok_or(StateError::Malformed)?);
                }
                record_type::STATE => {
                    let s: WalletState =
                        serde_json::from_slice(&r.data).map_err(|_| StateError::Malformed)?;
                    state.device_id = s.device_id;
                    state.tsm = s.tsm;
                    state.flows = s.flows;
                    state.journal = s.journal;
                    seen_state = true;
                }
                record_type::CARD => {
                    state
                        .cards
                        .push(serde_json::from_slice(&r.data).map_err(|_| StateError::Malformed)?);
                }
                _ => return Err(StateError::Malformed),
            }
        }
        if !seen_state {
            return Err(StateError::Malformed);
        }
        Ok(state)
    }

    /// Seals the state under `key`.
    pub fn seal<R: rand_core::CryptoRng + ?Sized>(
        &self,
        key: &SealKey,
        rng: &mut R,
    ) -> Result<Vec<u8>, SealError> {
        key.seal(&self.to_records(), rng)
    }

    /// Opens a sealed state with the passphrase.
    pub fn open(passphrase: &[u8], file: &[u8]) -> Result<(SealKey, WalletState), StateError> {
        let (key, records) = SealKey::open(passphrase, file)?;
        Ok((key, WalletState::from_records(&records)?))
    }

    /// Opens a state sealed under `key` without the passphrase ([`SealKey::reopen`]): an
    /// unlocked session's key reads the current file.
    pub fn reopen(key: &SealKey, file: &[u8]) -> Result<WalletState, StateError> {
        WalletState::from_records(&key.reopen(file)?)
    }

    /// The card with this number.
    pub fn card(&self, card_no: &CardNo) -> Option<&CardRecord> {
        self.cards.iter().find(|c| &c.card_no == card_no)
    }
}
