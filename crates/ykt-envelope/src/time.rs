//! RFC 3339 timestamps (`2026-12-02T08:00:00+08:00`), as the envelope's `timestamp` carries them
//! (tsm-gp.md §7), to and from Unix milliseconds. No clock here: the time is the caller's.

use crate::error::EnvelopeError;

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian; H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// `ms` (Unix milliseconds) in RFC 3339 at the UTC offset `offset_minutes` (China: `+480`),
/// with milliseconds when they are not zero.
pub fn format(ms: i64, offset_minutes: i32) -> String {
    let local = ms + i64::from(offset_minutes) * 60_000;
    let days = local.div_euclid(86_400_000);
    let in_day = local.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    let mut out = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
    if milli != 0 {
        out.push_str(&format!(".{milli:03}"));
    }
    if offset_minutes == 0 {
        out.push('Z');
    } else {
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let o = offset_minutes.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", o / 60, o % 60));
    }
    out
}

/// The Unix milliseconds of an RFC 3339 date-time (`T` or `t`, `Z` or `±hh:mm`, up to nine
/// fraction digits, of which the first three count). Leap seconds (`:60`) are refused.
pub fn parse(s: &str) -> Result<i64, EnvelopeError> {
    let bad = || EnvelopeError::Timestamp;
    let b = s.as_bytes();
    let num = |r: core::ops::Range<usize>| -> Result<i64, EnvelopeError> {
        let part = b.get(r).ok_or_else(bad)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if b.len() < 20
        || !sep(4, b"-")
        || !sep(7, b"-")
        || !sep(10, b"Tt")
        || !sep(13, b":")
        || !sep(16, b":")
    {
        return Err(bad());
    }
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59
    {
        return Err(bad());
    }
    let mut i = 19;
    let mut milli = 0;
    if sep(i, b".") {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start || end - start > 9 {
            return Err(bad());
        }
        let digits = &b[start..end.min(start + 3)];
        milli = digits
            .iter()
            .fold(0i64, |a, x| a * 10 + i64::from(x - b'0'));
        milli *= 10i64.pow(3 - u32::try_from(digits.len()).map_err(|_| bad())?);
        i = end;
    }
    let offset = match b.get(i..) {
        Some([b'Z' | b'z']) => 0,
        Some([sign @ (b'+' | b'-'), _, _, b':', _, _]) => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 60 + om;
            if *sign == b'-' { -o } else { o }
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(y, mo, d);
    Ok(((days * 24 + h) * 60 + mi - offset) * 60_000 + se * 1000 + milli)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn known_instants() {
        // 2026-12-02T00:00:00Z = 1796169600 s (date -d @1796169600 -u).
        assert_eq!(parse("2026-12-02T00:00:00Z").unwrap(), 1_796_169_600_000);
        assert_eq!(
            parse("2026-12-02T08:00:00+08:00").unwrap(),
            1_796_169_600_000
        );
        assert_eq!(
            parse("2026-12-01T19:00:00.250-05:00").unwrap(),
            1_796_169_600_250
        );
        assert_eq!(parse("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse("2024-02-29T12:00:00Z").unwrap(), 1_709_208_000_000);
        assert_eq!(format(1_796_169_600_000, 480), "2026-12-02T08:00:00+08:00");
        assert_eq!(format(1_796_169_600_250, 0), "2026-12-02T00:00:00.250Z");
        assert_eq!(format(-1, 0), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn malformed_is_refused() {
        for s in [
            "",
            "2026-12-02",
            "2026-12-02 00:00:00Z",
            "2026-13-02T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-12-02T24:00:00Z",
            "2026-12-02T00:00:60Z",
            "2026-12-02T00:00:00",
            "2026-12-02T00:00:00+0800",
            "2026-12-02T00:00:00.Z",
            "2026-12-02T00:00:00.1234567890Z",
            "2026-12-02T00:00:00Z ",
            "+026-12-02T00:00:00Z",
        ] {
            assert_eq!(parse(s), Err(EnvelopeError::Timestamp), "{s:?}");
        }
    }

    #[test]
    fn round_trip_over_many_instants() {
        let mut ms: i64 = -62_135_596_800_000; // 0001-01-01
        while ms < 253_402_300_799_000 {
            for offset in [0, 480, -330, 840] {
                assert_eq!(parse(&format(ms, offset)).unwrap(), ms, "{ms} {offset}");
            }
            ms += 7_776_000_123; // ~90 days and a bit
        }
    }
}
