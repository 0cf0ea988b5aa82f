//! The transit records of the EP ADF: EF1A, the composite (复合) trip record of 128 bytes, and
//! EF1E, the cyclic trip history of 48-byte records (e-purse.md §2, both M).
//!
//! Both decoders are total: any byte string gives a record or a typed [`RecordError`].

use core::fmt;

use super::time::{BcdDateTime, DateTimeError};

/// Length of an EF1A record for bus and metro (e-purse.md §2).
pub const EF1A_LEN: usize = 128;
/// Length of an EF1E record (e-purse.md §2).
pub const EF1E_LEN: usize = 48;
/// Byte 0 of an EF1A record: the first byte of the record tag `27 02` (e-purse.md §2).
pub const EF1A_TAG: u8 = 0x27;
/// Byte 2 of an EF1A record: the length of what follows, `7D` = 125 (e-purse.md §2).
pub const EF1A_BODY_LEN: u8 = 0x7D;

/// The record identifier, byte 1 of the tag `27 02`, also P1 of UPDATE CAPP DATA CACHE.
///
/// L (e-purse.md §2: "not settled whether the record identifier is `02` (P1) or the 2-byte `2702`"):
/// `02`, matched by the purse applet on byte 1 == P1 (`ykt_purse::files::ef1a_initial_record`).
pub const EF1A_RECORD_ID: u8 = 0x02;

/// Why bytes are not an EF1A or EF1E record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The record has `len` bytes, not [`EF1A_LEN`] / [`EF1E_LEN`].
    Length {
        /// Bytes received.
        len: usize,
    },
    /// Byte 0 is not [`EF1A_TAG`].
    Tag(u8),
    /// Byte 2 is not [`EF1A_BODY_LEN`].
    BodyLength(u8),
    /// Byte 3 (valid flag) is neither `00` nor `01`.
    ValidFlag(u8),
    /// Byte 4 (transaction flag) is not `01` or `02`.
    TransactionFlag(u8),
    /// Byte 14 (trip state) is not `00`, `01` or `02`.
    TripState(u8),
    /// Byte 0 of an EF1E record is not a known record type (`01`..`0A`).
    HistoryType(u8),
    /// A date-time field is neither all zero nor a valid BCD date-time.
    DateTime {
        /// Offset of the field in the record.
        offset: usize,
        /// What is wrong with it.
        error: DateTimeError,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { len } => write!(f, "a transit record of {len} bytes"),
            Self::Tag(b) => write!(f, "EF1A tag byte {b:02X}, expected 27"),
            Self::BodyLength(b) => write!(f, "EF1A length byte {b:02X}, expected 7D"),
            Self::ValidFlag(b) => write!(f, "EF1A valid flag {b:02X}"),
            Self::TransactionFlag(b) => write!(f, "EF1A transaction flag {b:02X}"),
            Self::TripState(b) => write!(f, "EF1A trip state {b:02X}"),
            Self::HistoryType(b) => write!(f, "EF1E record type {b:02X}"),
            Self::DateTime { offset, error } => write!(f, "date-time at offset {offset}: {error}"),
        }
    }
}

impl core::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::DateTime { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// EF1A byte 4, the transaction flag (e-purse.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // Complete: the two values of e-purse.md §2.
pub enum TransactionFlag {
    /// `01`: segmented (entry/exit) or composite fare.
    Segmented,
    /// `02`: pre-authorisation.
    PreAuthorisation,
}

/// EF1A byte 14, the trip state (e-purse.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // Complete: the three values of e-purse.md §2.
pub enum TripState {
    /// `00`: initial, no trip yet.
    Initial,
    /// `01`: boarded / entered, the trip is open.
    Entered,
    /// `02`: alighted / exited, the trip is closed.
    Exited,
}

/// One end of a trip as EF1A records it (38 bytes, at offset 15 for the entry and 58 for the exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TripEnd {
    /// City code, BCD (2).
    pub city: [u8; 2],
    /// Institution id (8).
    pub institution: [u8; 8],
    /// Operator code (2).
    pub operator: [u8; 2],
    /// Line number (2, binary).
    pub line: u16,
    /// Station number (1).
    pub station: u8,
    /// Vehicle number, ASCII (8).
    pub vehicle: [u8; 8],
    /// Terminal number, BCD (8; a 6-byte PSAM number right-aligned).
    pub terminal: [u8; 8],
    /// Date-time (7 BCD); `None` when the field is all zero.
    pub datetime: Option<BcdDateTime>,
}

