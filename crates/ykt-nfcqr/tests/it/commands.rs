//! Every command's refusals with the persistent state checked unchanged, and the rules the
//! transcripts do not reach: another key, bad signatures, the root key chain, expiry rules for a
//! new blob, the code limit, the certificate's month, RESET, key replacement, version 81 and
//! state files.

use ykt_card::Card;
use ykt_crypto::{Sm2PrivateKey, Sm2Signature};
use ykt_nfcqr::status::{STATE_AUTHORISED, STATE_EXHAUSTED, STATE_KEY, STATE_NO_KEY};
use ykt_nfcqr::{IssuedNfcQr, NFCQR_AID, NfcQrProfile, reset_message};
use ykt_qr::ca::RootCa;
use ykt_qr::testing::{self, AUTHORISATION_EXPIRY, GENERATION_TIME, TestRng, terms};
use ykt_qr::{Authorisation, Expiry, Version, ids, issuer};

use crate::support::*;

/// Sends `cmd`, expects `want`, and checks that the whole persistent state is unchanged.
fn refused(card: &mut Card, cmd: &[u8], want: u16) {
    let before = card.save_state();
    let (data, got) = send(card, cmd);
    assert_eq!(got, want, "{} answered {got:04X}", hx(cmd));
    assert!(data.is_empty(), "data with an error");
    assert_eq!(card.save_state(), before, "{} changed the state", hx(cmd));
}

fn status(card: &mut Card) -> Vec<u8> {
    let (d, s) = send(card, &GET_DATA);
    assert_eq!(s, 0x9000);
    assert_eq!(d.len(), 25);
    d
}

fn codes_under_authorisation(card: &mut Card) -> u32 {
    u32::from_be_bytes(status(card)[5..9].try_into().unwrap())
}

fn terms_expiring(expiry: u32) -> issuer::Terms {
    let mut t = terms();
    t.authorisation_expiry = expiry;
    t
}

fn issuer_key() -> Sm2PrivateKey {
    Sm2PrivateKey::from_bytes(&testing::ISSUER_D).unwrap()
}

fn reset_cmd(sig: &[u8; 64]) -> Vec<u8> {
    let mut c = vec![0x80, 0xEA, 0x00, 0x00, 0x40];
    c.extend_from_slice(sig);
    c
}

/// The issuer's RESET signature for the card key `public` under the blob's signature B ID.
fn reset_signature(blob: &[u8], public: &[u8; 65]) -> [u8; 64] {
    let auth = Authorisation::decode(blob).unwrap();
    issuer_key()
        .sign_with_rng(
            &mut TestRng::new(3),
            &ids::issuer_id(auth.version, &auth.body),
            &reset_message(public),
        )
        .unwrap()
        .to_bytes()
}

#[test]
fn refusals_without_a_key() {
    let mut card = fresh(NfcQrProfile::default());
    refused(&mut card, &h("80E6000000"), 0x6A88);
    refused(&mut card, &store_cmd(&blob_80()), 0x6A88);
    refused(&mut card, &code_cmd(GENERATION_TIME, false), 0x6A88);
    refused(&mut card, &code_cmd(GENERATION_TIME, true), 0x6A88);
    refused(&mut card, &reset_cmd(&[1; 64]), 0x6A88);
    refused(&mut card, &h("80E0000200"), 0x6A86);
    refused(&mut card, &h("80E0000001 00"), 0x6700);
    assert_eq!(status(&mut card)[0], STATE_NO_KEY);
}

#[test]
fn refusals_with_a_key() {
    let mut card = with_key(NfcQrProfile::default());
    refused(&mut card, &GENERATE_KEY, 0x6A89);
    refused(&mut card, &code_cmd(GENERATION_TIME, false), 0x6A88);
    refused(&mut card, &reset_cmd(&[1; 64]), 0x6A88);
    refused(&mut card, &store_cmd(&blob_80()[..200]), 0x6A80);
    refused(
        &mut card,
        &store_cmd(&[blob_80(), vec![0]].concat()),
        0x6700,
    );
    refused(&mut card, &h("80E2000301 00"), 0x6A86);
    assert_eq!(status(&mut card)[0], STATE_KEY);
}

