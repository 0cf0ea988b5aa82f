//! GET STATUS paging: a registry larger than one response, `6310` and "next occurrence", and
//! the volatile cursor's resets.

use ykt_card::{Aid, CardError};
use ykt_gp::commands::get_status::MAX_RESPONSE_DATA;
use ykt_gp::{ApplicationEntry, ApplicationState};
use ykt_scp::SecurityLevel;

use crate::support::*;

const FIRST: &str = "80F24002024F0000";
const NEXT: &str = "80F24003024F0000";

/// Six registry entries with 16-byte AIDs, before the two plain applets.
fn long_aids() -> Vec<String> {
    (0..6)
        .map(|i| format!("D156000001{i:02X}{}", "00".repeat(10)))
        .collect()
}

/// Every application in registry order.
fn registry_order() -> Vec<String> {
    let mut all = long_aids();
    all.extend([EPURSE_AID.to_string(), SECOND_AID.to_string()]);
    all
}

/// The TLV-format entry GET STATUS gives for a SELECTABLE application without privileges.
fn entry(aid: &str) -> String {
    let aid = h(aid);
    let mut body = vec![0x4F, aid.len() as u8];
    body.extend(&aid);
    body.extend(h("9F700107 C503000000 CC08A000000151000000"));
    let mut e = vec![0xE3, body.len() as u8];
    e.extend(body);
    hx(&e)
}

/// The test card with eight applications in the registry (every slot), ISD selected.
fn paging_card(level: SecurityLevel) -> (ykt_card::Card, Host) {
    let (p, k) = scp03();
    let mut s = setup(p, k.clone());
    s.applications = long_aids()
        .iter()
        .map(|a| ApplicationEntry {
            aid: Aid::new(&h(a)).unwrap(),
            state: ApplicationState::SELECTABLE,
            privileges: [0; 3],
        })
        .collect();
    let mut card = card_with(&s);
    let host = open(&mut card, p, &k, level).unwrap();
    (card, host)
}

fn reopen(card: &mut ykt_card::Card) -> Host {
    select_isd(card);
    open_scp03(card)
}

#[test]
fn first_and_next_return_every_entry_once_in_order() {
    for level in [
        SecurityLevel::C_MAC,
        SecurityLevel::C_MAC_R_MAC,
        SecurityLevel::ALL,
    ] {
        let (mut card, mut host) = paging_card(level);
        let all: Vec<String> = registry_order().iter().map(|a| entry(a)).collect();
        let (page1, sw) = host.send_hex(&mut card, FIRST);
        assert_eq!(sw, 0x6310, "{level:?}");
        assert!(page1.len() <= MAX_RESPONSE_DATA);
        // Five 39-byte entries fit (195 bytes), a sixth would not.
        assert_eq!(hx(&page1), all[..5].concat(), "{level:?}");
        let (page2, sw) = host.send_hex(&mut card, NEXT);
        assert_eq!(sw, 0x9000, "{level:?}");
        assert_eq!(hx(&page2), all[5..].concat(), "{level:?}");
        // The listing is over.
        assert_eq!(host.send_hex(&mut card, NEXT).1, 0x6A88, "{level:?}");
        // The session is still fine.
        assert_eq!(host.send_hex(&mut card, FIRST).1, 0x6310, "{level:?}");
    }
}

#[test]
fn listings_that_fit_do_not_page() {
    let (mut card, mut host) = paging_card(SecurityLevel::ALL);
    // Legacy format: 6 × 19 + 2 × 11 bytes.
    let (data, sw) = host.send_hex(&mut card, "80F24000024F0000");
    assert_eq!(sw, 0x9000);
    assert_eq!(data.len(), 136);
    assert_eq!(host.send_hex(&mut card, "80F24001024F0000").1, 0x6A88);
    // Tag list 4F only: 6 × 20 + 2 × 12 bytes.
    let (data, sw) = host.send_hex(&mut card, "80F24002054F005C014F00");
    assert_eq!(sw, 0x9000);
    assert_eq!(data.len(), 144);
    // A prefix matching the two plain applets.
    let (data, sw) = host.send_hex(&mut card, "80F24002074F05A00000063200");
    assert_eq!(sw, 0x9000);
    assert_eq!(
        hx(&data),
        format!("{}{}", entry(EPURSE_AID), entry(SECOND_AID))
    );
}

