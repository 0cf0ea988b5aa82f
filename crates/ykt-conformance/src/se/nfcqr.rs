//! SE-NFCQR items: the NFC QR applet (qr-code.md §4.3; every APDU is a proposal, docs/nfc-qr.md).
//!
//! The harness plays wallet, issuer back end and scanning terminal: it makes the issuer's
//! authorisations of whatever key the card holds with the qr-code.md §6 test chain
//! (`ykt_qr::testing::Example`, `ISSUER_D`), signs RESET with the issuer key, and checks the
//! card's codes with `ykt_qr::Verifier` and its own signature C verification.
//!
//! The checkers work relative to the applet's state where the applet allows it: a stored
//! authorisation from the test issuer is erased with RESET, and every time and expiry is chosen
//! after the card's last generation time (GET DATA). Items that need a known key, root keys or
//! a small code limit name a fixture and run on the simulator only.

use ykt_apdu::ResponseApdu;
use ykt_crypto::{Sm2PrivateKey, Sm2PublicKey, Sm2Signature};
use ykt_nfcqr::NFCQR_AID;
use ykt_qr::ca::RootCa;
use ykt_qr::issuer::{self, Issuer};
use ykt_qr::testing::{self, Example, TestRng};
use ykt_qr::{QrCode, Verifier, VerifierConfig, Version, ids};

use super::{SeHarness, expect_sw};
use crate::params::Params;
use crate::target::{SimCard, sim_from_state};
use crate::transcript::hex;
use crate::verdict::{Stop, ensure};

/// Seed of the harness's signature nonces.
const RNG_SEED: u64 = 0x51_5254;
/// Seed of the card copies of the tearing item.
const COPY_SEED: u64 = 0x7EA3;
/// Upper bound on the cut points per command.
const MAX_CUTS: u64 = 400;

/// The GET DATA status record (docs/nfc-qr.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Status {
    state: u8,
    expiry: u32,
    under: u32,
    limit: u32,
    total: u32,
    last: u32,
    authorisations: u16,
    keys: u16,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn bad(what: &str) -> impl Fn(ykt_qr::Error) -> Stop + '_ {
    move |e| Stop::Inconclusive(format!("{what}: {e}"))
}

fn crypto(what: &str) -> impl Fn(ykt_crypto::Error) -> Stop + '_ {
    move |e| Stop::Inconclusive(format!("{what}: {e}"))
}

/// The §6 chain of `version` (root CA, certified issuer).
fn example(version: Version) -> Result<Example, Stop> {
    Example::new(version, &testing::terms(), &mut TestRng::new(RNG_SEED))
        .map_err(bad("the §6 example chain"))
}

fn versions(p: Params<'_>) -> Result<Vec<Version>, Stop> {
    let Some(list) = p.0.get("versions") else {
        return Ok(vec![Version::INTEROPERABLE]);
    };
    let items = list
        .as_array()
        .ok_or_else(|| Stop::Inconclusive("parameter versions is not a list".into()))?;
    items
        .iter()
        .map(|v| {
            v.as_str()
                .and_then(|t| u8::from_str_radix(t, 16).ok())
                .and_then(Version::new)
                .ok_or_else(|| Stop::Inconclusive(format!("version {v:?} is not 80 or above")))
        })
        .collect()
}

impl SeHarness<'_> {
    fn nfc_select(&mut self) -> Result<(), Stop> {
        self.ok(
            &super::gp::select(&NFCQR_AID),
            "SELECT of the NFC QR applet",
        )
        .map(|_| ())
    }

    /// Sends raw bytes and follows `61xx` with GET RESPONSE.
    fn nfc_send(&mut self, bytes: &[u8]) -> Result<ResponseApdu, Stop> {
        let mut r = self.send_bytes(bytes)?;
        let mut data = std::mem::take(&mut r.data);
        while r.sw.0 >> 8 == 0x61 {
            let le = (r.sw.0 & 0xFF) as u8;
            r = self.send_bytes(&[0x00, 0xC0, 0x00, 0x00, le])?;
            data.append(&mut r.data);
        }
        r.data = data;
        Ok(r)
    }

    fn nfc_status(&mut self) -> Result<Status, Stop> {
        let r = self.nfc_send(&[0x80, 0xCA, 0x00, 0x00, 0x00])?;
        expect_sw(&r, 0x9000, "GET DATA")?;
        let d = &r.data;
        ensure(d.len() == 25, || {
            format!("GET DATA gave {} bytes, not 25: {}", d.len(), hex(d))
        })?;
        Ok(Status {
            state: d[0],
            expiry: be32(&d[1..5]),
            under: be32(&d[5..9]),
            limit: be32(&d[9..13]),
            total: be32(&d[13..17]),
            last: be32(&d[17..21]),
            authorisations: u16::from_be_bytes([d[21], d[22]]),
            keys: u16::from_be_bytes([d[23], d[24]]),
        })
    }

    /// GET PUBLIC KEY with `p2` (`00` compressed, `01` uncompressed).
    fn nfc_public_key(&mut self, p2: u8) -> Result<ResponseApdu, Stop> {
        self.nfc_send(&[0x80, 0xE6, 0x00, p2, 0x00])
    }

    /// The card's key, 04 ‖ X ‖ Y.
    fn nfc_key(&mut self) -> Result<[u8; 65], Stop> {
        let r = self.nfc_public_key(0x01)?;
        expect_sw(&r, 0x9000, "GET PUBLIC KEY")?;
        <[u8; 65]>::try_from(r.data.as_slice())
            .map_err(|_| Stop::Fail(format!("GET PUBLIC KEY gave {}", hex(&r.data))))
    }

    fn nfc_generate_key(&mut self, p1: u8, p2: u8) -> Result<ResponseApdu, Stop> {
        self.nfc_send(&[0x80, 0xE0, p1, p2, 0x00])
    }

    /// STORE AUTHORISATION in one command with an extended Lc.
    fn nfc_store(&mut self, blob: &[u8]) -> Result<u16, Stop> {
        let mut c = vec![0x80, 0xE2, 0x00, 0x00, 0x00];
        c.extend_from_slice(&(blob.len() as u16).to_be_bytes());
        c.extend_from_slice(blob);
        Ok(self.nfc_send(&c)?.sw.0)
    }

    /// GENERATE CODE at `time`; `whole` asks for the whole code (P1 `01`).
    fn nfc_code(&mut self, time: u32, whole: bool) -> Result<ResponseApdu, Stop> {
        let mut c = vec![0x80, 0xE4, u8::from(whole), 0x00, 0x04];
        c.extend_from_slice(&time.to_be_bytes());
        c.push(0x00);
        self.nfc_send(&c)
    }

    fn nfc_reset(&mut self, signature: &[u8; 64]) -> Result<u16, Stop> {
        let mut c = vec![0x80, 0xEA, 0x00, 0x00, 0x40];
        c.extend_from_slice(signature);
        Ok(self.nfc_send(&c)?.sw.0)
    }

    /// Power cycle, then SELECT again.
    fn nfc_power_cycle(&mut self) -> Result<(), Stop> {
        self.reset()?;
        self.nfc_select()
    }
}

