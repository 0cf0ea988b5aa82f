//! The [`CardChannel`] trait: one C-APDU in, one R-APDU out.

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};

use crate::error::{Error, TransportError};

/// A way to exchange APDUs with one card: in-process, through PC/SC, or anything else.
///
/// Implementations pass APDUs through untouched: no GET RESPONSE chaining and no secure messaging
/// happen here (those belong to the host flows above).
pub trait CardChannel {
    /// Sends one command and returns the card's response. A status word other than `9000` is a
    /// normal response, not an error; `Err` means no response is available.
    fn transmit(&mut self, command: &CommandApdu) -> Result<ResponseApdu, TransportError>;

    /// Resets the card (warm reset, or power-up if it had no power) and returns its ATR.
    /// Volatile card state (selection, sessions) is gone afterwards.
    fn reset(&mut self) -> Result<Vec<u8>, TransportError>;

    /// Sends one command and returns the response data when the card answered `9000`;
    /// any other status word becomes [`Error::Card`].
    fn transmit_checked(&mut self, command: &CommandApdu) -> Result<Vec<u8>, Error> {
        let response = self.transmit(command)?;
        if response.sw == StatusWord::SUCCESS {
            Ok(response.data)
        } else {
            Err(Error::Card(response.sw))
        }
    }
}

impl<C: CardChannel + ?Sized> CardChannel for &mut C {
    fn transmit(&mut self, command: &CommandApdu) -> Result<ResponseApdu, TransportError> {
        (**self).transmit(command)
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        (**self).reset()
    }
}

impl<C: CardChannel + ?Sized> CardChannel for Box<C> {
    fn transmit(&mut self, command: &CommandApdu) -> Result<ResponseApdu, TransportError> {
        (**self).transmit(command)
    }

    fn reset(&mut self) -> Result<Vec<u8>, TransportError> {
        (**self).reset()
    }
}
