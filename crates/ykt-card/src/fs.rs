//! ISO/IEC 7816-4 elementary files of an applet instance (§7.1 structures, §11.2–11.4
//! commands).
//!
//! An applet declares its EFs once, at installation, with [`Files::create_ef`]. Each EF is two
//! persistent objects in the applet's namespace: a 12-byte descriptor and the body. The
//! dispatcher routes interindustry file commands to [`Files::process`] before the applet sees
//! them; applets use the helpers ([`Files::read_binary`], [`Files::append_cyclic`], …), which
//! ignore access conditions, for files they maintain themselves (e.g. a transaction log).
//!
//! Commands handled by [`Files::process`] (class `0X` without secure messaging only; a
//! proprietary class or secure messaging bits return `None`, so the applet handles them):
//!
//! | command | forms | notes |
//! |---|---|---|
//! | SELECT `A4` | P1 `00`/`02`, data = FID | selects an EF of this applet; no response data |
//! | READ BINARY `B0` | P1 b8=1: SFI = P1 b5..b1, offset = P2; else offset = P1P2 on the current EF | |
//! | UPDATE BINARY `D6` | same addressing | |
//! | READ RECORD `B2` | P2 = SFI<<3 ‖ `100`, P1 = record number (1 = newest in a cyclic EF) | SFI 0 = current EF |
//! | UPDATE RECORD `DC` | same addressing | data must be exactly one record |
//! | APPEND RECORD `E2` | P1 = `00`, P2 = SFI<<3 ‖ `000` | cyclic: overwrites the oldest when full |
//!
//! Deliberate simplifications: P1 = `00` in READ/UPDATE RECORD ("current record") and record
//! addressing modes other than `100` are refused with `6A86` (no record pointer is kept);
//! SELECT of an EF returns no FCP; the EF is the current EF until another SELECT (or an SFI
//! reference, which also makes its EF current).
//!
//! Status words: `6A82` no such EF, `6986` no current EF, `6981` wrong file structure,
//! `6982` access condition, `6B00` offset outside the EF, `6700` wrong length (data or a write
//! past the end), `6A83` record not found, `6A84` linear EF full, `6A86` bad P1/P2.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};

use crate::context::store_sw;
use crate::store::{Key, Space, Store};

/// Who may use a file operation through the interindustry commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// Any terminal.
    Always,
    /// Nobody, not even the applet's own commands (the helpers still work for the applet).
    Never,
    /// Refused to interindustry commands (`6982`); only the applet's own commands change or read
    /// the file through the helpers.
    Applet,
}

/// The EF structure (ISO/IEC 7816-4 §7.1.1). Record lengths and counts are limited to one byte,
/// as in short APDUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EfStructure {
    /// Transparent EF of `size` bytes (initially zeros).
    Transparent {
        /// Size in bytes.
        size: u16,
    },
    /// Linear fixed EF: up to `records` records of `record_len` bytes, initially none.
    LinearFixed {
        /// Length of every record.
        record_len: u8,
        /// Maximum number of records.
        records: u8,
    },
    /// Cyclic EF: `records` slots of `record_len` bytes; record 1 is the newest; APPEND
    /// overwrites the oldest once full. Initially empty.
    Cyclic {
        /// Length of every record.
        record_len: u8,
        /// Number of slots.
        records: u8,
    },
}

/// Declaration of one EF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EfSpec {
    /// File identifier (not `3F00`, `3FFF` or `FFFF`).
    pub fid: u16,
    /// Short EF identifier, 1..=30.
    pub sfi: Option<u8>,
    /// Structure and size.
    pub structure: EfStructure,
    /// Condition for READ BINARY / READ RECORD.
    pub read: Access,
    /// Condition for UPDATE BINARY / UPDATE RECORD / APPEND RECORD.
    pub update: Access,
}

const META_LEN: usize = 12;
const NO_SFI: u8 = 0;

/// A descriptor as stored: `sfi · structure · a u16 · b u16 · read · update · count u16 · head u16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ef {
    fid: u16,
    sfi: u8,
    kind: Kind,
    read: Access,
    update: Access,
    /// Records present (record files).
    count: u16,
    /// Slot of the newest record (cyclic files).
    head: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Transparent { size: usize },
    Linear { record_len: usize, records: u16 },
    Cyclic { record_len: usize, records: u16 },
}

fn access_byte(a: Access) -> u8 {
    match a {
        Access::Always => 0,
        Access::Never => 1,
        Access::Applet => 2,
    }
}

