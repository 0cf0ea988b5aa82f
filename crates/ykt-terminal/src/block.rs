//! APPLICATION BLOCK of a blacklisted card, with the SAM's secure-messaging MAC (e-purse.md §4.9–
//! §4.11).
//!
//! ```text
//!   BlockFlow::start ──► GET CHALLENGE 00 84 00 00 04 ──► (PurchaseSam: MAC over 84 1E 00 P2 04, IV = challenge)
//!        ──► APPLICATION BLOCK 84 1E 00 P2 04 MAC ──► Blocked
//! ```
//!
//! The flow runs on the card as the tap left it: the e-purse selected (`crate::tap::TapFlow`).
//! Afterwards SELECT of the application answers `6A81` (temporary) or `9303` (permanent).

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, ResponseApdu};

use crate::card_data::CardIdentity;
use crate::load::expect_success;
use crate::sam::PurchaseSam;
use crate::{Flow, FlowError, Step};

/// How long the block lasts: P2 of APPLICATION BLOCK (e-purse.md §4.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // Complete: the two P2 values of e-purse.md §4.11.
pub enum BlockMode {
    /// P2 `00`: the issuer can lift it with APPLICATION UNBLOCK.
    Temporary,
    /// P2 `01`: for good.
    Permanent,
}

impl BlockMode {
    /// P2 of APPLICATION BLOCK.
    pub fn p2(self) -> u8 {
        match self {
            Self::Temporary => 0x00,
            Self::Permanent => 0x01,
        }
    }
}

/// The block a validator applies to a blacklisted card.
///
/// P (the brief leaves it to the operator): temporary, so that a card listed by mistake can be
/// unblocked by its issuer.
pub const DEFAULT_BLOCK_MODE: BlockMode = BlockMode::Temporary;

/// Length of the GET CHALLENGE random asked for (e-purse.md §4.9: `04` or `08`; the MAC IV uses 4).
pub const CHALLENGE_LEN: u8 = 4;

/// GET CHALLENGE `00 84 00 00 Le` (e-purse.md §4.9).
pub fn get_challenge(len: u8) -> CommandApdu {
    CommandApdu::new(0x00, 0x84, 0x00, 0x00).with_le(usize::from(len))
}

/// The header and Lc of APPLICATION BLOCK, `84 1E 00 P2 04`: the MAC input (e-purse.md §4.10,
/// §4.11; Lc counts the 4-byte MAC).
pub fn application_block_header(mode: BlockMode) -> [u8; 5] {
    [0x84, 0x1E, 0x00, mode.p2(), 0x04]
}

/// APPLICATION BLOCK `84 1E 00 P2 04 MAC` (e-purse.md §4.11).
pub fn application_block(mode: BlockMode, mac: [u8; 4]) -> CommandApdu {
    CommandApdu::new(0x84, 0x1E, 0x00, mode.p2()).with_data(mac.to_vec())
}

/// A completed block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The card.
    pub card: CardIdentity,
    /// Temporary or permanent.
    pub mode: BlockMode,
}

enum State {
    Challenging,
    Blocking,
    Done,
}

/// The block flow. Holds the SAM for the MAC.
pub struct BlockFlow<'s> {
    card: CardIdentity,
    mode: BlockMode,
    sam: &'s mut dyn PurchaseSam,
    state: State,
}

impl<'s> BlockFlow<'s> {
    /// Starts blocking `card` (already selected); returns the flow and GET CHALLENGE.
    pub fn start(
        card: CardIdentity,
        mode: BlockMode,
        sam: &'s mut dyn PurchaseSam,
    ) -> (Self, CommandApdu) {
        let flow = Self {
            card,
            mode,
            sam,
            state: State::Challenging,
        };
        (flow, get_challenge(CHALLENGE_LEN))
    }
}

impl Flow for BlockFlow<'_> {
    type Outcome = Blocked;

    fn on_response(&mut self, response: ResponseApdu) -> Result<Step<Blocked>, FlowError> {
        match core::mem::replace(&mut self.state, State::Done) {
            State::Challenging => {
                const STEP: &str = "GET CHALLENGE";
                expect_success(STEP, &response)?;
                let challenge: [u8; 4] = response
                    .data
                    .get(..4)
                    .filter(|_| response.data.len() == usize::from(CHALLENGE_LEN))
                    .and_then(|c| c.try_into().ok())
                    .ok_or(FlowError::MalformedResponse {
                        step: STEP,
                        len: response.data.len(),
                    })?;
                let header: Vec<u8> = application_block_header(self.mode).to_vec();
                let mac = self
                    .sam
                    .secure_messaging_mac(&self.card, challenge, &header)
                    .map_err(FlowError::Sam)?;
                self.state = State::Blocking;
                Ok(Step::Send(application_block(self.mode, mac)))
            }
            State::Blocking => {
                expect_success("APPLICATION BLOCK", &response)?;
                Ok(Step::Done(Blocked {
                    card: self.card.clone(),
                    mode: self.mode,
                }))
            }
            State::Done => Err(FlowError::AlreadyDone),
        }
    }
}