/// The harness's issuer side: authorisations of any key, RESET signatures.
struct Back {
    rng: TestRng,
}

impl Back {
    fn new() -> Back {
        Back {
            rng: TestRng::new(RNG_SEED),
        }
    }

    /// The §6 issuer's authorisation (fields 1–15) of `key` for `version`, expiring at `expiry`.
    fn blob(&mut self, version: Version, key: &[u8; 65], expiry: u32) -> Result<Vec<u8>, Stop> {
        let ex = example(version)?;
        self.blob_by(&ex.issuer, key, expiry)
    }

    fn blob_by(&mut self, issuer: &Issuer, key: &[u8; 65], expiry: u32) -> Result<Vec<u8>, Stop> {
        let public = Sm2PublicKey::from_sec1_bytes(key).map_err(crypto("the card key"))?;
        let mut terms = testing::terms();
        terms.authorisation_expiry = expiry;
        issuer::authorise(issuer, &public, &terms, &mut self.rng)
            .map(|a| a.encode())
            .map_err(bad("authorise"))
    }

    /// The issuer's RESET signature over the prefixed `key`, under signature B's ID of
    /// `version` for the §6 terms.
    fn reset_signature(&mut self, version: Version, key: &[u8; 65]) -> Result<[u8; 64], Stop> {
        let issuer = Sm2PrivateKey::from_bytes(&testing::ISSUER_D).map_err(crypto("d_iss"))?;
        let ex = example(version)?;
        let id = ids::issuer_id(version, &ex.authorisation.body);
        issuer
            .sign_with_rng(&mut self.rng, &id, &ykt_nfcqr::reset_message(key))
            .map(|s| s.to_bytes())
            .map_err(crypto("the RESET signature"))
    }
}

/// The first time the harness may use: after the card's last generation time and not before
/// the §6 generation time.
fn base_time(st: &Status) -> u32 {
    st.last.max(testing::GENERATION_TIME)
}

/// Brings the applet to "no key": RESET of a stored authorisation (the test issuer's, of
/// either version), or of a key without one after storing an authorisation for it.
fn to_no_key(s: &mut SeHarness<'_>, back: &mut Back) -> Result<Status, Stop> {
    s.nfc_select()?;
    let mut st = s.nfc_status()?;
    if st.state == 0x01 {
        let key = s.nfc_key()?;
        let blob = back.blob(Version::INTEROPERABLE, &key, base_time(&st) + 86_400)?;
        let sw = s.nfc_store(&blob)?;
        ensure(sw == 0x9000, || {
            format!("set-up: STORE AUTHORISATION answered {sw:04X}")
        })?;
        st = s.nfc_status()?;
    }
    if st.state >= 0x02 {
        let key = s.nfc_key()?;
        let mut done = false;
        for v in [Version::INTEROPERABLE, Version::LOCAL] {
            let sig = back.reset_signature(v, &key)?;
            if s.nfc_reset(&sig)? == 0x9000 {
                done = true;
                break;
            }
        }
        ensure(done, || {
            "set-up: RESET with the test issuer's signature refused: the stored authorisation is not the test issuer's".into()
        })?;
        st = s.nfc_status()?;
    }
    ensure(st.state == 0x00, || {
        format!("set-up: the applet is in state {:02X}, not 00", st.state)
    })?;
    Ok(st)
}

