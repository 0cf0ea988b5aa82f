//! PUT KEY (`80 D8`, GP §11.8; Amendment D §7.2; tsm-gp.md §3.6): add or replace a key
//! version of three keys (K-ENC, K-MAC, K-DEK, ids 1..3).
//!
//! ```text
//! P1 = KVN replaced (00: add) · P2 = 81 (first key id 1, several keys)
//! data = new KVN · 3 × key block
//! key block, DES:      80 10 <key encrypted, 16>           03 <KCV>
//! key block, AES, SM4: 88|89 <1+n> <key length> <key encrypted, n = 16·k> 03 <KCV>
//!                      (or 88|89 <n> <key encrypted> 03 <KCV>: `KEY_LENGTH_BYTE_OPTIONAL`)
//! response = new KVN · 3 × KCV
//! ```
//!
//! Key data is encrypted with 3DES-ECB under the SCP02 session DEK, or with AES-CBC (SM4-CBC for
//! the SM4 channel), ICV zero, under the static K-DEK of the session's key set.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::Context;
use ykt_crypto::{AesKey, Sm4Key, TdesKey, cbc_decrypt, ecb_decrypt, ecb_encrypt};
use ykt_scp::{KeySet, Protocol, StaticKeys};

use crate::isd::{Session, key_type_for};
use crate::life_cycle::CardState;
use crate::state::{self, KEY_TYPE_AES, KEY_TYPE_DES, KEY_TYPE_SM4, OBJ_KEYS, SLOT_LEN};

/// The byte repeated 16 times that an SM4 key's KCV encrypts (KCV = first 3 bytes of
/// SM4-ECB(key, 16 × this)).
///
/// L (tsm-gp.md §3.6 \[PROPOSAL\]): by analogy with AES (16 × `01`); kaoh/globalplatform's
/// 16 × `02` looks like a defect and is not copied.
pub const SM4_KCV_INPUT_BYTE: u8 = 0x01;

/// AES and SM4 key blocks are accepted with the key-length byte of GP Amendment D §7.2
/// (`88 11 10 <16 encrypted bytes>`) and without it (`88 10 <16 encrypted bytes>`, as the yubikit
/// host sends): a block whose length is a multiple of 16 cannot have the length byte, so the two
/// forms never collide. Responses and `encode_key_set` use the Amendment D form.
pub const KEY_LENGTH_BYTE_OPTIONAL: bool = true;

/// The byte repeated 16 times that an AES key's KCV encrypts (GP Amendment D §7.2: `01`).
const AES_KCV_INPUT_BYTE: u8 = 0x01;

/// The first three bytes of a key's check value.
pub fn kcv(ty: u8, key: &[u8]) -> Option<[u8; 3]> {
    let block = match ty {
        KEY_TYPE_DES => ecb_encrypt(&TdesKey::from_slice(key).ok()?, &[0u8; 8]).ok()?,
        KEY_TYPE_AES => {
            ecb_encrypt(&AesKey::from_slice(key).ok()?, &[AES_KCV_INPUT_BYTE; 16]).ok()?
        }
        KEY_TYPE_SM4 => {
            ecb_encrypt(&Sm4Key::from_slice(key).ok()?, &[SM4_KCV_INPUT_BYTE; 16]).ok()?
        }
        _ => return None,
    };
    block.get(..3)?.try_into().ok()
}

/// Decrypts one key value under the session's key-encryption key.
fn decrypt(session: &Session, protocol: Protocol, data: &[u8]) -> Option<Vec<u8>> {
    match (protocol, &session.keys.keys) {
        (Protocol::Scp02(_), _) => ecb_decrypt(session.channel.scp02_session_dek()?, data).ok(),
        (_, StaticKeys::Aes { dek, .. }) => cbc_decrypt(dek, &[0u8; 16], data).ok(),
        (_, StaticKeys::Sm4 { dek, .. }) => cbc_decrypt(dek, &[0u8; 16], data).ok(),
        _ => None,
    }
}

