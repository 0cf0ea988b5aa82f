//! Every choice of this crate that the public texts do not fix (client.md §6.6 marks the whole
//! mechanism a \[PROPOSAL\]; JT/T 1059.5—2025 change 5 only says that other apps must not call the
//! client's interfaces without authorisation). Each constant here is a proposal and the one
//! place to change it once the standard's clauses are known.

/// The audience every token names, and the only one a check accepts (client.md §6.6).
pub const AUDIENCE: &str = "ykt-wallet-local";

/// The issuer every token names: the wallet install that granted it.
/// The per-install secret is what tells installs apart; the name is checked all the same, so a
/// token of some other local scheme that happens to share the secret is refused.
pub const ISSUER: &str = "ykt-wallet";

/// The longest lifetime of a token, seconds (client.md §6.6: TTL ≤ 15 min), enforced when a
/// token is issued and again when it is checked.
pub const MAX_TTL_SECS: u64 = 15 * 60;

/// The token bucket of each caller (`sub`): tokens added per second (client.md §6.6: 5/s).
pub const RATE_PER_SEC: u64 = 5;

/// The token bucket of each caller: its capacity (client.md §6.6: burst 10).
pub const BURST: u64 = 10;

/// The most top-up requests (`topup:initiate`) one caller may make in [`TOPUP_WINDOW_SECS`]
/// (client.md §6.6: 3 per hour).
pub const TOPUPS_PER_WINDOW: usize = 3;

/// The sliding window of [`TOPUPS_PER_WINDOW`], seconds.
pub const TOPUP_WINDOW_SECS: u64 = 60 * 60;

/// The file name of the Unix socket in `$XDG_RUNTIME_DIR` (client.md §6.6).
pub const SOCKET_NAME: &str = "ykt-wallet.sock";

/// The mode the socket file is given (client.md §6.6: 0600).
pub const SOCKET_MODE: u32 = 0o600;

/// The length of a token's `jti`, random bytes (shown as hex).
pub const JTI_LEN: usize = 16;

/// The longest `sub` (app id) taken, characters; app ids are `[A-Za-z0-9._-]`.
pub const MAX_APP_ID_LEN: usize = 128;

/// The largest request body read, bytes (only `POST /v1/topups` has one).
pub const MAX_BODY: usize = 1024;

/// The largest top-up amount a caller may ask for, fen (分): 1000 yuan, the usual e-purse
/// ceiling. The wallet's user confirms every top-up anyway.
pub const MAX_TOPUP_FEN: u64 = 100_000;