#[test]
fn authorisation_for_another_key() {
    let mut card = with_key(NfcQrProfile::default());
    let other = Sm2PrivateKey::from_bytes(&[0x42; 32]).unwrap();
    let blob = authorise(
        Version::INTEROPERABLE,
        &terms(),
        &other.public_key().to_bytes(),
    );
    refused(&mut card, &store_cmd(&blob), 0x6984);
    assert_eq!(status(&mut card)[0], STATE_KEY);
}

#[test]
fn bad_issuer_signature_or_bad_fields() {
    let mut card = with_key(NfcQrProfile::default());
    let n = 32;
    // A bit of field 15 (signature B), of field 4 and of field 11 (both covered by B).
    for at in [198 + n + 10, 125, 192] {
        let mut blob = blob_80();
        blob[at] ^= 0x01;
        refused(&mut card, &store_cmd(&blob), 0x6A80);
    }
    // The tag byte of field 15 is not checked (qr-code.md §1.1): the blob stays valid.
    let mut blob = blob_80();
    blob[198 + n] = 0x00;
    assert_eq!(sw(&mut card, &store_cmd(&blob)), 0x9000);
}

#[test]
fn certificate_must_chain_to_a_held_root_key() {
    // An issuer certified by another root CA (our own key, index 01 as well).
    let other_root = RootCa::new(
        Sm2PrivateKey::from_bytes(&[0x24; 32]).unwrap(),
        0x01,
        Expiry::new(12, 30).unwrap(),
    );
    let iss_key = issuer_key();
    let cert = other_root
        .certify(
            &mut TestRng::new(4),
            iss_key.public_key(),
            &testing::certificate_request(Version::INTEROPERABLE),
        )
        .unwrap();
    let iss = issuer::Issuer::new(iss_key, cert, Version::INTEROPERABLE).unwrap();
    let user = ykt_crypto::Sm2PublicKey::from_sec1_bytes(&user_public()).unwrap();
    let blob = issuer::authorise(&iss, &user, &terms(), &mut TestRng::new(5))
        .unwrap()
        .encode();
    let mut card = with_key(NfcQrProfile::default());
    refused(&mut card, &store_cmd(&blob), 0x6A80);
    // The §6 root key under an index the card holds no key for.
    let root_02 = RootCa::new(
        Sm2PrivateKey::from_bytes(&testing::ROOT_D).unwrap(),
        0x02,
        Expiry::new(12, 30).unwrap(),
    );
    let cert = root_02
        .certify(
            &mut TestRng::new(4),
            &iss.certificate().issuer_key().unwrap(),
            &testing::certificate_request(Version::INTEROPERABLE),
        )
        .unwrap();
    let iss_02 = issuer::Issuer::new(issuer_key(), cert, Version::INTEROPERABLE).unwrap();
    let blob_02 = issuer::authorise(&iss_02, &user, &terms(), &mut TestRng::new(5))
        .unwrap()
        .encode();
    refused(&mut card, &store_cmd(&blob_02), 0x6A80);
    // A card set up without root keys checks only signature B and takes it.
    let mut bare = Card::new(
        ykt_card::Atr::default_t1(),
        Box::new(ykt_card::danger::ScriptedRandom::new(
            [testing::USER_D.to_vec()],
            1,
        )),
    );
    IssuedNfcQr::new(&NFCQR_AID, NfcQrProfile::default(), &[])
        .unwrap()
        .install(&mut bare)
        .unwrap();
    bare.power_on();
    assert_eq!(select(&mut bare), 0x9000);
    assert_eq!(sw(&mut bare, &GENERATE_KEY), 0x9000);
    assert_eq!(sw(&mut bare, &store_cmd(&blob)), 0x9000);
}

