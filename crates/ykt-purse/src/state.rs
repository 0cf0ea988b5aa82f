//! Persistent objects of one purse instance and their explicit encodings.
//!
//! | Object | Contents | Changes when |
//! |---|---|---|
//! | [`OBJ_PURSE`] (20 B) | balance (4) · online counter (2) · offline counter (2) · last transaction: type (1) · counter (2) · MAC2 (4) · TAC (4) · RFU (1) | CREDIT, DEBIT (same transaction as the EF18 record) |
//! | [`OBJ_STATUS`] (10 B) | lifecycle (1) · PIN tries left (1) · PIN length (1) · PIN (6, `FF`-padded) · consecutive MAC failures (1) | PIN commands, BLOCK/UNBLOCK, MAC failures when counted |
//! | [`OBJ_KEYS`] | entry count (1) · entries of [`crate::keys`] | personalisation only |
//!
//! Files EF15..EF1E live in the runtime's file system (see [`crate::files`]). Everything a
//! transaction changes (balance, counter, last-transaction proof data, EF18, cached EF1A/EF1E
//! records) is staged in the one store transaction of the command, so a power cut leaves either all
//! or none of it.

use ykt_apdu::StatusWord;
use ykt_card::{Context, ObjectId};

/// Balance, counters and last-transaction proof data.
pub(crate) const OBJ_PURSE: ObjectId = ObjectId(0x0100);
/// Lifecycle, PIN and MAC-failure count.
pub(crate) const OBJ_STATUS: ObjectId = ObjectId(0x0101);
/// Key table.
pub(crate) const OBJ_KEYS: ObjectId = ObjectId(0x0102);

/// Encoded length of [`PurseState`].
pub(crate) const PURSE_LEN: usize = 20;
/// Encoded length of [`AppStatus`].
pub(crate) const STATUS_LEN: usize = 10;

/// Number of wrong PINs before the PIN is blocked (`6983`).
///
/// L (e-purse.md §4.1 gives the `63Cx` form, not the limit): 3, the usual PBOC personalisation.
pub const PIN_TRY_LIMIT: u8 = 3;

/// Maps an undecodable persistent object to the internal-fault status word.
const CORRUPT: StatusWord = StatusWord::UNKNOWN;

/// The last committed transaction, kept for GET TRANSACTION PROVE (e-purse.md §4.8, §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LastTransaction {
    /// Transaction type (§5.6): `02` load, `06` purchase, `09` composite.
    pub transaction_type: u8,
    /// The counter the transaction used (pre-increment).
    pub counter: u16,
    /// MAC2 (received for a load, computed for a purchase).
    pub mac2: [u8; 4],
    /// TAC.
    pub tac: [u8; 4],
}

/// Balance, counters and last-transaction data of one purse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PurseState {
    /// Balance in fen (or units, for a count ticket).
    pub balance: u32,
    /// Online transaction counter (loads).
    pub online_counter: u16,
    /// Offline transaction counter (purchases and composite purchases).
    pub offline_counter: u16,
    /// The last transaction, if any.
    pub last: Option<LastTransaction>,
}

impl PurseState {
    /// Encodes the object.
    pub(crate) fn encode(&self) -> [u8; PURSE_LEN] {
        let mut out = [0u8; PURSE_LEN];
        out[0..4].copy_from_slice(&self.balance.to_be_bytes());
        out[4..6].copy_from_slice(&self.online_counter.to_be_bytes());
        out[6..8].copy_from_slice(&self.offline_counter.to_be_bytes());
        if let Some(last) = &self.last {
            out[8] = last.transaction_type;
            out[9..11].copy_from_slice(&last.counter.to_be_bytes());
            out[11..15].copy_from_slice(&last.mac2);
            out[15..19].copy_from_slice(&last.tac);
        }
        out
    }

    /// Decodes the object; `None` if malformed.
    pub(crate) fn decode(b: &[u8]) -> Option<PurseState> {
        let b: &[u8; PURSE_LEN] = b.try_into().ok()?;
        let last = match b[8] {
            0x00 => None,
            transaction_type => Some(LastTransaction {
                transaction_type,
                counter: u16::from_be_bytes([b[9], b[10]]),
                mac2: [b[11], b[12], b[13], b[14]],
                tac: [b[15], b[16], b[17], b[18]],
            }),
        };
        Some(PurseState {
            balance: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            online_counter: u16::from_be_bytes([b[4], b[5]]),
            offline_counter: u16::from_be_bytes([b[6], b[7]]),
            last,
        })
    }

    /// Reads the object through the command's context.
    pub(crate) fn load(ctx: &Context<'_>) -> Result<PurseState, StatusWord> {
        PurseState::decode(ctx.read(OBJ_PURSE)?).ok_or(CORRUPT)
    }

    /// Stages the object in the command's transaction.
    pub(crate) fn store(&self, ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        ctx.write(OBJ_PURSE, 0, &self.encode())
    }
}

