//! Checkers of the terminal items that drive the validator modules of `ykt-terminal`: card
//! screening and the blacklist (`tap`, `lists`, `block`), grey-transaction recovery
//! (`validator`, `journal`, `recovery`), and the second-ticket priority rule (`ticket`).

use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules};
use ykt_purse::testing::{TEST_ASN, TEST_MASTER_DAMK, TEST_MASTER_DPK};
use ykt_terminal::block::{BlockFlow, BlockMode};
use ykt_terminal::commands;
use ykt_terminal::journal::MemoryStorage;
use ykt_terminal::lists::{CardBlacklist, IssuerWhitelist};
use ykt_terminal::purchase::PurchaseParams;
use ykt_terminal::recovery::{RecoveryOutcome, SoftwareProofVerifier};
use ykt_terminal::sam::{MasterKey, SoftwareSam};
use ykt_terminal::tap::{ScreenRefusal, Screening, TapFlow, screen};
use ykt_terminal::validator::{Record, TapOutcome, Validator};

use super::{Action, DATETIME, KEY_INDEX, Rule, TERMINAL, TeHarness};
use crate::params::Params;
use crate::verdict::{Stop, ensure};

/// The §8 test card's issuer prefix (EF15 bytes 0–3), whitelisted by the terminal under test.
const TEST_ISSUER: [u8; 4] = [0x01, 0x01, 0x10, 0x00];
/// Offset of EF15 in the test card's FCI: `6F 31 84 08 <AID> A5 25 9F08 01 02 9F0C 1E`.
const FCI_EF15: usize = 21;

fn master(key: [u8; 16]) -> MasterKey {
    MasterKey {
        index: KEY_INDEX,
        version: KEY_INDEX,
        key: PurseKey::from_bytes(key),
    }
}

fn whitelist(accept_test_issuer: bool) -> IssuerWhitelist {
    let entries = if accept_test_issuer {
        vec![TEST_ISSUER]
    } else {
        vec![[0x09, 0x09, 0x09, 0x09]]
    };
    IssuerWhitelist::from_unsorted(1, entries)
}

/// Taps the card (SELECT, EF1A, balance) and screens it; the terminal's decision.
fn tap_and_screen(
    t: &mut TeHarness,
    whitelist: &IssuerWhitelist,
    blacklist: &CardBlacklist,
) -> Result<(Screening, ykt_terminal::tap::CardSnapshot), Stop> {
    let (flow, first) = TapFlow::start(&commands::PURSE_AID);
    let snapshot = t
        .drive(flow, first)
        .map_err(|e| Stop::Fail(format!("the tap failed: {e}")))?;
    let screening = screen(&snapshot, whitelist, blacklist);
    t.note(format!("terminal screening: {screening:?}"));
    Ok((screening, snapshot))
}

/// TE-EP-BL-001.
pub(super) fn blacklist(t: &mut TeHarness, _p: Params<'_>) -> Result<String, Stop> {
    let listed = CardBlacklist::from_unsorted(7, vec![TEST_ASN.0]);
    let (screening, _) = tap_and_screen(t, &whitelist(true), &CardBlacklist::empty(7))?;
    ensure(screening == Screening::Admit, || {
        format!("a card not on the blacklist was screened {screening:?}")
    })?;
    let (screening, snapshot) = tap_and_screen(t, &whitelist(true), &listed)?;
    ensure(screening == Screening::Block, || {
        format!("the blacklisted card was screened {screening:?}, not Block")
    })?;
    let mut sam = SoftwareSam::new(TERMINAL, 1, vec![master(TEST_MASTER_DPK)], Sm4Rules::BRIEF)
        .with_maintenance_key(master(TEST_MASTER_DAMK), PurseAlgorithm::Tdes);
    let (flow, first) = BlockFlow::start(snapshot.card, BlockMode::Temporary, &mut sam);
    t.drive(flow, first)
        .map_err(|e| Stop::Fail(format!("the block flow failed: {e}")))?;
    ensure(t.sent_count(0x54) == 0 && t.sent_count(0x50) == 0, || {
        "the terminal started a purchase on the blacklisted card".into()
    })?;
    // The lower tester: the card accepted the block MAC and its application is now blocked.
    let select_sw = t.inspect(|s| s.sw(&commands::select(&commands::PURSE_AID)))?;
    ensure(select_sw == 0x6A81, || {
        format!("after the block, SELECT answers {select_sw:04X}, not 6A81")
    })?;
    Ok("not listed: admitted; listed: no purchase, APPLICATION BLOCK with a MAC the card accepts (SELECT → 6A81)".into())
}

