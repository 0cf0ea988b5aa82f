//! GET DATA, GET STATUS, SET STATUS: layouts, states and refusals.

use crate::support::*;

#[test]
fn get_data_layouts() {
    let mut card = card();
    let cplc = send(&mut card, &h("80CA9F7F00"));
    assert_eq!(cplc.1, 0x9000);
    assert_eq!(&cplc.0[..3], &h("9F7F2A")[..]);
    assert_eq!(cplc.0.len(), 45);
    assert_eq!(
        hx(&send(&mut card, &h("80CA006600")).0),
        "6631732F06072A864886FC6B01600C060A2A864886FC6B02020301\
         630906072A864886FC6B03640B06092A864886FC6B040370"
    );
    assert_eq!(
        hx(&send(&mut card, &h("80CA00E000")).0),
        "E012C00401308810C00402308810C00403308810"
    );
    assert_eq!(hx(&send(&mut card, &h("80CA004200")).0), "420400112233");
    assert_eq!(
        hx(&send(&mut card, &h("80CA004500")).0),
        "45080102030405060708"
    );
    assert_eq!(send(&mut card, &h("00CA004500")).1, 0x9000);
    assert_eq!(sw(&mut card, &h("80CA00FF00")), 0x6A88);
    assert_eq!(sw(&mut card, &h("80CA00450100")), 0x6700);
    assert_eq!(sw(&mut card, &h("A0CA004500")), 0x6E00);
    // Inside a session the answer is the same, R-MAC'd and R-ENC'd.
    let mut host = open_scp03(&mut card);
    assert_eq!(
        host.send_hex(&mut card, "80CA004500").0,
        h("45080102030405060708")
    );
}

#[test]
fn get_status_of_applications_with_and_without_a_tag_list() {
    let mut card = card();
    let mut host = open_scp03(&mut card);
    let (data, sw) = host.send_hex(&mut card, "80F24002024F0000");
    assert_eq!(sw, 0x9000);
    assert_eq!(
        hx(&data),
        "E31D4F08A0000006320101059F700107C503000000CC08A000000151000000\
         E31D4F08A0000006320101069F700107C503000000CC08A000000151000000"
    );
    let (data, _) = host.send_hex(&mut card, "80F240020C4F07A00000063201015C014F00");
    assert_eq!(
        hx(&data),
        "E30A4F08A000000632010105E30A4F08A000000632010106"
    );
    let (data, _) = host.send_hex(&mut card, "80F24000024F0000");
    assert_eq!(
        hx(&data),
        "08A0000006320101050700 08A0000006320101060700".replace(' ', "")
    );
    for (cmd, want) in [
        ("80F22002024F0000", 0x9000), // the security-domain package
        ("80F21002024F0000", 0x9000),
        ("80F22002074F05A00000063200", 0x6A88), // no such load file
        ("80F24003024F0000", 0x6A88),           // nothing left for "next"
        ("80F20102024F0000", 0x6A86),
        ("80F24004024F0000", 0x6A86),
        ("80F24002024F0100", 0x6A80),
        ("80F24002014F00", 0x6A80),
        ("80F24002034F005C00", 0x6A80),
        ("80F240020A4F085555555555555555", 0x6A88),
    ] {
        assert_eq!(host.send_hex(&mut card, cmd).1, want, "{cmd}");
    }
}