/// Brings the applet to "key, no authorisation"; gives the key.
fn to_key(s: &mut SeHarness<'_>, back: &mut Back) -> Result<[u8; 65], Stop> {
    s.nfc_select()?;
    let st = s.nfc_status()?;
    if st.state != 0x01 {
        to_no_key(s, back)?;
        let r = s.nfc_generate_key(0x00, 0x01)?;
        expect_sw(&r, 0x9000, "GENERATE KEY PAIR")?;
    }
    s.nfc_key()
}

/// Brings the applet to "authorised by a fresh blob of `version` expiring at `expiry`"
/// (`None`: a day after the base time); gives the key and the blob.
fn to_authorised(
    s: &mut SeHarness<'_>,
    back: &mut Back,
    version: Version,
    expiry: Option<u32>,
) -> Result<([u8; 65], Vec<u8>, Status), Stop> {
    let key = to_key(s, back)?;
    let st = s.nfc_status()?;
    let expiry = expiry.unwrap_or(base_time(&st) + 86_400);
    let blob = back.blob(version, &key, expiry)?;
    let sw = s.nfc_store(&blob)?;
    ensure(sw == 0x9000, || {
        format!("STORE AUTHORISATION of the issuer's blob answered {sw:04X}")
    })?;
    let st = s.nfc_status()?;
    ensure(st.state == 0x02 && st.expiry == expiry, || {
        format!(
            "after STORE AUTHORISATION: state {:02X}, field 11 {:08X}; expected 02, {expiry:08X}",
            st.state, st.expiry
        )
    })?;
    Ok((key, blob, st))
}

/// SE-NFCQR-001.
pub(super) fn generate_key_pair(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    let mut back = Back::new();
    let before = to_no_key(s, &mut back)?;
    let r = s.nfc_generate_key(0x00, 0x00)?;
    expect_sw(&r, 0x9000, "GENERATE KEY PAIR P2 00")?;
    let compressed = r.data;
    ensure(
        compressed.len() == 33 && matches!(compressed[0], 0x02 | 0x03),
        || format!("the key {} is not 02/03 ‖ X", hex(&compressed)),
    )?;
    let point = Sm2PublicKey::from_sec1_bytes(&compressed)
        .map_err(|_| Stop::Fail(format!("{} is not on the SM2 curve", hex(&compressed))))?;
    let full = s.nfc_key()?;
    ensure(point.to_bytes() == full, || {
        format!(
            "GET PUBLIC KEY P2 01 gave {}, not the point of {}",
            hex(&full),
            hex(&compressed)
        )
    })?;
    let again = s.nfc_public_key(0x00)?;
    expect_sw(&again, 0x9000, "GET PUBLIC KEY P2 00")?;
    ensure(again.data == compressed, || {
        "GET PUBLIC KEY P2 00 differs from the generated key".into()
    })?;
    let after = s.nfc_status()?;
    ensure(after.state == 0x01 && after.keys == before.keys + 1, || {
        format!(
            "GET DATA: state {:02X}, key pairs {} → {}",
            after.state, before.keys, after.keys
        )
    })?;
    Ok(format!(
        "33-byte key {:02X}… on the curve; 65-byte form and GET PUBLIC KEY agree; key pairs made {}",
        compressed[0], after.keys
    ))
}

/// SE-NFCQR-002.
pub(super) fn second_key(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let sw_exists = p.u16("sw_exists", 0x6A89)?;
    let sw_locked = p.u16("sw_locked", 0x6985)?;
    let mut back = Back::new();
    let first = to_key(s, &mut back)?;
    let r = s.nfc_generate_key(0x00, 0x01)?;
    expect_sw(&r, sw_exists, "GENERATE KEY PAIR P1 00 with a key")?;
    ensure(s.nfc_key()? == first, || {
        "the refused GENERATE KEY PAIR changed the key".into()
    })?;
    let r = s.nfc_generate_key(0x01, 0x01)?;
    expect_sw(
        &r,
        0x9000,
        "GENERATE KEY PAIR P1 01 before an authorisation",
    )?;
    let second = s.nfc_key()?;
    ensure(second != first && r.data == second, || {
        "P1 01 did not replace the key".into()
    })?;
    let st = s.nfc_status()?;
    let blob = back.blob(Version::INTEROPERABLE, &second, base_time(&st) + 86_400)?;
    let sw = s.nfc_store(&blob)?;
    ensure(sw == 0x9000, || format!("STORE AUTHORISATION {sw:04X}"))?;
    let r = s.nfc_generate_key(0x01, 0x01)?;
    expect_sw(&r, sw_locked, "GENERATE KEY PAIR P1 01 once authorised")?;
    ensure(s.nfc_key()? == second, || {
        "the refused replacement changed the key".into()
    })?;
    to_no_key(s, &mut back)?;
    Ok(format!(
        "P1 00 with a key {sw_exists:04X}; P1 01 replaced it; once authorised P1 01 {sw_locked:04X}, key unchanged"
    ))
}

