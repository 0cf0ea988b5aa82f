//! The RP-LOAD-… checkers (conformance.md §4.7, remote payment / online load; tsm-gp.md §7
//! top-up row): the load host is the SP-TSM, which checks the card's MAC1 and gives MAC2, so
//! these items run against the TSM under test (`Target::Tsm`), with the harness as the phone:
//! the wallet SDK on a blank simulated SE, the test payment provider, and the harness in the SE
//! link to change the card's answers.

use ykt_envelope::{Code, Envelope};
use ykt_tsm::Management;
use ykt_tsm::api::{self, OrderReq, OrderResp, TopupOrderReq};
use ykt_wallet::{Wallet, WalletError};

use super::items::{open, top_up};
use super::se::sw;
use super::{LinkMode, SeTamper, TsmHarness, verify_tsm};
use crate::params::Params;
use crate::verdict::{Stop, ensure};

/// INITIALIZE FOR LOAD with a non-zero amount (`80 50 00 02 0B`, e-purse.md §4.3): the first
/// half of an online load, whose answer carries the card's MAC1.
fn is_load_init(command: &[u8]) -> bool {
    matches!(command, [0x80, 0x50, 0x00, 0x02, 0x0B, _, a, b, c, d, ..] if [*a, *b, *c, *d] != [0; 4])
}

/// CREDIT FOR LOAD (`80 52`, e-purse.md §4.4): it carries MAC2.
fn is_credit(command: &[u8]) -> bool {
    matches!(command, [0x80, 0x52, ..])
}

/// The order id of the last `TopupReq` the harness's wallets sent.
fn last_order(h: &TsmHarness<'_>) -> Result<(String, Envelope), Stop> {
    let request = h
        .requests()
        .iter()
        .rev()
        .find(|r| r.msg_type == "TopupReq")
        .cloned()
        .ok_or_else(|| Stop::Inconclusive("the wallet sent no TopupReq".into()))?;
    let order = request
        .body
        .get("order_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| Stop::Inconclusive("the TopupReq carries no order_id".into()))?;
    Ok((order, request))
}

/// An order as the TSM records it (`OrderQueryReq`), from an answer that verifies.
fn order_state(h: &mut TsmHarness<'_>, wallet: &Wallet, order_id: &str) -> Result<OrderResp, Stop> {
    let txn = h.fresh_id();
    let body = OrderReq {
        order_id: order_id.to_owned(),
    };
    let (_, answer) = h.call_as(wallet, api::ORDER_QUERY, &txn, &body)?;
    verify_tsm(wallet, &answer)?;
    ensure(answer.code() == Some(Code::Ok), || {
        format!("OrderQueryReq refused with {:?}", answer.code())
    })?;
    answer
        .body()
        .map_err(|e| Stop::Fail(format!("OrderResp body: {e}")))
}

/// RP-LOAD-002: the card's MAC1 changed on its way to the host: the top-up is refused (4002),
/// no CREDIT FOR LOAD (no MAC2) reaches the SE, the balance and the order stay unloaded; the
/// paid order is not lost: resumed with the card's own answer it loads once.
pub(super) fn bad_mac1(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 600)?;
    let (mut se, mut wallet, card, _, _) = open(h, Management::Authorized)?;
    let aid = card.app_aid.as_bytes().to_vec();
    let (_, before) = se
        .purse(&aid)?
        .ok_or_else(|| Stop::Inconclusive("the purse does not answer SELECT".into()))?;
    let tamper: SeTamper = Box::new(|c: &[u8], r: &mut Vec<u8>| {
        if is_load_init(c) && r.len() == 18 && sw(r) == 0x9000 {
            r[15] ^= 0x01;
            true
        } else {
            false
        }
    });
    let mode = LinkMode {
        tamper_se: Some(tamper),
        ..LinkMode::default()
    };
    let (r, stats) = h.with_links(&mut se, mode, |links, now, rng| {
        wallet.top_up(
            links,
            now,
            rng,
            &card.card_no,
            amount,
            ykt_wallet::proposals::TEST_PAY_CHANNEL,
        )
    });
    if stats.se_tampered == 0 {
        return Err(Stop::Inconclusive(format!(
            "the top-up sent no INITIALIZE FOR LOAD to tamper with ({r:?})"
        )));
    }
    let code = match &r {
        Ok(t) => {
            return Err(Stop::Fail(format!(
                "the host loaded {} fen on a changed MAC1",
                t.amount
            )));
        }
        Err(WalletError::Refused(code)) => *code,
        Err(e) => {
            return Err(Stop::Fail(format!(
                "with MAC1 changed the top-up ended in {e}, not a refusal with a result code"
            )));
        }
    };
    ensure(code == Code::CryptogramMismatch, || {
        format!("with MAC1 changed the host refused with {code}, not 4002 (cryptogram mismatch)")
    })?;
    let credits = stats.exchanges.iter().filter(|(c, _)| is_credit(c)).count();
    ensure(credits == 0, || {
        format!("{credits} CREDIT FOR LOAD (MAC2) reached the SE after a bad MAC1")
    })?;
    let after = se.purse(&aid)?.map(|(_, b)| b);
    ensure(after == Some(before), || {
        format!("the balance is {after:?} after the refused load, was {before}")
    })?;
    let (order_id, request) = last_order(h)?;
    let order = order_state(h, &wallet, &order_id)?;
    ensure(order.state != "LOADED", || {
        "the TSM records the order LOADED although the card never got MAC2".into()
    })?;
    // The paid order is kept: resumed with the card's own answer, it loads once.
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
        wallet.resume(links, now, rng, &request.txn_id)
    });
    r.map_err(|e| {
        Stop::Fail(format!(
            "resuming the refused top-up with the card's own answer: {e}"
        ))
    })?;
    let loaded = se.purse(&aid)?.map(|(_, b)| b);
    ensure(loaded == Some(before + amount), || {
        format!(
            "after the resume the balance is {loaded:?}, not {} + {amount}",
            before
        )
    })?;
    let order_after = order_state(h, &wallet, &order_id)?;
    ensure(order_after.state == "LOADED", || {
        format!("after the resume the order is {}", order_after.state)
    })?;
    Ok(format!(
        "MAC1 changed → {code}, no CREDIT FOR LOAD sent, balance {before} unchanged, order {}; resumed with the card's own answer: loaded once ({} fen), order LOADED",
        order.state,
        before + amount
    ))
}

