//! Entry/exit fares at a metro gate and single-tap fares on a bus, paid by composite purchase
//! (type 09) with the EF1A trip record and EF1E history records (e-purse.md §2, §4.7).
//!
//! ```text
//!   tap (CardSnapshot) ──► decide(EF1A, card, balance, site, now, config)
//!        ├─ Entry  { amount, EF1A state 01 + EF1E 03 [+ EF1E 08 make-up] }
//!        ├─ Exit   { fare,   EF1A state 02 + EF1E 04 }
//!        ├─ Single { fare,   EF1A state 02 + EF1E 06 }         (flat-fare bus line)
//!        └─ Refuse(reason)
//!   Entry/Exit/Single ──► PurchaseFlow with PurchaseParams { composite: Some(records), .. }
//! ```
//!
//! [`decide`] is pure: the time is an argument and nothing is written until the purchase runs,
//! so a refused or torn purchase leaves the card's trip state as it was (the purse commits the
//! cached records with the debit, e-purse.md §7).
//!
//! Every rule the brief leaves open is a field of [`TransitConfig`], with its proposal (P) in
//! [`TransitConfig::proposed`]; the uncertain record facts (L) are [`EF1A_RECORD_ID`] and
//! [`MILEAGE_UNIT_METRES`]. In one table:
//!
//! | choice | one place | proposal |
//! |---|---|---|
//! | EF1A record identifier / P1 (L) | [`EF1A_RECORD_ID`] | `02` |
//! | EF1A record number read at a tap (L) | `crate::tap::EF1A_RECORD_NUMBER` | 2 |
//! | EF1A mileage unit (L) | [`MILEAGE_UNIT_METRES`] | 100 m |
//! | EF1A transaction serial (P) | [`trip_serial`] | `00` ‖ entry date-time |
//! | fare lookup order (P) | [`FareTable::fare`] | pair, distance band, flat |
//! | deducted at entry (P) | [`TransitConfig::entry_charge`] | 0, max fare marked |
//! | balance needed to enter (P) | [`TransitConfig::min_entry_balance`] | the max fare |
//! | entered without exit (P) | [`TransitConfig::open_trip_at_entry`] | charge the marked max fare |
//! | double tap at entry (P) | [`TransitConfig::double_tap_minutes`] | 20 min, refused |
//! | exit without entry (P) | [`TransitConfig::exit_without_entry`] | refuse |
//! | exit elsewhere / unpriced / overtime (P) | [`TransitConfig::unpriced_exit`], [`TransitConfig::max_trip_minutes`] | charge the marked max fare; 240 min |
//! | transfer window (P) | [`TransitConfig::transfer`], [`TransferRule`] | 30 min from the previous exit on another line, inclusive; 1.00 off |
//! | where the previous exit is kept (P) | [`decide`] | the exit block of EF1A, kept by the entry |
//! | block P2 for a blacklisted card (P) | `crate::block::DEFAULT_BLOCK_MODE` | temporary (`00`) |

mod decide;
mod fare;
mod records;
mod time;

use alloc::vec::Vec;
use core::fmt;

pub use decide::{decide, trip_serial};
pub use fare::{
    Fare, FareBasis, FareError, FareParseError, FareParseErrorKind, FareTable, StationRef,
};
pub use records::{
    EF1A_BODY_LEN, EF1A_LEN, EF1A_RECORD_ID, EF1A_TAG, EF1E_LEN, Ef1aRecord, Ef1eRecord,
    HistoryType, RecordError, TransactionFlag, TripEnd, TripState, industry, line_bcd, terminal8,
};
pub use time::{BcdDateTime, DateTimeError};

use crate::commands::PURSE_AID;
use crate::purchase::{CappRecord, PurchaseParams};

/// Unit of the EF1A mileage field (bytes 100–101).
///
/// L (e-purse.md §2 names the field, not its unit): 100 m, so 16 bits cover 6 553 km.
pub const MILEAGE_UNIT_METRES: u32 = 100;

/// P2 of UPDATE CAPP DATA CACHE for EF1A: SFI `1A` << 3, mode `000` (e-purse.md §2, §4.7).
pub const EF1A_CACHE_P2: u8 = 0x1A << 3;
/// P2 of UPDATE CAPP DATA CACHE for EF1E: SFI `1E` << 3, mode `000` (e-purse.md §2, §4.7).
pub const EF1E_CACHE_P2: u8 = 0x1E << 3;

