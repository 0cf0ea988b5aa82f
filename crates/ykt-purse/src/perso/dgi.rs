//! The DGIs of purse personalisation and their wire form: every tag number lives here.
//!
//! \[PROPOSAL\] (L): the public material (tsm-gp.md §3.7, e-purse.md) defines the STORE DATA
//! structure (DGI = 2-byte tag, length 1 byte or `FF` + 2 bytes, value) but no DGI layout for
//! the transit purse. This layout is ours, modelled on EMV CPS practice: file DGIs are
//! "SFI ‖ record" (`00` = the whole transparent file), secrets sit in the `8xxx` range and
//! must arrive in blocks the security domain decrypted (P1 b7–b6 = `11`), plain values in
//! `9xxx`. The table, with the reasons, is `docs/purse-dgi.md`.
//!
//! | DGI | Content | Length | Encrypted | Mandatory |
//! |---|---|---|---|---|
//! | [`EF15`] `1500` | EF15, public application data | 30 | no | yes |
//! | [`EF16`] `1600` | EF16, cardholder data | 55 | no | yes |
//! | [`EF17`] `1700` | EF17, management data | 60 | no | yes |
//! | [`EF1A_FIRST`]`..=`[`EF1A_LAST`] `1A01`–`1A04` | EF1A record *n* | 128 | no | no (default: zero, *n* in byte 1) |
//! | [`PURSE`] `9101` | balance (4) · online counter (2) · offline counter (2) | 8 | no | yes |
//! | [`PIN`] `8010` | PIN, packed BCD (`F`-padded last nibble) | 2–6 | yes | yes |
//! | [`KEY`] `8000` | usage (1) · index (1) · version (1) · algorithm (6) · card key (16) | 25 | yes | yes, ≥ 1, repeatable |
//!
//! Key usage codes: `01` DLK, `02` DPK, `03` DTK, `04` DAMK, `05` DPUK, `06` DRPK. Algorithm
//! (6 bytes, the key file's own encoding, [`crate::keys`]): `00 00 00 00 00 00` = 3DES;
//! `01 id div pad mac tac` = SM4 with the algorithm id INITIALIZE returns and the rule codes
//! div `00` (DIV ‖ ¬DIV), pad `00` method 2 / `01` zeros, mac `00` first four / `01` left ⊕
//! right, tac `00` DTK / `01` halves XOR zero-padded.

use alloc::vec::Vec;

/// EF15, public application basic data (30 bytes, e-purse.md §2).
pub const EF15: u16 = 0x1500;
/// EF16, cardholder data (55 bytes).
pub const EF16: u16 = 0x1600;
/// EF17, management data (60 bytes).
pub const EF17: u16 = 0x1700;
/// EF1A record 1 (128 bytes); records 2.. follow up to [`EF1A_LAST`].
pub const EF1A_FIRST: u16 = 0x1A01;
/// EF1A record [`crate::files::EF1A_RECORDS`].
pub const EF1A_LAST: u16 = 0x1A00 | crate::files::EF1A_RECORDS as u16;
/// Initial balance and counters (8 bytes).
pub const PURSE: u16 = 0x9101;
/// The PIN (2..=6 bytes BCD); must arrive encrypted.
pub const PIN: u16 = 0x8010;
/// One card key (25 bytes); must arrive encrypted; repeatable, one per usage and index.
pub const KEY: u16 = 0x8000;

/// The DGIs without which personalisation does not complete (for [`KEY`]: at least one).
pub const MANDATORY: [u16; 6] = [EF15, EF16, EF17, PURSE, PIN, KEY];

/// Length of the [`PURSE`] value.
pub const PURSE_LEN: usize = 8;
/// Length of a [`KEY`] value.
pub const KEY_LEN: usize = crate::keys::ENTRY_LEN;

/// P1 b8: last block of the sequence (tsm-gp.md §3.7).
pub const P1_LAST_BLOCK: u8 = 0x80;
/// P1 b7–b6: the encryption indicator.
pub const P1_ENCRYPTION_MASK: u8 = 0x60;
/// P1 b7–b6 = `11`: encrypted under the security domain's DEK (decrypted by the SD before
/// delivery, see [`crate::perso`]).
pub const P1_ENCRYPTED: u8 = 0x60;
/// P1 b5–b4: the structure indicator.
pub const P1_STRUCTURE_MASK: u8 = 0x18;
/// P1 b5–b4 = `01`: DGI format.
pub const P1_DGI: u8 = 0x08;

/// True for the DGIs that carry secrets and must arrive in a block flagged encrypted.
pub fn must_be_encrypted(tag: u16) -> bool {
    matches!(tag, KEY | PIN)
}

/// The EF1A record number (1-based) of a [`EF1A_FIRST`]..=[`EF1A_LAST`] tag.
pub fn ef1a_record(tag: u16) -> Option<u8> {
    // The low byte of a tag in the EF1A range is the record number.
    (EF1A_FIRST..=EF1A_LAST)
        .contains(&tag)
        .then_some((tag & 0xFF) as u8)
}

/// Why a STORE DATA data field is not a sequence of DGIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DgiError {
    /// The field ends inside a DGI's tag or length.
    TruncatedHeader,
    /// A DGI's length runs past the end of the field.
    TruncatedValue,
}

/// Splits a STORE DATA data field into `(tag, value)` pairs. Every DGI must lie wholly inside
/// the field (a DGI never spans blocks). Total: any bytes give pairs or an error.
pub fn parse(mut field: &[u8]) -> Result<Vec<(u16, &[u8])>, DgiError> {
    let mut out = Vec::new();
    while !field.is_empty() {
        let (tag, rest) = field.split_at_checked(2).ok_or(DgiError::TruncatedHeader)?;
        let tag = u16::from_be_bytes([tag[0], tag[1]]);
        let (&first, rest) = rest.split_first().ok_or(DgiError::TruncatedHeader)?;
        let (len, rest) = if first == 0xFF {
            let (l, rest) = rest.split_at_checked(2).ok_or(DgiError::TruncatedHeader)?;
            (usize::from(u16::from_be_bytes([l[0], l[1]])), rest)
        } else {
            (usize::from(first), rest)
        };
        let (value, rest) = rest.split_at_checked(len).ok_or(DgiError::TruncatedValue)?;
        out.push((tag, value));
        field = rest;
    }
    Ok(out)
}

/// Appends one DGI (length in one byte below 255, else `FF` + 2 bytes); `None` if the value is
/// longer than 65535 bytes.
pub fn encode(out: &mut Vec<u8>, tag: u16, value: &[u8]) -> Option<()> {
    out.extend_from_slice(&tag.to_be_bytes());
    if value.len() < 0xFF {
        // Checked by the branch: below 255.
        out.push(value.len() as u8);
    } else {
        out.push(0xFF);
        out.extend_from_slice(&u16::try_from(value.len()).ok()?.to_be_bytes());
    }
    out.extend_from_slice(value);
    Some(())
}

/// Encoded length of a DGI with a value of `len` bytes.
pub fn encoded_len(len: usize) -> usize {
    if len < 0xFF { 3 + len } else { 5 + len }
}
