//! Simulated SEs (ISD + the SD and purse packages), the two TSMs' vaults, and the relay loop.

use std::collections::BTreeMap;

use ykt_card::{Card, SeededRandom};
use ykt_gp::dm::ReceiptKey;
use ykt_scp::KeySet;
use ykt_tsm::relay::relay_on_card;
use ykt_tsm::testing::{self, SeOptions};
use ykt_tsm::*;

pub use ykt_tsm::testing::{Library, TestRng, test_card};

pub const RECEIPT_KEY: [u8; 16] = testing::test_keys::RECEIPT_KEY;

pub fn isd_master() -> KeySet {
    testing::isd_master().unwrap()
}

pub fn parties() -> Parties {
    testing::test_parties()
}

pub const NOW: [u8; 7] = [0x20, 0x26, 0x12, 0x02, 0x00, 0x30, 0x00];

/// Both TSMs and the payment provider.
pub struct World {
    pub sei: MemoryVault,
    pub sp: MemoryVault,
    pub payments: TestProvider,
    pub rng: TestRng,
    pub orders: OrderBook,
}

impl World {
    pub fn new() -> Self {
        Self::with_receipt_key(RECEIPT_KEY)
    }

    /// The SEI-TSM's receipt key may differ from the cards' (a wrong receipt).
    pub fn with_receipt_key(receipt: [u8; 16]) -> Self {
        let mut sei = testing::sei_vault().unwrap();
        sei.insert_receipt_key(
            parties().receipt_key,
            ReceiptKey::aes(ykt_crypto::AesKey::from_slice(&receipt).unwrap()),
        );
        let sp = testing::sp_vault().unwrap();
        Self {
            sei,
            sp,
            payments: TestProvider::new(),
            rng: TestRng(42),
            orders: OrderBook::new(),
        }
    }

    pub fn env(&mut self) -> Env<'_> {
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
    new_se_with(serial, 0)
}

/// [`new_se`] with `others` further applications already on it.
pub fn new_se_with(serial: u8, others: u8) -> Card {
    let options = SeOptions::serial(serial).with_other_applications(others);
    testing::blank_se(&options, Box::new(SeededRandom::new(u64::from(serial)))).unwrap()
}

/// Every relay message a flow sent, and what came back.
#[derive(Default)]
pub struct Log {
    pub requests: Vec<RelayRequest>,
    pub responses: Vec<RelayResponse>,
}

impl Log {
    /// Every command APDU sent.
    pub fn capdus(&self) -> impl Iterator<Item = &[u8]> {
        self.requests
            .iter()
            .flat_map(|r| r.capdus.iter().map(|c| c.as_bytes()))
    }

    /// How many STORE DATA commands with P1 `p1` the card accepted.
    pub fn accepted_store_data(&self, p1: u8) -> usize {
        self.requests
            .iter()
            .zip(&self.responses)
            .flat_map(|(q, r)| q.capdus.iter().zip(&r.rapdus))
            .filter(|(c, r)| {
                let c = c.as_bytes();
                let r = r.as_bytes();
                c[1] == 0xE2 && c[2] == p1 && r[r.len() - 2..] == [0x90, 0x00]
            })
            .count()
    }
}

/// Relays one request to the card.
pub fn relay(card: &mut Card, req: &RelayRequest) -> RelayResponse {
    relay_on_card(req, |c| card.transmit(c).unwrap())
}

/// Runs `flow` to the end against `card`; every state and message goes through JSON, as a
/// store and the wire would carry them. `tamper` may change the card's answers.
pub fn drive_with(
    flow: &mut Flow,
    world: &mut World,
    card: &mut Card,
    log: &mut Log,
    tamper: &mut dyn FnMut(&RelayRequest, &mut RelayResponse),
) -> Result<Outcome, Error> {
    let mut response: Option<RelayResponse> = None;
    loop {
        let out = flow.next(&mut world.env(), response.as_ref())?;
        let state_json = serde_json::to_string(flow.state()).unwrap();
        let back: FlowState = serde_json::from_str(&state_json).unwrap();
        assert_eq!(&back, flow.state());
        match out {
            Output::Done(outcome) => return Ok(outcome),
            Output::Relay(req) => {
                let req: RelayRequest =
                    serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
                let mut resp = relay(card, &req);
                tamper(&req, &mut resp);
                log.requests.push(req);
                log.responses.push(resp.clone());
                response = Some(resp);
            }
        }
    }
}

pub fn drive(
    flow: &mut Flow,
    world: &mut World,
    card: &mut Card,
    log: &mut Log,
) -> Result<Outcome, Error> {
    drive_with(flow, world, card, log, &mut |_, _| {})
}

/// Opens the test card on `card` (Authorized Management unless told).
pub fn open(
    world: &mut World,
    card: &mut Card,
    management: Management,
    log: &mut Log,
) -> CardInstance {
    let mut flow = Flow::open_card("open-1", parties(), management, test_card());
    let outcome = drive(&mut flow, world, card, log).unwrap();
    let instance = outcome.instance.unwrap();
    assert_eq!(instance.state, InstanceState::Active);
    assert_eq!(outcome.balance, Some(0));
    instance
}

/// Pays and loads `amount` for `order`.
pub fn top_up(
    world: &mut World,
    card: &mut Card,
    instance: &CardInstance,
    order: &str,
    amount: u32,
    log: &mut Log,
) -> Result<Outcome, Error> {
    world.payments.pay(order, instance.card_number, amount);
    let session = format!("topup-{order}");
    world.orders.begin(order, &session)?;
    let mut flow = Flow::top_up(
        &session,
        parties(),
        instance,
        OrderRef {
            order_id: order.to_string(),
            amount,
        },
    )?;
    let outcome = drive(&mut flow, world, card, log)?;
    world.orders.complete(outcome.load.clone().unwrap());
    Ok(outcome)
}

/// The SE's registry through the SEI-TSM (GET STATUS): AID hex → life cycle.
pub fn registry(world: &mut World, card: &mut Card) -> BTreeMap<String, (String, u8)> {
    let mut flow = Flow::status_query("status", parties(), None);
    let outcome = drive(&mut flow, world, card, &mut Log::default()).unwrap();
    outcome
        .registry
        .iter()
        .map(|e| {
            (
                hex::encode(e.aid.as_bytes()),
                (e.kind.clone(), e.life_cycle),
            )
        })
        .collect()
}

/// The card's balance through a card-data query.
pub fn balance(world: &mut World, card: &mut Card, instance: &CardInstance) -> u32 {
    let mut flow = Flow::card_data_query("query", parties(), instance).unwrap();
    let outcome = drive(&mut flow, world, card, &mut Log::default()).unwrap();
    let view = outcome.card.unwrap();
    assert_eq!(view.card_number, instance.card_number);
    view.balance
}

pub const PURSE: &str = "A000000632010105";
pub const PURSE_ELF: &str = "A0000006320101";
pub const SSD: &str = "A000000151535041C001";
