//! The QT-… checkers (conformance.md §4.12).

use std::collections::BTreeMap;

use ykt_crypto::Sm2PrivateKey;
use ykt_qr::record::{self, Mode, Record};
use ykt_qr::store::{MemoryStorage, RecordStore};
use ykt_qr::testing::{self, Example};
use ykt_qr::verify::WhitelistEntry;
use ykt_qr::{Field, Rejection, RootKeyRecord, Verifier, VerifierConfig, Version};

use super::{QtHarness, qr};
use crate::params::Params;
use crate::transcript::unhex;
use crate::verdict::{Stop, ensure};

/// The vectors of crates/ykt-qr/tests/data (format in its README).
const VECTORS: &str = include_str!("../../../ykt-qr/tests/data/qr_vectors.txt");
/// Terminal id of the harness's terminal.
const TERMINAL_ID: [u8; 6] = [0x51, 0x54, 0x00, 0x00, 0x00, 0x01];
/// The terminal's upload signing key (a test key: SM3 of nothing in particular, fixed here).
const TERMINAL_D: [u8; 32] = [0x2B; 32];
/// Fare of every harness code, in fen.
const FARE: u32 = 200;

fn name(r: &Rejection) -> String {
    let d = format!("{r:?}");
    d.split(['(', ' ', '{']).next().unwrap_or("").to_owned()
}

/// What a reopened store holds: (sequence, payload) in order, and the storage back.
type Reopened = (Vec<ykt_qr::store::StoredRecord>, MemoryStorage);

/// The payloads the store holds, from sequence 1, after a power-on.
fn stored(storage: MemoryStorage) -> Result<Reopened, String> {
    let mut store = RecordStore::open(storage, 1).map_err(|e| format!("open: {e}"))?;
    let records = store.records_from(0).map_err(|e| format!("read: {e}"))?;
    Ok((records, store.into_storage()))
}

/// QT-STO-001: the power is cut at every byte of an append (and of the append after the
/// recovery); after power-on the store holds every record appended before, the torn one
/// wholly or not at all, with consecutive sequence numbers, and appends continue the sequence
/// without a gap or a repeat.
pub(super) fn store_power_cut(q: &mut QtHarness, p: Params<'_>) -> Result<String, Stop> {
    let before = p.u32("records_before", 2)? as usize;
    let payload =
        |i: usize, len: usize| -> Vec<u8> { (0..len).map(|j| (i * 31 + j) as u8 | 0x20).collect() };
    let lens = [300usize, 300, 300, 120];
    let mut base = RecordStore::open(MemoryStorage::new(), 1)
        .map_err(|e| Stop::Inconclusive(format!("open: {e}")))?;
    for (i, len) in lens.iter().enumerate().take(before) {
        base.append(&payload(i, *len))
            .map_err(|e| Stop::Inconclusive(format!("append: {e}")))?;
    }
    let base = base.into_storage();
    let torn = payload(before, lens[before]);
    let next = payload(before + 1, lens[before + 1]);
    let frame = torn.len() + 12;
    let mut whole = 0;
    let mut dropped = 0;
    for cut in 0..=frame {
        let mut storage = base.clone();
        storage.cut_after(cut);
        let mut store =
            RecordStore::open(storage, 1).map_err(|e| Stop::Fail(format!("open: {e}")))?;
        let appended = store.append(&torn).is_ok();
        let mut storage = store.into_storage();
        storage.power_on();
        let (records, storage) = stored(storage)
            .map_err(|e| Stop::Fail(format!("cut after {cut} bytes: after power-on, {e}")))?;
        let expected: Vec<Vec<u8>> = (0..before).map(|i| payload(i, lens[i])).collect();
        let got: Vec<Vec<u8>> = records.iter().map(|(_, p)| p.clone()).collect();
        let kept = if got.len() == before + 1 {
            ensure(got[before] == torn, || {
                format!("cut after {cut} bytes: the torn record came back altered")
            })?;
            whole += 1;
            true
        } else {
            dropped += 1;
            false
        };
        ensure(got[..before.min(got.len())] == expected[..], || {
            format!("cut after {cut} bytes: a record before the cut was lost or changed")
        })?;
        ensure(!appended || kept, || {
            format!("cut after {cut} bytes: an append that reported success was lost")
        })?;
        ensure(
            records
                .iter()
                .enumerate()
                .all(|(i, (seq, _))| *seq == i as u32 + 1),
            || format!("cut after {cut} bytes: the sequence is not 1, 2, …"),
        )?;
        // The next append (shorter than the torn one) continues the sequence.
        let mut store =
            RecordStore::open(storage, 1).map_err(|e| Stop::Fail(format!("reopen: {e}")))?;
        let seq = store.append(&next).map_err(|e| {
            Stop::Fail(format!("cut after {cut} bytes: append after recovery: {e}"))
        })?;
        ensure(seq as usize == got.len() + 1, || {
            format!("cut after {cut} bytes: the next record got sequence {seq}")
        })?;
        let (records, _) = stored(store.into_storage()).map_err(|e| {
            Stop::Fail(format!("cut after {cut} bytes: after the next append, {e}"))
        })?;
        ensure(
            records.len() == got.len() + 1 && records.last().map(|r| &r.1) == Some(&next),
            || format!("cut after {cut} bytes: the record after the recovery is not kept"),
        )?;
    }
    q.note(format!("{} cut points", frame + 1));
    Ok(format!(
        "power cut at each of the {} bytes of an append after {before} records: {dropped} times the torn record dropped, {whole} times kept whole; nothing lost or duplicated; the next append continues the sequence",
        frame + 1
    ))
}

