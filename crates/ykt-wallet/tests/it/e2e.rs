//! End to end in process: the wallet, an SP-TSM built on the TSM domain (`ykt_tsm::Flow` with
//! memory vaults and the test payment provider) behind a `TsmLink` that speaks signed envelopes,
//! and a simulated SE (GP card manager, the SD and purse packages). Open card, top-up with the
//! real MAC2 and TAC, balance and records read offline, the card query through the TSM.

use std::collections::BTreeMap;

use ykt_card::{Card, SeededRandom};
use ykt_crypto::{Sm2PrivateKey, Sm2PublicKey};
use ykt_envelope::{Code, Envelope, PeerKey, ResultInfo, Sm2Signer};
use ykt_purse::testing::TEST_ASN;
use ykt_tsm::api::{self, FlowResp, FlowStatus, LoadView, OrderResp, OutcomeView};
use ykt_tsm::hex::Hex;
use ykt_tsm::testing::{self, SeOptions, TestRng as TsmRng, test_card as card_spec};
use ykt_tsm::{
    CardInstance, Entropy, Env, Flow, Management, MemoryVault, OrderBook, OrderRef, Output,
    Parties, TestProvider,
};
use ykt_wallet::proposals as proposals_wallet;
use ykt_wallet::testing::TestRng;
use ykt_wallet::*;

const NOW_MS: i64 = 1_796_169_600_000;
const NOW_BCD: [u8; 7] = [0x20, 0x26, 0x12, 0x02, 0x08, 0x00, 0x00];
const TSM_ID: &str = "SPTSM-330400";

fn parties() -> Parties {
    testing::test_parties()
}

/// A blank SE keyed by card production (`ykt_tsm::testing`).
fn new_se(serial: u8) -> Card {
    let entropy = Box::new(SeededRandom::new(u64::from(serial)));
    testing::blank_se(&SeOptions::serial(serial), entropy).unwrap()
}

/// An SP-TSM in process: envelopes in and out, flows over the TSM domain.
struct InProcessTsm {
    signer: Sm2Signer,
    sei: MemoryVault,
    sp: MemoryVault,
    payments: TestProvider,
    orders: OrderBook,
    rng: TsmRng,
    device: Option<Sm2PublicKey>,
    flows: BTreeMap<String, Flow>,
    instances: Vec<CardInstance>,
    order_cards: BTreeMap<String, (String, u32)>,
    transfer_codes: BTreeMap<String, String>,
}

impl InProcessTsm {
    fn new() -> Self {
        let sei = testing::sei_vault().unwrap();
        let sp = testing::sp_vault().unwrap();
        let mut k = [0x33u8; 32];
        k[0] = 1;
        Self {
            signer: Sm2Signer::new(Sm2PrivateKey::from_bytes(&k).unwrap()),
            sei,
            sp,
            payments: TestProvider::new(),
            orders: OrderBook::new(),
            rng: TsmRng(42),
            device: None,
            flows: BTreeMap::new(),
            instances: Vec::new(),
            order_cards: BTreeMap::new(),
            transfer_codes: BTreeMap::new(),
        }
    }

    fn reply(&mut self, req: &Envelope, body: &impl serde::Serialize, code: Code) -> Envelope {
        let mut nonce = [0u8; 16];
        self.rng.fill(&mut nonce);
        let def = api::message(&req.msg_type).unwrap();
        let result = if code == Code::Ok {
            ResultInfo::ok()
        } else {
            ResultInfo::error(code, "refused")
        };
        req.reply(def.response, body, result, &nonce, NOW_MS, &self.signer)
            .unwrap()
    }

    fn instance(&self, card_no: &str) -> CardInstance {
        self.instances
            .iter()
            .find(|i| i.card_number.danger_full() == card_no)
            .cloned()
            .unwrap()
    }

