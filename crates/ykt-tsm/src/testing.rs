//! A test deployment in one place (feature `testing`): the blank SE card production delivers,
//! keyed from [`test_keys`], the vaults of a test SEI-TSM and SP-TSM holding the same keys, the
//! key names the test flows use ([`test_parties`]), the e-purse brief's §8 test card spec and a
//! deterministic [`Entropy`].
//!
//! Every key here is a PUBLIC test value ([`test_keys`]): a test deployment only. A production
//! SE is keyed by card production from the SE issuer's own master keys, and a production TSM
//! keeps its keys in a KMS.
//!
//! The SE's identity (CPLC, IIN, CIN) follows one fixed pattern from its serial
//! ([`test_cplc`], [`test_cin`]); recorded test data depends on it, so it does not change.

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, CardError, Context, Selected};
use ykt_crypto::purse::{PurseAlgorithm, Sm4Rules};
use ykt_crypto::{AesKey, Sm2PrivateKey};
use ykt_gp::dm::{ReceiptAlgorithm, ReceiptKey, TokenSigner};
use ykt_gp::{IsdFactory, IsdSetup, Package, install_isd};
use ykt_purse::PurseProfile;
use ykt_purse::factory::PurseAppletFactory;
use ykt_purse::psam::PsamAppletFactory;
use ykt_scp::KeySet;

use crate::model::{CardNumber, PurseCardSpec, SeId};
use crate::vault::{Entropy, KeyName, MemoryVault, derive_isd_keys};
use crate::{Parties, proposals};

pub use crate::vault::test_keys;

/// The IIN of every test SE (tag `42`).
pub const TEST_IIN: [u8; 4] = [0x00, 0x11, 0x22, 0x33];

/// The AID prefix of the other issuers' applications [`SeOptions::other_applications`] puts on
/// a test SE; the last byte counts them from 0.
pub const OTHER_APPLICATION_AID_PREFIX: [u8; 6] = [0xA0, 0x00, 0x00, 0x09, 0x99, 0x00];

/// Why a test SE or a test vault could not be built (a test value refused, or the card
/// refused its card manager).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TestSeError {
    /// The serial is empty or longer than 8 bytes (the CIN has 8).
    Serial,
    /// The TSM's secure channel protocol does not build ([`proposals::protocol`]).
    Protocol,
    /// A test key value was refused by its type.
    Key(&'static str),
    /// An AID was refused.
    Aid,
    /// The test CPLC does not parse.
    Cplc,
    /// The card refused an installation.
    Card(CardError),
}

impl fmt::Display for TestSeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serial => f.write_str("a test SE serial has 1 to 8 bytes"),
            Self::Protocol => f.write_str("the TSM's secure channel protocol does not build"),
            Self::Key(which) => write!(f, "the test {which} key was refused"),
            Self::Aid => f.write_str("an AID was refused"),
            Self::Cplc => f.write_str("the test CPLC does not parse"),
            Self::Card(e) => write!(f, "the card refused an installation: {e}"),
        }
    }
}

impl core::error::Error for TestSeError {}

/// What test SEs differ in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeOptions {
    /// The SE's serial, 1 to 8 bytes: the CPLC ([`test_cplc`]) and the CIN ([`test_cin`]) come
    /// from it, so the SEID does.
    pub serial: Vec<u8>,
    /// How many other issuers' applications are on the SE before its card manager is
    /// installed (each answers SELECT and nothing else, at
    /// [`OTHER_APPLICATION_AID_PREFIX`] ‖ n): the registry then lists them.
    pub other_applications: u8,
}

impl SeOptions {
    /// The SE with the one-byte `serial` and nothing but its card manager.
    pub fn serial(serial: u8) -> Self {
        Self::wide_serial(&[serial])
    }

    /// The SE with a serial of several bytes (1 to 8; [`blank_se`] refuses others).
    pub fn wide_serial(serial: &[u8]) -> Self {
        Self {
            serial: serial.to_vec(),
            other_applications: 0,
        }
    }

    /// These options with `n` other issuers' applications on the SE.
    pub fn with_other_applications(mut self, n: u8) -> Self {
        self.other_applications = n;
        self
    }
}