const TRIP_END_LEN: usize = 38;

impl TripEnd {
    fn encode(&self, out: &mut [u8]) {
        out[0..2].copy_from_slice(&self.city);
        out[2..10].copy_from_slice(&self.institution);
        out[10..12].copy_from_slice(&self.operator);
        out[12..14].copy_from_slice(&self.line.to_be_bytes());
        out[14] = self.station;
        out[15..23].copy_from_slice(&self.vehicle);
        out[23..31].copy_from_slice(&self.terminal);
        out[31..38].copy_from_slice(&self.datetime.map(|d| d.bytes()).unwrap_or([0; 7]));
    }

    fn decode(r: &[u8; EF1A_LEN], at: usize) -> Result<Self, RecordError> {
        let b = &r[at..at + TRIP_END_LEN];
        Ok(Self {
            city: take(b, 0),
            institution: take(b, 2),
            operator: take(b, 10),
            line: u16::from_be_bytes(take(b, 12)),
            station: b[14],
            vehicle: take(b, 15),
            terminal: take(b, 23),
            datetime: optional_datetime(take(b, 31), at + 31)?,
        })
    }
}

/// The EF1A composite transit record (e-purse.md §2, 128 bytes, offsets 0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ef1aRecord {
    /// Byte 1: the record identifier ([`EF1A_RECORD_ID`]).
    pub record_id: u8,
    /// Byte 3: valid flag (`01` valid).
    pub valid: bool,
    /// Byte 4.
    pub transaction_flag: TransactionFlag,
    /// Byte 5: application lock flag (`00` unlocked).
    pub app_lock: u8,
    /// Bytes 6–13: transaction serial, BCD.
    pub serial: [u8; 8],
    /// Byte 14.
    pub state: TripState,
    /// Bytes 15–52.
    pub entry: TripEnd,
    /// Bytes 53–56: the "marked" maximum fare, for recovering fares of trips never closed.
    pub marked_max_fare: u32,
    /// Byte 57: direction.
    pub direction: u8,
    /// Bytes 58–95.
    pub exit: TripEnd,
    /// Bytes 96–99: amount charged for the trip.
    pub amount: u32,
    /// Bytes 100–101: mileage (see [`super::MILEAGE_UNIT_METRES`]).
    pub mileage: u16,
    /// Bytes 102–127: reserved / city-defined, kept as read.
    pub city_defined: [u8; 26],
}

impl Ef1aRecord {
    /// The 128 record bytes.
    pub fn encode(&self) -> [u8; EF1A_LEN] {
        let mut r = [0u8; EF1A_LEN];
        r[0] = EF1A_TAG;
        r[1] = self.record_id;
        r[2] = EF1A_BODY_LEN;
        r[3] = u8::from(self.valid);
        r[4] = match self.transaction_flag {
            TransactionFlag::Segmented => 0x01,
            TransactionFlag::PreAuthorisation => 0x02,
        };
        r[5] = self.app_lock;
        r[6..14].copy_from_slice(&self.serial);
        r[14] = match self.state {
            TripState::Initial => 0x00,
            TripState::Entered => 0x01,
            TripState::Exited => 0x02,
        };
        self.entry.encode(&mut r[15..53]);
        r[53..57].copy_from_slice(&self.marked_max_fare.to_be_bytes());
        r[57] = self.direction;
        self.exit.encode(&mut r[58..96]);
        r[96..100].copy_from_slice(&self.amount.to_be_bytes());
        r[100..102].copy_from_slice(&self.mileage.to_be_bytes());
        r[102..128].copy_from_slice(&self.city_defined);
        r
    }

