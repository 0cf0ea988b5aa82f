//! Command APDUs (ISO/IEC 7816-4:2020 §5.1, cases 1, 2S, 3S, 4S, 2E, 3E, 4E).

use alloc::vec::Vec;

use crate::ParseError;

/// Largest data field an APDU can carry (extended Lc).
pub const MAX_DATA_LEN: usize = 65_535;
/// Largest expected length an APDU can ask for (extended Le `00 00`).
pub const MAX_LE: usize = 65_536;

/// A command APDU: header, optional data field (Nc = `data.len()`) and optional expected
/// response length Ne.
///
/// `le` is the *decoded* Ne: a short Le byte `00` is `Some(256)`, an extended Le `00 00` is
/// `Some(65536)`. `None` and `Some(0)` both mean "no Le field" (ISO/IEC 7816-4 §5.1: Ne = 0 is
/// encoded by an absent Le field).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommandApdu {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data field; empty when there is no Lc field.
    pub data: Vec<u8>,
    /// Expected response length Ne (see the type documentation).
    pub le: Option<usize>,
}

impl CommandApdu {
    /// A case 1 command (header only).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
        }
    }

    /// Sets the data field.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    /// Sets the expected response length Ne (256 encodes as short `00`, 65536 as extended
    /// `00 00`; 0 means "no Le field").
    pub fn with_le(mut self, le: usize) -> Self {
        self.le = if le == 0 { None } else { Some(le) };
        self
    }

    /// Ne, with `Some(0)` folded into `None`.
    fn ne(&self) -> Option<usize> {
        self.le.filter(|&n| n != 0)
    }

    /// Parses a command APDU. Total: every input gives either a command or a [`ParseError`].
    ///
    /// Decision procedure of ISO/IEC 7816-4 §5.1, with B1 the first byte after the header:
    /// * no body: case 1;
    /// * one byte: case 2S, Le = B1 (`00` → 256);
    /// * B1 ≠ 0: short Lc = B1, then case 3S (body = 1 + Lc) or 4S (body = 2 + Lc);
    /// * B1 = 0 and body of 3 bytes: case 2E, Le = B2 B3 (`0000` → 65536);
    /// * B1 = 0 and longer: extended Lc = B2 B3 (must not be 0), then case 3E (body = 3 + Lc) or
    ///   4E (body = 5 + Lc, two-byte Le).
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(ParseError::TooShort { len: bytes.len() });
        };
        let mut cmd = Self::new(*cla, *ins, *p1, *p2);
        match body {
            [] => {}
            [le] => cmd.le = Some(short_le(*le)),
            [lc, rest @ ..] if *lc != 0 => {
                let nc = usize::from(*lc);
                if rest.len() == nc {
                    cmd.data = rest.to_vec();
                } else if rest.len() == nc + 1 {
                    let (data, le) = rest.split_at(nc);
                    cmd.data = data.to_vec();
                    cmd.le = le.first().map(|b| short_le(*b));
                } else {
                    return Err(ParseError::LengthMismatch {
                        expected: 1 + nc,
                        actual: body.len(),
                    });
                }
            }
            [_zero, _] => return Err(ParseError::TruncatedExtendedLength),
            [_zero, hi, lo] => cmd.le = Some(extended_le(*hi, *lo)),
            [_zero, hi, lo, rest @ ..] => {
                let nc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if nc == 0 {
                    return Err(ParseError::ZeroLc);
                }
                if rest.len() == nc {
                    cmd.data = rest.to_vec();
                } else if rest.len() == nc + 2 {
                    let (data, le) = rest.split_at(nc);
                    cmd.data = data.to_vec();
                    if let [hi, lo] = le {
                        cmd.le = Some(extended_le(*hi, *lo));
                    }
                } else {
                    return Err(ParseError::LengthMismatch {
                        expected: 3 + nc,
                        actual: body.len(),
                    });
                }
            }
        }
        Ok(cmd)
    }

    /// True when the command needs the extended length encoding: Nc > 255 or Ne > 256.
    pub fn is_extended(&self) -> bool {
        self.data.len() > 255 || self.ne().is_some_and(|n| n > 256)
    }

    /// The ISO/IEC 7816-4 case number: 1 (no data, no Le), 2 (Le only), 3 (data only) or 4
    /// (data and Le). Use [`is_extended`](Self::is_extended) for the S/E distinction.
    pub fn case(&self) -> u8 {
        match (self.data.is_empty(), self.ne().is_some()) {
            (true, false) => 1,
            (true, true) => 2,
            (false, false) => 3,
            (false, true) => 4,
        }
    }

    /// Encodes the command, in short form when Nc ≤ 255 and Ne ≤ 256, in extended form otherwise.
    ///
    /// A data field longer than [`MAX_DATA_LEN`] cannot be encoded: only its first 65 535 bytes
    /// are written. Ne above [`MAX_LE`] is written as `00 00` (65 536, the largest expressible).
    pub fn to_bytes(&self) -> Vec<u8> {
        let data = self.data.get(..MAX_DATA_LEN).unwrap_or(&self.data);
        let ne = self.ne().map(|n| n.min(MAX_LE));
        let mut out = Vec::with_capacity(4 + 3 + data.len() + 2);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if self.is_extended() {
            out.push(0);
            if !data.is_empty() {
                out.extend_from_slice(&len16(data.len()));
                out.extend_from_slice(data);
            }
            if let Some(n) = ne {
                out.extend_from_slice(&len16(n));
            }
        } else {
            if !data.is_empty() {
                out.push(len8(data.len()));
                out.extend_from_slice(data);
            }
            if let Some(n) = ne {
                out.push(len8(n));
            }
        }
        out
    }
}

/// Short Le byte → Ne (`00` means 256).
fn short_le(b: u8) -> usize {
    if b == 0 { 256 } else { usize::from(b) }
}

/// Extended Le bytes → Ne (`00 00` means 65536).
fn extended_le(hi: u8, lo: u8) -> usize {
    match u16::from_be_bytes([hi, lo]) {
        0 => MAX_LE,
        n => usize::from(n),
    }
}

/// One length byte, 256 written as `00`. Callers pass 1..=256.
fn len8(n: usize) -> u8 {
    (n & 0xFF) as u8
}

/// Two length bytes, 65536 written as `00 00`. Callers pass 1..=65536.
fn len16(n: usize) -> [u8; 2] {
    ((n & 0xFFFF) as u16).to_be_bytes()
}