/// SE-NFCQR-003 (fixture `nfcqr`: the first key is d_usr of §6).
pub(super) fn key_not_exported(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    let d = testing::USER_D;
    let mut back = Back::new();
    s.nfc_select()?;
    let mut answers: Vec<Vec<u8>> = Vec::new();
    let r = s.nfc_generate_key(0x00, 0x01)?;
    expect_sw(&r, 0x9000, "GENERATE KEY PAIR")?;
    let user = Sm2PrivateKey::from_bytes(&d).map_err(crypto("d_usr"))?;
    ensure(r.data == user.public_key().to_bytes(), || {
        "the fixture's key is not d_usr of §6 (scripted random)".into()
    })?;
    answers.push(r.data);
    s.set_quiet(true);
    let mut sent = 0u32;
    for ins in 0..=255u8 {
        s.nfc_select()?;
        for p1 in 0..4u8 {
            for p2 in 0..4u8 {
                // A key replacement would make an unknown key; RESET and STORE AUTHORISATION
                // with junk are refused.
                if ins == 0xE0 && p1 != 0x00 {
                    continue;
                }
                for data in [&[][..], &[0x00, 0x01, 0x02, 0x03][..]] {
                    let mut c = vec![0x80, ins, p1, p2];
                    if !data.is_empty() {
                        c.push(data.len() as u8);
                        c.extend_from_slice(data);
                    }
                    c.push(0x00);
                    let r = s.nfc_send(&c)?;
                    answers.push(r.data);
                    sent += 1;
                }
            }
        }
    }
    s.set_quiet(false);
    s.nfc_select()?;
    let key = s.nfc_key()?;
    ensure(key == user.public_key().to_bytes(), || {
        "the sweep changed the key".into()
    })?;
    let st = s.nfc_status()?;
    let blob = back.blob(Version::INTEROPERABLE, &key, base_time(&st) + 86_400)?;
    let sw = s.nfc_store(&blob)?;
    ensure(sw == 0x9000, || format!("STORE AUTHORISATION {sw:04X}"))?;
    for (i, whole) in [(1, true), (2, false)] {
        let r = s.nfc_code(base_time(&st) + i, whole)?;
        expect_sw(&r, 0x9000, "GENERATE CODE")?;
        answers.push(r.data);
    }
    answers.push(s.nfc_send(&[0x80, 0xCA, 0x00, 0x00, 0x00])?.data);
    for a in &answers {
        for w in d.windows(8) {
            ensure(!a.windows(8).any(|x| x == w), || {
                format!("a response holds 8 bytes of the private key: {}", hex(a))
            })?;
        }
    }
    Ok(format!(
        "{} responses ({sent} in the sweep of every INS × P1, P2 00..03, with and without data) hold no 8-byte window of d",
        answers.len()
    ))
}

/// SE-NFCQR-004.
pub(super) fn store_authorisation(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let sw_other = p.u16("sw_other_key", 0x6984)?;
    let sw_bad = p.u16("sw_bad", 0x6A80)?;
    let mut back = Back::new();
    let key = to_key(s, &mut back)?;
    let st = s.nfc_status()?;
    let expiry = base_time(&st) + 86_400;
    let other = Sm2PrivateKey::from_bytes(&[0x77; 32]).map_err(crypto("other key"))?;
    let other_blob = back.blob(
        Version::INTEROPERABLE,
        &other.public_key().to_bytes(),
        expiry,
    )?;
    let good = back.blob(Version::INTEROPERABLE, &key, expiry)?;
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 10);
    let mut version = good.clone();
    version[0] = 0x7F;
    let mut length = good.clone();
    length[2] ^= 0x01;
    let mut signature = good.clone();
    if let Some(last) = signature.last_mut() {
        *last ^= 0x01;
    }
    let mut out = Vec::new();
    for (what, blob, sw) in [
        ("a blob for another key", &other_blob, sw_other),
        ("a truncated blob", &truncated, sw_bad),
        ("version 7F", &version, sw_bad),
        ("a wrong field 2", &length, sw_bad),
        ("a bit of field 15 flipped", &signature, sw_bad),
    ] {
        let got = s.nfc_store(blob)?;
        ensure(got == sw, || {
            format!("STORE AUTHORISATION of {what} answered {got:04X}, not {sw:04X}")
        })?;
        ensure(s.nfc_status()? == st, || {
            format!("the refused STORE AUTHORISATION of {what} changed GET DATA")
        })?;
        out.push(format!("{what} {got:04X}"));
    }
    // The issuer's blob in two parts.
    let (first, rest) = good.split_at(200);
    let mut c = vec![0x80, 0xE2, 0x01, 0x00, first.len() as u8];
    c.extend_from_slice(first);
    let r = s.nfc_send(&c)?;
    expect_sw(&r, 0x9000, "STORE AUTHORISATION part 1 (P1 01)")?;
    let mut c = vec![0x80, 0xE2, 0x00, 0x00, rest.len() as u8];
    c.extend_from_slice(rest);
    let r = s.nfc_send(&c)?;
    expect_sw(&r, 0x9000, "STORE AUTHORISATION part 2 (P1 00)")?;
    let after = s.nfc_status()?;
    ensure(after.state == 0x02 && after.expiry == expiry, || {
        format!(
            "GET DATA after the blob: state {:02X}, field 11 {:08X}",
            after.state, after.expiry
        )
    })?;
    let sw = s.nfc_store(&good)?;
    ensure(sw == 0x9000 && s.nfc_status()? == after, || {
        format!("the same blob again with an extended Lc answered {sw:04X} or changed GET DATA")
    })?;
    to_no_key(s, &mut back)?;
    Ok(format!(
        "{}; the issuer's blob in two parts 9000, state 02 with field 11; again with an extended Lc 9000, no change",
        out.join("; ")
    ))
}

