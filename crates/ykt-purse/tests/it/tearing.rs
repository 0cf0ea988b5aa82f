//! Power cut at every persistent write of CREDIT, DEBIT and composite DEBIT, from several starting
//! states, in both ticket types (SE-EP-TEAR-001, SE-T2-TEAR-001).
//!
//! For each starting state and operation: a reference run (no tear) gives the "after" state and
//! the committed TAC/MAC2 and counts the page programs W of the final command; then, for every
//! n in 1..=W, a copy of the card (re-created from the saved state through the AppletFactory) runs
//! the same operation with power cut during the n-th write, is powered on again (journal
//! recovery), and must be exactly in the before or the after state, with balance, counters, EF18,
//! EF1A/EF1E and proof data agreeing with each other and with the money conserved.

use ykt_card::{Card, CardError};
use ykt_crypto::purse::{PurseAlgorithm, tac};
use ykt_purse::testing::{
    TEST_ASN, TEST_SECOND_TICKET_ASN, danger_test_card, danger_test_card_with_second_ticket,
    test_card_3des, test_card_data, test_issuer,
};
use ykt_purse::{EP_AID, PurseProfile, SECOND_TICKET_AID};

use crate::support::*;

#[derive(Clone, Copy, Debug)]
enum Op {
    Load(u32),
    Purchase(u32),
    Composite(u32),
}

/// Sends the INITIALIZE (and cache) of `op`; returns the final command and its expected response.
fn start(card: &mut Card, keys: &Keys, op: Op, marker: u8) -> (Vec<u8>, Vec<u8>) {
    match op {
        Op::Load(amount) => {
            let (r, s) = send(card, &init_load_cmd(amount));
            assert_eq!(s, 0x9000);
            let old = u32::from_be_bytes(r[0..4].try_into().unwrap());
            let online = u16::from_be_bytes([r[4], r[5]]);
            let mut ti = (old + amount).to_be_bytes().to_vec();
            ti.extend_from_slice(&online.to_be_bytes());
            ti.extend_from_slice(&amount.to_be_bytes());
            ti.push(0x02);
            ti.extend_from_slice(&TERMINAL);
            ti.extend_from_slice(&DATE);
            ti.extend_from_slice(&TIME);
            (
                credit_cmd(keys, &r, amount),
                tac(&keys.alg, &keys.dtk, &ti).to_vec(),
            )
        }
        Op::Purchase(amount) | Op::Composite(amount) => {
            let composite = matches!(op, Op::Composite(_));
            let (r, s) = send(card, &init_purchase_cmd(amount, composite));
            assert_eq!(s, 0x9000);
            if composite {
                for c in composite_cache(marker) {
                    assert_eq!(sw(card, &c), 0x9000);
                }
            }
            let (c, mac2, t) = debit_cmd(keys, &r, amount, 0x0102_0304, composite);
            (c, [t, mac2].concat())
        }
    }
}

/// The amount an operation adds to the balance per unit of its counter's advance.
fn deltas(op: Op) -> (i64, i64) {
    match op {
        Op::Load(a) => (i64::from(a), 0),
        Op::Purchase(a) | Op::Composite(a) => (0, -i64::from(a)),
    }
}

/// Checks that `got` agrees with itself and is exactly `before` or `after`; returns true for after.
fn check_consistent(
    got: &Snapshot,
    before: &Snapshot,
    after: &Snapshot,
    op: Op,
    proof: &[u8],
) -> bool {
    let d_online = i64::from(got.online) - i64::from(before.online);
    let d_offline = i64::from(got.offline) - i64::from(before.offline);
    let (per_load, per_purchase) = deltas(op);
    // Conservation: balance + spent − loaded is unchanged.
    assert_eq!(
        i64::from(got.balance),
        i64::from(before.balance) + d_online * per_load + d_offline * per_purchase,
        "money created or lost: {got:?}"
    );
    let committed = d_online + d_offline;
    assert!(
        (d_online == 0 || d_online == 1) && (d_offline == 0 || d_offline == 1) && committed <= 1,
        "counters moved oddly: {got:?}"
    );
    if committed == 1 {
        // EF18 record 1 is this transaction, and PROVE gives the committed values.
        let r = &got.ef18[0];
        let (ty, ctr) = match op {
            Op::Load(_) => (0x02, before.online),
            Op::Purchase(_) => (0x06, before.offline),
            Op::Composite(_) => (0x09, before.offline),
        };
        assert_eq!(u16::from_be_bytes([r[0], r[1]]), ctr);
        assert_eq!(r[9], ty);
        let (pty, pctr, resp) = got.prove.clone().expect("proof data");
        assert_eq!((pty, pctr), (ty, ctr));
        // PROVE answers MAC2 || TAC; the DEBIT answered TAC || MAC2, CREDIT only TAC.
        assert_eq!(&resp[4..], &proof[..4], "TAC from PROVE");
        if proof.len() == 8 {
            assert_eq!(&resp[..4], &proof[4..], "MAC2 from PROVE");
        }
        assert_eq!(got, after, "committed but not exactly the after state");
        true
    } else {
        assert_eq!(
            got, before,
            "not committed but not exactly the before state"
        );
        false
    }
}