/// Parses one key block at the start of `data`: its clear value and the rest of `data`. The
/// block must have key type `expected`; its value is encrypted under `session` (of `protocol`).
fn key_block<'a>(
    session: &Session,
    protocol: Protocol,
    expected: u8,
    data: &'a [u8],
) -> Result<(u8, Vec<u8>, &'a [u8]), StatusWord> {
    let bad = StatusWord::WRONG_DATA;
    let [ty, len, rest @ ..] = data else {
        return Err(bad);
    };
    if *ty != expected || protocol_of_type(*ty).is_none() {
        return Err(bad);
    }
    let len = usize::from(*len);
    let block = rest.get(..len).ok_or(bad)?;
    let rest = &rest[len..];
    let (key_len, encrypted) = if *ty == KEY_TYPE_DES {
        (16, block)
    } else if block.len().is_multiple_of(16) {
        // Without the key-length byte (yubikit writes `88 10 <encrypted key>`): the key fills
        // the block ([`KEY_LENGTH_BYTE_OPTIONAL`]).
        (block.len(), block)
    } else {
        let (&n, enc) = block.split_first().ok_or(bad)?;
        (usize::from(n), enc)
    };
    let valid_len = match *ty {
        KEY_TYPE_DES | KEY_TYPE_SM4 => key_len == 16,
        _ => matches!(key_len, 16 | 24 | 32),
    };
    if !valid_len || encrypted.len() != key_len.div_ceil(16) * 16 {
        return Err(bad);
    }
    let clear = decrypt(session, protocol, encrypted).ok_or(bad)?;
    let clear = clear.get(..key_len).ok_or(bad)?.to_vec();
    let [0x03, k0, k1, k2, rest @ ..] = rest else {
        return Err(bad);
    };
    if kcv(*ty, &clear) != Some([*k0, *k1, *k2]) {
        return Err(bad);
    }
    Ok((*ty, clear, rest))
}

/// PUT KEY. Malformed key blocks or a wrong KCV give `6A80`, an unknown P1 key version
/// `6A88`, a full key table `6A84`, P1/P2 other than one key set `6A86`; the key table then
/// stays as it was.
pub(crate) fn put_key(
    ctx: &mut Context<'_>,
    protocol: Protocol,
    session: &Session,
    card_state: CardState,
    cmd: &CommandApdu,
) -> Result<Vec<u8>, StatusWord> {
    if card_state == CardState::CardLocked {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    if cmd.p1 & 0x80 != 0 || cmd.p2 != 0x81 {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    let new = decode_key_set(session, protocol, key_type_for(protocol), &cmd.data)?;
    store_key_set(ctx, cmd.p1, &new)
}

/// The key type a PUT KEY block of type `ty` is for (`None`: not a key set type).
fn protocol_of_type(ty: u8) -> Option<u8> {
    matches!(ty, KEY_TYPE_DES | KEY_TYPE_AES | KEY_TYPE_SM4).then_some(ty)
}

/// Decodes a PUT KEY data field (new KVN · three key blocks of type `ty`, encrypted under
/// `session`) into the key set; `6A80` for anything malformed or a wrong KCV.
pub(crate) fn decode_key_set(
    session: &Session,
    protocol: Protocol,
    ty: u8,
    data: &[u8],
) -> Result<KeySet, StatusWord> {
    let bad = StatusWord::WRONG_DATA;
    let (&new_version, mut rest) = data.split_first().ok_or(bad)?;
    if !(0x01..=0x7F).contains(&new_version) {
        return Err(bad);
    }
    let mut keys: Vec<Vec<u8>> = Vec::with_capacity(3);
    for _ in 0..3 {
        let (_, clear, r) = key_block(session, protocol, ty, rest)?;
        if keys.first().is_some_and(|k| k.len() != clear.len()) {
            return Err(bad);
        }
        keys.push(clear);
        rest = r;
    }
    if !rest.is_empty() {
        return Err(bad);
    }
    let [e, m, d] = [&keys[0], &keys[1], &keys[2]];
    state::key_set(new_version, ty, [e, m, d]).ok_or(bad)
}

/// Stores `new` in the key table: added when `replace` is `00`, else in place of version
/// `replace`. Answers new KVN · three KCVs. `6A80` for a version already used elsewhere, `6A88`
/// for an unknown `replace`, `6A84` when the table is full.
pub(crate) fn store_key_set(
    ctx: &mut Context<'_>,
    replace: u8,
    new: &KeySet,
) -> Result<Vec<u8>, StatusWord> {
    let bad = StatusWord::WRONG_DATA;
    let new_version = new.version;
    let ty = state::key_type(new);
    let slots = state::key_slots(ctx)?;
    let holder = |v: u8| {
        slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|k| k.version == v))
    };
    let slot = if replace == 0x00 {
        if holder(new_version).is_some() {
            return Err(bad);
        }
        slots
            .iter()
            .position(Option::is_none)
            .ok_or(StatusWord::NOT_ENOUGH_MEMORY)?
    } else {
        let slot = holder(replace).ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        if holder(new_version).is_some_and(|s| s != slot) {
            return Err(bad);
        }
        slot
    };
    let slot_bytes = state::encode_slot(new)?;
    ctx.write(OBJ_KEYS, slot * SLOT_LEN, &slot_bytes)?;
    let len = usize::from(slot_bytes[2]);
    let mut out = alloc::vec![new_version];
    for i in 0..3 {
        let at = 3 + i * 32;
        out.extend_from_slice(&kcv(ty, &slot_bytes[at..at + len]).ok_or(bad)?);
    }
    Ok(out)
}

