//! STORE DATA refusals, each with its status word and the persistent state unchanged, and power
//! cuts at every write of the last block (docs/purse-dgi.md).

use ykt_crypto::purse::PurseAlgorithm;
use ykt_purse::EP_AID;
use ykt_purse::perso::dgi;
use ykt_purse::testing::test_card_3des;

use crate::perso::*;
use crate::support::*;

// --- refusals ---

/// Sends `blocks` to a fresh empty purse; asserts that the last answers `want` and left the
/// state as it was before it, and that the sequence is over (the next block number is refused)
/// while a full personalisation from block 00 still succeeds.
fn refused(name: &str, blocks: &[(u8, u8, Vec<u8>)], want: u16) {
    let mut card = empty_card();
    let (last, first) = blocks.split_last().unwrap();
    for (p1, p2, data) in first {
        assert_eq!(
            store_data(&mut card, *p1, *p2, data),
            0x9000,
            "{name}: prefix"
        );
    }
    let before = card.save_state();
    assert_eq!(
        store_data(&mut card, last.0, last.1, &last.2),
        want,
        "{name}"
    );
    assert_eq!(before, card.save_state(), "{name}: state changed");
    if last.1 != 0xFF {
        assert_eq!(
            store_data(&mut card, dgi::P1_DGI, last.1.wrapping_add(1), &[]),
            0x6A86,
            "{name}: the sequence goes on"
        );
    }
    assert_empty(&mut card, &EP_AID);
    for_personalisation(&mut card, &EP_AID);
    let good = builder(PurseAlgorithm::Tdes).blocks().unwrap();
    assert!(
        send_blocks(&mut card, &good).iter().all(|&s| s == 0x9000),
        "{name}: a full personalisation afterwards"
    );
    assert_eq!(select_ep(&mut card), 0x9000);
}

#[test]
fn every_missing_mandatory_dgi_is_refused_at_the_last_block() {
    for tag in dgi::MANDATORY {
        let rest: Vec<_> = dgis(PurseAlgorithm::Tdes)
            .into_iter()
            .filter(|(t, _)| *t != tag)
            .collect();
        refused(&format!("without {tag:04X}"), &one_per_block(&rest), 0x6A87);
    }
    // No DGI at all: one empty last block.
    refused(
        "nothing",
        &[(dgi::P1_DGI | dgi::P1_LAST_BLOCK, 0, vec![])],
        0x6A87,
    );
}

