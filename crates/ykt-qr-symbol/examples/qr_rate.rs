//! Ride QR code acceptance cost at a scanning terminal (qr-code.md §3.1): the measured side of
//! `scripts/bench-qr`.
//!
//! ```text
//! cargo run --release -p ykt-qr-symbol --example qr_rate -- CODES BLACKLIST
//! ```
//! Makes CODES codes of the brief's §6 chain (test keys), each with its own generation time,
//! and a verifier holding the §6 root key, the issuer on the whitelist and BLACKLIST user
//! accounts on the blacklist (none of them the code's). Then times, over all codes:
//!
//! * `sm2-verify`: SM2 verification of signature C alone (ID, Z, e, verify), the figure
//!   `openssl speed sm2` reports as verify/s;
//! * `three-signatures`: signatures A, B and C of each code, bare (keys parsed once);
//! * `accept`: `Verifier::verify`, the whole §3.1 path: decode, root key, certificate checks
//!   and A, B, whitelist, C, window and skew, replay cache (insert), blacklist lookup, limit;
//! * `accept-no-blacklist`: the same with an empty blacklist;
//! * `scan-png`: reading the payload back from a PNG of the symbol (3 px a module, level M);
//! * `scan-accept`: scan then accept.
//!
//! Prints one line per measurement: `ykt <name> <count> <seconds> <per second>`.
// An example program: it reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use ykt_crypto::{DEFAULT_SM2_ID, Sm2PublicKey, Sm2Signature};
use ykt_qr::testing::{self, Example, TestRng};
use ykt_qr::verify::ParameterUpdate;
use ykt_qr::{QrCode, Verifier, VerifierConfig, Version};
use ykt_qr_symbol::Symbol;

const T: u32 = testing::GENERATION_TIME;

fn report(name: &str, count: usize, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!("ykt {name} {count} {secs:.3} {:.1}", count as f64 / secs);
}

fn verifier(example: &Example, codes: usize, blacklist: &[[u8; 10]]) -> Verifier {
    let config = VerifierConfig {
        replay_capacity: codes + 16,
        ..VerifierConfig::default()
    };
    let mut rng = TestRng::new(7);
    let mut v = example.verifier(config, &mut rng).unwrap();
    v.apply(ParameterUpdate::Blacklist {
        version: 1,
        accounts: blacklist,
    })
    .unwrap();
    v
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(2000, |a| a.parse().unwrap());
    let blacklist_len: usize = args.next().map_or(10_000_000, |a| a.parse().unwrap());

    let mut rng = TestRng::new(1);
    let mut terms = testing::terms();
    // Every code stays fresh for the whole run: the clock is fixed at the last code's time.
    terms.validity = u16::MAX;
    terms.authorisation_expiry = T + 30 * 86_400;
    let example = Example::new(Version::INTEROPERABLE, &terms, &mut rng).unwrap();
    let codes: Vec<Vec<u8>> = (0..n)
        .map(|i| example.code(T + i as u32, &mut rng).unwrap().encode())
        .collect();
    let now = u64::from(T) + n as u64;

    // Parsed once, as a verifier holds them.
    let decoded: Vec<QrCode> = codes.iter().map(|c| QrCode::decode(c).unwrap()).collect();
    let root = example.root.public_key().clone();
    let issuer_key = decoded[0].authorisation.certificate.issuer_key().unwrap();
    let user_key =
        Sm2PublicKey::from_sec1_bytes(&decoded[0].authorisation.body.user_public_key).unwrap();

    let start = Instant::now();
    for c in &decoded {
        let sig = Sm2Signature::from_bytes(&c.user_signature.signature).unwrap();
        user_key
            .verify(DEFAULT_SM2_ID, &c.user_signed_bytes(), &sig)
            .unwrap();
    }
    report("sm2-verify", n, start);

    let start = Instant::now();
    for c in &decoded {
        let auth = &c.authorisation;
        auth.certificate.verify(auth.version, &root).unwrap();
        let b = Sm2Signature::from_bytes(&auth.issuer_signature.signature).unwrap();
        issuer_key
            .verify(DEFAULT_SM2_ID, &auth.issuer_signed_bytes(), &b)
            .unwrap();
        let sig = Sm2Signature::from_bytes(&c.user_signature.signature).unwrap();
        user_key
            .verify(DEFAULT_SM2_ID, &c.user_signed_bytes(), &sig)
            .unwrap();
    }
    report("three-signatures", n, start);

    // Distinct accounts that are not the code's (whose first byte is 99).
    let blacklist: Vec<[u8; 10]> = (0..blacklist_len as u64)
        .map(|i| {
            let mut a = [0u8; 10];
            a[2..].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes());
            a
        })
        .collect();
    let build = Instant::now();
    let mut full = verifier(&example, n, &blacklist);
    println!(
        "ykt blacklist-build {blacklist_len} {:.3} 0",
        build.elapsed().as_secs_f64()
    );
    drop(blacklist);
    let start = Instant::now();
    for c in &codes {
        full.verify(c, 200, now).unwrap();
    }
    report("accept", n, start);
    // Every code again: each is now refused at the replay step, after all three signatures.
    let start = Instant::now();
    for c in &codes {
        assert_eq!(
            full.verify(c, 200, now).unwrap_err(),
            ykt_qr::Rejection::Replay
        );
    }
    report("refuse-replay", n, start);
    drop(full);

    let mut empty = verifier(&example, n, &[]);
    let start = Instant::now();
    for c in &codes {
        empty.verify(c, 200, now).unwrap();
    }
    report("accept-no-blacklist", n, start);

    let scans = n.min(200);
    let pngs: Vec<Vec<u8>> = codes[..scans]
        .iter()
        .map(|c| Symbol::encode(c).unwrap().to_png(3, 4).unwrap())
        .collect();
    let start = Instant::now();
    for (png, code) in pngs.iter().zip(&codes) {
        assert_eq!(&ykt_qr_symbol::scan(png).unwrap(), code);
    }
    report("scan-png", scans, start);

    let mut fresh = verifier(&example, n, &[]);
    let start = Instant::now();
    for png in &pngs {
        let code = ykt_qr_symbol::scan(png).unwrap();
        fresh.verify(&code, 200, now).unwrap();
    }
    report("scan-accept", scans, start);
}
