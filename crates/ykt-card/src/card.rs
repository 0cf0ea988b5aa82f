//! The card: power, installation, and the command dispatcher.
//!
//! # Dispatcher rules
//!
//! Every C-APDU gets exactly one R-APDU; only a missing or lost power is an `Err`.
//!
//! * **Parsing**: bytes that are no command APDU (ISO/IEC 7816-4 §5.1) → `6700`.
//! * **Class** (ISO/IEC 7816-4 §5.4.1): CLA `00`–`1F` (interindustry) and `80`–`9F`
//!   (proprietary with the interindustry bit layout) are accepted. In them, a logical channel
//!   other than 0 (b2 b1) → `6881`; command chaining (b5) → `6884`; the secure messaging bits
//!   (b4 b3, e.g. `04`, `84`) are passed to the applet. CLA `40`–`7F` (further interindustry,
//!   channels 4–19) → `6881`. Everything else (`20`–`3F`, `A0`–`FF`) → `6E00`.
//! * **INS** `6X` and `9X` (T=0 procedure bytes) → `6D00`.
//! * **Owned by the dispatcher** (interindustry class only): SELECT by DF name (P1 `04`; P2
//!   occurrence `00` first/only or `02` next, control `00`/`04`/`08` FCI or `0C` no data;
//!   partial names match as prefixes over the selectable AIDs in install order (a card manager
//!   can make an instance unselectable, [`crate::manage`]); no match → `6A82`
//!   and the previous selection stays); SELECT of the MF (P1 `00`, data `3F00` or empty):
//!   deselects the applet and answers the minimal FCI `6F 04 83 02 3F 00`; GET RESPONSE
//!   (`C0`); MANAGE CHANNEL (`70`) → `6881` (only the basic channel exists).
//! * **Nothing selected** (MF current): the applets' [`Applet::process_mf`] first, in install
//!   order (a PSAM answers READ BINARY of its MF EF16 there); when none answers: other SELECT →
//!   `6A82`; READ/UPDATE BINARY/RECORD, APPEND RECORD → `6A82` with an SFI, `6986` without (the
//!   MF has no EFs of its own); anything else → `6D00`.
//! * **An applet selected**: interindustry file commands go to its
//!   [`Files`](crate::fs::Files) first, then to [`Applet::process`].
//! * **Faults**: an applet error that looks like success (`9000`, `61xx`) or has an SW1 outside
//!   `62`–`6F`/`90`–`9F` becomes `6F00`. No code path panics.
//! * **Data with a warning**: `Ok(data)` from [`Applet::process`] (or
//!   [`Applet::process_mf`]) after [`Context::set_warning`]`(sw)` answers `data || sw` when `sw`
//!   is a warning (`62xx`, `63xx`, e.g. GP's `6310` "more data available"); the staged writes
//!   commit as for `9000`. Any other `sw` there is a fault: writes discarded, `6F00`.
//!
//! # Response length: `61xx` and `6Cxx`
//!
//! Ne is the command's Le; without Le it is 256 for a short command and 65 536 for an extended
//! one (so T=1 readers that omit Le, e.g. in SELECT, still get the FCI directly).
//!
//! * **`6Cxx`** (T=0 style): a short case-2 command (5 bytes, no data) whose Le byte is not
//!   `00` and differs from the length of the data the command produced gets `6C xx` with the
//!   exact length (`00` for 256 or more) and no data. The command counts as not executed: its
//!   staged writes are discarded (writes committed early through `Context::commit` stay).
//! * **`61xx`**: response data longer than Ne is cut after Ne bytes and `61 xx` says how much
//!   remains (`xx` = remaining, `00` for 256 or more); GET RESPONSE `00 C0 00 00 Le` returns
//!   the next min(Ne, remaining) bytes, with `61xx` again while data remains. Any other command
//!   drops the remaining data. GET RESPONSE with nothing pending → `6985`; P1P2 ≠ `0000` →
//!   `6A86`.
//! * **With a warning**: the same two rules. `6Cxx` wins over the warning (the command counts
//!   as not executed, so the warning is not sent); data longer than Ne is chained with `61xx`
//!   and the warning ends the last part (the GET RESPONSE that empties the pending data
//!   answers `rest || 62xx/63xx` instead of `rest || 9000`). SELECT's own status
//!   ([`Selected::sw`] other than `9000`) is sent with the whole FCI, unchained.
//!
//! # Transactions
//!
//! Writes an applet stages during one command commit all together when it returns `Ok` — with
//! or without a warning — (before the response is built) and are discarded when it returns
//! `Err`, sets a non-warning status through [`Context::set_warning`], or gets `6Cxx`.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ykt_apdu::{CommandApdu, StatusWord};

