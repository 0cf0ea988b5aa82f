//! Shared helpers: hex, OpenSSL, a scripted transmit function and a simulated card with the
//! ISD.

use std::io::Write;
use std::process::{Command, Stdio};

use ykt_apdu::{CommandApdu, StatusWord};
use ykt_card::{Aid as CardAid, Applet, Atr, Card, Context, SeededRandom, Selected};
use ykt_crypto::{AesKey, Sm4Key, TdesKey};
use ykt_gp::{IsdSetup, install_isd};
use ykt_gp_host::{Aid, GpSession, ISD_AID, SessionConfig};
use ykt_scp::{KeySet, Protocol, SecurityLevel};

pub const EPURSE_AID: &str = "A000000632010105";
pub const SECOND_AID: &str = "A000000632010106";

pub fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

pub fn hx(b: &[u8]) -> String {
    hex::encode_upper(b)
}

pub fn aid(s: &str) -> Aid {
    Aid::new(&h(s)).unwrap()
}

pub fn isd() -> Aid {
    Aid::new(&ISD_AID).unwrap()
}

/// Runs `openssl args..` with `stdin`, returning stdout.
pub fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the OpenSSL 3 CLI is needed for the cross-checks");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// ECB encryption without padding with an OpenSSL cipher name (`des-ede-ecb`, `aes-128-ecb`,
/// `sm4-ecb`).
pub fn openssl_ecb(cipher: &str, key: &[u8], data: &[u8]) -> Vec<u8> {
    openssl(
        &[
            "enc",
            &format!("-{cipher}"),
            "-K",
            &hex::encode(key),
            "-nopad",
        ],
        data,
    )
}

/// CBC encryption, zero IV, no padding.
pub fn openssl_cbc(cipher: &str, key: &[u8], data: &[u8]) -> Vec<u8> {
    let iv = "00".repeat(16);
    openssl(
        &[
            "enc",
            &format!("-{cipher}"),
            "-K",
            &hex::encode(key),
            "-iv",
            &iv,
            "-nopad",
        ],
        data,
    )
}

/// CMAC with an OpenSSL CBC cipher name (`AES-128-CBC`, `SM4-CBC`).
pub fn openssl_cmac(cipher: &str, key: &[u8], data: &[u8]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("ykt-gp-host-cmac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.bin", hex::encode(&data[..data.len().min(16)])));
    std::fs::write(&file, data).unwrap();
    let out = openssl(
        &[
            "mac",
            "-cipher",
            cipher,
            "-macopt",
            &format!("hexkey:{}", hex::encode(key)),
            "-in",
            file.to_str().unwrap(),
            "CMAC",
        ],
        &[],
    );
    h(String::from_utf8(out).unwrap().trim())
}

/// A transmit function that checks each command against a script and gives the scripted
/// response: `(expected command, response)`, `None` for "any command".
pub fn scripted(
    script: Vec<(Option<Vec<u8>>, Vec<u8>)>,
) -> impl FnMut(&[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut steps = script.into_iter();
    move |cmd: &[u8]| {
        let (expected, resp) = steps
            .next()
            .unwrap_or_else(|| panic!("unscripted {}", hx(cmd)));
        if let Some(e) = expected {
            assert_eq!(hx(cmd), hx(&e), "command");
        }
        Ok(resp)
    }
}

/// An applet that answers SELECT and nothing else.
pub struct Plain(pub CardAid);

impl Applet for Plain {
    fn aid(&self) -> &CardAid {
        &self.0
    }
    fn kind(&self) -> &'static str {
        "test.plain"
    }
    fn install_params(&self) -> Vec<u8> {
        Vec::new()
    }
    fn select(&mut self, _: &mut Context<'_>) -> Result<Selected, StatusWord> {
        Ok(Selected::ok(Vec::new()))
    }
    fn process(&mut self, _: &mut Context<'_>, _: &CommandApdu) -> Result<Vec<u8>, StatusWord> {
        Err(StatusWord::INS_NOT_SUPPORTED)
    }
    fn reset_volatile(&mut self) {}
}

pub fn aes_keys(version: u8, base: u8) -> KeySet {
    let k = |d: u8| AesKey::from_slice(&[base.wrapping_add(d); 16]).unwrap();
    KeySet::aes(version, k(0), k(1), k(2))
}

pub fn tdes_keys(version: u8, base: u8) -> KeySet {
    let k = |d: u8| TdesKey::from_slice(&[base.wrapping_add(d); 16]).unwrap();
    KeySet::tdes(version, k(0), k(1), k(2))
}

pub fn sm4_keys(version: u8, base: u8) -> KeySet {
    let k = |d: u8| Sm4Key::from_slice(&[base.wrapping_add(d); 16]).unwrap();
    KeySet::sm4(version, k(0), k(1), k(2))
}

/// The three channels with their initial key sets (KVN 30, bytes 40, 41, 42).
pub fn channels() -> Vec<(&'static str, Protocol, KeySet)> {
    vec![
        (
            "scp03",
            Protocol::scp03(0x70).unwrap(),
            aes_keys(0x30, 0x40),
        ),
        (
            "scp02",
            Protocol::scp02(0x55).unwrap(),
            tdes_keys(0x30, 0x40),
        ),
        ("sm4", Protocol::sm4(0x70).unwrap(), sm4_keys(0x30, 0x40)),
    ]
}

pub const TEST_KDD: [u8; 10] = [0x59, 0x4B, 0x54, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66];

pub fn setup(protocol: Protocol, keys: KeySet) -> IsdSetup {
    let mut s = IsdSetup::new(protocol, keys);
    s.iin = h("00 11 22 33");
    s.cin = h("01 02 03 04 05 06 07 08");
    s.key_diversification_data = TEST_KDD;
    for (i, b) in s.cplc.iter_mut().enumerate() {
        *b = i as u8;
    }
    s
}

/// A powered card with two plain applets and the ISD.
pub fn card_with(setup: &IsdSetup) -> Card {
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(7)));
    for a in [EPURSE_AID, SECOND_AID] {
        card.install(Box::new(Plain(CardAid::new(&h(a)).unwrap())), |_| Ok(()))
            .unwrap();
    }
    install_isd(&mut card, setup).unwrap();
    card.power_on();
    card
}

pub type Transmit<'a> = Box<dyn FnMut(&[u8]) -> Result<Vec<u8>, ykt_card::CardError> + 'a>;

/// A transmit function over `card`.
pub fn over(card: &mut Card) -> Transmit<'_> {
    Box::new(move |cmd: &[u8]| card.transmit(cmd))
}

pub fn config(protocol: Protocol, keys: KeySet, level: SecurityLevel) -> SessionConfig {
    SessionConfig {
        security_domain: isd(),
        keys,
        diversification: None,
        protocol,
        level,
    }
}

/// Opens a session on `card`.
pub fn open<'a>(
    card: &'a mut Card,
    protocol: Protocol,
    keys: &KeySet,
    level: SecurityLevel,
) -> Result<GpSession<Transmit<'a>>, ykt_gp_host::Error<ykt_card::CardError>> {
    GpSession::open(
        over(card),
        config(protocol, keys.clone(), level),
        &[0x11; 8],
    )
}
