//! The validator's lists: the issuer whitelist (the first 4 bytes of the EF15 issuer id, e-purse.md
//! §2) and the card blacklist (by ASN, EF15 bytes 10–19), each with a version.
//!
//! A list is one flat `Vec` of fixed-size entries, de-duplicated and ordered by (bucket, entry),
//! where the bucket is the top bits of a multiplicative hash of the entry, plus an index of one
//! `u64` per bucket (about 4–8 entries each): the bucket's offset and a 32-bit filter with two
//! bits set per entry of the bucket.
//! A lookup reads one index slot; most absent entries (about nine in ten) stop there, the others
//! and the present ones scan one bucket (one or two cache lines): one or two memory accesses
//! whatever the size, so the cost stays flat at 10 M entries, where a plain binary search pays
//! some 24 dependent cache misses.
//! Memory: 10 bytes per blacklist entry (4 per whitelist entry) plus 1–2 bytes of index, about
//! 117 MB at 10 M cards; a `HashSet` takes 16–25 bytes per entry.
//! Building from an unsorted list is O(n log n) (a sort to drop repeats, then a linear counting
//! sort into the buckets); loading a binary list written by [`List::to_binary`] is linear.
//! `examples/list_lookup.rs` measures it against binary search and `HashSet`.
//! The hash only spreads the entries: the lists are written by the operator, not chosen by riders.
//!
//! # Text format
//!
//! ```text
//! ykt-list card-blacklist 1        # header: kind (issuer-whitelist | card-blacklist), format 1
//! version 20260101                 # the list version, decimal u32
//! 31041000000012345678             # one entry per line: 20 hex digits (ASN) or 8 (issuer prefix)
//! ```
//!
//! `#` starts a comment; blank lines are ignored; entries may come in any order and repeat.
//!
//! # Binary format
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `YKTLIST\0` |
//! | 1 | format version `01` |
//! | 1 | kind: `01` issuer whitelist, `02` card blacklist |
//! | 4 | list version, big-endian |
//! | 4 | entry count n, big-endian |
//! | n × 4 or n × 10 | entries, in any order ([`List::to_binary`] writes the lookup order) |
//! | 4 | CRC-32 (IEEE, as zlib) of everything before, big-endian |

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::fmt::Write as _;
use core::marker::PhantomData;

use crate::card_data::CardIdentity;

mod sealed {
    pub trait Sealed {}
}

/// The two kinds of list.
pub trait ListKind: sealed::Sealed {
    /// Bytes per entry.
    const LEN: usize;
    /// Kind byte of the binary format.
    const CODE: u8;
    /// Kind word of the text format.
    const NAME: &'static str;
    /// One entry.
    type Entry: Copy + Ord + AsRef<[u8]> + for<'a> TryFrom<&'a [u8]> + fmt::Debug;
}

/// Issuer whitelist entries: the first 4 bytes of the EF15 issuer id.
#[derive(Debug)]
#[allow(clippy::exhaustive_structs)] // A marker type.
pub struct Issuers;

/// Card blacklist entries: the 10-byte ASN.
#[derive(Debug)]
#[allow(clippy::exhaustive_structs)] // A marker type.
pub struct Cards;

impl sealed::Sealed for Issuers {}
impl sealed::Sealed for Cards {}

impl ListKind for Issuers {
    const LEN: usize = 4;
    const CODE: u8 = 0x01;
    const NAME: &'static str = "issuer-whitelist";
    type Entry = [u8; 4];
}

impl ListKind for Cards {
    const LEN: usize = 10;
    const CODE: u8 = 0x02;
    const NAME: &'static str = "card-blacklist";
    type Entry = [u8; 10];
}

/// Issuers whose cards the validator accepts.
pub type IssuerWhitelist = List<Issuers>;
/// Cards the validator blocks.
pub type CardBlacklist = List<Cards>;

/// A versioned list of entries of kind `K`, indexed for lookup (see the module docs).
pub struct List<K: ListKind> {
    version: u32,
    /// Distinct entries ordered by (bucket, entry).
    entries: Vec<K::Entry>,
    /// `1 << bits` buckets and one more: the low 32 bits of `index[b]` are the offset of bucket
    /// `b` in `entries` (it ends where bucket `b + 1` starts), the high 32 bits its filter.
    index: Vec<u64>,
    bits: u32,
    kind: PhantomData<K>,
}

/// The 64-bit hash of an entry: its top bits pick the bucket, its low 10 bits the filter bits.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0x243F_6A88_85A3_08D3;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 29;
    }
    h.wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

