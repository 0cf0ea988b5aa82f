//! The purchase SAM role (e-purse.md §6): it holds the master purchase keys, computes MAC1 and
//! checks MAC2, and numbers the terminal's transactions (TTSN).
//!
//! In a validator this role is a PSAM card (commands `80 70` and `80 72`). [`SoftwareSam`] plays
//! it in software from master keys, for load points, tests and the demo, with the same formulas.

use alloc::vec::Vec;

use ykt_crypto::purse::{self, PurseAlgorithm, PurseKey, SessionKey, Sm4Rules};

use crate::SamError;
use crate::card_data::CardIdentity;
use crate::tac::purchase_mac1_input;

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

/// The purchase SAM in software, from master purchase keys (single-level diversification by the
/// ASN, like a plain PBOC PSAM, e-purse.md §6).
pub struct SoftwareSam {
    terminal_id: [u8; 6],
    next_ttsn: u32,
    keys: Vec<MasterKey>,
    sm4_rules: Sm4Rules,
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
            session: None,
        }
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
        let dpk = purse::diversify(&alg, &master.key, &r.card.diversifier());
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
}
