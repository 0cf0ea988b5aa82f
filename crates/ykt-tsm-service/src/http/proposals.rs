//! \[PROPOSAL\] Every choice the HTTP layer makes that tsm-gp.md §7 leaves open, in one place.
//!
//! Besides the constants below:
//!
//! * **Stored responses are sealed again.** A completed request's response is stored as
//!   `{msg_type, result, body}`; a retry (new nonce, same `request_id` and body) gets the same
//!   body and result sealed with the retry's fresh nonce and timestamp, so the answer passes
//!   the client's own replay window and the stored text holds no signature to replay.
//! * **Only internal failures release the claim.** A request failing with
//!   [`ykt_envelope::Code::Internal`] (the database down, a bug) releases its idempotency
//!   claim, so the client may retry with the same `request_id`. Every other refusal (a state
//!   conflict, an unpaid order) is the request's answer and is given again to a retry; a new
//!   attempt takes a new `request_id`. Refusals before the idempotency step (bad signature,
//!   stale, replayed) claim nothing.
//! * **Refusals are signed and typed.** A refusal carries the response type of the request
//!   the path names (`FlowResp`, …), or [`ERROR_RESPONSE_TYPE`] when the path names none, and
//!   an empty body `{}`.
//! * **`msg_no` must be the request type's** ([`ykt_tsm::api::MESSAGES`]), as `msg_type` must
//!   be the path's.

/// How far an envelope's timestamp may be from the server's clock, either way (ms).
pub const CLOCK_WINDOW_MS: i64 = 300_000;

/// How long the replay guard remembers a (sender, nonce) pair (ms). At least
/// [`CLOCK_WINDOW_MS`], so a message is remembered for as long as it could pass the clock check;
/// older records are purged at most once per [`PURGE_EVERY_MS`].
pub const REPLAY_MEMORY_MS: i64 = 600_000;

/// How long a completed request's stored answer is kept for retries (ms): a day. Older
/// idempotency records are purged with the replay guard's; a retry after that is a new
/// request.
pub const REQUEST_MEMORY_MS: i64 = 86_400_000;

/// How often the replay guard's and the idempotency records' old rows are purged (ms).
pub const PURGE_EVERY_MS: i64 = 60_000;

/// The largest request body read (bytes); a larger one is refused with HTTP 413.
pub const MAX_BODY: usize = 64 * 1024;

/// An idempotency claim left in progress by a process that is no longer working on it (a
/// crash between the claim, `admit_request`, and `complete_request`) is released after this
/// long (ms), counted from the first retry this process sees refused with `InProgress`.
///
/// A claim this process holds itself is never released this way; claims of other processes
/// sharing the store are released only once they have been stuck for this long, which no
/// single request takes.
pub const ORPHAN_CLAIM_MS: i64 = 30_000;

/// The number of bytes of the fresh nonce in every response envelope.
pub const NONCE_LEN: usize = 16;

/// The `msg_type` of a refusal whose request type is unknown (the path names no message).
pub const ERROR_RESPONSE_TYPE: &str = "ErrorResp";

/// The latency histogram's bucket bounds (seconds).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
