//! The published vectors, `tests/data/qr_vectors.txt` (format in its README.md), re-read and
//! run against fresh terminals built from the file's own parameters.

use std::collections::HashMap;

use ykt_crypto::Sm2PrivateKey;
use ykt_qr::verify::WhitelistEntry;
use ykt_qr::{QrCode, RootKeyRecord, Verifier, VerifierConfig, Version};

const FILE: &str = include_str!("../data/qr_vectors.txt");

struct Case {
    name: String,
    fields: HashMap<String, String>,
}

fn parse() -> (HashMap<String, String>, Vec<Case>) {
    let mut header = HashMap::new();
    let mut cases: Vec<Case> = Vec::new();
    for line in FILE.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(" = ").expect(line);
        if key == "case" {
            cases.push(Case {
                name: value.to_string(),
                fields: HashMap::new(),
            });
        } else if let Some(case) = cases.last_mut() {
            assert!(case.fields.insert(key.into(), value.into()).is_none());
        } else {
            header.insert(key.to_string(), value.to_string());
        }
    }
    (header, cases)
}

fn arr<const N: usize>(hex: &str) -> [u8; N] {
    hex::decode(hex).unwrap().try_into().unwrap()
}

fn terminal(header: &HashMap<String, String>) -> Verifier {
    let record = RootKeyRecord::decode(&hex::decode(&header["root_record"]).unwrap()).unwrap();
    let mut v = Verifier::new(VerifierConfig {
        clock_skew: header["skew"].parse().unwrap(),
        ..VerifierConfig::default()
    });
    v.add_root_key(Version::INTEROPERABLE, &record).unwrap();
    v.add_root_key(Version::LOCAL, &record).unwrap();
    let w: Vec<&str> = header["whitelist"].split(' ').collect();
    v.allow_issuer(WhitelistEntry {
        org_code: arr(w[0]),
        platform_id: arr(w[1]),
        ticket_type: u8::from_str_radix(w[2], 16).unwrap(),
    });
    v.allow_local_org(arr(&header["local_org"]));
    v.block_account(arr(&header["blacklist"]));
    v
}

#[test]
fn every_vector_gives_its_verdict() {
    let (header, cases) = parse();
    assert!(cases.len() >= 49, "{} cases", cases.len());
    let mut terminals: HashMap<String, Verifier> = HashMap::new();
    let mut rejected = 0;
    for case in &cases {
        let f = &case.fields;
        let v = terminals
            .entry(f["terminal"].clone())
            .or_insert_with(|| terminal(&header));
        let code = hex::decode(&f["code"]).unwrap();
        let got = match v.verify(&code, f["fare"].parse().unwrap(), f["now"].parse().unwrap()) {
            Ok(_) => "accept".to_string(),
            Err(r) => {
                rejected += 1;
                format!("reject {r:?}")
            }
        };
        assert_eq!(got, f["expect"], "case {}", case.name);
    }
    assert!(rejected >= 39, "{rejected} bad codes");
}

#[test]
fn the_header_keys_are_the_keys_of_the_codes() {
    let (header, cases) = parse();
    let root = Sm2PrivateKey::from_bytes(&arr(&header["root_d"])).unwrap();
    let record = RootKeyRecord::decode(&hex::decode(&header["root_record"]).unwrap()).unwrap();
    assert_eq!(root.public_key().to_bytes()[1..], record.public_key);
    let issuer = Sm2PrivateKey::from_bytes(&arr(&header["issuer_d"])).unwrap();
    let user = Sm2PrivateKey::from_bytes(&arr(&header["user_d"])).unwrap();
    let accept = cases.iter().find(|c| c.name == "accept-80").unwrap();
    let code = QrCode::decode(&hex::decode(&accept.fields["code"]).unwrap()).unwrap();
    assert_eq!(
        ykt_qr::compress_public_key(issuer.public_key()),
        code.authorisation.certificate.public_key
    );
    assert_eq!(
        ykt_qr::compress_public_key(user.public_key()),
        code.authorisation.body.user_public_key
    );
    Sm2PrivateKey::from_bytes(&arr(&header["other_root_d"])).unwrap();
}

#[test]
fn the_brief_codes_are_in_the_file() {
    let (_, cases) = parse();
    for (name, hex) in [
        ("brief-80", ykt_qr::testing::CODE_80_HEX),
        ("brief-81", ykt_qr::testing::CODE_81_HEX),
    ] {
        let case = cases.iter().find(|c| c.name == name).unwrap();
        assert_eq!(case.fields["code"], hex.replace(['\\', '\n', ' '], ""));
    }
}