/// SE-NFCQR-005 (fixture `nfcqr`: root keys of §6 held).
pub(super) fn root_chain(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    let mut back = Back::new();
    let key = to_key(s, &mut back)?;
    let st = s.nfc_status()?;
    let ex = example(Version::INTEROPERABLE)?;
    let issuer_key = Sm2PrivateKey::from_bytes(&testing::ISSUER_D).map_err(crypto("d_iss"))?;
    let expiry = base_time(&st) + 86_400;
    let mut out = Vec::new();
    for (what, root_d, index) in [
        ("certified by another root key", [0x5C; 32], 0x01u8),
        ("naming CA index 02", testing::ROOT_D, 0x02),
    ] {
        let root_key = Sm2PrivateKey::from_bytes(&root_d).map_err(crypto("root"))?;
        let expiry_month = ex.issuer.certificate().expiry;
        let root = RootCa::new(root_key, index, expiry_month);
        let cert = root
            .certify(
                &mut back.rng,
                issuer_key.public_key(),
                &testing::certificate_request(Version::INTEROPERABLE),
            )
            .map_err(bad("certify"))?;
        let issuer =
            Issuer::new(issuer_key.clone(), cert, Version::INTEROPERABLE).map_err(bad("issuer"))?;
        let blob = back.blob_by(&issuer, &key, expiry)?;
        let sw = s.nfc_store(&blob)?;
        ensure(sw == 0x6A80, || {
            format!("a blob {what} answered {sw:04X}, not 6A80")
        })?;
        ensure(s.nfc_status()? == st, || {
            format!("the refused blob {what} changed GET DATA")
        })?;
        out.push(format!("{what} 6A80"));
    }
    Ok(format!("{}; GET DATA unchanged", out.join("; ")))
}

/// SE-NFCQR-006.
pub(super) fn blob_expiry(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    let mut back = Back::new();
    let key = to_key(s, &mut back)?;
    let t = base_time(&s.nfc_status()?) + 10;
    let stored_expiry = t + 100_000;
    let (_, blob, _) = to_authorised(s, &mut back, Version::INTEROPERABLE, Some(stored_expiry))?;
    let r = s.nfc_code(t, false)?;
    expect_sw(&r, 0x9000, "GENERATE CODE at t")?;
    let st = s.nfc_status()?;
    let before_t = back.blob(Version::INTEROPERABLE, &key, t - 1)?;
    let between = back.blob(Version::INTEROPERABLE, &key, t + 50_000)?;
    for (what, b) in [
        ("a blob expiring before t", &before_t),
        ("a blob expiring before the stored one", &between),
    ] {
        let sw = s.nfc_store(b)?;
        ensure(sw == 0x6985, || {
            format!("{what} answered {sw:04X}, not 6985")
        })?;
        ensure(s.nfc_status()? == st, || format!("{what} changed GET DATA"))?;
    }
    let sw = s.nfc_store(&blob)?;
    ensure(sw == 0x9000 && s.nfc_status()? == st, || {
        format!("the same blob again answered {sw:04X} or changed the counters")
    })?;
    let later = back.blob(Version::INTEROPERABLE, &key, stored_expiry + 1_000)?;
    let sw = s.nfc_store(&later)?;
    ensure(sw == 0x9000, || format!("a later blob answered {sw:04X}"))?;
    let after = s.nfc_status()?;
    ensure(
        after.under == 0 && after.expiry == stored_expiry + 1_000,
        || {
            format!(
                "after the later blob: codes under it {}, field 11 {:08X}",
                after.under, after.expiry
            )
        },
    )?;
    to_no_key(s, &mut back)?;
    Ok("expired at t 6985; not later than the stored 6985; the same blob 9000, no change; a later blob 9000, codes under it 0".into())
}

/// Checks signature C of `code` with the version's user ID (§2.4).
fn check_signature_c(code: &QrCode) -> Result<(), Stop> {
    let auth = &code.authorisation;
    let user = Sm2PublicKey::from_sec1_bytes(&auth.body.user_public_key)
        .map_err(|_| Stop::Fail("field 10 is not a curve point".into()))?;
    let sig = Sm2Signature::from_bytes(&code.user_signature.signature)
        .map_err(|_| Stop::Fail("field 17 is no signature".into()))?;
    user.verify(
        &ids::user_id(auth.version, &auth.body),
        &code.user_signed_bytes(),
        &sig,
    )
    .map_err(|_| Stop::Fail("signature C does not verify under the version's user ID".into()))
}

fn verifier(version: Version, rng: &mut TestRng) -> Result<Verifier, Stop> {
    example(version)?
        .verifier(VerifierConfig::default(), rng)
        .map_err(bad("the verifier"))
}

