//! The secure channel through the ISD: each protocol, the persistent sequence counter, levels.

use ykt_apdu::CommandApdu;
use ykt_gp::{IsdFactory, commands::required_level};
use ykt_scp::{Protocol, SecurityLevel};

use crate::support::*;

fn get_status_isd() -> CommandApdu {
    CommandApdu::new(0x80, 0xF2, 0x80, 0x02)
        .with_data(h("4F00"))
        .with_le(256)
}

#[test]
fn scp03_i70_opens_and_wraps_at_every_level() {
    for level in [
        SecurityLevel::C_MAC,
        SecurityLevel::C_DEC_C_MAC,
        SecurityLevel::C_MAC_R_MAC,
        SecurityLevel::C_DEC_C_MAC_R_MAC,
        SecurityLevel::ALL,
    ] {
        let mut card = card();
        let (p, k) = scp03();
        let mut host = open(&mut card, p, &k, level).unwrap();
        let (data, sw) = host.send(&mut card, &get_status_isd());
        assert_eq!(sw, 0x9000, "level {level:?}");
        assert_eq!(hx(&data), "E3134F08A0000001510000009F70010FC5039EFE80");
    }
}

#[test]
fn scp02_and_sm4_channels_open() {
    for (protocol, keys) in [
        (Protocol::scp02(0x15).unwrap(), tdes_keys(0x20, 0x40)),
        (Protocol::scp02(0x55).unwrap(), tdes_keys(0x20, 0x40)),
        (Protocol::sm4(0x70).unwrap(), sm4_keys(0x30, 0x40)),
        (Protocol::scp03(0x00).unwrap(), aes_keys(0x30, 0x40)),
    ] {
        let mut card = card_with(&setup(protocol, keys.clone()));
        let mut host = open(&mut card, protocol, &keys, SecurityLevel::C_DEC_C_MAC).unwrap();
        let (_, sw) = host.send(&mut card, &get_status_isd());
        assert_eq!(sw, 0x9000, "{protocol:?}");
    }
}

#[test]
fn sequence_counter_persists_and_increments_per_initialize_update() {
    let mut card = card();
    assert_eq!(hx(&send(&mut card, &h("80CA00C100")).0), "C103000000");
    let _ = open_scp03(&mut card);
    let _ = open_scp03(&mut card);
    let state = card.save_state();
    let mut card = ykt_card::Card::load_state(
        &state,
        ykt_card::Atr::default_t1(),
        Box::new(ykt_card::SeededRandom::new(1)),
        &Factory,
    )
    .unwrap();
    card.power_on();
    select_isd(&mut card);
    assert_eq!(hx(&send(&mut card, &h("80CA00C100")).0), "C103000002");
    let mut host = open_scp03(&mut card);
    assert_eq!(host.send_hex(&mut card, "80CA00C100").0, h("C103000003"));
}

/// The ISD factory, and the plain test applets.
struct Factory;

impl ykt_card::AppletFactory for Factory {
    fn create(
        &self,
        kind: &str,
        aid: &ykt_card::Aid,
        params: &[u8],
    ) -> Option<Box<dyn ykt_card::Applet + Send>> {
        if kind == "test.plain" {
            return Some(Box::new(Plain(aid.clone())));
        }
        IsdFactory.create(kind, aid, params)
    }
}

#[test]
fn wrong_keys_are_refused_and_unknown_versions_are_not_found() {
    let mut card = card();
    let (p, _) = scp03();
    assert_eq!(
        open(&mut card, p, &aes_keys(0x30, 0x99), SecurityLevel::C_MAC).err(),
        Some(0xFFFF),
        "the host refuses the card cryptogram"
    );
    assert_eq!(
        open(&mut card, p, &aes_keys(0x31, 0x40), SecurityLevel::C_MAC).err(),
        Some(0x6A88)
    );
    // INITIALIZE UPDATE must be CLA 80.
    assert_eq!(sw(&mut card, &h("84503000081111111111111111")), 0x6E00);
}

#[test]
fn commands_below_their_level_are_refused() {
    let mut card = card();
    for cmd in ["80F28002024F00", "80F0800F00", "80D80081024F00"] {
        assert_eq!(sw(&mut card, &h(cmd)), 0x6982, "{cmd} outside a session");
    }
    assert_eq!(required_level(0xF2), Some(SecurityLevel::C_MAC));
    assert_eq!(required_level(0xCA), None);
    // A plain command inside a C-MAC session closes it.
    let mut host = open_scp03(&mut card);
    assert_eq!(sw(&mut card, &h("80F28002024F00")), 0x6982);
    let (_, s) = host.send(&mut card, &get_status_isd());
    assert_eq!(s, 0x6982, "the session is closed");
}

#[test]
fn a_session_ends_with_reselection_and_reset() {
    let mut card = card();
    let mut host = open_scp03(&mut card);
    select_isd(&mut card);
    assert_eq!(host.send(&mut card, &get_status_isd()).1, 0x6982);
    let mut host = open_scp03(&mut card);
    card.reset();
    select_isd(&mut card);
    assert_eq!(host.send(&mut card, &get_status_isd()).1, 0x6982);
}

#[test]
fn a_session_without_c_mac_does_not_reach_card_management() {
    let (p, k) = scp03();
    let mut s = setup(p, k.clone());
    s.minimum_level = SecurityLevel::NONE;
    let mut card = card_with(&s);
    let _host = open(&mut card, p, &k, SecurityLevel::NONE).unwrap();
    assert_eq!(sw(&mut card, &h("80F28002024F0000")), 0x6982);
    assert_eq!(sw(&mut card, &h("80CA004500")), 0x9000);
    // With the default minimum, level 00 is refused at EXTERNAL AUTHENTICATE.
    let mut card = crate::support::card();
    assert_eq!(
        open(&mut card, p, &k, SecurityLevel::NONE).err(),
        Some(0x6982)
    );
}
