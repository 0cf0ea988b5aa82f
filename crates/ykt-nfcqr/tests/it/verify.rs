//! Codes made by the applet are ordinary codes: the terminal's `ykt_qr::Verifier` accepts them
//! (qr-code.md §3.1, §4.3 "The terminal side is unchanged"), the field-17 answer completes the
//! blob into the same code, and the user signature (signature C) verifies with the OpenSSL 3 CLI
//! under the brief's user ID of each version (§2.4: `distid:1234567812345678` for `80`,
//! `hexdistid:` of the user account for `81`), and fails under the other ID.
//!
//! The `openssl` binary must be on PATH: without it the OpenSSL test fails, unless the
//! environment sets `YKT_SKIP_OPENSSL=1`, in which case it passes after printing a note.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use ykt_crypto::{Sm2PublicKey, Sm2Signature};
use ykt_nfcqr::NfcQrProfile;
use ykt_qr::testing::{self, GENERATION_TIME, ORG_CODE, PLATFORM_ID, TICKET_TYPE};
use ykt_qr::verify::WhitelistEntry;
use ykt_qr::{QrCode, RootKeyRecord, Verifier, VerifierConfig, Version, ids};

use crate::support::*;

/// A terminal with the §6 root key record for both versions and the §6 issuer admitted.
fn new_terminal() -> Verifier {
    let record = RootKeyRecord::decode(&h(testing::ROOT_RECORD_HEX)).unwrap();
    let mut v = Verifier::new(VerifierConfig::default());
    v.add_root_key(Version::INTEROPERABLE, &record).unwrap();
    v.add_root_key(Version::LOCAL, &record).unwrap();
    v.allow_issuer(WhitelistEntry {
        org_code: ORG_CODE,
        platform_id: PLATFORM_ID,
        ticket_type: TICKET_TYPE,
    });
    v.allow_local_org(ORG_CODE);
    v
}

/// The whole code (P1 01) and a field-17 answer (P1 00) at `time`.
fn codes(blob: &[u8], time: u32) -> (Vec<u8>, Vec<u8>) {
    let mut card = authorised(NfcQrProfile::default(), blob);
    let (whole, s) = send_all(&mut card, &code_cmd(time, true));
    assert_eq!(s, 0x9000);
    let (field, s) = send(&mut card, &code_cmd(time + 1, false));
    assert_eq!(s, 0x9000);
    assert_eq!(field.len(), 65);
    assert_eq!(field[0], 0x15, "tag byte (ykt_qr::code::SIGNATURE_TAG)");
    let mut assembled = blob.to_vec();
    assembled.extend_from_slice(&(time + 1).to_be_bytes());
    assembled.extend_from_slice(&field);
    (whole, assembled)
}

#[test]
fn the_terminal_accepts_applet_codes() {
    for blob in [blob_80(), blob_81()] {
        let (whole, assembled) = codes(&blob, GENERATION_TIME);
        assert_eq!(whole.len(), 364);
        assert_eq!(&whole[..295], &blob[..]);
        assert_eq!(&whole[295..299], &GENERATION_TIME.to_be_bytes());
        let mut terminal = new_terminal();
        let now = u64::from(GENERATION_TIME) + 5;
        let a = terminal.verify(&whole, 200, now).unwrap();
        assert_eq!(a.code.generation_time, GENERATION_TIME);
        terminal.verify(&assembled, 200, now).unwrap();
        // The same code twice is a replay; a flipped bit of field 16 breaks signature C.
        assert_eq!(
            terminal.verify(&whole, 200, now).unwrap_err(),
            ykt_qr::Rejection::Replay
        );
        let mut flipped = whole.clone();
        flipped[296] ^= 0x01;
        assert_eq!(
            new_terminal().verify(&flipped, 200, now).unwrap_err(),
            ykt_qr::Rejection::UserSignature
        );
    }
}

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
                    "the OpenSSL 3 CLI (`openssl`) is needed for the cross-check test but is not \
                     usable here ({result:?}); install it or set YKT_SKIP_OPENSSL=1 to skip it"
                )
            }
        }
    }
}

fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ykt-nfcqr-openssl-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `-pkeyopt` value for `id`: `distid:` when printable ASCII, else `hexdistid:`.
fn distid(id: &[u8]) -> String {
    if id.iter().all(|b| b.is_ascii_alphanumeric()) {
        format!("distid:{}", String::from_utf8(id.to_vec()).unwrap())
    } else {
        format!("hexdistid:{}", hex::encode(id))
    }
}

/// True when `openssl pkeyutl -verify` accepts `sig` over `msg` with `key` and `id`.
fn openssl_verifies(dir: &Path, key: &Sm2PublicKey, id: &[u8], msg: &[u8], sig: &[u8; 64]) -> bool {
    let (pubf, msgf, sigf) = (dir.join("pub.der"), dir.join("msg"), dir.join("sig.der"));
    // SubjectPublicKeyInfo: id-ecPublicKey, curve SM2 (the prefix of qr-code.md §6).
    let mut spki = h("3059301306072a8648ce3d020106082a811ccf5501822d034200");
    spki.extend_from_slice(&key.to_bytes());
    std::fs::write(&pubf, spki).unwrap();
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

#[test]
fn openssl_verifies_the_user_signature() {
    if !available() {
        return;
    }
    let dir = scratch();
    let user = Sm2PublicKey::from_sec1_bytes(&user_public()).unwrap();
    for (blob, want_id) in [
        (blob_80(), b"1234567812345678".to_vec()),
        (blob_81(), testing::USER_ACCOUNT.to_vec()),
    ] {
        let (whole, assembled) = codes(&blob, GENERATION_TIME);
        for bytes in [whole, assembled] {
            let code = QrCode::decode(&bytes).unwrap();
            let id = ids::user_id(code.authorisation.version, &code.authorisation.body);
            assert_eq!(id, want_id, "the brief's §2.4 ID");
            // Signature C covers bytes 0 .. 267 + N (fields 1–16).
            let msg = &bytes[..267 + 32];
            assert_eq!(code.user_signed_bytes(), msg);
            let sig = code.user_signature.signature;
            assert!(
                openssl_verifies(&dir, &user, &id, msg, &sig),
                "{:02X}",
                bytes[0]
            );
            let wrong: &[u8] = if id == b"1234567812345678" {
                &testing::USER_ACCOUNT
            } else {
                b"1234567812345678"
            };
            assert!(!openssl_verifies(&dir, &user, wrong, msg, &sig), "wrong ID");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
