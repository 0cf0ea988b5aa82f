//! Time and randomness from outside the domain: the BCD date and time a load carries, derived
//! from the caller's `now_ms`, and the operating system's generator behind `ykt_tsm::Entropy`.

use super::proposals::LOAD_TIME_OFFSET_MS;

/// `YYYYMMDDhhmmss` in BCD at `now_ms` (Unix milliseconds), in UTC+8
/// ([`LOAD_TIME_OFFSET_MS`]).
pub fn bcd_datetime(now_ms: i64) -> [u8; 7] {
    let local = now_ms.saturating_add(LOAD_TIME_OFFSET_MS).div_euclid(1000);
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999);
    let bcd = |v: i64| {
        let v = v.rem_euclid(100) as u8;
        ((v / 10) << 4) | (v % 10)
    };
    [
        bcd(y / 100),
        bcd(y % 100),
        bcd(m),
        bcd(d),
        bcd(secs / 3600),
        bcd(secs % 3600 / 60),
        bcd(secs % 60),
    ]
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The operating system's random generator (`getrandom`) as the domain's entropy source.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsEntropy;

impl ykt_tsm::Entropy for OsEntropy {
    fn fill(&mut self, out: &mut [u8]) {
        if let Err(e) = getrandom::fill(out) {
            // Without randomness no challenge, key or code can be made safely: stop here
            // rather than hand out predictable bytes.
            tracing::error!(error = %e, "the operating system's random generator failed");
            std::process::abort();
        }
    }
}

/// `n` random bytes from [`OsEntropy`].
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    ykt_tsm::Entropy::fill(&mut OsEntropy, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_time_is_china_standard_time() {
        // 2026-12-01T16:30:00Z is 2026-12-02 00:30:00 in UTC+8.
        assert_eq!(
            bcd_datetime(1_796_142_600_000),
            [0x20, 0x26, 0x12, 0x02, 0x00, 0x30, 0x00]
        );
        assert_eq!(bcd_datetime(0), [0x19, 0x70, 0x01, 0x01, 0x08, 0x00, 0x00]);
        // A leap day.
        assert_eq!(
            bcd_datetime(951_782_400_000 - 8 * 3600 * 1000),
            [0x20, 0x00, 0x02, 0x29, 0x00, 0x00, 0x00]
        );
    }
}
