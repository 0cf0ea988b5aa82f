//! Offline record storage that survives power loss (qr-code.md §3.1 step 12: write the record
//! before the gate opens; uploads can wait).
//!
//! An append-only log of frames over a [`Storage`]: length(4) ‖ sequence(4) ‖ payload ‖
//! check(4), where check is the first 4 bytes of SM3 over the rest of the frame. [`append`]
//! flushes before it returns, so a record is durable once the call succeeds. At
//! [`RecordStore::open`] a torn last frame (cut short, or failing its check with nothing after
//! it) is dropped and overwritten by the next append; damage anywhere else is an error, never a
//! silent reset.
//!
//! [`append`]: RecordStore::append

use alloc::vec::Vec;
use core::fmt;

/// Bytes of a frame around its payload.
const OVERHEAD: usize = 12;
/// The largest payload (a record line with a 364-byte code is under 1 KiB).
pub const MAX_PAYLOAD: usize = 4096;

/// Byte storage that keeps its contents across power loss (a file, flash).
pub trait Storage {
    /// Why an operation failed.
    type Error: fmt::Debug;
    /// The stored length in bytes.
    fn size(&mut self) -> Result<u64, Self::Error>;
    /// Fills `buf` with the bytes at `offset`; reading past the end is an error.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Writes `data` at `offset`, growing the storage if needed.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error>;
    /// Makes every earlier write durable.
    fn flush(&mut self) -> Result<(), Self::Error>;
}

/// Why the store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError<E: fmt::Debug> {
    /// The storage failed (for [`MemoryStorage`]: the power was cut).
    #[error("storage failed: {0:?}")]
    Storage(E),
    /// A frame before the last is damaged.
    #[error("record log damaged at byte {offset}")]
    Damaged {
        /// Where the damaged frame starts.
        offset: u64,
    },
    /// A frame's sequence number is not one more than the previous frame's.
    #[error("record log sequence {found} after {previous}")]
    Sequence {
        /// The previous frame's sequence number.
        previous: u32,
        /// The number found.
        found: u32,
    },
    /// The payload is empty or longer than [`MAX_PAYLOAD`].
    #[error("payload of {0} bytes")]
    PayloadLength(usize),
}

/// A stored record: its sequence number and payload.
pub type StoredRecord = (u32, Vec<u8>);

/// The record log.
#[derive(Debug)]
pub struct RecordStore<S> {
    storage: S,
    /// Offset after the last good frame.
    end: u64,
    next_sequence: u32,
}

fn check(frame_without_check: &[u8]) -> [u8; 4] {
    let h = ykt_crypto::sm3(frame_without_check);
    [h[0], h[1], h[2], h[3]]
}

impl<S: Storage> RecordStore<S> {
    /// Opens the log, dropping a torn last frame; an empty storage starts at sequence
    /// `first_sequence`.
    pub fn open(mut storage: S, first_sequence: u32) -> Result<Self, StoreError<S::Error>> {
        let size = storage.size().map_err(StoreError::Storage)?;
        let mut end = 0u64;
        let mut previous: Option<u32> = None;
        while end < size {
            match read_frame(&mut storage, end, size)? {
                Frame::Good { sequence, len } => {
                    if let Some(p) = previous
                        && sequence != p.wrapping_add(1)
                    {
                        return Err(StoreError::Sequence {
                            previous: p,
                            found: sequence,
                        });
                    }
                    previous = Some(sequence);
                    end += len;
                }
                Frame::Bad { len } => {
                    // A torn tail is never longer than one frame (a cut write, plus stale bytes
                    // of an earlier cut write); damage if more remains, or if a good frame
                    // starts anywhere after this one.
                    let mut damaged = size - end > (MAX_PAYLOAD + OVERHEAD) as u64;
                    if !damaged && let Some(len) = len {
                        damaged = end + len < size
                            && matches!(
                                read_frame(&mut storage, end + len, size)?,
                                Frame::Good { .. }
                            );
                    }
                    let mut at = end + 1;
                    while !damaged && at + (OVERHEAD as u64) <= size {
                        damaged = matches!(read_frame(&mut storage, at, size)?, Frame::Good { .. });
                        at += 1;
                    }
                    if damaged {
                        return Err(StoreError::Damaged { offset: end });
                    }
                    break;
                }
            }
        }
        let next = previous.map_or(first_sequence, |p| p.wrapping_add(1));
        Ok(Self {
            storage,
            end,
            next_sequence: next,
        })
    }

    /// The sequence number the next record gets.
    pub fn next_sequence(&self) -> u32 {
        self.next_sequence
    }

