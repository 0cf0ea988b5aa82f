//! Purchase (e-purse.md §4.5, §4.6) and composite purchase (§4.7) at a validator.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, ResponseApdu};

use crate::card_data::CardIdentity;
use crate::commands::{self, transaction_type};
use crate::load::{array, be_u16, be_u32, expect_success};
use crate::sam::{PurchaseSam, SamPurchaseRequest};
use crate::{Flow, FlowError, Step};

/// One record to put through UPDATE CAPP DATA CACHE in a composite purchase (§4.7 step 3).
#[derive(Debug, Clone)]
pub struct CappRecord {
    /// P1 (record identifier or number).
    pub p1: u8,
    /// P2 (SFI << 3 | mode), e.g. `D0` for EF1A by identifier, `F0` for EF1E.
    pub p2: u8,
    /// The record bytes.
    pub data: Vec<u8>,
}

/// What the validator asks for.
#[derive(Debug, Clone)]
pub struct PurchaseParams {
    /// The application to pay with: the e-purse ([`PURSE_AID`](crate::commands::PURSE_AID)) or another purse of the card.
    pub aid: Vec<u8>,
    /// Purchase key index.
    pub key_index: u8,
    /// Amount in fen.
    pub amount: u32,
    /// Date and time, BCD `YYYYMMDDhhmmss`.
    pub datetime: [u8; 7],
    /// Records for a composite purchase; `None` for a plain purchase.
    pub composite: Option<Vec<CappRecord>>,
}

/// A completed purchase, with what the back office needs to check its TAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRecord {
    /// The card.
    pub card: CardIdentity,
    /// `06` purchase or `09` composite.
    pub transaction_type: u8,
    /// Balance before.
    pub balance_before: u32,
    /// Amount.
    pub amount: u32,
    /// Offline counter used by this purchase (before the card's increment).
    pub offline_counter: u16,
    /// Terminal transaction serial.
    pub ttsn: u32,
    /// Key version.
    pub key_version: u8,
    /// Algorithm id.
    pub algorithm_id: u8,
    /// Terminal id.
    pub terminal_id: [u8; 6],
    /// Date and time.
    pub datetime: [u8; 7],
    /// TAC returned by DEBIT.
    pub tac: [u8; 4],
    /// MAC2 returned by DEBIT (verified by the SAM).
    pub mac2: [u8; 4],
}

impl PurchaseRecord {
    /// Balance after the purchase.
    pub fn balance_after(&self) -> u32 {
        self.balance_before.saturating_sub(self.amount)
    }
}

/// What the terminal knows once DEBIT is ready to go: the grey record to journal before sending
/// it (e-purse.md §7), and what recovery needs to check a MAC2 proved later (§4.8, §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDebit {
    /// The purchase as it will be if the card debits; `tac` and `mac2` are zero.
    pub record: PurchaseRecord,
    /// Purchase key index sent in INITIALIZE.
    pub key_index: u8,
    /// Card random returned by INITIALIZE (an input of the session key).
    pub random: [u8; 4],
}

enum State {
    Selecting,
    Initializing(CardIdentity),
    Caching {
        pending: PendingDebit,
        mac1: [u8; 4],
        next: usize,
    },
    Debiting(PendingDebit),
    Done,
}

/// The purchase flow. Holds the SAM for the duration of one purchase.
pub struct PurchaseFlow<'s> {
    params: PurchaseParams,
    sam: &'s mut dyn PurchaseSam,
    state: State,
}

impl<'s> PurchaseFlow<'s> {
    /// Starts a purchase; returns the flow and the first command (SELECT of `params.aid`).
    pub fn start(params: PurchaseParams, sam: &'s mut dyn PurchaseSam) -> (Self, CommandApdu) {
        let select = commands::select(&params.aid);
        let flow = Self {
            params,
            sam,
            state: State::Selecting,
        };
        (flow, select)
    }

    /// Starts a purchase on a card whose SELECT of `params.aid` the caller has already sent
    /// and decoded (e.g. to look up its grey entries); returns INITIALIZE FOR (CAPP) PURCHASE.
    pub fn after_select(
        params: PurchaseParams,
        sam: &'s mut dyn PurchaseSam,
        card: CardIdentity,
    ) -> (Self, CommandApdu) {
        let mut flow = Self {
            params,
            sam,
            state: State::Done,
        };
        let initialize = flow.initialize(card);
        (flow, initialize)
    }

