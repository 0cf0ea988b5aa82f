//! Issuer side: personalising purse instances from master keys at install (the factory shortcut;
//! GlobalPlatform personalisation through STORE DATA is [`crate::perso`]), and creating
//! instances from the library kind (a card manager's INSTALL, or a card state file being loaded).
//!
//! ```text
//!   IssuerFactory { master DLK/DPK/DTK/DAMK/DPUK/DRPK }
//!        │ issue(aid, profile, CardData { EF15 (with the ASN), EF16, EF17, PIN, balance, counters })
//!        ▼   card keys = diversify(master, ASN[2..10])                 e-purse.md §3.2
//!   IssuedPurse ── install(&mut Card) ──▶ PurseApplet + persistent objects + EF15..EF1E
//! ```

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ykt_apdu::StatusWord;
use ykt_card::{Aid, Applet, AppletFactory, Card, CardError, Context};
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, diversify};
use zeroize::Zeroizing;

use crate::applet::{KIND, PurseApplet};
use crate::files::{
    EF1A_RECORD_LEN, EF1A_RECORDS, EF15_LEN, EF16_LEN, EF17_LEN, SFI_EF1A, SFI_EF15, SFI_EF16,
    SFI_EF17, ef_specs, ef1a_initial_record,
};
use crate::keys::{self, KeyEntry, KeyUsage};
use crate::profile::PurseProfile;
use crate::state::{
    AppStatus, LastTransaction, OBJ_KEYS, OBJ_PURSE, OBJ_STATUS, PurseState, valid_pin,
};

/// Why an instance could not be issued or installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The AID is not 5 to 16 bytes.
    #[error("AID must have 5 to 16 bytes")]
    InvalidAid,
    /// Two master keys share a usage and index.
    #[error("two {usage:?} keys with index {index:02X}")]
    DuplicateKey {
        /// Usage of the duplicated key.
        usage: KeyUsage,
        /// Index of the duplicated key.
        index: u8,
    },
    /// More keys than the key file can hold (255).
    #[error("too many keys")]
    TooManyKeys,
    /// An SM4 rule set this version cannot store.
    #[error("SM4 rules without a persistent encoding")]
    UnsupportedAlgorithm,
    /// The PIN is not 2..=6 bytes of BCD digits.
    #[error("PIN must be 2 to 6 bytes of BCD digits")]
    InvalidPin,
    /// The initial balance is above the profile's maximum.
    #[error("initial balance above the profile's maximum")]
    BalanceAboveLimit,
    /// An EF1A record number outside 1..=[`crate::files::EF1A_RECORDS`].
    #[error("no EF1A record {0}")]
    InvalidRecordNumber(u8),
    /// A STORE DATA block cannot hold the largest DGI, or the DGIs need more than 256 blocks.
    #[error("STORE DATA blocks too small for the DGIs")]
    BlockTooSmall,
    /// The runtime refused the installation.
    #[error("installation refused by the card runtime")]
    Install(#[source] CardError),
}

/// One master key held by the issuer.
#[derive(Clone)]
pub struct MasterKey {
    /// What the diversified card key is for.
    pub usage: KeyUsage,
    /// Key index the terminal sends.
    pub index: u8,
    /// Key version returned by INITIALIZE.
    pub version: u8,
    /// Algorithm of the master and the card key.
    pub algorithm: PurseAlgorithm,
    /// The master key.
    pub key: PurseKey,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("usage", &self.usage)
            .field("index", &self.index)
            .field("version", &self.version)
            .field("algorithm", &self.algorithm)
            .field("key", &self.key)
            .finish()
    }
}

/// Application serial number (应用序列号): 10 bytes BCD, EF15 offset 10 (e-purse.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Asn(pub [u8; 10]);

impl Asn {
    /// The key diversifier: the last 8 bytes of the ASN (e-purse.md §3.2).
    pub fn diversifier(&self) -> [u8; 8] {
        let mut d = [0u8; 8];
        d.copy_from_slice(&self.0[2..]);
        d
    }
}

