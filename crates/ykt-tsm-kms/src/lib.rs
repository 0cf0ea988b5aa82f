//! The TSM's key vault over a KMS: [`KmsVault`] implements `ykt_tsm::KeyVault` with
//! `ykt_kms::Kms` operations, so every static key of the TSM (ISD master keys, SSD key sets,
//! the SP's transport key, the purse issuer's master keys, the token signer, the receipt key)
//! stays in the software KMS's key file or in a PKCS#11 token (tsm-gp.md §6).
//!
//! ```text
//!  ykt_tsm::Flow ──KeyVault──► KmsVault ──Kms──► SoftwareKms (key file) | Pkcs11Kms (token)
//!      secure channel: channel_operation ──► Kms::encrypt (SCP02) / Kms::mac (SCP03 KDF)
//!      ISD keys per SE:  KeyRef(master).diversified(GpKdf3 { kdd: SEID })
//!      PUT KEY / 8001:   Kms::wrap (+ Kms::encrypt for the check values)
//!      SSD handover:     Kms::seal_for / Kms::open_import (SM2)
//!      personalisation:  Kms::wrap_composed (card keys = masters diversified by the ASN)
//!      MAC1/MAC2/TAC:    Kms::verify_mac / Kms::mac (PurseSession, PurseTac)
//!      tokens, receipts: Kms::sign, Kms::verify_mac
//! ```
//!
//! Invariant: no static key value is in this crate's memory: keys are named ([`key_id`] maps
//! a `ykt_tsm::KeyName` and a slot to a `ykt_kms::KeyId`, in one place), and what comes back
//! from the KMS is wrapped keys, session keys (for the length of one secure channel, inside
//! `ykt_scp::HostSession`), MACs, signatures and verdicts. The one secret this vault holds
//! itself is a purse issuer's initial PIN (not a key; [`KmsVault::register_purse_issuer`]).
//!
//! Hierarchies: [`KmsVault::provision_test_keys`] imports the PUBLIC test keys (a test
//! deployment); [`KmsVault::provision`] generates a fresh hierarchy in the KMS, and
//! [`KmsVault::provision_shared`] the same with the ISD master and receipt key card production
//! shares ([`SharedSeKeys`], imported internal); [`KmsVault::open`] opens a provisioned
//! hierarchy again at the next start, checking every key is there. What a key ceremony
//! compares comes out as check values and public keys
//! ([`KmsVault::isd_master_check_values`], [`KmsVault::receipt_check_value`],
//! [`KmsVault::token_public_key`]), never as key values.
//!
//! Boundary: no policy of its own beyond the mapping of names and the layouts `ykt_tsm::vault`
//! gives; no storage of its own (the KMS's key file or token is the store; the issuers' key
//! lists, profiles and PINs are configuration given at start).
//!
//! Backends: the software KMS does every operation. A PKCS#11 token holds 3DES and AES keys
//! but refuses derivations, the e-purse MACs, composed wraps and SM2 (`ykt_kms::pkcs11`), so
//! over [`Pkcs11Kms`](ykt_kms::Pkcs11Kms) only the operations on stored AES key sets work
//! (SSD key sets: generate, channel session keys, PUT KEY wrapping under another stored set);
//! ISD keys per SE, the handover, personalisation, loads and tokens need the software KMS.
//! The operations of one call use one KMS (a key is wrapped under a key of the same store).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use ykt_crypto::Sm2PublicKey;
use ykt_crypto::purse::{self, PurseAlgorithm, Sm4Rules};
use ykt_kms::{
    CipherMode, Derivation, GpStaticKey, KeyId, KeyInfo, KeySpec, KeyType, Kms, KmsError,
    MacAlgorithm, PublicKey, SecretBytes, SignatureAlgorithm, WrapMode, WrapPart,
};
use ykt_scp::{StaticKeyKind, StaticKeyOperation, StaticKeyRole};
use ykt_tsm::vault::{
    self, Entropy, HANDOVER_HEADER_LEN, KeyEncryption, KeyUsage, LoadProof, MasterKey,
    MasterKeyInfo, PersoBlock, PersoPart, PurseProfile, ReceiptContext, SCP02_DEK_CONSTANT,
    TokenKind, WrappedKeySet,
};
use ykt_tsm::{KeyName, KeyRef, KeyVault, Parties, PurseCardSpec, Role, VaultError};
use zeroize::Zeroizing;

/// Which key of a vault name a KMS key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Slot {
    /// A key set's (or ISD master's) K-ENC.
    Enc,
    /// A key set's K-MAC.
    Mac,
    /// A key set's K-DEK.
    Dek,
    /// An SM2 transport key pair.
    Transport,
    /// A token signing key (SM2 or RSA).
    TokenSigner,
    /// A receipt key (AES, SM4 or 3DES).
    Receipt,
    /// A purse issuer's master key of a usage and index.
    PurseMaster {
        /// The usage.
        usage: KeyUsage,
        /// The key index.
        index: u8,
    },
}

impl Slot {
    fn suffix(self) -> String {
        match self {
            Self::Enc => "enc".into(),
            Self::Mac => "mac".into(),
            Self::Dek => "dek".into(),
            Self::Transport => "sm2".into(),
            Self::TokenSigner => "token".into(),
            Self::Receipt => "receipt".into(),
            Self::PurseMaster { usage, index } => {
                let usage = match usage {
                    KeyUsage::Load => "dlk",
                    KeyUsage::Purchase => "dpk",
                    KeyUsage::Tac => "dtk",
                    KeyUsage::Maintenance => "damk",
                    KeyUsage::PinUnblock => "dpuk",
                    KeyUsage::PinReload => "drpk",
                };
                format!("{usage}-{index:02x}")
            }
        }
    }

    fn of_role(role: StaticKeyRole) -> Self {
        match role {
            StaticKeyRole::Enc => Self::Enc,
            StaticKeyRole::Mac => Self::Mac,
            StaticKeyRole::Dek => Self::Dek,
        }
    }
}

/// The longest slot suffix (`damk-ff`, `receipt`), with its `/`.
const SUFFIX_ROOM: usize = 8;

/// The KMS key name prefix of a vault name: the name itself when it fits a KMS key name with
/// room for a slot, otherwise `h/` and 40 hex digits of its SM3 hash.
fn base(name: &KeyName) -> String {
    let fits = !name.0.is_empty()
        && name.0.len() + SUFFIX_ROOM <= ykt_kms::MAX_KEY_NAME_LEN
        && name
            .0
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && !name.0.starts_with("h/");
    if fits {
        name.0.clone()
    } else {
        let digest = ykt_crypto::sm3(name.0.as_bytes());
        let hex: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
        format!("h/{hex}")
    }
}

