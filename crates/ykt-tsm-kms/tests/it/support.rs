//! Simulated SEs (`ykt_tsm::testing`) and the relay loop; the `World` here holds any two
//! `KeyVault`s and records every flow state as JSON.

use std::sync::Arc;

use ykt_card::{Card, SeededRandom};
use ykt_kms::{Kms, MemoryAudit, SoftwareKms};
use ykt_scp::KeySet;
use ykt_tsm::relay::relay_on_card;
use ykt_tsm::testing::{self, SeOptions, test_keys};
use ykt_tsm::*;
use ykt_tsm_kms::KmsVault;

pub use ykt_tsm::testing::{TestRng, test_card};

pub const RECEIPT_KEY: [u8; 16] = test_keys::RECEIPT_KEY;

pub fn isd_master() -> KeySet {
    testing::isd_master().unwrap()
}

pub fn token_scalar() -> [u8; 32] {
    test_keys::TOKEN_SIGNER
}

pub fn transport_scalar() -> [u8; 32] {
    test_keys::SP_TRANSPORT
}

pub fn token_signer() -> ykt_gp::dm::TokenSigner {
    testing::token_signer().unwrap()
}

pub fn parties() -> Parties {
    testing::test_parties()
}

pub const NOW: [u8; 7] = [0x20, 0x26, 0x12, 0x02, 0x00, 0x30, 0x00];

/// The ykt-tsm tests' two memory vaults.
pub fn memory_vaults() -> (MemoryVault, MemoryVault) {
    (testing::sei_vault().unwrap(), testing::sp_vault().unwrap())
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
    let entropy = Box::new(SeededRandom::new(u64::from(serial)));
    testing::blank_se(&SeOptions::serial(serial), entropy).unwrap()
}

/// The SEID of [`new_se`]`(serial)`.
pub fn seid_of_serial(serial: u8) -> SeId {
    testing::seid_of_serial(&[serial]).unwrap()
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
