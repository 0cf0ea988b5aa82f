//! The RP-LOAD-… checkers (conformance.md §4.7, remote payment / online load; tsm-gp.md §7
//! top-up row): the load host is the SP-TSM, which checks the card's MAC1 and gives MAC2, so
//! these items run against the TSM under test (`Target::Tsm`), with the harness as the phone:
//! the wallet SDK on a blank simulated SE, the test payment provider, and the harness in the SE
//! link to change the card's answers or to cut it around CREDIT FOR LOAD.
//!
//! RP-QRY-001 and RP-SEC-001 test the client instead (`Target::Client`): what the wallet SDK
//! shows against what the SE holds, and the transport the client was pointed at.

use ykt_envelope::{Code, Envelope};
use ykt_tsm::Management;
use ykt_tsm::api::{self, OrderReq, OrderResp, TopupOrderReq};
use ykt_wallet::{Wallet, WalletError};

use super::items::{open, top_up, top_up_traced};
use super::se::sw;
use super::{LinkMode, LinkReport, SeTamper, TsmHarness, verify_tsm};
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

/// The card's side of one online load, from the SE link's record: the INITIALIZE FOR LOAD
/// answer (MAC1), the CREDIT FOR LOAD command (date and time, MAC2) and its answer (TAC).
struct CardLoad {
    proof: ykt_tsm::vault::LoadProof,
    datetime: [u8; 7],
    tac: [u8; 4],
}

/// Every CREDIT FOR LOAD in `exchanges`, each with the INITIALIZE FOR LOAD before it: the
/// online counter it was for, and the whole load when the card answered `9000`.
fn credits(
    asn: &[u8; 10],
    exchanges: &[(Vec<u8>, Vec<u8>)],
) -> Vec<(Option<u16>, Option<CardLoad>)> {
    let mut out = Vec::new();
    let mut init = None;
    for (c, r) in exchanges {
        if is_load_init(c) {
            init = super::items::load_proof(asn, c, r);
        } else if is_credit(c) {
            let counter = init.as_ref().map(|p| p.online_counter);
            let load = match (&init, c.get(5..12), r.as_slice()) {
                (Some(p), Some(dt), [a, b, c4, d, 0x90, 0x00]) => {
                    let mut datetime = [0u8; 7];
                    datetime.copy_from_slice(dt);
                    Some(CardLoad {
                        proof: *p,
                        datetime,
                        tac: [*a, *b, *c4, *d],
                    })
                }
                _ => None,
            };
            out.push((counter, load));
        }
    }
    out
}

/// The harness's own check of a load's TAC under the PUBLIC test purse masters (profile
/// `tsm-test-keys`, e-purse.md §5.5).
fn tac_verifies(load: &CardLoad) -> Result<bool, Stop> {
    use ykt_tsm::vault::KeyVault as _;
    let vault = ykt_tsm::testing::sp_vault()
        .map_err(|e| Stop::Inconclusive(format!("the test SP vault: {e}")))?;
    let issuer = ykt_tsm::testing::test_parties().purse_issuer;
    Ok(vault
        .verify_load_tac(&issuer, &load.proof, &load.datetime, &load.tac)
        .is_ok())
}

/// The TAC the TSM reports for order `order_id` in the last signed, completed `FlowResp` the
/// wallet got (tsm-gp.md §7 top-up row: the host keeps the card's TAC).
fn host_tac(h: &TsmHarness<'_>, wallet: &Wallet, order_id: &str) -> Result<Option<Vec<u8>>, Stop> {
    for r in h.responses().iter().rev() {
        if r.msg_type != "FlowResp" || r.code() != Some(Code::Ok) {
            continue;
        }
        let Ok(flow) = r.body::<api::FlowResp>() else {
            continue;
        };
        if let Some(load) = flow.outcome.and_then(|o| o.load)
            && load.order_id == order_id
        {
            verify_tsm(wallet, r)?;
            return Ok(Some(load.tac.as_bytes().to_vec()));
        }
    }
    Ok(None)
}

