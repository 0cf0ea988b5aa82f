//! Card content management: how a card manager applet (GlobalPlatform's ISD, or a security
//! domain acting for it) creates, deletes, hides and personalises other applet instances.
//!
//! # Model
//!
//! The card holds a *library* of applet code (an [`AppletFactory`], set with
//! [`Card::set_library`]; on a real SE these are the executable load files in ROM or loaded).
//! An applet the card trusts with content management ([`Card::grant_management`]) sees, through
//! its [`Context`], the card's instances and may, inside the command it is processing:
//!
//! * [`install_instance`](Context::install_instance): create an instance of a library kind
//!   under a new AID; the new applet's [`Applet::install`] runs at once in its own (new)
//!   namespace to create its objects;
//! * [`delete_instance`](Context::delete_instance): remove an instance (its objects stay in the
//!   EEPROM as garbage: the heap is never compacted, see the [`store`](crate::store) docs);
//! * [`set_selectable`](Context::set_selectable): make an instance selectable by SELECT or not
//!   (GP's INSTALLED vs SELECTABLE, and LOCKED);
//! * [`install_manager_instance`](Context::install_manager_instance): the same for a new
//!   card manager (a supplementary security domain);
//! * [`card_objects`](Context::card_objects): objects shared by all card managers (namespace
//!   0, e.g. GlobalPlatform's registry);
//! * [`deliver`](Context::deliver): hand a command to another instance's
//!   [`Applet::process_data`] (GP's STORE DATA forwarded by the security domain).
//!
//! Everything is part of the command's transaction: the changes take effect when the command
//! returns `Ok` and its writes commit, and vanish with them otherwise. A power cut inside the
//! commit leaves the old content or the new one, because the instance table is itself in the
//! EEPROM: each instance touched by management has a *record* (space `Runtime`, id 0, in its own
//! namespace) that the runtime reads back at `power_on` and `load_state`:
//!
//! ```text
//! format 01 · flags (01 alive, 02 selectable, 04 card manager)
//!           · kind length u8 · kind (UTF-8) · AID length u8 · AID · params length u16 · params
//! ```
//!
//! An instance without a record (installed by the host with [`Card::install`]) is alive,
//! selectable and no card manager. Namespaces are never reused, deleted or not.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ykt_apdu::{CommandApdu, StatusWord};

use crate::applet::{Applet, AppletFactory, Selected};
use crate::card::Instance;
use crate::context::{Context, store_sw};
use crate::store::{Key, Space, Store};
use crate::{Aid, Card, CardError};

const FORMAT: u8 = 0x01;
pub(crate) const ALIVE: u8 = 0x01;
pub(crate) const SELECTABLE: u8 = 0x02;
pub(crate) const MANAGER: u8 = 0x04;

/// One instance as a card manager sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstanceInfo {
    /// Its AID.
    pub aid: Aid,
    /// The library kind of its code.
    pub kind: String,
    /// Its install parameters.
    pub params: Vec<u8>,
    /// SELECT reaches it.
    pub selectable: bool,
    /// It is a card manager.
    pub manager: bool,
}

/// Why a content-management request was refused. Nothing of the request was staged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManageError {
    /// The calling applet is no card manager.
    NotManager,
    /// The library has no code of this kind for this AID and parameters.
    UnknownKind,
    /// An instance with this AID exists.
    DuplicateAid,
    /// No instance has this AID.
    NoSuchInstance,
    /// The request names the calling card manager itself.
    IsCaller,
    /// The new applet's [`Applet::install`] refused with this status word (its staged writes
    /// are part of the command's transaction: the caller must fail the command).
    Rejected(StatusWord),
    /// The store refused (no room: `6A84`).
    Store(StatusWord),
}

impl ManageError {
    /// A status word for the card manager to answer with: `6982` not a manager, `6A88` unknown
    /// kind or instance, `6A80` duplicate AID, `6985` the caller itself, the applet's own
    /// status word, or the store's.
    pub fn status_word(self) -> StatusWord {
        match self {
            Self::NotManager => StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            Self::UnknownKind | Self::NoSuchInstance => StatusWord::REFERENCED_DATA_NOT_FOUND,
            Self::DuplicateAid => StatusWord::WRONG_DATA,
            Self::IsCaller => StatusWord::CONDITIONS_NOT_SATISFIED,
            Self::Rejected(sw) | Self::Store(sw) => sw,
        }
    }
}