#[test]
fn malformed_dgis_have_precise_status_words() {
    let all = dgis(PurseAlgorithm::Tdes);
    let value = |tag: u16| all.iter().find(|(t, _)| *t == tag).unwrap().1.clone();
    let key = value(dgi::KEY);
    let enc = dgi::P1_DGI | dgi::P1_ENCRYPTED;
    let plain = dgi::P1_DGI;
    let ef15 = dgi_bytes(dgi::EF15, &value(dgi::EF15));
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut k = key.clone();
        f(&mut k);
        dgi_bytes(dgi::KEY, &k)
    };
    let cases: Vec<(&str, u8, Vec<u8>, u16)> = vec![
        // Structure (6A85).
        ("half a tag", plain, h("15"), 0x6A85),
        ("tag without length", plain, h("1500"), 0x6A85),
        ("FF length cut", plain, h("1500FF00"), 0x6A85),
        (
            "value past the block",
            plain,
            ef15[..ef15.len() - 1].to_vec(),
            0x6A85,
        ),
        (
            "second DGI truncated",
            plain,
            [ef15.clone(), h("16003700")].concat(),
            0x6A85,
        ),
        ("FF length past the block", plain, h("1500FF001E00"), 0x6A85),
        // Unknown tags (6A88).
        ("unknown tag", plain, h("0101020000"), 0x6A88),
        ("EF1A record 5", plain, dgi_bytes(0x1A05, &[0; 128]), 0x6A88),
        ("EF1A record 0", plain, dgi_bytes(0x1A00, &[0; 128]), 0x6A88),
        // Content (6A80).
        (
            "EF15 of 29 bytes",
            plain,
            dgi_bytes(dgi::EF15, &[0; 29]),
            0x6A80,
        ),
        (
            "EF16 of 56 bytes",
            plain,
            dgi_bytes(dgi::EF16, &[0; 56]),
            0x6A80,
        ),
        ("EF17 empty", plain, dgi_bytes(dgi::EF17, &[]), 0x6A80),
        (
            "EF1A short record",
            plain,
            dgi_bytes(0x1A01, &[0; 127]),
            0x6A80,
        ),
        (
            "purse of 7 bytes",
            plain,
            dgi_bytes(dgi::PURSE, &[0; 7]),
            0x6A80,
        ),
        (
            "balance above the maximum",
            plain,
            dgi_bytes(dgi::PURSE, &h("000186A100000000")),
            0x6A80,
        ),
        (
            "EF15 twice",
            plain,
            [ef15.clone(), ef15.clone()].concat(),
            0x6A80,
        ),
        (
            "key of 15 bytes",
            enc,
            dgi_bytes(dgi::KEY, &key[..24]),
            0x6A80,
        ),
        (
            "key of 17 bytes",
            enc,
            dgi_bytes(dgi::KEY, &[&key[..], &[0]].concat()),
            0x6A80,
        ),
        (
            "key of 32 bytes",
            enc,
            dgi_bytes(dgi::KEY, &[&key[..], &[0; 16]].concat()),
            0x6A80,
        ),
        ("key usage 07", enc, with(&|k| k[0] = 0x07), 0x6A80),
        (
            "key algorithm family 02",
            enc,
            with(&|k| k[3] = 0x02),
            0x6A80,
        ),
        (
            "SM4 rule code 02",
            enc,
            with(&|k| {
                k[3] = 0x01;
                k[6] = 0x02
            }),
            0x6A80,
        ),
        (
            "same key twice",
            enc,
            [dgi_bytes(dgi::KEY, &key), dgi_bytes(dgi::KEY, &key)].concat(),
            0x6A80,
        ),
        (
            "PIN with a hex digit",
            enc,
            dgi_bytes(dgi::PIN, &h("123A56")),
            0x6A80,
        ),
        (
            "PIN of one byte",
            enc,
            dgi_bytes(dgi::PIN, &h("12")),
            0x6A80,
        ),
        (
            "PIN of seven bytes",
            enc,
            dgi_bytes(dgi::PIN, &h("12345678901234")),
            0x6A80,
        ),
        // Secrets in a block not flagged encrypted (6982).
        ("plain key", plain, dgi_bytes(dgi::KEY, &key), 0x6982),
        (
            "plain PIN",
            plain,
            dgi_bytes(dgi::PIN, &value(dgi::PIN)),
            0x6982,
        ),
        (
            "plain PIN after a good DGI",
            plain,
            [ef15.clone(), dgi_bytes(dgi::PIN, &value(dgi::PIN))].concat(),
            0x6982,
        ),
        // P1 (6A86).
        (
            "application-dependent encryption",
            dgi::P1_DGI | 0x20,
            ef15.clone(),
            0x6A86,
        ),
        ("encryption 10", dgi::P1_DGI | 0x40, ef15.clone(), 0x6A86),
        ("no structure", 0x00, ef15.clone(), 0x6A86),
        ("BER-TLV structure", 0x10, ef15.clone(), 0x6A86),
        ("structure 11", 0x18, ef15.clone(), 0x6A86),
    ];
    for (name, p1, data, want) in cases {
        // As the first block, and as the second after a good one (the sequence's DGIs so far
        // are dropped with it).
        refused(name, &[(p1, 0, data.clone())], want);
        let good = dgi_bytes(dgi::EF16, &value(dgi::EF16));
        refused(
            &format!("{name} (second block)"),
            &[(dgi::P1_DGI, 0, good), (p1, 1, data)],
            want,
        );
    }
    // The FF length form is accepted.
    let mut card = empty_card();
    let mut long = h("1500FF001E");
    long.extend_from_slice(&value(dgi::EF15));
    assert_eq!(store_data(&mut card, plain, 0, &long), 0x9000);
    // Plain DGIs in a block flagged encrypted are accepted.
    assert_eq!(
        store_data(&mut card, enc, 1, &dgi_bytes(dgi::EF16, &value(dgi::EF16))),
        0x9000
    );
}

#[test]
fn blocks_out_of_sequence_are_refused() {
    let ef16 = dgi_bytes(dgi::EF16, &[0; 55]);
    let ef17 = dgi_bytes(dgi::EF17, &[0; 60]);
    let p = dgi::P1_DGI;
    refused("first block 01", &[(p, 1, ef16.clone())], 0x6A86);
    refused("first block FF", &[(p, 0xFF, ef16.clone())], 0x6A86);
    refused(
        "02 after 00",
        &[(p, 0, ef16.clone()), (p, 2, ef17.clone())],
        0x6A86,
    );
    refused(
        "00 01 01",
        &[(p, 0, ef16.clone()), (p, 1, ef17.clone()), (p, 1, vec![])],
        0x6A86,
    );
    // Block 00 restarts: the DGIs before it are forgotten (EF16 may arrive again).
    let mut card = empty_card();
    assert_eq!(store_data(&mut card, p, 0, &ef16), 0x9000);
    assert_eq!(store_data(&mut card, p, 1, &ef17), 0x9000);
    assert_eq!(store_data(&mut card, p, 0, &ef16), 0x9000);
    assert_eq!(store_data(&mut card, p, 1, &ef17), 0x9000);
    // Power loss forgets the sequence too.
    card.power_off();
    card.power_on();
    for_personalisation(&mut card, &EP_AID);
    assert_eq!(store_data(&mut card, p, 2, &[]), 0x6A86);
}

