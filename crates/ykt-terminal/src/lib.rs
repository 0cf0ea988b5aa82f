//! Host-side e-purse flows: load at a load point, purchase and composite purchase at a validator,
//! as sans-IO state machines (e-purse.md §4, §5, §6).
//!
//! ```text
//!   LoadFlow::start ──► SELECT ──► INITIALIZE FOR LOAD ──► (LoadAuthority: MAC1 ok? → MAC2) ──► CREDIT FOR LOAD ──► LoadRecord
//!   PurchaseFlow::start ──► SELECT ──► INITIALIZE [CAPP] PURCHASE ──► (PurchaseSam: MAC1)
//!        ──► [UPDATE CAPP DATA CACHE …] ──► DEBIT ──► (PurchaseSam: MAC2 ok?) ──► PurchaseRecord
//!   RecoveryFlow::start ──► SELECT ──► GET BALANCE ──► GET TRANSACTION PROVE ──► record / not charged / grey
//!   Validator::purchase, ::load ──► recovery of the card's grey entry ──► flow, with the grey entry
//!        journaled (NvStorage) before DEBIT / CREDIT and the completed record after ──► Tap
//! ```
//!
//! A flow is a value: `start(..)` gives the flow and the first command, then every card response
//! goes to [`Flow::on_response`], which answers with the next command or the outcome.
//! The flows never touch a transport: [`drive`] runs one over any `transmit` function, so the same
//! code drives an in-process card, a card behind pcscd, or a recorded transcript.
//!
//! What it owns: the command sequences, the parsing of card responses, the MAC1/MAC2/TAC input
//! layouts shared with the back office ([`tac`]), and the two security roles a terminal talks to —
//! the purchase SAM ([`sam::PurchaseSam`]: [`sam::CardSam`] over a PSAM card, or
//! [`sam::SoftwareSam`]) and the issuer load host ([`load_host::IssuerLoadHost`]).
//! It also owns what a validator decides at a tap: reading the card ([`tap`]), the issuer
//! whitelist and card blacklist ([`lists`]), blocking a blacklisted card ([`block`]) and pricing
//! metro and bus trips ([`transit`]), which product pays a ride, the second ticket type or the
//! e-purse ([`ticket`]); and the transaction journal ([`journal`]), grey-transaction recovery ([`recovery`]),
//! the [`validator::Validator`] that ties them to the flows, and the settlement export
//! ([`export`]).
//! What it does not own: transports, storage devices (the journal writes through
//! [`journal::NvStorage`]), clocks (the date and time of a transaction are arguments), the PSAM
//! card applet itself (`ykt-purse`).
#![no_std]

extern crate alloc;

pub mod block;
pub mod card_data;
pub mod commands;
mod error;
pub mod export;
pub mod journal;
pub mod lists;
pub mod load;
pub mod load_host;
pub mod purchase;
pub mod recovery;
pub mod sam;
pub mod tac;
pub mod tap;
pub mod ticket;
pub mod transit;
pub mod validator;

pub use error::{DriveError, FlowError, HostError, SamError};
pub use ykt_apdu::{CommandApdu, ResponseApdu};

/// What a flow wants next.
#[derive(Debug)]
#[allow(clippy::exhaustive_enums)] // Complete: a flow either sends a command or ends.
pub enum Step<T> {
    /// Send this command to the card and pass the response back to the flow.
    Send(CommandApdu),
    /// The flow has ended with this outcome.
    Done(T),
}

/// A host-side flow over one card.
pub trait Flow {
    /// What the flow produces when it succeeds.
    type Outcome;
    /// Feeds the card's response to the last command sent.
    fn on_response(&mut self, response: ResponseApdu) -> Result<Step<Self::Outcome>, FlowError>;
}

/// Runs `flow` to its end, sending `first` and every later command through `transmit`.
///
/// A transport failure ends the run with [`DriveError::Transport`]; a refusal or bad answer of the
/// card ends it with [`DriveError::Flow`]. The two are kept apart because only the first leaves the
/// outcome of the last command unknown.
pub fn drive<F: Flow, E>(
    mut flow: F,
    first: CommandApdu,
    mut transmit: impl FnMut(&CommandApdu) -> Result<ResponseApdu, E>,
) -> Result<F::Outcome, DriveError<E>> {
    let mut command = first;
    loop {
        let response = transmit(&command).map_err(DriveError::Transport)?;
        match flow.on_response(response).map_err(DriveError::Flow)? {
            Step::Send(next) => command = next,
            Step::Done(outcome) => return Ok(outcome),
        }
    }
}
