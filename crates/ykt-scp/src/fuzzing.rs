//! Entry points for fuzz targets: each runs arbitrary bytes through a card-side parser and
//! checks that the answer is a status word or a command, never a panic.

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_crypto::AesKey;

use crate::{CardConfig, CardSession, HostConfig, HostSession, KeySet, Protocol, SecurityLevel};

fn keys() -> Option<KeySet> {
    let k = |b: u8| AesKey::from_slice(&[b; 16]).ok();
    Some(KeySet::aes(0x30, k(0x40)?, k(0x41)?, k(0x42)?))
}

/// Opens an SCP03 session at level 33 between an in-memory host and card, then feeds `data`,
/// parsed as a command APDU, to [`CardSession::unwrap_command`] (the `scp_unwrap` target).
/// Returns the card's status word or `9000` for an accepted command.
pub fn scp_unwrap(data: &[u8]) -> StatusWord {
    let (Some(keys), Ok(protocol)) = (keys(), Protocol::scp03(0x70)) else {
        return StatusWord::UNKNOWN;
    };
    let mut card = CardSession::new(CardConfig {
        protocol,
        aid: alloc::vec![0xA0, 0, 0, 1, 0x51, 0, 0, 0],
        key_diversification_data: [0; 10],
        minimum_level: SecurityLevel::NONE,
    });
    let config = HostConfig {
        keys: keys.clone(),
        protocol,
        level: SecurityLevel::ALL,
        security_domain_aid: None,
    };
    let Ok((mut host, iu)) = HostSession::initialize_update(config, &[1; 8]) else {
        return StatusWord::UNKNOWN;
    };
    let Ok(resp) = card.on_initialize_update(&iu, &keys, 1, &[]) else {
        return StatusWord::UNKNOWN;
    };
    let resp = ykt_apdu::ResponseApdu::new(resp, StatusWord::SUCCESS);
    let Ok(ea) = host.on_initialize_update_response(&resp) else {
        return StatusWord::UNKNOWN;
    };
    if card.on_external_authenticate(&ea).is_err() {
        return StatusWord::UNKNOWN;
    }
    match CommandApdu::parse(data) {
        Ok(cmd) => match card.unwrap_command(&cmd) {
            Ok(_) => StatusWord::SUCCESS,
            Err(sw) => sw,
        },
        Err(_) => StatusWord::WRONG_LENGTH,
    }
}
