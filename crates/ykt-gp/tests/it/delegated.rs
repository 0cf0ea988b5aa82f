//! Delegated management end to end (tsm-gp.md §4): an SSD with the Delegated Management
//! privilege loads, installs, makes selectable and deletes only with tokens the card issuer
//! signed (RSA-2048 PKCS#1 v1.5 SHA-256 or SM2-SM3), verified by the card with its token key
//! (KVN 70), and gets receipts (AES-CMAC, KVN 71) the host checks.

use ykt_apdu::CommandApdu;
use ykt_card::{Aid, Atr, Card, SeededRandom};
use ykt_crypto::{RsaPrivateKey, Sm2PrivateKey};
use ykt_gp::commands::load::{load_file, load_file_data_block};
use ykt_gp::commands::put_key::{KeyEncryption, encode_key_set};
use ykt_gp::dm::{
    ReceiptAlgorithm, ReceiptContext, ReceiptKey, TokenSigner, signed_delete_data,
    signed_install_data, verify_receipt,
};
use ykt_gp::{IsdFactory, Package, install_isd};
use ykt_scp::{HostConfig, KeySet, SecurityLevel};

use crate::support::{Host, aes_keys, h, hx, open, open_with, scp03, send, setup};

const ELF: &str = "A0000006320101";
const MODULE: &str = "A000000632010100";
const APP: &str = "A00000063201010502";
const SSD: &str = "A000000151535041DD01";
const RECEIPT_KEY: [u8; 16] = [0x5A; 16];

struct Library;

impl ykt_card::AppletFactory for Library {
    fn create(
        &self,
        kind: &str,
        aid: &Aid,
        params: &[u8],
    ) -> Option<Box<dyn ykt_card::Applet + Send>> {
        if kind == "test.notes" {
            // The module's code: an applet with nothing but SELECT is enough here.
            return IsdFactory.create("ykt.gp.sd", aid, &[0x03, 0x70, 0x01]);
        }
        IsdFactory.create(kind, aid, params)
    }
}

fn aid(s: &str) -> Aid {
    Aid::new(&h(s)).unwrap()
}

fn lv(s: &str) -> String {
    format!("{:02X}{s}", s.len() / 2)
}

fn cmd(header: &str, data: &[u8]) -> CommandApdu {
    let mut c = h(header);
    if data.len() > 255 {
        c.push(0);
        c.extend_from_slice(&(data.len() as u16).to_be_bytes());
        c.extend_from_slice(data);
        c.extend_from_slice(&[0, 0]);
    } else {
        c.push(data.len() as u8);
        c.extend_from_slice(data);
        c.push(0);
    }
    CommandApdu::parse(&c).unwrap()
}

fn rsa_signer() -> TokenSigner {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dm_rsa2048_a.pk8.der");
    TokenSigner::Rsa(RsaPrivateKey::from_pkcs8_der(&std::fs::read(path).unwrap()).unwrap())
}

fn sm2_signer(d: u8) -> TokenSigner {
    let mut bytes = [0x11u8; 32];
    bytes[31] = d;
    TokenSigner::Sm2(Sm2PrivateKey::from_bytes(&bytes).unwrap())
}

fn ssd_keys() -> KeySet {
    aes_keys(0x30, 0x33)
}

