//! The terminal parameter files as the clearing centre distributes them (qr-code.md §2.3, S2):
//! 4026, the root CA public keys, and 4020, the issuer whitelist and ticket-type map.
//!
//! ```text
//!  4026: version(4) ‖ count(4) ‖ RFU(4) ‖ SHA-1 of the records(20) ‖ count × 160-byte entry
//!  4020: version(4) ‖ count(4) ‖ SHA-1 of the records(20)          ‖ count × 16-byte record
//! ```
//!
//! Decoding is total and checks everything the file can check by itself: the length, the
//! count against the records present, the header's RFU bytes, the SHA-1 over the records, each record's fixed values
//! and, for 4026, each key record's self-signature. A decoded table becomes the
//! [`ParameterUpdate`] the [`Verifier`] applies; [`apply_files`] applies both tables all or
//! nothing, and only when each is newer than the one held (§3.1, §5).
//!
//! What the file cannot protect: the header's version and count lie outside the SHA-1 (the
//! brief says "SHA-1 of the records", and S2's loader hashes from byte 32 of 4026). A count
//! changed in transit no longer matches the records; a version changed in transit is refused
//! when it is not newer, and otherwise only changes the number recorded with each transaction.
//! Authenticity of the file as a whole is the channel's job, as in S2.

use alloc::vec::Vec;

use sha1::{Digest as _, Sha1};

use crate::cert::RootKeyEntry;
use crate::error::{DecodeError, Error};
use crate::record::ParameterVersions;
use crate::verify::{ParameterUpdate, Verifier, WhitelistEntry, WhitelistRecord};

/// The byte order of a table header's integers (version, count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ByteOrder {
    /// Most significant byte first.
    BigEndian,
    /// Least significant byte first.
    LittleEndian,
}

/// The byte order of the 4026 and 4020 headers: **big-endian**.
///
/// M (qr-code.md preamble: "all integers are big-endian unless stated otherwise"; §2.3 states
/// nothing otherwise). S2 reads the header with `fread` into a `long` and then converts it with
/// its `LongToByte` byte swap, which a big-endian file needs on its little-endian terminals.
pub const HEADER_BYTE_ORDER: ByteOrder = ByteOrder::BigEndian;

/// Length of the 4026 header: version, count, RFU(4), SHA-1 (§2.3).
pub const ROOT_KEYS_HEADER_LEN: usize = 32;
/// Length of the 4020 header: version, count, SHA-1 (§2.3).
pub const WHITELIST_HEADER_LEN: usize = 28;
/// Length of a SHA-1 digest.
pub const DIGEST_LEN: usize = 20;

/// The byte of the 4020 issuer field's last four bytes when the table is built from an issuer:
/// `FF`, "don't compare" (§2.3; only the first four bytes are matched).
pub const ISSUER_FIELD_FILL: u8 = crate::verify::WILDCARD;

/// Which parameter file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Table {
    /// 4026, root CA public keys.
    RootKeys,
    /// 4020, issuer whitelist and ticket-type map.
    Whitelist,
}

impl Table {
    /// The parameter number, `"4026"` or `"4020"`.
    pub fn number(self) -> &'static str {
        match self {
            Table::RootKeys => "4026",
            Table::Whitelist => "4020",
        }
    }

    fn header_len(self) -> usize {
        match self {
            Table::RootKeys => ROOT_KEYS_HEADER_LEN,
            Table::Whitelist => WHITELIST_HEADER_LEN,
        }
    }

    fn record_len(self) -> usize {
        match self {
            Table::RootKeys => RootKeyEntry::LEN,
            Table::Whitelist => WhitelistRecord::LEN,
        }
    }

    fn digest_at(self) -> usize {
        match self {
            Table::RootKeys => 12,
            Table::Whitelist => 8,
        }
    }
}