/// The bucket of hash `h` among `1 << bits`.
fn bucket_of(h: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (h >> (64 - bits)) as usize
    }
}

/// The two filter bits of hash `h`.
fn filter_bits(h: u64) -> u64 {
    (1u64 << (h & 31)) | (1u64 << ((h >> 5) & 31))
}

/// The bucket of `bytes` among `1 << bits`.
fn bucket(bytes: &[u8], bits: u32) -> usize {
    bucket_of(hash(bytes), bits)
}

/// The index of `entries` (in lookup order) from the bucket offsets.
fn with_filters<E: AsRef<[u8]>>(entries: &[E], offsets: &[u32]) -> Vec<u64> {
    let mut index: Vec<u64> = offsets.iter().map(|o| u64::from(*o)).collect();
    for (b, window) in offsets.windows(2).enumerate() {
        let bucket = entries
            .get(window[0] as usize..window[1] as usize)
            .unwrap_or(&[]);
        let filter = bucket
            .iter()
            .fold(0u64, |f, e| f | filter_bits(hash(e.as_ref())));
        index[b] |= filter << 32;
    }
    index
}

/// Index bits for `n` entries: a power of two of buckets near `n / 8` (4–8 entries each).
fn bits_for(n: usize) -> u32 {
    (n / 8).max(1).next_power_of_two().trailing_zeros()
}

impl<K: ListKind> Clone for List<K> {
    fn clone(&self) -> Self {
        Self {
            version: self.version,
            entries: self.entries.clone(),
            index: self.index.clone(),
            bits: self.bits,
            kind: PhantomData,
        }
    }
}

impl<K: ListKind> fmt::Debug for List<K> {
    // Entries stay out of logs: blacklisted card numbers are card numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("List")
            .field("kind", &K::NAME)
            .field("version", &self.version)
            .field("len", &self.entries.len())
            .finish()
    }
}

impl<K: ListKind> PartialEq for List<K> {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version && self.entries == other.entries
    }
}

impl<K: ListKind> Eq for List<K> {}

impl<K: ListKind> List<K> {
    /// Builds a list from entries in any order, with repeats: O(n log n).
    pub fn from_unsorted(version: u32, mut entries: Vec<K::Entry>) -> Self {
        entries.sort_unstable();
        entries.dedup();
        let bits = bits_for(entries.len());
        let buckets = 1usize << bits;
        // Counting sort by bucket; stable, so each bucket stays sorted.
        let mut index = alloc::vec![0u32; buckets + 1];
        let keys: Vec<u32> = entries
            .iter()
            .map(|e| bucket(e.as_ref(), bits) as u32)
            .collect();
        for k in &keys {
            index[*k as usize + 1] += 1;
        }
        for b in 0..buckets {
            index[b + 1] += index[b];
        }
        let mut next = index.clone();
        let mut ordered = entries.clone();
        for (e, k) in entries.iter().zip(&keys) {
            let slot = &mut next[*k as usize];
            ordered[*slot as usize] = *e;
            *slot += 1;
        }
        Self {
            version,
            index: with_filters(&ordered, &index),
            entries: ordered,
            bits,
            kind: PhantomData,
        }
    }

    /// A list from entries already in lookup order, distinct (as [`List::to_binary`] writes
    /// them): builds the index in O(n), or gives the entries back if they are not in that order.
    fn from_lookup_order(version: u32, entries: Vec<K::Entry>) -> Result<Self, Vec<K::Entry>> {
        let bits = bits_for(entries.len());
        let buckets = 1usize << bits;
        let mut index = alloc::vec![0u32; buckets + 1];
        let mut in_order = true;
        let mut last: Option<(usize, &K::Entry)> = None;
        for e in &entries {
            let b = bucket(e.as_ref(), bits);
            if let Some((lb, le)) = last
                && (lb, le) >= (b, e)
            {
                in_order = false;
                break;
            }
            index[b + 1] += 1;
            last = Some((b, e));
        }
        if !in_order {
            return Err(entries);
        }
        for b in 0..buckets {
            index[b + 1] += index[b];
        }
        Ok(Self {
            version,
            index: with_filters(&entries, &index),
            entries,
            bits,
            kind: PhantomData,
        })
    }

    /// An empty list.
    pub fn empty(version: u32) -> Self {
        Self::from_unsorted(version, Vec::new())
    }

