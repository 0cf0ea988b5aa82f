//! What the card does with each message from pcscd's vpcd driver (sans-IO).

use tracing::{debug, trace, warn};
use ykt_card::Card;

use crate::redact;

/// Reply sent when the card could not answer an APDU because it has no power, or lost it in the
/// middle of the command (the tearing switch).
///
/// A real card would simply go silent, but pcscd blocks its reader until the vpcd driver gets a
/// reply frame, so the simulator answers `6F00` ("no precise diagnosis") in exactly that artificial
/// case. The card stays unpowered until pcscd sends POWER ON or RESET; a host then sees the torn
/// transaction like a re-tapped card would.
pub const TORN_RESPONSE: [u8; 2] = [0x6F, 0x00];

/// One message from pcscd, decoded from a frame payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message<'a> {
    /// Control byte `00`: power off. No reply.
    PowerOff,
    /// Control byte `01`: power on (cold reset). No reply.
    PowerOn,
    /// Control byte `02`: warm reset. No reply.
    Reset,
    /// Control byte `04`: send the ATR. Answered at any time, even while powered off, because
    /// pcscd uses it as a presence probe every ~0.44 s.
    GetAtr,
    /// A one-byte frame with any other value; ignored without a reply.
    UnknownControl(u8),
    /// Any frame longer than one byte: a C-APDU, answered with `data || SW1 SW2`.
    Apdu(&'a [u8]),
    /// A zero-length frame; ignored without a reply.
    Empty,
}

impl<'a> Message<'a> {
    /// Decodes a frame payload. Every payload is some message: this never fails.
    pub fn parse(payload: &'a [u8]) -> Self {
        match payload {
            [] => Message::Empty,
            [0x00] => Message::PowerOff,
            [0x01] => Message::PowerOn,
            [0x02] => Message::Reset,
            [0x04] => Message::GetAtr,
            [other] => Message::UnknownControl(*other),
            apdu => Message::Apdu(apdu),
        }
    }
}

/// Applies one message to the card and returns the payload of the reply frame, if the protocol
/// asks for one (GET ATR and APDUs; the power controls have none).
///
/// POWER OFF, POWER ON and RESET all drop the card's volatile state (selected applet, sessions,
/// GET RESPONSE buffer) through the card runtime's power model.
pub fn respond(card: &mut Card, payload: &[u8]) -> Option<Vec<u8>> {
    match Message::parse(payload) {
        Message::PowerOff => {
            debug!("vpcd: power off");
            if card.is_powered() {
                card.power_off();
            }
            None
        }
        Message::PowerOn => {
            debug!("vpcd: power on");
            if card.is_powered() {
                card.power_off();
            }
            card.power_on();
            None
        }
        Message::Reset => {
            debug!("vpcd: reset");
            if card.is_powered() {
                card.reset();
            } else {
                card.power_on();
            }
            None
        }
        Message::GetAtr => {
            trace!("vpcd: get ATR");
            Some(card.atr().as_bytes().to_vec())
        }
        Message::UnknownControl(byte) => {
            warn!(control = byte, "vpcd: unknown control byte ignored");
            None
        }
        Message::Empty => {
            warn!("vpcd: empty frame ignored");
            None
        }
        Message::Apdu(apdu) => Some(transmit(card, apdu)),
    }
}

fn transmit(card: &mut Card, apdu: &[u8]) -> Vec<u8> {
    trace!(command = %redact::Command(apdu), "C-APDU");
    let response = match card.transmit(apdu) {
        Ok(response) => response,
        Err(error) => {
            warn!(%error, header = %redact::Header(apdu), "card did not answer; replying 6F00");
            TORN_RESPONSE.to_vec()
        }
    };
    debug!(header = %redact::Header(apdu), sw = %redact::status_of(&response), "APDU");
    trace!(response = %redact::Hex(&response), "R-APDU");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_parse() {
        assert_eq!(Message::parse(&[0x00]), Message::PowerOff);
        assert_eq!(Message::parse(&[0x01]), Message::PowerOn);
        assert_eq!(Message::parse(&[0x02]), Message::Reset);
        assert_eq!(Message::parse(&[0x04]), Message::GetAtr);
        assert_eq!(Message::parse(&[0x03]), Message::UnknownControl(0x03));
        assert_eq!(Message::parse(&[]), Message::Empty);
        assert_eq!(Message::parse(&[0x00, 0xA4]), Message::Apdu(&[0x00, 0xA4]));
    }
}
