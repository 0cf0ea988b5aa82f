//! Life cycle states and the transitions GP allows (GP Card Specification v2.3.1 §5.1, §5.3;
//! tsm-gp.md §3.4).

/// The card life cycle state, as coded in GET STATUS (`9F70`) and SET STATUS P2.
/// This list is complete: GP defines these five card states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum CardState {
    /// `01`: the card is ready for its issuer's set-up.
    OpReady,
    /// `07`: the issuer's initial data is in place.
    Initialized,
    /// `0F`: the card is in the field; the ISD enforces its security policy.
    Secured,
    /// `7F`: only the ISD answers; reversible to SECURED.
    CardLocked,
    /// `FF`: the end of the card's life; irreversible.
    Terminated,
}

impl CardState {
    /// The coding of the state.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::OpReady => 0x01,
            Self::Initialized => 0x07,
            Self::Secured => 0x0F,
            Self::CardLocked => 0x7F,
            Self::Terminated => 0xFF,
        }
    }

    /// The state coded by `b`, if any.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => Self::OpReady,
            0x07 => Self::Initialized,
            0x0F => Self::Secured,
            0x7F => Self::CardLocked,
            0xFF => Self::Terminated,
            _ => return None,
        })
    }

    /// True when GP allows going from `self` to `to` by SET STATUS (GP §5.1.1): forward through
    /// OP_READY, INITIALIZED and SECURED (never back), SECURED ⇄ CARD_LOCKED, and TERMINATED
    /// from every other state. Staying in the same state is no transition.
    pub fn may_become(self, to: CardState) -> bool {
        use CardState::*;
        matches!(
            (self, to),
            (OpReady, Initialized)
                | (OpReady, Secured)
                | (Initialized, Secured)
                | (Secured, CardLocked)
                | (CardLocked, Secured)
                | (OpReady | Initialized | Secured | CardLocked, Terminated)
        )
    }
}

/// An application's life cycle state byte (GP §5.3.1): `03` INSTALLED, `07` SELECTABLE,
/// application-specific states `07`..`7F` with the low three bits set, and bit 8 for LOCKED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplicationState(pub u8);

impl ApplicationState {
    /// `03`.
    pub const INSTALLED: Self = Self(0x03);
    /// `07`.
    pub const SELECTABLE: Self = Self(0x07);
    /// The LOCKED bit.
    pub const LOCKED_BIT: u8 = 0x80;

    /// True when locked.
    pub fn is_locked(self) -> bool {
        self.0 & Self::LOCKED_BIT != 0
    }

    /// The state after SET STATUS P1 `40` with `p2`, or `None` when GP forbids it: `80` locks an
    /// unlocked application, `00` unlocks a locked one (back to the state it was locked in), and an
    /// application-specific state (`07`..`7F`, low three bits set) replaces the state of a
    /// selectable, unlocked application.
    pub fn after_set_status(self, p2: u8) -> Option<Self> {
        if p2 == Self::LOCKED_BIT {
            return (!self.is_locked()).then_some(Self(self.0 | Self::LOCKED_BIT));
        }
        if p2 == 0x00 {
            return self.is_locked().then_some(Self(self.0 & !Self::LOCKED_BIT));
        }
        let specific = p2 & 0x87 == 0x07;
        let selectable = !self.is_locked() && self.0 & 0x07 == 0x07;
        (specific && selectable && p2 != self.0).then_some(Self(p2))
    }
}

/// An executable load file's only state: `01` LOADED (GP §5.3.1).
pub const LOAD_FILE_LOADED: u8 = 0x01;

/// A security domain's PERSONALIZED state `0F` (GP §5.3.2).
pub const SD_PERSONALIZED: u8 = 0x0F;