use crate::applet::{Applet, AppletFactory, Selected};
use crate::context::{Context, store_sw};
use crate::entropy::Entropy;
use crate::error::{CardError, StateError};
use crate::manage::{Changes, Runtime, Vacant};
use crate::store::{Store, StoreError, TearSwitch};
use crate::{Aid, Atr};

/// The FCI answered to SELECT MF: template `6F` holding the FID `3F00` (tag `83`).
const MF_FCI: [u8; 6] = [0x6F, 0x04, 0x83, 0x02, 0x3F, 0x00];

/// One installed applet instance.
pub(crate) struct Instance {
    pub(crate) applet: Box<dyn Applet + Send>,
    pub(crate) kind: String,
    pub(crate) aid: Aid,
    pub(crate) params: Vec<u8>,
    pub(crate) ns: u16,
    /// SELECT reaches it ([`crate::manage`]).
    pub(crate) selectable: bool,
    /// It may manage the card's content ([`crate::manage`]).
    pub(crate) manager: bool,
}

/// A simulated contact/contactless CPU card: ATR, applets, persistent store, dispatcher.
///
/// Sans-IO: bytes in ([`transmit`](Card::transmit)), bytes out. A new card is unpowered; call
/// [`power_on`](Card::power_on) before transmitting.
pub struct Card {
    pub(crate) atr: Atr,
    pub(crate) entropy: Box<dyn Entropy + Send>,
    pub(crate) store: Store,
    pub(crate) instances: Vec<Instance>,
    pub(crate) next_namespace: u16,
    powered: bool,
    selected: Option<usize>,
    current_ef: Option<u16>,
    /// Response data waiting for GET RESPONSE.
    pending: Vec<u8>,
    /// The status word that ends the pending data: `9000`, or the command's warning.
    pending_sw: StatusWord,
    /// Applet code card managers install from.
    pub(crate) library: Option<Box<dyn AppletFactory + Send>>,
    /// Content changes staged by the current command.
    changes: Changes,
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let aids: Vec<&Aid> = self.instances.iter().map(|i| &i.aid).collect();
        f.debug_struct("Card")
            .field("atr", &self.atr)
            .field("powered", &self.powered)
            .field("applets", &aids)
            .field("selected", &self.selected)
            .field("persistent_writes", &self.store.writes())
            .finish_non_exhaustive()
    }
}

fn sw_only(sw: StatusWord) -> Vec<u8> {
    sw.to_bytes().to_vec()
}

/// An applet's error status, with anything that could pass for success or is no status word
/// at all mapped to `6F00`.
fn sanitize(sw: StatusWord) -> StatusWord {
    if sw.is_success() || !matches!(sw.sw1(), 0x62..=0x6F | 0x90..=0x9F) || sw.sw1() == 0x61 {
        StatusWord::UNKNOWN
    } else {
        sw
    }
}

/// `61xx` / `6Cxx` length byte: the count, `00` for 256 and more.
fn len_byte(n: usize) -> u8 {
    if n >= 256 { 0 } else { (n & 0xFF) as u8 }
}