/// TE-EP-BASE-002: issuer whitelist, application type, enabled flag.
pub(super) fn screening(t: &mut TeHarness, _p: Params<'_>) -> Result<String, Stop> {
    let none = CardBlacklist::empty(1);
    let (s, _) = tap_and_screen(t, &whitelist(false), &none)?;
    ensure(
        s == Screening::Refuse(ScreenRefusal::IssuerNotAccepted),
        || format!("an issuer off the whitelist was screened {s:?}"),
    )?;
    let mut seen = vec!["issuer off the whitelist"];
    for (index, mask, what, expected) in [
        (
            FCI_EF15 + 8,
            0x01,
            "application type 03",
            ScreenRefusal::NotAnEPurse(0x03),
        ),
        (
            FCI_EF15 + 9,
            0x01,
            "application flag 00",
            ScreenRefusal::NotEnabled(0x00),
        ),
    ] {
        t.clear_script();
        t.script(Rule {
            ins: 0xA4,
            nth: t.sent_count(0xA4) + 1,
            action: Action::Corrupt { index, mask },
        });
        let (s, _) = tap_and_screen(t, &whitelist(true), &none)?;
        ensure(s == Screening::Refuse(expected), || {
            format!("a card with {what} was screened {s:?}")
        })?;
        seen.push(what);
    }
    ensure(t.sent_count(0x50) == 0 && t.sent_count(0x54) == 0, || {
        "the terminal sent INITIALIZE or DEBIT to a refused card".into()
    })?;
    Ok(format!(
        "refused before any INITIALIZE: {}",
        seen.join(", ")
    ))
}

/// TE-EP-GREY-001: the card leaves after DEBIT; the grey entry is journaled before DEBIT; the
/// re-tap recovers with GET TRANSACTION PROVE and does not debit again.
pub(super) fn grey_recovery(t: &mut TeHarness, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 250)?;
    t.inspect(|s| {
        s.select()?;
        s.ensure_balance(amount)
    })?;
    let before = t.inspect(|s| {
        s.select()?;
        s.balance()
    })?;
    let storage_fault = |e: ykt_terminal::journal::JournalError<_>| {
        Stop::Inconclusive(format!("the terminal's journal failed: {e}"))
    };
    let mut validator = Validator::open(MemoryStorage::new()).map_err(storage_fault)?;
    let mut sam = SoftwareSam::new(
        TERMINAL,
        0x200,
        vec![master(TEST_MASTER_DPK)],
        Sm4Rules::BRIEF,
    );
    let mut verifier = SoftwareProofVerifier::new(vec![master(TEST_MASTER_DPK)], Sm4Rules::BRIEF);
    let params = PurchaseParams {
        aid: commands::PURSE_AID.to_vec(),
        key_index: KEY_INDEX,
        amount,
        datetime: DATETIME,
        composite: None,
    };
    t.script(Rule {
        ins: 0x54,
        nth: 1,
        action: Action::RemoveAfter,
    });
    let tap1 = t
        .with_card(|transmit| validator.purchase(params.clone(), &mut sam, &mut verifier, transmit))
        .map_err(storage_fault)?;
    t.note(format!("tap 1: {:?}", tap1.outcome));
    let TapOutcome::Grey { seq, .. } = tap1.outcome else {
        return Err(Stop::Fail(format!(
            "with the DEBIT answer lost the tap ended {:?}, not grey",
            tap1.outcome
        )));
    };
    ensure(validator.open_grey() == vec![seq], || {
        "no open grey entry in the terminal's journal after the lost DEBIT".into()
    })?;
    t.clear_script();
    t.retap()?;
    let debits_before = t.sent_count(0x54);
    let tap2 = t
        .with_card(|transmit| validator.purchase(params, &mut sam, &mut verifier, transmit))
        .map_err(storage_fault)?;
    t.note(format!(
        "tap 2: recovered {:?}, outcome {:?}",
        tap2.recovered, tap2.outcome
    ));
    let Some((rseq, RecoveryOutcome::Purchase(record))) = &tap2.recovered else {
        return Err(Stop::Fail(format!(
            "the re-tap did not recover the purchase: {:?}",
            tap2.recovered
        )));
    };
    ensure(*rseq == seq, || "recovery resolved another entry".into())?;
    ensure(
        matches!(&tap2.outcome, TapOutcome::Recovered { record: Record::Purchase(r), .. } if r == record),
        || {
            format!(
                "the re-tap ended {:?}, not with the recovered record",
                tap2.outcome
            )
        },
    )?;
    ensure(t.sent_count(0x5A) >= 1, || {
        "the re-tap sent no GET TRANSACTION PROVE".into()
    })?;
    ensure(t.sent_count(0x54) == debits_before, || {
        "the re-tap debited again".into()
    })?;
    ensure(validator.open_grey().is_empty(), || {
        "the grey entry stayed open".into()
    })?;
    let after = t.inspect(|s| {
        s.select()?;
        s.balance()
    })?;
    ensure(after == before - amount, || {
        format!("card balance {before} → {after}: charged other than once")
    })?;
    ensure(super::items::purchase_tac_ok(record)?, || {
        "the recovered record's TAC does not verify".into()
    })?;
    Ok(format!(
        "grey entry {seq} open after the lost DEBIT answer; re-tap: PROVE, record completed with a TAC that verifies; one debit ({before} → {after})"
    ))
}

