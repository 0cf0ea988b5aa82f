//! The issuer load host (e-purse.md §4.3, §4.4, §5.4): it holds the master load key, checks the
//! card's MAC1 and issues MAC2, which tells the card to credit the amount.

use alloc::vec::Vec;

use ykt_crypto::purse::{self, PurseAlgorithm, Sm4Rules};

use crate::HostError;
use crate::card_data::CardIdentity;
use crate::sam::MasterKey;
use crate::tac::{load_mac1_input, load_mac2_input};

/// A load as the load point reports it to the host after INITIALIZE FOR LOAD.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// The card's identity.
    pub card: CardIdentity,
    /// Key index sent in INITIALIZE FOR LOAD.
    pub key_index: u8,
    /// Key version returned by the card.
    pub key_version: u8,
    /// Algorithm id returned by the card.
    pub algorithm_id: u8,
    /// Balance before the load, returned by the card.
    pub old_balance: u32,
    /// Online counter returned by the card (before the increment).
    pub online_counter: u16,
    /// Card random.
    pub random: [u8; 4],
    /// MAC1 returned by the card.
    pub mac1: [u8; 4],
    /// Amount in fen.
    pub amount: u32,
    /// Terminal id of the load point.
    pub terminal_id: [u8; 6],
    /// Host date and time, BCD `YYYYMMDDhhmmss`.
    pub datetime: [u8; 7],
}

/// Who can authorise a load: checks MAC1 and answers MAC2.
pub trait LoadAuthority {
    /// Checks the card's MAC1 and returns MAC2 for CREDIT FOR LOAD.
    fn authorise(&mut self, request: &LoadRequest) -> Result<[u8; 4], HostError>;
}

/// The issuer's load host, from master load keys.
pub struct IssuerLoadHost {
    keys: Vec<MasterKey>,
    sm4_rules: Sm4Rules,
}

impl IssuerLoadHost {
    /// A host holding `keys` (master DLKs by index and version).
    pub fn new(keys: Vec<MasterKey>, sm4_rules: Sm4Rules) -> Self {
        Self { keys, sm4_rules }
    }
}

impl LoadAuthority for IssuerLoadHost {
    fn authorise(&mut self, r: &LoadRequest) -> Result<[u8; 4], HostError> {
        let alg = PurseAlgorithm::from_algorithm_id(r.algorithm_id, self.sm4_rules)
            .ok_or(HostError::UnknownAlgorithm(r.algorithm_id))?;
        let master = self
            .keys
            .iter()
            .find(|k| k.index == r.key_index && k.version == r.key_version)
            .ok_or(HostError::UnknownKey {
                index: r.key_index,
                version: r.key_version,
            })?;
        let dlk = purse::diversify(&alg, &master.key, &r.card.diversifier());
        let sk = purse::session_key(
            &alg,
            &dlk,
            &purse::load_session_input(r.random, r.online_counter),
        );
        let tx = crate::commands::transaction_type::LOAD;
        let mac1 = purse::session_mac(
            &alg,
            &sk,
            &load_mac1_input(r.old_balance, r.amount, tx, &r.terminal_id),
        );
        if !ykt_crypto::ct_eq(&mac1, &r.mac1) {
            return Err(HostError::Mac1Invalid);
        }
        Ok(purse::session_mac(
            &alg,
            &sk,
            &load_mac2_input(r.amount, tx, &r.terminal_id, &r.datetime),
        ))
    }
}