/// The KMS identity of the key `slot` of the vault name `name` at `version`: the one mapping
/// from `ykt_tsm::KeyName` to `ykt_kms::KeyId`. Deterministic: the same name, slot and
/// version always give the same identity.
pub fn key_id(name: &KeyName, slot: Slot, version: u8) -> Result<KeyId, VaultError> {
    KeyId::new(&format!("{}/{}", base(name), slot.suffix()), version)
        .map_err(|_| VaultError::UnknownKey)
}

fn kms_err(e: KmsError) -> VaultError {
    match e {
        KmsError::KeyNotFound(_) => VaultError::UnknownKey,
        KmsError::KeyExists(_) => VaultError::KeyExists,
        KmsError::WrongKeyType { .. }
        | KmsError::InvalidMaterial(_)
        | KmsError::NotExportable(_)
        | KmsError::Unsupported { .. } => VaultError::KeyType,
        _ => VaultError::Crypto,
    }
}

fn block16(bytes: &[u8]) -> Result<Zeroizing<[u8; 16]>, VaultError> {
    let mut out = Zeroizing::new([0u8; 16]);
    if bytes.len() != 16 {
        return Err(VaultError::Crypto);
    }
    out.copy_from_slice(bytes);
    Ok(out)
}

fn kind_of(key_type: KeyType) -> Result<StaticKeyKind, VaultError> {
    match key_type {
        KeyType::Tdes2 => Ok(StaticKeyKind::Tdes),
        KeyType::Aes128 => Ok(StaticKeyKind::Aes(16)),
        KeyType::Aes256 => Ok(StaticKeyKind::Aes(32)),
        KeyType::Sm4 => Ok(StaticKeyKind::Sm4),
        _ => Err(VaultError::KeyType),
    }
}

/// The audit purposes, each naming the brief's section.
mod purpose {
    pub(super) const CHANNEL: &str = "tsm-gp.md §5 secure channel session keys";
    pub(super) const GENERATE: &str = "tsm-gp.md §6 SSD key set";
    pub(super) const PUT_KEY: &str = "tsm-gp.md §3.6 PUT KEY / DGI 8001";
    pub(super) const HANDOVER: &str = "tsm-gp.md §6 SSD key handover";
    pub(super) const DELETE: &str = "tsm-gp.md §7 SSD deleted";
    pub(super) const PERSO: &str = "tsm-gp.md §6 purse personalisation";
    pub(super) const LOAD: &str = "e-purse.md §5.4 load MAC1/MAC2";
    pub(super) const TAC: &str = "e-purse.md §5.5 load TAC";
    pub(super) const TOKEN: &str = "tsm-gp.md §4 delegated-management token";
    pub(super) const RECEIPT: &str = "tsm-gp.md §4 receipt";
    pub(super) const PROVISION: &str = "key ceremony: provisioning";
    pub(super) const CHECK_VALUE: &str = "key ceremony: key check value";
}

/// A purse issuer as the vault knows it: which master keys it has (values in the KMS), its
/// initial PIN, profile and SM4 rules.
struct Issuer {
    masters: Vec<MasterKeyInfo>,
    pin: Zeroizing<Vec<u8>>,
    profile: PurseProfile,
    sm4_rules: Sm4Rules,
}

/// What [`KmsVault::provision`] makes a purse issuer with.
#[derive(Clone)]
#[non_exhaustive]
pub struct PurseIssuerSetup {
    /// The algorithm of every master key.
    pub algorithm: PurseAlgorithm,
    /// The initial PIN cards are personalised with.
    pub pin: Zeroizing<Vec<u8>>,
    /// The purse profile.
    pub profile: PurseProfile,
    /// The SM4 rules.
    pub sm4_rules: Sm4Rules,
}

impl PurseIssuerSetup {
    /// An issuer of `algorithm` with `pin` and the e-purse profile and the brief's SM4 rules.
    pub fn new(algorithm: PurseAlgorithm, pin: &[u8]) -> Self {
        Self {
            algorithm,
            pin: Zeroizing::new(pin.to_vec()),
            profile: PurseProfile::EPURSE,
            sm4_rules: Sm4Rules::BRIEF,
        }
    }
}

impl fmt::Debug for PurseIssuerSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PurseIssuerSetup")
            .field("algorithm", &self.algorithm)
            .field("pin", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The master keys a new purse issuer gets (usage, index, version): load and purchase keys
/// at index 1, the TAC key, the maintenance and PIN keys, all version 1 (the e-purse
/// brief's §8 set has the same shape).
const FRESH_MASTERS: [(KeyUsage, u8); 6] = [
    (KeyUsage::Load, 0x01),
    (KeyUsage::Purchase, 0x01),
    (KeyUsage::Tac, 0x00),
    (KeyUsage::Maintenance, 0x00),
    (KeyUsage::PinUnblock, 0x00),
    (KeyUsage::PinReload, 0x00),
];

/// The version a freshly generated ISD master key set gets (GP's first issuer key set, `30`).
pub const FRESH_ISD_MASTER_KVN: u8 = 0x30;

/// The keys the SEI-TSM shares with card production, for [`KmsVault::provision_shared`]:
/// the SE maker keys every SE's card manager with the ISD master diversified by the SEID, and
/// gives the card the receipt key (tsm-gp.md §4, §6). Values wiped on drop, never printed.
#[non_exhaustive]
pub struct SharedSeKeys {
    /// The ISD master key set's version (KVN).
    pub isd_master_kvn: u8,
    /// The ISD master's K-ENC, K-MAC, K-DEK (AES-128 each).
    pub isd_master: [SecretBytes; 3],
    /// The receipt key (AES-128, AES-CMAC receipts).
    pub receipt_key: SecretBytes,
}

impl SharedSeKeys {
    /// The ISD master `enc`, `mac`, `dek` at `kvn` and the receipt key `receipt`.
    pub fn new(kvn: u8, isd_master: [SecretBytes; 3], receipt_key: SecretBytes) -> Self {
        Self {
            isd_master_kvn: kvn,
            isd_master,
            receipt_key,
        }
    }
}

impl fmt::Debug for SharedSeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSeKeys")
            .field("isd_master_kvn", &self.isd_master_kvn)
            .field("keys", &"[redacted]")
            .finish()
    }
}

/// A vault whose keys are in a KMS. See the [crate docs](crate).
pub struct KmsVault {
    kms: Arc<dyn Kms>,
    issuers: BTreeMap<KeyName, Issuer>,
    /// This role's SSD key sets derived from its SSD master instead of stored (`None`: a
    /// hierarchy without one, made before: generated and stored, as before).
    ssd: Option<SsdMaster>,
}

