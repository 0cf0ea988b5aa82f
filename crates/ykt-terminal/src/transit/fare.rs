//! Fare tables: by station pair, by distance band, flat per line (buses), with a small text format.
//!
//! P (the brief gives no fare rules; JT/T 1059 leaves fares to the operator): a fare for a trip
//! from `a` to `b` is, in this order,
//! 1. an explicit `fare` line for the pair (either direction);
//! 2. else, if both stations are on one line with a `station` position, or an explicit `distance`
//!    is given for the pair, the fare of the first `band` whose limit is at least that distance;
//! 3. else the `flat` fare of the entry line;
//! 4. else no fare (the validator refuses the trip).
//!
//! # Text format
//!
//! UTF-8, one statement per line, fields separated by spaces or tabs, `#` starts a comment.
//! Numbers are decimal; fares are in fen, distances in metres, lines `0..=65535`, stations
//! `0..=255`. The first statement must be the header `ykt-fares 1`.
//!
//! ```text
//! ykt-fares 1
//! max 900                      # maximum fare (optional; else the largest fare of the table)
//! band 6000 300                # up to 6 km: 3.00
//! band 12000 400
//! band 4294967295 600          # bands ascend strictly by limit
//! station 1 1 0                # line 1, station 1 at 0 m along the line
//! station 1 2 1500
//! distance 1 9 2 1 700         # line 1 station 9 to line 2 station 1 (a transfer): 700 m
//! fare 1 1 2 5 350             # explicit pair fare, either direction
//! flat 901 200                 # bus line 901: 2.00 whatever the stops
//! ```
//!
//! The same file may also carry the rules of [`TransitConfig`](super::TransitConfig), read by
//! [`TransitConfig::parse`](super::TransitConfig::parse); `FareTable::parse` refuses them.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

/// A station: line and station number, as EF1A records them (e-purse.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StationRef {
    /// Line number.
    pub line: u16,
    /// Station number on the line.
    pub station: u8,
}

impl StationRef {
    /// Line `line`, station `station`.
    pub const fn new(line: u16, station: u8) -> Self {
        Self { line, station }
    }
}

fn pair(a: StationRef, b: StationRef) -> (StationRef, StationRef) {
    if a <= b { (a, b) } else { (b, a) }
}

/// How a fare was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FareBasis {
    /// An explicit fare for the station pair.
    Pair,
    /// A distance band; the trip's distance in metres.
    Distance(u32),
    /// The flat fare of the line.
    Flat,
}

/// A fare and how it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fare {
    /// Amount in fen.
    pub amount: u32,
    /// The rule that gave it.
    pub basis: FareBasis,
}

/// A fare table. Build it with the methods below or parse the text format of the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FareTable {
    pairs: BTreeMap<(StationRef, StationRef), u32>,
    distances: BTreeMap<(StationRef, StationRef), u32>,
    positions: BTreeMap<StationRef, u32>,
    bands: Vec<(u32, u32)>,
    flat: BTreeMap<u16, u32>,
    max: Option<u32>,
}

/// Why a fare table cannot be built or parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FareError {
    /// A band limit is not above the previous one.
    BandNotAscending {
        /// The offending limit.
        limit: u32,
    },
    /// The same station, pair, band or line was given twice.
    Duplicate,
}

impl fmt::Display for FareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BandNotAscending { limit } => {
                write!(f, "band limit {limit} is not above the previous band")
            }
            Self::Duplicate => f.write_str("given twice"),
        }
    }
}

impl core::error::Error for FareError {}

fn insert_new<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, value: V) -> Result<(), FareError> {
    if map.contains_key(&key) {
        return Err(FareError::Duplicate);
    }
    map.insert(key, value);
    Ok(())
}

impl FareTable {
    /// An empty table (every trip has no fare).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the fare between two stations (either direction).
    pub fn pair_fare(&mut self, a: StationRef, b: StationRef, fare: u32) -> Result<(), FareError> {
        insert_new(&mut self.pairs, pair(a, b), fare)
    }

    /// Sets the distance in metres between two stations (either direction).
    pub fn distance(&mut self, a: StationRef, b: StationRef, metres: u32) -> Result<(), FareError> {
        insert_new(&mut self.distances, pair(a, b), metres)
    }

