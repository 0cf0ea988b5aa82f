//! What the runner talks to: a card behind [`CardAccess`] (in-process simulator, or a card in a
//! reader through an adapter the binary supplies), and the simulator fixtures.

use std::fmt;

use ykt_card::danger::ScriptedRandom;
use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, CardError, SeededRandom};
use ykt_crypto::purse::{PurseAlgorithm, PurseKey};
use ykt_purse::testing::{
    TEST_ASN, TEST_PIN, danger_card_with_entropy, danger_test_card_3des, danger_test_card_sm4,
    danger_test_card_with_second_ticket, test_card_data, test_issuer,
};
use ykt_purse::{EP_AID, IssueError, IssuedPurse, KeyEntry, KeyUsage, PurseProfile};

use ykt_gp::{ApplicationEntry, ApplicationState, install_isd};
use ykt_nfcqr::NfcQrProfile;

use crate::isd::{IsdChannel, IsdError, danger_install_test_isd, danger_test_isd_setup};

/// Registry entries (16-byte AIDs, no applet behind them) the `isd-paging` fixture adds, so that
/// GET STATUS of the applications needs more than one response.
pub const PAGING_EXTRA_APPLICATIONS: u8 = 7;

/// No response from the card.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The card lost power during the command (tearing, or pulled out of the field).
    PowerLost,
    /// The card has no power (it lost it earlier and was not reset).
    NotPowered,
    /// The transport failed (PC/SC error, reader gone, malformed response).
    Transport(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::PowerLost => f.write_str("the card lost power during the command"),
            Fault::NotPowered => f.write_str("the card has no power"),
            Fault::Transport(e) => write!(f, "transport: {e}"),
        }
    }
}

impl std::error::Error for Fault {}

/// A card the harness can send APDUs to. The binary adapts its PC/SC channel to this trait, so
/// this crate itself never does I/O.
pub trait CardAccess {
    /// Sends one command APDU (bytes) and returns the response (data ‖ SW1 SW2).
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Fault>;
    /// Resets the card (power it again after a power loss); volatile state is gone afterwards.
    fn reset(&mut self) -> Result<(), Fault>;
    /// The simulated card itself, for tearing and state copies; `None` for a real card.
    fn sim(&mut self) -> Option<&mut Card> {
        None
    }
}

/// The in-process simulator as a [`CardAccess`].
pub struct SimCard(pub Card);

impl fmt::Debug for SimCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimCard")
            .field("powered", &self.0.is_powered())
            .finish_non_exhaustive()
    }
}

impl CardAccess for SimCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Fault> {
        self.0.transmit(command).map_err(|e| match e {
            CardError::PowerLost => Fault::PowerLost,
            CardError::NotPowered => Fault::NotPowered,
            other => Fault::Transport(other.to_string()),
        })
    }

    fn reset(&mut self) -> Result<(), Fault> {
        self.0.power_on();
        if self.0.is_powered() {
            Ok(())
        } else {
            Err(Fault::PowerLost)
        }
    }

    fn sim(&mut self) -> Option<&mut Card> {
        Some(&mut self.0)
    }
}

/// Counter value of the `counters-fffe` fixture: one more transaction of each kind is allowed.
pub const NEAR_MAX_COUNTER: u16 = 0xFFFE;
/// Balance of the `counters-fffe` fixture.
pub const NEAR_MAX_BALANCE: u32 = 5_000;

/// The published purchase vector of e-purse.md §5.4 (cnblogs ttss/p/4280430, re-computed in the
/// brief): card DPK, random, counter, TTSN, amount, terminal, date-time, MAC1, MAC2.
pub mod vector54 {
    /// DPK of the published vector (used as the card key itself, not as a master).
    pub const DPK: [u8; 16] = *b"\x11\x22\x33\x44\x55\x66\x77\x88\x88\x77\x66\x55\x44\x33\x22\x11";
    /// Card random.
    pub const RANDOM: [u8; 4] = [0x11, 0x22, 0x33, 0x44];
    /// Terminal transaction serial.
    pub const TTSN: u32 = 1;
    /// Amount (0x1000 fen).
    pub const AMOUNT: u32 = 0x1000;
    /// Terminal id.
    pub const TERMINAL: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
    /// Date and time 2012-02-29 13:51:00.
    pub const DATETIME: [u8; 7] = [0x20, 0x12, 0x02, 0x29, 0x13, 0x51, 0x00];
    /// Expected MAC1.
    pub const MAC1: [u8; 4] = [0xF1, 0x5C, 0xAB, 0x75];
    /// Expected MAC2.
    pub const MAC2: [u8; 4] = [0x56, 0x98, 0x8A, 0x13];
}

