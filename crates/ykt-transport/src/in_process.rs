//! [`InProcess`]: the card runtime called directly, no I/O.

use tracing::debug;
use ykt_apdu::{CommandApdu, ResponseApdu};
use ykt_card::Card;

use crate::channel::CardChannel;
use crate::error::TransportError;
use crate::redact;

/// A [`CardChannel`] over a [`Card`] in this process: the fastest channel, used by tests, the
/// demo and benchmarks. The card is powered on when the channel is made.
pub struct InProcess(Card);

impl InProcess {
    /// Wraps `card`, powering it on if it has no power.
    pub fn new(mut card: Card) -> Self {
        if !card.is_powered() {
            card.power_on();
        }
        InProcess(card)
    }

    /// The card, e.g. to read `persistent_writes` or save its state.
    pub fn card(&self) -> &Card {
        &self.0
    }

    /// The card, e.g. to arm its tearing switch.
    pub fn card_mut(&mut self) -> &mut Card {
        &mut self.0
    }

    /// Gives the card back.
    pub fn into_card(self) -> Card {
        self.0
    }
}

impl core::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InProcess")
            .field("powered", &self.0.is_powered())
            .finish_non_exhaustive()
    }
}

impl CardChannel for InProcess {
    fn transmit(&mut self, command: &CommandApdu) -> Result<ResponseApdu, TransportError> {
        let bytes = command.to_bytes();
        let response = self.0.transmit(&bytes)?;
        debug!(header = %redact::Header(&bytes), sw = %redact::status_of(&response), "APDU");
        ResponseApdu::parse(&response).map_err(TransportError::MalformedResponse)
    }

    /// Warm reset when powered; power-on (with journal recovery) after a power loss, like a card
    /// tapped again.
    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        let atr = if self.0.is_powered() {
            self.0.reset()
        } else {
            self.0.power_on()
        };
        Ok(atr.as_bytes().to_vec())
    }
}