impl fmt::Display for ManageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotManager => f.write_str("the applet is no card manager"),
            Self::UnknownKind => f.write_str("no applet code of that kind"),
            Self::DuplicateAid => f.write_str("an instance with that AID exists"),
            Self::NoSuchInstance => f.write_str("no instance with that AID"),
            Self::IsCaller => f.write_str("the card manager cannot manage itself"),
            Self::Rejected(sw) => write!(f, "the applet refused installation with {sw}"),
            Self::Store(sw) => write!(f, "the store refused with {sw}"),
        }
    }
}

impl core::error::Error for ManageError {}

/// Content changes staged by the current command.
#[derive(Default)]
pub(crate) struct Changes {
    pub(crate) installs: Vec<Instance>,
    pub(crate) deletes: Vec<u16>,
    pub(crate) selectable: Vec<(u16, bool)>,
}

impl Changes {
    pub(crate) fn clear(&mut self) {
        self.installs.clear();
        self.deletes.clear();
        self.selectable.clear();
    }
}

/// What a card manager's [`Context`] reaches besides its own objects.
pub(crate) struct Runtime<'a> {
    pub(crate) instances: &'a mut Vec<Instance>,
    pub(crate) changes: &'a mut Changes,
    pub(crate) library: Option<&'a (dyn AppletFactory + Send)>,
    pub(crate) next_namespace: &'a mut u16,
    /// The calling card manager's namespace.
    pub(crate) caller: u16,
}

/// Stands in for the card manager's code while it runs (its box is lent to the dispatcher).
pub(crate) struct Vacant(pub(crate) Aid);

impl Applet for Vacant {
    fn aid(&self) -> &Aid {
        &self.0
    }
    fn kind(&self) -> &'static str {
        "ykt.card.vacant"
    }
    fn install_params(&self) -> Vec<u8> {
        Vec::new()
    }
    fn select(&mut self, _ctx: &mut Context<'_>) -> Result<Selected, StatusWord> {
        Err(StatusWord::CONDITIONS_NOT_SATISFIED)
    }
    fn process(
        &mut self,
        _ctx: &mut Context<'_>,
        _cmd: &CommandApdu,
    ) -> Result<Vec<u8>, StatusWord> {
        Err(StatusWord::CONDITIONS_NOT_SATISFIED)
    }
    fn reset_volatile(&mut self) {}
}

pub(crate) fn record_key(ns: u16) -> Key {
    Key {
        ns,
        space: Space::Runtime,
        id: 0,
    }
}

fn encode_record(flags: u8, kind: &str, aid: &Aid, params: &[u8]) -> Option<Vec<u8>> {
    let kind = kind.as_bytes();
    let mut out = Vec::with_capacity(6 + kind.len() + aid.as_bytes().len() + params.len());
    out.push(FORMAT);
    out.push(flags);
    out.push(u8::try_from(kind.len()).ok()?);
    out.extend_from_slice(kind);
    out.push(u8::try_from(aid.as_bytes().len()).ok()?);
    out.extend_from_slice(aid.as_bytes());
    out.extend_from_slice(&u16::try_from(params.len()).ok()?.to_be_bytes());
    out.extend_from_slice(params);
    Some(out)
}

/// A decoded record.
pub(crate) struct Record {
    pub(crate) ns: u16,
    pub(crate) flags: u8,
    pub(crate) kind: String,
    pub(crate) aid: Aid,
    pub(crate) params: Vec<u8>,
}