/// A card whose ISD holds `signer`'s verification key and the receipt key, with an SSD that
/// has Delegated Management (`A0 00 00`) and its own keys; the SSD's session is open.
fn card_with_dm_ssd(signer: &TokenSigner) -> (Card, Host) {
    let (p, isd_keys) = scp03();
    let mut s = setup(p, isd_keys.clone());
    s.packages.push(Package {
        elf: aid(ELF),
        version: [0x01, 0x00],
        modules: vec![(aid(MODULE), "test.notes".to_string())],
    });
    s.token_key = Some(signer.verification_key());
    s.receipt_key = Some((ReceiptAlgorithm::AesCmac, RECEIPT_KEY));
    let mut card = Card::new(Atr::default_t1(), Box::new(SeededRandom::new(5)));
    card.set_library(Box::new(Library));
    install_isd(&mut card, &s).unwrap();
    card.power_on();
    assert_eq!(send(&mut card, &h("00A4040008A000000151000000")).1, 0x9000);
    let mut isd = open(&mut card, p, &isd_keys, SecurityLevel::ALL).unwrap();
    let create = format!(
        "{}{}{}{}{}00",
        lv("A0000001515350"),
        lv("A000000151535041"),
        lv(SSD),
        lv("A00000"),
        lv("C900")
    );
    assert_eq!(isd.send(&mut card, &cmd("80E60C00", &h(&create))).1, 0x9000);
    assert_eq!(
        isd.send(
            &mut card,
            &cmd("80E62000", &h(&format!("0000{}000000", lv(SSD))))
        )
        .1,
        0x9000
    );
    let block = encode_key_set(&ssd_keys(), &KeyEncryption::Static(&isd_keys.keys)).unwrap();
    assert_eq!(
        isd.send(
            &mut card,
            &cmd("80E28800", &h(&format!("8001{}", lv(&hx(&block)))))
        )
        .1,
        0x9000
    );
    assert_eq!(
        send(&mut card, &h(&format!("00A40400{}", lv(SSD)))).1,
        0x9000
    );
    let ssd = open_with(
        &mut card,
        HostConfig {
            keys: ssd_keys(),
            protocol: p,
            level: SecurityLevel::ALL,
            security_domain_aid: Some(h(SSD)),
        },
    )
    .unwrap();
    (card, ssd)
}

/// The length of the LV fields before the token.
fn lv_len(fields: &[&[u8]]) -> usize {
    fields.iter().map(|f| 1 + f.len()).sum()
}

fn receipt_key() -> ReceiptKey {
    ReceiptKey::aes(ykt_crypto::AesKey::from_slice(&RECEIPT_KEY).unwrap())
}

