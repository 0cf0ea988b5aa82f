//! SE-GP items: GET DATA, GET STATUS (with paging), SET STATUS refusals, PUT KEY refusals
//! (GP Card Specification v2.3.1 §11.3, §11.4, §11.8, §11.10; tsm-gp.md §3).

use ykt_apdu::CommandApdu;
use ykt_crypto::{AesKey, Sm4Key, TdesKey, cbc_encrypt, ecb_encrypt};
use ykt_gp::{ISD_AID, ISD_PRIVILEGES};
use ykt_scp::{KeySet, SecurityLevel, StaticKeys};

use super::{
    Channel, SW_MORE, get_data, get_status, key_type, parse_key_information, single, tlvs,
};
use crate::isd::IsdChannel;
use crate::params::Params;
use crate::se::{SeHarness, expect_sw};
use crate::transcript::hex;
use crate::verdict::{Stop, ensure};

/// The highest level the channel supports (33 for SCP03 and SM4, 03 for SCP02 `i` = 55).
fn top_level(s: &SeHarness<'_>) -> Result<SecurityLevel, Stop> {
    let protocol = s.isd_protocol()?;
    Ok(if protocol.check_level(SecurityLevel::ALL).is_ok() {
        SecurityLevel::ALL
    } else {
        SecurityLevel::C_DEC_C_MAC
    })
}

/// Checks the five GET DATA objects; returns them in order 66, E0, 9F7F, 42, 45.
fn check_data_objects(s: &SeHarness<'_>, objects: &[Vec<u8>]) -> Result<(), Stop> {
    let [crd, ki, cplc, iin, cin] = objects else {
        return Err(Stop::Inconclusive("five GET DATA objects expected".into()));
    };
    let protocol = s.isd_protocol()?;
    let keys = s.isd_keys()?;
    let body = single(crd, 0x66, "GET DATA 66")?;
    let inner = single(&body, 0x73, "GET DATA 66 (template 73)")?;
    let gp_oid = [0x06, 0x07, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x01];
    ensure(inner.starts_with(&gp_oid), || {
        format!(
            "card recognition data {} does not start with the GP OID",
            hex(crd)
        )
    })?;
    let scp = [
        0x2A,
        0x86,
        0x48,
        0x86,
        0xFC,
        0x6B,
        0x04,
        protocol.scp_id(),
        protocol.i(),
    ];
    ensure(inner.windows(scp.len()).any(|w| w == scp), || {
        format!(
            "card recognition data {} announces no SCP {:02X} i={:02X}",
            hex(crd),
            protocol.scp_id(),
            protocol.i()
        )
    })?;
    let entries = parse_key_information(ki)?;
    let ty = key_type(s.isd_channel()?);
    for id in 1..=3u8 {
        ensure(entries.contains(&[id, keys.version, ty, 16]), || {
            format!(
                "key information {} lacks key {id} of KVN {:02X}, type {ty:02X}, 16 bytes",
                hex(ki),
                keys.version
            )
        })?;
    }
    let c = single(cplc, 0x9F7F, "GET DATA 9F7F")?;
    ensure(c.len() == 42, || {
        format!("CPLC has {} bytes, not 42", c.len())
    })?;
    for (obj, tag, name) in [(iin, 0x42, "IIN"), (cin, 0x45, "CIN")] {
        let v = single(obj, tag, name)?;
        ensure((1..=16).contains(&v.len()), || {
            format!("{name} has {} bytes, not 1..16", v.len())
        })?;
    }
    Ok(())
}

const TAGS: [u16; 5] = [0x0066, 0x00E0, 0x9F7F, 0x0042, 0x0045];

/// SE-GP-DATA-001: GET DATA 66, E0, 9F7F, 42 and 45, plain and through the channel at its
/// highest level, agree and are well formed.
pub(in crate::se) fn get_data_objects(
    s: &mut SeHarness<'_>,
    _: Params<'_>,
) -> Result<String, Stop> {
    s.select_isd()?;
    let mut plain = Vec::new();
    for tag in TAGS {
        plain.push(s.ok(&get_data(tag), &format!("GET DATA {tag:02X}"))?);
    }
    check_data_objects(s, &plain)?;
    let level = top_level(s)?;
    let mut ch = s.open_channel(level)?;
    for (tag, expected) in TAGS.iter().zip(&plain) {
        let d = s.wrapped_ok(
            &mut ch,
            &get_data(*tag),
            &format!("wrapped GET DATA {tag:02X}"),
        )?;
        ensure(&d == expected, || {
            format!(
                "wrapped GET DATA {tag:02X} gave {}, plain {}",
                hex(&d),
                hex(expected)
            )
        })?;
    }
    Ok(format!(
        "66, E0, 9F7F (42 bytes), 42, 45 well formed; the same through the channel at level {:02X}",
        level.to_byte()
    ))
}

