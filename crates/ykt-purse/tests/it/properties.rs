//! Properties over arbitrary APDU sequences: random bytes and mutated valid commands never panic,
//! always get a well-formed status word, and the balance changes only through a correctly MACed
//! CREDIT or DEBIT.

use proptest::prelude::*;
use ykt_card::Card;
use ykt_crypto::purse::PurseAlgorithm;
use ykt_purse::EP_AID;
use ykt_purse::testing::danger_test_card_3des;

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

/// A funded, selected test card.
fn funded_card() -> (Card, Keys) {
    let keys = Keys::test(PurseAlgorithm::Tdes);
    let mut card = danger_test_card_3des().unwrap();
    select_ep(&mut card);
    load(&mut card, &keys, 5000);
    (card, keys)
}

#[derive(Clone, Debug)]
enum Mutation {
    None,
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    Append(Vec<u8>),
}

#[derive(Clone, Debug)]
enum Action {
    Raw(Vec<u8>),
    Template(u8, Mutation),
    /// INITIALIZE (load, purchase or composite, with its cache) then the mutated CREDIT/DEBIT.
    Transaction(u8, Mutation),
    Reset,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => Just(Mutation::None),
        3 => (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..4).prop_map(Mutation::Append),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Action::Raw),
        8 => (0u8..12, mutation()).prop_map(|(t, m)| Action::Template(t, m)),
        6 => (0u8..3, mutation()).prop_map(|(t, m)| Action::Transaction(t, m)),
        1 => Just(Action::Reset),
    ]
}

/// The host/PSAM side of the sequence: remembers the last INITIALIZE responses to build valid
/// CREDIT/DEBIT commands, and the model balance.
struct Host {
    keys: Keys,
    init_load: Option<(Vec<u8>, u32)>,
    init_purchase: Option<(Vec<u8>, u32, bool)>,
    ttsn: u32,
}

impl Host {
    /// Template `t`; for CREDIT/DEBIT also returns whether it is the valid command.
    fn template(&mut self, t: u8) -> Vec<u8> {
        match t {
            0 => h("00A4040008A000000632010105"),
            1 => init_load_cmd(100),
            2 => match &self.init_load {
                Some((r, a)) => credit_cmd(&self.keys, r, *a),
                None => h("805200000B2024011510300000000000 04"),
            },
            3 => init_purchase_cmd(50, false),
            4 => init_purchase_cmd(50, true),
            5 => update_capp_cmd(0x02, 0x1A, &ef1a_record(0x02, 0x77)),
            6 => update_capp_cmd(0x00, 0x1E, &ef1e_record(0x77)),
            7 => match &self.init_purchase {
                Some((r, a, c)) => {
                    self.ttsn += 1;
                    debit_cmd(&self.keys, r, *a, self.ttsn, *c).0
                }
                None => h("805401000F000000012024011510350000000000 08"),
            },
            8 => h("805C000204"),
            9 => h("805A0006020000 08"),
            10 => h("0084000004"),
            _ => h("0020000003123456"),
        }
    }
}

