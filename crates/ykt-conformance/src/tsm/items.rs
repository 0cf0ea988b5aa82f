//! The TSM-… checkers (conformance.md §4.9; tsm-gp.md §7, §8): the harness is the upper tester
//! (a device of its own, a blank simulated SE, the test payment provider), the TSM at the URL
//! is under test.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ykt_envelope::{Code, Envelope, SignAlg, response_no};
use ykt_gp_host::EntryKind;
use ykt_purse::Asn;
use ykt_tsm::api::{self, AppQueryReq};
use ykt_tsm::{Management, proposals};
use ykt_wallet::{CardRecord, DeviceKey, TopUp, Wallet, WalletError};

use super::se::{SimSe, registry_view, sw};
use super::{CITY_CODE, LinkMode, LinkStats, TsmHarness, card_state, verify_tsm};
use crate::params::Params;
use crate::transcript::{hex, unhex};
use crate::verdict::{Stop, ensure};

/// The GP life cycle state SELECTABLE (GP §11.1.1, `07`); application-specific states set
/// higher bits, LOCKED sets `80`.
const SELECTABLE: u8 = 0x07;

/// An enrolled wallet on a fresh SE with a card opened (Authorized Management unless `dm`).
pub(super) fn open(
    h: &mut TsmHarness<'_>,
    management: Management,
) -> Result<(SimSe, Wallet, CardRecord, [u8; 10], LinkStats), Stop> {
    let mut se = h.new_se()?;
    let mut wallet = h.enrolled_wallet(&mut se)?;
    let (r, stats) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
        wallet.open_card(links, now, rng, management, CITY_CODE)
    });
    let card = r.map_err(|e| Stop::Fail(format!("open card ({management:?}): {e}")))?;
    let asn = asn_of(&card)?;
    h.log.borrow_mut().mask_card_number(&asn);
    h.show(format!("{card:?}"));
    h.note(format!(
        "card opened: {} APDUs relayed to the SE",
        stats.exchanges.len()
    ));
    Ok((se, wallet, card, asn, stats))
}

/// The card number's 10 bytes.
pub(super) fn asn_of(card: &CardRecord) -> Result<[u8; 10], Stop> {
    let bytes = unhex(card.card_no.danger_full());
    bytes
        .try_into()
        .map_err(|_| Stop::Fail("the card number is not 20 hex digits".into()))
}

/// Tops `card` up by `amount` through the test payment provider; gives the new balance.
pub(super) fn top_up(
    h: &mut TsmHarness<'_>,
    se: &mut SimSe,
    wallet: &mut Wallet,
    card: &CardRecord,
    amount: u32,
) -> Result<u32, Stop> {
    top_up_traced(h, se, wallet, card, amount).map(|(t, _)| t.new_balance)
}

/// Tops `card` up by `amount` through the test payment provider on an untouched SE link;
/// gives what the wallet reports and what crossed the SE link.
pub(super) fn top_up_traced(
    h: &mut TsmHarness<'_>,
    se: &mut SimSe,
    wallet: &mut Wallet,
    card: &CardRecord,
    amount: u32,
) -> Result<(TopUp, LinkStats), Stop> {
    let (r, stats) = h.with_links(se, LinkMode::default(), |links, now, rng| {
        wallet.top_up(
            links,
            now,
            rng,
            &card.card_no,
            amount,
            ykt_wallet::proposals::TEST_PAY_CHANNEL,
        )
    });
    let t = r.map_err(|e| Stop::Fail(format!("top-up of {amount} fen: {e}")))?;
    h.show(format!("{t:?}"));
    Ok((t, stats))
}

/// The purse keys of card `asn` (the test masters diversified with the ASN, e-purse.md §3.2),
/// the ISD keys of `se` and the masters themselves: none may appear in clear anywhere.
pub(super) fn secret_keys(se: &SimSe, asn: &[u8; 10]) -> Result<Vec<(String, Vec<u8>)>, Stop> {
    let mut out = Vec::new();
    let issuer = ykt_purse::testing::test_issuer(ykt_crypto::purse::PurseAlgorithm::Tdes)
        .map_err(|e| Stop::Inconclusive(format!("the test purse issuer: {e}")))?;
    for k in issuer.card_keys(&Asn(*asn)) {
        out.push((format!("purse {:?} key", k.usage), k.key.expose().to_vec()));
    }
    for m in ykt_tsm::vault::test_keys::test_master_keys(ykt_crypto::purse::PurseAlgorithm::Tdes) {
        out.push((
            format!("purse {:?} master", m.usage),
            m.key.expose().to_vec(),
        ));
    }
    let master = ykt_tsm::testing::isd_master()
        .map_err(|e| Stop::Inconclusive(format!("the test ISD master: {e}")))?;
    let isd = ykt_tsm::vault::derive_isd_keys(&master, &ykt_tsm::SeId(se.seid()))
        .map_err(|e| Stop::Inconclusive(format!("the ISD keys: {e}")))?;
    for (name, set) in [("ISD master", &master), ("ISD", &isd)] {
        if let ykt_scp::StaticKeys::Aes { enc, mac, dek } = &set.keys {
            for (which, k) in [("ENC", enc), ("MAC", mac), ("DEK", dek)] {
                out.push((format!("{name} K-{which}"), k.expose().to_vec()));
            }
        }
    }
    Ok(out)
}

