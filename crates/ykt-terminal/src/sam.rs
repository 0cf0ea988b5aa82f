//! The purchase SAM role (e-purse.md §6): it holds the master purchase keys, computes MAC1 and
//! checks MAC2, and numbers the terminal's transactions (TTSN).
//!
//! In a validator this role is a PSAM card (commands `80 70` and `80 72`, and `80 1A` / `80 FA`
//! for secure messaging): [`CardSam`] drives one through a transmit function. [`SoftwareSam`] plays
//! the role in software from master keys, for load points, tests and the demo, with the same
//! formulas.

#[path = "sam_card.rs"]
mod sam_card;

use alloc::vec::Vec;

use ykt_crypto::purse::{self, PurseAlgorithm, PurseKey, SessionKey, Sm4Rules};

pub use self::sam_card::{CardSam, OpenError, PSAM_AID_PREFIX};
use crate::SamError;
use crate::card_data::CardIdentity;
use crate::tac::purchase_mac1_input;

/// The order in which two-level diversification applies its two factors (e-purse.md §3.2). This
/// enum is complete: there are two levels, so two orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum TwoLevelOrder {
    /// `card key = div(div(MK, issuer id), card diversifier)`.
    IssuerThenCard,
    /// `card key = div(div(MK, card diversifier), issuer id)`.
    CardThenIssuer,
}

/// The two-level order [`SoftwareSam`] uses with
/// [`with_two_level_diversification`](SoftwareSam::with_two_level_diversification).
///
/// L (e-purse.md §3.2: "Which level is applied first inside the PSAM is L"): the issuer id first,
/// then the card diversifier. It must be the order of the PSAM applet
/// (`ykt_purse::psam::TWO_LEVEL_ORDER`); the tests check that [`SoftwareSam`] and a [`CardSam`]
/// over that PSAM give the same MAC1.
pub const TWO_LEVEL_ORDER: TwoLevelOrder = TwoLevelOrder::IssuerThenCard;

/// The card key of `master`: single-level by the card diversifier, or two-level with the issuer id
/// as well, in [`TWO_LEVEL_ORDER`] (e-purse.md §3.2).
fn card_key(
    alg: &PurseAlgorithm,
    master: &PurseKey,
    card: &CardIdentity,
    two_level: bool,
) -> PurseKey {
    let div = card.diversifier();
    if !two_level {
        return purse::diversify(alg, master, &div);
    }
    let (first, second) = match TWO_LEVEL_ORDER {
        TwoLevelOrder::IssuerThenCard => (&card.issuer_id, &div),
        TwoLevelOrder::CardThenIssuer => (&div, &card.issuer_id),
    };
    purse::diversify(alg, &purse::diversify(alg, master, first), second)
}

/// What the terminal hands the SAM after INITIALIZE FOR PURCHASE (the `80 70` data, §6).
#[derive(Debug, Clone)]
pub struct SamPurchaseRequest {
    /// The card's identity (diversifier and issuer id).
    pub card: CardIdentity,
    /// Key index the terminal sent in INITIALIZE.
    pub key_index: u8,
    /// Key version returned by the card.
    pub key_version: u8,
    /// Algorithm id returned by the card.
    pub algorithm_id: u8,
    /// Card random returned by INITIALIZE.
    pub random: [u8; 4],
    /// Offline counter returned by INITIALIZE (before the increment).
    pub offline_counter: u16,
    /// Amount in fen.
    pub amount: u32,
    /// Transaction type (`06` purchase or `09` composite).
    pub transaction_type: u8,
    /// Date and time, BCD `YYYYMMDDhhmmss`.
    pub datetime: [u8; 7],
}

/// The SAM's answer to a purchase request: the terminal transaction serial and MAC1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamMac1 {
    /// Terminal transaction serial for this purchase.
    pub ttsn: u32,
    /// MAC1 for DEBIT.
    pub mac1: [u8; 4],
}

/// The purchase SAM role as a terminal sees it.
pub trait PurchaseSam {
    /// The 6-byte terminal id (BCD) the SAM belongs to.
    fn terminal_id(&self) -> [u8; 6];
    /// Derives the card's purchase key and session key, assigns a TTSN and computes MAC1 (`80 70`).
    fn init_purchase(&mut self, request: &SamPurchaseRequest) -> Result<SamMac1, SamError>;
    /// Checks MAC2 from DEBIT against the session of the last `init_purchase` (`80 72`).
    fn verify_mac2(&mut self, mac2: &[u8; 4]) -> Result<(), SamError>;
    /// The 4-byte secure-messaging MAC for a command to the card, e.g. APPLICATION BLOCK after a
    /// blacklist hit (e-purse.md §4.10, §4.11): `command` is CLA INS P1 P2 Lc \[data\] without the MAC,
    /// `challenge` the card's GET CHALLENGE random.
    fn secure_messaging_mac(
        &mut self,
        card: &CardIdentity,
        challenge: [u8; 4],
        command: &[u8],
    ) -> Result<[u8; 4], SamError>;
}

