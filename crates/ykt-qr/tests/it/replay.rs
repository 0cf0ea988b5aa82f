//! Replay (§3.1 step 9): the same code on the same terminal is refused while it could still
//! pass, a second terminal accepts it, and the cache's memory is bounded.

use ykt_qr::replay::ReplayCache;
use ykt_qr::testing::{GENERATION_TIME, VALIDITY};
use ykt_qr::{Rejection, VerifierConfig, Version};

use crate::common::{code, example, verifier, verifier_with};

const G: u64 = GENERATION_TIME as u64;

#[test]
fn same_terminal_refuses_second_terminal_accepts() {
    let ex = example(Version::INTEROPERABLE);
    let bytes = code(&ex, GENERATION_TIME).encode();
    let (mut gate1, mut gate2) = (verifier(&ex), verifier(&ex));
    gate1.verify(&bytes, 100, G + 1).unwrap();
    for now in [G + 1, G + 2, G + 60, G + 60 + 30] {
        assert_eq!(
            gate1.verify(&bytes, 100, now),
            Err(Rejection::Replay),
            "at {}",
            now - G
        );
    }
    // Offline terminals share no cache: the second accepts the same code (clearing sees both
    // records, each with the full code).
    gate2.verify(&bytes, 100, G + 2).unwrap();
    // Once the code is past validity + skew, it is refused as expired, not as a replay.
    assert_eq!(
        gate1.verify(&bytes, 100, G + 91),
        Err(Rejection::CodeExpired)
    );
}

#[test]
fn a_new_code_of_the_same_user_is_accepted() {
    let ex = example(Version::INTEROPERABLE);
    let mut gate = verifier(&ex);
    gate.verify(&code(&ex, GENERATION_TIME).encode(), 100, G)
        .unwrap();
    // Metro exit with a code refreshed one second later.
    gate.verify(&code(&ex, GENERATION_TIME + 1).encode(), 100, G + 1)
        .unwrap();
}

#[test]
fn a_refused_code_is_not_recorded() {
    let ex = example(Version::INTEROPERABLE);
    let bytes = code(&ex, GENERATION_TIME).encode();
    let mut gate = verifier(&ex);
    assert!(matches!(
        gate.verify(&bytes, 5000, G),
        Err(Rejection::OverLimit { .. })
    ));
    assert!(gate.replay_cache().is_empty());
    gate.verify(&bytes, 100, G).unwrap();
}

#[test]
fn the_cache_is_bounded_and_fails_closed() {
    let ex = example(Version::INTEROPERABLE);
    let mut gate = verifier_with(
        &ex,
        VerifierConfig {
            replay_capacity: 3,
            ..VerifierConfig::default()
        },
    );
    for i in 0..3 {
        gate.verify(&code(&ex, GENERATION_TIME + i).encode(), 100, G + 3)
            .unwrap();
    }
    assert_eq!(gate.replay_cache().len(), 3);
    let fourth = code(&ex, GENERATION_TIME + 3).encode();
    assert_eq!(
        gate.verify(&fourth, 100, G + 3),
        Err(Rejection::ReplayCacheFull)
    );
    // The first entry lives until G + validity + skew; one second later it makes room.
    let window = u64::from(VALIDITY) + 30;
    assert_eq!(
        gate.verify(&fourth, 100, G + window),
        Err(Rejection::ReplayCacheFull)
    );
    gate.verify(&fourth, 100, G + window + 1).unwrap();
    assert_eq!(gate.replay_cache().len(), 3);
}

#[test]
fn cache_entries_expire() {
    let mut cache = ReplayCache::new(2);
    let key = ([0u8; 10], 7);
    cache.insert(key, 100, 0).unwrap();
    assert!(cache.contains(&key, 99));
    assert!(!cache.contains(&key, 100));
    cache.insert(([1; 10], 1), 50, 0).unwrap();
    assert!(cache.insert(([2; 10], 1), 50, 10).is_err());
    cache.insert(([2; 10], 1), 80, 60).unwrap();
    assert_eq!(cache.len(), 2);
    cache.purge(1000);
    assert!(cache.is_empty());
    assert_eq!(cache.capacity(), 2);
}
