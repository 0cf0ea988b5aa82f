//! The validator (and load point): purchase and load flows with a journal in non-volatile
//! storage, so that no completed record is lost and no card is charged twice (e-purse.md §7).
//!
//! ```text
//!   tap ──► SELECT ──► open grey entry for this card (AID, ASN)?
//!             │ yes ──► RecoveryFlow ──► completed record / not charged / left grey (journaled)
//!             │            └─ one of the tap's own kind, completed or left grey, ends the tap
//!             ▼
//!          PurchaseFlow / LoadFlow ──► journal the grey entry ──► DEBIT / CREDIT FOR LOAD
//!             ──► verified answer ──► journal the completed record (it resolves the grey entry)
//! ```
//!
//! Rules:
//! * The grey entry is durable before DEBIT or CREDIT FOR LOAD goes out; if the journal cannot
//!   take it, the command is not sent and the error is returned.
//! * After that command went out, any failure (no answer, a refusal, garbage, a MAC2 that does
//!   not verify) leaves the grey entry open and the outcome is [`TapOutcome::Grey`]: money may
//!   have moved. The next tap of that card recovers it before anything else.
//! * While a card's grey entry stays open (recovery itself got no clear answer), no new
//!   transaction starts on that card: GET TRANSACTION PROVE only proves the card's last one.
//! * A completed record resolves its grey entry in the same journal write.

use alloc::vec::Vec;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};

use crate::card_data::CardIdentity;
use crate::commands;
use crate::journal::{
    EntryBody, GreyReason, GreyTransaction, Journal, JournalError, NvStorage, Origin, PendingLoad,
    PendingPurchase, Resolution,
};
use crate::load::{LoadFlow, LoadParams, LoadRecord};
use crate::load_host::LoadAuthority;
use crate::purchase::{PurchaseFlow, PurchaseParams, PurchaseRecord};
use crate::recovery::{ProofVerifier, RecoveryFlow, RecoveryOutcome};
use crate::sam::PurchaseSam;
use crate::{Flow, FlowError, Step};

/// A completed record. This enum is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum Record {
    /// A purchase or composite purchase.
    Purchase(PurchaseRecord),
    /// A load.
    Load(LoadRecord),
}

/// Why a grey entry is open.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GreyCause {
    /// No answer came (card removed, transport failed).
    NoAnswer,
    /// The answer was a refusal, malformed, or did not verify (e.g. `Sam(Mac2Invalid)`).
    Flow(FlowError),
}

/// The outcome of one tap.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TapOutcome {
    /// The transaction completed; its record is journal entry `seq`.
    Completed {
        /// Journal entry of the record.
        seq: u32,
        /// The record.
        record: Record,
    },
    /// The card's grey transaction of the same kind was recovered and completed as entry
    /// `seq`: it pays for this tap, and no new transaction ran.
    Recovered {
        /// Journal entry of the completed record.
        seq: u32,
        /// The record.
        record: Record,
    },
    /// The card's grey transaction of the same kind was left grey for settlement (money moved
    /// but the card gives no valid proof): no new transaction ran, so that this tap cannot
    /// charge twice. The next tap starts afresh.
    LeftGrey {
        /// The grey entry, now closed as left grey.
        seq: u32,
        /// Why it could not be completed.
        reason: GreyReason,
    },
    /// Money may have moved and the terminal does not know: grey entry `seq` is open, to be
    /// recovered at the next tap of the card (or uploaded grey).
    Grey {
        /// The open grey entry.
        seq: u32,
        /// The command whose answer was lost or bad.
        step: &'static str,
        /// What went wrong.
        cause: GreyCause,
    },
    /// The card refused before any money could move.
    Refused {
        /// The command refused.
        step: &'static str,
        /// The card's status word.
        sw: StatusWord,
    },
    /// The card went away (no answer) before any money could move.
    CardRemoved {
        /// The command that got no answer.
        step: &'static str,
    },
    /// A bad answer, or a SAM or load-host refusal, before any money could move.
    Failed {
        /// The command whose answer (or whose security check) failed.
        step: &'static str,
        /// Why.
        error: FlowError,
    },
}

/// One tap: what recovery of the card's grey entry found, if it had one, and the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    /// The grey entry recovered in this tap and what recovery found (journaled as the entry
    /// after it).
    pub recovered: Option<(u32, RecoveryOutcome)>,
    /// The outcome of the tap.
    pub outcome: TapOutcome,
}

impl Tap {
    fn only(outcome: TapOutcome) -> Self {
        Self {
            recovered: None,
            outcome,
        }
    }
}

/// The validator: a journal and the flows that write it. The security roles and the card's
/// transmit function are passed per tap.
pub struct Validator<S: NvStorage> {
    journal: Journal<S>,
    /// TTSN of the purchase whose SAM session is still open: its DEBIT went out, its MAC2 was
    /// never checked, and no purchase has started since.
    sam_session: Option<u32>,
}

