//! The ISD applet, its set-up on a card and its factory for state files.
//!
//! The ISD learns of the applications the card runtime already holds at set-up:
//! [`install_isd`] registers every AID of [`Card::applets`] (SELECTABLE, no privileges) next to
//! the entries [`IsdSetup::applications`] names explicitly. Persistent layout: `state` module
//! docs (card life cycle, sequence counter, key slots, registry, identity).

use alloc::boxed::Box;
use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_card::{Aid, Applet, AppletFactory, Card, CardError, Context, Selected};
use ykt_scp::{CardConfig, CardSession, KeySet, Protocol, SecurityLevel};

use crate::commands::get_status::Listing;
use crate::commands::load::Loading;
use crate::life_cycle::{ApplicationState, CardState};
use crate::state::{
    self, CPLC_LEN, ENTRY_LEN, Entry, EntryKind, G_IDENTITY, G_LIFE_CYCLE, G_PACKAGES, G_REGISTRY,
    KEY_SLOTS, OBJ_KEYS, OBJ_SEQUENCE, REGISTRY_SLOTS, SLOT_LEN,
};
pub use crate::state::{ApplicationEntry, Package};

/// The GP issuer security domain's AID (GP §H.1.3, the card manager of GP 2.1.1 and later).
pub const ISD_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

/// The applet kind persisted in state files.
pub const KIND: &str = "ykt.gp.isd";

/// The library kind of a supplementary security domain's code (what INSTALL creates for a
/// module of the security-domain package, [`SD_PACKAGE`]).
pub const SSD_KIND: &str = "ykt.gp.sd";

/// The security-domain package the card carries in its library: ELF `A0000001515350`, module
/// `A000000151535041` (GP-registered AIDs commonly used for SD packages, tsm-gp.md §3.9, M).
pub const SD_PACKAGE: [u8; 7] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50];
/// The security-domain module of [`SD_PACKAGE`].
pub const SD_MODULE: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x41];

/// The hash of a load file data block in INSTALL [for load] (GP §11.5.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LfdbHash {
    /// 32 bytes: SHA-256 (GP 2.3 practice, GlobalPlatformPro's default).
    Sha256,
    /// 32 bytes: SM3 (the national-algorithm profile; L: no public source pins it).
    Sm3,
}

/// The ISD's privileges as GET STATUS reports them (tsm-gp.md §3.8 "ISD ≈ 9E FE 80").
pub const ISD_PRIVILEGES: [u8; 3] = [0x9E, 0xFE, 0x80];

/// How the ISD is set up on a card.
#[derive(Clone, Debug)]
pub struct IsdSetup {
    /// The secure channel the ISD runs (the project's default is SCP03 `i` = `70`).
    pub protocol: Protocol,
    /// The lowest level EXTERNAL AUTHENTICATE accepts.
    pub minimum_level: SecurityLevel,
    /// The initial key set; its type must suit `protocol`.
    pub keys: KeySet,
    /// Key diversification data returned by INITIALIZE UPDATE.
    pub key_diversification_data: [u8; 10],
    /// Issuer identification number (GET DATA `42`), at most 16 bytes; empty = absent.
    pub iin: Vec<u8>,
    /// Card image number (GET DATA `45`), at most 16 bytes; empty = absent.
    pub cin: Vec<u8>,
    /// Card production life cycle data (GET DATA `9F7F`).
    pub cplc: [u8; CPLC_LEN],
    /// The card life cycle state to start in.
    pub state: CardState,
    /// Registry entries with their own state and privileges; every other applet on the card
    /// is registered SELECTABLE with privileges `00 00 00`.
    pub applications: Vec<ApplicationEntry>,
    /// The card's library: the load files LOAD may bring onto the card (by ELF AID and
    /// version) and the modules INSTALL may instantiate from them, each with the `ykt-card`
    /// library kind that implements it. [`IsdSetup::new`] holds the security-domain package.
    pub packages: Vec<Package>,
    /// The ELF AIDs of `packages` that are on the card from the start (LOADED, associated
    /// with the ISD); the others need LOAD.
    pub preloaded: Vec<Aid>,
    /// How a 32-byte load file data block hash is computed.
    pub lfdb_hash: LfdbHash,
    /// The token verification key (KVN 70, tsm-gp.md §4): an SSD with Delegated Management
    /// needs a token signed with its private half for every INSTALL, LOAD and DELETE. `None`:
    /// such SSDs can do none of them.
    pub token_key: Option<crate::dm::TokenKey>,
    /// The receipt key (KVN 71): its type and value; delegated operations are answered with
    /// a receipt when it is set.
    pub receipt_key: Option<(crate::dm::ReceiptAlgorithm, [u8; 16])>,
}

