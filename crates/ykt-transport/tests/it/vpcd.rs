//! The vpcd card against a fake pcscd: framing, control bytes, reconnects, stop, hook, tearing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ykt_card::{Atr, Card};
use ykt_purse::testing::danger_test_card_3des;
use ykt_transport::TransportError;
use ykt_transport::vpcd::{self, TORN_RESPONSE};

use crate::harness::{FakePcscd, Served, quick_options, run_transcript, unhex};

const SELECT_PURSE: &str = "00A4040008A000000632010105";
const GET_BALANCE: &str = "805C000204";
const INITIALIZE_LOAD_8_1: &str = "805000020B010000271011223344556610";
const CREDIT_LOAD_8_1: &str = "805200000B 20240115 103000 C932104C 04";

fn atr() -> Vec<u8> {
    Atr::default_t1().as_bytes().to_vec()
}

fn test_card() -> Card {
    danger_test_card_3des().unwrap()
}

#[test]
fn purse_session_8_transcript() {
    let pcscd = FakePcscd::bind();
    let served = Served::start(test_card(), pcscd.addr(), quick_options());
    let mut peer = pcscd.accept();
    run_transcript(&mut peer, include_str!("../data/vpcd_purse_8.txt"), &atr());
    let (_, result) = served.stop();
    result.unwrap();
}

#[test]
fn atr_is_answered_at_any_time() {
    let pcscd = FakePcscd::bind();
    let served = Served::start(test_card(), pcscd.addr(), quick_options());
    let mut peer = pcscd.accept();
    for control in [[0x00], [0x01], [0x02], [0x00], [0x00]] {
        peer.send(&control);
        assert_eq!(
            peer.exchange(&[0x04]),
            atr(),
            "after control {control:02X?}"
        );
    }
    let (card, result) = served.stop();
    result.unwrap();
    assert!(!card.is_powered());
}

#[test]
fn power_controls_get_no_reply_and_unknown_frames_are_ignored() {
    let pcscd = FakePcscd::bind();
    let served = Served::start(test_card(), pcscd.addr(), quick_options());
    let mut peer = pcscd.accept();
    for silent in [&[0x01][..], &[0x02], &[0x00], &[0x03], &[0xFF], &[]] {
        peer.send(silent);
        peer.expect_silence();
    }
    // Still in sync afterwards.
    assert_eq!(peer.exchange(&[0x04]), atr());
    served.stop().1.unwrap();
}

