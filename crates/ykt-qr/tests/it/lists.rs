//! Terminal parameters (§3.1 steps 2, 3, 5, 10, 11): root keys by version and index, the
//! whitelist with wildcards, local org codes, blacklists, revocation, account types, the limit.

use ykt_qr::testing::{self, GENERATION_TIME, TestRng};
use ykt_qr::verify::WhitelistEntry;
use ykt_qr::{Error, RootKeyEntry, RootKeyRecord, Verifier, VerifierConfig, Version};

use crate::common::{code, example, unhex, verifier};

const NOW: u64 = GENERATION_TIME as u64 + 5;

#[test]
fn root_keys_are_looked_up_by_version_and_index() {
    let ex = example(Version::LOCAL);
    let bytes = code(&ex, GENERATION_TIME).encode();
    let record = ex.root.record(&mut TestRng::new(1)).unwrap();
    let mut v = Verifier::new(VerifierConfig::default());
    v.allow_local_org(testing::ORG_CODE);
    // Installed for version 80 only: a local code finds no key.
    v.add_root_key(Version::INTEROPERABLE, &record).unwrap();
    assert_eq!(
        v.verify(&bytes, 1, NOW),
        Err(ykt_qr::Rejection::UnknownRootKey {
            version: 0x81,
            index: 0x01
        })
    );
    // Through a 4026 entry for version 81.
    let entry = RootKeyEntry {
        version: Version::LOCAL,
        record,
    };
    let entry = RootKeyEntry::decode(&entry.encode()).unwrap();
    v.add_root_entry(&entry).unwrap();
    assert_eq!(v.verify(&bytes, 1, NOW).unwrap().ticket_type, None);
}

#[test]
fn a_root_record_with_a_bad_self_signature_is_not_installed() {
    let mut bytes = unhex(testing::ROOT_RECORD_HEX);
    bytes[20] ^= 0x01; // inside X
    let record = RootKeyRecord::decode(&bytes).unwrap();
    let mut v = Verifier::new(VerifierConfig::default());
    assert!(matches!(
        v.add_root_key(Version::INTEROPERABLE, &record),
        Err(Error::RootKeySelfSignature(_))
    ));
    let mut bytes = unhex(testing::ROOT_RECORD_HEX);
    bytes[143] ^= 0x01;
    let record = RootKeyRecord::decode(&bytes).unwrap();
    assert!(matches!(
        v.add_root_key(Version::INTEROPERABLE, &record),
        Err(Error::RootKeySelfSignature(_))
    ));
}

#[test]
fn root_key_expiry_is_checked() {
    let ex = example(Version::INTEROPERABLE);
    let bytes = code(&ex, GENERATION_TIME).encode();
    // 12/30 ends at 2031-01-01T00:00Z (also the certificate's expiry, checked after the root's).
    let end = 1_924_992_000;
    assert_eq!(
        verifier(&ex).verify(&bytes, 1, end),
        Err(ykt_qr::Rejection::RootKeyExpired { index: 1 })
    );
    // The terminal's clock is an argument: at the last second of 12/30 the key is still good
    // (the code itself has long expired).
    assert_eq!(
        verifier(&ex).verify(&bytes, 1, end - 1),
        Err(ykt_qr::Rejection::AuthorisationExpired)
    );
}

#[test]
fn whitelist_wildcards() {
    let ex = example(Version::INTEROPERABLE);
    let bytes = code(&ex, GENERATION_TIME).encode();
    let record = ex.root.record(&mut TestRng::new(1)).unwrap();
    let with = |entry: WhitelistEntry| {
        let mut v = Verifier::new(VerifierConfig::default());
        v.add_root_key(Version::INTEROPERABLE, &record).unwrap();
        v.allow_issuer(entry);
        v.verify(&bytes, 1, NOW).map(|a| a.ticket_type)
    };
    let any = [0xFF; 4];
    assert_eq!(
        with(WhitelistEntry {
            org_code: any,
            platform_id: any,
            ticket_type: 7
        }),
        Ok(Some(7))
    );
    assert_eq!(
        with(WhitelistEntry {
            org_code: [0x99, 0x99, 0xFF, 0xFF],
            platform_id: testing::PLATFORM_ID,
            ticket_type: 8
        }),
        Ok(Some(8))
    );
    assert_eq!(
        with(WhitelistEntry {
            org_code: testing::ORG_CODE,
            platform_id: [0x99, 0x99, 0x00, 0x03],
            ticket_type: 8
        }),
        Err(ykt_qr::Rejection::IssuerNotWhitelisted)
    );
}

#[test]
fn blacklists_revocation_account_types_and_the_limit() {
    use ykt_qr::Rejection::*;
    let ex = example(Version::INTEROPERABLE);
    let bytes = code(&ex, GENERATION_TIME).encode();
    let mut v = verifier(&ex);
    v.block_account(testing::USER_ACCOUNT);
    assert_eq!(v.verify(&bytes, 1, NOW), Err(AccountBlacklisted));

    let mut v = verifier(&ex);
    v.block_payment_account(*b"PAY0000000000001");
    assert_eq!(v.verify(&bytes, 1, NOW), Err(PaymentAccountBlacklisted));

    let mut v = verifier(&ex);
    v.revoke_certificate(0x01, [0, 0, 1]);
    assert_eq!(v.verify(&bytes, 1, NOW), Err(CertificateRevoked));
    let mut v = verifier(&ex);
    v.revoke_certificate(0x02, [0, 0, 1]);
    v.verify(&bytes, 1, NOW).unwrap();

    let mut v = verifier(&ex);
    assert_eq!(
        v.verify(&bytes, testing::LIMIT + 1, NOW),
        Err(OverLimit {
            fare: 2001,
            limit: 2000
        })
    );
    v.verify(&bytes, testing::LIMIT, NOW).unwrap();
}

