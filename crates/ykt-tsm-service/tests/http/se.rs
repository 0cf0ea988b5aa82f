//! A simulated SE as card production leaves it, and the two TSMs' vaults: thin names over
//! `ykt_tsm::testing` (PUBLIC test keys). The load example includes this file too, and not
//! every includer uses every name.
#![allow(dead_code, unused_imports)]

use ykt_card::{Card, SeededRandom};
use ykt_gp::dm::TokenSigner;
use ykt_scp::KeySet;
use ykt_tsm::testing::{self, SeOptions, test_keys};
use ykt_tsm::{MemoryVault, Parties, SeId};

pub use ykt_tsm::testing::Library;

pub const RECEIPT_KEY: [u8; 16] = test_keys::RECEIPT_KEY;

pub fn isd_master() -> KeySet {
    testing::isd_master().unwrap()
}

pub fn token_signer() -> TokenSigner {
    testing::token_signer().unwrap()
}

pub fn parties() -> Parties {
    testing::test_parties()
}

/// The SEI-TSM's and the SP-TSM's vaults.
pub fn vaults() -> (MemoryVault, MemoryVault) {
    (testing::sei_vault().unwrap(), testing::sp_vault().unwrap())
}

pub fn seid_of(cplc: &[u8; 42]) -> SeId {
    testing::seid_of(cplc).unwrap()
}

/// A blank SE: CPLC from `serial`, ISD keys derived from the SEI master for its SEID, the
/// ISD's token and receipt keys for delegated management.
pub fn new_se(serial: u8) -> Card {
    let entropy = Box::new(SeededRandom::new(u64::from(serial)));
    testing::blank_se(&SeOptions::serial(serial), entropy).unwrap()
}
