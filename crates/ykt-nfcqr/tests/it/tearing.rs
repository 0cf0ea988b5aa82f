//! Power cut at every persistent write of GENERATE KEY PAIR, STORE AUTHORISATION, GENERATE CODE
//! and RESET (the card's tearing switch, ARCHITECTURE.md `ykt-card`).
//!
//! For each operation: a reference run on a copy of the card (re-created from its state file
//! through the factory, so every copy draws the same random bytes) counts the page programs W of
//! the command and gives the "after" state; then for every n in 1..=W another copy runs the
//! command with power cut during the n-th write, is powered on again (journal recovery), and must
//! be exactly in the before or the after state (public key, authorisation, counters, as GET
//! PUBLIC KEY and GET DATA show them); then the applet must still work: the rest of the life
//! (key, authorisation, codes, a later authorisation) runs to the end.

use ykt_card::{Card, CardError};
use ykt_nfcqr::NfcQrProfile;
use ykt_qr::testing::{AUTHORISATION_EXPIRY, GENERATION_TIME, terms};
use ykt_qr::{Authorisation, Version, ids};

use crate::support::*;

/// What the applet shows of its state.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    public_key: (Vec<u8>, u16),
    status: Vec<u8>,
}

fn snapshot(card: &mut Card) -> Snapshot {
    let status = send(card, &GET_DATA);
    assert_eq!(status.1, 0x9000);
    Snapshot {
        public_key: send(card, &[0x80, 0xE6, 0x00, 0x01, 0x00]),
        status: status.0,
    }
}

fn powered_copy(card: &Card) -> Card {
    let mut c = copy(card);
    c.power_on();
    assert_eq!(select(&mut c), 0x9000);
    c
}

/// Drives the card from whatever state it is in to a code under a later authorisation.
fn still_works(card: &mut Card) {
    let (key, s) = send(card, &[0x80, 0xE6, 0x00, 0x01, 0x00]);
    let key: [u8; 65] = if s == 0x6A88 {
        let (k, s) = send(card, &[0x80, 0xE0, 0x00, 0x01, 0x00]);
        assert_eq!(s, 0x9000);
        k.try_into().unwrap()
    } else {
        assert_eq!(s, 0x9000);
        key.try_into().unwrap()
    };
    let mut t = terms();
    t.authorisation_expiry = AUTHORISATION_EXPIRY + 3600;
    let blob = authorise(Version::INTEROPERABLE, &t, &key);
    assert_eq!(sw(card, &store_cmd(&blob)), 0x9000);
    let (code, s) = send_all(card, &code_cmd(AUTHORISATION_EXPIRY + 10, true));
    assert_eq!(s, 0x9000);
    assert_eq!(code.len(), 364);
}

/// Tears `cmd` at every write on copies of `start`; returns W.
fn tear_everywhere(start: &Card, cmd: &[u8], what: &str) -> u64 {
    let mut reference = powered_copy(start);
    let before = snapshot(&mut reference);
    let w0 = reference.persistent_writes();
    let (_, s) = send_all(&mut reference, cmd);
    assert_eq!(s, 0x9000, "{what}: reference run");
    let writes = reference.persistent_writes() - w0;
    assert!(writes > 0, "{what} writes nothing");
    let after = snapshot(&mut reference);
    assert_ne!(before, after, "{what} changes nothing visible");
    let (mut saw_before, mut saw_after) = (false, false);
    for n in 1..=writes {
        let mut card = powered_copy(start);
        card.tear().arm_at(n);
        assert_eq!(
            card.transmit(cmd),
            Err(CardError::PowerLost),
            "{what} write {n}"
        );
        card.power_on();
        assert_eq!(select(&mut card), 0x9000);
        let got = snapshot(&mut card);
        if got == before {
            saw_before = true;
        } else if got == after {
            saw_after = true;
        } else {
            panic!("{what}, torn at write {n}: neither before nor after: {got:?}");
        }
        still_works(&mut card);
    }
    assert!(saw_before && saw_after, "{what}: both outcomes occur");
    eprintln!("{what}: torn at each of {writes} persistent writes");
    writes
}

