//! The wallet against the real e-purse applet (`ykt_purse::testing`, e-purse.md §8.1): a top-up
//! whose relay scripts are the published load, then balance and records read offline.

use ykt_card::Card;
use ykt_tsm::api::{LoadView, OutcomeView};
use ykt_tsm::hex::Hex;
use ykt_tsm::{FlowKind, Management};
use ykt_wallet::testing::TestRng;
use ykt_wallet::*;

use crate::flows::{FakeTsm, NOW, SEID, TSM_ID, enrol_resp, flow, ok, order, relay};

const ASN: &str = "31041000000012345678";

struct CardSe {
    card: Card,
    log: Vec<Vec<u8>>,
}

impl SeLink for CardSe {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, SeError> {
        self.log.push(capdu.to_vec());
        self.card
            .transmit(capdu)
            .map_err(|_| SeError::Communication)
    }
}

fn hex(s: &str) -> Vec<u8> {
    ykt_tsm::hex::decode(&s.replace(' ', "")).unwrap()
}

#[test]
fn published_load_then_offline_balance_and_records() {
    let mut tsm = FakeTsm::new();
    let mut se = CardSe {
        card: ykt_purse::testing::danger_test_card_3des().unwrap(),
        log: Vec::new(),
    };
    let mut saved: Vec<WalletState> = Vec::new();
    let mut persist = |s: &WalletState| {
        saved.push(WalletState {
            journal: s.journal.clone(),
            ..WalletState::default()
        });
        Ok(())
    };
    let mut progress = |_p: Progress| {};
    let mut rng = TestRng::new(11);
    let mut wallet = Wallet::default();

    let enrol = enrol_resp(&tsm.signer);
    tsm.then(ok(enrol));
    tsm.then(flow(
        FlowKind::OpenCard,
        None,
        Some(OutcomeView {
            card_no: Some(ASN.into()),
            seid: Some(SEID.into()),
            app_aid: Some(Hex(ykt_purse::EP_AID.to_vec())),
            balance: Some(0),
            ..OutcomeView::default()
        }),
    ));
    let select = hex("00A4040008 A000000632010105");
    let init = hex("805000020B 01 00002710 112233445566 10");
    let credit = hex("805200000B 20240115 103000 C932104C 04");
    tsm.then(ok(order("CREATED")))
        .then(ok(order("PAID")))
        .then(flow(
            FlowKind::TopUp,
            Some(relay(1, &[&select, &init])),
            None,
        ))
        .then(flow(FlowKind::TopUp, Some(relay(2, &[&credit])), None))
        .then(flow(
            FlowKind::TopUp,
            None,
            Some(OutcomeView {
                load: Some(LoadView {
                    order_id: "ORD-1".into(),
                    amount: 10_000,
                    new_balance: 10_000,
                    tac: Hex(hex("643614FE")),
                }),
                ..OutcomeView::default()
            }),
        ));
    let card = CardNo::new(ASN);
    {
        let mut links = Links {
            tsm: &mut tsm,
            se: &mut se,
            persist: &mut persist,
            progress: &mut progress,
        };
        wallet
            .enrol(&mut links, NOW, &mut rng, TSM_ID, "phone")
            .unwrap();
        wallet
            .open_card(&mut links, NOW, &mut rng, Management::Authorized, "330400")
            .unwrap();
        let done = wallet
            .top_up(
                &mut links,
                NOW,
                &mut rng,
                &card,
                10_000,
                proposals::TEST_PAY_CHANNEL,
            )
            .unwrap();
        assert_eq!(done.new_balance, 10_000);
        assert_eq!(wallet.balance(&mut links, NOW, &card).unwrap(), 10_000);
        let records = wallet.records(&mut links, &card).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(
            (
                records[0].counter,
                records[0].amount,
                records[0].transaction_type
            ),
            (0, 10_000, 0x02)
        );
        assert_eq!(records[0].terminal, [0x11, 0x22, 0x33, 0x44, 0x55, 0x66]);
    }
    // The card's own answers went back to the TSM: INITIALIZE's MAC1 and CREDIT's TAC.
    let answers: Vec<ykt_tsm::api::ApduResultReq> = tsm
        .seen
        .iter()
        .filter(|e| e.msg_type == "ApduResultReq")
        .map(|e| e.body().unwrap())
        .collect();
    assert_eq!(
        answers[0].response.rapdus[1].0,
        hex("00000000 0000 01 00 1A2B3C4D 4E903E9F 9000")
    );
    assert_eq!(answers[1].response.rapdus[0].0, hex("643614FE 9000"));

    // The journal saved just before the relay message with CREDIT FOR LOAD says so, with the
    // balance and counter INITIALIZE FOR LOAD gave.
    let before_credit = saved
        .iter()
        .rev()
        .find_map(|s| {
            s.journal
                .first()
                .filter(|e| e.step == JournalStep::CreditForLoad)
                .cloned()
        })
        .unwrap();
    assert_eq!(before_credit.balance_before, Some(0));
    assert_eq!(before_credit.online_counter_before, Some(0));
    assert!(wallet.journal().is_empty());
}