/// A flat-fare bus validator of line 1 (fare 2.00) at the terminal under test.
fn bus_site() -> ykt_terminal::transit::Site {
    use ykt_terminal::transit::{GateRole, Site, StationRef};
    Site {
        terminal_id: TERMINAL,
        city: [0x10, 0x00],
        institution: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
        operator: [0x00, 0x01],
        station: StationRef::new(1, 1),
        vehicle: *b"BUS00001",
        direction: 0x00,
        industry: ykt_terminal::transit::industry::BUS,
        role: GateRole::Single,
    }
}

/// TE-EP-BASE-001: the application start date (and expiry) at a validator. The §8 test card is
/// valid 2024-01-01 to 2034-12-31.
pub(super) fn start_date(t: &mut TeHarness, p: Params<'_>) -> Result<String, Stop> {
    use ykt_terminal::transit::{BcdDateTime, Decision, FareTable, RefuseReason, TransitConfig};
    let fare = p.u32("fare", 200)?;
    let mut fares = FareTable::new();
    fares
        .flat(1, fare)
        .map_err(|e| Stop::Inconclusive(format!("fare table: {e}")))?;
    fares.set_max_fare(fare);
    let config = TransitConfig::proposed(fares);
    let site = bus_site();
    let at = |bytes: [u8; 7]| {
        BcdDateTime::new(bytes).map_err(|e| Stop::Inconclusive(format!("date-time: {e}")))
    };
    t.inspect(|s| {
        s.select()?;
        s.ensure_balance(fare)
    })?;
    let mut seen = Vec::new();
    for (now, expected) in [
        (
            [0x20, 0x23, 0x12, 0x31, 0x23, 0x59, 0x00],
            Some(RefuseReason::NotYetValid),
        ),
        (
            [0x20, 0x35, 0x01, 0x01, 0x00, 0x00, 0x01],
            Some(RefuseReason::Expired),
        ),
        ([0x20, 0x24, 0x01, 0x01, 0x06, 0x00, 0x00], None),
    ] {
        let now = at(now)?;
        let (flow, first) = TapFlow::start(&commands::PURSE_AID);
        let snapshot = t
            .drive(flow, first)
            .map_err(|e| Stop::Fail(format!("the tap failed: {e}")))?;
        let decision = snapshot.decide(&site, now, &config);
        t.note(format!("terminal decision at {now:?}: {decision:?}"));
        match (expected, &decision) {
            (Some(reason), Decision::Refuse(r)) if *r == reason => {
                seen.push(format!("{reason:?}"));
            }
            (None, Decision::Single(charge)) => {
                let params = charge.plain_purchase_params(KEY_INDEX, now);
                let mut sam = SoftwareSam::new(
                    TERMINAL,
                    0x300,
                    vec![master(TEST_MASTER_DPK)],
                    Sm4Rules::BRIEF,
                );
                let (flow, first) = ykt_terminal::purchase::PurchaseFlow::start(params, &mut sam);
                t.drive(flow, first).map_err(|e| {
                    Stop::Fail(format!("the purchase on the start date failed: {e}"))
                })?;
                seen.push("accepted on the start date".into());
            }
            _ => {
                return Err(Stop::Fail(format!(
                    "at {now:?} the terminal decided {decision:?}, expected {expected:?}"
                )));
            }
        }
    }
    ensure(t.sent_count(0x54) == 1, || {
        format!(
            "{} DEBITs sent, expected one (on the valid date only)",
            t.sent_count(0x54)
        )
    })?;
    Ok(format!(
        "{}; no DEBIT for the refused taps",
        seen.join(", ")
    ))
}

