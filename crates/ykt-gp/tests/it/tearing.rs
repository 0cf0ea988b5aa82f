//! Power cut at every persistent write of PUT KEY, SET STATUS and INITIALIZE UPDATE: the
//! card comes back with the state before or the state after, never a mix.

use ykt_apdu::CommandApdu;
use ykt_card::{Card, CardError};
use ykt_gp::commands::put_key::{KeyEncryption, encode_key_set};

use crate::support::*;

/// Opens a session, arms the switch at write `n`, sends `cmd`; true when power was lost.
fn torn_at(card: &mut Card, n: u64, cmd: &CommandApdu) -> bool {
    let mut host = open_scp03(card);
    let wrapped = host.session.wrap(cmd).unwrap();
    card.tear().arm_at(n);
    match card.transmit(&wrapped.to_bytes()) {
        Err(CardError::PowerLost) => true,
        Ok(r) => {
            assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
            false
        }
        Err(e) => panic!("{e:?}"),
    }
}

fn recover(card: &mut Card) {
    card.tear().disarm();
    card.power_on();
    if !card.is_powered() {
        card.power_on();
    }
    select_isd(card);
}

#[test]
fn put_key_is_atomic_at_every_write() {
    let new = aes_keys(0x31, 0x60);
    let cmd = CommandApdu::new(0x80, 0xD8, 0x30, 0x81)
        .with_data(encode_key_set(&new, &KeyEncryption::Static(&scp03().1.keys)).unwrap());
    let (p, old) = scp03();
    let mut n = 1;
    let mut saw_old = false;
    let mut saw_new = false;
    loop {
        let mut card = card();
        let torn = torn_at(&mut card, n, &cmd);
        recover(&mut card);
        let old_ok = open(&mut card, p, &old, ykt_scp::SecurityLevel::C_MAC).is_ok();
        let new_ok = open(&mut card, p, &new, ykt_scp::SecurityLevel::C_MAC).is_ok();
        assert!(old_ok ^ new_ok, "write {n}: exactly one key version");
        saw_old |= old_ok;
        saw_new |= new_ok;
        if !torn {
            assert!(new_ok);
            break;
        }
        n += 1;
        assert!(n < 200);
    }
    assert!(saw_old && saw_new && n > 2, "{n} writes");
}

#[test]
fn set_status_is_atomic_at_every_write() {
    for (cmd, before, after, at) in [
        ("80F0807F00", 0x0F, 0x7F, ("80F28002024F0000", 15)),
        (
            "80F0408008A000000632010105",
            0x07,
            0x87,
            ("80F24002024F0000", 15),
        ),
    ] {
        let cmd = CommandApdu::parse(&h(cmd)).unwrap();
        let mut n = 1;
        loop {
            let mut card = card();
            let torn = torn_at(&mut card, n, &cmd);
            recover(&mut card);
            let mut host = open_scp03(&mut card);
            let state = host.send_hex(&mut card, at.0).0[at.1];
            if torn {
                assert!(state == before || state == after, "write {n}: {state:02X}");
            } else {
                assert_eq!(state, after);
                break;
            }
            n += 1;
            assert!(n < 200);
        }
    }
}

#[test]
fn the_sequence_counter_is_old_or_new_after_a_torn_initialize_update() {
    let mut n = 1;
    loop {
        let mut card = card();
        card.tear().arm_at(n);
        let torn = matches!(
            card.transmit(&h("8050300008111111111111111100")),
            Err(CardError::PowerLost)
        );
        recover(&mut card);
        let seq = send(&mut card, &h("80CA00C100")).0;
        if torn {
            assert!(
                seq == h("C103000000") || seq == h("C103000001"),
                "write {n}"
            );
        } else {
            assert_eq!(seq, h("C103000001"));
            break;
        }
        n += 1;
        assert!(n < 200);
    }
}
