//! The terminal target: the terminal under test (the `ykt_terminal` flows with a stub PSAM,
//! [`SoftwareSam`], and the issuer load host) runs against a scripted lower-tester card.
//!
//! ```text
//!  terminal under test ──APDU──▶ LowerTester ──(script: pass, corrupt, replace, refuse, remove)──▶ simulated card
//!        │   (PurchaseFlow, LoadFlow)     │ records every APDU, checks what the terminal sends
//!        └── stub PSAM (SoftwareSam), load host (IssuerLoadHost)
//! ```
//!
//! The checker then judges the terminal's outcome: a completed record with a TAC the back office
//! accepts, or the refusal the bad card answer calls for, and that no command was sent after a
//! refusal that should have stopped the flow.

mod items;
mod wired;

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_crypto::purse::{PurseKey, Sm4Rules};
use ykt_purse::testing::{TEST_MASTER_DLK, TEST_MASTER_DPK};
use ykt_terminal::card_data::CardIdentity;
use ykt_terminal::load::{LoadFlow, LoadParams, LoadRecord};
use ykt_terminal::load_host::IssuerLoadHost;
use ykt_terminal::purchase::{CappRecord, PurchaseFlow, PurchaseParams, PurchaseRecord};
use ykt_terminal::sam::{MasterKey, PurchaseSam, SoftwareSam};
use ykt_terminal::{DriveError, FlowError, HostError, SamError, commands, drive};

use crate::registry::TeCheck;
use crate::se::SeHarness;
use crate::target::{CardAccess, Fault, SimCard, sim_fixture};
use crate::transcript::{Transcript, hex};
use crate::verdict::Stop;

/// Every terminal checker, by name.
pub(crate) const CHECKERS: &[(&str, TeCheck)] = &[
    ("te::purchase_ok", items::purchase_ok),
    ("te::refuses_bad_answer", items::refuses_bad_answer),
    ("te::removed_after_debit", items::removed_after_debit),
    ("te::composite_entry_exit", items::composite_entry_exit),
    ("te::load_ok", items::load_ok),
    ("te::record_integrity", items::record_integrity),
    ("te::blacklist", wired::blacklist),
    ("te::screening", wired::screening),
    ("te::grey_recovery", wired::grey_recovery),
    ("te::start_date", wired::start_date),
    ("te::grey_elsewhere", wired::grey_elsewhere),
    ("te::second_ticket", wired::second_ticket),
];

/// Terminal id of the terminal under test (its PSAM's number).
pub const TERMINAL: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x20, 0x01];
/// Key index the terminal uses.
pub const KEY_INDEX: u8 = 0x01;
/// Date-time the terminal stamps (its clock is an argument of the flows).
pub const DATETIME: [u8; 7] = [0x20, 0x26, 0x03, 0x01, 0x08, 0x15, 0x00];
/// First TTSN of the stub PSAM.
pub const FIRST_TTSN: u32 = 0x0000_0100;

/// What the lower tester does to one command.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Let the card answer, then XOR `mask` into byte `index` of the response data.
    Corrupt {
        /// Byte of the response data.
        index: usize,
        /// XOR mask.
        mask: u8,
    },
    /// Let the card answer, then keep only the first `len` data bytes (SW kept).
    Truncate(usize),
    /// Let the card answer, then send these bytes instead (data ‖ SW).
    Replace(Vec<u8>),
    /// Do not pass the command on; answer this status word.
    Refuse(u16),
    /// Pass the command on, then leave the field: the response is lost.
    RemoveAfter,
    /// Leave the field before the command reaches the card.
    RemoveBefore,
}

/// A script line: `action` on the `nth` (1-based) command with this INS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// INS of the command.
    pub ins: u8,
    /// Which occurrence (1 = the first).
    pub nth: usize,
    /// What to do.
    pub action: Action,
}

/// The card left the field (lower tester): no response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRemoved;

impl fmt::Display for CardRemoved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("card removed from the field")
    }
}

impl std::error::Error for CardRemoved {}

/// A card that answers per script: the simulated test card underneath, with rules on top.
pub struct LowerTester {
    card: SimCard,
    rules: Vec<Rule>,
    seen: Vec<CommandApdu>,
    answers: Vec<(u8, Vec<u8>)>,
    removed: bool,
    log: Rc<RefCell<Transcript>>,
}

impl LowerTester {
    fn occurrence(&self, ins: u8) -> usize {
        self.seen.iter().filter(|c| c.ins == ins).count()
    }