    /// Decodes 128 record bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let r: &[u8; EF1A_LEN] = bytes
            .try_into()
            .map_err(|_| RecordError::Length { len: bytes.len() })?;
        if r[0] != EF1A_TAG {
            return Err(RecordError::Tag(r[0]));
        }
        if r[2] != EF1A_BODY_LEN {
            return Err(RecordError::BodyLength(r[2]));
        }
        let valid = match r[3] {
            0x00 => false,
            0x01 => true,
            b => return Err(RecordError::ValidFlag(b)),
        };
        let transaction_flag = match r[4] {
            0x01 => TransactionFlag::Segmented,
            0x02 => TransactionFlag::PreAuthorisation,
            b => return Err(RecordError::TransactionFlag(b)),
        };
        let state = match r[14] {
            0x00 => TripState::Initial,
            0x01 => TripState::Entered,
            0x02 => TripState::Exited,
            b => return Err(RecordError::TripState(b)),
        };
        Ok(Self {
            record_id: r[1],
            valid,
            transaction_flag,
            app_lock: r[5],
            serial: take(r, 6),
            state,
            entry: TripEnd::decode(r, 15)?,
            marked_max_fare: u32::from_be_bytes(take(r, 53)),
            direction: r[57],
            exit: TripEnd::decode(r, 58)?,
            amount: u32::from_be_bytes(take(r, 96)),
            mileage: u16::from_be_bytes(take(r, 100)),
            city_defined: take(r, 102),
        })
    }

    /// Decodes what READ RECORD returned for the EF1A slot: `None` for a record never written (every
    /// byte zero except the record identifier, as personalised), otherwise [`Ef1aRecord::decode`].
    pub fn decode_slot(bytes: &[u8]) -> Result<Option<Self>, RecordError> {
        if bytes.len() == EF1A_LEN && bytes.iter().enumerate().all(|(i, b)| i == 1 || *b == 0x00) {
            return Ok(None);
        }
        Self::decode(bytes).map(Some)
    }
}

/// EF1E byte 0, the record type (e-purse.md §2). EC = electronic cash, EP = e-purse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // Complete: the ten values of e-purse.md §2.
pub enum HistoryType {
    /// `01` EC entry.
    EcEntry,
    /// `02` EC exit.
    EcExit,
    /// `03` EP entry.
    EpEntry,
    /// `04` EP exit.
    EpExit,
    /// `05` EC single ride.
    EcSingle,
    /// `06` EP single ride.
    EpSingle,
    /// `07` EC make-up fare.
    EcMakeUp,
    /// `08` EP make-up fare.
    EpMakeUp,
    /// `09` EC load.
    EcLoad,
    /// `0A` EP load.
    EpLoad,
}

impl HistoryType {
    const ALL: [HistoryType; 10] = [
        Self::EcEntry,
        Self::EcExit,
        Self::EpEntry,
        Self::EpExit,
        Self::EcSingle,
        Self::EpSingle,
        Self::EcMakeUp,
        Self::EpMakeUp,
        Self::EcLoad,
        Self::EpLoad,
    ];

    /// The type byte.
    pub fn code(self) -> u8 {
        // `ALL` lists the variants in code order, 01 first.
        Self::ALL.iter().position(|t| *t == self).unwrap_or(0) as u8 + 1
    }