/// Tears `cmd` at every write n and then the recovery at every write m of the power-on that
/// follows; the next power-on finishes the recovery and the state is before or after.
fn tear_recovery_everywhere(start: &Card, cmd: &[u8], what: &str) {
    let mut reference = powered_copy(start);
    let before = snapshot(&mut reference);
    let w0 = reference.persistent_writes();
    assert_eq!(send_all(&mut reference, cmd).1, 0x9000);
    let writes = reference.persistent_writes() - w0;
    let after = snapshot(&mut reference);
    for n in 1..=writes {
        for m in 1..=3 {
            let mut card = powered_copy(start);
            card.tear().arm_at(n);
            assert_eq!(card.transmit(cmd), Err(CardError::PowerLost));
            card.tear().arm_at(m);
            card.power_on();
            card.tear().disarm();
            card.power_on();
            assert!(card.is_powered());
            assert_eq!(select(&mut card), 0x9000);
            let got = snapshot(&mut card);
            assert!(
                got == before || got == after,
                "{what}: torn at write {n}, recovery torn at write {m}: {got:?}"
            );
        }
    }
}

#[test]
fn tear_recovery_of_generate_code_and_store() {
    let mut start = authorised(NfcQrProfile::default(), &blob_80());
    assert_eq!(sw(&mut start, &code_cmd(GENERATION_TIME, false)), 0x9000);
    tear_recovery_everywhere(
        &start,
        &code_cmd(GENERATION_TIME + 30, false),
        "GENERATE CODE",
    );
    let start = with_key(NfcQrProfile::default());
    tear_recovery_everywhere(&start, &store_cmd(&blob_80()), "STORE AUTHORISATION");
}

#[test]
fn tear_generate_key_pair() {
    let start = fresh(NfcQrProfile::default());
    tear_everywhere(&start, &GENERATE_KEY, "GENERATE KEY PAIR");
    // Replacing a key before any authorisation.
    let start = with_key(NfcQrProfile::default());
    tear_everywhere(
        &start,
        &[0x80, 0xE0, 0x01, 0x00, 0x00],
        "GENERATE KEY PAIR P1 01",
    );
}

#[test]
fn tear_store_authorisation() {
    let start = with_key(NfcQrProfile::default());
    tear_everywhere(&start, &store_cmd(&blob_80()), "STORE AUTHORISATION");
    // A later blob replacing a used one (the counter reset rides in the same transaction).
    let mut start = authorised(NfcQrProfile::default(), &blob_80());
    assert_eq!(sw(&mut start, &code_cmd(GENERATION_TIME, false)), 0x9000);
    let mut t = terms();
    t.authorisation_expiry = AUTHORISATION_EXPIRY + 60;
    let later = authorise(Version::INTEROPERABLE, &t, &user_public());
    tear_everywhere(&start, &store_cmd(&later), "STORE AUTHORISATION (replace)");
}

#[test]
fn tear_generate_code() {
    let mut start = authorised(NfcQrProfile::default(), &blob_80());
    assert_eq!(sw(&mut start, &code_cmd(GENERATION_TIME, false)), 0x9000);
    tear_everywhere(
        &start,
        &code_cmd(GENERATION_TIME + 30, false),
        "GENERATE CODE",
    );
    tear_everywhere(
        &start,
        &code_cmd(GENERATION_TIME + 31, true),
        "GENERATE CODE (whole)",
    );
}

#[test]
fn tear_reset() {
    let mut start = authorised(NfcQrProfile::default(), &blob_80());
    assert_eq!(sw(&mut start, &code_cmd(GENERATION_TIME, false)), 0x9000);
    let auth = Authorisation::decode(&blob_80()).unwrap();
    let sig = ykt_crypto::Sm2PrivateKey::from_bytes(&ykt_qr::testing::ISSUER_D)
        .unwrap()
        .sign(
            &ids::issuer_id(auth.version, &auth.body),
            &ykt_nfcqr::reset_message(&user_public()),
        )
        .unwrap();
    let mut cmd = vec![0x80, 0xEA, 0x00, 0x00, 0x40];
    cmd.extend_from_slice(&sig.to_bytes());
    tear_everywhere(&start, &cmd, "RESET");
}
