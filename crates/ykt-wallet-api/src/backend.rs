//! What the API shows comes from the wallet through [`LocalBackend`], so this crate does not
//! depend on the wallet SDK. [`MemoryBackend`] is a backend in memory for tests and demos.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::mask::CardNumber;

/// An opaque handle for a card, chosen by the wallet: what other apps use to name a card, so
/// they never see or send its number. `[A-Za-z0-9_-]`, 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CardHandle(String);

impl CardHandle {
    /// The longest handle, characters.
    pub const MAX_LEN: usize = 64;

    /// A handle, if `handle` has the allowed form.
    pub fn new(handle: &str) -> Option<Self> {
        let ok = (1..=Self::MAX_LEN).contains(&handle.len())
            && handle
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(handle.to_string()))
    }

    /// The handle's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A card of the wallet, as the backend gives it. The number is full here; the server masks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// Its handle.
    pub handle: CardHandle,
    /// Its number (masked in `Debug`).
    pub number: CardNumber,
    /// The user's label for it, e.g. "Shanghai transit".
    pub label: String,
}

/// A card's balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// The balance, fen (分); negative when the purse allows an overdraft.
    pub amount_fen: i64,
}

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// A load (top-up).
    Load,
    /// A purchase (a ride).
    Purchase,
    /// Anything else the card records.
    Other,
}

impl RecordKind {
    /// The kind's name in responses.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Load => "load",
            RecordKind::Purchase => "purchase",
            RecordKind::Other => "other",
        }
    }
}

/// One transaction record of a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRecord {
    /// When, Unix seconds.
    pub time: u64,
    /// What.
    pub kind: RecordKind,
    /// How much, fen.
    pub amount_fen: u64,
}

/// The id of a top-up request, chosen by the wallet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopupId(pub String);

/// A top-up request's state. An app can only create `PendingUser` requests; the wallet's user
/// confirms or declines them (client.md §6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopupState {
    /// Waiting for the user to confirm in the wallet.
    PendingUser,
    /// Confirmed by the user; the wallet's top-up flow takes over.
    Confirmed,
    /// Declined by the user.
    Declined,
}

impl TopupState {
    /// The state's name in responses.
    pub fn as_str(self) -> &'static str {
        match self {
            TopupState::PendingUser => "PENDING_USER",
            TopupState::Confirmed => "CONFIRMED",
            TopupState::Declined => "DECLINED",
        }
    }
}

/// Why the backend could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// No card has that handle.
    #[error("no such card")]
    UnknownCard,
    /// The amount is not one the wallet takes.
    #[error("the amount is not allowed")]
    BadAmount,
    /// The wallet cannot answer now (busy, the card unreachable).
    #[error("the wallet cannot answer now")]
    Unavailable,
    /// The wallet is locked (client.md §6.10: idle too long); the user must unlock it.
    #[error("the wallet is locked")]
    Locked,
}

/// The wallet's side of the local API. Calls may block (the wallet may reach its secure
/// element); the server runs them off its event loop.
pub trait LocalBackend: Send + Sync {
    /// The wallet's cards.
    fn cards(&self) -> Result<Vec<Card>, BackendError>;

    /// The balance of `card`.
    fn balance(&self, card: &CardHandle) -> Result<Balance, BackendError>;

    /// The records of `card`, newest first.
    fn records(&self, card: &CardHandle) -> Result<Vec<TransactionRecord>, BackendError>;

    /// Records a request from `app` to top `card` up by `amount_fen`, in state
    /// [`TopupState::PendingUser`], and gives its id. Nothing is paid or loaded until the user
    /// confirms it in the wallet.
    fn request_topup(
        &self,
        app: &str,
        card: &CardHandle,
        amount_fen: u64,
    ) -> Result<TopupId, BackendError>;
}

/// A top-up request as [`MemoryBackend`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopupRequest {
    /// The app that asked.
    pub app: String,
    /// The card.
    pub card: CardHandle,
    /// The amount, fen.
    pub amount_fen: u64,
    /// Its state.
    pub state: TopupState,
}

struct MemoryCard {
    card: Card,
    balance: Balance,
    records: Vec<TransactionRecord>,
}

#[derive(Default)]
struct Memory {
    cards: Vec<MemoryCard>,
    topups: BTreeMap<TopupId, TopupRequest>,
    next_topup: u64,
    locked: bool,
}

/// A [`LocalBackend`] in memory.
#[derive(Default)]
pub struct MemoryBackend {
    inner: Mutex<Memory>,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend").finish_non_exhaustive()
    }
}

impl MemoryBackend {
    /// No cards.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a card with its balance and records (newest first).
    pub fn add_card(&self, card: Card, balance: Balance, records: Vec<TransactionRecord>) {
        self.lock().cards.push(MemoryCard {
            card,
            balance,
            records,
        });
    }

    /// Locks or unlocks the wallet this backend stands for: while locked every call gives
    /// [`BackendError::Locked`] (client.md §6.10).
    pub fn set_locked(&self, locked: bool) {
        self.lock().locked = locked;
    }

    /// The memory, or [`BackendError::Locked`].
    fn unlocked(&self) -> Result<std::sync::MutexGuard<'_, Memory>, BackendError> {
        let memory = self.lock();
        if memory.locked {
            return Err(BackendError::Locked);
        }
        Ok(memory)
    }

    /// The top-up requests made, by id.
    pub fn topups(&self) -> BTreeMap<TopupId, TopupRequest> {
        self.lock().topups.clone()
    }

    /// The user's answer to a pending request: `true` confirms, `false` declines. Gives
    /// `false` when there is no such pending request.
    pub fn answer_topup(&self, id: &TopupId, confirm: bool) -> bool {
        let mut memory = self.lock();
        match memory.topups.get_mut(id) {
            Some(request) if request.state == TopupState::PendingUser => {
                request.state = if confirm {
                    TopupState::Confirmed
                } else {
                    TopupState::Declined
                };
                true
            }
            _ => false,
        }
    }
}

impl LocalBackend for MemoryBackend {
    fn cards(&self) -> Result<Vec<Card>, BackendError> {
        Ok(self
            .unlocked()?
            .cards
            .iter()
            .map(|c| c.card.clone())
            .collect())
    }

    fn balance(&self, card: &CardHandle) -> Result<Balance, BackendError> {
        let memory = self.unlocked()?;
        let found = memory.cards.iter().find(|c| &c.card.handle == card);
        found.map(|c| c.balance).ok_or(BackendError::UnknownCard)
    }

    fn records(&self, card: &CardHandle) -> Result<Vec<TransactionRecord>, BackendError> {
        let memory = self.unlocked()?;
        let found = memory.cards.iter().find(|c| &c.card.handle == card);
        found
            .map(|c| c.records.clone())
            .ok_or(BackendError::UnknownCard)
    }

    fn request_topup(
        &self,
        app: &str,
        card: &CardHandle,
        amount_fen: u64,
    ) -> Result<TopupId, BackendError> {
        let mut memory = self.unlocked()?;
        if !memory.cards.iter().any(|c| &c.card.handle == card) {
            return Err(BackendError::UnknownCard);
        }
        if amount_fen == 0 {
            return Err(BackendError::BadAmount);
        }
        memory.next_topup += 1;
        let id = TopupId(format!("tp-{}", memory.next_topup));
        memory.topups.insert(
            id.clone(),
            TopupRequest {
                app: app.to_string(),
                card: card.clone(),
                amount_fen,
                state: TopupState::PendingUser,
            },
        );
        Ok(id)
    }
}
