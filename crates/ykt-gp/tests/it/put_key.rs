//! PUT KEY: adding and replacing key versions of each type, KCVs, malformed key blocks.

use ykt_apdu::CommandApdu;
use ykt_gp::commands::put_key::{KeyEncryption, encode_key_set, kcv};
use ykt_scp::{KeySet, Protocol, SecurityLevel};

use crate::support::*;

fn put_key_cmd(p1: u8, data: Vec<u8>) -> CommandApdu {
    CommandApdu::new(0x80, 0xD8, p1, 0x81)
        .with_data(data)
        .with_le(256)
}

fn key_info(card: &mut ykt_card::Card) -> String {
    select_isd(card);
    hx(&send(card, &h("80CA00E000")).0)
}

#[test]
fn kcvs_follow_gp() {
    // 3DES: 3DES-ECB(key, 8 × 00); AES: AES-ECB(key, 16 × 01). Computed with Python
    // `cryptography` for the GP test keys 404142…4F.
    let key = h("404142434445464748494A4B4C4D4E4F");
    assert_eq!(hx(&kcv(0x80, &key).unwrap()), "8BAF47");
    assert_eq!(hx(&kcv(0x88, &key).unwrap()), "504A77");
    assert_eq!(kcv(0x89, &key).unwrap().len(), 3);
    assert_eq!(kcv(0x88, &key[..5]), None);
    assert_eq!(kcv(0x42, &key), None);
}

fn replace_and_reopen(protocol: Protocol, old: KeySet, new: KeySet, p1: u8) {
    let mut card = card_with(&setup(protocol, old.clone()));
    let mut host = open(&mut card, protocol, &old, SecurityLevel::C_DEC_C_MAC).unwrap();
    let data = match protocol {
        Protocol::Scp02(_) => encode_key_set(
            &new,
            &KeyEncryption::Scp02(host.session.scp02_session_dek().unwrap()),
        ),
        _ => encode_key_set(&new, &KeyEncryption::Static(&old.keys)),
    }
    .unwrap();
    let (resp, sw) = host.send(&mut card, &put_key_cmd(p1, data));
    assert_eq!(sw, 0x9000, "{protocol:?}");
    assert_eq!(resp.len(), 10);
    assert_eq!(resp[0], new.version);
    let replaced = p1 != 0;
    assert!(
        open(&mut card, protocol, &new, SecurityLevel::C_MAC).is_ok(),
        "{protocol:?}: the new version opens"
    );
    let old_opens = open(&mut card, protocol, &old, SecurityLevel::C_MAC).is_ok();
    assert_eq!(old_opens, !replaced, "{protocol:?}: the old version");
}

#[test]
fn put_key_replaces_and_adds_for_each_key_type() {
    let scp03 = Protocol::scp03(0x70).unwrap();
    replace_and_reopen(scp03, aes_keys(0x30, 0x40), aes_keys(0x31, 0x60), 0x30);
    replace_and_reopen(scp03, aes_keys(0x30, 0x40), aes_keys(0x31, 0x60), 0x00);
    replace_and_reopen(scp03, aes_keys(0x30, 0x40), aes_keys(0x30, 0x60), 0x30);
    let aes256 = |v: u8, b: u8| {
        let k = |d: u8| ykt_crypto::AesKey::from_slice(&[b + d; 32]).unwrap();
        KeySet::aes(v, k(0), k(1), k(2))
    };
    replace_and_reopen(scp03, aes_keys(0x30, 0x40), aes256(0x32, 0x70), 0x30);
    let scp02 = Protocol::scp02(0x55).unwrap();
    replace_and_reopen(scp02, tdes_keys(0x20, 0x40), tdes_keys(0x21, 0x60), 0x20);
    replace_and_reopen(scp02, tdes_keys(0x20, 0x40), tdes_keys(0x21, 0x60), 0x00);
    let sm4 = Protocol::sm4(0x70).unwrap();
    replace_and_reopen(sm4, sm4_keys(0x30, 0x40), sm4_keys(0x31, 0x60), 0x30);
    replace_and_reopen(sm4, sm4_keys(0x30, 0x40), sm4_keys(0x31, 0x60), 0x00);
}

