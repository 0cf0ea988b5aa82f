//! Integration tests of the `ykt` command: the state file and exit codes (always), and the PC/SC
//! end-to-end exchange with `ykt se serve` behind pcscd (only with `YKT_PCSC_IT=1`, as set by
//! `scripts/pcsc-it`, because it needs pcscd, vpcd and a running server).
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod child;
mod cli;
mod conform;
mod conform_tsm;
mod gp;
mod pcsc;
mod qr;
mod terminal;
mod tidy;
mod tls;
mod tsm;
mod tsm_platform;
mod tsm_production;
mod tsm_registry;
mod wallet_api;
mod wallet_security;

/// `(command, expected response)` pairs of a `tests/data/*.apdu` transcript.
pub fn transcript(text: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let hex_of = |line: &str| {
        let clean: String = line.split_whitespace().collect();
        hex::decode(&clean).unwrap_or_else(|e| panic!("bad hex {line:?}: {e}"))
    };
    let mut pairs = Vec::new();
    let mut pending = None;
    for line in text.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix(">>") {
            assert!(pending.is_none(), "two commands in a row: {line}");
            pending = Some(hex_of(c));
        } else if let Some(r) = line.strip_prefix("<<") {
            let command = pending.take().expect("response without a command");
            pairs.push((command, hex_of(r)));
        }
    }
    assert!(pending.is_none(), "command without a response");
    pairs
}
