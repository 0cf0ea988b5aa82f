//! Offline verification at a scanning terminal (扫码终端), qr-code.md §3.1, every step.
//!
//! ```text
//!  bytes ─ 1 parse ─ 2 root key (version, index) ─ 3 certificate: expiry, revocation, sig A
//!        ─ 4 sig B ─ 5 issuer whitelist / local orgs ─ 6 sig C ─ 7 authorisation window
//!        ─ 8 freshness ± skew ─ 9 replay ─ 10 risk lists, account type ─ 11 amount ─ accept
//! ```
//!
//! The first failing step gives the [`Rejection`]; an accepted code is recorded in the replay
//! cache. The terminal's clock reading is an argument: the verifier never reads a clock.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use ykt_crypto::{Sm2PublicKey, Sm2Signature};

use crate::cert::{Expiry, RootKeyEntry, RootKeyRecord};
use crate::code::{QrCode, Version};
use crate::error::{DecodeError, Error};
use crate::ids;
use crate::record::ParameterVersions;
use crate::replay::{self, ReplayCache};

/// The default clock skew the terminal tolerates, in seconds, both ways.
///
/// L (§3.1 step 8): the brief suggests 30 s as a parameter; the standard's value is unknown.
pub const DEFAULT_CLOCK_SKEW: u32 = 30;

/// Account type always refused (§3.1 step 10, from S4).
pub const REFUSED_ACCOUNT_TYPE: u8 = 0xDD;
/// Account type of test accounts, refused in production (§3.1 step 10, JT/T 978.3 `04`).
pub const TEST_ACCOUNT_TYPE: u8 = 0x04;

/// The byte of a whitelist entry that matches any value.
///
/// L (§2.3 parameter 4020: "`FF` means don't compare"): we apply it byte by byte, which also
/// covers a whole field of `FF`.
pub const WILDCARD: u8 = 0xFF;

/// The result of [`Verifier::verify`].
pub type Verdict = Result<Accepted, Rejection>;

/// Why a terminal refused a code: the first §3.1 step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Step 1: the bytes are not a code.
    #[error("malformed code: {0}")]
    Malformed(#[from] DecodeError),
    /// Step 1: the terminal is not configured for this version.
    #[error("version {0:#04x} is not accepted")]
    UnsupportedVersion(u8),
    /// Step 2: no root key for (version, index) ("cert error").
    #[error("no root key {index:#04x} for version {version:#04x}")]
    UnknownRootKey {
        /// Field 1.
        version: u8,
        /// Certificate byte 5.
        index: u8,
    },
    /// Step 2: the root key record has expired.
    #[error("root key {index:#04x} expired")]
    RootKeyExpired {
        /// The key index.
        index: u8,
    },
    /// Step 3: the certificate's MMYY month has passed.
    #[error("issuer certificate expired (MMYY {:02}{:02})", .expiry.month(), .expiry.year())]
    CertificateExpired {
        /// Its expiry.
        expiry: Expiry,
    },
    /// Step 3: the certificate's serial is on the revocation list.
    #[error("issuer certificate revoked")]
    CertificateRevoked,
    /// Step 3: signature A (root CA over the certificate) does not verify.
    #[error("certificate signature (A) does not verify")]
    CertificateSignature,
    /// Step 4: the issuer key in the certificate is not a curve point.
    #[error("issuer public key is not a curve point")]
    IssuerKeyInvalid,
    /// Step 4: signature B (issuer over fields 3–14) does not verify.
    #[error("issuer authorisation signature (B) does not verify")]
    IssuerSignature,
    /// Step 5: (org code, platform id) is not on the whitelist ("map error").
    #[error("issuer not on the whitelist")]
    IssuerNotWhitelisted,
    /// Step 5: a local (`81`) code from an org code that is not local.
    #[error("local code from a non-local issuer")]
    IssuerNotLocal,
    /// Step 6: the user public key (field 10) is not a curve point.
    #[error("user public key is not a curve point")]
    UserKeyInvalid,
    /// Step 6: signature C (user over fields 1–16) does not verify.
    #[error("user signature (C) does not verify")]
    UserSignature,
    /// Step 7: the code was dated after the authorisation expired.
    #[error("code generated after the authorisation expired")]
    GeneratedAfterAuthorisation,
    /// Step 7: the authorisation has expired at the terminal's time.
    #[error("authorisation expired")]
    AuthorisationExpired,
    /// Step 8: the code is older than its validity plus the skew.
    #[error("code expired")]
    CodeExpired,
    /// Step 8: the code is dated further in the future than the skew allows.
    #[error("code not yet valid")]
    NotYetValid,
    /// Step 9: this terminal accepted the code already.
    #[error("code already used")]
    Replay,
    /// Step 9: the replay cache is full of live entries; refusing is safer than forgetting.
    #[error("replay cache full")]
    ReplayCacheFull,
    /// Step 10: the user account (field 5) is blacklisted.
    #[error("account blacklisted")]
    AccountBlacklisted,
    /// Step 10: the payment account (field 4) is blacklisted.
    #[error("payment account blacklisted")]
    PaymentAccountBlacklisted,
    /// Step 10: the account type (field 8) is refused here.
    #[error("account type {0:#04x} refused")]
    AccountTypeRefused(u8),
    /// Step 11: the fare is above the single-payment limit (field 9).
    #[error("fare {fare} above the limit {limit}")]
    OverLimit {
        /// The fare asked, in fen.
        fare: u32,
        /// Field 9, in fen.
        limit: u32,
    },
}