/// Tears `op` at every write of its final command starting from `state`; returns the number of
/// tear points. With `recovery_tears`, also cuts power at every write of the recovery that follows
/// a committed tear.
fn tear_every_write(
    state: &[u8],
    aid: &[u8],
    others: &[&[u8]],
    keys: &Keys,
    op: Op,
    recovery_tears: bool,
) -> usize {
    // Reference run.
    let mut reference = reload(state);
    let before = snapshot(&mut reference, aid);
    let others_before: Vec<Snapshot> = others.iter().map(|a| snapshot(&mut reference, a)).collect();
    let mut reference = reload(state);
    select_aid(&mut reference, aid);
    let (last, expected) = start(&mut reference, keys, op, 0x5A);
    let w0 = reference.persistent_writes();
    let (resp, s) = send(&mut reference, &last);
    assert_eq!((s, &resp), (0x9000, &expected), "{op:?} reference run");
    let writes = reference.persistent_writes() - w0;
    assert!(writes > 0);
    eprintln!("{op:?}: {writes} writes");
    let after = snapshot(&mut reference, aid);
    assert_ne!(before, after);

    let mut points = 0;
    let mut seen_before = false;
    let mut seen_after = false;
    for n in 1..=writes + 1 {
        let mut card = reload(state);
        select_aid(&mut card, aid);
        let (last, _) = start(&mut card, keys, op, 0x5A);
        card.tear().arm_at(n);
        let result = card.transmit(&last);
        if n == writes + 1 {
            // One write more than the command makes: it completes untorn.
            assert_eq!(result.unwrap()[..expected.len()], expected[..]);
            continue;
        }
        points += 1;
        assert_eq!(
            result,
            Err(CardError::PowerLost),
            "{op:?} tear at write {n}/{writes}"
        );
        assert!(!card.is_powered());
        if recovery_tears {
            // Cut the recovery too, at each of its writes in turn, until one recovery completes.
            let mut m = 1;
            loop {
                card.tear().arm_at(m);
                card.power_on();
                if card.is_powered() {
                    card.tear().disarm();
                    break;
                }
                points += 1;
                m += 1;
            }
        } else {
            card.power_on();
        }
        assert!(card.is_powered());
        let got = snapshot(&mut card, aid);
        let committed = check_consistent(&got, &before, &after, op, &expected);
        for (a, b) in others.iter().zip(&others_before) {
            assert_eq!(&snapshot(&mut card, a), b, "another instance changed");
        }
        if committed {
            seen_after = true;
        } else {
            // The terminal retries from the start: the card goes on working.
            seen_before = true;
            select_aid(&mut card, aid);
            let (last, _) = start(&mut card, keys, op, 0x6B);
            assert_eq!(send(&mut card, &last).1, 0x9000);
        }
    }
    assert!(
        seen_before && seen_after,
        "{op:?}: tears hit both sides of the commit"
    );
    points
}

/// Runs `ops` (untorn) on the selected purse to reach a starting state.
fn run_ops(card: &mut Card, keys: &Keys, ops: &[Op]) {
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Load(a) => {
                load(card, keys, a);
            }
            Op::Purchase(a) => {
                purchase(card, keys, a, i as u32);
            }
            Op::Composite(a) => {
                purchase_with(card, keys, a, i as u32, &composite_cache(i as u8));
            }
        }
    }
}

