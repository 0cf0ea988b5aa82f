//! The wallet's two links (client.md §3): to the SP-TSM (signed envelopes over HTTP in the CLI)
//! and to the SE (PC/SC, vpcd or an in-process card). The wallet only sees these traits; the
//! caller wires them.

use ykt_envelope::Envelope;

use crate::state::WalletState;

/// The link to the SP-TSM: one request envelope out, one response envelope back.
pub trait TsmLink {
    /// Sends `request` and returns the TSM's response, not yet verified (the wallet verifies).
    fn send(&mut self, request: &Envelope) -> Result<Envelope, LinkError>;
}

/// The link to the SE: one command APDU out, the response (data ‖ SW1 SW2) back.
pub trait SeLink {
    /// Transmits `capdu`.
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, SeError>;
}

/// Why the TSM link failed (a transport failure, not a refusal: refusals are result codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The TSM could not be reached (connection refused, DNS, a broken TLS handshake). Retried.
    #[error("the service cannot be reached")]
    Unreachable,
    /// The server at the TSM's address is not the TSM: its TLS key is none of the pinned ones
    /// (client.md §6.4, "a miss is fatal"), or it offers no TLS 1.3. Nothing was sent to it. Not
    /// retried: the address or the pins are wrong, or someone is in between.
    #[error("the service's TLS identity is not the pinned one")]
    Untrusted,
    /// No answer in time. Retried with the same `request_id`.
    #[error("the service did not answer in time")]
    Timeout,
    /// An answer that is not an envelope (an HTTP error page, bad JSON, an unknown result
    /// code, an unknown member). Not retried.
    #[error("the service's answer is not a valid message")]
    Malformed,
}

impl LinkError {
    /// True when the same request may be sent again (fresh nonce, same `request_id`).
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unreachable | Self::Timeout)
    }
}

/// Why the SE link failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeError {
    /// No SE (no reader, no card, the card was removed).
    #[error("the secure element is not present")]
    NotPresent,
    /// The exchange broke off (a reader or transport error).
    #[error("the exchange with the secure element failed")]
    Communication,
}

/// Reads a response body from the TSM link (the bytes of an HTTP response) as an envelope;
/// anything else, including an unknown result code, is [`LinkError::Malformed`].
pub fn decode_response(bytes: &[u8]) -> Result<Envelope, LinkError> {
    Envelope::from_slice(bytes).map_err(|_| LinkError::Malformed)
}

/// Where the wallet's state is kept: the wallet calls [`Persist::persist`] whenever the state
/// changed in a way that must survive a crash, and always before a card command of a top-up
/// (client.md §4.2). The CLI seals the state and writes the file atomically.
pub trait Persist {
    /// Saves `state` durably (fsync before returning).
    fn persist(&mut self, state: &WalletState) -> Result<(), PersistError>;
}

/// The state could not be saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the wallet could not save its state")]
#[non_exhaustive]
pub struct PersistError;

impl PersistError {
    /// The error.
    pub fn new() -> Self {
        PersistError
    }
}

impl Default for PersistError {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: FnMut(&WalletState) -> Result<(), PersistError>> Persist for F {
    fn persist(&mut self, state: &WalletState) -> Result<(), PersistError> {
        self(state)
    }
}

#[cfg(test)]
mod tests {
    use super::LinkError;
    use crate::WalletError;

    #[test]
    fn an_untrusted_server_is_not_retried_and_has_its_own_sentence() {
        assert!(LinkError::Unreachable.is_retryable());
        assert!(LinkError::Timeout.is_retryable());
        assert!(!LinkError::Untrusted.is_retryable());
        assert!(!LinkError::Malformed.is_retryable());
        let (code, text) = WalletError::Link(LinkError::Untrusted).user_text();
        assert_eq!(code, "E1001");
        assert!(text.contains("nothing was sent"), "{text}");
        assert_ne!(
            WalletError::Link(LinkError::Unreachable).user_text().0,
            code
        );
    }
}
