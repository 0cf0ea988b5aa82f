//! Shared helpers: a test card with the ISD and two plain applets, and a host that opens the
//! secure channel with `ykt_scp::HostSession`.

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_card::{Aid, Applet, Atr, Card, Context, SeededRandom, Selected};
use ykt_crypto::{AesKey, Sm4Key, TdesKey};
use ykt_gp::{IsdSetup, install_isd};
use ykt_scp::{HostConfig, HostSession, KeySet, Protocol, SecurityLevel};

pub const EPURSE_AID: &str = "A000000632010105";
pub const SECOND_AID: &str = "A000000632010106";
pub const ISD: &str = "A000000151000000";

pub fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

pub fn hx(b: &[u8]) -> String {
    hex::encode_upper(b)
}

/// An applet that answers SELECT and nothing else, standing for the e-purse and the second
/// ticket in the registry.
pub struct Plain(pub Aid);

impl Applet for Plain {
    fn aid(&self) -> &Aid {
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

pub fn setup(protocol: Protocol, keys: KeySet) -> IsdSetup {
    let mut s = IsdSetup::new(protocol, keys);
    s.iin = h("00 11 22 33");
    s.cin = h("01 02 03 04 05 06 07 08");
    for (i, b) in s.cplc.iter_mut().enumerate() {
        *b = i as u8;
    }
    s
}

pub fn scp03() -> (Protocol, KeySet) {
    (Protocol::scp03(0x70).unwrap(), aes_keys(0x30, 0x40))
}

/// A powered card with two plain applets and the ISD, ISD selected.
pub fn card_with(setup: &IsdSetup) -> Card {
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(7)));
    for aid in [EPURSE_AID, SECOND_AID] {
        card.install(Box::new(Plain(Aid::new(&h(aid)).unwrap())), |_| Ok(()))
            .unwrap();
    }
    // The library INSTALL creates security domains from.
    card.set_library(Box::new(ykt_gp::IsdFactory));
    install_isd(&mut card, setup).unwrap();
    card.power_on();
    select_isd(&mut card);
    card
}

pub fn card() -> Card {
    let (p, k) = scp03();
    card_with(&setup(p, k))
}

pub fn select_isd(card: &mut Card) {
    let (_, sw) = send(card, &h("00A4040008A000000151000000"));
    assert_eq!(sw, 0x9000);
}

/// Sends `cmd`; returns (data, SW).
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

/// A host with an open session.
pub struct Host {
    pub session: HostSession,
}

/// Opens a session; `Err(sw)` when INITIALIZE UPDATE or EXTERNAL AUTHENTICATE is refused.
pub fn open(
    card: &mut Card,
    protocol: Protocol,
    keys: &KeySet,
    level: SecurityLevel,
) -> Result<Host, u16> {
    let config = HostConfig {
        keys: keys.clone(),
        protocol,
        level,
        security_domain_aid: Some(h(ISD)),
    };
    open_with(card, config)
}

/// Opens a session with `config` (to the selected SD).
pub fn open_with(card: &mut Card, config: HostConfig) -> Result<Host, u16> {
    let (mut session, iu) = HostSession::initialize_update(config, &[0x11; 8]).unwrap();
    let r = card.transmit(&iu.to_bytes()).unwrap();
    let resp = ResponseApdu::parse(&r).unwrap();
    if !resp.is_success() {
        return Err(u16::from_be_bytes(resp.sw.to_bytes()));
    }
    let ea = session
        .on_initialize_update_response(&resp)
        .map_err(|_| 0xFFFFu16)?;
    let r = card.transmit(&ea.to_bytes()).unwrap();
    let resp = ResponseApdu::parse(&r).unwrap();
    if !resp.is_success() {
        return Err(u16::from_be_bytes(resp.sw.to_bytes()));
    }
    session.on_external_authenticate_response(&resp).unwrap();
    Ok(Host { session })
}

pub fn open_scp03(card: &mut Card) -> Host {
    let (p, k) = scp03();
    open(card, p, &k, SecurityLevel::ALL).unwrap()
}

impl Host {
    /// Wraps, sends, unwraps (a success or a warning, e.g. `6310`); returns (plain data, SW).
    pub fn send(&mut self, card: &mut Card, cmd: &CommandApdu) -> (Vec<u8>, u16) {
        let wrapped = self.session.wrap(cmd).unwrap();
        let r = card.transmit(&wrapped.to_bytes()).unwrap();
        let resp = ResponseApdu::parse(&r).unwrap();
        let sw = u16::from_be_bytes(resp.sw.to_bytes());
        if resp.is_success() || resp.sw.is_warning() {
            let plain = self.session.unwrap(&resp).unwrap();
            (plain.data, sw)
        } else {
            (Vec::new(), sw)
        }
    }

    pub fn send_hex(&mut self, card: &mut Card, cmd: &str) -> (Vec<u8>, u16) {
        let c = CommandApdu::parse(&h(cmd)).unwrap();
        self.send(card, &c)
    }
}