/// SE-NFCQR-007.
pub(super) fn generate_code(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let mut back = Back::new();
    let mut out = Vec::new();
    for version in versions(p)? {
        let (_, blob, st) = to_authorised(s, &mut back, version, None)?;
        let t = base_time(&st) + 1;
        let whole = s.nfc_code(t, true)?;
        expect_sw(&whole, 0x9000, "GENERATE CODE P1 01")?;
        ensure(
            whole.data.len() == 364 && whole.data.starts_with(&blob),
            || {
                format!(
                    "the whole code has {} bytes or does not start with the blob",
                    whole.data.len()
                )
            },
        )?;
        let sig = s.nfc_code(t + 1, false)?;
        expect_sw(&sig, 0x9000, "GENERATE CODE P1 00")?;
        ensure(sig.data.len() == 65 && sig.data[0] == 0x15, || {
            format!("field 17 {} is not 15 ‖ r ‖ s", hex(&sig.data))
        })?;
        let mut assembled = blob.clone();
        assembled.extend_from_slice(&(t + 1).to_be_bytes());
        assembled.extend_from_slice(&sig.data);
        let mut v = verifier(version, &mut back.rng)?;
        for (what, code, at) in [("whole", &whole.data, t), ("assembled", &assembled, t + 1)] {
            let decoded = QrCode::decode(code)
                .map_err(|e| Stop::Fail(format!("the {what} code does not decode: {e}")))?;
            check_signature_c(&decoded)?;
            v.verify(code, 100, u64::from(at) + 1).map_err(|e| {
                Stop::Fail(format!(
                    "the terminal refused the {what} code of version {:02X}: {e}",
                    version.value()
                ))
            })?;
        }
        out.push(format!("{:02X}", version.value()));
        to_no_key(s, &mut back)?;
    }
    Ok(format!(
        "versions {}: the whole code (364 B, chained) and blob ‖ time ‖ field 17 pass §3.1; signature C verifies under the version's user ID",
        out.join(", ")
    ))
}

/// SE-NFCQR-008.
pub(super) fn time_monotonic(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let sw = p.u16("sw", 0x6A80)?;
    let mut back = Back::new();
    let (_, _, st) = to_authorised(s, &mut back, Version::INTEROPERABLE, None)?;
    let t = base_time(&st) + 100;
    let r = s.nfc_code(t, false)?;
    expect_sw(&r, 0x9000, "GENERATE CODE at t")?;
    s.nfc_power_cycle()?;
    let st = s.nfc_status()?;
    let r = s.nfc_code(t - 1, false)?;
    expect_sw(&r, sw, "GENERATE CODE at t − 1 after a power cycle")?;
    ensure(s.nfc_status()? == st, || {
        "the refused GENERATE CODE changed the counters".into()
    })?;
    let r = s.nfc_code(t, false)?;
    expect_sw(&r, 0x9000, "GENERATE CODE at t again")?;
    to_no_key(s, &mut back)?;
    Ok(format!(
        "t − 1 after a power cycle {sw:04X}, counters unchanged; t again 9000"
    ))
}

/// SE-NFCQR-009.
pub(super) fn expiry(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let sw = p.u16("sw", 0x6985)?;
    let mut back = Back::new();
    let (key, _, st) = to_authorised(s, &mut back, Version::INTEROPERABLE, None)?;
    let e = st.expiry;
    let r = s.nfc_code(e + 1, false)?;
    expect_sw(&r, sw, "GENERATE CODE after field 11")?;
    let r = s.nfc_code(e, false)?;
    expect_sw(&r, 0x9000, "GENERATE CODE at field 11")?;
    let month_end = example(Version::INTEROPERABLE)?
        .issuer
        .certificate()
        .expiry
        .end();
    let month_end = u32::try_from(month_end)
        .map_err(|_| Stop::Inconclusive("the certificate month ends after 2106".into()))?;
    let beyond = back.blob(Version::INTEROPERABLE, &key, month_end + 30 * 86_400)?;
    let got = s.nfc_store(&beyond)?;
    ensure(got == 0x9000, || {
        format!("a blob beyond the certificate answered {got:04X}")
    })?;
    let r = s.nfc_code(month_end, false)?;
    expect_sw(
        &r,
        sw,
        "GENERATE CODE at the first second after the certificate's month",
    )?;
    to_no_key(s, &mut back)?;
    Ok(format!(
        "field 11 + 1 {sw:04X}; field 11 9000; the first second after the certificate month ({month_end}) {sw:04X}"
    ))
}

/// SE-NFCQR-010 (fixture `nfcqr-limit3`).
pub(super) fn code_limit(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let limit = p.u32("limit", 3)?;
    let sw = p.u16("sw", 0x9402)?;
    let mut back = Back::new();
    let (key, _, st) = to_authorised(s, &mut back, Version::INTEROPERABLE, None)?;
    ensure(st.limit == limit, || {
        format!("the card's limit is {}, the item's {limit}", st.limit)
    })?;
    let t = base_time(&st) + 1;
    for i in 0..limit {
        let r = s.nfc_code(t + i, false)?;
        expect_sw(&r, 0x9000, &format!("GENERATE CODE {}", i + 1))?;
    }
    let r = s.nfc_code(t + limit, false)?;
    expect_sw(&r, sw, "GENERATE CODE past the limit")?;
    let st = s.nfc_status()?;
    ensure(st.state == 0x03 && st.under == limit, || {
        format!(
            "GET DATA: state {:02X}, codes under it {}",
            st.state, st.under
        )
    })?;
    s.nfc_power_cycle()?;
    let r = s.nfc_code(t + limit, false)?;
    expect_sw(&r, sw, "GENERATE CODE past the limit after a power cycle")?;
    let later = back.blob(Version::INTEROPERABLE, &key, st.expiry + 1_000)?;
    let got = s.nfc_store(&later)?;
    ensure(got == 0x9000, || {
        format!("the later blob answered {got:04X}")
    })?;
    let r = s.nfc_code(t + limit, false)?;
    expect_sw(&r, 0x9000, "GENERATE CODE under the new authorisation")?;
    to_no_key(s, &mut back)?;
    Ok(format!(
        "{limit} codes 9000, then {sw:04X}; state 03; {sw:04X} after a power cycle; 9000 under a later blob"
    ))
}

