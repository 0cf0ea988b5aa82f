//! Symmetric key newtypes and their single-block operations.
//!
//! Every key wipes its bytes on drop (`zeroize`) and prints `[redacted]` from `Debug`; none has
//! `Display`. The cipher instances built from them for one operation come from RustCrypto crates
//! built with their `zeroize` feature, so the expanded key schedules are wiped as well.

use core::fmt;

use cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

/// Writes the redacted form shared by every secret type.
pub(crate) fn redacted(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    write!(f, "{name}([redacted])")
}

/// Encrypts one block in place with any RustCrypto block cipher.
///
/// The caller passes exactly one block; the length is checked by the callers in this crate.
pub(crate) fn encrypt_one<C: BlockCipherEncrypt>(cipher: &C, block: &mut [u8]) {
    let mut buf = cipher::Block::<C>::default();
    if buf.len() != block.len() {
        return;
    }
    buf.copy_from_slice(block);
    cipher.encrypt_block(&mut buf);
    block.copy_from_slice(&buf);
    buf.as_mut_slice().zeroize();
}

/// Decrypts one block in place with any RustCrypto block cipher.
pub(crate) fn decrypt_one<C: BlockCipherDecrypt>(cipher: &C, block: &mut [u8]) {
    let mut buf = cipher::Block::<C>::default();
    if buf.len() != block.len() {
        return;
    }
    buf.copy_from_slice(block);
    cipher.decrypt_block(&mut buf);
    block.copy_from_slice(&buf);
    buf.as_mut_slice().zeroize();
}

/// Single DES key (8 bytes; parity bits are ignored).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DesKey([u8; 8]);

impl DesKey {
    /// Wraps 8 key bytes.
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    /// Parses an 8-byte key.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; 8] = bytes.try_into().map_err(|_| Error::InvalidKeyLength {
            algorithm: "DES",
            actual: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// The key bytes. Handle with care: this is key material.
    pub fn expose(&self) -> &[u8; 8] {
        &self.0
    }

    pub(crate) fn cipher(&self) -> des::Des {
        des::Des::new(&self.0.into())
    }

    /// DES-encrypts one block (ECB).
    pub fn encrypt_block(&self, block: &[u8; 8]) -> [u8; 8] {
        let mut out = *block;
        encrypt_one(&self.cipher(), &mut out);
        out
    }

    /// DES-decrypts one block (ECB).
    pub fn decrypt_block(&self, block: &[u8; 8]) -> [u8; 8] {
        let mut out = *block;
        decrypt_one(&self.cipher(), &mut out);
        out
    }
}

impl fmt::Debug for DesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "DesKey")
    }
}

/// Triple-DES EDE key: 16 bytes (2-key, K3 = K1) or 24 bytes (3-key).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TdesKey {
    bytes: [u8; 24],
    len: u8,
}

/// A prepared triple-DES cipher of either keying option.
pub(crate) enum TdesCipher {
    /// 2-key EDE.
    Ede2(des::TdesEde2),
    /// 3-key EDE.
    Ede3(des::TdesEde3),
}

impl TdesCipher {
    /// 3DES-EDE-encrypts one block (ECB) with the prepared key schedule.
    pub(crate) fn encrypt_block(&self, block: &[u8; 8]) -> [u8; 8] {
        let mut out = *block;
        match self {
            TdesCipher::Ede2(c) => encrypt_one(c, &mut out),
            TdesCipher::Ede3(c) => encrypt_one(c, &mut out),
        }
        out
    }
}

impl TdesKey {
    /// Wraps a 2-key (K1 || K2) EDE key.
    pub fn two_key(bytes: [u8; 16]) -> Self {
        let mut buf = [0u8; 24];
        buf[..16].copy_from_slice(&bytes);
        Self {
            bytes: buf,
            len: 16,
        }
    }

    /// Wraps a 3-key (K1 || K2 || K3) EDE key.
    pub const fn three_key(bytes: [u8; 24]) -> Self {
        Self { bytes, len: 24 }
    }

    /// Parses a 16-byte (2-key) or 24-byte (3-key) key.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        match bytes.len() {
            16 | 24 => {
                let mut buf = [0u8; 24];
                buf[..bytes.len()].copy_from_slice(bytes);
                Ok(Self {
                    bytes: buf,
                    len: bytes.len() as u8,
                })
            }
            actual => Err(Error::InvalidKeyLength {
                algorithm: "3DES",
                actual,
            }),
        }
    }

    /// The key bytes (16 or 24). Handle with care: this is key material.
    pub fn expose(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// True for a 16-byte (2-key) key.
    pub fn is_two_key(&self) -> bool {
        self.len == 16
    }

    pub(crate) fn cipher(&self) -> TdesCipher {
        let mut k16 = [0u8; 16];
        k16.copy_from_slice(&self.bytes[..16]);
        let c = if self.is_two_key() {
            TdesCipher::Ede2(des::TdesEde2::new(&k16.into()))
        } else {
            TdesCipher::Ede3(des::TdesEde3::new(&self.bytes.into()))
        };
        k16.zeroize();
        c
    }

    /// 3DES-EDE-encrypts one block (ECB).
    pub fn encrypt_block(&self, block: &[u8; 8]) -> [u8; 8] {
        self.cipher().encrypt_block(block)
    }

    /// 3DES-EDE-decrypts one block (ECB).
    pub fn decrypt_block(&self, block: &[u8; 8]) -> [u8; 8] {
        let mut out = *block;
        match self.cipher() {
            TdesCipher::Ede2(c) => decrypt_one(&c, &mut out),
            TdesCipher::Ede3(c) => decrypt_one(&c, &mut out),
        }
        out
    }
}