/// RP-LOAD-001: a whole online load (order → payment → INITIALIZE FOR LOAD → MAC2 → CREDIT FOR
/// LOAD → the card's TAC to the host): the balance rises by exactly the amount, the card's TAC
/// verifies under the test keys and is what the host reports, the order ends LOADED, and a
/// second load of the same order credits nothing.
pub(super) fn full_load(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 1500)?;
    let (mut se, mut wallet, card, asn, _) = open(h, Management::Authorized)?;
    let aid = card.app_aid.as_bytes().to_vec();
    let (_, before) = se
        .purse(&aid)?
        .ok_or_else(|| Stop::Inconclusive("the purse does not answer SELECT".into()))?;
    let (t, stats) = top_up_traced(h, &mut se, &mut wallet, &card, amount)?;
    let after = se.purse(&aid)?.map(|(_, b)| b);
    ensure(after == Some(before + amount), || {
        format!("the SE holds {after:?} after a load of {amount} on {before}")
    })?;
    ensure(
        t.amount == amount && t.new_balance == before + amount,
        || {
            format!(
                "the top-up reports {} fen loaded, balance {}; the SE holds {}",
                t.amount,
                t.new_balance,
                before + amount
            )
        },
    )?;
    let loads = credits(&asn, &stats.exchanges);
    let [(_, Some(load))] = loads.as_slice() else {
        return Err(Stop::Fail(format!(
            "{} CREDIT FOR LOAD in the top-up, not one the card accepted after an INITIALIZE FOR LOAD",
            loads.len()
        )));
    };
    ensure(load.proof.amount == amount, || {
        format!(
            "INITIALIZE FOR LOAD asked for {} fen, the order was {amount}",
            load.proof.amount
        )
    })?;
    ensure(tac_verifies(load)?, || {
        "the card's TAC does not verify under the test purse keys".into()
    })?;
    let order = order_state(h, &wallet, &t.order_id)?;
    ensure(order.state == "LOADED" && order.amount == amount, || {
        format!("the order is {} of {} fen", order.state, order.amount)
    })?;
    let reported = host_tac(h, &wallet, &t.order_id)?;
    ensure(reported.as_deref() == Some(&load.tac[..]), || {
        format!(
            "the TSM's signed answer reports {} as the load's TAC, not the card's",
            reported.map_or("no TAC".into(), |t| format!("{} bytes", t.len()))
        )
    })?;
    // The same order loaded again: refused, nothing credited.
    let (again, stats2) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
        wallet.load(links, now, rng, &card.card_no, &t.order_id)
    });
    if let Ok(t2) = &again {
        return Err(Stop::Fail(format!(
            "the loaded order was loaded again ({} fen)",
            t2.amount
        )));
    }
    let second = stats2
        .exchanges
        .iter()
        .filter(|(c, _)| is_credit(c))
        .count();
    ensure(second == 0, || {
        format!("{second} CREDIT FOR LOAD reached the SE for the order already loaded")
    })?;
    let last = se.purse(&aid)?.map(|(_, b)| b);
    ensure(last == Some(before + amount), || {
        format!("after the second load of the order the SE holds {last:?}")
    })?;
    let closed = order_state(h, &wallet, &t.order_id)?;
    ensure(closed.state == "LOADED", || {
        format!("after the second load the order is {}", closed.state)
    })?;
    Ok(format!(
        "balance {before} → {} (+{amount} exactly); the card's TAC verifies under the test keys and the TSM reports it; order LOADED; the same order again → {} with no CREDIT FOR LOAD",
        before + amount,
        again.err().map_or_else(|| "-".into(), |e| e.to_string())
    ))
}

