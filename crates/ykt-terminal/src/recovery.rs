//! Grey-transaction recovery (灰交易处理, e-purse.md §4.8, §7): on the next tap of a card whose
//! DEBIT (or CREDIT FOR LOAD) answer was lost, find out whether the card was charged and, if
//! so, recover MAC2 and TAC so that the record completes, without charging again.
//!
//! ```text
//!   RecoveryFlow::start ──► SELECT ──► GET BALANCE ──► GET TRANSACTION PROVE (type, counter)
//!        ──► proof whose MAC2 verifies                        → Purchase / Load record (TAC)
//!        ──► no proof, balance as before the transaction      → NotCharged (retry allowed)
//!        ──► no proof but the balance moved, or a bad MAC2    → LeftGrey (settlement decides)
//!        ──► no answer, garbage, another refusal              → error: the entry stays open
//! ```
//!
//! The decision rests on the proof first: GET TRANSACTION PROVE is sent whether or not the
//! balance moved (a zero-amount purchase moves no balance), and a proof counts only when its
//! MAC2 verifies for *this* transaction (another terminal's purchase with the same counter
//! gives a MAC2 under another session key). The balance decides only when the card has no proof.
//!
//! A purchase's MAC2 is checked first by the SAM itself when it still holds the session of the
//! lost purchase (the [`Validator`](crate::validator::Validator) knows when: no purchase since,
//! MAC2 never checked), then by a [`ProofVerifier`]. The SAM session of the lost purchase is
//! gone by the next tap (the terminal may even have restarted), so [`SoftwareProofVerifier`]
//! re-derives the session key from the journaled inputs (card random, offline counter, TTSN,
//! key index and version) with `ykt_crypto::purse`, as the SAM did. A load's MAC2 is the one the
//! load host issued, journaled with the grey entry, and is compared directly.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_crypto::purse::{self, PurseAlgorithm, Sm4Rules};

use crate::card_data::CardIdentity;
use crate::commands::{self, transaction_type};
use crate::journal::{GreyReason, GreyTransaction, PendingLoad, PendingPurchase};
use crate::load::{LoadRecord, array, be_u32, expect_success};
use crate::purchase::PurchaseRecord;
use crate::sam::MasterKey;
use crate::{Flow, FlowError, SamError, Step};

/// Which counter value GET TRANSACTION PROVE carries. This enum is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum ProveCounter {
    /// The counter the transaction used (before the card's increment), as in its EF18 record.
    PreIncrement,
    /// That counter plus one (one vendor's older terminals).
    PostIncrement,
}

/// The counter form this terminal sends in GET TRANSACTION PROVE.
///
/// L (e-purse.md §4.8, open question 3): the brief's reading is the pre-increment value (the
/// EF18 field); an older terminal family sends N+1. It must match what the card expects, which
/// for our card is `ykt_purse::profile::DEFAULT_PROVE_COUNTER` (a test checks the two agree).
pub const PROVE_COUNTER: ProveCounter = ProveCounter::PreIncrement;

/// The counter to send in GET TRANSACTION PROVE for a transaction that used `counter`.
pub fn prove_counter(counter: u16) -> u16 {
    match PROVE_COUNTER {
        ProveCounter::PreIncrement => counter,
        ProveCounter::PostIncrement => counter.wrapping_add(1),
    }
}

/// The answers to GET TRANSACTION PROVE that mean "this card holds no proof of that
/// transaction", so that the balance decides.
///
/// L (e-purse.md §4.8: "`9403`/`6A80`?"): `9406` (what our card answers, MAC not available),
/// `9403` and `6A80` (the brief's guesses), and `6D00` (a card without the command). Any other
/// refusal (e.g. `6F00`, a card that lost power) proves nothing, and the grey entry stays open.
pub const NO_PROOF: [StatusWord; 4] = [
    StatusWord(0x9406),
    StatusWord(0x9403),
    StatusWord(0x6A80),
    StatusWord(0x6D00),
];

/// Checks the MAC2 that GET TRANSACTION PROVE gives for a journaled purchase.
pub trait ProofVerifier {
    /// `Ok` when `mac2` is the MAC2 of `pending` (§5.4: MAC(SESPK, amount)).
    ///
    /// [`SamError::Mac2Invalid`] says the proof is not of this purchase; `UnknownKey`,
    /// `UnknownAlgorithm` and `NoPurchaseInProgress` say it cannot be checked here (both leave
    /// the entry grey for settlement); any other error leaves the entry open for the next tap.
    fn verify_proved_mac2(
        &mut self,
        pending: &PendingPurchase,
        mac2: &[u8; 4],
    ) -> Result<(), SamError>;
}

