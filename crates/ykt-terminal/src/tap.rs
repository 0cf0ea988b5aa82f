//! Reading a card at a validator, and screening it against the lists (e-purse.md §1, §2, §4.2).
//!
//! ```text
//!   TapFlow::start ──► SELECT (FCI: CardIdentity) ──► READ RECORD EF1A ──► GET BALANCE ──► CardSnapshot
//!   screen(snapshot, whitelist, blacklist) ──► Admit | Block | Refuse(reason)
//!   Admit ──► transit::decide ──► PurchaseFlow (composite)        Block ──► BlockFlow
//! ```

use alloc::vec::Vec;
use core::fmt;

use ykt_apdu::{CommandApdu, ResponseApdu};

use crate::card_data::CardIdentity;
use crate::commands;
use crate::lists::{CardBlacklist, IssuerWhitelist};
use crate::load::expect_success;
use crate::transit::{self, BcdDateTime, Decision, Ef1aRecord, RecordError, Site, TransitConfig};
use crate::{Flow, FlowError, Step};

/// Record number of the EF1A trip record read at a tap.
///
/// L (e-purse.md §2: the record identifier is `02`, "not settled"): the purse personalises EF1A
/// record n with identifier n (`ykt_purse::files::ef1a_initial_record`), so the record with
/// identifier [`transit::EF1A_RECORD_ID`] is record number 2.
pub const EF1A_RECORD_NUMBER: u8 = 0x02;

/// READ RECORD `00 B2 <n> <SFI<<3 | 04> <Le>` (e-purse.md §2, H), by record number.
pub fn read_record(sfi: u8, number: u8, le: usize) -> CommandApdu {
    CommandApdu::new(0x00, 0xB2, number, (sfi << 3) | 0x04).with_le(le)
}

/// READ RECORD of the EF1A trip record: `00 B2 02 D4 80`.
pub fn read_ef1a() -> CommandApdu {
    read_record(0x1A, EF1A_RECORD_NUMBER, transit::EF1A_LEN)
}

/// What a validator knows about the card after a tap.
#[derive(Debug, Clone)]
pub struct CardSnapshot {
    /// The card's EF15 data from the FCI.
    pub card: CardIdentity,
    /// The EF1A trip record: `Ok(None)` if never written, `Err` if it does not decode.
    pub ef1a: Result<Option<Ef1aRecord>, RecordError>,
    /// The EF1A bytes as read.
    pub ef1a_bytes: Vec<u8>,
    /// The e-purse balance in fen.
    pub balance: u32,
}

impl CardSnapshot {
    /// [`transit::decide`] for this card; an undecodable EF1A is refused.
    pub fn decide(&self, site: &Site, now: BcdDateTime, config: &TransitConfig) -> Decision {
        match &self.ef1a {
            Ok(record) => {
                transit::decide(record.as_ref(), &self.card, self.balance, site, now, config)
            }
            Err(e) => Decision::Refuse(transit::RefuseReason::UnreadableRecord(*e)),
        }
    }
}

enum State {
    Selecting,
    Reading(CardIdentity),
    Balance(CardIdentity, Vec<u8>),
    Done,
}

/// The tap flow: SELECT the e-purse, READ RECORD EF1A, GET BALANCE.
///
/// A blocked application answers SELECT with `6A81` or `9303` (e-purse.md §1, §4.11); the flow then
/// ends with [`FlowError::CardRefused`] for `"SELECT"`.
pub struct TapFlow {
    state: State,
}

impl TapFlow {
    /// Starts a tap on the application `aid`; returns the flow and the SELECT command.
    pub fn start(aid: &[u8]) -> (Self, CommandApdu) {
        (
            Self {
                state: State::Selecting,
            },
            commands::select(aid),
        )
    }
}

impl Flow for TapFlow {
    type Outcome = CardSnapshot;

    fn on_response(&mut self, response: ResponseApdu) -> Result<Step<CardSnapshot>, FlowError> {
        match core::mem::replace(&mut self.state, State::Done) {
            State::Selecting => {
                expect_success("SELECT", &response)?;
                let card = CardIdentity::from_fci(&response.data)?;
                self.state = State::Reading(card);
                Ok(Step::Send(read_ef1a()))
            }
            State::Reading(card) => {
                expect_success("READ RECORD", &response)?;
                self.state = State::Balance(card, response.data);
                Ok(Step::Send(commands::get_balance()))
            }
            State::Balance(card, ef1a_bytes) => {
                const STEP: &str = "GET BALANCE";
                expect_success(STEP, &response)?;
                let balance: [u8; 4] = response.data.as_slice().try_into().map_err(|_| {
                    FlowError::MalformedResponse {
                        step: STEP,
                        len: response.data.len(),
                    }
                })?;
                Ok(Step::Done(CardSnapshot {
                    ef1a: Ef1aRecord::decode_slot(&ef1a_bytes),
                    ef1a_bytes,
                    card,
                    balance: u32::from_be_bytes(balance),
                }))
            }
            State::Done => Err(FlowError::AlreadyDone),
        }
    }
}

/// Application type identifier a terminal requires in EF15 byte 8 (e-purse.md §2, H).
pub const APPLICATION_TYPE_EPURSE: u8 = 0x02;
/// Application version / start flag a terminal requires in EF15 byte 9 (e-purse.md §2: "terminal
/// code checks `01` = enabled", H).
pub const APPLICATION_ENABLED: u8 = 0x01;

/// What the validator does with a card after screening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // Complete: let through, block, or refuse.
pub enum Screening {
    /// Go on with the transit decision.
    Admit,
    /// The card is blacklisted: block its application (see [`crate::block`]).
    Block,
    /// Refuse the card.
    Refuse(ScreenRefusal),
}

/// Why screening refused a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScreenRefusal {
    /// The issuer is not on the whitelist.
    IssuerNotAccepted,
    /// EF15 byte 8 is not `02` (not a usable e-purse).
    NotAnEPurse(u8),
    /// EF15 byte 9 is not `01` (the application is not enabled).
    NotEnabled(u8),
}

impl fmt::Display for ScreenRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IssuerNotAccepted => f.write_str("the card's issuer is not accepted here"),
            Self::NotAnEPurse(t) => write!(f, "application type {t:02X} is not an e-purse"),
            Self::NotEnabled(v) => write!(f, "application flag {v:02X}: not enabled"),
        }
    }
}

/// Screens a tapped card: the issuer must be whitelisted and the application an enabled e-purse,
/// then a blacklisted card is to be blocked.
///
/// The whitelist comes first: blocking needs the issuer's maintenance key, which a terminal has only
/// for the issuers it accepts.
pub fn screen(
    snapshot: &CardSnapshot,
    whitelist: &IssuerWhitelist,
    blacklist: &CardBlacklist,
) -> Screening {
    let card = &snapshot.card;
    if !whitelist.admits(card) {
        return Screening::Refuse(ScreenRefusal::IssuerNotAccepted);
    }
    if card.application_type != APPLICATION_TYPE_EPURSE {
        return Screening::Refuse(ScreenRefusal::NotAnEPurse(card.application_type));
    }
    if card.application_version != APPLICATION_ENABLED {
        return Screening::Refuse(ScreenRefusal::NotEnabled(card.application_version));
    }
    if blacklist.lists(card) {
        return Screening::Block;
    }
    Screening::Admit
}
