//! Delegated management (tsm-gp.md §4): tokens for every kind with RSA and SM2, refusal of a
//! token on another command or under another key, the card storage form of the key, receipts,
//! totality of the parsers over random bytes, and cross-checks with the OpenSSL 3 CLI.
//!
//! The OpenSSL tests need the `openssl` binary on PATH: without it they fail, unless the
//! environment sets `YKT_SKIP_OPENSSL=1`, in which case they pass after printing a note.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use ykt_crypto::{
    AesKey, RsaPrivateKey, Sm2PrivateKey, Sm2Signature, Sm4Key, TdesKey, cmac_aes, retail_mac,
};
use ykt_gp::dm::*;

use crate::support::{h, hx};

const ELF: &str = "A0000006320101";
const MODULE: &str = "A000000632010101";
const INSTANCE: &str = "A000000632010105";
const SD: &str = "A000000151000000";

fn rsa_key(name: &str) -> RsaPrivateKey {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", name]
        .iter()
        .collect();
    RsaPrivateKey::from_pkcs8_der(&std::fs::read(path).unwrap()).unwrap()
}

fn rsa_signer() -> TokenSigner {
    TokenSigner::Rsa(rsa_key("dm_rsa2048_a.pk8.der"))
}

fn sm2_signer(d: u8) -> TokenSigner {
    let mut bytes = [0x11u8; 32];
    bytes[31] = d;
    TokenSigner::Sm2(Sm2PrivateKey::from_bytes(&bytes).unwrap())
}

fn signers() -> Vec<TokenSigner> {
    vec![rsa_signer(), sm2_signer(1)]
}

/// P1 and the fields of one INSTALL command of each kind (tsm-gp.md §3.1).
fn install_fields(kind: TokenKind) -> (u8, Vec<Vec<u8>>) {
    let none = Vec::new();
    match kind {
        TokenKind::Load => (0x02, vec![h(ELF), h(SD), none.clone(), h("EF04C6020400")]),
        TokenKind::Install => (
            0x0C,
            vec![h(ELF), h(MODULE), h(INSTANCE), h("000000"), h("C900")],
        ),
        TokenKind::MakeSelectable => (
            0x08,
            vec![none.clone(), none.clone(), h(INSTANCE), h("000000"), none],
        ),
        TokenKind::Extradition => (
            0x10,
            vec![h(SD), none.clone(), h(INSTANCE), none.clone(), none],
        ),
        TokenKind::RegistryUpdate => (
            0x40,
            vec![h(SD), none.clone(), h(INSTANCE), h("000000"), none],
        ),
        _ => panic!("{kind:?} is not an INSTALL"),
    }
}

/// A signed command of `kind`: (INS, P1, P2, data field).
fn command(signer: &TokenSigner, kind: TokenKind) -> (u8, u8, u8, Vec<u8>) {
    if kind == TokenKind::Delete {
        let data = signed_delete_data(signer, 0x00, 0x80, &h(INSTANCE), &h("D20170")).unwrap();
        return (0xE4, 0x00, 0x80, data);
    }
    let (p1, fields) = install_fields(kind);
    let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    (
        0xE6,
        p1,
        0x00,
        signed_install_data(signer, p1, 0x00, &refs).unwrap(),
    )
}

fn split(ins: u8, p1: u8, data: &[u8]) -> SplitToken<'_> {
    if ins == 0xE4 {
        split_delete_token(data).unwrap()
    } else {
        split_install_token(p1, data).unwrap()
    }
}

#[test]
fn sign_verify_round_trip_every_kind_both_algorithms() {
    for signer in signers() {
        let key = signer.verification_key();
        for kind in TokenKind::ALL {
            let (ins, p1, p2, data) = command(&signer, kind);
            assert_eq!(kind.ins(), ins);
            assert_eq!(key.verify_command(ins, p1, p2, &data), Ok(kind), "{kind:?}");
            let s = split(ins, p1, &data);
            assert_eq!(s.kind, kind);
            let want_len = match signer.algorithm() {
                TokenAlgorithm::RsaPkcs1v15Sha256 => 256,
                _ => SM2_TOKEN_LEN,
            };
            assert_eq!(s.token.len(), want_len);
            assert_eq!(s.token, signer.sign(kind, p1, p2, s.signed_data).unwrap());
            key.verify(kind, p1, p2, s.signed_data, s.token).unwrap();
            // The "more commands" bit of P1 is part of the signed data, not of the kind.
            let token = signer.sign(kind, p1 | 0x80, p2, s.signed_data).unwrap();
            key.verify(kind, p1 | 0x80, p2, s.signed_data, &token)
                .unwrap();
        }
    }
}

