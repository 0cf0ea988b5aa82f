//! MACs: PBOC CBC-MACs with ISO/IEC 9797-1 padding method 2, the ISO/IEC 9797-1 MAC algorithm 3
//! ("retail MAC") and CMAC (NIST SP 800-38B) over AES, SM4 and 3DES.

use cmac::{KeyInit, Mac};
use zeroize::Zeroize;

use crate::Error;
use crate::keys::{
    AesCipher, AesKey, DesKey, Sm4Key, TdesCipher, TdesKey, decrypt_one, encrypt_one,
};
use crate::modes::{BlockCipherKey, pad_iso9797_m2};

/// CBC-MAC with ISO/IEC 9797-1 padding method 2; returns the last block (`N` = block size).
fn cbc_mac_m2<K: BlockCipherKey, const N: usize>(key: &K, iv: &[u8; N], data: &[u8]) -> [u8; N] {
    let mut padded = pad_iso9797_m2(data, N);
    let mut out = [0u8; N];
    // The padded length is a whole number of blocks and the IV is one block by construction,
    // so CBC cannot fail here; a failure would leave the all-zero output.
    if key.cbc_encrypt_in_place(iv, &mut padded).is_ok()
        && let Some(last) = padded.rchunks_exact(N).next()
    {
        out.copy_from_slice(last);
    }
    padded.zeroize();
    out
}

fn first4<const N: usize>(block: &[u8; N]) -> [u8; 4] {
    let mut out = [0u8; 4];
    out.copy_from_slice(&block[..4]);
    out
}

/// Single-DES CBC-MAC over `80`-padded data with the given IV; the full last block.
pub fn des_cbc_mac(key: &DesKey, iv: &[u8; 8], data: &[u8]) -> [u8; 8] {
    cbc_mac_m2(key, iv, data)
}

/// Full 3DES-EDE CBC-MAC (every block 3DES) over `80`-padded data; the full last block.
///
/// This is not the retail MAC: see [`retail_mac`] for ISO/IEC 9797-1 algorithm 3.
pub fn tdes_cbc_mac(key: &TdesKey, iv: &[u8; 8], data: &[u8]) -> [u8; 8] {
    cbc_mac_m2(key, iv, data)
}

/// SM4 CBC-MAC over `80`-padded data with the given IV; the full last block.
pub fn sm4_cbc_mac(key: &Sm4Key, iv: &[u8; 16], data: &[u8]) -> [u8; 16] {
    cbc_mac_m2(key, iv, data)
}

/// PBOC MAC with a single-DES key (e-purse.md §5.2): `80` always appended, `00` to a multiple
/// of 8, CBC-DES from `iv` (8 zero bytes in §5.2), first 4 bytes of the last block.
pub fn pboc_mac_des(key: &DesKey, iv: &[u8; 8], data: &[u8]) -> [u8; 4] {
    first4(&des_cbc_mac(key, iv, data))
}

/// PBOC-style MAC with an SM4 key: `80`-padding to 16, CBC-SM4 from `iv`, first 4 bytes of
/// the last block (e-purse.md §5.7, the rule we implemented).
pub fn pboc_mac_sm4(key: &Sm4Key, iv: &[u8; 16], data: &[u8]) -> [u8; 4] {
    first4(&sm4_cbc_mac(key, iv, data))
}

/// ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 over a 16-byte key K_L || K_R.
pub(crate) fn retail_mac16(key: &[u8; 16], iv: &[u8; 8], data: &[u8]) -> [u8; 8] {
    let mut kl = [0u8; 8];
    let mut kr = [0u8; 8];
    kl.copy_from_slice(&key[..8]);
    kr.copy_from_slice(&key[8..]);
    let left = DesKey::from_bytes(kl);
    let right = DesKey::from_bytes(kr);
    kl.zeroize();
    kr.zeroize();
    let chained = des_cbc_mac(&left, iv, data);
    let mut out = chained;
    decrypt_one(&right.cipher(), &mut out);
    encrypt_one(&left.cipher(), &mut out);
    out
}

/// ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC", e-purse.md §5.3) with padding method 2:
/// single-DES CBC under K_L over every block from `iv`, then `DES_enc(K_L, DES_dec(K_R, H_n))`.
///
/// Returns the full 8-byte output; PBOC secure messaging takes the first 4 bytes. Needs a
/// 2-key (16-byte) key: a 3-key key gives [`Error::InvalidKeyLength`].
pub fn retail_mac(key: &TdesKey, iv: &[u8; 8], data: &[u8]) -> Result<[u8; 8], Error> {
    let bytes: &[u8; 16] = key
        .expose()
        .try_into()
        .map_err(|_| Error::InvalidKeyLength {
            algorithm: "ISO 9797-1 MAC algorithm 3 (2-key 3DES)",
            actual: key.expose().len(),
        })?;
    Ok(retail_mac16(bytes, iv, data))
}

fn cmac_with<C>(cipher: C, data: &[u8]) -> cmac::digest::Output<cmac::Cmac<C>>
where
    C: cmac::block_api::CmacCipher + Clone,
{
    let mut mac = <cmac::Cmac<C> as cmac::digest::InnerInit>::inner_init(cipher);
    mac.update(data);
    mac.finalize().into_bytes()
}

/// AES-CMAC (NIST SP 800-38B), full 16-byte tag.
pub fn cmac_aes(key: &AesKey, data: &[u8]) -> [u8; 16] {
    let tag = match key.cipher() {
        AesCipher::Aes128(c) => cmac_with(c, data),
        AesCipher::Aes192(c) => cmac_with(c, data),
        AesCipher::Aes256(c) => cmac_with(c, data),
    };
    tag.into()
}

/// SM4-CMAC (NIST SP 800-38B construction over SM4), full 16-byte tag.
pub fn cmac_sm4(key: &Sm4Key, data: &[u8]) -> [u8; 16] {
    let mut mac = <cmac::Cmac<sm4::Sm4> as KeyInit>::new(&(*key.expose()).into());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// 3DES-CMAC (NIST SP 800-38B, 64-bit block), full 8-byte tag.
pub fn cmac_tdes(key: &TdesKey, data: &[u8]) -> [u8; 8] {
    let tag = match key.cipher() {
        TdesCipher::Ede2(c) => cmac_with(c, data),
        TdesCipher::Ede3(c) => cmac_with(c, data),
    };
    tag.into()
}
