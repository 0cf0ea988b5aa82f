//! Parse errors for APDUs.

use core::fmt;

/// Why a byte string is not a well-formed command or response APDU (ISO/IEC 7816-4 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer bytes than the fixed part: 4 header bytes for a command, SW1 SW2 for a response.
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// The body after the header fits none of the cases: the length the Lc field announces
    /// (plus an optional Le field) does not add up to the bytes received.
    LengthMismatch {
        /// Body length (bytes after the 4-byte header) the Lc field calls for, without Le.
        expected: usize,
        /// Body length received.
        actual: usize,
    },
    /// An extended length field was announced (a first body byte `00` followed by more bytes)
    /// but is cut short: the body is `00 xx` (6 bytes in all).
    TruncatedExtendedLength,
    /// Extended Lc `00 00 00`: ISO/IEC 7816-4 §5.1 forbids a zero Lc; a command without data
    /// has no Lc field.
    ZeroLc,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "APDU too short ({len} bytes)"),
            Self::LengthMismatch { expected, actual } => write!(
                f,
                "APDU body length {actual} does not match the {expected} bytes announced by Lc"
            ),
            Self::TruncatedExtendedLength => f.write_str("extended length field cut short"),
            Self::ZeroLc => f.write_str("extended Lc of zero"),
        }
    }
}

impl core::error::Error for ParseError {}
