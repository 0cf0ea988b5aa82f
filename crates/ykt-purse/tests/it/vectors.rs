//! The worked examples of e-purse.md §8 and the published §5.4 vector, byte for byte.

use ykt_card::danger::ScriptedRandom;
use ykt_card::testing::check_transcript;
use ykt_crypto::purse::{PurseAlgorithm, PurseKey};
use ykt_purse::testing::{
    TEST_ASN, danger_card_with_entropy, danger_test_card_3des, danger_test_card_sm4, test_card_data,
};
use ykt_purse::{EP_AID, IssuedPurse, KeyEntry, KeyUsage, PurseProfile};

use crate::support::data_path;

#[test]
fn s8_1_load_3des() {
    let mut card = danger_test_card_3des().unwrap();
    check_transcript(&mut card, data_path("ep_s8_1_load_3des.apdu"));
}

#[test]
fn s8_2_purchase_3des() {
    let mut card = danger_test_card_3des().unwrap();
    check_transcript(&mut card, data_path("ep_s8_2_purchase_3des.apdu"));
}

#[test]
fn s8_2_composite_3des() {
    let mut card = danger_test_card_3des().unwrap();
    check_transcript(&mut card, data_path("ep_s8_2_composite_3des.apdu"));
}

#[test]
fn s8_3_sm4() {
    let mut card = danger_test_card_sm4().unwrap();
    check_transcript(&mut card, data_path("ep_s8_3_sm4.apdu"));
}

#[test]
fn s8_3_sm4_composite() {
    let mut card = danger_test_card_sm4().unwrap();
    check_transcript(&mut card, data_path("ep_s8_3_sm4_composite.apdu"));
}

#[test]
fn s5_4_published_purchase_vector() {
    let key = |usage, bytes: &str| KeyEntry {
        usage,
        index: 0x01,
        version: 0x01,
        algorithm: PurseAlgorithm::Tdes,
        key: PurseKey::from_slice(&hex::decode(bytes).unwrap()).unwrap(),
    };
    let keys = [
        key(KeyUsage::Purchase, "11223344556677888877665544332211"),
        key(KeyUsage::Tac, "00112233445566778899AABBCCDDEEFF"),
    ];
    let mut data = test_card_data(TEST_ASN);
    data.balance = 0x2000;
    let purse = IssuedPurse::from_card_keys(&EP_AID, PurseProfile::EPURSE, &data, &keys).unwrap();
    let entropy = ScriptedRandom::new([vec![0x11, 0x22, 0x33, 0x44]], 1);
    let mut card = danger_card_with_entropy(vec![purse], Box::new(entropy)).unwrap();
    check_transcript(&mut card, data_path("ep_s5_4_published_purchase.apdu"));
}
