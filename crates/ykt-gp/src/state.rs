//! The security domains' persistent objects and their encoding (explicit bytes, no serde).
//!
//! Card-global objects (namespace 0, shared by every security domain through
//! `Context::card_objects`):
//!
//! ```text
//! G_LIFE_CYCLE  1 byte   card life cycle state (CardState coding)
//! G_REGISTRY    REGISTRY_SLOTS × entry; entry = kind (00 empty, 01 application,
//!               02 security domain, 03 executable load file) · AID LV[1+16] · life cycle ·
//!               privileges[3] · ELF AID LV[1+16] · associated SD AID LV[1+16]
//! G_PACKAGES    PACKAGE_SLOTS × (ELF AID LV[1+16] · version[2] · module count ·
//!               MODULE_SLOTS × (module AID LV[1+16] · kind LV[1+32])): the code the card can
//!               load (its built-in library)
//! G_IDENTITY    KDD[10] · IIN length · IIN[16] · CIN length · CIN[16] · CPLC[42]
//! G_OPTIONS     LFDB hash (01 SHA-256, 02 SM3)
//! G_DM          token key algorithm (00 none, 01 RSA, 02 SM2) · length u16 · token key
//!               (`dm::TokenKey::to_card_bytes`)[TOKEN_KEY_MAX] · receipt key type (00 none,
//!               01 AES, 02 SM4, 03 3DES) · receipt key[16] · confirmation counter u16
//! ```
//!
//! Each security domain's own objects (its namespace):
//!
//! ```text
//! OBJ_SEQUENCE  4 bytes  SCP sequence counter, big-endian (last value sent)
//! OBJ_KEYS      KEY_SLOTS × (KVN · key type · key length · K-ENC[32] · K-MAC[32] · K-DEK[32]);
//!               KVN 00 = empty slot
//! ```

use alloc::vec::Vec;

use ykt_apdu::StatusWord;
use ykt_card::{Aid, Context, ObjectId};
use ykt_crypto::{AesKey, Sm4Key, TdesKey};
use ykt_scp::{KeySet, StaticKeys};

use crate::life_cycle::{ApplicationState, CardState};

pub(crate) const G_LIFE_CYCLE: ObjectId = ObjectId(1);
pub(crate) const G_REGISTRY: ObjectId = ObjectId(2);
pub(crate) const G_PACKAGES: ObjectId = ObjectId(3);
pub(crate) const G_IDENTITY: ObjectId = ObjectId(4);
pub(crate) const G_OPTIONS: ObjectId = ObjectId(5);
pub(crate) const G_DM: ObjectId = ObjectId(6);
pub(crate) const OBJ_SEQUENCE: ObjectId = ObjectId(2);
pub(crate) const OBJ_KEYS: ObjectId = ObjectId(3);

/// How many key versions the ISD holds.
pub const KEY_SLOTS: usize = 4;
const KEY_MAX: usize = 32;
pub(crate) const SLOT_LEN: usize = 3 + 3 * KEY_MAX;

/// How many entries (applications, security domains, load files) the registry holds.
pub const REGISTRY_SLOTS: usize = 32;
pub(crate) const ENTRY_LEN: usize = 1 + 17 + 1 + 3 + 17 + 17;
/// How many load files (packages) the card's library holds.
pub const PACKAGE_SLOTS: usize = 4;
/// How many modules one package holds.
pub const MODULE_SLOTS: usize = 4;
const KIND_MAX: usize = 32;
const MODULE_LEN: usize = 17 + 1 + KIND_MAX;
pub(crate) const PACKAGE_LEN: usize = 17 + 2 + 1 + MODULE_SLOTS * MODULE_LEN;

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

/// The card-global objects (namespace 0) as a context (`6F00` when the applet is no card
/// manager: the card was set up wrongly).
pub(crate) fn global<'c>(ctx: &'c mut Context<'_>) -> Result<Context<'c>, StatusWord> {
    ctx.card_objects().map_err(|_| StatusWord::UNKNOWN)
}

pub(crate) fn card_state(g: &Context<'_>) -> Result<CardState, StatusWord> {
    let b = g.read(G_LIFE_CYCLE)?;
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

/// What a registry entry is (GP §5.3, §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Application = 1,
    SecurityDomain = 2,
    LoadFile = 3,
}

/// One registry entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) kind: EntryKind,
    pub(crate) aid: Aid,
    pub(crate) state: u8,
    pub(crate) privileges: [u8; 3],
    /// The load file an application or SD was installed from.
    pub(crate) elf: Option<Aid>,
    /// The associated security domain (for a load file: the SD it was loaded through).
    pub(crate) sd: Option<Aid>,
}

fn put_lv(out: &mut [u8], v: Option<&Aid>) {
    let b = v.map_or(&[][..], Aid::as_bytes);
    let n = b.len().min(16);
    out[0] = n as u8;
    out[1..1 + n].copy_from_slice(&b[..n]);
}

