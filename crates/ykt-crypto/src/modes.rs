//! ECB and CBC over whole blocks (no implicit padding) and ISO/IEC 9797-1 padding method 2.
//!
//! The modes are written over the block-cipher traits directly: CBC is one XOR and one block
//! call per block, so no mode crate is needed.

use alloc::vec::Vec;

use cipher::{BlockCipherDecrypt, BlockCipherEncrypt};

use crate::Error;
use crate::keys::{
    AesCipher, AesKey, DesKey, Sm4Key, TdesCipher, TdesKey, decrypt_one, encrypt_one,
};

mod sealed {
    /// Keeps [`super::BlockCipherKey`] implementable only inside this crate.
    pub trait Sealed {}
}

/// A symmetric key usable with the ECB and CBC helpers of this crate.
///
/// Implemented for [`DesKey`], [`TdesKey`], [`Sm4Key`] and [`AesKey`]; sealed.
pub trait BlockCipherKey: sealed::Sealed {
    /// Block size of the cipher in bytes (8 for DES and 3DES, 16 for SM4 and AES).
    const BLOCK_SIZE: usize;

    /// Encrypts whole blocks in place in ECB mode.
    fn ecb_encrypt_in_place(&self, data: &mut [u8]) -> Result<(), Error>;
    /// Decrypts whole blocks in place in ECB mode.
    fn ecb_decrypt_in_place(&self, data: &mut [u8]) -> Result<(), Error>;
    /// Encrypts whole blocks in place in CBC mode with the given one-block IV.
    fn cbc_encrypt_in_place(&self, iv: &[u8], data: &mut [u8]) -> Result<(), Error>;
    /// Decrypts whole blocks in place in CBC mode with the given one-block IV.
    fn cbc_decrypt_in_place(&self, iv: &[u8], data: &mut [u8]) -> Result<(), Error>;
}

fn check_aligned(block_size: usize, data: &[u8]) -> Result<(), Error> {
    if data.len().is_multiple_of(block_size) {
        Ok(())
    } else {
        Err(Error::NotBlockAligned {
            block_size,
            actual: data.len(),
        })
    }
}

fn check_iv(block_size: usize, iv: &[u8]) -> Result<(), Error> {
    if iv.len() == block_size {
        Ok(())
    } else {
        Err(Error::InvalidIvLength {
            block_size,
            actual: iv.len(),
        })
    }
}

fn ecb_enc<C: BlockCipherEncrypt>(c: &C, data: &mut [u8]) -> Result<(), Error> {
    let bs = C::block_size();
    check_aligned(bs, data)?;
    data.chunks_exact_mut(bs).for_each(|b| encrypt_one(c, b));
    Ok(())
}

fn ecb_dec<C: BlockCipherDecrypt>(c: &C, data: &mut [u8]) -> Result<(), Error> {
    let bs = C::block_size();
    check_aligned(bs, data)?;
    data.chunks_exact_mut(bs).for_each(|b| decrypt_one(c, b));
    Ok(())
}

fn cbc_enc<C: BlockCipherEncrypt>(c: &C, iv: &[u8], data: &mut [u8]) -> Result<(), Error> {
    let bs = C::block_size();
    check_iv(bs, iv)?;
    check_aligned(bs, data)?;
    let mut chain = [0u8; 16];
    chain[..bs].copy_from_slice(iv);
    for block in data.chunks_exact_mut(bs) {
        block.iter_mut().zip(&chain).for_each(|(b, c)| *b ^= c);
        encrypt_one(c, block);
        chain[..bs].copy_from_slice(block);
    }
    Ok(())
}

fn cbc_dec<C: BlockCipherDecrypt>(c: &C, iv: &[u8], data: &mut [u8]) -> Result<(), Error> {
    let bs = C::block_size();
    check_iv(bs, iv)?;
    check_aligned(bs, data)?;
    let mut chain = [0u8; 16];
    let mut next = [0u8; 16];
    chain[..bs].copy_from_slice(iv);
    for block in data.chunks_exact_mut(bs) {
        next[..bs].copy_from_slice(block);
        decrypt_one(c, block);
        block.iter_mut().zip(&chain).for_each(|(b, c)| *b ^= c);
        chain = next;
    }
    Ok(())
}

