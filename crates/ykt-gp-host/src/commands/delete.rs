//! DELETE (`80 E4`, GP §11.2; tsm-gp.md §3.3): an application, a load file (with its
//! instances), or keys.
//!
//! ```text
//! 80 E4 00 P2 Lc 4F L AID [9E L token] 00      P2 = 00 object · 80 object and related objects
//! 80 E4 00 00 Lc [D0 01 key id] [D2 01 KVN] 00
//! ```

use alloc::vec::Vec;

use ykt_apdu::CommandApdu;

use super::{command, push_lv};
use crate::error::BuildError;
use crate::types::Aid;

/// P2 b8: delete the object and its related objects (a load file and its instances, an SD and
/// its applications).
pub const P2_RELATED: u8 = 0x80;

/// DELETE of the object `aid`, with its related objects when `related`, and a delete token
/// (`9E`, delegated management) when given.
pub fn delete(aid: &Aid, related: bool, token: Option<&[u8]>) -> Result<CommandApdu, BuildError> {
    let mut data = alloc::vec![0x4F];
    push_lv(&mut data, aid.as_bytes())?;
    if let Some(token) = token {
        data.push(0x9E);
        push_lv(&mut data, token)?;
    }
    let p2 = if related { P2_RELATED } else { 0x00 };
    command(0xE4, 0x00, p2, data, true)
}

/// DELETE of keys: the key identifier `D0`, the key version `D2`, or both (GP §11.2.2.3.2).
pub fn delete_key(key_id: Option<u8>, version: Option<u8>) -> Result<CommandApdu, BuildError> {
    let mut data = Vec::new();
    if let Some(id) = key_id {
        data.extend_from_slice(&[0xD0, 0x01, id]);
    }
    if let Some(v) = version {
        data.extend_from_slice(&[0xD2, 0x01, v]);
    }
    if data.is_empty() {
        return Err(BuildError::NoKeySelected);
    }
    command(0xE4, 0x00, 0x00, data, true)
}