    /// Appends `payload` as the next record and flushes; gives its sequence number. When this
    /// fails the record may or may not be stored: reopen the log to know.
    pub fn append(&mut self, payload: &[u8]) -> Result<u32, StoreError<S::Error>> {
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            return Err(StoreError::PayloadLength(payload.len()));
        }
        let sequence = self.next_sequence;
        let mut frame = Vec::with_capacity(payload.len() + OVERHEAD);
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&sequence.to_be_bytes());
        frame.extend_from_slice(payload);
        let c = check(&frame);
        frame.extend_from_slice(&c);
        self.storage
            .write(self.end, &frame)
            .map_err(StoreError::Storage)?;
        self.storage.flush().map_err(StoreError::Storage)?;
        self.end += frame.len() as u64;
        self.next_sequence = sequence.wrapping_add(1);
        Ok(sequence)
    }

    /// Every stored record from `from` on (sequence, payload), in order.
    pub fn records_from(&mut self, from: u32) -> Result<Vec<StoredRecord>, StoreError<S::Error>> {
        let mut out = Vec::new();
        let mut at = 0u64;
        while at < self.end {
            let mut head = [0u8; 8];
            self.storage
                .read(at, &mut head)
                .map_err(StoreError::Storage)?;
            let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let sequence = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
            if sequence >= from {
                let mut payload = alloc::vec![0u8; len];
                self.storage
                    .read(at + 8, &mut payload)
                    .map_err(StoreError::Storage)?;
                out.push((sequence, payload));
            }
            at += (len + OVERHEAD) as u64;
        }
        Ok(out)
    }

    /// The storage.
    pub fn into_storage(self) -> S {
        self.storage
    }
}

enum Frame {
    Good {
        sequence: u32,
        len: u64,
    },
    /// Failing its check (with its length), or cut short or with an impossible length (the
    /// next frame cannot be located).
    Bad {
        len: Option<u64>,
    },
}

fn read_frame<S: Storage>(
    storage: &mut S,
    at: u64,
    size: u64,
) -> Result<Frame, StoreError<S::Error>> {
    if size - at < OVERHEAD as u64 {
        return Ok(Frame::Bad { len: None });
    }
    let mut head = [0u8; 8];
    storage.read(at, &mut head).map_err(StoreError::Storage)?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len == 0 || len > MAX_PAYLOAD {
        return Ok(Frame::Bad { len: None });
    }
    let total = (len + OVERHEAD) as u64;
    if size - at < total {
        return Ok(Frame::Bad { len: None });
    }
    let mut frame = alloc::vec![0u8; len + OVERHEAD];
    storage.read(at, &mut frame).map_err(StoreError::Storage)?;
    let (body, c) = frame.split_at(len + 8);
    if check(body) != c {
        return Ok(Frame::Bad { len: Some(total) });
    }
    Ok(Frame::Good {
        sequence: u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
        len: total,
    })
}

/// Storage in memory with a power switch: [`MemoryStorage::cut_after`] lets only that many more
/// bytes be written, then every operation fails until [`MemoryStorage::power_on`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStorage {
    bytes: Vec<u8>,
    budget: Option<usize>,
    off: bool,
}

/// The power of a [`MemoryStorage`] was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerCut;

impl MemoryStorage {
    /// Empty storage, powered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cuts the power once `bytes` more bytes have been written (the write that crosses the
    /// limit stores only its first bytes).
    pub fn cut_after(&mut self, bytes: usize) {
        self.budget = Some(bytes);
    }

    /// Restores the power (the bytes written so far stay).
    pub fn power_on(&mut self) {
        self.off = false;
        self.budget = None;
    }

    /// The stored bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Mutable access to the stored bytes (to damage them in tests).
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

impl Storage for MemoryStorage {
    type Error = PowerCut;

    fn size(&mut self) -> Result<u64, PowerCut> {
        if self.off {
            return Err(PowerCut);
        }
        Ok(self.bytes.len() as u64)
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), PowerCut> {
        if self.off {
            return Err(PowerCut);
        }
        let start = usize::try_from(offset).map_err(|_| PowerCut)?;
        let src = self.bytes.get(start..start + buf.len()).ok_or(PowerCut)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), PowerCut> {
        if self.off {
            return Err(PowerCut);
        }
        let start = usize::try_from(offset).map_err(|_| PowerCut)?;
        let n = match self.budget {
            Some(b) if b < data.len() => b,
            _ => data.len(),
        };
        if self.bytes.len() < start + n {
            self.bytes.resize(start + n, 0);
        }
        self.bytes[start..start + n].copy_from_slice(&data[..n]);
        if let Some(b) = self.budget.as_mut() {
            *b -= n;
            if n < data.len() {
                self.off = true;
                return Err(PowerCut);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PowerCut> {
        if self.off {
            return Err(PowerCut);
        }
        Ok(())
    }
}
