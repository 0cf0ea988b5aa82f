//! PC/SC end to end: the `pcsc` crate → pcscd → vpcd → `ykt se serve`. Runs only with
//! `YKT_PCSC_IT=1`; `YKT_PCSC_READER` names the reader (default "Virtual PCD 00 00").

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_transport::{CardChannel, PcscChannel};

fn enabled() -> bool {
    let on = std::env::var("YKT_PCSC_IT").is_ok_and(|v| v == "1");
    if !on {
        eprintln!(
            "skipped: set YKT_PCSC_IT=1 with pcscd and `ykt se serve` running (scripts/pcsc-it)"
        );
    }
    on
}

fn connect() -> PcscChannel {
    let reader =
        std::env::var("YKT_PCSC_READER").unwrap_or_else(|_| "Virtual PCD 00 00".to_owned());
    PcscChannel::connect(&reader).unwrap_or_else(|e| panic!("connecting to {reader:?}: {e}"))
}

/// The §8.1 load and §8.2 purchase through PC/SC reproduce the brief's MAC1, MAC2, TAC and
/// balances byte for byte; then a reset through PC/SC drops the selection.
#[test]
fn pcsc_load_and_purchase_reproduce_the_brief() {
    if !enabled() {
        return;
    }
    let mut channel = connect();
    let atr = channel.atr().unwrap();
    assert_eq!(atr, ykt_card::Atr::default_t1().as_bytes(), "ATR via pcscd");
    for (n, (command, expected)) in crate::transcript(include_str!("../data/purse_8_pcsc.apdu"))
        .into_iter()
        .enumerate()
    {
        let command = CommandApdu::parse(&command).unwrap();
        let response = channel.transmit(&command).unwrap();
        assert_eq!(
            hex::encode_upper(response.to_bytes()),
            hex::encode_upper(&expected),
            "exchange {n}: {}",
            hex::encode_upper(command.to_bytes())
        );
    }

    // SCardReconnect(RESET) reaches the card as a vpcd reset: the selection is gone.
    assert_eq!(channel.reset().unwrap(), atr);
    let balance = channel.transmit(&CommandApdu::parse(&[0x80, 0x5C, 0x00, 0x02, 0x04]).unwrap());
    assert_eq!(balance.unwrap().sw, StatusWord::INS_NOT_SUPPORTED);
}
