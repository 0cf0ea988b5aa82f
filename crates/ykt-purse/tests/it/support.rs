//! Shared test helpers: the terminal/PSAM/host side computed from the test masters, APDU helpers,
//! and a logical snapshot of a purse read back through APDUs.

use std::path::PathBuf;

use ykt_card::{Atr, Card, SeededRandom};
use ykt_crypto::purse::{
    PurseAlgorithm, PurseKey, diversify, load_session_input, purchase_session_input,
    secure_messaging_mac, session_key, session_mac, tac,
};
use ykt_purse::testing::{
    TEST_ASN, TEST_MASTER_DAMK, TEST_MASTER_DLK, TEST_MASTER_DPK, TEST_MASTER_DPUK,
    TEST_MASTER_DRPK, TEST_MASTER_DTK,
};
use ykt_purse::{Asn, PurseAppletFactory};

pub const TERMINAL: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
pub const DATE: [u8; 4] = [0x20, 0x24, 0x01, 0x15];
pub const TIME: [u8; 3] = [0x10, 0x30, 0x00];

pub fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

pub fn hx(b: &[u8]) -> String {
    hex::encode_upper(b)
}

pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Sends `cmd`; returns (data, SW). Panics on a card error (no power).
pub fn send(card: &mut Card, cmd: &[u8]) -> (Vec<u8>, u16) {
    let r = card.transmit(cmd).expect("card powered");
    let n = r.len();
    (
        r[..n - 2].to_vec(),
        u16::from_be_bytes([r[n - 2], r[n - 1]]),
    )
}

pub fn sw(card: &mut Card, cmd: &[u8]) -> u16 {
    send(card, cmd).1
}

pub fn select_ep(card: &mut Card) -> u16 {
    sw(card, &h("00A4040008A000000632010105"))
}

pub fn select_aid(card: &mut Card, aid: &[u8]) -> u16 {
    let mut c = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
    c.extend_from_slice(aid);
    sw(card, &c)
}

/// The card keys of a test purse (the issuer and PSAM side derive them from the masters).
#[derive(Clone)]
pub struct Keys {
    pub alg: PurseAlgorithm,
    pub dlk: PurseKey,
    pub dpk: PurseKey,
    pub dtk: PurseKey,
    pub damk: PurseKey,
    pub dpuk: PurseKey,
    pub drpk: PurseKey,
}

impl Keys {
    pub fn for_asn(alg: PurseAlgorithm, asn: &Asn) -> Keys {
        let div = asn.diversifier();
        let d = |m: [u8; 16]| diversify(&alg, &PurseKey::from_bytes(m), &div);
        Keys {
            alg,
            dlk: d(TEST_MASTER_DLK),
            dpk: d(TEST_MASTER_DPK),
            dtk: d(TEST_MASTER_DTK),
            damk: d(TEST_MASTER_DAMK),
            dpuk: d(TEST_MASTER_DPUK),
            drpk: d(TEST_MASTER_DRPK),
        }
    }

    pub fn test(alg: PurseAlgorithm) -> Keys {
        Keys::for_asn(alg, &TEST_ASN)
    }
}

/// `80 50 00 02 0B ..`.
pub fn init_load_cmd(amount: u32) -> Vec<u8> {
    let mut c = h("805000020B01");
    c.extend_from_slice(&amount.to_be_bytes());
    c.extend_from_slice(&TERMINAL);
    c.push(0x10);
    c
}

/// `80 50 01|03 02 0B ..`.
pub fn init_purchase_cmd(amount: u32, composite: bool) -> Vec<u8> {
    let mut c = h(if composite {
        "805003020B01"
    } else {
        "805001020B01"
    });
    c.extend_from_slice(&amount.to_be_bytes());
    c.extend_from_slice(&TERMINAL);
    c.push(0x0F);
    c
}

/// Result of a completed load or purchase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    pub tac: [u8; 4],
    pub mac2: [u8; 4],
    pub counter: u16,
}

/// What the host computes for CREDIT FOR LOAD after INITIALIZE's response.
pub fn credit_cmd(keys: &Keys, init_resp: &[u8], amount: u32) -> Vec<u8> {
    let online = u16::from_be_bytes([init_resp[4], init_resp[5]]);
    let random: [u8; 4] = init_resp[8..12].try_into().unwrap();
    let sk = session_key(&keys.alg, &keys.dlk, &load_session_input(random, online));
    let mut m = amount.to_be_bytes().to_vec();
    m.push(0x02);
    m.extend_from_slice(&TERMINAL);
    m.extend_from_slice(&DATE);
    m.extend_from_slice(&TIME);
    let mac2 = session_mac(&keys.alg, &sk, &m);
    let mut c = h("805200000B");
    c.extend_from_slice(&DATE);
    c.extend_from_slice(&TIME);
    c.extend_from_slice(&mac2);
    c.push(0x04);
    c
}

