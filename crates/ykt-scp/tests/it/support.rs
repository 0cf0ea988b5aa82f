//! Shared set-up: key sets, configurations and a host and a card talking to each other.

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_crypto::{AesKey, Sm4Key, TdesKey};
use ykt_scp::*;

pub const AID: &[u8] = &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

/// A key set of the protocol's algorithm with keys of `len` bytes (AES: 16/24/32).
pub fn keys(protocol: Protocol, version: u8, len: usize) -> KeySet {
    let k = |base: u8| -> Vec<u8> { (0..len as u8).map(|i| base ^ i.wrapping_mul(7)).collect() };
    match protocol {
        Protocol::Scp02(_) => KeySet::tdes(
            version,
            TdesKey::from_slice(&k(0x40)).unwrap(),
            TdesKey::from_slice(&k(0x50)).unwrap(),
            TdesKey::from_slice(&k(0x60)).unwrap(),
        ),
        Protocol::Scp03(_) => KeySet::aes(
            version,
            AesKey::from_slice(&k(0x40)).unwrap(),
            AesKey::from_slice(&k(0x50)).unwrap(),
            AesKey::from_slice(&k(0x60)).unwrap(),
        ),
        _ => KeySet::sm4(
            version,
            Sm4Key::from_slice(&k(0x40)).unwrap(),
            Sm4Key::from_slice(&k(0x50)).unwrap(),
            Sm4Key::from_slice(&k(0x60)).unwrap(),
        ),
    }
}

pub fn card_config(protocol: Protocol) -> CardConfig {
    CardConfig {
        protocol,
        aid: AID.to_vec(),
        key_diversification_data: [0x11; 10],
        minimum_level: SecurityLevel::NONE,
    }
}

pub fn host_config(keys: KeySet, protocol: Protocol, level: SecurityLevel) -> HostConfig {
    HostConfig {
        keys,
        protocol,
        level,
        security_domain_aid: Some(AID.to_vec()),
    }
}

/// Randomness for the tests (a fixed pattern per call site).
pub fn random(len: usize, seed: u8) -> Vec<u8> {
    (0..len as u8)
        .map(|i| seed.wrapping_add(i.wrapping_mul(31)))
        .collect()
}

/// Card-side dispatch of one command: IU, EA, or a wrapped command answered by `applet`.
pub fn card_transmit(
    card: &mut CardSession,
    keys: &KeySet,
    seq: u32,
    cmd: &CommandApdu,
    applet: impl Fn(&CommandApdu) -> ResponseApdu,
) -> ResponseApdu {
    match cmd.ins {
        0x50 => match card.on_initialize_update(cmd, keys, seq, &random(16, 0x99)) {
            Ok(data) => ResponseApdu::new(data, StatusWord::SUCCESS),
            Err(sw) => ResponseApdu::status(sw),
        },
        0x82 => match card.on_external_authenticate(cmd) {
            Ok(()) => ResponseApdu::status(StatusWord::SUCCESS),
            Err(sw) => ResponseApdu::status(sw),
        },
        _ => match card.unwrap_command(cmd) {
            Ok(plain) => card.wrap_response(&applet(&plain)),
            Err(sw) => ResponseApdu::status(sw),
        },
    }
}

/// Opens a session between a fresh host and `card`; returns the host.
pub fn open(
    card: &mut CardSession,
    keys: &KeySet,
    protocol: Protocol,
    level: SecurityLevel,
    seq: u32,
) -> HostSession {
    let hc = random(protocol_challenge_len(protocol), 0x21);
    let (mut host, iu) =
        HostSession::initialize_update(host_config(keys.clone(), protocol, level), &hc).unwrap();
    let resp = card_transmit(card, keys, seq, &iu, echo);
    let ea = host.on_initialize_update_response(&resp).unwrap();
    let resp = card_transmit(card, keys, seq, &ea, echo);
    host.on_external_authenticate_response(&resp).unwrap();
    assert!(host.is_open() && card.is_open());
    host
}

pub fn protocol_challenge_len(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Scp02(_) => 8,
        Protocol::Scp03(o) | Protocol::Sm4(o) if o.s16() => 16,
        _ => 8,
    }
}

/// An applet that answers with its command's data reversed plus INS, and 9000.
pub fn echo(cmd: &CommandApdu) -> ResponseApdu {
    let mut data: Vec<u8> = cmd.data.iter().rev().copied().collect();
    data.push(cmd.ins);
    ResponseApdu::new(data, StatusWord::SUCCESS)
}