/// \[PROPOSAL\] The SSD master key set of the SEI-TSM: the initial key set of every SSD it
/// creates (`ssd/<SEID>/<AID>/initial`) is this set diversified for the SSD, so the SEI's key
/// store does not grow with the cards (docs/benchmarks.md, the key file's growth). AES-128,
/// `KeySpec::internal_master`: the master never leaves the KMS; the sets derived from it
/// leave only wrapped (PUT KEY, DGI `8001`, the SM2-sealed handover).
pub const SEI_SSD_MASTER: &str = "sei/ssd-master";

/// \[PROPOSAL\] The SSD master key set of the SP-TSM: its own key set of every SSD
/// (`ssd/<SEID>/<AID>/sp`), as [`SEI_SSD_MASTER`] for the SEI.
pub const SP_SSD_MASTER: &str = "sp/ssd-master";

/// The version of an SSD master key set.
const SSD_MASTER_VERSION: u8 = 1;

/// Which SSD key sets of a role are derived, and from what.
#[derive(Clone, Debug)]
struct SsdMaster {
    /// The master key set (Enc, Mac, Dek slots).
    master: KeyName,
    /// The last segment of the key set names derived (`initial` or `sp`).
    suffix: &'static str,
    /// The version the derived sets carry (what `generate_key_set` would have given them).
    version: u8,
}

impl SsdMaster {
    fn of(role: Role) -> Self {
        match role {
            Role::Sei => Self {
                master: KeyName(SEI_SSD_MASTER.to_string()),
                suffix: "initial",
                version: ykt_tsm::proposals::SSD_INITIAL_KEY_VERSION,
            },
            _ => Self {
                master: KeyName(SP_SSD_MASTER.to_string()),
                suffix: "sp",
                version: ykt_tsm::proposals::SSD_SP_KEY_VERSION,
            },
        }
    }

    /// Whether `name` is one of the SSD key sets this master derives: `ssd/<SEID>/<AID>/<suffix>`.
    fn derives(&self, name: &KeyName) -> bool {
        let parts: Vec<&str> = name.0.split('/').collect();
        matches!(parts.as_slice(), ["ssd", seid, aid, last]
            if !seid.is_empty() && !aid.is_empty() && *last == self.suffix)
    }

    /// \[PROPOSAL\] The key diversification data of the set `name`: the first 10 bytes of
    /// SM3 of the name (the SEID and the SSD's AID in it), for GP `kdf3` diversification of
    /// each master key (the ISD keys are the ISD master diversified over the SEID the same way).
    fn kdd(name: &KeyName) -> [u8; 10] {
        let digest = ykt_crypto::sm3(name.0.as_bytes());
        let mut kdd = [0u8; 10];
        kdd.copy_from_slice(&digest[..10]);
        kdd
    }
}

/// One static key of a key set as the KMS reaches it: its version, type and reference.
struct Resolved {
    version: u8,
    key_type: KeyType,
    r: ykt_kms::KeyRef,
}

impl fmt::Debug for KmsVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsVault")
            .field("backend", &self.kms.backend())
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The version of the keys that are not key sets (transport, token, receipt) in the KMS.
const SINGLE_KEY_VERSION: u8 = 1;

impl KmsVault {
    /// A vault over `kms` (no purse issuer registered yet).
    pub fn new(kms: Arc<dyn Kms>) -> Self {
        Self {
            kms,
            issuers: BTreeMap::new(),
            ssd: None,
        }
    }

    /// Derives `role`'s SSD key sets from its SSD master ([`SEI_SSD_MASTER`] or
    /// [`SP_SSD_MASTER`]) when `kms` holds that set; a set stored under a name (a card opened
    /// before) is used as stored.
    fn with_ssd_master_of(mut self, role: Role) -> Self {
        let m = SsdMaster::of(role);
        let present = [Slot::Enc, Slot::Mac, Slot::Dek].into_iter().all(|slot| {
            self.find(&m.master, slot)
                .is_ok_and(|k| k.key_type == KeyType::Aes128)
        });
        self.ssd = present.then_some(m);
        self
    }

    /// True when this vault derives its role's SSD key sets from an SSD master.
    pub fn derives_ssd_keys(&self) -> bool {
        self.ssd.is_some()
    }

