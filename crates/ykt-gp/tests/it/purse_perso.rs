//! The e-purse created and personalised the GlobalPlatform way, end to end on one card: the ISD
//! creates a supplementary security domain with Authorized Management and gives it its keys;
//! under the SSD's own secure channel (C-MAC + C-DEC + R-MAC + R-ENC) the SSD loads the purse
//! package, installs the purse instance and personalises it with STORE DATA DGIs
//! (`ykt_purse::perso::Builder`; the secret blocks encrypted under the SSD's K-DEK). The result
//! then replays the e-purse brief's §8 transcripts byte for byte, as the factory-issued test
//! card does.

use ykt_apdu::CommandApdu;
use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, SeededRandom};
use ykt_crypto::purse::{PurseAlgorithm, Sm4Rules};
use ykt_crypto::{AesKey, cbc_encrypt};
use ykt_gp::commands::load::{load_file, load_file_data_block};
use ykt_gp::commands::put_key::{KeyEncryption, encode_key_set};
use ykt_gp::{IsdFactory, Package, install_isd};
use ykt_purse::perso::Builder;
use ykt_purse::testing::{TEST_ASN, danger_test_entropy, test_card_data, test_issuer};
use ykt_purse::{EP_AID, PurseAppletFactory, PurseProfile};
use ykt_scp::{HostConfig, KeySet, SecurityLevel};

use crate::support::{Host, aes_keys, h, hx, open, open_with, scp03, send, setup};

const PURSE_ELF: &str = "A0000006320101";
const PURSE_MODULE: &str = "A000000632010101";
const SSD: &str = "A000000151535041C001";
const SSD_ELF: &str = "A0000001515350";
const SSD_MODULE: &str = "A000000151535041";

struct Library;

impl AppletFactory for Library {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        PurseAppletFactory
            .create(kind, aid, params)
            .or_else(|| IsdFactory.create(kind, aid, params))
    }
}

fn aid(s: &str) -> Aid {
    Aid::new(&h(s)).unwrap()
}

fn lv(s: &str) -> String {
    format!("{:02X}{s}", s.len() / 2)
}

fn cmd(header: &str, data: &str) -> CommandApdu {
    CommandApdu::parse(&h(&format!("{header}{:02X}{data}00", data.len() / 2))).unwrap()
}

fn ssd_keys() -> KeySet {
    aes_keys(0x30, 0x70)
}

/// A blank SE: only the ISD, which knows the SD package and the purse package.
fn blank_se() -> Card {
    let (p, k) = scp03();
    let mut s = setup(p, k);
    s.packages.push(Package {
        elf: aid(PURSE_ELF),
        version: [0x01, 0x00],
        modules: vec![(aid(PURSE_MODULE), ykt_purse::KIND.to_string())],
    });
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(3)));
    card.set_library(Box::new(Library));
    install_isd(&mut card, &s).unwrap();
    card.power_on();
    card
}

fn ok(host: &mut Host, card: &mut Card, c: &CommandApdu, what: &str) -> Vec<u8> {
    let (data, sw) = host.send(card, c);
    assert_eq!(sw, 0x9000, "{what}");
    data
}

