//! The parameter files 4026 and 4020 (qr-code.md §2.3): the files `tests/data/make_tables.py`
//! built with Python's hashlib decode, encode back byte for byte and take effect; a flipped
//! byte, a truncated file and an older version are refused with the verifier unchanged.

use ykt_qr::cert::RootKeyEntry;
use ykt_qr::record::ParameterVersions;
use ykt_qr::tables::{self, RootKeyTable, Table, TableError, WhitelistTable};
use ykt_qr::testing::{self, ROOT_RECORD_HEX, TestRng};
use ykt_qr::verify::WhitelistRecord;
use ykt_qr::{Error, RootKeyRecord, Verifier, VerifierConfig, Version};

use crate::common::{code, example, unhex};

const FILE_4026: &str = include_str!("../data/tables_4026_hashlib.hex");
const FILE_4020: &str = include_str!("../data/tables_4020_hashlib.hex");

fn files() -> (Vec<u8>, Vec<u8>) {
    (unhex(FILE_4026), unhex(FILE_4020))
}

/// Version 1 of both tables: the §6 root key for version 80 and the §6 issuer mapped to
/// ticket type 09 (the files map it to 01).
fn older_tables() -> (Vec<u8>, Vec<u8>) {
    let record = RootKeyRecord::decode(&unhex(ROOT_RECORD_HEX)).unwrap();
    let roots = RootKeyTable::new(
        1,
        vec![RootKeyEntry {
            version: Version::INTEROPERABLE,
            record,
        }],
    )
    .unwrap();
    let list = WhitelistTable::new(1, vec![issuer_record(0x09)]);
    (roots.encode().unwrap(), list.encode().unwrap())
}

fn issuer_record(ticket_type: u8) -> WhitelistRecord {
    let mut issuer = [0xFF; 8];
    issuer[..4].copy_from_slice(&testing::ORG_CODE);
    WhitelistRecord {
        issuer,
        platform: testing::PLATFORM_ID,
        card_type: 0,
        ticket_type,
    }
}

/// A verifier holding the version 1 tables.
fn base() -> Verifier {
    let (roots, list) = older_tables();
    let mut v = Verifier::new(VerifierConfig::default());
    tables::apply_files(&mut v, Some(&roots), Some(&list)).unwrap();
    v
}

/// The ticket type a fresh copy of `v` gives the §6 version 80 code (None: refused).
fn ticket_type(v: &Verifier, code_bytes: &[u8]) -> Option<u8> {
    let now = u64::from(testing::GENERATION_TIME) + 1;
    v.clone()
        .verify(code_bytes, 200, now)
        .ok()
        .and_then(|a| a.ticket_type)
}

fn good_code() -> Vec<u8> {
    code(&example(Version::INTEROPERABLE), testing::GENERATION_TIME).encode()
}

fn versions(root_keys: u32, whitelist: u32) -> ParameterVersions {
    ParameterVersions {
        root_keys,
        whitelist,
        blacklist: 0,
    }
}

#[test]
fn the_hashlib_files_decode_encode_back_and_take_effect() {
    let (f4026, f4020) = files();
    let roots = RootKeyTable::decode(&f4026).unwrap();
    assert_eq!(roots.version(), 2);
    let keys: Vec<(u8, u8)> = roots
        .entries()
        .iter()
        .map(|e| (e.version.value(), e.record.index))
        .collect();
    assert_eq!(keys, [(0x80, 0x01), (0x81, 0x01), (0x80, 0x02)]);
    assert_eq!(roots.encode().unwrap(), f4026);
    let list = WhitelistTable::decode(&f4020).unwrap();
    assert_eq!(list.version(), 7);
    assert_eq!(list.records().len(), 2);
    assert_eq!(list.entries()[0].org_code, testing::ORG_CODE);
    assert_eq!(list.entries()[1].platform_id, [0xFF; 4]);
    assert_eq!(list.encode().unwrap(), f4020);
    // The header's SHA-1 is hashlib's over the records.
    assert_eq!(f4026[12..32], tables::sha1(&f4026[32..]));
    assert_eq!(f4020[8..28], tables::sha1(&f4020[28..]));

    let code_bytes = good_code();
    let mut v = base();
    assert_eq!(ticket_type(&v, &code_bytes), Some(0x09));
    let now = tables::apply_files(&mut v, Some(&f4026), Some(&f4020)).unwrap();
    assert_eq!(now, versions(2, 7));
    // The new whitelist is in force: the issuer now maps to ticket type 01.
    assert_eq!(ticket_type(&v, &code_bytes), Some(0x01));
}