/// Implements the trait for a key whose `cipher()` gives one concrete cipher type.
macro_rules! impl_single {
    ($key:ty, $bs:expr) => {
        impl sealed::Sealed for $key {}
        impl BlockCipherKey for $key {
            const BLOCK_SIZE: usize = $bs;
            fn ecb_encrypt_in_place(&self, data: &mut [u8]) -> Result<(), Error> {
                ecb_enc(&self.cipher(), data)
            }
            fn ecb_decrypt_in_place(&self, data: &mut [u8]) -> Result<(), Error> {
                ecb_dec(&self.cipher(), data)
            }
            fn cbc_encrypt_in_place(&self, iv: &[u8], data: &mut [u8]) -> Result<(), Error> {
                cbc_enc(&self.cipher(), iv, data)
            }
            fn cbc_decrypt_in_place(&self, iv: &[u8], data: &mut [u8]) -> Result<(), Error> {
                cbc_dec(&self.cipher(), iv, data)
            }
        }
    };
}

impl_single!(DesKey, 8);
impl_single!(Sm4Key, 16);

/// Dispatches one generic mode function over a multi-variant cipher enum.
macro_rules! impl_multi {
    ($key:ty, $bs:expr, $cipher:ident { $($var:ident),+ }) => {
        impl sealed::Sealed for $key {}
        impl BlockCipherKey for $key {
            const BLOCK_SIZE: usize = $bs;
            fn ecb_encrypt_in_place(&self, data: &mut [u8]) -> Result<(), Error> {
                match self.cipher() { $($cipher::$var(c) => ecb_enc(&c, data),)+ }
            }
            fn ecb_decrypt_in_place(&self, data: &mut [u8]) -> Result<(), Error> {
                match self.cipher() { $($cipher::$var(c) => ecb_dec(&c, data),)+ }
            }
            fn cbc_encrypt_in_place(&self, iv: &[u8], data: &mut [u8]) -> Result<(), Error> {
                match self.cipher() { $($cipher::$var(c) => cbc_enc(&c, iv, data),)+ }
            }
            fn cbc_decrypt_in_place(&self, iv: &[u8], data: &mut [u8]) -> Result<(), Error> {
                match self.cipher() { $($cipher::$var(c) => cbc_dec(&c, iv, data),)+ }
            }
        }
    };
}

impl_multi!(TdesKey, 8, TdesCipher { Ede2, Ede3 });
impl_multi!(
    AesKey,
    16,
    AesCipher {
        Aes128,
        Aes192,
        Aes256
    }
);

/// ECB-encrypts whole blocks (no padding).
pub fn ecb_encrypt<K: BlockCipherKey>(key: &K, data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = data.to_vec();
    key.ecb_encrypt_in_place(&mut out)?;
    Ok(out)
}

/// ECB-decrypts whole blocks (no padding removed).
pub fn ecb_decrypt<K: BlockCipherKey>(key: &K, data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = data.to_vec();
    key.ecb_decrypt_in_place(&mut out)?;
    Ok(out)
}

/// CBC-encrypts whole blocks with a one-block IV (no padding).
pub fn cbc_encrypt<K: BlockCipherKey>(key: &K, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = data.to_vec();
    key.cbc_encrypt_in_place(iv, &mut out)?;
    Ok(out)
}

/// CBC-decrypts whole blocks with a one-block IV (no padding removed).
pub fn cbc_decrypt<K: BlockCipherKey>(key: &K, iv: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = data.to_vec();
    key.cbc_decrypt_in_place(iv, &mut out)?;
    Ok(out)
}

/// ISO/IEC 9797-1 padding method 2: appends `80`, then `00` up to a multiple of `block_size`.
///
/// The `80` is always appended, so block-aligned input grows by one whole block (e-purse.md §5.2).
/// A `block_size` of 0 is treated as 1.
pub fn pad_iso9797_m2(data: &[u8], block_size: usize) -> Vec<u8> {
    let bs = block_size.max(1);
    let padded_len = (data.len() / bs + 1) * bs;
    let mut out = Vec::with_capacity(padded_len);
    out.extend_from_slice(data);
    out.push(0x80);
    out.resize(padded_len, 0x00);
    out
}

/// Removes ISO/IEC 9797-1 method 2 padding: trailing `00` bytes, then one `80`.
pub fn unpad_iso9797_m2(data: &[u8]) -> Result<&[u8], Error> {
    let end = data
        .iter()
        .rposition(|&b| b != 0x00)
        .ok_or(Error::InvalidPadding)?;
    if data[end] == 0x80 {
        Ok(&data[..end])
    } else {
        Err(Error::InvalidPadding)
    }
}