fn decode_record(ns: u16, b: &[u8]) -> Option<Record> {
    let (&format, b) = b.split_first()?;
    if format != FORMAT {
        return None;
    }
    let (&flags, b) = b.split_first()?;
    let (&kl, b) = b.split_first()?;
    let (kind, b) = b.split_at_checked(usize::from(kl))?;
    let kind = String::from(core::str::from_utf8(kind).ok()?);
    let (&al, b) = b.split_first()?;
    let (aid, b) = b.split_at_checked(usize::from(al))?;
    let aid = Aid::new(aid).ok()?;
    let (pl, b) = b.split_at_checked(2)?;
    let pl = usize::from(u16::from_be_bytes([pl[0], pl[1]]));
    (b.len() == pl).then(|| Record {
        ns,
        flags,
        kind,
        aid,
        params: b.to_vec(),
    })
}

/// Every well-formed record in the store.
pub(crate) fn records(store: &Store) -> Vec<Record> {
    store
        .keys_of_space(Space::Runtime)
        .filter(|k| k.id == 0)
        .filter_map(|k| decode_record(k.ns, store.read(k)?))
        .collect()
}

/// Sets `flags` on the record of `inst` (creating it when the instance has none).
fn stage_flags(store: &mut Store, inst: &Instance, flags: u8) -> Result<(), ManageError> {
    let key = record_key(inst.ns);
    if store.read(key).is_some() {
        store
            .write(key, 1, &[flags])
            .map_err(|e| ManageError::Store(store_sw(e)))
    } else {
        let rec = encode_record(flags, &inst.kind, &inst.aid, &inst.params)
            .ok_or(ManageError::Store(StatusWord::WRONG_DATA))?;
        store
            .create(key, &rec)
            .map_err(|e| ManageError::Store(store_sw(e)))
    }
}

/// Writes the record of `inst` with its current flags (creating it when absent).
pub(crate) fn stage_record(store: &mut Store, inst: &Instance) -> Result<(), ManageError> {
    stage_flags(store, inst, flags_of(inst))
}

pub(crate) fn flags_of(inst: &Instance) -> u8 {
    ALIVE | if inst.selectable { SELECTABLE } else { 0 } | if inst.manager { MANAGER } else { 0 }
}

