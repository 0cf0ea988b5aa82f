//! Shared helpers: the brief's §6 values, APDU builders, a card at each stage of its life.

use std::path::PathBuf;

use ykt_card::Card;
use ykt_crypto::Sm2PrivateKey;
use ykt_nfcqr::testing::danger_test_card;
use ykt_nfcqr::{NFCQR_AID, NfcQrAppletFactory, NfcQrProfile};
use ykt_qr::testing::{self, Example, TestRng};
use ykt_qr::{Version, issuer};

pub fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

pub fn hx(b: &[u8]) -> String {
    hex::encode_upper(b)
}

pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Sends `cmd`; returns (data, SW). Panics on a card error (no power).
pub fn send(card: &mut Card, cmd: &[u8]) -> (Vec<u8>, u16) {
    let r = card.transmit(cmd).expect("card powered");
    let n = r.len();
    (
        r[..n - 2].to_vec(),
        u16::from_be_bytes([r[n - 2], r[n - 1]]),
    )
}

pub fn sw(card: &mut Card, cmd: &[u8]) -> u16 {
    send(card, cmd).1
}

/// Sends `cmd` and follows `61xx` with GET RESPONSE; returns all data and the last SW.
pub fn send_all(card: &mut Card, cmd: &[u8]) -> (Vec<u8>, u16) {
    let (mut data, mut sw) = send(card, cmd);
    while sw >> 8 == 0x61 {
        let (more, next) = send(card, &[0x00, 0xC0, 0x00, 0x00, (sw & 0xFF) as u8]);
        data.extend_from_slice(&more);
        sw = next;
    }
    (data, sw)
}

pub fn select(card: &mut Card) -> u16 {
    let mut c = vec![0x00, 0xA4, 0x04, 0x00, NFCQR_AID.len() as u8];
    c.extend_from_slice(&NFCQR_AID);
    sw(card, &c)
}

/// The §6 user key d_usr (what the test card's GENERATE KEY PAIR makes).
pub fn user_d() -> [u8; 32] {
    testing::USER_D
}

/// The §6 user public key, 04 || X || Y.
pub fn user_public() -> [u8; 65] {
    Sm2PrivateKey::from_bytes(&user_d())
        .unwrap()
        .public_key()
        .to_bytes()
}

/// The brief's version 80 blob: the first 295 bytes of the §6 code.
pub fn blob_80() -> Vec<u8> {
    h(testing::CODE_80_HEX)[..295].to_vec()
}

/// The brief's version 81 blob.
pub fn blob_81() -> Vec<u8> {
    h(testing::CODE_81_HEX)[..295].to_vec()
}

/// The §6 chain built by ykt-qr (same keys as the brief; our signatures).
pub fn example(version: Version) -> Example {
    Example::new(version, &testing::terms(), &mut TestRng::new(1)).unwrap()
}

/// An authorisation by the §6 issuer of `version` under `terms`, for `user` (04||X||Y).
pub fn authorise(version: Version, terms: &issuer::Terms, user: &[u8; 65]) -> Vec<u8> {
    let ex = example(version);
    let key = ykt_crypto::Sm2PublicKey::from_sec1_bytes(user).unwrap();
    issuer::authorise(&ex.issuer, &key, terms, &mut TestRng::new(7))
        .unwrap()
        .encode()
}

/// STORE AUTHORISATION in one command with an extended Lc.
pub fn store_cmd(blob: &[u8]) -> Vec<u8> {
    let mut c = vec![0x80, 0xE2, 0x00, 0x00, 0x00];
    c.extend_from_slice(&(blob.len() as u16).to_be_bytes());
    c.extend_from_slice(blob);
    c
}

/// GENERATE CODE at `time`; P1 01 answers the whole code.
pub fn code_cmd(time: u32, whole: bool) -> Vec<u8> {
    let mut c = vec![0x80, 0xE4, u8::from(whole), 0x00, 0x04];
    c.extend_from_slice(&time.to_be_bytes());
    c.push(0x00);
    c
}

pub const GENERATE_KEY: [u8; 5] = [0x80, 0xE0, 0x00, 0x00, 0x00];
pub const GET_DATA: [u8; 5] = [0x80, 0xCA, 0x00, 0x00, 0x00];

/// A fresh, selected test card.
pub fn fresh(profile: NfcQrProfile) -> Card {
    let mut card = danger_test_card(profile).unwrap();
    assert_eq!(select(&mut card), 0x9000);
    card
}

/// A selected test card with the §6 user key.
pub fn with_key(profile: NfcQrProfile) -> Card {
    let mut card = fresh(profile);
    assert_eq!(sw(&mut card, &GENERATE_KEY), 0x9000);
    card
}

/// A selected test card with the §6 user key and `blob` stored.
pub fn authorised(profile: NfcQrProfile, blob: &[u8]) -> Card {
    let mut card = with_key(profile);
    assert_eq!(sw(&mut card, &store_cmd(blob)), 0x9000);
    card
}

/// A copy of `card` through its state file (unpowered; power on and select before use).
pub fn copy(card: &Card) -> Card {
    Card::load_state(
        &card.save_state(),
        ykt_card::Atr::default_t1(),
        Box::new(ykt_card::SeededRandom::new(99)),
        &NfcQrAppletFactory,
    )
    .unwrap()
}
