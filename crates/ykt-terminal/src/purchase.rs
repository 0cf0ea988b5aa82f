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
#[derive(Debug, Clone)]
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

enum State {
    Selecting,
    Initializing(CardIdentity),
    Caching {
        record: PurchaseRecord,
        mac1: [u8; 4],
        next: usize,
    },
    Debiting(PurchaseRecord),
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

    fn cache_or_debit(
        &mut self,
        record: PurchaseRecord,
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
                    record,
                    mac1,
                    next: next + 1,
                };
                Step::Send(command)
            }
            None => {
                let command = commands::debit_for_purchase(record.ttsn, &record.datetime, &mac1);
                self.state = State::Debiting(record);
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
                let terminal_id = self.sam.terminal_id();
                self.state = State::Initializing(card);
                Ok(Step::Send(commands::initialize_for_purchase(
                    composite,
                    self.params.key_index,
                    self.params.amount,
                    &terminal_id,
                )))
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
                Ok(self.cache_or_debit(record, mac1.mac1, 0))
            }
            State::Caching { record, mac1, next } => {
                expect_success("UPDATE CAPP DATA CACHE", &response)?;
                Ok(self.cache_or_debit(record, mac1, next))
            }
            State::Debiting(mut record) => {
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