#[test]
fn data_to_be_signed_is_p1_p2_lc_data() {
    let data = h("07A000000632010108A000000151000000000000");
    assert_eq!(
        hx(&token_input(TokenKind::Load, 0x02, 0x00, &data).unwrap()),
        format!("020014{}", hx(&data))
    );
    assert_eq!(
        hx(&token_input(TokenKind::Delete, 0x00, 0x80, &h("4F05A000000632")).unwrap()),
        "0080074F05A000000632"
    );
    assert_eq!(
        token_input(TokenKind::Install, 0x02, 0x00, &data),
        Err(DmError::KindMismatch {
            kind: TokenKind::Install,
            p1: 0x02
        })
    );
    assert_eq!(
        token_input(TokenKind::Load, 0x02, 0x00, &[0; 256]),
        Err(DmError::DataTooLong { len: 256 })
    );
    // The token LV: short form for SM2, `82 01 00` for an RSA-2048 token; DELETE adds `9E`.
    assert_eq!(
        hx(&append_install_token(&[0xAA], &[0x55; 64]))[..4],
        *"AA40"
    );
    assert_eq!(
        hx(&append_install_token(&[0xAA], &[0x55; 200]))[..6],
        *"AA81C8"
    );
    assert_eq!(
        hx(&append_install_token(&[0xAA], &[0x55; 256]))[..8],
        *"AA820100"
    );
    assert_eq!(hx(&append_install_token(&[0xAA], &[])), "AA00");
    assert_eq!(hx(&append_delete_token(&[0xAA], &[0x55; 2])), "AA9E025555");
    assert_eq!(hx(&append_delete_token(&[0xAA], &[])), "AA");
}

#[test]
fn token_for_one_command_is_refused_on_another() {
    for signer in signers() {
        let key = signer.verification_key();
        // Install and make selectable (0C) replayed as install only (04): same kind, other P1.
        let (_, p1, p2, data) = command(&signer, TokenKind::Install);
        assert_eq!(
            key.verify_command(0xE6, 0x04, p2, &data),
            Err(DmError::TokenInvalid)
        );
        // Another P2.
        assert_eq!(
            key.verify_command(0xE6, p1, 0x01, &data),
            Err(DmError::TokenInvalid)
        );
        // The same token under another kind: P1 does not belong to it.
        let s = split(0xE6, p1, &data);
        assert_eq!(
            key.verify(TokenKind::MakeSelectable, p1, p2, s.signed_data, s.token),
            Err(DmError::KindMismatch {
                kind: TokenKind::MakeSelectable,
                p1
            })
        );
        // A make-selectable token presented as registry update (same field count).
        let (_, p1_ms, _, ms) = command(&signer, TokenKind::MakeSelectable);
        assert_eq!(
            key.verify_command(0xE6, 0x40, 0x00, &ms),
            Err(DmError::TokenInvalid)
        );
        let ms_split = split(0xE6, p1_ms, &ms);
        assert_eq!(
            key.verify(
                TokenKind::RegistryUpdate,
                0x40,
                0x00,
                ms_split.signed_data,
                ms_split.token
            ),
            Err(DmError::TokenInvalid)
        );
        // A changed AID (last byte of the instance AID).
        let mut other = data.clone();
        let at = 1 + 7 + 1 + 8 + 1 + 7;
        other[at] ^= 0x01;
        assert_eq!(
            key.verify_command(0xE6, p1, p2, &other),
            Err(DmError::TokenInvalid)
        );
        // A DELETE token for one AID on another AID, and on the bare AID without the key
        // objects it was signed with.
        let (_, dp1, dp2, del) = command(&signer, TokenKind::Delete);
        let d = split_delete_token(&del).unwrap();
        let other_aid = h("4F08A000000632010106D20170");
        assert_eq!(
            key.verify(TokenKind::Delete, dp1, dp2, &other_aid, d.token),
            Err(DmError::TokenInvalid)
        );
        assert_eq!(
            key.verify(
                TokenKind::Delete,
                dp1,
                dp2,
                &h(&format!("4F08{INSTANCE}")),
                d.token
            ),
            Err(DmError::TokenInvalid)
        );
        // A DELETE token is not an INSTALL token for the same bytes.
        assert_eq!(
            key.verify(TokenKind::Delete, dp1, 0x00, d.signed_data, d.token),
            Err(DmError::TokenInvalid)
        );
        // No token at all.
        assert_eq!(
            key.verify_command(0xE4, 0x00, 0x80, d.signed_data),
            Err(DmError::TokenMissing)
        );
        let bare = append_install_token(s.signed_data, &[]);
        assert_eq!(
            key.verify_command(0xE6, p1, p2, &bare),
            Err(DmError::TokenMissing)
        );
        assert_eq!(
            key.verify_command(0xE2, p1, p2, &data),
            Err(DmError::UnsupportedIns { ins: 0xE2 })
        );
    }
}

