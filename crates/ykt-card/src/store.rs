//! Power-cut-safe persistent store: simulated EEPROM, page-image redo journal, tearing switch.
//!
//! # Model
//!
//! The EEPROM has two regions, both programmed one [`PAGE`] (16 bytes) at a time; every page
//! program is one *persistent write* (counted by [`Card::persistent_writes`](crate::Card::persistent_writes)):
//!
//! * the **data region** holds the object heap (below);
//! * the **journal region** holds, at page 0, the commit marker and, from page 1, redo records.
//!
//! A command's writes are staged in RAM (a copy of the data region, so reads see them). Commit:
//!
//! 1. write the redo records (the full new image of every touched data page, in runs:
//!    `start page u32 · page count u16 · images · CRC-32 of the record`) to journal pages 1..;
//! 2. program the commit marker, one page: `"YKJ1" · records length u32 · record count u32 ·
//!    CRC-32 of (those 12 bytes ‖ records)`;
//! 3. program every touched data page with its new image;
//! 4. program the marker page with zeros.
//!
//! Recovery at power-on: a marker page of zeros means nothing to do; a marker whose CRC and
//! records check out is replayed (steps 3 and 4 again; page images make that idempotent);
//! anything else (a torn marker) is discarded by zeroing the marker page. Recovery writes are
//! persistent writes too, so the tearing switch can cut them and the next power-on redoes them.
//!
//! # Tearing
//!
//! [`TearSwitch::arm_at`]`(n)` cuts power *during* the n-th page program from now: that page is
//! left half-programmed (its first 8 bytes new, the last 8 bytes `FF`), and every later program
//! is refused until the next power-up.
//!
//! # Object heap (data region)
//!
//! ```text
//!   0: "YKTS" · top u32          (header page)
//!  16: entry* up to top          entry = ns u16 · space u8 · id u16 · len u32 · value[len]
//! ```
//! Objects are created once and never freed (an applet instance's objects live as long as the
//! card); each has a fixed length fixed at creation.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

/// Bytes per EEPROM page: the unit of one persistent write.
pub const PAGE: usize = 16;
/// Capacity of the data region in bytes.
pub const DATA_CAPACITY: usize = 256 * 1024;
/// Capacity of the journal region in bytes (marker page included).
pub const JOURNAL_CAPACITY: usize = 64 * 1024;

const HEAP_MAGIC: [u8; 4] = *b"YKTS";
const HEAP_START: usize = PAGE;
const ENTRY_HEADER: usize = 9;
const MARKER_MAGIC: [u8; 4] = *b"YKJ1";

pub(crate) const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The tearing switch: cuts power during a chosen future persistent write.
#[derive(Clone, Debug, Default)]
pub struct TearSwitch {
    countdown: Option<u64>,
}

impl TearSwitch {
    /// Cuts power during the `n`-th persistent write from now (1-based: `arm_at(1)` tears the
    /// very next page program). `arm_at(0)` disarms.
    pub fn arm_at(&mut self, n: u64) {
        self.countdown = if n == 0 { None } else { Some(n) };
    }

    /// Disarms the switch.
    pub fn disarm(&mut self) {
        self.countdown = None;
    }

    /// True while armed (it disarms itself when it fires).
    pub fn is_armed(&self) -> bool {
        self.countdown.is_some()
    }

    /// Counts one page program; true when this one is to be torn.
    fn tick(&mut self) -> bool {
        match self.countdown {
            Some(1) => {
                self.countdown = None;
                true
            }
            Some(n) => {
                self.countdown = Some(n - 1);
                false
            }
            None => false,
        }
    }
}

/// Power was cut during (or before) a page program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PowerLost;

/// Why a store operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// The card has lost power; nothing more is written until power-up.
    PowerLost,
    /// No such object.
    NotFound,
    /// The object exists already.
    Exists,
    /// Offset and length go past the object's end.
    OutOfRange,
    /// The heap or the journal has no room for this.
    Full,
}

impl From<PowerLost> for StoreError {
    fn from(_: PowerLost) -> Self {
        StoreError::PowerLost
    }
}

/// Which part of the object heap an object belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Space {
    /// Applet objects ([`ObjectId`](crate::ObjectId)).
    Applet = 0,
    /// ISO 7816-4 EF descriptors (by FID).
    FileMeta = 1,
    /// ISO 7816-4 EF bodies (by FID).
    FileData = 2,
    /// The runtime's own record of an instance (id 0: its [`manage`](crate::manage) record),
    /// in the instance's namespace.
    Runtime = 3,
}