/// Where an 8-byte half of a key appears: in an APDU (bytes) or on the wire (hex text, either
/// case; base64).
pub(super) fn key_leaks(
    keys: &[(String, Vec<u8>)],
    apdus: &[(Vec<u8>, Vec<u8>)],
    wire: &[u8],
) -> Vec<String> {
    let wire_text = String::from_utf8_lossy(wire).to_string();
    let mut found = Vec::new();
    for (name, key) in keys {
        for half in key.chunks(8).filter(|c| c.len() == 8) {
            let hit_apdu = apdus
                .iter()
                .any(|(c, r)| contains(c, half) || contains(r, half));
            let h = hex(half);
            let hit_wire = wire_text.contains(&h)
                || wire_text.contains(&h.to_lowercase())
                || wire_text.contains(&B64.encode(key))
                || contains(wire, half);
            if hit_apdu || hit_wire {
                found.push(format!(
                    "{name} in {}",
                    if hit_apdu { "an APDU" } else { "a message" }
                ));
                break;
            }
        }
    }
    found
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// TSM-DL-001: open card = download + personalise: the purse SELECTABLE and personalised on
/// the SE (EF15 carries the card number, GET BALANCE answers), the TSM records the card ACTIVE,
/// and no purse, ISD or master key byte in clear in any APDU or message.
pub(super) fn open_card(h: &mut TsmHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    let (mut se, wallet, card, asn, stats) = open(h, Management::Authorized)?;
    let aid = card.app_aid.as_bytes().to_vec();
    let (ef15_asn, balance) = se
        .purse(&aid)?
        .ok_or_else(|| Stop::Fail("the purse does not answer SELECT after open card".into()))?;
    ensure(ef15_asn == asn, || {
        "EF15 does not carry the card number the TSM gave".into()
    })?;
    let registry = se.registry()?;
    let entry = registry
        .applications
        .iter()
        .find(|e| e.aid == aid)
        .ok_or_else(|| Stop::Fail("GET STATUS does not list the purse".into()))?;
    ensure(
        entry.life_cycle & SELECTABLE == SELECTABLE && entry.life_cycle & 0x80 == 0,
        || {
            format!(
                "the purse's life cycle is {:02X}, not SELECTABLE",
                entry.life_cycle
            )
        },
    )?;
    let cards = h.tsm_cards(&wallet)?;
    let state = card_state(&cards, card.card_no.danger_full());
    ensure(state.as_deref() == Some("ACTIVE"), || {
        format!("the TSM records the card as {state:?}, not ACTIVE")
    })?;
    let keys = secret_keys(&se, &asn)?;
    let leaks = key_leaks(&keys, &stats.exchanges, h.wire());
    ensure(leaks.is_empty(), || {
        format!("key bytes in clear: {}", leaks.join(", "))
    })?;
    Ok(format!(
        "purse {} SELECTABLE ({:02X}) and personalised (EF15 = the card number, balance {balance}); TSM state ACTIVE; none of {} purse/ISD/master keys in {} APDUs or {} message bytes",
        hex(&aid),
        entry.life_cycle,
        keys.len(),
        stats.exchanges.len(),
        h.wire().len()
    ))
}

/// TSM-DL-002: delegated management: the card opened with a DM SSD; the SE's card manager
/// (holding the SEI-TSM's token key) accepted every token-carrying command, and the TSM accepted
/// every receipt (else the flow fails with 4003).
pub(super) fn delegated_management(h: &mut TsmHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    let mut se = h.new_se()?;
    let mut wallet = h.enrolled_wallet(&mut se)?;
    let (r, stats) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
        wallet.open_card(links, now, rng, Management::Delegated, CITY_CODE)
    });
    let card = match r {
        Ok(c) => c,
        Err(WalletError::Refused(code)) if code != Code::ReceiptInvalid => {
            return Err(Stop::NotApplicable(format!(
                "the TSM refuses an open card with delegated management ({code}): the flow does not use DM"
            )));
        }
        Err(e) => return Err(Stop::Fail(format!("open card with DM: {e}"))),
    };
    let asn = asn_of(&card)?;
    h.log.borrow_mut().mask_card_number(&asn);
    let registry = se.registry()?;
    let ssd = registry
        .applications
        .iter()
        .find(|e| e.kind == EntryKind::SecurityDomain)
        .ok_or_else(|| Stop::Fail("GET STATUS lists no SSD".into()))?;
    let privileges = ssd.privileges.map(|p| p.0).unwrap_or_default();
    // GP Table 6-1: byte 1 b8 Security Domain, b6 Delegated Management, b4 Authorized Management.
    ensure(privileges[0] & 0xA0 == 0xA0, || {
        format!(
            "the SSD's privileges {} lack Delegated Management",
            hex(&privileges)
        )
    })?;
    ensure(privileges[0] & 0x08 == 0, || {
        "the SSD has Authorized Management as well: tokens are not needed".into()
    })?;
    let aid = card.app_aid.as_bytes().to_vec();
    ensure(se.purse(&aid)?.is_some(), || {
        "the purse does not answer SELECT".into()
    })?;
    let refused = stats
        .exchanges
        .iter()
        .filter(|(c, r)| matches!(c.get(1), Some(0xE6 | 0xE4 | 0xE8)) && sw(r) != 0x9000)
        .count();
    ensure(refused == 0, || {
        format!("{refused} INSTALL/LOAD/DELETE commands were refused by the card")
    })?;
    let managed = stats
        .exchanges
        .iter()
        .filter(|(c, _)| matches!(c.get(1), Some(0xE6 | 0xE8)))
        .count();
    Ok(format!(
        "SSD {} with privileges {} (DM, not AM); {managed} INSTALL/LOAD commands accepted by the card manager, which verifies each token under the SEI-TSM's token key; every receipt accepted by the TSM (the flow reached ACTIVE)",
        hex(&ssd.aid),
        hex(&privileges)
    ))
}