#[test]
fn wrong_key_is_refused() {
    let rsa_other = TokenKey::Rsa(rsa_key("dm_rsa2048_b.pk8.der").public_key().clone());
    let sm2_other = sm2_signer(2).verification_key();
    for kind in TokenKind::ALL {
        let (ins, p1, p2, rsa_cmd) = command(&rsa_signer(), kind);
        let (_, _, _, sm2_cmd) = command(&sm2_signer(1), kind);
        assert_eq!(
            rsa_other.verify_command(ins, p1, p2, &rsa_cmd),
            Err(DmError::TokenInvalid)
        );
        assert_eq!(
            sm2_other.verify_command(ins, p1, p2, &sm2_cmd),
            Err(DmError::TokenInvalid)
        );
        // A token of the other algorithm does not even have the right form.
        assert_eq!(
            sm2_other.verify_command(ins, p1, p2, &rsa_cmd),
            Err(DmError::TokenMalformed)
        );
        assert_eq!(
            rsa_other.verify_command(ins, p1, p2, &sm2_cmd),
            Err(DmError::TokenMalformed)
        );
    }
}

#[test]
fn malformed_tokens_are_typed_errors() {
    let sm2 = sm2_signer(1).verification_key();
    let data = h("04A000000001");
    assert_eq!(
        sm2.verify(TokenKind::Delete, 0, 0, &data, &[]),
        Err(DmError::TokenMissing)
    );
    assert_eq!(
        sm2.verify(TokenKind::Delete, 0, 0, &data, &[1; 63]),
        Err(DmError::TokenMalformed)
    );
    // r = 0 is out of range.
    let mut zero_r = [1u8; 64];
    zero_r[..32].fill(0);
    assert_eq!(
        sm2.verify(TokenKind::Delete, 0, 0, &data, &zero_r),
        Err(DmError::TokenMalformed)
    );
    let rsa = rsa_signer().verification_key();
    assert_eq!(
        rsa.verify(TokenKind::Delete, 0, 0, &data, &[1; 255]),
        Err(DmError::TokenMalformed)
    );
    assert_eq!(
        rsa.verify(TokenKind::Delete, 0, 0, &data, &[1; 256]),
        Err(DmError::TokenInvalid)
    );
    // Builders check their inputs.
    let signer = sm2_signer(1);
    assert_eq!(
        signed_install_data(&signer, 0x02, 0, &[&[1; 5]]),
        Err(DmError::FieldCount {
            kind: TokenKind::Load,
            expected: 4,
            actual: 1
        })
    );
    assert_eq!(
        signed_install_data(&signer, 0x20, 0, &[]),
        Err(DmError::UnsupportedP1 { p1: 0x20 })
    );
    assert_eq!(
        signed_install_data(&signer, 0x02, 0, &[&[1; 256], &[], &[], &[]]),
        Err(DmError::FieldTooLong { len: 256 })
    );
    assert_eq!(
        signed_delete_data(&signer, 0, 0, &[1; 4], &[]),
        Err(DmError::InvalidAid { len: 4 })
    );
    assert_eq!(
        signed_delete_data(&signer, 0x04, 0, &h(INSTANCE), &[]),
        Err(DmError::KindMismatch {
            kind: TokenKind::Delete,
            p1: 0x04
        })
    );
}

