//! Storage in memory with a tearing switch, for tests of what survives a power cut.

use alloc::vec::Vec;
use core::fmt;

use super::NvStorage;

/// Power was cut (the tearing switch fired); nothing more is read or written until
/// [`MemoryStorage::power_on`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerLost;

impl fmt::Display for PowerLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("power lost")
    }
}

impl core::error::Error for PowerLost {}

/// Storage in memory. Writes are held back until [`flush`](NvStorage::flush), as a file's
/// writes are until fsync; a power cut drops them.
///
/// The tearing switch ([`arm_at`](MemoryStorage::arm_at)) cuts power during the n-th write from
/// now: the writes not yet flushed are lost, only the first bytes of the torn write reach the
/// durable image (half of it, or as many as [`arm_at_keeping`](MemoryStorage::arm_at_keeping)
/// says), and every later operation fails with [`PowerLost`] until
/// [`power_on`](MemoryStorage::power_on).
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    durable: Vec<u8>,
    pending: Vec<(usize, Vec<u8>)>,
    countdown: Option<(u64, Option<usize>)>,
    writes: u64,
    off: bool,
}

impl MemoryStorage {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Storage holding `bytes`, as if flushed.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            durable: bytes,
            ..Self::default()
        }
    }

    /// Cuts power during the `n`-th write from now (1-based), leaving half of it written.
    /// `arm_at(0)` disarms.
    pub fn arm_at(&mut self, n: u64) {
        self.countdown = (n != 0).then_some((n, None));
    }

    /// Like [`arm_at`](MemoryStorage::arm_at), leaving the first `keep` bytes of the torn write
    /// (at most all but one).
    pub fn arm_at_keeping(&mut self, n: u64, keep: usize) {
        self.countdown = (n != 0).then_some((n, Some(keep)));
    }

    /// True while the switch is armed.
    pub fn is_armed(&self) -> bool {
        self.countdown.is_some()
    }

    /// True after the switch fired and before [`power_on`](MemoryStorage::power_on).
    pub fn is_off(&self) -> bool {
        self.off
    }

    /// Cuts power now: the writes not flushed are lost.
    pub fn power_off(&mut self) {
        self.pending.clear();
        self.off = true;
    }

    /// Restores power after a cut.
    pub fn power_on(&mut self) {
        self.off = false;
    }

    /// Writes so far (each [`NvStorage::write`] call counts one).
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// The durable image (what a power cut now would leave).
    pub fn durable(&self) -> &[u8] {
        &self.durable
    }

    /// Overwrites durable byte `offset` with `value`, to simulate damage.
    pub fn danger_corrupt(&mut self, offset: usize, value: u8) {
        if let Some(b) = self.durable.get_mut(offset) {
            *b = value;
        }
    }

    fn image(&self) -> Vec<u8> {
        let mut image = self.durable.clone();
        for (offset, data) in &self.pending {
            apply(&mut image, *offset, data);
        }
        image
    }
}

fn apply(image: &mut Vec<u8>, offset: usize, data: &[u8]) {
    let end = offset + data.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[offset..end].copy_from_slice(data);
}

impl NvStorage for MemoryStorage {
    type Error = PowerLost;

    fn size(&mut self) -> Result<u64, PowerLost> {
        if self.off {
            return Err(PowerLost);
        }
        Ok(self.image().len() as u64)
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), PowerLost> {
        if self.off {
            return Err(PowerLost);
        }
        let image = self.image();
        let start = usize::try_from(offset).map_err(|_| PowerLost)?;
        let src = image.get(start..start + buf.len()).ok_or(PowerLost)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), PowerLost> {
        if self.off {
            return Err(PowerLost);
        }
        let offset = usize::try_from(offset).map_err(|_| PowerLost)?;
        self.writes += 1;
        match self.countdown {
            Some((1, keep)) => {
                self.countdown = None;
                let keep = keep
                    .unwrap_or(data.len() / 2)
                    .min(data.len().saturating_sub(1));
                self.power_off();
                apply(&mut self.durable, offset, &data[..keep]);
                Err(PowerLost)
            }
            Some((n, keep)) => {
                self.countdown = Some((n - 1, keep));
                self.pending.push((offset, data.to_vec()));
                Ok(())
            }
            None => {
                self.pending.push((offset, data.to_vec()));
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> Result<(), PowerLost> {
        if self.off {
            return Err(PowerLost);
        }
        for (offset, data) in core::mem::take(&mut self.pending) {
            apply(&mut self.durable, offset, &data);
        }
        Ok(())
    }
}