/// Selected purse: INITIALIZE FOR LOAD + CREDIT; asserts success, checks MAC1 and TAC.
pub fn load(card: &mut Card, keys: &Keys, amount: u32) -> Done {
    let (r, s) = send(card, &init_load_cmd(amount));
    assert_eq!(s, 0x9000, "INITIALIZE FOR LOAD");
    let old_balance = u32::from_be_bytes(r[0..4].try_into().unwrap());
    let online = u16::from_be_bytes([r[4], r[5]]);
    let random: [u8; 4] = r[8..12].try_into().unwrap();
    let sk = session_key(&keys.alg, &keys.dlk, &load_session_input(random, online));
    let mut m1 = old_balance.to_be_bytes().to_vec();
    m1.extend_from_slice(&amount.to_be_bytes());
    m1.push(0x02);
    m1.extend_from_slice(&TERMINAL);
    assert_eq!(&r[12..16], &session_mac(&keys.alg, &sk, &m1), "MAC1");
    let credit = credit_cmd(keys, &r, amount);
    let (t, s) = send(card, &credit);
    assert_eq!(s, 0x9000, "CREDIT FOR LOAD");
    let mut ti = (old_balance + amount).to_be_bytes().to_vec();
    ti.extend_from_slice(&online.to_be_bytes());
    ti.extend_from_slice(&amount.to_be_bytes());
    ti.push(0x02);
    ti.extend_from_slice(&TERMINAL);
    ti.extend_from_slice(&DATE);
    ti.extend_from_slice(&TIME);
    assert_eq!(t, tac(&keys.alg, &keys.dtk, &ti), "load TAC");
    Done {
        tac: t.try_into().unwrap(),
        mac2: credit[12..16].try_into().unwrap(),
        counter: online,
    }
}

/// What the PSAM computes for DEBIT after INITIALIZE's response: (command, expected MAC2, expected TAC).
pub fn debit_cmd(
    keys: &Keys,
    init_resp: &[u8],
    amount: u32,
    ttsn: u32,
    composite: bool,
) -> (Vec<u8>, [u8; 4], [u8; 4]) {
    let offline = u16::from_be_bytes([init_resp[4], init_resp[5]]);
    let random: [u8; 4] = init_resp[11..15].try_into().unwrap();
    let ty = if composite { 0x09 } else { 0x06 };
    let sk = session_key(
        &keys.alg,
        &keys.dpk,
        &purchase_session_input(random, offline, ttsn),
    );
    let mut m1 = amount.to_be_bytes().to_vec();
    m1.push(ty);
    m1.extend_from_slice(&TERMINAL);
    m1.extend_from_slice(&DATE);
    m1.extend_from_slice(&TIME);
    let mac1 = session_mac(&keys.alg, &sk, &m1);
    let mac2 = session_mac(&keys.alg, &sk, &amount.to_be_bytes());
    let mut ti = amount.to_be_bytes().to_vec();
    ti.push(ty);
    ti.extend_from_slice(&TERMINAL);
    ti.extend_from_slice(&ttsn.to_be_bytes());
    ti.extend_from_slice(&DATE);
    ti.extend_from_slice(&TIME);
    let t = tac(&keys.alg, &keys.dtk, &ti);
    let mut c = h("805401000F");
    c.extend_from_slice(&ttsn.to_be_bytes());
    c.extend_from_slice(&DATE);
    c.extend_from_slice(&TIME);
    c.extend_from_slice(&mac1);
    c.push(0x08);
    (c, mac2, t)
}

/// A 128-byte EF1A record with identifier `id` and a marker byte.
pub fn ef1a_record(id: u8, marker: u8) -> Vec<u8> {
    let mut r = vec![0u8; 128];
    r[0] = 0x27;
    r[1] = id;
    r[2] = 0x7D;
    r[3] = 0x01;
    r[4] = 0x01;
    r[6..14].fill(marker);
    r
}

/// A 48-byte EF1E record with a marker byte.
pub fn ef1e_record(marker: u8) -> Vec<u8> {
    let mut r = vec![0u8; 48];
    r[0] = 0x03;
    r[1..9].fill(marker);
    r
}

pub fn update_capp_cmd(p1: u8, sfi: u8, data: &[u8]) -> Vec<u8> {
    let mut c = vec![0x80, 0xDC, p1, sfi << 3, data.len() as u8];
    c.extend_from_slice(data);
    c
}

/// Selected purse: INITIALIZE (CAPP) PURCHASE [+ cache writes] + DEBIT; asserts success, checks MAC2 and TAC.
pub fn purchase_with(
    card: &mut Card,
    keys: &Keys,
    amount: u32,
    ttsn: u32,
    cache: &[Vec<u8>],
) -> Done {
    let composite = !cache.is_empty();
    let (r, s) = send(card, &init_purchase_cmd(amount, composite));
    assert_eq!(s, 0x9000, "INITIALIZE FOR PURCHASE");
    for c in cache {
        assert_eq!(sw(card, c), 0x9000, "UPDATE CAPP DATA CACHE");
    }
    let (c, mac2, t) = debit_cmd(keys, &r, amount, ttsn, composite);
    let (resp, s) = send(card, &c);
    assert_eq!(s, 0x9000, "DEBIT");
    assert_eq!(&resp[..4], &t, "purchase TAC");
    assert_eq!(&resp[4..], &mac2, "MAC2");
    Done {
        tac: t,
        mac2,
        counter: u16::from_be_bytes([r[4], r[5]]),
    }
}

