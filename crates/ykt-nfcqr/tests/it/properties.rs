//! Properties over arbitrary APDU sequences on a card at each stage of its life: random bytes,
//! random commands of this applet and mutated valid commands never panic and always get a
//! well-formed status word; on an authorised card nothing changes the key (only RESET with the
//! issuer's signature could, and random bytes do not forge it).

use proptest::prelude::*;
use ykt_card::Card;
use ykt_nfcqr::NfcQrProfile;
use ykt_qr::testing::GENERATION_TIME;

use crate::support::*;

/// A well-formed answer: at least SW1 SW2, SW1 in 61..6F or 90..9F.
fn assert_status(resp: &[u8]) -> u16 {
    assert!(resp.len() >= 2, "response without status word");
    let sw1 = resp[resp.len() - 2];
    assert!(
        matches!(sw1, 0x61..=0x6F | 0x90..=0x9F),
        "not a status word: {}",
        hx(resp)
    );
    u16::from_be_bytes([sw1, resp[resp.len() - 1]])
}

#[derive(Clone, Debug)]
enum Action {
    /// Any bytes.
    Raw(Vec<u8>),
    /// One of our INS (or a neighbour) with random class, P1, P2, data and Le.
    Command {
        cla: u8,
        ins: u8,
        p1: u8,
        p2: u8,
        data: Vec<u8>,
        le: Option<u8>,
    },
    /// A valid STORE AUTHORISATION or GENERATE CODE with one byte changed.
    Mutated { which: u8, at: usize, value: u8 },
    /// Power cycle and reselect.
    PowerCycle,
}

fn action() -> impl Strategy<Value = Action> {
    let ins = prop::sample::select(vec![0xE0u8, 0xE2, 0xE4, 0xE6, 0xEA, 0xCA, 0xC0, 0xA4, 0xE8]);
    let cla = prop::sample::select(vec![0x80u8, 0x00, 0x84, 0x90, 0x81, 0xFF]);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..320).prop_map(Action::Raw),
        (
            cla,
            ins,
            0u8..4,
            0u8..4,
            prop::collection::vec(any::<u8>(), 0..300),
            prop::option::of(any::<u8>())
        )
            .prop_map(|(cla, ins, p1, p2, data, le)| Action::Command {
                cla,
                ins,
                p1,
                p2,
                data,
                le
            }),
        (0u8..4, 0usize..310, any::<u8>()).prop_map(|(which, at, value)| Action::Mutated {
            which,
            at,
            value
        }),
        Just(Action::PowerCycle),
    ]
}

fn encode(a: &Action) -> Option<Vec<u8>> {
    match a {
        Action::Raw(b) => Some(b.clone()),
        Action::Command {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        } => {
            let mut c = vec![*cla, *ins, *p1, *p2];
            if data.len() > 255 {
                c.push(0);
                c.extend_from_slice(&(data.len() as u16).to_be_bytes());
                c.extend_from_slice(data);
            } else if !data.is_empty() {
                c.push(data.len() as u8);
                c.extend_from_slice(data);
            }
            if let Some(le) = le {
                c.push(*le);
            }
            Some(c)
        }
        Action::Mutated { which, at, value } => {
            let mut c = match which {
                0 => store_cmd(&blob_80()),
                1 => code_cmd(GENERATION_TIME + 5, true),
                2 => code_cmd(GENERATION_TIME + 5, false),
                _ => GENERATE_KEY.to_vec(),
            };
            let at = at % c.len();
            c[at] = *value;
            Some(c)
        }
        Action::PowerCycle => None,
    }
}

fn run(card: &mut Card, actions: &[Action]) {
    for a in actions {
        match encode(a) {
            Some(cmd) => {
                let resp = card.transmit(&cmd).expect("powered");
                assert_status(&resp);
            }
            None => {
                card.power_off();
                card.power_on();
                assert_eq!(select(card), 0x9000);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn authorised_card_keeps_its_key(actions in prop::collection::vec(action(), 1..40)) {
        let mut card = authorised(NfcQrProfile::default(), &blob_80());
        run(&mut card, &actions);
        // Reselect (a random SELECT may have left the applet) and check the key.
        card.power_off();
        card.power_on();
        prop_assert_eq!(select(&mut card), 0x9000);
        prop_assert_eq!(send(&mut card, &[0x80, 0xE6, 0x00, 0x01, 0x00]), (user_public().to_vec(), 0x9000));
        // And the applet still signs.
        let (code, s) = send_all(&mut card, &code_cmd(ykt_qr::testing::AUTHORISATION_EXPIRY, true));
        prop_assert!(s == 0x9000 || s == 0x9402, "{:04X}", s);
        if s == 0x9000 {
            prop_assert_eq!(code.len(), 364);
        }
    }

    #[test]
    fn no_stage_panics(stage in 0u8..3, actions in prop::collection::vec(action(), 1..40)) {
        let mut card = match stage {
            0 => fresh(NfcQrProfile::default()),
            1 => with_key(NfcQrProfile::default()),
            _ => authorised(NfcQrProfile { max_codes_per_authorisation: 2 }, &blob_80()),
        };
        run(&mut card, &actions);
        let (st, s) = send(&mut card, &GET_DATA);
        if s == 0x9000 {
            prop_assert_eq!(st.len(), 25);
        }
    }
}