#[test]
fn command_data_is_split_exactly() {
    let signer = sm2_signer(1);
    let (_, p1, _, data) = command(&signer, TokenKind::Load);
    let s = split_install_token(p1, &data).unwrap();
    assert_eq!(s.signed_data.len() + 1 + 64, data.len());
    // Trailing bytes after the token, a truncated token, a truncated field.
    let mut longer = data.clone();
    longer.push(0);
    assert_eq!(
        split_install_token(p1, &longer),
        Err(DmError::MalformedCommandData)
    );
    assert_eq!(
        split_install_token(p1, &data[..data.len() - 1]),
        Err(DmError::MalformedCommandData)
    );
    assert_eq!(
        split_install_token(p1, &data[..3]),
        Err(DmError::MalformedCommandData)
    );
    // DELETE: the token object must be the last one; objects before it are signed data.
    let del = signed_delete_data(&signer, 0, 0, &h(INSTANCE), &h("B6044202AABBD00101")).unwrap();
    let d = split_delete_token(&del).unwrap();
    assert_eq!(
        hx(d.signed_data),
        format!("4F08{INSTANCE}B6044202AABBD00101")
    );
    assert_eq!(d.token.len(), 64);
    signer
        .verification_key()
        .verify_command(0xE4, 0, 0, &del)
        .unwrap();
    let mut after = del.clone();
    after.extend_from_slice(&h("D20170"));
    assert_eq!(
        split_delete_token(&after),
        Err(DmError::MalformedCommandData)
    );
    let bare = h("4F05A000000632");
    let no_token = split_delete_token(&bare).unwrap();
    assert!(no_token.token.is_empty());
    assert_eq!(
        split_delete_token(&h("4F05A0000006")),
        Err(DmError::MalformedCommandData)
    );
}

#[test]
fn token_key_card_form_round_trips() {
    let sm2 = sm2_signer(1).verification_key();
    let bytes = sm2.to_card_bytes();
    assert_eq!((bytes.len(), bytes[0]), (65, 0x04));
    assert_eq!(
        TokenKey::from_card_bytes(TokenAlgorithm::Sm2Sm3, &bytes).unwrap(),
        sm2
    );
    let rsa = rsa_signer().verification_key();
    let bytes = rsa.to_card_bytes();
    assert_eq!(bytes.len(), 2 + 256 + 1 + 3);
    assert_eq!(hx(&bytes[..2]), "0100");
    assert_eq!(hx(&bytes[258..]), "03010001");
    let TokenKey::Rsa(public) = &rsa else {
        panic!()
    };
    assert_eq!(bytes[2..258], public.modulus()[..]);
    assert_eq!(
        TokenKey::from_card_bytes(TokenAlgorithm::RsaPkcs1v15Sha256, &bytes).unwrap(),
        rsa
    );
    // The key read back verifies tokens of the original signer.
    let (ins, p1, p2, data) = command(&rsa_signer(), TokenKind::Install);
    TokenKey::from_card_bytes(TokenAlgorithm::RsaPkcs1v15Sha256, &bytes)
        .unwrap()
        .verify_command(ins, p1, p2, &data)
        .unwrap();
    // Refused forms.
    let sm2_bytes = sm2.to_card_bytes();
    let mut compressed = vec![0x02 | (sm2_bytes[64] & 1)];
    compressed.extend_from_slice(&sm2_bytes[1..33]);
    let mut off_curve = sm2_bytes.clone();
    off_curve[64] ^= 1;
    let mut zero_lead = vec![0x01, 0x01, 0x00];
    zero_lead.extend_from_slice(&bytes[2..]);
    for (alg, bad) in [
        (TokenAlgorithm::Sm2Sm3, compressed),
        (TokenAlgorithm::Sm2Sm3, off_curve),
        (TokenAlgorithm::Sm2Sm3, sm2_bytes[..64].to_vec()),
        (TokenAlgorithm::Sm2Sm3, bytes.clone()),
        (TokenAlgorithm::RsaPkcs1v15Sha256, sm2_bytes.clone()),
        (
            TokenAlgorithm::RsaPkcs1v15Sha256,
            bytes[..bytes.len() - 1].to_vec(),
        ),
        (
            TokenAlgorithm::RsaPkcs1v15Sha256,
            [&bytes[..], &[0]].concat(),
        ),
        (TokenAlgorithm::RsaPkcs1v15Sha256, zero_lead),
        (TokenAlgorithm::RsaPkcs1v15Sha256, vec![]),
    ] {
        assert_eq!(
            TokenKey::from_card_bytes(alg, &bad),
            Err(DmError::InvalidKey),
            "{alg:?} {}",
            hx(&bad)
        );
    }
}