/// SE-NFCQR-011.
pub(super) fn malformed(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    let mut back = Back::new();
    let (_, _, st) = to_authorised(s, &mut back, Version::INTEROPERABLE, None)?;
    let t = (base_time(&st) + 1).to_be_bytes();
    let mut code3 = vec![0x80, 0xE4, 0x00, 0x00, 0x03];
    code3.extend_from_slice(&t[..3]);
    let mut code_p1 = vec![0x80, 0xE4, 0x02, 0x00, 0x04];
    code_p1.extend_from_slice(&t);
    let mut code_p2 = vec![0x80, 0xE4, 0x00, 0x01, 0x04];
    code_p2.extend_from_slice(&t);
    let mut reset_short = vec![0x80, 0xEA, 0x00, 0x00, 0x10];
    reset_short.extend_from_slice(&[0x11; 16]);
    let mut reset_p1 = vec![0x80, 0xEA, 0x01, 0x00, 0x40];
    reset_p1.extend_from_slice(&[0x11; 64]);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "GENERATE KEY PAIR, CLA 00",
            vec![0x00, 0xE0, 0x00, 0x00, 0x00],
            0x6E00,
        ),
        (
            "GET DATA, CLA 84",
            vec![0x84, 0xCA, 0x00, 0x00, 0x00],
            0x6E00,
        ),
        (
            "GENERATE CODE, CLA 00",
            [&[0x00][..], &code3[1..]].concat(),
            0x6E00,
        ),
        ("INS 10", vec![0x80, 0x10, 0x00, 0x00, 0x00], 0x6D00),
        (
            "GENERATE KEY PAIR P1 02",
            vec![0x80, 0xE0, 0x02, 0x00, 0x00],
            0x6A86,
        ),
        (
            "GENERATE KEY PAIR P2 02",
            vec![0x80, 0xE0, 0x00, 0x02, 0x00],
            0x6A86,
        ),
        (
            "GET PUBLIC KEY P1 01",
            vec![0x80, 0xE6, 0x01, 0x00, 0x00],
            0x6A86,
        ),
        (
            "GET PUBLIC KEY P2 02",
            vec![0x80, 0xE6, 0x00, 0x02, 0x00],
            0x6A86,
        ),
        ("GET DATA P1 01", vec![0x80, 0xCA, 0x01, 0x00, 0x00], 0x6A86),
        ("GENERATE CODE P1 02", code_p1, 0x6A86),
        ("GENERATE CODE P2 01", code_p2, 0x6A86),
        (
            "STORE AUTHORISATION P1 02",
            vec![0x80, 0xE2, 0x02, 0x00, 0x01, 0x80],
            0x6A86,
        ),
        ("RESET P1 01", reset_p1, 0x6A86),
        (
            "GENERATE KEY PAIR with data",
            vec![0x80, 0xE0, 0x00, 0x00, 0x01, 0x00, 0x00],
            0x6700,
        ),
        (
            "GET DATA with data",
            vec![0x80, 0xCA, 0x00, 0x00, 0x01, 0x00, 0x00],
            0x6700,
        ),
        ("GENERATE CODE with 3 bytes", code3, 0x6700),
        ("RESET with 16 bytes", reset_short, 0x6700),
    ];
    let st = s.nfc_status()?;
    let key = s.nfc_key()?;
    for (what, c, sw) in &cases {
        let r = s.nfc_send(c)?;
        expect_sw(&r, *sw, what)?;
    }
    ensure(s.nfc_status()? == st && s.nfc_key()? == key, || {
        "a malformed command changed the state".into()
    })?;
    to_no_key(s, &mut back)?;
    Ok(format!(
        "{} malformed commands answered 6E00 / 6D00 / 6A86 / 6700; state unchanged",
        cases.len()
    ))
}

/// SE-NFCQR-012.
pub(super) fn reset(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let sw = p.u16("sw", 0x6982)?;
    let mut back = Back::new();
    let (key, _, st) = to_authorised(s, &mut back, Version::INTEROPERABLE, None)?;
    let got = s.nfc_reset(&[0x5A; 64])?;
    ensure(got == sw && s.nfc_status()? == st, || {
        format!("RESET with a bad signature answered {got:04X} or changed the state")
    })?;
    let good = back.reset_signature(Version::INTEROPERABLE, &key)?;
    let got = s.nfc_reset(&good)?;
    ensure(got == 0x9000, || {
        format!("RESET with the issuer's signature answered {got:04X}")
    })?;
    let r = s.nfc_public_key(0x01)?;
    expect_sw(&r, 0x6A88, "GET PUBLIC KEY after RESET")?;
    to_authorised(s, &mut back, Version::INTEROPERABLE, None)?;
    let got = s.nfc_reset(&good)?;
    ensure(got == sw, || {
        format!("RESET with the old key's signature answered {got:04X}, not {sw:04X}")
    })?;
    to_no_key(s, &mut back)?;
    Ok(format!(
        "a bad signature {sw:04X}, state unchanged; the issuer's 9000, GET PUBLIC KEY 6A88; the old signature on the next key {sw:04X}"
    ))
}

