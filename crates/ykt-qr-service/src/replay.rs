//! The nonces seen within the timestamp window, in memory.

use std::collections::HashMap;

/// Why a nonce was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Seen before and still live.
    #[error("the nonce was used before")]
    Replayed,
    /// Every slot holds a live nonce: the cache refuses rather than forget one.
    #[error("the replay cache is full")]
    Full,
}

/// Nonces with the time after which each can no longer pass the timestamp check.
#[derive(Debug, Clone)]
pub struct NonceCache {
    entries: HashMap<Vec<u8>, u64>,
    capacity: usize,
}

impl NonceCache {
    /// An empty cache of at most `capacity` live nonces.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// Takes `nonce`, live until `until` (Unix seconds), at `now`.
    pub fn insert(&mut self, nonce: &[u8], until: u64, now: u64) -> Result<(), NonceError> {
        if let Some(&t) = self.entries.get(nonce)
            && t >= now
        {
            return Err(NonceError::Replayed);
        }
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, t| *t >= now);
            if self.entries.len() >= self.capacity {
                return Err(NonceError::Full);
            }
        }
        self.entries.insert(nonce.to_vec(), until);
        Ok(())
    }

    /// The number of nonces held (live or not yet purged).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_are_refused_until_expiry_and_a_full_cache_refuses() {
        let mut c = NonceCache::new(2);
        assert_eq!(c.insert(b"a", 100, 10), Ok(()));
        assert_eq!(c.insert(b"a", 100, 50), Err(NonceError::Replayed));
        assert_eq!(c.insert(b"b", 100, 50), Ok(()));
        assert_eq!(c.insert(b"c", 100, 50), Err(NonceError::Full));
        // After expiry the slots are purged and reused.
        assert_eq!(c.insert(b"c", 300, 101), Ok(()));
        assert_eq!(c.insert(b"a", 300, 101), Ok(()));
        assert_eq!(c.len(), 2);
    }
}