fn receipt_keys() -> Vec<ReceiptKey> {
    vec![
        ReceiptKey::aes(AesKey::from_slice(&[0x71; 16]).unwrap()),
        ReceiptKey::sm4(Sm4Key::from_slice(&[0x72; 16]).unwrap()),
        ReceiptKey::tdes(TdesKey::from_slice(&h("0123456789ABCDEFFEDCBA9876543210")).unwrap())
            .unwrap(),
    ]
}

fn contexts<'a>(elf: &'a [u8], sd: &'a [u8], app: &'a [u8]) -> Vec<ReceiptContext<'a>> {
    vec![
        ReceiptContext::Load {
            elf_aid: elf,
            sd_aid: sd,
        },
        ReceiptContext::Install {
            elf_aid: elf,
            instance_aid: app,
        },
        ReceiptContext::MakeSelectable { instance_aid: app },
        ReceiptContext::Extradition {
            sd_aid: sd,
            app_aid: app,
        },
        ReceiptContext::RegistryUpdate {
            sd_aid: sd,
            app_aid: app,
        },
        ReceiptContext::Delete { aid: app },
    ]
}

#[test]
fn receipts_round_trip_and_refuse_a_flipped_byte() {
    let (elf, sd, app) = (h(ELF), h(SD), h(INSTANCE));
    let cud = h("00112233" /* IIN */)
        .into_iter()
        .chain(h("0102030405060708"))
        .collect::<Vec<_>>();
    for key in receipt_keys() {
        for (i, ctx) in contexts(&elf, &sd, &app).into_iter().enumerate() {
            let counter = 0x0100 + i as u16;
            let r = receipt(&key, counter, &cud, &ctx).unwrap();
            assert_eq!(r.receipt.len(), key.receipt_len());
            assert_eq!(
                hx(&r.confirmation_data),
                format!("02{counter:04X}0C{}", hx(&cud))
            );
            let response = r.to_response();
            assert_eq!(response[0] as usize, key.receipt_len());
            let confirmation = verify_receipt(&key, &response, &ctx).unwrap();
            assert_eq!(confirmation.counter, counter);
            assert_eq!(confirmation.card_unique_data, cud);
            assert!(confirmation.further.is_empty());
            // Any flipped bit anywhere in the response is refused.
            for at in 0..response.len() {
                let mut bad = response.clone();
                bad[at] ^= 0x01;
                assert!(
                    verify_receipt(&key, &bad, &ctx).is_err(),
                    "{:?} byte {at}",
                    ctx.kind()
                );
            }
            // Another context of the same kind, or the receipt of another operation.
            let other_app = h("A000000632010106");
            let other = match ctx {
                ReceiptContext::Load { elf_aid, .. } => ReceiptContext::Load {
                    elf_aid,
                    sd_aid: &other_app,
                },
                ReceiptContext::Extradition { sd_aid, .. } => ReceiptContext::Extradition {
                    sd_aid,
                    app_aid: &other_app,
                },
                _ => ReceiptContext::Delete { aid: &other_app },
            };
            assert_eq!(
                verify_receipt(&key, &response, &other),
                Err(DmError::ReceiptInvalid)
            );
        }
    }
    // The wrong key of the same algorithm, and no receipt at all.
    let ctx = ReceiptContext::Delete { aid: &app };
    let r = receipt(&receipt_keys()[0], 7, &cud, &ctx).unwrap();
    let wrong = ReceiptKey::aes(AesKey::from_slice(&[0x70; 16]).unwrap());
    assert_eq!(
        verify_receipt(&wrong, &r.to_response(), &ctx),
        Err(DmError::ReceiptInvalid)
    );
    // An 8-byte 3DES receipt is not a 16-byte AES receipt.
    let r3 = receipt(&receipt_keys()[2], 7, &cud, &ctx).unwrap();
    assert_eq!(
        verify_receipt(&receipt_keys()[0], &r3.to_response(), &ctx),
        Err(DmError::ReceiptMalformed)
    );
    assert_eq!(
        verify_receipt(&receipt_keys()[0], &[0x00], &ctx),
        Err(DmError::ReceiptMissing)
    );
    assert_eq!(parse_receipt_response(&[0x00]), Ok(None));
}

