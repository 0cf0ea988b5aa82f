//! SM2 signature and verification rates of `ykt-crypto` on this machine, with the default
//! signer ID and a message the size of a TSM envelope's signed text: the measured side of the
//! SM2 bound in `scripts/bench-tsm` (the TSM verifies one signature and makes one per message,
//! the phone makes one).
//!
//! ```text
//! cargo run --release -p ykt-crypto --example sm2_rate -- [SECONDS]
//! ```
//! Prints `ykt sm2-sign <count> <seconds> <per second>` and the same for `sm2-verify`.
// An example program: it reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ykt_crypto::{DEFAULT_SM2_ID, Sm2PrivateKey};

/// The signed text of a TSM envelope is about this long (an `ApduResultReq` with its relay
/// answers).
const MESSAGE_LEN: usize = 600;

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map_or(3.0, |s| s.parse().expect("SECONDS"));
    let budget = Duration::from_secs_f64(seconds);
    let key = Sm2PrivateKey::from_bytes(&[0x5A; 32]).unwrap();
    let public = key.public_key().clone();
    let message: Vec<u8> = (0..MESSAGE_LEN).map(|i| (i * 7) as u8).collect();

    let start = Instant::now();
    let mut count = 0usize;
    let mut last = None;
    while start.elapsed() < budget {
        last = Some(key.sign(DEFAULT_SM2_ID, &message).unwrap());
        count += 1;
    }
    report("sm2-sign", count, start);

    let signature = last.unwrap();
    let start = Instant::now();
    let mut count = 0usize;
    while start.elapsed() < budget {
        public.verify(DEFAULT_SM2_ID, &message, &signature).unwrap();
        count += 1;
    }
    report("sm2-verify", count, start);
}

fn report(name: &str, count: usize, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!("ykt {name} {count} {secs:.3} {:.1}", count as f64 / secs);
}
