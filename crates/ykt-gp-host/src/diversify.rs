//! Static keys diversified from master keys with the card's key diversification data (KDD,
//! the first 10 bytes of the INITIALIZE UPDATE response; tsm-gp.md §6).
//!
//! Key `k` is 1 for K-ENC, 2 for K-MAC, 3 for K-DEK; each is diversified from its own master
//! (the same master for all three when one key is given).
//!
//! * `emv` (EMV CPS v1.1 §5.4.2, 3DES): K = 3DES-ECB(master,
//!   `KDD[4..10] ‖ F0 ‖ k ‖ KDD[4..10] ‖ 0F ‖ k`).
//! * `visa2` (VISA GP 2.1.1 card implementation requirements, 3DES): K = 3DES-ECB(master,
//!   `KDD[0..2] ‖ KDD[4..8] ‖ F0 ‖ k ‖ KDD[0..2] ‖ KDD[4..8] ‖ 0F ‖ k`).
//! * `kdf3` (AES, and by analogy SM4; the SCP03-style counter KDF as GlobalPlatformPro's
//!   `kdf3` template defines it, M): K = the first `len(master)` bytes of
//!   CMAC(master, `i ‖ 00 00 00 ‖ k ‖ 00 ‖ KDD`) for `i` = 1, 2, … (one byte, big-endian).
//!
//! None of the three exists in ykt-crypto (its `diversify_tdes` is the PBOC form over an
//! 8-byte diversifier), so they live here; the tests cross-check them with OpenSSL.

use alloc::vec::Vec;

use ykt_crypto::{AesKey, Sm4Key, TdesKey, cmac_aes, cmac_sm4, ecb_encrypt};
use ykt_scp::{KeySet, StaticKeys};
use zeroize::Zeroizing;

use crate::error::BuildError;

/// A diversification method.
/// This list is complete: the methods GlobalPlatformPro's `--kdf` names that ykt implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)]
pub enum Diversification {
    /// EMV CPS v1.1 (3DES).
    Emv,
    /// VISA2 (3DES).
    Visa2,
    /// The SCP03 counter KDF (AES, SM4).
    Kdf3,
}

impl Diversification {
    /// `emv`, `visa2` or `kdf3`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "emv" => Self::Emv,
            "visa2" => Self::Visa2,
            "kdf3" => Self::Kdf3,
            _ => return None,
        })
    }
}

/// The diversification input of key `k` (1, 2, 3) for a 3DES method.
fn des_input(method: Diversification, kdd: &[u8; 10], k: u8) -> [u8; 16] {
    let mut half = [0u8; 6];
    match method {
        Diversification::Visa2 => {
            half[..2].copy_from_slice(&kdd[..2]);
            half[2..].copy_from_slice(&kdd[4..8]);
        }
        _ => half.copy_from_slice(&kdd[4..10]),
    }
    let mut out = [0u8; 16];
    out[..6].copy_from_slice(&half);
    out[6] = 0xF0;
    out[7] = k;
    out[8..14].copy_from_slice(&half);
    out[14] = 0x0F;
    out[15] = k;
    out
}

fn tdes(
    master: &TdesKey,
    method: Diversification,
    kdd: &[u8; 10],
    k: u8,
) -> Result<TdesKey, BuildError> {
    let bytes = Zeroizing::new(
        ecb_encrypt(master, &des_input(method, kdd, k)).map_err(|_| BuildError::KeyType)?,
    );
    TdesKey::from_slice(&bytes).map_err(|_| BuildError::KeyType)
}

/// The `kdf3` output for key `k`: `len` bytes.
fn kdf3<K>(
    master: &K,
    cmac: impl Fn(&K, &[u8]) -> [u8; 16],
    kdd: &[u8; 10],
    k: u8,
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + 16));
    let mut i = 1u8;
    while out.len() < len {
        let mut input = [0u8; 16];
        input[0] = i;
        input[4] = k;
        input[6..].copy_from_slice(kdd);
        out.extend_from_slice(&Zeroizing::new(cmac(master, &input))[..]);
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// The card's static key set of version `version`, diversified from `master` (whose
/// version is ignored) with `method` and the card's `kdd`.
///
/// `emv` and `visa2` need 3DES masters (16 bytes), `kdf3` AES or SM4 masters; any other
/// combination is [`BuildError::KeyType`].
pub fn diversify(
    master: &KeySet,
    method: Diversification,
    kdd: &[u8; 10],
    version: u8,
) -> Result<KeySet, BuildError> {
    let kt = BuildError::KeyType;
    Ok(match (&master.keys, method) {
        (StaticKeys::Tdes { enc, mac, dek }, Diversification::Emv | Diversification::Visa2) => {
            KeySet::tdes(
                version,
                tdes(enc, method, kdd, 1)?,
                tdes(mac, method, kdd, 2)?,
                tdes(dek, method, kdd, 3)?,
            )
        }
        (StaticKeys::Aes { enc, mac, dek }, Diversification::Kdf3) => {
            let d = |m: &AesKey, k: u8| {
                AesKey::from_slice(&kdf3(m, cmac_aes, kdd, k, m.expose().len())).map_err(|_| kt)
            };
            KeySet::aes(version, d(enc, 1)?, d(mac, 2)?, d(dek, 3)?)
        }
        (StaticKeys::Sm4 { enc, mac, dek }, Diversification::Kdf3) => {
            let d = |m: &Sm4Key, k: u8| {
                Sm4Key::from_slice(&kdf3(m, cmac_sm4, kdd, k, 16)).map_err(|_| kt)
            };
            KeySet::sm4(version, d(enc, 1)?, d(mac, 2)?, d(dek, 3)?)
        }
        _ => return Err(kt),
    })
}
