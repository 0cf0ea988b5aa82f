//! The CL-… checkers (conformance.md §4.8; client.md §6): the client under test is this
//! project's wallet SDK (`ykt-wallet`), driven by the harness, which sits in the middle of both
//! its links (every envelope and APDU recorded, answers tampered with on purpose) and checks the
//! end states through the TSM's own queries and on the SE.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ykt_crypto::{Sm2PublicKey, Sm2Signature};
use ykt_envelope::{Code, SignAlg};
use ykt_tsm::Management;
use ykt_wallet::{SealKey, Wallet, WalletError, WalletState};

use super::items::{asn_of, contains, open, secret_keys, top_up};
use super::{LinkMode, TsmHarness, card_state};
use crate::params::Params;
use crate::transcript::hex;
use crate::verdict::{Stop, ensure};

/// The SM2 user ID every request must be signed with (GB/T 35276 default; client.md §6.1).
const SM2_ID: &[u8] = b"1234567812345678";
/// The passphrase the harness seals the wallet's state under.
const PASSPHRASE: &[u8] = b"conformance-passphrase-1";

/// CL-FN-001: open card through the wallet: the wallet lists the card, the TSM records it
/// ACTIVE, the SE's purse carries its number.
pub(super) fn open_card(h: &mut TsmHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    let (mut se, wallet, card, asn, _) = open(h, Management::Authorized)?;
    ensure(
        wallet.cards().iter().any(|c| c.card_no == card.card_no),
        || "the wallet does not list the card it opened".into(),
    )?;
    let cards = h.tsm_cards(&wallet)?;
    let state = card_state(&cards, card.card_no.danger_full());
    ensure(state.as_deref() == Some("ACTIVE"), || {
        format!("the TSM records the card as {state:?}")
    })?;
    let on_se = se.purse(card.app_aid.as_bytes())?.map(|(a, _)| a);
    ensure(on_se == Some(asn), || {
        "the SE's purse does not carry the card number".into()
    })?;
    Ok("the wallet lists the card; the TSM's CardsQueryReq says ACTIVE; the SE's EF15 carries its number".into())
}

/// CL-FN-002: top-up, balance, records, transfer and return each reach their end state, as the
/// TSM's queries and the SE show.
pub(super) fn flows(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 2000)?;
    let (mut se, mut wallet, card, _, _) = open(h, Management::Authorized)?;
    let new_balance = top_up(h, &mut se, &mut wallet, &card, amount)?;
    ensure(new_balance == amount, || {
        format!("top-up of {amount} left the balance at {new_balance}")
    })?;
    let aid = card.app_aid.as_bytes().to_vec();
    let on_se = se.purse(&aid)?.map(|(_, b)| b);
    ensure(on_se == Some(amount), || {
        format!("the SE's balance is {on_se:?} after a top-up of {amount}")
    })?;
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, now, _| {
        wallet.balance(links, now, &card.card_no)
    });
    let shown = r.map_err(|e| Stop::Fail(format!("balance: {e}")))?;
    ensure(shown == amount, || {
        format!("the wallet shows {shown}, the SE holds {amount}")
    })?;
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, _, _| {
        wallet.records(links, &card.card_no)
    });
    let records = r.map_err(|e| Stop::Fail(format!("records: {e}")))?;
    h.show(format!("{records:?}"));
    ensure(records.iter().any(|r| r.amount == amount), || {
        format!(
            "no record of the {amount} fen load among {} records",
            records.len()
        )
    })?;
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
        wallet.query(links, now, rng, &card.card_no)
    });
    let q = r.map_err(|e| Stop::Fail(format!("card query: {e}")))?;
    ensure(q.balance == Some(amount), || {
        format!("the TSM's card query gives {:?}", q.balance)
    })?;
    // Transfer to a second phone, then return the card there.
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
        wallet.transfer_out(links, now, rng, &card.card_no)
    });
    let code = r.map_err(|e| Stop::Fail(format!("transfer out: {e}")))?;
    let mut se2 = h.new_se()?;
    let mut wallet2 = h.enrolled_wallet(&mut se2)?;
    let (r, _) = h.with_links(&mut se2, LinkMode::default(), |links, now, rng| {
        wallet2.transfer_in(links, now, rng, &code, Management::Authorized)
    });
    let moved = r.map_err(|e| Stop::Fail(format!("transfer in: {e}")))?;
    let cards = h.tsm_cards(&wallet2)?;
    let after_in = card_state(&cards, moved.card_no.danger_full());
    ensure(after_in.as_deref() == Some("ACTIVE"), || {
        format!("after transfer in the TSM records {after_in:?}")
    })?;
    let (r, _) = h.with_links(&mut se2, LinkMode::default(), |links, now, rng| {
        wallet2.refund(links, now, rng, &moved.card_no, "TEST-REFUND-ACCOUNT")
    });
    let refund = r.map_err(|e| Stop::Fail(format!("card return: {e}")))?;
    ensure(refund == amount, || {
        format!("refund {refund}, balance was {amount}")
    })?;
    let cards = h.tsm_cards(&wallet2)?;
    let after_return = card_state(&cards, moved.card_no.danger_full());
    ensure(
        after_return.as_deref() != Some("ACTIVE") && after_return.is_some(),
        || format!("after the return the TSM records {after_return:?}"),
    )?;
    ensure(wallet2.cards().is_empty(), || {
        "the wallet still lists the returned card".into()
    })?;
    Ok(format!(
        "top-up {amount} (SE, wallet and TSM agree), {} records, transfer (ACTIVE on the new SE), return (refund {refund}, TSM state {})",
        records.len(),
        after_return.unwrap_or_default()
    ))
}

