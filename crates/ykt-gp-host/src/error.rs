//! Errors: what the host refused to build, what it could not parse, and, in a session, the
//! transport failing apart from the card saying no.

use core::fmt;

use ykt_apdu::StatusWord;
use ykt_apdu::tlv::TlvError;
use ykt_scp::ScpError;

/// A command this crate refuses to build from the arguments given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// An AID that is not 5 to 16 bytes.
    AidLength(usize),
    /// A length-prefixed field (INSTALL data, token, parameters) longer than 255 bytes.
    FieldTooLong(usize),
    /// The command data would be longer than one short command carries (255 bytes).
    DataTooLong(usize),
    /// More than 256 LOAD or STORE DATA blocks (P2 numbers them `00`..`FF`).
    TooManyBlocks(usize),
    /// A block size of zero.
    BlockSize,
    /// A key length the key type does not have in PUT KEY (3DES: 16 bytes).
    KeyLength(usize),
    /// The key set's algorithm cannot be encrypted with the session's key-encryption key,
    /// or a diversification method does not apply to it (`emv`/`visa2`: 3DES; `kdf3`: AES, SM4).
    KeyType,
    /// A key version number outside `01`..`7F`.
    KeyVersion(u8),
    /// No SCP02 session DEK: the session is not open.
    NoSessionDek,
    /// Sensitive data to encrypt is not a whole number of cipher blocks.
    NotBlockAligned(usize),
    /// DELETE of keys naming neither a key identifier nor a key version.
    NoKeySelected,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AidLength(n) => write!(f, "AID of {n} bytes (must be 5 to 16)"),
            Self::FieldTooLong(n) => write!(f, "field of {n} bytes (at most 255)"),
            Self::DataTooLong(n) => write!(f, "command data of {n} bytes (at most 255)"),
            Self::TooManyBlocks(n) => write!(f, "{n} blocks (at most 256)"),
            Self::BlockSize => f.write_str("block size of zero"),
            Self::KeyLength(n) => write!(f, "key of {n} bytes does not fit its key type"),
            Self::KeyType => f.write_str("key type does not fit the channel or method"),
            Self::KeyVersion(v) => write!(f, "key version {v:02X} (must be 01 to 7F)"),
            Self::NoSessionDek => f.write_str("no SCP02 session DEK (session not open)"),
            Self::NotBlockAligned(n) => write!(f, "{n} bytes are not whole cipher blocks"),
            Self::NoKeySelected => f.write_str("DELETE of keys names no key id or version"),
        }
    }
}

impl core::error::Error for BuildError {}

/// A response whose data does not have the layout its command defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer than the two status bytes came back.
    ResponseTooShort(usize),
    /// The data is not BER-TLV.
    Tlv(TlvError),
    /// A tag the layout requires is absent (GET DATA wrapper, `E3` entry without `4F`, ...).
    MissingTag(u16),
    /// A tag that does not belong at this place (an entry that is not `E3`, ...).
    UnexpectedTag(u32),
    /// A value of the wrong length for its tag.
    Length {
        /// The tag.
        tag: u16,
        /// The length found.
        actual: usize,
    },
    /// The data ends inside a field (length-prefixed receipt, PUT KEY response, ...).
    Truncated,
    /// Bytes left after the last field.
    TrailingData(usize),
    /// GET STATUS kept answering `6310` past 256 parts.
    TooManyParts,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ResponseTooShort(n) => write!(f, "response of {n} bytes has no status word"),
            Self::Tlv(e) => write!(f, "{e}"),
            Self::MissingTag(t) => write!(f, "tag {t:02X} missing"),
            Self::UnexpectedTag(t) => write!(f, "unexpected tag {t:02X}"),
            Self::Length { tag, actual } => write!(f, "tag {tag:02X} has {actual} bytes"),
            Self::Truncated => f.write_str("data ends inside a field"),
            Self::TrailingData(n) => write!(f, "{n} bytes after the last field"),
            Self::TooManyParts => f.write_str("GET STATUS answered 6310 past 256 parts"),
        }
    }
}

impl core::error::Error for ParseError {}

impl From<TlvError> for ParseError {
    fn from(e: TlvError) -> Self {
        Self::Tlv(e)
    }
}

/// The command a session error happened in.
/// This list is complete: one variant per command a [`crate::GpSession`] sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)]
pub enum Operation {
    /// SELECT by AID.
    Select,
    /// INITIALIZE UPDATE.
    InitializeUpdate,
    /// EXTERNAL AUTHENTICATE.
    ExternalAuthenticate,
    /// GET RESPONSE (61xx chaining).
    GetResponse,
    /// GET STATUS.
    GetStatus,
    /// GET DATA.
    GetData,
    /// INSTALL.
    Install,
    /// LOAD.
    Load,
    /// DELETE.
    Delete,
    /// PUT KEY.
    PutKey,
    /// STORE DATA.
    StoreData,
    /// SET STATUS.
    SetStatus,
    /// A command the caller built (`GpSession::send`).
    Other,
}