#[test]
fn new_version_shows_in_key_information() {
    let mut card = card();
    let mut host = open_scp03(&mut card);
    let data = encode_key_set(
        &aes_keys(0x31, 0x60),
        &KeyEncryption::Static(&scp03().1.keys),
    );
    assert_eq!(
        host.send(&mut card, &put_key_cmd(0, data.unwrap())).1,
        0x9000
    );
    assert_eq!(
        key_info(&mut card),
        "E024C00401308810C00402308810C00403308810C00401318810C00402318810C00403318810"
    );
}

#[test]
fn malformed_key_blocks_change_nothing() {
    let good = encode_key_set(
        &aes_keys(0x31, 0x60),
        &KeyEncryption::Static(&scp03().1.keys),
    )
    .unwrap();
    // good = 31 · (88 11 10 <16> 03 <3>) × 3
    let mut cases: Vec<(u8, u8, Vec<u8>, u16)> = Vec::new();
    let mut wrong_kcv = good.clone();
    wrong_kcv[22] ^= 1;
    cases.push((0, 0x81, wrong_kcv, 0x6A80));
    let mut wrong_type = good.clone();
    wrong_type[1] = 0x80;
    cases.push((0, 0x81, wrong_type, 0x6A80));
    let mut wrong_len = good.clone();
    wrong_len[3] = 0x18;
    cases.push((0, 0x81, wrong_len, 0x6A80));
    let mut kcv_len = good.clone();
    kcv_len[20] = 0x02;
    cases.push((0, 0x81, kcv_len, 0x6A80));
    let mut zero_kvn = good.clone();
    zero_kvn[0] = 0x00;
    cases.push((0, 0x81, zero_kvn, 0x6A80));
    let mut high_kvn = good.clone();
    high_kvn[0] = 0x80;
    cases.push((0, 0x81, high_kvn, 0x6A80));
    let mut existing = good.clone();
    existing[0] = 0x30;
    cases.push((0, 0x81, existing, 0x6A80));
    let mut trailing = good.clone();
    trailing.push(0);
    cases.push((0, 0x81, trailing, 0x6A80));
    for cut in [0, 1, 2, 10, 23, 24, good.len() - 1] {
        cases.push((0, 0x81, good[..cut].to_vec(), 0x6A80));
    }
    cases.push((0x35, 0x81, good.clone(), 0x6A88));
    cases.push((0, 0x01, good.clone(), 0x6A86));
    cases.push((0x80, 0x81, good.clone(), 0x6A86));
    for (p1, p2, data, want) in cases {
        let mut card = card();
        let before = key_info(&mut card);
        let mut host = open_scp03(&mut card);
        let cmd = CommandApdu::new(0x80, 0xD8, p1, p2).with_data(data.clone());
        assert_eq!(host.send(&mut card, &cmd).1, want, "{}", hx(&data));
        assert_eq!(key_info(&mut card), before);
    }
}

#[test]
fn a_full_key_table_is_refused() {
    let mut card = card();
    let old = scp03().1;
    let mut host = open_scp03(&mut card);
    for v in [0x31, 0x32, 0x33] {
        let d = encode_key_set(&aes_keys(v, 0x60), &KeyEncryption::Static(&old.keys)).unwrap();
        assert_eq!(host.send(&mut card, &put_key_cmd(0, d)).1, 0x9000);
    }
    let d = encode_key_set(&aes_keys(0x34, 0x60), &KeyEncryption::Static(&old.keys)).unwrap();
    assert_eq!(host.send(&mut card, &put_key_cmd(0, d)).1, 0x6A84);
}
