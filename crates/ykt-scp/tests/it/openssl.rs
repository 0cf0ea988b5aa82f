//! Cross-checks of the SCP03 KDF and the C-DEC encryption against the OpenSSL 3 CLI.
//!
//! The `openssl` binary must be on PATH: without it these tests fail, unless the environment sets
//! `YKT_SKIP_OPENSSL=1`, in which case they pass after printing a note (as in ykt-crypto).

use std::io::Write;
use std::process::{Command, Stdio};

use ykt_crypto::scp::{scp03_kdf_aes, scp03_kdf_sm4};
use ykt_crypto::{AesKey, Sm4Key, pad_iso9797_m2};

use crate::harness::hx;
use crate::support::random;

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

fn run(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn openssl_cmac(cipher: &str, key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = format!("hexkey:{}", hex::encode(key));
    let out = run(&["mac", "-cipher", cipher, "-macopt", &key, "CMAC"], data);
    hex::decode(String::from_utf8(out).unwrap().trim()).unwrap()
}

/// The KDF rebuilt from OpenSSL CMAC calls over the Amendment D derivation data.
fn openssl_kdf(cipher: &str, key: &[u8], constant: u8, context: &[u8], len: usize) -> Vec<u8> {
    let l_bits = ((len * 8) as u16).to_be_bytes();
    let mut out = Vec::new();
    for i in 1..=len.div_ceil(16) {
        let mut data = vec![0u8; 11];
        data.extend_from_slice(&[constant, 0x00, l_bits[0], l_bits[1], i as u8]);
        data.extend_from_slice(context);
        out.extend(openssl_cmac(cipher, key, &data));
    }
    out.truncate(len);
    out
}

#[test]
fn scp03_kdf_matches_openssl_cmac() {
    if !available() {
        return;
    }
    for (n, key_len) in [16usize, 24, 32].into_iter().enumerate() {
        let key = random(key_len, 0x11 + n as u8);
        let aes = AesKey::from_slice(&key).unwrap();
        let cipher = format!("AES-{}-CBC", key_len * 8);
        for (constant, context_len, out_len) in [
            (0x00, 16, 8),
            (0x04, 16, key_len),
            (0x02, 11, 16),
            (0x07, 32, 32),
        ] {
            let context = random(context_len, constant);
            let mut ours = vec![0u8; out_len];
            scp03_kdf_aes(&aes, constant, &context, &mut ours);
            let theirs = openssl_kdf(&cipher, &key, constant, &context, out_len);
            assert_eq!(
                hx(&ours),
                hx(&theirs),
                "AES-{} const {constant:02X} L {out_len}",
                key_len * 8
            );
        }
    }
    let key = random(16, 0x77);
    let sm4 = Sm4Key::from_slice(&key).unwrap();
    for (constant, out_len) in [(0x04, 16), (0x00, 8), (0x02, 16)] {
        let context = random(16, constant);
        let mut ours = vec![0u8; out_len];
        scp03_kdf_sm4(&sm4, constant, &context, &mut ours);
        let theirs = openssl_kdf("SM4-CBC", &key, constant, &context, out_len);
        assert_eq!(hx(&ours), hx(&theirs), "SM4 const {constant:02X}");
    }
}

/// C-DEC of the pysim AES-128 level 33 session's GET DATA (EID) rebuilt with `openssl enc`:
/// ICV = AES-ECB(S-ENC, counter 1), then AES-CBC over the padded data.
#[test]
fn scp03_command_encryption_matches_openssl() {
    if !available() {
        return;
    }
    let c = &crate::harness::cases("scp03_pysim.txt")[2];
    assert_eq!(c.text("name"), "AES128_33");
    let resp = c.bytes("initialize_update_response");
    let context = [&c.command("initialize_update").data[..], &resp[13..21]].concat();
    let mut s_enc = [0u8; 16];
    scp03_kdf_aes(
        &AesKey::from_slice(&c.bytes("enc")).unwrap(),
        0x04,
        &context,
        &mut s_enc,
    );
    let mut counter = [0u8; 16];
    counter[15] = 1;
    let key_hex = hex::encode(s_enc);
    let icv = run(&["enc", "-aes-128-ecb", "-K", &key_hex, "-nopad"], &counter);
    let plain = c.command("get_eid_plain").data;
    let padded = pad_iso9797_m2(&plain, 16);
    let theirs = run(
        &[
            "enc",
            "-aes-128-cbc",
            "-K",
            &key_hex,
            "-iv",
            &hex::encode(&icv),
            "-nopad",
        ],
        &padded,
    );
    let wrapped = c.command("get_eid").data;
    assert_eq!(hx(&wrapped[..16]), hx(&theirs));
}