    /// The list version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The number of distinct entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of memory the entries and the index take.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * K::LEN + self.index.capacity() * 8
    }

    /// Whether `entry` is on the list: one index read, then (unless the filter rules it out) a
    /// scan of one bucket.
    pub fn contains(&self, entry: &K::Entry) -> bool {
        let h = hash(entry.as_ref());
        let b = bucket_of(h, self.bits);
        let (Some(slot), Some(next)) = (self.index.get(b), self.index.get(b + 1)) else {
            return false;
        };
        let want = filter_bits(h);
        if (slot >> 32) & want != want {
            return false;
        }
        let (start, end) = (*slot as u32 as usize, *next as u32 as usize);
        self.entries
            .get(start..end)
            .is_some_and(|bucket| bucket.contains(entry))
    }

    /// The entries, in lookup order (by bucket, then ascending).
    pub fn entries(&self) -> &[K::Entry] {
        &self.entries
    }

    /// The entries sorted ascending.
    pub fn sorted_entries(&self) -> Vec<K::Entry> {
        let mut v = self.entries.clone();
        v.sort_unstable();
        v
    }

    /// The binary form (see the module docs).
    pub fn to_binary(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.entries.len() * K::LEN + 4);
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        out.push(K::CODE);
        out.extend_from_slice(&self.version.to_be_bytes());
        // A list read by `from_binary` or built in memory on a 32-bit target fits u32.
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for e in &self.entries {
            out.extend_from_slice(e.as_ref());
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Reads the binary form (see the module docs).
    pub fn from_binary(bytes: &[u8]) -> Result<Self, BinaryListError> {
        if bytes.len() < HEADER_LEN + 4 {
            return Err(BinaryListError::TooShort { len: bytes.len() });
        }
        if &bytes[..8] != MAGIC {
            return Err(BinaryListError::Magic);
        }
        if bytes[8] != FORMAT_VERSION {
            return Err(BinaryListError::FormatVersion(bytes[8]));
        }
        if bytes[9] != K::CODE {
            return Err(BinaryListError::Kind {
                expected: K::CODE,
                found: bytes[9],
            });
        }
        let version = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
        let count = u32::from_be_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]) as usize;
        let expected = count
            .checked_mul(K::LEN)
            .and_then(|n| n.checked_add(HEADER_LEN + 4));
        if expected != Some(bytes.len()) {
            return Err(BinaryListError::Length {
                count: count as u64,
                len: bytes.len(),
            });
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32(body) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(BinaryListError::Crc);
        }
        let mut entries = Vec::with_capacity(count);
        for chunk in body[HEADER_LEN..].chunks_exact(K::LEN) {
            // Every chunk has exactly `K::LEN` bytes, the entry size.
            let entry = K::Entry::try_from(chunk).map_err(|_| BinaryListError::Crc)?;
            entries.push(entry);
        }
        // A list written by `to_binary` is in lookup order, so this is linear; any other order
        // (or repeats) takes the general build.
        Ok(Self::from_lookup_order(version, entries)
            .unwrap_or_else(|entries| Self::from_unsorted(version, entries)))
    }

    /// The text form (see the module docs).
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(40 + self.entries.len() * (2 * K::LEN + 1));
        // Writing into a String cannot fail.
        let _ = writeln!(out, "ykt-list {} 1\nversion {}", K::NAME, self.version);
        for e in &self.entries {
            for b in e.as_ref() {
                let _ = write!(out, "{b:02X}");
            }
            out.push('\n');
        }
        out
    }

    /// Reads the text form (see the module docs).
    pub fn parse(text: &str) -> Result<Self, ListParseError> {
        let mut header = false;
        let mut version = None;
        let mut entries = Vec::new();
        let mut buf = [0u8; 10];
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let err = |kind| ListParseError { line, kind };
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let mut fields = content.split_whitespace();
            if !header {
                if fields.next() != Some("ykt-list") {
                    return Err(err(ListParseErrorKind::MissingHeader));
                }
                if fields.next() != Some(K::NAME) {
                    return Err(err(ListParseErrorKind::WrongKind));
                }
                if fields.next() != Some("1") || fields.next().is_some() {
                    return Err(err(ListParseErrorKind::UnsupportedFormat));
                }
                header = true;
                continue;
            }
            if version.is_none() {
                let (Some("version"), Some(v), None) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    return Err(err(ListParseErrorKind::MissingVersion));
                };
                if !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err(ListParseErrorKind::BadVersion));
                }
                version = Some(v.parse().map_err(|_| err(ListParseErrorKind::BadVersion))?);
                continue;
            }
            let entry = &mut buf[..K::LEN];
            parse_hex(content, entry).map_err(err)?;
            entries.push(K::Entry::try_from(entry).map_err(|_| err(ListParseErrorKind::BadEntry))?);
        }
        let Some(version) = version else {
            let kind = if header {
                ListParseErrorKind::MissingVersion
            } else {
                ListParseErrorKind::MissingHeader
            };
            return Err(ListParseError { line: 0, kind });
        };
        Ok(Self::from_unsorted(version, entries))
    }
}

