//! Integration tests of `ykt-qr-symbol`: every `ykt-qr` test vector through a PNG and back,
//! distorted camera frames, the error of each kind of bad input, text rendering, and random
//! payloads of every length a ride code may have.
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod distort;
mod errors;
mod props;
mod text;
mod vectors;

/// The codes of `ykt-qr`'s vector file (`crates/ykt-qr/tests/data/qr_vectors.txt`), by case.
pub fn vector_codes() -> Vec<(String, Vec<u8>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ykt-qr/tests/data/qr_vectors.txt"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut case = String::new();
    for line in text.lines() {
        if let Some((key, value)) = line.split_once(" = ") {
            match key.trim() {
                "case" => case = value.trim().to_string(),
                "code" => out.push((case.clone(), hex::decode(value.trim()).unwrap())),
                _ => {}
            }
        }
    }
    assert!(out.len() >= 40, "only {} codes in {path}", out.len());
    out
}

/// A deterministic generator for noise (SplitMix64).
pub struct Noise(pub u64);

impl Noise {
    /// The next 64 bits.
    pub fn draw(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