/// TSM-DL-003: the SE link cut at the `cut_at`-th APDU of an open card; the SE reset; the
/// wallet resumes; the final GET STATUS equals that of an uncut open card on another SE.
pub(super) fn cut_and_resume(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let cut_at = p.u32("cut_at", 12)? as usize;
    let mut se = h.new_se()?;
    let mut wallet = h.enrolled_wallet(&mut se)?;
    let mode = LinkMode {
        cut_se_at: Some(cut_at),
        ..LinkMode::default()
    };
    let (r, stats) = h.with_links(&mut se, mode, |links, now, rng| {
        wallet.open_card(links, now, rng, Management::Authorized, CITY_CODE)
    });
    if r.is_ok() {
        return Err(Stop::Inconclusive(format!(
            "open card finished in {} APDUs, before the cut at {cut_at}",
            stats.apdus
        )));
    }
    se.reset();
    h.note(format!("SE link cut at APDU {cut_at}; SE reset"));
    let txn = wallet
        .open_flows()
        .first()
        .map(|f| f.txn_id.clone())
        .ok_or_else(|| Stop::Inconclusive("the wallet kept no open flow".into()))?;
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
        wallet.resume(links, now, rng, &txn)
    });
    let resumed = r.map_err(|e| Stop::Fail(format!("resume after the cut: {e}")))?;
    let card = resumed
        .card
        .ok_or_else(|| Stop::Fail("the resumed open card gave no card".into()))?;
    let asn = asn_of(&card)?;
    h.log.borrow_mut().mask_card_number(&asn);
    let cut = registry_view(&se.registry()?);
    let (mut reference, ..) = open(h, Management::Authorized)?;
    let uncut = registry_view(&reference.registry()?);
    ensure(cut == uncut, || {
        format!("GET STATUS after cut and resume {cut:?} differs from an uncut open card {uncut:?}")
    })?;
    ensure(
        se.purse(card.app_aid.as_bytes())?.map(|(a, _)| a) == Some(asn),
        || "after resume the purse does not carry the card number".into(),
    )?;
    Ok(format!(
        "cut at APDU {cut_at}, SE reset, resumed: GET STATUS equals an uncut open card's ({} entries)",
        cut.len()
    ))
}

/// TSM-DEL-001: delete card: the purse instance and its load file gone from the SE, the TSM
/// records the card DELETED.
pub(super) fn delete_card(h: &mut TsmHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    let (mut se, mut wallet, card, _, _) = open(h, Management::Authorized)?;
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
        wallet.delete(links, now, rng, &card.card_no)
    });
    r.map_err(|e| Stop::Fail(format!("delete card: {e}")))?;
    let aid = card.app_aid.as_bytes().to_vec();
    ensure(se.purse(&aid)?.is_none(), || {
        "the purse still answers SELECT".into()
    })?;
    let registry = se.registry()?;
    ensure(!registry.applications.iter().any(|e| e.aid == aid), || {
        "GET STATUS still lists the purse instance".into()
    })?;
    ensure(
        !registry
            .load_files
            .iter()
            .any(|e| e.aid == proposals::PURSE_ELF),
        || "GET STATUS still lists the purse's load file".into(),
    )?;
    let cards = h.tsm_cards(&wallet)?;
    let state = card_state(&cards, card.card_no.danger_full());
    ensure(state.as_deref() == Some("DELETED"), || {
        format!("the TSM records the card as {state:?}, not DELETED")
    })?;
    Ok("purse instance and load file gone from GET STATUS; SELECT refused; TSM state DELETED (the SEI-TSM's notice is internal to the TSM and not observable here)".into())
}

/// An INITIALIZE FOR LOAD of amount 0 (`80 50 00 02`, e-purse.md §4.4): the balance proof of a
/// card return (tsm-gp.md §7 card-return row: "SP reads balance"; the TSM proves it with MAC1).
fn is_balance_proof(command: &[u8]) -> bool {
    matches!(command, [0x80, 0x50, 0x00, 0x02, 0x0B, _, 0, 0, 0, 0, ..])
}

/// The load proof of an INITIALIZE FOR LOAD `command` and its `answer` (16 bytes + `9000`):
/// balance, online counter, key version, algorithm, random, MAC1 (e-purse.md §4.4).
pub(super) fn load_proof(
    asn: &[u8; 10],
    command: &[u8],
    answer: &[u8],
) -> Option<ykt_tsm::vault::LoadProof> {
    let (data, sw_bytes) = answer.split_at_checked(16)?;
    if sw_bytes != [0x90, 0x00] {
        return None;
    }
    let body = command.get(5..16)?;
    let four = |b: &[u8], i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
    let mut terminal_id = [0u8; 6];
    terminal_id.copy_from_slice(&body[5..11]);
    Some(ykt_tsm::vault::LoadProof {
        card: ykt_tsm::CardNumber(*asn),
        key_index: body[0],
        key_version: data[6],
        algorithm_id: data[7],
        old_balance: u32::from_be_bytes(four(data, 0)),
        online_counter: u16::from_be_bytes([data[4], data[5]]),
        random: four(data, 8),
        mac1: four(data, 12),
        amount: u32::from_be_bytes(four(body, 1)),
        terminal_id,
    })
}

