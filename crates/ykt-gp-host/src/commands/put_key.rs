//! PUT KEY (`80 D8`, GP §11.8, Amendment D §7.2; tsm-gp.md §3.6): a new or replacing key set
//! of three keys (K-ENC, K-MAC, K-DEK, key ids 1..3).
//!
//! ```text
//! 80 D8 P1 81 Lc new-KVN · 3 × key block 00     P1 = KVN replaced, 00 = add
//! key block, 3DES:     80 10 <key encrypted, 16>                  03 <KCV>
//! key block, AES, SM4: 88|89 <1+n> <key length> <key encrypted, n = 16·k> 03 <KCV>
//! response: new KVN · 3 × KCV
//! ```
//!
//! Encryption: SCP02 3DES-ECB under the session DEK (derived with `0181`); SCP03 AES-CBC and
//! the SM4 channel SM4-CBC, ICV zero, under the static K-DEK. The key value is padded with
//! zeros to whole 16-byte blocks. KCV: 3DES-ECB(key, 8 × `00`), AES-ECB(key, 16 × `01`),
//! SM4-ECB(key, 16 × [`SM4_KCV_INPUT_BYTE`]), first three bytes.

use alloc::vec::Vec;

use ykt_apdu::CommandApdu;
use ykt_crypto::{AesKey, Sm4Key, TdesKey, cbc_encrypt, ecb_encrypt};
use ykt_scp::{KeySet, StaticKeys};
use zeroize::Zeroizing;

use super::command;
use crate::error::{BuildError, ParseError};

/// Key type `80`: DES/3DES (GP §11.1.8).
pub const KEY_TYPE_DES: u8 = 0x80;
/// Key type `88`: AES (GP Amendment D).
pub const KEY_TYPE_AES: u8 = 0x88;
/// Key type of SM4 keys: `89` (L, tsm-gp.md §3.6, the value ykt-scp's `SM4_CHANNEL` names).
pub const KEY_TYPE_SM4: u8 = ykt_scp::sm4::SM4_CHANNEL.key_type;

/// The byte repeated 16 times that an SM4 key's check value encrypts. L (tsm-gp.md §3.6
/// \[PROPOSAL\]): `01`, by analogy with AES; the card manager uses the same value
/// (`ykt_gp::commands::put_key::SM4_KCV_INPUT_BYTE`, a test keeps them equal).
pub const SM4_KCV_INPUT_BYTE: u8 = 0x01;

/// The check values of K-ENC, K-MAC and K-DEK, first three bytes each.
pub type KeyCheckValues = [[u8; 3]; 3];

/// P2: first key identifier 1, several keys in the command (b8).
pub const P2_KEY_SET: u8 = 0x81;

