//! CPU time of one whole purchase at a validator, in process: the host flow (`PurchaseFlow`), the
//! PSAM card (`CardSam`: `80 70` MAC1, `80 72` MAC2) and the purse card, 3DES and SM4.
//!
//! ```text
//! cargo run --release -p ykt-terminal --example purchase_host_cpu [PURCHASES]
//! ```
//! The card is loaded once (not timed), then PURCHASES purchases of 0.01 run back to back on one
//! thread with no I/O, so wall time is CPU time. The time is split into the purse card's
//! `transmit`, the PSAM card's `transmit`, and the rest (the host: APDU building and parsing,
//! the flow's state machine). The reference row is one in-process GET BALANCE on the purse.
//! Prints a markdown table.
// An example program: it reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::Cell;
use std::time::{Duration, Instant};

use ykt_apdu::{CommandApdu, ResponseApdu};
use ykt_card::Card;
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_purse::testing::{
    TEST_KEY_INDEX, TEST_MASTER_DLK, danger_test_card_3des, danger_test_card_sm4,
    danger_test_psam_3des, danger_test_psam_sm4,
};
use ykt_terminal::commands::{self, PURSE_AID};
use ykt_terminal::drive;
use ykt_terminal::load::{LoadFlow, LoadParams};
use ykt_terminal::load_host::IssuerLoadHost;
use ykt_terminal::purchase::{PurchaseFlow, PurchaseParams};
use ykt_terminal::sam::{CardSam, MasterKey};

fn send(card: &mut Card, spent: &Cell<Duration>, command: &CommandApdu) -> ResponseApdu {
    let bytes = command.to_bytes();
    let t = Instant::now();
    let response = card.transmit(&bytes).unwrap();
    spent.set(spent.get() + t.elapsed());
    ResponseApdu::parse(&response).unwrap()
}

fn main() {
    let purchases: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("PURCHASES must be a number"))
        .unwrap_or(10_000);
    println!(
        "| algorithm | purchases | whole purchase µs | purse card µs | PSAM µs | host µs | GET BALANCE µs |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, alg) in [
        ("3DES", PurseAlgorithm::Tdes),
        ("SM4", PurseAlgorithm::Sm4(Sm4Rules::BRIEF)),
    ] {
        let (mut card, mut psam) = match alg {
            PurseAlgorithm::Tdes => (danger_test_card_3des(), danger_test_psam_3des()),
            _ => (danger_test_card_sm4(), danger_test_psam_sm4()),
        };
        let (card, psam) = (card.as_mut().unwrap(), psam.as_mut().unwrap());
        let card_time = Cell::new(Duration::ZERO);
        let psam_time = Cell::new(Duration::ZERO);

        // Load enough for every purchase (not timed).
        let mut host = IssuerLoadHost::new(
            vec![MasterKey {
                index: TEST_KEY_INDEX,
                version: TEST_KEY_INDEX,
                key: PurseKey::from_bytes(TEST_MASTER_DLK),
            }],
            Sm4Rules::BRIEF,
        );
        let (flow, first) = LoadFlow::start(
            LoadParams {
                aid: PURSE_AID.to_vec(),
                key_index: TEST_KEY_INDEX,
                amount: purchases,
                terminal_id: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
                datetime: [0x20, 0x26, 0x12, 0x01, 0x08, 0x00, 0x00],
            },
            &mut host,
        );
        drive(flow, first, |c| Ok::<_, ()>(send(card, &card_time, c))).unwrap();

        let mut sam =
            CardSam::open(|c: &CommandApdu| Ok::<_, ()>(send(psam, &psam_time, c))).unwrap();
        card_time.set(Duration::ZERO);
        psam_time.set(Duration::ZERO);
        let start = Instant::now();
        for i in 0..purchases {
            let params = PurchaseParams {
                aid: PURSE_AID.to_vec(),
                key_index: sam.purchase_key_index(),
                amount: 1,
                datetime: [
                    0x20,
                    0x26,
                    0x12,
                    0x01,
                    0x09,
                    (i / 60 % 60) as u8,
                    (i % 60) as u8,
                ],
                composite: None,
            };
            let (flow, first) = PurchaseFlow::start(params, &mut sam);
            drive(flow, first, |c| Ok::<_, ()>(send(card, &card_time, c))).unwrap();
        }
        let whole = start.elapsed();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(purchases);
        let host_time = whole - card_time.get() - psam_time.get();

        let reference = Cell::new(Duration::ZERO);
        send(card, &reference, &commands::select(&PURSE_AID));
        reference.set(Duration::ZERO);
        let n = 100_000u32;
        for _ in 0..n {
            send(card, &reference, &commands::get_balance());
        }
        let balance_us = reference.get().as_secs_f64() * 1e6 / f64::from(n);
        println!(
            "| {name} | {purchases} | {:.1} | {:.1} | {:.1} | {:.1} | {balance_us:.2} |",
            per(whole),
            per(card_time.get()),
            per(psam_time.get()),
            per(host_time),
        );
    }
}
