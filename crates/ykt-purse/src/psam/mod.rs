//! The PSAM applet: the terminal's secure module as a second simulated card (e-purse.md §6).
//!
//! A PSAM holds the **master** keys. For a purchase it diversifies the card's purchase key from
//! the card's ASN, computes MAC1 and numbers the terminal's transactions (TTSN), then checks the
//! card's MAC2. For secure messaging (APPLICATION BLOCK after a blacklist hit) it diversifies the
//! maintenance key and computes the line-protection MAC.
//!
//! ```text
//!  terminal                                   PSAM (this applet, kind `ykt.psam`)
//!  00 B0 96 00 06  (MF current)       ───▶  terminal id (MF EF16)                      §6
//!  00 A4 04 00 07 A000000632 4D4F     ───▶  FCI (partial name of PSAM_AID)             §6
//!  00 B0 97 00 19                     ───▶  EF17, byte 0 = purchase key index          §6
//!  80 70 00 00 1C|24 <data> 08        ───▶  TTSN ‖ MAC1; TTSN+1 committed [persistent] §6, §5.1, §5.4
//!  80 72 00 00 04 <MAC2>              ───▶  9000 | 9302 (session of the last 80 70)    §6, §5.4
//!  80 1A <usage> <version> 08|10 <div> ───▶ working key := diversified master [volatile] §6, §5.5
//!  80 FA 05 00 <Lc> <IV 8> <data>     ───▶  MAC (4) under the working key              §6, §4.10, §5.3
//! ```
//!
//! # Commands
//!
//! | Command | Form | Answer | Errors |
//! |---|---|---|---|
//! | READ BINARY of MF EF16 | `00 B0 96 <offset> <Le>`, MF current | terminal id bytes from `offset` | `6B00` offset ≥ 6, `6700` data present, `6982` UPDATE BINARY, `6981` record commands |
//! | SELECT | by DF name [`PSAM_AID`], full or any prefix (the runtime) | `6F { 84 <AID> }` | |
//! | READ BINARY EF17 | `00 B0 97 00 19` (the runtime's files) | 25 bytes | the runtime's file rules |
//! | MAC1 (消费初始化) | `80 70 00 00 1C <28 B>` single-level, `80 70 00 00 24 <36 B>` two-level | TTSN (4) ‖ MAC1 (4) | `6700` Lc, `6A86` P1P2, `6A80` transaction type, `9403` no purchase key (EF17 index, version, algorithm id), `9402` TTSN at `FFFFFFFF` |
//! | MAC2 verify | `80 72 00 00 04 <MAC2>` | — | `6985` no session, `9302` MAC2 wrong (the session is used up either way), `6700`, `6A86` |
//! | INIT FOR DESCRYPT | `80 1A <usage> <version> 08 <card div>` or `10 <card div ‖ issuer id>` | — | `6A86` unknown usage code, `9403` no key of that usage and version, `6700` |
//! | MAC with IV | `80 FA 05 00 <Lc> <IV 8 ‖ data>`, data padded by the terminal | MAC (4) | `6985` no working key, `6700` data empty or not whole blocks, `6A80` data not ending in `80 00..` padding, `6A86` P1P2 |
//!
//! Other classes get `6E00`, other instructions `6D00`. Every error leaves the persistent and the
//! volatile state as they were, except a well-formed `80 72`, which always uses up the session (one
//! MAC2 guess per MAC1).
//!
//! Volatile (lost on deselect, reset, power loss): the purchase session of the last `80 70`
//! (algorithm, session key, amount) and the working key of the last `80 1A`.
//!
//! # Persistent layout (per instance, in the runtime's namespace for it)
//!
//! | Object | Contents | Changes when |
//! |---|---|---|
//! | `ObjectId(0x0200)` terminal id, 6 B | MF EF16 (BCD) | personalisation only |
//! | `ObjectId(0x0201)` serial, 4 B | the next TTSN, big-endian | every successful `80 70` (committed before the answer) |
//! | `ObjectId(0x0202)` keys | the key table of [`crate::keys`] (count, then 25-byte entries: usage · index · version · algorithm · master key) | personalisation only |
//! | EF17 (SFI 17) | transparent 25 B, readable, not updatable | personalisation only |
//!
//! The installation parameter is one version byte (`01`), checked by [`PsamAppletFactory`].
//!
//! # Choices the brief leaves open (L)
//!
//! [`PSAM_AID`], [`TWO_LEVEL_ORDER`], [`KEY_USAGE_CODES`], [`CIPHER_IV_LEN`]; EF17 beyond byte 0 is
//! ours to fill ([`PsamData::ef17`]).

mod commands;
mod issue;

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Applet, Context, Selected};
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, SessionKey};

pub use issue::{
    DiversificationOrder, EF17_LEN, IssuedPsam, PsamAppletFactory, PsamData, diversify_two_level,
};

use crate::keys::KeyUsage;

/// Applet kind persisted in the card state file.
pub const PSAM_KIND: &str = "ykt.psam";

/// AID of the JT/T PSAM application: RID `A000000632` ‖ ASCII `MOT.CPSAM01` (16 bytes).
///
/// L (e-purse.md §6, M for the partial name only): ProjectAfcApp selects it by the 7-byte partial
/// name `A0 00 00 06 32 4D 4F`; its comment says "MOT.CPTSAM01" while its bytes spell `MOT.CPSAM01`,
/// and the brief's own hex (`...4350534A4D3031`) differs again. We take `MOT.CPSAM01`, the spelling
/// of the bytes; any prefix of at least the RID selects it, so the 7-byte form works.
pub const PSAM_AID: [u8; 16] = *b"\xA0\x00\x00\x06\x32MOT.CPSAM01";