/// An accepted code: what the terminal's record needs besides the raw code (§5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The decoded code.
    pub code: QrCode,
    /// The local ticket type from the whitelist (`None` for local codes).
    pub ticket_type: Option<u8>,
    /// The fare charged, in fen.
    pub fare: u32,
    /// The parameter versions in force.
    pub parameters: ParameterVersions,
}

/// One whitelist (parameter 4020) entry: the issuer pair it admits and the ticket type it maps
/// to (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WhitelistEntry {
    /// Field 6 to match ([`WILDCARD`] bytes match anything).
    pub org_code: [u8; 4],
    /// Field 7 to match.
    pub platform_id: [u8; 4],
    /// The local ticket type.
    pub ticket_type: u8,
}

impl WhitelistEntry {
    /// True when the entry admits (org, platform).
    pub fn matches(&self, org_code: &[u8; 4], platform_id: &[u8; 4]) -> bool {
        let eq = |pattern: &[u8; 4], value: &[u8; 4]| {
            pattern
                .iter()
                .zip(value)
                .all(|(p, v)| *p == WILDCARD || p == v)
        };
        eq(&self.org_code, org_code) && eq(&self.platform_id, platform_id)
    }
}

/// One 16-byte record of the terminal parameter 4020 (§2.3, M): issuer field(8) ‖ platform
/// field(4) ‖ card type(1) ‖ RFU(2) ‖ ticket type(1). The terminal compares the first 4 bytes
/// of the first two fields with (org code, platform id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhitelistRecord {
    /// Bytes 0–7; bytes 0–3 are matched against field 6.
    pub issuer: [u8; 8],
    /// Bytes 8–11; matched against field 7.
    pub platform: [u8; 4],
    /// Byte 12, the card type.
    pub card_type: u8,
    /// Byte 15, the local ticket type the match yields.
    pub ticket_type: u8,
}

impl WhitelistRecord {
    /// The encoded length.
    pub const LEN: usize = 16;

    /// Decodes the 16 bytes (the RFU bytes are ignored).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b: &[u8; Self::LEN] = bytes.try_into().map_err(|_| DecodeError::Length {
            structure: crate::error::Structure::WhitelistRecord,
            expected: Self::LEN,
            actual: bytes.len(),
        })?;
        Ok(Self {
            issuer: crate::cert::arr(&b[..8]),
            platform: crate::cert::arr(&b[8..12]),
            card_type: b[12],
            ticket_type: b[15],
        })
    }

    /// The 16 encoded bytes (RFU zero).
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.issuer);
        out[8..12].copy_from_slice(&self.platform);
        out[12] = self.card_type;
        out[15] = self.ticket_type;
        out
    }

    /// The entry the verifier matches with.
    pub fn entry(&self) -> WhitelistEntry {
        WhitelistEntry {
            org_code: crate::cert::arr(&self.issuer[..4]),
            platform_id: self.platform,
            ticket_type: self.ticket_type,
        }
    }
}