/// One cut of RP-LOAD-003 on `card`: the top-up with the SE link cut (`lose`: after CREDIT FOR
/// LOAD reached the card, else before), the SE reset, the flow resumed. Returns what it saw.
fn cut_variant(
    h: &mut TsmHarness<'_>,
    se: &mut super::SimSe,
    wallet: &mut Wallet,
    card: &ykt_wallet::CardRecord,
    asn: &[u8; 10],
    amount: u32,
    lose: bool,
) -> Result<String, Stop> {
    let aid = card.app_aid.as_bytes().to_vec();
    let (_, before) = se
        .purse(&aid)?
        .ok_or_else(|| Stop::Inconclusive("the purse does not answer SELECT".into()))?;
    let mode = if lose {
        LinkMode {
            lose_se_answer: Some(is_credit),
            ..LinkMode::default()
        }
    } else {
        LinkMode {
            cut_se_before: Some(is_credit),
            ..LinkMode::default()
        }
    };
    let where_ = if lose {
        "after CREDIT FOR LOAD reached the card"
    } else {
        "before CREDIT FOR LOAD reached the card"
    };
    let (r, cut) = h.with_links(se, mode, |links, now, rng| {
        wallet.top_up(
            links,
            now,
            rng,
            &card.card_no,
            amount,
            ykt_wallet::proposals::TEST_PAY_CHANNEL,
        )
    });
    if let Ok(t) = r {
        return Err(Stop::Inconclusive(format!(
            "the top-up finished ({} fen) although the SE link was cut {where_}",
            t.amount
        )));
    }
    let first = credits(asn, &cut.exchanges);
    let expected = usize::from(lose);
    if first.len() != expected {
        return Err(Stop::Inconclusive(format!(
            "{} CREDIT FOR LOAD reached the card before the cut {where_}",
            first.len()
        )));
    }
    se.reset();
    let mid = se.purse(&aid)?.map(|(_, b)| b);
    let credited = if lose { before + amount } else { before };
    ensure(mid == Some(credited), || {
        format!("with the link cut {where_} the SE holds {mid:?}, not {credited}")
    })?;
    let (order_id, request) = last_order(h)?;
    let txn = wallet
        .open_flows()
        .iter()
        .find(|f| f.txn_id == request.txn_id)
        .map(|f| f.txn_id.clone())
        .ok_or_else(|| {
            Stop::Fail(format!(
                "the wallet kept no open top-up after the cut {where_}"
            ))
        })?;
    let (resumed, again) = h.with_links(se, LinkMode::default(), |links, now, rng| {
        wallet.resume(links, now, rng, &txn)
    });
    // The APDUs first: a resume that re-sends CREDIT FOR LOAD fails for that, however it ends.
    let later = credits(asn, &again.exchanges);
    if lose {
        // The card was credited: a CREDIT FOR LOAD on resume is a blind re-send (no new
        // INITIALIZE FOR LOAD, or one for the counter the first used) or a second load.
        let counter = first[0].0;
        let resent = later
            .iter()
            .filter(|(c, _)| c.is_none() || *c == counter)
            .count();
        ensure(later.is_empty(), || {
            format!(
                "on resume {} CREDIT FOR LOAD reached the card already credited ({resent} re-sent blindly: without a new INITIALIZE FOR LOAD or for the same online counter)",
                later.len()
            )
        })?;
    } else {
        let accepted = later.iter().filter(|(_, l)| l.is_some()).count();
        ensure(later.len() == 1 && accepted == 1, || {
            format!(
                "on resume {} CREDIT FOR LOAD ({accepted} accepted), not one",
                later.len()
            )
        })?;
    }
    let resumed =
        resumed.map_err(|e| Stop::Fail(format!("resuming the top-up cut {where_}: {e}")))?;
    h.show(format!("{resumed:?}"));
    let end = se.purse(&aid)?.map(|(_, b)| b);
    ensure(end == Some(before + amount), || {
        format!(
            "after the cut {where_} and the resume the SE holds {end:?}, not {before} + {amount} once"
        )
    })?;
    let loaded = resumed.top_up.as_ref().map(|t| (t.amount, t.new_balance));
    ensure(loaded == Some((amount, before + amount)), || {
        format!("the resumed top-up reports {loaded:?}")
    })?;
    let order = order_state(h, wallet, &order_id)?;
    ensure(order.state == "LOADED" && order.amount == amount, || {
        format!(
            "after the cut {where_} and the resume the order is {} of {} fen",
            order.state, order.amount
        )
    })?;
    Ok(format!(
        "cut {where_}: resumed with {} CREDIT FOR LOAD, balance {before} → {} once, order LOADED",
        later.len(),
        before + amount
    ))
}