fn run(signer: &TokenSigner, other: &TokenSigner) {
    let (mut card, mut ssd) = card_with_dm_ssd(signer);
    let (elf, module, app, ssd_aid) = (h(ELF), h(MODULE), h(APP), h(SSD));
    // INSTALL [for load]: no token, another signer's token, then the right one.
    let fields: [&[u8]; 4] = [&elf, &[], &[], &[]];
    let mut plain = Vec::new();
    for f in fields {
        plain.push(f.len() as u8);
        plain.extend_from_slice(f);
    }
    plain.push(0);
    assert_eq!(
        ssd.send(&mut card, &cmd("80E60200", &plain)).1,
        0x6982,
        "no token"
    );
    let forged = signed_install_data(other, 0x02, 0x00, &fields).unwrap();
    assert_eq!(
        ssd.send(&mut card, &cmd("80E60200", &forged)).1,
        0x6982,
        "wrong signer"
    );
    let data = signed_install_data(signer, 0x02, 0x00, &fields).unwrap();
    let (response, sw) = ssd.send(&mut card, &cmd("80E60200", &data));
    assert_eq!(sw, 0x9000);
    let first = verify_receipt(
        &receipt_key(),
        &response,
        &ReceiptContext::Load {
            elf_aid: &elf,
            sd_aid: &ssd_aid,
        },
    )
    .unwrap();
    assert!(
        verify_receipt(
            &receipt_key(),
            &response,
            &ReceiptContext::Load {
                elf_aid: &elf,
                sd_aid: &h("A000000151000000")
            }
        )
        .is_err()
    );
    let file = load_file(&load_file_data_block(&aid(ELF), [0x01, 0x00]));
    assert_eq!(ssd.send(&mut card, &cmd("80E88000", &file)).1, 0x9000);

    // INSTALL [for install]: a token for another instance AID is refused; the right one works.
    let fields = |instance: &[u8]| -> Vec<Vec<u8>> {
        vec![
            elf.clone(),
            module.clone(),
            instance.to_vec(),
            vec![0, 0, 0],
            h("C900"),
        ]
    };
    let other_aid = h("A00000063201010599");
    let f_other = fields(&other_aid);
    let refs_other: Vec<&[u8]> = f_other.iter().map(Vec::as_slice).collect();
    let token_for_other = signed_install_data(signer, 0x04, 0x00, &refs_other).unwrap();
    let f = fields(&app);
    let refs: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
    let good = signed_install_data(signer, 0x04, 0x00, &refs).unwrap();
    // This command's fields with the other instance's token.
    let mut spliced = good[..lv_len(&refs)].to_vec();
    spliced.extend_from_slice(&token_for_other[lv_len(&refs_other)..]);
    assert_eq!(
        ssd.send(&mut card, &cmd("80E60400", &spliced)).1,
        0x6982,
        "token of another AID"
    );
    // The same token under P1 0C (install and make selectable) is refused too.
    assert_eq!(
        ssd.send(&mut card, &cmd("80E60C00", &good)).1,
        0x6982,
        "other P1"
    );
    let (response, sw) = ssd.send(&mut card, &cmd("80E60400", &good));
    assert_eq!(sw, 0x9000);
    let second = verify_receipt(
        &receipt_key(),
        &response,
        &ReceiptContext::Install {
            elf_aid: &elf,
            instance_aid: &app,
        },
    )
    .unwrap();
    assert_eq!(
        second.counter,
        first.counter + 1,
        "the confirmation counter counts"
    );
    assert_eq!(
        hx(&second.card_unique_data),
        "420400112233450801020304050607 08".replace(' ', "")
    );

    // Make selectable with its token; then DELETE with its token.
    let ms: [&[u8]; 5] = [&[], &[], &app, &[0, 0, 0], &[]];
    let data = signed_install_data(signer, 0x08, 0x00, &ms).unwrap();
    let (response, sw) = ssd.send(&mut card, &cmd("80E60800", &data));
    assert_eq!(sw, 0x9000);
    verify_receipt(
        &receipt_key(),
        &response,
        &ReceiptContext::MakeSelectable { instance_aid: &app },
    )
    .unwrap();
    assert_eq!(
        send(&mut card, &h(&format!("00A40400{}", lv(APP)))).1,
        0x9000
    );
    let mut ssd = {
        assert_eq!(
            send(&mut card, &h(&format!("00A40400{}", lv(SSD)))).1,
            0x9000
        );
        let (p, _) = scp03();
        open_with(
            &mut card,
            HostConfig {
                keys: ssd_keys(),
                protocol: p,
                level: SecurityLevel::ALL,
                security_domain_aid: Some(h(SSD)),
            },
        )
        .unwrap()
    };
    let mut no_token = vec![0x4F, app.len() as u8];
    no_token.extend_from_slice(&app);
    assert_eq!(
        ssd.send(&mut card, &cmd("80E40000", &no_token)).1,
        0x6982,
        "DELETE without a token"
    );
    let data = signed_delete_data(signer, 0x00, 0x00, &app, &[]).unwrap();
    let (response, sw) = ssd.send(&mut card, &cmd("80E40000", &data));
    assert_eq!(sw, 0x9000);
    verify_receipt(
        &receipt_key(),
        &response,
        &ReceiptContext::Delete { aid: &app },
    )
    .unwrap();
    assert_eq!(
        send(&mut card, &h(&format!("00A40400{}", lv(APP)))).1,
        0x6A82
    );
}

#[test]
fn delegated_management_with_sm2_tokens() {
    run(&sm2_signer(1), &sm2_signer(2));
}

#[test]
fn delegated_management_with_rsa_tokens() {
    run(&rsa_signer(), &sm2_signer(2));
}
