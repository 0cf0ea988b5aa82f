//! The unlocked session (client.md §6.10): what a long-running wallet holds after the user gave
//! the passphrase, and when it must let go of it.
//!
//! ```text
//!  locked ──unlock(key, now)──► unlocked ──idle > IDLE_LOCK_MS──► locked (key dropped, wiped)
//!                                  │
//!                                  ├─ use_key(now, Read)      ok while not idle
//!                                  └─ use_key(now, Sensitive) ok only within FRESH_UNLOCK_MS
//!                                                             of the unlock (top-up, return,
//!                                                             transfer)
//! ```
//!
//! No clock of its own: every call takes `now_ms` (Unix milliseconds, or any monotonic count),
//! so a test advances time by passing a larger number. The key type is the caller's: the CLI's
//! server keeps the sealed state's data key ([`crate::SealKey`]) here, and opens the state with
//! it per request, so the device key is in memory only while one request runs.

use crate::error::WalletError;

/// Our session timings (client.md §6.10 gives both numbers; the brief marks the section a
/// \[PROPOSAL\]).
pub mod proposals {
    /// An unlocked session locks after this long without use, milliseconds (client.md §6.10:
    /// 5 min idle).
    pub const IDLE_LOCK_MS: i64 = 5 * 60 * 1000;
    /// Top-up, return and transfer need an unlock at most this long ago, milliseconds
    /// (client.md §6.10: within the last 60 s).
    pub const FRESH_UNLOCK_MS: i64 = 60 * 1000;
}

use self::proposals::{FRESH_UNLOCK_MS, IDLE_LOCK_MS};

/// What an operation needs of the session.
/// This list is complete: the two classes client.md §6.10 names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum Operation {
    /// Reading (balance, records, cards) or a request the user confirms later: an unlocked
    /// session suffices.
    Read,
    /// Top-up, return or transfer: an unlock within [`FRESH_UNLOCK_MS`].
    Sensitive,
}

struct Unlocked<K> {
    key: K,
    unlocked_ms: i64,
    last_use_ms: i64,
}

/// A session holding a key of type `K` while unlocked. Locking drops the key (a key type that
/// zeroizes on drop, as [`crate::SealKey`] does, is then wiped). `Debug` shows only whether it
/// is unlocked.
pub struct Session<K> {
    unlocked: Option<Unlocked<K>>,
    idle_lock_ms: i64,
}

impl<K> core::fmt::Debug for Session<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("unlocked", &self.unlocked.is_some())
            .field("idle_lock_ms", &self.idle_lock_ms)
            .finish()
    }
}

impl<K> Default for Session<K> {
    fn default() -> Self {
        Self::locked()
    }
}

impl<K> Session<K> {
    /// A locked session with the idle timeout [`IDLE_LOCK_MS`].
    pub fn locked() -> Self {
        Self {
            unlocked: None,
            idle_lock_ms: IDLE_LOCK_MS,
        }
    }

    /// A locked session that locks after `idle_lock_ms` of idleness; a longer time than
    /// [`IDLE_LOCK_MS`] (or a negative one) is taken as [`IDLE_LOCK_MS`].
    pub fn with_idle_lock(idle_lock_ms: i64) -> Self {
        Self {
            unlocked: None,
            idle_lock_ms: if (0..=IDLE_LOCK_MS).contains(&idle_lock_ms) {
                idle_lock_ms
            } else {
                IDLE_LOCK_MS
            },
        }
    }

    /// The idle timeout in force, milliseconds.
    pub fn idle_lock_ms(&self) -> i64 {
        self.idle_lock_ms
    }

    /// Unlocks with `key` (the passphrase checked by whoever made it) at `now_ms`; a key held
    /// before is dropped.
    pub fn unlock(&mut self, key: K, now_ms: i64) {
        self.unlocked = Some(Unlocked {
            key,
            unlocked_ms: now_ms,
            last_use_ms: now_ms,
        });
    }

    /// Locks now: the key is dropped.
    pub fn lock(&mut self) {
        self.unlocked = None;
    }

    /// Locks if the session has been idle too long at `now_ms`; gives `true` if this call
    /// locked it. A long-running holder calls it on a timer so the key goes even when no
    /// request comes.
    pub fn tick(&mut self, now_ms: i64) -> bool {
        match &self.unlocked {
            Some(u) if now_ms.saturating_sub(u.last_use_ms) > self.idle_lock_ms => {
                self.lock();
                true
            }
            _ => false,
        }
    }

    /// Whether the session is unlocked at `now_ms` (locking it first if it has been idle too
    /// long).
    pub fn is_unlocked(&mut self, now_ms: i64) -> bool {
        self.tick(now_ms);
        self.unlocked.is_some()
    }

