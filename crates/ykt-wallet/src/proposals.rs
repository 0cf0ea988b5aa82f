//! Our choices where the briefs are silent (client.md, tsm-gp.md §7), each in one place. The
//! masking shapes are in [`crate::mask::proposals`]; the user-facing error codes in
//! [`crate::error::WalletError::user_code`].

/// \[PROPOSAL\] How many times one request is sent when the link fails with a retryable error
/// (each attempt a fresh nonce, the same `request_id`, so the TSM answers a repeat with its
/// stored response).
pub const MAX_ATTEMPTS: u32 = 3;

/// \[PROPOSAL\] A response's timestamp must be within this much of the wallet's `now_ms`
/// (client.md §6.3 gives the server 300 s of skew; the wallet applies the same).
pub const RESPONSE_WINDOW_MS: i64 = 300_000;

/// \[PROPOSAL\] Before enrolment the device signs as its key id (`ykt_envelope::key_id_sm2`),
/// which the TSM can recompute from `EnrolReq.device_pub`; this prefix goes before it.
pub const ENROL_SENDER_PREFIX: &str = "DEV-";

/// The payment channel of the built-in test provider (`ykt_tsm::api::TopupOrderReq`:
/// \[PROPOSAL\] `99`); only with it does the wallet pay the order itself (`TestPayReq`).
pub const TEST_PAY_CHANNEL: &str = "99";

/// The EF18 records the wallet reads at most (`ykt_purse::files::EF18_RECORDS`).
pub const MAX_RECORDS: u8 = 10;
