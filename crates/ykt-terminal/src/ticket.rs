//! Which product pays a ride: the second ticket type (第二票种) or the e-purse.
//!
//! ```text
//!   ChoiceFlow::start ──► SELECT second ticket ──► 9000, EF15 type 02 / flag 01? ──► GET BALANCE ≥ 1?
//!        │ yes ──► Choice::SecondTicket (1 ride)
//!        └ any no ──► Choice::EPurse (the fare)
//!   Choice::purchase_params ──► PurchaseParams for the chosen AID ──► Validator::purchase
//! ```
//!
//! Rule, a labelled proposal (P/L: the standard's Annex A is not public, conformance.md §4.2,
//! §4.10): a ride is paid with **one ride of the second ticket** when its application
//! ([`SECOND_TICKET_AID`]) answers SELECT with `9000` and an EF15 copy, that EF15 is an enabled
//! application as [`tap::screen`](crate::tap::screen) requires it (type
//! [`APPLICATION_TYPE_EPURSE`], flag [`APPLICATION_ENABLED`]), and its balance (counted in rides)
//! is at least [`RIDE`]; otherwise it is paid with the **fare from the e-purse**
//! ([`PURSE_AID`]). Any other answer of the card to the choice's commands — a refusal, no
//! `9F0C`, a malformed balance — means "no usable second ticket", never an error: the e-purse is
//! still tried, and its own purchase reports its own refusals.
//! The choice writes nothing on the card: SELECT and GET BALANCE only.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};

use crate::card_data::CardIdentity;
use crate::commands::{self, PURSE_AID};
use crate::purchase::{CappRecord, PurchaseParams};
use crate::tap::{APPLICATION_ENABLED, APPLICATION_TYPE_EPURSE};
use crate::{Flow, FlowError, Step};

/// AID of the second ticket type (L, ARCHITECTURE.md "Second ticket type"); mirrors
/// `ykt_purse::SECOND_TICKET_AID` (a test keeps them equal).
pub const SECOND_TICKET_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x06];

/// The amount of one ride on the second ticket, whose balance counts rides (L).
pub const RIDE: u32 = 1;

/// The product that pays the ride.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // Complete: the card has these two products.
pub enum Choice {
    /// The second ticket, with its rides before this one.
    SecondTicket {
        /// Its EF15 data from the FCI.
        card: CardIdentity,
        /// Rides left before this ride.
        rides: u32,
    },
    /// The e-purse (no usable second ticket).
    EPurse,
}

impl Choice {
    /// The AID of the chosen application.
    pub fn aid(&self) -> &'static [u8] {
        match self {
            Self::SecondTicket { .. } => &SECOND_TICKET_AID,
            Self::EPurse => &PURSE_AID,
        }
    }

    /// The purchase for this ride: [`RIDE`] on the second ticket, or `fare` (fen) on the
    /// e-purse, with `composite` records (`None` for a plain purchase).
    pub fn purchase_params(
        &self,
        fare: u32,
        key_index: u8,
        datetime: [u8; 7],
        composite: Option<Vec<CappRecord>>,
    ) -> PurchaseParams {
        let amount = match self {
            Self::SecondTicket { .. } => RIDE,
            Self::EPurse => fare,
        };
        PurchaseParams {
            aid: self.aid().to_vec(),
            key_index,
            amount,
            datetime,
            composite,
        }
    }
}

/// Whether an EF15 is an application a terminal may use (the checks of `tap::screen`).
fn enabled(card: &CardIdentity) -> bool {
    card.application_type == APPLICATION_TYPE_EPURSE
        && card.application_version == APPLICATION_ENABLED
}

enum State {
    Selecting,
    Balance(CardIdentity),
    Done,
}

/// The choice flow: SELECT of the second ticket, then GET BALANCE when it is enabled.
pub struct ChoiceFlow {
    state: State,
}

impl ChoiceFlow {
    /// Starts the choice; returns the flow and SELECT of [`SECOND_TICKET_AID`].
    pub fn start() -> (Self, CommandApdu) {
        (
            Self {
                state: State::Selecting,
            },
            commands::select(&SECOND_TICKET_AID),
        )
    }
}

impl Flow for ChoiceFlow {
    type Outcome = Choice;

    fn on_response(&mut self, response: ResponseApdu) -> Result<Step<Choice>, FlowError> {
        match core::mem::replace(&mut self.state, State::Done) {
            State::Selecting => {
                if response.sw != StatusWord::SUCCESS {
                    return Ok(Step::Done(Choice::EPurse));
                }
                match CardIdentity::from_fci(&response.data) {
                    Ok(card) if enabled(&card) => {
                        self.state = State::Balance(card);
                        Ok(Step::Send(commands::get_balance()))
                    }
                    _ => Ok(Step::Done(Choice::EPurse)),
                }
            }
            State::Balance(card) => {
                let rides = match <[u8; 4]>::try_from(response.data.as_slice()) {
                    Ok(b) if response.sw == StatusWord::SUCCESS => u32::from_be_bytes(b),
                    _ => 0,
                };
                Ok(Step::Done(if rides >= RIDE {
                    Choice::SecondTicket { card, rides }
                } else {
                    Choice::EPurse
                }))
            }
            State::Done => Err(FlowError::AlreadyDone),
        }
    }
}