impl<S: NvStorage> core::fmt::Debug for Validator<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Validator")
            .field("journal", &self.journal)
            .finish()
    }
}

/// The step name of a command, as the flows name it in their errors.
pub fn step_name(command: &CommandApdu) -> &'static str {
    match (command.ins, command.p1) {
        (0xA4, _) => "SELECT",
        (0x50, 0x00) => "INITIALIZE FOR LOAD",
        (0x50, _) => "INITIALIZE FOR PURCHASE",
        (0xDC, _) => "UPDATE CAPP DATA CACHE",
        (0x54, _) => "DEBIT FOR PURCHASE",
        (0x52, _) => "CREDIT FOR LOAD",
        (0x5C, _) => "GET BALANCE",
        (0x5A, _) => "GET TRANSACTION PROVE",
        _ => "COMMAND",
    }
}

/// What a tap does after recovering the card's grey entry (if it had one).
enum Prelude {
    /// Go on with the tap's own transaction; the grey entry recovered, if any.
    Proceed(Option<(u32, RecoveryOutcome)>),
    /// The tap ends here.
    End(Tap),
}

fn before_money(step: &'static str, error: FlowError) -> TapOutcome {
    match error {
        FlowError::CardRefused { step, sw } => TapOutcome::Refused { step, sw },
        error => TapOutcome::Failed { step, error },
    }
}

/// The outcome when `step` got no answer (`error` `None`) or a bad one: grey if grey entry
/// `pending` guards it (money may have moved), else a plain failure.
fn unknown(pending: Option<u32>, step: &'static str, error: Option<FlowError>) -> TapOutcome {
    match (pending, error) {
        (Some(seq), Some(error)) => TapOutcome::Grey {
            seq,
            step,
            cause: GreyCause::Flow(error),
        },
        (Some(seq), None) => TapOutcome::Grey {
            seq,
            step,
            cause: GreyCause::NoAnswer,
        },
        (None, Some(error)) => before_money(step, error),
        (None, None) => TapOutcome::CardRemoved { step },
    }
}

impl<S: NvStorage> Validator<S> {
    /// Opens the journal in `storage` (see [`Journal::open`]).
    pub fn open(storage: S) -> Result<Self, JournalError<S::Error>> {
        Ok(Self {
            journal: Journal::open(storage)?,
            sam_session: None,
        })
    }

    /// The journal.
    pub fn journal(&self) -> &Journal<S> {
        &self.journal
    }

    /// The journal's storage, e.g. to arm a test storage's tearing switch (see
    /// [`Journal::danger_storage_mut`]).
    pub fn danger_storage_mut(&mut self) -> &mut S {
        self.journal.danger_storage_mut()
    }

    /// The storage, e.g. to reopen it after a simulated power cut.
    pub fn into_storage(self) -> S {
        self.journal.into_storage()
    }

    /// One purchase tap: recovery of the card's grey entry if it has one, then (unless that
    /// completed a purchase or left one grey) the purchase of `params`. `Err` only when the
    /// journal failed; a grey entry that could not be journaled means DEBIT was not sent.
    ///
    /// `sam` is the terminal's one purchase SAM, the same on every tap: the validator remembers
    /// which purchase's session it still holds, and lets it check that purchase's proof.
    pub fn purchase<E>(
        &mut self,
        params: PurchaseParams,
        sam: &mut dyn PurchaseSam,
        verifier: &mut dyn ProofVerifier,
        mut transmit: impl FnMut(&CommandApdu) -> Result<ResponseApdu, E>,
    ) -> Result<Tap, JournalError<S::Error>> {
        let aid = params.aid.clone();
        let card = match select(&aid, &mut transmit) {
            Ok(card) => card,
            Err(outcome) => return Ok(Tap::only(outcome)),
        };
        let recovered =
            match self.recover(&aid, &card, verifier, Some(&mut *sam), &mut transmit, true)? {
                Prelude::Proceed(recovered) => recovered,
                Prelude::End(tap) => return Ok(tap),
            };
        // The new purchase's MAC1 replaces whatever session the SAM held.
        self.sam_session = None;
        let (mut flow, mut command) = PurchaseFlow::after_select(params, sam, card);
        let mut pending = None;
        let outcome = loop {
            if pending.is_none()
                && let Some(debit) = flow.pending_debit()
            {
                let ttsn = debit.record.ttsn;
                let body = EntryBody::PendingPurchase(PendingPurchase {
                    aid: aid.clone(),
                    debit: debit.clone(),
                });
                pending = Some(self.journal.append(body)?);
                self.sam_session = Some(ttsn);
            }
            let step = step_name(&command);
            let Ok(response) = transmit(&command) else {
                break unknown(pending, step, None);
            };
            match flow.on_response(response) {
                Ok(Step::Send(next)) => command = next,
                Ok(Step::Done(record)) => {
                    self.sam_session = None;
                    let seq = self.journal.append(EntryBody::Purchase {
                        aid,
                        record: record.clone(),
                        origin: Origin::Direct,
                        resolves: pending,
                    })?;
                    let record = Record::Purchase(record);
                    break TapOutcome::Completed { seq, record };
                }
                Err(error) => {
                    if let FlowError::Sam(_) = error {
                        // The SAM was asked to check MAC2: that used its session up.
                        self.sam_session = None;
                    }
                    break unknown(pending, step, Some(error));
                }
            }
        };
        Ok(Tap { recovered, outcome })
    }