/// QT-CLK-002: a code is accepted from `generated − skew` to `generated + validity + skew`
/// (the terminal's clock), and refused one second outside, as expired or not yet valid.
pub(super) fn freshness(q: &mut QtHarness, p: Params<'_>) -> Result<String, Stop> {
    let skew = p.u32("skew", ykt_qr::verify::DEFAULT_CLOCK_SKEW)?;
    let ex = q.example(Version::INTEROPERABLE)?;
    let base = q.verifier(&ex, skew)?;
    let g = testing::GENERATION_TIME;
    let code = q.code(&ex, g)?.encode();
    let validity = u64::from(testing::VALIDITY);
    let (g, skew) = (u64::from(g), u64::from(skew));
    let cases: [(u64, Option<Rejection>, &str); 4] = [
        (g + validity + skew, None, "the last second"),
        (
            g + validity + skew + 1,
            Some(Rejection::CodeExpired),
            "one second late",
        ),
        (g - skew, None, "the earliest second"),
        (
            g - skew - 1,
            Some(Rejection::NotYetValid),
            "one second early",
        ),
    ];
    let mut out = Vec::new();
    for (now, want, what) in cases {
        let got = base.clone().verify(&code, FARE, now).map(|_| ()).err();
        ensure(got == want, || {
            format!(
                "{what} (terminal time generated {:+}): {got:?}, expected {want:?}",
                now as i64 - g as i64
            )
        })?;
        out.push(format!(
            "{:+} s {}",
            now as i64 - g as i64,
            got.map_or("accepted".to_owned(), |r| name(&r))
        ));
    }
    Ok(format!(
        "validity {validity} s, skew {skew} s: {}",
        out.join("; ")
    ))
}

/// One case of the vector file.
#[derive(Default)]
struct Case {
    name: String,
    terminal: String,
    now: u64,
    fare: u32,
    code: Vec<u8>,
    expect: String,
}

struct Vectors {
    header: BTreeMap<String, String>,
    cases: Vec<Case>,
}

fn parse_vectors(text: &str) -> Result<Vectors, Stop> {
    let mut header = BTreeMap::new();
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once(" = ")
            .ok_or_else(|| Stop::Inconclusive(format!("vector line {line:?}")))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| Stop::Inconclusive(format!("vector number {v:?}")))
        };
        match (k, cases.last_mut()) {
            ("case", _) => cases.push(Case {
                name: v.to_owned(),
                ..Case::default()
            }),
            (_, None) => {
                header.insert(k.to_owned(), v.to_owned());
            }
            ("terminal", Some(c)) => c.terminal = v.to_owned(),
            ("now", Some(c)) => c.now = num(v)?,
            ("fare", Some(c)) => {
                c.fare =
                    u32::try_from(num(v)?).map_err(|_| Stop::Inconclusive(format!("fare {v}")))?
            }
            ("code", Some(c)) => c.code = unhex(v),
            ("expect", Some(c)) => c.expect = v.to_owned(),
            (other, Some(c)) => {
                return Err(Stop::Inconclusive(format!(
                    "vector case {}: unknown key {other}",
                    c.name
                )));
            }
        }
    }
    Ok(Vectors { header, cases })
}

