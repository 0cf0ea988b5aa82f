//! Host-side errors. The card side answers with status words only.

use core::fmt;

use ykt_apdu::StatusWord;

/// A parameter given to this crate that the protocol cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParameterError {
    /// An `i` parameter this crate does not implement for the SCP.
    UnsupportedI {
        /// The SCP identifier (`02` or `03`).
        scp: u8,
        /// The `i` given.
        i: u8,
    },
    /// A security level byte that is none of `00`, `01`, `03`, `11`, `13`, `33`.
    UnknownLevel(u8),
    /// The level asks for R-MAC or R-ENC, which this `i` does not support.
    LevelNotSupported {
        /// The requested level.
        level: u8,
        /// The `i` of the channel.
        i: u8,
    },
    /// The host challenge or card challenge has the wrong length for the channel.
    ChallengeLength {
        /// Length the channel needs.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// The key set's algorithm is not the protocol's (3DES for SCP02, AES for SCP03, SM4 for
    /// the SM4 channel).
    KeyTypeMismatch,
    /// The security domain AID for the pseudo-random challenge is not 5 to 16 bytes.
    AidLength(usize),
}

impl fmt::Display for ParameterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedI { scp, i } => write!(f, "SCP{scp:02X} i={i:02X} not supported"),
            Self::UnknownLevel(b) => write!(f, "unknown security level {b:02X}"),
            Self::LevelNotSupported { level, i } => {
                write!(f, "security level {level:02X} not supported with i={i:02X}")
            }
            Self::ChallengeLength { expected, actual } => {
                write!(
                    f,
                    "challenge of {actual} bytes, the channel needs {expected}"
                )
            }
            Self::KeyTypeMismatch => f.write_str("key set algorithm does not fit the protocol"),
            Self::AidLength(n) => write!(f, "AID of {n} bytes (must be 5 to 16)"),
        }
    }
}

impl core::error::Error for ParameterError {}

/// Why the host rejected an INITIALIZE UPDATE response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitializeUpdateError {
    /// The response data has a length no layout of the expected protocol allows.
    Length(usize),
    /// The key information names another SCP than the one the host runs.
    ScpMismatch {
        /// SCP identifier expected.
        expected: u8,
        /// SCP identifier received.
        actual: u8,
    },
    /// The card's SCP03 `i` differs from the one the host was configured for.
    IMismatch {
        /// `i` expected.
        expected: u8,
        /// `i` received.
        actual: u8,
    },
    /// The card challenge is not the pseudo-random challenge of the announced sequence counter.
    PseudoRandomChallenge,
    /// The card cryptogram does not verify: the card does not hold these keys (or is an
    /// impostor).
    CardCryptogram,
}

/// Why the host rejected a response inside the secure channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// A successful response is shorter than its R-MAC.
    MissingMac,
    /// The R-MAC does not verify.
    Mac,
    /// The encrypted response data is not whole blocks or has no valid `80 00..` padding.
    Decryption,
}

/// Everything that can go wrong on the host side of a secure channel.
///
/// "The card said no" ([`ScpError::Card`]) is kept apart from the host's own refusals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScpError {
    /// The card answered INITIALIZE UPDATE or EXTERNAL AUTHENTICATE with this status word.
    Card(StatusWord),
    /// A parameter the host was given does not fit the protocol.
    Parameter(ParameterError),
    /// The INITIALIZE UPDATE response was refused.
    InitializeUpdate(InitializeUpdateError),
    /// A response inside the channel was refused; the channel is closed.
    Response(ResponseError),
    /// The command cannot be wrapped: its data plus padding and MAC exceed 65 535 bytes (or
    /// 255 for SCP02, which has only short lengths).
    CommandTooLong(usize),
    /// The channel was closed by an earlier failure.
    Closed,
    /// The [`crate::SessionKeyDeriver`] could not compute the session keys.
    Deriver,
}

impl From<ParameterError> for ScpError {
    fn from(e: ParameterError) -> Self {
        Self::Parameter(e)
    }
}

impl fmt::Display for ScpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Card(sw) => write!(f, "card answered {sw}"),
            Self::Parameter(e) => write!(f, "{e}"),
            Self::InitializeUpdate(e) => write!(f, "INITIALIZE UPDATE response refused: {e:?}"),
            Self::Response(e) => write!(f, "secure channel response refused: {e:?}"),
            Self::CommandTooLong(n) => write!(f, "command of {n} data bytes too long to wrap"),
            Self::Closed => f.write_str("secure channel closed"),
            Self::Deriver => f.write_str("session key derivation failed"),
        }
    }
}

impl core::error::Error for ScpError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Parameter(e) => Some(e),
            _ => None,
        }
    }
}