fn issue(alg: PurseAlgorithm) -> Card {
    let mut card = blank_se();
    // ISD: the SSD, then its keys (DGI 8001 under the ISD's channel).
    assert_eq!(send(&mut card, &h("00A4040008A000000151000000")).1, 0x9000);
    let (p, isd_keys) = scp03();
    let mut isd = open(&mut card, p, &isd_keys, SecurityLevel::ALL).unwrap();
    let create = format!(
        "{}{}{}{}{}00",
        lv(SSD_ELF),
        lv(SSD_MODULE),
        lv(SSD),
        lv("804000"),
        lv("C900")
    );
    ok(
        &mut isd,
        &mut card,
        &cmd("80E60C00", &create),
        "create the SSD",
    );
    ok(
        &mut isd,
        &mut card,
        &cmd("80E62000", &format!("0000{}000000", lv(SSD))),
        "for personalization",
    );
    let block = encode_key_set(&ssd_keys(), &KeyEncryption::Static(&isd_keys.keys)).unwrap();
    ok(
        &mut isd,
        &mut card,
        &cmd("80E28800", &format!("8001{}", lv(&hx(&block)))),
        "SSD keys",
    );

    // SSD: its own channel, full level.
    assert_eq!(
        send(&mut card, &h(&format!("00A40400{}", lv(SSD)))).1,
        0x9000
    );
    let config = HostConfig {
        keys: ssd_keys(),
        protocol: p,
        level: SecurityLevel::ALL,
        security_domain_aid: Some(h(SSD)),
    };
    let mut ssd = open_with(&mut card, config).unwrap();
    let lfdb = load_file_data_block(&aid(PURSE_ELF), [0x01, 0x00]);
    ok(
        &mut ssd,
        &mut card,
        &cmd(
            "80E60200",
            &format!("{}{}{}0000", lv(PURSE_ELF), lv(""), lv("")),
        ),
        "for load",
    );
    let file = load_file(&lfdb);
    ok(&mut ssd, &mut card, &cmd("80E88000", &hx(&file)), "LOAD");
    let install = format!(
        "{}{}{}{}{}00",
        lv(PURSE_ELF),
        lv(PURSE_MODULE),
        lv(&hx(&EP_AID)),
        lv("000000"),
        lv("C900")
    );
    ok(
        &mut ssd,
        &mut card,
        &cmd("80E60C00", &install),
        "install the purse",
    );
    ok(
        &mut ssd,
        &mut card,
        &cmd("80E62000", &format!("0000{}000000", lv(&hx(&EP_AID)))),
        "for personalization",
    );
    let builder = Builder::issue(
        &test_issuer(alg).unwrap(),
        PurseProfile::EPURSE,
        &test_card_data(TEST_ASN),
    )
    .unwrap();
    let blocks = builder.blocks().unwrap();
    assert!(blocks.iter().any(|b| b.encrypted()));
    let StaticKeysAes(dek) = dek_of(&ssd_keys());
    for b in &blocks {
        let data = if b.encrypted() {
            // ISO/IEC 9797-1 method 2 padding, AES-CBC under the SSD's K-DEK, ICV zero
            // (`ykt_gp::commands::store_data::DECRYPT_RULE`).
            let mut padded = b.data.to_vec();
            padded.push(0x80);
            while padded.len() % 16 != 0 {
                padded.push(0);
            }
            cbc_encrypt(&dek, &[0; 16], &padded).unwrap()
        } else {
            b.data.to_vec()
        };
        let c = CommandApdu::new(0x80, 0xE2, b.p1, b.p2).with_data(data);
        ok(&mut ssd, &mut card, &c, "STORE DATA");
    }
    // The SSD lists the purse as its own, SELECTABLE.
    let (own, _) = ssd.send(&mut card, &cmd("80F24002", "4F00"));
    assert!(
        hx(&own).contains(&format!("4F08{}9F700107", hx(&EP_AID))),
        "{}",
        hx(&own)
    );
    card
}

struct StaticKeysAes(AesKey);

fn dek_of(keys: &KeySet) -> StaticKeysAes {
    match &keys.keys {
        ykt_scp::StaticKeys::Aes { dek, .. } => StaticKeysAes(dek.clone()),
        _ => panic!("AES keys expected"),
    }
}

/// The card with the scripted randoms of the e-purse brief's examples (a state file round trip
/// gives it a fresh entropy source: the secure channels drew from the first one).
fn with_brief_randoms(card: &Card) -> Card {
    let mut c = Card::load_state(
        &card.save_state(),
        Atr::default_t1(),
        Box::new(danger_test_entropy()),
        &Library,
    )
    .unwrap();
    c.set_library(Box::new(Library));
    c.power_on();
    c
}

fn purse_transcript(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ykt-purse/tests/data")
        .join(name)
}

#[test]
fn purse_issued_under_an_ssd_replays_the_brief_load_trace_3des() {
    let card = issue(PurseAlgorithm::Tdes);
    let mut card = with_brief_randoms(&card);
    assert!(
        ykt_card::testing::check_transcript(&mut card, purse_transcript("ep_s8_1_load_3des.apdu"))
            > 0
    );
    let mut card = with_brief_randoms(&issue(PurseAlgorithm::Tdes));
    assert!(
        ykt_card::testing::check_transcript(
            &mut card,
            purse_transcript("ep_s8_2_purchase_3des.apdu")
        ) > 0
    );
}

#[test]
fn purse_issued_under_an_ssd_replays_the_brief_sm4_trace() {
    let card = issue(PurseAlgorithm::Sm4(Sm4Rules::BRIEF));
    let mut card = with_brief_randoms(&card);
    assert!(
        ykt_card::testing::check_transcript(&mut card, purse_transcript("ep_s8_3_sm4.apdu")) > 0
    );
}