/// The order in which the two diversification levels of the JT/T PSAM are applied (36-byte
/// `80 70`, 16-byte `80 1A`; the factors arrive as `card diversifier ‖ issuer id`, M).
///
/// L (e-purse.md §3.2: "Which level is applied first inside the PSAM is L"): the issuer id first
/// (master key → issuer key), then the card diversifier (issuer key → card key), the usual
/// hierarchy of a national master key over issuers over cards. A terminal-side software SAM must
/// use the same order (`ykt_terminal::sam::TWO_LEVEL_ORDER`, checked against this PSAM by the
/// terminal's tests).
pub const TWO_LEVEL_ORDER: DiversificationOrder = DiversificationOrder::IssuerThenCard;

/// P1 codes of `80 1A` (INIT FOR DESCRYPT) naming the usage of the master key to diversify.
///
/// L (e-purse.md §5.5 gives only `44` for the TAC key; §3.1 gives the FMCOS key-type bytes): the
/// maintenance key (DAMK) is `36`, its FMCOS line-protection type byte (e-purse.md §3.1), the one
/// usage the terminal needs from `80 1A` (APPLICATION BLOCK, §4.11). The TAC key (`44`) is not
/// offered: its MAC is not the line-protection MAC that `80 FA 05 00` computes.
pub const KEY_USAGE_CODES: [(u8, KeyUsage); 1] = [(0x36, KeyUsage::Maintenance)];

/// Length of the IV at the start of the `80 FA 05 00` data, for 3DES and SM4 alike.
///
/// L (e-purse.md §5.5 shows `<IV 8 || data>`, a 3DES example): 8 bytes, the
/// `challenge(4) ‖ 00000000` of §4.10. With an SM4 working key the IV is zero-extended to one
/// 16-byte block, which is the `challenge ‖ 0…` IV the card uses (§4.10, §5.7).
pub const CIPHER_IV_LEN: usize = 8;

/// The open purchase session of the last `80 70`, consumed by `80 72`.
pub(crate) struct PurchaseSession {
    pub(crate) algorithm: PurseAlgorithm,
    pub(crate) session_key: SessionKey,
    pub(crate) amount: u32,
}

/// The diversified key of the last `80 1A`.
pub(crate) struct WorkingKey {
    pub(crate) algorithm: PurseAlgorithm,
    pub(crate) key: PurseKey,
}

/// Volatile state of the PSAM.
#[derive(Default)]
pub(crate) struct Volatile {
    pub(crate) purchase: Option<PurchaseSession>,
    pub(crate) working_key: Option<WorkingKey>,
}

/// A PSAM application instance. Its persistent data lives in the card's store; this value holds
/// the AID and the volatile sessions.
pub struct PsamApplet {
    aid: Aid,
    volatile: Volatile,
}

impl core::fmt::Debug for PsamApplet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PsamApplet")
            .field("aid", &self.aid)
            .field("purchase_session", &self.volatile.purchase.is_some())
            .field("working_key", &self.volatile.working_key.is_some())
            .finish()
    }
}

impl PsamApplet {
    /// A PSAM instance with `aid`; its persistent objects are created by [`IssuedPsam`] or
    /// restored from a card state file.
    pub fn new(aid: Aid) -> PsamApplet {
        PsamApplet {
            aid,
            volatile: Volatile::default(),
        }
    }
}

impl Applet for PsamApplet {
    fn aid(&self) -> &Aid {
        &self.aid
    }

    fn kind(&self) -> &'static str {
        PSAM_KIND
    }

    fn install_params(&self) -> Vec<u8> {
        issue::INSTALL_PARAMS.to_vec()
    }

    // e-purse.md §6 (SELECT of the purchase application)
    fn select(&mut self, _ctx: &mut Context<'_>) -> Result<Selected, StatusWord> {
        self.volatile = Volatile::default();
        let aid = self.aid.as_bytes();
        let mut fci = Vec::with_capacity(4 + aid.len());
        // An AID has at most 16 bytes, so both lengths fit one byte.
        fci.extend_from_slice(&[0x6F, (aid.len() + 2) as u8, 0x84, aid.len() as u8]);
        fci.extend_from_slice(aid);
        Ok(Selected::ok(fci))
    }

    fn deselect(&mut self) {
        self.volatile = Volatile::default();
    }

    fn process(&mut self, ctx: &mut Context<'_>, cmd: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        let v = &mut self.volatile;
        match (cmd.ins, cmd.cla) {
            (0x70 | 0x72 | 0x1A | 0xFA, 0x80) => {}
            (0x70 | 0x72 | 0x1A | 0xFA, _) => return Err(StatusWord::CLA_NOT_SUPPORTED),
            _ => return Err(StatusWord::INS_NOT_SUPPORTED),
        }
        match cmd.ins {
            0x70 => commands::init_sam_for_purchase(ctx, cmd, v),
            0x72 => commands::verify_mac2(cmd, v),
            0x1A => commands::init_for_descrypt(ctx, cmd, v),
            _ => commands::cipher_data(cmd, v),
        }
    }

    fn process_mf(
        &mut self,
        ctx: &mut Context<'_>,
        cmd: &CommandApdu,
    ) -> Option<Result<Vec<u8>, StatusWord>> {
        commands::mf_ef16(ctx, cmd)
    }

    fn reset_volatile(&mut self) {
        self.volatile = Volatile::default();
    }
}
