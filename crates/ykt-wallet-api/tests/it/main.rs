//! The local API's tests: tokens, grants, limits over the wire, and the server over a real Unix
//! socket and loopback TCP.
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod grant;
mod http;
mod logs;
mod server;
mod token;

use ykt_wallet_api::Secret;

/// The secret of the vectors: bytes 00..1f.
pub fn test_secret() -> Secret {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = i as u8;
    }
    Secret::from_bytes(bytes)
}

/// One `key = value` block per vector, blank lines between blocks, `#` comments.
pub fn read_vectors(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut block = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
            continue;
        }
        let (key, value) = line.split_once('=').expect("key = value");
        block.push((key.trim().to_string(), value.trim().to_string()));
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

/// The value of `name` in a vector block.
pub fn field<'a>(block: &'a [(String, String)], name: &str) -> &'a str {
    &block.iter().find(|(k, _)| k == name).expect(name).1
}
