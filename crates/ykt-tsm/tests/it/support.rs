//! Simulated SEs (ISD + the SD and purse packages), the two TSMs' vaults, and the relay loop.

use std::collections::BTreeMap;

use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, SeededRandom};
use ykt_crypto::purse::{PurseAlgorithm, Sm4Rules};
use ykt_crypto::{AesKey, Sm2PrivateKey};
use ykt_gp::dm::{ReceiptAlgorithm, ReceiptKey, TokenSigner};
use ykt_gp::{IsdFactory, IsdSetup, Package, install_isd};
use ykt_purse::testing::{TEST_ASN, TEST_PIN, test_master_keys};
use ykt_purse::{PurseAppletFactory, PurseProfile};
use ykt_scp::KeySet;
use ykt_tsm::relay::relay_on_card;
use ykt_tsm::vault::derive_isd_keys;
use ykt_tsm::*;

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

/// The card spec of the e-purse brief's §8 test card (so the purse replays its transcripts).
pub fn test_card() -> PurseCardSpec {
    PurseCardSpec {
        card_number: CardNumber(TEST_ASN.0),
        issuer_id: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
        start_date: [0x20, 0x24, 0x01, 0x01],
        expiry_date: [0x20, 0x34, 0x12, 0x31],
    }
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
        let mut sei = MemoryVault::new();
        sei.insert_isd_master(parties().isd_master, isd_master());
        sei.insert_token_signer(parties().token_signer, token_signer());
        sei.insert_receipt_key(
            parties().receipt_key,
            ReceiptKey::aes(AesKey::from_slice(&receipt).unwrap()),
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

/// An applet that answers SELECT and nothing else (other issuers' applications on the SE).
pub struct Plain(pub Aid);

impl Applet for Plain {
    fn aid(&self) -> &Aid {
        &self.0
    }
    fn kind(&self) -> &'static str {
        "test.plain"
    }
    fn install_params(&self) -> Vec<u8> {
        Vec::new()
    }
    fn select(
        &mut self,
        _: &mut ykt_card::Context<'_>,
    ) -> Result<ykt_card::Selected, ykt_apdu::StatusWord> {
        Ok(ykt_card::Selected::ok(Vec::new()))
    }
    fn process(
        &mut self,
        _: &mut ykt_card::Context<'_>,
        _: &ykt_apdu::CommandApdu,
    ) -> Result<Vec<u8>, ykt_apdu::StatusWord> {
        Err(ykt_apdu::StatusWord::INS_NOT_SUPPORTED)
    }
    fn reset_volatile(&mut self) {}
}

/// [`new_se`] with `others` further applications already on it.
pub fn new_se_with(serial: u8, others: u8) -> Card {
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
    for i in 0..others {
        let aid = Aid::new(&[0xA0, 0x00, 0x00, 0x09, 0x99, 0x00, i]).unwrap();
        card.install(Box::new(Plain(aid)), |_| Ok(())).unwrap();
    }
    install_isd(&mut card, &s).unwrap();
    card.power_on();
    card
}

pub fn seid_of(cplc: &[u8; 42]) -> SeId {
    SeId(proposals::seid_from_cplc(
        &ykt_gp_host::Cplc::parse(cplc).unwrap(),
    ))
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
