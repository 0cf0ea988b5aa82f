//! The test card of e-purse.md §8: its master keys, card data and a whole simulated [`Card`] whose
//! first two card randoms are those of §8.1 and §8.2, so the worked examples reproduce byte for byte.
//!
//! Not for production: the master keys are published and [`danger_test_card`] has a scripted,
//! non-cryptographic random source.
//!
//! | Item | Value |
//! |---|---|
//! | ASN | `31041000000012345678` (DIV `1000000012345678`) |
//! | Master DLK / DPK / DTK | §8: `2233445566778899AABBCCDDEEFF0011` / `11223344556677888877665544332211` / `00112233445566778899AABBCCDDEEFF` |
//! | Master DAMK / DPUK / DRPK | ours (§8 gives none): [`TEST_MASTER_DAMK`], [`TEST_MASTER_DPUK`], [`TEST_MASTER_DRPK`] |
//! | Key index / version | `01` / `01` for every key |
//! | Balance, counters | 0 |
//! | PIN | `123456` |
//! | Card randoms | `1A2B3C4D`, `5E6F7A8B`, then `SeededRandom::new(`[`TEST_CARD_SEED`]`)` |
//!
//! The test PSAM ([`danger_test_psam_3des`], [`danger_test_psam_sm4`]) holds the same master DPK and
//! DAMK (index 01, version 01), terminal id [`TEST_TERMINAL_ID`] and first TTSN [`TEST_FIRST_TTSN`],
//! so the §8.2 purchase reproduces through its `80 70` / `80 72` byte for byte.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use ykt_card::danger::ScriptedRandom;
use ykt_card::{Atr, Card, Entropy, SeededRandom};
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};

use crate::factory::{Asn, CardData, Ef15, IssueError, IssuedPurse, IssuerFactory, MasterKey};
use crate::files::{EF16_LEN, EF17_LEN};
use crate::keys::KeyUsage;
use crate::profile::PurseProfile;
use crate::psam::{IssuedPsam, PSAM_AID, PsamData};
use crate::{EP_AID, SECOND_TICKET_AID};

/// Master load key of e-purse.md §8.
pub const TEST_MASTER_DLK: [u8; 16] =
    *b"\x22\x33\x44\x55\x66\x77\x88\x99\xAA\xBB\xCC\xDD\xEE\xFF\x00\x11";
/// Master purchase key of e-purse.md §8 (also the DPK of the §5.4 published vector).
pub const TEST_MASTER_DPK: [u8; 16] =
    *b"\x11\x22\x33\x44\x55\x66\x77\x88\x88\x77\x66\x55\x44\x33\x22\x11";
/// Master TAC key of e-purse.md §8.
pub const TEST_MASTER_DTK: [u8; 16] =
    *b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xAA\xBB\xCC\xDD\xEE\xFF";
/// Master application maintenance key (ours; §8 has none).
pub const TEST_MASTER_DAMK: [u8; 16] =
    *b"\x0F\x1E\x2D\x3C\x4B\x5A\x69\x78\x87\x96\xA5\xB4\xC3\xD2\xE1\xF0";
/// Master PIN unblock key (ours; §8 has none).
pub const TEST_MASTER_DPUK: [u8; 16] =
    *b"\x10\x32\x54\x76\x98\xBA\xDC\xFE\x01\x23\x45\x67\x89\xAB\xCD\xEF";
/// Master PIN reload key (ours; §8 has none).
pub const TEST_MASTER_DRPK: [u8; 16] =
    *b"\xFE\xDC\xBA\x98\x76\x54\x32\x10\x01\x23\x45\x67\x89\xAB\xCD\xEF";
/// ASN of the test card (e-purse.md §8).
pub const TEST_ASN: Asn = Asn(*b"\x31\x04\x10\x00\x00\x00\x12\x34\x56\x78");
/// ASN of the test card's second ticket type (ours: the e-purse ASN + 1).
pub const TEST_SECOND_TICKET_ASN: Asn = Asn(*b"\x31\x04\x10\x00\x00\x00\x12\x34\x56\x79");
/// PIN of the test card (e-purse.md §8 / §4.1 example).
pub const TEST_PIN: [u8; 3] = [0x12, 0x34, 0x56];
/// Key index and version of every test key (e-purse.md §8).
pub const TEST_KEY_INDEX: u8 = 0x01;
/// Seed of the random stream after the two scripted randoms.
pub const TEST_CARD_SEED: u64 = 0x594B_5450_5552_5345;
/// The card randoms of e-purse.md §8.1 (load) and §8.2 (purchase), in order.
pub const TEST_CARD_RANDOMS: [[u8; 4]; 2] = [[0x1A, 0x2B, 0x3C, 0x4D], [0x5E, 0x6F, 0x7A, 0x8B]];