fn access_from(b: u8) -> Option<Access> {
    match b {
        0 => Some(Access::Always),
        1 => Some(Access::Never),
        2 => Some(Access::Applet),
        _ => None,
    }
}

impl Ef {
    fn encode(&self) -> [u8; META_LEN] {
        let (s, a, b) = match self.kind {
            Kind::Transparent { size } => (1u8, size, 0u16),
            Kind::Linear {
                record_len,
                records,
            } => (2, record_len, records),
            Kind::Cyclic {
                record_len,
                records,
            } => (3, record_len, records),
        };
        let a = u16::try_from(a).unwrap_or(u16::MAX).to_be_bytes();
        let b = b.to_be_bytes();
        let c = self.count.to_be_bytes();
        let h = self.head.to_be_bytes();
        [
            self.sfi,
            s,
            a[0],
            a[1],
            b[0],
            b[1],
            access_byte(self.read),
            access_byte(self.update),
            c[0],
            c[1],
            h[0],
            h[1],
        ]
    }

    fn decode(fid: u16, m: &[u8]) -> Option<Ef> {
        let &[sfi, s, a0, a1, b0, b1, r, u, c0, c1, h0, h1] = m else {
            return None;
        };
        let a = usize::from(u16::from_be_bytes([a0, a1]));
        let b = u16::from_be_bytes([b0, b1]);
        let kind = match s {
            1 => Kind::Transparent { size: a },
            2 => Kind::Linear {
                record_len: a,
                records: b,
            },
            3 => Kind::Cyclic {
                record_len: a,
                records: b,
            },
            _ => return None,
        };
        Some(Ef {
            fid,
            sfi,
            kind,
            read: access_from(r)?,
            update: access_from(u)?,
            count: u16::from_be_bytes([c0, c1]),
            head: u16::from_be_bytes([h0, h1]),
        })
    }

    fn record_geometry(&self) -> Result<(usize, u16, bool), StatusWord> {
        match self.kind {
            Kind::Transparent { .. } => Err(StatusWord::COMMAND_NOT_ALLOWED),
            Kind::Linear {
                record_len,
                records,
            } => Ok((record_len, records, false)),
            Kind::Cyclic {
                record_len,
                records,
            } => Ok((record_len, records, true)),
        }
    }

    /// Slot index of record `n` (1-based, 1 = newest for cyclic), or `6A83`.
    fn slot(&self, n: u8) -> Result<usize, StatusWord> {
        let (_, records, cyclic) = self.record_geometry()?;
        let n = u16::from(n);
        if n == 0 || n > self.count || records == 0 {
            return Err(StatusWord::RECORD_NOT_FOUND);
        }
        Ok(if cyclic {
            usize::from((self.head + records - (n - 1)) % records)
        } else {
            usize::from(n - 1)
        })
    }
}

fn allowed(a: Access) -> Result<(), StatusWord> {
    match a {
        Access::Always => Ok(()),
        Access::Never | Access::Applet => Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED),
    }
}

/// The EFs of one applet instance, bound to the current command's transaction.
pub struct Files<'c> {
    store: &'c mut Store,
    ns: u16,
    current: &'c mut Option<u16>,
}

impl core::fmt::Debug for Files<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Files")
            .field("namespace", &self.ns)
            .field("current_ef", &self.current)
            .finish()
    }
}

impl<'c> Files<'c> {
    pub(crate) fn new(store: &'c mut Store, ns: u16, current: &'c mut Option<u16>) -> Self {
        Self { store, ns, current }
    }

    fn meta_key(&self, fid: u16) -> Key {
        Key {
            ns: self.ns,
            space: Space::FileMeta,
            id: fid,
        }
    }

    fn data_key(&self, fid: u16) -> Key {
        Key {
            ns: self.ns,
            space: Space::FileData,
            id: fid,
        }
    }

    fn by_fid(&self, fid: u16) -> Option<Ef> {
        Ef::decode(fid, self.store.read(self.meta_key(fid))?)
    }

    fn by_sfi(&self, sfi: u8) -> Option<Ef> {
        self.store
            .keys_in(self.ns, Space::FileMeta)
            .filter_map(|k| self.by_fid(k.id))
            .find(|ef| ef.sfi == sfi && sfi != NO_SFI)
    }

    fn ef_sfi(&self, sfi: u8) -> Result<Ef, StatusWord> {
        self.by_sfi(sfi).ok_or(StatusWord::FILE_NOT_FOUND)
    }

