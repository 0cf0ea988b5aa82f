//! Properties: random bytes into every card-side parser give a status word, never a panic; the
//! host-side parsers give typed errors; wrap/unwrap round-trips arbitrary commands.

use proptest::prelude::*;
use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_scp::*;

use crate::roundtrip::all_protocols;
use crate::support::*;

fn is_error_sw(sw: StatusWord) -> bool {
    matches!(sw.sw1(), 0x64..=0x6F) && sw.sw1() != 0x6C && sw != StatusWord::SUCCESS
}

fn any_protocol() -> impl Strategy<Value = (Protocol, usize)> {
    let all = all_protocols();
    (0..all.len()).prop_map(move |i| all[i])
}

/// Turns bytes into a command the card's parsers would see: INS forced to the parser's.
fn command(bytes: &[u8], ins: u8, cla: Option<u8>) -> Option<CommandApdu> {
    let mut cmd = CommandApdu::parse(bytes).ok()?;
    cmd.ins = ins;
    if let Some(cla) = cla {
        cmd.cla = cla;
    }
    Some(cmd)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn card_parsers_never_panic(
        (protocol, len) in any_protocol(),
        iu in proptest::collection::vec(any::<u8>(), 0..40),
        ea in proptest::collection::vec(any::<u8>(), 0..60),
        wrapped in proptest::collection::vec(any::<u8>(), 0..300),
        seq in any::<u32>(),
        level in prop::sample::select(vec![0x00u8, 0x01, 0x03, 0x11, 0x13, 0x33]),
    ) {
        let keys = keys(protocol, 0x30, len);
        // Random INITIALIZE UPDATE and EXTERNAL AUTHENTICATE on a fresh card.
        let mut card = CardSession::new(card_config(protocol));
        for cla in [None, Some(0x80)] {
            if let Some(cmd) = command(&iu, 0x50, cla) {
                match card.on_initialize_update(&cmd, &keys, seq, &random(16, 1)) {
                    Ok(data) => prop_assert!(data.len() >= 28),
                    Err(sw) => prop_assert!(is_error_sw(sw), "{sw:?}"),
                }
            }
            if let Some(cmd) = command(&ea, 0x82, cla) {
                if let Err(sw) = card.on_external_authenticate(&cmd) {
                    prop_assert!(is_error_sw(sw), "{sw:?}");
                }
                prop_assert!(!card.is_open());
            }
        }
        // Random wrapped commands into an open session at every level the protocol has.
        let Ok(level) = SecurityLevel::from_byte(level) else { return Ok(()) };
        if protocol.check_level(level).is_err() {
            return Ok(());
        }
        let _host = open(&mut card, &keys, protocol, level, 3);
        for cla in [None, Some(0x84)] {
            if let Ok(mut cmd) = CommandApdu::parse(&wrapped) {
                if let Some(cla) = cla {
                    cmd.cla = cla;
                }
                if let Err(sw) = card.unwrap_command(&cmd) {
                    prop_assert!(is_error_sw(sw), "{sw:?}");
                }
                let _ = card.wrap_response(&ResponseApdu::new(wrapped.clone(), StatusWord::SUCCESS));
            }
        }
    }

    #[test]
    fn host_parsers_never_panic(
        (protocol, len) in any_protocol(),
        resp in proptest::collection::vec(any::<u8>(), 0..60),
        sw in any::<u16>(),
        later in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let keys = keys(protocol, 0x30, len);
        let hc = random(protocol_challenge_len(protocol), 2);
        let (mut host, _) = HostSession::initialize_update(
            host_config(keys.clone(), protocol, SecurityLevel::C_MAC), &hc).unwrap();
        let r = host.on_initialize_update_response(&ResponseApdu::new(resp, StatusWord(sw)));
        prop_assert!(r.is_err());
        prop_assert!(!host.is_open());
        if protocol.check_level(SecurityLevel::C_MAC_R_MAC).is_ok() {
            let mut card = CardSession::new(card_config(protocol));
            let mut host = open(&mut card, &keys, protocol, SecurityLevel::ALL.min(
                if protocol.check_level(SecurityLevel::ALL).is_ok() { SecurityLevel::ALL }
                else { SecurityLevel::C_DEC_C_MAC_R_MAC }), 4);
            host.wrap(&CommandApdu::new(0x80, 0xCA, 0, 0)).unwrap();
            let r = host.unwrap(&ResponseApdu::new(later, StatusWord::SUCCESS));
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn wrap_unwrap_round_trips(
        (protocol, len) in any_protocol(),
        level in prop::sample::select(vec![0x00u8, 0x01, 0x03, 0x11, 0x13, 0x33]),
        commands in proptest::collection::vec(
            (any::<u8>(), any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..240),
             prop::option::of(1usize..=256)),
            1..6),
    ) {
        let level = SecurityLevel::from_byte(level).unwrap();
        prop_assume!(protocol.check_level(level).is_ok());
        let keys = keys(protocol, 0x30, len);
        let mut card = CardSession::new(card_config(protocol));
        let mut host = open(&mut card, &keys, protocol, level, 9);
        for (ins, p1, p2, data, le) in commands {
            // INITIALIZE UPDATE and EXTERNAL AUTHENTICATE go to the handshake, not the applet.
            let ins = if matches!(ins, 0x50 | 0x82) { 0xCA } else { ins };
            let mut cmd = CommandApdu::new(0x80, ins, p1, p2).with_data(data);
            cmd.le = le;
            let wire = host.wrap(&cmd).unwrap().to_bytes();
            let resp = card_transmit(&mut card, &keys, 9, &CommandApdu::parse(&wire).unwrap(), |plain| {
                assert_eq!(plain, &cmd);
                echo(plain)
            });
            prop_assert_eq!(host.unwrap(&resp).unwrap(), echo(&cmd));
        }
    }
}

proptest! {
    #[test]
    fn fuzzing_entry_point_answers_a_status_word(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let sw = fuzzing::scp_unwrap(&data);
        prop_assert!(sw == StatusWord::SUCCESS || is_error_sw(sw), "{sw:?}");
    }
}

/// Sessions print no key, session key or expected cryptogram.
#[test]
fn debug_output_shows_no_secrets() {
    for (protocol, len) in all_protocols() {
        let keys = keys(protocol, 0x30, len);
        let mut card = CardSession::new(card_config(protocol));
        let hc = random(protocol_challenge_len(protocol), 0x21);
        let (mut host, iu) = HostSession::initialize_update(
            host_config(keys.clone(), protocol, SecurityLevel::C_MAC),
            &hc,
        )
        .unwrap();
        let resp = card_transmit(&mut card, &keys, 5, &iu, echo);
        let ea = host.on_initialize_update_response(&resp).unwrap();
        let texts = [
            format!("{host:?}"),
            format!("{card:?}"),
            format!("{keys:?}"),
        ];
        let cryptogram = format!("{:?}", &ea.data[..ea.data.len() / 2]);
        for text in &texts {
            assert!(text.contains("[redacted]"), "{text}");
            assert!(
                !text.contains(&cryptogram[1..cryptogram.len() - 1]),
                "{text}"
            );
        }
    }
}
