//! Simulated SEs and the relay loop. `Library`, `TestRng`, `isd_master`, `token_signer`,
//! `parties`, `test_card`, `NOW`, `new_se` and `seid_of` are copied from ykt-tsm's
//! `tests/it/support.rs` (the keys must be the same for `provision_test_keys` to fit); the
//! `World` here holds any two `KeyVault`s and records every flow state as JSON.

use std::sync::Arc;

use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, SeededRandom};
use ykt_crypto::purse::{PurseAlgorithm, Sm4Rules};
use ykt_crypto::{AesKey, Sm2PrivateKey};
use ykt_gp::dm::{ReceiptAlgorithm, ReceiptKey, TokenSigner};
use ykt_gp::{IsdFactory, IsdSetup, Package, install_isd};
use ykt_kms::{Kms, MemoryAudit, SoftwareKms};
use ykt_purse::PurseAppletFactory;
use ykt_purse::testing::{TEST_ASN, TEST_PIN, test_master_keys};
use ykt_scp::KeySet;
use ykt_tsm::relay::relay_on_card;
use ykt_tsm::vault::derive_isd_keys;
use ykt_tsm::*;
use ykt_tsm_kms::KmsVault;

pub const RECEIPT_KEY: [u8; 16] = [0x5A; 16];

/// The simulated SE's library: the SD kinds and the purse.
pub struct Library;

impl AppletFactory for Library {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        PurseAppletFactory
            .create(kind, aid, params)
            .or_else(|| IsdFactory.create(kind, aid, params))
    }
}

/// A deterministic generator (SplitMix64), tests only.
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

pub fn isd_master() -> KeySet {
    let k = |d: u8| AesKey::from_slice(&[0x40 + d; 16]).unwrap();
    KeySet::aes(0x30, k(0), k(1), k(2))
}

pub fn token_scalar() -> [u8; 32] {
    let mut bytes = [0x11u8; 32];
    bytes[31] = 1;
    bytes
}

pub fn transport_scalar() -> [u8; 32] {
    let mut d = [0x22u8; 32];
    d[31] = 7;
    d
}

pub fn token_signer() -> TokenSigner {
    TokenSigner::Sm2(Sm2PrivateKey::from_bytes(&token_scalar()).unwrap())
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

/// The card spec of the e-purse brief's §8 test card.
pub fn test_card() -> PurseCardSpec {
    PurseCardSpec {
        card_number: CardNumber(TEST_ASN.0),
        issuer_id: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
        start_date: [0x20, 0x24, 0x01, 0x01],
        expiry_date: [0x20, 0x34, 0x12, 0x31],
    }
}

pub const NOW: [u8; 7] = [0x20, 0x26, 0x12, 0x02, 0x00, 0x30, 0x00];

/// The ykt-tsm tests' two memory vaults.
pub fn memory_vaults() -> (MemoryVault, MemoryVault) {
    let mut sei = MemoryVault::new();
    sei.insert_isd_master(parties().isd_master, isd_master());
    sei.insert_token_signer(parties().token_signer, token_signer());
    sei.insert_receipt_key(
        parties().receipt_key,
        ReceiptKey::aes(AesKey::from_slice(&RECEIPT_KEY).unwrap()),
    );
    let mut sp = MemoryVault::new();
    sp.insert_transport_key(
        parties().sp_transport,
        Sm2PrivateKey::from_bytes(&transport_scalar()).unwrap(),
    );
    sp.insert_purse_issuer(
        parties().purse_issuer,
        test_master_keys(PurseAlgorithm::Tdes),
        &TEST_PIN,
        ykt_purse::PurseProfile::EPURSE,
        Sm4Rules::BRIEF,
    );
    (sei, sp)
}

/// Two software KMSes (one per TSM) with the test keys, and their audit sinks.
pub struct Kmses {
    pub sei: Arc<dyn Kms>,
    pub sp: Arc<dyn Kms>,
    pub sei_audit: Arc<MemoryAudit>,
    pub sp_audit: Arc<MemoryAudit>,
}

pub fn software_kmses() -> Kmses {
    let sei_audit = Arc::new(MemoryAudit::new());
    let sp_audit = Arc::new(MemoryAudit::new());
    Kmses {
        sei: Arc::new(SoftwareKms::in_memory(sei_audit.clone())),
        sp: Arc::new(SoftwareKms::in_memory(sp_audit.clone())),
        sei_audit,
        sp_audit,
    }
}

pub fn kms_vaults(k: &Kmses) -> (KmsVault, KmsVault) {
    (
        KmsVault::provision_test_keys(k.sei.clone(), &parties(), Role::Sei).unwrap(),
        KmsVault::provision_test_keys(k.sp.clone(), &parties(), Role::Sp).unwrap(),
    )
}

/// Both TSMs (any vaults) and the payment provider; every persisted state as JSON.
pub struct World<V: KeyVault> {
    pub sei: V,
    pub sp: V,
    pub payments: TestProvider,
    pub rng: TestRng,
    pub orders: OrderBook,
    pub states: Vec<String>,
    pub relayed: Vec<String>,
}

impl<V: KeyVault> World<V> {
    pub fn new(sei: V, sp: V) -> Self {
        Self {
            sei,
            sp,
            payments: TestProvider::new(),
            rng: TestRng(42),
            orders: OrderBook::new(),
            states: Vec::new(),
            relayed: Vec::new(),
        }
    }

    fn env(&mut self) -> Env<'_> {
        Env {
            sei: &mut self.sei,
            sp: &mut self.sp,
            payments: &mut self.payments,
            rng: &mut self.rng,
            now: NOW,
        }
    }
}