/// The security-domain package of [`SD_PACKAGE`] / [`SD_MODULE`] with [`SSD_KIND`].
pub fn sd_package() -> Package {
    // Both AIDs have 7 and 8 bytes, within 5..=16.
    #[allow(clippy::unwrap_used)]
    Package {
        elf: Aid::new(&SD_PACKAGE).unwrap(),
        version: [0x01, 0x00],
        modules: alloc::vec![(
            Aid::new(&SD_MODULE).unwrap(),
            alloc::string::String::from(SSD_KIND)
        )],
    }
}

impl IsdSetup {
    /// `protocol` with `keys`: C-MAC minimum, state SECURED, no IIN or CIN, a zero CPLC and
    /// key diversification data, no explicit registry entries.
    pub fn new(protocol: Protocol, keys: KeySet) -> Self {
        Self {
            protocol,
            minimum_level: SecurityLevel::C_MAC,
            keys,
            key_diversification_data: [0; 10],
            iin: Vec::new(),
            cin: Vec::new(),
            cplc: [0; CPLC_LEN],
            state: CardState::Secured,
            applications: Vec::new(),
            packages: alloc::vec![sd_package()],
            preloaded: alloc::vec![sd_package().elf],
            lfdb_hash: LfdbHash::Sha256,
            token_key: None,
            receipt_key: None,
        }
    }
}

/// Installs the ISD on `card` at [`ISD_AID`] as the card manager and registers the card's
/// applets; the card-global objects (card life cycle, registry, library, identity) are created
/// in the same transaction. Supplementary security domains need the card's library
/// (`Card::set_library`) to know [`SSD_KIND`]: [`IsdFactory`] does.
///
/// Refused with [`CardError::InstallRejected`] when the key set does not suit the protocol,
/// an identifier is too long, or there are more applications than registry slots.
pub fn install_isd(card: &mut Card, setup: &IsdSetup) -> Result<(), CardError> {
    let mut apps = setup.applications.clone();
    for aid in card.applets() {
        if !apps.iter().any(|e| &e.aid == aid) {
            apps.push(ApplicationEntry {
                aid: aid.clone(),
                state: ApplicationState::SELECTABLE,
                privileges: [0; 3],
            });
        }
    }
    // ISD_AID has 8 bytes, within 5..=16.
    #[allow(clippy::unwrap_used)]
    let isd_aid = Aid::new(&ISD_AID).unwrap();
    let mut entries: Vec<Entry> = apps
        .iter()
        .map(|a| Entry {
            kind: if a.privileges[0] & 0x80 != 0 {
                EntryKind::SecurityDomain
            } else {
                EntryKind::Application
            },
            aid: a.aid.clone(),
            state: a.state.0,
            privileges: a.privileges,
            elf: None,
            sd: Some(isd_aid.clone()),
        })
        .collect();
    for elf in &setup.preloaded {
        entries.push(Entry {
            kind: EntryKind::LoadFile,
            aid: elf.clone(),
            state: crate::life_cycle::LOAD_FILE_LOADED,
            privileges: [0; 3],
            elf: None,
            sd: Some(isd_aid.clone()),
        });
    }
    let isd = Isd::new(setup.protocol, setup.minimum_level);
    card.install_card_manager(Box::new(isd), |ctx| {
        if entries.len() > REGISTRY_SLOTS
            || state::key_type(&setup.keys) != key_type_for(setup.protocol)
            || setup
                .preloaded
                .iter()
                .any(|e| !setup.packages.iter().any(|p| &p.elf == e))
        {
            return Err(StatusWord::WRONG_DATA);
        }
        ctx.create(OBJ_SEQUENCE, &[0; 4])?;
        let mut keys = [0u8; KEY_SLOTS * SLOT_LEN];
        keys[..SLOT_LEN].copy_from_slice(&state::encode_slot(&setup.keys)?);
        ctx.create(OBJ_KEYS, &keys)?;
        let mut registry = alloc::vec![0u8; REGISTRY_SLOTS * ENTRY_LEN];
        for (slot, e) in registry.chunks_exact_mut(ENTRY_LEN).zip(&entries) {
            slot.copy_from_slice(&state::encode_entry(e));
        }
        let identity = state::encode_identity(
            &setup.key_diversification_data,
            &setup.iin,
            &setup.cin,
            &setup.cplc,
        )?;
        let packages = state::encode_packages(&setup.packages)?;
        let receipt = setup
            .receipt_key
            .as_ref()
            .map(|(alg, key)| (state::receipt_type(*alg), key));
        let dm = state::encode_dm(setup.token_key.as_ref(), receipt)?;
        let mut g = state::global(ctx)?;
        g.create(G_LIFE_CYCLE, &[setup.state.to_byte()])?;
        g.create(G_REGISTRY, &registry)?;
        g.create(G_PACKAGES, &packages)?;
        g.create(G_IDENTITY, &identity)?;
        g.create(state::G_DM, &dm)?;
        let hash = match setup.lfdb_hash {
            LfdbHash::Sha256 => 0x01,
            LfdbHash::Sm3 => 0x02,
        };
        g.create(state::G_OPTIONS, &[hash])
    })
}