fn arr<const N: usize>(v: &[u8], what: &str) -> Result<[u8; N], Stop> {
    <[u8; N]>::try_from(v).map_err(|_| Stop::Inconclusive(format!("vector header {what}")))
}

/// A terminal with the vector header's parameters.
fn vector_terminal(h: &BTreeMap<String, String>) -> Result<Verifier, Stop> {
    let get = |k: &str| {
        h.get(k)
            .ok_or_else(|| Stop::Inconclusive(format!("vector header lacks {k}")))
    };
    let skew = get("skew")?
        .parse()
        .map_err(|_| Stop::Inconclusive("vector skew".into()))?;
    let mut v = Verifier::new(VerifierConfig {
        clock_skew: skew,
        ..VerifierConfig::default()
    });
    let record = RootKeyRecord::decode(&unhex(get("root_record")?))
        .map_err(|e| Stop::Inconclusive(format!("vector root record: {e}")))?;
    for version in [Version::INTEROPERABLE, Version::LOCAL] {
        v.add_root_key(version, &record).map_err(qr("root key"))?;
    }
    let wl: Vec<Vec<u8>> = get("whitelist")?.split_whitespace().map(unhex).collect();
    let [org, platform, ticket] = wl.as_slice() else {
        return Err(Stop::Inconclusive("vector whitelist".into()));
    };
    v.allow_issuer(WhitelistEntry {
        org_code: arr(org, "whitelist org")?,
        platform_id: arr(platform, "whitelist platform")?,
        ticket_type: ticket.first().copied().unwrap_or(0),
    });
    v.allow_local_org(arr(&unhex(get("local_org")?), "local_org")?);
    v.block_account(arr(&unhex(get("blacklist")?), "blacklist")?);
    Ok(v)
}

