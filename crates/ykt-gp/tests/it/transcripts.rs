//! Hex transcripts (tests/data/*.apdu): each command's success and errors, outside and inside a
//! session opened by `ykt_scp::HostSession`.
//!
//! The session transcripts are deterministic (fixed host challenge, pseudo-random card
//! challenge from the persistent sequence counter), so they were written by running
//! `YKT_GP_WRITE_TRANSCRIPTS=1 cargo test -p ykt-gp --test it transcripts`, which records what
//! the host sends and the card answers (the plain-text host side of each step is the comment
//! above it), and then checked by hand against GP Card Specification v2.3.1 §11.

use std::fmt::Write as _;
use std::path::PathBuf;

use ykt_apdu::CommandApdu;
use ykt_card::testing::check_transcript;
use ykt_gp::commands::put_key::{KeyEncryption, encode_key_set};
use ykt_scp::{KeySet, Protocol, SecurityLevel};

use crate::support::*;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Records a session: each step is (comment, plain command).
fn record(
    (p, k): (Protocol, KeySet),
    steps: &[(&str, CommandApdu)],
    level: SecurityLevel,
) -> String {
    let mut card = card_with(&setup(p, k.clone()));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "!power_on\n# SELECT the ISD\n>> 00A4040008A000000151000000"
    );
    let _ = writeln!(out, "<< 6F108408A000000151000000A5049F6501FF9000");
    let config = ykt_scp::HostConfig {
        keys: k.clone(),
        protocol: p,
        level,
        security_domain_aid: Some(h(ISD)),
    };
    let (mut session, iu) = ykt_scp::HostSession::initialize_update(config, &[0x11; 8]).unwrap();
    let mut exchange = |out: &mut String, comment: &str, cmd: Vec<u8>| {
        let r = card.transmit(&cmd).unwrap();
        let _ = writeln!(out, "# {comment}\n>> {}\n<< {}", hx(&cmd), hx(&r));
        r
    };
    let r = exchange(
        &mut out,
        &format!(
            "INITIALIZE UPDATE KVN {:02X}, host challenge 11..11",
            k.version
        ),
        iu.to_bytes(),
    );
    let ea = session
        .on_initialize_update_response(&ykt_apdu::ResponseApdu::parse(&r).unwrap())
        .unwrap();
    let r = exchange(
        &mut out,
        &format!("EXTERNAL AUTHENTICATE level {:02X}", level.to_byte()),
        ea.to_bytes(),
    );
    session
        .on_external_authenticate_response(&ykt_apdu::ResponseApdu::parse(&r).unwrap())
        .unwrap();
    for (comment, cmd) in steps {
        let w = session.wrap(cmd).unwrap();
        let r = exchange(
            &mut out,
            &format!("{comment}: {}", hx(&cmd.to_bytes())),
            w.to_bytes(),
        );
        let resp = ykt_apdu::ResponseApdu::parse(&r).unwrap();
        if resp.is_success() {
            let plain = session.unwrap(&resp).unwrap();
            let _ = writeln!(out, "#   plain response: {}", hx(&plain.to_bytes()));
        }
    }
    out
}

fn c(hex: &str) -> CommandApdu {
    CommandApdu::parse(&h(hex)).unwrap()
}

/// A case-4 command: header, data (Lc computed), Le `00`.
fn cd(header: &str, data: &str) -> CommandApdu {
    let data = h(data);
    let mut b = h(header);
    b.push(data.len() as u8);
    b.extend_from_slice(&data);
    b.push(0);
    CommandApdu::parse(&b).unwrap()
}

