//! `emv`, `visa2` and `kdf3` against OpenSSL computing the same formulas (3DES-ECB, AES-CMAC,
//! SM4-CMAC) from inputs laid out here byte by byte.

use ykt_crypto::{AesKey, Sm4Key, TdesKey};
use ykt_gp_host::BuildError;
use ykt_gp_host::diversify::{Diversification, diversify};
use ykt_scp::{KeySet, StaticKeys};

use crate::support::{h, hx, openssl_cmac, openssl_ecb};

const KDD: &str = "00010203040506070809";

fn kdd() -> [u8; 10] {
    h(KDD).try_into().unwrap()
}

fn exposed(keys: &KeySet) -> [Vec<u8>; 3] {
    match &keys.keys {
        StaticKeys::Tdes { enc, mac, dek } => [
            enc.expose().to_vec(),
            mac.expose().to_vec(),
            dek.expose().to_vec(),
        ],
        StaticKeys::Aes { enc, mac, dek } => [
            enc.expose().to_vec(),
            mac.expose().to_vec(),
            dek.expose().to_vec(),
        ],
        StaticKeys::Sm4 { enc, mac, dek } => [
            enc.expose().to_vec(),
            mac.expose().to_vec(),
            dek.expose().to_vec(),
        ],
    }
}

#[test]
fn emv_and_visa2_are_3des_ecb_of_the_kdd_layout() {
    let master = h("404142434445464748494A4B4C4D4E4F");
    let m = || TdesKey::from_slice(&master).unwrap();
    let set = KeySet::tdes(0x00, m(), m(), m());
    let emv = diversify(&set, Diversification::Emv, &kdd(), 0x20).unwrap();
    let visa2 = diversify(&set, Diversification::Visa2, &kdd(), 0x20).unwrap();
    assert_eq!(emv.version, 0x20);
    for (i, k) in [1u8, 2, 3].iter().enumerate() {
        // EMV CPS: KDD[4..10] F0 k KDD[4..10] 0F k
        let input = h(&format!("040506070809F0{k:02X}0405060708090F{k:02X}"));
        assert_eq!(
            hx(&exposed(&emv)[i]),
            hx(&openssl_ecb("des-ede-ecb", &master, &input)),
            "emv key {k}"
        );
        // VISA2: KDD[0..2] KDD[4..8] F0 k KDD[0..2] KDD[4..8] 0F k
        let input = h(&format!("000104050607F0{k:02X}0001040506070F{k:02X}"));
        assert_eq!(
            hx(&exposed(&visa2)[i]),
            hx(&openssl_ecb("des-ede-ecb", &master, &input)),
            "visa2 key {k}"
        );
    }
}

#[test]
fn kdf3_is_the_counter_cmac_of_the_kdd_layout() {
    // AES-128 and SM4: one block; AES-256: two blocks (counter 01, 02).
    for (cipher, master) in [
        ("AES-128-CBC", h("404142434445464748494A4B4C4D4E4F")),
        ("SM4-CBC", h("404142434445464748494A4B4C4D4E4F")),
        (
            "AES-256-CBC",
            h("404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F"),
        ),
    ] {
        let set = if cipher.starts_with("SM4") {
            let m = || Sm4Key::from_slice(&master).unwrap();
            KeySet::sm4(0, m(), m(), m())
        } else {
            let m = || AesKey::from_slice(&master).unwrap();
            KeySet::aes(0, m(), m(), m())
        };
        let out = diversify(&set, Diversification::Kdf3, &kdd(), 0x30).unwrap();
        for (i, k) in [1u8, 2, 3].iter().enumerate() {
            let mut want = Vec::new();
            for counter in 1..=master.len() / 16 {
                let input = h(&format!("{counter:02X}000000{k:02X}00{KDD}"));
                want.extend(openssl_cmac(cipher, &master, &input));
            }
            assert_eq!(hx(&exposed(&out)[i]), hx(&want), "{cipher} key {k}");
        }
    }
}

#[test]
fn methods_refuse_the_other_algorithms() {
    let t = || TdesKey::from_slice(&[0x40; 16]).unwrap();
    let a = || AesKey::from_slice(&[0x40; 16]).unwrap();
    let tdes = KeySet::tdes(0, t(), t(), t());
    let aes = KeySet::aes(0, a(), a(), a());
    assert_eq!(
        diversify(&tdes, Diversification::Kdf3, &kdd(), 0).err(),
        Some(BuildError::KeyType)
    );
    assert_eq!(
        diversify(&aes, Diversification::Emv, &kdd(), 0).err(),
        Some(BuildError::KeyType)
    );
    assert_eq!(
        Diversification::from_name("visa2"),
        Some(Diversification::Visa2)
    );
    assert_eq!(Diversification::from_name("visa"), None);
}
