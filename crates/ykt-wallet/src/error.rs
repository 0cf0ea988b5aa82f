//! The wallet's errors (client.md §6.9, rule R8): each has a user-facing code `Exxxx` and a
//! plain sentence; neither, nor `Display`, nor `Debug` carries a status word, a card number or
//! key material.

use ykt_envelope::Code;
use ykt_tsm::FlowKind;

use crate::link::{LinkError, PersistError, SeError};
use crate::seal::SealError;
use crate::state::StateError;

/// What went wrong in a wallet flow. `Display` is the user's sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The device has no key or is not enrolled with a TSM.
    #[error("{}", self.user_message())]
    NotEnrolled,
    /// The device is enrolled already.
    #[error("{}", self.user_message())]
    AlreadyEnrolled,
    /// No card with this number in the wallet.
    #[error("{}", self.user_message())]
    UnknownCard,
    /// No open flow with this `txn_id`.
    #[error("{}", self.user_message())]
    UnknownFlow,
    /// The TSM link failed.
    #[error("{}", self.user_message())]
    Link(LinkError),
    /// The response's signature does not verify under the pinned TSM key (nothing of it reached
    /// the SE).
    #[error("{}", self.user_message())]
    BadSignature,
    /// The response does not belong to the request: which member differs.
    #[error("{}", self.user_message())]
    Mismatch(Member),
    /// The response's timestamp is outside the window around `now_ms`.
    #[error("{}", self.user_message())]
    Stale,
    /// The response verified but its body is not what its type needs, or a running flow sent no
    /// relay, or a finished one no outcome.
    #[error("{}", self.user_message())]
    Protocol,
    /// The TSM refused with this result code.
    #[error("{}", self.user_message())]
    Refused(Code),
    /// The flow failed on the TSM's side in this §8 state; `resume` retries it.
    #[error("{}", self.user_message())]
    FlowFailed {
        /// Which flow.
        kind: FlowKind,
        /// The card instance's state (`FAILED_<step>`).
        instance_state: String,
    },
    /// The SE link failed (the flow stays open; `resume` continues it).
    #[error("{}", self.user_message())]
    Se(SeError),
    /// The card refused an offline command (SELECT, GET BALANCE, READ RECORD). The status
    /// word is kept for diagnostics ([`WalletError::status_word`]), never shown.
    #[error("{}", self.user_message())]
    CardRefused {
        /// The status word.
        sw: [u8; 2],
    },
    /// The state could not be saved; the card command that needed it was not sent.
    #[error("{}", self.user_message())]
    Persist(PersistError),
    /// The sealed state did not open.
    #[error("{}", self.user_message())]
    State(StateError),
    /// The RNG gave no usable key.
    #[error("{}", self.user_message())]
    Random,
    /// The session is locked: idle too long, or never unlocked (client.md §6.10, E_LOCKED).
    /// Only the passphrase opens the state again.
    #[error("{}", self.user_message())]
    Locked,
    /// Top-up, return and transfer need the passphrase entered within the last minute
    /// (client.md §6.10); the session stays unlocked for reading.
    #[error("{}", self.user_message())]
    UnlockRequired,
}

/// The envelope member that did not match the request.
/// This list is complete: the members a response must echo or fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum Member {
    /// `txn_id` (of the envelope or of the `FlowResp` body).
    TxnId,
    /// `request_id`.
    RequestId,
    /// `sender_id` is not the pinned TSM.
    Sender,
    /// `receiver_id` is not this device.
    Receiver,
    /// `msg_type` or `msg_no` is not the request's response.
    MessageType,
    /// The key the TSM gave at enrolment is not its signing key or not the pinned one.
    TsmKey,
}

impl From<LinkError> for WalletError {
    fn from(e: LinkError) -> Self {
        Self::Link(e)
    }
}

impl From<SeError> for WalletError {
    fn from(e: SeError) -> Self {
        Self::Se(e)
    }
}

impl From<PersistError> for WalletError {
    fn from(e: PersistError) -> Self {
        Self::Persist(e)
    }
}

impl From<StateError> for WalletError {
    fn from(e: StateError) -> Self {
        Self::State(e)
    }
}

const GENERIC: (&str, &str) = (
    "E9999",
    "Something went wrong. Try again later; if it keeps happening, contact customer service.",
);

impl WalletError {
    /// The status word of a card refusal (diagnostics only; never shown to the user).
    pub fn status_word(&self) -> Option<[u8; 2]> {
        match self {
            Self::CardRefused { sw } => Some(*sw),
            _ => None,
        }
    }

