//! Secure-channel throughput at security level 33 (C-MAC, C-DEC, R-MAC, R-ENC): the measured
//! side of `scripts/bench-scp03`.
//!
//! ```text
//! cargo run --release -p ykt-scp --example scp03_rate -- [EXCHANGES] [DATA_LEN]
//! ```
//! Opens one session between a `HostSession` and a `CardSession` in memory (AES-128 SCP03,
//! `i` = 70, and the SM4 channel), then times EXCHANGES (default 200 000) round trips of a
//! command with DATA_LEN (default 200) data bytes and a response with as many: host `wrap`
//! (C-DEC, C-MAC), card `unwrap_command` (C-MAC check, decryption), card `wrap_response`
//! (R-ENC, R-MAC), host `unwrap` (R-MAC check, decryption). No transport, no APDU encoding.
//! Prints one line per cipher: `ykt <cipher> <exchanges> <data_len> <seconds> <exchanges/s>`.
// An example program: it reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_crypto::{AesKey, Sm4Key};
use ykt_scp::*;

const AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

fn keys(sm4: bool) -> KeySet {
    let k = |b: u8| -> Vec<u8> { (0..16u8).map(|i| b + i).collect() };
    if sm4 {
        KeySet::sm4(
            0x30,
            Sm4Key::from_slice(&k(0x40)).unwrap(),
            Sm4Key::from_slice(&k(0x50)).unwrap(),
            Sm4Key::from_slice(&k(0x60)).unwrap(),
        )
    } else {
        KeySet::aes(
            0x30,
            AesKey::from_slice(&k(0x40)).unwrap(),
            AesKey::from_slice(&k(0x50)).unwrap(),
            AesKey::from_slice(&k(0x60)).unwrap(),
        )
    }
}

fn open(sm4: bool) -> (HostSession, CardSession) {
    let protocol = if sm4 {
        Protocol::sm4(0x70).unwrap()
    } else {
        Protocol::scp03(0x70).unwrap()
    };
    let keys = keys(sm4);
    let mut card = CardSession::new(CardConfig {
        protocol,
        aid: AID.to_vec(),
        key_diversification_data: [0; 10],
        minimum_level: SecurityLevel::ALL,
    });
    let config = HostConfig {
        keys: keys.clone(),
        protocol,
        level: SecurityLevel::ALL,
        security_domain_aid: Some(AID.to_vec()),
    };
    let (mut host, iu) = HostSession::initialize_update(config, &[7; 8]).unwrap();
    let data = card.on_initialize_update(&iu, &keys, 1, &[]).unwrap();
    let ea = host
        .on_initialize_update_response(&ResponseApdu::new(data, StatusWord::SUCCESS))
        .unwrap();
    card.on_external_authenticate(&ea).unwrap();
    host.on_external_authenticate_response(&ResponseApdu::status(StatusWord::SUCCESS))
        .unwrap();
    (host, card)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let exchanges: usize = args.get(1).map_or(200_000, |a| a.parse().unwrap());
    let data_len: usize = args.get(2).map_or(200, |a| a.parse().unwrap());
    let cmd = CommandApdu::new(0x80, 0xE2, 0x90, 0x00)
        .with_data((0..data_len).map(|i| i as u8).collect::<Vec<u8>>())
        .with_le(256);
    let reply = ResponseApdu::new(
        (0..data_len).map(|i| (i * 7) as u8).collect::<Vec<u8>>(),
        StatusWord::SUCCESS,
    );
    for (name, sm4) in [("aes128", false), ("sm4", true)] {
        let (mut host, mut card) = open(sm4);
        // Warm-up and a correctness check.
        for _ in 0..1000 {
            let plain = card.unwrap_command(&host.wrap(&cmd).unwrap()).unwrap();
            assert_eq!(plain.data, cmd.data);
            let back = host.unwrap(&card.wrap_response(&reply)).unwrap();
            assert_eq!(back, reply);
        }
        let start = Instant::now();
        for _ in 0..exchanges {
            let wrapped = host.wrap(&cmd).unwrap();
            let plain = card.unwrap_command(&wrapped).unwrap();
            std::hint::black_box(&plain);
            let back = host.unwrap(&card.wrap_response(&reply)).unwrap();
            std::hint::black_box(&back);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "ykt {name} {exchanges} {data_len} {secs:.3} {:.0}",
            exchanges as f64 / secs
        );
    }
}