/// The forms a canary is searched in: hex (both cases), decimal, base64 of the bytes and of the
/// hex text, and the bytes themselves.
fn forms(bytes: &[u8], decimal: Option<String>) -> Vec<Vec<u8>> {
    let h = hex(bytes);
    let mut out = vec![
        h.clone().into_bytes(),
        h.to_lowercase().into_bytes(),
        B64.encode(bytes).into_bytes(),
        B64.encode(h.as_bytes()).into_bytes(),
        bytes.to_vec(),
    ];
    if let Some(d) = decimal {
        out.push(d.into_bytes());
    }
    if bytes.len() <= 16 {
        let mut padded = [0u8; 16];
        padded[16 - bytes.len()..].copy_from_slice(bytes);
        out.push(u128::from_be_bytes(padded).to_string().into_bytes());
    }
    out
}

/// A canary: its name and the byte strings of its forms.
type Canary = (String, Vec<Vec<u8>>);

/// The canaries of a wallet with an opened card: card number, SEID, PIN, device key, purse
/// keys, the MAC2 of its top-ups.
fn canaries(
    wallet: &Wallet,
    se: &super::SimSe,
    asn: &[u8; 10],
    mac2s: &[Vec<u8>],
) -> Result<Vec<Canary>, Stop> {
    let mut out = vec![
        (
            "the full card number".to_owned(),
            forms(asn, Some(hex(asn))),
        ),
        ("the SEID".to_owned(), forms(&se.seid(), None)),
        (
            "the PIN".to_owned(),
            forms(&ykt_tsm::vault::test_keys::TEST_PIN, None)
                .into_iter()
                .filter(|f| f.len() >= 6)
                .collect(),
        ),
    ];
    if let Some(device) = wallet.state().to_records().first()
        && device.data.len() == 32
    {
        out.push(("the device key".to_owned(), forms(&device.data, None)));
    }
    for (name, key) in secret_keys(se, asn)? {
        out.push((name, forms(&key, None)));
    }
    for m in mac2s {
        out.push(("a MAC2".to_owned(), forms(m, None)));
    }
    Ok(out)
}

/// The MAC2s of the CREDIT FOR LOAD commands (`80 52`, data = date ‖ time ‖ MAC2) in `apdus`.
fn mac2s(apdus: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    apdus
        .iter()
        .filter_map(|(c, _)| match c.as_slice() {
            [0x80, 0x52, _, _, 0x0B, data @ ..] if data.len() >= 11 => Some(data[7..11].to_vec()),
            _ => None,
        })
        .collect()
}