    /// One exchange as the terminal sees it.
    pub fn transmit(&mut self, command: &CommandApdu) -> Result<ResponseApdu, CardRemoved> {
        let bytes = command.to_bytes();
        self.log.borrow_mut().command(&bytes);
        if self.removed {
            self.log.borrow_mut().no_response("card not in the field");
            return Err(CardRemoved);
        }
        self.seen.push(command.clone());
        let nth = self.occurrence(command.ins);
        let rule = self
            .rules
            .iter()
            .find(|r| r.ins == command.ins && r.nth == nth)
            .cloned();
        if let Some(Rule { action, .. }) = &rule {
            match action {
                Action::Refuse(sw) => {
                    self.log
                        .borrow_mut()
                        .event(format!("lower tester: refuses with {sw:04X}"));
                    let r = StatusWord(*sw).to_bytes();
                    self.log.borrow_mut().response(&r);
                    return Ok(ResponseApdu::status(StatusWord(*sw)));
                }
                Action::RemoveBefore => {
                    self.removed = true;
                    self.log
                        .borrow_mut()
                        .no_response("lower tester: card removed before the command");
                    return Err(CardRemoved);
                }
                _ => {}
            }
        }
        let answer = match self.card.transmit(&bytes) {
            Ok(a) => a,
            Err(f) => {
                self.log.borrow_mut().no_response(f.to_string());
                return Err(CardRemoved);
            }
        };
        let answer = match rule.map(|r| r.action) {
            None => answer,
            Some(Action::RemoveAfter) => {
                self.removed = true;
                self.log.borrow_mut().event(format!(
                    "lower tester: the card answered {}, then left the field before the answer reached the terminal",
                    hex(&answer)
                ));
                self.log.borrow_mut().no_response("card removed");
                return Err(CardRemoved);
            }
            Some(Action::Corrupt { index, mask }) => {
                let mut a = answer;
                if index < a.len().saturating_sub(2) {
                    a[index] ^= mask;
                }
                self.log.borrow_mut().event(format!(
                    "lower tester: byte {index} of the response XOR {mask:02X}"
                ));
                a
            }
            Some(Action::Truncate(len)) => {
                let n = answer.len();
                let (data, sw) = answer.split_at(n.saturating_sub(2));
                let mut a = data[..len.min(data.len())].to_vec();
                a.extend_from_slice(sw);
                self.log
                    .borrow_mut()
                    .event(format!("lower tester: response data cut to {len} bytes"));
                a
            }
            Some(Action::Replace(bytes)) => {
                self.log.borrow_mut().event(format!(
                    "lower tester: the card answered {}, the terminal gets garbage",
                    hex(&answer)
                ));
                bytes
            }
            Some(Action::Refuse(_) | Action::RemoveBefore) => answer,
        };
        if command.ins == 0xA4
            && let Ok(id) =
                CardIdentity::from_fci(answer.get(..answer.len().saturating_sub(2)).unwrap_or(&[]))
        {
            self.log.borrow_mut().mask_card_number(&id.asn);
        }
        self.log.borrow_mut().response(&answer);
        self.answers.push((command.ins, answer.clone()));
        ResponseApdu::parse(&answer).map_err(|_| CardRemoved)
    }
}

/// Everything one terminal item needs: the lower tester, the terminal's PSAM and host.
pub struct TeHarness {
    lt: LowerTester,
    psam: SoftwareSam,
    host: IssuerLoadHost,
    log: Rc<RefCell<Transcript>>,
}

fn masters(key: [u8; 16]) -> Vec<MasterKey> {
    vec![MasterKey {
        index: KEY_INDEX,
        version: KEY_INDEX,
        key: PurseKey::from_bytes(key),
    }]
}

/// The outcome of one run of the terminal under test.
pub type TerminalResult<T> = Result<T, DriveError<CardRemoved>>;

impl TeHarness {
    /// A harness over a fresh simulated card `fixture` (see [`sim_fixture`]).
    pub fn new(fixture: &str) -> Result<TeHarness, Stop> {
        let card = sim_fixture(fixture).map_err(|e| Stop::Inconclusive(e.to_string()))?;
        let log = Rc::new(RefCell::new(Transcript::new()));
        Ok(TeHarness {
            lt: LowerTester {
                card: SimCard(card),
                rules: Vec::new(),
                seen: Vec::new(),
                answers: Vec::new(),
                removed: false,
                log: Rc::clone(&log),
            },
            psam: SoftwareSam::new(
                TERMINAL,
                FIRST_TTSN,
                masters(TEST_MASTER_DPK),
                Sm4Rules::BRIEF,
            ),
            host: IssuerLoadHost::new(masters(TEST_MASTER_DLK), Sm4Rules::BRIEF),
            log,
        })
    }

    /// Adds a script rule to the lower tester.
    pub fn script(&mut self, rule: Rule) {
        self.note(format!(
            "lower tester script: command INS {:02X} #{}: {:?}",
            rule.ins, rule.nth, rule.action
        ));
        self.lt.rules.push(rule);
    }

    /// Drops every script rule and puts the card back in the field.
    pub fn clear_script(&mut self) {
        self.lt.rules.clear();
        self.lt.removed = false;
    }

    /// Records an event.
    pub fn note(&self, text: impl Into<String>) {
        self.log.borrow_mut().event(text);
    }

    /// The transcript so far.
    pub fn transcript(&self) -> Transcript {
        self.log.borrow().clone()
    }

    /// Commands the terminal sent so far (to the lower tester).
    pub fn sent(&self) -> &[CommandApdu] {
        &self.lt.seen
    }

    /// The last answer (data ‖ SW) the terminal received to a command with `ins`.
    pub fn last_answer(&self, ins: u8) -> Option<&[u8]> {
        self.lt
            .answers
            .iter()
            .rev()
            .find(|(i, _)| *i == ins)
            .map(|(_, a)| a.as_slice())
    }