    /// The purchase whose DEBIT is the command last returned, until its answer comes: the
    /// validator journals it as grey before sending that command.
    pub fn pending_debit(&self) -> Option<&PendingDebit> {
        match &self.state {
            State::Debiting(pending) => Some(pending),
            _ => None,
        }
    }

    fn initialize(&mut self, card: CardIdentity) -> CommandApdu {
        let terminal_id = self.sam.terminal_id();
        let composite = self.params.composite.is_some();
        self.state = State::Initializing(card);
        commands::initialize_for_purchase(
            composite,
            self.params.key_index,
            self.params.amount,
            &terminal_id,
        )
    }

    fn cache_or_debit(
        &mut self,
        pending: PendingDebit,
        mac1: [u8; 4],
        next: usize,
    ) -> Step<PurchaseRecord> {
        match self
            .params
            .composite
            .as_ref()
            .and_then(|records| records.get(next))
        {
            Some(c) => {
                let command = commands::update_capp_data_cache(c.p1, c.p2, &c.data);
                self.state = State::Caching {
                    pending,
                    mac1,
                    next: next + 1,
                };
                Step::Send(command)
            }
            None => {
                let r = &pending.record;
                let command = commands::debit_for_purchase(r.ttsn, &r.datetime, &mac1);
                self.state = State::Debiting(pending);
                Step::Send(command)
            }
        }
    }
}

impl Flow for PurchaseFlow<'_> {
    type Outcome = PurchaseRecord;

    fn on_response(&mut self, response: ResponseApdu) -> Result<Step<PurchaseRecord>, FlowError> {
        let composite = self.params.composite.is_some();
        match core::mem::replace(&mut self.state, State::Done) {
            State::Selecting => {
                expect_success("SELECT", &response)?;
                let card = CardIdentity::from_fci(&response.data)?;
                Ok(Step::Send(self.initialize(card)))
            }
            State::Initializing(card) => {
                // §4.5: balance(4) offline counter(2) overdraft(3) version(1) alg(1) random(4)
                const STEP: &str = "INITIALIZE FOR PURCHASE";
                expect_success(STEP, &response)?;
                let d = &response.data;
                if d.len() != 15 {
                    return Err(FlowError::MalformedResponse {
                        step: STEP,
                        len: d.len(),
                    });
                }
                let transaction_type = if composite {
                    transaction_type::COMPOSITE
                } else {
                    transaction_type::PURCHASE
                };
                let request = SamPurchaseRequest {
                    card,
                    key_index: self.params.key_index,
                    key_version: d[9],
                    algorithm_id: d[10],
                    random: array(&d[11..15]),
                    offline_counter: be_u16(&d[4..6]),
                    amount: self.params.amount,
                    transaction_type,
                    datetime: self.params.datetime,
                };
                let mac1 = self.sam.init_purchase(&request).map_err(FlowError::Sam)?;
                let record = PurchaseRecord {
                    card: request.card,
                    transaction_type,
                    balance_before: be_u32(&d[0..4]),
                    amount: request.amount,
                    offline_counter: request.offline_counter,
                    ttsn: mac1.ttsn,
                    key_version: request.key_version,
                    algorithm_id: request.algorithm_id,
                    terminal_id: self.sam.terminal_id(),
                    datetime: request.datetime,
                    tac: [0; 4],
                    mac2: [0; 4],
                };
                let pending = PendingDebit {
                    record,
                    key_index: request.key_index,
                    random: request.random,
                };
                Ok(self.cache_or_debit(pending, mac1.mac1, 0))
            }
            State::Caching {
                pending,
                mac1,
                next,
            } => {
                expect_success("UPDATE CAPP DATA CACHE", &response)?;
                Ok(self.cache_or_debit(pending, mac1, next))
            }
            State::Debiting(PendingDebit { mut record, .. }) => {
                // §4.6: TAC(4) MAC2(4)
                const STEP: &str = "DEBIT FOR PURCHASE";
                expect_success(STEP, &response)?;
                if response.data.len() != 8 {
                    return Err(FlowError::MalformedResponse {
                        step: STEP,
                        len: response.data.len(),
                    });
                }
                record.tac = array(&response.data[0..4]);
                record.mac2 = array(&response.data[4..8]);
                self.sam.verify_mac2(&record.mac2).map_err(FlowError::Sam)?;
                Ok(Step::Done(record))
            }
            State::Done => Err(FlowError::AlreadyDone),
        }
    }
}
