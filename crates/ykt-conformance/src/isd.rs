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

use ykt_card::{Aid, Card, CardError};
use ykt_crypto::{AesKey, Sm2PrivateKey, Sm4Key, TdesKey};
use ykt_gp::dm::{ReceiptAlgorithm, ReceiptKey, TokenSigner};
use ykt_gp::{IsdSetup, Package, install_isd};
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

/// The test package in the ISD's library (besides the security-domain package): the e-purse
/// code, ELF `A0000006320101` version 1.0, module `A000000632010101`, run by the card library
/// kind `ykt.purse` (`ykt_purse::PurseAppletFactory`). Not preloaded: LOAD brings it.
pub const TEST_PACKAGE_ELF: [u8; 7] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01];
/// Version of [`TEST_PACKAGE_ELF`].
pub const TEST_PACKAGE_VERSION: [u8; 2] = [0x01, 0x00];
/// The module of [`TEST_PACKAGE_ELF`].
pub const TEST_PACKAGE_MODULE: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x01];

/// The private half of the test ISD's token verification key (KVN 70, SM2-SM3): SM3 of
/// `ykt-conformance-test-token-key`, read as a scalar. **Public test key**: anyone can sign
/// delegated-management tokens for a card that holds it.
pub const TEST_TOKEN_D: [u8; 32] = [
    0x3C, 0x6E, 0x0B, 0x8A, 0x9E, 0x47, 0x21, 0x5D, 0x7A, 0x11, 0x94, 0xC2, 0x05, 0xE3, 0x68, 0x2F,
    0x4B, 0x90, 0xD7, 0x16, 0xA8, 0x3E, 0x59, 0xC1, 0x72, 0x0D, 0xB4, 0x8F, 0x26, 0xE9, 0x5A, 0x13,
];

/// The test ISD's receipt key (KVN 71, AES-CMAC). **Public test key.**
pub const TEST_RECEIPT_KEY: [u8; 16] = [
    0x52, 0x45, 0x43, 0x45, 0x49, 0x50, 0x54, 0x2D, 0x54, 0x45, 0x53, 0x54, 0x2D, 0x4B, 0x45, 0x59,
];

/// The token signer of the test ISD ([`TEST_TOKEN_D`]).
pub fn danger_test_token_signer() -> Result<TokenSigner, IsdError> {
    Sm2PrivateKey::from_bytes(&TEST_TOKEN_D)
        .map(TokenSigner::Sm2)
        .map_err(IsdError::Key)
}

/// The receipt key of the test ISD ([`TEST_RECEIPT_KEY`]).
pub fn test_receipt_key() -> Result<ReceiptKey, IsdError> {
    AesKey::from_slice(&TEST_RECEIPT_KEY)
        .map(ReceiptKey::aes)
        .map_err(IsdError::Key)
}

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
/// SECURED, [`TEST_KDD`], [`TEST_IIN`], [`TEST_CIN`], [`TEST_CPLC`]; the library holds the
/// security-domain package (preloaded) and [`TEST_PACKAGE_ELF`] (to be loaded); the token key
/// is [`TEST_TOKEN_D`]'s, the receipt key [`TEST_RECEIPT_KEY`]. A card with this ISD needs a
/// library (`Card::set_library`) that knows `ykt.gp.sd` and `ykt.purse` to install anything:
/// [`crate::target::SimApplets`].
pub fn danger_test_isd_setup(channel: IsdChannel) -> Result<IsdSetup, IsdError> {
    let protocol = channel.protocol().map_err(IsdError::Parameter)?;
    let keys = channel.test_keys().map_err(IsdError::Key)?;
    let mut setup = IsdSetup::new(protocol, keys);
    setup.key_diversification_data = TEST_KDD;
    setup.iin = TEST_IIN.to_vec();
    setup.cin = TEST_CIN.to_vec();
    setup.cplc = TEST_CPLC;
    let bad = |_| IsdError::Install(CardError::InstallRejected(ykt_apdu::StatusWord::WRONG_DATA));
    setup.packages.push(Package {
        elf: Aid::new(&TEST_PACKAGE_ELF).map_err(bad)?,
        version: TEST_PACKAGE_VERSION,
        modules: vec![(
            Aid::new(&TEST_PACKAGE_MODULE).map_err(bad)?,
            ykt_purse::KIND.to_owned(),
        )],
    });
    setup.token_key = Some(danger_test_token_signer()?.verification_key());
    setup.receipt_key = Some((ReceiptAlgorithm::AesCmac, TEST_RECEIPT_KEY));
    Ok(setup)
}

/// Installs the test ISD on `card` (after its applets, which it registers). Draws no
/// randomness: only INITIALIZE UPDATE does, so the e-purse's scripted randoms stay in order.
pub fn danger_install_test_isd(card: &mut Card, channel: IsdChannel) -> Result<(), IsdError> {
    let setup = danger_test_isd_setup(channel)?;
    install_isd(card, &setup).map_err(IsdError::Install)
}