    /// One step of the flow of `txn`: the next relay message or the outcome.
    fn step(&mut self, txn: &str, response: Option<&ykt_tsm::RelayResponse>) -> FlowResp {
        let mut flow = self.flows.remove(txn).unwrap();
        let mut env = Env {
            sei: &mut self.sei,
            sp: &mut self.sp,
            payments: &mut self.payments,
            rng: &mut self.rng,
            now: NOW_BCD,
        };
        let out = flow.next(&mut env, response).unwrap();
        let kind = flow.state().kind;
        let (status, relay, outcome) = match out {
            Output::Relay(r) => {
                self.flows.insert(txn.to_string(), flow);
                (FlowStatus::Running, Some(r), None)
            }
            Output::Done(o) => {
                if let Some(load) = &o.load {
                    self.orders.complete(load.clone());
                }
                let instance = o.instance.clone();
                if let Some(i) = &instance {
                    self.instances.retain(|x| x.card_number != i.card_number);
                    self.instances.push(i.clone());
                }
                let view = OutcomeView {
                    card_no: instance.as_ref().map(|i| i.card_number.danger_full()),
                    seid: instance.as_ref().map(|i| i.seid.to_string()),
                    app_aid: instance.as_ref().map(|_| Hex(ykt_purse::EP_AID.to_vec())),
                    balance: o.balance,
                    load: o.load.map(|l| LoadView {
                        order_id: l.order_id,
                        amount: l.amount,
                        new_balance: l.new_balance,
                        tac: l.tac,
                    }),
                    card: o.card,
                    transfer_code: self.transfer_codes.get(txn).cloned(),
                    refund: (kind == ykt_tsm::FlowKind::CardReturn)
                        .then_some(o.balance)
                        .flatten(),
                    ..OutcomeView::default()
                };
                (FlowStatus::Completed, None, Some(view))
            }
        };
        FlowResp {
            txn_id: txn.to_string(),
            kind,
            status,
            instance_state: String::new(),
            step: None,
            step_index: 0,
            step_count: 0,
            relay,
            outcome,
        }
    }
}

impl TsmLink for InProcessTsm {
    fn send(&mut self, req: &Envelope) -> Result<Envelope, LinkError> {
        // The wire: bytes both ways.
        let req = decode_response(&req.to_vec())?;
        if req.msg_type == "EnrolReq" {
            let body: api::EnrolReq = req.body().unwrap();
            let key = Sm2PublicKey::from_sec1_bytes(body.device_pub.as_bytes()).unwrap();
            req.verify(&PeerKey::Sm2(key.clone())).unwrap();
            self.device = Some(key);
            let resp = api::EnrolResp {
                device_id: "DEV-0001".into(),
                tsm_id: TSM_ID.into(),
                tsm_pub: Hex(self.signer.public_key().to_bytes().to_vec()),
            };
            return Ok(self.reply(&req, &resp, Code::Ok));
        }
        if req
            .verify(&PeerKey::Sm2(self.device.clone().unwrap()))
            .is_err()
        {
            return Ok(self.reply(&req, &api::Empty {}, Code::BadSignature));
        }
        let txn = req.txn_id.clone();
        let resp = match req.msg_type.as_str() {
            "OpenCardReq" => {
                let body: api::OpenCardReq = req.body().unwrap();
                self.flows.insert(
                    txn.clone(),
                    Flow::open_card(&txn, parties(), body.management, card_spec()),
                );
                self.step(&txn, None)
            }
            "ApduResultReq" => {
                let body: api::ApduResultReq = req.body().unwrap();
                self.step(&txn, Some(&body.response))
            }
            "TopupOrderReq" => {
                let body: api::TopupOrderReq = req.body().unwrap();
                let id = format!("ORD-{}", self.order_cards.len() + 1);
                self.order_cards
                    .insert(id.clone(), (body.card_no, body.amount));
                let r = OrderResp {
                    order_id: id,
                    state: "CREATED".into(),
                    amount: body.amount,
                };
                return Ok(self.reply(&req, &r, Code::Ok));
            }
            "TestPayReq" => {
                let body: api::OrderReq = req.body().unwrap();
                let (card, amount) = self.order_cards[&body.order_id].clone();
                let number = self.instance(&card).card_number;
                self.payments.pay(&body.order_id, number, amount);
                let r = OrderResp {
                    order_id: body.order_id,
                    state: "PAID".into(),
                    amount,
                };
                return Ok(self.reply(&req, &r, Code::Ok));
            }
            "TopupReq" => {
                let body: api::OrderReq = req.body().unwrap();
                let (card, amount) = self.order_cards[&body.order_id].clone();
                let instance = self.instance(&card);
                self.orders.begin(&body.order_id, &txn).unwrap();
                let order = OrderRef {
                    order_id: body.order_id,
                    amount,
                };
                self.flows.insert(
                    txn.clone(),
                    Flow::top_up(&txn, parties(), &instance, order).unwrap(),
                );
                self.step(&txn, None)
            }
            "ResumeReq" => {
                // A crashed flow is rebuilt from its persisted state; it probes the SE first.
                let flow = self.flows.remove(&txn).unwrap();
                self.flows
                    .insert(txn.clone(), Flow::resume(flow.state().clone()));
                self.step(&txn, None)
            }
            "TransferOutReq" => {
                let body: api::CardReq = req.body().unwrap();
                let instance = self.instance(&body.card_no);
                let code = format!("TC-{}", self.transfer_codes.len() + 1);
                self.transfer_codes.insert(txn.clone(), code.clone());
                self.flows.insert(
                    txn.clone(),
                    Flow::transfer_out(&txn, parties(), &instance, &code).unwrap(),
                );
                self.step(&txn, None)
            }
            "TransferInReq" => {
                let body: api::TransferInReq = req.body().unwrap();
                self.flows.insert(
                    txn.clone(),
                    Flow::transfer_in(
                        &txn,
                        parties(),
                        body.management,
                        card_spec(),
                        &body.transfer_code,
                    ),
                );
                self.step(&txn, None)
            }
            "RefundReq" => {
                let body: api::RefundReq = req.body().unwrap();
                let instance = self.instance(&body.card_no);
                self.flows.insert(
                    txn.clone(),
                    Flow::card_return(&txn, parties(), &instance).unwrap(),
                );
                self.step(&txn, None)
            }
            "CardQueryReq" => {
                let body: api::CardReq = req.body().unwrap();
                let instance = self.instance(&body.card_no);
                self.flows.insert(
                    txn.clone(),
                    Flow::card_data_query(&txn, parties(), &instance).unwrap(),
                );
                self.step(&txn, None)
            }
            _ => return Ok(self.reply(&req, &api::Empty {}, Code::BadRequest)),
        };
        Ok(self.reply(&req, &resp, Code::Ok))
    }
}

