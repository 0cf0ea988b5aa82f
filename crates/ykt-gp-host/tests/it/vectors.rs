//! The brief's §9 vectors through `GpSession`: the bytes a session puts on the wire when the
//! card answers as in the vector.

use ykt_crypto::{AesKey, TdesKey};
use ykt_gp_host::{GpSession, SessionConfig};
use ykt_scp::{KeySet, Protocol, SecurityLevel};

use crate::support::{h, hx, isd, openssl_ecb, scripted};

const SELECT_ISD: &str = "00A4040008A00000015100000000";

/// §9.1 (kaoh/globalplatform `scp03Test.c`): SCP03 AES-128, `i` = 70, level 03, KVN 00 in
/// INITIALIZE UPDATE, pseudo-random card challenge checked against the ISD AID.
#[test]
fn scp03_open_matches_the_kaoh_vector() {
    let k = |s: &str| AesKey::from_slice(&h(s)).unwrap();
    let keys = KeySet::aes(
        0x00,
        k("F995D0A069335C7DF42E590317FFEA6D"),
        k("58563362EC5A4541ABCD32B34B1EAE7D"),
        k("0A02A6D687406DCFA09DC70B3EDB7E38"),
    );
    let transmit = scripted(vec![
        (Some(h(SELECT_ISD)), h("9000")),
        (
            Some(h("80500000089BD6BF878FB8E99100")),
            h("00000000000000000000 300370 3C80C2CC87EB3A35 E4EDBA35E629C336 00001E 9000"),
        ),
        (
            Some(h("848203001023EBFEDC579D22CDCDB6A25A5FF7891F")),
            h("9000"),
        ),
    ]);
    let config = SessionConfig {
        security_domain: isd(),
        keys,
        diversification: None,
        protocol: Protocol::scp03(0x70).unwrap(),
        level: SecurityLevel::C_DEC_C_MAC,
    };
    let session = GpSession::open(transmit, config, &h("9BD6BF878FB8E991")).unwrap();
    assert_eq!(session.key_version(), 0x30);
    assert_eq!(session.key_diversification_data(), &[0; 10]);
}

/// §9.3 (osmocom/pysim): SCP02 with ICV encryption (`i` = 15), level 01; then PUT KEY, whose
/// key blocks are 3DES-ECB under the session DEK the brief computed
/// (`511DB767812597722109C867F9D7257A`), checked with OpenSSL.
#[test]
fn scp02_open_matches_the_pysim_vector_and_put_key_uses_its_session_dek() {
    let k = |s: &str| TdesKey::from_slice(&h(s)).unwrap();
    let keys = KeySet::tdes(
        0x20,
        k("100102030405060708090A0B0C0D0E0F"),
        k("101102030405060708090A0B0C0D0E0F"),
        k("102102030405060708090A0B0C0D0E0F"),
    );
    let new_value = h("404142434445464748494A4B4C4D4E4F");
    let enc = openssl_ecb(
        "des-ede-ecb",
        &h("511DB767812597722109C867F9D7257A"),
        &new_value,
    );
    let kcv = openssl_ecb("des-ede-ecb", &new_value, &[0; 8]);
    let block = format!("8010{}03{}", hx(&enc), hx(&kcv[..3]));
    let plain_data = format!("21{block}{block}{block}");
    let response = format!("21{0}{0}{0}9000", hx(&kcv[..3]));
    let mut put_key_seen = false;
    let mut script = scripted(vec![
        (Some(h(SELECT_ISD)), h("9000")),
        (
            Some(h("805020000840A62C37FA6304F800")),
            h("00000000000000000000 7002 0001 6B4524ABEE7C F32EA3838BC148F3 9000"),
        ),
        (
            Some(h("8482010010BA6961667737C5BCEBECE14C7D6A4376")),
            h("9000"),
        ),
        (None, h(&response)),
    ]);
    let transmit = |cmd: &[u8]| {
        if cmd[1] == 0xD8 {
            // 84 D8 20 81 Lc (data ‖ C-MAC) 00: level 01 leaves the data in clear.
            assert_eq!(hx(&cmd[..4]), "84D82081");
            assert_eq!(usize::from(cmd[4]), plain_data.len() / 2 + 8);
            assert_eq!(hx(&cmd[5..5 + plain_data.len() / 2]), plain_data);
            put_key_seen = true;
        }
        script(cmd)
    };
    let config = SessionConfig {
        security_domain: isd(),
        keys,
        diversification: None,
        protocol: Protocol::scp02(0x15).unwrap(),
        level: SecurityLevel::C_MAC,
    };
    let mut session = GpSession::open(transmit, config, &h("40A62C37FA6304F8")).unwrap();
    let t = || TdesKey::from_slice(&new_value).unwrap();
    session
        .put_key(Some(0x20), &KeySet::tdes(0x21, t(), t(), t()))
        .unwrap();
    drop(session);
    assert!(put_key_seen);
}
