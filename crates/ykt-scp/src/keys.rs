//! Static key sets: the K-ENC, K-MAC and K-DEK of one key version.
//!
//! The keys are `ykt-crypto` key types, so they wipe themselves on drop and print `[redacted]`.

use ykt_crypto::{AesKey, Sm4Key, TdesKey};

/// The three static keys of a key set, by algorithm. This list is complete: one variant per
/// channel this crate implements.
#[derive(Clone, Debug)]
#[allow(clippy::exhaustive_enums)]
pub enum StaticKeys {
    /// SCP02: 2-key (or 3-key) triple-DES keys.
    Tdes {
        /// K-ENC: S-ENC and the cryptograms are derived from it.
        enc: TdesKey,
        /// K-MAC: C-MAC and R-MAC session keys are derived from it.
        mac: TdesKey,
        /// K-DEK: the session DEK is derived from it.
        dek: TdesKey,
    },
    /// SCP03: AES-128, AES-192 or AES-256 keys.
    Aes {
        /// K-ENC.
        enc: AesKey,
        /// K-MAC.
        mac: AesKey,
        /// K-DEK (used statically for sensitive data, Amendment D §6.2.1).
        dek: AesKey,
    },
    /// The SM4 channel (L, see the crate docs): SM4 keys.
    Sm4 {
        /// K-ENC.
        enc: Sm4Key,
        /// K-MAC.
        mac: Sm4Key,
        /// K-DEK.
        dek: Sm4Key,
    },
}

/// A key set: its key version number (KVN, P1 of INITIALIZE UPDATE) and its three keys.
#[derive(Clone, Debug)]
pub struct KeySet {
    /// Key version number; `00` in INITIALIZE UPDATE means "the first available".
    pub version: u8,
    /// The static keys.
    pub keys: StaticKeys,
}

impl KeySet {
    /// An SCP02 key set.
    pub fn tdes(version: u8, enc: TdesKey, mac: TdesKey, dek: TdesKey) -> Self {
        Self {
            version,
            keys: StaticKeys::Tdes { enc, mac, dek },
        }
    }

    /// An SCP03 key set.
    pub fn aes(version: u8, enc: AesKey, mac: AesKey, dek: AesKey) -> Self {
        Self {
            version,
            keys: StaticKeys::Aes { enc, mac, dek },
        }
    }

    /// An SM4-channel key set.
    pub fn sm4(version: u8, enc: Sm4Key, mac: Sm4Key, dek: Sm4Key) -> Self {
        Self {
            version,
            keys: StaticKeys::Sm4 { enc, mac, dek },
        }
    }
}