impl Space {
    fn from_byte(b: u8) -> Option<Space> {
        match b {
            0 => Some(Space::Applet),
            1 => Some(Space::FileMeta),
            2 => Some(Space::FileData),
            3 => Some(Space::Runtime),
            _ => None,
        }
    }
}

/// Address of one object: applet namespace, space, identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub(crate) ns: u16,
    pub(crate) space: Space,
    pub(crate) id: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    offset: usize,
    len: usize,
}

/// The EEPROM image is not a well-formed object heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeapError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    Data,
    Journal,
}

/// The simulated EEPROM: two page-programmed regions, a write counter and the tearing switch.
#[derive(Clone, Debug, Default)]
struct Eeprom {
    data: Vec<u8>,
    journal: Vec<u8>,
    writes: u64,
    tear: TearSwitch,
    /// Power was cut; every program is refused until [`Store::power_up`].
    torn: bool,
}

impl Eeprom {
    /// Programs one page. A torn program leaves the first half new and the second half `FF`.
    fn program(
        &mut self,
        region: Region,
        page: usize,
        image: &[u8; PAGE],
    ) -> Result<(), PowerLost> {
        if self.torn {
            return Err(PowerLost);
        }
        let buf = match region {
            Region::Data => &mut self.data,
            Region::Journal => &mut self.journal,
        };
        let start = page * PAGE;
        let end = start + PAGE;
        if buf.len() < end {
            buf.resize(end, 0);
        }
        let Some(target) = buf.get_mut(start..end) else {
            return Err(PowerLost);
        };
        self.writes += 1;
        if self.tear.tick() {
            let (first, second) = target.split_at_mut(PAGE / 2);
            first.copy_from_slice(image.get(..PAGE / 2).unwrap_or(&[0; PAGE / 2]));
            second.fill(0xFF);
            self.torn = true;
            return Err(PowerLost);
        }
        target.copy_from_slice(image);
        Ok(())
    }

    fn marker_page(&self) -> [u8; PAGE] {
        page_of(&self.journal, 0)
    }
}