/// Starting states of the e-purse: (name, operations from a fresh test card).
fn starting_states() -> Vec<(&'static str, Vec<Op>)> {
    let several = vec![
        Op::Load(5000),
        Op::Purchase(120),
        Op::Composite(300),
        Op::Load(700),
        Op::Purchase(1),
    ];
    // 9 records in EF18 (the next one fills it), then 10 (the next one overwrites the oldest),
    // and 10 composite records so EF1E wraps as well.
    let mut nine = vec![Op::Load(20000)];
    nine.extend([Op::Purchase(10); 8]);
    let mut wrap = vec![Op::Load(20000)];
    wrap.extend([Op::Composite(10); 10]);
    wrap.push(Op::Purchase(10));
    vec![
        ("fresh", vec![]),
        ("several", several),
        ("ef18 nine records", nine),
        ("ef18 and ef1e wrapping", wrap),
    ]
}

#[test]
fn tear_load_purchase_composite_at_every_write() {
    let keys = Keys::test(PurseAlgorithm::Tdes);
    let mut total = 0;
    for (name, ops) in starting_states() {
        let mut card = danger_test_card(vec![test_card_3des().unwrap()]).unwrap();
        select_ep(&mut card);
        run_ops(&mut card, &keys, &ops);
        if ops.is_empty() {
            // A purchase needs money: the fresh state is tested for loads, and right after the first
            // load for purchases.
            total += tear_every_write(
                &card.save_state(),
                &EP_AID,
                &[],
                &keys,
                Op::Load(10000),
                true,
            );
            load(&mut card, &keys, 10000);
        } else {
            total += tear_every_write(
                &card.save_state(),
                &EP_AID,
                &[],
                &keys,
                Op::Load(333),
                false,
            );
        }
        let state = card.save_state();
        let mut per_state = 0;
        per_state += tear_every_write(
            &state,
            &EP_AID,
            &[],
            &keys,
            Op::Purchase(200),
            name == "fresh",
        );
        per_state += tear_every_write(
            &state,
            &EP_AID,
            &[],
            &keys,
            Op::Composite(200),
            name == "fresh",
        );
        assert!(per_state > 0, "{name}");
        total += per_state;
    }
    // Purchasing the whole balance, and counters one step from their maximum.
    let mut card = danger_test_card(vec![test_card_3des().unwrap()]).unwrap();
    select_ep(&mut card);
    load(&mut card, &keys, 450);
    total += tear_every_write(
        &card.save_state(),
        &EP_AID,
        &[],
        &keys,
        Op::Purchase(450),
        false,
    );
    let mut data = test_card_data(TEST_ASN);
    data.online_counter = 0xFFFE;
    data.offline_counter = 0xFFFE;
    data.balance = 1000;
    let purse = test_issuer(PurseAlgorithm::Tdes)
        .unwrap()
        .issue(&EP_AID, PurseProfile::EPURSE, &data)
        .unwrap();
    let card = danger_test_card(vec![purse]).unwrap();
    total += tear_every_write(&card.save_state(), &EP_AID, &[], &keys, Op::Load(1), false);
    total += tear_every_write(
        &card.save_state(),
        &EP_AID,
        &[],
        &keys,
        Op::Composite(1),
        false,
    );
    eprintln!("e-purse tear points: {total}");
    assert!(total >= 300, "only {total} tear points");
}

/// SE-T2-TEAR-001: the second ticket type is just as atomic, and a tear in it never touches the
/// e-purse (nor the other way round).
#[test]
fn tear_second_ticket_type() {
    let ep_keys = Keys::test(PurseAlgorithm::Tdes);
    let t2_keys = Keys::for_asn(PurseAlgorithm::Tdes, &TEST_SECOND_TICKET_ASN);
    let mut card = danger_test_card_with_second_ticket().unwrap();
    select_ep(&mut card);
    load(&mut card, &ep_keys, 900);
    purchase(&mut card, &ep_keys, 100, 1);
    select_aid(&mut card, &SECOND_TICKET_AID);
    load(&mut card, &t2_keys, 40);
    purchase(&mut card, &t2_keys, 1, 2);
    let state = card.save_state();
    let mut total = 0;
    for op in [Op::Load(10), Op::Purchase(1), Op::Composite(2)] {
        total += tear_every_write(&state, &SECOND_TICKET_AID, &[&EP_AID], &t2_keys, op, false);
        total += tear_every_write(&state, &EP_AID, &[&SECOND_TICKET_AID], &ep_keys, op, false);
    }
    eprintln!("second ticket tear points: {total}");
    assert!(total >= 100, "only {total} tear points");
}