#[test]
fn a_new_first_occurrence_restarts_the_listing() {
    let (mut card, mut host) = paging_card(SecurityLevel::ALL);
    let (page1, _) = host.send_hex(&mut card, FIRST);
    let (again, sw) = host.send_hex(&mut card, FIRST);
    assert_eq!((hx(&again), sw), (hx(&page1), 0x6310));
    let (_, sw) = host.send_hex(&mut card, NEXT);
    assert_eq!(sw, 0x9000);
    // A first occurrence that fits (or fails) drops a pending listing.
    assert_eq!(host.send_hex(&mut card, FIRST).1, 0x6310);
    assert_eq!(
        host.send_hex(&mut card, "80F24002074F05A00000063200").1,
        0x9000
    );
    assert_eq!(host.send_hex(&mut card, NEXT).1, 0x6A88);
    assert_eq!(host.send_hex(&mut card, FIRST).1, 0x6310);
    assert_eq!(host.send_hex(&mut card, "80F22002024F0000").1, 0x9000);
    assert_eq!(host.send_hex(&mut card, NEXT).1, 0x6A88);
    // Other commands in between leave it alone.
    assert_eq!(host.send_hex(&mut card, FIRST).1, 0x6310);
    assert_eq!(host.send_hex(&mut card, "80CA006600").1, 0x9000);
    assert_eq!(host.send_hex(&mut card, NEXT).1, 0x9000);
}

#[test]
fn next_with_other_criteria_finds_nothing_and_keeps_the_cursor() {
    let (mut card, mut host) = paging_card(SecurityLevel::ALL);
    assert_eq!(host.send_hex(&mut card, FIRST).1, 0x6310);
    for other in [
        "80F28003024F0000",           // the ISD
        "80F24001024F0000",           // legacy format
        "80F24003074F05D15600000100", // another prefix
        "80F24003054F005C014F00",     // a tag list
    ] {
        assert_eq!(host.send_hex(&mut card, other).1, 0x6A88, "{other}");
    }
    let (page2, sw) = host.send_hex(&mut card, NEXT);
    assert_eq!(sw, 0x9000);
    let all: Vec<String> = registry_order().iter().map(|a| entry(a)).collect();
    assert_eq!(hx(&page2), all[5..].concat());
}

#[test]
fn deselection_and_power_loss_drop_the_cursor() {
    // Reselecting the ISD (in `reopen`), selecting another application, power off, reset, a
    // tear.
    for case in 0..5 {
        let (mut card, mut host) = paging_card(SecurityLevel::ALL);
        assert_eq!(host.send_hex(&mut card, FIRST).1, 0x6310);
        match case {
            0 => {}
            1 => assert_eq!(
                sw(&mut card, &h(&format!("00A4040008{EPURSE_AID}"))),
                0x9000
            ),
            2 => {
                card.power_off();
                card.power_on();
            }
            3 => {
                card.reset();
            }
            _ => {
                // INITIALIZE UPDATE writes the sequence counter: cut power there.
                card.tear().arm_at(1);
                assert_eq!(
                    card.transmit(&h("8050300008111111111111111100")),
                    Err(CardError::PowerLost)
                );
                card.power_on();
            }
        }
        let mut host = reopen(&mut card);
        assert_eq!(host.send_hex(&mut card, NEXT).1, 0x6A88, "case {case}");
        // A fresh listing still works.
        assert_eq!(host.send_hex(&mut card, FIRST).1, 0x6310, "case {case}");
        assert_eq!(host.send_hex(&mut card, NEXT).1, 0x9000, "case {case}");
    }
}