/// RP-LOAD-003: the SE link cut right after CREDIT FOR LOAD reached the card (the card credited,
/// its answer lost), then before it reached the card; each time the SE reset and the flow
/// resumed as the wallet would: the card credited exactly once, the order LOADED, and no CREDIT
/// FOR LOAD re-sent to a card that already took it.
pub(super) fn lost_credit(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 700)?;
    let (mut se, mut wallet, card, asn, _) = open(h, Management::Authorized)?;
    let after = cut_variant(h, &mut se, &mut wallet, &card, &asn, amount, true)?;
    let before = cut_variant(h, &mut se, &mut wallet, &card, &asn, amount, false)?;
    Ok(format!("{after}; {before}"))
}

/// READ RECORD `n` of EF18 (e-purse.md §2), read by the harness itself: the 23-byte record, or
/// `None` when the card has no record `n` (`6A83`).
fn se_record(se: &mut super::SimSe, n: u8) -> Result<Option<Vec<u8>>, Stop> {
    let p2 = (ykt_purse::files::SFI_EF18 << 3) | 0x04;
    let le = ykt_purse::files::EF18_RECORD_LEN as u8;
    let r = se.transmit(&[0x00, 0xB2, n, p2, le])?;
    match sw(&r) {
        0x9000 if r.len() == usize::from(le) + 2 => Ok(Some(r[..r.len() - 2].to_vec())),
        0x6A83 => Ok(None),
        other => Err(Stop::Fail(format!(
            "READ RECORD {n} of EF18 answers {other:04X}"
        ))),
    }
}

/// RP-QRY-001: after a few top-ups, what the wallet SDK reports (its offline balance and
/// records, and the balance the TSM's card query gives it) equals what the SE holds: GET
/// BALANCE and the EF18 records the harness reads itself.
pub(super) fn query(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amounts = [
        p.u32("first", 200)?,
        p.u32("second", 350)?,
        p.u32("third", 125)?,
    ];
    let (mut se, mut wallet, card, _, _) = open(h, Management::Authorized)?;
    for a in amounts {
        top_up(h, &mut se, &mut wallet, &card, a)?;
    }
    let aid = card.app_aid.as_bytes().to_vec();
    let (_, on_se) = se
        .purse(&aid)?
        .ok_or_else(|| Stop::Inconclusive("the purse does not answer SELECT".into()))?;
    let mut raw = Vec::new();
    for n in 1..=ykt_wallet::proposals::MAX_RECORDS {
        match se_record(&mut se, n)? {
            Some(r) => raw.push(r),
            None => break,
        }
    }
    // The harness's own reading: the newest records are the loads (type 02), newest first.
    let loads: Vec<u32> = raw
        .iter()
        .take(amounts.len())
        .filter(|r| r[9] == 0x02)
        .map(|r| u32::from_be_bytes([r[5], r[6], r[7], r[8]]))
        .collect();
    let newest_first: Vec<u32> = amounts.iter().rev().copied().collect();
    ensure(
        loads == newest_first && on_se == amounts.iter().sum::<u32>(),
        || format!("the SE holds {on_se} fen and loads {loads:?} after top-ups of {amounts:?}"),
    )?;
    let ((balance, records, remote), _) =
        h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
            let balance = wallet.balance(links, now, &card.card_no);
            let records = wallet.records(links, &card.card_no);
            let remote = wallet.query(links, now, rng, &card.card_no);
            (balance, records, remote)
        });
    let balance = balance.map_err(|e| Stop::Fail(format!("the wallet's balance: {e}")))?;
    let records = records.map_err(|e| Stop::Fail(format!("the wallet's records: {e}")))?;
    let remote = remote.map_err(|e| Stop::Fail(format!("the wallet's card query: {e}")))?;
    h.show(format!("balance {balance}; {records:?}; {remote:?}"));
    ensure(balance == on_se, || {
        format!("the wallet shows a balance of {balance} fen, the SE holds {on_se}")
    })?;
    let shown: Vec<Vec<u8>> = records.iter().map(|r| r.encode().to_vec()).collect();
    ensure(shown == raw, || {
        format!(
            "the wallet shows {} records, the SE holds {}{}",
            shown.len(),
            raw.len(),
            if shown.len() == raw.len() {
                " with other contents"
            } else {
                ""
            }
        )
    })?;
    ensure(remote.balance == Some(on_se), || {
        format!(
            "the card query through the TSM shows {:?}, the SE holds {on_se}",
            remote.balance
        )
    })?;
    Ok(format!(
        "after top-ups of {amounts:?}: the wallet shows {balance} fen (offline and through the TSM's card query) and {} records equal to the SE's GET BALANCE and EF18",
        raw.len()
    ))
}