/// [`ProofVerifier`] from the master purchase keys, as held by a [`SoftwareSam`](crate::sam::SoftwareSam)
/// (single-level diversification by the ASN, e-purse.md §3.2, §5.1).
pub struct SoftwareProofVerifier {
    keys: Vec<MasterKey>,
    sm4_rules: Sm4Rules,
}

impl SoftwareProofVerifier {
    /// A verifier holding `keys` (master DPKs by index and version).
    pub fn new(keys: Vec<MasterKey>, sm4_rules: Sm4Rules) -> Self {
        Self { keys, sm4_rules }
    }
}

impl ProofVerifier for SoftwareProofVerifier {
    fn verify_proved_mac2(
        &mut self,
        pending: &PendingPurchase,
        mac2: &[u8; 4],
    ) -> Result<(), SamError> {
        let d = &pending.debit;
        let r = &d.record;
        let alg = PurseAlgorithm::from_algorithm_id(r.algorithm_id, self.sm4_rules)
            .ok_or(SamError::UnknownAlgorithm(r.algorithm_id))?;
        let master = self
            .keys
            .iter()
            .find(|k| k.index == d.key_index && k.version == r.key_version)
            .ok_or(SamError::UnknownKey {
                index: d.key_index,
                version: r.key_version,
            })?;
        let dpk = purse::diversify(&alg, &master.key, &r.card.diversifier());
        let sk = purse::session_key(
            &alg,
            &dpk,
            &purse::purchase_session_input(d.random, r.offline_counter, r.ttsn),
        );
        let expected = purse::session_mac(&alg, &sk, &r.amount.to_be_bytes());
        if ykt_crypto::ct_eq(&expected, mac2) {
            Ok(())
        } else {
            Err(SamError::Mac2Invalid)
        }
    }
}

/// A [`ProofVerifier`] for a terminal that holds no master purchase keys (its keys are in a
/// PSAM): it checks nothing, so a proof is completed only through the SAM session of the lost
/// purchase (see [`Validator`](crate::validator::Validator)) and is otherwise left grey with its
/// TAC for settlement ([`GreyReason::Unverified`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLocalVerifier;

impl ProofVerifier for NoLocalVerifier {
    fn verify_proved_mac2(
        &mut self,
        _pending: &PendingPurchase,
        _mac2: &[u8; 4],
    ) -> Result<(), SamError> {
        Err(SamError::NoPurchaseInProgress)
    }
}

/// What recovery found out about a grey transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryOutcome {
    /// The card was charged: the completed purchase, with the proved TAC and MAC2.
    Purchase(PurchaseRecord),
    /// The card was credited: the completed load, with the proved TAC.
    Load(LoadRecord),
    /// The card was not charged (or credited): the transaction may be retried.
    NotCharged,
    /// Money may have moved but the card gives no valid proof: settlement decides.
    LeftGrey(GreyReason),
    /// The card that answered SELECT is another card (another ASN); nothing was asked of it.
    DifferentCard,
}

/// The grey transaction being recovered (owned copy of the journal entry).
#[derive(Debug, Clone)]
enum Grey {
    Purchase(PendingPurchase),
    Load(PendingLoad),
}

impl Grey {
    fn card(&self) -> &CardIdentity {
        match self {
            Self::Purchase(p) => &p.debit.record.card,
            Self::Load(l) => &l.credit.record.card,
        }
    }

    fn balance_before(&self) -> u32 {
        match self {
            Self::Purchase(p) => p.debit.record.balance_before,
            Self::Load(l) => l.credit.record.old_balance,
        }
    }

    fn prove(&self) -> CommandApdu {
        match self {
            Self::Purchase(p) => {
                let r = &p.debit.record;
                commands::get_transaction_prove(
                    r.transaction_type,
                    prove_counter(r.offline_counter),
                )
            }
            Self::Load(l) => commands::get_transaction_prove(
                transaction_type::LOAD,
                prove_counter(l.credit.record.online_counter),
            ),
        }
    }
}

enum State {
    Selecting,
    Balancing,
    Proving { balance: u32 },
    Done,
}

/// The recovery flow for one grey transaction.
pub struct RecoveryFlow<'v> {
    grey: Grey,
    verifier: &'v mut dyn ProofVerifier,
    state: State,
}

