//! Tearing items (simulator only): the power is cut during each persistent write of an
//! operation in turn, on copies of the same card, and the recovered card must show the state
//! before or the state after the operation, never a mix; its proof data must then be the
//! committed transaction's.

use ykt_purse::{EP_AID, SECOND_TICKET_AID};

use super::{Done, SeHarness, State};
use crate::params::Params;
use crate::target::{SimCard, sim_from_state};
use crate::verdict::{Stop, ensure};

/// Entropy seed of the card copies (all copies draw the same randoms).
const COPY_SEED: u64 = 0x7EA2;
/// Upper bound on cut points per operation (each operation has a few dozen writes).
const MAX_CUTS: u64 = 400;

type Op = fn(&mut SeHarness<'_>) -> Result<Done, Stop>;

fn states(s: &mut SeHarness<'_>, aids: &[&[u8]]) -> Result<Vec<State>, Stop> {
    let mut out = Vec::new();
    for aid in aids {
        s.use_aid(aid);
        out.push(s.snapshot()?);
    }
    Ok(out)
}

fn copy(state: &[u8]) -> Result<SimCard, Stop> {
    sim_from_state(state, COPY_SEED)
        .map(SimCard)
        .map_err(|e| Stop::Inconclusive(e.to_string()))
}

fn run_op(s: &mut SeHarness<'_>, aid: &[u8], op: Op) -> Result<Done, Stop> {
    s.use_aid(aid);
    s.select()?;
    op(s)
}

/// Cuts `op` (on `aid`) at every write; returns the number of cut points.
fn tear_every_write(
    s: &mut SeHarness<'_>,
    name: &str,
    aid: &[u8],
    aids: &[&[u8]],
    op: Op,
) -> Result<u64, Stop> {
    let base = s
        .sim()
        .ok_or_else(|| Stop::Inconclusive("tearing needs the simulator".into()))?
        .save_state();
    // Reference runs: the state before, the state after, and the committed transaction.
    let mut c = copy(&base)?;
    let before = states(&mut SeHarness::new(&mut c), aids)?;
    let mut c = copy(&base)?;
    let (done, after) = {
        let mut h = SeHarness::new(&mut c);
        let done = run_op(&mut h, aid, op)?;
        (done, states(&mut h, aids)?)
    };
    for (cuts, n) in (1..=MAX_CUTS).enumerate() {
        let cuts = cuts as u64;
        let mut c = copy(&base)?;
        let mut h = SeHarness::new(&mut c);
        h.set_quiet(true);
        h.use_aid(aid);
        h.select()?;
        if let Some(card) = h.sim() {
            card.tear().arm_at(n);
        }
        match op(&mut h) {
            Ok(_) => {
                let still_armed = h.sim().is_some_and(|c| c.tear().is_armed());
                if still_armed {
                    s.note(format!(
                        "{name}: {cuts} cut points, each recovered to the old or the new state"
                    ));
                    return Ok(cuts);
                }
                return Err(Stop::Fail(format!(
                    "{name}: the power cut at write {n} was not reported to the terminal"
                )));
            }
            Err(Stop::PowerLost) => {}
            Err(other) => return Err(other),
        }
        if let Some(card) = h.sim() {
            card.tear().disarm();
        }
        h.reset()?;
        let now = states(&mut h, aids)?;
        if now == before {
            continue;
        }
        ensure(now == after, || {
            let diffs: Vec<String> = now.iter().zip(&after).map(|(a, b)| b.diff(a)).collect();
            format!(
                "{name}: cut at write {n} left a state that is neither before nor after ({})",
                diffs.join(" / ")
            )
        })?;
        // The new state: PROVE must give the committed MAC2 and TAC.
        let mut proof = done.mac2.to_vec();
        proof.extend_from_slice(&done.tac);
        let i = aids.iter().position(|a| *a == aid).unwrap_or(0);
        ensure(now[i].prove == Some((0x9000, proof)), || {
            format!(
                "{name}: after the cut at write {n}, PROVE does not give the committed MAC2‖TAC"
            )
        })?;
    }
    Err(Stop::Inconclusive(format!(
        "{name}: still cutting after {MAX_CUTS} writes"
    )))
}

/// Cuts `op` at write `n`, then the recovery at power-on at each of its writes in turn; every
/// recovered state must be the one before or after `op`. Returns the number of recovery cuts.
fn tear_recovery_at(
    base: &[u8],
    n: u64,
    aid: &[u8],
    aids: &[&[u8]],
    op: Op,
    before: &[State],
    after: &[State],
) -> Result<Option<u64>, Stop> {
    for m in 1..=MAX_CUTS {
        let mut c = copy(base)?;
        let mut h = SeHarness::new(&mut c);
        h.set_quiet(true);
        h.use_aid(aid);
        h.select()?;
        if let Some(card) = h.sim() {
            card.tear().arm_at(n);
        }
        match op(&mut h) {
            Ok(_) => return Ok(None),
            Err(Stop::PowerLost) => {}
            Err(other) => return Err(other),
        }
        let recovery_torn = match h.sim() {
            Some(card) => {
                card.tear().arm_at(m);
                card.power_on();
                let torn = !card.is_powered();
                if !torn {
                    card.tear().disarm();
                    return Ok(Some(m - 1));
                }
                torn
            }
            None => return Err(Stop::Inconclusive("tearing needs the simulator".into())),
        };
        debug_assert!(recovery_torn);
        h.reset()?;
        let now = states(&mut h, aids)?;
        ensure(now.as_slice() == before || now.as_slice() == after, || {
            format!(
                "cut at write {n}, then at recovery write {m}: the state is neither before nor after"
            )
        })?;
    }
    Err(Stop::Inconclusive(format!(
        "recovery still writing after {MAX_CUTS} cuts"
    )))
}

/// SE-EP-TEAR-002: a power cut during the recovery of a torn purchase.
pub(super) fn tear_recovery(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    s.select()?;
    s.ensure_balance(5_000)?;
    let base = s
        .sim()
        .ok_or_else(|| Stop::Inconclusive("tearing needs the simulator".into()))?
        .save_state();
    let aids: [&[u8]; 1] = [&EP_AID];
    let mut c = copy(&base)?;
    let before = states(&mut SeHarness::new(&mut c), &aids)?;
    let mut c = copy(&base)?;
    let after = {
        let mut h = SeHarness::new(&mut c);
        run_op(&mut h, &EP_AID, purchase)?;
        states(&mut h, &aids)?
    };
    let (mut points, mut cuts) = (0u64, 0u64);
    for n in 1..=MAX_CUTS {
        match tear_recovery_at(&base, n, &EP_AID, &aids, purchase, &before, &after)? {
            None => {
                s.note(format!(
                    "{points} purchase cut points with a recovery to cut, {cuts} recovery cuts"
                ));
                ensure(points > 0, || {
                    "no cut point left a journal to recover".into()
                })?;
                return Ok(format!(
                    "{cuts} power cuts during the recovery of {points} torn purchases: always the old or the new state"
                ));
            }
            Some(m) => {
                if m > 0 {
                    points += 1;
                }
                cuts += m;
            }
        }
    }
    Err(Stop::Inconclusive(format!(
        "still cutting after {MAX_CUTS} writes"
    )))
}

fn load(s: &mut SeHarness<'_>) -> Result<Done, Stop> {
    s.load(1000)
}

fn purchase(s: &mut SeHarness<'_>) -> Result<Done, Stop> {
    s.purchase(300)
}

fn composite(s: &mut SeHarness<'_>) -> Result<Done, Stop> {
    let rec = super::ep::ef1a_record(0x02, 0x01, 0x4242);
    let hist = super::ep::ef1e_record(0x03, 200);
    s.composite(200, &[(0x02, 0xD0, rec), (0x00, 0xF0, hist)])
}

fn ride(s: &mut SeHarness<'_>) -> Result<Done, Stop> {
    s.purchase(1)
}

/// SE-EP-TEAR-001.
pub(super) fn tear_load_purchase(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    s.select()?;
    s.ensure_balance(5_000)?;
    let aids: [&[u8]; 1] = [&EP_AID];
    let mut total = 0;
    for (name, op) in [
        ("load", load as Op),
        ("purchase", purchase as Op),
        ("composite", composite as Op),
    ] {
        total += tear_every_write(s, name, &EP_AID, &aids, op)?;
    }
    Ok(format!(
        "{total} power cuts (every persistent write of load, purchase, composite): always old or new state; PROVE gives the committed values"
    ))
}

/// SE-T2-TEAR-001.
pub(super) fn tear_t2_debit(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    s.select()?;
    s.ensure_balance(1_000)?;
    s.use_aid(&SECOND_TICKET_AID);
    s.set_max_balance(ykt_purse::PurseProfile::SECOND_TICKET.max_balance);
    s.select()?;
    s.ensure_balance(10)?;
    let aids: [&[u8]; 2] = [&EP_AID, &SECOND_TICKET_AID];
    let n = tear_every_write(s, "second-ticket ride", &SECOND_TICKET_AID, &aids, ride)?;
    Ok(format!(
        "{n} power cuts during a second-ticket debit: atomic, e-purse untouched, PROVE gives the committed TAC"
    ))
}
