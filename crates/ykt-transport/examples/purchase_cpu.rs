//! Time of one in-process purchase (INITIALIZE FOR PURCHASE + DEBIT FOR PURCHASE, e-purse.md
//! §4.5/§4.6) on the §8 test card, 3DES and SM4, and its ratio to one in-process GET BALANCE.
//!
//! ```text
//! cargo run --release -p ykt-transport --example purchase_cpu [PURCHASES]
//! ```
//! Only the card's `transmit` calls are timed (the loop is CPU-bound on one thread, no I/O); the
//! host-side MAC1 (the PSAM's job) is computed outside the timed region. The card is loaded with
//! 100.00 first, so at most 10,000 purchases of 0.01 fit.
// An example program: it reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_crypto::purse::{
    PurseAlgorithm, PurseKey, Sm4Rules, diversify, load_session_input, purchase_session_input,
    session_key, session_mac,
};
use ykt_purse::testing::{
    TEST_ASN, TEST_MASTER_DLK, TEST_MASTER_DPK, danger_test_card_3des, danger_test_card_sm4,
};
use ykt_transport::{CardChannel, InProcess};

const TERMINAL: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
const DATETIME: [u8; 7] = [0x20, 0x24, 0x01, 0x15, 0x10, 0x35, 0x00];

struct Timed {
    channel: InProcess,
    spent: Duration,
}

impl Timed {
    fn send(&mut self, command: CommandApdu) -> Vec<u8> {
        let t = Instant::now();
        let response = self.channel.transmit(&command).unwrap();
        self.spent += t.elapsed();
        assert_eq!(
            response.sw,
            StatusWord::SUCCESS,
            "{:02X?}",
            command.to_bytes()
        );
        response.data
    }
}

fn load(card: &mut Timed, alg: &PurseAlgorithm, amount: u32) {
    let dlk = diversify(
        alg,
        &PurseKey::from_bytes(TEST_MASTER_DLK),
        &TEST_ASN.diversifier(),
    );
    let mut data = vec![0x01];
    data.extend(amount.to_be_bytes());
    data.extend(TERMINAL);
    let init = card.send(
        CommandApdu::new(0x80, 0x50, 0x00, 0x02)
            .with_data(data)
            .with_le(16),
    );
    let counter = u16::from_be_bytes([init[4], init[5]]);
    let random = [init[8], init[9], init[10], init[11]];
    let sk = session_key(alg, &dlk, &load_session_input(random, counter));
    let mut mac2_input = amount.to_be_bytes().to_vec();
    mac2_input.push(0x02);
    mac2_input.extend(TERMINAL);
    mac2_input.extend(DATETIME);
    let mut credit = DATETIME.to_vec();
    credit.extend(session_mac(alg, &sk, &mac2_input));
    card.send(
        CommandApdu::new(0x80, 0x52, 0x00, 0x00)
            .with_data(credit)
            .with_le(4),
    );
}

fn purchase(card: &mut Timed, alg: &PurseAlgorithm, dpk: &PurseKey, ttsn: u32) {
    let amount: u32 = 1;
    let mut data = vec![0x01];
    data.extend(amount.to_be_bytes());
    data.extend(TERMINAL);
    let init = card.send(
        CommandApdu::new(0x80, 0x50, 0x01, 0x02)
            .with_data(data)
            .with_le(15),
    );
    let counter = u16::from_be_bytes([init[4], init[5]]);
    let random = [init[11], init[12], init[13], init[14]];
    // The PSAM's part, not timed.
    let sk = session_key(alg, dpk, &purchase_session_input(random, counter, ttsn));
    let mut mac1_input = amount.to_be_bytes().to_vec();
    mac1_input.push(0x06);
    mac1_input.extend(TERMINAL);
    mac1_input.extend(DATETIME);
    let mut debit = ttsn.to_be_bytes().to_vec();
    debit.extend(DATETIME);
    debit.extend(session_mac(alg, &sk, &mac1_input));
    card.send(
        CommandApdu::new(0x80, 0x54, 0x01, 0x00)
            .with_data(debit)
            .with_le(8),
    );
}

fn main() {
    let purchases: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("PURCHASES"))
        .unwrap_or(10_000)
        .min(10_000);
    let balances = 100_000u32;
    println!("algorithm\tpurchases\tpurchase_us\tget_balance_us\tratio\tpages_per_purchase");
    for (name, card, alg) in [
        (
            "3DES",
            danger_test_card_3des().unwrap(),
            PurseAlgorithm::Tdes,
        ),
        (
            "SM4",
            danger_test_card_sm4().unwrap(),
            PurseAlgorithm::Sm4(Sm4Rules::BRIEF),
        ),
    ] {
        let mut card = Timed {
            channel: InProcess::new(card),
            spent: Duration::ZERO,
        };
        card.send(CommandApdu::parse(&hex::decode("00A4040008A000000632010105").unwrap()).unwrap());
        load(&mut card, &alg, 10_000);

        let dpk = diversify(
            &alg,
            &PurseKey::from_bytes(TEST_MASTER_DPK),
            &TEST_ASN.diversifier(),
        );
        let writes_before = card.channel.card().persistent_writes();
        card.spent = Duration::ZERO;
        for ttsn in 1..=purchases {
            purchase(&mut card, &alg, &dpk, ttsn);
        }
        let purchase_time = card.spent / purchases;
        let pages =
            (card.channel.card().persistent_writes() - writes_before) as f64 / f64::from(purchases);

        let balance = CommandApdu::new(0x80, 0x5C, 0x00, 0x02).with_le(4);
        card.spent = Duration::ZERO;
        for _ in 0..balances {
            card.send(balance.clone());
        }
        let balance_time = card.spent / balances;
        println!(
            "{name}\t{purchases}\t{:.1}\t{:.2}\t{:.0}\t{pages:.1}",
            purchase_time.as_secs_f64() * 1e6,
            balance_time.as_secs_f64() * 1e6,
            purchase_time.as_secs_f64() / balance_time.as_secs_f64(),
        );
    }
}
