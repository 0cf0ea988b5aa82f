//! Response data with a warning status word (`Context::set_warning`): delivery, commit,
//! faults, `61xx` chaining, `6Cxx`, tearing.

use ykt_card::{Card, CardError};

use crate::support::{self, AID_A, clone_card, dump, select, send};

fn hx(b: &[u8]) -> String {
    hex::encode_upper(b)
}

fn pattern(n: usize) -> String {
    hx(&(0..n).map(|i| (i & 0xFF) as u8).collect::<Vec<u8>>())
}

/// Card with A selected, and A's objects and files before any command.
fn card_a() -> (Card, Vec<u8>) {
    let mut card = support::card();
    let before = dump(&mut card, AID_A);
    select(&mut card, AID_A);
    (card, before)
}

#[test]
fn data_with_6310_reaches_the_host_and_the_writes_commit() {
    let (mut card, before) = card_a();
    let r = send(&mut card, "80426310020010 00");
    assert_eq!(hx(&r), format!("{}6310", pattern(16)));
    let after = dump(&mut card, AID_A);
    assert_ne!(after, before);
    // The counter went 0 → 1 and the blob holds k = 40: the multi-write committed.
    assert_eq!(&after[..5], &[0, 0, 0, 1, 0x40]);
    // Any 62xx / 63xx is a warning; no data is fine too.
    select(&mut card, AID_A);
    assert_eq!(hx(&send(&mut card, "80426281020000")), "6281");
    assert_eq!(hx(&send(&mut card, "804263C2020002")), "000163C2");
    assert_eq!(&dump(&mut card, AID_A)[..4], &[0, 0, 0, 3]);
}

#[test]
fn a_non_warning_status_through_set_warning_is_a_fault_and_discards_the_writes() {
    for sw in ["9000", "6100", "6A82", "6F00", "1234", "6400"] {
        let (mut card, before) = card_a();
        let r = send(&mut card, &format!("8042{sw}02001000"));
        assert_eq!(hx(&r), "6F00", "{sw}");
        assert_eq!(dump(&mut card, AID_A), before, "{sw}");
        // Nothing is pending either.
        assert_eq!(hx(&send(&mut card, "00C0000000")), "6985", "{sw}");
    }
}

#[test]
fn long_data_with_a_warning_is_chained_and_the_warning_ends_the_last_part() {
    let (mut card, _) = card_a();
    let all = pattern(48);
    let r = send(&mut card, "8042631002003010");
    assert_eq!(hx(&r), format!("{}6120", &all[..32]));
    // A refused GET RESPONSE keeps the pending data and its warning.
    assert_eq!(hx(&send(&mut card, "00C0000110")), "6A86");
    let r = send(&mut card, "00C0000010");
    assert_eq!(hx(&r), format!("{}6110", &all[32..64]));
    let r = send(&mut card, "00C0000000");
    assert_eq!(hx(&r), format!("{}6310", &all[64..]));
    assert_eq!(hx(&send(&mut card, "00C0000000")), "6985");
    // The writes committed with the first response.
    assert_eq!(&dump(&mut card, AID_A)[..4], &[0, 0, 0, 1]);

    // Without Le a short command's Ne is 256: 300 bytes go out as 256 + 44.
    select(&mut card, AID_A);
    let all = pattern(300);
    let r = send(&mut card, "8042631002012C");
    assert_eq!(hx(&r), format!("{}612C", &all[..512]));
    let r = send(&mut card, "00C0000000");
    assert_eq!(hx(&r), format!("{}6310", &all[512..]));

    // Another command drops the pending data and its warning.
    select(&mut card, AID_A);
    let r = send(&mut card, "8042631002003010");
    assert_eq!(&r[r.len() - 2..], &[0x61, 0x20]);
    let r = send(&mut card, "80120000020002");
    assert_eq!(hx(&r), "00019000");
    assert_eq!(hx(&send(&mut card, "00C0000000")), "6985");
}

#[test]
fn wrong_le_wins_over_the_warning() {
    let (mut card, before) = card_a();
    // Case 2, 4 bytes of data: Le 08 → 6C04, the command not executed.
    assert_eq!(hx(&send(&mut card, "8042631008")), "6C04");
    assert_eq!(dump(&mut card, AID_A), before);
    select(&mut card, AID_A);
    assert_eq!(hx(&send(&mut card, "8042631004")), "000102036310");
    assert_eq!(hx(&send(&mut card, "8042631000")), "000102036310");
    assert_eq!(&dump(&mut card, AID_A)[..4], &[0, 0, 0, 2]);
}

#[test]
fn tear_at_every_write_of_a_warning_command() {
    const CMD: &str = "8042631002001000";
    let (base, before) = card_a();
    let mut probe = clone_card(&base);
    probe.power_on();
    select(&mut probe, AID_A);
    let w0 = probe.persistent_writes();
    assert_eq!(hx(&send(&mut probe, CMD)), format!("{}6310", pattern(16)));
    let writes = probe.persistent_writes() - w0;
    let after = dump(&mut probe, AID_A);
    assert!(writes >= 8, "{writes} writes");
    let mut outcomes = Vec::new();
    for n in 1..=writes {
        let mut card = clone_card(&base);
        card.power_on();
        select(&mut card, AID_A);
        card.tear().arm_at(n);
        let cmd = hex::decode(CMD).unwrap();
        assert_eq!(card.transmit(&cmd), Err(CardError::PowerLost), "tear {n}");
        card.power_on();
        let state = dump(&mut card, AID_A);
        assert!(state == before || state == after, "tear {n}: torn state");
        outcomes.push(state == after);
        // No warning or data survives the power loss.
        assert_eq!(hx(&send(&mut card, "00C0000000")), "6985");
    }
    let switch = outcomes
        .iter()
        .position(|o| *o)
        .expect("some tear keeps it");
    assert!(switch > 0);
    assert!(outcomes[switch..].iter().all(|o| *o), "{outcomes:?}");
}