/// Every byte of both files flipped in turn: refused, the verifier unchanged, except the
/// header's version, which the SHA-1 does not cover (§2.3): a flip there gives a newer
/// version with the same records.
#[test]
fn a_flipped_byte_anywhere_is_refused_and_the_verifier_unchanged() {
    let (f4026, f4020) = files();
    let code_bytes = good_code();
    let base = base();
    for (table, file) in [(Table::RootKeys, &f4026), (Table::Whitelist, &f4020)] {
        for at in 0..file.len() {
            let mut m = file.clone();
            m[at] ^= 0xA5;
            let mut v = base.clone();
            let result = match table {
                Table::RootKeys => tables::apply_files(&mut v, Some(&m), Some(&f4020)),
                _ => tables::apply_files(&mut v, Some(&f4026), Some(&m)),
            };
            if at < 4 {
                let applied = result.unwrap();
                assert!(applied.root_keys >= 2 && applied.whitelist >= 7, "{at}");
                assert_eq!(ticket_type(&v, &code_bytes), Some(0x01));
                continue;
            }
            assert!(
                matches!(result, Err(Error::Table(_))),
                "{table:?} byte {at}: {result:?}"
            );
            assert_eq!(
                v.parameter_versions(),
                versions(1, 1),
                "{table:?} byte {at}"
            );
            assert_eq!(ticket_type(&v, &code_bytes), Some(0x09), "{at}");
        }
    }
}

#[test]
fn a_truncated_file_is_refused_with_its_reason() {
    let (f4026, f4020) = files();
    let base = base();
    for (file, table) in [(&f4026, Table::RootKeys), (&f4020, Table::Whitelist)] {
        for len in 0..file.len() {
            let cut = &file[..len];
            let err = match table {
                Table::RootKeys => RootKeyTable::decode(cut).map(|_| ()),
                _ => WhitelistTable::decode(cut).map(|_| ()),
            }
            .unwrap_err();
            let header = if table == Table::RootKeys { 32 } else { 28 };
            let record = if table == Table::RootKeys { 160 } else { 16 };
            let expected_kind = if len < header {
                matches!(err, TableError::Truncated { len: l, .. } if l == len)
            } else if (len - header) % record != 0 {
                matches!(err, TableError::Length { .. })
            } else {
                matches!(err, TableError::Count { .. })
            };
            assert!(expected_kind, "{table:?} cut to {len}: {err:?}");
            let mut v = base.clone();
            let r = match table {
                Table::RootKeys => tables::apply_files(&mut v, Some(cut), Some(&f4020)),
                _ => tables::apply_files(&mut v, Some(&f4026), Some(cut)),
            };
            assert!(r.is_err());
            assert_eq!(v.parameter_versions(), versions(1, 1));
        }
    }
}

