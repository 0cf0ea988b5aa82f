//! The PSAM applet: transcripts of every command (tests/data/psam_*.apdu, with a state check on every
//! error), the state file round trip, personalisation errors, key redaction, the two-level
//! diversification, APPLICATION BLOCK of the purse with a PSAM-made MAC, and the TTSN under power
//! cuts at every write of `80 70`.

use ykt_card::{Atr, Card, CardError, SeededRandom};
use ykt_crypto::purse::{PurseAlgorithm, PurseKey, Sm4Rules, diversify};
use ykt_purse::psam::{
    DiversificationOrder, IssuedPsam, PSAM_AID, PSAM_KIND, PsamAppletFactory, PsamData,
    TWO_LEVEL_ORDER, diversify_two_level,
};
use ykt_purse::testing::{
    TEST_ASN, TEST_KEY_INDEX, TEST_MASTER_DPK, TEST_TERMINAL_ID, danger_psam_card,
    danger_test_card_3des, danger_test_card_sm4, danger_test_psam_3des, danger_test_psam_sm4,
    test_psam, test_psam_master_keys,
};
use ykt_purse::{IssueError, KeyUsage, MasterKey};

use crate::commands::check_transcript_state;
use crate::support::*;

/// `80 70` of the §8.2 purchase (28-byte form).
pub const MAC1_CMD: &str =
    "807000001C 5E6F7A8B 0000 000000C8 06 20240115103500 01 00 1000000012345678 08";

pub fn select_psam(card: &mut Card) {
    assert_eq!(sw(card, &h("00A4040007A0000006324D4F")), 0x9000);
}

/// The TTSN the PSAM answers to the next `80 70` (which uses it up).
pub fn next_ttsn(card: &mut Card) -> u32 {
    let (r, s) = send(card, &h(MAC1_CMD));
    assert_eq!(s, 0x9000, "80 70");
    u32::from_be_bytes(r[..4].try_into().unwrap())
}

#[test]
fn s8_2_purchase_3des() {
    let mut card = danger_test_psam_3des().unwrap();
    assert_eq!(
        check_transcript_state(&mut card, "psam_s8_2_purchase_3des.apdu"),
        8
    );
}

#[test]
fn s8_2_composite_3des() {
    let mut card = danger_test_psam_3des().unwrap();
    check_transcript_state(&mut card, "psam_s8_2_composite_3des.apdu");
}

#[test]
fn s8_3_sm4() {
    let mut card = danger_test_psam_sm4().unwrap();
    check_transcript_state(&mut card, "psam_s8_3_sm4.apdu");
}

#[test]
fn two_level_diversification() {
    let mut card = danger_test_psam_3des().unwrap();
    check_transcript_state(&mut card, "psam_two_level.apdu");
}

#[test]
fn secure_messaging_macs() {
    let mut card = danger_test_psam_3des().unwrap();
    check_transcript_state(&mut card, "psam_mac_3des.apdu");
    let mut card = danger_test_psam_sm4().unwrap();
    check_transcript_state(&mut card, "psam_mac_sm4.apdu");
}

#[test]
fn every_refusal() {
    let mut card = danger_test_psam_3des().unwrap();
    assert!(check_transcript_state(&mut card, "psam_errors.apdu") > 60);
}

#[test]
fn ttsn_at_its_end() {
    let data = PsamData::new(TEST_TERMINAL_ID, TEST_KEY_INDEX, 0xFFFF_FFFE);
    let psam = IssuedPsam::new(
        &PSAM_AID,
        data,
        &test_psam_master_keys(PurseAlgorithm::Tdes),
    );
    let mut card = danger_psam_card(psam.unwrap()).unwrap();
    check_transcript_state(&mut card, "psam_ttsn_max.apdu");
}

#[test]
fn the_two_level_order_is_the_briefs_l_choice() {
    assert_eq!(TWO_LEVEL_ORDER, DiversificationOrder::IssuerThenCard);
    let alg = PurseAlgorithm::Tdes;
    let mk = PurseKey::from_bytes(TEST_MASTER_DPK);
    let div = TEST_ASN.diversifier();
    let issuer = h("01011000FFFFFFFF").try_into().unwrap();
    let two = diversify_two_level(&alg, &mk, &div, &issuer, TWO_LEVEL_ORDER);
    // psam_host.py: "two-level DPK".
    assert_eq!(hx(two.expose()), "1A093911CF52A88DE4613D952CBA1A3F");
    let other = diversify_two_level(
        &alg,
        &mk,
        &div,
        &issuer,
        DiversificationOrder::CardThenIssuer,
    );
    assert_eq!(
        other.expose(),
        diversify(&alg, &diversify(&alg, &mk, &div), &issuer).expose()
    );
    assert_ne!(two.expose(), other.expose());
}

