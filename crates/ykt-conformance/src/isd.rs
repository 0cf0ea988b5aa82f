//! The issuer security domain of the test card: what `ykt se serve` installs and the simulator
//! fixtures carry, and what the GP items assume when the profile declares `gp` (tsm-gp.md §3,
//! §5; GP Card Specification v2.3.1 §11; Amendment D for SCP03).
//!
//! **The keys are public test keys**: the GlobalPlatform default test key
//! `40 41 42 … 4F` for K-ENC, K-MAC and K-DEK at KVN `30`, as every GP test card and tool
//! ships them. A card with these keys has no key secrecy; never issue one outside a test.
//!
//! The channel is declared by the profile (`isd-scp03`, `isd-scp02`, `isd-sm4`), so the harness
//! takes the protocol and keys from the declared profile, never from an item.

use ykt_card::{Card, CardError};
use ykt_crypto::{AesKey, Sm4Key, TdesKey};
use ykt_gp::{IsdSetup, install_isd};
use ykt_scp::{KeySet, ParameterError, Protocol};

use crate::profile::Profile;

/// The GlobalPlatform default test key (`40 41 … 4F`): public, for test cards only.
pub const GP_TEST_KEY: [u8; 16] = [
    0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F,
];

/// Key version number of the test key set.
pub const TEST_KVN: u8 = 0x30;

/// Key diversification data of the test ISD (INITIALIZE UPDATE bytes 1–10): "YKT", then a
/// serial number.
pub const TEST_KDD: [u8; 10] = [0x59, 0x4B, 0x54, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];

/// Issuer identification number of the test ISD (GET DATA `42`).
pub const TEST_IIN: [u8; 4] = [0x00, 0x00, 0x06, 0x32];

/// Card image number of the test ISD (GET DATA `45`).
pub const TEST_CIN: [u8; 8] = [0x59, 0x4B, 0x54, 0x00, 0x00, 0x00, 0x00, 0x01];

/// CPLC of the test ISD (GET DATA `9F7F`, GP §H.6): fabricator `5959`, IC type `0001`, OS id
/// `594B` ("YK"), OS release date `6335`, OS release level `0001`, then fixed dates, serial
/// `00000001` and zeroed personalisation fields.
pub const TEST_CPLC: [u8; 42] = [
    0x59, 0x59, 0x00, 0x01, 0x59, 0x4B, 0x63, 0x35, 0x00, 0x01, // fab, type, OS, date, level
    0x63, 0x35, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, // IC fabrication date, serial, batch
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, // module, packaging, ICC manufacturer, embedding
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // pre-personaliser, date, equipment
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // personaliser, date, equipment
];

/// The secure channel of the test ISD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IsdChannel {
    /// SCP03 `i` = `70`, AES-128 (the default; yubikit's channel).
    Scp03,
    /// SCP02 `i` = `55`, 2-key 3DES.
    Scp02,
    /// The SM4 channel (L, tsm-gp.md §5.3), `i` = `70`.
    Sm4,
}

impl IsdChannel {
    /// `scp03`, `scp02` or `sm4`.
    pub fn parse(text: &str) -> Option<IsdChannel> {
        Some(match text {
            "scp03" => IsdChannel::Scp03,
            "scp02" => IsdChannel::Scp02,
            "sm4" => IsdChannel::Sm4,
            _ => return None,
        })
    }