type Command = fn(&mut SeHarness<'_>, &mut Back) -> Result<u16, Stop>;

fn cmd_generate_key(s: &mut SeHarness<'_>, _: &mut Back) -> Result<u16, Stop> {
    Ok(s.nfc_generate_key(0x00, 0x01)?.sw.0)
}

fn cmd_store(s: &mut SeHarness<'_>, back: &mut Back) -> Result<u16, Stop> {
    let key = s.nfc_key()?;
    let blob = back.blob(
        Version::INTEROPERABLE,
        &key,
        testing::GENERATION_TIME + 86_400,
    )?;
    s.nfc_store(&blob)
}

fn cmd_code(s: &mut SeHarness<'_>, _: &mut Back) -> Result<u16, Stop> {
    Ok(s.nfc_code(testing::GENERATION_TIME + 5, true)?.sw.0)
}

fn cmd_reset(s: &mut SeHarness<'_>, back: &mut Back) -> Result<u16, Stop> {
    let key = s.nfc_key()?;
    let sig = back.reset_signature(Version::INTEROPERABLE, &key)?;
    s.nfc_reset(&sig)
}

/// The observable persistent state: GET DATA and GET PUBLIC KEY.
fn observe(s: &mut SeHarness<'_>) -> Result<(Status, Vec<u8>, u16), Stop> {
    s.nfc_select()?;
    let st = s.nfc_status()?;
    let k = s.nfc_public_key(0x01)?;
    Ok((st, k.data, k.sw.0))
}

fn copy(state: &[u8]) -> Result<SimCard, Stop> {
    sim_from_state(state, COPY_SEED)
        .map(SimCard)
        .map_err(|e| Stop::Inconclusive(e.to_string()))
}

/// SE-NFCQR-013 (simulator): a power cut at every persistent write of each command.
pub(super) fn tear(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    let mut back = Back::new();
    to_no_key(s, &mut back)?;
    let steps: [(&str, Command); 4] = [
        ("GENERATE KEY PAIR", cmd_generate_key),
        ("STORE AUTHORISATION", cmd_store),
        ("GENERATE CODE", cmd_code),
        ("RESET", cmd_reset),
    ];
    let mut cuts = 0;
    let mut out = Vec::new();
    let mut base = s
        .sim()
        .ok_or_else(|| Stop::Inconclusive("tearing needs the simulator".into()))?
        .save_state();
    for (name, op) in steps {
        let mut c = copy(&base)?;
        let (before, after, writes, next) = {
            let mut h = SeHarness::new(&mut c);
            let before = observe(&mut h)?;
            let w0 = h.sim().map(|c| c.persistent_writes()).unwrap_or(0);
            let sw = op(&mut h, &mut Back::new())?;
            ensure(sw == 0x9000, || format!("{name} answered {sw:04X}"))?;
            let w1 = h.sim().map(|c| c.persistent_writes()).unwrap_or(0);
            let after = observe(&mut h)?;
            let next = h
                .sim()
                .map(|c| c.save_state())
                .ok_or_else(|| Stop::Inconclusive("no simulator".into()))?;
            (before, after, w1 - w0, next)
        };
        ensure(writes > 0, || format!("{name} made no persistent write"))?;
        for n in 1..=writes.min(MAX_CUTS) {
            let mut c = copy(&base)?;
            let mut h = SeHarness::new(&mut c);
            h.set_quiet(true);
            h.nfc_select()?;
            if name != "GENERATE KEY PAIR" {
                h.nfc_key()?;
            }
            if let Some(card) = h.sim() {
                card.tear().arm_at(n);
            }
            match op(&mut h, &mut Back::new()) {
                Err(Stop::PowerLost) => {}
                Ok(sw) => {
                    return Err(Stop::Inconclusive(format!(
                        "{name}: the cut at write {n} did not happen ({sw:04X})"
                    )));
                }
                Err(e) => return Err(e),
            }
            h.reset()?;
            let now = observe(&mut h)?;
            ensure(now == before || now == after, || {
                format!("{name} cut at write {n}: the state is neither before nor after")
            })?;
            cuts += 1;
        }
        out.push(format!("{name} {writes}"));
        base = next;
    }
    // The applet still works: key, blob and a code on a card torn in the middle of a key.
    let mut c = copy(&base)?;
    let mut h = SeHarness::new(&mut c);
    to_authorised(&mut h, &mut back, Version::INTEROPERABLE, None)?;
    let st = h.nfc_status()?;
    let r = h.nfc_code(base_time(&st) + 1, false)?;
    expect_sw(&r, 0x9000, "GENERATE CODE after the cuts")?;
    Ok(format!(
        "{cuts} cuts (writes per command: {}); each recovered to the state before or after; the flow still runs",
        out.join(", ")
    ))
}
