//! The applet interface: what the dispatcher calls, and how applets are re-created on load.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};

use crate::{Aid, Context};

/// Card-resident application code behind one AID.
///
/// The dispatcher owns SELECT by AID, GET RESPONSE, logical channels, the `61xx`/`6Cxx` rules
/// and transactions; for interindustry file commands (SELECT by FID, READ/UPDATE BINARY,
/// READ/UPDATE/APPEND RECORD without secure messaging) it asks the applet's
/// [`Files`](crate::fs::Files) first and calls [`process`](Applet::process) only when the
/// files do not own the command. Everything else goes to `process`.
pub trait Applet {
    /// The AID this instance answers to.
    fn aid(&self) -> &Aid;

    /// Stable name of the applet code, persisted in the state file so `Card::load_state` can
    /// re-create the instance through an [`AppletFactory`].
    fn kind(&self) -> &'static str;

    /// Installation parameters persisted with the instance (passed back to the factory on load).
    fn install_params(&self) -> Vec<u8>;

    /// SELECT (ISO/IEC 7816-4 §11.1.1). Returns the FCI (response data). `Err(sw)` refuses
    /// selection (the previous selection stays). An applet may accept with a warning or error
    /// status through `Selected { fci, sw }` (e.g. `6A81` + FCI for a blocked application):
    /// the applet is then selected and `fci || sw` is returned as is.
    fn select(&mut self, ctx: &mut Context<'_>) -> Result<Selected, StatusWord>;

    /// Called when another application (or the MF) is selected, or on reselection before
    /// `select`.
    fn deselect(&mut self) {}

    /// One command while selected. `Ok(data)` → `data || 9000` (the dispatcher handles
    /// Le/`61xx`/`6Cxx`). Writes staged through `ctx` commit iff this returns `Ok` (or were
    /// committed earlier by `ctx.commit()`).
    fn process(&mut self, ctx: &mut Context<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord>;

    /// A command while the MF is current (no application selected) that the dispatcher does not
    /// own (anything but SELECT by name, SELECT MF, GET RESPONSE and MANAGE CHANNEL).
    ///
    /// A card whose MF holds files of its own answers them here, e.g. a PSAM's terminal number in
    /// EF16 of the MF (e-purse.md §6). `None`, the default, passes the command on: the applets are
    /// asked in install order, and when none answers the dispatcher's MF rules apply. Writes
    /// staged through `ctx` commit as for [`process`](Applet::process).
    fn process_mf(
        &mut self,
        _ctx: &mut Context<'_>,
        _cmd: &CommandApdu,
    ) -> Option<Result<Vec<u8>, StatusWord>> {
        None
    }

    /// GP install(): called once when a card manager creates this instance
    /// ([`Context::install_instance`]), in the new instance's namespace and in the card
    /// manager's transaction, to create the applet's persistent objects. The default creates
    /// none.
    fn install(&mut self, _ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        Ok(())
    }

    /// Data a card manager hands over ([`Context::deliver`]): GP's STORE DATA forwarded by
    /// the security domain after INSTALL [for personalization] (GP Card Specification v2.3.1
    /// §11.11; the Personalization interface). The default refuses with `6D00`.
    fn process_data(
        &mut self,
        _ctx: &mut Context<'_>,
        _cmd: &CommandApdu,
    ) -> Result<Vec<u8>, StatusWord> {
        Err(StatusWord::INS_NOT_SUPPORTED)
    }

    /// Power off/on/reset: drop every volatile value (session keys, INITIALIZE state,
    /// challenges).
    fn reset_volatile(&mut self);
}

/// A successful (or warning) selection: FCI bytes and the status word to send with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    /// File control information returned as response data.
    pub fci: Vec<u8>,
    /// `9000`, or a warning/error status sent with the FCI (the applet stays selected).
    pub sw: StatusWord,
}

impl Selected {
    /// FCI with `9000`.
    pub fn ok(fci: impl Into<Vec<u8>>) -> Self {
        Self {
            fci: fci.into(),
            sw: StatusWord::SUCCESS,
        }
    }
}

/// Re-creates applet instances from what the state file recorded (`kind`, AID, install
/// parameters). The instance's persistent objects come from the EEPROM image, so `create`
/// builds only the code side.
pub trait AppletFactory {
    /// The instance for `kind`/`aid`/`params`, or `None` for a kind this factory does not know.
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>>;
}