impl fmt::Debug for TdesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "TdesKey")
    }
}

/// SM4 key (16 bytes), GB/T 32907.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Sm4Key([u8; 16]);

impl Sm4Key {
    /// Wraps 16 key bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Parses a 16-byte key.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; 16] = bytes.try_into().map_err(|_| Error::InvalidKeyLength {
            algorithm: "SM4",
            actual: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// The key bytes. Handle with care: this is key material.
    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }

    pub(crate) fn cipher(&self) -> sm4::Sm4 {
        sm4::Sm4::new(&self.0.into())
    }

    /// SM4-encrypts one block (ECB).
    pub fn encrypt_block(&self, block: &[u8; 16]) -> [u8; 16] {
        let mut out = *block;
        encrypt_one(&self.cipher(), &mut out);
        out
    }

    /// SM4-decrypts one block (ECB).
    pub fn decrypt_block(&self, block: &[u8; 16]) -> [u8; 16] {
        let mut out = *block;
        decrypt_one(&self.cipher(), &mut out);
        out
    }
}

impl fmt::Debug for Sm4Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "Sm4Key")
    }
}

/// AES key: 16, 24 or 32 bytes (AES-128/192/256).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AesKey {
    bytes: [u8; 32],
    len: u8,
}

/// A prepared AES cipher of any key size.
pub(crate) enum AesCipher {
    /// AES-128.
    Aes128(aes::Aes128),
    /// AES-192.
    Aes192(aes::Aes192),
    /// AES-256.
    Aes256(aes::Aes256),
}

impl AesKey {
    /// Parses a 16-, 24- or 32-byte key.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        match bytes.len() {
            16 | 24 | 32 => {
                let mut buf = [0u8; 32];
                buf[..bytes.len()].copy_from_slice(bytes);
                Ok(Self {
                    bytes: buf,
                    len: bytes.len() as u8,
                })
            }
            actual => Err(Error::InvalidKeyLength {
                algorithm: "AES",
                actual,
            }),
        }
    }

    /// The key bytes (16, 24 or 32). Handle with care: this is key material.
    pub fn expose(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub(crate) fn cipher(&self) -> AesCipher {
        let mut k16 = [0u8; 16];
        let mut k24 = [0u8; 24];
        k16.copy_from_slice(&self.bytes[..16]);
        k24.copy_from_slice(&self.bytes[..24]);
        let c = match self.len {
            16 => AesCipher::Aes128(aes::Aes128::new(&k16.into())),
            24 => AesCipher::Aes192(aes::Aes192::new(&k24.into())),
            _ => AesCipher::Aes256(aes::Aes256::new(&self.bytes.into())),
        };
        k16.zeroize();
        k24.zeroize();
        c
    }

    /// AES-encrypts one block (ECB).
    pub fn encrypt_block(&self, block: &[u8; 16]) -> [u8; 16] {
        let mut out = *block;
        match self.cipher() {
            AesCipher::Aes128(c) => encrypt_one(&c, &mut out),
            AesCipher::Aes192(c) => encrypt_one(&c, &mut out),
            AesCipher::Aes256(c) => encrypt_one(&c, &mut out),
        }
        out
    }

    /// AES-decrypts one block (ECB).
    pub fn decrypt_block(&self, block: &[u8; 16]) -> [u8; 16] {
        let mut out = *block;
        match self.cipher() {
            AesCipher::Aes128(c) => decrypt_one(&c, &mut out),
            AesCipher::Aes192(c) => decrypt_one(&c, &mut out),
            AesCipher::Aes256(c) => decrypt_one(&c, &mut out),
        }
        out
    }
}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "AesKey")
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;

    use super::*;

    #[test]
    fn debug_shows_no_key_bytes() {
        let des = DesKey::from_bytes([0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18]);
        let sm4 = Sm4Key::from_bytes([0xA1; 16]);
        for text in [format!("{des:?}"), format!("{sm4:?}")] {
            assert!(text.contains("[redacted]"), "{text}");
            assert!(!text.to_ascii_lowercase().contains("a1"), "{text}");
        }
    }
}
