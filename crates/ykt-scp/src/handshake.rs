//! The handshake computations both roles share: session keys, cryptograms and the
//! pseudo-random card challenge (GP Card Specification v2.2 E.4.1–E.4.2; Amendment D §6.2.1–
//! §6.2.2).

use alloc::vec::Vec;

use ykt_crypto::scp::scp02_session_key;
use ykt_crypto::{TdesKey, retail_mac, tdes_cbc_mac};

use crate::channel::SessionKeys;
use crate::cipher::{BlockKey, constant};
use crate::error::ParameterError;
use crate::keys::{KeySet, StaticKeys};
use crate::params::Protocol;

/// SCP02 session-key derivation constants (GP Card Specification v2.2 E.4.1).
pub(crate) mod scp02_constant {
    pub(crate) const C_MAC: [u8; 2] = [0x01, 0x01];
    /// Not derived: i = 15 / 55 have no R-MAC (listed to complete the table).
    #[allow(dead_code)]
    pub(crate) const R_MAC: [u8; 2] = [0x01, 0x02];
    pub(crate) const DEK: [u8; 2] = [0x01, 0x81];
    pub(crate) const S_ENC: [u8; 2] = [0x01, 0x82];
}

/// Session keys and both cryptograms of one handshake.
pub(crate) struct Handshake {
    pub(crate) keys: SessionKeys,
    pub(crate) card_cryptogram: Vec<u8>,
    pub(crate) host_cryptogram: Vec<u8>,
}

/// The SCP03-family static keys of a key set that fits `protocol`.
fn block_keys(keys: &KeySet, protocol: Protocol) -> Result<(BlockKey, BlockKey), ParameterError> {
    match (&keys.keys, protocol) {
        (StaticKeys::Aes { enc, mac, .. }, Protocol::Scp03(_)) => {
            Ok((BlockKey::Aes(enc.clone()), BlockKey::Aes(mac.clone())))
        }
        (StaticKeys::Sm4 { enc, mac, .. }, Protocol::Sm4(_)) => {
            Ok((BlockKey::Sm4(enc.clone()), BlockKey::Sm4(mac.clone())))
        }
        _ => Err(ParameterError::KeyTypeMismatch),
    }
}

/// SCP02 static keys of a key set.
fn tdes_keys(keys: &KeySet) -> Result<(&TdesKey, &TdesKey, &TdesKey), ParameterError> {
    match &keys.keys {
        StaticKeys::Tdes { enc, mac, dek } => Ok((enc, mac, dek)),
        _ => Err(ParameterError::KeyTypeMismatch),
    }
}

/// Checks that the key set's algorithm fits the protocol.
pub(crate) fn check_keys(keys: &KeySet, protocol: Protocol) -> Result<(), ParameterError> {
    match protocol {
        Protocol::Scp02(_) => tdes_keys(keys).map(|_| ()),
        _ => block_keys(keys, protocol).map(|_| ()),
    }
}

/// Derives the session and both cryptograms from the challenges (and, for SCP02, the 2-byte
/// sequence counter).
pub(crate) fn handshake(
    keys: &KeySet,
    protocol: Protocol,
    host_challenge: &[u8],
    card_challenge: &[u8],
    sequence_counter: &[u8],
) -> Result<Handshake, ParameterError> {
    match protocol {
        Protocol::Scp02(_) => {
            let (enc, mac, dek) = tdes_keys(keys)?;
            let seq: [u8; 2] =
                sequence_counter
                    .try_into()
                    .map_err(|_| ParameterError::ChallengeLength {
                        expected: 2,
                        actual: sequence_counter.len(),
                    })?;
            let s_enc = scp02_session_key(enc, scp02_constant::S_ENC, seq);
            let cmac = scp02_session_key(mac, scp02_constant::C_MAC, seq);
            let s_dek = scp02_session_key(dek, scp02_constant::DEK, seq);
            let card_input = [host_challenge, &seq, card_challenge].concat();
            let host_input = [&seq[..], card_challenge, host_challenge].concat();
            Ok(Handshake {
                card_cryptogram: tdes_cbc_mac(&s_enc, &[0u8; 8], &card_input).to_vec(),
                host_cryptogram: tdes_cbc_mac(&s_enc, &[0u8; 8], &host_input).to_vec(),
                keys: SessionKeys::Scp02 {
                    enc: s_enc,
                    cmac,
                    dek: s_dek,
                },
            })
        }
        Protocol::Scp03(_) | Protocol::Sm4(_) => {
            let (enc, mac) = block_keys(keys, protocol)?;
            let context = [host_challenge, card_challenge].concat();
            let s_enc = enc.derive(constant::S_ENC, &context);
            let s_mac = mac.derive(constant::S_MAC, &context);
            let s_rmac = mac.derive(constant::S_RMAC, &context);
            let len = protocol.mac_len();
            Ok(Handshake {
                card_cryptogram: s_mac.kdf(constant::CARD_CRYPTOGRAM, &context, len),
                host_cryptogram: s_mac.kdf(constant::HOST_CRYPTOGRAM, &context, len),
                keys: SessionKeys::Scp03 {
                    enc: s_enc,
                    mac: s_mac,
                    rmac: s_rmac,
                },
            })
        }
    }
}

/// The pseudo-random card challenge of `sequence_counter` (2 bytes for SCP02, 3 for SCP03)
/// for the security domain `aid`.
///
/// SCP03 (Amendment D §6.2.2.1; tsm-gp.md §5.2): `KDF(K-ENC, 02, counter ‖ AID)`, 8 or 16 bytes.
/// SCP02 (GP Card Specification v2.2 E.4.2.1, M: one independent implementation agrees): the
/// first 6 bytes of the C-MAC algorithm (retail MAC, ICV zero) over the AID under the C-MAC
/// session key of that counter.
pub(crate) fn pseudo_random_challenge(
    keys: &KeySet,
    protocol: Protocol,
    sequence_counter: &[u8],
    aid: &[u8],
) -> Result<Vec<u8>, ParameterError> {
    match protocol {
        Protocol::Scp02(_) => {
            let (_, mac, _) = tdes_keys(keys)?;
            let seq: [u8; 2] =
                sequence_counter
                    .try_into()
                    .map_err(|_| ParameterError::ChallengeLength {
                        expected: 2,
                        actual: sequence_counter.len(),
                    })?;
            let cmac = scp02_session_key(mac, scp02_constant::C_MAC, seq);
            let mac =
                retail_mac(&cmac, &[0u8; 8], aid).map_err(|_| ParameterError::KeyTypeMismatch)?;
            Ok(mac[..6].to_vec())
        }
        Protocol::Scp03(_) | Protocol::Sm4(_) => {
            let (enc, _) = block_keys(keys, protocol)?;
            let context = [sequence_counter, aid].concat();
            Ok(enc.kdf(
                constant::CARD_CHALLENGE,
                &context,
                protocol.card_challenge_len(),
            ))
        }
    }
}