#[test]
fn an_older_or_equal_version_is_refused_and_nothing_applied() {
    let (f4026, f4020) = files();
    let (old4026, old4020) = older_tables();
    let mut v = Verifier::new(VerifierConfig::default());
    tables::apply_files(&mut v, Some(&f4026), Some(&f4020)).unwrap();
    let code_bytes = good_code();
    for (roots, list) in [
        (Some(&old4026), None),
        (None, Some(&old4020)),
        (Some(&f4026), None),
        (None, Some(&f4020)),
    ] {
        let r = tables::apply_files(&mut v, roots.map(|f| &f[..]), list.map(|f| &f[..]));
        assert!(matches!(r, Err(Error::StaleParameters { .. })), "{r:?}");
        assert_eq!(v.parameter_versions(), versions(2, 7));
    }
    // A newer 4026 with a stale 4020: neither is applied.
    let mut fresh = Verifier::new(VerifierConfig::default());
    tables::apply_files(&mut fresh, None, Some(&f4020)).unwrap();
    let r = tables::apply_files(&mut fresh, Some(&old4026), Some(&old4020));
    assert_eq!(
        r,
        Err(Error::StaleParameters {
            current: 7,
            offered: 1
        })
    );
    assert_eq!(fresh.parameter_versions(), versions(0, 7));
    assert_eq!(ticket_type(&fresh, &code_bytes), None);
    assert_eq!(ticket_type(&v, &code_bytes), Some(0x01));
}

/// Re-seals `records` under the header of `file` with a correct SHA-1, so the record's own
/// checks are reached.
fn reseal(file: &[u8], header: usize, digest_at: usize, records: &[u8]) -> Vec<u8> {
    let mut out = file[..header].to_vec();
    out[digest_at..digest_at + 20].copy_from_slice(&tables::sha1(records));
    out.extend_from_slice(records);
    out
}

#[test]
fn record_errors_are_typed_with_the_record_index() {
    let (f4026, f4020) = files();
    // The S5 record's signature altered, the SHA-1 recomputed: its self-signature fails.
    let mut records = f4026[32..].to_vec();
    records[2 * 160 + 2 + 143] ^= 0x01;
    let e = RootKeyTable::decode(&reseal(&f4026, 32, 12, &records)).unwrap_err();
    assert!(
        matches!(e, TableError::SelfSignature { index: 2, .. }),
        "{e:?}"
    );
    // Medium 01 in the second record.
    let mut records = f4026[32..].to_vec();
    records[160] = 0x01;
    let e = RootKeyTable::decode(&reseal(&f4026, 32, 12, &records)).unwrap_err();
    assert!(
        matches!(
            e,
            TableError::Record {
                table: Table::RootKeys,
                index: 1,
                ..
            }
        ),
        "{e:?}"
    );
    // The second record made a copy of the first: two keys for (80, 01).
    let mut records = f4026[32..].to_vec();
    records.copy_within(0..160, 160);
    let e = RootKeyTable::decode(&reseal(&f4026, 32, 12, &records)).unwrap_err();
    assert_eq!(
        e,
        TableError::DuplicateKey {
            index: 1,
            version: 0x80,
            ca_index: 0x01
        }
    );
    // A count one too high, and RFU set.
    let mut m = f4020.clone();
    m[7] += 1;
    assert_eq!(
        WhitelistTable::decode(&m),
        Err(TableError::Count {
            table: Table::Whitelist,
            declared: 3,
            present: 2
        })
    );
    let mut m = f4026.clone();
    m[9] = 1;
    assert_eq!(
        RootKeyTable::decode(&m),
        Err(TableError::Reserved {
            table: Table::RootKeys
        })
    );
    let mut m = f4020.clone();
    m[30] ^= 1;
    assert_eq!(
        WhitelistTable::decode(&m),
        Err(TableError::Digest {
            table: Table::Whitelist
        })
    );
}

#[test]
fn a_generated_root_table_round_trips() {
    let mut rng = TestRng::new(9);
    let record = testing::root_ca().unwrap().record(&mut rng).unwrap();
    let table = RootKeyTable::new(
        0xFFFF_FFFF,
        vec![RootKeyEntry {
            version: Version::LOCAL,
            record,
        }],
    )
    .unwrap();
    let bytes = table.encode().unwrap();
    assert_eq!(bytes.len(), 32 + 160);
    assert_eq!(&bytes[..8], &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1]);
    assert_eq!(RootKeyTable::decode(&bytes).unwrap(), table);
    let empty = WhitelistTable::new(3, Vec::new());
    assert_eq!(
        WhitelistTable::decode(&empty.encode().unwrap()).unwrap(),
        empty
    );
}
