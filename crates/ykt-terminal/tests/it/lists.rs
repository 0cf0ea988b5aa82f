//! Issuer whitelist and card blacklist: building, lookup at ~100k entries, the text and binary
//! formats and their precise errors. (The 10 M figures come from `examples/list_lookup.rs`.)

use ykt_terminal::lists::{BinaryListError, CardBlacklist, IssuerWhitelist, ListParseErrorKind};

const SAMPLE: &str = include_str!("../data/blacklist_sample.txt");

/// Deterministic pseudo-random ASNs with the test card's `3104` prefix.
fn asns(n: usize, seed: u64) -> Vec<[u8; 10]> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut a = [0u8; 10];
            a[0] = 0x31;
            a[1] = 0x04;
            a[2..].copy_from_slice(&x.to_be_bytes());
            a
        })
        .collect()
}

#[test]
fn a_blacklist_built_from_100k_unsorted_entries_finds_each_and_nothing_else() {
    let mut entries = asns(100_000, 0x1234_5678);
    entries.extend_from_within(..1000);
    let list = CardBlacklist::from_unsorted(7, entries.clone());
    assert_eq!(list.len(), 100_000);
    assert_eq!(list.version(), 7);
    // 16384 buckets of about 6 entries: 8 index bytes per bucket.
    assert_eq!(list.memory_bytes(), 100_000 * 10 + (16_384 + 1) * 8);
    let sorted = list.sorted_entries();
    assert!(sorted.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(sorted.len(), 100_000);
    assert!(entries.iter().all(|e| list.contains(e)));
    let absent = asns(10_000, 0xDEAD_BEEF);
    assert!(absent.iter().filter(|a| list.contains(a)).count() == 0);
}

#[test]
fn lists_of_every_small_size_find_exactly_their_entries() {
    for n in 0..300 {
        let entries = asns(n, 0xABCD + n as u64);
        let list = CardBlacklist::from_unsorted(1, entries.clone());
        assert!(entries.iter().all(|e| list.contains(e)), "{n}");
        assert!(!asns(50, 0x7777).iter().any(|e| list.contains(e)), "{n}");
        assert_eq!(CardBlacklist::from_binary(&list.to_binary()).unwrap(), list);
    }
}

#[test]
fn a_binary_list_in_any_order_loads_to_the_same_list() {
    let list = CardBlacklist::from_unsorted(5, asns(5000, 3));
    let mut sorted = list.sorted_entries();
    sorted.push(sorted[17]);
    let text: String = format!(
        "ykt-list card-blacklist 1\nversion 5\n{}",
        sorted
            .iter()
            .map(|e| format!("{}\n", hex::encode(e)))
            .collect::<String>()
    );
    assert_eq!(CardBlacklist::parse(&text).unwrap(), list);
    // Binary, entries sorted ascending instead of lookup order, with a repeat.
    let mut bin = b"YKTLIST\0\x01\x02".to_vec();
    bin.extend_from_slice(&5u32.to_be_bytes());
    bin.extend_from_slice(&(sorted.len() as u32).to_be_bytes());
    for e in &sorted {
        bin.extend_from_slice(e);
    }
    let crc = crc32_reference(&bin);
    bin.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(CardBlacklist::from_binary(&bin).unwrap(), list);
}

#[test]
fn the_text_sample_parses_sorted_and_deduplicated() {
    let list = CardBlacklist::parse(SAMPLE).unwrap();
    assert_eq!(list.version(), 20260115);
    assert_eq!(list.len(), 3);
    assert!(list.contains(&ykt_purse::testing::TEST_ASN.0));
    assert_eq!(CardBlacklist::parse(&list.to_text()).unwrap(), list);
    let white =
        IssuerWhitelist::parse("ykt-list issuer-whitelist 1\nversion 3\n01011000\n0202aBcD\n")
            .unwrap();
    assert!(white.contains(&[0x01, 0x01, 0x10, 0x00]));
    assert!(white.contains(&[0x02, 0x02, 0xAB, 0xCD]));
}

#[test]
fn text_parse_errors_name_the_line_and_the_fault() {
    use ListParseErrorKind as K;
    let h = "ykt-list card-blacklist 1\n";
    let cases: Vec<(String, usize, ListParseErrorKind)> = vec![
        (String::new(), 0, K::MissingHeader),
        ("31041000000012345678\n".into(), 1, K::MissingHeader),
        ("ykt-list issuer-whitelist 1\n".into(), 1, K::WrongKind),
        (
            "ykt-list card-blacklist 2\n".into(),
            1,
            K::UnsupportedFormat,
        ),
        (
            "ykt-list card-blacklist 1 x\n".into(),
            1,
            K::UnsupportedFormat,
        ),
        (h.into(), 0, K::MissingVersion),
        (format!("{h}31041000000012345678\n"), 2, K::MissingVersion),
        (format!("{h}version -1\n"), 2, K::BadVersion),
        (format!("{h}version 4294967296\n"), 2, K::BadVersion),
        (
            format!("{h}version 1\n# ok\n\n3104100000001234567\n"),
            5,
            K::EntryLength { digits: 19 },
        ),
        (
            format!("{h}version 1\n3104100000001234567G\n"),
            3,
            K::BadEntry,
        ),
        (
            format!("{h}version 1\n3104 1000000012345678\n"),
            3,
            K::EntryLength { digits: 21 },
        ),
    ];
    for (text, line, kind) in cases {
        let e = CardBlacklist::parse(&text).unwrap_err();
        assert_eq!((e.line, e.kind), (line, kind), "{text:?}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn the_binary_form_round_trips_and_every_defect_is_typed() {
    let list = CardBlacklist::from_unsorted(42, asns(1000, 99));
    let bin = list.to_binary();
    assert_eq!(bin.len(), 18 + 10_000 + 4);
    assert_eq!(&bin[..8], b"YKTLIST\0");
    assert_eq!(CardBlacklist::from_binary(&bin).unwrap(), list);

    assert_eq!(
        CardBlacklist::from_binary(&bin[..21]),
        Err(BinaryListError::TooShort { len: 21 })
    );
    let mut b = bin.clone();
    b[0] ^= 1;
    assert_eq!(CardBlacklist::from_binary(&b), Err(BinaryListError::Magic));
    let mut b = bin.clone();
    b[8] = 2;
    assert_eq!(
        CardBlacklist::from_binary(&b),
        Err(BinaryListError::FormatVersion(2))
    );
    assert_eq!(
        IssuerWhitelist::from_binary(&bin),
        Err(BinaryListError::Kind {
            expected: 1,
            found: 2
        })
    );
    assert_eq!(
        CardBlacklist::from_binary(&bin[..bin.len() - 1]),
        Err(BinaryListError::Length {
            count: 1000,
            len: bin.len() - 1
        })
    );
    let mut b = bin.clone();
    b[100] ^= 0x10;
    assert_eq!(CardBlacklist::from_binary(&b), Err(BinaryListError::Crc));
    let mut b = bin.clone();
    b[14..18].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        CardBlacklist::from_binary(&b),
        Err(BinaryListError::Length { .. })
    ));

    let white = IssuerWhitelist::from_unsorted(1, vec![[1, 2, 3, 4], [0, 0, 0, 1]]);
    assert_eq!(
        IssuerWhitelist::from_binary(&white.to_binary()).unwrap(),
        white
    );
    assert_eq!(
        IssuerWhitelist::from_binary(&IssuerWhitelist::empty(9).to_binary())
            .unwrap()
            .version(),
        9
    );
}

#[test]
fn the_crc_is_zlibs() {
    // CRC-32 of the empty whitelist's header, checked against Python's zlib.crc32.
    let bin = IssuerWhitelist::empty(0).to_binary();
    let crc = u32::from_be_bytes(bin[18..22].try_into().unwrap());
    assert_eq!(crc, 0xECF7_914C); // python3 -c "import zlib; print(hex(zlib.crc32(...)))"
    assert_eq!(crc, crc32_reference(&bin[..18]));
}

/// Bitwise CRC-32 (IEEE), a second implementation to check the table-driven one.
fn crc32_reference(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in data {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn debug_output_shows_no_entries() {
    let list = CardBlacklist::from_unsorted(1, vec![ykt_purse::testing::TEST_ASN.0]);
    let s = format!("{list:?}");
    assert!(!s.contains("49") && s.contains("len: 1"), "{s}");
}

#[test]
fn property_the_list_readers_never_panic() {
    let mut x: u64 = 0x4C49_5354_0000_0001;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let good = CardBlacklist::from_unsorted(3, asns(40, 5)).to_binary();
    let alphabet = b"ykt-list card-blacklist issuer-whitelist version 0123456789ABCDEFx#\n \t";
    for i in 0..5_000 {
        // Binary: a good list with random bytes changed or cut, or noise.
        let mut bytes = if i % 3 == 0 {
            (0..next() % 64).map(|_| next() as u8).collect::<Vec<u8>>()
        } else {
            good.clone()
        };
        if !bytes.is_empty() {
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            bytes.truncate((next() as usize) % (bytes.len() + 1));
        }
        let _ = CardBlacklist::from_binary(&bytes);
        let _ = IssuerWhitelist::from_binary(&bytes);
        // Text from a small alphabet, so headers and entries sometimes nearly parse.
        let text: String = (0..next() % 120)
            .map(|_| alphabet[(next() as usize) % alphabet.len()] as char)
            .collect();
        let _ = CardBlacklist::parse(&format!("ykt-list card-blacklist 1\nversion 1\n{text}"));
        let _ = IssuerWhitelist::parse(&text);
    }
}