struct SimulatedSe(Card);

impl SeLink for SimulatedSe {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, SeError> {
        self.0.transmit(capdu).map_err(|_| SeError::Communication)
    }
}

/// Where the link breaks at the first CREDIT FOR LOAD.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Break {
    /// The command never reaches the card.
    BeforeCard,
    /// The card executes it; its answer is lost.
    AfterCard,
}

struct BreakingSe {
    card: Card,
    at_credit: Option<Break>,
}

impl SeLink for BreakingSe {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, SeError> {
        if capdu.starts_with(&[0x80, 0x52]) {
            match self.at_credit.take() {
                Some(Break::BeforeCard) => return Err(SeError::Communication),
                Some(Break::AfterCard) => {
                    let _ = self.card.transmit(capdu);
                    return Err(SeError::Communication);
                }
                None => {}
            }
        }
        self.card
            .transmit(capdu)
            .map_err(|_| SeError::Communication)
    }
}

// client.md §4.3: the link breaks at the CREDIT FOR LOAD, before or after the card ran it; the
// journal says "MAC2 issued", and `resume` at the next start ends with the load made once.
#[test]
fn a_top_up_broken_at_the_credit_resumes_to_one_load() {
    for brk in [Break::BeforeCard, Break::AfterCard] {
        let mut tsm = InProcessTsm::new();
        let mut se = BreakingSe {
            card: new_se(3),
            at_credit: None,
        };
        let mut persist = |_: &WalletState| Ok(());
        let mut progress = |_: Progress| {};
        let mut rng = TestRng::new(7);
        let mut wallet = Wallet::default();
        let mut links = Links {
            tsm: &mut tsm,
            se: &mut se,
            persist: &mut persist,
            progress: &mut progress,
        };
        wallet
            .enrol(&mut links, NOW_MS, &mut rng, TSM_ID, "m")
            .unwrap();
        let card = wallet
            .open_card(
                &mut links,
                NOW_MS,
                &mut rng,
                Management::Authorized,
                "330400",
            )
            .unwrap()
            .card_no;
        se.at_credit = Some(brk);
        let mut links = Links {
            tsm: &mut tsm,
            se: &mut se,
            persist: &mut persist,
            progress: &mut progress,
        };
        let err = wallet
            .top_up(
                &mut links,
                NOW_MS,
                &mut rng,
                &card,
                1_500,
                proposals_wallet::TEST_PAY_CHANNEL,
            )
            .unwrap_err();
        assert_eq!(err, WalletError::Se(SeError::Communication), "{brk:?}");
        assert_eq!(
            wallet.journal()[0].step,
            JournalStep::CreditForLoad,
            "{brk:?}"
        );
        assert_eq!(wallet.journal()[0].balance_before, Some(0));
        let txn = wallet.open_flows()[0].txn_id.clone();

        let resumed = wallet.resume(&mut links, NOW_MS, &mut rng, &txn).unwrap();
        assert_eq!(resumed.top_up.unwrap().new_balance, 1_500, "{brk:?}");
        assert_eq!(
            wallet.balance(&mut links, NOW_MS, &card).unwrap(),
            1_500,
            "{brk:?}"
        );
        assert_eq!(
            wallet.records(&mut links, &card).unwrap().len(),
            1,
            "{brk:?}"
        );
        assert!(wallet.journal().is_empty() && wallet.open_flows().is_empty());
    }
}