/// A master key held by a SAM or a host, by key index and version.
pub struct MasterKey {
    /// Key index (byte 0 of INITIALIZE data).
    pub index: u8,
    /// Key version (returned by INITIALIZE).
    pub version: u8,
    /// The master key.
    pub key: PurseKey,
}

/// The purchase SAM in software, from master purchase keys: single-level diversification by the
/// ASN, like a plain PBOC PSAM, or two-level with the issuer id like a JT/T PSAM when
/// [`with_two_level_diversification`](Self::with_two_level_diversification) asks for it
/// (e-purse.md §3.2, §6).
pub struct SoftwareSam {
    terminal_id: [u8; 6],
    next_ttsn: u32,
    keys: Vec<MasterKey>,
    sm4_rules: Sm4Rules,
    two_level: bool,
    maintenance: Option<(MasterKey, PurseAlgorithm)>,
    session: Option<(PurseAlgorithm, SessionKey, u32)>,
}

impl SoftwareSam {
    /// A SAM for `terminal_id` whose next transaction serial is `next_ttsn`.
    pub fn new(
        terminal_id: [u8; 6],
        next_ttsn: u32,
        keys: Vec<MasterKey>,
        sm4_rules: Sm4Rules,
    ) -> Self {
        Self {
            terminal_id,
            next_ttsn,
            keys,
            sm4_rules,
            two_level: false,
            maintenance: None,
            session: None,
        }
    }

    /// This SAM with the maintenance (DAMK) master key under `algorithm`, for
    /// [`PurchaseSam::secure_messaging_mac`]; without it that gives [`SamError::NoMaintenanceKey`].
    pub fn with_maintenance_key(mut self, key: MasterKey, algorithm: PurseAlgorithm) -> Self {
        self.maintenance = Some((key, algorithm));
        self
    }

    /// This SAM diversifying in two levels, by the issuer id and the card diversifier in
    /// [`TWO_LEVEL_ORDER`], as a JT/T PSAM does with the 36-byte `80 70` (e-purse.md §3.2, §6).
    pub fn with_two_level_diversification(mut self) -> Self {
        self.two_level = true;
        self
    }

    /// The serial the next purchase will get.
    pub fn next_ttsn(&self) -> u32 {
        self.next_ttsn
    }
}

impl PurchaseSam for SoftwareSam {
    fn terminal_id(&self) -> [u8; 6] {
        self.terminal_id
    }

    fn init_purchase(&mut self, r: &SamPurchaseRequest) -> Result<SamMac1, SamError> {
        self.session = None;
        let alg = PurseAlgorithm::from_algorithm_id(r.algorithm_id, self.sm4_rules)
            .ok_or(SamError::UnknownAlgorithm(r.algorithm_id))?;
        let master = self
            .keys
            .iter()
            .find(|k| k.index == r.key_index && k.version == r.key_version)
            .ok_or(SamError::UnknownKey {
                index: r.key_index,
                version: r.key_version,
            })?;
        let ttsn = self.next_ttsn;
        let next = ttsn.checked_add(1).ok_or(SamError::SerialExhausted)?;
        let dpk = card_key(&alg, &master.key, &r.card, self.two_level);
        let sk = purse::session_key(
            &alg,
            &dpk,
            &purse::purchase_session_input(r.random, r.offline_counter, ttsn),
        );
        let input =
            purchase_mac1_input(r.amount, r.transaction_type, &self.terminal_id, &r.datetime);
        let mac1 = purse::session_mac(&alg, &sk, &input);
        // The serial is consumed by every MAC1, used or not, as a PSAM does (§6).
        self.next_ttsn = next;
        self.session = Some((alg, sk, r.amount));
        Ok(SamMac1 { ttsn, mac1 })
    }

    fn verify_mac2(&mut self, mac2: &[u8; 4]) -> Result<(), SamError> {
        let (alg, sk, amount) = self.session.take().ok_or(SamError::NoPurchaseInProgress)?;
        let expected = purse::session_mac(&alg, &sk, &amount.to_be_bytes());
        if ykt_crypto::ct_eq(&expected, mac2) {
            Ok(())
        } else {
            Err(SamError::Mac2Invalid)
        }
    }

    // e-purse.md §4.10, §4.11, §5.3: the card's DAMK diversified from the master, retail MAC (3DES)
    // or CBC-SM4 MAC with IV = challenge || 0.., over the command header and data.
    fn secure_messaging_mac(
        &mut self,
        card: &CardIdentity,
        challenge: [u8; 4],
        command: &[u8],
    ) -> Result<[u8; 4], SamError> {
        let (master, alg) = self
            .maintenance
            .as_ref()
            .ok_or(SamError::NoMaintenanceKey)?;
        let damk = card_key(alg, &master.key, card, self.two_level);
        Ok(purse::secure_messaging_mac(alg, &damk, &challenge, command))
    }
}
