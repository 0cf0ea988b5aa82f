//! `qr_verify`: the terminal's `Verifier` (holding the §6 root key for versions `80` and `81`,
//! the §6 issuer whitelisted and its org code local, as `ykt_qr::testing::Example::verifier`
//! sets up) over arbitrary bytes as a scanned code.
//!
//! Input: mode (u8) ‖ fare (u16, fen) ‖ time offset (i16, seconds from the §6 generation time)
//! ‖ the scanned bytes. The verifier never panics; a code it accepts decodes and re-encodes to
//! the scanned bytes, its signatures A, B and C verify when checked again here from the raw
//! bytes, the fare is within field 9, the terminal's time within the code's window, and
//! scanning it a second time is refused as a replay.
//!
//! In odd modes a code that decodes is first re-signed with the §6 keys (the issuer and user
//! public keys set to §6's, signatures A, B and C made afresh over whatever other fields the
//! fuzzer chose), so that the steps after the signatures (whitelist, window, freshness,
//! replay, risk lists, amount) see arbitrary fields; and once it is accepted, the same code
//! with one bit of signature C changed (bit chosen by the mode byte) is refused by a fresh
//! verifier with `Rejection::UserSignature`.

use std::sync::OnceLock;

use ykt_crypto::{Sm2PrivateKey, Sm2PublicKey, Sm2Signature};
use ykt_qr::VerifierConfig;
use ykt_qr::testing::{Example, GENERATION_TIME, ISSUER_D, ROOT_D, TestRng, USER_D, terms};
use ykt_qr::{IssuerCertificate, QrCode, Rejection, RootKeyRecord, SignatureField, Verifier};
use ykt_qr::{Version, ids};

struct Fixture {
    verifier: Verifier,
    root: Sm2PublicKey,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let example = Example::new(Version::INTEROPERABLE, &terms(), &mut TestRng::new(1))
            .expect("the §6 chain");
        let verifier = example
            .verifier(VerifierConfig::default(), &mut TestRng::new(2))
            .expect("the §6 verifier");
        let record = crate::unhex(ykt_qr::testing::ROOT_RECORD_HEX).expect("hex");
        let root = RootKeyRecord::decode(&record)
            .expect("the §6 root record")
            .public_key_checked()
            .expect("its self-signature");
        Fixture { verifier, root }
    })
}

/// Verifies `sig` (r ‖ s) over `msg` under `key` (SEC1 bytes) and `id`, from raw bytes.
fn verifies(key: &[u8], id: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = Sm2PublicKey::from_sec1_bytes(key) else {
        return false;
    };
    let Ok(sig) = <&[u8; 64]>::try_from(sig) else {
        return false;
    };
    let Ok(sig) = Sm2Signature::from_bytes(sig) else {
        return false;
    };
    key.verify(id, msg, &sig).is_ok()
}

/// The target.
pub fn run(data: &[u8]) {
    let Some((head, code)) = data.split_first_chunk::<5>() else {
        return;
    };
    let mode = head[0];
    let fare = u32::from(u16::from_be_bytes([head[1], head[2]]));
    let offset = i64::from(i16::from_be_bytes([head[3], head[4]]));
    let now = (i64::from(GENERATION_TIME) + offset) as u64;
    if mode & 1 == 0 {
        check(code, fare, now);
    } else if let Some(code) = resign(code)
        && check(&code, fare, now)
    {
        let mut forged = code.clone();
        let at = code.len() - 64 + usize::from(mode >> 1) % 64;
        forged[at] ^= 1 << ((mode >> 1) % 8);
        assert_eq!(
            fixture().verifier.clone().verify(&forged, fare, now).err(),
            Some(Rejection::UserSignature),
            "a changed signature C: {}",
            crate::hex(&forged)
        );
    }
}