#[test]
fn state_file_round_trip_keeps_the_serial() {
    let mut card = danger_test_psam_3des().unwrap();
    select_psam(&mut card);
    assert_eq!(next_ttsn(&mut card), 1);
    assert_eq!(next_ttsn(&mut card), 2);
    let state = card.save_state();
    let mut copy = Card::load_state(
        &state,
        Atr::default_t1(),
        Box::new(SeededRandom::new(1)),
        &PsamAppletFactory,
    )
    .unwrap();
    copy.power_on();
    assert_eq!(hx(&send(&mut copy, &h("00B0960006")).0), "112233445566");
    select_psam(&mut copy);
    assert_eq!(next_ttsn(&mut copy), 3);
    // The purse factory does not know the PSAM kind, and the PSAM factory no other kind.
    assert!(
        Card::load_state(
            &state,
            Atr::default_t1(),
            Box::new(SeededRandom::new(1)),
            &ykt_purse::PurseAppletFactory,
        )
        .is_err()
    );
    use ykt_card::AppletFactory;
    let aid = ykt_card::Aid::new(&PSAM_AID).unwrap();
    assert!(PsamAppletFactory.create(PSAM_KIND, &aid, &[0x01]).is_some());
    assert!(PsamAppletFactory.create(PSAM_KIND, &aid, &[0x02]).is_none());
    assert!(
        PsamAppletFactory
            .create("ykt.purse", &aid, &[0x01])
            .is_none()
    );
}

#[test]
fn personalisation_errors_and_redaction() {
    let data = PsamData::new(TEST_TERMINAL_ID, 1, 1);
    let mut keys = test_psam_master_keys(PurseAlgorithm::Tdes);
    keys.push(keys[0].clone());
    assert!(matches!(
        IssuedPsam::new(&PSAM_AID, data, &keys),
        Err(IssueError::DuplicateKey {
            usage: KeyUsage::Purchase,
            index: 1
        })
    ));
    // Same usage and index, another version or algorithm: allowed.
    let mut keys = test_psam_master_keys(PurseAlgorithm::Tdes);
    keys.push(MasterKey {
        version: 2,
        ..keys[0].clone()
    });
    keys.push(MasterKey {
        algorithm: PurseAlgorithm::Sm4(Sm4Rules::BRIEF),
        ..keys[0].clone()
    });
    assert!(IssuedPsam::new(&PSAM_AID, data, &keys).is_ok());
    assert!(matches!(
        IssuedPsam::new(&[0xA0, 0x00], data, &keys),
        Err(IssueError::InvalidAid)
    ));
    let psam = test_psam(PurseAlgorithm::Tdes).unwrap();
    let debug = format!("{psam:?}");
    assert!(debug.contains("[redacted]"), "{debug}");
    assert!(!debug.contains("11, 22") && !debug.contains("112233445566778"));
    // The installed applet's Debug shows no key either.
    let card = danger_psam_card(psam).unwrap();
    assert!(!format!("{card:?}").contains("8877665544332211"));
}

#[test]
fn a_dual_algorithm_psam_picks_the_key_by_algorithm_id() {
    let mut keys = test_psam_master_keys(PurseAlgorithm::Tdes);
    keys.extend(test_psam_master_keys(PurseAlgorithm::Sm4(Sm4Rules::BRIEF)));
    let psam = IssuedPsam::new(&PSAM_AID, PsamData::new(TEST_TERMINAL_ID, 1, 1), &keys).unwrap();
    let mut card = danger_psam_card(psam).unwrap();
    select_psam(&mut card);
    let (r, s) = send(&mut card, &h(MAC1_CMD));
    assert_eq!((hx(&r), s), ("000000015878A361".into(), 0x9000));
    let sm4 = MAC1_CMD.replace("01 00 1000", "01 04 1000");
    let (r, s) = send(&mut card, &h(&sm4));
    // psam_host.py, SM4 single-level type 06 TTSN 00000002.
    assert_eq!((hx(&r), s), ("0000000235B8C3B0".into(), 0x9000));
}

