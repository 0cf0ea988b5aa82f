//! Issuer side: setting up instances (until GlobalPlatform personalisation exists), and
//! re-creating them when a card state file is loaded.
//!
//! ```text
//!   IssuedNfcQr::new(aid, NfcQrProfile { code limit }, root keys [(version, 4026 record)])
//!        │  root records' self-signatures checked (qr-code.md §2.3)
//!        ▼
//!   install(&mut Card) ──▶ NfcQrApplet + key (empty), authorisation (empty), counters, root keys
//! ```
//!
//! The key pair is not made here: the card makes it on GENERATE KEY PAIR, so no issuer system
//! ever sees the private key (qr-code.md §4.3).

use alloc::boxed::Box;
use alloc::vec::Vec;

use ykt_card::{Aid, Applet, AppletFactory, Card, CardError};
use ykt_qr::{RootKeyRecord, Version};

use crate::applet::{KIND, NfcQrApplet};
use crate::state::{
    AUTHORISATION_LEN, COUNTERS_LEN, Counters, KEY_LEN, OBJ_AUTHORISATION, OBJ_COUNTERS, OBJ_KEY,
    OBJ_ROOT_KEYS, encode_root_keys,
};

/// The per-authorisation code limit of qr-code.md §4.3 ("a per-blob signing counter (for
/// example ≤ 2000)"). L: the brief's example value.
pub const DEFAULT_MAX_CODES_PER_AUTHORISATION: u32 = 2000;

/// The most root keys an instance holds.
pub const MAX_ROOT_KEYS: usize = 8;

/// The first byte of the installation parameters: their format.
const PARAMS_FORMAT: u8 = 0x01;

/// The installation parameters of an instance, persisted with it by the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NfcQrProfile {
    /// GENERATE CODE answers `9402` once this many codes were signed under the stored
    /// authorisation; a new authorisation starts again at 0.
    pub max_codes_per_authorisation: u32,
}

impl Default for NfcQrProfile {
    fn default() -> Self {
        NfcQrProfile {
            max_codes_per_authorisation: DEFAULT_MAX_CODES_PER_AUTHORISATION,
        }
    }
}

impl NfcQrProfile {
    /// The parameter bytes: format `01` ‖ limit (u32).
    pub fn to_params(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5);
        out.push(PARAMS_FORMAT);
        out.extend_from_slice(&self.max_codes_per_authorisation.to_be_bytes());
        out
    }

    /// The profile of [`to_params`](Self::to_params) bytes, `None` for any other bytes.
    pub fn from_params(params: &[u8]) -> Option<NfcQrProfile> {
        let [PARAMS_FORMAT, a, b, c, d] = *params else {
            return None;
        };
        Some(NfcQrProfile {
            max_codes_per_authorisation: u32::from_be_bytes([a, b, c, d]),
        })
    }
}

/// Why an instance could not be set up or installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The AID is not 5 to 16 bytes.
    #[error("AID must have 5 to 16 bytes")]
    InvalidAid,
    /// More than [`MAX_ROOT_KEYS`] root keys.
    #[error("too many root keys")]
    TooManyRootKeys,
    /// A root key record's key is no curve point or its self-signature does not verify.
    #[error("root key record {index:02X} refused")]
    RootKey {
        /// The record's index.
        index: u8,
        /// Why.
        #[source]
        source: ykt_qr::Error,
    },
    /// Two root keys for the same (version, index).
    #[error("two root keys {index:02X} for version {version:02X}")]
    DuplicateRootKey {
        /// The version.
        version: u8,
        /// The index.
        index: u8,
    },
    /// The runtime refused the installation.
    #[error("installation refused by the card runtime")]
    Install(#[source] CardError),
}

/// An instance ready to install on a [`Card`]: no key yet, no authorisation, zero counters,
/// and the root keys it checks signature A against.
#[derive(Debug)]
pub struct IssuedNfcQr {
    applet: NfcQrApplet,
    root_keys: Vec<u8>,
}

impl IssuedNfcQr {
    /// An instance at `aid` with `profile`. With `root_keys` empty the applet checks only
    /// signature B of a blob (the terminal checks A anyway, qr-code.md §3.1 step 3); with root
    /// keys it also refuses a blob whose certificate does not chain to one of them.
    pub fn new(
        aid: &[u8],
        profile: NfcQrProfile,
        root_keys: &[(Version, RootKeyRecord)],
    ) -> Result<IssuedNfcQr, SetupError> {
        let aid = Aid::new(aid).map_err(|_| SetupError::InvalidAid)?;
        if root_keys.len() > MAX_ROOT_KEYS {
            return Err(SetupError::TooManyRootKeys);
        }
        for (i, (version, record)) in root_keys.iter().enumerate() {
            record
                .public_key_checked()
                .map_err(|source| SetupError::RootKey {
                    index: record.index,
                    source,
                })?;
            if root_keys[..i]
                .iter()
                .any(|(v, r)| v == version && r.index == record.index)
            {
                return Err(SetupError::DuplicateRootKey {
                    version: version.value(),
                    index: record.index,
                });
            }
        }
        Ok(IssuedNfcQr {
            applet: NfcQrApplet::new(aid, profile),
            root_keys: encode_root_keys(root_keys),
        })
    }

    /// The AID of the instance.
    pub fn aid(&self) -> &Aid {
        self.applet.aid()
    }

    /// Installs the instance and creates its objects, in one transaction.
    pub fn install(self, card: &mut Card) -> Result<(), SetupError> {
        let roots = self.root_keys;
        card.install(Box::new(self.applet), move |ctx| {
            ctx.create(OBJ_KEY, &[0u8; KEY_LEN])?;
            ctx.create(OBJ_AUTHORISATION, &[0u8; AUTHORISATION_LEN])?;
            let counters: [u8; COUNTERS_LEN] = Counters::default().encode();
            ctx.create(OBJ_COUNTERS, &counters)?;
            ctx.create(OBJ_ROOT_KEYS, &roots)
        })
        .map_err(SetupError::Install)
    }
}

/// Re-creates instances (kind [`KIND`]) from a card state file:
/// `Card::load_state(.., &NfcQrAppletFactory)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NfcQrAppletFactory;

impl AppletFactory for NfcQrAppletFactory {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        if kind != KIND {
            return None;
        }
        let profile = NfcQrProfile::from_params(params)?;
        Some(Box::new(NfcQrApplet::new(aid.clone(), profile)))
    }
}