/// The harness's own check of a MAC1 under the PUBLIC test purse masters (profile
/// `tsm-test-keys`), with the test SP vault of `ykt_tsm::testing`.
fn mac1_verifies(proof: &ykt_tsm::vault::LoadProof) -> Result<bool, Stop> {
    use ykt_tsm::vault::KeyVault as _;
    let vault = ykt_tsm::testing::sp_vault()
        .map_err(|e| Stop::Inconclusive(format!("the test SP vault: {e}")))?;
    let issuer = ykt_tsm::testing::test_parties().purse_issuer;
    Ok(vault.verify_mac1(&issuer, proof).is_ok())
}

/// A flow's state as the TSM records it (`FlowQueryReq` of `txn`), from an answer that verifies.
fn flow_state(
    h: &mut TsmHarness<'_>,
    wallet: &Wallet,
    txn: &str,
) -> Result<(Option<Code>, Option<api::FlowResp>), Stop> {
    let (_, answer) = h.call_as(wallet, api::FLOW_QUERY, txn, &api::Empty {})?;
    verify_tsm(wallet, &answer)?;
    let flow = if answer.code() == Some(Code::Ok) {
        Some(
            answer
                .body::<api::FlowResp>()
                .map_err(|e| Stop::Fail(format!("FlowResp body: {e}")))?,
        )
    } else {
        None
    };
    Ok((answer.code(), flow))
}

/// The `txn_id` of the last request of type `msg_type` the harness's wallets sent.
fn last_txn(h: &TsmHarness<'_>, msg_type: &str) -> Result<String, Stop> {
    h.requests()
        .iter()
        .rev()
        .find(|r| r.msg_type == msg_type)
        .map(|r| r.txn_id.clone())
        .ok_or_else(|| Stop::Inconclusive(format!("the wallet sent no {msg_type}")))
}

/// TSM-RET-001: card return as tsm-gp.md §7's card-return row orders it (the SP proves the
/// balance, then locks the purse, refunds and deletes): the refund equals the balance the SE
/// proved with a MAC1 (INITIALIZE FOR LOAD of 0) that verifies under the test purse keys; SET
/// STATUS comes after the proof and before the DELETE; the purse ends deleted, the TSM records
/// the card DELETED and the flow's refund once (a second `RefundReq` for the card is refused).
pub(super) fn card_return(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 1234)?;
    let (mut se, mut wallet, card, asn, _) = open(h, Management::Authorized)?;
    top_up(h, &mut se, &mut wallet, &card, amount)?;
    let aid = card.app_aid.as_bytes().to_vec();
    let (_, on_se) = se
        .purse(&aid)?
        .ok_or_else(|| Stop::Inconclusive("the purse does not answer SELECT".into()))?;
    let (r, stats) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
        wallet.refund(links, now, rng, &card.card_no, "TEST-REFUND-ACCOUNT")
    });
    let refund = r.map_err(|e| Stop::Fail(format!("card return: {e}")))?;
    let ok = |r: &[u8]| sw(r) == 0x9000;
    // (a) The balance proof: the last INITIALIZE FOR LOAD of 0 the card answered.
    let (proof_at, proof) = stats
        .exchanges
        .iter()
        .enumerate()
        .rev()
        .find(|(_, (c, r))| is_balance_proof(c) && ok(r))
        .and_then(|(i, (c, r))| load_proof(&asn, c, r).map(|p| (i, p)))
        .ok_or_else(|| {
            Stop::Fail(
                "the card return sent no INITIALIZE FOR LOAD of 0 the card answered: the balance it refunds is not proven by the card".into(),
            )
        })?;
    ensure(mac1_verifies(&proof)?, || {
        format!(
            "the MAC1 of the balance proof (APDU {proof_at}) does not verify under the test purse keys"
        )
    })?;
    ensure(proof.old_balance == on_se, || {
        format!(
            "the proof says {} fen, the harness's GET BALANCE {on_se}",
            proof.old_balance
        )
    })?;
    ensure(refund == proof.old_balance, || {
        format!(
            "refund {refund} fen, but the SE proved a balance of {} fen",
            proof.old_balance
        )
    })?;
    // (b) SET STATUS (the lock) after the proof and before the DELETE, both accepted.
    let lock = stats
        .exchanges
        .iter()
        .position(|(c, r)| c.get(1) == Some(&0xF0) && ok(r))
        .ok_or_else(|| {
            Stop::Fail("the card return sent no SET STATUS (lock) the card accepted".into())
        })?;
    let delete = stats
        .exchanges
        .iter()
        .position(|(c, r)| c.get(1) == Some(&0xE4) && ok(r))
        .ok_or_else(|| Stop::Fail("the card return sent no DELETE the card accepted".into()))?;
    ensure(proof_at < lock, || {
        format!(
            "the purse was locked (APDU {lock}) before the balance proof (APDU {proof_at}): no balance can be proven from a locked purse"
        )
    })?;
    ensure(lock < delete, || {
        format!("the purse was deleted (APDU {delete}) before it was locked (APDU {lock})")
    })?;
    // (c) Deleted on the SE and in the TSM, the refund recorded once.
    ensure(se.purse(&aid)?.is_none(), || {
        "the purse still answers SELECT after the return".into()
    })?;
    let registry = se.registry()?;
    ensure(!registry.applications.iter().any(|e| e.aid == aid), || {
        "GET STATUS still lists the purse instance after the return".into()
    })?;
    let cards = h.tsm_cards(&wallet)?;
    let listed = cards
        .cards
        .iter()
        .filter(|c| c.card_no.eq_ignore_ascii_case(card.card_no.danger_full()))
        .count();
    let state = card_state(&cards, card.card_no.danger_full());
    ensure(state.as_deref() == Some("DELETED") && listed == 1, || {
        format!(
            "after the return the TSM lists the card {listed} times, last as {state:?}, not once DELETED"
        )
    })?;
    let txn = last_txn(h, "RefundReq")?;
    let (code, flow) = flow_state(h, &wallet, &txn)?;
    let recorded = flow
        .as_ref()
        .filter(|f| f.status == api::FlowStatus::Completed)
        .and_then(|f| f.outcome.as_ref())
        .and_then(|o| o.refund);
    ensure(recorded == Some(refund), || {
        format!(
            "FlowQueryReq of the return gives {code:?}, refund {recorded:?}, not COMPLETED with {refund}"
        )
    })?;
    let again = api::RefundReq {
        card_no: card.card_no.danger_full().to_owned(),
        seid: se.seid_hex(),
        refund_account: "TEST-REFUND-ACCOUNT".into(),
    };
    let txn2 = h.fresh_id();
    let (_, second) = h.call_as(&wallet, api::REFUND, &txn2, &again)?;
    verify_tsm(&wallet, &second)?;
    ensure(second.code().is_some_and(|c| c != Code::Ok), || {
        "a second RefundReq for the returned card was accepted: the refund could be paid twice"
            .into()
    })?;
    Ok(format!(
        "balance proof at APDU {proof_at} (INITIALIZE FOR LOAD of 0, MAC1 verifies, {} fen = the SE's balance), SET STATUS lock at APDU {lock}, DELETE at APDU {delete}; refund {refund} fen = the proven balance, recorded in the completed flow; the purse gone, the TSM state DELETED; a second RefundReq refused with {} (residual risk: a purchase between proof and lock is for settlement to reconcile)",
        proof.old_balance,
        second.code().map_or("-", |c| c.as_str())
    ))
}