/// Application lifecycle (e-purse.md §1, §4.11). This enum is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    /// Usable.
    Active,
    /// APPLICATION BLOCK P2=00 (or MAC-failure limit): SELECT answers FCI + `6A81`; APPLICATION UNBLOCK lifts it.
    TemporarilyBlocked,
    /// APPLICATION BLOCK P2=01: SELECT answers FCI + `9303`; irreversible.
    PermanentlyBlocked,
    /// CARD BLOCK: SELECT is refused with `6A81`; irreversible.
    CardBlocked,
}

impl Lifecycle {
    fn code(self) -> u8 {
        match self {
            Lifecycle::Active => 0x00,
            Lifecycle::TemporarilyBlocked => 0x01,
            Lifecycle::PermanentlyBlocked => 0x02,
            Lifecycle::CardBlocked => 0x03,
        }
    }

    fn from_code(c: u8) -> Option<Lifecycle> {
        match c {
            0x00 => Some(Lifecycle::Active),
            0x01 => Some(Lifecycle::TemporarilyBlocked),
            0x02 => Some(Lifecycle::PermanentlyBlocked),
            0x03 => Some(Lifecycle::CardBlocked),
            _ => None,
        }
    }
}

/// Maximum PIN length in bytes (12 BCD digits; e-purse.md §4.1).
pub const PIN_MAX_LEN: usize = 6;
/// Minimum PIN length in bytes (e-purse.md §4.1).
pub const PIN_MIN_LEN: usize = 2;

/// Lifecycle, PIN and MAC-failure count of one purse.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppStatus {
    pub(crate) lifecycle: Lifecycle,
    pub(crate) pin_tries_left: u8,
    pin_len: u8,
    pin: [u8; PIN_MAX_LEN],
    pub(crate) mac_failures: u8,
}

impl core::fmt::Debug for AppStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AppStatus")
            .field("lifecycle", &self.lifecycle)
            .field("pin_tries_left", &self.pin_tries_left)
            .field("pin", &"[redacted]")
            .field("mac_failures", &self.mac_failures)
            .finish()
    }
}

/// True if `pin` is 2..=6 bytes of packed BCD digits, the last nibble possibly `F` (odd digit count).
pub(crate) fn valid_pin(pin: &[u8]) -> bool {
    if !(PIN_MIN_LEN..=PIN_MAX_LEN).contains(&pin.len()) {
        return false;
    }
    let last = pin.len() - 1;
    pin.iter().enumerate().all(|(i, b)| {
        let hi = b >> 4;
        let lo = b & 0x0F;
        hi <= 9 && (lo <= 9 || (i == last && lo == 0x0F))
    })
}

impl AppStatus {
    /// A fresh status with `pin` (validated by the caller).
    pub(crate) fn new(pin: &[u8]) -> Option<AppStatus> {
        let mut s = AppStatus {
            lifecycle: Lifecycle::Active,
            pin_tries_left: PIN_TRY_LIMIT,
            pin_len: 0,
            pin: [0xFF; PIN_MAX_LEN],
            mac_failures: 0,
        };
        s.set_pin(pin).then_some(s)
    }

    /// Replaces the PIN; false if it is not a valid PIN.
    pub(crate) fn set_pin(&mut self, pin: &[u8]) -> bool {
        if !valid_pin(pin) {
            return false;
        }
        self.pin = [0xFF; PIN_MAX_LEN];
        self.pin[..pin.len()].copy_from_slice(pin);
        // `valid_pin` bounds the length by PIN_MAX_LEN.
        self.pin_len = pin.len() as u8;
        true
    }

    /// Constant-time comparison with the stored PIN.
    pub(crate) fn pin_matches(&self, candidate: &[u8]) -> bool {
        let stored = self.pin.get(..usize::from(self.pin_len)).unwrap_or(&[]);
        ykt_crypto::ct_eq(stored, candidate)
    }

    pub(crate) fn encode(&self) -> [u8; STATUS_LEN] {
        let mut out = [0u8; STATUS_LEN];
        out[0] = self.lifecycle.code();
        out[1] = self.pin_tries_left;
        out[2] = self.pin_len;
        out[3..9].copy_from_slice(&self.pin);
        out[9] = self.mac_failures;
        out
    }

    pub(crate) fn decode(b: &[u8]) -> Option<AppStatus> {
        let b: &[u8; STATUS_LEN] = b.try_into().ok()?;
        let mut pin = [0u8; PIN_MAX_LEN];
        pin.copy_from_slice(&b[3..9]);
        if usize::from(b[2]) > PIN_MAX_LEN {
            return None;
        }
        Some(AppStatus {
            lifecycle: Lifecycle::from_code(b[0])?,
            pin_tries_left: b[1],
            pin_len: b[2],
            pin,
            mac_failures: b[9],
        })
    }

    pub(crate) fn load(ctx: &Context<'_>) -> Result<AppStatus, StatusWord> {
        AppStatus::decode(ctx.read(OBJ_STATUS)?).ok_or(CORRUPT)
    }

    pub(crate) fn store(&self, ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        ctx.write(OBJ_STATUS, 0, &self.encode())
    }
}
