//! BER-TLV data objects (ISO/IEC 7816-4 §6.3; ISO/IEC 8825-1 §8.1).
//!
//! * Tags of one to four bytes: a first byte with its low five bits all set is followed by
//!   subsequent bytes, each with bit 8 set except the last. [`Tag`] holds the tag bytes as a
//!   big-endian number, so `Tag::new(0x9F08)` is the two-byte tag `9F 08`.
//! * Definite lengths only: short form `00`–`7F`, long form `81`–`84` followed by one to four
//!   length bytes. The indefinite form `80` is rejected ([`TlvError::IndefiniteLength`]), as are
//!   `85`–`FF`.
//! * A tag with bit 6 of its first byte set is constructed: its value is itself a sequence of
//!   BER-TLV objects, read with [`Tlv::children`].
//!
//! Parsing is total (no panics on any input). Padding bytes `00`/`FF` between objects, allowed by
//! some EMV specifications, are not skipped: `00` parses as a tag.

use alloc::vec::Vec;
use core::fmt;

/// Deepest nesting [`find`] descends into; deeper objects are ignored (bounds stack use).
const MAX_DEPTH: usize = 16;

/// A BER-TLV tag: its one to four encoded bytes as a big-endian number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(u32);

impl Tag {
    /// The tag whose encoded bytes are `value` read big-endian without leading zero bytes
    /// (`0x6F`, `0x9F08`, `0xBF0C`). The value `0` is the one-byte tag `00`.
    pub const fn new(value: u32) -> Self {
        Self(value)
    }

    /// The tag bytes as a big-endian number.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// The encoded tag bytes (one to four).
    pub fn to_bytes(self) -> Vec<u8> {
        let bytes = self.0.to_be_bytes();
        let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
        bytes.get(skip..).map(<[u8]>::to_vec).unwrap_or_default()
    }

    /// First encoded byte (the one carrying class and the constructed bit).
    fn first_byte(self) -> u8 {
        let bytes = self.0.to_be_bytes();
        bytes.iter().copied().find(|b| *b != 0).unwrap_or(0)
    }

    /// True when bit 6 of the first tag byte is set (the value is a sequence of BER-TLV objects).
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    /// The class bits (b8 b7 of the first tag byte): 0 universal, 1 application, 2
    /// context-specific, 3 private.
    pub fn class(self) -> u8 {
        self.first_byte() >> 6
    }

    /// Reads one tag from the start of `bytes`, returning it and the number of bytes it took.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), TlvError> {
        let Some(&first) = bytes.first() else {
            return Err(TlvError::Truncated);
        };
        let mut value = u32::from(first);
        if first & 0x1F != 0x1F {
            return Ok((Self(value), 1));
        }
        for (i, &b) in bytes.iter().enumerate().skip(1) {
            if i >= 4 {
                return Err(TlvError::TagTooLong);
            }
            value = (value << 8) | u32::from(b);
            if b & 0x80 == 0 {
                return Ok((Self(value), i + 1));
            }
        }
        if bytes.len() >= 4 {
            Err(TlvError::TagTooLong)
        } else {
            Err(TlvError::Truncated)
        }
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag(")?;
        for b in self.to_bytes() {
            write!(f, "{b:02X}")?;
        }
        write!(f, ")")
    }
}

impl From<u32> for Tag {
    fn from(value: u32) -> Self {
        Self(value)
    }
}

/// Why bytes are not a sequence of BER-TLV objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlvError {
    /// The input ends inside a tag, a length field or a value.
    Truncated,
    /// A multi-byte tag runs past four bytes.
    TagTooLong,
    /// Length byte `80`: the indefinite form, which ISO/IEC 7816-4 does not use.
    IndefiniteLength,
    /// A long-form length with more than four length bytes (`85`–`FF`).
    LengthTooLong,
    /// [`Tlv::children`] on a primitive object.
    NotConstructed,
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "BER-TLV input ends inside an object",
            Self::TagTooLong => "BER-TLV tag longer than four bytes",
            Self::IndefiniteLength => "BER-TLV indefinite length is not supported",
            Self::LengthTooLong => "BER-TLV length field longer than four bytes",
            Self::NotConstructed => "BER-TLV object is primitive, it has no children",
        })
    }
}