/// What a terminal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // Complete: a tap opens a trip, closes one, or is the whole ride.
pub enum GateRole {
    /// An entry gate: opens a trip.
    Entry,
    /// An exit gate: closes the trip and charges its fare.
    Exit,
    /// A single-tap validator (a flat-fare bus): the ride is charged at once.
    Single,
}

/// Where the tap happens: the terminal's own data, written into the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// 6-byte PSAM terminal number (BCD).
    pub terminal_id: [u8; 6],
    /// City code, BCD (EF17 style).
    pub city: [u8; 2],
    /// Institution id of the operator network.
    pub institution: [u8; 8],
    /// Operator code.
    pub operator: [u8; 2],
    /// Line and station.
    pub station: StationRef,
    /// Vehicle number, ASCII (zero for a station gate).
    pub vehicle: [u8; 8],
    /// Direction byte for EF1A byte 57.
    pub direction: u8,
    /// Industry code for EF1E ([`industry`]).
    pub industry: u8,
    /// Entry, exit or single tap.
    pub role: GateRole,
}

/// What a rule does with a trip it cannot price normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // Complete: charge or refuse.
pub enum Penalty {
    /// Charge the maximum fare marked in EF1A (or, with no record, the table's maximum fare).
    ChargeMaxFare,
    /// Refuse the tap: the rider goes to the service desk.
    Refuse,
}

/// How a transfer lowers the fare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // Complete: free or a fixed discount.
pub enum TransferDiscount {
    /// The transfer trip is free.
    Free,
    /// This many fen off (never below zero).
    Amount(u32),
}

/// A transfer: a trip that starts within `window_minutes` of the exit of a trip on another line.
///
/// P: the window runs from the previous exit to the start of this trip (its entry; for a single
/// tap, the tap itself), inclusive; the previous exit is the exit block of EF1A, which an entry
/// keeps as it was (see [`decide`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferRule {
    /// Length of the window in minutes.
    pub window_minutes: u32,
    /// What the transfer trip gets.
    pub discount: TransferDiscount,
}

/// The fare rules of a transit network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitConfig {
    /// The fare table.
    pub fares: FareTable,
    /// Amount deducted at entry, subtracted from the fare at exit. P: 0 (the entry is a
    /// composite purchase of 0 that only writes the records and marks the maximum fare).
    pub entry_charge: u32,
    /// Balance a card needs to enter; `None` = the table's maximum fare. P: `None`.
    pub min_entry_balance: Option<u32>,
    /// An entry (or single tap) while EF1A shows a trip never closed. P: charge the marked
    /// maximum fare (an EF1E make-up record, type 08) and open the new trip.
    pub open_trip_at_entry: Penalty,
    /// An entry tap at the station of the open trip within this many minutes is refused as a
    /// double tap, not charged. P: 20.
    pub double_tap_minutes: u32,
    /// An exit with no open trip. P: refuse.
    pub exit_without_entry: Penalty,
    /// An exit whose trip cannot be priced here (entered in another city or network, unknown
    /// station pair) or lasted longer than [`max_trip_minutes`](Self::max_trip_minutes).
    /// P: charge the marked maximum fare.
    pub unpriced_exit: Penalty,
    /// Longest trip before [`unpriced_exit`](Self::unpriced_exit) applies; `None` = no limit.
    /// P: 240 minutes.
    pub max_trip_minutes: Option<u32>,
    /// The transfer rule; `None` = no transfers. P: 30 minutes, 1.00 off.
    pub transfer: Option<TransferRule>,
}

impl TransitConfig {
    /// The proposed rules (P, see each field) over `fares`.
    pub fn proposed(fares: FareTable) -> Self {
        Self {
            fares,
            entry_charge: 0,
            min_entry_balance: None,
            open_trip_at_entry: Penalty::ChargeMaxFare,
            double_tap_minutes: 20,
            exit_without_entry: Penalty::Refuse,
            unpriced_exit: Penalty::ChargeMaxFare,
            max_trip_minutes: Some(240),
            transfer: Some(TransferRule {
                window_minutes: 30,
                discount: TransferDiscount::Amount(100),
            }),
        }
    }
}

