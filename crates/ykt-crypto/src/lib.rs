//! Cryptography for ykt: the national algorithms (SM2 signatures and encryption, SM3, SM4) and
//! DES / 3DES / AES, glued into what transit cards need: PBOC MACs, the ISO/IEC 9797-1 retail
//! MAC, CMAC, PBOC key diversification and the e-purse session keys, MACs and TAC
//! ([`purse`], e-purse.md §3.2 and §5), the GlobalPlatform SCP02/SCP03 session-key
//! derivations ([`scp`]), and RSA PKCS#1 v1.5 SHA-256 signatures for delegated-management
//! tokens ([`rsa`], tsm-gp.md §4).
//!
//! What it owns: byte-exact algorithm choices (padding, truncation, key splits) and key types
//! that wipe themselves on drop and never print their bytes.
//! What it does not own: the primitives themselves (RustCrypto `sm2`, `sm3`, `sm4`, `des`, `aes`,
//! `cmac`, `rsa`, `sha2`), message layouts of APDUs (the applet and terminal crates build MAC
//! inputs), key storage, and randomness: functions that need it take a `rand_core::CryptoRng`
//! argument.
//! No I/O, `#![no_std]` + `alloc`.
//!
//! References: GB/T 32918 (SM2), GB/T 32905 (SM3), GB/T 32907 (SM4), ISO/IEC 9797-1 (MAC
//! algorithms 1 and 3, padding method 2), NIST SP 800-38B (CMAC), RFC 8017 (RSA), the project's
//! e-purse brief.
#![no_std]

extern crate alloc;

mod diversify;
mod error;
mod hash;
mod keys;
mod mac;
mod modes;
pub mod purse;
pub mod rsa;
pub mod scp;
mod sm2;

pub use crate::diversify::{diversify_sm4, diversify_tdes};
pub use crate::error::Error;
pub use crate::hash::{Sm3, sm3};
pub use crate::keys::{AesKey, DesKey, Sm4Key, TdesKey};
pub use crate::mac::{
    cmac_aes, cmac_sm4, cmac_tdes, des_cbc_mac, pboc_mac_des, pboc_mac_sm4, retail_mac,
    sm4_cbc_mac, tdes_cbc_mac,
};
pub use crate::modes::{
    BlockCipherKey, cbc_decrypt, cbc_encrypt, ecb_decrypt, ecb_encrypt, pad_iso9797_m2,
    unpad_iso9797_m2,
};
pub use crate::rsa::{RsaError, RsaPrivateKey, RsaPublicKey};
pub use crate::sm2::{DEFAULT_SM2_ID, Sm2CipherMode, Sm2PrivateKey, Sm2PublicKey, Sm2Signature};

/// Constant-time equality of two byte strings (for MAC and cryptogram checks).
///
/// Strings of different lengths compare unequal; the length itself is not secret.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
