//! Masked views of personal data (client.md §6.7, rule R1 of §5.2): card numbers, SEIDs, phone
//! numbers and ID numbers as a user, a log or an error may see them.
//!
//! | Data | Shown as |
//! |---|---|
//! | Card no. ≥ 12 digits | first 6 + one `*` per hidden digit + last 4 |
//! | Card no. < 12 digits | `*` + last 4 |
//! | SEID / CPLC | first 4 + `…` + last 4 (shorter than 12: `…` + last 4) |
//! | Phone (11 digits) | first 3 + `****` + last 4 (other lengths: `*` + last 4) |
//! | ID no. (18 characters) | first 1 + 16 `*` + last 1 (other lengths: `*` + last 1) |
//!
//! The shapes are L (JR/T 0171 Annex A has not been seen); each lives in [`proposals`].
//!
//! [`CardNo`] and [`Seid`] hold the full values and print only the masked ones; neither
//! implements `Serialize`, so neither reaches a log or a JSON document by accident. The wire and
//! the sealed state take the full value through the explicit [`CardNo::danger_full`].

use core::fmt;

use zeroize::Zeroize;

/// The masking shapes we chose (client.md §6.7, L).
pub mod proposals {
    /// \[PROPOSAL\] A card number of at least this many characters shows its first
    /// [`CARD_NO_HEAD`] and last [`CARD_NO_TAIL`]; a shorter one shows only `*` and the last
    /// [`CARD_NO_TAIL`].
    pub const CARD_NO_LONG: usize = 12;
    /// \[PROPOSAL\] Characters shown at the start of a long card number.
    pub const CARD_NO_HEAD: usize = 6;
    /// \[PROPOSAL\] Characters shown at the end of a card number.
    pub const CARD_NO_TAIL: usize = 4;
    /// \[PROPOSAL\] The hidden part of a long card number is one `*` per hidden character (so the
    /// length stays visible, as on printed receipts); `false` would write a fixed `****`.
    pub const CARD_NO_STAR_PER_DIGIT: bool = true;
    /// \[PROPOSAL\] An SEID or CPLC of at least this many characters shows its first and last
    /// [`SEID_EDGE`]; a shorter one shows `…` and the last [`SEID_EDGE`].
    pub const SEID_LONG: usize = 12;
    /// \[PROPOSAL\] Characters shown at each end of an SEID or CPLC.
    pub const SEID_EDGE: usize = 4;
    /// \[PROPOSAL\] The ellipsis that stands for the hidden part of an SEID.
    pub const SEID_ELLIPSIS: &str = "…";
}

use proposals::*;

fn chars(s: &str) -> Vec<char> {
    s.chars().collect()
}

fn tail(c: &[char], n: usize) -> String {
    c[c.len().saturating_sub(n)..].iter().collect()
}

/// A card number as shown (client.md §6.7).
pub fn card_no(full: &str) -> String {
    let c = chars(full.trim());
    if c.len() >= CARD_NO_LONG {
        let hidden = c.len() - CARD_NO_HEAD - CARD_NO_TAIL;
        let stars = if CARD_NO_STAR_PER_DIGIT { hidden } else { 4 };
        let mut out: String = c[..CARD_NO_HEAD].iter().collect();
        out.extend(core::iter::repeat_n('*', stars));
        out.push_str(&tail(&c, CARD_NO_TAIL));
        out
    } else if c.len() > CARD_NO_TAIL {
        format!("*{}", tail(&c, CARD_NO_TAIL))
    } else {
        // Four characters or fewer: nothing can be shown without showing all of it.
        "*".repeat(c.len().max(1))
    }
}

/// An SEID or CPLC as shown (client.md §6.7).
pub fn seid(full: &str) -> String {
    let c = chars(full.trim());
    if c.len() >= SEID_LONG {
        let head: String = c[..SEID_EDGE].iter().collect();
        format!("{head}{SEID_ELLIPSIS}{}", tail(&c, SEID_EDGE))
    } else if c.len() > SEID_EDGE {
        format!("{SEID_ELLIPSIS}{}", tail(&c, SEID_EDGE))
    } else {
        SEID_ELLIPSIS.to_string()
    }
}

/// A phone number as shown: 3 + `****` + 4 for the 11 digits of a mainland mobile number,
/// `*` + the last 4 otherwise (client.md §6.7).
pub fn phone(full: &str) -> String {
    let c = chars(full.trim());
    if c.len() == 11 {
        let head: String = c[..3].iter().collect();
        format!("{head}****{}", tail(&c, 4))
    } else if c.len() > 4 {
        format!("*{}", tail(&c, 4))
    } else {
        "*".repeat(c.len().max(1))
    }
}

/// An 18-character resident ID number as shown: first 1 + 16 `*` + last 1 (client.md §6.7).
pub fn id_no(full: &str) -> String {
    let c = chars(full.trim());
    if c.len() == 18 {
        format!("{}{}{}", c[0], "*".repeat(16), c[17])
    } else if c.len() > 1 {
        format!("*{}", tail(&c, 1))
    } else {
        "*".into()
    }
}

/// A card number (the ASN, 20 hex digits on this system's cards, or any other digit string).
/// `Debug` and `Display` print the masked form; the full value only through [`Self::danger_full`].
/// The value is wiped when dropped.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CardNo(String);

impl CardNo {
    /// Wraps a full card number (surrounding white space dropped).
    pub fn new(full: impl Into<String>) -> Self {
        let full: String = full.into();
        Self(full.trim().to_string())
    }

    /// The full number, for the wire (signed envelopes) and the sealed state only.
    pub fn danger_full(&self) -> &str {
        &self.0
    }

    /// The masked form.
    pub fn masked(&self) -> String {
        card_no(&self.0)
    }
}

impl Drop for CardNo {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for CardNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNo({})", self.masked())
    }
}

impl fmt::Display for CardNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// An SE identifier (hex SEID or CPLC-derived). `Debug` and `Display` print the masked form.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seid(String);

impl Seid {
    /// Wraps a full SEID.
    pub fn new(full: impl Into<String>) -> Self {
        let full: String = full.into();
        Self(full.trim().to_string())
    }

    /// The full SEID, for the wire and the sealed state only.
    pub fn danger_full(&self) -> &str {
        &self.0
    }

    /// The masked form.
    pub fn masked(&self) -> String {
        seid(&self.0)
    }
}

impl Drop for Seid {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Seid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seid({})", self.masked())
    }
}

impl fmt::Display for Seid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Serde helpers for the sealed state: the full values, written on purpose.
pub(crate) mod danger_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{CardNo, Seid};

    pub(crate) fn card_no<S: Serializer>(v: &CardNo, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.danger_full())
    }

    pub(crate) fn de_card_no<'de, D: Deserializer<'de>>(d: D) -> Result<CardNo, D::Error> {
        Ok(CardNo::new(String::deserialize(d)?))
    }

    pub(crate) fn seid<S: Serializer>(v: &Seid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.danger_full())
    }

    pub(crate) fn de_seid<'de, D: Deserializer<'de>>(d: D) -> Result<Seid, D::Error> {
        Ok(Seid::new(String::deserialize(d)?))
    }
}