/// GET STATUS `p1` (TLV format) through `ch`, following `6310` with "next occurrence"; the
/// entries (E3 values) and the number of parts.
fn listing(s: &mut SeHarness<'_>, ch: &mut Channel, p1: u8) -> Result<(Vec<Vec<u8>>, usize), Stop> {
    let mut entries = Vec::new();
    let mut p2 = 0x02;
    for part in 1..=32usize {
        let r = s.wrapped(ch, &get_status(p1, p2))?;
        if r.sw.0 != SW_MORE {
            expect_sw(&r, 0x9000, &format!("GET STATUS {p1:02X} part {part}"))?;
        }
        let list = tlvs(&r.data).ok_or_else(|| {
            Stop::Fail(format!("GET STATUS {p1:02X}: malformed {}", hex(&r.data)))
        })?;
        ensure(!list.is_empty(), || {
            format!("GET STATUS {p1:02X} part {part} is empty")
        })?;
        for (t, v) in list {
            ensure(t == 0xE3, || {
                format!("GET STATUS entry tag {t:02X}, not E3")
            })?;
            entries.push(v);
        }
        if r.sw.0 != SW_MORE {
            return Ok((entries, part));
        }
        p2 = 0x03;
    }
    Err(Stop::Fail(
        "GET STATUS still answered 6310 after 32 parts".into(),
    ))
}

fn field(entry: &[u8], tag: u16) -> Option<Vec<u8>> {
    tlvs(entry)?
        .into_iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v)
}

/// SE-GP-STAT-001/002: GET STATUS of the ISD (SECURED or another card state, privileges
/// `9E FE 80`) and of the applications in as many parts as the card needs, every part but the
/// last with `6310`; a "next occurrence" with nothing pending is `6A88`. With `min_parts` the
/// listing must come in at least that many parts.
pub(in crate::se) fn get_status_listing(
    s: &mut SeHarness<'_>,
    p: Params<'_>,
) -> Result<String, Stop> {
    let min_parts = p.u32("min_parts", 1)? as usize;
    let mut ch = s.open_channel(SecurityLevel::C_MAC)?;
    let (isd, _) = listing(s, &mut ch, 0x80)?;
    let [entry] = isd.as_slice() else {
        return Err(Stop::Fail(format!(
            "GET STATUS 80 gave {} entries, not 1",
            isd.len()
        )));
    };
    ensure(field(entry, 0x4F).as_deref() == Some(&ISD_AID[..]), || {
        format!("GET STATUS 80 entry {} does not name the ISD", hex(entry))
    })?;
    let state = field(entry, 0x9F70).unwrap_or_default();
    ensure(
        matches!(state.as_slice(), [0x01 | 0x07 | 0x0F | 0x7F]),
        || format!("card life cycle {} is not a GP card state", hex(&state)),
    )?;
    ensure(
        field(entry, 0xC5).as_deref() == Some(&ISD_PRIVILEGES[..]),
        || format!("ISD privileges in {} are not 9EFE80", hex(entry)),
    )?;
    let (apps, parts) = listing(s, &mut ch, 0x40)?;
    let mut aids = Vec::new();
    for e in &apps {
        let aid = field(e, 0x4F)
            .ok_or_else(|| Stop::Fail(format!("application entry {} has no 4F", hex(e))))?;
        ensure(field(e, 0x9F70).is_some(), || {
            format!("entry {} has no life cycle 9F70", hex(e))
        })?;
        ensure(!aids.contains(&aid), || {
            format!("AID {} listed twice", hex(&aid))
        })?;
        aids.push(aid);
    }
    if p.bool("epurse", true)? {
        ensure(aids.iter().any(|a| a == &ykt_purse::EP_AID), || {
            "the e-purse A000000632010105 is not in the registry".into()
        })?;
    }
    ensure(parts >= min_parts, || {
        format!("the listing came in {parts} part(s), expected at least {min_parts}")
    })?;
    let r = s.wrapped(&mut ch, &get_status(0x40, 0x03))?;
    expect_sw(
        &r,
        0x6A88,
        "GET STATUS next occurrence with nothing pending",
    )?;
    Ok(format!(
        "ISD: state {}, privileges 9EFE80; {} application(s) in {parts} part(s); next occurrence afterwards 6A88",
        hex(&state),
        aids.len()
    ))
}