/// TSM-RET-002: a card return whose balance proof the man in the middle changed (a byte of the
/// balance; then, in a second return, a byte of MAC1) is refused: 4002 each time, no SET STATUS
/// or DELETE sent, no refund recorded in either flow, the purse on the SE as it was.
pub(super) fn card_return_tampered(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 800)?;
    let (mut se, mut wallet, card, _, _) = open(h, Management::Authorized)?;
    top_up(h, &mut se, &mut wallet, &card, amount)?;
    let aid = card.app_aid.as_bytes().to_vec();
    let (_, before) = se
        .purse(&aid)?
        .ok_or_else(|| Stop::Inconclusive("the purse does not answer SELECT".into()))?;
    // Byte 1 of the balance (+65 536 fen) in the first return, the last byte of MAC1 in the
    // second one.
    let mut outcomes = Vec::new();
    let mut txns = Vec::new();
    for (what, at) in [("the balance", 1usize), ("MAC1", 15usize)] {
        let tamper: super::SeTamper = Box::new(move |c: &[u8], r: &mut Vec<u8>| {
            if is_balance_proof(c) && r.len() == 18 && sw(r) == 0x9000 {
                r[at] ^= 0x01;
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
            wallet.refund(links, now, rng, &card.card_no, "TEST-REFUND-ACCOUNT")
        });
        if stats.se_tampered == 0 {
            return Err(Stop::Inconclusive(format!(
                "the card return sent no INITIALIZE FOR LOAD of 0 to tamper with ({r:?})"
            )));
        }
        let refused_with = match &r {
            Ok(refund) => {
                return Err(Stop::Fail(format!(
                    "the TSM finished a card return whose proof had {what} changed (refund {refund} fen)"
                )));
            }
            Err(WalletError::Refused(code)) => *code,
            Err(e) => {
                return Err(Stop::Fail(format!(
                    "with {what} changed the return ended in {e}, not a refusal with a result code"
                )));
            }
        };
        ensure(refused_with == Code::CryptogramMismatch, || {
            format!(
                "with {what} changed the TSM refused with {refused_with}, not 4002 (cryptogram mismatch)"
            )
        })?;
        let after_proof = stats
            .exchanges
            .iter()
            .skip_while(|(c, _)| !is_balance_proof(c))
            .filter(|(c, _)| matches!(c.get(1), Some(0xF0 | 0xE4)))
            .count();
        ensure(after_proof == 0, || {
            format!(
                "after the changed proof ({what}) the TSM still sent {after_proof} SET STATUS or DELETE commands"
            )
        })?;
        outcomes.push(format!("{what} changed → {refused_with}"));
        txns.push(last_txn(h, "RefundReq")?);
    }
    ensure(txns[0] != txns[1], || {
        "both returns ran under one txn_id".into()
    })
    .map_err(|_| Stop::Inconclusive("the wallet reused the first return's txn_id".into()))?;
    let mut states = Vec::new();
    for txn in &txns {
        let (code, flow) = flow_state(h, &wallet, txn)?;
        let flow = flow.ok_or_else(|| {
            Stop::Fail(format!(
                "FlowQueryReq of a refused return gives {code:?}: the TSM does not know the flow"
            ))
        })?;
        ensure(flow.status != api::FlowStatus::Completed, || {
            "the TSM records a refused return as COMPLETED".into()
        })?;
        let refunded = flow.outcome.as_ref().and_then(|o| o.refund);
        ensure(refunded.is_none(), || {
            format!("the TSM records a refund of {refunded:?} for a refused return")
        })?;
        states.push(format!("{:?} {}", flow.status, flow.instance_state));
    }
    let after = se.purse(&aid)?.map(|(_, b)| b);
    ensure(after == Some(before), || {
        format!("the purse answers {after:?} after the refused return, held {before}")
    })?;
    let registry = se.registry()?;
    let entry = registry
        .applications
        .iter()
        .find(|e| e.aid == aid)
        .ok_or_else(|| Stop::Fail("GET STATUS no longer lists the purse".into()))?;
    ensure(entry.life_cycle & 0x80 == 0, || {
        format!(
            "the purse was locked ({:02X}) although its proof was refused",
            entry.life_cycle
        )
    })?;
    let cards = h.tsm_cards(&wallet)?;
    let state = card_state(&cards, card.card_no.danger_full());
    ensure(
        state.as_deref() != Some("DELETED") && state.is_some(),
        || format!("the TSM records the card as {state:?} after the refused return"),
    )?;
    Ok(format!(
        "{}; no SET STATUS or DELETE after the changed proof; both flows without refund ({}); the purse still holds {before} fen, not locked ({:02X}); the TSM state {}",
        outcomes.join(", "),
        states.join(", "),
        entry.life_cycle,
        state.unwrap_or_default()
    ))
}