/// The 16 bytes of page `page` of `buf`, zero-padded past its end.
fn page_of(buf: &[u8], page: usize) -> [u8; PAGE] {
    let mut out = [0u8; PAGE];
    let start = page * PAGE;
    if let Some(src) = buf.get(start..) {
        for (d, s) in out.iter_mut().zip(src) {
            *d = *s;
        }
    }
    out
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Parses a committed journal: the page images to replay, or `None` when the marker or any
/// record fails its check (then there is nothing committed to replay).
fn committed_pages(journal: &[u8]) -> Option<Vec<(usize, [u8; PAGE])>> {
    let marker = page_of(journal, 0);
    if marker.get(..4)? != MARKER_MAGIC {
        return None;
    }
    let records_len = usize::try_from(be_u32(&marker, 4)?).ok()?;
    let count = be_u32(&marker, 8)?;
    let crc = be_u32(&marker, 12)?;
    let records = journal.get(PAGE..PAGE.checked_add(records_len)?)?;
    let mut digest = CRC32.digest();
    digest.update(marker.get(..12)?);
    digest.update(records);
    if digest.finalize() != crc {
        return None;
    }
    let mut pages = Vec::new();
    let mut at = 0usize;
    for _ in 0..count {
        let start = usize::try_from(be_u32(records, at)?).ok()?;
        let n = usize::from(be_u16(records, at + 4)?);
        let body_end = at + 6 + n * PAGE;
        let body = records.get(at..body_end)?;
        if CRC32.checksum(body) != be_u32(records, body_end)? {
            return None;
        }
        for k in 0..n {
            let img = records.get(at + 6 + k * PAGE..at + 6 + (k + 1) * PAGE)?;
            let mut page = [0u8; PAGE];
            page.copy_from_slice(img);
            if start.checked_add(k + 1)?.checked_mul(PAGE)? > DATA_CAPACITY {
                return None;
            }
            pages.push((start + k, page));
        }
        at = body_end + 4;
    }
    (at == records_len).then_some(pages)
}

/// The persistent store: EEPROM plus the RAM state of the current transaction.
#[derive(Clone, Debug, Default)]
pub(crate) struct Store {
    eeprom: Eeprom,
    /// The data region with this transaction's staged writes applied.
    view: Vec<u8>,
    /// Data pages staged (differing from EEPROM) in this transaction.
    dirty: BTreeSet<usize>,
    /// Object directory of `view`.
    index: BTreeMap<Key, Span>,
    /// Objects were created in this transaction (the index must be rebuilt on discard).
    created: bool,
}

impl Store {
    /// A blank EEPROM.
    pub(crate) fn new() -> Store {
        Store::default()
    }

    /// A store over saved regions. The image is checked by running recovery on a scratch copy
    /// and parsing the resulting heap; the real recovery waits for power-up.
    pub(crate) fn from_parts(
        data: Vec<u8>,
        journal: Vec<u8>,
        writes: u64,
    ) -> Result<Store, HeapError> {
        if !data.len().is_multiple_of(PAGE)
            || !journal.len().is_multiple_of(PAGE)
            || data.len() > DATA_CAPACITY
            || journal.len() > JOURNAL_CAPACITY
        {
            return Err(HeapError);
        }
        let mut scratch = Store {
            eeprom: Eeprom {
                data: data.clone(),
                journal: journal.clone(),
                ..Eeprom::default()
            },
            ..Store::default()
        };
        scratch.power_up().map_err(|_| HeapError)?;
        index_heap(&scratch.view)?;
        let mut store = Store {
            eeprom: Eeprom {
                data,
                journal,
                writes,
                ..Eeprom::default()
            },
            ..Store::default()
        };
        store.view = store.eeprom.data.clone();
        // Before recovery the heap may hold a torn page; the index is rebuilt at power-up.
        store.index = index_heap(&store.view).unwrap_or_default();
        Ok(store)
    }

    pub(crate) fn data_image(&self) -> &[u8] {
        &self.eeprom.data
    }

    pub(crate) fn journal_image(&self) -> &[u8] {
        &self.eeprom.journal
    }

    pub(crate) fn writes(&self) -> u64 {
        self.eeprom.writes
    }

    pub(crate) fn tear_switch(&mut self) -> &mut TearSwitch {
        &mut self.eeprom.tear
    }

    /// Power was cut and not restored.
    pub(crate) fn is_torn(&self) -> bool {
        self.eeprom.torn
    }

    /// The journal holds something recovery must look at (possible only after a power loss,
    /// or in a state saved after one).
    pub(crate) fn journal_pending(&self) -> bool {
        self.eeprom.marker_page() != [0; PAGE]
    }

    /// Power-up: forget RAM, recover the journal, rebuild the directory. `Err` when the tearing
    /// switch cut power again during recovery (the journal is still there for the next try).
    pub(crate) fn power_up(&mut self) -> Result<(), PowerLost> {
        self.eeprom.torn = false;
        self.dirty.clear();
        self.created = false;
        let result = self.recover();
        self.view = self.eeprom.data.clone();
        self.index = index_heap(&self.view).unwrap_or_default();
        result
    }

    fn recover(&mut self) -> Result<(), PowerLost> {
        let marker = self.eeprom.marker_page();
        if marker == [0; PAGE] {
            return Ok(());
        }
        if let Some(pages) = committed_pages(&self.eeprom.journal) {
            for (page, image) in pages {
                self.eeprom.program(Region::Data, page, &image)?;
            }
        }
        self.eeprom.program(Region::Journal, 0, &[0; PAGE])
    }

    /// The current value of an object (staged writes included).
    pub(crate) fn read(&self, key: Key) -> Option<&[u8]> {
        let span = self.index.get(&key)?;
        self.view.get(span.offset..span.offset + span.len)
    }

    /// Keys in namespace `ns` and space `space`, in identifier order.
    pub(crate) fn keys_in(&self, ns: u16, space: Space) -> impl Iterator<Item = Key> + '_ {
        let lo = Key { ns, space, id: 0 };
        let hi = Key {
            ns,
            space,
            id: u16::MAX,
        };
        self.index.range(lo..=hi).map(|(k, _)| *k)
    }

    /// Keys of `space` in every namespace, in namespace order.
    pub(crate) fn keys_of_space(&self, space: Space) -> impl Iterator<Item = Key> + '_ {
        self.index.keys().filter(move |k| k.space == space).copied()
    }

    fn stage(&mut self, addr: usize, bytes: &[u8]) -> Result<(), StoreError> {
        if self.eeprom.torn {
            return Err(StoreError::PowerLost);
        }
        let end = addr.checked_add(bytes.len()).ok_or(StoreError::Full)?;
        if end > DATA_CAPACITY {
            return Err(StoreError::Full);
        }
        let padded = end.div_ceil(PAGE) * PAGE;
        if self.view.len() < padded {
            self.view.resize(padded, 0);
        }
        let target = self.view.get_mut(addr..end).ok_or(StoreError::Full)?;
        if target == bytes {
            return Ok(());
        }
        target.copy_from_slice(bytes);
        if !bytes.is_empty() {
            for page in addr / PAGE..=(end - 1) / PAGE {
                self.dirty.insert(page);
            }
        }
        Ok(())
    }

    /// Creates an object with `initial` as its value (and length).
    pub(crate) fn create(&mut self, key: Key, initial: &[u8]) -> Result<(), StoreError> {
        if self.eeprom.torn {
            return Err(StoreError::PowerLost);
        }
        if self.index.contains_key(&key) {
            return Err(StoreError::Exists);
        }
        let len = u32::try_from(initial.len()).map_err(|_| StoreError::Full)?;
        let top = if self.view.get(..4) == Some(&HEAP_MAGIC[..]) {
            be_u32(&self.view, 4)
                .and_then(|t| usize::try_from(t).ok())
                .ok_or(StoreError::Full)?
        } else {
            self.stage(0, &HEAP_MAGIC)?;
            HEAP_START
        };
        let offset = top + ENTRY_HEADER;
        let new_top = offset.checked_add(initial.len()).ok_or(StoreError::Full)?;
        if new_top > DATA_CAPACITY {
            return Err(StoreError::Full);
        }
        let mut entry = Vec::with_capacity(ENTRY_HEADER + initial.len());
        entry.extend_from_slice(&key.ns.to_be_bytes());
        entry.push(key.space as u8);
        entry.extend_from_slice(&key.id.to_be_bytes());
        entry.extend_from_slice(&len.to_be_bytes());
        entry.extend_from_slice(initial);
        self.stage(top, &entry)?;
        let top_bytes = u32::try_from(new_top)
            .map_err(|_| StoreError::Full)?
            .to_be_bytes();
        self.stage(4, &top_bytes)?;
        self.index.insert(
            key,
            Span {
                offset,
                len: initial.len(),
            },
        );
        self.created = true;
        Ok(())
    }

    /// Overwrites part of an object.
    pub(crate) fn write(
        &mut self,
        key: Key,
        offset: usize,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        if self.eeprom.torn {
            return Err(StoreError::PowerLost);
        }
        let span = *self.index.get(&key).ok_or(StoreError::NotFound)?;
        let end = offset
            .checked_add(bytes.len())
            .ok_or(StoreError::OutOfRange)?;
        if end > span.len {
            return Err(StoreError::OutOfRange);
        }
        self.stage(span.offset + offset, bytes)
    }

    /// Makes every staged write persistent, all or none (see the module documentation).
    pub(crate) fn commit(&mut self) -> Result<(), StoreError> {
        if self.eeprom.torn {
            return Err(StoreError::PowerLost);
        }
        if self.dirty.is_empty() {
            self.created = false;
            return Ok(());
        }
        let pages: Vec<usize> = self.dirty.iter().copied().collect();
        let mut records = Vec::new();
        let mut count = 0u32;
        let mut i = 0;
        while let Some(&start) = pages.get(i) {
            let mut n = 1;
            while n < usize::from(u16::MAX) && pages.get(i + n) == Some(&(start + n)) {
                n += 1;
            }
            let mut record = Vec::with_capacity(6 + n * PAGE + 4);
            record.extend_from_slice(
                &u32::try_from(start)
                    .map_err(|_| StoreError::Full)?
                    .to_be_bytes(),
            );
            record.extend_from_slice(
                &u16::try_from(n)
                    .map_err(|_| StoreError::Full)?
                    .to_be_bytes(),
            );
            for k in 0..n {
                record.extend_from_slice(&page_of(&self.view, start + k));
            }
            let crc = CRC32.checksum(&record);
            record.extend_from_slice(&crc.to_be_bytes());
            records.extend_from_slice(&record);
            count += 1;
            i += n;
        }
        if PAGE + records.len() > JOURNAL_CAPACITY {
            return Err(StoreError::Full);
        }
        let records_len = u32::try_from(records.len()).map_err(|_| StoreError::Full)?;
        let mut marker = [0u8; PAGE];
        marker[..4].copy_from_slice(&MARKER_MAGIC);
        marker[4..8].copy_from_slice(&records_len.to_be_bytes());
        marker[8..12].copy_from_slice(&count.to_be_bytes());
        let mut digest = CRC32.digest();
        digest.update(&marker[..12]);
        digest.update(&records);
        marker[12..].copy_from_slice(&digest.finalize().to_be_bytes());

        for (k, chunk) in records.chunks(PAGE).enumerate() {
            let mut image = [0u8; PAGE];
            image[..chunk.len()].copy_from_slice(chunk);
            self.eeprom.program(Region::Journal, 1 + k, &image)?;
        }
        self.eeprom.program(Region::Journal, 0, &marker)?;
        for &page in &pages {
            self.eeprom
                .program(Region::Data, page, &page_of(&self.view, page))?;
        }
        self.eeprom.program(Region::Journal, 0, &[0; PAGE])?;
        self.dirty.clear();
        self.created = false;
        Ok(())
    }

    /// Drops every staged write.
    pub(crate) fn discard(&mut self) {
        for &page in &self.dirty {
            let image = page_of(&self.eeprom.data, page);
            if let Some(target) = self.view.get_mut(page * PAGE..(page + 1) * PAGE) {
                target.copy_from_slice(&image);
            }
        }
        let committed_len = self.eeprom.data.len();
        if self.view.len() > committed_len {
            self.view.truncate(committed_len);
        }
        self.dirty.clear();
        if self.created {
            self.index = index_heap(&self.view).unwrap_or_default();
            self.created = false;
        }
    }
}