/// The terminal's verification settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Clock skew tolerated both ways, in seconds ([`DEFAULT_CLOCK_SKEW`]).
    pub clock_skew: u32,
    /// The versions this terminal accepts.
    pub accepted_versions: Vec<Version>,
    /// The replay cache's capacity ([`replay::DEFAULT_CAPACITY`]).
    pub replay_capacity: usize,
    /// Refuse test accounts (type [`TEST_ACCOUNT_TYPE`]); true in production.
    pub refuse_test_accounts: bool,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            clock_skew: DEFAULT_CLOCK_SKEW,
            accepted_versions: alloc::vec![Version::INTEROPERABLE, Version::LOCAL],
            replay_capacity: replay::DEFAULT_CAPACITY,
            refuse_test_accounts: true,
        }
    }
}

#[derive(Debug, Clone)]
struct RootKey {
    key: Sm2PublicKey,
    expiry: Expiry,
}

/// A scanning terminal's verifier: its parameters (root keys, whitelist, lists) and its replay
/// cache.
#[derive(Debug, Clone)]
pub struct Verifier {
    config: VerifierConfig,
    root_keys: BTreeMap<(Version, u8), RootKey>,
    whitelist: Vec<WhitelistEntry>,
    local_org_codes: BTreeSet<[u8; 4]>,
    account_blacklist: BTreeSet<[u8; 10]>,
    payment_blacklist: BTreeSet<[u8; 16]>,
    revoked: BTreeSet<(u8, [u8; 3])>,
    replay: ReplayCache,
    versions: ParameterVersions,
    /// Issuer keys already decompressed from their certificates' 33-byte form, so a point
    /// square root is not paid again for every code of the same issuer (at most
    /// [`ISSUER_KEY_CACHE`] entries; signature A is still verified for every code).
    issuer_keys: BTreeMap<[u8; 33], Sm2PublicKey>,
}

/// The most issuer keys a verifier keeps decompressed (then it starts again).
pub const ISSUER_KEY_CACHE: usize = 64;

/// A parameter download: a whole table with its version, replacing the one held (§3.1, §5).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum ParameterUpdate<'a> {
    /// Root CA keys (4026).
    RootKeys {
        /// The table's version.
        version: u32,
        /// Its entries.
        entries: &'a [RootKeyEntry],
    },
    /// The issuer whitelist (4020).
    Whitelist {
        /// The table's version.
        version: u32,
        /// Its entries.
        entries: &'a [WhitelistEntry],
    },
    /// The account blacklist.
    Blacklist {
        /// The table's version.
        version: u32,
        /// The blacklisted user accounts (field 5).
        accounts: &'a [[u8; 10]],
    },
}

impl Verifier {
    /// A verifier with no keys and empty lists.
    pub fn new(config: VerifierConfig) -> Self {
        let replay = ReplayCache::new(config.replay_capacity);
        Self {
            config,
            root_keys: BTreeMap::new(),
            whitelist: Vec::new(),
            local_org_codes: BTreeSet::new(),
            account_blacklist: BTreeSet::new(),
            payment_blacklist: BTreeSet::new(),
            revoked: BTreeSet::new(),
            replay,
            versions: ParameterVersions::default(),
            issuer_keys: BTreeMap::new(),
        }
    }

    /// Applies a downloaded table, replacing the one held, if its version is newer; a root key
    /// table is applied whole or not at all (every self-signature must verify).
    pub fn apply(&mut self, update: ParameterUpdate<'_>) -> Result<(), Error> {
        let newer = |current: u32, offered: u32| {
            if offered > current {
                Ok(())
            } else {
                Err(Error::StaleParameters { current, offered })
            }
        };
        match update {
            ParameterUpdate::RootKeys { version, entries } => {
                newer(self.versions.root_keys, version)?;
                let mut keys = BTreeMap::new();
                for e in entries {
                    let key = e.record.public_key_checked()?;
                    keys.insert(
                        (e.version, e.record.index),
                        RootKey {
                            key,
                            expiry: e.record.expiry,
                        },
                    );
                }
                self.root_keys = keys;
                self.versions.root_keys = version;
            }
            ParameterUpdate::Whitelist { version, entries } => {
                newer(self.versions.whitelist, version)?;
                self.whitelist = entries.to_vec();
                self.versions.whitelist = version;
            }
            ParameterUpdate::Blacklist { version, accounts } => {
                newer(self.versions.blacklist, version)?;
                self.account_blacklist = accounts.iter().copied().collect();
                self.versions.blacklist = version;
            }
        }
        Ok(())
    }