/// TE-EP-GREY-002: the card leaves after DEBIT at terminal A, rides at terminal B (which knows
/// nothing of A's grey entry), then comes back to A. A must not charge again, must leave its
/// entry grey (the card's proof is now B's transaction), and must upload it flagged grey.
pub(super) fn grey_elsewhere(t: &mut TeHarness, p: Params<'_>) -> Result<String, Stop> {
    use ykt_terminal::export::{RecordStatus, settlement_records};
    let amount = p.u32("amount", 250)?;
    t.inspect(|s| {
        s.select()?;
        s.ensure_balance(3 * amount)
    })?;
    let before = t.inspect(|s| {
        s.select()?;
        s.balance()
    })?;
    let storage_fault = |e: ykt_terminal::journal::JournalError<_>| {
        Stop::Inconclusive(format!("a terminal's journal failed: {e}"))
    };
    let params = PurchaseParams {
        aid: commands::PURSE_AID.to_vec(),
        key_index: KEY_INDEX,
        amount,
        datetime: DATETIME,
        composite: None,
    };
    let keys = || vec![master(TEST_MASTER_DPK)];
    let mut a = Validator::open(MemoryStorage::new()).map_err(storage_fault)?;
    let mut sam_a = SoftwareSam::new(TERMINAL, 0x400, keys(), Sm4Rules::BRIEF);
    let mut verifier_a = SoftwareProofVerifier::new(keys(), Sm4Rules::BRIEF);
    let other = [0x00, 0x00, 0x00, 0x00, 0x20, 0x02];
    let mut b = Validator::open(MemoryStorage::new()).map_err(storage_fault)?;
    let mut sam_b = SoftwareSam::new(other, 0x900, keys(), Sm4Rules::BRIEF);
    let mut verifier_b = SoftwareProofVerifier::new(keys(), Sm4Rules::BRIEF);

    t.script(Rule {
        ins: 0x54,
        nth: 1,
        action: Action::RemoveAfter,
    });
    t.note("terminal A: purchase, the card leaves after DEBIT");
    let tap = t
        .with_card(|tx| a.purchase(params.clone(), &mut sam_a, &mut verifier_a, tx))
        .map_err(storage_fault)?;
    let TapOutcome::Grey { seq, .. } = tap.outcome else {
        return Err(Stop::Fail(format!(
            "terminal A: {:?}, not grey",
            tap.outcome
        )));
    };
    t.clear_script();
    t.retap()?;
    t.note("terminal B: the next ride");
    let tap = t
        .with_card(|tx| b.purchase(params.clone(), &mut sam_b, &mut verifier_b, tx))
        .map_err(storage_fault)?;
    ensure(matches!(tap.outcome, TapOutcome::Completed { .. }), || {
        format!("terminal B: {:?}, not completed", tap.outcome)
    })?;
    t.retap()?;
    t.note("terminal A: the card comes back (late re-tap)");
    let debits = t.sent_count(0x54);
    let tap = t
        .with_card(|tx| a.purchase(params.clone(), &mut sam_a, &mut verifier_a, tx))
        .map_err(storage_fault)?;
    t.note(format!(
        "terminal A: recovered {:?}, outcome {:?}",
        tap.recovered, tap.outcome
    ));
    ensure(
        matches!(&tap.recovered, Some((s, RecoveryOutcome::LeftGrey(_))) if *s == seq),
        || {
            format!(
                "terminal A did not leave its entry grey: {:?}",
                tap.recovered
            )
        },
    )?;
    ensure(t.sent_count(0x54) == debits, || {
        "terminal A charged again on the late re-tap".into()
    })?;
    let after = t.inspect(|s| {
        s.select()?;
        s.balance()
    })?;
    ensure(after == before - 2 * amount, || {
        format!("card balance {before} → {after}, expected two rides")
    })?;
    let upload = settlement_records(a.journal().entries());
    ensure(
        upload
            .iter()
            .any(|r| r.seq == seq && r.status == RecordStatus::Grey && r.tac.is_none()),
        || {
            format!(
                "terminal A's upload ({} records) does not flag entry {seq} grey",
                upload.len()
            )
        },
    )?;
    Ok(format!(
        "A: grey entry {seq}; B: completed; A on the late re-tap: left grey, no second charge; A's upload flags it grey (balance {before} → {after})"
    ))
}

