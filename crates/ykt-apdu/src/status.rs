//! Status words (ISO/IEC 7816-4 §5.6; e-purse brief §4 for the `93xx`/`94xx` family).

use core::fmt;

/// The two trailing bytes SW1 SW2 of every response APDU, as one big-endian `u16`.
///
/// `Debug` prints `SW 6A82`; `Display` prints `6A82`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `9000`: normal processing.
    pub const SUCCESS: Self = Self(0x9000);
    /// `6281`: part of the returned data may be corrupted (warning).
    pub const DATA_MAY_BE_CORRUPTED: Self = Self(0x6281);
    /// `6282`: end of file or record reached before reading Ne bytes (warning).
    pub const END_OF_FILE: Self = Self(0x6282);
    /// `6283`: selected file deactivated (warning).
    pub const SELECTED_FILE_DEACTIVATED: Self = Self(0x6283);
    /// `6581`: memory failure.
    pub const MEMORY_FAILURE: Self = Self(0x6581);
    /// `6700`: wrong length (Lc or Le).
    pub const WRONG_LENGTH: Self = Self(0x6700);
    /// `6881`: logical channel not supported.
    pub const LOGICAL_CHANNEL_NOT_SUPPORTED: Self = Self(0x6881);
    /// `6882`: secure messaging not supported.
    pub const SECURE_MESSAGING_NOT_SUPPORTED: Self = Self(0x6882);
    /// `6884`: command chaining not supported.
    pub const CHAINING_NOT_SUPPORTED: Self = Self(0x6884);
    /// `6981`: command incompatible with file structure.
    pub const COMMAND_NOT_ALLOWED: Self = Self(0x6981);
    /// `6982`: security status not satisfied.
    pub const SECURITY_STATUS_NOT_SATISFIED: Self = Self(0x6982);
    /// `6983`: authentication method (PIN, key) blocked.
    pub const AUTH_METHOD_BLOCKED: Self = Self(0x6983);
    /// `6984`: referenced data invalidated.
    pub const REFERENCED_DATA_INVALIDATED: Self = Self(0x6984);
    /// `6985`: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: Self = Self(0x6985);
    /// `6986`: command not allowed (no current EF).
    pub const NO_CURRENT_EF: Self = Self(0x6986);
    /// `6988`: secure messaging data objects incorrect.
    pub const SM_DATA_OBJECTS_INCORRECT: Self = Self(0x6988);
    /// `6A80`: incorrect parameters in the data field.
    pub const WRONG_DATA: Self = Self(0x6A80);
    /// `6A81`: function not supported (also: application blocked, e-purse brief §1).
    pub const FUNCTION_NOT_SUPPORTED: Self = Self(0x6A81);
    /// `6A82`: file or application not found.
    pub const FILE_NOT_FOUND: Self = Self(0x6A82);
    /// `6A83`: record not found.
    pub const RECORD_NOT_FOUND: Self = Self(0x6A83);
    /// `6A84`: not enough memory space in the file.
    pub const NOT_ENOUGH_MEMORY: Self = Self(0x6A84);
    /// `6A86`: incorrect parameters P1-P2.
    pub const INCORRECT_P1P2: Self = Self(0x6A86);
    /// `6A88`: referenced data or reference data not found.
    pub const REFERENCED_DATA_NOT_FOUND: Self = Self(0x6A88);
    /// `6A89`: file already exists.
    pub const FILE_ALREADY_EXISTS: Self = Self(0x6A89);
    /// `6B00`: wrong parameters P1-P2 (offset outside the EF).
    pub const WRONG_P1P2: Self = Self(0x6B00);
    /// `6D00`: instruction code not supported or invalid.
    pub const INS_NOT_SUPPORTED: Self = Self(0x6D00);
    /// `6E00`: class not supported.
    pub const CLA_NOT_SUPPORTED: Self = Self(0x6E00);
    /// `6F00`: no precise diagnosis (the card runtime's internal-fault status).
    pub const UNKNOWN: Self = Self(0x6F00);
    /// `9302`: MAC invalid (e-purse brief §4).
    pub const MAC_INVALID: Self = Self(0x9302);
    /// `9303`: application permanently locked (e-purse brief §4).
    pub const APPLICATION_PERMANENTLY_LOCKED: Self = Self(0x9303);
    /// `9401`: insufficient balance (e-purse brief §4).
    pub const INSUFFICIENT_BALANCE: Self = Self(0x9401);
    /// `9402`: transaction counter at its maximum (e-purse brief §4).
    pub const COUNTER_AT_MAXIMUM: Self = Self(0x9402);
    /// `9403`: key index not supported (e-purse brief §4).
    pub const KEY_INDEX_NOT_SUPPORTED: Self = Self(0x9403);
    /// `9406`: required MAC not available (e-purse brief §4).
    pub const MAC_NOT_AVAILABLE: Self = Self(0x9406);

    /// Builds a status word from SW1 and SW2.
    pub const fn new(sw1: u8, sw2: u8) -> Self {
        Self(((sw1 as u16) << 8) | sw2 as u16)
    }

    /// SW1, the high byte.
    pub fn sw1(self) -> u8 {
        self.to_bytes()[0]
    }

    /// SW2, the low byte.
    pub fn sw2(self) -> u8 {
        self.to_bytes()[1]
    }

    /// `[SW1, SW2]`, as sent on the wire.
    pub fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    /// True for `9000` and for `61xx` (normal processing, more data available).
    pub fn is_success(self) -> bool {
        self == Self::SUCCESS || self.sw1() == 0x61
    }

    /// True for the warning family `62xx` / `63xx` (the command was processed).
    pub fn is_warning(self) -> bool {
        matches!(self.sw1(), 0x62 | 0x63)
    }

    /// `63Cn`: verification failed, `n` tries left (`n` is masked to its low 4 bits).
    pub const fn pin_tries_left(n: u8) -> Self {
        Self::new(0x63, 0xC0 | (n & 0x0F))
    }

    /// `61xx`: normal processing, `xx` more bytes available with GET RESPONSE (`00` = 256 or more).
    pub const fn bytes_remaining(n: u8) -> Self {
        Self::new(0x61, n)
    }

    /// `6Cxx`: wrong Le; `xx` is the exact length to ask for (`00` = 256).
    pub const fn wrong_le(exact: u8) -> Self {
        Self::new(0x6C, exact)
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SW {:04X}", self.0)
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl From<u16> for StatusWord {
    fn from(value: u16) -> Self {
        Self(value)
    }
}

impl From<StatusWord> for u16 {
    fn from(value: StatusWord) -> Self {
        value.0
    }
}
