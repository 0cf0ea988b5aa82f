//! The terminal's transaction journal: an append-only log in non-volatile storage that survives
//! a power cut at any write (e-purse.md §7, grey records).
//!
//! # Layout
//!
//! ```text
//!   header  "YKTJRNL\0" · version u16 (1) · CRC-32 of those 10 bytes           (14 bytes)
//!   entry*  sync E7 · payload length u16 · sequence u32 · kind u8 · payload
//!           · CRC-32 of every preceding byte of the entry                       (12 + payload)
//! ```
//!
//! All integers are big-endian; sequence numbers start at 1 and go up by one per entry.
//! One [`Journal::append`] is one [`NvStorage::write`] of the whole entry at the end of the log,
//! then one [`NvStorage::flush`]; the entry counts as written when the flush returns.
//!
//! # Opening
//!
//! [`Journal::open`] reads the log from the start and keeps every entry whose frame, CRC and
//! sequence number check out. The first entry that does not check out ends the log: a power cut
//! during an append leaves exactly such a torn tail, which is dropped, and the next append
//! overwrites it. The bytes after that point are then searched for any well-formed entry: since
//! appends only ever go to the end, a torn write can leave no complete entry behind it, so one
//! found there means the log was damaged in the middle, and opening fails with
//! [`JournalError::Corrupt`] rather than silently dropping records.
//!
//! A log shorter than its header whose bytes are a prefix of the header is a creation that was
//! torn, and is created again; any other defect of the header is an error, never a fresh journal.

mod entry;
mod memory;

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

pub use entry::{
    Entry, EntryBody, GreyReason, GreyTransaction, Origin, PendingLoad, PendingPurchase, Resolution,
};
pub use memory::{MemoryStorage, PowerLost};

/// Byte-addressed non-volatile storage under the journal (a file, a flash partition, or
/// [`MemoryStorage`] in tests).
///
/// Writes may be buffered; only [`flush`](NvStorage::flush) makes them durable. A write that
/// power cuts may be left partial.
pub trait NvStorage {
    /// Why an operation failed.
    type Error: fmt::Debug + fmt::Display;
    /// The stored length in bytes.
    fn size(&mut self) -> Result<u64, Self::Error>;
    /// Fills `buf` with the bytes at `offset`; reading past the end is an error.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Writes `data` at `offset`, growing the storage if needed.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error>;
    /// Makes every earlier write durable (fsync).
    fn flush(&mut self) -> Result<(), Self::Error>;
}

impl<S: NvStorage + ?Sized> NvStorage for &mut S {
    type Error = S::Error;
    fn size(&mut self) -> Result<u64, Self::Error> {
        (**self).size()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        (**self).read(offset, buf)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        (**self).write(offset, data)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        (**self).flush()
    }
}

/// Why the journal could not be opened or appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalError<E> {
    /// The storage failed.
    Storage(E),
    /// The storage holds something else than a journal (wrong magic).
    NotAJournal,
    /// A journal of a layout version this code does not read.
    UnsupportedVersion(u16),
    /// The header's CRC does not match.
    HeaderCorrupt,
    /// An entry does not check out, yet well-formed entries follow it: the log is damaged in the
    /// middle, not torn at its end. Nothing was dropped; the operator must act.
    Corrupt {
        /// Offset of the first entry that does not check out.
        offset: u64,
    },
    /// An entry checks out (CRC, sequence) but its content cannot be decoded.
    MalformedEntry {
        /// Its sequence number.
        seq: u32,
    },
    /// The entry does not fit one frame (payload over 65,535 bytes) or the sequence is exhausted.
    Full,
}

impl<E: fmt::Display> fmt::Display for JournalError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Storage(e) => write!(f, "journal storage: {e}"),
            Self::NotAJournal => f.write_str("the storage holds no transaction journal"),
            Self::UnsupportedVersion(v) => write!(f, "journal layout version {v} is not supported"),
            Self::HeaderCorrupt => f.write_str("the journal header is corrupt"),
            Self::Corrupt { offset } => write!(
                f,
                "the journal is damaged at offset {offset}, with entries after the damage"
            ),
            Self::MalformedEntry { seq } => write!(f, "journal entry {seq} cannot be decoded"),
            Self::Full => f.write_str("the journal cannot take this entry"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for JournalError<E> {}

const MAGIC: [u8; 8] = *b"YKTJRNL\0";
const VERSION: u16 = 1;
/// Length of the journal header.
pub const HEADER_LEN: usize = 14;
const SYNC: u8 = 0xE7;
/// Bytes an entry adds around its payload (header 8, CRC 4).
pub const FRAME_OVERHEAD: usize = 12;
const FRAME_HEADER: usize = 8;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_be_bytes());
    let crc = CRC32.checksum(&h[..10]);
    h[10..].copy_from_slice(&crc.to_be_bytes());
    h
}

/// A frame found at some offset of the log.
struct Frame<'a> {
    seq: u32,
    kind: u8,
    payload: &'a [u8],
    len: usize,
}

/// Decodes the frame at the start of `bytes`, if one is there whole and its CRC checks.
fn frame(bytes: &[u8]) -> Option<Frame<'_>> {
    let head = bytes.get(..FRAME_HEADER)?;
    if head[0] != SYNC {
        return None;
    }
    let payload_len = usize::from(u16::from_be_bytes([head[1], head[2]]));
    let total = FRAME_OVERHEAD + payload_len;
    let whole = bytes.get(..total)?;
    let (body, crc) = whole.split_at(total - 4);
    if CRC32.checksum(body).to_be_bytes() != crc {
        return None;
    }
    Some(Frame {
        seq: u32::from_be_bytes([head[3], head[4], head[5], head[6]]),
        kind: head[7],
        payload: &body[FRAME_HEADER..],
        len: total,
    })
}