/// TSM-MIG-001: transfer: the card number kept, the new SE's balance = the old one's, the old
/// purse deleted.
pub(super) fn transfer(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 1500)?;
    let (mut old_se, mut old_wallet, card, asn, _) = open(h, Management::Authorized)?;
    let balance = top_up(h, &mut old_se, &mut old_wallet, &card, amount)?;
    let (r, _) = h.with_links(&mut old_se, LinkMode::default(), |links, now, rng| {
        old_wallet.transfer_out(links, now, rng, &card.card_no)
    });
    let code = r.map_err(|e| Stop::Fail(format!("transfer out: {e}")))?;
    let mut new_se = h.new_se()?;
    let mut new_wallet = h.enrolled_wallet(&mut new_se)?;
    let (r, _) = h.with_links(&mut new_se, LinkMode::default(), |links, now, rng| {
        new_wallet.transfer_in(links, now, rng, &code, Management::Authorized)
    });
    let moved = r.map_err(|e| Stop::Fail(format!("transfer in: {e}")))?;
    ensure(moved.card_no == card.card_no, || {
        "the card number changed in the transfer".into()
    })?;
    let (new_asn, new_balance) = new_se
        .purse(moved.app_aid.as_bytes())?
        .ok_or_else(|| Stop::Fail("no purse on the new SE".into()))?;
    ensure(new_asn == asn, || {
        "the new SE's EF15 carries another card number".into()
    })?;
    ensure(new_balance == balance, || {
        format!("new balance {new_balance}, old {balance}")
    })?;
    ensure(old_se.purse(card.app_aid.as_bytes())?.is_none(), || {
        "the old SE's purse still answers SELECT".into()
    })?;
    Ok(format!(
        "card number kept; new SE balance {new_balance} = old; the old purse deleted"
    ))
}

/// Checks one response envelope against its request (tsm-gp.md §7): version, algorithm,
/// number = request + 1, `txn_id`/`request_id` echoed, a result, and the signature.
fn check_envelope(wallet: &Wallet, request: &Envelope, response: &Envelope) -> Result<(), Stop> {
    let what = &request.msg_type;
    ensure(response.version == ykt_envelope::VERSION, || {
        format!("{what}: version {:?}", response.version)
    })?;
    ensure(matches!(response.sign_alg, SignAlg::Sm2Sm3), || {
        format!(
            "{what}: the answer is signed with {:?}, not SM2-SM3 as the TSM enrolled",
            response.sign_alg
        )
    })?;
    ensure(response.msg_no == response_no(&request.msg_no), || {
        format!(
            "{what}: msg_no {} is not the request's {} + 1",
            response.msg_no, request.msg_no
        )
    })?;
    ensure(
        response.txn_id == request.txn_id && response.request_id == request.request_id,
        || format!("{what}: txn_id or request_id not echoed"),
    )?;
    ensure(response.result.is_some(), || {
        format!("{what}: the answer has no result")
    })?;
    verify_tsm(wallet, response)
}