impl TransitConfig {
    /// Reads a fare file (see [`FareTable`]'s text format) whose rule statements override
    /// [`TransitConfig::proposed`]; each rule at most once:
    ///
    /// ```text
    /// entry-charge 0                   # fen deducted at entry
    /// min-entry-balance max            # fen, or `max` (the maximum fare)
    /// open-trip-at-entry charge        # charge | refuse
    /// double-tap-minutes 20
    /// exit-without-entry refuse        # charge | refuse
    /// unpriced-exit charge             # charge | refuse
    /// max-trip-minutes 240             # minutes, or `none`
    /// transfer 30 100                  # window minutes, then `free` or fen off; or `transfer none`
    /// ```
    pub fn parse(text: &str) -> Result<Self, FareParseError> {
        let mut c = TransitConfig::proposed(FareTable::new());
        let mut seen: Vec<&'static str> = Vec::new();
        let fares = FareTable::parse_with(text, |keyword, p| {
            let rule = RULES.iter().find(|r| **r == keyword)?;
            Some(parse_rule(rule, p, &mut c, &mut seen))
        })?;
        c.fares = fares;
        Ok(c)
    }
}

const RULES: [&str; 8] = [
    "entry-charge",
    "min-entry-balance",
    "open-trip-at-entry",
    "double-tap-minutes",
    "exit-without-entry",
    "unpriced-exit",
    "max-trip-minutes",
    "transfer",
];

fn parse_rule(
    rule: &'static str,
    p: &mut fare::Fields<'_>,
    c: &mut TransitConfig,
    seen: &mut Vec<&'static str>,
) -> Result<(), FareParseError> {
    if seen.contains(&rule) {
        return Err(p.error(FareParseErrorKind::Table(FareError::Duplicate)));
    }
    seen.push(rule);
    let penalty = |p: &mut fare::Fields<'_>| match p.word("penalty")? {
        "charge" => Ok(Penalty::ChargeMaxFare),
        "refuse" => Ok(Penalty::Refuse),
        _ => Err(p.error(FareParseErrorKind::BadWord("penalty"))),
    };
    match rule {
        "entry-charge" => c.entry_charge = p.number("fare")?,
        "min-entry-balance" => {
            c.min_entry_balance = match p.word("balance")? {
                "max" => None,
                w => Some(digits(w).ok_or(p.error(FareParseErrorKind::BadNumber("balance")))?),
            }
        }
        "open-trip-at-entry" => c.open_trip_at_entry = penalty(p)?,
        "double-tap-minutes" => c.double_tap_minutes = p.number("minutes")?,
        "exit-without-entry" => c.exit_without_entry = penalty(p)?,
        "unpriced-exit" => c.unpriced_exit = penalty(p)?,
        "max-trip-minutes" => {
            c.max_trip_minutes = match p.word("minutes")? {
                "none" => None,
                w => Some(digits(w).ok_or(p.error(FareParseErrorKind::BadNumber("minutes")))?),
            }
        }
        _ => {
            let window = p.word("minutes")?;
            c.transfer = if window == "none" {
                None
            } else {
                let window_minutes =
                    digits(window).ok_or(p.error(FareParseErrorKind::BadNumber("minutes")))?;
                let discount = match p.word("discount")? {
                    "free" => TransferDiscount::Free,
                    w => TransferDiscount::Amount(
                        digits(w).ok_or(p.error(FareParseErrorKind::BadNumber("discount")))?,
                    ),
                };
                Some(TransferRule {
                    window_minutes,
                    discount,
                })
            };
        }
    }
    p.end()
}

/// A decimal u32 of plain digits.
fn digits(w: &str) -> Option<u32> {
    if w.bytes().all(|b| b.is_ascii_digit()) {
        w.parse().ok()
    } else {
        None
    }
}

