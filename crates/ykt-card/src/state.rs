//! The state file: encoding of a card's persistent state (layout in `Card::load_state`).

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

use crate::card::{Card, Instance};
use crate::entropy::Entropy;
use crate::error::{MalformedState, StateError};
use crate::store::{CRC32, Store};
use crate::{Aid, AppletFactory, Atr};

/// First bytes of every state file.
pub const MAGIC: [u8; 8] = *b"YKTCARD\0";
/// The version this code writes and reads.
pub const VERSION: u16 = 1;
/// Magic, version, total length.
const HEADER_LEN: usize = 8 + 2 + 4;
const CRC_LEN: usize = 4;

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_be_bytes());
}

pub(crate) fn encode(card: &Card) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    put_u16(&mut out, VERSION);
    put_u32(&mut out, 0); // total length, patched below
    put_u16(&mut out, card.next_namespace);
    out.extend_from_slice(&card.store.writes().to_be_bytes());
    let data = card.store.data_image();
    put_u32(&mut out, data.len());
    out.extend_from_slice(data);
    let journal = card.store.journal_image();
    put_u32(&mut out, journal.len());
    out.extend_from_slice(journal);
    put_u16(
        &mut out,
        u16::try_from(card.instances.len()).unwrap_or(u16::MAX),
    );
    for inst in &card.instances {
        put_u16(&mut out, inst.ns);
        // Kinds are short names; a longer one is cut to 255 bytes, which load reports.
        let kind = inst.kind.as_bytes();
        let kind = kind.get(..255).unwrap_or(kind);
        out.push((kind.len() & 0xFF) as u8);
        out.extend_from_slice(kind);
        let aid = inst.aid.as_bytes();
        out.push((aid.len() & 0xFF) as u8);
        out.extend_from_slice(aid);
        put_u32(&mut out, inst.params.len());
        out.extend_from_slice(&inst.params);
    }
    let total = out.len() + CRC_LEN;
    if let Some(len_field) = out.get_mut(10..14) {
        len_field.copy_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    }
    let crc = CRC32.checksum(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// A cursor over the checksummed body.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(StateError::Malformed(MalformedState::FieldOverrun))?;
        let out = self
            .bytes
            .get(self.at..end)
            .ok_or(StateError::Malformed(MalformedState::FieldOverrun))?;
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn u16(&mut self) -> Result<u16, StateError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<usize, StateError> {
        let b = self.take(4)?;
        usize::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .map_err(|_| StateError::Malformed(MalformedState::FieldOverrun))
    }

    fn u64(&mut self) -> Result<u64, StateError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

pub(crate) fn decode(
    bytes: &[u8],
    atr: Atr,
    entropy: Box<dyn Entropy + Send>,
    factory: &dyn AppletFactory,
) -> Result<Card, StateError> {
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes.get(..magic_len) != MAGIC.get(..magic_len) {
        return Err(StateError::NotAStateFile);
    }
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(StateError::Truncated);
    }
    let total = bytes
        .get(10..14)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .and_then(|t| usize::try_from(t).ok())
        .ok_or(StateError::Truncated)?;
    if bytes.len() < total {
        return Err(StateError::Truncated);
    }
    if bytes.len() > total {
        return Err(StateError::Malformed(MalformedState::TrailingBytes));
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if CRC32.checksum(body) != crc {
        return Err(StateError::ChecksumMismatch);
    }
    let version = u16::from_be_bytes([body[8], body[9]]);
    if version != VERSION {
        return Err(StateError::UnsupportedVersion(version));
    }
    let mut r = Reader {
        bytes: body,
        at: HEADER_LEN,
    };
    let next_namespace = r.u16()?;
    let writes = r.u64()?;
    let data_len = r.u32()?;
    let data = r.take(data_len)?.to_vec();
    let journal_len = r.u32()?;
    let journal = r.take(journal_len)?.to_vec();
    let count = r.u16()?;
    let mut entries = Vec::new();
    let mut namespaces = BTreeSet::new();
    let mut aids = BTreeSet::new();
    for _ in 0..count {
        let ns = r.u16()?;
        let kind_len = usize::from(r.u8()?);
        let kind = core::str::from_utf8(r.take(kind_len)?)
            .map_err(|_| StateError::Malformed(MalformedState::InvalidKind))?;
        let aid_len = usize::from(r.u8()?);
        let aid = Aid::new(r.take(aid_len)?)
            .map_err(|_| StateError::Malformed(MalformedState::InvalidAid))?;
        let params_len = r.u32()?;
        let params = r.take(params_len)?.to_vec();
        if ns == 0 || ns >= next_namespace {
            return Err(StateError::Malformed(MalformedState::NamespaceOutOfRange));
        }
        if !namespaces.insert(ns) || !aids.insert(aid.clone()) {
            return Err(StateError::Malformed(MalformedState::DuplicateApplet));
        }
        entries.push((ns, String::from(kind), aid, params));
    }
    if r.at != body.len() {
        return Err(StateError::Malformed(MalformedState::BodyTrailingBytes));
    }
    let store = Store::from_parts(data, journal, writes)
        .map_err(|_| StateError::Malformed(MalformedState::EepromImage))?;
    let mut instances = Vec::with_capacity(entries.len());
    for (ns, kind, aid, params) in entries {
        let applet = factory
            .create(&kind, &aid, &params)
            .ok_or_else(|| StateError::UnknownApplet(kind.clone()))?;
        if applet.aid() != &aid {
            return Err(StateError::Malformed(MalformedState::AidMismatch));
        }
        instances.push(Instance {
            applet,
            kind,
            aid,
            params,
            ns,
            selectable: true,
            manager: false,
        });
    }
    let mut card = Card::from_parts(atr, entropy, store, instances, next_namespace);
    // Flags and content changes a torn command left committed come from the store's records
    // (the `manage` module); a pending journal is recovered, and reconciled again, at power-on.
    card.reconcile(Some(factory));
    Ok(card)
}