/// The test issuer's master keys, all index 01 version 01, all under `algorithm`.
pub fn test_master_keys(algorithm: PurseAlgorithm) -> Vec<MasterKey> {
    [
        (KeyUsage::Load, TEST_MASTER_DLK),
        (KeyUsage::Purchase, TEST_MASTER_DPK),
        (KeyUsage::Tac, TEST_MASTER_DTK),
        (KeyUsage::Maintenance, TEST_MASTER_DAMK),
        (KeyUsage::PinUnblock, TEST_MASTER_DPUK),
        (KeyUsage::PinReload, TEST_MASTER_DRPK),
    ]
    .into_iter()
    .map(|(usage, key)| MasterKey {
        usage,
        index: TEST_KEY_INDEX,
        version: TEST_KEY_INDEX,
        algorithm,
        key: PurseKey::from_bytes(key),
    })
    .collect()
}

/// The test issuer for `algorithm`.
pub fn test_issuer(algorithm: PurseAlgorithm) -> Result<IssuerFactory, IssueError> {
    IssuerFactory::new(test_master_keys(algorithm))
}

/// The card data of the test card with `asn`: EF15 as in the FCI capture of e-purse.md §1 (issuer
/// `0101 1000 FFFF FFFF`, type `02`, version `01`) valid 2024-01-01..2034-12-31, zero cardholder data,
/// EF17 "China, T-Union interoperable", PIN `123456`, balance and counters 0.
pub fn test_card_data(asn: Asn) -> CardData {
    let mut ef17 = [0u8; EF17_LEN];
    // Country 156 (China), province 0000, city 1000, interoperability 0001 (T-Union), category 00.
    ef17[..11].copy_from_slice(&[
        0x00, 0x00, 0x01, 0x56, 0x00, 0x00, 0x10, 0x00, 0x00, 0x01, 0x00,
    ]);
    CardData {
        ef15: Ef15 {
            issuer_id: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
            application_type: 0x02,
            application_version: 0x01,
            asn,
            start_date: [0x20, 0x24, 0x01, 0x01],
            expiry_date: [0x20, 0x34, 0x12, 0x31],
            fci_data: [0x00, 0x00],
        },
        ef16: [0u8; EF16_LEN],
        ef17,
        pin: TEST_PIN.to_vec(),
        balance: 0,
        online_counter: 0,
        offline_counter: 0,
    }
}

/// The e-purse of e-purse.md §8 with 3DES keys (§8.1, §8.2).
pub fn test_card_3des() -> Result<IssuedPurse, IssueError> {
    test_issuer(PurseAlgorithm::Tdes)?.issue(
        &EP_AID,
        PurseProfile::EPURSE,
        &test_card_data(TEST_ASN),
    )
}

/// The e-purse of e-purse.md §8 with SM4 keys under [`Sm4Rules::BRIEF`] (§8.3).
pub fn test_card_sm4() -> Result<IssuedPurse, IssueError> {
    test_issuer(PurseAlgorithm::Sm4(Sm4Rules::BRIEF))?.issue(
        &EP_AID,
        PurseProfile::EPURSE,
        &test_card_data(TEST_ASN),
    )
}

/// The test card's second ticket type: same master keys (3DES), ASN [`TEST_SECOND_TICKET_ASN`],
/// profile [`PurseProfile::SECOND_TICKET`].
pub fn test_second_ticket_3des() -> Result<IssuedPurse, IssueError> {
    test_issuer(PurseAlgorithm::Tdes)?.issue(
        &SECOND_TICKET_AID,
        PurseProfile::SECOND_TICKET,
        &test_card_data(TEST_SECOND_TICKET_ASN),
    )
}