/// The key that encrypts the new key values.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyEncryptionKey<'a> {
    /// SCP02: the session DEK.
    Scp02SessionDek(&'a TdesKey),
    /// SCP03 and the SM4 channel: the static keys of the session's key set (their K-DEK).
    Static(&'a StaticKeys),
}

/// The check value of a key: (key type, first three bytes).
pub fn key_check_value(keys: &StaticKeys) -> Result<KeyCheckValues, BuildError> {
    let three = |block: Vec<u8>| -> Result<[u8; 3], BuildError> {
        block
            .get(..3)
            .and_then(|b| b.try_into().ok())
            .ok_or(BuildError::KeyType)
    };
    let e = |_| BuildError::KeyType;
    Ok(match keys {
        StaticKeys::Tdes { enc, mac, dek } => {
            let kcv = |k: &TdesKey| three(ecb_encrypt(k, &[0u8; 8]).map_err(e)?);
            [kcv(enc)?, kcv(mac)?, kcv(dek)?]
        }
        StaticKeys::Aes { enc, mac, dek } => {
            let kcv = |k: &AesKey| three(ecb_encrypt(k, &[0x01u8; 16]).map_err(e)?);
            [kcv(enc)?, kcv(mac)?, kcv(dek)?]
        }
        StaticKeys::Sm4 { enc, mac, dek } => {
            let kcv = |k: &Sm4Key| three(ecb_encrypt(k, &[SM4_KCV_INPUT_BYTE; 16]).map_err(e)?);
            [kcv(enc)?, kcv(mac)?, kcv(dek)?]
        }
    })
}

/// The key type and the three key values of a key set (key material: wiped on drop).
fn key_values(keys: &StaticKeys) -> (u8, [Zeroizing<Vec<u8>>; 3]) {
    let z = |b: &[u8]| Zeroizing::new(b.to_vec());
    match keys {
        StaticKeys::Tdes { enc, mac, dek } => (
            KEY_TYPE_DES,
            [z(enc.expose()), z(mac.expose()), z(dek.expose())],
        ),
        StaticKeys::Aes { enc, mac, dek } => (
            KEY_TYPE_AES,
            [z(enc.expose()), z(mac.expose()), z(dek.expose())],
        ),
        StaticKeys::Sm4 { enc, mac, dek } => (
            KEY_TYPE_SM4,
            [z(enc.expose()), z(mac.expose()), z(dek.expose())],
        ),
    }
}

/// Encrypts sensitive data (whole blocks) under `kek` (tsm-gp.md §3.6, §5.2).
pub fn encrypt_sensitive(kek: &KeyEncryptionKey<'_>, data: &[u8]) -> Result<Vec<u8>, BuildError> {
    let not_aligned = |_| BuildError::NotBlockAligned(data.len());
    match kek {
        KeyEncryptionKey::Scp02SessionDek(dek) => ecb_encrypt(*dek, data).map_err(not_aligned),
        KeyEncryptionKey::Static(StaticKeys::Aes { dek, .. }) => {
            cbc_encrypt(dek, &[0u8; 16], data).map_err(not_aligned)
        }
        KeyEncryptionKey::Static(StaticKeys::Sm4 { dek, .. }) => {
            cbc_encrypt(dek, &[0u8; 16], data).map_err(not_aligned)
        }
        // A static 3DES key set belongs to SCP02, whose key data goes under the session DEK.
        KeyEncryptionKey::Static(StaticKeys::Tdes { .. }) => Err(BuildError::KeyType),
    }
}

/// PUT KEY of `new` (its `version` is the new KVN), replacing key version `replace` (`None`:
/// add a key set). Returns the command and the three check values the card must confirm.
pub fn put_key(
    replace: Option<u8>,
    new: &KeySet,
    kek: &KeyEncryptionKey<'_>,
) -> Result<(CommandApdu, KeyCheckValues), BuildError> {
    if let Some(v) = replace
        && !(0x01..=0x7F).contains(&v)
    {
        return Err(BuildError::KeyVersion(v));
    }
    let (data, kcvs) = key_set_data(new, kek)?;
    let cmd = command(0xD8, replace.unwrap_or(0x00), P2_KEY_SET, data, true)?;
    Ok((cmd, kcvs))
}

/// PUT KEY's data field for `new`: the new KVN and the three encrypted key blocks, with the
/// check values the card must confirm. (Also what the card manager of this project takes in
/// STORE DATA DGI `8001` to give a new security domain its first keys.)
pub fn key_set_data(
    new: &KeySet,
    kek: &KeyEncryptionKey<'_>,
) -> Result<(Vec<u8>, KeyCheckValues), BuildError> {
    if !(0x01..=0x7F).contains(&new.version) {
        return Err(BuildError::KeyVersion(new.version));
    }
    let (ty, values) = key_values(&new.keys);
    let kcvs = key_check_value(&new.keys)?;
    let mut data = alloc::vec![new.version];
    for (value, kcv) in values.iter().zip(&kcvs) {
        if ty == KEY_TYPE_DES {
            if value.len() != 16 {
                return Err(BuildError::KeyLength(value.len()));
            }
            let enc = encrypt_sensitive(kek, value)?;
            data.extend_from_slice(&[ty, enc.len() as u8]);
            data.extend_from_slice(&enc);
        } else {
            let mut padded = Zeroizing::new(value.to_vec());
            padded.resize(value.len().div_ceil(16) * 16, 0);
            let enc = encrypt_sensitive(kek, &padded)?;
            data.extend_from_slice(&[ty, enc.len() as u8 + 1, value.len() as u8]);
            data.extend_from_slice(&enc);
        }
        data.push(0x03);
        data.extend_from_slice(kcv);
    }
    Ok((data, kcvs))
}

/// Parses PUT KEY's response: the new KVN and one check value per key.
pub fn parse_put_key_response(data: &[u8]) -> Result<(u8, Vec<[u8; 3]>), ParseError> {
    let (version, rest) = data.split_first().ok_or(ParseError::Truncated)?;
    if rest.len() % 3 != 0 {
        return Err(ParseError::Truncated);
    }
    let kcvs = rest.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    Ok((*version, kcvs))
}

/// True when PUT KEY's response data confirms key version `version` with check values `kcvs`.
pub fn confirms(data: &[u8], version: u8, kcvs: &KeyCheckValues) -> Result<bool, ParseError> {
    let (v, card) = parse_put_key_response(data)?;
    Ok(v == version && card.as_slice() == kcvs.as_slice())
}