/// The CPLC of the test SE with `serial`: byte `i` is `3·i XOR serial[i mod len]`.
pub fn test_cplc(serial: &[u8]) -> Result<[u8; 42], TestSeError> {
    if serial.is_empty() || serial.len() > 8 {
        return Err(TestSeError::Serial);
    }
    let mut cplc = [0u8; 42];
    for (i, b) in cplc.iter_mut().enumerate() {
        // i < 42: the product fits a byte.
        *b = ((i as u8).wrapping_mul(3)) ^ serial[i % serial.len()];
    }
    Ok(cplc)
}

/// The CIN of the test SE with `serial`: `01 02 …` up to 8 bytes with `serial` at the end.
pub fn test_cin(serial: &[u8]) -> Result<Vec<u8>, TestSeError> {
    if serial.is_empty() || serial.len() > 8 {
        return Err(TestSeError::Serial);
    }
    let mut cin: Vec<u8> = (1..=8 - serial.len() as u8).collect();
    cin.extend_from_slice(serial);
    Ok(cin)
}

/// The SEID of an SE with `cplc` ([`proposals::seid_from_cplc`]).
pub fn seid_of(cplc: &[u8; 42]) -> Result<SeId, TestSeError> {
    let cplc = ykt_gp_host::Cplc::parse(cplc).map_err(|_| TestSeError::Cplc)?;
    Ok(SeId(proposals::seid_from_cplc(&cplc)))
}

/// The SEID of the test SE with `serial`.
pub fn seid_of_serial(serial: &[u8]) -> Result<SeId, TestSeError> {
    seid_of(&test_cplc(serial)?)
}

/// The SE issuer's test ISD master key set ([`test_keys::ISD_MASTER`], version
/// [`test_keys::ISD_MASTER_KVN`]).
pub fn isd_master() -> Result<KeySet, TestSeError> {
    let [enc, mac, dek] = test_keys::ISD_MASTER;
    let k = |b: [u8; 16]| AesKey::from_slice(&b).map_err(|_| TestSeError::Key("ISD master"));
    Ok(KeySet::aes(
        test_keys::ISD_MASTER_KVN,
        k(enc)?,
        k(mac)?,
        k(dek)?,
    ))
}

/// The SEI-TSM's test token signing key ([`test_keys::TOKEN_SIGNER`]).
pub fn token_signer() -> Result<TokenSigner, TestSeError> {
    Sm2PrivateKey::from_bytes(&test_keys::TOKEN_SIGNER)
        .map(TokenSigner::Sm2)
        .map_err(|_| TestSeError::Key("token signer"))
}

/// The SP-TSM's test transport key ([`test_keys::SP_TRANSPORT`]).
pub fn transport_key() -> Result<Sm2PrivateKey, TestSeError> {
    Sm2PrivateKey::from_bytes(&test_keys::SP_TRANSPORT).map_err(|_| TestSeError::Key("transport"))
}

/// The test receipt key ([`test_keys::RECEIPT_KEY`], AES-CMAC).
pub fn receipt_key() -> Result<ReceiptKey, TestSeError> {
    AesKey::from_slice(&test_keys::RECEIPT_KEY)
        .map(ReceiptKey::aes)
        .map_err(|_| TestSeError::Key("receipt"))
}

/// The key names the test deployment's flows use (the names
/// `ykt_tsm_kms::KmsVault::provision_test_keys` imports the test keys under).
pub fn test_parties() -> Parties {
    Parties {
        isd_master: KeyName::new("sei/isd-master"),
        token_signer: KeyName::new("sei/token"),
        receipt_key: KeyName::new("sei/receipt"),
        sp_transport: KeyName::new("sp/transport"),
        purse_issuer: KeyName::new("sp/purse-issuer"),
    }
}

/// The test SEI-TSM's memory vault: the ISD master, the token signer and the receipt key
/// under [`test_parties`]' names.
pub fn sei_vault() -> Result<MemoryVault, TestSeError> {
    let parties = test_parties();
    let mut sei = MemoryVault::new();
    sei.insert_isd_master(parties.isd_master, isd_master()?);
    sei.insert_token_signer(parties.token_signer, token_signer()?);
    sei.insert_receipt_key(parties.receipt_key, receipt_key()?);
    Ok(sei)
}