/// A blank SE keyed by card production: CPLC from `serial`, ISD keys derived from the SEI
/// master for its SEID, the ISD's token and receipt keys for delegated management.
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

pub fn seid_of(cplc: &[u8; 42]) -> SeId {
    SeId(proposals::seid_from_cplc(
        &ykt_gp_host::Cplc::parse(cplc).unwrap(),
    ))
}

/// The SEID of [`new_se`]`(serial)`.
pub fn seid_of_serial(serial: u8) -> SeId {
    let mut cplc = [0u8; 42];
    for (i, b) in cplc.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(3) ^ serial;
    }
    seid_of(&cplc)
}

/// Runs `flow` to the end against `card`, recording every state and relay message as JSON.
pub fn drive<V: KeyVault>(
    flow: &mut Flow,
    world: &mut World<V>,
    card: &mut Card,
) -> Result<Outcome, Error> {
    let mut response: Option<RelayResponse> = None;
    loop {
        let out = flow.next(&mut world.env(), response.as_ref())?;
        world
            .states
            .push(serde_json::to_string(flow.state()).unwrap());
        match out {
            Output::Done(outcome) => return Ok(outcome),
            Output::Relay(req) => {
                world.relayed.push(serde_json::to_string(&req).unwrap());
                let resp = relay_on_card(&req, |c| card.transmit(c).unwrap());
                world.relayed.push(serde_json::to_string(&resp).unwrap());
                response = Some(resp);
            }
        }
    }
}

/// What a card went through: open, top-up of 10 000 fen, a balance query, card return and
/// the registry after it.
#[derive(Debug, PartialEq, Eq)]
pub struct Story {
    pub opened: CardInstance,
    pub opened_balance: Option<u32>,
    pub loaded: Option<u32>,
    pub queried: u32,
    pub returned: Option<CardInstance>,
    pub returned_balance: Option<u32>,
    pub registry_after: Vec<(Vec<u8>, String, u8)>,
}

/// Open card → top-up → card-data query → card return → status query, on `card`.
pub fn story<V: KeyVault>(world: &mut World<V>, card: &mut Card) -> Story {
    let mut flow = Flow::open_card("open-1", parties(), Management::Authorized, test_card());
    let opened = drive(&mut flow, world, card).unwrap();
    let instance = opened.instance.clone().unwrap();
    assert_eq!(instance.state, InstanceState::Active);

    world.payments.pay("o1", instance.card_number, 10_000);
    world.orders.begin("o1", "topup-o1").unwrap();
    let mut flow = Flow::top_up(
        "topup-o1",
        parties(),
        &instance,
        OrderRef {
            order_id: "o1".to_string(),
            amount: 10_000,
        },
    )
    .unwrap();
    let loaded = drive(&mut flow, world, card).unwrap();
    world.orders.complete(loaded.load.clone().unwrap());

    let mut flow = Flow::card_data_query("query", parties(), &instance).unwrap();
    let queried = drive(&mut flow, world, card).unwrap().card.unwrap().balance;

    let mut flow = Flow::card_return("return-1", parties(), &instance).unwrap();
    let returned = drive(&mut flow, world, card).unwrap();

    let mut flow = Flow::status_query("status", parties(), None);
    let status = drive(&mut flow, world, card).unwrap();
    Story {
        opened: instance,
        opened_balance: opened.balance,
        loaded: loaded.balance,
        queried,
        returned: returned.instance,
        returned_balance: returned.balance,
        registry_after: status
            .registry
            .iter()
            .map(|e| (e.aid.as_bytes().to_vec(), e.kind.clone(), e.life_cycle))
            .collect(),
    }
}
