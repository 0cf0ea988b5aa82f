//! Back-office TAC verification throughput, per-card key derivation included (e-purse.md §3.2,
//! §5.5), 3DES and SM4: the measured side of `scripts/bench-tac`.
//!
//! ```text
//! cargo run --release -p ykt-terminal --example tac_rate -- RECORDS OUT_DIR
//! ```
//! Makes RECORDS purchase records with distinct card numbers, amounts, terminals and serials, their
//! TACs computed with the card's formulas (not timed), writes them to `OUT_DIR/tac-3des.bin` and
//! `OUT_DIR/tac-sm4.bin` for the OpenSSL peer (`scripts/bench/tac_peer.c`), then times
//! `ykt_terminal::tac::TacVerifier` over all of them (the master key expanded once, as a back
//! office does for a day's records; the warm-up uses the one-shot `verify_tac`): derive the card's DTK from the master TAC key
//! and the card's diversifier, recompute the TAC, compare. Prints one line per algorithm:
//! `ykt <alg> <records> <seconds> <records/s>`.
//!
//! File layout, one 38-byte row per record: diversifier (8) || TAC input (22) || pad (4, zero) ||
//! TAC (4). The master TAC key is the e-purse brief's §8 `MK_DTK`.
// An example program: it reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use ykt_crypto::purse::{self, PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_terminal::tac::{TacVerifier, purchase_tac_input, verify_tac};

/// e-purse.md §8 `MK_DTK`.
const MASTER_DTK: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
];

struct Record {
    diversifier: [u8; 8],
    input: Vec<u8>,
    tac: [u8; 4],
}

/// xorshift64*: deterministic inputs, no dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn records(alg: &PurseAlgorithm, master: &PurseKey, count: usize) -> Vec<Record> {
    let mut seed = 0x594B_5454_4143_0001u64;
    (0..count)
        .map(|i| {
            let r = next(&mut seed);
            let mut diversifier = [0u8; 8];
            diversifier.copy_from_slice(&r.to_be_bytes());
            let amount = (next(&mut seed) % 1_000) as u32 + 1;
            let terminal: [u8; 6] = next(&mut seed).to_be_bytes()[..6].try_into().unwrap();
            let datetime = [0x20, 0x26, 0x12, 0x01, 0x08, (i % 60) as u8, 0x00];
            let input = purchase_tac_input(amount, 0x06, &terminal, i as u32, &datetime);
            let dtk = purse::diversify(alg, master, &diversifier);
            let tac = purse::tac(alg, &dtk, &input);
            Record {
                diversifier,
                input,
                tac,
            }
        })
        .collect()
}

fn write(path: &std::path::Path, records: &[Record]) {
    let mut bytes = Vec::with_capacity(records.len() * 38);
    for r in records {
        bytes.extend_from_slice(&r.diversifier);
        bytes.extend_from_slice(&r.input);
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&r.tac);
    }
    std::fs::write(path, bytes).unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .map(|a| a.parse().expect("RECORDS must be a number"))
        .unwrap_or(200_000);
    let out = std::path::PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let master = PurseKey::from_bytes(MASTER_DTK);
    for (name, alg) in [
        ("3des", PurseAlgorithm::Tdes),
        ("sm4", PurseAlgorithm::Sm4(Sm4Rules::BRIEF)),
    ] {
        let records = records(&alg, &master, count);
        write(&out.join(format!("tac-{name}.bin")), &records);
        // Warm-up pass, then the timed one.
        let warm = records
            .iter()
            .take(1_000)
            .all(|r| verify_tac(&alg, &master, &r.diversifier, &r.input, &r.tac));
        assert!(warm);
        let start = Instant::now();
        let verifier = TacVerifier::new(alg, &master);
        let mut good = 0usize;
        for r in &records {
            if verifier.verify(&r.diversifier, &r.input, &r.tac) {
                good += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(good, records.len(), "every TAC must verify");
        println!("ykt {name} {count} {secs:.6} {:.0}", count as f64 / secs);
    }
}