fn keys() -> &'static [Sm2PrivateKey; 3] {
    static KEYS: OnceLock<[Sm2PrivateKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [ROOT_D, ISSUER_D, USER_D].map(|d| Sm2PrivateKey::from_bytes(&d).expect("a §6 key"))
    })
}

/// The code with the §6 issuer and user keys and fresh signatures A, B and C; `None` when it
/// does not decode.
fn resign(code: &[u8]) -> Option<Vec<u8>> {
    let mut decoded = QrCode::decode(code).ok()?;
    let [root, issuer, user] = keys();
    let version = decoded.authorisation.version;
    let auth = &mut decoded.authorisation;
    auth.certificate.public_key = ykt_qr::compress_public_key(issuer.public_key());
    let a = root
        .sign(
            &ids::certificate_id(version, &auth.certificate),
            &auth.certificate.signed_bytes(),
        )
        .ok()?;
    auth.certificate.signature = a.to_bytes();
    auth.body.user_public_key = ykt_qr::compress_public_key(user.public_key());
    let b = issuer
        .sign(
            &ids::issuer_id(version, &auth.body),
            &auth.issuer_signed_bytes(),
        )
        .ok()?;
    auth.issuer_signature = SignatureField::new(&b);
    let c = user
        .sign(
            &ids::user_id(version, &decoded.authorisation.body),
            &decoded.user_signed_bytes(),
        )
        .ok()?;
    decoded.user_signature = SignatureField::new(&c);
    Some(decoded.encode())
}

/// Verifies `code` and checks an acceptance; true when the code was accepted.
fn check(code: &[u8], fare: u32, now: u64) -> bool {
    let fx = fixture();
    let mut verifier = fx.verifier.clone();
    let verdict = verifier.verify(code, fare, now);
    if std::env::var_os("YKT_FUZZ_TRACE").is_some() {
        eprintln!("verdict {:?}", verdict.as_ref().map(|_| "accepted"));
    }
    let Ok(accepted) = verdict else {
        return false;
    };
    let decoded = QrCode::decode(code).expect("an accepted code decodes");
    assert_eq!(accepted.code, decoded);
    assert_eq!(decoded.encode(), code);
    let auth = &decoded.authorisation;
    let (version, body) = (auth.version, &auth.body);
    let n = body.issuer_data_len();
    let len = code.len();

    // Signature A: the root over certificate bytes 6–52 (code bytes 9–55).
    let cert = IssuerCertificate::decode(&code[3..120]).expect("field 3");
    assert!(
        verifies(
            &fx.root.to_bytes(),
            &ids::certificate_id(version, &cert),
            &code[9..56],
            &code[56..120]
        ),
        "accepted a code whose signature A does not verify: {}",
        crate::hex(code)
    );
    // Signature B: the issuer (certificate bytes 20–52) over fields 3–14.
    assert!(
        verifies(
            &code[23..56],
            &ids::issuer_id(version, body),
            &code[3..198 + n],
            &code[199 + n..263 + n]
        ),
        "accepted a code whose signature B does not verify: {}",
        crate::hex(code)
    );
    // Signature C: the user (field 10) over fields 1–16.
    assert!(
        verifies(
            &code[158..191],
            &ids::user_id(version, body),
            &code[..len - 65],
            &code[len - 64..]
        ),
        "accepted a code whose user signature does not verify: {}",
        crate::hex(code)
    );
    assert!(fare <= body.limit, "accepted a fare above field 9");
    let generated = u64::from(decoded.generation_time);
    let skew = u64::from(verifier.config().clock_skew);
    assert!(generated <= now + skew, "accepted a code from the future");
    assert!(
        now <= generated + u64::from(body.validity) + skew,
        "accepted an expired code"
    );
    assert!(now <= u64::from(body.authorisation_expiry));
    assert!(
        matches!(
            verifier.verify(code, fare, now),
            Err(Rejection::Replay | Rejection::ReplayCacheFull)
        ),
        "accepted the same code twice"
    );
    true
}
