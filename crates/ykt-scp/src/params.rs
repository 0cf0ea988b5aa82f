//! Protocol parameters: which channel, its `i` parameter, and security levels.

use crate::error::ParameterError;

/// A secure channel protocol and its implementation option `i`.
///
/// This list is complete: one variant per channel this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum Protocol {
    /// SCP02 (GP Card Specification v2.2 Appendix E) with `i` = `15` or `55` (also `05`, `45`
    /// without ICV encryption).
    Scp02(Scp02Options),
    /// SCP03 (GP Amendment D) with AES keys.
    Scp03(Scp03Options),
    /// The SM4 channel: the SCP03 construction over SM4 (L, see the crate docs).
    Sm4(Scp03Options),
}

impl Protocol {
    /// SCP02 with the given `i`; fails for an `i` this crate does not implement.
    pub fn scp02(i: u8) -> Result<Self, ParameterError> {
        Scp02Options::new(i).map(Self::Scp02)
    }

    /// SCP03 with the given `i`; fails for an `i` this crate does not implement.
    pub fn scp03(i: u8) -> Result<Self, ParameterError> {
        Scp03Options::new(i).map(Self::Scp03)
    }

    /// The SM4 channel with an SCP03-style `i`.
    pub fn sm4(i: u8) -> Result<Self, ParameterError> {
        Scp03Options::new(i).map(Self::Sm4)
    }

    /// The `i` parameter.
    pub fn i(self) -> u8 {
        match self {
            Self::Scp02(o) => o.i(),
            Self::Scp03(o) | Self::Sm4(o) => o.i(),
        }
    }

    /// The SCP identifier byte announced in the key information of INITIALIZE UPDATE.
    pub fn scp_id(self) -> u8 {
        match self {
            Self::Scp02(_) => 0x02,
            Self::Scp03(_) => 0x03,
            Self::Sm4(_) => crate::sm4::SM4_CHANNEL.scp_id,
        }
    }

    /// Length of the host and card challenges.
    pub(crate) fn challenge_len(self) -> usize {
        match self {
            Self::Scp02(_) => 8,
            Self::Scp03(o) | Self::Sm4(o) => o.block_len(),
        }
    }

    /// Length of the card challenge (SCP02: 6 bytes).
    pub(crate) fn card_challenge_len(self) -> usize {
        match self {
            Self::Scp02(_) => 6,
            Self::Scp03(o) | Self::Sm4(o) => o.block_len(),
        }
    }

    /// Length of cryptograms and MACs.
    pub(crate) fn mac_len(self) -> usize {
        match self {
            Self::Scp02(_) => 8,
            Self::Scp03(o) | Self::Sm4(o) => o.block_len(),
        }
    }

    /// True when the card challenge is computed from the sequence counter.
    pub fn pseudo_random_challenge(self) -> bool {
        match self {
            Self::Scp02(o) => o.i & scp02_i::PSEUDO_RANDOM != 0,
            Self::Scp03(o) | Self::Sm4(o) => o.i & scp03_i::PSEUDO_RANDOM != 0,
        }
    }

    /// Checks that this protocol can run `level`: R-MAC needs `i` support, R-ENC (SCP03 only)
    /// needs `i` support too.
    pub fn check_level(self, level: SecurityLevel) -> Result<(), ParameterError> {
        let (rmac, renc) = match self {
            // SCP02 with i = 15 / 55 has no R-MAC support (i bit 20 clear) and no R-ENC at all.
            Self::Scp02(_) => (false, false),
            Self::Scp03(o) | Self::Sm4(o) => (o.i & scp03_i::R_MAC != 0, o.i & scp03_i::R_ENC != 0),
        };
        if (level.r_mac() && !rmac) || (level.r_enc() && !renc) {
            Err(ParameterError::LevelNotSupported {
                level: level.0,
                i: self.i(),
            })
        } else {
            Ok(())
        }
    }
}

/// SCP02 `i` bits (GP Card Specification v2.2 Appendix E.1.1).
pub mod scp02_i {
    /// `01`: three secure channel keys (not one base key).
    pub const THREE_KEYS: u8 = 0x01;
    /// `02`: C-MAC on the unmodified APDU (not implemented).
    pub const UNMODIFIED_APDU: u8 = 0x02;
    /// `04`: explicit initiation (INITIALIZE UPDATE / EXTERNAL AUTHENTICATE).
    pub const EXPLICIT: u8 = 0x04;
    /// `08`: ICV = MAC over the AID (not implemented).
    pub const ICV_MAC_OVER_AID: u8 = 0x08;
    /// `10`: the ICV of each C-MAC after the first is DES-encrypted with the C-MAC key's first half.
    pub const ICV_ENCRYPTION: u8 = 0x10;
    /// `20`: R-MAC support (not in `15` / `55`).
    pub const R_MAC: u8 = 0x20;
    /// `40`: well-known pseudo-random card challenge.
    pub const PSEUDO_RANDOM: u8 = 0x40;
}

