//! Card-key diversification from a master key and an 8-byte diversifier (e-purse.md §3.2).

use crate::keys::{Sm4Key, TdesCipher, TdesKey, encrypt_one};

/// Bitwise complement of an 8-byte diversifier.
pub(crate) fn not8(div: &[u8; 8]) -> [u8; 8] {
    let mut out = *div;
    out.iter_mut().for_each(|b| *b = !*b);
    out
}

/// PBOC 3DES diversification (e-purse.md §3.2, H): `K_left = 3DES_enc(MK, DIV)`,
/// `K_right = 3DES_enc(MK, NOT DIV)`; the card key is the 2-key key `K_left || K_right`.
///
/// The master may be 2-key or 3-key; the result is always 2-key.
pub fn diversify_tdes(master: &TdesKey, div: &[u8; 8]) -> TdesKey {
    diversify_tdes_with(&master.cipher(), div)
}

/// [`diversify_tdes`] with the master's key schedule already expanded.
pub(crate) fn diversify_tdes_with(master: &TdesCipher, div: &[u8; 8]) -> TdesKey {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&master.encrypt_block(div));
    bytes[8..].copy_from_slice(&master.encrypt_block(&not8(div)));
    let key = TdesKey::two_key(bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    key
}

/// SM4 diversification as the brief assumes it (e-purse.md §3.2, L):
/// `card key = SM4_enc(MK, DIV || NOT DIV)`, one 16-byte block.
pub fn diversify_sm4(master: &Sm4Key, div: &[u8; 8]) -> Sm4Key {
    diversify_sm4_with(&master.cipher(), div)
}

/// [`diversify_sm4`] with the master's key schedule already expanded.
pub(crate) fn diversify_sm4_with(master: &sm4::Sm4, div: &[u8; 8]) -> Sm4Key {
    let mut block = [0u8; 16];
    block[..8].copy_from_slice(div);
    block[8..].copy_from_slice(&not8(div));
    encrypt_one(master, &mut block);
    let key = Sm4Key::from_bytes(block);
    zeroize::Zeroize::zeroize(&mut block);
    key
}