    /// How many commands with `ins` the terminal sent.
    pub fn sent_count(&self, ins: u8) -> usize {
        self.lt.occurrence(ins)
    }

    /// Whether the terminal had its PSAM check the MAC2 of the last purchase (`80 72`): the stub
    /// PSAM then has no purchase session left, so a second check is refused.
    pub fn mac2_was_checked(&mut self, mac2: &[u8; 4]) -> bool {
        matches!(
            self.psam.verify_mac2(mac2),
            Err(SamError::NoPurchaseInProgress)
        )
    }

    /// The stub PSAM's next TTSN.
    pub fn next_ttsn(&self) -> u32 {
        self.psam.next_ttsn()
    }

    /// A purchase (plain, or composite with `records`) by the terminal under test.
    pub fn purchase(
        &mut self,
        amount: u32,
        composite: Option<Vec<CappRecord>>,
    ) -> TerminalResult<PurchaseRecord> {
        self.note(format!(
            "terminal: purchase of {amount} (composite: {})",
            composite.is_some()
        ));
        let params = PurchaseParams {
            aid: commands::PURSE_AID.to_vec(),
            key_index: KEY_INDEX,
            amount,
            datetime: DATETIME,
            composite,
        };
        let (flow, first) = PurchaseFlow::start(params, &mut self.psam);
        let lt = &mut self.lt;
        let r = drive(flow, first, |c| lt.transmit(c));
        self.note(format!(
            "stub PSAM: next TTSN {:08X}",
            self.psam.next_ttsn()
        ));
        self.note(outcome_text(&r));
        r
    }

    /// A load by the terminal under test (as a load point).
    pub fn load(&mut self, amount: u32) -> TerminalResult<LoadRecord> {
        self.note(format!("terminal: load of {amount}"));
        let params = LoadParams {
            aid: commands::PURSE_AID.to_vec(),
            key_index: KEY_INDEX,
            amount,
            terminal_id: TERMINAL,
            datetime: DATETIME,
        };
        let (flow, first) = LoadFlow::start(params, &mut self.host);
        let lt = &mut self.lt;
        let r = drive(flow, first, |c| lt.transmit(c));
        self.note(outcome_text(&r));
        r
    }

    /// Runs any flow of the terminal under test against the lower tester.
    pub fn drive<F: ykt_terminal::Flow>(
        &mut self,
        flow: F,
        first: CommandApdu,
    ) -> TerminalResult<F::Outcome> {
        let lt = &mut self.lt;
        let r = drive(flow, first, |c| lt.transmit(c));
        self.note(outcome_text(&r));
        r
    }

    /// Hands the lower tester's transmit function to a terminal component (e.g. the validator).
    pub fn with_card<T>(
        &mut self,
        f: impl FnOnce(&mut dyn FnMut(&CommandApdu) -> Result<ResponseApdu, CardRemoved>) -> T,
    ) -> T {
        let lt = &mut self.lt;
        let mut transmit = |c: &CommandApdu| lt.transmit(c);
        f(&mut transmit)
    }

    /// Reads the card's state behind the lower tester's back (no script), as the SE harness does.
    pub fn inspect<T>(
        &mut self,
        f: impl FnOnce(&mut SeHarness<'_>) -> Result<T, Stop>,
    ) -> Result<T, Stop> {
        let mut s = SeHarness::new(&mut self.lt.card as &mut dyn CardAccess);
        let r = f(&mut s);
        let t = s.into_transcript();
        self.note(format!(
            "lower tester inspects the card ({} exchanges)",
            t.entries().len() / 2
        ));
        r
    }

    /// Powers the card again (after a removal) and puts it back in the field.
    pub fn retap(&mut self) -> Result<(), Stop> {
        self.lt.removed = false;
        self.note("card back in the field (reset)");
        self.lt
            .card
            .reset()
            .map_err(|f: Fault| Stop::Inconclusive(f.to_string()))
    }
}

fn outcome_text<T>(r: &TerminalResult<T>) -> String {
    match r {
        Ok(_) => "terminal outcome: completed".into(),
        Err(e) => format!("terminal outcome: {e}"),
    }
}

/// A short name for how the terminal stopped, matched against the item's `expect` parameter.
pub fn error_kind(e: &DriveError<CardRemoved>) -> &'static str {
    match e {
        DriveError::Transport(_) => "transport",
        DriveError::Flow(f) => match f {
            FlowError::CardRefused { .. } => "card-refused",
            FlowError::MalformedResponse { .. } => "malformed",
            FlowError::NotAPurse => "not-a-purse",
            FlowError::UnknownAlgorithm(_)
            | FlowError::Sam(SamError::UnknownAlgorithm(_))
            | FlowError::Host(HostError::UnknownAlgorithm(_)) => "unknown-algorithm",
            FlowError::Sam(SamError::Mac2Invalid) => "sam-mac2",
            FlowError::Host(HostError::Mac1Invalid) => "host-mac1",
            _ => "other",
        },
        _ => "other",
    }
}