fn apply(mut cmd: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::None => {}
        Mutation::FlipBit(i, b) => {
            let n = cmd.len();
            cmd[i % n] ^= 1 << b;
        }
        Mutation::SetByte(i, v) => {
            let n = cmd.len();
            cmd[i % n] = *v;
        }
        Mutation::Truncate(i) => {
            let n = cmd.len();
            cmd.truncate(i % n);
        }
        Mutation::Append(b) => cmd.extend_from_slice(b),
    }
    cmd
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random bytes: a status word every time, and nothing persistent but possibly the PIN try
    /// counter changes (a random VERIFY), never the purse.
    #[test]
    fn random_bytes_never_move_money(cmds in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..40)) {
        let (mut card, _) = funded_card();
        let before = snapshot(&mut card, &EP_AID);
        select_ep(&mut card);
        for c in &cmds {
            let resp = card.transmit(c).unwrap();
            assert_status(&resp);
        }
        let after = snapshot(&mut card, &EP_AID);
        prop_assert_eq!(after.balance, before.balance);
        prop_assert_eq!((after.online, after.offline), (before.online, before.offline));
        prop_assert_eq!(&after.ef18, &before.ef18);
        prop_assert_eq!(&after.ef1a, &before.ef1a);
        prop_assert_eq!(&after.ef1e, &before.ef1e);
        prop_assert_eq!(&after.prove, &before.prove);
    }

    /// Mutated valid commands: a status word every time; a CREDIT or DEBIT succeeds only when it is
    /// byte for byte the command the host computed (Le aside), and the balance follows exactly those.
    #[test]
    fn balance_moves_only_with_a_valid_mac(actions in proptest::collection::vec(action(), 1..60)) {
        let (mut card, keys) = funded_card();
        let mut host = Host { keys, init_load: None, init_purchase: None, ttsn: 0 };
        let mut model = balance(&mut card);
        let mut online = 1u16;
        let mut offline = 0u16;
        for a in &actions {
            // A transaction is its template steps, run as single actions.
            let steps: Vec<Action> = match a {
                Action::Transaction(t, m) => match t {
                    0 => vec![
                        Action::Template(0, Mutation::None),
                        Action::Template(1, Mutation::None),
                        Action::Template(2, m.clone()),
                    ],
                    1 => vec![
                        Action::Template(0, Mutation::None),
                        Action::Template(3, Mutation::None),
                        Action::Template(7, m.clone()),
                    ],
                    _ => vec![
                        Action::Template(0, Mutation::None),
                        Action::Template(4, Mutation::None),
                        Action::Template(5, Mutation::None),
                        Action::Template(6, Mutation::None),
                        Action::Template(7, m.clone()),
                    ],
                },
                other => vec![other.clone()],
            };
            for a in &steps {
            match a {
                Action::Transaction(..) => unreachable!(),
                Action::Reset => {
                    card.reset();
                    host.init_load = None;
                    host.init_purchase = None;
                }
                Action::Raw(bytes) => {
                    host.init_load = None;
                    host.init_purchase = None;
                    let resp = card.transmit(bytes).unwrap();
                    let sw = assert_status(&resp);
                    // Random bytes may be an INITIALIZE but never a valid CREDIT/DEBIT.
                    prop_assert!(!(sw == 0x9000 && bytes.len() > 1 && matches!(bytes[1], 0x52 | 0x54) && bytes[0] == 0x80));
                }
                Action::Template(t, m) => {
                    let valid = host.template(*t);
                    let cmd = apply(valid.clone(), m);
                    let resp = card.transmit(&cmd).unwrap();
                    let status = assert_status(&resp);
                    // 61xx: success with more data waiting for GET RESPONSE (a mutated Le).
                    let sw = if status >> 8 == 0x61 { 0x9000 } else { status };
                    let data = &resp[..resp.len() - 2];
                    // Any command the applet sees ends the INITIALIZE session.
                    let (load_session, purchase_session) = (host.init_load.take(), host.init_purchase.take());
                    let is_credit_or_debit = cmd.len() > 1 && cmd[0] == 0x80 && matches!(cmd[1], 0x52 | 0x54);
                    if sw == 0x9000 && is_credit_or_debit {
                        // Same header and data as the computed command (only Le may differ), except
                        // TTSN[0..2] of a DEBIT: MAC1 and SESPK cover only TTSN[2..4] (e-purse.md
                        // §5.1, §5.4), so the card cannot see them; the TAC covers them for the back
                        // office.
                        let body = 5 + usize::from(valid[4]);
                        let covered = |c: &[u8]| -> Vec<u8> {
                            let mut c = c[..body].to_vec();
                            if c[1] == 0x54 {
                                c[5] = 0;
                                c[6] = 0;
                            }
                            c
                        };
                        prop_assert!(cmd.len() >= body && covered(&valid) == covered(&cmd), "mutated {} succeeded", hx(&cmd));
                        match cmd[1] {
                            0x52 => {
                                let (_, amount) = load_session.clone().expect("a load session");
                                model += amount;
                                online += 1;
                            }
                            _ => {
                                let (_, amount, _) = purchase_session.clone().expect("a purchase session");
                                model -= amount;
                                offline += 1;
                            }
                        }
                    }
                    if status == 0x9000 && cmd.len() > 3 && cmd[0] == 0x80 && cmd[1] == 0x50 {
                        match cmd[2] {
                            0x00 => host.init_load = Some((data.to_vec(), u32::from_be_bytes(cmd[6..10].try_into().unwrap()))),
                            p1 => host.init_purchase = Some((data.to_vec(), u32::from_be_bytes(cmd[6..10].try_into().unwrap()), p1 == 0x03)),
                        }
                    }
                    // UPDATE CAPP DATA CACHE keeps a composite session going.
                    if sw == 0x9000 && cmd.len() > 1 && cmd[0] == 0x80 && cmd[1] == 0xDC {
                        host.init_purchase = purchase_session.clone();
                    }
                    // File commands and GET RESPONSE are answered by the runtime: the session stays.
                    if cmd.len() > 1 && cmd[0] & 0x8C == 0 && matches!(cmd[1], 0xA4 | 0xB0 | 0xB2 | 0xD6 | 0xDC | 0xE2 | 0xC0) && !(cmd[1] == 0xA4 && cmd.get(2) == Some(&0x04)) {
                        if host.init_load.is_none() { host.init_load = load_session; }
                        if host.init_purchase.is_none() { host.init_purchase = purchase_session; }
                    }
                }
            }
        }
        }
        let snap = snapshot(&mut card, &EP_AID);
        prop_assert_eq!(snap.balance, model);
        prop_assert_eq!((snap.online, snap.offline), (online, offline));
    }
}