/// CL-SD-001: after the flows, the sealed state and everything the wallet returned or reported
/// (results, errors' text, progress, `Debug` of its state) hold no canary in any form. The
/// top-up is made `repeat` times and the MAC2 of each is a canary: the search is only made when
/// every one of them was seen on the SE link, when the delete was refused (so an error's text is
/// searched too) and when the device key is known; otherwise INCONCLUSIVE.
pub(super) fn canaries_check(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 700)?;
    let repeat = p.u32("repeat", 2)?.max(1);
    let (mut se, mut wallet, card, asn, _) = open(h, Management::Authorized)?;
    let mut macs = Vec::new();
    let mut last_balance = 0;
    for n in 1..=repeat {
        let (r, stats) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
            wallet.top_up(
                links,
                now,
                rng,
                &card.card_no,
                amount,
                ykt_wallet::proposals::TEST_PAY_CHANNEL,
            )
        });
        let t = r.map_err(|e| Stop::Fail(format!("top-up {n} of {repeat}: {e}")))?;
        h.show(format!("{t:?}"));
        let seen = mac2s(&stats.exchanges);
        ensure(seen.len() == 1, || {
            format!(
                "top-up {n}: {} CREDIT FOR LOAD commands seen on the SE link, not 1",
                seen.len()
            )
        })
        .map_err(|e| match e {
            Stop::Fail(m) => Stop::Inconclusive(m),
            other => other,
        })?;
        macs.extend(seen);
        last_balance = t.new_balance;
    }
    ensure(last_balance == amount * repeat, || {
        format!(
            "after {repeat} top-ups of {amount} the wallet reports {last_balance}, not {}",
            amount * repeat
        )
    })?;
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, now, _| {
        wallet.balance(links, now, &card.card_no)
    });
    h.show(format!("{r:?}"));
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, _, _| {
        wallet.records(links, &card.card_no)
    });
    h.show(format!("{r:?}"));
    // A refused call (delete with a balance left): its error and user text are shown too.
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
        wallet.delete(links, now, rng, &card.card_no)
    });
    let Err(e) = &r else {
        return Err(Stop::Inconclusive(
            "the delete of a card with a balance was not refused: no error text to search".into(),
        ));
    };
    let (code, text) = e.user_text();
    h.show(format!("{e} {e:?} {code} {text} {}", e.user_code()));
    h.show(format!("{:?} {:?}", wallet.state(), wallet.cards()));
    let key = SealKey::create(PASSPHRASE, h.rng());
    let sealed = wallet
        .state()
        .seal(&key, h.rng())
        .map_err(|e| Stop::Inconclusive(format!("sealing the state: {e}")))?;
    let shown = h.shown().join("\n").into_bytes();
    let canaries = canaries(&wallet, &se, &asn, &macs)?;
    ensure(canaries.iter().any(|(n, _)| n == "the device key"), || {
        "the wallet's device key is not in its records: it cannot be searched for".into()
    })
    .map_err(|e| match e {
        Stop::Fail(m) => Stop::Inconclusive(m),
        other => other,
    })?;
    let mut found = Vec::new();
    for (name, forms) in &canaries {
        for (place, hay) in [
            ("the sealed state", &sealed),
            ("the wallet's output", &shown),
        ] {
            if forms.iter().any(|f| contains(hay, f)) {
                found.push(format!("{name} in {place}"));
            }
        }
    }
    ensure(found.is_empty(), || found.join("; "))?;
    Ok(format!(
        "{} canaries (card number, SEID, PIN, device key, purse and ISD keys, the MAC2 of each of {repeat} top-ups) in none of their hex, decimal, base64 or binary forms in the sealed state ({} bytes) or in {} items the wallet returned or reported (a refused delete's error {code} among them)",
        canaries.len(),
        sealed.len(),
        h.shown().len()
    ))
}

/// Where `hay` shows the card number `full` as client.md §6.7 masks one of 12 digits or more:
/// its first 6, one or more `*`, its last 4.
fn masked_card_no_shown(hay: &str, full: &str) -> bool {
    if full.len() < 12 {
        return false;
    }
    let (head, tail) = (&full[..6], &full[full.len() - 4..]);
    hay.match_indices(head).any(|(at, _)| {
        let rest = &hay[at + 6..];
        let stars = rest.chars().take_while(|c| *c == '*').count();
        stars > 0 && rest[stars..].starts_with(tail)
    })
}

/// CL-SD-003: what the wallet shows of the card number and the SEID has client.md §6.7's masked
/// shapes (card number: first 6 + `*` + last 4; SEID: first 4 + `…` + last 4) and never the full
/// value.
pub(super) fn masking(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 500)?;
    let (mut se, mut wallet, card, asn, _) = open(h, Management::Authorized)?;
    top_up(h, &mut se, &mut wallet, &card, amount)?;
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, now, rng| {
        wallet.query(links, now, rng, &card.card_no)
    });
    h.show(format!("{r:?}"));
    let (r, _) = h.with_links(&mut se, LinkMode::default(), |links, _, _| {
        wallet.records(links, &card.card_no)
    });
    h.show(format!("{r:?}"));
    h.show(format!("{:?} {:?}", wallet.cards(), wallet.state()));
    let shown = h.shown().join("\n");
    let full = hex(&asn);
    let seid = se.seid_hex();
    for (what, value) in [("card number", &full), ("SEID", &seid)] {
        ensure(
            !shown.contains(value.as_str()) && !shown.contains(&value.to_lowercase()),
            || format!("the wallet shows the full {what}"),
        )?;
    }
    ensure(masked_card_no_shown(&shown, &full), || {
        format!(
            "no item the wallet showed has the card number as first 6 + `*` + last 4 ({} items)",
            h.shown().len()
        )
    })?;
    let seid_mask = format!("{}…{}", &seid[..4], &seid[seid.len() - 4..]);
    ensure(shown.contains(&seid_mask), || {
        "no item the wallet showed has the SEID as first 4 + `…` + last 4".into()
    })?;
    Ok(format!(
        "{} items the wallet showed: the card number only as first 6 + `*` + last 4, the SEID only as first 4 + `…` + last 4; neither in full",
        h.shown().len()
    ))
}

