//! Session keys computed where the static keys live: a host that keeps its static keys in a key
//! store (an HSM, a KMS) opens a channel with [`HostSession::initialize_update_derived`] and
//! hands [`HostSession::on_initialize_update_response_derived`] a [`SessionKeyDeriver`]. The
//! host then asks the deriver for the few block operations on the static keys the handshake
//! needs, and never holds a static key:
//!
//! * SCP02 (GP Card Specification v2.2 §E.4.1): each session key is 3DES-CBC, ICV zero, of
//!   `constant (2) ‖ sequence counter (2) ‖ 00 × 12` under a static key
//!   ([`StaticKeyOperation::TdesCbc`]; C-MAC `0101` and DEK `0181` under K-MAC and K-DEK, S-ENC
//!   `0182` under K-ENC).
//! * SCP03 and the SM4 channel (Amendment D §6.2.1): each session key is the NIST SP 800-108
//!   counter KDF with CMAC as the PRF; the deriver computes the CMAC of each KDF input block
//!   ([`StaticKeyOperation::Cmac`]) under K-ENC (S-ENC, the pseudo-random card challenge) or
//!   K-MAC (S-MAC, S-RMAC). The cryptograms are under the session keys and computed here.
//!
//! [`HostSession::initialize_update_derived`]: crate::HostSession::initialize_update_derived
//! [`HostSession::on_initialize_update_response_derived`]: crate::HostSession::on_initialize_update_response_derived

use alloc::vec::Vec;

use ykt_crypto::{AesKey, Sm4Key, TdesKey, retail_mac, tdes_cbc_mac};
use zeroize::Zeroizing;

use crate::channel::SessionKeys;
use crate::cipher::{BlockKey, constant};
use crate::error::ParameterError;
use crate::handshake::{Handshake, scp02_constant};
use crate::keys::{KeySet, StaticKeys};
use crate::params::Protocol;

/// One of the three static keys of a key set.
/// This list is complete: a GlobalPlatform key set has these three keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum StaticKeyRole {
    /// K-ENC.
    Enc,
    /// K-MAC.
    Mac,
    /// K-DEK.
    Dek,
}

/// The algorithm and length of a key set held elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaticKeyKind {
    /// 2-key 3DES (SCP02).
    Tdes,
    /// AES of 16, 24 or 32 bytes (SCP03).
    Aes(usize),
    /// SM4 (the SM4 channel).
    Sm4,
}

impl StaticKeyKind {
    /// The kind of a key set in memory.
    pub fn of(keys: &KeySet) -> Self {
        match &keys.keys {
            StaticKeys::Tdes { .. } => Self::Tdes,
            StaticKeys::Aes { enc, .. } => Self::Aes(enc.expose().len()),
            StaticKeys::Sm4 { .. } => Self::Sm4,
        }
    }

    fn fits(self, protocol: Protocol) -> bool {
        matches!(
            (self, protocol),
            (Self::Tdes, Protocol::Scp02(_))
                | (Self::Aes(16 | 24 | 32), Protocol::Scp03(_))
                | (Self::Sm4, Protocol::Sm4(_))
        )
    }
}

/// A block operation on a static key that a handshake asks of a [`SessionKeyDeriver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaticKeyOperation<'a> {
    /// SCP02: 3DES-CBC with ICV zero of the two blocks `data` under the static 3DES key `key`
    /// (the 16-byte result is an SCP02 session key).
    TdesCbc {
        /// Which static key.
        key: StaticKeyRole,
        /// `constant ‖ sequence counter ‖ 00 × 12`.
        data: &'a [u8; 16],
    },
    /// SCP03 / SM4 channel: the full 16-byte CMAC of `data` under the static AES or SM4 key
    /// `key` (one KDF block).
    Cmac {
        /// Which static key.
        key: StaticKeyRole,
        /// The KDF input block.
        data: &'a [u8],
    },
}

/// The deriver could not compute an operation (unknown key, wrong type, store failure).
/// A unit: the deriver's own error stays with its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::exhaustive_structs)]
pub struct DeriverError;

impl core::fmt::Display for DeriverError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("session key derivation failed")
    }
}

impl core::error::Error for DeriverError {}

/// Computes block operations on static keys that the caller keeps (see the module docs).
/// Every output is 16 bytes of key material or KDF output: wiped on drop.
pub trait SessionKeyDeriver {
    /// Computes `operation`.
    fn compute(
        &mut self,
        operation: &StaticKeyOperation<'_>,
    ) -> Result<Zeroizing<[u8; 16]>, DeriverError>;
}