/// QT-ALG-001: every vector of crates/ykt-qr/tests/data gets its verdict (accepted, or refused
/// with the reason written there), and every 1-bit mutation of the accepted codes of versions
/// `80` and `81` is refused — but for the tag byte of field 17, which no signature covers and
/// no terminal checks (L: `ykt_qr::code::SIGNATURE_TAG`).
pub(super) fn vectors(q: &mut QtHarness, p: Params<'_>) -> Result<String, Stop> {
    let mutate = p.str("mutate", "brief-80,brief-81")?.to_owned();
    let v = parse_vectors(VECTORS)?;
    ensure(!v.cases.is_empty(), || "no vectors".into())?;
    let mut terminals: BTreeMap<String, Verifier> = BTreeMap::new();
    let mut accepted = 0;
    let mut refused = 0;
    for c in &v.cases {
        let term = match terminals.get_mut(&c.terminal) {
            Some(t) => t,
            None => {
                let t = vector_terminal(&v.header)?;
                terminals.entry(c.terminal.clone()).or_insert(t)
            }
        };
        let got = term.verify(&c.code, c.fare, c.now);
        let text = match &got {
            Ok(_) => "accept".to_owned(),
            Err(r) => format!("reject {r:?}"),
        };
        ensure(text == c.expect, || {
            format!("vector {}: {text}, expected {}", c.name, c.expect)
        })?;
        if got.is_ok() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    let mut mutations = 0;
    for case_name in mutate.split(',').map(str::trim) {
        let c = v
            .cases
            .iter()
            .find(|c| c.name == case_name)
            .ok_or_else(|| Stop::Inconclusive(format!("no vector {case_name}")))?;
        ensure(c.expect == "accept", || {
            format!("vector {case_name} is not an accepted code")
        })?;
        let base = vector_terminal(&v.header)?;
        let n = c.code.len().saturating_sub(ykt_qr::code::MIN_LEN);
        let tag = Field::UserSignature.range(n).start;
        let mut t = base.clone();
        for at in 0..c.code.len() {
            if at == tag {
                continue;
            }
            for bit in 0..8 {
                let mut m = c.code.clone();
                m[at] ^= 1 << bit;
                if t.verify(&m, c.fare, c.now).is_ok() {
                    return Err(Stop::Fail(format!(
                        "vector {case_name} with bit {bit} of byte {at} flipped was accepted"
                    )));
                }
                mutations += 1;
            }
        }
        // The unmutated code is still accepted by that terminal (nothing entered its cache).
        ensure(t.verify(&c.code, c.fare, c.now).is_ok(), || {
            format!("vector {case_name} refused after its mutations")
        })?;
    }
    q.note(format!("{mutations} mutations verified"));
    Ok(format!(
        "{} vectors: {accepted} accepted and {refused} refused as written; {mutations} 1-bit mutations of {mutate} all refused (the field-17 tag byte excepted, L)",
        v.cases.len()
    ))
}

/// QT-ALG-002: signatures A (root over the certificate), B (issuer over the authorisation)
/// and C (user over the code) broken in turn: each code is refused with its own reason.
pub(super) fn break_signatures(q: &mut QtHarness, _: Params<'_>) -> Result<String, Stop> {
    let mut out = Vec::new();
    for version in [Version::INTEROPERABLE, Version::LOCAL] {
        let ex = q.example(version)?;
        let base = q.verifier(&ex, ykt_qr::verify::DEFAULT_CLOCK_SKEW)?;
        let good = q.code(&ex, testing::GENERATION_TIME)?.encode();
        let n = good.len() - ykt_qr::code::MIN_LEN;
        let now = u64::from(testing::GENERATION_TIME) + 1;
        for (sig, field, want) in [
            ("A", Field::Certificate, Rejection::CertificateSignature),
            ("B", Field::IssuerSignature, Rejection::IssuerSignature),
            ("C", Field::UserSignature, Rejection::UserSignature),
        ] {
            // The last byte of each field is the last byte of its signature's s.
            let at = field.range(n).end - 1;
            let mut m = good.clone();
            m[at] ^= 0x01;
            let got = base.clone().verify(&m, FARE, now).map(|_| ()).err();
            ensure(got == Some(want), || {
                format!(
                    "version {:02X}, signature {sig} broken: {got:?}, expected {want:?}",
                    version.value()
                )
            })?;
            out.push(format!("{:02X} {sig} {}", version.value(), name(&want)));
        }
        ensure(base.clone().verify(&good, FARE, now).is_ok(), || {
            "the unbroken code is refused".into()
        })?;
    }
    Ok(format!("{}; unbroken codes accepted", out.join(", ")))
}

/// QT-SEC-001: a replayed code, an issuer not on the whitelist, a blacklisted account and the
/// account types DD and 04 are refused with their reasons; a fresh valid code is accepted.
pub(super) fn lists(q: &mut QtHarness, _: Params<'_>) -> Result<String, Stop> {
    let version = Version::INTEROPERABLE;
    let ex = q.example(version)?;
    let g = testing::GENERATION_TIME;
    let now = u64::from(g) + 1;
    let mut t = q.verifier(&ex, ykt_qr::verify::DEFAULT_CLOCK_SKEW)?;
    let code = q.code(&ex, g)?.encode();
    t.verify(&code, FARE, now)
        .map_err(|e| Stop::Fail(format!("a fresh valid code was refused: {e}")))?;
    let mut out = vec!["fresh code accepted".to_owned()];
    let mut expect = |what: &str, got: Result<(), Rejection>, want: Rejection| {
        ensure(got == Err(want), || {
            format!("{what}: {got:?}, expected {want:?}")
        })?;
        out.push(format!("{what} {}", name(&want)));
        Ok::<(), Stop>(())
    };
    expect(
        "replay",
        t.verify(&code, FARE, now).map(|_| ()),
        Rejection::Replay,
    )?;
    // No whitelist entry: a terminal with the root key and nothing else.
    let record = ex.root.record(&mut q.rng).map_err(qr("root record"))?;
    let mut bare = Verifier::new(VerifierConfig::default());
    bare.add_root_key(version, &record)
        .map_err(qr("root key"))?;
    let fresh = q.code(&ex, g + 1)?.encode();
    expect(
        "issuer not whitelisted",
        bare.verify(&fresh, FARE, now).map(|_| ()),
        Rejection::IssuerNotWhitelisted,
    )?;
    let mut blocked = q.verifier(&ex, ykt_qr::verify::DEFAULT_CLOCK_SKEW)?;
    blocked.block_account(testing::USER_ACCOUNT);
    expect(
        "blacklisted account",
        blocked.verify(&fresh, FARE, now).map(|_| ()),
        Rejection::AccountBlacklisted,
    )?;
    for ty in [
        ykt_qr::verify::REFUSED_ACCOUNT_TYPE,
        ykt_qr::verify::TEST_ACCOUNT_TYPE,
    ] {
        let mut terms = testing::terms();
        terms.account_type = ty;
        let typed = Example::new(version, &terms, &mut q.rng).map_err(qr("the chain"))?;
        let code = q.code(&typed, g)?.encode();
        let mut t = q.verifier(&typed, ykt_qr::verify::DEFAULT_CLOCK_SKEW)?;
        expect(
            &format!("account type {ty:02X}"),
            t.verify(&code, FARE, now).map(|_| ()),
            Rejection::AccountTypeRefused(ty),
        )?;
    }
    let fresh2 = q.code(&ex, g + 2)?.encode();
    t.verify(&fresh2, FARE, now + 1)
        .map_err(|e| Stop::Fail(format!("a fresh valid code after the refusals: {e}")))?;
    Ok(format!(
        "{}; a fresh code accepted after them",
        out.join("; ")
    ))
}

/// QT-COM-001: the terminal works offline for `codes` accepted codes, keeping each record in
/// its store; after a power cycle it uploads them: the records come out of the store in
/// sequence order, each once, as the JSON lines of the accepted codes, and the batch
/// signature verifies with the terminal's key (a tampered batch does not).
pub(super) fn upload(q: &mut QtHarness, p: Params<'_>) -> Result<String, Stop> {
    let codes = p.u32("codes", 6)?;
    let ex = q.example(Version::INTEROPERABLE)?;
    let mut t = q.verifier(&ex, ykt_qr::verify::DEFAULT_CLOCK_SKEW)?;
    let mut store = RecordStore::open(MemoryStorage::new(), 1)
        .map_err(|e| Stop::Inconclusive(format!("open: {e}")))?;
    let mut records = Vec::new();
    for i in 0..codes {
        // One ride every ten minutes: each code read a second after it was made.
        let g = testing::GENERATION_TIME + i * 600;
        let code = q.code(&ex, g)?.encode();
        let now = u64::from(g) + 1;
        let accepted = t
            .verify(&code, FARE, now)
            .map_err(|e| Stop::Fail(format!("code {i} refused: {e}")))?;
        let seq = store.next_sequence();
        let r = Record::new(
            &accepted,
            seq,
            TERMINAL_ID,
            now,
            Mode::Single,
            t.parameter_versions(),
        );
        let got = store
            .append(r.to_json_line().as_bytes())
            .map_err(|e| Stop::Fail(format!("append: {e}")))?;
        ensure(got == seq, || format!("record {i} got sequence {got}"))?;
        records.push(r);
    }
    let storage = store.into_storage();
    let (stored, _) = stored(storage).map_err(|e| Stop::Fail(format!("after power-on, {e}")))?;
    ensure(stored.len() == records.len(), || {
        format!(
            "{} records stored, {} accepted",
            stored.len(),
            records.len()
        )
    })?;
    for ((seq, payload), r) in stored.iter().zip(&records) {
        ensure(
            *seq == r.sequence && payload == r.to_json_line().as_bytes(),
            || format!("stored record {seq} is not the record of the code accepted"),
        )?;
    }
    let key = Sm2PrivateKey::from_bytes(&TERMINAL_D)
        .map_err(|e| Stop::Inconclusive(format!("terminal key: {e}")))?;
    let batch = record::seal(&records, &key, &mut q.rng)
        .map_err(|e| Stop::Inconclusive(format!("seal: {e}")))?;
    let first = records.first().map_or(1, |r| r.sequence);
    let n = record::open(&batch, key.public_key(), first)
        .map_err(|e| Stop::Fail(format!("the host refused the batch: {e}")))?;
    ensure(n == records.len(), || {
        format!("the host counted {n} records, {} were sent", records.len())
    })?;
    ensure(record::flag_replays(&records).is_empty(), || {
        "the host found a code twice".into()
    })?;
    let mut tampered = batch.clone();
    if let Some(b) = tampered.iter_mut().find(|b| b.is_ascii_digit()) {
        *b = if *b == b'9' { b'8' } else { *b + 1 };
    }
    ensure(
        record::open(&tampered, key.public_key(), first).is_err(),
        || "a tampered batch was accepted".into(),
    )?;
    Ok(format!(
        "{n} records uploaded from the store in order {first}..{}, each once; the batch signature verifies, a tampered batch does not",
        first + n as u32 - 1
    ))
}

/// The parameter files of crates/ykt-qr/tests/data, built with Python's hashlib (its README):
/// 4026 version 2 (the §6 root key for versions 80 and 81, and the S5 key) and 4020 version 7
/// (the §6 issuer → ticket type 01).
const TABLE_4026: &str = include_str!("../../../ykt-qr/tests/data/tables_4026_hashlib.hex");
const TABLE_4020: &str = include_str!("../../../ykt-qr/tests/data/tables_4020_hashlib.hex");

/// QT-COM-002: the parameter downloads 4026 and 4020 (qr-code.md §2.3) are applied whole or
/// not at all: a file whose SHA-1 does not match, a truncated file and an older version are
/// refused with the terminal's tables unchanged; the good files replace both tables, and the
/// new whitelist's ticket type is the one a code now maps to.
pub(super) fn parameter_files(q: &mut QtHarness, _: Params<'_>) -> Result<String, Stop> {
    use ykt_qr::cert::RootKeyEntry;
    use ykt_qr::record::ParameterVersions;
    use ykt_qr::tables::{self, RootKeyTable, WhitelistTable};
    use ykt_qr::verify::WhitelistRecord;

    let version = Version::INTEROPERABLE;
    let ex = q.example(version)?;
    let g = testing::GENERATION_TIME;
    let now = u64::from(g) + 1;
    let code = q.code(&ex, g)?.encode();
    // Version 1 of both tables, as the terminal holds them before the download: the §6 root
    // key, the §6 issuer mapped to ticket type 09.
    let record = ex.root.record(&mut q.rng).map_err(qr("root record"))?;
    let old_roots = RootKeyTable::new(1, vec![RootKeyEntry { version, record }])
        .and_then(|t| t.encode())
        .map_err(|e| Stop::Inconclusive(format!("the version 1 4026: {e}")))?;
    let mut issuer = [0xFF; 8];
    issuer[..4].copy_from_slice(&testing::ORG_CODE);
    let old_list = WhitelistTable::new(
        1,
        vec![WhitelistRecord {
            issuer,
            platform: testing::PLATFORM_ID,
            card_type: 0,
            ticket_type: 0x09,
        }],
    )
    .encode()
    .map_err(|e| Stop::Inconclusive(format!("the version 1 4020: {e}")))?;
    let mut t = Verifier::new(VerifierConfig::default());
    tables::apply_files(&mut t, Some(&old_roots), Some(&old_list))
        .map_err(|e| Stop::Fail(format!("the version 1 tables were refused: {e}")))?;
    let held = |t: &Verifier, want: (u32, u32), ticket: u8, what: &str| {
        let v = t.parameter_versions();
        let got = t.clone().verify(&code, FARE, now).map(|a| a.ticket_type);
        ensure(
            (v.root_keys, v.whitelist) == want && got == Ok(Some(ticket)),
            || {
                format!(
                    "{what}: versions ({}, {}), the code gives {got:?}; expected {want:?} and ticket type {ticket:02X}",
                    v.root_keys, v.whitelist
                )
            },
        )
    };
    held(&t, (1, 1), 0x09, "before the download")?;

    let (good_roots, good_list) = (unhex(TABLE_4026), unhex(TABLE_4020));
    let mut out = Vec::new();
    let mut refused = |t: &mut Verifier,
                       what: &str,
                       roots: &[u8],
                       list: &[u8],
                       want: (u32, u32),
                       ticket: u8|
     -> Result<(), Stop> {
        let r = tables::apply_files(t, Some(roots), Some(list));
        let e = r
            .err()
            .ok_or_else(|| Stop::Fail(format!("{what}: applied")))?;
        held(t, want, ticket, what)?;
        out.push(format!("{what} refused ({e})"));
        Ok(())
    };
    let mut bad_sha = good_roots.clone();
    bad_sha[12] ^= 0x01;
    refused(
        &mut t,
        "4026 with a bad SHA-1",
        &bad_sha,
        &good_list,
        (1, 1),
        0x09,
    )?;
    let cut = &good_list[..good_list.len() - 1];
    refused(&mut t, "truncated 4020", &good_roots, cut, (1, 1), 0x09)?;

    let applied = tables::apply_files(&mut t, Some(&good_roots), Some(&good_list))
        .map_err(|e| Stop::Fail(format!("the good files were refused: {e}")))?;
    ensure(
        applied
            == ParameterVersions {
                root_keys: 2,
                whitelist: 7,
                blacklist: 0,
            },
        || format!("after the download: {applied:?}"),
    )?;
    held(&t, (2, 7), 0x01, "after the download")?;
    refused(
        &mut t,
        "older version 1",
        &old_roots,
        &old_list,
        (2, 7),
        0x01,
    )?;
    Ok(format!(
        "{}; 4026 v2 and 4020 v7 applied, the new whitelist in force (ticket type 01)",
        out.join("; ")
    ))
}