fn get_lv(b: &[u8]) -> Option<Option<Aid>> {
    let n = usize::from(*b.first()?);
    if n == 0 {
        return Some(None);
    }
    Aid::new(b.get(1..1 + n)?).ok().map(Some)
}

fn decode_entry(e: &[u8]) -> Option<Entry> {
    let kind = match e.first()? {
        1 => EntryKind::Application,
        2 => EntryKind::SecurityDomain,
        3 => EntryKind::LoadFile,
        _ => return None,
    };
    Some(Entry {
        kind,
        aid: get_lv(e.get(1..18)?)??,
        state: *e.get(18)?,
        privileges: e.get(19..22)?.try_into().ok()?,
        elf: get_lv(e.get(22..39)?)?,
        sd: get_lv(e.get(39..56)?)?,
    })
}

pub(crate) fn encode_entry(entry: &Entry) -> [u8; ENTRY_LEN] {
    let mut e = [0u8; ENTRY_LEN];
    e[0] = entry.kind as u8;
    put_lv(&mut e[1..18], Some(&entry.aid));
    e[18] = entry.state;
    e[19..22].copy_from_slice(&entry.privileges);
    put_lv(&mut e[22..39], entry.elf.as_ref());
    put_lv(&mut e[39..56], entry.sd.as_ref());
    e
}

/// The registry's entries with their slot numbers (`g`: the card-global context).
pub(crate) fn registry(g: &Context<'_>) -> Result<Vec<(usize, Entry)>, StatusWord> {
    let b = g.read(G_REGISTRY)?;
    Ok(b.chunks_exact(ENTRY_LEN)
        .enumerate()
        .filter_map(|(i, e)| decode_entry(e).map(|e| (i, e)))
        .collect())
}

/// The entry for `aid`, with its slot.
pub(crate) fn find(g: &Context<'_>, aid: &[u8]) -> Result<Option<(usize, Entry)>, StatusWord> {
    Ok(registry(g)?
        .into_iter()
        .find(|(_, e)| e.aid.as_bytes() == aid))
}

/// Writes `entry` into slot `slot`.
pub(crate) fn put_entry(g: &mut Context<'_>, slot: usize, entry: &Entry) -> Result<(), StatusWord> {
    g.write(G_REGISTRY, slot * ENTRY_LEN, &encode_entry(entry))
}

/// Adds `entry` in the first free slot (`6A84` when full).
pub(crate) fn add_entry(g: &mut Context<'_>, entry: &Entry) -> Result<(), StatusWord> {
    let used: Vec<usize> = registry(g)?.into_iter().map(|(i, _)| i).collect();
    let slot = (0..REGISTRY_SLOTS)
        .find(|i| !used.contains(i))
        .ok_or(StatusWord::NOT_ENOUGH_MEMORY)?;
    put_entry(g, slot, entry)
}

/// Empties slot `slot`.
pub(crate) fn remove_entry(g: &mut Context<'_>, slot: usize) -> Result<(), StatusWord> {
    g.write(G_REGISTRY, slot * ENTRY_LEN, &[0; ENTRY_LEN])
}

/// A package of the card's library: a load file and the modules it holds (the code the card
/// can run, by library kind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// The executable load file's AID.
    pub elf: Aid,
    /// Its version (GET STATUS tag `CE`).
    pub version: [u8; 2],
    /// Its modules: module AID and the `ykt-card` library kind that implements it.
    pub modules: Vec<(Aid, alloc::string::String)>,
}

pub(crate) fn encode_packages(packages: &[Package]) -> Result<Vec<u8>, StatusWord> {
    if packages.len() > PACKAGE_SLOTS {
        return Err(StatusWord::WRONG_DATA);
    }
    let mut out = alloc::vec![0u8; PACKAGE_SLOTS * PACKAGE_LEN];
    for (p, slot) in packages.iter().zip(out.chunks_exact_mut(PACKAGE_LEN)) {
        if p.modules.len() > MODULE_SLOTS {
            return Err(StatusWord::WRONG_DATA);
        }
        put_lv(&mut slot[..17], Some(&p.elf));
        slot[17..19].copy_from_slice(&p.version);
        slot[19] = p.modules.len() as u8;
        for (m, (aid, kind)) in slot[20..].chunks_exact_mut(MODULE_LEN).zip(&p.modules) {
            if kind.len() > KIND_MAX {
                return Err(StatusWord::WRONG_DATA);
            }
            put_lv(&mut m[..17], Some(aid));
            m[17] = kind.len() as u8;
            m[18..18 + kind.len()].copy_from_slice(kind.as_bytes());
        }
    }
    Ok(out)
}