#[test]
fn receipt_mac_input_is_confirmation_data_then_context() {
    let (elf, sd) = (h(ELF), h(SD));
    let ctx = ReceiptContext::Load {
        elf_aid: &elf,
        sd_aid: &sd,
    };
    assert_eq!(hx(&ctx.to_bytes().unwrap()), format!("07{ELF}08{SD}"));
    let aes = AesKey::from_slice(&[0x71; 16]).unwrap();
    let r = receipt(&ReceiptKey::aes(aes.clone()), 0x0005, &h("0011"), &ctx).unwrap();
    let input = h(&format!("020005020011 07{ELF} 08{SD}"));
    assert_eq!(hx(&r.receipt), hx(&cmac_aes(&aes, &input)));
    let tdes = TdesKey::from_slice(&[0x31; 16]).unwrap();
    let r = receipt(
        &ReceiptKey::tdes(tdes.clone()).unwrap(),
        5,
        &h("0011"),
        &ctx,
    )
    .unwrap();
    assert_eq!(
        hx(&r.receipt),
        hx(&retail_mac(&tdes, &[0; 8], &input).unwrap())
    );
    // Further LV elements after the card unique data are covered and returned.
    let key = ReceiptKey::aes(aes.clone());
    let confirmation = h("020005020011 0401020304 00");
    let mut mac_input = confirmation.clone();
    mac_input.extend(ctx.to_bytes().unwrap());
    let response = [&[16u8][..], &cmac_aes(&aes, &mac_input), &confirmation].concat();
    let c = verify_receipt(&key, &response, &ctx).unwrap();
    assert_eq!(c.further, vec![h("01020304"), vec![]]);
    // Checks on the inputs.
    assert_eq!(
        ReceiptKey::tdes(TdesKey::from_slice(&[1; 24]).unwrap()).unwrap_err(),
        DmError::InvalidKey
    );
    assert_eq!(
        receipt(&key, 0, &[0; 256], &ctx),
        Err(DmError::CardUniqueDataTooLong { len: 256 })
    );
    assert_eq!(
        receipt(&key, 0, &[], &ReceiptContext::Delete { aid: &[1; 17] }),
        Err(DmError::InvalidAid { len: 17 })
    );
}

