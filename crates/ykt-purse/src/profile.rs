//! The per-instance profile: what distinguishes the e-purse from the second ticket type, and the few
//! behaviours the brief leaves open (each a named field with its default in one named constant).
//!
//! The profile is the applet's installation parameter: `Card::save_state` keeps it next to the
//! instance and hands it back to [`crate::PurseAppletFactory`] on load, so it is encoded explicitly
//! here (version byte first) rather than derived.

use alloc::vec::Vec;

use ykt_apdu::StatusWord;

/// Ticket-type code of the stored-value e-purse (e-purse.md §0). Shown in EF18 records, see
/// [`crate::files::TransactionRecord`].
pub const TICKET_TYPE_EPURSE: u8 = 0x00;

/// Ticket-type code of the second ticket type (第二票种).
///
/// L (conformance.md §4.2, semantics unknown): we model the second ticket as a count ticket whose
/// "balance" counts units (rides) instead of fen, with the same commands, cryptograms and records as
/// the e-purse. The code is our choice.
pub const TICKET_TYPE_SECOND: u8 = 0x01;

/// Highest balance a load may reach, in fen: 1000.00 CNY.
///
/// L: the brief gives no limit. 1000 CNY is the usual cap of PBOC e-cash and of the T-Union cards we
/// could find described. Kept per instance in [`PurseProfile::max_balance`].
pub const DEFAULT_MAX_BALANCE: u32 = 100_000;

/// Status word of INITIALIZE FOR LOAD when `balance + amount` would exceed the profile's maximum.
///
/// L (conformance.md SE-EP-LOAD-004 leaves the value open): `6A80` (wrong data: the amount field is
/// not acceptable), returned before any random is drawn or MAC1 computed.
pub const LOAD_LIMIT_EXCEEDED: StatusWord = StatusWord::WRONG_DATA;

/// Counter value GET TRANSACTION PROVE expects by default.
///
/// e-purse.md §4.8 (L): the card stores the pre-increment counter (the EF18 value); an older terminal
/// family sends the counter plus one. [`ProveCounter::PostIncrement`] is the compatibility switch.
pub const DEFAULT_PROVE_COUNTER: ProveCounter = ProveCounter::PreIncrement;

/// Consecutive MAC1/MAC2 failures after which the application blocks itself temporarily; 0 = never.
///
/// L (e-purse.md §4.4: "PBOC says the card counts MAC failures and may lock the key"): off by default so
/// a bad MAC changes nothing persistent. When on, each bad MAC in CREDIT/DEBIT is counted in EEPROM
/// (committed even though the command fails), a good one resets the count, and reaching the limit sets
/// the temporary application block that APPLICATION UNBLOCK (§4.11) lifts.
pub const DEFAULT_MAC_FAILURE_LIMIT: u8 = 0;

/// Which counter value GET TRANSACTION PROVE accepts (e-purse.md §4.8). This enum is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProveCounter {
    /// The counter the transaction used, as in its EF18 record (our reading of the brief).
    PreIncrement,
    /// The counter after the transaction (one vendor's older terminals).
    PostIncrement,
}

/// What one purse instance is: ticket type, limits and the open-choice switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PurseProfile {
    /// Ticket-type code shown in records ([`TICKET_TYPE_EPURSE`] or [`TICKET_TYPE_SECOND`]).
    pub ticket_type: u8,
    /// Application version returned in FCI tag `9F08` (e-purse.md §1: `02` in the captured FCI).
    pub application_version: u8,
    /// Highest balance a load may reach ([`DEFAULT_MAX_BALANCE`]).
    pub max_balance: u32,
    /// GET TRANSACTION PROVE counter convention ([`DEFAULT_PROVE_COUNTER`]).
    pub prove_counter: ProveCounter,
    /// MAC failures before a temporary block; 0 = off ([`DEFAULT_MAC_FAILURE_LIMIT`]).
    pub mac_failure_limit: u8,
    /// Whether INITIALIZE FOR LOAD needs a verified PIN in this session (e-purse.md §4.1: "before load on
    /// cards whose ACL asks for it"). Off for transit EPs.
    pub pin_required_for_load: bool,
}

/// Version byte of the encoded profile.
const PROFILE_ENCODING_VERSION: u8 = 1;
/// Length of the encoded profile.
const PROFILE_LEN: usize = 10;

impl PurseProfile {
    /// The profile of the stored-value e-purse at [`crate::EP_AID`].
    pub const EPURSE: PurseProfile = PurseProfile {
        ticket_type: TICKET_TYPE_EPURSE,
        application_version: 0x02,
        max_balance: DEFAULT_MAX_BALANCE,
        prove_counter: DEFAULT_PROVE_COUNTER,
        mac_failure_limit: DEFAULT_MAC_FAILURE_LIMIT,
        pin_required_for_load: false,
    };

    /// The profile of the second ticket type at [`crate::SECOND_TICKET_AID`]: a count ticket of at
    /// most 100 units (L, conformance.md §4.2).
    pub const SECOND_TICKET: PurseProfile = PurseProfile {
        ticket_type: TICKET_TYPE_SECOND,
        application_version: 0x02,
        max_balance: 100,
        prove_counter: DEFAULT_PROVE_COUNTER,
        mac_failure_limit: DEFAULT_MAC_FAILURE_LIMIT,
        pin_required_for_load: false,
    };

    /// Encodes the profile as installation parameters.
    pub fn to_params(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROFILE_LEN);
        out.push(PROFILE_ENCODING_VERSION);
        out.push(self.ticket_type);
        out.push(self.application_version);
        out.extend_from_slice(&self.max_balance.to_be_bytes());
        out.push(match self.prove_counter {
            ProveCounter::PreIncrement => 0,
            ProveCounter::PostIncrement => 1,
        });
        out.push(self.mac_failure_limit);
        out.push(u8::from(self.pin_required_for_load));
        out
    }

    /// Decodes installation parameters written by [`PurseProfile::to_params`]; `None` if malformed.
    pub fn from_params(params: &[u8]) -> Option<PurseProfile> {
        let p: &[u8; PROFILE_LEN] = params.try_into().ok()?;
        if p[0] != PROFILE_ENCODING_VERSION {
            return None;
        }
        let prove_counter = match p[7] {
            0 => ProveCounter::PreIncrement,
            1 => ProveCounter::PostIncrement,
            _ => return None,
        };
        let pin_required_for_load = match p[9] {
            0 => false,
            1 => true,
            _ => return None,
        };
        Some(PurseProfile {
            ticket_type: p[1],
            application_version: p[2],
            max_balance: u32::from_be_bytes([p[3], p[4], p[5], p[6]]),
            prove_counter,
            mac_failure_limit: p[8],
            pin_required_for_load,
        })
    }
}

impl Default for PurseProfile {
    fn default() -> Self {
        PurseProfile::EPURSE
    }
}
