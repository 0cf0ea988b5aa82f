//! BCD date-times as the e-purse files carry them (`YYYYMMDDhhmmss`, 7 bytes; e-purse.md
//! conventions), and the elapsed-time arithmetic the transfer and trip-length rules need.

use core::fmt;

/// A checked BCD date-time `YYYYMMDDhhmmss`: every nibble a decimal digit, month 1–12, day 1–31
/// (not checked against the month), hour < 24, minute and second < 60.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BcdDateTime([u8; 7]);

/// Why 7 bytes are not a BCD date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DateTimeError {
    /// Byte `index` holds a nibble above 9.
    NotBcd {
        /// Offset of the byte in the 7 bytes.
        index: usize,
    },
    /// A field is out of range (month 0 or 13, hour 24, …).
    OutOfRange {
        /// Which field: `"month"`, `"day"`, `"hour"`, `"minute"` or `"second"`.
        field: &'static str,
    },
}

impl fmt::Display for DateTimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotBcd { index } => write!(f, "byte {index} of the date-time is not BCD"),
            Self::OutOfRange { field } => write!(f, "the {field} of the date-time is out of range"),
        }
    }
}

impl core::error::Error for DateTimeError {}

fn bcd(byte: u8, index: usize) -> Result<u32, DateTimeError> {
    let (hi, lo) = (byte >> 4, byte & 0x0F);
    if hi > 9 || lo > 9 {
        return Err(DateTimeError::NotBcd { index });
    }
    Ok(u32::from(hi) * 10 + u32::from(lo))
}

impl BcdDateTime {
    /// Checks 7 BCD bytes.
    pub fn new(bytes: [u8; 7]) -> Result<Self, DateTimeError> {
        let mut v = [0u32; 7];
        for (i, b) in bytes.iter().enumerate() {
            v[i] = bcd(*b, i)?;
        }
        let checks: [(&'static str, u32, u32, u32); 5] = [
            ("month", v[2], 1, 12),
            ("day", v[3], 1, 31),
            ("hour", v[4], 0, 23),
            ("minute", v[5], 0, 59),
            ("second", v[6], 0, 59),
        ];
        for (field, value, lo, hi) in checks {
            if value < lo || value > hi {
                return Err(DateTimeError::OutOfRange { field });
            }
        }
        Ok(Self(bytes))
    }

    /// The 7 bytes.
    pub fn bytes(&self) -> [u8; 7] {
        self.0
    }

    /// Seconds since 0000-03-01 00:00:00 in the proleptic Gregorian calendar; only differences
    /// of this value mean anything.
    pub fn seconds(&self) -> i64 {
        // The bytes were checked in `new`, so every nibble is a digit.
        let d = |i: usize| i64::from(self.0[i] >> 4) * 10 + i64::from(self.0[i] & 0x0F);
        let year = d(0) * 100 + d(1);
        let (month, day) = (d(2), d(3));
        // Days from civil (H. Hinnant's algorithm), with March as the first month.
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe;
        days * 86_400 + d(4) * 3_600 + d(5) * 60 + d(6)
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn seconds_since(&self, earlier: &BcdDateTime) -> i64 {
        self.seconds() - earlier.seconds()
    }

    /// The date `YYYYMMDD` (4 BCD bytes).
    pub fn date(&self) -> [u8; 4] {
        [self.0[0], self.0[1], self.0[2], self.0[3]]
    }
}

impl fmt::Debug for BcdDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}