#[test]
fn frames_split_byte_by_byte_and_joined_in_one_write() {
    use std::io::Write;
    let pcscd = FakePcscd::bind();
    let served = Served::start(test_card(), pcscd.addr(), quick_options());
    let mut peer = pcscd.accept();
    peer.send(&[0x01]);

    // One SELECT, trickled a byte at a time.
    let frame = vpcd::frame::encode(&unhex(SELECT_PURSE)).unwrap();
    for b in &frame {
        peer.stream.write_all(std::slice::from_ref(b)).unwrap();
        peer.stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(peer.recv().ends_with(&[0x90, 0x00]));

    // GET ATR, GET BALANCE and GET ATR in one write: three replies, in order.
    let mut joined = vpcd::frame::encode(&[0x04]).unwrap();
    joined.extend(vpcd::frame::encode(&unhex(GET_BALANCE)).unwrap());
    joined.extend(vpcd::frame::encode(&[0x04]).unwrap());
    peer.stream.write_all(&joined).unwrap();
    assert_eq!(peer.recv(), atr());
    assert_eq!(peer.recv(), unhex("00000000 9000"));
    assert_eq!(peer.recv(), atr());
    served.stop().1.unwrap();
}

#[test]
fn power_off_on_and_reset_drop_the_selection() {
    let pcscd = FakePcscd::bind();
    let served = Served::start(test_card(), pcscd.addr(), quick_options());
    let mut peer = pcscd.accept();
    peer.send(&[0x01]);
    for drop_selection in [&[0x02][..], &[0x00, 0x01]] {
        assert!(peer.exchange(&unhex(SELECT_PURSE)).ends_with(&[0x90, 0x00]));
        assert_eq!(peer.exchange(&unhex(GET_BALANCE)), unhex("00000000 9000"));
        for &control in drop_selection {
            peer.send(&[control]);
        }
        // Nothing selected: the dispatcher answers INS not supported.
        assert_eq!(peer.exchange(&unhex(GET_BALANCE)), unhex("6D00"));
    }
    served.stop().1.unwrap();
}

#[test]
fn apdu_without_power_is_answered_6f00() {
    let pcscd = FakePcscd::bind();
    let served = Served::start(test_card(), pcscd.addr(), quick_options());
    let mut peer = pcscd.accept();
    peer.send(&[0x00]);
    assert_eq!(peer.exchange(&unhex(SELECT_PURSE)), TORN_RESPONSE);
    peer.send(&[0x01]);
    assert!(peer.exchange(&unhex(SELECT_PURSE)).ends_with(&[0x90, 0x00]));
    served.stop().1.unwrap();
}

/// Power is cut at the first EEPROM write of CREDIT FOR LOAD: pcscd still gets a reply (6F00),
/// the card stays unpowered until POWER ON, and the journal recovery leaves the balance at 0.
#[test]
fn torn_credit_is_answered_6f00_and_rolled_back() {
    let prelude = [SELECT_PURSE, INITIALIZE_LOAD_8_1];
    // A twin card tells how many page programs happen before CREDIT starts.
    let mut twin = test_card();
    let start = twin.persistent_writes();
    assert_eq!(vpcd::respond(&mut twin, &[0x01]), None);
    for c in prelude {
        vpcd::respond(&mut twin, &unhex(c)).unwrap();
    }
    let before_credit = twin.persistent_writes() - start;

    let mut card = test_card();
    card.tear().arm_at(before_credit + 1);
    let pcscd = FakePcscd::bind();
    let served = Served::start(card, pcscd.addr(), quick_options());
    let mut peer = pcscd.accept();
    peer.send(&[0x01]);
    for c in prelude {
        assert!(peer.exchange(&unhex(c)).ends_with(&[0x90, 0x00]), "{c}");
    }
    assert_eq!(peer.exchange(&unhex(CREDIT_LOAD_8_1)), TORN_RESPONSE);
    // Unpowered until pcscd powers it again; GET ATR still works.
    assert_eq!(peer.exchange(&unhex(GET_BALANCE)), TORN_RESPONSE);
    assert_eq!(peer.exchange(&[0x04]), atr());
    peer.send(&[0x01]);
    assert!(peer.exchange(&unhex(SELECT_PURSE)).ends_with(&[0x90, 0x00]));
    assert_eq!(peer.exchange(&unhex(GET_BALANCE)), unhex("00000000 9000"));
    served.stop().1.unwrap();
}

#[test]
fn reconnects_when_pcscd_drops_the_connection() {
    let pcscd = FakePcscd::bind();
    let served = Served::start(test_card(), pcscd.addr(), quick_options());
    let mut peer = pcscd.accept();
    peer.send(&[0x01]);
    assert!(peer.exchange(&unhex(SELECT_PURSE)).ends_with(&[0x90, 0x00]));
    drop(peer);

    // pcscd "restarted": the card comes back, and was powered off in between (card removed).
    let mut peer = pcscd.accept();
    assert_eq!(peer.exchange(&[0x04]), atr());
    peer.send(&[0x01]);
    assert_eq!(peer.exchange(&unhex(GET_BALANCE)), unhex("6D00"));
    served.stop().1.unwrap();
}

#[test]
fn waits_for_pcscd_to_come_up() {
    // Find a free port, then serve to it before anything listens there.
    let addr = FakePcscd::bind().addr();
    let served = Served::start(test_card(), addr, quick_options());
    std::thread::sleep(Duration::from_millis(200));
    let pcscd = FakePcscd::bind_to(addr);
    let mut peer = pcscd.accept();
    assert_eq!(peer.exchange(&[0x04]), atr());
    served.stop().1.unwrap();
}

#[test]
fn stop_flag_ends_serving_connected_or_not() {
    // Not connected (nothing listens): stops during the backoff.
    let addr = FakePcscd::bind().addr();
    let served = Served::start(test_card(), addr, quick_options());
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    served.stop().1.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));

    // Connected and idle: stops within the poll interval, card powered off.
    let pcscd = FakePcscd::bind();
    let served = Served::start(test_card(), pcscd.addr(), quick_options());
    let mut peer = pcscd.accept();
    peer.send(&[0x01]);
    assert_eq!(peer.exchange(&[0x04]), atr());
    let started = Instant::now();
    let (card, result) = served.stop();
    result.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!card.is_powered());
}

#[test]
fn hook_runs_after_every_message_and_its_failure_stops_serving() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let options = quick_options().with_after_command(move |card: &Card| {
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(card.is_powered() || n == 1);
        if n == 4 {
            return Err("disk full".into());
        }
        Ok(())
    });
    let pcscd = FakePcscd::bind();
    let served = Served::start(test_card(), pcscd.addr(), options);
    let mut peer = pcscd.accept();
    peer.send(&[0x04]); // 1
    assert_eq!(peer.recv(), atr());
    peer.send(&[0x01]); // 2
    assert!(peer.exchange(&unhex(SELECT_PURSE)).ends_with(&[0x90, 0x00])); // 3
    // 4: the hook fails before the reply is sent, so this command gets no reply at all.
    peer.send(&unhex(GET_BALANCE));
    let (_, result) = served.join();
    assert!(matches!(result, Err(TransportError::Hook(e)) if e.to_string() == "disk full"));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let mut rest = Vec::new();
    use std::io::Read;
    let _ = peer.stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "no reply after a failed hook: {rest:02X?}");
}