/// The test SP-TSM's memory vault: the transport key, and the e-purse brief's §8 3DES master
/// keys with its PIN as the purse issuer (profile e-purse, the brief's SM4 rules).
pub fn sp_vault() -> Result<MemoryVault, TestSeError> {
    let parties = test_parties();
    let mut sp = MemoryVault::new();
    sp.insert_transport_key(parties.sp_transport, transport_key()?);
    sp.insert_purse_issuer(
        parties.purse_issuer,
        test_keys::test_master_keys(PurseAlgorithm::Tdes),
        &test_keys::TEST_PIN,
        PurseProfile::EPURSE,
        Sm4Rules::BRIEF,
    );
    Ok(sp)
}

/// The card spec of the e-purse brief's §8 test card (the purse then replays its transcripts).
pub fn test_card() -> PurseCardSpec {
    PurseCardSpec {
        card_number: CardNumber(ykt_purse::testing::TEST_ASN.0),
        issuer_id: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
        start_date: [0x20, 0x24, 0x01, 0x01],
        expiry_date: [0x20, 0x34, 0x12, 0x31],
    }
}

/// A deterministic, **not cryptographic** generator (SplitMix64 over the seed, big-endian
/// words) for the TSM's [`Entropy`]: the same seed gives the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRng(pub u64);

impl Entropy for TestRng {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
        }
    }
}

/// The test SE's library: the security-domain kinds, the e-purse and the PSAM.
#[derive(Clone, Copy, Debug, Default)]
pub struct Library;

impl AppletFactory for Library {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        PurseAppletFactory
            .create(kind, aid, params)
            .or_else(|| PsamAppletFactory.create(kind, aid, params))
            .or_else(|| IsdFactory.create(kind, aid, params))
    }
}

/// Another issuer's application: answers SELECT and nothing else.
#[derive(Clone, Debug)]
pub struct OtherApplication(pub Aid);

impl Applet for OtherApplication {
    fn aid(&self) -> &Aid {
        &self.0
    }
    fn kind(&self) -> &'static str {
        "test.plain"
    }
    fn install_params(&self) -> Vec<u8> {
        Vec::new()
    }
    fn select(&mut self, _: &mut Context<'_>) -> Result<Selected, StatusWord> {
        Ok(Selected::ok(Vec::new()))
    }
    fn process(&mut self, _: &mut Context<'_>, _: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        Err(StatusWord::INS_NOT_SUPPORTED)
    }
    fn reset_volatile(&mut self) {}
}

/// The card manager's setup of the test SE with `serial` (tsm-gp.md §6: card production keys
/// the ISD for its SEID): CPLC, IIN, CIN and KDD from the serial, the ISD keys diversified
/// from the test ISD master for the SEID, the purse package in its library, the test token
/// key and receipt key for delegated management.
pub fn isd_setup(serial: &[u8]) -> Result<IsdSetup, TestSeError> {
    let protocol = proposals::protocol().map_err(|_| TestSeError::Protocol)?;
    let cplc = test_cplc(serial)?;
    let seid = seid_of(&cplc)?;
    let keys = derive_isd_keys(&isd_master()?, &seid).map_err(|_| TestSeError::Key("ISD"))?;
    let mut setup = IsdSetup::new(protocol, keys);
    setup.cplc = cplc;
    setup.iin = TEST_IIN.to_vec();
    setup.cin = test_cin(serial)?;
    setup.key_diversification_data = seid.0;
    let aid = |b: &[u8]| Aid::new(b).map_err(|_| TestSeError::Aid);
    setup.packages.push(Package {
        elf: aid(&proposals::PURSE_ELF)?,
        version: proposals::PURSE_PACKAGE_VERSION,
        modules: vec![(aid(&proposals::PURSE_MODULE)?, ykt_purse::KIND.to_string())],
    });
    setup.token_key = Some(token_signer()?.verification_key());
    setup.receipt_key = Some((ReceiptAlgorithm::AesCmac, test_keys::RECEIPT_KEY));
    Ok(setup)
}

