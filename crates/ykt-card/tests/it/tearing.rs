//! Power cuts at every persistent write of a command, of recovery, and of installation.

use ykt_card::{Card, CardError};

use crate::support::{self, AID_A, AID_B, clone_card, dump, ok, select};

/// The multi-write command: five objects of 4, 100, 3, 20 (inside 40) and 23 bytes, plus the
/// cyclic EF descriptor, spread over several pages.
const MULTI_WRITE: &str = "80105A00";

struct Scenario {
    /// Card state before the command (powered, A selected).
    base: Card,
    before: Vec<u8>,
    after: Vec<u8>,
    writes: u64,
}

fn scenario() -> Scenario {
    let mut base = support::card();
    // Some history first, so the cyclic file wraps and pages hold older data.
    select(&mut base, AID_A);
    for k in 1..=4 {
        ok(&mut base, &format!("8010{k:02X}00"));
    }
    let before = dump(&mut base, AID_A);
    let mut probe = clone_card(&base);
    probe.power_on();
    select(&mut probe, AID_A);
    let w0 = probe.persistent_writes();
    ok(&mut probe, MULTI_WRITE);
    let writes = probe.persistent_writes() - w0;
    let after = dump(&mut probe, AID_A);
    assert_ne!(before, after);
    Scenario {
        base,
        before,
        after,
        writes,
    }
}

/// A powered copy of the base card with A selected.
fn fresh(s: &Scenario) -> Card {
    let mut card = clone_card(&s.base);
    card.power_on();
    select(&mut card, AID_A);
    card
}

fn send_torn(card: &mut Card, n: u64) {
    card.tear().arm_at(n);
    let cmd = hex::decode(MULTI_WRITE).unwrap();
    assert_eq!(
        card.transmit(&cmd),
        Err(CardError::PowerLost),
        "tear at {n}"
    );
    assert!(!card.is_powered());
    assert!(!card.tear().is_armed());
    assert_eq!(card.transmit(&cmd), Err(CardError::NotPowered));
}

/// Before/after outcome of a recovered card; panics on anything else.
fn outcome(card: &mut Card, s: &Scenario, what: &str) -> bool {
    assert!(card.is_powered(), "{what}: not powered after power_on");
    let state = dump(card, AID_A);
    if state == s.before {
        false
    } else if state == s.after {
        true
    } else {
        panic!("{what}: state is neither before nor after")
    }
}

/// Outcomes must switch once, from "before" to "after", at the commit marker.
fn assert_single_switch(outcomes: &[bool]) {
    let switch = outcomes
        .iter()
        .position(|o| *o)
        .expect("some tear point must keep the command");
    assert!(switch > 0, "the first write cannot commit");
    assert!(
        outcomes[switch..].iter().all(|o| *o),
        "outcomes {outcomes:?}"
    );
}

#[test]
fn tear_at_every_write_of_a_command() {
    let s = scenario();
    assert!(
        s.writes >= 8,
        "the command should span several pages: {} writes",
        s.writes
    );
    let mut outcomes = Vec::new();
    for n in 1..=s.writes {
        let mut card = fresh(&s);
        send_torn(&mut card, n);
        card.power_on();
        outcomes.push(outcome(&mut card, &s, &format!("tear {n}")));
        // The card keeps working afterwards.
        select(&mut card, AID_B);
        ok(&mut card, "80100100");
        assert_eq!(&dump(&mut card, AID_B)[..4], &[0, 0, 0, 1]);
    }
    assert_single_switch(&outcomes);
    // Arming past the command's last write does not fire during it.
    let mut card = fresh(&s);
    card.tear().arm_at(s.writes + 1);
    ok(&mut card, MULTI_WRITE);
    assert!(card.tear().is_armed());
    card.tear().disarm();
    assert_eq!(dump(&mut card, AID_A), s.after);
}

