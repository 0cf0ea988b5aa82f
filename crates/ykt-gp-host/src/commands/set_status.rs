//! SET STATUS (`80 F0`, GP §11.10; tsm-gp.md §3.5): the card life cycle and an application's
//! or security domain's.
//!
//! ```text
//! 80 F0 80 state               the card (ISD): 07 INITIALIZED, 0F SECURED, 7F CARD_LOCKED, FF TERMINATED
//! 80 F0 40 P2 Lc AID           an application or SSD: 80 lock, 00 unlock, 07..7F app-specific
//! 80 F0 60 P2 Lc AID           a security domain and its applications (kaoh; pysim uses C0, M)
//! ```

use ykt_apdu::CommandApdu;

use super::command;
use crate::error::BuildError;
use crate::types::{Aid, CardLifeCycle};

/// P1 `80`: the card life cycle.
pub const P1_CARD: u8 = 0x80;
/// P1 `40`: an application or supplementary security domain.
pub const P1_APPLICATION: u8 = 0x40;
/// P1 `60`: a security domain and its associated applications.
pub const P1_DOMAIN_AND_APPLICATIONS: u8 = 0x60;

/// P2 `80`: lock (GlobalPlatformPro's coding).
pub const P2_LOCK: u8 = 0x80;
/// P2 `00`: unlock, back to the state the application was locked in (GlobalPlatformPro's
/// coding; the card manager of this project takes it).
pub const P2_UNLOCK: u8 = 0x00;

/// SET STATUS of the card life cycle (no data: the ISD).
pub fn set_card_state(state: CardLifeCycle) -> CommandApdu {
    CommandApdu::new(super::CLA_GP, 0xF0, P1_CARD, state.to_byte())
}

/// SET STATUS of an application or SSD: `p2` = [`P2_LOCK`], [`P2_UNLOCK`] or an
/// application-specific state.
pub fn set_application_state(aid: &Aid, p2: u8) -> Result<CommandApdu, BuildError> {
    command(0xF0, P1_APPLICATION, p2, aid.as_bytes().to_vec(), false)
}

/// SET STATUS of a security domain and its associated applications (P1 `60`).
pub fn set_domain_state(aid: &Aid, p2: u8) -> Result<CommandApdu, BuildError> {
    command(
        0xF0,
        P1_DOMAIN_AND_APPLICATIONS,
        p2,
        aid.as_bytes().to_vec(),
        false,
    )
}
