//! The 16-byte-block cipher under SCP03 and the SM4 channel: AES, or SM4 in its place.
//!
//! Everything SCP03 does with its cipher goes through [`BlockKey`]: CMAC (KDF, cryptograms,
//! C-MAC, R-MAC), one-block encryption (the C-DEC and R-ENC ICVs) and CBC (C-DEC, R-ENC).

use alloc::vec::Vec;

use ykt_crypto::scp::{scp03_kdf_aes, scp03_kdf_sm4, scp03_session_key_aes, scp03_session_key_sm4};
use ykt_crypto::{AesKey, BlockCipherKey, Sm4Key, cmac_aes, cmac_sm4};

/// An AES or SM4 key (a static key or a session key).
#[derive(Clone, Debug)]
pub(crate) enum BlockKey {
    /// AES-128/192/256 (SCP03).
    Aes(AesKey),
    /// SM4 (the SM4 channel).
    Sm4(Sm4Key),
}

impl BlockKey {
    /// Full 16-byte CMAC.
    pub(crate) fn cmac(&self, data: &[u8]) -> [u8; 16] {
        match self {
            Self::Aes(k) => cmac_aes(k, data),
            Self::Sm4(k) => cmac_sm4(k, data),
        }
    }

    /// Encrypts one block (ECB).
    pub(crate) fn encrypt_block(&self, block: &[u8; 16]) -> [u8; 16] {
        match self {
            Self::Aes(k) => k.encrypt_block(block),
            Self::Sm4(k) => k.encrypt_block(block),
        }
    }

    /// CBC-encrypts whole blocks in place; false if `data` is not whole blocks.
    pub(crate) fn cbc_encrypt(&self, iv: &[u8; 16], data: &mut [u8]) -> bool {
        match self {
            Self::Aes(k) => k.cbc_encrypt_in_place(iv, data).is_ok(),
            Self::Sm4(k) => k.cbc_encrypt_in_place(iv, data).is_ok(),
        }
    }

    /// CBC-decrypts whole blocks in place; false if `data` is not whole blocks.
    pub(crate) fn cbc_decrypt(&self, iv: &[u8; 16], data: &mut [u8]) -> bool {
        match self {
            Self::Aes(k) => k.cbc_decrypt_in_place(iv, data).is_ok(),
            Self::Sm4(k) => k.cbc_decrypt_in_place(iv, data).is_ok(),
        }
    }

    /// A session key of the same algorithm and length: `KDF(self, constant, context)`.
    pub(crate) fn derive(&self, constant: u8, context: &[u8]) -> Self {
        match self {
            Self::Aes(k) => Self::Aes(scp03_session_key_aes(k, constant, context)),
            Self::Sm4(k) => Self::Sm4(scp03_session_key_sm4(k, constant, context)),
        }
    }

    /// `len` bytes of KDF output (cryptograms and pseudo-random challenges; not key material).
    pub(crate) fn kdf(&self, constant: u8, context: &[u8], len: usize) -> Vec<u8> {
        let mut out = alloc::vec![0u8; len];
        match self {
            Self::Aes(k) => scp03_kdf_aes(k, constant, context, &mut out),
            Self::Sm4(k) => scp03_kdf_sm4(k, constant, context, &mut out),
        }
        out
    }
}

/// SCP03 derivation constants (GP Amendment D §6.2.2, table 6-1).
pub(crate) mod constant {
    /// Card cryptogram.
    pub(crate) const CARD_CRYPTOGRAM: u8 = 0x00;
    /// Host cryptogram.
    pub(crate) const HOST_CRYPTOGRAM: u8 = 0x01;
    /// Pseudo-random card challenge.
    pub(crate) const CARD_CHALLENGE: u8 = 0x02;
    /// S-ENC.
    pub(crate) const S_ENC: u8 = 0x04;
    /// S-MAC.
    pub(crate) const S_MAC: u8 = 0x06;
    /// S-RMAC.
    pub(crate) const S_RMAC: u8 = 0x07;
}
