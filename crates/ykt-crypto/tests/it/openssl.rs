//! Cross-checks against the OpenSSL 3 command-line tool on generated inputs.
//!
//! The `openssl` binary must be on PATH: without it these tests fail, unless the environment sets
//! `YKT_SKIP_OPENSSL=1`, in which case they pass after printing a note.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use ykt_crypto::*;

use crate::harness::hx;
use crate::rng::TestRng;

/// True when the tests should run; panics with instructions when openssl is missing.
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
                     usable here ({result:?}); install it (Debian: apt-get install openssl) or set \
                     YKT_SKIP_OPENSSL=1 to skip these tests"
                )
            }
        }
    }
}

/// Runs `openssl args..` with `stdin`; returns stdout, or the whole output on failure.
fn try_run(args: &[&str], stdin: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn openssl: {e}"))?;
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "openssl {} -> {}\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn run(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    try_run(args, stdin).unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh scratch directory for this process and call.
fn scratch() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ykt-crypto-openssl-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn enc(cipher: &str, key: &[u8], iv: Option<&[u8]>, data: &[u8], legacy: bool) -> Vec<u8> {
    let key_hex = hex::encode(key);
    let mut args = vec!["enc", cipher, "-K", &key_hex, "-nopad"];
    let iv_hex;
    if let Some(iv) = iv {
        iv_hex = hex::encode(iv);
        args.extend(["-iv", &iv_hex]);
    }
    if legacy {
        args.extend(["-provider", "legacy", "-provider", "default"]);
    }
    run(&args, data)
}

fn cmac(cipher: &str, key: &[u8], data: &[u8]) -> Vec<u8> {
    let mac_key = format!("hexkey:{}", hex::encode(key));
    let out = run(
        &["mac", "-cipher", cipher, "-macopt", &mac_key, "CMAC"],
        data,
    );
    hex::decode(String::from_utf8(out).unwrap().trim()).unwrap()
}

#[test]
fn sm3_matches_openssl() {
    if !available() {
        return;
    }
    let mut rng = TestRng::new(3);
    for len in [0usize, 1, 55, 56, 63, 64, 65, 300] {
        let data = rng.bytes(len);
        assert_eq!(
            hx(&sm3(&data)),
            hx(&run(&["dgst", "-sm3", "-binary"], &data)),
            "len {len}"
        );
    }
}

#[test]
fn sm4_ecb_cbc_match_openssl() {
    if !available() {
        return;
    }
    let mut rng = TestRng::new(4);
    for blocks in 1..=6 {
        let key = Sm4Key::from_slice(&rng.bytes(16)).unwrap();
        let iv = rng.bytes(16);
        let data = rng.bytes(blocks * 16);
        let ecb = ecb_encrypt(&key, &data).unwrap();
        assert_eq!(
            hx(&ecb),
            hx(&enc("-sm4-ecb", key.expose(), None, &data, false))
        );
        let cbc = cbc_encrypt(&key, &iv, &data).unwrap();
        assert_eq!(
            hx(&cbc),
            hx(&enc("-sm4-cbc", key.expose(), Some(&iv), &data, false))
        );
        assert_eq!(cbc_decrypt(&key, &iv, &cbc).unwrap(), data);
    }
}

#[test]
fn des_tdes_aes_cbc_match_openssl() {
    if !available() {
        return;
    }
    let mut rng = TestRng::new(5);
    for blocks in 1..=4 {
        let iv8 = rng.bytes(8);
        let data8 = rng.bytes(blocks * 8);
        let des = DesKey::from_slice(&rng.bytes(8)).unwrap();
        assert_eq!(
            hx(&cbc_encrypt(&des, &iv8, &data8).unwrap()),
            hx(&enc("-des-cbc", des.expose(), Some(&iv8), &data8, true))
        );
        let tdes2 = TdesKey::from_slice(&rng.bytes(16)).unwrap();
        assert_eq!(
            hx(&cbc_encrypt(&tdes2, &iv8, &data8).unwrap()),
            hx(&enc(
                "-des-ede-cbc",
                tdes2.expose(),
                Some(&iv8),
                &data8,
                false
            ))
        );
        let tdes3 = TdesKey::from_slice(&rng.bytes(24)).unwrap();
        assert_eq!(
            hx(&cbc_encrypt(&tdes3, &iv8, &data8).unwrap()),
            hx(&enc(
                "-des-ede3-cbc",
                tdes3.expose(),
                Some(&iv8),
                &data8,
                false
            ))
        );
        let iv16 = rng.bytes(16);
        let data16 = rng.bytes(blocks * 16);
        for n in [16, 24, 32] {
            let aes = AesKey::from_slice(&rng.bytes(n)).unwrap();
            let cipher = format!("-aes-{}-cbc", n * 8);
            assert_eq!(
                hx(&cbc_encrypt(&aes, &iv16, &data16).unwrap()),
                hx(&enc(&cipher, aes.expose(), Some(&iv16), &data16, false))
            );
        }
    }
}

/// The retail MAC rebuilt from OpenSSL DES primitives (as tests/data/retailmac_openssl.txt was).
#[test]
fn retail_mac_matches_openssl_des() {
    if !available() {
        return;
    }
    let mut rng = TestRng::new(6);
    for len in [0usize, 3, 8, 13, 40] {
        let key = rng.bytes(16);
        let iv = rng.bytes(8);
        let msg = rng.bytes(len);
        let padded = pad_iso9797_m2(&msg, 8);
        let chain = enc("-des-cbc", &key[..8], Some(&iv), &padded, true);
        let last = &chain[chain.len() - 8..];
        let mid = run(
            &[
                "enc",
                "-d",
                "-des-ecb",
                "-K",
                &hex::encode(&key[8..]),
                "-nopad",
                "-provider",
                "legacy",
                "-provider",
                "default",
            ],
            last,
        );
        let want = enc("-des-ecb", &key[..8], None, &mid, true);
        let tdes = TdesKey::from_slice(&key).unwrap();
        let got = retail_mac(&tdes, &iv.clone().try_into().unwrap(), &msg).unwrap();
        assert_eq!(hx(&got), hx(&want), "len {len}");
        // The PBOC single-DES MAC is the first half of the plain DES chain.
        let des = DesKey::from_slice(&key[..8]).unwrap();
        assert_eq!(
            hx(&pboc_mac_des(&des, &iv.clone().try_into().unwrap(), &msg)),
            hx(&last[..4])
        );
    }
}

#[test]
fn cmac_matches_openssl() {
    if !available() {
        return;
    }
    let mut rng = TestRng::new(7);
    for len in [0usize, 1, 15, 16, 17, 64] {
        let msg = rng.bytes(len);
        let sm4 = Sm4Key::from_slice(&rng.bytes(16)).unwrap();
        assert_eq!(
            hx(&cmac_sm4(&sm4, &msg)),
            hx(&cmac("SM4-CBC", sm4.expose(), &msg)),
            "len {len}"
        );
        for n in [16, 24, 32] {
            let aes = AesKey::from_slice(&rng.bytes(n)).unwrap();
            let cipher = format!("AES-{}-CBC", n * 8);
            assert_eq!(
                hx(&cmac_aes(&aes, &msg)),
                hx(&cmac(&cipher, aes.expose(), &msg)),
                "len {len}"
            );
        }
        let k3 = rng.bytes(24);
        let tdes3 = TdesKey::from_slice(&k3).unwrap();
        assert_eq!(
            hx(&cmac_tdes(&tdes3, &msg)),
            hx(&cmac("DES-EDE3-CBC", &k3, &msg)),
            "len {len}"
        );
        // A 2-key key is K1 || K2 || K1 to OpenSSL.
        let k2 = rng.bytes(16);
        let tdes2 = TdesKey::from_slice(&k2).unwrap();
        let expanded = [&k2[..], &k2[..8]].concat();
        assert_eq!(
            hx(&cmac_tdes(&tdes2, &msg)),
            hx(&cmac("DES-EDE3-CBC", &expanded, &msg)),
            "len {len}"
        );
    }
}

/// SubjectPublicKeyInfo (DER) of an SM2 public key: id-ecPublicKey with the SM2 curve OID
/// 1.2.156.10197.1.301.
fn spki_der(point: &[u8; 65]) -> Vec<u8> {
    let prefix = hex::decode("3059301306072a8648ce3d020106082a811ccf5501822d034200").unwrap();
    [&prefix[..], &point[..]].concat()
}

const DISTID: &str = "distid:1234567812345678";

#[test]
fn sm2_rust_sign_openssl_verify() {
    if !available() {
        return;
    }
    let dir = scratch();
    let mut rng = TestRng::new(8);
    for i in 0..4 {
        let key = Sm2PrivateKey::generate(&mut rng).unwrap();
        let msg = rng.bytes(10 + 37 * i);
        let sig = if i % 2 == 0 {
            key.sign(DEFAULT_SM2_ID, &msg).unwrap()
        } else {
            key.sign_with_rng(&mut rng, DEFAULT_SM2_ID, &msg).unwrap()
        };
        let (pubf, msgf, sigf) = (dir.join("pub.der"), dir.join("msg"), dir.join("sig.der"));
        std::fs::write(&pubf, spki_der(&key.public_key().to_bytes())).unwrap();
        std::fs::write(&msgf, &msg).unwrap();
        std::fs::write(&sigf, sig.to_der()).unwrap();
        let verify = |m: &PathBuf, opt: &str| {
            try_run(
                &[
                    "pkeyutl",
                    "-verify",
                    "-pubin",
                    "-keyform",
                    "DER",
                    "-inkey",
                    pubf.to_str().unwrap(),
                    "-rawin",
                    "-in",
                    m.to_str().unwrap(),
                    "-digest",
                    "sm3",
                    "-pkeyopt",
                    opt,
                    "-sigfile",
                    sigf.to_str().unwrap(),
                ],
                b"",
            )
        };
        let out = verify(&msgf, DISTID).unwrap();
        assert!(String::from_utf8_lossy(&out).contains("Signature Verified Successfully"));
        // Another message, or OpenSSL's empty default ID, must fail.
        let other = dir.join("other");
        std::fs::write(&other, [&msg[..], b"x"].concat()).unwrap();
        assert!(verify(&other, DISTID).is_err());
        assert!(verify(&msgf, "distid:").is_err() || verify(&msgf, "distid:0").is_err());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sm2_openssl_sign_rust_verify() {
    if !available() {
        return;
    }
    let dir = scratch();
    let (keyf, pubf, msgf, sigf) = (
        dir.join("k.pem"),
        dir.join("p.der"),
        dir.join("m"),
        dir.join("s.der"),
    );
    run(
        &[
            "genpkey",
            "-algorithm",
            "SM2",
            "-out",
            keyf.to_str().unwrap(),
        ],
        b"",
    );
    run(
        &[
            "pkey",
            "-in",
            keyf.to_str().unwrap(),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            pubf.to_str().unwrap(),
        ],
        b"",
    );
    let spki = std::fs::read(&pubf).unwrap();
    let public = Sm2PublicKey::from_sec1_bytes(&spki[spki.len() - 65..]).unwrap();
    assert_eq!(spki_der(&public.to_bytes()), spki);
    let mut rng = TestRng::new(9);
    for i in 0..4 {
        let msg = rng.bytes(1 + 50 * i);
        std::fs::write(&msgf, &msg).unwrap();
        run(
            &[
                "pkeyutl",
                "-sign",
                "-inkey",
                keyf.to_str().unwrap(),
                "-rawin",
                "-in",
                msgf.to_str().unwrap(),
                "-digest",
                "sm3",
                "-pkeyopt",
                DISTID,
                "-out",
                sigf.to_str().unwrap(),
            ],
            b"",
        );
        let sig = Sm2Signature::from_der(&std::fs::read(&sigf).unwrap()).unwrap();
        public.verify(DEFAULT_SM2_ID, &msg, &sig).unwrap();
        assert_eq!(
            public.verify(DEFAULT_SM2_ID, b"other", &sig),
            Err(Error::SignatureInvalid)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `openssl dgst -sha256 -verify` over a DER SubjectPublicKeyInfo: Ok(()) when it verifies.
fn openssl_rsa_verify(
    dir: &std::path::Path,
    spki: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    let (pubf, msgf, sigf) = (
        dir.join("rsa.pub.der"),
        dir.join("rsa.msg"),
        dir.join("rsa.sig"),
    );
    std::fs::write(&pubf, spki).unwrap();
    std::fs::write(&msgf, msg).unwrap();
    std::fs::write(&sigf, sig).unwrap();
    let out = try_run(
        &[
            "dgst",
            "-sha256",
            "-verify",
            pubf.to_str().unwrap(),
            "-keyform",
            "DER",
            "-signature",
            sigf.to_str().unwrap(),
            msgf.to_str().unwrap(),
        ],
        b"",
    )?;
    assert!(String::from_utf8_lossy(&out).contains("Verified OK"));
    Ok(())
}

/// `openssl dgst -sha256 -sign` with a DER private key file.
fn openssl_rsa_sign(dir: &std::path::Path, key_der: &[u8], msg: &[u8]) -> Vec<u8> {
    let (keyf, msgf) = (dir.join("rsa.key.der"), dir.join("rsa.msg"));
    std::fs::write(&keyf, key_der).unwrap();
    std::fs::write(&msgf, msg).unwrap();
    run(
        &[
            "dgst",
            "-sha256",
            "-sign",
            keyf.to_str().unwrap(),
            "-keyform",
            "DER",
            msgf.to_str().unwrap(),
        ],
        b"",
    )
}

/// The fixed OpenSSL key pair: OpenSSL's signatures verify here and equal ours; ours verify in
/// OpenSSL; a tampered message or signature fails in OpenSSL too.
#[test]
fn rsa_fixed_key_matches_openssl() {
    if !available() {
        return;
    }
    let dir = scratch();
    let case = &crate::harness::cases("rsa_openssl.txt")[0];
    let pkcs8 = case.bytes("pkcs8");
    let key = RsaPrivateKey::from_pkcs8_der(&pkcs8).unwrap();
    let spki = key.public_key().to_public_key_der().unwrap();
    let mut rng = TestRng::new(21);
    for len in [0usize, 1, 64, 300] {
        let msg = rng.bytes(len);
        let theirs = openssl_rsa_sign(&dir, &pkcs8, &msg);
        key.public_key()
            .verify_pkcs1v15_sha256(&msg, &theirs)
            .unwrap();
        let ours = key.sign_pkcs1v15_sha256(&msg).unwrap();
        assert_eq!(hx(&ours), hx(&theirs), "len {len}");
        openssl_rsa_verify(&dir, &spki, &msg, &ours).unwrap();
        let mut bad = ours.clone();
        bad[len % 256] ^= 0x10;
        assert!(openssl_rsa_verify(&dir, &spki, &msg, &bad).is_err());
        assert!(openssl_rsa_verify(&dir, &spki, &[&msg[..], b"x"].concat(), &ours).is_err());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A key generated here from a seeded RNG: OpenSSL accepts its PKCS#8 export (`pkey -check`),
/// verifies our signature with its SPKI export and signs with it for us to verify.
#[test]
fn rsa_generated_key_works_in_openssl() {
    if !available() {
        return;
    }
    let dir = scratch();
    let mut rng = TestRng::new(22);
    let key = RsaPrivateKey::generate(&mut rng, 2048).unwrap();
    assert_eq!(key.public_key().bits(), 2048);
    assert_eq!(key.public_key().exponent(), [1, 0, 1]);
    let pkcs8 = key.to_pkcs8_der().unwrap();
    let keyf = dir.join("gen.der");
    std::fs::write(&keyf, &pkcs8[..]).unwrap();
    let out = run(
        &[
            "pkey",
            "-inform",
            "DER",
            "-in",
            keyf.to_str().unwrap(),
            "-check",
            "-noout",
        ],
        b"",
    );
    assert!(
        String::from_utf8_lossy(&out).contains("valid"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let spki = key.public_key().to_public_key_der().unwrap();
    let msg = rng.bytes(77);
    let ours = key.sign_pkcs1v15_sha256_with_rng(&mut rng, &msg).unwrap();
    openssl_rsa_verify(&dir, &spki, &msg, &ours).unwrap();
    let theirs = openssl_rsa_sign(&dir, &pkcs8, &msg);
    assert_eq!(hx(&theirs), hx(&ours));
    key.public_key()
        .verify_pkcs1v15_sha256(&msg, &theirs)
        .unwrap();
    // The same seed gives the same key: generation draws only from the RNG argument.
    let again = RsaPrivateKey::generate(&mut TestRng::new(22), 2048).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    std::fs::remove_dir_all(&dir).unwrap();
}