/// What the terminal sent in one ride, from the lower tester's log: the AIDs it selected, in
/// order, and the amount of its INITIALIZE FOR PURCHASE.
fn ride_commands(sent: &[ykt_apdu::CommandApdu]) -> (Vec<Vec<u8>>, Option<u32>) {
    let selects = sent
        .iter()
        .filter(|c| c.ins == 0xA4)
        .map(|c| c.data.clone())
        .collect();
    let amount = sent
        .iter()
        .find(|c| c.ins == 0x50 && c.p1 == 0x01)
        .and_then(|c| c.data.get(1..5))
        .and_then(|a| <[u8; 4]>::try_from(a).ok())
        .map(u32::from_be_bytes);
    (selects, amount)
}

/// The ticket-type byte (2, L) of the newest EF18 record of the application `aid`.
fn last_ticket_type(t: &mut TeHarness, aid: &[u8]) -> Result<u8, Stop> {
    t.inspect(|s| {
        s.use_aid(aid);
        s.select()?;
        let r = s.ok(
            &ykt_terminal::tap::read_record(0x18, 1, 23),
            "READ RECORD EF18 #1",
        )?;
        r.get(2)
            .copied()
            .ok_or_else(|| Stop::Fail(format!("EF18 record of {} bytes", r.len())))
    })
}

