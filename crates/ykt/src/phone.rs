//! The phone's side of the TSM flows in a test deployment: a blank SE as card production
//! delivers it (the card manager keyed for its SEID by the SE issuer's test master key, the
//! purse package in its library, the delegated-management token and receipt keys), and the key
//! names of the test deployment (whose keys `ykt_tsm_kms::KmsVault::provision_test_keys` imports).
//!
//! Every key here is a PUBLIC test value (the same as the ykt-tsm test suite's): a test
//! deployment only. A production TSM keeps its keys in the KMS (`ykt tsm init`).

use anyhow::Context as _;
use ykt_card::{Aid, Atr, Card};
use ykt_crypto::{AesKey, Sm2PrivateKey};
use ykt_gp::dm::{ReceiptAlgorithm, TokenSigner};
use ykt_gp::{IsdSetup, Package, install_isd};
use ykt_scp::KeySet;
use ykt_tsm::vault::{derive_isd_keys, test_keys};
use ykt_tsm::{KeyName, Parties, SeId, proposals};

use crate::entropy::OsEntropy;

/// The SE issuer's test ISD master key set (`ykt_tsm::vault::test_keys`).
fn test_isd_master() -> anyhow::Result<KeySet> {
    let [enc, mac, dek] = test_keys::ISD_MASTER;
    let k = |b: [u8; 16]| AesKey::from_slice(&b).context("test ISD master key");
    Ok(KeySet::aes(
        test_keys::ISD_MASTER_KVN,
        k(enc)?,
        k(mac)?,
        k(dek)?,
    ))
}

/// The SEI-TSM's test token signing key (SM2), whose public half the card manager holds.
fn test_token_signer() -> anyhow::Result<TokenSigner> {
    Ok(TokenSigner::Sm2(
        Sm2PrivateKey::from_bytes(&test_keys::TOKEN_SIGNER).context("test token key")?,
    ))
}

/// The key names the test deployment's flows use.
pub fn test_parties() -> Parties {
    Parties {
        isd_master: KeyName::new("sei/isd-master"),
        token_signer: KeyName::new("sei/token"),
        receipt_key: KeyName::new("sei/receipt"),
        sp_transport: KeyName::new("sp/transport"),
        purse_issuer: KeyName::new("sp/purse-issuer"),
    }
}

/// A blank SE from card production: CPLC from `serial`, the card manager keyed for its SEID
/// from the test ISD master, the SD and purse packages in its library, the test token and
/// receipt keys for delegated management. Randomness from the OS.
pub fn blank_se(serial: u8) -> anyhow::Result<Card> {
    let protocol = proposals::protocol().context("the TSM's secure channel protocol")?;
    let mut cplc = [0u8; 42];
    for (i, b) in cplc.iter_mut().enumerate() {
        *b = u8::try_from(i).unwrap_or(0).wrapping_mul(3) ^ serial;
    }
    let seid = seid_of(&cplc)?;
    let keys = derive_isd_keys(&test_isd_master()?, &seid).context("deriving the ISD keys")?;
    let mut setup = IsdSetup::new(protocol, keys);
    setup.cplc = cplc;
    setup.iin = vec![0x00, 0x11, 0x22, 0x33];
    setup.cin = vec![1, 2, 3, 4, 5, 6, 7, serial];
    setup.key_diversification_data = seid.0;
    setup.packages.push(Package {
        elf: Aid::new(&proposals::PURSE_ELF).context("purse ELF AID")?,
        version: proposals::PURSE_PACKAGE_VERSION,
        modules: vec![(
            Aid::new(&proposals::PURSE_MODULE).context("purse module AID")?,
            ykt_purse::KIND.to_string(),
        )],
    });
    setup.token_key = Some(test_token_signer()?.verification_key());
    setup.receipt_key = Some((ReceiptAlgorithm::AesCmac, test_keys::RECEIPT_KEY));
    let mut card = Card::new(Atr::default_t1(), Box::new(OsEntropy::new()?));
    card.set_library(crate::state::library());
    install_isd(&mut card, &setup).context("installing the card manager")?;
    card.power_on();
    Ok(card)
}

fn seid_of(cplc: &[u8; 42]) -> anyhow::Result<SeId> {
    let cplc = ykt_gp_host::Cplc::parse(cplc).context("CPLC")?;
    Ok(SeId(proposals::seid_from_cplc(&cplc)))
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
