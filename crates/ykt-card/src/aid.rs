//! Application identifiers (ISO/IEC 7816-4 §12.2.3, ISO/IEC 7816-5).

use alloc::vec::Vec;
use core::fmt;

/// An application identifier: 5 to 16 bytes (RID of 5 bytes, then an optional PIX).
///
/// Checked once at construction (parse, don't validate).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Aid(Vec<u8>);

/// Why bytes are not an [`Aid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AidError {
    /// An AID has 5 to 16 bytes; this many were given.
    Length(usize),
}

impl fmt::Display for AidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length(n) => write!(f, "an AID has 5 to 16 bytes, not {n}"),
        }
    }
}

impl core::error::Error for AidError {}

impl Aid {
    /// Shortest AID (a bare RID).
    pub const MIN_LEN: usize = 5;
    /// Longest AID.
    pub const MAX_LEN: usize = 16;

    /// Checks the length (5..=16) and copies the bytes.
    pub fn new(bytes: &[u8]) -> Result<Aid, AidError> {
        if (Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            Ok(Aid(bytes.to_vec()))
        } else {
            Err(AidError::Length(bytes.len()))
        }
    }

    /// The AID bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True when `prefix` is a prefix of this AID: the partial DF name match of SELECT
    /// (ISO/IEC 7816-4 §11.2.2). The empty prefix matches every AID.
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.0.starts_with(prefix)
    }
}

impl fmt::Debug for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aid({self})")
    }
}

impl fmt::Display for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl TryFrom<&[u8]> for Aid {
    type Error = AidError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        Aid::new(bytes)
    }
}