/// GET CHALLENGE on the purse, the MAC from the PSAM (80 1A, 80 FA), APPLICATION BLOCK on the purse.
fn block_with_psam_mac(purse: &mut Card, psam: &mut Card, block: usize, flip: bool) -> u16 {
    let (challenge, s) = send(purse, &h("0084000004"));
    assert_eq!(s, 0x9000);
    assert_eq!(sw(psam, &h("801A360108 1000000012345678")), 0x9000);
    let mut data = challenge.clone();
    data.extend_from_slice(&[0; 4]);
    let mut padded = h("841E000004 80");
    padded.resize(block, 0);
    data.extend_from_slice(&padded);
    let mut cmd = vec![0x80, 0xFA, 0x05, 0x00, data.len() as u8];
    cmd.extend_from_slice(&data);
    let (mut mac, s) = send(psam, &cmd);
    assert_eq!(s, 0x9000);
    if flip {
        mac[3] ^= 1;
    }
    let mut block_cmd = h("841E000004");
    block_cmd.extend_from_slice(&mac);
    sw(purse, &block_cmd)
}

#[test]
fn application_block_with_the_psam_mac() {
    for (sm4, block) in [(false, 8), (true, 16)] {
        let (mut purse, mut psam) = if sm4 {
            (
                danger_test_card_sm4().unwrap(),
                danger_test_psam_sm4().unwrap(),
            )
        } else {
            (
                danger_test_card_3des().unwrap(),
                danger_test_psam_3des().unwrap(),
            )
        };
        select_psam(&mut psam);
        assert_eq!(select_ep(&mut purse), 0x9000);
        assert_eq!(
            block_with_psam_mac(&mut purse, &mut psam, block, true),
            0x6988
        );
        assert_eq!(select_ep(&mut purse), 0x9000);
        assert_eq!(
            block_with_psam_mac(&mut purse, &mut psam, block, false),
            0x9000
        );
        assert_eq!(select_ep(&mut purse), 0x6A81, "blocked (sm4: {sm4})");
    }
}

/// Power cut at every persistent write of `80 70`: afterwards the serial is the one before
/// (the cut came before the commit point) or the one after, never anything else, the order of the
/// two is monotone in the cut position, the answer never came, and the PSAM works on.
#[test]
fn ttsn_survives_tearing_at_every_write() {
    for start in [1u32, 0x0000_FFFF, 0x1234_5678] {
        let data = PsamData::new(TEST_TERMINAL_ID, TEST_KEY_INDEX, start);
        let keys = test_psam_master_keys(PurseAlgorithm::Tdes);
        let mut base = danger_psam_card(IssuedPsam::new(&PSAM_AID, data, &keys).unwrap()).unwrap();
        select_psam(&mut base);
        let state = base.save_state();
        let mut probe = reload_psam(&state);
        let w0 = probe.persistent_writes();
        assert_eq!(next_ttsn(&mut probe), start);
        let writes = probe.persistent_writes() - w0;
        assert!(writes >= 3, "journal, marker and data: {writes}");
        let mut seen_after = false;
        for n in 1..=writes {
            let mut card = reload_psam(&state);
            card.tear().arm_at(n);
            assert_eq!(
                card.transmit(&h(MAC1_CMD)),
                Err(CardError::PowerLost),
                "tear at {n}"
            );
            card.power_on();
            // The session is gone with the power.
            select_psam(&mut card);
            assert_eq!(sw(&mut card, &h("8072000004 00000000")), 0x6985);
            let got = next_ttsn(&mut card);
            assert!(
                got == start || got == start + 1,
                "start {start:08X}, tear at {n}: TTSN {got:08X}"
            );
            if got == start + 1 {
                seen_after = true;
            } else {
                assert!(!seen_after, "tear at {n}: back to before after an after");
            }
            // And it goes on counting from there.
            assert_eq!(next_ttsn(&mut card), got + 1);
        }
        // A cut during the last page program comes after the commit point.
        assert!(
            seen_after,
            "start {start:08X}: no cut left the serial consumed"
        );
    }
}

/// A powered copy of a PSAM card from its state file, application selected.
fn reload_psam(state: &[u8]) -> Card {
    let mut card = Card::load_state(
        state,
        Atr::default_t1(),
        Box::new(SeededRandom::new(RELOAD_SEED)),
        &PsamAppletFactory,
    )
    .unwrap();
    card.power_on();
    select_psam(&mut card);
    card
}
