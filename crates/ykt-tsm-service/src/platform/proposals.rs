//! \[PROPOSAL\] Every choice of the inter-platform API the brief leaves open, in one place.
//!
//! * The message names and numbers beyond the brief's `CreateSSDReq`, `DeleteSSDReq` and
//!   `AcquireTokenReq`: `ykt_tsm::api::PLATFORM_MESSAGES`.
//! * The ISD secure channel: the SP-TSM drives the handshake and the SEI computes each
//!   session-key block ([`SESSION_BLOCK_CIPHER`]), so the SP holds that one channel's session
//!   keys, never a static key. (The alternative, the SEI building the ISD scripts itself, would
//!   keep even the session keys at the SEI; it needs the SEI to run the steps' channel.)
//! * Which refusal code a vault error gives: [`vault_error_code`]; the message names the error
//!   (`vault: UNKNOWN_KEY`), so that the SP side gets back the same `VaultError`.
//! * The SP platform id the SEI serves, and the one link: one SP per SEI server.
//! * A transport failure answers the wallet `9999` and the flow stays as stored before the
//!   move: a retry or `ResumeReq` goes on once the SEI answers again.

use ykt_envelope::Code;
use ykt_tsm::VaultError;

/// \[PROPOSAL\] A session-key block (`ISDChannelOpResp.wrapped`) travels SM2-encrypted
/// (C1C3C2) for an ephemeral key the SP makes at start and never stores.
pub const SESSION_BLOCK_CIPHER: &str = "SM2 C1C3C2 for the SP's ephemeral channel key";

/// \[PROPOSAL\] The result code of a refusal by the SEI's vault.
pub fn vault_error_code(e: VaultError) -> Code {
    match e {
        VaultError::KeyExists => Code::SsdExists,
        VaultError::UnknownKey => Code::SsdMissing,
        VaultError::ReceiptInvalid | VaultError::ReceiptMissing => Code::ReceiptInvalid,
        VaultError::Mac1Invalid | VaultError::TacInvalid => Code::CryptogramMismatch,
        _ => Code::StateConflict,
    }
}
