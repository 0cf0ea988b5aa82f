//! The ISD's persistent objects and their encoding (explicit bytes, no serde).
//!
//! ```text
//! OBJ_LIFE_CYCLE  1 byte   card life cycle state (CardState coding)
//! OBJ_SEQUENCE    4 bytes  SCP sequence counter, big-endian (last value sent)
//! OBJ_KEYS        KEY_SLOTS × (KVN · key type · key length · K-ENC[32] · K-MAC[32] · K-DEK[32]);
//!                 KVN 00 = empty slot
//! OBJ_REGISTRY    REGISTRY_SLOTS × (AID length · AID[16] · life cycle · privileges[3]);
//!                 AID length 00 = empty slot
//! OBJ_IDENTITY    KDD[10] · IIN length · IIN[16] · CIN length · CIN[16] · CPLC[42]
//! ```

use alloc::vec::Vec;

use ykt_apdu::StatusWord;
use ykt_card::{Aid, Context, ObjectId};
use ykt_crypto::{AesKey, Sm4Key, TdesKey};
use ykt_scp::{KeySet, StaticKeys};

use crate::life_cycle::{ApplicationState, CardState};

pub(crate) const OBJ_LIFE_CYCLE: ObjectId = ObjectId(1);
pub(crate) const OBJ_SEQUENCE: ObjectId = ObjectId(2);
pub(crate) const OBJ_KEYS: ObjectId = ObjectId(3);
pub(crate) const OBJ_REGISTRY: ObjectId = ObjectId(4);
pub(crate) const OBJ_IDENTITY: ObjectId = ObjectId(5);

/// How many key versions the ISD holds.
pub const KEY_SLOTS: usize = 4;
const KEY_MAX: usize = 32;
pub(crate) const SLOT_LEN: usize = 3 + 3 * KEY_MAX;

/// How many applications the registry holds.
pub const REGISTRY_SLOTS: usize = 8;
pub(crate) const ENTRY_LEN: usize = 1 + 16 + 1 + 3;

/// CPLC length (GP §H.6, without the `9F7F 2A` header).
pub const CPLC_LEN: usize = 42;
pub(crate) const IDENTITY_LEN: usize = 10 + 17 + 17 + CPLC_LEN;

/// PUT KEY key type of DES (triple-DES) keys (GP §11.1.8).
pub const KEY_TYPE_DES: u8 = 0x80;
/// PUT KEY key type of AES keys (GP §11.1.8).
pub const KEY_TYPE_AES: u8 = 0x88;
/// PUT KEY key type of SM4 keys: the SM4 channel's (L, tsm-gp.md §3.6; the one place is
/// `ykt_scp::sm4::SM4_CHANNEL`).
pub const KEY_TYPE_SM4: u8 = ykt_scp::sm4::SM4_CHANNEL.key_type;

/// One application in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationEntry {
    /// Its AID.
    pub aid: Aid,
    /// Its life cycle state.
    pub state: ApplicationState,
    /// Its privileges (GP §11.1.2, three bytes; tsm-gp.md §3.8).
    pub privileges: [u8; 3],
}

pub(crate) fn card_state(ctx: &Context<'_>) -> Result<CardState, StatusWord> {
    let b = ctx.read(OBJ_LIFE_CYCLE)?;
    b.first()
        .copied()
        .and_then(CardState::from_byte)
        .ok_or(StatusWord::UNKNOWN)
}

pub(crate) fn sequence_counter(ctx: &Context<'_>) -> Result<u32, StatusWord> {
    let b = ctx.read(OBJ_SEQUENCE)?;
    let a: [u8; 4] = b.try_into().map_err(|_| StatusWord::UNKNOWN)?;
    Ok(u32::from_be_bytes(a))
}

/// The key type byte of a key set.
pub(crate) fn key_type(keys: &KeySet) -> u8 {
    match keys.keys {
        StaticKeys::Tdes { .. } => KEY_TYPE_DES,
        StaticKeys::Aes { .. } => KEY_TYPE_AES,
        StaticKeys::Sm4 { .. } => KEY_TYPE_SM4,
    }
}

/// The three keys' bytes.
fn key_bytes(keys: &KeySet) -> [&[u8]; 3] {
    match &keys.keys {
        StaticKeys::Tdes { enc, mac, dek } => [enc.expose(), mac.expose(), dek.expose()],
        StaticKeys::Aes { enc, mac, dek } => [enc.expose(), mac.expose(), dek.expose()],
        StaticKeys::Sm4 { enc, mac, dek } => [enc.expose(), mac.expose(), dek.expose()],
    }
}

/// The length of each key of a key set, in bytes.
pub(crate) fn key_len(keys: &KeySet) -> usize {
    key_bytes(keys)[0].len()
}

pub(crate) fn encode_slot(keys: &KeySet) -> Result<[u8; SLOT_LEN], StatusWord> {
    let mut slot = [0u8; SLOT_LEN];
    let bytes = key_bytes(keys);
    let len = bytes[0].len();
    if len > KEY_MAX || bytes.iter().any(|b| b.len() != len) {
        return Err(StatusWord::WRONG_DATA);
    }
    slot[0] = keys.version;
    slot[1] = key_type(keys);
    slot[2] = len as u8;
    for (i, b) in bytes.iter().enumerate() {
        let at = 3 + i * KEY_MAX;
        slot[at..at + len].copy_from_slice(b);
    }
    Ok(slot)
}