/// The scripted entropy of the test card: `1A2B3C4D`, `5E6F7A8B`, then the seeded stream.
pub fn danger_test_entropy() -> ScriptedRandom {
    ScriptedRandom::new(TEST_CARD_RANDOMS.iter().map(|r| r.to_vec()), TEST_CARD_SEED)
}

/// A powered test card (ATR [`Atr::default_t1`], [`danger_test_entropy`]) with `purses` installed
/// in order. The first INITIALIZE draws `1A2B3C4D` and the second `5E6F7A8B`, as in e-purse.md §8.
pub fn danger_test_card(purses: Vec<IssuedPurse>) -> Result<Card, IssueError> {
    danger_card_with_entropy(purses, Box::new(danger_test_entropy()))
}

/// A powered card (ATR [`Atr::default_t1`]) with `purses` installed in order and the given
/// entropy (e.g. a [`ScriptedRandom`] fixing the card random of a published vector).
pub fn danger_card_with_entropy(
    purses: Vec<IssuedPurse>,
    entropy: Box<dyn Entropy + Send>,
) -> Result<Card, IssueError> {
    let mut card = Card::new(Atr::default_t1(), entropy);
    for p in purses {
        p.install(&mut card)?;
    }
    card.power_on();
    Ok(card)
}

/// [`danger_test_card`] with the 3DES e-purse of §8.
pub fn danger_test_card_3des() -> Result<Card, IssueError> {
    danger_test_card(vec![test_card_3des()?])
}

/// [`danger_test_card`] with the SM4 e-purse of §8.3.
pub fn danger_test_card_sm4() -> Result<Card, IssueError> {
    danger_test_card(vec![test_card_sm4()?])
}

/// [`danger_test_card`] with the 3DES e-purse and, installed after it, the second ticket type.
pub fn danger_test_card_with_second_ticket() -> Result<Card, IssueError> {
    danger_test_card(vec![test_card_3des()?, test_second_ticket_3des()?])
}

/// Terminal id of the test PSAM: the terminal of e-purse.md §8.
pub const TEST_TERMINAL_ID: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
/// The TTSN of the test PSAM's first `80 70` (e-purse.md §8.2: `00000001`).
pub const TEST_FIRST_TTSN: u32 = 1;
/// Seed of the test PSAM card's entropy (the PSAM draws no randoms; the runtime needs a source).
pub const TEST_PSAM_SEED: u64 = 0x5053_414D;

/// The test PSAM's master keys under `algorithm`: the §8 DPK and our DAMK, index 01, version 01.
pub fn test_psam_master_keys(algorithm: PurseAlgorithm) -> Vec<MasterKey> {
    test_master_keys(algorithm)
        .into_iter()
        .filter(|m| matches!(m.usage, KeyUsage::Purchase | KeyUsage::Maintenance))
        .collect()
}

/// The test PSAM under `algorithm` at [`PSAM_AID`]: [`TEST_TERMINAL_ID`], purchase key index 01
/// in EF17, first TTSN [`TEST_FIRST_TTSN`].
pub fn test_psam(algorithm: PurseAlgorithm) -> Result<IssuedPsam, IssueError> {
    IssuedPsam::new(
        &PSAM_AID,
        PsamData::new(TEST_TERMINAL_ID, TEST_KEY_INDEX, TEST_FIRST_TTSN),
        &test_psam_master_keys(algorithm),
    )
}

/// A powered PSAM card (ATR [`Atr::default_t1`]) holding `psam`.
pub fn danger_psam_card(psam: IssuedPsam) -> Result<Card, IssueError> {
    let mut card = Card::new(
        Atr::default_t1(),
        Box::new(SeededRandom::new(TEST_PSAM_SEED)),
    );
    psam.install(&mut card)?;
    card.power_on();
    Ok(card)
}

/// A powered card with the 3DES test PSAM (published master keys: tests only).
pub fn danger_test_psam_3des() -> Result<Card, IssueError> {
    danger_psam_card(test_psam(PurseAlgorithm::Tdes)?)
}

/// A powered card with the SM4 test PSAM under [`Sm4Rules::BRIEF`] (published master keys: tests
/// only).
pub fn danger_test_psam_sm4() -> Result<Card, IssueError> {
    danger_psam_card(test_psam(PurseAlgorithm::Sm4(Sm4Rules::BRIEF))?)
}