    /// The SSD master of `role` made in `kms` (generated there; AES-128, an internal master
    /// whose derived sets can be wrapped). Nothing if it is there already.
    pub fn make_ssd_master(kms: &dyn Kms, role: Role) -> Result<(), KmsError> {
        let m = SsdMaster::of(role);
        for slot in [Slot::Enc, Slot::Mac, Slot::Dek] {
            let id = key_id(&m.master, slot, SSD_MASTER_VERSION)
                .map_err(|_| KmsError::InvalidKeyName)?;
            match kms.generate(
                &id,
                KeySpec::internal_master(KeyType::Aes128),
                purpose::PROVISION,
            ) {
                Ok(_) | Err(KmsError::KeyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The KMS.
    pub fn kms(&self) -> &Arc<dyn Kms> {
        &self.kms
    }

    /// Tells the vault which purse master keys the issuer `name` has in the KMS (each stored
    /// as [`key_id`]`(name, Slot::PurseMaster { usage, index }, version)`), its initial PIN,
    /// profile and SM4 rules. The PIN is the one secret kept here (wiped on drop).
    pub fn register_purse_issuer(
        &mut self,
        name: KeyName,
        masters: Vec<MasterKeyInfo>,
        pin: &[u8],
        profile: PurseProfile,
        sm4_rules: Sm4Rules,
    ) {
        self.issuers.insert(
            name,
            Issuer {
                masters,
                pin: Zeroizing::new(pin.to_vec()),
                profile,
                sm4_rules,
            },
        );
    }

    /// A fresh key hierarchy for a new deployment, every key generated inside `kms`
    /// (`Kms::generate`): for [`Role::Sei`] the ISD master key set (AES-128, KVN `30`), the
    /// token signer (SM2) and the receipt key (AES-128); for [`Role::Sp`] the transport key
    /// (SM2) and the purse issuer's master keys (of `purse.algorithm`).
    ///
    /// The ISD master and the receipt key are generated internal (never exportable): no SE
    /// can be keyed for them. A deployment whose SEs come from card production shares those
    /// two with the SE maker: [`KmsVault::provision_shared`].
    pub fn provision(
        kms: Arc<dyn Kms>,
        parties: &Parties,
        role: Role,
        purse: &PurseIssuerSetup,
    ) -> Result<Self, KmsError> {
        Self::provision_shared(kms, parties, role, purse, None)
    }

    /// [`KmsVault::provision`], with the keys the SEI-TSM shares with card production
    /// (`shared`: the ISD master key set and the receipt key the SE maker keys its SEs with)
    /// imported internal (non-exportable from then on) instead of generated, for
    /// [`Role::Sei`]; the token signer is still generated in the KMS (the SE maker gets its
    /// public key, [`KmsVault::token_public_key`]). `shared` is ignored for [`Role::Sp`].
    pub fn provision_shared(
        kms: Arc<dyn Kms>,
        parties: &Parties,
        role: Role,
        purse: &PurseIssuerSetup,
        shared: Option<&SharedSeKeys>,
    ) -> Result<Self, KmsError> {
        let p = purpose::PROVISION;
        let mut vault = Self::new(kms.clone());
        let id = |name: &KeyName, slot, version| {
            key_id(name, slot, version).map_err(|_| KmsError::InvalidKeyName)
        };
        match role {
            Role::Sei => {
                if let Some(shared) = shared {
                    for (slot, key) in [Slot::Enc, Slot::Mac, Slot::Dek]
                        .into_iter()
                        .zip(&shared.isd_master)
                    {
                        kms.import(
                            &id(&parties.isd_master, slot, shared.isd_master_kvn)?,
                            KeySpec::internal(KeyType::Aes128),
                            key,
                            p,
                        )?;
                    }
                    kms.import(
                        &id(&parties.receipt_key, Slot::Receipt, SINGLE_KEY_VERSION)?,
                        KeySpec::internal(KeyType::Aes128),
                        &shared.receipt_key,
                        p,
                    )?;
                } else {
                    for slot in [Slot::Enc, Slot::Mac, Slot::Dek] {
                        kms.generate(
                            &id(&parties.isd_master, slot, FRESH_ISD_MASTER_KVN)?,
                            KeySpec::internal(KeyType::Aes128),
                            p,
                        )?;
                    }
                    kms.generate(
                        &id(&parties.receipt_key, Slot::Receipt, SINGLE_KEY_VERSION)?,
                        KeySpec::internal(KeyType::Aes128),
                        p,
                    )?;
                }
                kms.generate(
                    &id(&parties.token_signer, Slot::TokenSigner, SINGLE_KEY_VERSION)?,
                    KeySpec::internal(KeyType::Sm2),
                    p,
                )?;
            }
            Role::Sp => {
                kms.generate(
                    &id(&parties.sp_transport, Slot::Transport, SINGLE_KEY_VERSION)?,
                    KeySpec::internal(KeyType::Sm2),
                    p,
                )?;
                let key_type = match purse.algorithm {
                    PurseAlgorithm::Tdes => KeyType::Tdes2,
                    _ => KeyType::Sm4,
                };
                let mut masters = Vec::new();
                for (usage, index) in FRESH_MASTERS {
                    let info = MasterKeyInfo {
                        usage,
                        index,
                        version: 1,
                        algorithm: purse.algorithm,
                    };
                    // Exportable so that the per-card keys derived from it may leave wrapped
                    // (the KMS's rule); the vault never wraps a master itself.
                    kms.generate(
                        &id(
                            &parties.purse_issuer,
                            Slot::PurseMaster { usage, index },
                            info.version,
                        )?,
                        KeySpec::exportable(key_type),
                        p,
                    )?;
                    masters.push(info);
                }
                vault.register_purse_issuer(
                    parties.purse_issuer.clone(),
                    masters,
                    &purse.pin,
                    purse.profile,
                    purse.sm4_rules,
                );
            }
        }
        Self::make_ssd_master(&*kms, role)?;
        Ok(vault.with_ssd_master_of(role))
    }

    /// The exact keys the ykt-tsm tests use, imported into `kms` (a test deployment): for
    /// [`Role::Sei`] the ISD master `40..40 ‖ 41..41 ‖ 42..42` (KVN `30`), the SM2 token signer
    /// `11…11 01`, the receipt key `5A × 16` (AES); for [`Role::Sp`] the SM2 transport key
    /// `22…22 07` and the e-purse brief's §8 3DES master keys with its test PIN, so that an SE
    /// keyed as those tests key it works with this vault.
    pub fn provision_test_keys(
        kms: Arc<dyn Kms>,
        parties: &Parties,
        role: Role,
    ) -> Result<Self, KmsError> {
        let p = purpose::PROVISION;
        let mut vault = Self::new(kms.clone());
        let id = |name: &KeyName, slot, version| {
            key_id(name, slot, version).map_err(|_| KmsError::InvalidKeyName)
        };
        let import = |id: KeyId, spec: KeySpec, value: &[u8]| {
            kms.import(&id, spec, &SecretBytes::from_slice(value), p)
                .map(|_| ())
        };
        match role {
            Role::Sei => {
                let t = &vault::test_keys::ISD_MASTER;
                for (slot, key) in [(Slot::Enc, &t[0]), (Slot::Mac, &t[1]), (Slot::Dek, &t[2])] {
                    import(
                        id(&parties.isd_master, slot, vault::test_keys::ISD_MASTER_KVN)?,
                        KeySpec::internal(KeyType::Aes128),
                        key,
                    )?;
                }
                import(
                    id(&parties.token_signer, Slot::TokenSigner, SINGLE_KEY_VERSION)?,
                    KeySpec::internal(KeyType::Sm2),
                    &vault::test_keys::TOKEN_SIGNER,
                )?;
                import(
                    id(&parties.receipt_key, Slot::Receipt, SINGLE_KEY_VERSION)?,
                    KeySpec::internal(KeyType::Aes128),
                    &vault::test_keys::RECEIPT_KEY,
                )?;
            }
            Role::Sp => {
                import(
                    id(&parties.sp_transport, Slot::Transport, SINGLE_KEY_VERSION)?,
                    KeySpec::internal(KeyType::Sm2),
                    &vault::test_keys::SP_TRANSPORT,
                )?;
                let masters: Vec<MasterKey> =
                    vault::test_keys::test_master_keys(PurseAlgorithm::Tdes);
                for m in &masters {
                    import(
                        id(
                            &parties.purse_issuer,
                            Slot::PurseMaster {
                                usage: m.usage,
                                index: m.index,
                            },
                            m.version,
                        )?,
                        KeySpec::exportable(KeyType::Tdes2),
                        m.key.expose(),
                    )?;
                }
                vault.register_purse_issuer(
                    parties.purse_issuer.clone(),
                    masters.iter().map(MasterKeyInfo::from).collect(),
                    &vault::test_keys::TEST_PIN,
                    PurseProfile::EPURSE,
                    Sm4Rules::BRIEF,
                );
            }
        }
        // The SSD master is not one of the public test keys: generated in the KMS, once.
        Self::make_ssd_master(&*kms, role)?;
        Ok(vault.with_ssd_master_of(role))
    }

    /// A hierarchy [`KmsVault::provision`] (or [`KmsVault::provision_shared`]) made in `kms`
    /// earlier, opened again (a restart): checks that every key of `role` is there with the
    /// type it was made with, and registers the purse issuer ([`Role::Sp`]) with the master
    /// keys `provision` made for `purse.algorithm` and `purse`'s PIN, profile and SM4 rules.
    /// A missing key is [`KmsError::KeyNotFound`], a key of another type
    /// [`KmsError::WrongKeyType`]; nothing in `kms` is changed.
    pub fn open(
        kms: Arc<dyn Kms>,
        parties: &Parties,
        role: Role,
        purse: &PurseIssuerSetup,
    ) -> Result<Self, KmsError> {
        let mut vault = Self::new(kms.clone());
        let listed = kms.list()?;
        let expect = |name: &KeyName, slot: Slot, version: Option<u8>, key_type: KeyType| {
            let wanted =
                key_id(name, slot, version.unwrap_or(0)).map_err(|_| KmsError::InvalidKeyName)?;
            let found = listed.iter().find(|k| {
                k.id.name() == wanted.name() && version.is_none_or(|v| k.id.version() == v)
            });
            match found {
                None => Err(KmsError::KeyNotFound(wanted)),
                Some(k) if k.key_type != key_type => Err(KmsError::WrongKeyType {
                    id: k.id.clone(),
                    actual: k.key_type,
                    expected: "the type the hierarchy was provisioned with",
                }),
                Some(_) => Ok(()),
            }
        };
        match role {
            Role::Sei => {
                for slot in [Slot::Enc, Slot::Mac, Slot::Dek] {
                    expect(&parties.isd_master, slot, None, KeyType::Aes128)?;
                }
                let v = Some(SINGLE_KEY_VERSION);
                expect(&parties.token_signer, Slot::TokenSigner, v, KeyType::Sm2)?;
                expect(&parties.receipt_key, Slot::Receipt, v, KeyType::Aes128)?;
            }
            Role::Sp => {
                let v = Some(SINGLE_KEY_VERSION);
                expect(&parties.sp_transport, Slot::Transport, v, KeyType::Sm2)?;
                let key_type = match purse.algorithm {
                    PurseAlgorithm::Tdes => KeyType::Tdes2,
                    _ => KeyType::Sm4,
                };
                let mut masters = Vec::new();
                for (usage, index) in FRESH_MASTERS {
                    let slot = Slot::PurseMaster { usage, index };
                    expect(&parties.purse_issuer, slot, Some(1), key_type)?;
                    masters.push(MasterKeyInfo {
                        usage,
                        index,
                        version: 1,
                        algorithm: purse.algorithm,
                    });
                }
                vault.register_purse_issuer(
                    parties.purse_issuer.clone(),
                    masters,
                    &purse.pin,
                    purse.profile,
                    purse.sm4_rules,
                );
            }
        }
        // A hierarchy made before SSD masters existed keeps generating and storing its SSD
        // key sets; one with a master derives them.
        Ok(vault.with_ssd_master_of(role))
    }

    /// The SM2 public key (SEC1, uncompressed) of the token signer `name`: what card
    /// production puts on every SE as the token verification key (tsm-gp.md §4).
    pub fn token_public_key(&self, name: &KeyName) -> Result<Vec<u8>, KmsError> {
        let id = key_id(name, Slot::TokenSigner, SINGLE_KEY_VERSION)
            .map_err(|_| KmsError::InvalidKeyName)?;
        match self.kms.public_key(&id)? {
            PublicKey::Sm2(k) => Ok(k.to_bytes().to_vec()),
            _ => Err(KmsError::WrongKeyType {
                id,
                actual: KeyType::Rsa,
                expected: "an SM2 token signer",
            }),
        }
    }

    /// The key check values (the first 3 bytes of the key's encryption of
    /// `ykt_tsm::vault::key_check_input`) of the ISD master's K-ENC, K-MAC, K-DEK and their
    /// version: what a key ceremony compares, never a key value.
    pub fn isd_master_check_values(&self, name: &KeyName) -> Result<(u8, [[u8; 3]; 3]), KmsError> {
        let mut out = [[0u8; 3]; 3];
        let mut version = 0;
        for (slot, kcv) in [Slot::Enc, Slot::Mac, Slot::Dek].into_iter().zip(&mut out) {
            let wanted = key_id(name, slot, 0).map_err(|_| KmsError::InvalidKeyName)?;
            let info = self
                .kms
                .list()?
                .into_iter()
                .find(|k| k.id.name() == wanted.name())
                .ok_or(KmsError::KeyNotFound(wanted))?;
            version = info.id.version();
            *kcv = self.check_value(&info)?;
        }
        Ok((version, out))
    }

    /// The key check value of the receipt key `name` (as [`Self::isd_master_check_values`]).
    pub fn receipt_check_value(&self, name: &KeyName) -> Result<[u8; 3], KmsError> {
        let id = key_id(name, Slot::Receipt, SINGLE_KEY_VERSION)
            .map_err(|_| KmsError::InvalidKeyName)?;
        let info = self.kms.info(&id)?;
        self.check_value(&info)
    }

    fn check_value(&self, info: &KeyInfo) -> Result<[u8; 3], KmsError> {
        let kind = kind_of(info.key_type).map_err(|_| KmsError::WrongKeyType {
            id: info.id.clone(),
            actual: info.key_type,
            expected: "a block-cipher key",
        })?;
        let block = self.kms.encrypt(
            &ykt_kms::KeyRef::from(&info.id),
            &CipherMode::Ecb,
            &vault::key_check_input(kind),
            purpose::CHECK_VALUE,
        )?;
        match block.as_slice() {
            [a, b, c, ..] => Ok([*a, *b, *c]),
            _ => Err(KmsError::InvalidInput("short check value block")),
        }
    }

    /// The stored key of `name` and `slot` (any version).
    fn find(&self, name: &KeyName, slot: Slot) -> Result<KeyInfo, VaultError> {
        let wanted = key_id(name, slot, 0)?;
        self.kms
            .list()
            .map_err(kms_err)?
            .into_iter()
            .find(|k| k.id.name() == wanted.name())
            .ok_or(VaultError::UnknownKey)
    }

    /// One key of the key set `name`: stored under the name, or else derived from this role's
    /// SSD master when the name is one of its SSD sets.
    fn set_key(&self, name: &KeyName, slot: Slot) -> Result<Resolved, VaultError> {
        match self.find(name, slot) {
            Ok(info) => Ok(Resolved {
                version: info.id.version(),
                key_type: info.key_type,
                r: ykt_kms::KeyRef::from(&info.id),
            }),
            Err(VaultError::UnknownKey) => {
                let m = self
                    .ssd
                    .as_ref()
                    .filter(|m| m.derives(name))
                    .ok_or(VaultError::UnknownKey)?;
                let master = self.find(&m.master, slot)?;
                let key = match slot {
                    Slot::Enc => GpStaticKey::Enc,
                    Slot::Mac => GpStaticKey::Mac,
                    _ => GpStaticKey::Dek,
                };
                Ok(Resolved {
                    version: m.version,
                    key_type: master.key_type,
                    r: ykt_kms::KeyRef::from(&master.id).diversified(Derivation::GpKdf3 {
                        kdd: SsdMaster::kdd(name),
                        key,
                    }),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The version, type and KMS reference of one static key of the key set `keys`.
    fn static_key(&self, keys: &KeyRef, role: StaticKeyRole) -> Result<Resolved, VaultError> {
        let slot = Slot::of_role(role);
        match keys {
            KeyRef::Named(name) => self.set_key(name, slot),
            KeyRef::Isd { master, seid } => {
                let info = self.find(master, slot)?;
                let key = match role {
                    StaticKeyRole::Enc => GpStaticKey::Enc,
                    StaticKeyRole::Mac => GpStaticKey::Mac,
                    _ => GpStaticKey::Dek,
                };
                // tsm-gp.md §6, `ykt_tsm::proposals::ISD_DIVERSIFICATION` over the SEID.
                let step = match vault::isd_diversification_name() {
                    "emv" => Derivation::GpEmv { kdd: seid.0, key },
                    "visa2" => Derivation::GpVisa2 { kdd: seid.0, key },
                    _ => Derivation::GpKdf3 { kdd: seid.0, key },
                };
                let r = ykt_kms::KeyRef::from(&info.id).diversified(step);
                Ok(Resolved {
                    version: info.id.version(),
                    key_type: info.key_type,
                    r,
                })
            }
            _ => Err(VaultError::UnknownKey),
        }
    }

    fn issuer(&self, name: &KeyName) -> Result<&Issuer, VaultError> {
        self.issuers.get(name).ok_or(VaultError::UnknownKey)
    }

    /// The card key of `master` for `card` (the master diversified by the ASN).
    fn card_key(
        issuer: &KeyName,
        master: &MasterKeyInfo,
        diversifier: [u8; 8],
    ) -> Result<ykt_kms::KeyRef, VaultError> {
        let id = key_id(
            issuer,
            Slot::PurseMaster {
                usage: master.usage,
                index: master.index,
            },
            master.version,
        )?;
        Ok(ykt_kms::KeyRef::from(id).diversified(Derivation::Pboc { diversifier }))
    }

    /// The algorithm, the card's load key and its TAC key for `proof`.
    fn load_keys(
        &self,
        issuer_name: &KeyName,
        proof: &LoadProof,
    ) -> Result<(Sm4Rules, ykt_kms::KeyRef, ykt_kms::KeyRef), VaultError> {
        let issuer = self.issuer(issuer_name)?;
        let alg = PurseAlgorithm::from_algorithm_id(proof.algorithm_id, issuer.sm4_rules)
            .ok_or(VaultError::KeyType)?;
        let load = issuer
            .masters
            .iter()
            .find(|m| {
                m.usage == KeyUsage::Load
                    && m.index == proof.key_index
                    && m.version == proof.key_version
            })
            .ok_or(VaultError::UnknownKey)?;
        if load.algorithm != alg {
            return Err(VaultError::KeyType);
        }
        let tac = issuer
            .masters
            .iter()
            .find(|m| m.usage == KeyUsage::Tac)
            .ok_or(VaultError::UnknownKey)?;
        let div = proof.card.asn().diversifier();
        Ok((
            issuer.sm4_rules,
            Self::card_key(issuer_name, load, div)?,
            Self::card_key(issuer_name, tac, div)?,
        ))
    }
    /// Opens a handover blob with the transport key and stores its keys under `name`.
    fn open_handover(
        &self,
        name: &KeyName,
        transport: &KeyName,
        wrapped: &[u8],
    ) -> Result<(), VaultError> {
        let key = self.find(transport, Slot::Transport)?;
        let layout = |header: &[u8]| {
            let (version, len) =
                vault::parse_handover_header(header).ok_or(KmsError::InvalidInput("handover"))?;
            let key_type = match len {
                16 => KeyType::Aes128,
                32 => KeyType::Aes256,
                _ => return Err(KmsError::InvalidInput("handover key length")),
            };
            [Slot::Enc, Slot::Mac, Slot::Dek]
                .into_iter()
                .map(|slot| {
                    key_id(name, slot, version)
                        .map(|id| (id, KeySpec::internal(key_type)))
                        .map_err(|_| KmsError::InvalidKeyName)
                })
                .collect()
        };
        self.kms
            .open_import(
                &ykt_kms::KeyRef::from(&key.id),
                ykt_tsm::proposals::HANDOVER_CIPHER,
                wrapped,
                HANDOVER_HEADER_LEN,
                &layout,
                purpose::HANDOVER,
            )
            .map(|_| ())
            .map_err(|e| match e {
                KmsError::KeyExists(_) => VaultError::KeyExists,
                KmsError::KeyNotFound(_) => VaultError::UnknownKey,
                _ => VaultError::Unwrap,
            })
    }
}

impl KeyVault for KmsVault {
    fn contains(&self, name: &KeyName) -> bool {
        if self.issuers.contains_key(name) {
            return true;
        }
        if self.ssd.as_ref().is_some_and(|m| m.derives(name)) {
            return true;
        }
        let prefix = format!("{}/", base(name));
        self.kms
            .list()
            .is_ok_and(|l| l.iter().any(|k| k.id.name().starts_with(&prefix)))
    }

    fn channel_key_info(&self, keys: &KeyRef) -> Result<(u8, StaticKeyKind), VaultError> {
        let k = self.static_key(keys, StaticKeyRole::Enc)?;
        Ok((k.version, kind_of(k.key_type)?))
    }

    // tsm-gp.md §5.1, §5.2: the session keys computed in the KMS.
    fn channel_operation(
        &self,
        keys: &KeyRef,
        operation: &StaticKeyOperation<'_>,
    ) -> Result<Zeroizing<[u8; 16]>, VaultError> {
        match operation {
            StaticKeyOperation::TdesCbc { key, data } => {
                let r = self.static_key(keys, *key)?.r;
                let out = Zeroizing::new(
                    self.kms
                        .encrypt(
                            &r,
                            &CipherMode::Cbc { iv: vec![0u8; 8] },
                            &data[..],
                            purpose::CHANNEL,
                        )
                        .map_err(kms_err)?,
                );
                block16(&out)
            }
            StaticKeyOperation::Cmac { key, data } => {
                let r = self.static_key(keys, *key)?.r;
                let out = Zeroizing::new(
                    self.kms
                        .mac(&r, &MacAlgorithm::Cmac, data, purpose::CHANNEL)
                        .map_err(kms_err)?,
                );
                block16(&out)
            }
            _ => Err(VaultError::KeyType),
        }
    }

    fn generate_key_set(
        &mut self,
        name: &KeyName,
        version: u8,
        _rng: &mut dyn Entropy,
    ) -> Result<(), VaultError> {
        // The KMS generates from its own random source.
        if self.contains(name) {
            return Err(VaultError::KeyExists);
        }
        let mut made = Vec::new();
        for slot in [Slot::Enc, Slot::Mac, Slot::Dek] {
            let id = key_id(name, slot, version)?;
            let r = self
                .kms
                .generate(&id, KeySpec::exportable(KeyType::Aes128), purpose::GENERATE);
            if let Err(e) = r {
                for id in &made {
                    let _ = self.kms.destroy(id, purpose::GENERATE);
                }
                return Err(kms_err(e));
            }
            made.push(id);
        }
        Ok(())
    }

    // tsm-gp.md §3.6: PUT KEY / DGI 8001 data with the keys wrapped in the KMS.
    fn wrap_key_set(
        &self,
        new: &KeyName,
        under: &KeyRef,
        encryption: KeyEncryption,
    ) -> Result<WrappedKeySet, VaultError> {
        let Resolved {
            key_type: dek_type,
            r: dek,
            ..
        } = self.static_key(under, StaticKeyRole::Dek)?;
        let (dek, mode) = match (encryption, dek_type) {
            (KeyEncryption::StaticDek, KeyType::Tdes2) => return Err(VaultError::KeyType),
            (KeyEncryption::StaticDek, _) => (dek, WrapMode::CbcZeroIv),
            (KeyEncryption::Scp02SessionDek { sequence_counter }, KeyType::Tdes2) => (
                dek.diversified(Derivation::Scp02Session {
                    constant: SCP02_DEK_CONSTANT,
                    sequence_counter,
                }),
                WrapMode::Ecb,
            ),
            _ => return Err(VaultError::KeyType),
        };
        let mut version = 0;
        let mut kind = StaticKeyKind::Tdes;
        let mut blocks = Vec::with_capacity(3);
        for role in [StaticKeyRole::Enc, StaticKeyRole::Mac, StaticKeyRole::Dek] {
            let key = self.set_key(new, Slot::of_role(role))?;
            version = key.version;
            kind = kind_of(key.key_type)?;
            let r = key.r;
            let kcv = self
                .kms
                .encrypt(
                    &r,
                    &CipherMode::Ecb,
                    &vault::key_check_input(kind),
                    purpose::PUT_KEY,
                )
                .map_err(kms_err)?;
            let kcv = [kcv[0], kcv[1], kcv[2]];
            let wrapped = self
                .kms
                .wrap(&r, &dek, mode, purpose::PUT_KEY)
                .map_err(kms_err)?;
            blocks.push((wrapped, kcv));
        }
        let key_len = match kind {
            StaticKeyKind::Aes(n) => n,
            _ => 16,
        };
        let blocks: [(Vec<u8>, [u8; 3]); 3] = blocks.try_into().map_err(|_| VaultError::KeyType)?;
        vault::wrapped_key_set(version, kind, key_len, blocks)
    }

    // tsm-gp.md §6: the handover, SM2-sealed in the KMS.
    fn export_key_set(
        &self,
        name: &KeyName,
        recipient: &[u8],
        _rng: &mut dyn Entropy,
    ) -> Result<Vec<u8>, VaultError> {
        let public = Sm2PublicKey::from_sec1_bytes(recipient).map_err(|_| VaultError::KeyType)?;
        let keys = [Slot::Enc, Slot::Mac, Slot::Dek].map(|slot| self.set_key(name, slot));
        let [enc, mac, dek] = keys;
        let (enc, mac, dek) = (enc?, mac?, dek?);
        let len = match enc.key_type {
            KeyType::Aes128 => 16,
            KeyType::Aes256 => 32,
            _ => return Err(VaultError::KeyType),
        };
        let header = vault::handover_header(enc.version, len);
        let refs = [enc.r, mac.r, dek.r];
        let parts = [
            WrapPart::Clear(&header),
            WrapPart::Key(&refs[0]),
            WrapPart::Key(&refs[1]),
            WrapPart::Key(&refs[2]),
        ];
        self.kms
            .seal_for(
                &parts,
                &public,
                ykt_tsm::proposals::HANDOVER_CIPHER,
                purpose::HANDOVER,
            )
            .map_err(kms_err)
    }

    fn import_key_set(
        &mut self,
        name: &KeyName,
        transport: &KeyName,
        wrapped: &[u8],
    ) -> Result<(), VaultError> {
        // Importing the same set again is not an error (a resumed flow re-sends it): the blob
        // is opened under a scratch name and its keys compared with the stored ones by their
        // check values; a different set under the name is `KeyExists`.
        if self.find(name, Slot::Enc).is_ok() {
            let scratch = KeyName(format!("{}.reimport", base(name)));
            self.delete_key(&scratch);
            self.open_handover(&scratch, transport, wrapped)?;
            let same = [Slot::Enc, Slot::Mac, Slot::Dek].iter().all(|slot| {
                let kcv = |n: &KeyName| {
                    let info = self.find(n, *slot).ok()?;
                    let kind = kind_of(info.key_type).ok()?;
                    let input = vault::key_check_input(kind);
                    self.kms
                        .encrypt(
                            &ykt_kms::KeyRef::from(&info.id),
                            &CipherMode::Ecb,
                            &input,
                            purpose::HANDOVER,
                        )
                        .ok()
                        .map(|c| (info.id.version(), c))
                };
                let (a, b) = (kcv(name), kcv(&scratch));
                a.is_some() && a == b
            });
            self.delete_key(&scratch);
            return if same {
                Ok(())
            } else {
                Err(VaultError::KeyExists)
            };
        }
        self.open_handover(name, transport, wrapped)
    }

    fn transport_public_key(&self, transport: &KeyName) -> Result<Vec<u8>, VaultError> {
        let key = self.find(transport, Slot::Transport)?;
        match self.kms.public_key(&key.id).map_err(kms_err)? {
            PublicKey::Sm2(pk) => Ok(pk.to_bytes().to_vec()),
            _ => Err(VaultError::KeyType),
        }
    }

    fn delete_key(&mut self, name: &KeyName) {
        for slot in [Slot::Enc, Slot::Mac, Slot::Dek] {
            if let Ok(info) = self.find(name, slot) {
                let _ = self.kms.destroy(&info.id, purpose::DELETE);
            }
        }
    }

    // tsm-gp.md §6: the card keys diversified and wrapped inside the KMS.
    fn purse_perso_blocks(
        &self,
        issuer_name: &KeyName,
        card: &PurseCardSpec,
        under: &KeyRef,
    ) -> Result<Vec<PersoBlock>, VaultError> {
        let issuer = self.issuer(issuer_name)?;
        let template =
            vault::purse_perso_template(&issuer.masters, &issuer.pin, issuer.profile, card)?;
        let Resolved {
            key_type: dek_type,
            r: dek,
            ..
        } = self.static_key(under, StaticKeyRole::Dek)?;
        if dek_type == KeyType::Tdes2 {
            return Err(VaultError::KeyType);
        }
        let div = card.card_number.asn().diversifier();
        let card_keys: Vec<ykt_kms::KeyRef> = issuer
            .masters
            .iter()
            .map(|m| Self::card_key(issuer_name, m, div))
            .collect::<Result<_, _>>()?;
        template
            .iter()
            .map(|block| {
                let data = if block.encrypted {
                    let parts: Vec<WrapPart<'_>> = block
                        .parts
                        .iter()
                        .map(|p| match p {
                            PersoPart::Clear(bytes) => Ok(WrapPart::Clear(&bytes[..])),
                            PersoPart::CardKey(n) => card_keys
                                .get(*n)
                                .map(WrapPart::Key)
                                .ok_or(VaultError::KeyType),
                            _ => Err(VaultError::KeyType),
                        })
                        .collect::<Result<_, _>>()?;
                    self.kms
                        .wrap_composed(&parts, &dek, WrapMode::CbcZeroIv, purpose::PERSO)
                        .map_err(kms_err)?
                } else {
                    let mut out = Vec::new();
                    for p in &block.parts {
                        match p {
                            PersoPart::Clear(bytes) => out.extend_from_slice(bytes),
                            _ => return Err(VaultError::KeyType),
                        }
                    }
                    out
                };
                Ok(PersoBlock {
                    p1: block.p1,
                    p2: block.p2,
                    data,
                })
            })
            .collect()
    }

    // e-purse.md §5.4.
    fn verify_mac1(&self, issuer: &KeyName, proof: &LoadProof) -> Result<(), VaultError> {
        let (sm4_rules, dlk, _) = self.load_keys(issuer, proof)?;
        let algorithm = MacAlgorithm::PurseSession {
            session_input: purse::load_session_input(proof.random, proof.online_counter),
            sm4_rules,
        };
        self.kms
            .verify_mac(
                &dlk,
                &algorithm,
                &vault::mac1_input(proof),
                &proof.mac1,
                purpose::LOAD,
            )
            .map_err(|e| match e {
                KmsError::MacMismatch => VaultError::Mac1Invalid,
                e => kms_err(e),
            })
    }

    fn load_mac2(
        &self,
        issuer: &KeyName,
        proof: &LoadProof,
        datetime: &[u8; 7],
    ) -> Result<[u8; 4], VaultError> {
        self.verify_mac1(issuer, proof)?;
        let (sm4_rules, dlk, _) = self.load_keys(issuer, proof)?;
        let algorithm = MacAlgorithm::PurseSession {
            session_input: purse::load_session_input(proof.random, proof.online_counter),
            sm4_rules,
        };
        let mac = self
            .kms
            .mac(
                &dlk,
                &algorithm,
                &vault::mac2_input(proof, datetime),
                purpose::LOAD,
            )
            .map_err(kms_err)?;
        mac.try_into().map_err(|_| VaultError::Crypto)
    }

    // e-purse.md §5.5.
    fn verify_load_tac(
        &self,
        issuer: &KeyName,
        proof: &LoadProof,
        datetime: &[u8; 7],
        tac: &[u8; 4],
    ) -> Result<(), VaultError> {
        let (sm4_rules, _, dtk) = self.load_keys(issuer, proof)?;
        self.kms
            .verify_mac(
                &dtk,
                &MacAlgorithm::PurseTac { sm4_rules },
                &vault::tac_input(proof, datetime),
                tac,
                purpose::TAC,
            )
            .map_err(|e| match e {
                KmsError::MacMismatch => VaultError::TacInvalid,
                e => kms_err(e),
            })
    }

    // tsm-gp.md §4.
    fn sign_token(
        &self,
        signer: &KeyName,
        kind: TokenKind,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let key = self.find(signer, Slot::TokenSigner)?;
        let algorithm = match key.key_type {
            KeyType::Sm2 => SignatureAlgorithm::Sm2Sm3 {
                user_id: vault::TOKEN_SM2_ID.to_vec(),
            },
            KeyType::Rsa => SignatureAlgorithm::RsaPkcs1Sha256,
            _ => return Err(VaultError::KeyType),
        };
        let message = vault::token_message(kind, p1, p2, data)?;
        self.kms
            .sign(&key.id, &algorithm, &message, purpose::TOKEN)
            .map_err(kms_err)
    }

    // tsm-gp.md §4.
    fn verify_receipt(
        &self,
        key: &KeyName,
        response: &[u8],
        context: &ReceiptContext<'_>,
    ) -> Result<(), VaultError> {
        let info = self.find(key, Slot::Receipt)?;
        let (mac, input) = vault::receipt_mac_input(response, context)?;
        let (algorithm, len) = match info.key_type {
            KeyType::Tdes2 => (MacAlgorithm::RetailMac { iv: [0u8; 8] }, 8),
            KeyType::Aes128 | KeyType::Aes256 | KeyType::Sm4 => (MacAlgorithm::Cmac, 16),
            _ => return Err(VaultError::KeyType),
        };
        if mac.len() != len {
            return Err(VaultError::ReceiptInvalid);
        }
        self.kms
            .verify_mac(
                &ykt_kms::KeyRef::from(&info.id),
                &algorithm,
                &input,
                &mac,
                purpose::RECEIPT,
            )
            .map_err(|e| match e {
                KmsError::MacMismatch => VaultError::ReceiptInvalid,
                e => kms_err(e),
            })
    }
}