/// TSM-MSG-001: every answer is a schema-valid envelope (unknown members refused by the parser)
/// whose SM2-SM3 signature verifies under the TSM's key; refusals too.
pub(super) fn envelope(h: &mut TsmHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    let mut se = h.new_se()?;
    let wallet = h.enrolled_wallet(&mut se)?;
    let pairs: Vec<(Envelope, Envelope)> = h
        .requests()
        .iter()
        .cloned()
        .zip(h.responses().iter().cloned())
        .collect();
    for (request, response) in &pairs {
        check_envelope(&wallet, request, response)?;
    }
    let txn = h.fresh_id();
    let request = h.seal_as(&wallet, api::CARDS_QUERY, &txn, &api::Empty {}, 0)?;
    let (status, response) = h.post_envelope(&request.msg_type, &request.to_vec())?;
    check_envelope(&wallet, &request, &response)?;
    ensure(status == 200 && response.code() == Some(Code::Ok), || {
        format!("CardsQueryReq: HTTP {status}, {:?}", response.code())
    })?;
    let (status, refusal) = h.post_envelope("CardsQueryReq", b"{\"not\":\"an envelope\"}")?;
    ensure(refusal.code().is_some_and(|c| c != Code::Ok), || {
        "a malformed request was not refused".into()
    })?;
    verify_tsm(&wallet, &refusal)?;
    Ok(format!(
        "EnrolResp, CardsResp and the refusal of a malformed request (HTTP {status}, {}) are envelopes whose SM2-SM3 signatures (ID 1234567812345678) verify under the TSM's key",
        refusal.code().map_or("-", |c| c.as_str())
    ))
}

/// The envelope with one byte of its signature flipped.
fn flip_signature(envelope: &Envelope) -> Envelope {
    let mut bad = envelope.clone();
    let mut sig = B64.decode(bad.sign.as_bytes()).unwrap_or_default();
    if let Some(b) = sig.last_mut() {
        *b ^= 0x01;
    }
    bad.sign = B64.encode(sig);
    bad
}

/// TSM-MSG-002: a bad signature → 1001 and an unknown sender → 1002, with no side effect (the
/// flow the bad request would have started does not exist; no card appears).
pub(super) fn refusals(h: &mut TsmHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    let mut se = h.new_se()?;
    let wallet = h.enrolled_wallet(&mut se)?;
    let txn = h.fresh_id();
    let body = api::OpenCardReq {
        management: Management::Authorized,
        city_code: CITY_CODE.into(),
    };
    let good = h.seal_as(&wallet, api::OPEN_CARD, &txn, &body, 0)?;
    let bad = flip_signature(&good);
    let (status, answer) = h.post_envelope(&bad.msg_type, &bad.to_vec())?;
    ensure(answer.code() == Some(Code::BadSignature), || {
        format!(
            "a bad signature got HTTP {status} {:?}, not 1001",
            answer.code()
        )
    })?;
    let (_, query) = h.call_as(&wallet, api::FLOW_QUERY, &txn, &api::Empty {})?;
    ensure(query.code() == Some(Code::FlowNotFound), || {
        format!(
            "after the refused OpenCardReq, FlowQueryReq of its txn_id gives {:?}, not 3006: the bad request had an effect",
            query.code()
        )
    })?;
    let cards = h.tsm_cards(&wallet)?;
    ensure(cards.cards.is_empty(), || {
        "a card appeared after the refused request".into()
    })?;
    // An unknown sender: a key the TSM never enrolled, signing correctly.
    let stranger =
        DeviceKey::generate(h.rng()).ok_or_else(|| Stop::Inconclusive("no device key".into()))?;
    let header = ykt_envelope::Header {
        msg_type: api::CARDS_QUERY.request.into(),
        msg_no: api::CARDS_QUERY.msg_no.into(),
        sender_id: format!("DEVICE-NEVER-ENROLLED-{}", stranger.key_id()),
        receiver_id: h.tsm_id().to_owned(),
        txn_id: h.fresh_id(),
        request_id: h.fresh_id(),
    };
    let now = h.now_ms();
    let unknown = Envelope::seal(
        &header,
        &api::Empty {},
        None,
        &[0x5A; 16],
        now,
        &stranger.signer(),
    )
    .map_err(|e| Stop::Inconclusive(format!("sealing: {e}")))?;
    let (status2, answer) = h.post_envelope(&unknown.msg_type, &unknown.to_vec())?;
    ensure(answer.code() == Some(Code::UnknownSender), || {
        format!(
            "an unknown sender got HTTP {status2} {:?}, not 1002",
            answer.code()
        )
    })?;
    Ok(format!(
        "bad signature → 1001 (HTTP {status}), no flow started, no card; unknown sender → 1002 (HTTP {status2})"
    ))
}

