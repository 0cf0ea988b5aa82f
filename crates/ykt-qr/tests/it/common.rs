//! Fixtures shared by the tests: the §6 chain, its verifier and helpers.

use ykt_qr::testing::{Example, TestRng, terms};
use ykt_qr::{QrCode, Verifier, VerifierConfig, Version};

pub fn example(version: Version) -> Example {
    Example::new(version, &terms(), &mut TestRng::new(1)).unwrap()
}

pub fn verifier(example: &Example) -> Verifier {
    example
        .verifier(VerifierConfig::default(), &mut TestRng::new(2))
        .unwrap()
}

pub fn verifier_with(example: &Example, config: VerifierConfig) -> Verifier {
    example.verifier(config, &mut TestRng::new(2)).unwrap()
}

pub fn code(example: &Example, now: u32) -> QrCode {
    example
        .code(now, &mut TestRng::new(u64::from(now)))
        .unwrap()
}

pub fn unhex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}