/// A blank SE as card production delivers it ([`isd_setup`]), powered on, with the card's
/// randomness from `entropy` and [`Library`] as its library.
pub fn blank_se(
    options: &SeOptions,
    entropy: Box<dyn ykt_card::Entropy + Send>,
) -> Result<Card, TestSeError> {
    let setup = isd_setup(&options.serial)?;
    let mut card = Card::new(Atr::default_t1(), entropy);
    card.set_library(Box::new(Library));
    for i in 0..options.other_applications {
        let mut aid = OTHER_APPLICATION_AID_PREFIX.to_vec();
        aid.push(i);
        let aid = Aid::new(&aid).map_err(|_| TestSeError::Aid)?;
        card.install(Box::new(OtherApplication(aid)), |_| Ok(()))
            .map_err(TestSeError::Card)?;
    }
    install_isd(&mut card, &setup).map_err(TestSeError::Card)?;
    card.power_on();
    Ok(card)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_one_byte_serial_keeps_the_pattern_of_the_recorded_data() {
        // The CPLC and CIN every existing test SE had (byte i = 3i XOR serial; CIN 01…07 serial).
        for serial in [0u8, 1, 7, 0xFF] {
            let cplc = test_cplc(&[serial]).unwrap();
            for (i, b) in cplc.iter().enumerate() {
                assert_eq!(*b, (i as u8 * 3) ^ serial, "byte {i}");
            }
            assert_eq!(test_cin(&[serial]).unwrap(), [1, 2, 3, 4, 5, 6, 7, serial]);
        }
    }

    #[test]
    fn a_wide_serial_cycles_through_the_cplc_and_ends_the_cin() {
        let s = [0x00, 0x01, 0x02, 0x03];
        let cplc = test_cplc(&s).unwrap();
        assert_eq!(&cplc[..5], &[0x00, 0x02, 0x04, 0x0A, 0x0C]);
        assert_eq!(test_cin(&s).unwrap(), [1, 2, 3, 4, 0, 1, 2, 3]);
        assert_ne!(seid_of_serial(&s).unwrap(), seid_of_serial(&[3]).unwrap());
    }

    #[test]
    fn serials_of_no_or_too_many_bytes_are_refused() {
        for s in [&[][..], &[0u8; 9][..]] {
            assert_eq!(test_cplc(s), Err(TestSeError::Serial));
            assert_eq!(test_cin(s), Err(TestSeError::Serial));
            assert!(matches!(
                blank_se(
                    &SeOptions::wide_serial(s),
                    Box::new(ykt_card::SeededRandom::new(1))
                ),
                Err(TestSeError::Serial)
            ));
        }
    }

    fn transmit(card: &mut Card, hex: &str) -> Vec<u8> {
        card.transmit(&crate::hex::decode(hex).unwrap()).unwrap()
    }

    #[test]
    fn a_blank_se_has_its_card_manager_with_the_serials_cplc_and_no_purse() {
        let mut card = blank_se(
            &SeOptions::serial(3),
            Box::new(ykt_card::SeededRandom::new(3)),
        )
        .unwrap();
        assert!(transmit(&mut card, "00A4040008A000000151000000").ends_with(&[0x90, 0x00]));
        let mut cplc = vec![0x9F, 0x7F, 42];
        cplc.extend_from_slice(&test_cplc(&[3]).unwrap());
        cplc.extend_from_slice(&[0x90, 0x00]);
        assert_eq!(transmit(&mut card, "80CA9F7F00"), cplc);
        let purse = transmit(&mut card, "00A4040008A000000632010105");
        assert_ne!(&purse[purse.len() - 2..], [0x90, 0x00]);
    }

    #[test]
    fn other_applications_are_on_the_card_before_its_card_manager() {
        let options = SeOptions::serial(1).with_other_applications(2);
        let card = blank_se(&options, Box::new(ykt_card::SeededRandom::new(1))).unwrap();
        let aids: Vec<Vec<u8>> = card.applets().map(|a| a.as_bytes().to_vec()).collect();
        let isd = ykt_gp::ISD_AID.to_vec();
        let other = |n: u8| [&OTHER_APPLICATION_AID_PREFIX[..], &[n]].concat();
        assert_eq!(aids, [other(0), other(1), isd]);
    }

    #[test]
    fn test_rng_is_splitmix64() {
        // SplitMix64 from seed 0: first output e220a8397b1dcdaf.
        let mut out = [0u8; 10];
        TestRng(0).fill(&mut out);
        assert_eq!(out[..8], 0xE220_A839_7B1D_CDAFu64.to_be_bytes());
    }
}
