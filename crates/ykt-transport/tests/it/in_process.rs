//! `InProcess` and the two error layers of `CardChannel`.

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_purse::testing::danger_test_card_3des;
use ykt_transport::{CardChannel, Error, InProcess, TransportError};

use crate::harness::unhex;

fn command(hex: &str) -> CommandApdu {
    CommandApdu::parse(&unhex(hex)).unwrap()
}

#[test]
fn load_8_1_through_transmit_checked() {
    let mut channel = InProcess::new(danger_test_card_3des().unwrap());
    channel
        .transmit_checked(&command("00A4040008A000000632010105"))
        .unwrap();
    let init = channel
        .transmit_checked(&command("805000020B010000271011223344556610"))
        .unwrap();
    assert_eq!(init, unhex("00000000 0000 01 00 1A2B3C4D 4E903E9F"));
    let tac = channel
        .transmit_checked(&command("805200000B 20240115 103000 C932104C 04"))
        .unwrap();
    assert_eq!(tac, unhex("643614FE"));
}

#[test]
fn a_refusal_is_a_status_word_not_a_transport_error() {
    let mut channel = InProcess::new(danger_test_card_3des().unwrap());
    // transmit: the status word is in the response.
    let response = channel.transmit(&command("805C000204")).unwrap();
    assert_eq!(response.sw, StatusWord::INS_NOT_SUPPORTED);
    // transmit_checked: it becomes Error::Card.
    let error = channel
        .transmit_checked(&command("805C000204"))
        .unwrap_err();
    assert!(matches!(error, Error::Card(sw) if sw == StatusWord::INS_NOT_SUPPORTED));
    // A wrong MAC2 is the card's answer too (9302).
    channel
        .transmit_checked(&command("00A4040008A000000632010105"))
        .unwrap();
    channel
        .transmit_checked(&command("805000020B010000271011223344556610"))
        .unwrap();
    let error = channel
        .transmit_checked(&command("805200000B 20240115 103000 00000000 04"))
        .unwrap_err();
    assert!(matches!(error, Error::Card(sw) if sw == StatusWord::MAC_INVALID));
}

#[test]
fn power_loss_is_a_transport_error_and_reset_restores_power() {
    let mut channel = InProcess::new(danger_test_card_3des().unwrap());
    channel.card_mut().power_off();
    let error = channel
        .transmit(&command("00A4040008A000000632010105"))
        .unwrap_err();
    assert!(matches!(error, TransportError::Card(_)));
    let error = channel
        .transmit_checked(&command("00A4040008A000000632010105"))
        .unwrap_err();
    assert!(matches!(error, Error::Transport(TransportError::Card(_))));

    let atr = channel.reset().unwrap();
    assert_eq!(atr, ykt_card::Atr::default_t1().as_bytes());
    channel
        .transmit_checked(&command("00A4040008A000000632010105"))
        .unwrap();
    // A warm reset drops the selection.
    channel.reset().unwrap();
    let response = channel.transmit(&command("805C000204")).unwrap();
    assert_eq!(response.sw, StatusWord::INS_NOT_SUPPORTED);
}