    /// The lower-case name ([`IsdChannel::parse`] reads it back).
    pub fn name(self) -> &'static str {
        match self {
            IsdChannel::Scp03 => "scp03",
            IsdChannel::Scp02 => "scp02",
            IsdChannel::Sm4 => "sm4",
        }
    }

    /// The profile feature that declares this channel.
    pub fn feature(self) -> &'static str {
        match self {
            IsdChannel::Scp03 => "isd-scp03",
            IsdChannel::Scp02 => "isd-scp02",
            IsdChannel::Sm4 => "isd-sm4",
        }
    }

    /// The channel a profile declares: `None` without `gp`; with `gp`, the first of
    /// `isd-scp03`, `isd-sm4`, `isd-scp02` declared, SCP03 when none is.
    pub fn from_profile(profile: &Profile) -> Option<IsdChannel> {
        if !profile.has("gp") {
            return None;
        }
        [IsdChannel::Scp03, IsdChannel::Sm4, IsdChannel::Scp02]
            .into_iter()
            .find(|c| profile.has(c.feature()))
            .or(Some(IsdChannel::Scp03))
    }

    /// The protocol and `i` of the channel.
    pub fn protocol(self) -> Result<Protocol, ParameterError> {
        match self {
            IsdChannel::Scp03 => Protocol::scp03(0x70),
            IsdChannel::Scp02 => Protocol::scp02(0x55),
            IsdChannel::Sm4 => Protocol::sm4(0x70),
        }
    }

    /// A key set of `version` with `key` as K-ENC, K-MAC and K-DEK, of this channel's type.
    pub fn key_set(self, version: u8, key: &[u8; 16]) -> Result<KeySet, ykt_crypto::Error> {
        Ok(match self {
            IsdChannel::Scp03 => KeySet::aes(
                version,
                AesKey::from_slice(key)?,
                AesKey::from_slice(key)?,
                AesKey::from_slice(key)?,
            ),
            IsdChannel::Scp02 => KeySet::tdes(
                version,
                TdesKey::from_slice(key)?,
                TdesKey::from_slice(key)?,
                TdesKey::from_slice(key)?,
            ),
            IsdChannel::Sm4 => KeySet::sm4(
                version,
                Sm4Key::from_slice(key)?,
                Sm4Key::from_slice(key)?,
                Sm4Key::from_slice(key)?,
            ),
        })
    }

    /// The test key set: [`GP_TEST_KEY`] (public) at [`TEST_KVN`].
    pub fn test_keys(self) -> Result<KeySet, ykt_crypto::Error> {
        self.key_set(TEST_KVN, &GP_TEST_KEY)
    }
}

/// Why the test ISD could not be set up or installed.
#[derive(Debug)]
#[non_exhaustive]
pub enum IsdError {
    /// The channel's parameters were refused by ykt-scp.
    Parameter(ParameterError),
    /// A test key was refused by ykt-crypto.
    Key(ykt_crypto::Error),
    /// The card refused the installation.
    Install(CardError),
}

impl std::fmt::Display for IsdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IsdError::Parameter(e) => write!(f, "test ISD channel: {e}"),
            IsdError::Key(e) => write!(f, "test ISD key: {e}"),
            IsdError::Install(e) => write!(f, "installing the test ISD: {e}"),
        }
    }
}

impl std::error::Error for IsdError {}

/// The test ISD's set-up for `channel`: the public test keys, minimum level C-MAC, state
/// SECURED, [`TEST_KDD`], [`TEST_IIN`], [`TEST_CIN`], [`TEST_CPLC`].
pub fn danger_test_isd_setup(channel: IsdChannel) -> Result<IsdSetup, IsdError> {
    let protocol = channel.protocol().map_err(IsdError::Parameter)?;
    let keys = channel.test_keys().map_err(IsdError::Key)?;
    let mut setup = IsdSetup::new(protocol, keys);
    setup.key_diversification_data = TEST_KDD;
    setup.iin = TEST_IIN.to_vec();
    setup.cin = TEST_CIN.to_vec();
    setup.cplc = TEST_CPLC;
    Ok(setup)
}

/// Installs the test ISD on `card` (after its applets, which it registers). Draws no
/// randomness: only INITIALIZE UPDATE does, so the e-purse's scripted randoms stay in order.
pub fn danger_install_test_isd(card: &mut Card, channel: IsdChannel) -> Result<(), IsdError> {
    let setup = danger_test_isd_setup(channel)?;
    install_isd(card, &setup).map_err(IsdError::Install)
}
