//! The crate's errors: one `#[non_exhaustive]` enum for flows, with typed sub-enums for the
//! key vault and the payment provider (house style; tsm-gp.md §7 error codes in [`Error::code`]).

use core::fmt;

use ykt_apdu::StatusWord;

use crate::steps::StepName;

/// Why a key-vault operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultError {
    /// No key of that name (or of that kind under that name).
    UnknownKey,
    /// A key of that name exists already.
    KeyExists,
    /// The key's type does not fit the operation (e.g. a 3DES set as an SCP03 DEK).
    KeyType,
    /// The card's MAC1 does not match: the card is not the one it claims, or the data was changed.
    Mac1Invalid,
    /// The card's TAC does not match.
    TacInvalid,
    /// A delegated-management receipt does not verify.
    ReceiptInvalid,
    /// The card answered without the receipt delegated management requires.
    ReceiptMissing,
    /// A wrapped key blob does not decrypt or decode.
    Unwrap,
    /// A cryptographic primitive refused its input.
    Crypto,
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownKey => "unknown key",
            Self::KeyExists => "key exists",
            Self::KeyType => "key type does not fit",
            Self::Mac1Invalid => "MAC1 invalid",
            Self::TacInvalid => "TAC invalid",
            Self::ReceiptInvalid => "receipt invalid",
            Self::ReceiptMissing => "receipt missing",
            Self::Unwrap => "wrapped key does not unwrap",
            Self::Crypto => "cryptographic failure",
        })
    }
}

impl core::error::Error for VaultError {}

/// Why the payment provider refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentError {
    /// The provider knows no such order.
    UnknownOrder,
    /// The order is not paid (yet).
    NotPaid,
    /// The paid amount differs from the order's.
    AmountMismatch,
    /// The order was fulfilled already.
    AlreadyFulfilled,
    /// The provider declined (refund, escrow).
    Declined,
}

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownOrder => "unknown order",
            Self::NotPaid => "order not paid",
            Self::AmountMismatch => "amount mismatch",
            Self::AlreadyFulfilled => "order already fulfilled",
            Self::Declined => "declined",
        })
    }
}

impl core::error::Error for PaymentError {}

/// Why the card's answer is not what the flow needs (the answer is malformed, or contradicts
/// the flow's state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerError {
    /// Fewer (or more) responses than commands sent, where every command was expected to pass.
    ResponseCount,
    /// A response shorter than two bytes, or with a data field of the wrong length.
    Length,
    /// GET DATA, GET STATUS or a receipt did not parse.
    Malformed,
    /// PUT KEY (or DGI `8001`) answered other key check values or another key version.
    KeyCheck,
    /// The card number read from the card is not the flow's.
    CardNumber,
    /// The balance the card shows is not the one the flow computed.
    Balance,
    /// The SE is not the one the flow is for (another SEID).
    SeId,
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ResponseCount => "response count",
            Self::Length => "response length",
            Self::Malformed => "malformed response",
            Self::KeyCheck => "key check values differ",
            Self::CardNumber => "another card number",
            Self::Balance => "unexpected balance",
            Self::SeId => "another SE",
        })
    }
}

/// A flow failed; the flow's state names the step (`FAILED_<step>`) and can be retried.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The card refused a command of `step` with `sw`.
    Card {
        /// The step.
        step: StepName,
        /// The status word.
        sw: StatusWord,
    },
    /// The secure channel refused the card (wrong cryptogram, R-MAC) or the parameters.
    Channel {
        /// The step.
        step: StepName,
        /// The channel's error.
        error: ykt_scp::ScpError,
    },
    /// The card's answer is malformed or contradicts the flow.
    Answer {
        /// The step.
        step: StepName,
        /// What is wrong.
        error: AnswerError,
    },
    /// The key vault refused (includes a wrong MAC1, TAC or receipt).
    Vault {
        /// The step.
        step: StepName,
        /// The vault's error.
        error: VaultError,
    },
    /// The payment provider refused.
    Payment {
        /// The step.
        step: StepName,
        /// The provider's error.
        error: PaymentError,
    },
    /// A command could not be built (an AID or field too long).
    Build(ykt_gp_host::BuildError),
    /// A delegated-management token or receipt layout error.
    Token(ykt_gp::dm::DmError),
    /// The relay message does not belong to this flow (session id or sequence number).
    Relay,
    /// The flow is not waiting for a response, or is finished or failed (retry it first).
    NotWaiting,
    /// The card holds a balance; delete refused (tsm-gp.md §7 code 5002).
    BalanceNotZero {
        /// The balance in fen.
        balance: u32,
    },
    /// The order was loaded already (exactly once per order, tsm-gp.md §7 code 1003).
    DuplicateOrder,
    /// The card instance is not in a state that allows the flow (tsm-gp.md §8, code 3005).
    State,
}

impl Error {
    /// The tsm-gp.md §7 error code for the envelope's `result.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Card { .. } => "4001",
            Self::Channel { .. } => "4002",
            Self::Vault {
                error: VaultError::ReceiptInvalid | VaultError::ReceiptMissing,
                ..
            } => "4003",
            Self::Vault {
                error: VaultError::Mac1Invalid | VaultError::TacInvalid,
                ..
            } => "4002",
            Self::Payment { .. } => "5001",
            Self::BalanceNotZero { .. } => "5002",
            Self::DuplicateOrder => "1003",
            Self::State => "3005",
            _ => "9999",
        }
    }

    /// The step that failed, if a step did.
    pub fn step(&self) -> Option<StepName> {
        match self {
            Self::Card { step, .. }
            | Self::Channel { step, .. }
            | Self::Answer { step, .. }
            | Self::Vault { step, .. }
            | Self::Payment { step, .. } => Some(*step),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Card { step, sw } => write!(
                f,
                "{step:?}: card answered {:04X}",
                u16::from_be_bytes(sw.to_bytes())
            ),
            Self::Channel { step, error } => write!(f, "{step:?}: secure channel: {error}"),
            Self::Answer { step, error } => write!(f, "{step:?}: {error}"),
            Self::Vault { step, error } => write!(f, "{step:?}: key vault: {error}"),
            Self::Payment { step, error } => write!(f, "{step:?}: payment: {error}"),
            Self::Build(e) => write!(f, "command: {e}"),
            Self::Token(e) => write!(f, "token: {e}"),
            Self::Relay => f.write_str("relay message of another session or sequence"),
            Self::NotWaiting => f.write_str("flow not waiting for a response"),
            Self::BalanceNotZero { balance } => write!(f, "balance {balance} fen not zero"),
            Self::DuplicateOrder => f.write_str("order already loaded"),
            Self::State => f.write_str("card instance state does not allow this"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Channel { error, .. } => Some(error),
            Self::Vault { error, .. } => Some(error),
            Self::Payment { error, .. } => Some(error),
            Self::Build(e) => Some(e),
            Self::Token(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ykt_gp_host::BuildError> for Error {
    fn from(e: ykt_gp_host::BuildError) -> Self {
        Self::Build(e)
    }
}

impl From<ykt_gp::dm::DmError> for Error {
    fn from(e: ykt_gp::dm::DmError) -> Self {
        Self::Token(e)
    }
}