#[test]
fn expiry_rules_for_a_new_blob() {
    let t = GENERATION_TIME;
    let mut card = authorised(NfcQrProfile::default(), &blob_80());
    assert_eq!(sw(&mut card, &code_cmd(t + 100, false)), 0x9000);
    assert_eq!(codes_under_authorisation(&mut card), 1);
    let user = user_public();
    // Expired by the card's last generation time (qr-code.md §4.3 "Protections").
    let stale = authorise(Version::INTEROPERABLE, &terms_expiring(t + 99), &user);
    refused(&mut card, &store_cmd(&stale), 0x6985);
    // Valid at the last time, but not later than the stored blob's expiry.
    let same = authorise(
        Version::INTEROPERABLE,
        &terms_expiring(AUTHORISATION_EXPIRY),
        &user,
    );
    assert_ne!(same, blob_80());
    refused(&mut card, &store_cmd(&same), 0x6985);
    let earlier = authorise(Version::INTEROPERABLE, &terms_expiring(t + 1000), &user);
    refused(&mut card, &store_cmd(&earlier), 0x6985);
    // A later expiry replaces the blob and starts its counter at 0.
    let later = authorise(
        Version::INTEROPERABLE,
        &terms_expiring(AUTHORISATION_EXPIRY + 86_400),
        &user,
    );
    assert_eq!(sw(&mut card, &store_cmd(&later)), 0x9000);
    let st = status(&mut card);
    assert_eq!(st[0], STATE_AUTHORISED);
    assert_eq!(
        u32::from_be_bytes(st[1..5].try_into().unwrap()),
        AUTHORISATION_EXPIRY + 86_400
    );
    assert_eq!(codes_under_authorisation(&mut card), 0);
    assert_eq!(
        u32::from_be_bytes(st[13..17].try_into().unwrap()),
        1,
        "codes in all"
    );
    assert_eq!(
        u16::from_be_bytes([st[21], st[22]]),
        2,
        "authorisations stored"
    );
    // The old blob cannot come back.
    refused(&mut card, &store_cmd(&blob_80()), 0x6985);
    // Codes now run to the new expiry.
    assert_eq!(
        sw(&mut card, &code_cmd(AUTHORISATION_EXPIRY + 10, false)),
        0x9000
    );
}

#[test]
fn code_limit_per_authorisation() {
    let profile = NfcQrProfile {
        max_codes_per_authorisation: 3,
    };
    let mut card = authorised(profile, &blob_80());
    for i in 0..3 {
        assert_eq!(
            send_all(&mut card, &code_cmd(GENERATION_TIME + i, i % 2 == 0)).1,
            0x9000
        );
    }
    refused(&mut card, &code_cmd(GENERATION_TIME + 3, false), 0x9402);
    refused(&mut card, &code_cmd(GENERATION_TIME + 3, true), 0x9402);
    let st = status(&mut card);
    assert_eq!(st[0], STATE_EXHAUSTED);
    assert_eq!(
        u32::from_be_bytes(st[9..13].try_into().unwrap()),
        3,
        "limit"
    );
    // The limit survives power loss and a state file.
    let mut copy = copy(&card);
    copy.power_on();
    assert_eq!(select(&mut copy), 0x9000);
    refused(&mut copy, &code_cmd(GENERATION_TIME + 4, false), 0x9402);
    // A new authorisation restarts the count.
    let later = authorise(
        Version::INTEROPERABLE,
        &terms_expiring(AUTHORISATION_EXPIRY + 1),
        &user_public(),
    );
    assert_eq!(sw(&mut copy, &store_cmd(&later)), 0x9000);
    assert_eq!(sw(&mut copy, &code_cmd(GENERATION_TIME + 4, false)), 0x9000);
}

#[test]
fn certificate_month_bounds_the_codes() {
    // Field 11 far beyond the certificate's 12/2030.
    let blob = authorise(
        Version::INTEROPERABLE,
        &terms_expiring(0xF000_0000),
        &user_public(),
    );
    let mut card = authorised(NfcQrProfile::default(), &blob);
    let end_2030 = Expiry::new(12, 30).unwrap().end() as u32;
    assert_eq!(sw(&mut card, &code_cmd(end_2030 - 1, false)), 0x9000);
    refused(&mut card, &code_cmd(end_2030, false), 0x6985);
}