impl Context<'_> {
    /// True when this applet is a card manager ([`Card::grant_management`]).
    pub fn is_card_manager(&self) -> bool {
        self.runtime.is_some()
    }

    fn runtime_ref(&self) -> Result<&Runtime<'_>, ManageError> {
        self.runtime.as_ref().ok_or(ManageError::NotManager)
    }

    /// The card's instances as they stand in this command (its staged installs included, its
    /// staged deletions excluded), in install order; the caller included.
    pub fn instances(&self) -> Result<Vec<InstanceInfo>, ManageError> {
        let rt = self.runtime_ref()?;
        let info = |i: &Instance| {
            let selectable = rt
                .changes
                .selectable
                .iter()
                .rev()
                .find(|(ns, _)| *ns == i.ns)
                .map_or(i.selectable, |(_, s)| *s);
            InstanceInfo {
                aid: i.aid.clone(),
                kind: i.kind.clone(),
                params: i.params.clone(),
                selectable,
                manager: i.manager,
            }
        };
        Ok(rt
            .instances
            .iter()
            .filter(|i| !rt.changes.deletes.contains(&i.ns))
            .chain(rt.changes.installs.iter())
            .map(info)
            .collect())
    }

    /// Creates an instance of library code `kind` at `aid` with `params`; its
    /// [`Applet::install`] runs now, in the new instance's namespace. `selectable` says whether
    /// SELECT reaches it once the command commits.
    pub fn install_instance(
        &mut self,
        kind: &str,
        aid: &Aid,
        params: &[u8],
        selectable: bool,
    ) -> Result<(), ManageError> {
        let rt = self.runtime.as_mut().ok_or(ManageError::NotManager)?;
        let exists = rt
            .instances
            .iter()
            .any(|i| i.aid == *aid && !rt.changes.deletes.contains(&i.ns))
            || rt.changes.installs.iter().any(|i| i.aid == *aid);
        if exists {
            return Err(ManageError::DuplicateAid);
        }
        let library = rt.library.ok_or(ManageError::UnknownKind)?;
        let mut applet = library
            .create(kind, aid, params)
            .ok_or(ManageError::UnknownKind)?;
        if applet.aid() != aid {
            return Err(ManageError::UnknownKind);
        }
        let stored_kind = String::from(applet.kind());
        let stored_params = applet.install_params();
        let ns = *rt.next_namespace;
        *rt.next_namespace = ns
            .checked_add(1)
            .ok_or(ManageError::Store(StatusWord::NOT_ENOUGH_MEMORY))?;
        let flags = ALIVE | if selectable { SELECTABLE } else { 0 };
        let record = encode_record(flags, &stored_kind, aid, &stored_params)
            .ok_or(ManageError::Store(StatusWord::WRONG_DATA))?;
        {
            let mut current_ef = None;
            let mut sub = Context::new(&mut *self.store, ns, &mut *self.entropy, &mut current_ef);
            applet.install(&mut sub).map_err(ManageError::Rejected)?;
        }
        self.store
            .create(record_key(ns), &record)
            .map_err(|e| ManageError::Store(store_sw(e)))?;
        let rt = self.runtime.as_mut().ok_or(ManageError::NotManager)?;
        rt.changes.installs.push(Instance {
            applet,
            kind: stored_kind,
            aid: aid.clone(),
            params: stored_params,
            ns,
            selectable,
            manager: false,
        });
        Ok(())
    }

    /// Like [`install_instance`](Context::install_instance), and the new instance is a card
    /// manager too (a GlobalPlatform security domain the caller creates).
    pub fn install_manager_instance(
        &mut self,
        kind: &str,
        aid: &Aid,
        params: &[u8],
        selectable: bool,
    ) -> Result<(), ManageError> {
        self.install_instance(kind, aid, params, selectable)?;
        let rt = self.runtime.as_mut().ok_or(ManageError::NotManager)?;
        let inst = rt
            .changes
            .installs
            .last_mut()
            .ok_or(ManageError::NoSuchInstance)?;
        inst.manager = true;
        let flags = flags_of(inst);
        self.store
            .write(record_key(inst.ns), 1, &[flags])
            .map_err(|e| ManageError::Store(store_sw(e)))
    }

    /// The card-global objects every card manager shares (namespace 0, never an instance's),
    /// e.g. GlobalPlatform's registry, as a context of their own in this command's
    /// transaction.
    pub fn card_objects(&mut self) -> Result<Context<'_>, ManageError> {
        if self.runtime.is_none() {
            return Err(ManageError::NotManager);
        }
        Ok(Context::new(
            &mut *self.store,
            0,
            &mut *self.entropy,
            &mut *self.current_ef,
        ))
    }

    /// Deletes the instance at `aid` (one installed in this same command included; another card
    /// manager too, but not the caller).
    pub fn delete_instance(&mut self, aid: &Aid) -> Result<(), ManageError> {
        let rt = self.runtime.as_mut().ok_or(ManageError::NotManager)?;
        if let Some(pos) = rt.changes.installs.iter().position(|i| i.aid == *aid) {
            let inst = rt.changes.installs.remove(pos);
            return self
                .store
                .write(record_key(inst.ns), 1, &[0])
                .map_err(|e| ManageError::Store(store_sw(e)));
        }
        let inst = rt
            .instances
            .iter()
            .find(|i| i.aid == *aid && !rt.changes.deletes.contains(&i.ns))
            .ok_or(ManageError::NoSuchInstance)?;
        if inst.ns == rt.caller {
            return Err(ManageError::IsCaller);
        }
        stage_flags(self.store, inst, 0)?;
        rt.changes.deletes.push(inst.ns);
        Ok(())
    }

    /// Makes the instance at `aid` selectable or not (GP: SELECTABLE vs INSTALLED or LOCKED).
    pub fn set_selectable(&mut self, aid: &Aid, selectable: bool) -> Result<(), ManageError> {
        let rt = self.runtime.as_mut().ok_or(ManageError::NotManager)?;
        if let Some(inst) = rt.changes.installs.iter_mut().find(|i| i.aid == *aid) {
            inst.selectable = selectable;
            let flags = flags_of(inst);
            return self
                .store
                .write(record_key(inst.ns), 1, &[flags])
                .map_err(|e| ManageError::Store(store_sw(e)));
        }
        let inst = rt
            .instances
            .iter()
            .find(|i| i.aid == *aid && !rt.changes.deletes.contains(&i.ns))
            .ok_or(ManageError::NoSuchInstance)?;
        let flags = ALIVE
            | if selectable { SELECTABLE } else { 0 }
            | if inst.manager { MANAGER } else { 0 };
        stage_flags(self.store, inst, flags)?;
        rt.changes.selectable.push((inst.ns, selectable));
        Ok(())
    }

    /// Hands `cmd` to the [`Applet::process_data`] of the instance at `aid` (in this command's
    /// transaction) and returns its answer. The instance need not be selectable (and may be a
    /// card manager); one installed in this same command is not reachable yet (`6A88`), nor is
    /// the caller (`6985`).
    pub fn deliver(&mut self, aid: &Aid, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        let rt = self
            .runtime
            .as_mut()
            .ok_or(StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
        let inst = rt
            .instances
            .iter_mut()
            .find(|i| i.aid == *aid && !rt.changes.deletes.contains(&i.ns))
            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        if inst.ns == rt.caller {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let mut current_ef = None;
        let mut sub = Context::new(
            &mut *self.store,
            inst.ns,
            &mut *self.entropy,
            &mut current_ef,
        );
        inst.applet.process_data(&mut sub, cmd)
    }
}

impl Card {
    /// Sets the library of applet code that card managers install from (and that
    /// [`power_on`](Card::power_on) uses to re-create instances a torn command left committed).
    pub fn set_library(&mut self, library: Box<dyn AppletFactory + Send>) {
        self.library = Some(library);
    }

    /// Makes the installed applet at `aid` a card manager (see the [`manage`](crate::manage)
    /// docs), persistently. Unknown AID: [`CardError::InstallRejected`] with `6A88`.
    pub fn grant_management(&mut self, aid: &Aid) -> Result<(), CardError> {
        if self.store.is_torn() || self.store.journal_pending() {
            return Err(CardError::NotPowered);
        }
        let Some(index) = self.instances.iter().position(|i| i.aid == *aid) else {
            return Err(CardError::InstallRejected(
                StatusWord::REFERENCED_DATA_NOT_FOUND,
            ));
        };
        self.store.discard();
        let inst = &self.instances[index];
        let flags = flags_of(inst) | MANAGER;
        if let Err(e) = stage_flags(&mut self.store, inst, flags) {
            self.store.discard();
            return Err(CardError::InstallRejected(e.status_word()));
        }
        self.commit_install()?;
        if let Some(inst) = self.instances.get_mut(index) {
            inst.manager = true;
        }
        Ok(())
    }

    /// Brings the in-memory instances in line with the records in the store: drops the dead,
    /// re-creates live ones that are missing (from `library`; one it cannot create stays
    /// absent), applies the flags, and keeps namespaces unique.
    pub(crate) fn reconcile(&mut self, library: Option<&dyn AppletFactory>) {
        let records = records(&self.store);
        for rec in records {
            if rec.ns >= self.next_namespace {
                self.next_namespace = rec.ns.saturating_add(1);
            }
            let pos = self.instances.iter().position(|i| i.ns == rec.ns);
            if rec.flags & ALIVE == 0 {
                if let Some(pos) = pos {
                    self.instances.remove(pos);
                }
                continue;
            }
            let inst = match pos {
                Some(pos) => self.instances.get_mut(pos),
                None => {
                    let Some(applet) =
                        library.and_then(|l| l.create(&rec.kind, &rec.aid, &rec.params))
                    else {
                        continue;
                    };
                    if applet.aid() != &rec.aid || self.instances.iter().any(|i| i.aid == rec.aid) {
                        continue;
                    }
                    self.instances.push(Instance {
                        applet,
                        kind: rec.kind,
                        aid: rec.aid,
                        params: rec.params,
                        ns: rec.ns,
                        selectable: true,
                        manager: false,
                    });
                    self.instances.sort_by_key(|i| i.ns);
                    self.instances.iter_mut().find(|i| i.ns == rec.ns)
                }
            };
            if let Some(inst) = inst {
                inst.selectable = rec.flags & SELECTABLE != 0;
                inst.manager = rec.flags & MANAGER != 0;
            }
        }
    }
}