/// SE-GP-LCS-001: SET STATUS transitions GP forbids are refused and change nothing: SECURED →
/// OP_READY, SECURED → INITIALIZED, a coding that is no card state, and unlocking an
/// application that is not locked.
pub(in crate::se) fn set_status_forbidden(
    s: &mut SeHarness<'_>,
    _: Params<'_>,
) -> Result<String, Stop> {
    let mut ch = s.open_channel(SecurityLevel::C_MAC)?;
    let state = |s: &mut SeHarness<'_>, ch: &mut Channel| -> Result<Vec<u8>, Stop> {
        let (isd, _) = listing(s, ch, 0x80)?;
        Ok(isd
            .first()
            .and_then(|e| field(e, 0x9F70))
            .unwrap_or_default())
    };
    let before = state(s, &mut ch)?;
    if before != [0x0F] {
        return Err(Stop::Inconclusive(format!(
            "the card life cycle is {}, not SECURED (0F)",
            hex(&before)
        )));
    }
    let (apps, _) = listing(s, &mut ch, 0x40)?;
    let mut out = Vec::new();
    for (p2, name, expected) in [
        (0x01, "SECURED → OP_READY", 0x6985),
        (0x07, "SECURED → INITIALIZED", 0x6985),
        (0x03, "SECURED → 03 (no card state)", 0x6A80),
    ] {
        let r = s.wrapped(&mut ch, &CommandApdu::new(0x80, 0xF0, 0x80, p2))?;
        expect_sw(&r, expected, &format!("SET STATUS {name}"))?;
        out.push(format!("{name} {:04X}", r.sw.0));
    }
    if let Some((aid, app_state)) = apps
        .iter()
        .filter_map(|e| Some((field(e, 0x4F)?, field(e, 0x9F70)?)))
        .find(|(_, st)| st.first().is_some_and(|b| b & 0x80 == 0))
    {
        let cmd = CommandApdu::new(0x80, 0xF0, 0x40, 0x00).with_data(aid.clone());
        let r = s.wrapped(&mut ch, &cmd)?;
        expect_sw(
            &r,
            0x6985,
            &format!("SET STATUS unlock of unlocked {}", hex(&aid)),
        )?;
        out.push(format!("unlock of unlocked {} 6985", hex(&aid)));
        let (after, _) = listing(s, &mut ch, 0x40)?;
        let now = after
            .iter()
            .find(|e| field(e, 0x4F).as_deref() == Some(&aid[..]))
            .and_then(|e| field(e, 0x9F70));
        ensure(now.as_deref() == Some(&app_state[..]), || {
            format!("the refused unlock changed {}'s state", hex(&aid))
        })?;
    }
    let after = state(s, &mut ch)?;
    ensure(after == before, || {
        format!(
            "the card life cycle went {} → {}",
            hex(&before),
            hex(&after)
        )
    })?;
    Ok(format!("{}; card state still 0F", out.join("; ")))
}

/// How a PUT KEY command is spoilt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spoil {
    Kcv,
    KeyType,
    Truncated,
}

/// The check value of a 16-byte key of the channel's type (GP §11.1.8; SM4: L,
/// `ykt_gp::commands::put_key::SM4_KCV_INPUT_BYTE`).
pub(super) fn kcv(channel: IsdChannel, key: &[u8; 16]) -> Result<Vec<u8>, Stop> {
    let bad = |e: ykt_crypto::Error| Stop::Inconclusive(format!("KCV: {e}"));
    let block = match channel {
        IsdChannel::Scp02 => ecb_encrypt(&TdesKey::from_slice(key).map_err(bad)?, &[0u8; 8]),
        IsdChannel::Scp03 => ecb_encrypt(&AesKey::from_slice(key).map_err(bad)?, &[0x01; 16]),
        IsdChannel::Sm4 => ecb_encrypt(
            &Sm4Key::from_slice(key).map_err(bad)?,
            &[ykt_gp::commands::put_key::SM4_KCV_INPUT_BYTE; 16],
        ),
    }
    .map_err(bad)?;
    Ok(block[..3].to_vec())
}