#[test]
fn open_card_top_up_balance_records_and_query() {
    let mut tsm = InProcessTsm::new();
    let mut se = SimulatedSe(new_se(1));
    let mut saves = 0usize;
    let mut persist = |_: &WalletState| {
        saves += 1;
        Ok(())
    };
    let mut steps = Vec::new();
    let mut progress = |p: Progress| steps.push(p.step);
    let mut links = Links {
        tsm: &mut tsm,
        se: &mut se,
        persist: &mut persist,
        progress: &mut progress,
    };
    let mut rng = TestRng::new(2026);
    let mut wallet = Wallet::default();

    wallet
        .enrol(&mut links, NOW_MS, &mut rng, TSM_ID, "test phone")
        .unwrap();
    let card = wallet
        .open_card(
            &mut links,
            NOW_MS,
            &mut rng,
            Management::Authorized,
            "330400",
        )
        .unwrap();
    let card_no = card.card_no.clone();
    assert_eq!(card_no.danger_full(), ykt_tsm::hex::encode(&TEST_ASN.0));
    assert_eq!(wallet.balance(&mut links, NOW_MS, &card_no).unwrap(), 0);
    assert!(wallet.records(&mut links, &card_no).unwrap().is_empty());

    let done = wallet
        .top_up(
            &mut links,
            NOW_MS,
            &mut rng,
            &card_no,
            2_000,
            proposals_wallet::TEST_PAY_CHANNEL,
        )
        .unwrap();
    assert_eq!((done.amount, done.new_balance), (2_000, 2_000));
    assert_eq!(wallet.balance(&mut links, NOW_MS, &card_no).unwrap(), 2_000);
    let records = wallet.records(&mut links, &card_no).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].amount, records[0].transaction_type),
        (2_000, 0x02)
    );
    assert_eq!(records[0].date, [0x20, 0x26, 0x12, 0x02]);

    let q = wallet
        .query(&mut links, NOW_MS, &mut rng, &card_no)
        .unwrap();
    assert_eq!(q.balance, Some(2_000));
    assert!(wallet.open_flows().is_empty() && wallet.journal().is_empty());
    assert!(saves > 5);
    assert!(steps.iter().any(|s| s == "order"));
}

struct SwitchableSe {
    phones: [Card; 2],
    current: usize,
}

impl SeLink for SwitchableSe {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, SeError> {
        self.phones[self.current]
            .transmit(capdu)
            .map_err(|_| SeError::Communication)
    }
}

// 迁卡 then 退卡: the balance moves with the card number to a second SE, then is refunded once.
#[test]
fn transfer_to_a_second_se_then_return_the_card() {
    let mut tsm = InProcessTsm::new();
    let mut se = SwitchableSe {
        phones: [new_se(4), new_se(5)],
        current: 0,
    };
    let mut persist = |_: &WalletState| Ok(());
    let mut progress = |_: Progress| {};
    let mut rng = TestRng::new(8);
    let mut wallet = Wallet::default();
    let mut links = Links {
        tsm: &mut tsm,
        se: &mut se,
        persist: &mut persist,
        progress: &mut progress,
    };
    wallet
        .enrol(&mut links, NOW_MS, &mut rng, TSM_ID, "m")
        .unwrap();
    let old = wallet
        .open_card(
            &mut links,
            NOW_MS,
            &mut rng,
            Management::Authorized,
            "330400",
        )
        .unwrap();
    let card = old.card_no.clone();
    wallet
        .top_up(
            &mut links,
            NOW_MS,
            &mut rng,
            &card,
            4_321,
            proposals_wallet::TEST_PAY_CHANNEL,
        )
        .unwrap();
    let code = wallet
        .transfer_out(&mut links, NOW_MS, &mut rng, &card)
        .unwrap();
    assert!(wallet.cards().is_empty());
    assert_eq!(
        wallet.balance(&mut links, NOW_MS, &card).unwrap_err(),
        WalletError::UnknownCard
    );

    se.current = 1;
    let mut links = Links {
        tsm: &mut tsm,
        se: &mut se,
        persist: &mut persist,
        progress: &mut progress,
    };
    let moved = wallet
        .transfer_in(&mut links, NOW_MS, &mut rng, &code, Management::Authorized)
        .unwrap();
    assert_eq!(moved.card_no, card);
    assert_ne!(moved.seid, old.seid);
    assert_eq!(wallet.balance(&mut links, NOW_MS, &card).unwrap(), 4_321);

    let refund = wallet
        .refund(&mut links, NOW_MS, &mut rng, &card, "ACC-1")
        .unwrap();
    assert_eq!(refund, 4_321);
    assert!(wallet.cards().is_empty());
    assert!(wallet.open_flows().is_empty());
    // The purse is gone from the second SE: SELECT fails.
    let mut select = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
    select.extend_from_slice(&ykt_purse::EP_AID);
    select.push(0x00);
    let answer = se.phones[1].transmit(&select).unwrap();
    assert_eq!(answer[answer.len() - 2..], [0x6A, 0x82]);
}