/// CL-AU-001: every request the wallet sent is signed SM2-SM3 with user ID 1234567812345678
/// under its device key; an answer tampered with (signature kept) is refused before any of
/// its APDUs reaches the SE.
pub(super) fn signing(h: &mut TsmHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    let (mut se, mut wallet, card, _, _) = open(h, Management::Authorized)?;
    let device = wallet
        .state()
        .device_key
        .as_ref()
        .map(|k| k.public_key().clone())
        .ok_or_else(|| Stop::Inconclusive("no device key".into()))?;
    let checked = verify_requests(h, &device)?;
    // Tamper with the relay of the first answer that carries one.
    let tamper = Box::new(|env: &mut ykt_envelope::Envelope| {
        let Some(capdus) = env
            .body
            .get_mut("relay")
            .and_then(|r| r.get_mut("capdus"))
            .and_then(|c| c.as_array_mut())
        else {
            return false;
        };
        let Some(first) = capdus
            .first_mut()
            .and_then(|c| c.as_str().map(str::to_owned))
        else {
            return false;
        };
        let mut b = crate::transcript::unhex(&first);
        if let Some(last) = b.last_mut() {
            *last ^= 0x01;
        }
        capdus[0] = serde_json::Value::String(hex(&b));
        true
    });
    let mode = LinkMode {
        tamper: Some(tamper),
        ..LinkMode::default()
    };
    let (r, stats) = h.with_links(&mut se, mode, |links, now, rng| {
        wallet.query(links, now, rng, &card.card_no)
    });
    ensure(stats.tampered > 0, || {
        "no answer carried a relay to tamper with".into()
    })
    .map_err(|_| Stop::Inconclusive("no answer carried a relay to tamper with".into()))?;
    ensure(matches!(r, Err(WalletError::BadSignature)), || {
        format!("the wallet took a tampered answer: {r:?}")
    })?;
    ensure(stats.apdus == 0, || {
        format!(
            "{} APDUs reached the SE from a tampered answer",
            stats.apdus
        )
    })?;
    Ok(format!(
        "{checked} requests verify under the device key (SM2-SM3, ID 1234567812345678); a tampered relay was refused (E_BAD_SIGNATURE) with 0 APDUs sent to the SE"
    ))
}

/// Every request recorded so far verifies under `device` with [`SM2_ID`]; how many.
fn verify_requests(h: &TsmHarness<'_>, device: &Sm2PublicKey) -> Result<usize, Stop> {
    let mut n = 0;
    let device_id = ykt_envelope::key_id_sm2(device);
    for request in h.requests() {
        if request.msg_type == "EnrolReq" || request.cert_sn == device_id {
            ensure(request.sign_alg == SignAlg::Sm2Sm3, || {
                format!("{} signed with {:?}", request.msg_type, request.sign_alg)
            })?;
            let input = request
                .signing_input()
                .map_err(|e| Stop::Fail(format!("{}: {e}", request.msg_type)))?;
            let der = B64
                .decode(request.sign.as_bytes())
                .map_err(|_| Stop::Fail(format!("{}: sign is not base64", request.msg_type)))?;
            let sig = Sm2Signature::from_der(&der).map_err(|_| {
                Stop::Fail(format!(
                    "{}: sign is not a DER SM2 signature",
                    request.msg_type
                ))
            })?;
            device.verify(SM2_ID, &input, &sig).map_err(|_| {
                Stop::Fail(format!(
                    "{} does not verify under the device key with ID 1234567812345678",
                    request.msg_type
                ))
            })?;
            n += 1;
        }
    }
    ensure(n > 0, || "no request of the device recorded".into())?;
    Ok(n)
}