/// A [`SessionKeyDeriver`] over a key set in memory (what [`crate::HostSession::initialize_update`]
/// amounts to; also a reference for a key store's implementation).
#[derive(Debug)]
#[allow(clippy::exhaustive_structs)]
pub struct KeySetDeriver<'a>(pub &'a KeySet);

impl SessionKeyDeriver for KeySetDeriver<'_> {
    fn compute(
        &mut self,
        operation: &StaticKeyOperation<'_>,
    ) -> Result<Zeroizing<[u8; 16]>, DeriverError> {
        let pick = |role: StaticKeyRole| -> BlockOrTdes<'_> {
            match (&self.0.keys, role) {
                (StaticKeys::Tdes { enc, .. }, StaticKeyRole::Enc) => BlockOrTdes::Tdes(enc),
                (StaticKeys::Tdes { mac, .. }, StaticKeyRole::Mac) => BlockOrTdes::Tdes(mac),
                (StaticKeys::Tdes { dek, .. }, StaticKeyRole::Dek) => BlockOrTdes::Tdes(dek),
                (StaticKeys::Aes { enc, .. }, StaticKeyRole::Enc) => BlockOrTdes::Aes(enc),
                (StaticKeys::Aes { mac, .. }, StaticKeyRole::Mac) => BlockOrTdes::Aes(mac),
                (StaticKeys::Aes { dek, .. }, StaticKeyRole::Dek) => BlockOrTdes::Aes(dek),
                (StaticKeys::Sm4 { enc, .. }, StaticKeyRole::Enc) => BlockOrTdes::Sm4(enc),
                (StaticKeys::Sm4 { mac, .. }, StaticKeyRole::Mac) => BlockOrTdes::Sm4(mac),
                (StaticKeys::Sm4 { dek, .. }, StaticKeyRole::Dek) => BlockOrTdes::Sm4(dek),
            }
        };
        match operation {
            StaticKeyOperation::TdesCbc { key, data } => {
                let BlockOrTdes::Tdes(k) = pick(*key) else {
                    return Err(DeriverError);
                };
                let mut out = Zeroizing::new(**data);
                ykt_crypto::BlockCipherKey::cbc_encrypt_in_place(k, &[0u8; 8], &mut out[..])
                    .map_err(|_| DeriverError)?;
                Ok(out)
            }
            StaticKeyOperation::Cmac { key, data } => match pick(*key) {
                BlockOrTdes::Aes(k) => Ok(Zeroizing::new(ykt_crypto::cmac_aes(k, data))),
                BlockOrTdes::Sm4(k) => Ok(Zeroizing::new(ykt_crypto::cmac_sm4(k, data))),
                BlockOrTdes::Tdes(_) => Err(DeriverError),
            },
        }
    }
}