/// EF15, public application basic data (e-purse.md §2, 30 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ef15 {
    /// Issuer identifier (8).
    pub issuer_id: [u8; 8],
    /// Application type identifier; `02` = EP usable.
    pub application_type: u8,
    /// Issuer application version / start flag; `01` = enabled.
    pub application_version: u8,
    /// Application serial number (10, BCD).
    pub asn: Asn,
    /// Start date YYYYMMDD (BCD).
    pub start_date: [u8; 4],
    /// Expiry date YYYYMMDD (BCD).
    pub expiry_date: [u8; 4],
    /// Issuer-defined FCI data / RFU (2).
    pub fci_data: [u8; 2],
}

impl Ef15 {
    /// The fields of the 30 file bytes (every byte string of that length is an EF15).
    pub fn decode(b: &[u8; EF15_LEN]) -> Ef15 {
        let mut issuer_id = [0u8; 8];
        issuer_id.copy_from_slice(&b[0..8]);
        let mut asn = [0u8; 10];
        asn.copy_from_slice(&b[10..20]);
        Ef15 {
            issuer_id,
            application_type: b[8],
            application_version: b[9],
            asn: Asn(asn),
            start_date: [b[20], b[21], b[22], b[23]],
            expiry_date: [b[24], b[25], b[26], b[27]],
            fci_data: [b[28], b[29]],
        }
    }

    /// The 30 file bytes.
    pub fn encode(&self) -> [u8; EF15_LEN] {
        let mut b = [0u8; EF15_LEN];
        b[0..8].copy_from_slice(&self.issuer_id);
        b[8] = self.application_type;
        b[9] = self.application_version;
        b[10..20].copy_from_slice(&self.asn.0);
        b[20..24].copy_from_slice(&self.start_date);
        b[24..28].copy_from_slice(&self.expiry_date);
        b[28..30].copy_from_slice(&self.fci_data);
        b
    }
}

/// Everything card-specific the issuer personalises.
#[derive(Clone)]
pub struct CardData {
    /// EF15 (its ASN gives the key diversifier).
    pub ef15: Ef15,
    /// EF16, cardholder data (55 bytes).
    pub ef16: [u8; EF16_LEN],
    /// EF17, management data (60 bytes).
    pub ef17: [u8; EF17_LEN],
    /// PIN, 2..=6 bytes packed BCD (e.g. `12 34 56`).
    pub pin: Vec<u8>,
    /// Initial balance.
    pub balance: u32,
    /// Initial online counter (non-zero only when migrating a card).
    pub online_counter: u16,
    /// Initial offline counter (non-zero only when migrating a card).
    pub offline_counter: u16,
}

impl fmt::Debug for CardData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardData")
            .field("ef15", &self.ef15)
            .field("pin", &"[redacted]")
            .field("balance", &self.balance)
            .field("online_counter", &self.online_counter)
            .field("offline_counter", &self.offline_counter)
            .finish_non_exhaustive()
    }
}

/// The issuer's master keys; issues personalised purse instances with diversified keys.
pub struct IssuerFactory {
    master_keys: Vec<MasterKey>,
}

impl fmt::Debug for IssuerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerFactory")
            .field("master_keys", &self.master_keys)
            .finish()
    }
}

impl IssuerFactory {
    /// A factory for `master_keys`; refuses two keys with the same usage and index.
    pub fn new(master_keys: Vec<MasterKey>) -> Result<IssuerFactory, IssueError> {
        if master_keys.len() > usize::from(u8::MAX) {
            return Err(IssueError::TooManyKeys);
        }
        for (i, a) in master_keys.iter().enumerate() {
            if master_keys[..i]
                .iter()
                .any(|b| b.usage == a.usage && b.index == a.index)
            {
                return Err(IssueError::DuplicateKey {
                    usage: a.usage,
                    index: a.index,
                });
            }
        }
        Ok(IssuerFactory { master_keys })
    }