    /// One load tap: recovery of the card's grey entry if it has one, then (unless that
    /// completed a load or left one grey) the load of `params`. `Err` only when the journal failed; a grey
    /// entry that could not be journaled means CREDIT FOR LOAD was not sent.
    pub fn load<E>(
        &mut self,
        params: LoadParams,
        host: &mut dyn LoadAuthority,
        verifier: &mut dyn ProofVerifier,
        mut transmit: impl FnMut(&CommandApdu) -> Result<ResponseApdu, E>,
    ) -> Result<Tap, JournalError<S::Error>> {
        let aid = params.aid.clone();
        let card = match select(&aid, &mut transmit) {
            Ok(card) => card,
            Err(outcome) => return Ok(Tap::only(outcome)),
        };
        let recovered = match self.recover(&aid, &card, verifier, None, &mut transmit, false)? {
            Prelude::Proceed(recovered) => recovered,
            Prelude::End(tap) => return Ok(tap),
        };
        let (mut flow, mut command) = LoadFlow::after_select(params, host, card);
        let mut pending: Option<(u32, [u8; 4])> = None;
        let outcome = loop {
            if pending.is_none()
                && let Some(credit) = flow.pending_credit()
            {
                let mac2 = credit.mac2;
                let body = EntryBody::PendingLoad(PendingLoad {
                    aid: aid.clone(),
                    credit: credit.clone(),
                });
                pending = Some((self.journal.append(body)?, mac2));
            }
            let step = step_name(&command);
            let grey = pending.map(|(seq, _)| seq);
            let Ok(response) = transmit(&command) else {
                break unknown(grey, step, None);
            };
            match flow.on_response(response) {
                Ok(Step::Send(next)) => command = next,
                Ok(Step::Done(record)) => {
                    let seq = self.journal.append(EntryBody::Load {
                        aid,
                        record: record.clone(),
                        mac2: pending.map(|(_, mac2)| mac2).unwrap_or_default(),
                        origin: Origin::Direct,
                        resolves: grey,
                    })?;
                    let record = Record::Load(record);
                    break TapOutcome::Completed { seq, record };
                }
                Err(error) => break unknown(grey, step, Some(error)),
            }
        };
        Ok(Tap { recovered, outcome })
    }

    /// Recovers the card's open grey entry, if it has one. A purchase tap (`purchase_tap`) ends
    /// when a grey purchase was completed or left grey, a load tap likewise for a grey load:
    /// that transaction was this tap's, or may have been. Any other result lets the tap go on.
    fn recover<E>(
        &mut self,
        aid: &[u8],
        card: &CardIdentity,
        verifier: &mut dyn ProofVerifier,
        sam: Option<&mut dyn PurchaseSam>,
        transmit: &mut impl FnMut(&CommandApdu) -> Result<ResponseApdu, E>,
        purchase_tap: bool,
    ) -> Result<Prelude, JournalError<S::Error>> {
        let Some((grey, pending)) = self.journal.open_grey_for(aid, &card.asn) else {
            return Ok(Prelude::Proceed(None));
        };
        let purchase = matches!(pending, GreyTransaction::Purchase(_));
        let load_mac2 = match pending {
            GreyTransaction::Load(l) => l.credit.mac2,
            GreyTransaction::Purchase(_) => [0; 4],
        };
        // The SAM still holds the session of this purchase when its MAC2 was never checked and
        // no purchase started since (`sam_session`); then the SAM itself checks the proof.
        let live = match pending {
            GreyTransaction::Purchase(p) => self.sam_session == Some(p.debit.record.ttsn),
            GreyTransaction::Load(_) => false,
        };
        let mut session = SessionFirst {
            sam: if live { sam } else { None },
            fallback: verifier,
            asked: false,
        };
        let (flow, command) = RecoveryFlow::after_select(pending, &mut session);
        let same_kind = purchase == purchase_tap;
        let prelude = self.run_recovery(flow, command, grey, aid, same_kind, load_mac2, transmit);
        if session.asked {
            self.sam_session = None;
        }
        prelude
    }