    /// Places a station at `metres` along its line.
    pub fn station(&mut self, s: StationRef, metres: u32) -> Result<(), FareError> {
        insert_new(&mut self.positions, s, metres)
    }

    /// Adds a distance band: trips up to `up_to_metres` cost `fare`. Bands must ascend strictly.
    pub fn band(&mut self, up_to_metres: u32, fare: u32) -> Result<(), FareError> {
        if let Some((last, _)) = self.bands.last()
            && *last >= up_to_metres
        {
            return Err(FareError::BandNotAscending {
                limit: up_to_metres,
            });
        }
        self.bands.push((up_to_metres, fare));
        Ok(())
    }

    /// Sets the flat fare of a line (a bus line: one tap, one fare).
    pub fn flat(&mut self, line: u16, fare: u32) -> Result<(), FareError> {
        insert_new(&mut self.flat, line, fare)
    }

    /// Sets the maximum fare (marked in EF1A at entry and charged by the penalty rules).
    pub fn set_max_fare(&mut self, fare: u32) {
        self.max = Some(fare);
    }

    /// The maximum fare: as set, else the largest pair, band or flat fare, else 0.
    pub fn max_fare(&self) -> u32 {
        self.max.unwrap_or_else(|| {
            let pairs = self.pairs.values().copied();
            let bands = self.bands.iter().map(|(_, f)| *f);
            let flats = self.flat.values().copied();
            pairs.chain(bands).chain(flats).max().unwrap_or(0)
        })
    }

    /// The flat fare of `line`, if it has one.
    pub fn flat_fare(&self, line: u16) -> Option<u32> {
        self.flat.get(&line).copied()
    }

    /// The distance between two stations, if the table knows it.
    pub fn distance_between(&self, a: StationRef, b: StationRef) -> Option<u32> {
        if let Some(d) = self.distances.get(&pair(a, b)) {
            return Some(*d);
        }
        if a.line == b.line {
            let (pa, pb) = (self.positions.get(&a)?, self.positions.get(&b)?);
            return Some(pa.abs_diff(*pb));
        }
        None
    }

    /// The fare from `entry` to `exit` (see the module docs for the order of the rules).
    pub fn fare(&self, entry: StationRef, exit: StationRef) -> Option<Fare> {
        if let Some(amount) = self.pairs.get(&pair(entry, exit)) {
            return Some(Fare {
                amount: *amount,
                basis: FareBasis::Pair,
            });
        }
        if let Some(d) = self.distance_between(entry, exit)
            && let Some((_, amount)) = self.bands.iter().find(|(limit, _)| *limit >= d)
        {
            return Some(Fare {
                amount: *amount,
                basis: FareBasis::Distance(d),
            });
        }
        self.flat_fare(entry.line).map(|amount| Fare {
            amount,
            basis: FareBasis::Flat,
        })
    }

    /// Parses the text format of the module docs.
    pub fn parse(text: &str) -> Result<Self, FareParseError> {
        Self::parse_with(text, |_, _| None)
    }

    /// Parses the text format, handing statements it does not know to `other` first (`None` =
    /// not known there either).
    pub(super) fn parse_with<'t>(
        text: &'t str,
        mut other: impl FnMut(&str, &mut Fields<'t>) -> Option<Result<(), FareParseError>>,
    ) -> Result<Self, FareParseError> {
        let mut table = FareTable::new();
        let mut header = false;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.split('#').next().unwrap_or("");
            let mut fields = content.split_whitespace();
            let Some(keyword) = fields.next() else {
                continue;
            };
            let err = |kind| FareParseError { line, kind };
            let mut p = Fields { fields, line };
            if !header {
                if keyword != "ykt-fares" {
                    return Err(err(FareParseErrorKind::MissingHeader));
                }
                let version: u32 = p.number("version")?;
                if version != 1 {
                    return Err(err(FareParseErrorKind::UnsupportedVersion(version)));
                }
                p.end()?;
                header = true;
                continue;
            }
            let built = match keyword {
                "max" => {
                    let fare = p.number("fare")?;
                    p.end()?;
                    table.set_max_fare(fare);
                    Ok(())
                }
                "band" => {
                    let (limit, fare) = (p.number("limit")?, p.number("fare")?);
                    p.end()?;
                    table.band(limit, fare)
                }
                "station" => {
                    let (s, at) = (p.station()?, p.number("position")?);
                    p.end()?;
                    table.station(s, at)
                }
                "distance" => {
                    let (a, b, d) = (p.station()?, p.station()?, p.number("distance")?);
                    p.end()?;
                    table.distance(a, b, d)
                }
                "fare" => {
                    let (a, b, f) = (p.station()?, p.station()?, p.number("fare")?);
                    p.end()?;
                    table.pair_fare(a, b, f)
                }
                "flat" => {
                    let (l, f) = (p.number("line")?, p.number("fare")?);
                    p.end()?;
                    table.flat(l, f)
                }
                _ => match other(keyword, &mut p) {
                    Some(result) => {
                        result?;
                        Ok(())
                    }
                    None => return Err(err(FareParseErrorKind::UnknownStatement)),
                },
            };
            built.map_err(|e| err(FareParseErrorKind::Table(e)))?;
        }
        if !header {
            return Err(FareParseError {
                line: 0,
                kind: FareParseErrorKind::MissingHeader,
            });
        }
        Ok(table)
    }
}