/// The class rule of the module documentation.
fn check_cla(cla: u8) -> Result<(), StatusWord> {
    match cla {
        0x00..=0x1F | 0x80..=0x9F => {
            if cla & 0x03 != 0 {
                Err(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED)
            } else if cla & 0x10 != 0 {
                Err(StatusWord::CHAINING_NOT_SUPPORTED)
            } else {
                Ok(())
            }
        }
        0x40..=0x7F => Err(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED),
        _ => Err(StatusWord::CLA_NOT_SUPPORTED),
    }
}

impl Card {
    /// A blank, unpowered card with no applets.
    pub fn new(atr: Atr, entropy: Box<dyn Entropy + Send>) -> Card {
        Card::from_parts(atr, entropy, Store::new(), Vec::new(), 1)
    }

    pub(crate) fn from_parts(
        atr: Atr,
        entropy: Box<dyn Entropy + Send>,
        store: Store,
        instances: Vec<Instance>,
        next_namespace: u16,
    ) -> Card {
        Card {
            atr,
            entropy,
            store,
            instances,
            next_namespace,
            powered: false,
            selected: None,
            current_ef: None,
            pending: Vec::new(),
            pending_sw: StatusWord::SUCCESS,
            library: None,
            changes: Changes::default(),
        }
    }