    /// Applies several downloads all or nothing (§2.3, §3.1): when one is refused (not newer,
    /// or a root key record that does not verify) the verifier is left as it was.
    pub fn apply_all(&mut self, updates: &[ParameterUpdate<'_>]) -> Result<(), Error> {
        let saved = (
            self.root_keys.clone(),
            self.whitelist.clone(),
            self.account_blacklist.clone(),
            self.versions,
        );
        for update in updates {
            if let Err(e) = self.apply(*update) {
                (
                    self.root_keys,
                    self.whitelist,
                    self.account_blacklist,
                    self.versions,
                ) = saved;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The versions of the downloaded tables held (0 before the first download).
    pub fn parameter_versions(&self) -> ParameterVersions {
        self.versions
    }

    /// The settings.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Installs a root key for codes of `version`, after checking its self-signature (§2.3);
    /// replaces a key of the same (version, index).
    pub fn add_root_key(&mut self, version: Version, record: &RootKeyRecord) -> Result<(), Error> {
        let key = record.public_key_checked()?;
        self.root_keys.insert(
            (version, record.index),
            RootKey {
                key,
                expiry: record.expiry,
            },
        );
        Ok(())
    }

    /// Installs the key of a parameter 4026 entry.
    pub fn add_root_entry(&mut self, entry: &RootKeyEntry) -> Result<(), Error> {
        self.add_root_key(entry.version, &entry.record)
    }

    /// Admits interoperable codes of the issuers an entry matches.
    pub fn allow_issuer(&mut self, entry: WhitelistEntry) {
        self.whitelist.push(entry);
    }

    /// Admits local (`81`) codes of an org code.
    pub fn allow_local_org(&mut self, org_code: [u8; 4]) {
        self.local_org_codes.insert(org_code);
    }

    /// Blacklists a user account (field 5).
    pub fn block_account(&mut self, account: [u8; 10]) {
        self.account_blacklist.insert(account);
    }

    /// Blacklists a payment account (field 4).
    pub fn block_payment_account(&mut self, account: [u8; 16]) {
        self.payment_blacklist.insert(account);
    }

    /// Revokes the issuer certificate with `serial` under root key `ca_index`.
    pub fn revoke_certificate(&mut self, ca_index: u8, serial: [u8; 3]) {
        self.revoked.insert((ca_index, serial));
    }

    /// The replay cache.
    pub fn replay_cache(&self) -> &ReplayCache {
        &self.replay
    }

    /// The replay cache, to restore it after a restart from the terminal's stored records of
    /// accepted codes (§3.1 steps 9 and 12: the record is written before the gate opens, so it
    /// is the durable copy of the cache).
    pub fn replay_cache_mut(&mut self) -> &mut ReplayCache {
        &mut self.replay
    }

    /// Verifies `code` for a fare of `fare` fen at the terminal's time `now` (Unix seconds as
    /// its clock shows them) and, when it passes, records it against replay.
    pub fn verify(&mut self, code: &[u8], fare: u32, now: u64) -> Verdict {
        let (accepted, key, until) = self.check(code, fare, now)?;
        self.replay
            .insert(key, until, now)
            .map_err(|_| Rejection::ReplayCacheFull)?;
        Ok(accepted)
    }

    /// Steps 1–11 without recording; gives the replay key and its expiry.
    fn check(
        &mut self,
        bytes: &[u8],
        fare: u32,
        now: u64,
    ) -> Result<(Accepted, replay::ReplayKey, u64), Rejection> {
        // 1. Parse.
        let code = QrCode::decode(bytes)?;
        let auth = &code.authorisation;
        let (version, cert, body) = (auth.version, &auth.certificate, &auth.body);
        if !self.config.accepted_versions.contains(&version) {
            return Err(Rejection::UnsupportedVersion(version.value()));
        }
        // 2. Root key by (version, index).
        let root =
            self.root_keys
                .get(&(version, cert.ca_index))
                .ok_or(Rejection::UnknownRootKey {
                    version: version.value(),
                    index: cert.ca_index,
                })?;
        if root.expiry.has_passed(now) {
            return Err(Rejection::RootKeyExpired {
                index: cert.ca_index,
            });
        }
        // 3. Certificate.
        if cert.expiry.has_passed(now) {
            return Err(Rejection::CertificateExpired {
                expiry: cert.expiry,
            });
        }
        if self.revoked.contains(&(cert.ca_index, cert.serial)) {
            return Err(Rejection::CertificateRevoked);
        }
        cert.verify(version, &root.key)
            .map_err(|_| Rejection::CertificateSignature)?;
        // 4. Issuer authorisation.
        let issuer_key = match self.issuer_keys.get(&cert.public_key) {
            Some(key) => key.clone(),
            None => {
                let key = cert.issuer_key().map_err(|_| Rejection::IssuerKeyInvalid)?;
                if self.issuer_keys.len() >= ISSUER_KEY_CACHE {
                    self.issuer_keys.clear();
                }
                self.issuer_keys.insert(cert.public_key, key.clone());
                key
            }
        };
        verify_sig(
            &issuer_key,
            &ids::issuer_id(version, body),
            &auth.issuer_signed_bytes(),
            &auth.issuer_signature.signature,
        )
        .map_err(|_| Rejection::IssuerSignature)?;
        // 5. Issuer acceptance.
        let ticket_type = if version == ids::LOCAL_ID_VERSION {
            if !self.local_org_codes.contains(&body.org_code) {
                return Err(Rejection::IssuerNotLocal);
            }
            None
        } else {
            let entry = self
                .whitelist
                .iter()
                .find(|e| e.matches(&body.org_code, &body.platform_id))
                .ok_or(Rejection::IssuerNotWhitelisted)?;
            Some(entry.ticket_type)
        };
        // 6. User signature.
        let user_key = Sm2PublicKey::from_sec1_bytes(&body.user_public_key)
            .map_err(|_| Rejection::UserKeyInvalid)?;
        verify_sig(
            &user_key,
            &ids::user_id(version, body),
            &code.user_signed_bytes(),
            &code.user_signature.signature,
        )
        .map_err(|_| Rejection::UserSignature)?;
        // 7. Authorisation window.
        let generated = u64::from(code.generation_time);
        let auth_expiry = u64::from(body.authorisation_expiry);
        if generated > auth_expiry {
            return Err(Rejection::GeneratedAfterAuthorisation);
        }
        if now > auth_expiry {
            return Err(Rejection::AuthorisationExpired);
        }
        // 8. Freshness: generated − skew ≤ now ≤ generated + validity + skew.
        let skew = u64::from(self.config.clock_skew);
        let last = generated + u64::from(body.validity) + skew;
        if generated > now.saturating_add(skew) {
            return Err(Rejection::NotYetValid);
        }
        if now > last {
            return Err(Rejection::CodeExpired);
        }
        // 9. Replay.
        let key = (body.user_account, code.generation_time);
        if self.replay.contains(&key, now) {
            return Err(Rejection::Replay);
        }
        // 10. Risk lists and account type.
        if self.account_blacklist.contains(&body.user_account) {
            return Err(Rejection::AccountBlacklisted);
        }
        if self.payment_blacklist.contains(&body.payment_account) {
            return Err(Rejection::PaymentAccountBlacklisted);
        }
        if body.account_type == REFUSED_ACCOUNT_TYPE
            || (self.config.refuse_test_accounts && body.account_type == TEST_ACCOUNT_TYPE)
        {
            return Err(Rejection::AccountTypeRefused(body.account_type));
        }
        // 11. Amount.
        if fare > body.limit {
            return Err(Rejection::OverLimit {
                fare,
                limit: body.limit,
            });
        }
        Ok((
            Accepted {
                code,
                ticket_type,
                fare,
                parameters: self.versions,
            },
            key,
            last + 1,
        ))
    }
}

fn verify_sig(
    key: &Sm2PublicKey,
    id: &[u8],
    msg: &[u8],
    sig: &[u8; 64],
) -> Result<(), ykt_crypto::Error> {
    key.verify(id, msg, &Sm2Signature::from_bytes(sig)?)
}
