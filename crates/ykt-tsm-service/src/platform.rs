//! SEI-TSM and SP-TSM as two platforms (tsm-gp.md §2, §6, §7): the inter-platform API.
//!
//! ```text
//!  SP-TSM (Engine, Keys { sei: RemoteSeiVault, sp }) ──POST /v1/{msg_type}, envelope signed by the SP──▶
//!       SEI-TSM (router(SeiPlatform, …): pipeline ─ pinned SP key ─ SEI-role keys only ─ vault ─ audit)
//!       ◀── envelope signed by the SEI: names, wrapped blobs, cryptograms, tokens, verdicts ──┘
//! ```
//!
//! Each `KeyVault` operation a flow asks of the SEI role is one message of
//! [`ykt_tsm::api::PLATFORM_MESSAGES`]. Both roles can also run in one process: then the
//! engine's `Keys::sei` is the SEI's vault itself and no message is sent.
//!
//! * [`SeiPlatform`]: the SEI's [`crate::Backend`] (serves the inter-platform API only).
//! * [`RemoteSeiVault`]: the SP's view of the SEI's vault, over a [`SeiLink`];
//!   [`HttpSeiLink`] is the link over HTTP (`ureq`, blocking: the engine runs a flow's move
//!   in `block_in_place`, so a slow SEI does not stall the async runtime).
//! * Every choice the brief leaves open is in [`proposals`].

mod http_link;
pub mod proposals;
mod remote;
mod rules;
mod sei;
mod wire;

pub use self::http_link::HttpSeiLink;
pub use self::remote::{LinkError, RemoteSeiVault, SeiLink, take_link_failure};
pub use self::sei::{SeiConfig, SeiPlatform};

/// The OS random source as a `rand_core` generator (SM2 encryption, ephemeral keys); aborts
/// if the OS has no randomness, as [`crate::engine::OsEntropy`] does.
pub(crate) struct OsRng;

impl rand_core::TryRng for OsRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        ykt_tsm::Entropy::fill(&mut crate::engine::OsEntropy, dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for OsRng {}

/// Runs blocking work (a vault call, an HTTP call to another platform) from async code: in
/// `block_in_place` on a multi-thread runtime, so the other tasks move to other workers;
/// directly elsewhere (a current-thread runtime, or no runtime).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
