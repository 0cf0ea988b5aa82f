//! Answer-to-reset (ISO/IEC 7816-3 §8.2).

use alloc::vec::Vec;
use core::fmt;

/// An answer-to-reset, checked for structure and check byte.
///
/// [`Atr::default_t1`] is the simulator's ATR:
///
/// ```text
///   3B        TS  direct convention
///   83        T0  TD1 present, 3 historical bytes
///   80        TD1 TD2 present, protocol T=0
///   01        TD2 no more interface bytes, protocol T=1
///   79 6B 74  historical bytes "ykt" (first byte not 00/10/80: proprietary format, 7816-4 §8.1.1)
///   64        TCK XOR of T0 .. last historical byte (required because T=1 is offered)
/// ```
///
/// It offers T=0 and T=1 like the `3B 80 80 01 01` that pcscd accepted through vpcd, and adds
/// the historical bytes. The card runtime does its own `61xx`/`6Cxx` handling, so T=0 readers
/// need nothing from the reader driver.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Atr(Vec<u8>);

/// Why bytes are not an ATR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AtrError {
    /// TS is neither `3B` (direct) nor `3F` (inverse convention).
    InvalidTs(u8),
    /// The bytes end before the interface bytes, historical bytes or TCK announced.
    Truncated,
    /// Bytes follow the last announced byte.
    TrailingBytes,
    /// ISO/IEC 7816-3 limits the ATR to 32 bytes after TS.
    TooLong,
    /// More than 15 historical bytes asked of [`Atr::with_historical`].
    TooManyHistoricalBytes(usize),
    /// TCK does not make the XOR of T0..TCK zero.
    CheckByteMismatch {
        /// The TCK that would be correct.
        expected: u8,
        /// The TCK present.
        found: u8,
    },
}

impl fmt::Display for AtrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidTs(ts) => write!(f, "invalid ATR initial character {ts:02X}"),
            Self::Truncated => f.write_str("ATR ends before the announced bytes"),
            Self::TrailingBytes => f.write_str("bytes after the end of the ATR"),
            Self::TooLong => f.write_str("ATR longer than 33 bytes"),
            Self::TooManyHistoricalBytes(n) => write!(f, "{n} historical bytes (15 at most)"),
            Self::CheckByteMismatch { expected, found } => {
                write!(f, "ATR check byte {found:02X}, expected {expected:02X}")
            }
        }
    }
}

impl core::error::Error for AtrError {}

impl Atr {
    /// The simulator's ATR `3B 83 80 01 79 6B 74 64` (T=0 and T=1, historical bytes "ykt").
    pub fn default_t1() -> Atr {
        Atr(alloc::vec![0x3B, 0x83, 0x80, 0x01, 0x79, 0x6B, 0x74, 0x64])
    }

    /// A T=0 + T=1 ATR of the [`default_t1`](Self::default_t1) shape with other historical
    /// bytes (at most 15), TCK computed.
    pub fn with_historical(historical: &[u8]) -> Result<Atr, AtrError> {
        if historical.len() > 15 {
            return Err(AtrError::TooManyHistoricalBytes(historical.len()));
        }
        let k = (historical.len() & 0x0F) as u8;
        let mut bytes = alloc::vec![0x3B, 0x80 | k, 0x80, 0x01];
        bytes.extend_from_slice(historical);
        let tck = bytes.iter().skip(1).fold(0u8, |acc, b| acc ^ b);
        bytes.push(tck);
        Ok(Atr(bytes))
    }

    /// Parses and checks an ATR: TS, T0, the interface byte chain, K historical bytes, and TCK
    /// when any protocol other than T=0 is indicated (ISO/IEC 7816-3 §8.2.5).
    pub fn new(bytes: &[u8]) -> Result<Atr, AtrError> {
        let ts = *bytes.first().ok_or(AtrError::Truncated)?;
        if ts != 0x3B && ts != 0x3F {
            return Err(AtrError::InvalidTs(ts));
        }
        if bytes.len() > 33 {
            return Err(AtrError::TooLong);
        }
        let t0 = *bytes.get(1).ok_or(AtrError::Truncated)?;
        let historical = usize::from(t0 & 0x0F);
        let mut y = t0 >> 4;
        let mut i = 2usize;
        let mut needs_tck = false;
        loop {
            i += usize::from(y & 0x1) + usize::from((y >> 1) & 0x1) + usize::from((y >> 2) & 0x1);
            if y & 0x8 == 0 {
                break;
            }
            let td = *bytes.get(i).ok_or(AtrError::Truncated)?;
            i += 1;
            if td & 0x0F != 0 {
                needs_tck = true;
            }
            y = td >> 4;
        }
        i += historical;
        if needs_tck {
            let found = *bytes.get(i).ok_or(AtrError::Truncated)?;
            let body = bytes.get(1..i).ok_or(AtrError::Truncated)?;
            let expected = body.iter().fold(0u8, |acc, b| acc ^ b);
            if expected != found {
                return Err(AtrError::CheckByteMismatch { expected, found });
            }
            i += 1;
        }
        match bytes.len().cmp(&i) {
            core::cmp::Ordering::Less => Err(AtrError::Truncated),
            core::cmp::Ordering::Greater => Err(AtrError::TrailingBytes),
            core::cmp::Ordering::Equal => Ok(Atr(bytes.to_vec())),
        }
    }

    /// The ATR bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Default for Atr {
    fn default() -> Self {
        Self::default_t1()
    }
}

impl fmt::Debug for Atr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Atr(")?;
        for b in &self.0 {
            write!(f, "{b:02X}")?;
        }
        write!(f, ")")
    }
}
