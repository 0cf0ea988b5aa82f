//! The operating system's CSPRNG as the generator signatures take.

use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};

/// `getrandom` as an infallible RNG. [`OsRandom::new`] checks the source once, so a machine
/// without one fails at start, before any request.
pub(crate) struct OsRandom(());

impl OsRandom {
    pub(crate) fn new() -> Result<Self, getrandom::Error> {
        let mut probe = [0u8; 8];
        getrandom::fill(&mut probe)?;
        Ok(Self(()))
    }
}

impl TryRng for OsRandom {
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
            // The source worked in `new`; a signature nonce must not come from anything
            // weaker, and this interface cannot report an error, so the process ends here.
            tracing::error!(%error, "OS random source failed");
            std::process::abort();
        }
        Ok(())
    }
}

impl TryCryptoRng for OsRandom {}