#[test]
fn tear_during_recovery_converges() {
    let s = scenario();
    let mut checked = 0;
    for n in 1..=s.writes {
        let mut torn = fresh(&s);
        send_torn(&mut torn, n);
        // The expected outcome and the number of recovery writes, from an untorn recovery.
        let mut reference = clone_card(&torn);
        let w0 = reference.persistent_writes();
        reference.power_on();
        let recovery_writes = reference.persistent_writes() - w0;
        let expected = outcome(&mut reference, &s, "reference");
        for m in 1..=recovery_writes {
            let mut card = clone_card(&torn);
            card.tear().arm_at(m);
            card.power_on();
            assert!(
                !card.is_powered(),
                "tear {n}, recovery tear {m}: power should be lost"
            );
            // A second cut during the second recovery, at its first write.
            let mut twice = clone_card(&card);
            twice.tear().arm_at(1);
            twice.power_on();
            if !twice.is_powered() {
                twice.power_on();
            }
            assert_eq!(
                outcome(&mut twice, &s, "twice"),
                expected,
                "tear {n}, recovery tears {m}, 1"
            );
            card.power_on();
            assert_eq!(
                outcome(&mut card, &s, "recovered"),
                expected,
                "tear {n}, recovery tear {m}"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "some tear points must leave a journal to replay"
    );
}

#[test]
fn torn_state_survives_a_state_file() {
    let s = scenario();
    let mut refused = 0;
    for n in 1..=s.writes {
        let mut torn = fresh(&s);
        send_torn(&mut torn, n);
        let mut reference = clone_card(&torn);
        let w0 = reference.persistent_writes();
        reference.power_on();
        let journal_pending = reference.persistent_writes() > w0;
        let expected = outcome(&mut reference, &s, "reference");
        // Saved right after the tear, loaded, then powered: the same recovery.
        let mut loaded = clone_card(&torn);
        // Installing on the loaded card before its recovery is refused while a journal is
        // pending (it would overwrite the journal), and fine otherwise.
        let installed = support::install(&mut loaded, "A000000003");
        if journal_pending {
            assert_eq!(installed, Err(CardError::NotPowered), "tear {n}");
            refused += 1;
        } else {
            assert_eq!(installed, Ok(()), "tear {n}");
        }
        loaded.power_on();
        assert_eq!(outcome(&mut loaded, &s, "loaded"), expected, "tear {n}");
        support::install(&mut loaded, "A000000004").unwrap();
        assert_eq!(
            outcome(&mut loaded, &s, "after install"),
            expected,
            "tear {n}"
        );
    }
    assert!(refused > 0);
}

#[test]
fn tear_during_installation() {
    let mut probe = support::card();
    let w0 = probe.persistent_writes();
    support::install(&mut probe, "A000000002").unwrap();
    let writes = probe.persistent_writes() - w0;
    assert!(writes > 10);
    for n in 1..=writes {
        let mut card = support::card();
        card.tear().arm_at(n);
        assert_eq!(
            support::install(&mut card, "A000000002"),
            Err(CardError::PowerLost),
            "tear {n}"
        );
        assert_eq!(
            support::install(&mut card, "A000000002"),
            Err(CardError::NotPowered)
        );
        card.power_on();
        assert_eq!(card.applets().count(), 3);
        assert_eq!(
            support::send(&mut card, "00A4040005A000000002"),
            [0x6A, 0x82]
        );
        // A fresh namespace: the retry cannot collide with objects the torn attempt committed.
        support::install(&mut card, "A000000002").unwrap();
        let d = dump(&mut card, "A000000002");
        assert_eq!(&d[..4], &[0, 0, 0, 0]);
        assert_eq!(dump(&mut card, AID_A), dump(&mut support::card(), AID_A));
    }
}

#[test]
fn early_commit_survives_a_later_tear() {
    // 80 18 commits the counter early; a tear after that commit keeps the counter.
    let mut probe = support::card();
    select(&mut probe, AID_A);
    let w0 = probe.persistent_writes();
    assert_eq!(support::send(&mut probe, "80180000"), [0x69, 0x85]);
    let writes = probe.persistent_writes() - w0;
    let mut kept = Vec::new();
    for n in 1..=writes {
        let mut card = support::card();
        select(&mut card, AID_A);
        card.tear().arm_at(n);
        assert_eq!(
            card.transmit(&hex::decode("80180000").unwrap()),
            Err(CardError::PowerLost)
        );
        card.power_on();
        let d = dump(&mut card, AID_A);
        kept.push(d[..4] == [0, 0, 0, 1]);
        assert!(
            d[4..104].iter().all(|b| *b == 0),
            "the blob write after the early commit is never kept"
        );
    }
    assert_single_switch(&kept);
}

/// Object sizes of the test applet (objects 1..=4).
const SIZES: [usize; 4] = [4, 100, 3, 40];

fn write_ops() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    proptest::collection::vec(
        (0usize..4, any::<u8>(), any::<u8>()).prop_flat_map(|(obj, pos, byte)| {
            let size = SIZES[obj];
            let offset = usize::from(pos) % size;
            (1..=size - offset)
                .prop_map(move |len| vec![obj as u8 + 1, offset as u8, len as u8, byte])
        }),
        1..8,
    )
    .prop_map(|ops| ops.concat())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// Random writes over objects of different sizes, torn at a random write: the recovered
    /// state is exactly the state before or after.
    #[test]
    fn random_writes_torn_anywhere(ops in write_ops(), pick in 0u64..1000) {
        let mut base = support::card();
        select(&mut base, AID_A);
        ok(&mut base, "80100300");
        let before = dump(&mut base, AID_A);
        let cmd = format!("80300000{:02X}{}", ops.len(), hex::encode_upper(&ops));
        let mut probe = clone_card(&base);
        probe.power_on();
        select(&mut probe, AID_A);
        let w0 = probe.persistent_writes();
        ok(&mut probe, &cmd);
        let writes = probe.persistent_writes() - w0;
        let after = dump(&mut probe, AID_A);
        proptest::prop_assume!(writes > 0);
        let n = 1 + pick % writes;
        let mut card = clone_card(&base);
        card.power_on();
        select(&mut card, AID_A);
        card.tear().arm_at(n);
        proptest::prop_assert_eq!(card.transmit(&hex::decode(&cmd).unwrap()), Err(CardError::PowerLost));
        card.power_on();
        let state = dump(&mut card, AID_A);
        proptest::prop_assert!(state == before || state == after, "tear {} of {}", n, writes);
    }
}