/// Parses the object heap of a data region image.
fn index_heap(view: &[u8]) -> Result<BTreeMap<Key, Span>, HeapError> {
    let mut index = BTreeMap::new();
    if view.iter().all(|b| *b == 0) {
        return Ok(index);
    }
    if view.get(..4) != Some(&HEAP_MAGIC[..]) {
        return Err(HeapError);
    }
    let top = be_u32(view, 4)
        .and_then(|t| usize::try_from(t).ok())
        .ok_or(HeapError)?;
    if top < HEAP_START || top > view.len() {
        return Err(HeapError);
    }
    let mut at = HEAP_START;
    while at < top {
        let ns = be_u16(view, at).ok_or(HeapError)?;
        let space = Space::from_byte(*view.get(at + 2).ok_or(HeapError)?).ok_or(HeapError)?;
        let id = be_u16(view, at + 3).ok_or(HeapError)?;
        let len = be_u32(view, at + 5)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or(HeapError)?;
        let offset = at + ENTRY_HEADER;
        let end = offset.checked_add(len).ok_or(HeapError)?;
        if end > top {
            return Err(HeapError);
        }
        if index
            .insert(Key { ns, space, id }, Span { offset, len })
            .is_some()
        {
            return Err(HeapError);
        }
        at = end;
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16) -> Key {
        Key {
            ns: 1,
            space: Space::Applet,
            id,
        }
    }

    #[test]
    fn commit_and_discard() {
        let mut s = Store::new();
        s.create(key(1), &[1, 2, 3]).unwrap();
        s.commit().unwrap();
        s.write(key(1), 1, &[9]).unwrap();
        assert_eq!(s.read(key(1)), Some(&[1, 9, 3][..]));
        s.discard();
        assert_eq!(s.read(key(1)), Some(&[1, 2, 3][..]));
        s.create(key(2), &[7; 40]).unwrap();
        s.discard();
        assert_eq!(s.read(key(2)), None);
        s.power_up().unwrap();
        assert_eq!(s.read(key(1)), Some(&[1, 2, 3][..]));
    }

    #[test]
    fn torn_program_is_half_written() {
        let mut e = Eeprom::default();
        e.tear.arm_at(1);
        assert_eq!(e.program(Region::Data, 0, &[0x11; PAGE]), Err(PowerLost));
        assert_eq!(&e.data[..8], &[0x11; 8]);
        assert_eq!(&e.data[8..16], &[0xFF; 8]);
        assert_eq!(e.program(Region::Data, 0, &[0x11; PAGE]), Err(PowerLost));
        assert_eq!(e.writes, 1);
    }
}
