//! `gp_host_parsers`: the host side of GlobalPlatform card management (`ykt_gp_host`) over
//! whatever a card answers.
//!
//! Input byte 0 picks the mode.
//!
//! - Even: the rest goes to every response parser: GET STATUS in each scope, GET DATA's data
//!   object (tag from the next two bytes), CPLC, key information, card data, PUT KEY's
//!   response and receipts. None panics; the CPLC parses exactly when it has 42 bytes, a data
//!   object's value is no longer than the response, and each GET STATUS entry has an AID.
//! - Odd: a `GpSession` is opened at C-MAC level (no R-MAC, so the card's answers are taken as
//!   they come) on the real test card of [`crate::gp`]; from then on the card's responses are
//!   the fuzzer's (the crate's framing, one response per command the host sends, a transport
//!   error when they run out) while the host lists the registry, reads the CPLC, card data,
//!   key information, IIN and CIN. None panics, and the host sends a bounded number of
//!   commands (GET RESPONSE and GET STATUS paging stop).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use ykt_card::Card;
use ykt_gp_host::Aid;
use ykt_gp_host::commands::{get_data, get_status, install, put_key};
use ykt_gp_host::{GpSession, Scope, SessionConfig};
use ykt_scp::SecurityLevel;

use crate::gp;

/// The target.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        parsers(rest);
    } else {
        scripted(rest);
    }
}

fn parsers(data: &[u8]) {
    for scope in [
        Scope::IssuerSecurityDomain,
        Scope::Applications,
        Scope::LoadFiles,
        Scope::LoadFilesAndModules,
    ] {
        if let Ok(entries) = get_status::parse_get_status(scope, data) {
            for e in &entries {
                assert!(!e.aid.is_empty(), "an entry without an AID");
            }
        }
    }
    if let [a, b, rest @ ..] = data {
        let tag = u16::from_be_bytes([*a, *b]);
        if let Ok(value) = get_data::parse_data_object(tag, rest) {
            assert!(value.len() <= rest.len());
        }
    }
    match get_data::Cplc::parse(data) {
        Ok(cplc) => {
            assert_eq!(data.len(), get_data::CPLC_LEN);
            let total: usize = cplc.fields().iter().map(|(_, v)| v.len()).sum();
            assert_eq!(total, get_data::CPLC_LEN);
        }
        Err(_) => assert_ne!(data.len(), get_data::CPLC_LEN, "a 42-byte CPLC refused"),
    }
    let _ = get_data::parse_key_information(data);
    let _ = get_data::parse_card_data(data);
    if let Ok((_, kcvs)) = put_key::parse_put_key_response(data) {
        assert_eq!(1 + 3 * kcvs.len(), data.len());
    }
    if let Ok(Some(receipt)) = install::parse_receipt(data) {
        assert_eq!(
            1 + receipt.receipt.len() + receipt.confirmation.len(),
            data.len()
        );
    }
}

enum Peer {
    Card(Box<Card>),
    Script(VecDeque<Vec<u8>>),
}

/// The most commands the host may send on one script: each response is used once, plus the
/// retries a `6Cxx` asks for.
const MAX_COMMANDS: usize = 4096;

fn scripted(data: &[u8]) {
    let peer = Rc::new(RefCell::new(Peer::Card(Box::new(gp::card()))));
    let sent = Rc::new(RefCell::new(0usize));
    let transmit = {
        let (peer, sent) = (peer.clone(), sent.clone());
        move |cmd: &[u8]| -> Result<Vec<u8>, ()> {
            *sent.borrow_mut() += 1;
            match &mut *peer.borrow_mut() {
                Peer::Card(card) => card.transmit(cmd).map_err(|_| ()),
                Peer::Script(responses) => responses.pop_front().ok_or(()),
            }
        }
    };
    let config = SessionConfig {
        security_domain: Aid::new(&gp::ISD).expect("8 bytes"),
        keys: gp::keys(),
        diversification: None,
        protocol: gp::protocol(),
        level: SecurityLevel::C_MAC,
    };
    let mut session = GpSession::open(transmit, config, &gp::HOST_CHALLENGE)
        .expect("the test session opens on the test card");
    let responses: VecDeque<Vec<u8>> = crate::commands(data)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    let budget = responses.len();
    *peer.borrow_mut() = Peer::Script(responses);
    *sent.borrow_mut() = 0;
    let _ = session.registry();
    for scope in [
        Scope::IssuerSecurityDomain,
        Scope::Applications,
        Scope::LoadFiles,
    ] {
        let _ = session.list(scope);
    }
    let _ = session.cplc();
    let _ = session.card_data();
    let _ = session.key_information();
    let _ = session.iin();
    let _ = session.cin();
    let n = *sent.borrow();
    // Each response is used once; every command after they ran out fails at once. A 6Cxx
    // retry or a GET RESPONSE consumes a response too, so the count stays within bounds.
    assert!(
        n <= budget + 16 && n <= MAX_COMMANDS,
        "{n} commands for {budget} responses"
    );
}