/// A fresh simulated card for one item. `name` is the item's `fixture` parameter; every card also
/// carries the test ISD ([`crate::isd`], SCP03 with the public GP test keys; `isd-scp02` and
/// `isd-sm4` pick another channel), installed after the purses:
///
/// | name | card |
/// |---|---|
/// | `3des` (default) | the e-purse.md §8 3DES test card (scripted randoms) |
/// | `sm4` | the §8.3 SM4 test card |
/// | `t2` | the 3DES test card with the second ticket type installed after it |
/// | `counters-fffe` | the 3DES test card with both counters at `FFFE` and balance 50.00 |
/// | `vector54` | a card whose DPK is the §5.4 published key and whose first random is `11223344` |
/// | `isd-scp02`, `isd-sm4` | the 3DES test card with the test ISD on SCP02 / the SM4 channel |
/// | `nfcqr`, `nfcqr-limit3` | the NFC QR test card (`ykt_nfcqr::testing::danger_test_card`: its first key is the qr-code.md §6 user key), code limit 2000 / 3; no ISD |
/// | `isd-paging` | the 3DES test card whose ISD registry also lists [`PAGING_EXTRA_APPLICATIONS`] 16-byte AIDs (GET STATUS in parts) |
pub fn sim_fixture(name: &str) -> Result<Card, FixtureError> {
    let channel = match name {
        "isd-scp02" => IsdChannel::Scp02,
        "isd-sm4" => IsdChannel::Sm4,
        _ => IsdChannel::Scp03,
    };
    let mut card = match name {
        "isd-scp02" | "isd-sm4" => danger_test_card_3des()?,
        "isd-paging" => {
            let mut card = danger_test_card_3des()?;
            let mut setup = danger_test_isd_setup(IsdChannel::Scp03)?;
            for i in 0..PAGING_EXTRA_APPLICATIONS {
                let mut aid = [0u8; 16];
                aid[..6].copy_from_slice(&[0xD1, 0x56, 0x00, 0x00, 0x01, i]);
                let aid = Aid::new(&aid).map_err(|_| FixtureError::Unknown(name.to_owned()))?;
                setup.applications.push(ApplicationEntry {
                    aid,
                    state: ApplicationState::SELECTABLE,
                    privileges: [0; 3],
                });
            }
            install_isd(&mut card, &setup).map_err(|e| FixtureError::Isd(IsdError::Install(e)))?;
            card.set_library(Box::new(SimApplets));
            return Ok(card);
        }
        "3des" => danger_test_card_3des()?,
        "sm4" => danger_test_card_sm4()?,
        "t2" => danger_test_card_with_second_ticket()?,
        "counters-fffe" => {
            let mut data = test_card_data(TEST_ASN);
            data.online_counter = NEAR_MAX_COUNTER;
            data.offline_counter = NEAR_MAX_COUNTER;
            data.balance = NEAR_MAX_BALANCE;
            let purse =
                test_issuer(PurseAlgorithm::Tdes)?.issue(&EP_AID, PurseProfile::EPURSE, &data)?;
            ykt_purse::testing::danger_test_card(vec![purse])?
        }
        "nfcqr" | "nfcqr-limit3" => {
            let profile = if name == "nfcqr" {
                NfcQrProfile::default()
            } else {
                NfcQrProfile {
                    max_codes_per_authorisation: 3,
                }
            };
            let mut card = ykt_nfcqr::testing::danger_test_card(profile)
                .map_err(|e| FixtureError::State(format!("the NFC QR test card: {e}")))?;
            card.set_library(Box::new(SimApplets));
            return Ok(card);
        }
        "vector54" => {
            let mut data = test_card_data(TEST_ASN);
            data.balance = 0x2000;
            data.pin = TEST_PIN.to_vec();
            let keys = [KeyUsage::Purchase, KeyUsage::Tac].map(|usage| KeyEntry {
                usage,
                index: 0x01,
                version: 0x01,
                algorithm: PurseAlgorithm::Tdes,
                key: PurseKey::from_bytes(vector54::DPK),
            });
            let purse = IssuedPurse::from_card_keys(&EP_AID, PurseProfile::EPURSE, &data, &keys)?;
            let entropy = ScriptedRandom::new([vector54::RANDOM.to_vec()], 0x54);
            danger_card_with_entropy(vec![purse], Box::new(entropy))?
        }
        other => return Err(FixtureError::Unknown(other.to_owned())),
    };
    danger_install_test_isd(&mut card, channel)?;
    card.set_library(Box::new(SimApplets));
    Ok(card)
}

/// Every applet a simulated card's state copy may hold, and the library INSTALL draws on: the
/// e-purse, the PSAM, the security domains and the NFC QR applet.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimApplets;

impl AppletFactory for SimApplets {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        ykt_purse::PurseAppletFactory
            .create(kind, aid, params)
            .or_else(|| ykt_purse::psam::PsamAppletFactory.create(kind, aid, params))
            .or_else(|| ykt_gp::IsdFactory.create(kind, aid, params))
            .or_else(|| ykt_nfcqr::NfcQrAppletFactory.create(kind, aid, params))
    }
}

/// A simulated card re-created from `state` (a `Card::save_state` copy), with seeded entropy,
/// powered on (journal recovery included).
pub fn sim_from_state(state: &[u8], seed: u64) -> Result<Card, FixtureError> {
    let mut card = Card::load_state(
        state,
        Atr::default_t1(),
        Box::new(SeededRandom::new(seed)),
        &SimApplets,
    )
    .map_err(|e| FixtureError::State(e.to_string()))?;
    card.set_library(Box::new(SimApplets));
    card.power_on();
    Ok(card)
}

/// Why a fixture could not be built (a harness fault: INCONCLUSIVE).
#[derive(Debug)]
#[non_exhaustive]
pub enum FixtureError {
    /// No fixture of this name.
    Unknown(String),
    /// Issuing the test card failed.
    Issue(IssueError),
    /// A state copy did not load.
    State(String),
    /// The test ISD could not be installed.
    Isd(IsdError),
}

impl From<IsdError> for FixtureError {
    fn from(e: IsdError) -> Self {
        FixtureError::Isd(e)
    }
}

impl From<IssueError> for FixtureError {
    fn from(e: IssueError) -> Self {
        FixtureError::Issue(e)
    }
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixtureError::Unknown(n) => write!(f, "no fixture named {n:?}"),
            FixtureError::Issue(e) => write!(f, "issuing the fixture card: {e}"),
            FixtureError::State(e) => write!(f, "loading a card state copy: {e}"),
            FixtureError::Isd(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FixtureError {}