#[test]
fn card_life_cycle_follows_gp_and_refuses_the_rest() {
    let mut p = setup(scp03().0, scp03().1);
    p.state = ykt_gp::CardState::OpReady;
    let mut card = card_with(&p);
    let mut host = open_scp03(&mut card);
    let isd_state = |host: &mut Host, card: &mut ykt_card::Card| {
        let (d, _) = host.send_hex(card, "80F28002024F0000");
        d[15]
    };
    assert_eq!(isd_state(&mut host, &mut card), 0x01);
    for (cmd, want, after) in [
        ("80F0800700", 0x9000, 0x07),
        ("80F0800100", 0x6985, 0x07), // never back
        ("80F0800700", 0x6985, 0x07), // no transition to itself
        ("80F0807F00", 0x6985, 0x07), // lock only from SECURED
        ("80F0800F08A000000151000000", 0x9000, 0x0F),
        ("80F0800308A000000151000000", 0x6A80, 0x0F),
        ("80F0807F08A000000151000001", 0x6A88, 0x0F),
        ("80F0807F00", 0x9000, 0x7F),
        ("80F0400708A000000632010105", 0x6985, 0x7F), // apps frozen while locked
        ("80F0800F00", 0x9000, 0x0F),
        ("80F0820F00", 0x6A86, 0x0F),
    ] {
        assert_eq!(host.send_hex(&mut card, cmd).1, want, "{cmd}");
        assert_eq!(isd_state(&mut host, &mut card), after, "{cmd}");
    }
    assert_eq!(host.send_hex(&mut card, "80F080FF00").1, 0x9000);
    // TERMINATED: only CPLC and card data answer; no new session.
    assert_eq!(host.send_hex(&mut card, "80F28002024F0000").1, 0x6985);
    assert_eq!(
        sw(&mut card, &h("80CA9F7F00")),
        0x6982,
        "the session is still open"
    );
    select_isd(&mut card);
    assert_eq!(sw(&mut card, &h("80CA9F7F00")), 0x9000);
    assert_eq!(sw(&mut card, &h("80CA006600")), 0x9000);
    assert_eq!(sw(&mut card, &h("80CA004500")), 0x6985);
    let (p, k) = scp03();
    assert_eq!(
        open(&mut card, p, &k, ykt_scp::SecurityLevel::C_MAC).err(),
        Some(0x6985)
    );
}

#[test]
fn application_lock_unlock_and_specific_states() {
    let mut card = card();
    let mut host = open_scp03(&mut card);
    let app_state = |host: &mut Host, card: &mut ykt_card::Card| {
        let (d, _) = host.send_hex(card, "80F24002024F0000");
        d[15]
    };
    for (cmd, want, after) in [
        ("80F0408008A000000632010105", 0x9000, 0x87),
        ("80F0408008A000000632010105", 0x6985, 0x87),
        ("80F0400F08A000000632010105", 0x6985, 0x87),
        ("80F0400008A000000632010105", 0x9000, 0x07),
        ("80F0400008A000000632010105", 0x6985, 0x07),
        ("80F0400F08A000000632010105", 0x9000, 0x0F),
        ("80F0400308A000000632010105", 0x6985, 0x0F),
        ("80F0408008A000000151000000", 0x6985, 0x0F),
        ("80F0408008A000000632010199", 0x6A88, 0x0F),
        ("80F04080024F00", 0x6A80, 0x0F),
        // P1 60 (an SD and its applications) names no SD here.
        ("80F0608008A000000632010105", 0x6A88, 0x0F),
        ("80F0208008A000000632010105", 0x6A86, 0x0F),
    ] {
        assert_eq!(host.send_hex(&mut card, cmd).1, want, "{cmd}");
        assert_eq!(app_state(&mut host, &mut card), after, "{cmd}");
    }
}

#[test]
fn the_card_life_cycle_matrix_is_gps() {
    use ykt_gp::CardState::*;
    let states = [OpReady, Initialized, Secured, CardLocked, Terminated];
    let allowed = [
        (OpReady, Initialized),
        (OpReady, Secured),
        (Initialized, Secured),
        (Secured, CardLocked),
        (CardLocked, Secured),
        (OpReady, Terminated),
        (Initialized, Terminated),
        (Secured, Terminated),
        (CardLocked, Terminated),
    ];
    for from in states {
        assert_eq!(ykt_gp::CardState::from_byte(from.to_byte()), Some(from));
        for to in states {
            assert_eq!(
                from.may_become(to),
                allowed.contains(&(from, to)),
                "{from:?} → {to:?}"
            );
        }
    }
}

#[test]
fn every_forbidden_card_transition_is_refused_over_the_wire() {
    use ykt_gp::CardState::*;
    let states = [OpReady, Initialized, Secured, CardLocked, Terminated];
    for from in [OpReady, Initialized, Secured, CardLocked] {
        for to in states {
            let (p, k) = scp03();
            let mut s = setup(p, k);
            s.state = from;
            let mut card = card_with(&s);
            let mut host = open_scp03(&mut card);
            let before = card.save_state();
            let cmd = format!("80F080{:02X}00", to.to_byte());
            let (_, sw) = host.send_hex(&mut card, &cmd);
            if from.may_become(to) {
                assert_eq!(sw, 0x9000, "{from:?} → {to:?}");
            } else {
                assert_eq!(sw, 0x6985, "{from:?} → {to:?}");
                assert_eq!(card.save_state(), before);
            }
        }
    }
}
