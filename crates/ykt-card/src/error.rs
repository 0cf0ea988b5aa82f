//! Errors of the card runtime's host-facing API.

use alloc::string::String;
use core::fmt;

use ykt_apdu::StatusWord;

use crate::Aid;

/// Why [`Card`](crate::Card) could not run a command or an installation. A bad APDU is never
/// a `CardError`: it is answered with a status word.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CardError {
    /// The card is not powered (never powered on, powered off, or power was cut): call
    /// `power_on`.
    NotPowered,
    /// Power was cut during this command or installation (the tearing switch fired). The card
    /// stays unpowered until `power_on`, which recovers the journal.
    PowerLost,
    /// An applet with this AID is installed already.
    DuplicateAid(Aid),
    /// The installation's `init` (or its commit) refused with this status word; nothing of it
    /// was kept.
    InstallRejected(StatusWord),
    /// All 65 535 applet namespaces are used.
    NamespacesExhausted,
}

impl fmt::Display for CardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPowered => f.write_str("card not powered"),
            Self::PowerLost => f.write_str("card lost power during the operation"),
            Self::DuplicateAid(aid) => write!(f, "an applet with AID {aid} is installed already"),
            Self::InstallRejected(sw) => write!(f, "installation refused with status {sw}"),
            Self::NamespacesExhausted => f.write_str("no applet namespace left"),
        }
    }
}

impl core::error::Error for CardError {}

/// Why bytes could not be loaded as a saved card (see `Card::load_state` for the layout). A
/// corrupt file is always an error, never a fresh card.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// The bytes do not start with the magic `"YKTCARD\0"`.
    NotAStateFile,
    /// A state file of a version this code does not read.
    UnsupportedVersion(u16),
    /// The CRC-32 over the file does not match: the file was altered or damaged.
    ChecksumMismatch,
    /// The file is shorter than its header says (or than a header).
    Truncated,
    /// The checksum matches but the content breaks a rule of the format.
    Malformed(MalformedState),
    /// The file names an applet kind the factory cannot create.
    UnknownApplet(String),
}

/// Which rule of the state format a checksummed file breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MalformedState {
    /// Bytes follow the length the header gives.
    TrailingBytes,
    /// A field runs past the end of the body.
    FieldOverrun,
    /// The body has bytes after the last field.
    BodyTrailingBytes,
    /// An applet entry's AID is not 5..=16 bytes.
    InvalidAid,
    /// An applet kind is not UTF-8.
    InvalidKind,
    /// Two applet entries share a namespace or an AID.
    DuplicateApplet,
    /// A namespace is not below the next-namespace counter.
    NamespaceOutOfRange,
    /// The factory built an applet whose AID differs from the recorded one.
    AidMismatch,
    /// The EEPROM image (after replaying its journal) is not a valid object heap, or the region
    /// sizes are not whole pages within capacity.
    EepromImage,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAStateFile => f.write_str("not a ykt card state file"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported card state version {v}"),
            Self::ChecksumMismatch => f.write_str("card state checksum mismatch"),
            Self::Truncated => f.write_str("card state file truncated"),
            Self::Malformed(m) => write!(f, "malformed card state: {m}"),
            Self::UnknownApplet(kind) => write!(f, "unknown applet kind {kind:?}"),
        }
    }
}

impl fmt::Display for MalformedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TrailingBytes => "bytes after the announced length",
            Self::FieldOverrun => "a field runs past the end",
            Self::BodyTrailingBytes => "bytes after the last field",
            Self::InvalidAid => "invalid AID",
            Self::InvalidKind => "applet kind is not UTF-8",
            Self::DuplicateApplet => "duplicate applet namespace or AID",
            Self::NamespaceOutOfRange => "namespace beyond the allocation counter",
            Self::AidMismatch => "factory applet AID differs from the saved AID",
            Self::EepromImage => "EEPROM image is not a valid object heap",
        })
    }
}

impl core::error::Error for StateError {}
