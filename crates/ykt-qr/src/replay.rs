//! The replay cache of a scanning terminal (§3.1 step 9).
//!
//! A code is keyed on (user account, generation time): two codes of one user shown in the same
//! second are the same code for this purpose, and metro entry and exit use two different codes.
//! An entry is kept until the code could no longer pass the freshness check anyway (generation
//! time + validity + skew), so the cache never forgets a code that is still usable. Memory is
//! bounded: when the cache is full of live entries it refuses new codes (fail closed) rather
//! than forgetting one.

use alloc::collections::BTreeMap;

/// The key of an accepted code.
pub type ReplayKey = ([u8; 10], u32);

/// The default capacity of [`ReplayCache`]: at one code a second, more than an hour of codes
/// with a 90 s window.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Accepted codes that are still within their window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayCache {
    capacity: usize,
    /// Key → the first second at which the entry may be dropped.
    entries: BTreeMap<ReplayKey, u64>,
}

/// The cache is full of live entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl ReplayCache {
    /// An empty cache holding at most `capacity` live entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: BTreeMap::new(),
        }
    }

    /// True when `key` was recorded and is still live at `now`.
    pub fn contains(&self, key: &ReplayKey, now: u64) -> bool {
        self.entries.get(key).is_some_and(|until| now < *until)
    }

    /// Records `key` until `until`; drops expired entries first when the cache is full.
    pub fn insert(&mut self, key: ReplayKey, until: u64, now: u64) -> Result<(), Full> {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.purge(now);
            if self.entries.len() >= self.capacity {
                return Err(Full);
            }
        }
        let entry = self.entries.entry(key).or_insert(until);
        *entry = (*entry).max(until);
        Ok(())
    }

    /// Drops the entries that have expired at `now`.
    pub fn purge(&mut self, now: u64) {
        self.entries.retain(|_, until| now < *until);
    }

    /// The number of entries held (live or not yet purged).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}