/// CL-AU-002: the sealed state holds no plaintext of the card number, SEID, device key or ids;
/// it opens with the passphrase to the same cards; a wrong passphrase and a flipped byte
/// (start, middle, end) are refused.
pub(super) fn sealed_state(h: &mut TsmHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    let (se, wallet, card, asn, _) = open(h, Management::Authorized)?;
    let key = SealKey::create(PASSPHRASE, h.rng());
    let sealed = wallet
        .state()
        .seal(&key, h.rng())
        .map_err(|e| Stop::Inconclusive(format!("sealing: {e}")))?;
    let mut plain: Vec<(&str, Vec<u8>)> = vec![
        ("card number", hex(&asn).into_bytes()),
        ("card number bytes", asn.to_vec()),
        ("SEID", hex(&se.seid()).into_bytes()),
        ("SEID bytes", se.seid().to_vec()),
        ("TSM id", h.tsm_id().as_bytes().to_vec()),
        ("card AID", hex(card.app_aid.as_bytes()).into_bytes()),
    ];
    if let Some(id) = &wallet.state().device_id {
        plain.push(("device id", id.as_bytes().to_vec()));
    }
    if let Some(device) = wallet.state().to_records().first()
        && device.data.len() == 32
    {
        plain.push(("device key", device.data.to_vec()));
    }
    let found: Vec<&str> = plain
        .iter()
        .filter(|(_, v)| {
            contains(&sealed, v) || contains(&sealed, hex(v).to_lowercase().as_bytes())
        })
        .map(|(n, _)| *n)
        .collect();
    ensure(found.is_empty(), || {
        format!("plaintext in the sealed state: {}", found.join(", "))
    })?;
    let (_, opened) = WalletState::open(PASSPHRASE, &sealed).map_err(|e| {
        Stop::Fail(format!(
            "the sealed state does not open with its passphrase: {e}"
        ))
    })?;
    ensure(opened.cards == wallet.state().cards, || {
        "the opened state's cards differ".into()
    })?;
    ensure(
        WalletState::open(b"another passphrase", &sealed).is_err(),
        || "the sealed state opens with a wrong passphrase".into(),
    )?;
    for at in [0, sealed.len() / 2, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[at] ^= 0x01;
        ensure(key.reopen(&bad).is_err(), || {
            format!("a byte flipped at {at} of {} was not noticed", sealed.len())
        })?;
    }
    Ok(format!(
        "{} bytes sealed: no plaintext of {} canaries; opens with the passphrase to the same cards; wrong passphrase and bytes flipped at start, middle and end refused",
        sealed.len(),
        plain.len()
    ))
}

/// CL-AU-003: requests the wallet sent, captured and sent again byte for byte, are refused and
/// change nothing (no second card, the balance as it was).
pub(super) fn replay(h: &mut TsmHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 300)?;
    let (mut se, mut wallet, card, _, _) = open(h, Management::Authorized)?;
    top_up(h, &mut se, &mut wallet, &card, amount)?;
    let captured: Vec<ykt_envelope::Envelope> = h
        .requests()
        .iter()
        .filter(|r| {
            matches!(
                r.msg_type.as_str(),
                "OpenCardReq" | "TopupOrderReq" | "TopupReq"
            )
        })
        .cloned()
        .collect();
    ensure(captured.len() >= 3, || {
        format!("only {} requests captured", captured.len())
    })
    .map_err(|_| Stop::Inconclusive("the requests to replay were not captured".into()))?;
    let before = h.tsm_cards(&wallet)?;
    let mut codes = Vec::new();
    for request in &captured {
        let (_, answer) = h.post_envelope(&request.msg_type, &request.to_vec())?;
        ensure(answer.code().is_some_and(|c| c != Code::Ok), || {
            format!("the replayed {} was answered 0000", request.msg_type)
        })?;
        codes.push(format!(
            "{} → {}",
            request.msg_type,
            answer.code().map_or("-", |c| c.as_str())
        ));
    }
    let after = h.tsm_cards(&wallet)?;
    ensure(after == before, || {
        "the replays changed the TSM's cards".into()
    })?;
    let on_se = se.purse(card.app_aid.as_bytes())?.map(|(_, b)| b);
    ensure(on_se == Some(amount), || {
        format!("the balance is {on_se:?} after the replays, was {amount}")
    })?;
    let _ = asn_of(&card)?;
    Ok(format!(
        "replayed byte for byte: {}; cards and balance unchanged",
        codes.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::masked_card_no_shown;

    #[test]
    fn the_card_number_mask_is_first_6_stars_last_4() {
        let full = "31041000000000000123";
        assert!(masked_card_no_shown("card 310410**********0123 ok", full));
        assert!(masked_card_no_shown("310410*0123", full));
        // No star, the wrong tail, the full number, or a short number: not the mask.
        assert!(!masked_card_no_shown("3104100123", full));
        assert!(!masked_card_no_shown("310410****0124", full));
        assert!(!masked_card_no_shown(full, full));
        assert!(!masked_card_no_shown("*0123", "12340123"));
    }
}