#[test]
fn test_accounts_only_outside_production() {
    let terms = ykt_qr::issuer::Terms {
        account_type: ykt_qr::verify::TEST_ACCOUNT_TYPE,
        ..testing::terms()
    };
    let ex = testing::Example::new(Version::INTEROPERABLE, &terms, &mut TestRng::new(4)).unwrap();
    let bytes = code(&ex, GENERATION_TIME).encode();
    assert_eq!(
        verifier(&ex).verify(&bytes, 1, NOW),
        Err(ykt_qr::Rejection::AccountTypeRefused(0x04))
    );
    let config = VerifierConfig {
        refuse_test_accounts: false,
        ..VerifierConfig::default()
    };
    crate::common::verifier_with(&ex, config)
        .verify(&bytes, 1, NOW)
        .unwrap();
}

#[test]
fn versions_are_accepted_by_configuration() {
    let ex = example(Version::LOCAL);
    let bytes = code(&ex, GENERATION_TIME).encode();
    let config = VerifierConfig {
        accepted_versions: vec![Version::INTEROPERABLE],
        ..VerifierConfig::default()
    };
    assert_eq!(
        crate::common::verifier_with(&ex, config).verify(&bytes, 1, NOW),
        Err(ykt_qr::Rejection::UnsupportedVersion(0x81))
    );
}

#[test]
fn whitelist_records_of_parameter_4020() {
    use ykt_qr::verify::WhitelistRecord;
    let bytes = unhex("99990001ffffffff 99990002 01 0000 05");
    let record = WhitelistRecord::decode(&bytes).unwrap();
    assert_eq!(record.encode().to_vec(), bytes);
    assert_eq!(
        record.entry(),
        WhitelistEntry {
            org_code: testing::ORG_CODE,
            platform_id: testing::PLATFORM_ID,
            ticket_type: 5
        }
    );
    assert!(WhitelistRecord::decode(&bytes[..15]).is_err());
    let ex = example(Version::INTEROPERABLE);
    let mut v = Verifier::new(VerifierConfig::default());
    v.add_root_key(
        Version::INTEROPERABLE,
        &ex.root.record(&mut TestRng::new(1)).unwrap(),
    )
    .unwrap();
    v.allow_issuer(record.entry());
    let accepted = v
        .verify(&code(&ex, GENERATION_TIME).encode(), 1, NOW)
        .unwrap();
    assert_eq!(accepted.ticket_type, Some(5));
}

#[test]
fn parameter_downloads_replace_tables_by_version() {
    use ykt_qr::verify::ParameterUpdate;
    let ex = example(Version::INTEROPERABLE);
    let bytes = code(&ex, GENERATION_TIME).encode();
    let entries = [RootKeyEntry {
        version: Version::INTEROPERABLE,
        record: ex.root.record(&mut TestRng::new(1)).unwrap(),
    }];
    let whitelist = [WhitelistEntry {
        org_code: testing::ORG_CODE,
        platform_id: testing::PLATFORM_ID,
        ticket_type: 2,
    }];
    let mut v = Verifier::new(VerifierConfig::default());
    v.apply(ParameterUpdate::RootKeys {
        version: 3,
        entries: &entries,
    })
    .unwrap();
    v.apply(ParameterUpdate::Whitelist {
        version: 7,
        entries: &whitelist,
    })
    .unwrap();
    v.apply(ParameterUpdate::Blacklist {
        version: 1,
        accounts: &[testing::USER_ACCOUNT],
    })
    .unwrap();
    assert_eq!(
        v.verify(&bytes, 1, NOW),
        Err(ykt_qr::Rejection::AccountBlacklisted)
    );
    // An older or equal version is refused and changes nothing.
    assert_eq!(
        v.apply(ParameterUpdate::Blacklist {
            version: 1,
            accounts: &[],
        }),
        Err(Error::StaleParameters {
            current: 1,
            offered: 1
        })
    );
    v.apply(ParameterUpdate::Blacklist {
        version: 2,
        accounts: &[],
    })
    .unwrap();
    let accepted = v.verify(&bytes, 1, NOW).unwrap();
    assert_eq!(accepted.ticket_type, Some(2));
    let versions = v.parameter_versions();
    assert_eq!(
        (versions.root_keys, versions.whitelist, versions.blacklist),
        (3, 7, 2)
    );
    assert_eq!(accepted.parameters, versions);
    // A root key table with one bad record is refused whole.
    let mut bad = entries[0].clone();
    bad.record.signature[63] ^= 1;
    let two = [entries[0].clone(), bad];
    assert!(matches!(
        v.apply(ParameterUpdate::RootKeys {
            version: 4,
            entries: &two,
        }),
        Err(Error::RootKeySelfSignature(_))
    ));
    assert_eq!(v.parameter_versions().root_keys, 3);
    v.verify(&code(&ex, GENERATION_TIME + 1).encode(), 1, NOW)
        .unwrap();
    // An empty root key table leaves the terminal with no keys.
    v.apply(ParameterUpdate::RootKeys {
        version: 5,
        entries: &[],
    })
    .unwrap();
    assert!(matches!(
        v.verify(&code(&ex, GENERATION_TIME + 2).encode(), 1, NOW),
        Err(ykt_qr::Rejection::UnknownRootKey { .. })
    ));
}
