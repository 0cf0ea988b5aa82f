//! Personalising a PSAM (terminal id, EF17, TTSN, master keys) and re-creating it from a card
//! state file.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ykt_apdu::StatusWord;
use ykt_card::{Access, Aid, Applet, AppletFactory, Card, Context, EfSpec, EfStructure, ObjectId};
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, diversify};
use zeroize::Zeroizing;

use super::{PSAM_KIND, PsamApplet};
use crate::factory::{IssueError, MasterKey};
use crate::keys::{self, KeyEntry};

/// Terminal id, the MF's EF16 (6 bytes).
pub(crate) const OBJ_TERMINAL: ObjectId = ObjectId(0x0200);
/// The next terminal transaction serial (4 bytes, big-endian).
pub(crate) const OBJ_SERIAL: ObjectId = ObjectId(0x0201);
/// Master key table.
pub(crate) const OBJ_KEYS: ObjectId = ObjectId(0x0202);
/// SFI of the MF's terminal-id file (e-purse.md §6, `00 B0 96 00 06`).
pub(crate) const SFI_EF16: u8 = 0x16;
/// SFI of the application information file (e-purse.md §6, `00 B0 97 00 19`).
pub(crate) const SFI_EF17: u8 = 0x17;
/// EF17 length (e-purse.md §6: 25 bytes, M).
pub const EF17_LEN: usize = 25;
/// The installation parameter: the layout version of the objects above.
pub(crate) const INSTALL_PARAMS: [u8; 1] = [0x01];

/// Which diversification level comes first in the two-level form (e-purse.md §3.2). This enum is
/// complete: there are two levels, so two orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)]
pub enum DiversificationOrder {
    /// `card key = div(div(MK, issuer id), card diversifier)`.
    IssuerThenCard,
    /// `card key = div(div(MK, card diversifier), issuer id)`.
    CardThenIssuer,
}

/// Two-level card key: the master diversified by both factors, each level by the §3.2 rule of
/// `alg` (3DES `E(K, D) ‖ E(K, NOT D)`; SM4 per its `Sm4Rules`), in `order`.
pub fn diversify_two_level(
    alg: &PurseAlgorithm,
    master: &PurseKey,
    card_div: &[u8; 8],
    issuer_id: &[u8; 8],
    order: DiversificationOrder,
) -> PurseKey {
    let (first, second) = match order {
        DiversificationOrder::IssuerThenCard => (issuer_id, card_div),
        DiversificationOrder::CardThenIssuer => (card_div, issuer_id),
    };
    diversify(alg, &diversify(alg, master, first), second)
}

/// Everything a PSAM is personalised with besides its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PsamData {
    /// Terminal id (BCD), the MF's EF16.
    pub terminal_id: [u8; 6],
    /// EF17, application information; byte 0 = the purchase key index the terminal puts in
    /// INITIALIZE FOR PURCHASE and that `80 70` uses (e-purse.md §6, M). The other 24 bytes are
    /// not specified by the brief (L) and are returned as personalised.
    pub ef17: [u8; EF17_LEN],
    /// The TTSN the first `80 70` answers.
    pub next_ttsn: u32,
}

impl PsamData {
    /// Data for `terminal_id` with purchase key index `key_index`, the rest of EF17 zero, and the
    /// first TTSN `next_ttsn`.
    pub fn new(terminal_id: [u8; 6], key_index: u8, next_ttsn: u32) -> PsamData {
        let mut ef17 = [0u8; EF17_LEN];
        ef17[0] = key_index;
        PsamData {
            terminal_id,
            ef17,
            next_ttsn,
        }
    }
}

/// A personalised PSAM instance, ready to install on a [`Card`].
pub struct IssuedPsam {
    aid: Aid,
    data: PsamData,
    key_table: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for IssuedPsam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedPsam")
            .field("aid", &self.aid)
            .field("data", &self.data)
            .field("key_table", &"[redacted]")
            .finish()
    }
}

impl IssuedPsam {
    /// A PSAM at `aid` holding `master_keys` (looked up by usage, index, version and algorithm;
    /// two keys may share usage and index when their versions or algorithms differ).
    pub fn new(
        aid: &[u8],
        data: PsamData,
        master_keys: &[MasterKey],
    ) -> Result<IssuedPsam, IssueError> {
        let aid = Aid::new(aid).map_err(|_| IssueError::InvalidAid)?;
        if master_keys.len() > usize::from(u8::MAX) {
            return Err(IssueError::TooManyKeys);
        }
        let same = |a: &MasterKey, b: &MasterKey| {
            a.usage == b.usage
                && a.index == b.index
                && a.version == b.version
                && a.algorithm.algorithm_id() == b.algorithm.algorithm_id()
        };
        for (i, a) in master_keys.iter().enumerate() {
            if master_keys[..i].iter().any(|b| same(a, b)) {
                return Err(IssueError::DuplicateKey {
                    usage: a.usage,
                    index: a.index,
                });
            }
        }
        let entries: Vec<KeyEntry> = master_keys
            .iter()
            .map(|m| KeyEntry {
                usage: m.usage,
                index: m.index,
                version: m.version,
                algorithm: m.algorithm,
                key: m.key.clone(),
            })
            .collect();
        let key_table =
            Zeroizing::new(keys::encode_table(&entries).ok_or(IssueError::UnsupportedAlgorithm)?);
        Ok(IssuedPsam {
            aid,
            data,
            key_table,
        })
    }

    /// The AID of the instance.
    pub fn aid(&self) -> &Aid {
        &self.aid
    }

    /// Creates the objects and EF17 inside the installation transaction.
    fn write(&self, ctx: &mut Context<'_>) -> Result<(), StatusWord> {
        ctx.create(OBJ_TERMINAL, &self.data.terminal_id)?;
        ctx.create(OBJ_SERIAL, &self.data.next_ttsn.to_be_bytes())?;
        ctx.create(OBJ_KEYS, &self.key_table)?;
        let mut files = ctx.files();
        files.create_ef(EfSpec {
            fid: u16::from(SFI_EF17),
            sfi: Some(SFI_EF17),
            structure: EfStructure::Transparent {
                size: EF17_LEN as u16,
            },
            read: Access::Always,
            update: Access::Never,
        })?;
        files.write_binary(SFI_EF17, 0, &self.data.ef17)
    }

    /// Installs the instance: the applet plus its terminal id, serial, keys and EF17, in one
    /// transaction.
    pub fn install(self, card: &mut Card) -> Result<(), IssueError> {
        let applet = PsamApplet::new(self.aid.clone());
        card.install(Box::new(applet), move |ctx| self.write(ctx))
            .map_err(IssueError::Install)
    }
}

/// Re-creates PSAM instances (kind [`PSAM_KIND`]) from a card state file:
/// `Card::load_state(.., &PsamAppletFactory)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PsamAppletFactory;

impl AppletFactory for PsamAppletFactory {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        (kind == PSAM_KIND && params == INSTALL_PARAMS)
            .then(|| Box::new(PsamApplet::new(aid.clone())) as Box<dyn Applet + Send>)
    }
}
