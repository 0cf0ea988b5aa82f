//! A model of a terminal's clock: an offset and a drift rate against true time.
//!
//! Verification takes the terminal's reading of its own clock as an argument
//! ([`crate::Verifier::verify`]); tests and simulations get that reading from a
//! [`DriftingClock`] to show which drifts the configured skew tolerates.

/// A clock that was `offset` seconds off at `epoch` (true Unix time) and gains `drift_ppm`
/// microseconds per second since (negative values: behind, losing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DriftingClock {
    /// True Unix time at which the offset was measured.
    pub epoch: u64,
    /// Seconds the clock was ahead (positive) or behind (negative) at `epoch`.
    pub offset: i64,
    /// Drift in parts per million (a typical uncorrected quartz clock: ±20 ppm, about
    /// ±1.7 s a day).
    pub drift_ppm: i64,
}

impl DriftingClock {
    /// A clock that is exactly right.
    pub const EXACT: Self = Self {
        epoch: 0,
        offset: 0,
        drift_ppm: 0,
    };

    /// What the clock shows at true time `true_time` (floored to whole seconds, never
    /// below 0).
    pub fn reading(&self, true_time: u64) -> u64 {
        let elapsed = i128::from(true_time) - i128::from(self.epoch);
        let drift = (elapsed * i128::from(self.drift_ppm)).div_euclid(1_000_000);
        let shown = i128::from(true_time) + i128::from(self.offset) + drift;
        u64::try_from(shown.max(0)).unwrap_or(u64::MAX)
    }
}