/// TE-T2-001: the terminal's second-ticket priority rule (`ykt_terminal::ticket`, L) on a card
/// with both products: `rides` rides from the second ticket, then the fare from the e-purse.
pub(super) fn second_ticket(t: &mut TeHarness, p: Params<'_>) -> Result<String, Stop> {
    use ykt_purse::{EP_AID, SECOND_TICKET_AID, TICKET_TYPE_EPURSE, TICKET_TYPE_SECOND};
    use ykt_terminal::ticket::{Choice, ChoiceFlow, RIDE};

    let fare = p.u32("fare", 200)?;
    let rides = p.u32("rides", 2)?;
    let ep_before = t.inspect(|s| {
        s.use_aid(&EP_AID);
        s.select()?;
        s.ensure_balance(fare)?;
        s.balance()
    })?;
    t.inspect(|s| {
        s.use_aid(&SECOND_TICKET_AID);
        s.set_max_balance(ykt_purse::PurseProfile::SECOND_TICKET.max_balance);
        s.select()?;
        let b = s.balance()?;
        ensure(b <= rides, || {
            format!("the fresh second ticket already holds {b} rides")
        })?;
        if b < rides {
            s.load(rides - b)?;
        }
        Ok(())
    })?;
    let storage_fault = |e: ykt_terminal::journal::JournalError<_>| {
        Stop::Inconclusive(format!("the terminal's journal failed: {e}"))
    };
    let mut validator = Validator::open(MemoryStorage::new()).map_err(storage_fault)?;
    let mut sam = SoftwareSam::new(
        TERMINAL,
        0x300,
        vec![master(TEST_MASTER_DPK)],
        Sm4Rules::BRIEF,
    );
    let mut verifier = SoftwareProofVerifier::new(vec![master(TEST_MASTER_DPK)], Sm4Rules::BRIEF);
    for ride in 0..=rides {
        let on_t2 = ride < rides;
        let mark = t.sent().len();
        let (flow, first) = ChoiceFlow::start();
        let choice = t
            .drive(flow, first)
            .map_err(|e| Stop::Fail(format!("ride {ride}: the choice failed: {e}")))?;
        t.note(format!("ride {ride}: terminal chose {choice:?}"));
        let params = choice.purchase_params(fare, KEY_INDEX, DATETIME, None);
        let tap = t
            .with_card(|transmit| validator.purchase(params, &mut sam, &mut verifier, transmit))
            .map_err(storage_fault)?;
        t.note(format!("ride {ride}: {:?}", tap.outcome));
        let TapOutcome::Completed {
            record: Record::Purchase(record),
            ..
        } = &tap.outcome
        else {
            return Err(Stop::Fail(format!(
                "ride {ride} did not complete: {:?}",
                tap.outcome
            )));
        };
        ensure(super::items::purchase_tac_ok(record)?, || {
            format!("ride {ride}: the record's TAC does not verify")
        })?;
        let (selects, amount) = ride_commands(t.sent().get(mark..).unwrap_or_default());
        ensure(
            selects.first().map(Vec::as_slice) == Some(&SECOND_TICKET_AID[..]),
            || format!("ride {ride}: the first SELECT was not of the second ticket"),
        )?;
        let (paid_by, want_amount): (&[u8], u32) = if on_t2 {
            (&SECOND_TICKET_AID, RIDE)
        } else {
            (&EP_AID, fare)
        };
        ensure(
            matches!(choice, Choice::SecondTicket { .. }) == on_t2,
            || format!("ride {ride}: the terminal chose {choice:?}"),
        )?;
        ensure(selects.last().map(Vec::as_slice) == Some(paid_by), || {
            format!(
                "ride {ride}: the purchase ran on {}",
                hex_aid(selects.last())
            )
        })?;
        ensure(amount == Some(want_amount), || {
            format!("ride {ride}: INITIALIZE FOR PURCHASE of {amount:?}, not {want_amount}")
        })?;
        let ticket_type = last_ticket_type(t, paid_by)?;
        let want_type = if on_t2 {
            TICKET_TYPE_SECOND
        } else {
            TICKET_TYPE_EPURSE
        };
        ensure(ticket_type == want_type, || {
            format!("ride {ride}: EF18 ticket type {ticket_type:02X}, not {want_type:02X}")
        })?;
    }
    let (ep_after, t2_after) = t.inspect(|s| {
        s.use_aid(&EP_AID);
        s.select()?;
        let ep = s.balance()?;
        s.use_aid(&SECOND_TICKET_AID);
        s.select()?;
        Ok((ep, s.balance()?))
    })?;
    ensure(ep_after == ep_before - fare && t2_after == 0, || {
        format!(
            "balances after: e-purse {ep_before} → {ep_after}, second ticket {rides} → {t2_after}"
        )
    })?;
    Ok(format!(
        "{rides} rides from the second ticket (SELECT of it first, INITIALIZE of {RIDE}, EF18 ticket type {TICKET_TYPE_SECOND:02X}, e-purse untouched), then with none left the fallback SELECT of the e-purse and {fare} from it (ticket type {TICKET_TYPE_EPURSE:02X}); every TAC verifies"
    ))
}

fn hex_aid(aid: Option<&Vec<u8>>) -> String {
    aid.map_or_else(|| "nothing".into(), |a| crate::transcript::hex(a))
}