impl List<Issuers> {
    /// Whether the card's issuer (first 4 bytes of the EF15 issuer id) is on the whitelist.
    pub fn admits(&self, card: &CardIdentity) -> bool {
        let [a, b, c, d, ..] = card.issuer_id;
        self.contains(&[a, b, c, d])
    }
}

impl List<Cards> {
    /// Whether the card's ASN is on the blacklist.
    pub fn lists(&self, card: &CardIdentity) -> bool {
        self.contains(&card.asn)
    }
}

fn parse_hex(text: &str, out: &mut [u8]) -> Result<(), ListParseErrorKind> {
    let digits = text.as_bytes();
    if digits.len() != out.len() * 2 {
        return Err(ListParseErrorKind::EntryLength {
            digits: digits.len(),
        });
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(ListParseErrorKind::BadEntry),
    };
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(())
}

const MAGIC: &[u8; 8] = b"YKTLIST\0";
const FORMAT_VERSION: u8 = 0x01;
const HEADER_LEN: usize = 18;

/// A text list parse error, with its 1-based line (0 = at the end of the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListParseError {
    /// Line number, 1-based; 0 when the text ended too early.
    pub line: usize,
    /// What is wrong.
    pub kind: ListParseErrorKind,
}

/// What is wrong on a line of a text list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListParseErrorKind {
    /// The first line is not a `ykt-list` header.
    MissingHeader,
    /// The header names the other kind of list.
    WrongKind,
    /// The header names a format other than 1.
    UnsupportedFormat,
    /// The line after the header is not `version <n>`.
    MissingVersion,
    /// The version is not a decimal u32.
    BadVersion,
    /// An entry has the wrong number of hex digits.
    EntryLength {
        /// Digits found.
        digits: usize,
    },
    /// An entry has a character that is not a hex digit.
    BadEntry,
}

impl fmt::Display for ListParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "list line {}: ", self.line)?;
        match self.kind {
            ListParseErrorKind::MissingHeader => f.write_str("expected a `ykt-list` header"),
            ListParseErrorKind::WrongKind => f.write_str("the header names another kind of list"),
            ListParseErrorKind::UnsupportedFormat => f.write_str("unsupported format version"),
            ListParseErrorKind::MissingVersion => f.write_str("expected `version <n>`"),
            ListParseErrorKind::BadVersion => f.write_str("the version is not a decimal u32"),
            ListParseErrorKind::EntryLength { digits } => {
                write!(f, "an entry of {digits} hex digits")
            }
            ListParseErrorKind::BadEntry => f.write_str("an entry with a non-hex character"),
        }
    }
}

impl core::error::Error for ListParseError {}

/// Why bytes are not a binary list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BinaryListError {
    /// Shorter than a header and a CRC.
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// The magic is not `YKTLIST\0`.
    Magic,
    /// An unknown format version.
    FormatVersion(u8),
    /// The list is of the other kind.
    Kind {
        /// Kind byte wanted.
        expected: u8,
        /// Kind byte found.
        found: u8,
    },
    /// The length does not match the entry count.
    Length {
        /// Entry count in the header.
        count: u64,
        /// Bytes received.
        len: usize,
    },
    /// The CRC does not match.
    Crc,
}

impl fmt::Display for BinaryListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "a list of {len} bytes is too short"),
            Self::Magic => f.write_str("not a ykt list (bad magic)"),
            Self::FormatVersion(v) => write!(f, "list format version {v}"),
            Self::Kind { expected, found } => {
                write!(f, "list kind {found:02X}, expected {expected:02X}")
            }
            Self::Length { count, len } => {
                write!(f, "{len} bytes do not hold {count} entries")
            }
            Self::Crc => f.write_str("list CRC mismatch"),
        }
    }
}

impl core::error::Error for BinaryListError {}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, b| {
        CRC_TABLE[usize::from((c as u8) ^ b)] ^ (c >> 8)
    })
}
