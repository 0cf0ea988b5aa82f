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
