//! The hex transcripts of tests/data (provenance in its README.md).

use ykt_card::testing::check_transcript;
use ykt_nfcqr::NfcQrProfile;
use ykt_nfcqr::testing::danger_test_card;

use crate::support::data_path;

#[test]
fn s6_flow() {
    let mut card = danger_test_card(NfcQrProfile::default()).unwrap();
    assert!(check_transcript(&mut card, data_path("nfcqr_s6_flow.apdu")) > 20);
}

#[test]
fn errors() {
    let mut card = danger_test_card(NfcQrProfile::default()).unwrap();
    assert!(check_transcript(&mut card, data_path("nfcqr_errors.apdu")) > 30);
}