    #[allow(clippy::too_many_arguments)] // the parts of one recovery, kept apart for borrowing
    fn run_recovery<E>(
        &mut self,
        mut flow: RecoveryFlow<'_>,
        mut command: CommandApdu,
        grey: u32,
        aid: &[u8],
        same_kind: bool,
        load_mac2: [u8; 4],
        transmit: &mut impl FnMut(&CommandApdu) -> Result<ResponseApdu, E>,
    ) -> Result<Prelude, JournalError<S::Error>> {
        loop {
            let step = step_name(&command);
            let Ok(response) = transmit(&command) else {
                return Ok(Prelude::End(Tap::only(unknown(Some(grey), step, None))));
            };
            match flow.on_response(response) {
                Ok(Step::Send(next)) => command = next,
                Ok(Step::Done(outcome)) => {
                    let body = match &outcome {
                        RecoveryOutcome::Purchase(record) => EntryBody::Purchase {
                            aid: aid.to_vec(),
                            record: record.clone(),
                            origin: Origin::Recovered,
                            resolves: Some(grey),
                        },
                        RecoveryOutcome::Load(record) => EntryBody::Load {
                            aid: aid.to_vec(),
                            record: record.clone(),
                            mac2: load_mac2,
                            origin: Origin::Recovered,
                            resolves: Some(grey),
                        },
                        RecoveryOutcome::NotCharged => EntryBody::Resolution {
                            grey,
                            resolution: Resolution::NotCharged,
                        },
                        RecoveryOutcome::LeftGrey(reason) => EntryBody::Resolution {
                            grey,
                            resolution: Resolution::LeftGrey(*reason),
                        },
                        // The caller matched the card before; a flow started after SELECT
                        // never answers this. Stay open.
                        RecoveryOutcome::DifferentCard => {
                            return Ok(Prelude::End(Tap::only(TapOutcome::Grey {
                                seq: grey,
                                step,
                                cause: GreyCause::Flow(FlowError::NotAPurse),
                            })));
                        }
                    };
                    let seq = self.journal.append(body)?;
                    let ends = match (&outcome, same_kind) {
                        (RecoveryOutcome::Purchase(r), true) => Some(TapOutcome::Recovered {
                            seq,
                            record: Record::Purchase(r.clone()),
                        }),
                        (RecoveryOutcome::Load(r), true) => Some(TapOutcome::Recovered {
                            seq,
                            record: Record::Load(r.clone()),
                        }),
                        (RecoveryOutcome::LeftGrey(reason), true) => Some(TapOutcome::LeftGrey {
                            seq: grey,
                            reason: *reason,
                        }),
                        _ => None,
                    };
                    let recovered = Some((grey, outcome));
                    return Ok(match ends {
                        Some(outcome) => Prelude::End(Tap { recovered, outcome }),
                        None => Prelude::Proceed(recovered),
                    });
                }
                Err(error) => {
                    return Ok(Prelude::End(Tap::only(unknown(
                        Some(grey),
                        step,
                        Some(error),
                    ))));
                }
            }
        }
    }

    /// The grey entries still open, oldest first (to upload flagged, e-purse.md §7).
    pub fn open_grey(&self) -> Vec<u32> {
        self.journal.open_grey().map(|(seq, _)| seq).collect()
    }
}

/// Checks a proved MAC2 with the SAM's own session first (`80 72` on a PSAM), when it still
/// holds the lost purchase's, then with the caller's verifier. The session can only confirm: a
/// MAC2 it refuses goes to the verifier, since the PSAM may have dropped the session.
struct SessionFirst<'a, 'b> {
    sam: Option<&'a mut dyn PurchaseSam>,
    fallback: &'b mut dyn ProofVerifier,
    asked: bool,
}

impl ProofVerifier for SessionFirst<'_, '_> {
    fn verify_proved_mac2(
        &mut self,
        pending: &PendingPurchase,
        mac2: &[u8; 4],
    ) -> Result<(), crate::SamError> {
        if let Some(sam) = self.sam.take() {
            self.asked = true;
            if sam.verify_mac2(mac2).is_ok() {
                return Ok(());
            }
        }
        self.fallback.verify_proved_mac2(pending, mac2)
    }
}

fn select<E>(
    aid: &[u8],
    transmit: &mut impl FnMut(&CommandApdu) -> Result<ResponseApdu, E>,
) -> Result<CardIdentity, TapOutcome> {
    const STEP: &str = "SELECT";
    let response =
        transmit(&commands::select(aid)).map_err(|_| TapOutcome::CardRemoved { step: STEP })?;
    if response.sw != StatusWord::SUCCESS {
        return Err(TapOutcome::Refused {
            step: STEP,
            sw: response.sw,
        });
    }
    CardIdentity::from_fci(&response.data).map_err(|error| TapOutcome::Failed { step: STEP, error })
}
