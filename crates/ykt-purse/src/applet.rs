//! The purse applet: command classification, lifecycle gating and the volatile state of one
//! instance. The command bodies live in [`crate::commands`], one family per file.
//!
//! Volatile state (dropped on deselect, reset and power loss):
//! * the open INITIALIZE session (load, purchase or composite purchase), which the very next command
//!   consumes: only CREDIT/DEBIT may use it, and UPDATE CAPP DATA CACHE may extend a composite one;
//! * the GET CHALLENGE random, valid for the next command only;
//! * the "PIN verified" flag.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Applet, Context, Selected};
use ykt_crypto::purse::{PurseAlgorithm, SessionKey};

use crate::commands;
use crate::commands::store_data::{ALREADY_PERSONALISED, NOT_PERSONALISED, PersoSession};
use crate::profile::PurseProfile;
use crate::state::{AppStatus, Lifecycle, OBJ_STATUS};

/// Applet kind persisted in the card state file (`Card::load_state` re-creates the instance from it).
pub const KIND: &str = "ykt.purse";

/// An e-purse (or second-ticket) applet instance. Its persistent data lives in the card's store;
/// this value holds only the AID, the profile and volatile session state.
pub struct PurseApplet {
    aid: Aid,
    profile: PurseProfile,
    volatile: Volatile,
    /// The STORE DATA sequence in progress (volatile; kept across SELECTs, lost on power loss).
    perso: Option<PersoSession>,
}

impl core::fmt::Debug for PurseApplet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PurseApplet")
            .field("aid", &self.aid)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// Volatile state of the applet.
#[derive(Default)]
pub(crate) struct Volatile {
    pub(crate) session: Option<Session>,
    pub(crate) challenge: Option<[u8; 8]>,
    pub(crate) pin_verified: bool,
}

/// An open INITIALIZE session, waiting for CREDIT or DEBIT.
pub(crate) enum Session {
    /// After INITIALIZE FOR LOAD (e-purse.md §4.3).
    Load(LoadSession),
    /// After INITIALIZE FOR PURCHASE or INITIALIZE FOR CAPP PURCHASE (§4.5, §4.7).
    Purchase(PurchaseSession),
}

/// What CREDIT FOR LOAD needs from INITIALIZE FOR LOAD.
pub(crate) struct LoadSession {
    pub(crate) algorithm: PurseAlgorithm,
    pub(crate) session_key: SessionKey,
    pub(crate) amount: u32,
    pub(crate) terminal: [u8; 6],
    pub(crate) old_balance: u32,
    pub(crate) online_counter: u16,
}

/// What DEBIT needs from INITIALIZE FOR (CAPP) PURCHASE, plus the cached composite records.
pub(crate) struct PurchaseSession {
    pub(crate) composite: bool,
    pub(crate) key_index: u8,
    pub(crate) random: [u8; 4],
    pub(crate) amount: u32,
    pub(crate) terminal: [u8; 6],
    pub(crate) balance: u32,
    pub(crate) offline_counter: u16,
    pub(crate) cache: Vec<CachedWrite>,
}

/// A record write buffered by UPDATE CAPP DATA CACHE, applied in DEBIT's transaction (§4.7).
pub(crate) enum CachedWrite {
    /// Replace record `number` (1-based) of a linear file.
    Update { sfi: u8, number: u8, data: Vec<u8> },
    /// Append to a cyclic file.
    Append { sfi: u8, data: Vec<u8> },
}

/// The commands this applet knows, after CLA/INS classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Verify,
    ChangeOrReloadPin,
    PinUnblock,
    Initialize,
    CreditForLoad,
    DebitForPurchase,
    UpdateCappDataCache,
    GetBalance,
    GetTransactionProve,
    GetChallenge,
    ApplicationBlock,
    ApplicationUnblock,
    CardBlock,
    File,
}

impl Command {
    /// Classifies by INS, then checks the class byte the command family uses (`6E00` otherwise).
    fn classify(cmd: &CommandApdu) -> Result<Command, StatusWord> {
        let (command, classes): (Command, &[u8]) = match cmd.ins {
            0x20 => (Command::Verify, &[0x00]),
            0x5E => (Command::ChangeOrReloadPin, &[0x80]),
            0x24 => (Command::PinUnblock, &[0x84]),
            0x50 => (Command::Initialize, &[0x80]),
            0x52 => (Command::CreditForLoad, &[0x80]),
            0x54 => (Command::DebitForPurchase, &[0x80]),
            0x5C => (Command::GetBalance, &[0x80]),
            0x5A => (Command::GetTransactionProve, &[0x80]),
            0x84 => (Command::GetChallenge, &[0x00]),
            0x1E => (Command::ApplicationBlock, &[0x84, 0x04]),
            0x18 => (Command::ApplicationUnblock, &[0x84, 0x04]),
            0x16 => (Command::CardBlock, &[0x84, 0x04]),
            // 80 DC is the proprietary UPDATE CAPP DATA CACHE; 00/04 DC is ISO UPDATE RECORD.
            0xDC if cmd.cla == 0x80 => (Command::UpdateCappDataCache, &[0x80]),
            0xA4 | 0xB0 | 0xB2 | 0xD6 | 0xDC | 0xE2 => (Command::File, &[0x00, 0x04]),
            _ => return Err(StatusWord::INS_NOT_SUPPORTED),
        };
        if classes.contains(&cmd.cla) {
            Ok(command)
        } else {
            Err(StatusWord::CLA_NOT_SUPPORTED)
        }
    }