pub fn purchase(card: &mut Card, keys: &Keys, amount: u32, ttsn: u32) -> Done {
    purchase_with(card, keys, amount, ttsn, &[])
}

/// The composite purchase's usual cache: EF1A record 02 and one EF1E record.
pub fn composite_cache(marker: u8) -> Vec<Vec<u8>> {
    vec![
        update_capp_cmd(0x02, 0x1A, &ef1a_record(0x02, marker)),
        update_capp_cmd(0x00, 0x1E, &ef1e_record(marker)),
    ]
}

/// GET CHALLENGE (4) then a secure-messaging command `cla ins p1 p2` with the DAMK MAC.
pub fn maintenance(card: &mut Card, keys: &Keys, cla: u8, ins: u8, p1: u8, p2: u8) -> u16 {
    let (ch, s) = send(card, &h("0084000004"));
    assert_eq!(s, 0x9000);
    let header = [cla, ins, p1, p2, 0x04];
    let mac = secure_messaging_mac(&keys.alg, &keys.damk, &ch, &header);
    let mut c = header.to_vec();
    c.extend_from_slice(&mac);
    sw(card, &c)
}

pub fn balance(card: &mut Card) -> u32 {
    let (r, s) = send(card, &h("805C000204"));
    assert_eq!(s, 0x9000, "GET BALANCE");
    u32::from_be_bytes(r.try_into().unwrap())
}

pub fn read_record(card: &mut Card, sfi: u8, n: u8) -> Option<Vec<u8>> {
    let (r, s) = send(card, &[0x00, 0xB2, n, (sfi << 3) | 4, 0x00]);
    match s {
        0x9000 => Some(r),
        0x6A83 => None,
        other => panic!("READ RECORD {sfi:02X}/{n}: {other:04X}"),
    }
}

pub fn records(card: &mut Card, sfi: u8) -> Vec<Vec<u8>> {
    (1..=10).map_while(|n| read_record(card, sfi, n)).collect()
}

/// Everything persistent of one purse, read back through APDUs (no persistent writes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub select_sw: u16,
    pub balance: u32,
    pub online: u16,
    pub offline: u16,
    pub ef18: Vec<Vec<u8>>,
    pub ef1a: Vec<Vec<u8>>,
    pub ef1e: Vec<Vec<u8>>,
    /// (type, counter, GET TRANSACTION PROVE response) of EF18 record 1.
    pub prove: Option<(u8, u16, Vec<u8>)>,
    pub pin_sw: u16,
}

fn counter_from_init(card: &mut Card, cmd: &[u8]) -> u16 {
    let (r, s) = send(card, cmd);
    match s {
        0x9000 => u16::from_be_bytes([r[4], r[5]]),
        0x9402 => 0xFFFF,
        other => panic!("counter read: {other:04X}"),
    }
}

/// Selects `aid` and reads its whole logical state.
pub fn snapshot(card: &mut Card, aid: &[u8]) -> Snapshot {
    let select_sw = select_aid(card, aid);
    assert_eq!(select_sw, 0x9000, "snapshot needs an active purse");
    let balance = balance(card);
    let online = counter_from_init(card, &init_load_cmd(0));
    let offline = counter_from_init(card, &init_purchase_cmd(0, false));
    let ef18 = records(card, 0x18);
    let ef1a = records(card, 0x1A);
    let ef1e = records(card, 0x1E);
    let prove = ef18.first().map(|r| {
        let ty = r[9];
        let ctr = u16::from_be_bytes([r[0], r[1]]);
        let mut c = vec![0x80, 0x5A, 0x00, ty, 0x02];
        c.extend_from_slice(&ctr.to_be_bytes());
        c.push(0x08);
        let (resp, s) = send(card, &c);
        assert_eq!(s, 0x9000, "PROVE of EF18 record 1");
        (ty, ctr, resp)
    });
    let pin_sw = sw(card, &h("00200000"));
    Snapshot {
        select_sw,
        balance,
        online,
        offline,
        ef18,
        ef1a,
        ef1e,
        prove,
        pin_sw,
    }
}

/// Seed of the entropy of cards re-created from saved state.
pub const RELOAD_SEED: u64 = 0x5EED;

/// Re-creates a card from `save_state` bytes (through the purse's AppletFactory) and powers it.
pub fn reload(state: &[u8]) -> Card {
    let mut card = Card::load_state(
        state,
        Atr::default_t1(),
        Box::new(SeededRandom::new(RELOAD_SEED)),
        &PurseAppletFactory,
    )
    .expect("state loads");
    card.power_on();
    card
}