/// The PUT KEY key type that suits a protocol.
pub(crate) fn key_type_for(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Scp02(_) => state::KEY_TYPE_DES,
        Protocol::Scp03(_) => state::KEY_TYPE_AES,
        Protocol::Sm4(_) => state::KEY_TYPE_SM4,
    }
}

/// An open (or opening) secure channel and the key set it was opened with (PUT KEY needs its
/// static K-DEK).
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) channel: CardSession,
    pub(crate) keys: KeySet,
}

/// A security domain applet: the issuer security domain ([`Isd::new`], at [`ISD_AID`]) or a
/// supplementary one ([`Isd::supplementary`], created by INSTALL from [`SD_MODULE`]).
#[derive(Debug)]
pub struct Isd {
    aid: Aid,
    protocol: Protocol,
    minimum_level: SecurityLevel,
    supplementary: bool,
    session: Option<Session>,
    /// Volatile state of the card content commands (`commands` docs).
    pub(crate) volatile: Volatile,
}

/// What a security domain remembers between commands of one session (lost at deselection,
/// reset and a new INITIALIZE UPDATE).
#[derive(Debug, Default)]
pub(crate) struct Volatile {
    /// GET STATUS paging cursor (`commands::get_status` docs).
    pub(crate) listing: Option<Listing>,
    /// The application INSTALL [for personalization] named: STORE DATA goes to it.
    pub(crate) personalizing: Option<Aid>,
    /// INSTALL [for load] accepted: LOAD blocks expected.
    pub(crate) loading: Option<Loading>,
}

impl Isd {
    /// The ISD code for `protocol` (its persistent objects come from [`install_isd`] or a state
    /// file).
    pub fn new(protocol: Protocol, minimum_level: SecurityLevel) -> Self {
        // ISD_AID has 8 bytes, within 5..=16.
        #[allow(clippy::unwrap_used)]
        let aid = Aid::new(&ISD_AID).unwrap();
        Self {
            aid,
            protocol,
            minimum_level,
            supplementary: false,
            session: None,
            volatile: Volatile::default(),
        }
    }

    /// A supplementary security domain's code at `aid` (its objects come from
    /// [`Applet::install`] when a card manager creates it, or from a state file).
    pub fn supplementary(aid: Aid, protocol: Protocol, minimum_level: SecurityLevel) -> Self {
        Self {
            aid,
            protocol,
            minimum_level,
            supplementary: true,
            session: None,
            volatile: Volatile::default(),
        }
    }

    /// True for a supplementary security domain.
    pub fn is_supplementary(&self) -> bool {
        self.supplementary
    }