    /// Personalises one instance: diversifies every master key with the ASN of `card.ef15`
    /// (e-purse.md §3.2) and prepares the persistent objects and files.
    pub fn issue(
        &self,
        aid: &[u8],
        profile: PurseProfile,
        card: &CardData,
    ) -> Result<IssuedPurse, IssueError> {
        IssuedPurse::from_card_keys(aid, profile, card, &self.card_keys(&card.ef15.asn))
    }

    /// The card keys of the application with `asn`: every master key diversified with the ASN
    /// (e-purse.md §3.2), with its usage, index, version and algorithm.
    pub fn card_keys(&self, asn: &Asn) -> Vec<KeyEntry> {
        let div = asn.diversifier();
        self.master_keys
            .iter()
            .map(|m| KeyEntry {
                usage: m.usage,
                index: m.index,
                version: m.version,
                algorithm: m.algorithm,
                key: diversify(&m.algorithm, &m.key, &div),
            })
            .collect()
    }
}

/// The persistent content of a freshly issued instance, written at installation (by the
/// factory) or in the transaction of the last STORE DATA block (GlobalPlatform personalisation,
/// [`crate::perso`]).
pub(crate) struct PersonalisationImage {
    key_table: Zeroizing<Vec<u8>>,
    status: Zeroizing<Vec<u8>>,
    purse: [u8; crate::state::PURSE_LEN],
    ef15: [u8; EF15_LEN],
    ef16: [u8; EF16_LEN],
    ef17: [u8; EF17_LEN],
    /// EF1A records 1..=[`EF1A_RECORDS`]; `None` = [`ef1a_initial_record`].
    ef1a: [Option<[u8; EF1A_RECORD_LEN]>; EF1A_RECORDS as usize],
}

impl PersonalisationImage {
    /// Checks the card data and keys as [`IssuedPurse::from_card_keys`] does and encodes the
    /// persistent objects.
    pub(crate) fn new(
        profile: &PurseProfile,
        card: &CardData,
        keys: &[KeyEntry],
    ) -> Result<PersonalisationImage, IssueError> {
        if !valid_pin(&card.pin) {
            return Err(IssueError::InvalidPin);
        }
        let status = AppStatus::new(&card.pin).ok_or(IssueError::InvalidPin)?;
        if card.balance > profile.max_balance {
            return Err(IssueError::BalanceAboveLimit);
        }
        if keys.len() > usize::from(u8::MAX) {
            return Err(IssueError::TooManyKeys);
        }
        for (i, a) in keys.iter().enumerate() {
            if keys[..i]
                .iter()
                .any(|b| b.usage == a.usage && b.index == a.index)
            {
                return Err(IssueError::DuplicateKey {
                    usage: a.usage,
                    index: a.index,
                });
            }
        }
        let key_table =
            Zeroizing::new(keys::encode_table(keys).ok_or(IssueError::UnsupportedAlgorithm)?);
        let purse = PurseState {
            balance: card.balance,
            online_counter: card.online_counter,
            offline_counter: card.offline_counter,
            last: None::<LastTransaction>,
        };
        Ok(PersonalisationImage {
            key_table,
            status: Zeroizing::new(status.encode().to_vec()),
            purse: purse.encode(),
            ef15: card.ef15.encode(),
            ef16: card.ef16,
            ef17: card.ef17,
            ef1a: [None; EF1A_RECORDS as usize],
        })
    }

    /// Replaces the initial content of EF1A records (index 0 = record 1).
    pub(crate) fn with_ef1a(
        mut self,
        ef1a: [Option<[u8; EF1A_RECORD_LEN]>; EF1A_RECORDS as usize],
    ) -> PersonalisationImage {
        self.ef1a = ef1a;
        self
    }

    /// Creates the objects and files inside the installation transaction.
    pub(crate) fn write(&self, ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        ctx.create(OBJ_KEYS, &self.key_table)?;
        ctx.create(OBJ_STATUS, &self.status)?;
        ctx.create(OBJ_PURSE, &self.purse)?;
        for spec in ef_specs() {
            ctx.files().create_ef(spec)?;
        }
        let mut files = ctx.files();
        files.write_binary(SFI_EF15, 0, &self.ef15)?;
        files.write_binary(SFI_EF16, 0, &self.ef16)?;
        files.write_binary(SFI_EF17, 0, &self.ef17)?;
        for (n, record) in (1..=EF1A_RECORDS).zip(&self.ef1a) {
            match record {
                Some(record) => files.append_record(SFI_EF1A, record)?,
                None => files.append_record(SFI_EF1A, &ef1a_initial_record(n))?,
            }
        }
        Ok(())
    }
}

