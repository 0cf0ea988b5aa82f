//! The applet: command classification and the volatile state of one instance. The command
//! bodies live in [`crate::commands`], one family per file.
//!
//! Volatile state (dropped on SELECT, deselect, reset and power loss, and by every command other
//! than STORE AUTHORISATION): the first parts of an authorisation sent in several commands.

use alloc::vec::Vec;
use core::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Applet, Context, Selected};

use crate::commands;
use crate::factory::NfcQrProfile;

/// Applet kind persisted in the card state file (`Card::load_state` re-creates the instance
/// through [`crate::NfcQrAppletFactory`]).
pub const KIND: &str = "ykt.nfcqr";

/// The class byte of every command of this applet (qr-code.md §4.3: "CLA `80`").
pub const CLA: u8 = 0x80;

/// INS of GENERATE KEY PAIR (qr-code.md §4.3 placeholder `E0`).
pub const INS_GENERATE_KEY_PAIR: u8 = 0xE0;
/// INS of STORE AUTHORISATION (qr-code.md §4.3 placeholder `E2`, "STORE AUTH BLOB").
pub const INS_STORE_AUTHORISATION: u8 = 0xE2;
/// INS of GENERATE CODE (qr-code.md §4.3 placeholder `E4`, "GENERATE QR SIGNATURE").
pub const INS_GENERATE_CODE: u8 = 0xE4;
/// INS of GET PUBLIC KEY (ours).
pub const INS_GET_PUBLIC_KEY: u8 = 0xE6;
/// INS of RESET (ours): the issuer-authorised erasure of key and authorisation.
pub const INS_RESET: u8 = 0xEA;
/// INS of GET DATA (ISO/IEC 7816-4 `CA`, proprietary class).
pub const INS_GET_DATA: u8 = 0xCA;

/// An NFC QR applet instance. Its key, authorisation and counters live in the card's store;
/// this value holds only the AID, the profile and the volatile part buffer.
pub struct NfcQrApplet {
    aid: Aid,
    profile: NfcQrProfile,
    volatile: Volatile,
}

impl core::fmt::Debug for NfcQrApplet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NfcQrApplet")
            .field("aid", &self.aid)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// Volatile state of the applet.
#[derive(Default)]
pub(crate) struct Volatile {
    /// The parts of an authorisation received so far with P1 = `01` (public data).
    pub(crate) parts: Vec<u8>,
}

/// The card's entropy as the RNG the SM2 code takes.
pub(crate) struct CardRng<'c, 'a>(pub(crate) &'c mut Context<'a>);

impl TryRng for CardRng<'_, '_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.0.random(&mut b);
        Ok(u32::from_be_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.random(&mut b);
        Ok(u64::from_be_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.random(dst);
        Ok(())
    }
}

// The card's entropy source is the secure element's RNG in a deployment (ykt-card `Entropy`).
impl TryCryptoRng for CardRng<'_, '_> {}

impl NfcQrApplet {
    /// An instance with `aid` and `profile`. Its persistent objects are created by
    /// [`crate::IssuedNfcQr::install`] or restored from a card state file.
    pub fn new(aid: Aid, profile: NfcQrProfile) -> NfcQrApplet {
        NfcQrApplet {
            aid,
            profile,
            volatile: Volatile::default(),
        }
    }

    /// The instance's profile.
    pub fn profile(&self) -> &NfcQrProfile {
        &self.profile
    }

    fn dispatch(
        &mut self,
        ctx: &mut Context<'_>,
        cmd: &CommandApdu,
    ) -> Result<Vec<u8>, StatusWord> {
        // Only STORE AUTHORISATION continues the part buffer; every other command ends it.
        let parts = core::mem::take(&mut self.volatile.parts);
        let known = matches!(
            cmd.ins,
            INS_GENERATE_KEY_PAIR
                | INS_STORE_AUTHORISATION
                | INS_GENERATE_CODE
                | INS_GET_PUBLIC_KEY
                | INS_RESET
                | INS_GET_DATA
        );
        if !known {
            return Err(StatusWord::INS_NOT_SUPPORTED);
        }
        if cmd.cla != CLA {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        match cmd.ins {
            INS_GENERATE_KEY_PAIR => commands::key::generate_key_pair(ctx, cmd),
            INS_GET_PUBLIC_KEY => commands::key::get_public_key(ctx, cmd),
            INS_STORE_AUTHORISATION => {
                commands::authorisation::store_authorisation(ctx, cmd, parts, &mut self.volatile)
            }
            INS_GENERATE_CODE => commands::code::generate_code(ctx, cmd, &self.profile),
            INS_RESET => commands::reset::reset(ctx, cmd),
            _ => commands::data::get_data(ctx, cmd, &self.profile),
        }
    }
}

impl Applet for NfcQrApplet {
    fn aid(&self) -> &Aid {
        &self.aid
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn install_params(&self) -> Vec<u8> {
        self.profile.to_params()
    }

    // qr-code.md §4.3: "SELECT by AID".
    fn select(&mut self, _ctx: &mut Context<'_>) -> Result<Selected, StatusWord> {
        self.volatile = Volatile::default();
        let aid = self.aid.as_bytes();
        let mut fci = Vec::with_capacity(4 + aid.len());
        fci.extend_from_slice(&[0x6F, (2 + aid.len()) as u8, 0x84, aid.len() as u8]);
        fci.extend_from_slice(aid);
        Ok(Selected::ok(fci))
    }

    fn deselect(&mut self) {
        self.volatile = Volatile::default();
    }

    fn process(&mut self, ctx: &mut Context<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        self.dispatch(ctx, cmd)
    }

    fn reset_volatile(&mut self) {
        self.volatile = Volatile::default();
    }
}