    /// \[PROPOSAL\] The user-facing code and sentence (client.md §6.9). Result codes the wallet
    /// has no sentence for get the generic one.
    pub fn user_text(&self) -> (&'static str, &'static str) {
        match self {
            Self::NotEnrolled => ("E8001", "Register this device with the service first."),
            Self::AlreadyEnrolled => ("E8002", "This device is registered already."),
            Self::UnknownCard => ("E8003", "This card is not in the wallet."),
            Self::UnknownFlow => ("E8004", "There is no unfinished operation to continue."),
            Self::Link(LinkError::Unreachable | LinkError::Timeout) => (
                "E1000",
                "The service cannot be reached. Check the network and try again.",
            ),
            Self::Link(LinkError::Untrusted) => (
                "E1001",
                "The server at the service's address could not prove it is the service; nothing was sent to it. Check the wallet's service address.",
            ),
            Self::Link(_) | Self::BadSignature | Self::Mismatch(_) | Self::Protocol => (
                "E1100",
                "The service's answer could not be trusted and was ignored; nothing was sent to the card.",
            ),
            Self::Stale => (
                "E1101",
                "The phone's clock and the service's differ too much. Set the clock automatically and try again.",
            ),
            Self::Refused(code) => refused(*code),
            Self::FlowFailed {
                kind: FlowKind::TopUp,
                ..
            } => (
                "E4001",
                "Top-up being confirmed; don't delete the card. It will finish the next time you open the wallet.",
            ),
            Self::FlowFailed { .. } => (
                "E4002",
                "The operation did not finish. It will be continued the next time you open the wallet.",
            ),
            Self::Se(_) => (
                "E6001",
                "The card could not be reached. Keep the phone still and try again.",
            ),
            Self::CardRefused { .. } => ("E6002", "The card refused the operation."),
            Self::Persist(_) => (
                "E7001",
                "The wallet could not save its data; nothing was sent to the card. Free some storage and try again.",
            ),
            Self::State(StateError::Seal(SealError::WrongPassphrase)) => {
                ("E7002", "Wrong passphrase.")
            }
            Self::State(_) => (
                "E7003",
                "The wallet's local data is damaged. Restore it or register the device again.",
            ),
            Self::Random => GENERIC,
            Self::Locked => (
                "E7004",
                "The wallet is locked. Unlock it with your passphrase.",
            ),
            Self::UnlockRequired => (
                "E7005",
                "Enter your passphrase again to confirm this operation.",
            ),
        }
    }

    /// The user-facing code (`Exxxx`).
    pub fn user_code(&self) -> &'static str {
        self.user_text().0
    }

    /// The user-facing sentence.
    pub fn user_message(&self) -> &'static str {
        self.user_text().1
    }
}

fn refused(code: Code) -> (&'static str, &'static str) {
    match code {
        Code::BadSignature | Code::UnknownSender | Code::Forbidden => (
            "E2001",
            "The service does not recognise this device. Register it again.",
        ),
        Code::Stale => (
            "E1101",
            "The phone's clock and the service's differ too much. Set the clock automatically and try again.",
        ),
        Code::InProgress => (
            "E2002",
            "The service is still working on this request. Try again in a moment.",
        ),
        Code::SeNotFound | Code::SeLocked => (
            "E3001",
            "This phone's secure element cannot hold transit cards at the moment.",
        ),
        Code::SeMemory => (
            "E3002",
            "There is not enough space on the phone's secure element.",
        ),
        Code::AppExists | Code::SsdExists => ("E3003", "This card is already on the phone."),
        Code::AppMissing | Code::SsdMissing | Code::FlowNotFound => {
            ("E3004", "The card is not on this phone.")
        }
        Code::StateConflict => (
            "E3005",
            "The card is busy with another operation. Try again later.",
        ),
        // A cryptogram that does not verify: the SE's secure channel (an SE keyed for another
        // service, tsm-gp.md §7) or the card's MAC1/TAC; the flow stopped there.
        Code::CryptogramMismatch => (
            "E3006",
            "The service could not authenticate this phone's secure element or card, and stopped. This phone may not be supported by this service.",
        ),
        Code::IssuerDeclined => ("E5001", "The card issuer declined the operation."),
        Code::BalanceNotZero => (
            "E5002",
            "The card still holds a balance. Return the card to get it refunded first.",
        ),
        Code::OrderNotFound => ("E5003", "The order was not found."),
        Code::NotPaid => (
            "E5004",
            "The payment has not been confirmed yet. The top-up will start once it is.",
        ),
        _ => GENERIC,
    }
}