#[test]
fn secrets_are_redacted() {
    for signer in signers() {
        let debug = format!("{signer:?}");
        assert!(debug.contains("[redacted]") && debug.len() < 40, "{debug}");
    }
    let key = ReceiptKey::aes(AesKey::from_slice(&[0xA7; 16]).unwrap());
    let debug = format!("{key:?}");
    assert!(debug.contains("[redacted]") && !debug.contains("A7") && !debug.contains("167"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every parser and verifier is total over random bytes.
    #[test]
    fn parsers_never_panic(
        ins in prop::sample::select(vec![0xE4u8, 0xE6, 0x00]),
        p1 in any::<u8>(),
        p2 in any::<u8>(),
        data in prop::collection::vec(any::<u8>(), 0..300),
        token in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let _ = split_install_token(p1, &data);
        let _ = split_delete_token(&data);
        let sm2 = sm2_signer(1).verification_key();
        prop_assert!(sm2.verify_command(ins, p1, p2, &data).is_err());
        for kind in TokenKind::ALL {
            prop_assert!(sm2.verify(kind, p1, p2, &data, &token).is_err());
        }
        let _ = TokenKey::from_card_bytes(TokenAlgorithm::Sm2Sm3, &data);
        let _ = TokenKey::from_card_bytes(TokenAlgorithm::RsaPkcs1v15Sha256, &data);
        let _ = parse_receipt_response(&data);
        let key = &receipt_keys()[0];
        let app = h(INSTANCE);
        let ctx = ReceiptContext::Delete { aid: &app };
        prop_assert!(verify_receipt(key, &data, &ctx).is_err());
    }

    /// Random damage to a valid SM2-signed command is refused, never accepted, never a panic.
    #[test]
    fn damaged_commands_are_refused(
        kind in prop::sample::select(TokenKind::ALL.to_vec()),
        at in any::<usize>(),
        bit in 0u8..8,
        cut in any::<usize>(),
    ) {
        let signer = sm2_signer(1);
        let key = signer.verification_key();
        let (ins, p1, p2, data) = command(&signer, kind);
        let mut bad = data.clone();
        bad[at % data.len()] ^= 1 << bit;
        prop_assert!(key.verify_command(ins, p1, p2, &bad).is_err());
        prop_assert!(key.verify_command(ins, p1, p2, &data[..cut % data.len()]).is_err());
    }
}

// ---- OpenSSL cross-checks ------------------------------------------------------------------

fn openssl_available() -> bool {
    match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => true,
        result => {
            if std::env::var("YKT_SKIP_OPENSSL").as_deref() == Ok("1") {
                eprintln!(
                    "openssl CLI not usable ({result:?}); skipped because YKT_SKIP_OPENSSL=1"
                );
                false
            } else {
                panic!(
                    "the OpenSSL 3 CLI (`openssl`) is needed for the cross-check tests but is not \
                     usable here ({result:?}); install it or set YKT_SKIP_OPENSSL=1 to skip them"
                )
            }
        }
    }
}

fn openssl(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "openssl {} -> {}\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ykt-gp-dm-openssl-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// SubjectPublicKeyInfo (DER) of an SM2 key: id-ecPublicKey with the SM2 curve OID.
fn sm2_spki(point: &[u8]) -> Vec<u8> {
    [
        &h("3059301306072a8648ce3d020106082a811ccf5501822d034200")[..],
        point,
    ]
    .concat()
}

const DISTID: &str = "distid:1234567812345678";

/// SM2 tokens of every kind verify in OpenSSL with the default ID over `P1 ‖ P2 ‖ Lc ‖ data`,
/// and fail with OpenSSL's empty default ID; an OpenSSL-made token verifies here.
#[test]
fn sm2_tokens_match_openssl() {
    if !openssl_available() {
        return;
    }
    let dir = scratch();
    let signer = sm2_signer(1);
    let key = signer.verification_key();
    let (pubf, msgf, sigf) = (dir.join("pub.der"), dir.join("dtbs"), dir.join("sig.der"));
    std::fs::write(&pubf, sm2_spki(&key.to_card_bytes())).unwrap();
    let verify = |distid: &str| {
        openssl(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-keyform",
            "DER",
            "-inkey",
            p(&pubf),
            "-rawin",
            "-in",
            p(&msgf),
            "-digest",
            "sm3",
            "-pkeyopt",
            distid,
            "-sigfile",
            p(&sigf),
        ])
    };
    for kind in TokenKind::ALL {
        let (ins, p1, p2, data) = command(&signer, kind);
        let s = split(ins, p1, &data);
        std::fs::write(&msgf, token_input(kind, p1, p2, s.signed_data).unwrap()).unwrap();
        let sig = Sm2Signature::from_bytes(s.token.try_into().unwrap()).unwrap();
        std::fs::write(&sigf, sig.to_der()).unwrap();
        let out = verify(DISTID).unwrap();
        assert!(String::from_utf8_lossy(&out).contains("Signature Verified Successfully"));
        assert!(verify("distid:").is_err() || verify("distid:0").is_err());
    }
    // OpenSSL signs a DELETE token with a key of its own; the token verifies here.
    let (keyf, spkif) = (dir.join("k.pem"), dir.join("k.pub.der"));
    openssl(&["genpkey", "-algorithm", "SM2", "-out", p(&keyf)]).unwrap();
    openssl(&[
        "pkey",
        "-in",
        p(&keyf),
        "-pubout",
        "-outform",
        "DER",
        "-out",
        p(&spkif),
    ])
    .unwrap();
    let spki = std::fs::read(&spkif).unwrap();
    let theirs =
        TokenKey::from_card_bytes(TokenAlgorithm::Sm2Sm3, &spki[spki.len() - 65..]).unwrap();
    let data = h(&format!("4F08{INSTANCE}"));
    std::fs::write(
        &msgf,
        token_input(TokenKind::Delete, 0x00, 0x80, &data).unwrap(),
    )
    .unwrap();
    openssl(&[
        "pkeyutl",
        "-sign",
        "-inkey",
        p(&keyf),
        "-rawin",
        "-in",
        p(&msgf),
        "-digest",
        "sm3",
        "-pkeyopt",
        DISTID,
        "-out",
        p(&sigf),
    ])
    .unwrap();
    let token = Sm2Signature::from_der(&std::fs::read(&sigf).unwrap())
        .unwrap()
        .to_bytes();
    let command = append_delete_token(&data, &token);
    assert_eq!(
        theirs.verify_command(0xE4, 0x00, 0x80, &command),
        Ok(TokenKind::Delete)
    );
    assert_eq!(
        theirs.verify_command(0xE4, 0x00, 0x00, &command),
        Err(DmError::TokenInvalid)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// RSA tokens verify in OpenSSL (`dgst -sha256 -verify`) and equal OpenSSL's own signature over
/// the same data; an RSA-3072 key made by OpenSSL works as a token key too.
#[test]
fn rsa_tokens_match_openssl() {
    if !openssl_available() {
        return;
    }
    let dir = scratch();
    let keyf: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "data",
        "dm_rsa2048_a.pk8.der",
    ]
    .iter()
    .collect();
    let (pubf, msgf, sigf) = (dir.join("pub.der"), dir.join("dtbs"), dir.join("sig"));
    let signer = rsa_signer();
    let TokenKey::Rsa(public) = signer.verification_key() else {
        panic!()
    };
    std::fs::write(&pubf, public.to_public_key_der().unwrap()).unwrap();
    for kind in TokenKind::ALL {
        let (ins, p1, p2, data) = command(&signer, kind);
        let s = split(ins, p1, &data);
        std::fs::write(&msgf, token_input(kind, p1, p2, s.signed_data).unwrap()).unwrap();
        std::fs::write(&sigf, s.token).unwrap();
        let out = openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            p(&pubf),
            "-keyform",
            "DER",
            "-signature",
            p(&sigf),
            p(&msgf),
        ])
        .unwrap();
        assert!(String::from_utf8_lossy(&out).contains("Verified OK"));
        let theirs = openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            p(&keyf),
            "-keyform",
            "DER",
            p(&msgf),
        ])
        .unwrap();
        assert_eq!(hx(&theirs), hx(s.token), "{kind:?}");
    }
    // RSA-3072 (the brief's option): OpenSSL's key, our token, OpenSSL's check.
    let (k3, k3der) = (dir.join("k3.pem"), dir.join("k3.der"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:3072",
        "-out",
        p(&k3),
    ])
    .unwrap();
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        p(&k3),
        "-outform",
        "DER",
        "-out",
        p(&k3der),
    ])
    .unwrap();
    let signer =
        TokenSigner::Rsa(RsaPrivateKey::from_pkcs8_der(&std::fs::read(&k3der).unwrap()).unwrap());
    let (ins, p1, p2, data) = command(&signer, TokenKind::Install);
    let s = split(ins, p1, &data);
    assert_eq!(s.token.len(), 384);
    assert_eq!(
        signer.verification_key().verify_command(ins, p1, p2, &data),
        Ok(TokenKind::Install)
    );
    std::fs::write(
        &msgf,
        token_input(TokenKind::Install, p1, p2, s.signed_data).unwrap(),
    )
    .unwrap();
    std::fs::write(&sigf, s.token).unwrap();
    let pubf3 = dir.join("k3.pub.pem");
    openssl(&["pkey", "-in", p(&k3), "-pubout", "-out", p(&pubf3)]).unwrap();
    let out = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        p(&pubf3),
        "-signature",
        p(&sigf),
        p(&msgf),
    ]);
    assert!(String::from_utf8_lossy(&out.unwrap()).contains("Verified OK"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Receipts under AES and SM4 equal OpenSSL's CMAC over `confirmation data ‖ context`.
#[test]
fn cmac_receipts_match_openssl() {
    if !openssl_available() {
        return;
    }
    let dir = scratch();
    let (elf, app) = (h(ELF), h(INSTANCE));
    let ctx = ReceiptContext::Install {
        elf_aid: &elf,
        instance_aid: &app,
    };
    let input_file = dir.join("in");
    for (cipher, key_bytes) in [("AES-128-CBC", [0x5Au8; 16]), ("SM4-CBC", [0xA5u8; 16])] {
        let key = if cipher.starts_with("AES") {
            ReceiptKey::aes(AesKey::from_slice(&key_bytes).unwrap())
        } else {
            ReceiptKey::sm4(Sm4Key::from_slice(&key_bytes).unwrap())
        };
        let r = receipt(&key, 0x1234, &h("001122330102030405060708"), &ctx).unwrap();
        let mut input = r.confirmation_data.clone();
        input.extend(ctx.to_bytes().unwrap());
        std::fs::write(&input_file, &input).unwrap();
        let macopt = format!("hexkey:{}", hex::encode(key_bytes));
        let out = openssl(&[
            "mac",
            "-cipher",
            cipher,
            "-macopt",
            &macopt,
            "-in",
            p(&input_file),
            "CMAC",
        ])
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap().trim().to_uppercase(),
            hx(&r.receipt),
            "{cipher}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
