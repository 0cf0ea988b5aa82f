//! Load at a load point (圈存, e-purse.md §4.3, §4.4): SELECT, INITIALIZE FOR LOAD, the host's
//! MAC2, CREDIT FOR LOAD.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};

use crate::card_data::CardIdentity;
use crate::commands::{self, transaction_type};
use crate::load_host::{LoadAuthority, LoadRequest};
use crate::{Flow, FlowError, Step};

/// What the load point asks for.
#[derive(Debug, Clone)]
pub struct LoadParams {
    /// The application to load: the e-purse ([`PURSE_AID`](crate::commands::PURSE_AID)) or another purse of the card.
    pub aid: Vec<u8>,
    /// Load key index.
    pub key_index: u8,
    /// Amount in fen.
    pub amount: u32,
    /// Terminal id of the load point.
    pub terminal_id: [u8; 6],
    /// Host date and time, BCD `YYYYMMDDhhmmss`.
    pub datetime: [u8; 7],
}

/// A completed load, with what the back office needs to check its TAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadRecord {
    /// The card.
    pub card: CardIdentity,
    /// Balance before.
    pub old_balance: u32,
    /// Amount loaded.
    pub amount: u32,
    /// Balance after.
    pub new_balance: u32,
    /// Online counter used by this load (before the card's increment).
    pub online_counter: u16,
    /// Key version.
    pub key_version: u8,
    /// Algorithm id.
    pub algorithm_id: u8,
    /// Terminal id.
    pub terminal_id: [u8; 6],
    /// Date and time.
    pub datetime: [u8; 7],
    /// TAC returned by CREDIT FOR LOAD.
    pub tac: [u8; 4],
}

/// What the load point knows once CREDIT FOR LOAD is ready to go: the grey record to journal
/// before sending it (e-purse.md §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCredit {
    /// The load as it will be if the card credits; `tac` is zero.
    pub record: LoadRecord,
    /// Load key index sent in INITIALIZE FOR LOAD.
    pub key_index: u8,
    /// Card random returned by INITIALIZE FOR LOAD.
    pub random: [u8; 4],
    /// MAC1 returned by INITIALIZE FOR LOAD.
    pub mac1: [u8; 4],
    /// MAC2 the load host issued, sent in CREDIT FOR LOAD; GET TRANSACTION PROVE gives it back.
    pub mac2: [u8; 4],
}

enum State {
    Selecting,
    Initializing(CardIdentity),
    Crediting(PendingCredit),
    Done,
}

/// The load flow. Holds the load authority for the duration of one load.
pub struct LoadFlow<'h> {
    params: LoadParams,
    host: &'h mut dyn LoadAuthority,
    state: State,
}

impl<'h> LoadFlow<'h> {
    /// Starts a load; returns the flow and the first command (SELECT of `params.aid`).
    pub fn start(params: LoadParams, host: &'h mut dyn LoadAuthority) -> (Self, CommandApdu) {
        let select = commands::select(&params.aid);
        let flow = Self {
            params,
            host,
            state: State::Selecting,
        };
        (flow, select)
    }

    /// Starts a load on a card whose SELECT of `params.aid` the caller has already sent and
    /// decoded; returns INITIALIZE FOR LOAD.
    pub fn after_select(
        params: LoadParams,
        host: &'h mut dyn LoadAuthority,
        card: CardIdentity,
    ) -> (Self, CommandApdu) {
        let initialize =
            commands::initialize_for_load(params.key_index, params.amount, &params.terminal_id);
        let flow = Self {
            params,
            host,
            state: State::Initializing(card),
        };
        (flow, initialize)
    }

    /// The load whose CREDIT FOR LOAD is the command last returned, until its answer comes:
    /// the load point journals it as grey before sending that command.
    pub fn pending_credit(&self) -> Option<&PendingCredit> {
        match &self.state {
            State::Crediting(pending) => Some(pending),
            _ => None,
        }
    }
}

pub(crate) fn expect_success(step: &'static str, response: &ResponseApdu) -> Result<(), FlowError> {
    if response.sw == StatusWord::SUCCESS {
        Ok(())
    } else {
        Err(FlowError::CardRefused {
            step,
            sw: response.sw,
        })
    }
}

pub(crate) fn be_u32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .take(4)
        .fold(0, |acc, b| (acc << 8) | u32::from(*b))
}

pub(crate) fn be_u16(bytes: &[u8]) -> u16 {
    bytes
        .iter()
        .take(2)
        .fold(0, |acc, b| (acc << 8) | u16::from(*b))
}

pub(crate) fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.iter_mut().zip(bytes).for_each(|(o, b)| *o = *b);
    out
}

impl Flow for LoadFlow<'_> {
    type Outcome = LoadRecord;

    fn on_response(&mut self, response: ResponseApdu) -> Result<Step<LoadRecord>, FlowError> {
        let p = &self.params;
        match core::mem::replace(&mut self.state, State::Done) {
            State::Selecting => {
                expect_success("SELECT", &response)?;
                let card = CardIdentity::from_fci(&response.data)?;
                self.state = State::Initializing(card);
                Ok(Step::Send(commands::initialize_for_load(
                    p.key_index,
                    p.amount,
                    &p.terminal_id,
                )))
            }
            State::Initializing(card) => {
                // e-purse.md §4.3: balance(4) online counter(2) version(1) alg(1) random(4) MAC1(4)
                const STEP: &str = "INITIALIZE FOR LOAD";
                expect_success(STEP, &response)?;
                let d = &response.data;
                if d.len() != 16 {
                    return Err(FlowError::MalformedResponse {
                        step: STEP,
                        len: d.len(),
                    });
                }
                let request = LoadRequest {
                    card,
                    key_index: p.key_index,
                    old_balance: be_u32(&d[0..4]),
                    online_counter: be_u16(&d[4..6]),
                    key_version: d[6],
                    algorithm_id: d[7],
                    random: array(&d[8..12]),
                    mac1: array(&d[12..16]),
                    amount: p.amount,
                    terminal_id: p.terminal_id,
                    datetime: p.datetime,
                };
                let mac2 = self.host.authorise(&request).map_err(FlowError::Host)?;
                let r = request;
                self.state = State::Crediting(PendingCredit {
                    record: LoadRecord {
                        new_balance: r.old_balance.saturating_add(r.amount),
                        card: r.card,
                        old_balance: r.old_balance,
                        amount: r.amount,
                        online_counter: r.online_counter,
                        key_version: r.key_version,
                        algorithm_id: r.algorithm_id,
                        terminal_id: r.terminal_id,
                        datetime: r.datetime,
                        tac: [0; 4],
                    },
                    key_index: r.key_index,
                    random: r.random,
                    mac1: r.mac1,
                    mac2,
                });
                Ok(Step::Send(commands::credit_for_load(&p.datetime, &mac2)))
            }
            State::Crediting(PendingCredit { mut record, .. }) => {
                const STEP: &str = "CREDIT FOR LOAD";
                expect_success(STEP, &response)?;
                if response.data.len() != 4 {
                    return Err(FlowError::MalformedResponse {
                        step: STEP,
                        len: response.data.len(),
                    });
                }
                record.tac = array(&response.data);
                Ok(Step::Done(record))
            }
            State::Done => Err(FlowError::AlreadyDone),
        }
    }
}

/// The transaction type a load record carries.
pub const LOAD_TYPE: u8 = transaction_type::LOAD;
