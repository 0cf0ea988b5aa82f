//! Random APDUs, plain and inside an open session, never panic and always get a status word.

use proptest::prelude::*;
use ykt_apdu::{CommandApdu, StatusWord};

use crate::support::*;

fn valid_sw(r: &[u8]) -> bool {
    r.len() >= 2 && {
        let sw1 = r[r.len() - 2];
        matches!(sw1, 0x61..=0x6F | 0x90..=0x9F) || sw1 == 0x90
    }
}

fn gp_command() -> impl Strategy<Value = CommandApdu> {
    (
        prop::sample::select(vec![0x00u8, 0x80, 0x84]),
        prop::sample::select(vec![0xCAu8, 0xF2, 0xF0, 0xD8, 0x50, 0x82, 0xE6, 0x00]),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(cla, ins, p1, p2, data)| {
            let c = CommandApdu::new(cla, ins, p1, p2);
            if data.is_empty() {
                c
            } else {
                c.with_data(data)
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn raw_bytes_never_panic(cmds in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..8)) {
        let mut card = card();
        for c in cmds {
            let r = card.transmit(&c).unwrap();
            prop_assert!(valid_sw(&r));
        }
    }

    #[test]
    fn gp_shaped_commands_never_panic(cmds in prop::collection::vec(gp_command(), 1..8)) {
        let mut card = card();
        for c in cmds {
            let r = card.transmit(&c.to_bytes()).unwrap();
            prop_assert!(valid_sw(&r));
        }
    }

    #[test]
    fn wrapped_commands_in_a_session_never_panic(cmds in prop::collection::vec(gp_command(), 1..8)) {
        let mut card = card();
        let mut host = open_scp03(&mut card);
        for mut c in cmds {
            c.cla = 0x80;
            let Ok(w) = host.session.wrap(&c) else { continue };
            let r = card.transmit(&w.to_bytes()).unwrap();
            prop_assert!(valid_sw(&r));
            let sw = StatusWord::new(r[r.len() - 2], r[r.len() - 1]);
            if sw != StatusWord::SUCCESS {
                // Errors come back bare; the host's chaining continues only after success.
                host = open_scp03(&mut card);
            } else {
                let resp = ykt_apdu::ResponseApdu::parse(&r).unwrap();
                prop_assert!(host.session.unwrap(&resp).is_ok());
            }
        }
    }
}

fn management_command() -> impl Strategy<Value = CommandApdu> {
    (
        prop::sample::select(vec![0xD8u8, 0xF0]),
        prop::sample::select(vec![0x00u8, 0x30, 0x31, 0x40, 0x80, 0x7F, 0x0F]),
        prop::sample::select(vec![0x00u8, 0x81, 0x80, 0x07, 0x0F, 0x7F, 0xFF, 0x01]),
        prop::collection::vec(any::<u8>(), 0..120),
    )
        .prop_map(|(ins, p1, p2, data)| CommandApdu::new(0x80, ins, p1, p2).with_data(data))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A refused PUT KEY or SET STATUS writes nothing: the whole persistent image is unchanged.
    #[test]
    fn refused_management_commands_change_nothing(cmd in management_command()) {
        let mut card = card();
        let mut host = open_scp03(&mut card);
        let before = card.save_state();
        let (_, sw) = host.send(&mut card, &cmd);
        if sw != 0x9000 {
            prop_assert_eq!(card.save_state(), before);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A bit flip anywhere in a PUT KEY key block (type, lengths, key, KCV) is refused with
    /// `6A80` and changes nothing; only the new KVN byte may change and still succeed.
    #[test]
    fn bit_flipped_key_blocks_are_refused(bit in 8usize..(70 * 8)) {
        use ykt_gp::commands::put_key::{KeyEncryption, encode_key_set};
        let mut data =
            encode_key_set(&aes_keys(0x31, 0x60), &KeyEncryption::Static(&scp03().1.keys)).unwrap();
        data[bit / 8] ^= 1 << (bit % 8);
        let mut card = card();
        let mut host = open_scp03(&mut card);
        let before = card.save_state();
        let cmd = CommandApdu::new(0x80, 0xD8, 0x00, 0x81).with_data(data);
        prop_assert_eq!(host.send(&mut card, &cmd).1, 0x6A80);
        prop_assert_eq!(card.save_state(), before);
    }
}