/// A personalised purse instance, ready to install on a [`Card`].
pub struct IssuedPurse {
    applet: PurseApplet,
    image: PersonalisationImage,
}

impl fmt::Debug for IssuedPurse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedPurse")
            .field("applet", &self.applet)
            .finish_non_exhaustive()
    }
}

impl IssuedPurse {
    /// Personalises one instance with card keys that are already diversified (e.g. by the
    /// issuer's key management system, or a published vector's card key).
    pub fn from_card_keys(
        aid: &[u8],
        profile: PurseProfile,
        card: &CardData,
        keys: &[KeyEntry],
    ) -> Result<IssuedPurse, IssueError> {
        let aid = Aid::new(aid).map_err(|_| IssueError::InvalidAid)?;
        let image = PersonalisationImage::new(&profile, card, keys)?;
        Ok(IssuedPurse {
            applet: PurseApplet::new(aid, profile),
            image,
        })
    }

    /// The AID of the instance.
    pub fn aid(&self) -> &Aid {
        self.applet.aid()
    }

    /// Installs the instance: the applet plus its keys, PIN, purse and files, in one transaction.
    pub fn install(self, card: &mut Card) -> Result<(), IssueError> {
        let image = self.image;
        card.install(Box::new(self.applet), move |ctx| image.write(ctx))
            .map_err(IssueError::Install)
    }
}

/// The profile of an instance created from its install parameters, in one of three forms:
///
/// * empty: the default profile of the AID ([`PurseProfile::SECOND_TICKET`] at
///   [`crate::SECOND_TICKET_AID`], [`PurseProfile::EPURSE`] at any other AID);
/// * the profile encoding of [`PurseProfile::to_params`] (what the runtime stores and hands back);
/// * GP's install parameters field, `C9 L value` (tsm-gp.md §3.1; `C9 00` mandatory when empty)
///   with `value` in one of the two forms above; TLVs after `C9` (e.g. `EF`) are ignored.
///
/// L (the public material defines no purse install parameters): these forms are our choice.
fn profile_from_install_params(aid: &Aid, params: &[u8]) -> Option<PurseProfile> {
    match params.split_first() {
        None => Some(if aid.as_bytes() == crate::SECOND_TICKET_AID {
            PurseProfile::SECOND_TICKET
        } else {
            PurseProfile::EPURSE
        }),
        Some((&0xC9, rest)) => {
            let (len, rest) = match rest.split_first()? {
                (&0x81, rest) => {
                    let (&len, rest) = rest.split_first()?;
                    (len, rest)
                }
                (&len, rest) if len < 0x80 => (len, rest),
                _ => return None,
            };
            let value = rest.get(..usize::from(len))?;
            if value.first() == Some(&0xC9) {
                return None;
            }
            profile_from_install_params(aid, value)
        }
        Some(_) => PurseProfile::from_params(params),
    }
}

/// Creates purse instances (kind [`KIND`]): re-creates them from a card state file
/// (`Card::load_state(.., &PurseAppletFactory)`), and is the library code a card manager
/// installs from (`Card::set_library`, `Context::install_instance`). Install parameters: empty
/// (the AID's default profile), the [`PurseProfile::to_params`] encoding, or GP's `C9 L value`
/// holding one of those (L: our choice, see `docs/purse-dgi.md`). An instance created by a card manager is empty
/// until personalised through STORE DATA ([`crate::perso`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct PurseAppletFactory;

impl AppletFactory for PurseAppletFactory {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        if kind != KIND {
            return None;
        }
        let profile = profile_from_install_params(aid, params)?;
        Some(Box::new(PurseApplet::new(aid.clone(), profile)))
    }
}
