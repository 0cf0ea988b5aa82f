//! Errors of the card channels.
//!
//! Two layers are kept apart on purpose. [`TransportError`] means the exchange itself failed: no
//! R-APDU came back. A card that answered with a status word other than `9000` did *not* fail at
//! this layer; its status word is in the [`ykt_apdu::ResponseApdu`]. Host code that wants "data or
//! a refusal" uses [`crate::CardChannel::transmit_checked`], which returns [`Error::Card`] for the
//! status word and [`Error::Transport`] for everything else.

use ykt_apdu::{ParseError, StatusWord};
use ykt_card::CardError;

/// The exchange with the card failed: no R-APDU is available.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The in-process card refused the exchange: it has no power, or lost it during the command
    /// (the tearing switch). Power it again with [`crate::CardChannel::reset`].
    #[error("in-process card: {0}")]
    Card(#[source] CardError),
    /// The bytes that came back are not an R-APDU (fewer than the two status bytes).
    #[error("malformed response from the card: {0}")]
    MalformedResponse(#[source] ParseError),
    /// The command or response does not fit the transport's frame (vpcd: 65,535 bytes; PC/SC:
    /// the extended-APDU buffer).
    #[error("{len} bytes do not fit one frame (at most {max})")]
    FrameTooLong {
        /// Length that was asked for.
        len: usize,
        /// Largest length the transport carries.
        max: usize,
    },
    /// The PC/SC layer (libpcsclite / pcscd) reported an error.
    #[cfg(feature = "pcsc")]
    #[error("PC/SC: {0}")]
    Pcsc(#[from] pcsc::Error),
    /// No PC/SC reader with this name; `available` lists the readers that exist.
    #[error("no PC/SC reader named {name:?} (readers: {available:?})")]
    ReaderNotFound {
        /// The reader name asked for.
        name: String,
        /// The readers pcscd reported.
        available: Vec<String>,
    },
    /// pcscd reported no reader at all.
    #[error("no PC/SC reader is connected")]
    NoReaders,
    /// The caller's after-command hook failed (for example, persisting the card state); serving
    /// stopped so that no further command runs on a state that could not be saved.
    #[error("after-command hook failed: {0}")]
    Hook(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<CardError> for TransportError {
    fn from(e: CardError) -> Self {
        TransportError::Card(e)
    }
}

/// Host-side result of one checked exchange: the transport failed, or the card said no.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No response: see [`TransportError`].
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The card answered with this status word instead of `9000`.
    #[error("card answered {0:?}")]
    Card(StatusWord),
}