    fn save_meta(&mut self, ef: &Ef) -> Result<(), StatusWord> {
        let key = self.meta_key(ef.fid);
        self.store.write(key, 0, &ef.encode()).map_err(store_sw)
    }

    fn body(&self, ef: &Ef) -> Result<&[u8], StatusWord> {
        self.store
            .read(self.data_key(ef.fid))
            .ok_or(StatusWord::UNKNOWN)
    }

    fn write_body(&mut self, ef: &Ef, offset: usize, data: &[u8]) -> Result<(), StatusWord> {
        let key = self.data_key(ef.fid);
        self.store.write(key, offset, data).map_err(store_sw)
    }

    /// The current EF's FID, if any.
    pub fn current_ef(&self) -> Option<u16> {
        *self.current
    }

    /// Creates an EF (normally inside the installation's `init`). `6A89` when the FID or SFI is
    /// taken, `6A80` for an invalid FID, SFI or geometry.
    pub fn create_ef(&mut self, spec: EfSpec) -> Result<(), StatusWord> {
        if matches!(spec.fid, 0x3F00 | 0x3FFF | 0xFFFF) {
            return Err(StatusWord::WRONG_DATA);
        }
        let sfi = match spec.sfi {
            None => NO_SFI,
            Some(s @ 1..=30) => s,
            Some(_) => return Err(StatusWord::WRONG_DATA),
        };
        if self.by_fid(spec.fid).is_some() || (sfi != NO_SFI && self.by_sfi(sfi).is_some()) {
            return Err(StatusWord::FILE_ALREADY_EXISTS);
        }
        let (kind, body_len) = match spec.structure {
            EfStructure::Transparent { size } => (
                Kind::Transparent {
                    size: usize::from(size),
                },
                usize::from(size),
            ),
            EfStructure::LinearFixed {
                record_len,
                records,
            }
            | EfStructure::Cyclic {
                record_len,
                records,
            } => {
                if record_len == 0 || records == 0 {
                    return Err(StatusWord::WRONG_DATA);
                }
                let record_len = usize::from(record_len);
                let records = u16::from(records);
                let kind = if matches!(spec.structure, EfStructure::Cyclic { .. }) {
                    Kind::Cyclic {
                        record_len,
                        records,
                    }
                } else {
                    Kind::Linear {
                        record_len,
                        records,
                    }
                };
                (kind, record_len * usize::from(records))
            }
        };
        let ef = Ef {
            fid: spec.fid,
            sfi,
            kind,
            read: spec.read,
            update: spec.update,
            count: 0,
            head: 0,
        };
        let meta_key = self.meta_key(spec.fid);
        let data_key = self.data_key(spec.fid);
        self.store
            .create(meta_key, &ef.encode())
            .map_err(store_sw)?;
        self.store
            .create(data_key, &alloc::vec![0u8; body_len])
            .map_err(store_sw)
    }

    /// Handles the interindustry file commands listed in the module documentation; `None` for
    /// any other command (and for a proprietary class or secure messaging).
    pub fn process(&mut self, cmd: &CommandApdu) -> Option<Result<Vec<u8>, StatusWord>> {
        if cmd.cla & 0x8C != 0 {
            return None;
        }
        match cmd.ins {
            0xA4 if matches!(cmd.p1, 0x00 | 0x02) => Some(self.select(cmd)),
            0xB0 => Some(self.cmd_read_binary(cmd)),
            0xD6 => Some(self.cmd_update_binary(cmd)),
            0xB2 => Some(self.cmd_read_record(cmd)),
            0xDC => Some(self.cmd_update_record(cmd)),
            0xE2 => Some(self.cmd_append_record(cmd)),
            _ => None,
        }
    }

    /// SELECT by FID (ISO/IEC 7816-4 §11.2.2), EFs of this applet only.
    fn select(&mut self, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        if cmd.p2 & 0xF3 != 0 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let &[hi, lo] = cmd.data.as_slice() else {
            return Err(StatusWord::WRONG_LENGTH);
        };
        let fid = u16::from_be_bytes([hi, lo]);
        let ef = self.by_fid(fid).ok_or(StatusWord::FILE_NOT_FOUND)?;
        *self.current = Some(ef.fid);
        Ok(Vec::new())
    }

