//! Session-key derivations of the GlobalPlatform secure channels (the `ykt-scp` crate builds the
//! protocols on top of these).
//!
//! * SCP03 (GlobalPlatform Card Specification Amendment D §6.2.1): the NIST SP 800-108 KDF in
//!   counter mode with CMAC as the PRF. The derivation data of iteration `i` is
//!   `label (11 × 00 ‖ constant) ‖ 00 ‖ L (2 bytes, bits, big-endian) ‖ i (1 byte) ‖ context`.
//!   [`scp03_kdf_aes`] is the AES-CMAC form of the amendment; [`scp03_kdf_sm4`] is the same
//!   construction with SM4-CMAC, which no published specification defines (see `ykt-scp`).
//! * SCP02 (GlobalPlatform Card Specification v2.2 Appendix E.4.1): a session key is the
//!   3DES-CBC encryption, ICV zero, of `constant (2) ‖ sequence counter (2) ‖ 00 × 12` under the
//!   static key ([`scp02_session_key`]).
//!
//! The functions return key types, so the derived bytes are wiped here and never handed out in a
//! plain buffer.

use alloc::vec::Vec;

use zeroize::Zeroize;

use crate::keys::{AesKey, Sm4Key, TdesKey};
use crate::mac::{cmac_aes, cmac_sm4};
use crate::modes::BlockCipherKey;

/// SP 800-108 counter-mode KDF with a 16-byte-block CMAC, writing `out.len()` bytes.
///
/// L is `8 × out.len()` bits; outputs longer than 255 blocks (4080 bytes) are not defined by the
/// one-byte counter and are left zero beyond that point.
fn kdf16(prf: impl Fn(&[u8]) -> [u8; 16], constant: u8, context: &[u8], out: &mut [u8]) {
    let l_bits = (out.len() * 8).min(usize::from(u16::MAX)) as u16;
    let mut input = Vec::with_capacity(16 + context.len());
    input.extend_from_slice(&[0u8; 11]);
    input.push(constant);
    input.push(0x00);
    input.extend_from_slice(&l_bits.to_be_bytes());
    input.push(0x01);
    input.extend_from_slice(context);
    for (i, chunk) in out.chunks_mut(16).enumerate().take(255) {
        input[15] = (i + 1) as u8;
        let mut block = prf(&input);
        chunk.copy_from_slice(&block[..chunk.len()]);
        block.zeroize();
    }
}

/// The SCP03 KDF with AES-CMAC under `key` (Amendment D §6.2.1): fills `out` (L = its length in
/// bits) from the derivation `constant` and `context`.
pub fn scp03_kdf_aes(key: &AesKey, constant: u8, context: &[u8], out: &mut [u8]) {
    kdf16(|d| cmac_aes(key, d), constant, context, out);
}

/// The SCP03 KDF construction with SM4-CMAC in place of AES-CMAC (no published source; the
/// `ykt-scp` crate documents why it exists).
pub fn scp03_kdf_sm4(key: &Sm4Key, constant: u8, context: &[u8], out: &mut [u8]) {
    kdf16(|d| cmac_sm4(key, d), constant, context, out);
}

/// An SCP03 session key of the static key's length: `KDF(key, constant, context, L = 8 × len)`.
pub fn scp03_session_key_aes(key: &AesKey, constant: u8, context: &[u8]) -> AesKey {
    let mut bytes = [0u8; 32];
    let len = key.expose().len();
    scp03_kdf_aes(key, constant, context, &mut bytes[..len]);
    // The length is that of a valid AES key, so parsing cannot fail; the fallback is unreachable.
    let session = AesKey::from_slice(&bytes[..len]).unwrap_or_else(|_| key.clone());
    bytes.zeroize();
    session
}

/// An SM4 session key by the SCP03 construction: `KDF(key, constant, context, L = 128)`.
pub fn scp03_session_key_sm4(key: &Sm4Key, constant: u8, context: &[u8]) -> Sm4Key {
    let mut bytes = [0u8; 16];
    scp03_kdf_sm4(key, constant, context, &mut bytes);
    let session = Sm4Key::from_bytes(bytes);
    bytes.zeroize();
    session
}

/// An SCP02 session key (GP Card Specification v2.2 E.4.1): 3DES-CBC, ICV zero, over
/// `constant ‖ sequence counter ‖ 00 × 12` under the static key; the result is a 2-key key.
///
/// Constants: `0101` C-MAC, `0102` R-MAC, `0181` DEK, `0182` S-ENC.
pub fn scp02_session_key(key: &TdesKey, constant: [u8; 2], sequence_counter: [u8; 2]) -> TdesKey {
    let mut bytes = [0u8; 16];
    bytes[..2].copy_from_slice(&constant);
    bytes[2..4].copy_from_slice(&sequence_counter);
    // 16 bytes and an 8-byte IV are whole blocks, so CBC cannot fail; a failure would leave the
    // derivation data itself, which no caller could mistake for a correct key.
    let _ = key.cbc_encrypt_in_place(&[0u8; 8], &mut bytes);
    let session = TdesKey::two_key(bytes);
    bytes.zeroize();
    session
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex16(s: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        out
    }

    /// tsm-gp.md §9.1 (kaoh/globalplatform `scp03Test.c`): S-ENC from K-ENC and the challenges.
    #[test]
    fn scp03_session_key_of_the_kaoh_vector() {
        let enc = AesKey::from_slice(&hex16("F995D0A069335C7DF42E590317FFEA6D")).unwrap();
        // Host challenge ‖ card challenge.
        let context = hex16("9BD6BF878FB8E9913C80C2CC87EB3A35");
        let s_enc = scp03_session_key_aes(&enc, 0x04, &context);
        assert_eq!(s_enc.expose(), &hex16("D83EE38C9954C8078987A5E9EE6AB13C"));
    }

    /// tsm-gp.md §9.3 (pysim): the SCP02 S-ENC of sequence counter 0001.
    #[test]
    fn scp02_session_key_of_the_pysim_vector() {
        let enc = TdesKey::two_key(hex16("100102030405060708090A0B0C0D0E0F"));
        let s_enc = scp02_session_key(&enc, [0x01, 0x82], [0x00, 0x01]);
        assert_eq!(s_enc.expose(), &hex16("1BA074B31F72A6C44FE8F5D9AFE4DA2F"));
    }
}
