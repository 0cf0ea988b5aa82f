//! Signatures A, B and C (and the root record's self-signature) verified by the OpenSSL 3 CLI
//! with the user ID of each version passed as `-pkeyopt distid:` / `hexdistid:` (§2.4, §6).
//!
//! The `openssl` binary must be on PATH: without it these tests fail, unless the environment sets
//! `YKT_SKIP_OPENSSL=1`, in which case they pass after printing a note.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use ykt_crypto::{Sm2PublicKey, Sm2Signature};
use ykt_qr::testing::{self, GENERATION_TIME};
use ykt_qr::{QrCode, RootKeyRecord, Version, ids};

use crate::common::{code, example, unhex};

fn available() -> bool {
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

fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ykt-qr-openssl-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// SubjectPublicKeyInfo (DER) of an SM2 key: id-ecPublicKey with the SM2 curve OID, the prefix
/// of qr-code.md §6.
fn spki_der(key: &Sm2PublicKey) -> Vec<u8> {
    let mut der = unhex("3059301306072a8648ce3d020106082a811ccf5501822d034200");
    der.extend_from_slice(&key.to_bytes());
    der
}

/// The `-pkeyopt` value for `id`: `distid:` when it is printable ASCII, else `hexdistid:`.
fn distid(id: &[u8]) -> String {
    if id.iter().all(|b| b.is_ascii_alphanumeric()) {
        format!("distid:{}", String::from_utf8(id.to_vec()).unwrap())
    } else {
        format!("hexdistid:{}", hex::encode(id))
    }
}

/// True when OpenSSL verifies `sig` over `msg` with `key` and `id`.
fn openssl_verifies(dir: &Path, key: &Sm2PublicKey, id: &[u8], msg: &[u8], sig: &[u8; 64]) -> bool {
    let (pubf, msgf, sigf) = (dir.join("pub.der"), dir.join("msg"), dir.join("sig.der"));
    std::fs::write(&pubf, spki_der(key)).unwrap();
    std::fs::write(&msgf, msg).unwrap();
    std::fs::write(&sigf, Sm2Signature::from_bytes(sig).unwrap().to_der()).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey"])
        .arg(&pubf)
        .args(["-rawin", "-digest", "sm3", "-in"])
        .arg(&msgf)
        .arg("-sigfile")
        .arg(&sigf)
        .args(["-pkeyopt", &distid(id)])
        .output()
        .unwrap();
    let ok = out.status.success();
    assert_eq!(
        ok,
        String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ok
}

/// A signature to check: key, user ID, message, r ‖ s.
type Signed<'a> = (&'a Sm2PublicKey, Vec<u8>, Vec<u8>, [u8; 64]);

/// Checks A, B and C of `bytes` with OpenSSL under the version's IDs, and that each fails
/// under a wrong ID.
fn check_chain(dir: &Path, bytes: &[u8], root: &Sm2PublicKey) {
    let code = QrCode::decode(bytes).unwrap();
    let a = &code.authorisation;
    let v = a.version;
    let issuer = a.certificate.issuer_key().unwrap();
    let user = Sm2PublicKey::from_sec1_bytes(&a.body.user_public_key).unwrap();
    let sigs: [Signed<'_>; 3] = [
        (
            root,
            ids::certificate_id(v, &a.certificate),
            a.certificate.signed_bytes().to_vec(),
            a.certificate.signature,
        ),
        (
            &issuer,
            ids::issuer_id(v, &a.body),
            a.issuer_signed_bytes(),
            a.issuer_signature.signature,
        ),
        (
            &user,
            ids::user_id(v, &a.body),
            code.user_signed_bytes(),
            code.user_signature.signature,
        ),
    ];
    for (i, (key, id, msg, sig)) in sigs.iter().enumerate() {
        assert!(
            openssl_verifies(dir, key, id, msg, sig),
            "{v:?} signature {}",
            ["A", "B", "C"][i]
        );
        let wrong: &[u8] = if *id == b"1234567812345678" {
            b"1234567812345679"
        } else {
            b"1234567812345678"
        };
        assert!(
            !openssl_verifies(dir, key, wrong, msg, sig),
            "{v:?} {i} wrong ID"
        );
    }
    // The byte offsets of §2.4 on the raw code.
    let n = a.body.issuer_data.len();
    assert_eq!(sigs[0].2, bytes[3 + 6..3 + 53]);
    assert_eq!(sigs[1].2, bytes[3..198 + n]);
    assert_eq!(sigs[2].2, bytes[..267 + n]);
}

#[test]
fn openssl_verifies_the_brief_codes() {
    if !available() {
        return;
    }
    let dir = scratch();
    let record = RootKeyRecord::decode(&unhex(testing::ROOT_RECORD_HEX)).unwrap();
    let root = record.public_key_checked().unwrap();
    assert!(openssl_verifies(
        &dir,
        &root,
        ids::ROOT_RECORD_ID,
        &record.signed_bytes(),
        &record.signature
    ));
    check_chain(&dir, &unhex(testing::CODE_80_HEX), &root);
    check_chain(&dir, &unhex(testing::CODE_81_HEX), &root);
}

#[test]
fn openssl_verifies_our_codes() {
    if !available() {
        return;
    }
    let dir = scratch();
    for version in [Version::INTEROPERABLE, Version::LOCAL] {
        let ex = example(version);
        let record = ex.root.record(&mut testing::TestRng::new(5)).unwrap();
        assert!(openssl_verifies(
            &dir,
            ex.root.public_key(),
            ids::ROOT_RECORD_ID,
            &record.signed_bytes(),
            &record.signature
        ));
        for t in [GENERATION_TIME, GENERATION_TIME + 17] {
            check_chain(&dir, &code(&ex, t).encode(), ex.root.public_key());
        }
    }
}

#[test]
fn openssl_verifies_a_batch_signature() {
    if !available() {
        return;
    }
    let dir = scratch();
    let ex = example(Version::INTEROPERABLE);
    let mut v = crate::common::verifier(&ex);
    let a = v
        .verify(
            &code(&ex, GENERATION_TIME).encode(),
            100,
            u64::from(GENERATION_TIME),
        )
        .unwrap();
    let rec = ykt_qr::record::Record::new(
        &a,
        1,
        [0; 6],
        u64::from(GENERATION_TIME),
        ykt_qr::record::Mode::Single,
        ykt_qr::record::ParameterVersions::default(),
    );
    let key = ykt_crypto::Sm2PrivateKey::from_bytes(&ykt_crypto::sm3(b"terminal")).unwrap();
    let batch = ykt_qr::record::seal(&[rec], &key, &mut testing::TestRng::new(8)).unwrap();
    let text = String::from_utf8(batch).unwrap();
    let (body, last) = text.trim_end().rsplit_once('\n').unwrap();
    let sig_hex = last
        .trim_start_matches("{\"batch_signature\":\"")
        .trim_end_matches("\"}");
    let sig: [u8; 64] = hex::decode(sig_hex).unwrap().try_into().unwrap();
    let body = format!("{body}\n");
    assert!(openssl_verifies(
        &dir,
        key.public_key(),
        ykt_qr::record::BATCH_SIGNATURE_ID,
        body.as_bytes(),
        &sig
    ));
}