/// Why a parameter file did not decode. Every variant names the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The file is shorter than its header.
    #[error("parameter {}: {len} bytes, shorter than the {}-byte header", .table.number(), .table.header_len())]
    Truncated {
        /// The table.
        table: Table,
        /// The file's length.
        len: usize,
    },
    /// The bytes after the header are not a whole number of records.
    #[error("parameter {}: {records_len} bytes of records, not a multiple of {}", .table.number(), .table.record_len())]
    Length {
        /// The table.
        table: Table,
        /// The bytes after the header.
        records_len: usize,
    },
    /// The header's count differs from the records present.
    #[error("parameter {}: the header counts {declared} records, {present} are present", .table.number())]
    Count {
        /// The table.
        table: Table,
        /// The header's count.
        declared: u32,
        /// The whole records after the header.
        present: usize,
    },
    /// The header's RFU bytes (4026 bytes 8–11) are not zero.
    ///
    /// L (ours; §2.3 only names them RFU): the SHA-1 does not cover the header, so a reader
    /// that ignored them would accept a file damaged there; we write zeros and require them.
    #[error("parameter {}: the header's RFU bytes are not zero", .table.number())]
    Reserved {
        /// The table.
        table: Table,
    },
    /// The SHA-1 in the header is not that of the records.
    #[error("parameter {}: the SHA-1 of the records does not match the header", .table.number())]
    Digest {
        /// The table.
        table: Table,
    },
    /// A record holds a value its format does not allow.
    #[error("parameter {} record {index}: {error}", .table.number())]
    Record {
        /// The table.
        table: Table,
        /// The record's position, from 0.
        index: usize,
        /// What is wrong with it.
        error: DecodeError,
    },
    /// A 4026 key record's self-signature does not verify, or its key is not a curve point.
    #[error("parameter 4026 record {index}: the key record does not verify: {error}")]
    SelfSignature {
        /// The record's position, from 0.
        index: usize,
        /// The verification failure.
        error: ykt_crypto::Error,
    },
    /// Two 4026 records serve the same (code version, CA index).
    #[error(
        "parameter 4026 record {index}: a second key for version {version:#04x}, index {ca_index:#04x}"
    )]
    DuplicateKey {
        /// The second record's position, from 0.
        index: usize,
        /// The code version.
        version: u8,
        /// The CA index.
        ca_index: u8,
    },
    /// The table has more records than the header's count can hold.
    #[error("parameter {}: {records} records do not fit the header's count", .table.number())]
    TooManyRecords {
        /// The table.
        table: Table,
        /// The records given.
        records: usize,
    },
}

/// The header integers in [`HEADER_BYTE_ORDER`] (§2.3).
fn read_u32(b: [u8; 4]) -> u32 {
    match HEADER_BYTE_ORDER {
        ByteOrder::BigEndian => u32::from_be_bytes(b),
        ByteOrder::LittleEndian => u32::from_le_bytes(b),
    }
}

/// The header integers in [`HEADER_BYTE_ORDER`] (§2.3).
fn write_u32(v: u32) -> [u8; 4] {
    match HEADER_BYTE_ORDER {
        ByteOrder::BigEndian => v.to_be_bytes(),
        ByteOrder::LittleEndian => v.to_le_bytes(),
    }
}

/// SHA-1 of `bytes` (§2.3, the header's digest of the records).
pub fn sha1(bytes: &[u8]) -> [u8; DIGEST_LEN] {
    let digest = Sha1::digest(bytes);
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(digest.as_slice());
    out
}

