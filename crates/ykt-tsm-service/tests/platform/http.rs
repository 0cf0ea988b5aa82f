//! A wallet's whole conversation over HTTP with the SP's router, whose SEI is the SEI's router:
//! both in this process, on loopback sockets. Open card (delegated), top-up, card return.

use std::future::IntoFuture as _;

use serde::Serialize;
use ykt_card::Card;
use ykt_crypto::Sm2PrivateKey;
use ykt_envelope::{Code, Envelope, Header, PeerKey, Sm2Signer};
use ykt_tsm::api::{self, FlowResp, FlowStatus, MessageDef};
use ykt_tsm::hex::Hex;
use ykt_tsm_service::http::{ServerConfig, TsmClient, router};

use crate::support::*;
use crate::two::*;

struct Wallet {
    client: TsmClient,
    key: Sm2PrivateKey,
    id: String,
    n: u64,
}

impl Wallet {
    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }

    fn call<T: serde::de::DeserializeOwned>(
        &mut self,
        def: MessageDef,
        txn: &str,
        body: &impl Serialize,
    ) -> T {
        self.n += 1;
        let mut nonce = [0x5Au8; 16];
        nonce[8..].copy_from_slice(&self.n.to_be_bytes());
        let header = Header {
            msg_type: def.request.into(),
            msg_no: def.msg_no.into(),
            sender_id: self.id.clone(),
            receiver_id: SP_ID.into(),
            txn_id: txn.into(),
            request_id: format!("req-{}", self.n),
        };
        let request = Envelope::seal(
            &header,
            body,
            None,
            &nonce,
            Self::now(),
            &Sm2Signer::new(self.key.clone()),
        )
        .unwrap();
        let answer = tokio::task::block_in_place(|| self.client.send(&request)).unwrap();
        answer
            .verify(&PeerKey::Sm2(sp_key().public_key().clone()))
            .unwrap();
        assert_eq!(
            answer.code(),
            Some(Code::Ok),
            "{}: {:?}",
            def.request,
            answer.result
        );
        answer.body().unwrap()
    }

    /// Relays a flow to its end.
    fn drive(&mut self, txn: &str, mut resp: FlowResp, card: &mut Card) -> FlowResp {
        while resp.status == FlowStatus::Running {
            let answer = relay(card, resp.relay.as_ref().unwrap(), &mut Log::default());
            resp = self.call(
                api::APDU_RESULT,
                txn,
                &api::ApduResultReq { response: answer },
            );
        }
        resp
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_talks_to_the_sp_router_whose_sei_is_another_router() {
    let two = Two::start().await;
    let server = ServerConfig::new(SP_ID, Sm2Signer::new(sp_key()), admin_token());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task =
        tokio::spawn(axum::serve(listener, router(two.engine.clone(), server)).into_future());
    let key = Sm2PrivateKey::from_bytes(&[0x61; 32]).unwrap();
    let mut wallet = Wallet {
        client: TsmClient::new(&url).unwrap(),
        id: format!("enrol-{}", ykt_envelope::key_id_sm2(key.public_key())),
        key,
        n: 0,
    };
    let enrolled: api::EnrolResp = wallet.call(
        api::ENROL,
        "enrol",
        &api::EnrolReq {
            device_pub: Hex(wallet.key.public_key().to_bytes().to_vec()),
            device_model: "test phone".into(),
        },
    );
    wallet.id = enrolled.device_id;
    let mut se = new_se(100);

    let first = wallet.call(
        api::OPEN_CARD,
        "open-h",
        &api::OpenCardReq {
            management: ykt_tsm::Management::Delegated,
            city_code: "1000".into(),
        },
    );
    let done = wallet.drive("open-h", first, &mut se);
    assert_eq!(
        (done.status, done.instance_state.as_str()),
        (FlowStatus::Completed, "ACTIVE")
    );
    let outcome = done.outcome.unwrap();
    let (card_no, seid) = (outcome.card_no.unwrap(), outcome.seid.unwrap());

    let order: api::OrderResp = wallet.call(
        api::TOPUP_ORDER,
        "order",
        &api::TopupOrderReq {
            card_no: card_no.clone(),
            seid: seid.clone(),
            amount: 700,
            pay_channel: "99".into(),
        },
    );
    let paid: api::OrderResp = wallet.call(
        api::TEST_PAY,
        "pay",
        &api::OrderReq {
            order_id: order.order_id.clone(),
        },
    );
    assert_eq!(paid.state, "PAID");
    let first = wallet.call(
        api::TOPUP,
        "topup-h",
        &api::OrderReq {
            order_id: order.order_id,
        },
    );
    let done = wallet.drive("topup-h", first, &mut se);
    assert_eq!(done.outcome.unwrap().load.unwrap().new_balance, 700);

    let first = wallet.call(
        api::REFUND,
        "return-h",
        &api::RefundReq {
            card_no,
            seid,
            refund_account: "acct-h".into(),
        },
    );
    let done = wallet.drive("return-h", first, &mut se);
    assert_eq!(done.instance_state, "DELETED");
    assert_eq!(done.outcome.unwrap().refund, Some(700));
    let cards: api::CardsResp = wallet.call(api::CARDS_QUERY, "cards", &api::Empty {});
    assert_eq!(cards.cards.len(), 1);
    assert_eq!(cards.cards[0].state, "DELETED");
    task.abort();
    two.finish().await;
}