    /// Transparent addressing of READ/UPDATE BINARY: (EF, offset).
    fn binary_target(&mut self, p1: u8, p2: u8) -> Result<(Ef, usize), StatusWord> {
        let (ef, offset) = if p1 & 0x80 != 0 {
            let sfi = p1 & 0x1F;
            if p1 & 0x60 != 0 || sfi == 0 || sfi == 31 {
                return Err(StatusWord::INCORRECT_P1P2);
            }
            let ef = self.ef_sfi(sfi)?;
            *self.current = Some(ef.fid);
            (ef, usize::from(p2))
        } else {
            let fid = self.current.ok_or(StatusWord::NO_CURRENT_EF)?;
            let ef = self.by_fid(fid).ok_or(StatusWord::NO_CURRENT_EF)?;
            (ef, usize::from(u16::from_be_bytes([p1 & 0x7F, p2])))
        };
        match ef.kind {
            Kind::Transparent { .. } => Ok((ef, offset)),
            _ => Err(StatusWord::COMMAND_NOT_ALLOWED),
        }
    }

    /// READ BINARY (ISO/IEC 7816-4 §11.3.3). Returns min(Ne, bytes to the end); without Le, up
    /// to 256 bytes.
    fn cmd_read_binary(&mut self, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        if !cmd.data.is_empty() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let (ef, offset) = self.binary_target(cmd.p1, cmd.p2)?;
        allowed(ef.read)?;
        let ne = cmd.le.filter(|n| *n > 0).unwrap_or(256);
        self.read_ef(&ef, offset, None, ne)
    }

    fn read_ef(
        &self,
        ef: &Ef,
        offset: usize,
        exact: Option<usize>,
        ne: usize,
    ) -> Result<Vec<u8>, StatusWord> {
        let body = self.body(ef)?;
        if offset >= body.len() && !(offset == 0 && exact == Some(0)) {
            return Err(StatusWord::WRONG_P1P2);
        }
        let available = body.len() - offset;
        let n = match exact {
            Some(n) if n > available => return Err(StatusWord::WRONG_LENGTH),
            Some(n) => n,
            None => ne.min(available),
        };
        body.get(offset..offset + n)
            .map(<[u8]>::to_vec)
            .ok_or(StatusWord::UNKNOWN)
    }

    /// UPDATE BINARY (ISO/IEC 7816-4 §11.3.5).
    fn cmd_update_binary(&mut self, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        if cmd.data.is_empty() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let (ef, offset) = self.binary_target(cmd.p1, cmd.p2)?;
        allowed(ef.update)?;
        self.update_ef(&ef, offset, &cmd.data)?;
        Ok(Vec::new())
    }

    fn update_ef(&mut self, ef: &Ef, offset: usize, data: &[u8]) -> Result<(), StatusWord> {
        let size = self.body(ef)?.len();
        if offset > size {
            return Err(StatusWord::WRONG_P1P2);
        }
        if offset.checked_add(data.len()).is_none_or(|end| end > size) {
            return Err(StatusWord::WRONG_LENGTH);
        }
        self.write_body(ef, offset, data)
    }