/// Splits a file into (version, records) after checking its length, count, RFU and SHA-1
/// (§2.3).
fn open(table: Table, bytes: &[u8]) -> Result<(u32, &[u8]), TableError> {
    let header_len = table.header_len();
    if bytes.len() < header_len {
        return Err(TableError::Truncated {
            table,
            len: bytes.len(),
        });
    }
    let (header, records) = bytes.split_at(header_len);
    let word = |at: usize| read_u32([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let (version, declared) = (word(0), word(4));
    let record_len = table.record_len();
    if records.len() % record_len != 0 {
        return Err(TableError::Length {
            table,
            records_len: records.len(),
        });
    }
    let present = records.len() / record_len;
    if usize::try_from(declared).ok() != Some(present) {
        return Err(TableError::Count {
            table,
            declared,
            present,
        });
    }
    if header[8..table.digest_at()].iter().any(|b| *b != 0) {
        return Err(TableError::Reserved { table });
    }
    let at = table.digest_at();
    if header[at..at + DIGEST_LEN] != sha1(records) {
        return Err(TableError::Digest { table });
    }
    Ok((version, records))
}

/// Builds a file from its version and encoded records (§2.3; RFU bytes zero).
fn seal(table: Table, version: u32, records: &[u8], count: usize) -> Result<Vec<u8>, TableError> {
    let count_field = u32::try_from(count).map_err(|_| TableError::TooManyRecords {
        table,
        records: count,
    })?;
    let mut out = Vec::with_capacity(table.header_len() + records.len());
    out.extend_from_slice(&write_u32(version));
    out.extend_from_slice(&write_u32(count_field));
    out.resize(table.digest_at(), 0);
    out.extend_from_slice(&sha1(records));
    out.extend_from_slice(records);
    Ok(out)
}

/// Parameter 4026, the root CA public keys (§2.3): entries of (medium, code version, key
/// record), every key record self-signature-valid, at most one per (version, CA index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKeyTable {
    version: u32,
    entries: Vec<RootKeyEntry>,
}

impl RootKeyTable {
    /// A table of `entries` with `version`, after checking every self-signature and that no two
    /// entries serve the same (version, index) (§2.3, §3.1 step 2).
    pub fn new(version: u32, entries: Vec<RootKeyEntry>) -> Result<Self, TableError> {
        for (index, e) in entries.iter().enumerate() {
            if let Err(err) = e.record.public_key_checked() {
                let error = match err {
                    Error::RootKeySelfSignature(error) | Error::Crypto(error) => error,
                    _ => ykt_crypto::Error::SignatureInvalid,
                };
                return Err(TableError::SelfSignature { index, error });
            }
            let key = (e.version, e.record.index);
            if entries[..index]
                .iter()
                .any(|o| (o.version, o.record.index) == key)
            {
                return Err(TableError::DuplicateKey {
                    index,
                    version: e.version.value(),
                    ca_index: e.record.index,
                });
            }
        }
        Ok(Self { version, entries })
    }

    /// Decodes a 4026 file (§2.3): header length, count, SHA-1, each 160-byte entry and each
    /// key record's self-signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, TableError> {
        let table = Table::RootKeys;
        let (version, records) = open(table, bytes)?;
        let entries = records
            .chunks_exact(RootKeyEntry::LEN)
            .enumerate()
            .map(|(index, r)| {
                RootKeyEntry::decode(r).map_err(|error| TableError::Record {
                    table,
                    index,
                    error,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(version, entries)
    }

    /// The encoded file (§2.3; RFU bytes zero).
    pub fn encode(&self) -> Result<Vec<u8>, TableError> {
        let records: Vec<u8> = self.entries.iter().flat_map(|e| e.encode()).collect();
        seal(Table::RootKeys, self.version, &records, self.entries.len())
    }

    /// The table's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[RootKeyEntry] {
        &self.entries
    }

    /// The download the verifier applies (§3.1 step 2).
    pub fn update(&self) -> ParameterUpdate<'_> {
        ParameterUpdate::RootKeys {
            version: self.version,
            entries: &self.entries,
        }
    }
}

/// Parameter 4020, the issuer whitelist and ticket-type map (§2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhitelistTable {
    version: u32,
    records: Vec<WhitelistRecord>,
    entries: Vec<WhitelistEntry>,
}

impl WhitelistTable {
    /// A table of `records` with `version`.
    pub fn new(version: u32, records: Vec<WhitelistRecord>) -> Self {
        let entries = records.iter().map(WhitelistRecord::entry).collect();
        Self {
            version,
            records,
            entries,
        }
    }

    /// Decodes a 4020 file (§2.3): header length, count, SHA-1 and the 16-byte records.
    pub fn decode(bytes: &[u8]) -> Result<Self, TableError> {
        let table = Table::Whitelist;
        let (version, records) = open(table, bytes)?;
        let records = records
            .chunks_exact(WhitelistRecord::LEN)
            .enumerate()
            .map(|(index, r)| {
                WhitelistRecord::decode(r).map_err(|error| TableError::Record {
                    table,
                    index,
                    error,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(version, records))
    }

    /// The encoded file (§2.3; RFU bytes zero).
    pub fn encode(&self) -> Result<Vec<u8>, TableError> {
        let records: Vec<u8> = self.records.iter().flat_map(|r| r.encode()).collect();
        seal(Table::Whitelist, self.version, &records, self.records.len())
    }

    /// The table's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The records, in file order.
    pub fn records(&self) -> &[WhitelistRecord] {
        &self.records
    }

    /// The entries the verifier matches with, in file order (§3.1 step 5).
    pub fn entries(&self) -> &[WhitelistEntry] {
        &self.entries
    }

    /// The download the verifier applies (§3.1 step 5).
    pub fn update(&self) -> ParameterUpdate<'_> {
        ParameterUpdate::Whitelist {
            version: self.version,
            entries: &self.entries,
        }
    }
}

/// Decodes the 4026 and 4020 files given and applies them to `verifier` all or nothing
/// (§2.3, §3.1): a file that does not decode, or a table whose version is not newer than the
/// one held, leaves the verifier as it was. Gives the versions now in force.
pub fn apply_files(
    verifier: &mut Verifier,
    root_keys: Option<&[u8]>,
    whitelist: Option<&[u8]>,
) -> Result<ParameterVersions, Error> {
    let roots = root_keys.map(RootKeyTable::decode).transpose()?;
    let list = whitelist.map(WhitelistTable::decode).transpose()?;
    let updates: Vec<ParameterUpdate<'_>> = roots
        .as_ref()
        .map(RootKeyTable::update)
        .into_iter()
        .chain(list.as_ref().map(WhitelistTable::update))
        .collect();
    verifier.apply_all(&updates)?;
    Ok(verifier.parameter_versions())
}