/// SCP03 `i` bits (GP Amendment D §5.1; tsm-gp.md §5.2).
pub mod scp03_i {
    /// `01`: S16 mode (16-byte challenges, cryptograms and MACs); clear = S8.
    pub const S16: u8 = 0x01;
    /// `10`: pseudo-random card challenge from the sequence counter.
    pub const PSEUDO_RANDOM: u8 = 0x10;
    /// `20`: R-MAC support.
    pub const R_MAC: u8 = 0x20;
    /// `40`: R-ENC support (with R-MAC).
    pub const R_ENC: u8 = 0x40;
}

/// SCP02 options: the `i` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scp02Options {
    i: u8,
}

impl Scp02Options {
    /// Accepts `i` = `05`, `15`, `45`, `55`: three keys, explicit initiation, C-MAC on the
    /// modified APDU, optionally ICV encryption and the pseudo-random challenge.
    pub fn new(i: u8) -> Result<Self, ParameterError> {
        use scp02_i::*;
        let optional = ICV_ENCRYPTION | PSEUDO_RANDOM;
        if i & !optional == THREE_KEYS | EXPLICIT {
            Ok(Self { i })
        } else {
            Err(ParameterError::UnsupportedI { scp: 0x02, i })
        }
    }

    /// The `i` parameter.
    pub fn i(self) -> u8 {
        self.i
    }

    /// True when the ICV is encrypted before use.
    pub(crate) fn icv_encryption(self) -> bool {
        self.i & scp02_i::ICV_ENCRYPTION != 0
    }
}

/// SCP03 options: the `i` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scp03Options {
    i: u8,
}

impl Scp03Options {
    /// Accepts any combination of S16, pseudo-random, R-MAC and R-ENC, except R-ENC without R-MAC.
    pub fn new(i: u8) -> Result<Self, ParameterError> {
        use scp03_i::*;
        let known = S16 | PSEUDO_RANDOM | R_MAC | R_ENC;
        let renc_without_rmac = i & R_ENC != 0 && i & R_MAC == 0;
        if i & !known == 0 && !renc_without_rmac {
            Ok(Self { i })
        } else {
            Err(ParameterError::UnsupportedI { scp: 0x03, i })
        }
    }

    /// The `i` parameter.
    pub fn i(self) -> u8 {
        self.i
    }

    /// True in S16 mode.
    pub fn s16(self) -> bool {
        self.i & scp03_i::S16 != 0
    }

    /// 8 in S8 mode, 16 in S16 mode: challenge, cryptogram and MAC length.
    pub(crate) fn block_len(self) -> usize {
        if self.s16() { 16 } else { 8 }
    }
}

/// The security level of a session: P1 of EXTERNAL AUTHENTICATE (GP Card Specification v2.2
/// §E.5.2.3, Amendment D §7.1.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecurityLevel(u8);

impl SecurityLevel {
    /// `00`: no secure messaging after EXTERNAL AUTHENTICATE.
    pub const NONE: Self = Self(0x00);
    /// `01`: C-MAC.
    pub const C_MAC: Self = Self(0x01);
    /// `03`: C-DEC and C-MAC.
    pub const C_DEC_C_MAC: Self = Self(0x03);
    /// `11`: C-MAC and R-MAC.
    pub const C_MAC_R_MAC: Self = Self(0x11);
    /// `13`: C-DEC, C-MAC and R-MAC.
    pub const C_DEC_C_MAC_R_MAC: Self = Self(0x13);
    /// `33`: C-DEC, C-MAC, R-MAC and R-ENC (SCP03 and the SM4 channel).
    pub const ALL: Self = Self(0x33);

    /// Parses P1 of EXTERNAL AUTHENTICATE; only the six levels above exist.
    pub fn from_byte(b: u8) -> Result<Self, ParameterError> {
        match b {
            0x00 | 0x01 | 0x03 | 0x11 | 0x13 | 0x33 => Ok(Self(b)),
            _ => Err(ParameterError::UnknownLevel(b)),
        }
    }

    /// The P1 byte.
    pub fn to_byte(self) -> u8 {
        self.0
    }

    /// Commands carry a C-MAC.
    pub fn c_mac(self) -> bool {
        self.0 & 0x01 != 0
    }

    /// Command data is encrypted.
    pub fn c_dec(self) -> bool {
        self.0 & 0x02 != 0
    }

    /// Responses carry an R-MAC.
    pub fn r_mac(self) -> bool {
        self.0 & 0x10 != 0
    }

    /// Response data is encrypted.
    pub fn r_enc(self) -> bool {
        self.0 & 0x20 != 0
    }

    /// True when every protection `needed` asks for is on at this level.
    pub fn covers(self, needed: SecurityLevel) -> bool {
        self.0 & needed.0 == needed.0
    }
}