#[test]
fn reset_by_the_issuer() {
    let mut card = authorised(NfcQrProfile::default(), &blob_80());
    assert_eq!(sw(&mut card, &code_cmd(GENERATION_TIME, false)), 0x9000);
    let sig = reset_signature(&blob_80(), &user_public());
    // A wrong signature, a signature over another key, the root key's signature.
    let mut bad = sig;
    bad[5] ^= 1;
    refused(&mut card, &reset_cmd(&bad), 0x6982);
    let other = reset_signature(
        &blob_80(),
        &Sm2PrivateKey::from_bytes(&[7; 32])
            .unwrap()
            .public_key()
            .to_bytes(),
    );
    refused(&mut card, &reset_cmd(&other), 0x6982);
    let by_root = Sm2PrivateKey::from_bytes(&testing::ROOT_D)
        .unwrap()
        .sign(ykt_crypto::DEFAULT_SM2_ID, &reset_message(&user_public()))
        .unwrap();
    refused(&mut card, &reset_cmd(&by_root.to_bytes()), 0x6982);
    refused(&mut card, &reset_cmd(&[0xFF; 64]), 0x6982);
    assert!(Sm2Signature::from_bytes(&[0xFF; 64]).is_err());
    // The issuer's signature erases key and authorisation; the lifetime counters stay.
    assert_eq!(send(&mut card, &reset_cmd(&sig)), (vec![], 0x9000));
    let st = status(&mut card);
    assert_eq!(st[0], STATE_NO_KEY);
    assert_eq!(
        &st[1..9],
        &[0; 8],
        "no expiry, no codes under an authorisation"
    );
    assert_eq!(
        u32::from_be_bytes(st[13..17].try_into().unwrap()),
        1,
        "codes in all"
    );
    assert_eq!(sw(&mut card, &h("80E6000000")), 0x6A88);
    assert_eq!(sw(&mut card, &code_cmd(GENERATION_TIME, false)), 0x6A88);
    // A new key (from the card's random stream, not the §6 key); the old blob names the old key.
    let (new_key, s) = send(&mut card, &h("80E0000100"));
    assert_eq!(s, 0x9000);
    assert_ne!(new_key, user_public().to_vec());
    refused(&mut card, &store_cmd(&blob_80()), 0x6984);
    let new_key: [u8; 65] = new_key.try_into().unwrap();
    let blob = authorise(
        Version::INTEROPERABLE,
        &terms_expiring(AUTHORISATION_EXPIRY + 5),
        &new_key,
    );
    assert_eq!(sw(&mut card, &store_cmd(&blob)), 0x9000);
    // The old reset signature does not reset the new key.
    refused(&mut card, &reset_cmd(&sig), 0x6982);
    assert_eq!(sw(&mut card, &code_cmd(GENERATION_TIME + 1, false)), 0x9000);
}

#[test]
fn key_replacement_before_an_authorisation() {
    let mut card = with_key(NfcQrProfile::default());
    let (k1, s) = send(&mut card, &h("80E0010100"));
    assert_eq!(s, 0x9000);
    assert_ne!(k1, user_public().to_vec());
    assert_eq!(send(&mut card, &h("80E6000100")).0, k1);
    refused(&mut card, &store_cmd(&blob_80()), 0x6984);
    let st = status(&mut card);
    assert_eq!(u16::from_be_bytes([st[23], st[24]]), 2, "key pairs made");
    // On a fresh card P1 01 makes the first key.
    let mut fresh = fresh(NfcQrProfile::default());
    assert_eq!(
        send(&mut fresh, &h("80E0010000")),
        (
            h("037f4a4bd7fbf2c39b71547298870555bae44a702d8475ff69633c620d9a730303"),
            0x9000
        )
    );
}

#[test]
fn version_81_blob() {
    let mut card = authorised(NfcQrProfile::default(), &blob_81());
    let (code, s) = send_all(&mut card, &code_cmd(GENERATION_TIME, true));
    assert_eq!(s, 0x9000);
    assert_eq!(code.len(), 364);
    assert_eq!(&code[..295], &blob_81()[..]);
    assert_eq!(code[0], 0x81);
}

#[test]
fn state_file_keeps_everything() {
    let mut card = authorised(
        NfcQrProfile {
            max_codes_per_authorisation: 10,
        },
        &blob_80(),
    );
    assert_eq!(sw(&mut card, &code_cmd(GENERATION_TIME, false)), 0x9000);
    let before = status(&mut card);
    let mut copy = copy(&card);
    copy.power_on();
    assert_eq!(select(&mut copy), 0x9000);
    assert_eq!(status(&mut copy), before);
    assert_eq!(send(&mut copy, &h("80E6000100")).0, user_public().to_vec());
    assert_eq!(sw(&mut copy, &code_cmd(GENERATION_TIME, false)), 0x9000);
    assert_eq!(sw(&mut copy, &code_cmd(GENERATION_TIME - 1, false)), 0x6A80);
}
