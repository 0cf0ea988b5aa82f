//! The terminal's clock and money on the command line: the date and time a transaction carries
//! (BCD `YYYYMMDDhhmmss`, e-purse.md conventions) and amounts typed in yuan.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use ykt_terminal::transit::BcdDateTime;

/// China Standard Time, UTC+8: the clock transit terminals keep (no daylight saving).
pub const CST_OFFSET_SECONDS: i64 = 8 * 3600;

/// Now on the terminal's clock: the system clock shifted by `offset_seconds` from UTC.
pub fn now(offset_seconds: i64) -> anyhow::Result<BcdDateTime> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    let secs = i64::try_from(since_epoch.as_secs()).context("the system clock is out of range")?;
    from_unix(secs + offset_seconds)
}

/// The BCD date and time of a count of seconds since 1970-01-01 00:00:00 (of the same zone).
pub fn from_unix(secs: i64) -> anyhow::Result<BcdDateTime> {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    ensure!(
        (2000..=9999).contains(&year),
        "year {year} cannot be a transaction date"
    );
    let year = year as u32;
    let digits = [
        year / 100,
        year % 100,
        month,
        day,
        (rest / 3600) as u32,
        (rest / 60 % 60) as u32,
        (rest % 60) as u32,
    ];
    let mut bytes = [0u8; 7];
    for (b, d) in bytes.iter_mut().zip(digits) {
        *b = (((d / 10) << 4) | (d % 10)) as u8;
    }
    BcdDateTime::new(bytes).map_err(|e| anyhow::anyhow!("clock: {e}"))
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (the well-known era-based conversion).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses `--at YYYYMMDDhhmmss` (14 digits, a real date and time).
pub fn parse_datetime(text: &str) -> anyhow::Result<BcdDateTime> {
    ensure!(
        text.len() == 14 && text.bytes().all(|b| b.is_ascii_digit()),
        "{text:?} is not a date and time: expected 14 digits YYYYMMDDhhmmss"
    );
    let mut bytes = [0u8; 7];
    for (i, b) in bytes.iter_mut().enumerate() {
        let hi = text.as_bytes()[2 * i] - b'0';
        let lo = text.as_bytes()[2 * i + 1] - b'0';
        *b = (hi << 4) | lo;
    }
    BcdDateTime::new(bytes).map_err(|e| anyhow::anyhow!("{text:?}: {e}"))
}

/// The largest amount a purse command carries: 4 bytes of fen.
const MAX_FEN: u64 = u32::MAX as u64;

/// Parses an amount in yuan: `2`, `2.5`, `2.50`, `¥2.50` → fen. At most two decimals; no sign.
pub fn parse_yuan(text: &str) -> anyhow::Result<u32> {
    let t = text.trim().trim_start_matches('¥');
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || digits(frac)) || t.ends_with('.') {
        bail!("{text:?} is not an amount in yuan (examples: 2, 2.5, 12.30)");
    }
    ensure!(
        frac.len() <= 2,
        "{text:?} has more than two decimals: the smallest unit is one fen (0.01)"
    );
    let whole: u64 = whole
        .parse()
        .ok()
        .filter(|w| *w <= MAX_FEN / 100)
        .with_context(|| format!("{text:?} is too large"))?;
    let frac: u64 = format!("{frac:0<2}").parse().unwrap_or(0);
    let fen = whole * 100 + frac;
    u32::try_from(fen)
        .ok()
        .filter(|f| u64::from(*f) <= MAX_FEN)
        .with_context(|| format!("{text:?} is too large"))
}

/// Fen as yuan for people: `¥12.30`.
pub fn yuan(fen: u32) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_become_bcd() {
        // 2024-01-15 10:35:00 UTC = 1705314900.
        let t = from_unix(1_705_314_900).unwrap();
        assert_eq!(t.bytes(), [0x20, 0x24, 0x01, 0x15, 0x10, 0x35, 0x00]);
        // Leap day and the last second of a year.
        assert_eq!(
            from_unix(951_782_400).unwrap().bytes(),
            [0x20, 0x00, 0x02, 0x29, 0x00, 0x00, 0x00]
        );
        assert_eq!(
            from_unix(1_767_225_599).unwrap().bytes(),
            [0x20, 0x25, 0x12, 0x31, 0x23, 0x59, 0x59]
        );
        assert!(from_unix(0).is_err(), "1970 is no transaction date");
    }

    #[test]
    fn datetimes_parse_strictly() {
        assert_eq!(
            parse_datetime("20240115103500").unwrap().bytes(),
            [0x20, 0x24, 0x01, 0x15, 0x10, 0x35, 0x00]
        );
        for bad in [
            "2024011510350",
            "2024011510350a",
            "20241315103500",
            "20240115250000",
            "",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn yuan_amounts() {
        for (text, fen) in [
            ("2", 200),
            ("2.5", 250),
            ("2.50", 250),
            ("¥12.30", 1230),
            ("0.01", 1),
            ("0", 0),
            ("42949672.95", u32::MAX),
        ] {
            assert_eq!(parse_yuan(text).unwrap(), fen, "{text}");
        }
        for bad in [
            "",
            "-1",
            "1.234",
            "1.",
            ".5",
            "abc",
            "1,5",
            "42949672.96",
            "99999999999999999999",
        ] {
            assert!(parse_yuan(bad).is_err(), "{bad:?}");
        }
        assert_eq!(yuan(1230), "¥12.30");
    }
}
