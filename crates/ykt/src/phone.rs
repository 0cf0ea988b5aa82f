//! The phone's side of the TSM flows in a test deployment: a blank SE as card production
//! delivers it (the card manager keyed for its SEID by the SE issuer's test master key, the
//! purse package in its library, the delegated-management token and receipt keys), and the key
//! names of the test deployment (whose keys `ykt_tsm_kms::KmsVault::provision_test_keys` imports).
//!
//! Every key here is a PUBLIC test value (`ykt_tsm::testing`, the same as the ykt-tsm test
//! suite's): a test deployment only. A production TSM keeps its keys in the KMS (`ykt tsm init`).

use anyhow::Context as _;
use ykt_card::Card;
use ykt_tsm::Parties;
use ykt_tsm::testing::{self, SeOptions};

use crate::entropy::OsEntropy;

/// The key names the test deployment's flows use (`ykt_tsm::testing::test_parties`).
pub fn test_parties() -> Parties {
    testing::test_parties()
}

/// A blank SE from card production (`ykt_tsm::testing::blank_se`): CPLC from `serial`, the
/// card manager keyed for its SEID from the test ISD master, the SD and purse packages in its
/// library, the test token and receipt keys for delegated management. Randomness from the OS.
pub fn blank_se(serial: u8) -> anyhow::Result<Card> {
    testing::blank_se(&SeOptions::serial(serial), Box::new(OsEntropy::new()?))
        .context("building the test SE")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_blank_se_answers_select_of_its_card_manager_and_has_no_purse() {
        let mut card = blank_se(3).unwrap();
        let r = card
            .transmit(&hex::decode("00A4040008A000000151000000").unwrap())
            .unwrap();
        assert_eq!(&r[r.len() - 2..], [0x90, 0x00]);
        let r = card
            .transmit(&hex::decode("00A4040008A000000632010105").unwrap())
            .unwrap();
        assert_ne!(&r[r.len() - 2..], [0x90, 0x00]);
    }
}