    /// The key for `operation` at `now_ms`, counting as use (the idle time starts again).
    ///
    /// Errors: [`WalletError::Locked`] when locked, or idle longer than the timeout (the
    /// session locks); [`WalletError::UnlockRequired`] for a [`Operation::Sensitive`] one more
    /// than [`FRESH_UNLOCK_MS`] after the unlock (the session stays unlocked for reads).
    pub fn use_key(&mut self, now_ms: i64, operation: Operation) -> Result<&K, WalletError> {
        self.tick(now_ms);
        let u = self.unlocked.as_mut().ok_or(WalletError::Locked)?;
        if operation == Operation::Sensitive
            && now_ms.saturating_sub(u.unlocked_ms) > FRESH_UNLOCK_MS
        {
            return Err(WalletError::UnlockRequired);
        }
        u.last_use_ms = u.last_use_ms.max(now_ms);
        Ok(&u.key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::rc::Rc;

    use super::*;

    const T0: i64 = 1_760_000_000_000;

    /// (ms after the unlock of each call, operation, expected outcome: the user code or "ok").
    /// Each row runs on a fresh session unlocked at T0 and used only at that time.
    const SINGLE_USE: &[(i64, Operation, &str)] = &[
        (0, Operation::Read, "ok"),
        (0, Operation::Sensitive, "ok"),
        (FRESH_UNLOCK_MS, Operation::Sensitive, "ok"),
        (FRESH_UNLOCK_MS + 1, Operation::Sensitive, "E7005"),
        (FRESH_UNLOCK_MS + 1, Operation::Read, "ok"),
        (IDLE_LOCK_MS, Operation::Read, "ok"),
        // client.md §6.10: a fake clock advanced by 301 s → E_LOCKED.
        (301_000, Operation::Read, "E7004"),
        (301_000, Operation::Sensitive, "E7004"),
    ];

    fn outcome<K>(r: Result<&K, WalletError>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.user_code(),
        }
    }

    #[test]
    fn one_use_after_a_delay() {
        for &(after, op, expected) in SINGLE_USE {
            let mut s = Session::locked();
            s.unlock(7u8, T0);
            assert_eq!(
                outcome(s.use_key(T0 + after, op)),
                expected,
                "{after} {op:?}"
            );
        }
    }

    #[test]
    fn a_locked_session_gives_no_key() {
        let mut s: Session<u8> = Session::locked();
        assert_eq!(s.use_key(T0, Operation::Read), Err(WalletError::Locked));
        assert!(!s.is_unlocked(T0));
    }

    #[test]
    fn use_keeps_it_unlocked_and_idleness_locks_it() {
        let mut s = Session::locked();
        s.unlock(1u8, T0);
        // A read every 4 minutes keeps it unlocked well past 5 minutes.
        for i in 1..=5 {
            assert_eq!(outcome(s.use_key(T0 + i * 240_000, Operation::Read)), "ok");
        }
        // But not a sensitive operation: that needs a fresh unlock.
        assert_eq!(
            s.use_key(T0 + 5 * 240_000, Operation::Sensitive),
            Err(WalletError::UnlockRequired)
        );
        let last = T0 + 5 * 240_000;
        assert!(!s.tick(last + IDLE_LOCK_MS));
        assert!(s.tick(last + IDLE_LOCK_MS + 1));
        assert!(!s.is_unlocked(last + IDLE_LOCK_MS + 1));
        // Unlocking again gives a fresh session.
        s.unlock(2u8, last + IDLE_LOCK_MS + 2);
        assert_eq!(
            s.use_key(last + IDLE_LOCK_MS + 3, Operation::Sensitive),
            Ok(&2)
        );
    }

    #[test]
    fn locking_drops_the_key() {
        let key = Rc::new(());
        let mut s = Session::locked();
        s.unlock(Rc::clone(&key), T0);
        assert_eq!(Rc::strong_count(&key), 2);
        assert!(s.tick(T0 + IDLE_LOCK_MS + 1));
        assert_eq!(Rc::strong_count(&key), 1);
        s.unlock(Rc::clone(&key), T0);
        s.lock();
        assert_eq!(Rc::strong_count(&key), 1);
    }

    #[test]
    fn a_shorter_idle_lock_is_taken_a_longer_one_is_not() {
        let mut s = Session::with_idle_lock(2_000);
        assert_eq!(s.idle_lock_ms(), 2_000);
        s.unlock(1u8, T0);
        assert_eq!(outcome(s.use_key(T0 + 2_000, Operation::Read)), "ok");
        assert_eq!(outcome(s.use_key(T0 + 4_001, Operation::Read)), "E7004");
        for too_long in [IDLE_LOCK_MS + 1, -1, i64::MAX] {
            assert_eq!(
                Session::<u8>::with_idle_lock(too_long).idle_lock_ms(),
                IDLE_LOCK_MS
            );
        }
    }

    #[test]
    fn debug_shows_no_key() {
        let mut s = Session::locked();
        s.unlock("secret-key-bytes", T0);
        let text = format!("{s:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("unlocked: true"), "{text}");
    }
}
