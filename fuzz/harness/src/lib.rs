//! The bodies of the fuzz targets in `fuzz/fuzz_targets/`: each module's `run` takes the
//! fuzzer's bytes and panics when an invariant of the code under test breaks (a panic of that
//! code is caught the same way). Kept apart from `libfuzzer-sys` so that `cargo test` in this
//! workspace replays the seeds and regression inputs on a stable toolchain.
//!
//! Input framing shared by the card targets ([`commands`]): a length byte and that many bytes,
//! repeated; the length byte `FF` is followed by a big-endian u16 length (for extended APDUs).

pub mod card_apdu_isd;
pub mod card_apdu_session;
pub mod gp;
pub mod gp_host_parsers;
pub mod nfcqr_apdu;
pub mod purse_store_data;
pub mod qr_code_decode;
pub mod qr_record_store;
pub mod qr_verify;

/// Splits `data` into the commands of the framing in the crate docs; a short last command is
/// taken as far as the bytes go.
pub fn commands(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&l, rest)) = data.split_first() {
        let (len, rest) = if l == 0xFF && rest.len() >= 2 {
            (
                usize::from(u16::from_be_bytes([rest[0], rest[1]])),
                &rest[2..],
            )
        } else {
            (usize::from(l), rest)
        };
        let (cmd, tail) = rest.split_at(len.min(rest.len()));
        out.push(cmd);
        data = tail;
    }
    out
}

/// The inverse of [`commands`] (for seeds).
pub fn frame(cmds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in cmds {
        if c.len() < 0xFF {
            out.push(c.len() as u8);
        } else {
            out.push(0xFF);
            out.extend_from_slice(&(c.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(c);
    }
    out
}

/// The status word that ends a card's response; panics unless the response has one (at least
/// two bytes, SW1 `6x` or `9x`, ISO/IEC 7816-4 §5.1.3).
pub fn status_word(response: &[u8], command: &[u8]) -> u16 {
    assert!(
        response.len() >= 2,
        "response {} to {} has no status word",
        hex(response),
        hex(command)
    );
    let sw1 = response[response.len() - 2];
    let sw2 = response[response.len() - 1];
    assert!(
        (0x61..=0x6F).contains(&sw1) || (0x90..=0x9F).contains(&sw1),
        "response {} to {} ends in no valid status word",
        hex(response),
        hex(command)
    );
    u16::from_be_bytes([sw1, sw2])
}

/// Upper-case hex, for messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Parses hex, ignoring whitespace; `None` on a bad digit or an odd count.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}
