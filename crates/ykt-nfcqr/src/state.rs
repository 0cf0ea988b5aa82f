//! The persistent objects of one instance and their fixed-length encodings (layout table in the
//! crate documentation). Every object is created at installation with its final length; a
//! command changes them only through the context, so all its writes commit together.

use alloc::vec::Vec;

use ykt_apdu::StatusWord;
use ykt_card::{Context, ObjectId};
use ykt_crypto::Sm2PrivateKey;
use ykt_qr::{Authorisation, RootKeyRecord, Version};
use zeroize::Zeroizing;

/// The user key pair: present flag, secret scalar, public key `04 ‖ X ‖ Y`.
pub(crate) const OBJ_KEY: ObjectId = ObjectId(0x0100);
/// The stored issuer authorisation: present flag, length, fields 1–15.
pub(crate) const OBJ_AUTHORISATION: ObjectId = ObjectId(0x0101);
/// The usage counters and the last generation time.
pub(crate) const OBJ_COUNTERS: ObjectId = ObjectId(0x0102);
/// The root CA keys the applet checks signature A against.
pub(crate) const OBJ_ROOT_KEYS: ObjectId = ObjectId(0x0103);

/// Length of the key object.
pub(crate) const KEY_LEN: usize = 1 + 32 + 65;
/// The longest blob of fields 1–15: 263 + N with N = 32 (qr-code.md §1.1).
pub const MAX_AUTHORISATION_LEN: usize = 263 + ykt_qr::code::MAX_ISSUER_DATA;
/// Length of the authorisation object.
pub(crate) const AUTHORISATION_LEN: usize = 1 + 2 + MAX_AUTHORISATION_LEN;
/// Length of the counters object.
pub(crate) const COUNTERS_LEN: usize = 20;
/// Bytes per root key entry: version ‖ the 144-byte record of qr-code.md §2.3.
pub(crate) const ROOT_ENTRY_LEN: usize = 1 + RootKeyRecord::LEN;

const PRESENT: u8 = 0x01;

/// The user key pair, loaded for one command. The secret is wiped on drop (by
/// [`Sm2PrivateKey`]).
pub(crate) struct UserKey {
    pub(crate) private: Sm2PrivateKey,
}

impl UserKey {
    /// The stored key, `None` when the applet has none (never generated, or reset).
    pub(crate) fn load(ctx: &Context<'_>) -> Result<Option<UserKey>, StatusWord> {
        let obj = ctx.read(OBJ_KEY)?;
        if obj.first() != Some(&PRESENT) {
            return Ok(None);
        }
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(obj.get(1..33).ok_or(StatusWord::UNKNOWN)?);
        // A stored scalar that is no key is a damaged store, not a user error.
        let private = Sm2PrivateKey::from_bytes(&scalar).map_err(|_| StatusWord::UNKNOWN)?;
        Ok(Some(UserKey { private }))
    }

    /// Stages `private` as the applet's key.
    pub(crate) fn store(ctx: &mut Context<'_>, private: &Sm2PrivateKey) -> Result<(), StatusWord> {
        let mut obj = Zeroizing::new([0u8; KEY_LEN]);
        obj[0] = PRESENT;
        obj[1..33].copy_from_slice(private.expose().as_ref());
        obj[33..].copy_from_slice(&private.public_key().to_bytes());
        ctx.write(OBJ_KEY, 0, obj.as_ref())
    }

    /// Stages the removal of the key (all bytes zero).
    pub(crate) fn erase(ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        ctx.write(OBJ_KEY, 0, &[0u8; KEY_LEN])
    }

    /// Field 10's form of the public key: `02`/`03` ‖ X.
    pub(crate) fn compressed(&self) -> [u8; 33] {
        ykt_qr::compress_public_key(self.private.public_key())
    }

    /// `04 ‖ X ‖ Y`.
    pub(crate) fn uncompressed(&self) -> [u8; 65] {
        self.private.public_key().to_bytes()
    }
}

/// The stored authorisation, `None` when there is none.
pub(crate) fn load_authorisation(ctx: &Context<'_>) -> Result<Option<Vec<u8>>, StatusWord> {
    let obj = ctx.read(OBJ_AUTHORISATION)?;
    if obj.first() != Some(&PRESENT) {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([
        obj.get(1).copied().unwrap_or(0),
        obj.get(2).copied().unwrap_or(0),
    ]));
    obj.get(3..3 + len)
        .map(|b| Some(b.to_vec()))
        .ok_or(StatusWord::UNKNOWN)
}

/// The stored authorisation, decoded.
pub(crate) fn decode_authorisation(blob: &[u8]) -> Result<Authorisation, StatusWord> {
    // Only blobs that decoded were stored, so a failure here is a damaged store.
    Authorisation::decode(blob).map_err(|_| StatusWord::UNKNOWN)
}

