//! Injected randomness (the card core never reads a clock or an OS source itself).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// A source of random bytes for challenges and the like.
///
/// Implementations here are deterministic and **not cryptographic**: [`SeededRandom`] and
/// [`danger::ScriptedRandom`]. A deployment injects an OS-backed source.
pub trait Entropy {
    /// Fills `buf` completely.
    fn fill(&mut self, buf: &mut [u8]);
}

/// Deterministic, **non-cryptographic** pseudo-random bytes (SplitMix64) for tests and
/// reproducible simulations: the same seed gives the same byte stream.
#[derive(Clone, Debug)]
pub struct SeededRandom {
    state: u64,
}

impl SeededRandom {
    /// A stream determined entirely by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 bits (SplitMix64, Steele, Lea and Flood 2014).
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Entropy for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_be_bytes();
            for (dst, src) in chunk.iter_mut().zip(word) {
                *dst = src;
            }
        }
    }
}

/// Entropy sources that make a card predictable on purpose: for test cards and published
/// transcripts only.
pub mod danger {
    use super::*;

    /// Yields the scripted bytes first, in order and regardless of how `fill` calls split them,
    /// then continues with a [`SeededRandom`] stream. Lets a test fix a card challenge.
    #[derive(Clone, Debug)]
    pub struct ScriptedRandom {
        script: VecDeque<u8>,
        rest: SeededRandom,
    }

    impl ScriptedRandom {
        /// Scripted chunks (concatenated), then the stream of `SeededRandom::new(seed)`.
        pub fn new(chunks: impl IntoIterator<Item = Vec<u8>>, seed: u64) -> Self {
            Self {
                script: chunks.into_iter().flatten().collect(),
                rest: SeededRandom::new(seed),
            }
        }

        /// Appends bytes to the script.
        pub fn push(&mut self, bytes: &[u8]) {
            self.script.extend(bytes.iter().copied());
        }

        /// Scripted bytes not yet consumed.
        pub fn remaining_script(&self) -> usize {
            self.script.len()
        }
    }

    impl Entropy for ScriptedRandom {
        fn fill(&mut self, buf: &mut [u8]) {
            let mut used = 0;
            for b in buf.iter_mut() {
                let Some(s) = self.script.pop_front() else {
                    break;
                };
                *b = s;
                used += 1;
            }
            if let Some(tail) = buf.get_mut(used..) {
                self.rest.fill(tail);
            }
        }
    }
}