    /// Whether the command may run in `lifecycle`.
    ///
    /// L (e-purse.md §1, §4.11 say only what SELECT answers): a temporarily blocked application still
    /// answers file reads, GET CHALLENGE and the block/unblock commands, and `6A81` to everything
    /// else; a permanently blocked or card-blocked one answers `9303` to every command.
    fn gate(self, lifecycle: Lifecycle) -> Result<(), StatusWord> {
        match lifecycle {
            Lifecycle::Active => Ok(()),
            Lifecycle::TemporarilyBlocked => match self {
                Command::File
                | Command::GetChallenge
                | Command::ApplicationBlock
                | Command::ApplicationUnblock
                | Command::CardBlock => Ok(()),
                _ => Err(StatusWord::FUNCTION_NOT_SUPPORTED),
            },
            Lifecycle::PermanentlyBlocked | Lifecycle::CardBlocked => {
                Err(StatusWord::APPLICATION_PERMANENTLY_LOCKED)
            }
        }
    }
}

impl PurseApplet {
    /// A purse instance with `aid` and `profile`. Its persistent objects are created by the issuer
    /// (see [`crate::IssuerFactory`]) or restored from a card state file.
    pub fn new(aid: Aid, profile: PurseProfile) -> PurseApplet {
        PurseApplet {
            aid,
            profile,
            volatile: Volatile::default(),
            perso: None,
        }
    }

    /// The instance's profile.
    pub fn profile(&self) -> &PurseProfile {
        &self.profile
    }

    fn dispatch(
        &mut self,
        ctx: &mut Context<'_>,
        cmd: &CommandApdu,
    ) -> Result<Vec<u8>, StatusWord> {
        // Every command closes the INITIALIZE session and uses up the challenge; the commands that
        // continue them get them handed over explicitly.
        let session = self.volatile.session.take();
        let challenge = self.volatile.challenge.take();
        let command = Command::classify(cmd)?;
        // docs/purse-dgi.md: an instance a card manager created answers nothing but SELECT until
        // its personalisation completes (its status object is written by the last block).
        if !ctx.exists(OBJ_STATUS) {
            return Err(NOT_PERSONALISED);
        }
        let status = AppStatus::load(ctx)?;
        command.gate(status.lifecycle)?;
        let profile = self.profile;
        let v = &mut self.volatile;
        match command {
            Command::Verify => commands::pin::verify(ctx, cmd, status, v),
            Command::ChangeOrReloadPin => match cmd.p1 {
                0x01 => commands::pin::change_pin(ctx, cmd, status, v),
                0x00 => commands::pin::reload_pin(ctx, cmd, status, v),
                _ => Err(StatusWord::INCORRECT_P1P2),
            },
            Command::PinUnblock => commands::pin::pin_unblock(ctx, cmd, status, challenge),
            Command::Initialize => match cmd.p1 {
                0x00 => commands::load::initialize_for_load(ctx, cmd, &profile, v),
                0x01 => commands::purchase::initialize_for_purchase(ctx, cmd, false, v),
                0x03 => commands::purchase::initialize_for_purchase(ctx, cmd, true, v),
                _ => Err(StatusWord::INCORRECT_P1P2),
            },
            Command::CreditForLoad => {
                commands::load::credit_for_load(ctx, cmd, &profile, status, session)
            }
            Command::DebitForPurchase => {
                commands::purchase::debit_for_purchase(ctx, cmd, &profile, status, session)
            }
            Command::UpdateCappDataCache => {
                commands::purchase::update_capp_data_cache(ctx, cmd, session, v)
            }
            Command::GetBalance => commands::balance::get_balance(ctx, cmd),
            Command::GetTransactionProve => {
                commands::prove::get_transaction_prove(ctx, cmd, &profile)
            }
            Command::GetChallenge => commands::block::get_challenge(ctx, cmd, v),
            Command::ApplicationBlock => {
                commands::block::application_block(ctx, cmd, status, challenge)
            }
            Command::ApplicationUnblock => {
                commands::block::application_unblock(ctx, cmd, status, challenge)
            }
            Command::CardBlock => commands::block::card_block(ctx, cmd, status, challenge),
            Command::File => commands::select::file_command(ctx, cmd),
        }
    }
}

impl Applet for PurseApplet {
    fn aid(&self) -> &Aid {
        &self.aid
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn install_params(&self) -> Vec<u8> {
        self.profile.to_params()
    }

    // e-purse.md §1
    fn select(&mut self, ctx: &mut Context<'_>) -> Result<Selected, StatusWord> {
        self.volatile = Volatile::default();
        commands::select::select(ctx, &self.aid, &self.profile)
    }

    fn deselect(&mut self) {
        self.volatile = Volatile::default();
    }

    fn process(&mut self, ctx: &mut Context<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        self.dispatch(ctx, cmd)
    }

    /// GP install() (tsm-gp.md §3.1, INSTALL [for install]): an empty purse needs no persistent
    /// object; "awaiting personalisation" is the absence of its status object, which the last
    /// STORE DATA block creates with everything else.
    fn install(&mut self, ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        if ctx.exists(OBJ_STATUS) {
            return Err(ALREADY_PERSONALISED);
        }
        Ok(())
    }

    // tsm-gp.md §3.7; docs/purse-dgi.md
    fn process_data(
        &mut self,
        ctx: &mut Context<'_>,
        cmd: &CommandApdu,
    ) -> Result<Vec<u8>, StatusWord> {
        commands::store_data::store_data(ctx, cmd, &self.profile, &mut self.perso)
    }

    fn reset_volatile(&mut self) {
        self.volatile = Volatile::default();
        self.perso = None;
    }
}