/// Builds PUT KEY command data for a host (the inverse of the card's parsing): new KVN and the
/// three key blocks, encrypted as the card expects. `kek` is the SCP02 session DEK (SCP02) or the
/// current static key set (SCP03, SM4).
pub fn encode_key_set(new: &KeySet, kek: &KeyEncryption<'_>) -> Option<Vec<u8>> {
    let ty = state::key_type(new);
    let slot = state::encode_slot(new).ok()?;
    let len = usize::from(slot[2]);
    let mut out = alloc::vec![new.version];
    for i in 0..3 {
        let at = 3 + i * 32;
        let key = &slot[at..at + len];
        let mut padded = key.to_vec();
        padded.resize(len.div_ceil(16) * 16, 0);
        let enc = match (kek, ty) {
            (KeyEncryption::Scp02(dek), KEY_TYPE_DES) => ecb_encrypt(*dek, key).ok()?,
            (KeyEncryption::Static(StaticKeys::Aes { dek, .. }), KEY_TYPE_AES) => {
                ykt_crypto::cbc_encrypt(dek, &[0u8; 16], &padded).ok()?
            }
            (KeyEncryption::Static(StaticKeys::Sm4 { dek, .. }), KEY_TYPE_SM4) => {
                ykt_crypto::cbc_encrypt(dek, &[0u8; 16], &padded).ok()?
            }
            _ => return None,
        };
        out.push(ty);
        if ty == KEY_TYPE_DES {
            out.push(enc.len() as u8);
        } else {
            out.push(enc.len() as u8 + 1);
            out.push(len as u8);
        }
        out.extend_from_slice(&enc);
        out.push(0x03);
        out.extend_from_slice(&kcv(ty, key)?);
    }
    Some(out)
}

/// The key that encrypts PUT KEY key data, host side.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyEncryption<'a> {
    /// SCP02: the session DEK (`HostSession::scp02_session_dek`).
    Scp02(&'a TdesKey),
    /// SCP03 and SM4: the static keys of the session's key set (their K-DEK).
    Static(&'a StaticKeys),
}