impl Operation {
    /// The command for an instruction byte.
    pub fn from_ins(ins: u8) -> Self {
        match ins {
            0xA4 => Self::Select,
            0x50 => Self::InitializeUpdate,
            0x82 => Self::ExternalAuthenticate,
            0xC0 => Self::GetResponse,
            0xF2 => Self::GetStatus,
            0xCA => Self::GetData,
            0xE6 => Self::Install,
            0xE8 => Self::Load,
            0xE4 => Self::Delete,
            0xD8 => Self::PutKey,
            0xE2 => Self::StoreData,
            0xF0 => Self::SetStatus,
            _ => Self::Other,
        }
    }

    /// The command's name as GP writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::InitializeUpdate => "INITIALIZE UPDATE",
            Self::ExternalAuthenticate => "EXTERNAL AUTHENTICATE",
            Self::GetResponse => "GET RESPONSE",
            Self::GetStatus => "GET STATUS",
            Self::GetData => "GET DATA",
            Self::Install => "INSTALL",
            Self::Load => "LOAD",
            Self::Delete => "DELETE",
            Self::PutKey => "PUT KEY",
            Self::StoreData => "STORE DATA",
            Self::SetStatus => "SET STATUS",
            Self::Other => "command",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong in a [`crate::GpSession`], with `E` the transmit function's
/// own error.
///
/// "The transport failed" ([`Error::Transport`]) and "the card said no" ([`Error::Card`])
/// are different variants, never folded together.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The transmit function failed: no response came back.
    Transport(E),
    /// The card answered this status word instead of success.
    Card {
        /// The command it refused.
        operation: Operation,
        /// Its status word.
        sw: StatusWord,
    },
    /// The secure channel refused something: a wrong card cryptogram (wrong keys), a bad
    /// R-MAC, a parameter that does not fit the protocol. The session is closed.
    Channel(ScpError),
    /// The card's response data does not have the command's layout.
    Malformed {
        /// The command answered.
        operation: Operation,
        /// What is wrong with it.
        error: ParseError,
    },
    /// A command could not be built from the arguments given.
    Build(BuildError),
    /// PUT KEY's response does not confirm the new keys: another key version or key check
    /// value than the host computed.
    KeyCheck,
}

impl<E> From<BuildError> for Error<E> {
    fn from(e: BuildError) -> Self {
        Self::Build(e)
    }
}

impl<E> From<ScpError> for Error<E> {
    fn from(e: ScpError) -> Self {
        Self::Channel(e)
    }
}

impl<E> Error<E> {
    /// True when the card did not prove it holds the host's keys: a wrong card cryptogram or
    /// pseudo-random card challenge in the INITIALIZE UPDATE response (wrong keys, wrong
    /// diversification, or an impostor).
    pub fn is_wrong_keys(&self) -> bool {
        matches!(
            self,
            Self::Channel(ScpError::InitializeUpdate(
                ykt_scp::InitializeUpdateError::CardCryptogram
                    | ykt_scp::InitializeUpdateError::PseudoRandomChallenge
            ))
        )
    }

    /// The status word when the card said no.
    pub fn status_word(&self) -> Option<StatusWord> {
        match self {
            Self::Card { sw, .. } => Some(*sw),
            Self::Channel(ScpError::Card(sw)) => Some(*sw),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "transport failed: {e}"),
            Self::Card { operation, sw } => write!(f, "card refused {operation}: {sw}"),
            Self::Channel(ScpError::InitializeUpdate(
                ykt_scp::InitializeUpdateError::CardCryptogram,
            )) => f.write_str(
                "secure channel refused: wrong card cryptogram (the card does not hold these keys)",
            ),
            Self::Channel(ScpError::InitializeUpdate(
                ykt_scp::InitializeUpdateError::PseudoRandomChallenge,
            )) => f.write_str(
                "secure channel refused: wrong pseudo-random card challenge (the card does not \
                 hold these keys)",
            ),
            Self::Channel(e) => write!(f, "secure channel: {e}"),
            Self::Malformed { operation, error } => {
                write!(f, "malformed {operation} response: {error}")
            }
            Self::Build(e) => write!(f, "{e}"),
            Self::KeyCheck => {
                f.write_str("PUT KEY response does not confirm the key version and check values")
            }
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            Self::Channel(e) => Some(e),
            Self::Malformed { error, .. } => Some(error),
            Self::Build(e) => Some(e),
            _ => None,
        }
    }
}