impl core::error::Error for TlvError {}

/// One BER-TLV data object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tlv {
    /// The tag.
    pub tag: Tag,
    /// The value field (for a constructed tag: the encoded children).
    pub value: Vec<u8>,
}

impl Tlv {
    /// An object with tag `tag` (big-endian tag bytes, see [`Tag::new`]) and value `value`.
    pub fn new(tag: u32, value: impl Into<Vec<u8>>) -> Self {
        Self {
            tag: Tag(tag),
            value: value.into(),
        }
    }

    /// A constructed object whose value is the concatenated encodings of `children`.
    pub fn constructed(tag: u32, children: &[Tlv]) -> Self {
        let mut value = Vec::new();
        for child in children {
            child.encode_into(&mut value);
        }
        Self::new(tag, value)
    }

    /// True when the tag is constructed.
    pub fn is_constructed(&self) -> bool {
        self.tag.is_constructed()
    }

    /// Parses the value of a constructed object as a sequence of objects.
    pub fn children(&self) -> Result<Vec<Tlv>, TlvError> {
        if !self.is_constructed() {
            return Err(TlvError::NotConstructed);
        }
        parse_all(&self.value)
    }

    /// Tag, minimal definite length, value.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.value.len() + 8);
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag.to_bytes());
        out.extend_from_slice(&encode_length(self.value.len()));
        out.extend_from_slice(&self.value);
    }

    /// Reads one object from the start of `bytes`, returning it and the bytes it took.
    pub fn parse_one(bytes: &[u8]) -> Result<(Self, usize), TlvError> {
        let (tag, tag_len) = Tag::parse(bytes)?;
        let rest = bytes.get(tag_len..).ok_or(TlvError::Truncated)?;
        let (len, len_len) = decode_length(rest)?;
        let start = tag_len + len_len;
        let end = start.checked_add(len).ok_or(TlvError::Truncated)?;
        let value = bytes.get(start..end).ok_or(TlvError::Truncated)?;
        Ok((
            Self {
                tag,
                value: value.to_vec(),
            },
            end,
        ))
    }
}

/// The minimal definite length encoding of `len` (short form below 128, else `81`–`84`).
pub fn encode_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return alloc::vec![(len & 0x7F) as u8];
    }
    let bytes = (len as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    let mut out = Vec::with_capacity(1 + significant.len());
    out.push(0x80 | (significant.len() & 0x7F) as u8);
    out.extend_from_slice(significant);
    out
}

/// Reads a definite length from the start of `bytes`: (length, bytes taken).
pub fn decode_length(bytes: &[u8]) -> Result<(usize, usize), TlvError> {
    let Some(&first) = bytes.first() else {
        return Err(TlvError::Truncated);
    };
    match first {
        0x00..=0x7F => Ok((usize::from(first), 1)),
        0x80 => Err(TlvError::IndefiniteLength),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7F);
            let field = bytes.get(1..=n).ok_or(TlvError::Truncated)?;
            let len = field.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            let len = usize::try_from(len).map_err(|_| TlvError::Truncated)?;
            Ok((len, 1 + n))
        }
        _ => Err(TlvError::LengthTooLong),
    }
}

/// Parses a whole byte string as a sequence of top-level objects.
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Tlv>, TlvError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (tlv, used) = Tlv::parse_one(rest)?;
        out.push(tlv);
        rest = rest.get(used..).unwrap_or_default();
    }
    Ok(out)
}

/// Finds the first object with tag `tag`, depth first in encoding order, descending into
/// constructed objects (up to 16 levels). Returns `None` when the tag is absent or the bytes
/// stop parsing before it is reached.
pub fn find(bytes: &[u8], tag: u32) -> Option<Tlv> {
    find_at(bytes, Tag(tag), 0)
}

fn find_at(bytes: &[u8], tag: Tag, depth: usize) -> Option<Tlv> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let (tlv, used) = Tlv::parse_one(rest).ok()?;
        if tlv.tag == tag {
            return Some(tlv);
        }
        if tlv.is_constructed()
            && depth < MAX_DEPTH
            && let Some(found) = find_at(&tlv.value, tag, depth + 1)
        {
            return Some(found);
        }
        rest = rest.get(used..).unwrap_or_default();
    }
    None
}