/// Stages `blob` as the stored authorisation.
pub(crate) fn store_authorisation(ctx: &mut Context<'_>, blob: &[u8]) -> Result<(), StatusWord> {
    if blob.len() > MAX_AUTHORISATION_LEN {
        return Err(StatusWord::WRONG_LENGTH);
    }
    let mut obj = [0u8; AUTHORISATION_LEN];
    obj[0] = PRESENT;
    obj[1..3].copy_from_slice(&(blob.len() as u16).to_be_bytes());
    obj[3..3 + blob.len()].copy_from_slice(blob);
    ctx.write(OBJ_AUTHORISATION, 0, &obj)
}

/// Stages the removal of the authorisation.
pub(crate) fn erase_authorisation(ctx: &mut Context<'_>) -> Result<(), StatusWord> {
    ctx.write(OBJ_AUTHORISATION, 0, &[0u8; AUTHORISATION_LEN])
}

/// The usage counters (crate documentation, "Persistent layout").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Codes signed under the stored authorisation.
    pub codes_under_authorisation: u32,
    /// Codes signed over the instance's life.
    pub codes_total: u32,
    /// The latest generation time the applet has signed (0 before the first code): the card's
    /// only notion of the time.
    pub last_generation_time: u32,
    /// Authorisations stored over the instance's life (saturating).
    pub authorisations_stored: u16,
    /// Key pairs generated over the instance's life (saturating).
    pub key_pairs_generated: u16,
}

impl Counters {
    /// The 20-byte object.
    pub(crate) fn encode(&self) -> [u8; COUNTERS_LEN] {
        let mut b = [0u8; COUNTERS_LEN];
        b[0..4].copy_from_slice(&self.codes_under_authorisation.to_be_bytes());
        b[4..8].copy_from_slice(&self.codes_total.to_be_bytes());
        b[8..12].copy_from_slice(&self.last_generation_time.to_be_bytes());
        b[12..14].copy_from_slice(&self.authorisations_stored.to_be_bytes());
        b[14..16].copy_from_slice(&self.key_pairs_generated.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Counters> {
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
        };
        let u16_at = |at: usize| -> Option<u16> {
            Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
        };
        Some(Counters {
            codes_under_authorisation: u32_at(0)?,
            codes_total: u32_at(4)?,
            last_generation_time: u32_at(8)?,
            authorisations_stored: u16_at(12)?,
            key_pairs_generated: u16_at(14)?,
        })
    }

    /// The stored counters.
    pub(crate) fn load(ctx: &Context<'_>) -> Result<Counters, StatusWord> {
        Counters::decode(ctx.read(OBJ_COUNTERS)?).ok_or(StatusWord::UNKNOWN)
    }

    /// Stages the counters.
    pub(crate) fn store(&self, ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        ctx.write(OBJ_COUNTERS, 0, &self.encode())
    }
}

/// The root key object for `roots`: count ‖ (version ‖ record)*.
pub(crate) fn encode_root_keys(roots: &[(Version, RootKeyRecord)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + roots.len() * ROOT_ENTRY_LEN);
    out.push((roots.len() & 0xFF) as u8);
    for (version, record) in roots {
        out.push(version.value());
        out.extend_from_slice(&record.encode());
    }
    out
}

/// What the applet holds for signature A of a certificate.
pub(crate) enum RootLookup {
    /// No root keys were personalised: signature A is left to the terminal.
    NoneHeld,
    /// Root keys are held, but none for this (version, index).
    Missing,
    /// The record for (version, index).
    Found(RootKeyRecord),
}

/// The root key record the applet holds for (version, index).
pub(crate) fn root_key(
    ctx: &Context<'_>,
    version: Version,
    index: u8,
) -> Result<RootLookup, StatusWord> {
    let obj = ctx.read(OBJ_ROOT_KEYS)?;
    let count = usize::from(obj.first().copied().unwrap_or(0));
    if count == 0 {
        return Ok(RootLookup::NoneHeld);
    }
    for entry in obj
        .get(1..)
        .unwrap_or(&[])
        .chunks_exact(ROOT_ENTRY_LEN)
        .take(count)
    {
        if entry.first() != Some(&version.value()) {
            continue;
        }
        // Records were checked at personalisation, so a failure here is a damaged store.
        let record = RootKeyRecord::decode(entry.get(1..).unwrap_or(&[]))
            .map_err(|_| StatusWord::UNKNOWN)?;
        if record.index == index {
            return Ok(RootLookup::Found(record));
        }
    }
    Ok(RootLookup::Missing)
}
