//! The nouns of card content management: AIDs, privileges and life cycle states
//! (GP Card Specification v2.3.1 §5, §6.6, §11.1; tsm-gp.md §3.4, §3.8).

use alloc::vec::Vec;
use core::fmt;

use crate::error::BuildError;

/// An application identifier: 5 to 16 bytes (ISO/IEC 7816-4 §8.2.1.2).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aid(Vec<u8>);

impl Aid {
    /// Checks the length once.
    pub fn new(bytes: &[u8]) -> Result<Self, BuildError> {
        if (5..=16).contains(&bytes.len()) {
            Ok(Self(bytes.to_vec()))
        } else {
            Err(BuildError::AidLength(bytes.len()))
        }
    }

    /// The AID's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aid({self})")
    }
}

impl fmt::Display for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

/// The issuer security domain's AID, the default target (GP §H.1.3).
pub const ISD_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

/// Privileges, coded on three bytes as in tag `C5` and INSTALL (GP §6.6.1 Table 6-1,
/// tsm-gp.md §3.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Privileges(pub [u8; 3]);

/// The privilege names in the order of GP Table 6-1: (byte index, bit, name).
const PRIVILEGE_NAMES: [(usize, u8, &str); 20] = [
    (0, 0x80, "SecurityDomain"),
    (0, 0x40, "DAPVerification"),
    (0, 0x20, "DelegatedManagement"),
    (0, 0x10, "CardLock"),
    (0, 0x08, "CardTerminate"),
    (0, 0x04, "CardReset"),
    (0, 0x02, "CVMManagement"),
    (0, 0x01, "MandatedDAPVerification"),
    (1, 0x80, "TrustedPath"),
    (1, 0x40, "AuthorizedManagement"),
    (1, 0x20, "TokenVerification"),
    (1, 0x10, "GlobalDelete"),
    (1, 0x08, "GlobalLock"),
    (1, 0x04, "GlobalRegistry"),
    (1, 0x02, "FinalApplication"),
    (1, 0x01, "GlobalService"),
    (2, 0x80, "ReceiptGeneration"),
    (2, 0x40, "CipheredLoadFileDataBlock"),
    (2, 0x20, "ContactlessActivation"),
    (2, 0x10, "ContactlessSelfActivation"),
];

impl Privileges {
    /// No privileges (an ordinary application, e.g. the transit applet).
    pub const NONE: Self = Self([0; 3]);
    /// A supplementary security domain with delegated management (`A0 00 00`, tsm-gp.md §3.8).
    pub const SSD_DELEGATED: Self = Self([0xA0, 0x00, 0x00]);
    /// A supplementary security domain with authorized management (`80 40 00`).
    pub const SSD_AUTHORIZED: Self = Self([0x80, 0x40, 0x00]);

    /// The 1-byte form of GET STATUS legacy responses: the first byte only.
    pub fn from_first_byte(b: u8) -> Self {
        Self([b, 0, 0])
    }

    /// True with the Security Domain privilege.
    pub fn is_security_domain(self) -> bool {
        self.0[0] & 0x80 != 0
    }

    /// The names of the privileges set, in GP's order (GlobalPlatformPro spells them alike).
    pub fn names(self) -> Vec<&'static str> {
        PRIVILEGE_NAMES
            .iter()
            .filter(|(i, bit, _)| self.0[*i] & bit != 0)
            .map(|(_, _, name)| *name)
            .collect()
    }

    /// The privilege called `name` (case-insensitive, as [`Privileges::names`] spells them).
    pub fn from_name(name: &str) -> Option<Self> {
        PRIVILEGE_NAMES
            .iter()
            .find(|(_, _, n)| n.eq_ignore_ascii_case(name))
            .map(|(i, bit, _)| {
                let mut p = [0u8; 3];
                p[*i] = *bit;
                Self(p)
            })
    }

    /// Both sets of privileges.
    pub fn union(self, other: Self) -> Self {
        Self([
            self.0[0] | other.0[0],
            self.0[1] | other.0[1],
            self.0[2] | other.0[2],
        ])
    }
}

/// What a registry entry is (GP §11.4.2: the P1 subset it was listed under, and for
/// applications the Security Domain privilege).
/// This list is complete: GET STATUS has these four kinds of entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)]
pub enum EntryKind {
    /// The issuer security domain (P1 `80`).
    IssuerSecurityDomain,
    /// A supplementary security domain (P1 `40`, Security Domain privilege).
    SecurityDomain,
    /// An application (P1 `40`).
    Application,
    /// An executable load file (P1 `20` or `10`).
    LoadFile,
}

impl EntryKind {
    /// The short names GlobalPlatformPro's `-l` prints.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::IssuerSecurityDomain => "ISD",
            Self::SecurityDomain => "SSD",
            Self::Application => "APP",
            Self::LoadFile => "PKG",
        }
    }
}

/// A life cycle state byte in words, as GP §5.1 and §5.3 name it for `kind`
/// (tsm-gp.md §3.4). Application-specific states print as `SELECTABLE (xx)`; a LOCKED
/// application as `LOCKED`.
pub fn life_cycle_name(kind: EntryKind, state: u8) -> LifeCycleName {
    LifeCycleName { kind, state }
}

/// The words of one life cycle state (see [`life_cycle_name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifeCycleName {
    kind: EntryKind,
    state: u8,
}

impl fmt::Display for LifeCycleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state;
        let word = match self.kind {
            EntryKind::IssuerSecurityDomain => match s {
                0x01 => "OP_READY",
                0x07 => "INITIALIZED",
                0x0F => "SECURED",
                0x7F => "CARD_LOCKED",
                0xFF => "TERMINATED",
                _ => return write!(f, "UNKNOWN ({s:02X})"),
            },
            EntryKind::LoadFile => match s {
                0x01 => "LOADED",
                _ => return write!(f, "UNKNOWN ({s:02X})"),
            },
            EntryKind::SecurityDomain => match s {
                0x03 => "INSTALLED",
                0x07 => "SELECTABLE",
                0x0F => "PERSONALIZED",
                _ if s & 0x80 != 0 => "LOCKED",
                _ => return write!(f, "UNKNOWN ({s:02X})"),
            },
            EntryKind::Application => match s {
                0x03 => "INSTALLED",
                0x07 => "SELECTABLE",
                _ if s & 0x80 != 0 => "LOCKED",
                _ if s & 0x07 == 0x07 => return write!(f, "SELECTABLE ({s:02X})"),
                _ => return write!(f, "UNKNOWN ({s:02X})"),
            },
        };
        f.write_str(word)
    }
}

/// The card life cycle states a host may ask for with SET STATUS P1 `80` (GP §5.1.1).
/// This list is complete: GP defines these five card states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)]
pub enum CardLifeCycle {
    /// `01`.
    OpReady,
    /// `07`.
    Initialized,
    /// `0F`.
    Secured,
    /// `7F`.
    CardLocked,
    /// `FF`: irreversible.
    Terminated,
}

impl CardLifeCycle {
    /// The coding (SET STATUS P2, GET STATUS `9F70`).
    pub fn to_byte(self) -> u8 {
        match self {
            Self::OpReady => 0x01,
            Self::Initialized => 0x07,
            Self::Secured => 0x0F,
            Self::CardLocked => 0x7F,
            Self::Terminated => 0xFF,
        }
    }
}
