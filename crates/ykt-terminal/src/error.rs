//! Errors of the host-side flows.

use core::fmt;

use ykt_apdu::StatusWord;

/// Why a flow stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowError {
    /// The card answered a step with a status word other than success.
    CardRefused {
        /// The command that was refused.
        step: &'static str,
        /// What the card answered.
        sw: StatusWord,
    },
    /// The card's response data had the wrong length or layout for this step.
    MalformedResponse {
        /// The command whose response was malformed.
        step: &'static str,
        /// The data length received.
        len: usize,
    },
    /// The SELECT response carries no e-purse issuer data (tag `9F0C`, 30 bytes).
    NotAPurse,
    /// The card announced an algorithm id that the terminal does not know.
    UnknownAlgorithm(u8),
    /// The purchase SAM refused.
    Sam(SamError),
    /// The load host refused.
    Host(HostError),
    /// A response arrived after the flow had already ended.
    AlreadyDone,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CardRefused { step, sw } => write!(f, "the card refused {step}: {sw:?}"),
            Self::MalformedResponse { step, len } => {
                write!(f, "malformed response to {step} ({len} data bytes)")
            }
            Self::NotAPurse => f.write_str("the selected application carries no e-purse data"),
            Self::UnknownAlgorithm(id) => write!(f, "unknown purse algorithm id {id:02X}"),
            Self::Sam(e) => write!(f, "purchase SAM: {e}"),
            Self::Host(e) => write!(f, "load host: {e}"),
            Self::AlreadyDone => f.write_str("the flow has already ended"),
        }
    }
}

impl core::error::Error for FlowError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sam(e) => Some(e),
            Self::Host(e) => Some(e),
            _ => None,
        }
    }
}

/// Why the purchase SAM refused or could not answer (e-purse.md §6).
///
/// The PSAM card's own refusals ([`SamError::Refused`], and the typed variants a PSAM status word
/// maps to) stay apart from a failed transport to it ([`SamError::Transport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SamError {
    /// No master purchase key for this key index and version (a PSAM answers `9403`).
    UnknownKey {
        /// Key index sent in INITIALIZE.
        index: u8,
        /// Key version returned by the card.
        version: u8,
    },
    /// The algorithm id is not one the SAM knows.
    UnknownAlgorithm(u8),
    /// MAC2 from the card does not verify (a PSAM answers `9302`).
    Mac2Invalid,
    /// MAC2 verification was asked with no purchase in progress (a PSAM answers `6985`).
    NoPurchaseInProgress,
    /// The terminal transaction serial is exhausted (a PSAM answers `9402`).
    SerialExhausted,
    /// The SAM holds no maintenance (DAMK) master key, so it cannot make a secure-messaging MAC
    /// (§4.10); a PSAM answers `9403` to `80 1A` for it.
    NoMaintenanceKey,
    /// The command to MAC does not fit one `80 FA` command to the PSAM (its length in bytes).
    CommandTooLong(usize),
    /// The PSAM answered a command with a status word that none of the variants above names.
    Refused {
        /// The PSAM command, e.g. `"80 70 (MAC1)"`.
        command: &'static str,
        /// What the PSAM answered.
        sw: StatusWord,
    },
    /// The PSAM's response data had the wrong length for the command.
    MalformedResponse {
        /// The PSAM command.
        command: &'static str,
        /// The data length received.
        len: usize,
    },
    /// The transport to the PSAM failed: the outcome of the command is unknown. The transport's
    /// own error is kept by the SAM (`CardSam::take_transport_error`).
    Transport,
}

impl fmt::Display for SamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey { index, version } => {
                write!(f, "no purchase key index {index:02X} version {version:02X}")
            }
            Self::UnknownAlgorithm(id) => write!(f, "unknown algorithm id {id:02X}"),
            Self::Mac2Invalid => f.write_str("MAC2 from the card is invalid"),
            Self::NoPurchaseInProgress => f.write_str("no purchase in progress"),
            Self::SerialExhausted => f.write_str("terminal transaction serial exhausted"),
            Self::NoMaintenanceKey => f.write_str("no maintenance master key"),
            Self::CommandTooLong(len) => {
                write!(f, "a {len}-byte command is too long for a PSAM MAC")
            }
            Self::Refused { command, sw } => write!(f, "the PSAM refused {command}: {sw:?}"),
            Self::MalformedResponse { command, len } => {
                write!(f, "malformed PSAM response to {command} ({len} data bytes)")
            }
            Self::Transport => f.write_str("the transport to the PSAM failed"),
        }
    }
}

impl core::error::Error for SamError {}

/// Why the issuer load host refused a load (e-purse.md §4.3, §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostError {
    /// No master load key for this key index and version.
    UnknownKey {
        /// Key index sent in INITIALIZE FOR LOAD.
        index: u8,
        /// Key version returned by the card.
        version: u8,
    },
    /// The algorithm id is not one the host knows.
    UnknownAlgorithm(u8),
    /// MAC1 from the card does not verify: the card (or the message) is not genuine.
    Mac1Invalid,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey { index, version } => {
                write!(f, "no load key index {index:02X} version {version:02X}")
            }
            Self::UnknownAlgorithm(id) => write!(f, "unknown algorithm id {id:02X}"),
            Self::Mac1Invalid => f.write_str("MAC1 from the card is invalid"),
        }
    }
}

impl core::error::Error for HostError {}

/// Why [`crate::drive`] stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum DriveError<E> {
    /// The transport failed: the outcome of the last command is unknown.
    Transport(E),
    /// The card refused or answered badly, or a security role refused.
    Flow(FlowError),
}

impl<E: fmt::Display> fmt::Display for DriveError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "transport failed: {e}"),
            Self::Flow(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for DriveError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            Self::Flow(e) => Some(e),
        }
    }
}