    /// Installs an applet instance, creating its namespace; `init` runs inside one transaction
    /// to create the applet's persistent objects (personalisation by the issuer-side factory).
    ///
    /// Works powered or not, but not between a power loss and the next `power_on`, nor on a
    /// card loaded with a journal pending before its `power_on` ([`CardError::NotPowered`]):
    /// recovery comes first. If the tearing switch fires during the commit the result is
    /// [`CardError::PowerLost`], the instance is not registered, and its namespace is never
    /// reused.
    pub fn install(
        &mut self,
        applet: Box<dyn Applet + Send>,
        init: impl FnOnce(&mut Context<'_>) -> Result<(), StatusWord>,
    ) -> Result<(), CardError> {
        self.install_with(applet, init, false)
    }

    /// Installs a card manager ([`crate::manage`]): as [`install`](Card::install), and `init`'s
    /// context is a card manager's, so it can set up the card-global objects
    /// ([`Context::card_objects`]) in the same transaction.
    pub fn install_card_manager(
        &mut self,
        applet: Box<dyn Applet + Send>,
        init: impl FnOnce(&mut Context<'_>) -> Result<(), StatusWord>,
    ) -> Result<(), CardError> {
        self.install_with(applet, init, true)
    }

    fn install_with(
        &mut self,
        applet: Box<dyn Applet + Send>,
        init: impl FnOnce(&mut Context<'_>) -> Result<(), StatusWord>,
        manager: bool,
    ) -> Result<(), CardError> {
        if self.store.is_torn() || self.store.journal_pending() {
            return Err(CardError::NotPowered);
        }
        let aid = applet.aid().clone();
        if self.instances.iter().any(|i| i.aid == aid) {
            return Err(CardError::DuplicateAid(aid));
        }
        let ns = self.next_namespace;
        self.next_namespace = ns.checked_add(1).ok_or(CardError::NamespacesExhausted)?;
        self.store.discard();
        self.changes.clear();
        let mut current_ef = None;
        let result = if manager {
            let runtime = Runtime {
                instances: &mut self.instances,
                changes: &mut self.changes,
                library: self.library.as_deref(),
                next_namespace: &mut self.next_namespace,
                caller: ns,
            };
            let mut ctx = Context::new(&mut self.store, ns, &mut *self.entropy, &mut current_ef)
                .with_runtime(runtime);
            init(&mut ctx)
        } else {
            let mut ctx = Context::new(&mut self.store, ns, &mut *self.entropy, &mut current_ef);
            init(&mut ctx)
        };
        if self.store.is_torn() {
            self.lose_power();
            return Err(CardError::PowerLost);
        }
        if let Err(sw) = result {
            self.discard();
            return Err(CardError::InstallRejected(sw));
        }
        let inst = Instance {
            kind: String::from(applet.kind()),
            params: applet.install_params(),
            aid,
            ns,
            applet,
            selectable: true,
            manager,
        };
        if manager && let Err(e) = crate::manage::stage_record(&mut self.store, &inst) {
            self.discard();
            return Err(CardError::InstallRejected(e.status_word()));
        }
        if let Err(e) = self.commit_install() {
            self.changes.clear();
            return Err(e);
        }
        self.instances.push(inst);
        self.apply_changes();
        Ok(())
    }

    /// Commits a host-side installation or grant.
    pub(crate) fn commit_install(&mut self) -> Result<(), CardError> {
        match self.store.commit() {
            Ok(()) => Ok(()),
            Err(StoreError::PowerLost) => {
                self.lose_power();
                Err(CardError::PowerLost)
            }
            Err(e) => {
                self.store.discard();
                Err(CardError::InstallRejected(store_sw(e)))
            }
        }
    }

    /// Cold reset: runs journal recovery, clears every volatile state (selection, GET RESPONSE
    /// data, applets' `reset_volatile`) and returns the ATR.
    ///
    /// If the tearing switch cuts power during recovery, the card stays unpowered
    /// ([`is_powered`](Card::is_powered) is false) and the next `power_on` recovers again.
    pub fn power_on(&mut self) -> Atr {
        self.clear_volatile();
        self.powered = self.store.power_up().is_ok();
        if self.powered {
            let library = self.library.take();
            self.reconcile(library.as_deref().map(|l| l as &dyn AppletFactory));
            self.library = library;
        }
        self.atr.clone()
    }

    /// Removes power: volatile state is lost.
    pub fn power_off(&mut self) {
        self.store.discard();
        self.clear_volatile();
        self.powered = false;
    }

    /// Warm reset. In this simulation it has the effect of [`power_on`](Card::power_on):
    /// volatile state cleared, journal recovered (a pending journal can only exist after a
    /// power loss, when the card was unpowered anyway).
    pub fn reset(&mut self) -> Atr {
        self.power_on()
    }

    /// The ATR.
    pub fn atr(&self) -> &Atr {
        &self.atr
    }

    /// True between a successful `power_on`/`reset` and `power_off` or a power loss.
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// AIDs of the installed applets, in install order.
    pub fn applets(&self) -> impl Iterator<Item = &Aid> + '_ {
        self.instances.iter().map(|i| &i.aid)
    }

    /// The tearing switch: `arm_at(n)` cuts power during the n-th persistent write from now
    /// (1-based), leaving that page half-programmed.
    pub fn tear(&mut self) -> &mut TearSwitch {
        self.store.tear_switch()
    }

    /// Page programs so far, over the card's life (saved in the state file): sizes tear loops.
    pub fn persistent_writes(&self) -> u64 {
        self.store.writes()
    }

    /// Versioned, checksummed encoding of the persistent state (layout in
    /// [`load_state`](Card::load_state)). Volatile state is not saved.
    pub fn save_state(&self) -> Vec<u8> {
        crate::state::encode(self)
    }

    /// Re-creates a card from [`save_state`](Card::save_state) bytes; applets come from
    /// `factory`. The card is unpowered; `power_on` runs recovery if the state was saved with a
    /// journal pending (e.g. right after a tear).
    ///
    /// Layout (all integers big-endian):
    ///
    /// ```text
    /// magic "YKTCARD\0" · version u16 (1) · total length u32 (whole file, CRC included)
    /// next namespace u16 · persistent writes u64
    /// data region length u32 · data region bytes
    /// journal region length u32 · journal region bytes
    /// applet count u16 · per applet: namespace u16 · kind length u8 · kind (UTF-8)
    ///                                · AID length u8 · AID · params length u32 · params
    /// CRC-32 (ISO-HDLC) u32 over every preceding byte
    /// ```
    pub fn load_state(
        bytes: &[u8],
        atr: Atr,
        entropy: Box<dyn Entropy + Send>,
        factory: &dyn AppletFactory,
    ) -> Result<Card, StateError> {
        crate::state::decode(bytes, atr, entropy, factory)
    }

    /// One C-APDU in, R-APDU bytes (data ‖ SW1 SW2) out. `Err` only when the card has no power
    /// or lost it during this command (tearing), never for a bad APDU (that is a status word).
    pub fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, CardError> {
        if !self.powered {
            return Err(CardError::NotPowered);
        }
        let pending = core::mem::take(&mut self.pending);
        let pending_sw = core::mem::replace(&mut self.pending_sw, StatusWord::SUCCESS);
        let response = self.dispatch(command, pending, pending_sw);
        if response.is_err() || self.store.is_torn() {
            self.lose_power();
            return Err(CardError::PowerLost);
        }
        response
    }

    fn clear_volatile(&mut self) {
        self.selected = None;
        self.current_ef = None;
        self.pending.clear();
        self.pending_sw = StatusWord::SUCCESS;
        for inst in &mut self.instances {
            inst.applet.reset_volatile();
        }
    }

    fn lose_power(&mut self) {
        self.changes.clear();
        self.powered = false;
        self.selected = None;
        self.current_ef = None;
        self.pending.clear();
        self.pending_sw = StatusWord::SUCCESS;
    }

    fn dispatch(
        &mut self,
        raw: &[u8],
        pending: Vec<u8>,
        pending_sw: StatusWord,
    ) -> Result<Vec<u8>, CardError> {
        let Ok(cmd) = CommandApdu::parse(raw) else {
            return Ok(sw_only(StatusWord::WRONG_LENGTH));
        };
        if let Err(sw) = check_cla(cmd.cla) {
            return Ok(sw_only(sw));
        }
        if matches!(cmd.ins & 0xF0, 0x60 | 0x90) {
            return Ok(sw_only(StatusWord::INS_NOT_SUPPORTED));
        }
        let interindustry = cmd.cla & 0x80 == 0;
        if interindustry {
            match cmd.ins {
                0xC0 => return Ok(self.get_response(&cmd, pending, pending_sw)),
                0x70 => return Ok(sw_only(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED)),
                0xA4 if cmd.p1 == 0x04 => return self.select_by_name(&cmd, ne(&cmd, raw)),
                0xA4 if cmd.p1 == 0x00 && matches!(cmd.data.as_slice(), [] | [0x3F, 0x00]) => {
                    return Ok(self.select_mf(&cmd, ne(&cmd, raw)));
                }
                _ => {}
            }
        }
        let Some(index) = self.selected else {
            return self.dispatch_mf(&cmd, raw);
        };
        let Some(inst) = self.instances.get_mut(index) else {
            return Ok(sw_only(StatusWord::UNKNOWN));
        };
        if inst.manager {
            return self.dispatch_manager(index, &cmd, raw);
        }
        let mut ctx = Context::new(
            &mut self.store,
            inst.ns,
            &mut *self.entropy,
            &mut self.current_ef,
        );
        let result = match ctx.files().process(&cmd) {
            Some(r) => r,
            None => inst.applet.process(&mut ctx, &cmd),
        };
        let warning = ctx.warning();
        self.finish(&cmd, raw, result, warning)
    }

    /// A command to a card manager: its code is lent out of the instance list for the command
    /// so its [`Context`] can reach the other instances ([`crate::manage`]).
    fn dispatch_manager(
        &mut self,
        index: usize,
        cmd: &CommandApdu,
        raw: &[u8],
    ) -> Result<Vec<u8>, CardError> {
        let Some(inst) = self.instances.get_mut(index) else {
            return Ok(sw_only(StatusWord::UNKNOWN));
        };
        let ns = inst.ns;
        let vacant = Box::new(Vacant(inst.aid.clone()));
        let mut applet = core::mem::replace(&mut inst.applet, vacant);
        self.changes.clear();
        let (result, warning) = {
            let runtime = Runtime {
                instances: &mut self.instances,
                changes: &mut self.changes,
                library: self.library.as_deref(),
                next_namespace: &mut self.next_namespace,
                caller: ns,
            };
            let mut ctx = Context::new(
                &mut self.store,
                ns,
                &mut *self.entropy,
                &mut self.current_ef,
            )
            .with_runtime(runtime);
            let result = match ctx.files().process(cmd) {
                Some(r) => r,
                None => applet.process(&mut ctx, cmd),
            };
            (result, ctx.warning())
        };
        if let Some(inst) = self.instances.get_mut(index) {
            inst.applet = applet;
        }
        self.finish(cmd, raw, result, warning)
    }

    /// Drops this command's staged writes and content changes.
    fn discard(&mut self) {
        self.store.discard();
        self.changes.clear();
    }

    /// Applies the content changes of a command that committed.
    fn apply_changes(&mut self) {
        if self.changes.installs.is_empty()
            && self.changes.deletes.is_empty()
            && self.changes.selectable.is_empty()
        {
            return;
        }
        let selected = self
            .selected
            .and_then(|i| self.instances.get(i))
            .map(|i| i.ns);
        let deletes = core::mem::take(&mut self.changes.deletes);
        self.instances.retain(|i| !deletes.contains(&i.ns));
        for (ns, selectable) in core::mem::take(&mut self.changes.selectable) {
            if let Some(inst) = self.instances.iter_mut().find(|i| i.ns == ns) {
                inst.selectable = selectable;
            }
        }
        self.instances.append(&mut self.changes.installs);
        self.selected = selected.and_then(|ns| self.instances.iter().position(|i| i.ns == ns));
        if self.selected.is_none() {
            self.current_ef = None;
        }
    }

    /// A command with the MF current: the first applet whose [`Applet::process_mf`] answers it,
    /// else the MF rules of the module documentation.
    fn dispatch_mf(&mut self, cmd: &CommandApdu, raw: &[u8]) -> Result<Vec<u8>, CardError> {
        let mut current_ef = None;
        for inst in &mut self.instances {
            let mut ctx = Context::new(
                &mut self.store,
                inst.ns,
                &mut *self.entropy,
                &mut current_ef,
            );
            if let Some(result) = inst.applet.process_mf(&mut ctx, cmd) {
                let warning = ctx.warning();
                return self.finish(cmd, raw, result, warning);
            }
            if self.store.is_torn() {
                return Err(CardError::PowerLost);
            }
            // An applet that passes the command on has no business staging writes; whatever it
            // staged must not ride along with the next applet's (or the next command's) commit.
            self.store.discard();
        }
        Ok(sw_only(mf_command(cmd)))
    }

    /// Commits or discards, applies the warning, `6Cxx` and `61xx` rules.
    fn finish(
        &mut self,
        cmd: &CommandApdu,
        raw: &[u8],
        result: Result<Vec<u8>, StatusWord>,
        warning: Option<StatusWord>,
    ) -> Result<Vec<u8>, CardError> {
        if self.store.is_torn() {
            return Err(CardError::PowerLost);
        }
        let data = match result {
            Ok(data) => data,
            Err(sw) => {
                self.discard();
                return Ok(sw_only(sanitize(sw)));
            }
        };
        let sw = match warning {
            None => StatusWord::SUCCESS,
            Some(sw) if sw.is_warning() => sw,
            Some(_) => {
                self.discard();
                return Ok(sw_only(StatusWord::UNKNOWN));
            }
        };
        if let &[_, _, _, _, le] = raw
            && le != 0
            && !data.is_empty()
            && data.len() != usize::from(le)
        {
            self.discard();
            return Ok(sw_only(StatusWord::wrong_le(len_byte(data.len()))));
        }
        self.commit_or_fault()?.map_or_else(
            || Ok(self.respond_chained(ne(cmd, raw), data, sw)),
            |sw| Ok(sw_only(sw)),
        )
    }

    /// Commits; `Ok(None)` on success, `Ok(Some(sw))` when the commit was refused (no room),
    /// `Err` on power loss.
    fn commit_or_fault(&mut self) -> Result<Option<StatusWord>, CardError> {
        match self.store.commit() {
            Ok(()) => {
                self.apply_changes();
                Ok(None)
            }
            Err(StoreError::PowerLost) => Err(CardError::PowerLost),
            Err(e) => {
                self.discard();
                Ok(Some(store_sw(e)))
            }
        }
    }

    /// `data || sw`, cut after Ne bytes with `61xx` when longer and `sw` is `9000`; any other
    /// status word goes out with all the data (SELECT with a warning or error FCI).
    fn respond(&mut self, ne: usize, mut data: Vec<u8>, sw: StatusWord) -> Vec<u8> {
        if sw != StatusWord::SUCCESS {
            data.extend_from_slice(&sw.to_bytes());
            return data;
        }
        self.respond_chained(ne, data, sw)
    }

    /// `data || last` when it fits Ne; else the first Ne bytes with `61xx`, the rest waiting
    /// for GET RESPONSE, whose final part ends with `last` (`9000` or a warning).
    fn respond_chained(&mut self, ne: usize, mut data: Vec<u8>, last: StatusWord) -> Vec<u8> {
        if data.len() <= ne {
            data.extend_from_slice(&last.to_bytes());
            return data;
        }
        let rest = data.split_off(ne);
        data.extend_from_slice(&StatusWord::bytes_remaining(len_byte(rest.len())).to_bytes());
        self.pending = rest;
        self.pending_sw = last;
        data
    }

    /// GET RESPONSE (ISO/IEC 7816-4 §11.7.1).
    fn get_response(
        &mut self,
        cmd: &CommandApdu,
        mut pending: Vec<u8>,
        pending_sw: StatusWord,
    ) -> Vec<u8> {
        if cmd.p1 != 0 || cmd.p2 != 0 || !cmd.data.is_empty() {
            let sw = if cmd.p1 != 0 || cmd.p2 != 0 {
                StatusWord::INCORRECT_P1P2
            } else {
                StatusWord::WRONG_LENGTH
            };
            self.pending = pending;
            self.pending_sw = pending_sw;
            return sw_only(sw);
        }
        if pending.is_empty() {
            return sw_only(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let ne = cmd.le.filter(|n| *n > 0).unwrap_or(256);
        let n = ne.min(pending.len());
        let rest = pending.split_off(n);
        let sw = if rest.is_empty() {
            pending_sw
        } else {
            self.pending_sw = pending_sw;
            StatusWord::bytes_remaining(len_byte(rest.len()))
        };
        self.pending = rest;
        pending.extend_from_slice(&sw.to_bytes());
        pending
    }

    /// SELECT MF: deselects the current applet.
    fn select_mf(&mut self, cmd: &CommandApdu, ne: usize) -> Vec<u8> {
        if cmd.p2 & 0xF3 != 0 {
            return sw_only(StatusWord::INCORRECT_P1P2);
        }
        self.deselect_current();
        if cmd.p2 & 0x0C == 0x0C {
            sw_only(StatusWord::SUCCESS)
        } else {
            self.respond(ne, MF_FCI.to_vec(), StatusWord::SUCCESS)
        }
    }

    fn deselect_current(&mut self) {
        if let Some(inst) = self.selected.and_then(|i| self.instances.get_mut(i)) {
            inst.applet.deselect();
        }
        self.selected = None;
        self.current_ef = None;
    }

    /// SELECT by DF name (ISO/IEC 7816-4 §11.2.2), full or partial.
    fn select_by_name(&mut self, cmd: &CommandApdu, ne: usize) -> Result<Vec<u8>, CardError> {
        let occurrence = cmd.p2 & 0x03;
        if cmd.p2 & 0xF0 != 0 || matches!(occurrence, 0x01 | 0x03) {
            return Ok(sw_only(StatusWord::INCORRECT_P1P2));
        }
        let candidates: Vec<usize> = self
            .instances
            .iter()
            .enumerate()
            .filter(|(_, inst)| inst.selectable && inst.aid.starts_with(&cmd.data))
            .map(|(i, _)| i)
            .collect();
        let target = match (occurrence, self.selected) {
            (0x02, Some(current)) => match candidates.iter().position(|&c| c == current) {
                Some(pos) => candidates.get(pos + 1).copied(),
                None => candidates.first().copied(),
            },
            _ => candidates.first().copied(),
        };
        let Some(target) = target else {
            return Ok(sw_only(StatusWord::FILE_NOT_FOUND));
        };
        self.activate(target, cmd, ne)
    }

    fn activate(
        &mut self,
        target: usize,
        cmd: &CommandApdu,
        ne: usize,
    ) -> Result<Vec<u8>, CardError> {
        if self.selected == Some(target) {
            self.deselect_current();
        }
        let Some(inst) = self.instances.get_mut(target) else {
            return Ok(sw_only(StatusWord::UNKNOWN));
        };
        let mut current_ef = None;
        let mut ctx = Context::new(
            &mut self.store,
            inst.ns,
            &mut *self.entropy,
            &mut current_ef,
        );
        let result = inst.applet.select(&mut ctx);
        if self.store.is_torn() {
            return Err(CardError::PowerLost);
        }
        let Selected { fci, sw } = match result {
            Ok(selected) => selected,
            Err(sw) => {
                self.store.discard();
                return Ok(sw_only(sanitize(sw)));
            }
        };
        if let Some(sw) = self.commit_or_fault()? {
            return Ok(sw_only(sw));
        }
        if self.selected != Some(target) {
            self.deselect_current();
        }
        self.selected = Some(target);
        self.current_ef = None;
        let fci = if cmd.p2 & 0x0C == 0x0C && sw == StatusWord::SUCCESS {
            Vec::new()
        } else {
            fci
        };
        let sw = if sw == StatusWord::SUCCESS {
            sw
        } else {
            sanitize(sw)
        };
        Ok(self.respond(ne, fci, sw))
    }
}

/// Ne of the module documentation: Le, else 65 536 for an extended encoding (a first body byte
/// `00` followed by more bytes) and 256 for a short one.
fn ne(cmd: &CommandApdu, raw: &[u8]) -> usize {
    match cmd.le {
        Some(n) if n > 0 => n,
        _ if raw.len() > 5 && raw.get(4) == Some(&0) => 65_536,
        _ => 256,
    }
}

/// A command with the MF current (no applet selected).
fn mf_command(cmd: &CommandApdu) -> StatusWord {
    if cmd.cla & 0x80 != 0 {
        return StatusWord::INS_NOT_SUPPORTED;
    }
    match cmd.ins {
        0xA4 => StatusWord::FILE_NOT_FOUND,
        0xB0 | 0xD6 if cmd.p1 & 0x80 != 0 => StatusWord::FILE_NOT_FOUND,
        0xB2 | 0xDC | 0xE2 if cmd.p2 >> 3 != 0 => StatusWord::FILE_NOT_FOUND,
        0xB0 | 0xD6 | 0xB2 | 0xDC | 0xE2 => StatusWord::NO_CURRENT_EF,
        _ => StatusWord::INS_NOT_SUPPORTED,
    }
}
