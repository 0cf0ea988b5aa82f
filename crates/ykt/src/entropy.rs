//! The operating system's randomness as card entropy (for cards loaded from a state file).

use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use ykt_card::Entropy;

/// Card entropy from `getrandom` (the OS CSPRNG).
#[derive(Debug)]
pub struct OsEntropy(());

impl OsEntropy {
    /// Checks once that the OS source works, so that a failure shows up at start-up.
    pub fn new() -> anyhow::Result<Self> {
        let mut probe = [0u8; 8];
        getrandom::fill(&mut probe).map_err(|e| anyhow::anyhow!("OS random source: {e}"))?;
        Ok(OsEntropy(()))
    }
}

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        if let Err(error) = getrandom::fill(buf) {
            // The source worked at start-up; a card must not go on with predictable challenges,
            // and `Entropy::fill` cannot report an error, so the process ends here.
            tracing::error!(%error, "OS random source failed");
            std::process::abort();
        }
    }
}

/// The operating system's CSPRNG (`getrandom`) as the generator key generation and signatures
/// take.
pub struct SystemRandom(());

impl SystemRandom {
    /// Checks once that the OS source works, so a failure shows up before any key is made.
    pub fn new() -> anyhow::Result<Self> {
        let mut probe = [0u8; 8];
        getrandom::fill(&mut probe).map_err(|e| anyhow::anyhow!("OS random source: {e}"))?;
        Ok(Self(()))
    }
}

impl TryRng for SystemRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        if let Err(error) = getrandom::fill(dst) {
            // The source worked in `new`; keys and nonces must not come from anything weaker,
            // and this interface cannot report an error, so the process ends here.
            tracing::error!(%error, "OS random source failed");
            std::process::abort();
        }
        Ok(())
    }
}

impl TryCryptoRng for SystemRandom {}
