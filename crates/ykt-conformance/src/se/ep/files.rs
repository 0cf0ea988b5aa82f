//! Selection, files and balance (conformance.md §4.1 SEL, FIL, BAL).

use super::*;

/// Checks the FCI layout `6F { 84 AID, A5 { 9F08, 9F0C (30 B) } }` and returns the 9F0C value.
fn check_fci(fci: &[u8], aid: &[u8]) -> Result<Vec<u8>, Stop> {
    let top = tlv::parse_all(fci).map_err(|e| Stop::Fail(format!("FCI is not BER-TLV: {e}")))?;
    ensure(top.len() == 1 && top[0].tag == tlv::Tag::new(0x6F), || {
        "FCI is not one 6F template".into()
    })?;
    let df = tlv::find(fci, 0x84).ok_or_else(|| Stop::Fail("FCI lacks 84 (DF name)".into()))?;
    ensure(df.value == aid, || {
        format!("FCI 84 is {}, expected {}", hex(&df.value), hex(aid))
    })?;
    ensure(tlv::find(fci, 0xA5).is_some(), || "FCI lacks A5".into())?;
    ensure(tlv::find(fci, 0x9F08).is_some(), || {
        "FCI lacks 9F08 (application version)".into()
    })?;
    let dd = tlv::find(fci, 0x9F0C).ok_or_else(|| Stop::Fail("FCI lacks 9F0C".into()))?;
    ensure(dd.value.len() == 30, || {
        format!("9F0C has {} bytes, not 30", dd.value.len())
    })?;
    Ok(dd.value)
}

/// SE-EP-SEL-001.
pub(in crate::se) fn select(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let partial = h(p.str("partial", "A0000006320101")?);
    let (_, fci) = s.select()?;
    let dd = check_fci(&fci, &EP_AID)?;
    let ef15 = s.ok(&read_binary(0x15), "READ BINARY EF15")?;
    ensure(dd == ef15, || {
        format!("9F0C {} differs from EF15 {}", hex(&dd), hex(&ef15))
    })?;
    let fci2 = s.ok(&commands::select(&partial), "SELECT by partial name")?;
    check_fci(&fci2, &EP_AID)?;
    Ok(format!(
        "full and partial ({}) name select the e-purse; FCI 6F/84/A5/9F08/9F0C, 9F0C = EF15",
        hex(&partial)
    ))
}

/// SE-EP-SEL-002.
pub(in crate::se) fn select_unknown(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let unknown = h(p.str("aid", "A000000632FFFFFF")?);
    s.select()?;
    let b = s.balance()?;
    let r = s.send(&commands::select(&unknown))?;
    expect_sw(&r, 0x6A82, "SELECT of an unknown AID")?;
    let b2 = s.balance()?;
    ensure(b == b2, || {
        "GET BALANCE differs after the failed SELECT".into()
    })?;
    Ok("6A82; the e-purse stays selected (GET BALANCE 9000)".into())
}

fn is_bcd(b: &[u8]) -> bool {
    b.iter().all(|x| x >> 4 <= 9 && x & 0x0F <= 9)
}

fn valid_date(d: &[u8]) -> bool {
    if d.len() != 4 || !is_bcd(d) {
        return false;
    }
    let month = (d[2] >> 4) * 10 + (d[2] & 0x0F);
    let day = (d[3] >> 4) * 10 + (d[3] & 0x0F);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// SE-EP-FIL-001.
pub(in crate::se) fn read_binary_files(s: &mut SeHarness<'_>) -> Result<String, Stop> {
    s.select()?;
    for (sfi, len) in [(0x15u8, 30usize), (0x16, 55), (0x17, 60)] {
        let d = s.ok(&read_binary(sfi), &format!("READ BINARY SFI {sfi:02X}"))?;
        ensure(d.len() == len, || {
            format!("EF{sfi:02X} has {} bytes, expected {len}", d.len())
        })?;
        if sfi == 0x15 {
            ensure(d[8] == 0x02, || {
                format!("EF15[8] (application type) is {:02X}, expected 02", d[8])
            })?;
            ensure(is_bcd(&d[10..20]), || "the ASN is not BCD".into())?;
            ensure(valid_date(&d[20..24]) && valid_date(&d[24..28]), || {
                format!(
                    "start/expiry dates {} / {} are not valid BCD dates",
                    hex(&d[20..24]),
                    hex(&d[24..28])
                )
            })?;
            ensure(d[20..24] <= d[24..28], || "start date after expiry".into())?;
        }
    }
    Ok("EF15/16/17 read by SFI: 30/55/60 bytes; EF15[8]=02; ASN and dates valid BCD".into())
}

/// SE-EP-FIL-001 (registered name).
pub(in crate::se) fn read_files(s: &mut SeHarness<'_>, _p: Params<'_>) -> Result<String, Stop> {
    read_binary_files(s)
}

/// SE-EP-FIL-002.
pub(in crate::se) fn read_records(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let depth = p.u8("depth", ykt_purse::files::EF18_RECORDS)?;
    let n = u32::from(depth) + 1;
    s.select()?;
    s.ensure_balance(n)?;
    let mut done = Vec::new();
    for _ in 0..n {
        done.push(s.purchase(1)?);
    }
    let records = s.records(0x18)?;
    ensure(records.len() == usize::from(depth), || {
        format!("EF18 holds {} records, expected {depth}", records.len())
    })?;
    for (i, r) in records.iter().enumerate() {
        let d = &done[done.len() - 1 - i];
        check_record(r, d, &format!("record {}", i + 1))?;
    }
    let r = s.send(&read_record(0x18, depth + 1))?;
    expect_sw(&r, 0x6A83, "READ RECORD past the end")?;
    Ok(format!(
        "after {n} purchases: record 1 newest, {depth} records of 23 bytes, oldest overwritten, 6A83 past the end"
    ))
}

/// SE-EP-BAL-001.
pub(in crate::se) fn balance(s: &mut SeHarness<'_>, p: Params<'_>) -> Result<String, Stop> {
    let amount = p.u32("amount", 100)?;
    s.select()?;
    s.ensure_room(amount)?;
    let b0 = s.balance()?;
    s.load(amount)?;
    let b1 = s.balance()?;
    ensure(b1 == b0 + amount, || {
        format!("GET BALANCE {b1} after loading {amount} onto {b0}")
    })?;
    let init = s.init_purchase(0, false)?;
    ensure(init.balance == b1, || {
        format!("INITIALIZE shows {} but GET BALANCE {b1}", init.balance)
    })?;
    Ok(format!(
        "80 5C 00 02 04 → 9000 + 4 bytes; {b0} + {amount} = {b1}, as INITIALIZE shows"
    ))
}
