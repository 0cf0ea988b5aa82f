//! A test card for the applet, built on the brief's worked example (qr-code.md §6). **Test keys
//! only**: the §6 private keys are published.
//!
//! [`danger_test_card`] scripts the card's first 32 random bytes to be d_usr of §6, so its
//! GENERATE KEY PAIR makes the §6 user key (public key `037f4a4b…`) and the §6 blob (the first
//! 295 bytes of the brief's version `80` code) is an authorisation of it. Later random bytes
//! come from `SeededRandom::new(`[`TEST_CARD_SEED`]`)`.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use ykt_card::danger::ScriptedRandom;
use ykt_card::{Atr, Card};
use ykt_qr::{RootKeyRecord, Version};

use crate::NFCQR_AID;
use crate::factory::{IssuedNfcQr, NfcQrProfile, SetupError};

/// Seed of the test card's random stream after the scripted key.
pub const TEST_CARD_SEED: u64 = 0x4E46_4351;

/// The root key record of §6 (index `01`), decoded.
pub fn test_root_record() -> Option<RootKeyRecord> {
    let bytes = unhex(ykt_qr::testing::ROOT_RECORD_HEX)?;
    RootKeyRecord::decode(&bytes).ok()
}

/// The instance of the test card: [`NFCQR_AID`], `profile`, the §6 root key for versions `80`
/// and `81`.
pub fn test_instance(profile: NfcQrProfile) -> Result<IssuedNfcQr, SetupError> {
    let roots: Vec<(Version, RootKeyRecord)> = match test_root_record() {
        Some(r) => vec![(Version::INTEROPERABLE, r.clone()), (Version::LOCAL, r)],
        None => Vec::new(),
    };
    IssuedNfcQr::new(&NFCQR_AID, profile, &roots)
}

/// A powered card (ATR `Atr::default_t1`) with [`test_instance`] and the scripted key.
pub fn danger_test_card(profile: NfcQrProfile) -> Result<Card, SetupError> {
    let entropy = ScriptedRandom::new([ykt_qr::testing::USER_D.to_vec()], TEST_CARD_SEED);
    let mut card = Card::new(Atr::default_t1(), Box::new(entropy));
    test_instance(profile)?.install(&mut card)?;
    card.power_on();
    Ok(card)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|c| c.is_ascii_hexdigit()).collect();
    digits
        .chunks(2)
        .map(|p| {
            let hi = char::from(*p.first()?).to_digit(16)?;
            let lo = char::from(*p.get(1)?).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}