/// TSM-MSG-003: a request sent again with the same `request_id` (new nonce): the same body gets
/// the stored answer, another body gets 1003; the captured bytes sent again are refused.
pub(super) fn idempotency(h: &mut TsmHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    let mut se = h.new_se()?;
    let wallet = h.enrolled_wallet(&mut se)?;
    let txn = h.fresh_id();
    let body = AppQueryReq { seid: None };
    let first = h.seal_as(&wallet, api::APP_QUERY, &txn, &body, 0)?;
    let (_, a1) = h.post_envelope(&first.msg_type, &first.to_vec())?;
    verify_tsm(&wallet, &a1)?;
    ensure(a1.code() == Some(Code::Ok), || {
        format!("AppQueryReq refused with {:?}", a1.code())
    })?;
    let request_id = first.request_id.clone();
    let mut again = h.seal_as(&wallet, api::APP_QUERY, &txn, &body, 0)?;
    again = reseal_with_request_id(h, &wallet, &again, &request_id, &body)?;
    let (_, a2) = h.post_envelope(&again.msg_type, &again.to_vec())?;
    verify_tsm(&wallet, &a2)?;
    ensure(a2.code() == Some(Code::Ok) && a2.body == a1.body, || {
        format!(
            "the same request again (same request_id, new nonce) got {:?} with {} body, not the stored answer",
            a2.code(),
            if a2.body == a1.body {
                "the same"
            } else {
                "another"
            }
        )
    })?;
    let other = AppQueryReq {
        seid: Some(hex(&se.seid())),
    };
    let third = reseal_with_request_id(h, &wallet, &again, &request_id, &other)?;
    let (_, a3) = h.post_envelope(&third.msg_type, &third.to_vec())?;
    ensure(a3.code() == Some(Code::Duplicate), || {
        format!(
            "the same request_id with another body got {:?}, not 1003",
            a3.code()
        )
    })?;
    let (_, a4) = h.post_envelope(&first.msg_type, &first.to_vec())?;
    ensure(a4.code().is_some_and(|c| c != Code::Ok), || {
        "the captured request sent again byte for byte was answered 0000".into()
    })?;
    Ok(format!(
        "same request_id + body → the stored answer; other body → 1003; the captured bytes again → {}",
        a4.code().map_or("-", |c| c.as_str())
    ))
}

/// `template` sealed again with `request_id`, `body`, a fresh nonce and the current time.
pub(super) fn reseal_with_request_id<B: serde::Serialize>(
    h: &mut TsmHarness<'_>,
    wallet: &Wallet,
    template: &Envelope,
    request_id: &str,
    body: &B,
) -> Result<Envelope, Stop> {
    let key = wallet
        .state()
        .device_key
        .as_ref()
        .ok_or_else(|| Stop::Inconclusive("no device key".into()))?;
    let header = ykt_envelope::Header {
        msg_type: template.msg_type.clone(),
        msg_no: template.msg_no.clone(),
        sender_id: template.sender_id.clone(),
        receiver_id: template.receiver_id.clone(),
        txn_id: template.txn_id.clone(),
        request_id: request_id.to_owned(),
    };
    let mut nonce = [0u8; 16];
    rand_core::Rng::fill_bytes(h.rng(), &mut nonce);
    let now = h.now_ms();
    Envelope::seal(&header, body, None, &nonce, now, &key.signer())
        .map_err(|e| Stop::Inconclusive(format!("sealing: {e}")))
}

/// TSM-MSG-004: a timestamp `skew_s` seconds in the past (and in the future) is refused with
/// 1004.
pub(super) fn stale(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let skew = i64::from(p.u32("skew_s", 600)?) * 1000;
    let mut se = h.new_se()?;
    let wallet = h.enrolled_wallet(&mut se)?;
    let mut codes = Vec::new();
    for shift in [-skew, skew] {
        let txn = h.fresh_id();
        let request = h.seal_as(&wallet, api::CARDS_QUERY, &txn, &api::Empty {}, shift)?;
        let (_, answer) = h.post_envelope(&request.msg_type, &request.to_vec())?;
        ensure(answer.code() == Some(Code::Stale), || {
            format!(
                "a timestamp {} s {} got {:?}, not 1004",
                skew / 1000,
                if shift < 0 { "old" } else { "ahead" },
                answer.code()
            )
        })?;
        codes.push(answer.code());
    }
    Ok(format!(
        "timestamps {} s old and {} s ahead refused with 1004",
        skew / 1000,
        skew / 1000
    ))
}

/// TSM-KEY-001: after open card (the SP-TSM's PUT KEY replacing the SEI-TSM's initial SSD key
/// set), the keys the SEI-TSM knows no longer open the SSD: INITIALIZE UPDATE with the initial
/// key version is refused, and the ISD-derived keys fail the handshake.
pub(super) fn key_handover(h: &mut TsmHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    let (mut se, ..) = open(h, Management::Authorized)?;
    let registry = se.registry()?;
    let ssd = registry
        .applications
        .iter()
        .find(|e| e.kind == EntryKind::SecurityDomain)
        .map(|e| e.aid.clone())
        .ok_or_else(|| Stop::Fail("GET STATUS lists no SSD".into()))?;
    let initial = proposals::SSD_INITIAL_KEY_VERSION;
    let with_initial = se.open_channel(&ssd, Some(initial)).map(|_| ());
    ensure(with_initial.is_err(), || {
        format!("the SSD still opens with key version {initial:02X} and the ISD-derived keys")
    })?;
    let any = se.open_channel(&ssd, Some(0)).map(|_| ());
    ensure(any.is_err(), || {
        "the SSD opens with the ISD-derived keys (key version 00)".into()
    })?;
    let why = |r: Result<(), Stop>| match r {
        Err(Stop::Inconclusive(m) | Stop::Fail(m)) => m,
        _ => String::new(),
    };
    Ok(format!(
        "SSD {}: KVN {initial:02X} refused ({}); the ISD-derived keys refused ({})",
        hex(&ssd),
        why(with_initial),
        why(any)
    ))
}