    fn initialize_update(
        &mut self,
        ctx: &mut Context<'_>,
        cmd: &CommandApdu,
    ) -> Result<Vec<u8>, StatusWord> {
        self.session = None;
        self.volatile = Volatile::default();
        if cmd.cla != 0x80 {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        if state::card_state(&state::global(ctx)?)? == CardState::Terminated {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let keys = state::key_slots(ctx)?
            .into_iter()
            .flatten()
            .find(|k| cmd.p1 == 0 || k.version == cmd.p1)
            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        let next = state::sequence_counter(ctx)?
            .checked_add(1)
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        let identity = state::identity(&state::global(ctx)?)?;
        let mut channel = CardSession::new(CardConfig {
            protocol: self.protocol,
            aid: self.aid.as_bytes().to_vec(),
            key_diversification_data: identity.kdd,
            minimum_level: self.minimum_level,
        });
        let mut random = [0u8; 16];
        ctx.random(&mut random);
        let data = channel.on_initialize_update(cmd, &keys, next, &random)?;
        ctx.write(OBJ_SEQUENCE, 0, &next.to_be_bytes())?;
        self.session = Some(Session { channel, keys });
        Ok(data)
    }
}

impl Applet for Isd {
    fn aid(&self) -> &Aid {
        &self.aid
    }

    fn kind(&self) -> &'static str {
        if self.supplementary { SSD_KIND } else { KIND }
    }

    fn install_params(&self) -> Vec<u8> {
        let family = match self.protocol {
            Protocol::Scp02(_) => 0x02,
            Protocol::Scp03(_) => 0x03,
            Protocol::Sm4(_) => 0x04,
        };
        alloc::vec![family, self.protocol.i(), self.minimum_level.to_byte()]
    }

    fn select(&mut self, _ctx: &mut Context<'_>) -> Result<Selected, StatusWord> {
        self.session = None;
        self.volatile = Volatile::default();
        // FCI: 6F { 84 AID, A5 { 9F65 01 FF (largest command data field) } }.
        let aid = self.aid.as_bytes();
        let mut fci = alloc::vec![0x6F, (2 + aid.len() + 6) as u8, 0x84, aid.len() as u8];
        fci.extend_from_slice(aid);
        fci.extend_from_slice(&[0xA5, 0x04, 0x9F, 0x65, 0x01, 0xFF]);
        Ok(Selected::ok(fci))
    }

    fn deselect(&mut self) {
        self.session = None;
        self.volatile = Volatile::default();
    }

    // GP §7.3 (an SD's own objects): a supplementary security domain starts with a sequence
    // counter and an empty key table; its first keys come from its parent's STORE DATA
    // (`commands::store_data`, DGI 8001) through `process_data`.
    fn install(&mut self, ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        ctx.create(OBJ_SEQUENCE, &[0; 4])?;
        ctx.create(OBJ_KEYS, &[0u8; KEY_SLOTS * SLOT_LEN])
    }

    fn process_data(
        &mut self,
        ctx: &mut Context<'_>,
        cmd: &CommandApdu,
    ) -> Result<Vec<u8>, StatusWord> {
        crate::commands::store_data::receive_keys(ctx, self.protocol, cmd)
    }

    fn process(&mut self, ctx: &mut Context<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        match cmd.ins {
            0x50 => return self.initialize_update(ctx, cmd),
            0x82 => {
                let session = self
                    .session
                    .as_mut()
                    .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
                return session
                    .channel
                    .on_external_authenticate(cmd)
                    .map(|()| Vec::new());
            }
            _ => {}
        }
        let plain = match &mut self.session {
            Some(s) => s.channel.unwrap_command(cmd)?,
            None if cmd.cla & 0x04 != 0 => return Err(ykt_scp::card::BELOW_SECURITY_LEVEL),
            None => cmd.clone(),
        };
        let sd = crate::commands::Sd {
            aid: &self.aid,
            protocol: self.protocol,
            supplementary: self.supplementary,
            session: self.session.as_ref(),
        };
        let data = crate::commands::dispatch(ctx, &sd, &mut self.volatile, &plain)?;
        // A warning (GET STATUS `6310`) is sent with the data and covered by the R-MAC.
        let sw = ctx.warning().unwrap_or(StatusWord::SUCCESS);
        Ok(match &mut self.session {
            Some(s) => s.channel.wrap_response(&ResponseApdu::new(data, sw)).data,
            None => data,
        })
    }

    fn reset_volatile(&mut self) {
        self.session = None;
        self.volatile = Volatile::default();
    }
}

/// Creates security domains: the ISD from a state file (kind [`KIND`]) and supplementary
/// security domains (kind [`SSD_KIND`]) from a state file or for INSTALL; install parameters:
/// protocol family `02` SCP02, `03` SCP03, `04` SM4 · `i` · minimum level.
#[derive(Clone, Copy, Debug, Default)]
pub struct IsdFactory;

impl AppletFactory for IsdFactory {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        let supplementary = match kind {
            KIND if aid.as_bytes() == ISD_AID => false,
            SSD_KIND if aid.as_bytes() != ISD_AID => true,
            _ => return None,
        };
        let [family, i, level] = params else {
            return None;
        };
        let protocol = match family {
            0x02 => Protocol::scp02(*i),
            0x03 => Protocol::scp03(*i),
            0x04 => Protocol::sm4(*i),
            _ => return None,
        }
        .ok()?;
        let level = SecurityLevel::from_byte(*level).ok()?;
        Some(Box::new(if supplementary {
            Isd::supplementary(aid.clone(), protocol, level)
        } else {
            Isd::new(protocol, level)
        }))
    }
}