/// RP-SEC-001: the client's link to the TSM must be TLS with the server's identity checked
/// (client.md §6.4: TLS 1.3 with SPKI pinning, a miss fatal, plain HTTP only for tests).
/// \[PROPOSAL\] (conformance.md §4.7 leaves open how a harness judges it): the client is first
/// seen to use its URL (it enrols over it). A `http://` URL it used is plaintext accepted
/// (FAIL). For an `https://` URL the access reports the link (`TsmAccess::link_report`) and
/// probes it with endpoints that are not the TSM: a TLS 1.3 server with a key of its own, a
/// TLS 1.2-only server, and the TSM's address over plain `http://`. PASS when the link is
/// pinned TLS and every probe was refused with no application byte received; FAIL when one was
/// not; INCONCLUSIVE when the access cannot probe. No URL (the TSM in process): N/A.
pub(super) fn transport(h: &mut TsmHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    let target = h.target().to_owned();
    let url = target
        .split_once(':')
        .map(|(_, u)| u)
        .filter(|u| u.contains("://"))
        .ok_or_else(|| {
            Stop::NotApplicable(format!(
                "the target `{target}` gives no TSM URL: the TSM runs in process, with no network link to secure"
            ))
        })?
        .to_owned();
    let scheme = url.split("://").next().unwrap_or("").to_ascii_lowercase();
    // The client really is using the URL: it enrols over it.
    let mut se = h.new_se()?;
    h.enrolled_wallet(&mut se)?;
    match scheme.as_str() {
        "http" => {
            return Err(Stop::Fail(format!(
                "the client reached the TSM at {url} in plaintext (http://) and enrolled: its messages cross the network unencrypted (a test setup: --danger-insecure-http); point it at the TSM's https:// address with the pin of its TLS key"
            )));
        }
        "https" => {}
        _ => {
            return Err(Stop::Inconclusive(format!(
                "the TSM URL {url} has the scheme `{scheme}`, neither http nor https"
            )));
        }
    }
    match h.link_report() {
        LinkReport::Pinned {
            version,
            pins,
            probes,
        } => {
            if probes.is_empty() {
                return Err(Stop::Inconclusive(format!(
                    "the client's link to {url} is {version} with {pins} pinned key(s), but no endpoint probed it"
                )));
            }
            for p in &probes {
                h.note(format!(
                    "probe: {} → {} ({} application bytes received): {}",
                    p.endpoint,
                    if p.refused { "refused" } else { "accepted" },
                    p.bytes_received,
                    p.detail
                ));
            }
            if let Some(p) = probes.iter().find(|p| !p.refused || p.bytes_received > 0) {
                return Err(Stop::Fail(format!(
                    "the client did not refuse {} before sending: {} ({} application bytes received)",
                    p.endpoint, p.detail, p.bytes_received
                )));
            }
            let names: Vec<&str> = probes.iter().map(|p| p.endpoint.as_str()).collect();
            Ok(format!(
                "the client reached the TSM at {url} over {version} with {pins} pinned key(s), and refused before any request byte: {}",
                names.join("; ")
            ))
        }
        LinkReport::Plaintext => Err(Stop::Fail(format!(
            "the client's link to {url} reports plain HTTP although the URL is https://"
        ))),
        _ => Err(Stop::Inconclusive(format!(
            "the client uses {url} (https://), but this access cannot report or probe its link (whether it refuses a server with another key, or TLS 1.2)"
        ))),
    }
}
