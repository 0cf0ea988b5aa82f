//! APDU round trips per second through PC/SC (`scripts/bench-vpcd` runs this against
//! `ykt se serve` and a minimal Python vpcd card in the same run).
//!
//! ```text
//! cargo run --release -p ykt-transport --example apdu_rate -- READER COUNT SETUP_HEX[,SETUP_HEX…] APDU_HEX
//! ```
//! Sends the setup APDUs once, 50 warm-up APDUs, then COUNT timed APDUs (each must answer 9000),
//! and prints one tab-separated line: reader, APDU, count, APDU/s, mean, p50 and p99 latency in µs.
// An example program: it reports bad input by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_transport::{CardChannel, PcscChannel};

fn apdu(text: &str) -> CommandApdu {
    CommandApdu::parse(&hex::decode(text).expect("hex")).expect("C-APDU")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [reader, count, setup, command] = args.as_slice() else {
        panic!("usage: apdu_rate READER COUNT SETUP_HEX[,SETUP_HEX...] APDU_HEX");
    };
    let count: usize = count.parse().expect("COUNT");
    let mut channel = PcscChannel::connect(reader).expect("connect");
    for s in setup.split(',').filter(|s| !s.is_empty()) {
        let response = channel.transmit(&apdu(s)).expect("setup APDU");
        assert_eq!(response.sw, StatusWord::SUCCESS, "setup {s}");
    }
    let command = apdu(command);
    for _ in 0..50 {
        channel.transmit(&command).expect("warm-up");
    }
    let mut latencies = Vec::with_capacity(count);
    let start = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        let response = channel.transmit(&command).expect("transmit");
        latencies.push(t.elapsed());
        assert_eq!(response.sw, StatusWord::SUCCESS);
    }
    let total = start.elapsed();
    latencies.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pct = |p: usize| us(latencies[(latencies.len() * p / 100).min(latencies.len() - 1)]);
    println!(
        "{reader}\t{}\t{count}\t{:.0}\t{:.1}\t{:.1}\t{:.1}",
        hex::encode_upper(command.to_bytes()),
        count as f64 / total.as_secs_f64(),
        us(total) / count as f64,
        pct(50),
        pct(99),
    );
}
