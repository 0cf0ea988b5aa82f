//! The clock window (§3.1 steps 7–8): validity ± skew ± 1 s at exact boundaries, the
//! authorisation expiry, and a drifting terminal clock.

use ykt_qr::clock::DriftingClock;
use ykt_qr::testing::{AUTHORISATION_EXPIRY, GENERATION_TIME, TestRng, VALIDITY};
use ykt_qr::{Rejection, VerifierConfig, Version};

use crate::common::{code, example, verifier, verifier_with};

const G: u64 = GENERATION_TIME as u64;
const V: u64 = VALIDITY as u64;

fn config(skew: u32) -> VerifierConfig {
    VerifierConfig {
        clock_skew: skew,
        ..VerifierConfig::default()
    }
}

fn at(skew: u32, now: u64) -> Result<(), Rejection> {
    let ex = example(Version::INTEROPERABLE);
    let bytes = code(&ex, GENERATION_TIME).encode();
    verifier_with(&ex, config(skew))
        .verify(&bytes, 100, now)
        .map(|_| ())
}

#[test]
fn boundaries_of_validity_and_skew() {
    for skew in [0u32, 1, 30, 120] {
        let s = u64::from(skew);
        // Oldest accepted: generated + validity + skew; one second later it has expired.
        assert_eq!(at(skew, G + V + s), Ok(()), "skew {skew}");
        assert_eq!(
            at(skew, G + V + s + 1),
            Err(Rejection::CodeExpired),
            "skew {skew}"
        );
        // Earliest accepted: generated − skew; one second before it is not yet valid.
        assert_eq!(at(skew, G - s), Ok(()), "skew {skew}");
        assert_eq!(
            at(skew, G - s - 1),
            Err(Rejection::NotYetValid),
            "skew {skew}"
        );
        // Validity without the skew is always inside.
        assert_eq!(at(skew, G + V), Ok(()));
        assert_eq!(at(skew, G), Ok(()));
    }
}

#[test]
fn the_default_skew_is_30_s() {
    assert_eq!(VerifierConfig::default().clock_skew, 30);
    assert_eq!(ykt_qr::verify::DEFAULT_CLOCK_SKEW, 30);
}

#[test]
fn authorisation_expiry_is_exact() {
    let ex = example(Version::INTEROPERABLE);
    let exp = u64::from(AUTHORISATION_EXPIRY);
    // A code generated at the last second of the authorisation is usable at that second only
    // up to the authorisation's end.
    let last = code(&ex, AUTHORISATION_EXPIRY).encode();
    assert!(verifier(&ex).verify(&last, 100, exp).is_ok());
    assert_eq!(
        verifier(&ex).verify(&last, 100, exp + 1),
        Err(Rejection::AuthorisationExpired)
    );
    // The wallet refuses to date a code after the authorisation.
    assert!(matches!(
        ex.code(AUTHORISATION_EXPIRY + 1, &mut TestRng::new(9)),
        Err(ykt_qr::Error::AuthorisationExpired { .. })
    ));
    // One dated after it anyway is refused by the terminal.
    let late = ykt_qr::wallet::danger_generate_unchecked(
        &ex.authorisation,
        &ex.user,
        AUTHORISATION_EXPIRY + 1,
        &mut TestRng::new(9),
    )
    .unwrap()
    .encode();
    assert_eq!(
        verifier(&ex).verify(&late, 100, exp),
        Err(Rejection::GeneratedAfterAuthorisation)
    );
}

/// A phone with the right time shows a fresh code to a terminal whose clock is off: the skew
/// absorbs the terminal's error up to the configured value, both ways.
#[test]
fn terminal_clock_drift_within_the_skew_is_tolerated() {
    let ex = example(Version::INTEROPERABLE);
    let skew = 30i64;
    for offset in [-31i64, -30, -1, 0, 1, 30, 31] {
        let clock = DriftingClock {
            epoch: G,
            offset,
            drift_ppm: 0,
        };
        // The code is shown the moment it is generated (true time G) ...
        let bytes = code(&ex, GENERATION_TIME).encode();
        let got = verifier(&ex)
            .verify(&bytes, 100, clock.reading(G))
            .map(|_| ());
        let want = if offset < -skew {
            Err(Rejection::NotYetValid)
        } else {
            Ok(())
        };
        assert_eq!(got, want, "offset {offset} at generation");
        // ... and at the end of its validity (true time G + V).
        let got = verifier(&ex)
            .verify(&bytes, 100, clock.reading(G + V))
            .map(|_| ());
        let want = if offset > skew {
            Err(Rejection::CodeExpired)
        } else {
            Ok(())
        };
        assert_eq!(got, want, "offset {offset} at expiry");
    }
}

/// A clock that gains 20 ppm (about 1.7 s a day) and was set right 10 days ago is 17 s fast:
/// still inside the 30 s skew. After 20 days (35 s) the oldest still-valid codes are refused.
#[test]
fn drift_accumulates_until_the_skew_is_exceeded() {
    let ex = example(Version::INTEROPERABLE);
    let bytes = code(&ex, GENERATION_TIME).encode();
    let day = 86_400u64;
    for (days, ok) in [(10u64, true), (17, true), (18, false), (20, false)] {
        let clock = DriftingClock {
            epoch: G - days * day,
            offset: 0,
            drift_ppm: 20,
        };
        let shown = clock.reading(G + V);
        assert_eq!(
            verifier(&ex).verify(&bytes, 100, shown).is_ok(),
            ok,
            "{days} days: terminal shows {} s ahead",
            shown - (G + V)
        );
    }
}

#[test]
fn drifting_clock_readings() {
    let c = DriftingClock {
        epoch: 1_000_000,
        offset: -5,
        drift_ppm: -100,
    };
    assert_eq!(c.reading(1_000_000), 999_995);
    assert_eq!(c.reading(1_100_000), 1_099_985);
    assert_eq!(DriftingClock::EXACT.reading(42), 42);
    assert_eq!(
        DriftingClock {
            epoch: 0,
            offset: -10,
            drift_ppm: 0
        }
        .reading(3),
        0
    );
}