fn encode_frame(seq: u32, kind: u8, payload: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(payload.len()).ok()?;
    let mut out = Vec::with_capacity(FRAME_OVERHEAD + payload.len());
    out.push(SYNC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    let crc = CRC32.checksum(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Some(out)
}

/// The append-only transaction journal over a storage `S`.
pub struct Journal<S: NvStorage> {
    storage: S,
    end: u64,
    entries: Vec<Entry>,
    /// Grey entries no later entry resolves.
    open: BTreeSet<u32>,
    /// Grey entries some later entry resolves.
    resolved: BTreeSet<u32>,
}

impl<S: NvStorage> fmt::Debug for Journal<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("end", &self.end)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl<S: NvStorage> Journal<S> {
    /// Opens the journal in `storage`, creating it when the storage is empty (or holds only a
    /// torn creation). A torn last entry is dropped; every other defect is an error.
    pub fn open(mut storage: S) -> Result<Self, JournalError<S::Error>> {
        let size = storage.size().map_err(JournalError::Storage)?;
        let size = usize::try_from(size).map_err(|_| JournalError::Full)?;
        let mut bytes = vec![0u8; size];
        storage.read(0, &mut bytes).map_err(JournalError::Storage)?;
        let header = header();
        if bytes.len() < HEADER_LEN {
            if header.starts_with(&bytes) {
                storage.write(0, &header).map_err(JournalError::Storage)?;
                storage.flush().map_err(JournalError::Storage)?;
                return Ok(Self {
                    storage,
                    end: HEADER_LEN as u64,
                    entries: Vec::new(),
                    open: BTreeSet::new(),
                    resolved: BTreeSet::new(),
                });
            }
            return Err(JournalError::NotAJournal);
        }
        if bytes[..8] != MAGIC {
            return Err(JournalError::NotAJournal);
        }
        if bytes[..HEADER_LEN] != header {
            let version = u16::from_be_bytes([bytes[8], bytes[9]]);
            let crc = CRC32.checksum(&bytes[..10]).to_be_bytes();
            return Err(if crc != bytes[10..HEADER_LEN] {
                JournalError::HeaderCorrupt
            } else {
                JournalError::UnsupportedVersion(version)
            });
        }
        let mut entries = Vec::new();
        let mut offset = HEADER_LEN;
        while let Some(f) = frame(&bytes[offset..]) {
            let expected = entries.len() as u64 + 1;
            if u64::from(f.seq) != expected {
                break;
            }
            let body = EntryBody::decode(f.kind, f.payload)
                .ok_or(JournalError::MalformedEntry { seq: f.seq })?;
            entries.push(Entry { seq: f.seq, body });
            offset += f.len;
        }
        // A torn append leaves no whole entry behind the break; anything else is damage.
        if (offset..bytes.len()).any(|at| frame(&bytes[at..]).is_some()) {
            return Err(JournalError::Corrupt {
                offset: offset as u64,
            });
        }
        let mut journal = Self {
            storage,
            end: offset as u64,
            entries: Vec::new(),
            open: BTreeSet::new(),
            resolved: BTreeSet::new(),
        };
        entries.into_iter().for_each(|e| journal.push(e));
        Ok(journal)
    }

    fn push(&mut self, entry: Entry) {
        if entry.body.grey().is_some() {
            self.open.insert(entry.seq);
        }
        if let Some(seq) = entry.body.resolves() {
            self.open.remove(&seq);
            self.resolved.insert(seq);
        }
        self.entries.push(entry);
    }

    /// Appends `body` and makes it durable; returns its sequence number. When this returns
    /// `Ok`, the entry survives any later power cut.
    pub fn append(&mut self, body: EntryBody) -> Result<u32, JournalError<S::Error>> {
        let seq = u32::try_from(self.entries.len() + 1).map_err(|_| JournalError::Full)?;
        let (kind, payload) = body.encode();
        let frame = encode_frame(seq, kind, &payload).ok_or(JournalError::Full)?;
        self.storage
            .write(self.end, &frame)
            .map_err(JournalError::Storage)?;
        self.storage.flush().map_err(JournalError::Storage)?;
        self.end += frame.len() as u64;
        self.push(Entry { seq, body });
        Ok(seq)
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry with sequence number `seq`.
    pub fn entry(&self, seq: u32) -> Option<&Entry> {
        let index = usize::try_from(seq).ok()?.checked_sub(1)?;
        self.entries.get(index)
    }

    /// True when a later entry resolves the grey entry `seq` (a completed record or a
    /// [`Resolution`] naming it).
    pub fn is_resolved(&self, seq: u32) -> bool {
        self.resolved.contains(&seq)
    }

    /// The grey entries no later entry resolves, oldest first.
    pub fn open_grey(&self) -> impl Iterator<Item = (u32, GreyTransaction<'_>)> + '_ {
        self.open
            .iter()
            .filter_map(|seq| Some((*seq, self.entry(*seq)?.body.grey()?)))
    }

    /// The newest unresolved grey entry of the card with application `aid` and serial `asn`.
    pub fn open_grey_for(&self, aid: &[u8], asn: &[u8; 10]) -> Option<(u32, GreyTransaction<'_>)> {
        self.open_grey()
            .filter(|(_, g)| g.aid() == aid && g.card().asn == *asn)
            .last()
    }

    /// The offset where the next entry goes.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The storage, read-only.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, e.g. to arm a test storage's tearing switch. Writing to it behind the
    /// journal's back breaks the journal.
    pub fn danger_storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// The storage, e.g. to reopen it after a simulated power cut.
    pub fn into_storage(self) -> S {
        self.storage
    }
}