#[test]
fn a_delivered_command_other_than_store_data_is_refused() {
    let mut card = empty_card();
    let before = card.save_state();
    let mut c = vec![0x80, 0xD0, 0x88, 0x00, 0x00];
    assert_eq!(sw(&mut card, &c), 0x6D00);
    c[1] = 0xE2;
    // The sequence did not survive the refusal: block 01 is out of sequence.
    c[3] = 0x01;
    assert_eq!(sw(&mut card, &c), 0x6A86);
    assert_eq!(before, card.save_state());
}

/// A SELECT of the purse (or of anything) between two blocks does not end the sequence: only a
/// refusal, a block 00 or a power loss does.
#[test]
fn selection_between_blocks_keeps_the_sequence() {
    let mut card = empty_card();
    let blocks = builder(PurseAlgorithm::Tdes).blocks().unwrap();
    let (last, first) = blocks.split_last().unwrap();
    assert!(send_blocks(&mut card, first).iter().all(|&s| s == 0x9000));
    assert_eq!(select_ep(&mut card), 0x6283);
    for_personalisation(&mut card, &EP_AID);
    assert_eq!(store_data(&mut card, last.p1, last.p2, &last.data), 0x9000);
    assert_eq!(select_ep(&mut card), 0x9000);
}

#[test]
fn a_personalised_instance_refuses_a_second_personalisation() {
    let mut card = gp_test_card(PurseAlgorithm::Tdes);
    for_personalisation(&mut card, &EP_AID);
    let before = card.save_state();
    let blocks = builder(PurseAlgorithm::Tdes).blocks().unwrap();
    for b in &blocks {
        assert_eq!(store_data(&mut card, b.p1, b.p2, &b.data), 0x6985);
    }
    assert_eq!(
        store_data(&mut card, dgi::P1_DGI | dgi::P1_LAST_BLOCK, 0, &[]),
        0x6985
    );
    assert_eq!(before, card.save_state());
    // A purse issued by the factory refuses it too.
    let mut card = gp_card();
    test_card_3des().unwrap().install(&mut card).unwrap();
    for_personalisation(&mut card, &EP_AID);
    let before = card.save_state();
    assert_eq!(send_blocks(&mut card, &blocks[..1]), [0x6985]);
    assert_eq!(before, card.save_state());
}

// --- tearing ---

/// Power cut during each persistent write of the last STORE DATA block: after the next power-on
/// the purse is either empty (and personalises cleanly from block 00) or fully personalised,
/// also after a state file round trip; both outcomes occur.
#[test]
fn power_cut_at_every_write_of_the_last_block() {
    let blocks = builder(PurseAlgorithm::Tdes).blocks().unwrap();
    let (last, first) = blocks.split_last().unwrap();
    let prepare = || {
        let mut card = empty_card();
        for b in first {
            assert_eq!(store_data(&mut card, b.p1, b.p2, &b.data), 0x9000);
        }
        card
    };
    let mut last_cmd = vec![0x80, 0xE2, last.p1, last.p2, last.data.len() as u8];
    last_cmd.extend_from_slice(&last.data);
    let mut reference = prepare();
    let w0 = reference.persistent_writes();
    assert_eq!(sw(&mut reference, &last_cmd), 0x9000);
    let writes = reference.persistent_writes() - w0;
    assert!(writes > 10, "{writes} writes");
    let after = snapshot(&mut reference, &EP_AID);
    let (mut empty, mut full) = (0, 0);
    for n in 1..=writes {
        let mut card = prepare();
        card.tear().arm_at(n);
        assert!(
            card.transmit(&last_cmd).is_err(),
            "tear at write {n}/{writes}"
        );
        card.power_on();
        assert!(card.is_powered());
        let mut copy = reload_gp(&card.save_state());
        for card in [&mut card, &mut copy] {
            match select_aid(card, &EP_AID) {
                0x6283 => {
                    empty += 1;
                    assert_empty(card, &EP_AID);
                    for_personalisation(card, &EP_AID);
                    assert!(
                        send_blocks(card, &blocks).iter().all(|&s| s == 0x9000),
                        "tear at write {n}: personalisation from block 00"
                    );
                }
                0x9000 => full += 1,
                other => panic!("tear at write {n}: SELECT {other:04X}"),
            }
            assert_eq!(snapshot(card, &EP_AID), after, "tear at write {n}");
        }
    }
    assert!(empty > 0 && full > 0, "tears on both sides of the commit");
}
