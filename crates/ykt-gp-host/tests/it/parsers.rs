//! The parsers: real layouts give their fields, malformed ones a typed error, and any bytes
//! give one or the other without a panic (proptest).

use proptest::prelude::*;
use ykt_apdu::tlv::TlvError;
use ykt_gp_host::commands::{get_data, get_status, install, put_key};
use ykt_gp_host::{EntryKind, ParseError, Privileges, Scope, life_cycle_name};

use crate::support::{h, hx};

#[test]
fn get_status_entries() {
    // Two applications as the card manager lists them, one an SSD; then an ELF with modules.
    let data = h(
        "E3 1D 4F08A000000632010105 9F700107 C503000000 CC08A000000151000000
                  E3 13 4F08A000000151535041 9F70010F C503A00000",
    );
    let entries = get_status::parse_get_status(Scope::Applications, &data).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].kind, EntryKind::Application);
    assert_eq!(hx(&entries[0].aid), "A000000632010105");
    assert_eq!(entries[0].life_cycle, 0x07);
    assert_eq!(entries[0].privileges, Some(Privileges::NONE));
    assert_eq!(
        entries[0].associated_security_domain.as_deref(),
        Some(&h("A000000151000000")[..])
    );
    assert_eq!(entries[1].kind, EntryKind::SecurityDomain);
    assert_eq!(entries[1].associated_security_domain, None);

    let elf = h("E3 1D 4F07A0000006320101 9F700101 CE020100 8408A000000632010105 C4 00");
    let e = &get_status::parse_get_status(Scope::LoadFilesAndModules, &elf).unwrap()[0];
    assert_eq!(e.kind, EntryKind::LoadFile);
    assert_eq!(e.version.as_deref(), Some(&[1u8, 0][..]));
    assert_eq!(e.modules, vec![h("A000000632010105")]);
    assert_eq!(e.load_file.as_deref(), Some(&[][..]));

    // The ISD with the one-byte privileges of a GP 2.1 card.
    let isd = get_status::parse_get_status(
        Scope::IssuerSecurityDomain,
        &h("E3114F08A0000001510000009F70010F C5019E"),
    )
    .unwrap();
    assert_eq!(isd[0].kind, EntryKind::IssuerSecurityDomain);
    assert_eq!(isd[0].privileges, Some(Privileges([0x9E, 0, 0])));
    assert!(
        get_status::parse_get_status(Scope::Applications, &[])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn get_status_malformed() {
    let p = |s: &str| get_status::parse_get_status(Scope::Applications, &h(s));
    assert_eq!(
        p("E305 9F700107"),
        Err(ParseError::Tlv(TlvError::Truncated))
    );
    assert_eq!(p("E304 9F700107"), Err(ParseError::MissingTag(0x4F)));
    assert_eq!(p("E305 4F03A00000"), Err(ParseError::MissingTag(0x9F70)));
    assert_eq!(p("6F00"), Err(ParseError::UnexpectedTag(0x6F)));
    assert_eq!(
        p("E30C 4F05A000000001 9F7000 C500"),
        Err(ParseError::Length {
            tag: 0x9F70,
            actual: 0
        })
    );
    assert_eq!(
        p("E30F 4F05A000000001 9F700107 C5020000"),
        Err(ParseError::Length {
            tag: 0xC5,
            actual: 2
        })
    );
    assert_eq!(
        p("E306 4F00 9F700107"),
        Err(ParseError::Length {
            tag: 0x4F,
            actual: 0
        })
    );
}

#[test]
fn get_data_objects() {
    let cplc: Vec<u8> = (0u8..42).collect();
    let mut data = h("9F7F2A");
    data.extend(&cplc);
    let value = get_data::parse_data_object(0x9F7F, &data).unwrap();
    let c = get_data::Cplc::parse(&value).unwrap();
    assert_eq!(c.ic_fabricator, [0, 1]);
    assert_eq!(c.ic_serial_number, [12, 13, 14, 15]);
    assert_eq!(c.ic_personalization_equipment, [38, 39, 40, 41]);
    assert_eq!(c.fields().len(), 18);
    assert_eq!(
        c.fields().iter().map(|(_, v)| v.len()).sum::<usize>(),
        get_data::CPLC_LEN
    );
    assert_eq!(
        get_data::Cplc::parse(&cplc[..41]),
        Err(ParseError::Length {
            tag: 0x9F7F,
            actual: 41
        })
    );
    assert_eq!(
        get_data::parse_data_object(0x0042, &h("4504AABBCCDD")),
        Err(ParseError::UnexpectedTag(0x45))
    );
    assert_eq!(
        get_data::parse_data_object(0x0042, &[]),
        Err(ParseError::MissingTag(0x42))
    );
    assert_eq!(
        get_data::parse_data_object(0x0042, &h("4200 4200")),
        Err(ParseError::TrailingData(4))
    );

    // Key information: three AES keys of KVN 30, and an SM4 key.
    let keys = get_data::parse_key_information(&h(
        "C00401308810 C00402308810 C00403308810 C00601318910FF20",
    ))
    .unwrap();
    assert_eq!(keys.len(), 4);
    assert_eq!((keys[1].id, keys[1].version), (2, 0x30));
    assert_eq!(keys[0].components, vec![(0x88, 16)]);
    assert_eq!(keys[3].components, vec![(0x89, 16), (0xFF, 0x20)]);
    assert!(matches!(
        get_data::parse_key_information(&h("C003013088")),
        Err(ParseError::Length { tag: 0xC0, .. })
    ));
    assert_eq!(
        get_data::parse_key_information(&h("C1020130")),
        Err(ParseError::UnexpectedTag(0xC1))
    );

    // Card recognition data as the card manager sends it (GP 2.3.1, SCP03 i=70).
    let card_data = h("732F 06072A864886FC6B01 600C060A2A864886FC6B02020301
                       630906072A864886FC6B03 640B06092A864886FC6B040370");
    let cd = get_data::parse_card_data(&card_data).unwrap();
    assert_eq!(cd.gp_version, Some(h("020301")));
    assert_eq!(cd.secure_channels, vec![(0x03, 0x70)]);
    assert_eq!(
        get_data::parse_card_data(&h("6000")),
        Err(ParseError::MissingTag(0x73))
    );
}

#[test]
fn receipts_and_put_key_responses() {
    assert_eq!(install::parse_receipt(&[]), Ok(None));
    assert_eq!(install::parse_receipt(&[0]), Ok(None));
    let r = install::parse_receipt(&h("02AABB 020001 00"))
        .unwrap()
        .unwrap();
    assert_eq!(r.receipt, h("AABB"));
    assert_eq!(r.confirmation, h("02000100"));
    assert_eq!(
        install::parse_receipt(&h("08AABB")),
        Err(ParseError::Truncated)
    );
    let (v, kcvs) = put_key::parse_put_key_response(&h("31 010203 040506 070809")).unwrap();
    assert_eq!(v, 0x31);
    assert_eq!(kcvs, vec![[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
    assert_eq!(
        put_key::parse_put_key_response(&h("310102")),
        Err(ParseError::Truncated)
    );
    assert_eq!(
        put_key::parse_put_key_response(&[]),
        Err(ParseError::Truncated)
    );
}

#[test]
fn life_cycles_in_words() {
    let w = |k, s| life_cycle_name(k, s).to_string();
    assert_eq!(w(EntryKind::IssuerSecurityDomain, 0x0F), "SECURED");
    assert_eq!(w(EntryKind::IssuerSecurityDomain, 0x7F), "CARD_LOCKED");
    assert_eq!(w(EntryKind::IssuerSecurityDomain, 0xFF), "TERMINATED");
    assert_eq!(w(EntryKind::Application, 0x07), "SELECTABLE");
    assert_eq!(w(EntryKind::Application, 0x87), "LOCKED");
    assert_eq!(w(EntryKind::Application, 0x0F), "SELECTABLE (0F)");
    assert_eq!(w(EntryKind::Application, 0x03), "INSTALLED");
    assert_eq!(w(EntryKind::SecurityDomain, 0x0F), "PERSONALIZED");
    assert_eq!(w(EntryKind::SecurityDomain, 0x83), "LOCKED");
    assert_eq!(w(EntryKind::LoadFile, 0x01), "LOADED");
    assert_eq!(w(EntryKind::LoadFile, 0x02), "UNKNOWN (02)");
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::IssuerSecurityDomain),
        Just(Scope::Applications),
        Just(Scope::LoadFiles),
        Just(Scope::LoadFilesAndModules),
    ]
}

/// Byte strings that are often TLV-shaped (so the parsers get past the first tag).
fn tlvish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80),
        (
            prop_oneof![Just(0xE3u8), Just(0x73), Just(0xC0), Just(0x9F), Just(0x4F)],
            proptest::collection::vec(any::<u8>(), 0..60)
        )
            .prop_map(|(tag, body)| {
                let mut v = vec![tag, body.len() as u8];
                v.extend(body);
                v
            }),
    ]
}