/// PUT KEY data adding `kvn` with `new` keys (GP §11.8.2.3, Amendment D §7.2): DES blocks
/// `80 10 <3DES-ECB(session DEK)> 03 KCV`; AES and SM4 blocks `88 11 10 <CBC(K-DEK)> 03 KCV`.
fn put_key_data(
    channel: IsdChannel,
    ch: &Channel,
    keys: &KeySet,
    kvn: u8,
    new: &[[u8; 16]; 3],
    spoil: Spoil,
) -> Result<Vec<u8>, Stop> {
    let bad = |e: ykt_crypto::Error| Stop::Inconclusive(format!("key encryption: {e}"));
    let mut data = vec![kvn];
    for (i, key) in new.iter().enumerate() {
        let encrypted = match &keys.keys {
            StaticKeys::Tdes { .. } => {
                let dek = ch
                    .session
                    .scp02_session_dek()
                    .ok_or_else(|| Stop::Inconclusive("no SCP02 session DEK".into()))?;
                ecb_encrypt(dek, key).map_err(bad)?
            }
            StaticKeys::Aes { dek, .. } => cbc_encrypt(dek, &[0u8; 16], key).map_err(bad)?,
            StaticKeys::Sm4 { dek, .. } => cbc_encrypt(dek, &[0u8; 16], key).map_err(bad)?,
        };
        let mut ty = key_type(channel);
        if spoil == Spoil::KeyType && i == 0 {
            ty = if ty == 0x80 { 0x88 } else { 0x80 };
        }
        let mut block = if ty == 0x80 {
            vec![0x80, 0x10]
        } else {
            vec![ty, 0x11, 0x10]
        };
        block.extend_from_slice(&encrypted);
        let mut check = kcv(channel, key)?;
        if spoil == Spoil::Kcv && i == 1 {
            check[0] ^= 0x01;
        }
        block.push(0x03);
        block.extend_from_slice(&check);
        if spoil == Spoil::Truncated && i == 2 {
            block.truncate(block.len() - 10);
        }
        data.extend_from_slice(&block);
    }
    Ok(data)
}

/// SE-GP-KEY-002: PUT KEY with a wrong KCV, a key block of the wrong key type and a truncated
/// key block are refused and leave the keys as they were: the key information is unchanged,
/// the new key version cannot open a channel, and the old keys still can.
pub(in crate::se) fn put_key_refused(s: &mut SeHarness<'_>, _: Params<'_>) -> Result<String, Stop> {
    let channel = s.isd_channel()?;
    let keys = s.isd_keys()?;
    s.select_isd()?;
    let before = s.key_information()?;
    let kvn = (0x70..=0x7Fu8)
        .rev()
        .find(|v| before.iter().all(|e| e[1] != *v))
        .ok_or_else(|| Stop::Inconclusive("no free key version in 70..7F".into()))?;
    let new = [[0x5A; 16], [0x6B; 16], [0x7C; 16]];
    let mut out = Vec::new();
    for (spoil, name) in [
        (Spoil::Kcv, "wrong KCV"),
        (Spoil::KeyType, "wrong key type"),
        (Spoil::Truncated, "truncated key block"),
    ] {
        let mut ch = s.open_channel(SecurityLevel::C_DEC_C_MAC)?;
        let data = put_key_data(channel, &ch, &keys, kvn, &new, spoil)?;
        let cmd = CommandApdu::new(0x80, 0xD8, 0x00, 0x81)
            .with_data(data)
            .with_le(256);
        let r = s.wrapped(&mut ch, &cmd)?;
        ensure(!r.sw.is_success(), || {
            format!("PUT KEY with a {name} was accepted")
        })?;
        s.select_isd()?;
        let now = s.key_information()?;
        ensure(now == before, || {
            format!(
                "PUT KEY with a {name} ({:04X}) changed the key information",
                r.sw.0
            )
        })?;
        out.push(format!("{name} {:04X}", r.sw.0));
    }
    let spoilt = keys_for(channel, kvn, &new)?;
    s.select_isd()?;
    let challenge = [0x11; 8];
    let iu = CommandApdu::new(0x80, 0x50, spoilt.version, 0x00)
        .with_data(challenge.to_vec())
        .with_le(256);
    let sw = s.sw(&iu)?;
    ensure(sw != 0x9000, || {
        format!("INITIALIZE UPDATE with the refused key version {kvn:02X} answered 9000")
    })?;
    s.open_channel(SecurityLevel::C_MAC)?;
    Ok(format!(
        "{}; key information unchanged; KVN {kvn:02X} absent ({sw:04X}); the old keys still open",
        out.join("; ")
    ))
}

fn keys_for(channel: IsdChannel, kvn: u8, new: &[[u8; 16]; 3]) -> Result<KeySet, Stop> {
    channel
        .key_set(kvn, &new[0])
        .map_err(|e| Stop::Inconclusive(format!("key set: {e}")))
}