/// A key set from its type, version and three key values; `None` for a type or length the type
/// does not allow.
pub(crate) fn key_set(version: u8, ty: u8, keys: [&[u8]; 3]) -> Option<KeySet> {
    let [e, m, d] = keys;
    Some(match ty {
        KEY_TYPE_DES => KeySet::tdes(
            version,
            TdesKey::from_slice(e).ok()?,
            TdesKey::from_slice(m).ok()?,
            TdesKey::from_slice(d).ok()?,
        ),
        KEY_TYPE_AES => KeySet::aes(
            version,
            AesKey::from_slice(e).ok()?,
            AesKey::from_slice(m).ok()?,
            AesKey::from_slice(d).ok()?,
        ),
        KEY_TYPE_SM4 => KeySet::sm4(
            version,
            Sm4Key::from_slice(e).ok()?,
            Sm4Key::from_slice(m).ok()?,
            Sm4Key::from_slice(d).ok()?,
        ),
        _ => return None,
    })
}

fn decode_slot(slot: &[u8]) -> Option<KeySet> {
    let (&version, rest) = slot.split_first()?;
    if version == 0 {
        return None;
    }
    let (&ty, rest) = rest.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    let k = |i: usize| rest.get(i * KEY_MAX..i * KEY_MAX + len);
    key_set(version, ty, [k(0)?, k(1)?, k(2)?])
}

/// The key slots in order (`None` = empty).
pub(crate) fn key_slots(ctx: &Context<'_>) -> Result<Vec<Option<KeySet>>, StatusWord> {
    let b = ctx.read(OBJ_KEYS)?;
    Ok(b.chunks_exact(SLOT_LEN).map(decode_slot).collect())
}

fn decode_entry(e: &[u8]) -> Option<ApplicationEntry> {
    let len = usize::from(*e.first()?);
    if len == 0 {
        return None;
    }
    let aid = Aid::new(e.get(1..1 + len)?).ok()?;
    let state = ApplicationState(*e.get(17)?);
    let privileges = e.get(18..21)?.try_into().ok()?;
    Some(ApplicationEntry {
        aid,
        state,
        privileges,
    })
}

pub(crate) fn encode_entry(entry: &ApplicationEntry) -> [u8; ENTRY_LEN] {
    let mut e = [0u8; ENTRY_LEN];
    let aid = entry.aid.as_bytes();
    // An Aid has 5 to 16 bytes, so it fits the 16-byte field.
    let len = aid.len().min(16);
    e[0] = len as u8;
    e[1..1 + len].copy_from_slice(&aid[..len]);
    e[17] = entry.state.0;
    e[18..21].copy_from_slice(&entry.privileges);
    e
}

/// The registry's entries with their slot numbers.
pub(crate) fn registry(ctx: &Context<'_>) -> Result<Vec<(usize, ApplicationEntry)>, StatusWord> {
    let b = ctx.read(OBJ_REGISTRY)?;
    Ok(b.chunks_exact(ENTRY_LEN)
        .enumerate()
        .filter_map(|(i, e)| decode_entry(e).map(|e| (i, e)))
        .collect())
}

/// The identity object's fields.
pub(crate) struct Identity {
    pub(crate) kdd: [u8; 10],
    pub(crate) iin: Vec<u8>,
    pub(crate) cin: Vec<u8>,
    pub(crate) cplc: Vec<u8>,
}

pub(crate) fn encode_identity(
    kdd: &[u8; 10],
    iin: &[u8],
    cin: &[u8],
    cplc: &[u8; CPLC_LEN],
) -> Result<[u8; IDENTITY_LEN], StatusWord> {
    if iin.len() > 16 || cin.len() > 16 {
        return Err(StatusWord::WRONG_DATA);
    }
    let mut b = [0u8; IDENTITY_LEN];
    b[..10].copy_from_slice(kdd);
    b[10] = iin.len() as u8;
    b[11..11 + iin.len()].copy_from_slice(iin);
    b[27] = cin.len() as u8;
    b[28..28 + cin.len()].copy_from_slice(cin);
    b[44..].copy_from_slice(cplc);
    Ok(b)
}

pub(crate) fn identity(ctx: &Context<'_>) -> Result<Identity, StatusWord> {
    let b = ctx.read(OBJ_IDENTITY)?;
    let bad = StatusWord::UNKNOWN;
    let kdd = b.get(..10).ok_or(bad)?.try_into().map_err(|_| bad)?;
    let iin_len = usize::from(*b.get(10).ok_or(bad)?);
    let cin_len = usize::from(*b.get(27).ok_or(bad)?);
    Ok(Identity {
        kdd,
        iin: b.get(11..11 + iin_len).ok_or(bad)?.to_vec(),
        cin: b.get(28..28 + cin_len).ok_or(bad)?.to_vec(),
        cplc: b.get(44..).ok_or(bad)?.to_vec(),
    })
}