/// The steps of a session; PUT KEY when `put_key` gives the new key set and the current one.
fn session_steps(put_key: Option<(KeySet, KeySet)>) -> Vec<(&'static str, CommandApdu)> {
    let mut steps = vec![
        ("GET STATUS ISD", c("80F28002024F0000")),
        ("GET STATUS applications", c("80F24002024F0000")),
        (
            "GET STATUS applications, tag list 4F 9F70",
            c("80F24002074F005C034F9F7000"),
        ),
        (
            "GET STATUS load files: the security-domain package",
            c("80F22002024F0000"),
        ),
        ("GET STATUS bad P1", c("80F20102024F0000")),
        ("GET STATUS bad data", c("80F24002024F0100")),
        ("GET DATA key information", c("80CA00E000")),
        ("GET DATA sequence counter", c("80CA00C100")),
        (
            "SET STATUS lock the e-purse",
            c("80F0408008A000000632010105"),
        ),
        (
            "SET STATUS lock it again: 6985",
            c("80F0408008A000000632010105"),
        ),
        ("SET STATUS unlock it", c("80F0400008A000000632010105")),
        (
            "SET STATUS unknown AID: 6A88",
            c("80F0408008A000000632010199"),
        ),
        ("SET STATUS card back to INITIALIZED: 6985", c("80F0800700")),
        ("SET STATUS card state 03: 6A80", c("80F0800300")),
        ("SET STATUS lock the card", c("80F0807F00")),
        ("SET STATUS unlock the card", c("80F0800F00")),
        // Card content (tsm-gp.md §3.1–§3.3, §3.7; docs/gp.md).
        (
            "INSTALL [for load] of the SD package, on the card already: 6985",
            cd("80E60200", "07A000000151535000000000"),
        ),
        (
            "INSTALL [for load] of a load file the library lacks",
            cd("80E60200", "07A000000632999900000000"),
        ),
        (
            "LOAD of it: no such package: 6A80",
            cd("80E88000", "C40E594B540107A00000063299990100"),
        ),
        (
            "INSTALL [for install and make selectable] an SSD (Authorized Management)",
            cd(
                "80E60C00",
                "07A000000151535008A0000001515350410AA000000151535041AA010380400002C90000",
            ),
        ),
        (
            "INSTALL the same instance again: 6A80",
            cd(
                "80E60C00",
                "07A000000151535008A0000001515350410AA000000151535041AA010380400002C90000",
            ),
        ),
        (
            "INSTALL with a token from the ISD: 6982",
            cd(
                "80E60C00",
                "07A000000151535008A0000001515350410AA000000151535041AA020380400002C90002AABB",
            ),
        ),
        (
            "INSTALL [for personalization] of the SSD",
            cd("80E62000", "00000AA000000151535041AA01000000"),
        ),
        (
            "STORE DATA to it with a DGI it does not know: 6A88",
            cd("80E28800", "80020100"),
        ),
        (
            "GET STATUS applications: the SSD listed",
            c("80F24002024F0000"),
        ),
        (
            "SET STATUS lock the SSD and its applications (P1 60)",
            c("80F060800AA000000151535041AA01"),
        ),
        ("DELETE the SSD", cd("80E40000", "4F0AA000000151535041AA01")),
        (
            "DELETE it again: 6A88",
            cd("80E40000", "4F0AA000000151535041AA01"),
        ),
        (
            "DELETE the ISD: 6985",
            cd("80E40000", "4F08A000000151000000"),
        ),
        (
            "STORE DATA to the ISD: IIN (BER-TLV)",
            cd("80E29000", "4204CAFE0001"),
        ),
        ("GET DATA IIN", c("80CA004200")),
    ];
    let Some((new, old)) = put_key else {
        return steps;
    };
    let add = encode_key_set(&new, &KeyEncryption::Static(&old.keys)).unwrap();
    let mut bad_kcv = add.clone();
    bad_kcv[22] ^= 0x01;
    steps.extend([
        (
            "PUT KEY wrong KCV: 6A80",
            CommandApdu::new(0x80, 0xD8, 0x00, 0x81).with_data(bad_kcv),
        ),
        (
            "PUT KEY unknown KVN 35 to replace: 6A88",
            CommandApdu::new(0x80, 0xD8, 0x35, 0x81).with_data(add.clone()),
        ),
        (
            "PUT KEY add KVN 31 (keys 60.., 61.., 62..)",
            CommandApdu::new(0x80, 0xD8, 0x00, 0x81)
                .with_data(add)
                .with_le(256),
        ),
        ("GET DATA key information: KVN 30 and 31", c("80CA00E000")),
    ]);
    steps
}

#[test]
fn transcripts() {
    if std::env::var_os("YKT_GP_WRITE_TRANSCRIPTS").is_some() {
        let header = "# The ISD in a session at level 33 (C-MAC, C-DEC, R-MAC, R-ENC), SCP03 i=70.\n\
                      # Each command's plain form is in its comment; see README.md.\n";
        let aes = Some((aes_keys(0x31, 0x60), scp03().1));
        let body = record(scp03(), &session_steps(aes.clone()), SecurityLevel::ALL);
        std::fs::write(path("isd_session_scp03.apdu"), format!("{header}{body}")).unwrap();
        let header = "# The ISD in a session at level 01 (C-MAC only), SCP03 i=70.\n";
        let body = record(scp03(), &session_steps(aes), SecurityLevel::C_MAC);
        std::fs::write(path("isd_session_cmac.apdu"), format!("{header}{body}")).unwrap();
        let header =
            "# The ISD with SCP02 i=55 (3DES keys 40.., 41.., 42.. at KVN 20), level 03.\n";
        let scp02 = (Protocol::scp02(0x55).unwrap(), tdes_keys(0x20, 0x40));
        let body = record(scp02, &session_steps(None), SecurityLevel::C_DEC_C_MAC);
        std::fs::write(path("isd_session_scp02.apdu"), format!("{header}{body}")).unwrap();
        let header = "# The ISD with the SM4 channel i=70 (SM4 keys 40.., 41.., 42.. at KVN 30), \
                      level 33; PUT KEY with key type 89.\n";
        let sm4 = (Protocol::sm4(0x70).unwrap(), sm4_keys(0x30, 0x40));
        let put = Some((sm4_keys(0x31, 0x60), sm4.1.clone()));
        let body = record(sm4, &session_steps(put), SecurityLevel::ALL);
        std::fs::write(path("isd_session_sm4.apdu"), format!("{header}{body}")).unwrap();
    }
    for (name, (p, k)) in [
        ("isd_plain.apdu", scp03()),
        ("isd_session_scp03.apdu", scp03()),
        ("isd_session_cmac.apdu", scp03()),
        (
            "isd_session_scp02.apdu",
            (Protocol::scp02(0x55).unwrap(), tdes_keys(0x20, 0x40)),
        ),
        (
            "isd_session_sm4.apdu",
            (Protocol::sm4(0x70).unwrap(), sm4_keys(0x30, 0x40)),
        ),
    ] {
        let mut card = card_with(&setup(p, k));
        card.power_off();
        assert!(check_transcript(&mut card, path(name)) > 5, "{name}");
    }
}
