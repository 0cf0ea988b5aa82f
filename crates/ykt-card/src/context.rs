//! What an applet sees of the card while processing one command.

use ykt_apdu::StatusWord;

use crate::entropy::Entropy;
use crate::fs::Files;
use crate::manage::Runtime;
use crate::store::{Key, Space, Store, StoreError};

/// Identifier of a persistent object, local to one applet instance (the runtime namespaces it
/// per instance, so two instances of the same code never see each other's objects).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(pub u16);

/// The card as one applet sees it during one command (or SELECT, or installation): a
/// transaction on its own persistent objects, the entropy source, the logical channel.
///
/// Store errors map to status words: absent object `6A88`, existing object `6A89`, write
/// past the object's end `6700`, no room `6A84`, power lost `6F00` (the dispatcher then
/// reports the power loss instead of any status word).
///
/// A command that succeeds with a warning (ISO/IEC 7816-4 `62xx`/`63xx`, e.g. GP's `6310`
/// "more data available") calls [`set_warning`](Context::set_warning) and returns `Ok(data)`:
/// the dispatcher sends `data || warning` and commits as for `9000` (rules in the
/// [`card`](crate::card) documentation).
pub struct Context<'a> {
    pub(crate) store: &'a mut Store,
    ns: u16,
    pub(crate) entropy: &'a mut (dyn Entropy + Send),
    channel: u8,
    pub(crate) current_ef: &'a mut Option<u16>,
    warning: Option<StatusWord>,
    /// Content management, for a card manager only ([`crate::manage`]).
    pub(crate) runtime: Option<Runtime<'a>>,
}

impl core::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Context")
            .field("namespace", &self.ns)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

pub(crate) fn store_sw(e: StoreError) -> StatusWord {
    match e {
        StoreError::PowerLost => StatusWord::UNKNOWN,
        StoreError::NotFound => StatusWord::REFERENCED_DATA_NOT_FOUND,
        StoreError::Exists => StatusWord::FILE_ALREADY_EXISTS,
        StoreError::OutOfRange => StatusWord::WRONG_LENGTH,
        StoreError::Full => StatusWord::NOT_ENOUGH_MEMORY,
    }
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        store: &'a mut Store,
        ns: u16,
        entropy: &'a mut (dyn Entropy + Send),
        current_ef: &'a mut Option<u16>,
    ) -> Self {
        Self {
            store,
            ns,
            entropy,
            channel: 0,
            current_ef,
            warning: None,
            runtime: None,
        }
    }

    pub(crate) fn with_runtime(mut self, runtime: Runtime<'a>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    fn key(&self, obj: ObjectId) -> Key {
        Key {
            ns: self.ns,
            space: Space::Applet,
            id: obj.0,
        }
    }

    /// The object's current value, this command's staged writes included; `6A88` if absent.
    pub fn read(&self, obj: ObjectId) -> Result<&[u8], StatusWord> {
        self.store
            .read(self.key(obj))
            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)
    }

    /// True when the object exists.
    pub fn exists(&self, obj: ObjectId) -> bool {
        self.store.read(self.key(obj)).is_some()
    }

    /// Overwrites `bytes.len()` bytes of the object at `offset` (staged in this transaction).
    pub fn write(&mut self, obj: ObjectId, offset: usize, bytes: &[u8]) -> Result<(), StatusWord> {
        let key = self.key(obj);
        self.store.write(key, offset, bytes).map_err(store_sw)
    }

    /// Creates an object whose length is `initial.len()` (fixed for its life); `6A89` if it
    /// exists.
    pub fn create(&mut self, obj: ObjectId, initial: &[u8]) -> Result<(), StatusWord> {
        let key = self.key(obj);
        self.store.create(key, initial).map_err(store_sw)
    }

    /// Commits everything staged so far, now (e.g. a PIN try counter before the compare). A
    /// later `Err` from the command no longer undoes these writes.
    pub fn commit(&mut self) -> Result<(), StatusWord> {
        self.store.commit().map_err(store_sw)
    }

    /// Answers this command's `Ok(data)` with `sw` instead of `9000`. Only a warning (`62xx`,
    /// `63xx`) is a valid answer: any other `sw` makes the dispatcher discard the staged writes
    /// and answer `6F00` (a fault, as for an error that looks like success). The last call
    /// wins; an `Err` from the command ignores it. Honoured for [`Applet::process`] and
    /// [`Applet::process_mf`], ignored in SELECT (which has [`Selected::sw`]) and installation.
    ///
    /// [`Applet::process`]: crate::Applet::process
    /// [`Applet::process_mf`]: crate::Applet::process_mf
    /// [`Selected::sw`]: crate::Selected::sw
    pub fn set_warning(&mut self, sw: StatusWord) {
        self.warning = Some(sw);
    }

    /// The status word set by [`set_warning`](Context::set_warning) in this command, if any
    /// (e.g. for a secure channel that MACs the status word with the response).
    pub fn warning(&self) -> Option<StatusWord> {
        self.warning
    }

    /// Fills `buf` from the card's entropy source.
    pub fn random(&mut self, buf: &mut [u8]) {
        self.entropy.fill(buf);
    }

    /// The logical channel of the command (always 0: only the basic channel is supported).
    pub fn channel(&self) -> u8 {
        self.channel
    }

    /// ISO/IEC 7816-4 elementary files of this applet instance.
    pub fn files(&mut self) -> Files<'_> {
        Files::new(self.store, self.ns, self.current_ef)
    }
}