    /// Record addressing (P2 = SFI<<3 ‖ mode): the EF, with the mode checked against `mode`.
    fn record_target(&mut self, p2: u8, mode: u8) -> Result<Ef, StatusWord> {
        if p2 & 0x07 != mode {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let ef = match p2 >> 3 {
            0 => {
                let fid = self.current.ok_or(StatusWord::NO_CURRENT_EF)?;
                self.by_fid(fid).ok_or(StatusWord::NO_CURRENT_EF)?
            }
            31 => return Err(StatusWord::INCORRECT_P1P2),
            sfi => self.ef_sfi(sfi)?,
        };
        *self.current = Some(ef.fid);
        ef.record_geometry()?;
        Ok(ef)
    }

    /// READ RECORD (ISO/IEC 7816-4 §11.4.3), by record number (P2 mode `100`).
    fn cmd_read_record(&mut self, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        if !cmd.data.is_empty() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        if cmd.p1 == 0 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let ef = self.record_target(cmd.p2, 0b100)?;
        allowed(ef.read)?;
        self.read_record_ef(&ef, cmd.p1)
    }

    fn read_record_ef(&self, ef: &Ef, n: u8) -> Result<Vec<u8>, StatusWord> {
        let (record_len, _, _) = ef.record_geometry()?;
        let slot = ef.slot(n)?;
        self.read_ef(ef, slot * record_len, Some(record_len), record_len)
    }

    /// UPDATE RECORD (ISO/IEC 7816-4 §11.4.5), by record number.
    fn cmd_update_record(&mut self, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        if cmd.p1 == 0 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let ef = self.record_target(cmd.p2, 0b100)?;
        allowed(ef.update)?;
        self.update_record_ef(&ef, cmd.p1, &cmd.data)?;
        Ok(Vec::new())
    }

    fn update_record_ef(&mut self, ef: &Ef, n: u8, data: &[u8]) -> Result<(), StatusWord> {
        let (record_len, _, _) = ef.record_geometry()?;
        if data.len() != record_len {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let slot = ef.slot(n)?;
        self.write_body(ef, slot * record_len, data)
    }

    /// APPEND RECORD (ISO/IEC 7816-4 §11.4.6).
    fn cmd_append_record(&mut self, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        if cmd.p1 != 0 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let ef = self.record_target(cmd.p2, 0b000)?;
        allowed(ef.update)?;
        self.append_record_ef(ef, &cmd.data)?;
        Ok(Vec::new())
    }

    fn append_record_ef(&mut self, mut ef: Ef, data: &[u8]) -> Result<(), StatusWord> {
        let (record_len, records, cyclic) = ef.record_geometry()?;
        if data.len() != record_len {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let slot = if cyclic {
            let slot = if ef.count == 0 {
                0
            } else {
                (ef.head + 1) % records
            };
            ef.head = slot;
            ef.count = (ef.count + 1).min(records);
            slot
        } else {
            if ef.count >= records {
                return Err(StatusWord::NOT_ENOUGH_MEMORY);
            }
            let slot = ef.count;
            ef.count += 1;
            slot
        };
        self.write_body(&ef, usize::from(slot) * record_len, data)?;
        self.save_meta(&ef)
    }

    /// Applet-side read of a transparent EF by SFI (no access check): exactly `len` bytes.
    pub fn read_binary(
        &mut self,
        sfi: u8,
        offset: usize,
        len: usize,
    ) -> Result<Vec<u8>, StatusWord> {
        let ef = self.ef_sfi(sfi)?;
        if !matches!(ef.kind, Kind::Transparent { .. }) {
            return Err(StatusWord::COMMAND_NOT_ALLOWED);
        }
        self.read_ef(&ef, offset, Some(len), len)
    }

    /// Applet-side write into a transparent EF by SFI (no access check).
    pub fn write_binary(&mut self, sfi: u8, offset: usize, data: &[u8]) -> Result<(), StatusWord> {
        let ef = self.ef_sfi(sfi)?;
        if !matches!(ef.kind, Kind::Transparent { .. }) {
            return Err(StatusWord::COMMAND_NOT_ALLOWED);
        }
        self.update_ef(&ef, offset, data)
    }

    /// Applet-side append to a cyclic EF by SFI (no access check): the record becomes record 1.
    pub fn append_cyclic(&mut self, sfi: u8, record: &[u8]) -> Result<(), StatusWord> {
        let ef = self.ef_sfi(sfi)?;
        if !matches!(ef.kind, Kind::Cyclic { .. }) {
            return Err(StatusWord::COMMAND_NOT_ALLOWED);
        }
        self.append_record_ef(ef, record)
    }

    /// Applet-side append to a linear fixed or cyclic EF by SFI (no access check).
    pub fn append_record(&mut self, sfi: u8, record: &[u8]) -> Result<(), StatusWord> {
        let ef = self.ef_sfi(sfi)?;
        self.append_record_ef(ef, record)
    }

    /// Applet-side read of record `n` (1 = newest in a cyclic EF) by SFI (no access check).
    pub fn read_record(&mut self, sfi: u8, n: u8) -> Result<Vec<u8>, StatusWord> {
        let ef = self.ef_sfi(sfi)?;
        self.read_record_ef(&ef, n)
    }

    /// Applet-side overwrite of record `n` by SFI (no access check).
    pub fn update_record(&mut self, sfi: u8, n: u8, data: &[u8]) -> Result<(), StatusWord> {
        let ef = self.ef_sfi(sfi)?;
        self.update_record_ef(&ef, n, data)
    }

    /// Number of records present in a record EF, by SFI.
    pub fn record_count(&mut self, sfi: u8) -> Result<u8, StatusWord> {
        let ef = self.ef_sfi(sfi)?;
        ef.record_geometry()?;
        Ok(u8::try_from(ef.count).unwrap_or(u8::MAX))
    }
}
