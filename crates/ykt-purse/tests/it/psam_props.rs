//! Properties of the PSAM: arbitrary APDUs (random bytes, and mutations of every PSAM command) in
//! any order, with resets, never panic and always get a well-formed status word; the TTSN only
//! ever moves by one per answered `80 70`.

use proptest::prelude::*;
use ykt_card::Card;
use ykt_purse::testing::danger_test_psam_3des;

use crate::psam::{MAC1_CMD, select_psam};
use crate::support::*;

/// Valid commands of every PSAM family, to mutate.
const TEMPLATES: [&str; 9] = [
    MAC1_CMD,
    "8070000024 5E6F7A8B 0000 000000C8 06 20240115103500 01 00 1000000012345678 01011000FFFFFFFF 08",
    "8072000004 2F0250C6",
    "801A360108 1000000012345678",
    "801A360110 1000000012345678 01011000FFFFFFFF",
    "80FA050010 5E6F7A8B00000000 841E000004800000",
    "00B0960006",
    "00B0970019",
    "00A4040007 A0000006324D4F",
];

#[derive(Clone, Debug)]
enum Action {
    Raw(Vec<u8>),
    Template(usize, usize, u8),
    Truncated(usize, usize),
    Reset,
    SelectMf,
    SelectPsam,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..48).prop_map(Action::Raw),
        5 => (0..TEMPLATES.len(), any::<usize>(), any::<u8>())
            .prop_map(|(t, i, b)| Action::Template(t, i, b)),
        2 => (0..TEMPLATES.len(), any::<usize>()).prop_map(|(t, n)| Action::Truncated(t, n)),
        1 => Just(Action::Reset),
        1 => Just(Action::SelectMf),
        1 => Just(Action::SelectPsam),
    ]
}

fn status(resp: &[u8]) -> u16 {
    assert!(resp.len() >= 2, "response without status word");
    let sw1 = resp[resp.len() - 2];
    assert!(
        matches!(sw1, 0x61..=0x6F | 0x90..=0x9F),
        "not a status word: {}",
        hx(resp)
    );
    u16::from_be_bytes([sw1, resp[resp.len() - 1]])
}

fn run(card: &mut Card, cmd: &[u8], ttsn: &mut u32) {
    let resp = card.transmit(cmd).expect("powered");
    let sw = status(&resp);
    let is_mac1 = cmd.len() > 5 && cmd[..4] == [0x80, 0x70, 0x00, 0x00];
    if sw == 0x9000 && is_mac1 && resp.len() == 10 {
        let got = u32::from_be_bytes(resp[..4].try_into().unwrap());
        assert_eq!(got, *ttsn, "TTSN skipped or reused");
        *ttsn += 1;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn arbitrary_apdus_never_panic(actions in proptest::collection::vec(action(), 1..40)) {
        let mut card = danger_test_psam_3des().unwrap();
        let mut ttsn = 1;
        for a in actions {
            match a {
                Action::Raw(bytes) => run(&mut card, &bytes, &mut ttsn),
                Action::Template(t, i, b) => {
                    let mut c = h(TEMPLATES[t]);
                    let n = c.len();
                    c[i % n] = b;
                    run(&mut card, &c, &mut ttsn);
                }
                Action::Truncated(t, n) => {
                    let c = h(TEMPLATES[t]);
                    let n = n % (c.len() + 1);
                    run(&mut card, &c[..n], &mut ttsn);
                }
                Action::Reset => {
                    card.reset();
                }
                Action::SelectMf => run(&mut card, &h("00A40000023F00"), &mut ttsn),
                Action::SelectPsam => run(&mut card, &h("00A4040007A0000006324D4F"), &mut ttsn),
            }
        }
        // Whatever happened, the PSAM still answers the next serial.
        select_psam(&mut card);
        let (r, s) = send(&mut card, &h(MAC1_CMD));
        prop_assert_eq!(s, 0x9000);
        prop_assert_eq!(u32::from_be_bytes(r[..4].try_into().unwrap()), ttsn);
    }
}