    /// The type with this byte, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

/// EF1E byte 9, the industry code (e-purse.md §2).
pub mod industry {
    /// Metro.
    pub const METRO: u8 = 0x01;
    /// Bus.
    pub const BUS: u8 = 0x02;
    /// Ferry.
    pub const FERRY: u8 = 0x03;
    /// Taxi.
    pub const TAXI: u8 = 0x04;
}

/// One EF1E transit history record (e-purse.md §2, 48 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ef1eRecord {
    /// Byte 0.
    pub record_type: HistoryType,
    /// Bytes 1–8: terminal id, BCD (a 6-byte PSAM number right-aligned).
    pub terminal: [u8; 8],
    /// Byte 9: industry code ([`industry`]).
    pub industry: u8,
    /// Bytes 10–13: line, BCD.
    pub line: [u8; 4],
    /// Bytes 14–16: reserved, kept as read.
    pub rfu_14: [u8; 3],
    /// Bytes 17–20: amount.
    pub amount: u32,
    /// Bytes 21–24: balance after the transaction.
    pub balance_after: u32,
    /// Bytes 25–31: date-time; `None` when all zero.
    pub datetime: Option<BcdDateTime>,
    /// Bytes 32–33: acquirer city, BCD.
    pub acquirer_city: [u8; 2],
    /// Bytes 34–41: institution id.
    pub institution: [u8; 8],
    /// Bytes 42–45: the maximum fare.
    pub max_fare: u32,
    /// Bytes 46–47: reserved, kept as read.
    pub rfu_46: [u8; 2],
}

impl Ef1eRecord {
    /// The 48 record bytes.
    pub fn encode(&self) -> [u8; EF1E_LEN] {
        let mut r = [0u8; EF1E_LEN];
        r[0] = self.record_type.code();
        r[1..9].copy_from_slice(&self.terminal);
        r[9] = self.industry;
        r[10..14].copy_from_slice(&self.line);
        r[14..17].copy_from_slice(&self.rfu_14);
        r[17..21].copy_from_slice(&self.amount.to_be_bytes());
        r[21..25].copy_from_slice(&self.balance_after.to_be_bytes());
        r[25..32].copy_from_slice(&self.datetime.map(|d| d.bytes()).unwrap_or([0; 7]));
        r[32..34].copy_from_slice(&self.acquirer_city);
        r[34..42].copy_from_slice(&self.institution);
        r[42..46].copy_from_slice(&self.max_fare.to_be_bytes());
        r[46..48].copy_from_slice(&self.rfu_46);
        r
    }

    /// Decodes 48 record bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let r: &[u8; EF1E_LEN] = bytes
            .try_into()
            .map_err(|_| RecordError::Length { len: bytes.len() })?;
        Ok(Self {
            record_type: HistoryType::from_code(r[0]).ok_or(RecordError::HistoryType(r[0]))?,
            terminal: take(r, 1),
            industry: r[9],
            line: take(r, 10),
            rfu_14: take(r, 14),
            amount: u32::from_be_bytes(take(r, 17)),
            balance_after: u32::from_be_bytes(take(r, 21)),
            datetime: optional_datetime(take(r, 25), 25)?,
            acquirer_city: take(r, 32),
            institution: take(r, 34),
            max_fare: u32::from_be_bytes(take(r, 42)),
            rfu_46: take(r, 46),
        })
    }
}

/// A 6-byte PSAM terminal number right-aligned in the 8-byte BCD field of EF1A/EF1E (e-purse.md §2).
pub fn terminal8(terminal_id: &[u8; 6]) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[2..].copy_from_slice(terminal_id);
    t
}

/// A line number as the 4 BCD bytes of EF1E (8 digits, right-aligned).
pub fn line_bcd(line: u16) -> [u8; 4] {
    let mut out = [0u8; 4];
    let mut n = u32::from(line);
    for byte in out.iter_mut().rev() {
        let lo = (n % 10) as u8;
        n /= 10;
        let hi = (n % 10) as u8;
        n /= 10;
        *byte = (hi << 4) | lo;
    }
    out
}

fn optional_datetime(bytes: [u8; 7], offset: usize) -> Result<Option<BcdDateTime>, RecordError> {
    if bytes == [0; 7] {
        return Ok(None);
    }
    BcdDateTime::new(bytes)
        .map(Some)
        .map_err(|error| RecordError::DateTime { offset, error })
}

/// `N` bytes at `at`; every caller passes an offset inside a fixed-size record.
fn take<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}