/// A fare table parse error, with its 1-based line (0 = the text is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FareParseError {
    /// Line number, 1-based; 0 when the text has no statement at all.
    pub line: usize,
    /// What is wrong.
    pub kind: FareParseErrorKind,
}

/// What is wrong on a line of a fare table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FareParseErrorKind {
    /// The first statement is not `ykt-fares 1`.
    MissingHeader,
    /// The header names a format version other than 1.
    UnsupportedVersion(u32),
    /// The statement keyword is unknown.
    UnknownStatement,
    /// A field is missing.
    MissingField(&'static str),
    /// A field is not a decimal number in range.
    BadNumber(&'static str),
    /// A field is not one of the words the statement takes.
    BadWord(&'static str),
    /// More fields than the statement takes.
    ExtraField,
    /// The statement is well formed but conflicts with the table.
    Table(FareError),
}

impl fmt::Display for FareParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fare table line {}: ", self.line)?;
        match self.kind {
            FareParseErrorKind::MissingHeader => f.write_str("expected the header `ykt-fares 1`"),
            FareParseErrorKind::UnsupportedVersion(v) => write!(f, "format version {v}"),
            FareParseErrorKind::UnknownStatement => f.write_str("unknown statement"),
            FareParseErrorKind::MissingField(n) => write!(f, "missing {n}"),
            FareParseErrorKind::BadNumber(n) => write!(f, "{n} is not a number in range"),
            FareParseErrorKind::BadWord(n) => write!(f, "{n} is not one of the words allowed"),
            FareParseErrorKind::ExtraField => f.write_str("extra field"),
            FareParseErrorKind::Table(e) => fmt::Display::fmt(&e, f),
        }
    }
}

impl core::error::Error for FareParseError {}

/// The fields of one statement after its keyword.
pub(super) struct Fields<'a> {
    fields: core::str::SplitWhitespace<'a>,
    line: usize,
}

impl<'a> Fields<'a> {
    pub(super) fn error(&self, kind: FareParseErrorKind) -> FareParseError {
        FareParseError {
            line: self.line,
            kind,
        }
    }

    /// The next field, as a word.
    pub(super) fn word(&mut self, name: &'static str) -> Result<&'a str, FareParseError> {
        self.fields
            .next()
            .ok_or(self.error(FareParseErrorKind::MissingField(name)))
    }

    pub(super) fn number<T: core::str::FromStr>(
        &mut self,
        name: &'static str,
    ) -> Result<T, FareParseError> {
        let field = self
            .fields
            .next()
            .ok_or(self.error(FareParseErrorKind::MissingField(name)))?;
        // Only plain decimal digits: `FromStr` would also take a leading `+`.
        if !field.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error(FareParseErrorKind::BadNumber(name)));
        }
        field
            .parse()
            .map_err(|_| self.error(FareParseErrorKind::BadNumber(name)))
    }

    fn station(&mut self) -> Result<StationRef, FareParseError> {
        Ok(StationRef::new(
            self.number("line")?,
            self.number("station")?,
        ))
    }

    pub(super) fn end(&mut self) -> Result<(), FareParseError> {
        match self.fields.next() {
            None => Ok(()),
            Some(_) => Err(self.error(FareParseErrorKind::ExtraField)),
        }
    }
}