impl<'v> RecoveryFlow<'v> {
    /// Starts recovery of `grey`; returns the flow and SELECT of its application.
    pub fn start(
        grey: GreyTransaction<'_>,
        verifier: &'v mut dyn ProofVerifier,
    ) -> (Self, CommandApdu) {
        let select = commands::select(grey.aid());
        let flow = Self {
            grey: owned(grey),
            verifier,
            state: State::Selecting,
        };
        (flow, select)
    }

    /// Starts recovery on a card already selected (its identity decoded from the FCI, and
    /// matched to the grey entry by the caller); returns GET BALANCE.
    pub fn after_select(
        grey: GreyTransaction<'_>,
        verifier: &'v mut dyn ProofVerifier,
    ) -> (Self, CommandApdu) {
        let flow = Self {
            grey: owned(grey),
            verifier,
            state: State::Balancing,
        };
        (flow, commands::get_balance())
    }

    fn decide(
        &mut self,
        balance: u32,
        response: &ResponseApdu,
    ) -> Result<RecoveryOutcome, FlowError> {
        const STEP: &str = "GET TRANSACTION PROVE";
        if NO_PROOF.contains(&response.sw) {
            return Ok(if balance == self.grey.balance_before() {
                RecoveryOutcome::NotCharged
            } else {
                RecoveryOutcome::LeftGrey(GreyReason::ProofRefused(response.sw))
            });
        }
        expect_success(STEP, response)?;
        // §4.8: MAC2 (4) · TAC (4).
        let d = &response.data;
        if d.len() != 8 {
            return Err(FlowError::MalformedResponse {
                step: STEP,
                len: d.len(),
            });
        }
        let mac2: [u8; 4] = array(&d[0..4]);
        let tac: [u8; 4] = array(&d[4..8]);
        match &self.grey {
            Grey::Purchase(p) => match self.verifier.verify_proved_mac2(p, &mac2) {
                Ok(()) => {
                    let mut record = p.debit.record.clone();
                    record.tac = tac;
                    record.mac2 = mac2;
                    Ok(RecoveryOutcome::Purchase(record))
                }
                Err(SamError::Mac2Invalid) => {
                    Ok(RecoveryOutcome::LeftGrey(GreyReason::Mac2Invalid {
                        mac2,
                        tac,
                    }))
                }
                // Nothing here can check it, now or later: the TAC goes to settlement.
                Err(
                    SamError::UnknownKey { .. }
                    | SamError::UnknownAlgorithm(_)
                    | SamError::NoPurchaseInProgress,
                ) => Ok(RecoveryOutcome::LeftGrey(GreyReason::Unverified {
                    mac2,
                    tac,
                })),
                // A SAM that failed (transport, refusal) may succeed at the next tap.
                Err(e) => Err(FlowError::Sam(e)),
            },
            Grey::Load(l) => {
                if ykt_crypto::ct_eq(&mac2, &l.credit.mac2) {
                    let mut record = l.credit.record.clone();
                    record.tac = tac;
                    Ok(RecoveryOutcome::Load(record))
                } else {
                    Ok(RecoveryOutcome::LeftGrey(GreyReason::Mac2Invalid {
                        mac2,
                        tac,
                    }))
                }
            }
        }
    }
}

fn owned(grey: GreyTransaction<'_>) -> Grey {
    match grey {
        GreyTransaction::Purchase(p) => Grey::Purchase(p.clone()),
        GreyTransaction::Load(l) => Grey::Load(l.clone()),
    }
}

impl Flow for RecoveryFlow<'_> {
    type Outcome = RecoveryOutcome;

    fn on_response(&mut self, response: ResponseApdu) -> Result<Step<RecoveryOutcome>, FlowError> {
        match core::mem::replace(&mut self.state, State::Done) {
            State::Selecting => {
                expect_success("SELECT", &response)?;
                let card = CardIdentity::from_fci(&response.data)?;
                if card.asn != self.grey.card().asn {
                    return Ok(Step::Done(RecoveryOutcome::DifferentCard));
                }
                self.state = State::Balancing;
                Ok(Step::Send(commands::get_balance()))
            }
            State::Balancing => {
                // §4.2: balance (4).
                const STEP: &str = "GET BALANCE";
                expect_success(STEP, &response)?;
                if response.data.len() != 4 {
                    return Err(FlowError::MalformedResponse {
                        step: STEP,
                        len: response.data.len(),
                    });
                }
                let balance = be_u32(&response.data);
                self.state = State::Proving { balance };
                Ok(Step::Send(self.grey.prove()))
            }
            State::Proving { balance } => Ok(Step::Done(self.decide(balance, &response)?)),
            State::Done => Err(FlowError::AlreadyDone),
        }
    }
}