/// RP-LOAD-004: a `TopupReq` sent again with its `request_id` gets the stored answer; a new
/// `TopupReq` for the loaded order is refused; the card is credited once.
pub(super) fn duplicate_request(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 900)?;
    let (mut se, mut wallet, card, _, _) = open(h, Management::Authorized)?;
    let balance = top_up(h, &mut se, &mut wallet, &card, amount)?;
    let (order_id, request) = last_order(h)?;
    let first_answer = h
        .responses()
        .iter()
        .find(|r| r.request_id == request.request_id)
        .cloned()
        .ok_or_else(|| Stop::Inconclusive("the TopupReq's answer was not recorded".into()))?;
    let body = OrderReq {
        order_id: order_id.clone(),
    };
    // The same request_id and body, sealed again (a new nonce and timestamp): a retry.
    let again =
        super::items::reseal_with_request_id(h, &wallet, &request, &request.request_id, &body)?;
    let (_, answer) = h.post_envelope(&again.msg_type, &again.to_vec())?;
    verify_tsm(&wallet, &answer)?;
    ensure(
        answer.code() == first_answer.code() && answer.body == first_answer.body,
        || {
            format!(
                "the TopupReq sent again with its request_id got {:?} with {} body, not the stored answer",
                answer.code(),
                if answer.body == first_answer.body {
                    "the same"
                } else {
                    "another"
                }
            )
        },
    )?;
    // A new request for the same, loaded order.
    let txn = h.fresh_id();
    let (_, second) = h.call_as(&wallet, api::TOPUP, &txn, &body)?;
    verify_tsm(&wallet, &second)?;
    ensure(second.code().is_some_and(|c| c != Code::Ok), || {
        "a new TopupReq for the loaded order was accepted: it could be credited twice".into()
    })?;
    let on_se = se.purse(card.app_aid.as_bytes())?.map(|(_, b)| b);
    ensure(on_se == Some(balance) && balance == amount, || {
        format!("the SE holds {on_se:?} after one top-up of {amount}")
    })?;
    let order = order_state(h, &wallet, &order_id)?;
    ensure(order.state == "LOADED" && order.amount == amount, || {
        format!("the order is {} of {} fen", order.state, order.amount)
    })?;
    Ok(format!(
        "the same request_id again → the stored answer ({}); a new TopupReq for the loaded order → {}; the SE credited once ({amount} fen), the order LOADED",
        first_answer.code().map_or("-", |c| c.as_str()),
        second.code().map_or("-", |c| c.as_str())
    ))
}

/// RP-LOAD-005: a top-up order for more than the purse can ever hold (`over` fen: the purse
/// profile's highest balance + 1) is refused at `TopupOrderReq`, before any payment or APDU.
pub(super) fn over_limit(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let over = p.u32("over", ykt_purse::profile::DEFAULT_MAX_BALANCE + 1)?;
    let (_se, wallet, card, _, _) = open(h, Management::Authorized)?;
    let txn = h.fresh_id();
    let body = TopupOrderReq {
        card_no: card.card_no.danger_full().to_owned(),
        seid: card.seid.danger_full().to_owned(),
        amount: over,
        pay_channel: ykt_wallet::proposals::TEST_PAY_CHANNEL.to_owned(),
    };
    let (_, answer) = h.call_as(&wallet, api::TOPUP_ORDER, &txn, &body)?;
    verify_tsm(&wallet, &answer)?;
    ensure(answer.code().is_some_and(|c| c != Code::Ok), || {
        format!(
            "a top-up order of {over} fen (more than the purse's highest balance, {} fen) was accepted: it can be paid and never loaded",
            ykt_purse::profile::DEFAULT_MAX_BALANCE
        )
    })?;
    Ok(format!(
        "a top-up order of {over} fen refused with {} before any payment or APDU",
        answer.code().map_or("-", |c| c.as_str())
    ))
}