pub(crate) fn packages(g: &Context<'_>) -> Result<Vec<Package>, StatusWord> {
    let b = g.read(G_PACKAGES)?;
    let mut out = Vec::new();
    for slot in b.chunks_exact(PACKAGE_LEN) {
        let Some(Some(elf)) = get_lv(&slot[..17]) else {
            continue;
        };
        let n = usize::from(slot[19]).min(MODULE_SLOTS);
        let mut modules = Vec::new();
        for m in slot[20..].chunks_exact(MODULE_LEN).take(n) {
            let Some(Some(aid)) = get_lv(&m[..17]) else {
                return Err(StatusWord::UNKNOWN);
            };
            let kl = usize::from(m[17]).min(KIND_MAX);
            let kind = core::str::from_utf8(&m[18..18 + kl]).map_err(|_| StatusWord::UNKNOWN)?;
            modules.push((aid, alloc::string::String::from(kind)));
        }
        out.push(Package {
            elf,
            version: [slot[17], slot[18]],
            modules,
        });
    }
    Ok(out)
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

pub(crate) fn identity(g: &Context<'_>) -> Result<Identity, StatusWord> {
    let b = g.read(G_IDENTITY)?;
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

/// The longest token key in its card form (RSA-4096: 2 + 512 + 1 + 4).
pub(crate) const TOKEN_KEY_MAX: usize = 2 + 512 + 1 + 4;
pub(crate) const DM_LEN: usize = 1 + 2 + TOKEN_KEY_MAX + 1 + 16 + 2;
const DM_RECEIPT_AT: usize = 3 + TOKEN_KEY_MAX;
const DM_COUNTER_AT: usize = DM_RECEIPT_AT + 17;

/// The receipt key's type byte in `G_DM`.
pub(crate) fn receipt_type(alg: crate::dm::ReceiptAlgorithm) -> u8 {
    match alg {
        crate::dm::ReceiptAlgorithm::AesCmac => 0x01,
        crate::dm::ReceiptAlgorithm::Sm4Cmac => 0x02,
        _ => 0x03,
    }
}

pub(crate) fn encode_dm(
    token_key: Option<&crate::dm::TokenKey>,
    receipt: Option<(u8, &[u8; 16])>,
) -> Result<Vec<u8>, StatusWord> {
    let mut out = alloc::vec![0u8; DM_LEN];
    if let Some(key) = token_key {
        let bytes = key.to_card_bytes();
        if bytes.len() > TOKEN_KEY_MAX {
            return Err(StatusWord::WRONG_DATA);
        }
        out[0] = match key.algorithm() {
            crate::dm::TokenAlgorithm::Sm2Sm3 => 0x02,
            _ => 0x01,
        };
        out[1..3].copy_from_slice(&(bytes.len() as u16).to_be_bytes());
        out[3..3 + bytes.len()].copy_from_slice(&bytes);
    }
    if let Some((ty, key)) = receipt {
        out[DM_RECEIPT_AT] = ty;
        out[DM_RECEIPT_AT + 1..DM_RECEIPT_AT + 17].copy_from_slice(key);
    }
    Ok(out)
}

/// The token verification key (KVN 70), if the card has one.
pub(crate) fn token_key(g: &Context<'_>) -> Result<Option<crate::dm::TokenKey>, StatusWord> {
    let b = g.read(G_DM)?;
    let alg = match b.first() {
        Some(0x01) => crate::dm::TokenAlgorithm::RsaPkcs1v15Sha256,
        Some(0x02) => crate::dm::TokenAlgorithm::Sm2Sm3,
        _ => return Ok(None),
    };
    let len = usize::from(u16::from_be_bytes([b[1], b[2]]));
    let bytes = b.get(3..3 + len).ok_or(StatusWord::UNKNOWN)?;
    crate::dm::TokenKey::from_card_bytes(alg, bytes)
        .map(Some)
        .map_err(|_| StatusWord::UNKNOWN)
}

/// The receipt key (KVN 71) and the confirmation counter, if the card has the key.
pub(crate) fn receipt_key(
    g: &Context<'_>,
) -> Result<Option<(crate::dm::ReceiptKey, u16)>, StatusWord> {
    let b = g.read(G_DM)?;
    let key = b
        .get(DM_RECEIPT_AT + 1..DM_RECEIPT_AT + 17)
        .ok_or(StatusWord::UNKNOWN)?;
    let counter = u16::from_be_bytes([b[DM_COUNTER_AT], b[DM_COUNTER_AT + 1]]);
    let bad = StatusWord::UNKNOWN;
    let key = match b[DM_RECEIPT_AT] {
        0x01 => crate::dm::ReceiptKey::aes(AesKey::from_slice(key).map_err(|_| bad)?),
        0x02 => crate::dm::ReceiptKey::sm4(Sm4Key::from_slice(key).map_err(|_| bad)?),
        0x03 => crate::dm::ReceiptKey::tdes(TdesKey::from_slice(key).map_err(|_| bad)?)
            .map_err(|_| bad)?,
        _ => return Ok(None),
    };
    Ok(Some((key, counter)))
}

/// Stores the next confirmation counter (`6985` when it would wrap).
pub(crate) fn bump_confirmation_counter(
    g: &mut Context<'_>,
    counter: u16,
) -> Result<u16, StatusWord> {
    let next = counter
        .checked_add(1)
        .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
    g.write(G_DM, DM_COUNTER_AT, &next.to_be_bytes())?;
    Ok(next)
}