proptest! {
    #[test]
    fn parsers_are_total(scope in scope(), data in tlvish(), tag in any::<u16>()) {
        let _ = get_status::parse_get_status(scope, &data);
        let _ = get_data::parse_data_object(tag, &data);
        let _ = get_data::Cplc::parse(&data);
        let _ = get_data::parse_key_information(&data);
        let _ = get_data::parse_card_data(&data);
        let _ = install::parse_receipt(&data);
        let _ = put_key::parse_put_key_response(&data);
    }

    #[test]
    fn get_status_round_trips(
        entries in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 5..=16), any::<u8>(), any::<[u8; 3]>()),
            0..6,
        )
    ) {
        let mut data = Vec::new();
        for (aid, state, privs) in &entries {
            let mut body = vec![0x4F, aid.len() as u8];
            body.extend(aid);
            body.extend([0x9F, 0x70, 0x01, *state, 0xC5, 0x03]);
            body.extend(privs);
            data.push(0xE3);
            data.push(body.len() as u8);
            data.extend(body);
        }
        let parsed = get_status::parse_get_status(Scope::Applications, &data).unwrap();
        prop_assert_eq!(parsed.len(), entries.len());
        for (p, (aid, state, privs)) in parsed.iter().zip(&entries) {
            prop_assert_eq!(&p.aid, aid);
            prop_assert_eq!(p.life_cycle, *state);
            prop_assert_eq!(p.privileges, Some(Privileges(*privs)));
            let kind = if privs[0] & 0x80 != 0 { EntryKind::SecurityDomain } else { EntryKind::Application };
            prop_assert_eq!(p.kind, kind);
        }
    }
}