/// Why a tap is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefuseReason {
    /// The application's start date is after today (EF15 bytes 20–23).
    NotYetValid,
    /// The application has expired (EF15 bytes 24–27).
    Expired,
    /// EF1A carries an application lock flag.
    RecordLocked(u8),
    /// EF1A cannot be decoded.
    UnreadableRecord(RecordError),
    /// The card entered at this station moments ago.
    DoubleTap,
    /// A trip was never closed and [`TransitConfig::open_trip_at_entry`] refuses.
    OpenTrip,
    /// An exit with no open trip and [`TransitConfig::exit_without_entry`] refuses.
    ExitWithoutEntry,
    /// The trip cannot be priced here and [`TransitConfig::unpriced_exit`] refuses.
    Unpriced,
    /// The trip is longer than allowed and [`TransitConfig::unpriced_exit`] refuses.
    Overtime,
    /// The recorded entry time is after now.
    EntryAfterNow,
    /// The fare table has no fare for a single tap on this line.
    NoFare,
    /// The balance does not cover what the tap needs.
    InsufficientBalance {
        /// Balance on the card.
        balance: u32,
        /// What the tap needs.
        needed: u32,
    },
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotYetValid => f.write_str("the card is not valid yet"),
            Self::Expired => f.write_str("the card has expired"),
            Self::RecordLocked(b) => write!(f, "the trip record is locked ({b:02X})"),
            Self::UnreadableRecord(e) => write!(f, "the trip record is unreadable: {e}"),
            Self::DoubleTap => f.write_str("already entered here"),
            Self::OpenTrip => f.write_str("the last trip was never closed"),
            Self::ExitWithoutEntry => f.write_str("no entry recorded"),
            Self::Unpriced => f.write_str("the trip cannot be priced here"),
            Self::Overtime => f.write_str("the trip took too long"),
            Self::EntryAfterNow => f.write_str("the recorded entry is in the future"),
            Self::NoFare => f.write_str("no fare for this line"),
            Self::InsufficientBalance { balance, needed } => {
                write!(f, "balance {balance} does not cover {needed}")
            }
        }
    }
}

/// What a tap will charge and write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Amount to deduct now (may be 0).
    pub amount: u32,
    /// The fare found for the trip, before the transfer discount (exit and single taps).
    pub fare: Option<Fare>,
    /// Discount given for a transfer.
    pub transfer_discount: u32,
    /// Maximum fare charged for a trip never closed, or for an unpriced or overtime exit.
    pub penalty: u32,
    /// The EF1A record to write.
    pub ef1a: Ef1aRecord,
    /// The EF1E records to append, oldest first.
    pub history: Vec<Ef1eRecord>,
}

impl Charge {
    /// The records for UPDATE CAPP DATA CACHE: EF1A first, then the EF1E records.
    pub fn capp_records(&self) -> Vec<CappRecord> {
        let mut out = Vec::with_capacity(1 + self.history.len());
        out.push(CappRecord {
            p1: self.ef1a.record_id,
            p2: EF1A_CACHE_P2,
            data: self.ef1a.encode().to_vec(),
        });
        for h in &self.history {
            out.push(CappRecord {
                p1: 0x00,
                p2: EF1E_CACHE_P2,
                data: h.encode().to_vec(),
            });
        }
        out
    }

    /// The composite purchase (type 09) that carries out this charge on the e-purse.
    pub fn purchase_params(&self, key_index: u8, now: BcdDateTime) -> PurchaseParams {
        PurchaseParams {
            composite: Some(self.capp_records()),
            ..self.plain_purchase_params(key_index, now)
        }
    }

    /// A plain purchase (type 06) of the amount, writing no transit record: for a flat-fare
    /// validator that keeps no trip state. The open-trip and transfer rules of a later tap then
    /// see nothing of this ride.
    pub fn plain_purchase_params(&self, key_index: u8, now: BcdDateTime) -> PurchaseParams {
        PurchaseParams {
            aid: PURSE_AID.to_vec(),
            key_index,
            amount: self.amount,
            datetime: now.bytes(),
            composite: None,
        }
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // Complete: the three tap kinds of `GateRole`, or a refusal.
pub enum Decision {
    /// Open a trip.
    Entry(Charge),
    /// Close the trip and charge its fare.
    Exit(Charge),
    /// Charge a single ride.
    Single(Charge),
    /// Do not let the rider through.
    Refuse(RefuseReason),
}

impl Decision {
    /// The charge, unless refused.
    pub fn charge(&self) -> Option<&Charge> {
        match self {
            Self::Entry(c) | Self::Exit(c) | Self::Single(c) => Some(c),
            Self::Refuse(_) => None,
        }
    }
}
