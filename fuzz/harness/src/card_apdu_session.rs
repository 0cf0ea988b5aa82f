//! `card_apdu_session`: the fuzzer's commands inside an open SCP03 session with the ISD of
//! [`crate::gp`], wrapped by `ykt_scp::HostSession` with the test keys, so that the INSTALL,
//! LOAD, DELETE, STORE DATA, PUT KEY, SET STATUS and GET STATUS parsers are reached behind the
//! MAC.
//!
//! Input: byte 0 picks the session's level (C-MAC; C-MAC + C-DEC; C-MAC + R-MAC;
//! C-MAC + C-DEC + R-MAC; all four), then commands in the crate's framing, each parsed as a
//! plain APDU (the class byte reduced to `00` or `80`; what does not parse is skipped) and
//! wrapped. The card's checks are [`crate::gp::transmit_checked`]'s; in addition every
//! response the card gives with `9000` or `6310` unwraps (its R-MAC verifies, R-ENC decrypts).
//! After any other status word the session is opened again (SELECT of the ISD, INITIALIZE
//! UPDATE, EXTERNAL AUTHENTICATE: these are no fuzzed commands); when the card refuses that
//! (say, locked or terminated by SET STATUS) the rest of the input goes unwrapped.

use ykt_apdu::{CommandApdu, ResponseApdu};
use ykt_scp::SecurityLevel;

use crate::gp;

const LEVELS: [SecurityLevel; 5] = [
    SecurityLevel::C_MAC,
    SecurityLevel::C_DEC_C_MAC,
    SecurityLevel::C_MAC_R_MAC,
    SecurityLevel::C_DEC_C_MAC_R_MAC,
    SecurityLevel::ALL,
];

/// The target.
pub fn run(data: &[u8]) {
    let Some((&level, data)) = data.split_first() else {
        return;
    };
    let level = LEVELS[usize::from(level) % LEVELS.len()];
    let mut card = gp::card();
    let mut session = gp::open(&mut card, level);
    assert!(session.is_some(), "the test session opens");
    let mut checked = gp::Checked::new(&card);
    for raw in crate::commands(data).into_iter().take(48) {
        let Some(host) = session.as_mut() else {
            checked.transmit(&mut card, raw, gp::may_change_state);
            continue;
        };
        let Ok(mut cmd) = CommandApdu::parse(raw) else {
            continue;
        };
        cmd.cla &= 0x80;
        let Ok(wrapped) = host.wrap(&cmd) else {
            continue;
        };
        let bytes = wrapped.to_bytes();
        let response = checked.transmit(&mut card, &bytes, gp::may_change_state);
        let sw = crate::status_word(&response, &bytes);
        if sw == 0x9000 || sw == 0x6310 {
            let resp = ResponseApdu::parse(&response).expect("a response with a status word");
            if let Err(e) = host.unwrap(&resp) {
                panic!(
                    "the card's response {} to {} does not unwrap: {e:?}",
                    crate::hex(&response),
                    crate::hex(&cmd.to_bytes())
                );
            }
        } else {
            let r = card.transmit(&gp::SELECT_ISD).expect("powered");
            session = if r.ends_with(&[0x90, 0x00]) {
                gp::open(&mut card, level)
            } else {
                None
            };
            checked.resync(&card);
        }
    }
    gp::check_state_file(&card);
}
