//! The operating system's randomness as card entropy (for cards loaded from a state file).

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
