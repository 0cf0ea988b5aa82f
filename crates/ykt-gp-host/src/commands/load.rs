//! LOAD (`80 E8`, GP §11.6; tsm-gp.md §3.2): the load file in numbered blocks.
//!
//! ```text
//! payload = [E2 L { 4F L SD-AID · C3 L signature }]…  C4 <BER length> <load file data block>
//! 80 E8 P1 P2 Lc block 00     P1 = 00 more blocks, 80 last block · P2 = block number 00..FF
//! ```

use alloc::vec::Vec;

use sha2::{Digest, Sha256};
use ykt_apdu::CommandApdu;

use super::{command, tlv};
use crate::error::BuildError;
use crate::types::Aid;

/// P1 b8: the last block.
pub const P1_LAST_BLOCK: u8 = 0x80;

/// A DAP block (GP §11.6.2.3): a security domain's signature over the load file data block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DapBlock {
    /// The security domain whose DAP key verifies the signature.
    pub security_domain: Aid,
    /// The signature.
    pub signature: Vec<u8>,
}

/// The load file data block hash for INSTALL [for load] and DAP: SHA-256 over the load file
/// data block (the bytes inside `C4`; GP v2.3 §C.2, tsm-gp.md §3.1).
pub fn load_file_data_block_hash(load_file_data_block: &[u8]) -> [u8; 32] {
    Sha256::digest(load_file_data_block).into()
}

/// The concatenated LOAD payload: DAP blocks, then `C4 L load-file-data-block`.
pub fn load_payload(load_file_data_block: &[u8], dap: &[DapBlock]) -> Vec<u8> {
    let mut out = Vec::with_capacity(load_file_data_block.len() + 8);
    for d in dap {
        let mut body = tlv(&[0x4F], d.security_domain.as_bytes());
        body.extend(tlv(&[0xC3], &d.signature));
        out.extend(tlv(&[0xE2], &body));
    }
    out.extend(tlv(&[0xC4], load_file_data_block));
    out
}

/// The LOAD commands carrying `payload` in blocks of at most `block_size` bytes (the session
/// picks the size that still fits one short command after secure messaging).
pub fn load_commands(payload: &[u8], block_size: usize) -> Result<Vec<CommandApdu>, BuildError> {
    if block_size == 0 {
        return Err(BuildError::BlockSize);
    }
    let blocks: Vec<&[u8]> = if payload.is_empty() {
        alloc::vec![&[][..]]
    } else {
        payload.chunks(block_size).collect()
    };
    if blocks.len() > 256 {
        return Err(BuildError::TooManyBlocks(blocks.len()));
    }
    let last = blocks.len() - 1;
    blocks
        .iter()
        .enumerate()
        .map(|(n, block)| {
            let p1 = if n == last { P1_LAST_BLOCK } else { 0x00 };
            command(0xE8, p1, n as u8, block.to_vec(), true)
        })
        .collect()
}
