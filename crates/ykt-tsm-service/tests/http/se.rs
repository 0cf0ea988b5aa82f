//! A simulated SE as card production leaves it, and the two TSMs' vaults (after
//! `crates/ykt-tsm/tests/it/support.rs`).

use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, SeededRandom};
use ykt_crypto::purse::{PurseAlgorithm, Sm4Rules};
use ykt_crypto::{AesKey, Sm2PrivateKey};
use ykt_gp::dm::{ReceiptAlgorithm, ReceiptKey, TokenSigner};
use ykt_gp::{IsdFactory, IsdSetup, Package, install_isd};
use ykt_purse::testing::{TEST_PIN, test_master_keys};
use ykt_purse::{PurseAppletFactory, PurseProfile};
use ykt_scp::KeySet;
use ykt_tsm::vault::derive_isd_keys;
use ykt_tsm::{KeyName, MemoryVault, Parties, SeId, proposals};

pub const RECEIPT_KEY: [u8; 16] = [0x5A; 16];

/// The SE's library: the SD kinds and the purse.
pub struct Library;

impl AppletFactory for Library {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        PurseAppletFactory
            .create(kind, aid, params)
            .or_else(|| IsdFactory.create(kind, aid, params))
    }
}

pub fn isd_master() -> KeySet {
    let k = |d: u8| AesKey::from_slice(&[0x40 + d; 16]).unwrap();
    KeySet::aes(0x30, k(0), k(1), k(2))
}

pub fn token_signer() -> TokenSigner {
    let mut bytes = [0x11u8; 32];
    bytes[31] = 1;
    TokenSigner::Sm2(Sm2PrivateKey::from_bytes(&bytes).unwrap())
}

pub fn parties() -> Parties {
    Parties {
        isd_master: KeyName::new("sei/isd-master"),
        token_signer: KeyName::new("sei/token"),
        receipt_key: KeyName::new("sei/receipt"),
        sp_transport: KeyName::new("sp/transport"),
        purse_issuer: KeyName::new("sp/purse-issuer"),
    }
}

/// The SEI-TSM's and the SP-TSM's vaults.
pub fn vaults() -> (MemoryVault, MemoryVault) {
    let mut sei = MemoryVault::new();
    sei.insert_isd_master(parties().isd_master, isd_master());
    sei.insert_token_signer(parties().token_signer, token_signer());
    sei.insert_receipt_key(
        parties().receipt_key,
        ReceiptKey::aes(AesKey::from_slice(&RECEIPT_KEY).unwrap()),
    );
    let mut sp = MemoryVault::new();
    let mut d = [0x22u8; 32];
    d[31] = 7;
    sp.insert_transport_key(
        parties().sp_transport,
        Sm2PrivateKey::from_bytes(&d).unwrap(),
    );
    sp.insert_purse_issuer(
        parties().purse_issuer,
        test_master_keys(PurseAlgorithm::Tdes),
        &TEST_PIN,
        PurseProfile::EPURSE,
        Sm4Rules::BRIEF,
    );
    (sei, sp)
}

pub fn seid_of(cplc: &[u8; 42]) -> SeId {
    SeId(proposals::seid_from_cplc(
        &ykt_gp_host::Cplc::parse(cplc).unwrap(),
    ))
}

/// A blank SE: CPLC from `serial`, ISD keys derived from the SEI master for its SEID, the
/// ISD's token and receipt keys for delegated management.
pub fn new_se(serial: u8) -> Card {
    let protocol = proposals::protocol().unwrap();
    let mut cplc = [0u8; 42];
    for (i, b) in cplc.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(3) ^ serial;
    }
    let seid = seid_of(&cplc);
    let mut s = IsdSetup::new(protocol, derive_isd_keys(&isd_master(), &seid).unwrap());
    s.cplc = cplc;
    s.iin = vec![0x00, 0x11, 0x22, 0x33];
    s.cin = vec![1, 2, 3, 4, 5, 6, 7, serial];
    s.key_diversification_data = seid.0;
    s.packages.push(Package {
        elf: Aid::new(&proposals::PURSE_ELF).unwrap(),
        version: proposals::PURSE_PACKAGE_VERSION,
        modules: vec![(
            Aid::new(&proposals::PURSE_MODULE).unwrap(),
            ykt_purse::KIND.to_string(),
        )],
    });
    s.token_key = Some(token_signer().verification_key());
    s.receipt_key = Some((ReceiptAlgorithm::AesCmac, RECEIPT_KEY));
    let mut card = Card::new(
        Atr::default_t1(),
        Box::new(SeededRandom::new(u64::from(serial))),
    );
    card.set_library(Box::new(Library));
    install_isd(&mut card, &s).unwrap();
    card.power_on();
    card
}