enum BlockOrTdes<'a> {
    Tdes(&'a TdesKey),
    Aes(&'a AesKey),
    Sm4(&'a Sm4Key),
}

/// Checks that a key kind fits the protocol.
pub(crate) fn check_kind(kind: StaticKeyKind, protocol: Protocol) -> Result<(), ParameterError> {
    if kind.fits(protocol) {
        Ok(())
    } else {
        Err(ParameterError::KeyTypeMismatch)
    }
}

/// The SP 800-108 KDF of Amendment D §6.2.1 with the deriver's CMAC under `role` as the PRF:
/// `len` bytes.
fn kdf(
    deriver: &mut dyn SessionKeyDeriver,
    role: StaticKeyRole,
    constant: u8,
    context: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, DeriverError> {
    let l_bits = ((len * 8).min(usize::from(u16::MAX)) as u16).to_be_bytes();
    let mut input = Vec::with_capacity(16 + context.len());
    input.extend_from_slice(&[0u8; 11]);
    input.extend_from_slice(&[constant, 0x00, l_bits[0], l_bits[1], 0x01]);
    input.extend_from_slice(context);
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    let mut counter = 1u8;
    while out.len() < len {
        input[15] = counter;
        let block = deriver.compute(&StaticKeyOperation::Cmac {
            key: role,
            data: &input,
        })?;
        let take = (len - out.len()).min(16);
        out.extend_from_slice(&block[..take]);
        counter = counter.checked_add(1).ok_or(DeriverError)?;
    }
    Ok(out)
}

/// An SCP02 session key: the deriver's 3DES-CBC of `constant ‖ seq ‖ 00 × 12` under `role`.
fn scp02_key(
    deriver: &mut dyn SessionKeyDeriver,
    role: StaticKeyRole,
    constant: [u8; 2],
    seq: [u8; 2],
) -> Result<TdesKey, DeriverError> {
    let mut data = [0u8; 16];
    data[..2].copy_from_slice(&constant);
    data[2..4].copy_from_slice(&seq);
    let out = deriver.compute(&StaticKeyOperation::TdesCbc {
        key: role,
        data: &data,
    })?;
    Ok(TdesKey::two_key(*out))
}

fn block_key(kind: StaticKeyKind, bytes: &[u8]) -> Result<BlockKey, DeriverError> {
    match kind {
        StaticKeyKind::Aes(_) => AesKey::from_slice(bytes)
            .map(BlockKey::Aes)
            .map_err(|_| DeriverError),
        _ => Sm4Key::from_slice(bytes)
            .map(BlockKey::Sm4)
            .map_err(|_| DeriverError),
    }
}

fn seq2(sequence_counter: &[u8]) -> Result<[u8; 2], ParameterError> {
    sequence_counter
        .try_into()
        .map_err(|_| ParameterError::ChallengeLength {
            expected: 2,
            actual: sequence_counter.len(),
        })
}

/// The handshake with session keys from `deriver` (the same values as `handshake::handshake`
/// on the static keys).
pub(crate) fn handshake_derived(
    deriver: &mut dyn SessionKeyDeriver,
    kind: StaticKeyKind,
    protocol: Protocol,
    host_challenge: &[u8],
    card_challenge: &[u8],
    sequence_counter: &[u8],
) -> Result<Handshake, Failure> {
    check_kind(kind, protocol)?;
    match protocol {
        Protocol::Scp02(_) => {
            let seq = seq2(sequence_counter)?;
            let s_enc = scp02_key(deriver, StaticKeyRole::Enc, scp02_constant::S_ENC, seq)?;
            let cmac = scp02_key(deriver, StaticKeyRole::Mac, scp02_constant::C_MAC, seq)?;
            let s_dek = scp02_key(deriver, StaticKeyRole::Dek, scp02_constant::DEK, seq)?;
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
            let len = match kind {
                StaticKeyKind::Aes(n) => n,
                _ => 16,
            };
            let context = [host_challenge, card_challenge].concat();
            let mut key = |role, c| -> Result<BlockKey, DeriverError> {
                block_key(kind, &kdf(deriver, role, c, &context, len)?)
            };
            let s_enc = key(StaticKeyRole::Enc, constant::S_ENC)?;
            let s_mac = key(StaticKeyRole::Mac, constant::S_MAC)?;
            let s_rmac = key(StaticKeyRole::Mac, constant::S_RMAC)?;
            let n = protocol.mac_len();
            Ok(Handshake {
                card_cryptogram: s_mac.kdf(constant::CARD_CRYPTOGRAM, &context, n),
                host_cryptogram: s_mac.kdf(constant::HOST_CRYPTOGRAM, &context, n),
                keys: SessionKeys::Scp03 {
                    enc: s_enc,
                    mac: s_mac,
                    rmac: s_rmac,
                },
            })
        }
    }
}

/// The pseudo-random card challenge with the deriver (the same values as
/// `handshake::pseudo_random_challenge`).
pub(crate) fn pseudo_random_challenge_derived(
    deriver: &mut dyn SessionKeyDeriver,
    protocol: Protocol,
    sequence_counter: &[u8],
    aid: &[u8],
) -> Result<Vec<u8>, Failure> {
    match protocol {
        Protocol::Scp02(_) => {
            let seq = seq2(sequence_counter)?;
            let cmac = scp02_key(deriver, StaticKeyRole::Mac, scp02_constant::C_MAC, seq)?;
            let mac =
                retail_mac(&cmac, &[0u8; 8], aid).map_err(|_| ParameterError::KeyTypeMismatch)?;
            Ok(mac[..6].to_vec())
        }
        Protocol::Scp03(_) | Protocol::Sm4(_) => {
            let context = [sequence_counter, aid].concat();
            let out = kdf(
                deriver,
                StaticKeyRole::Enc,
                constant::CARD_CHALLENGE,
                &context,
                protocol.card_challenge_len(),
            )?;
            Ok(out.to_vec())
        }
    }
}

/// Why a derived handshake failed: a parameter, or the deriver.
pub(crate) enum Failure {
    Parameter(ParameterError),
    Deriver,
}

impl From<ParameterError> for Failure {
    fn from(e: ParameterError) -> Self {
        Self::Parameter(e)
    }
}

impl From<DeriverError> for Failure {
    fn from(_: DeriverError) -> Self {
        Self::Deriver
    }
}
