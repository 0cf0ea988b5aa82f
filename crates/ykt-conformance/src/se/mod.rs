//! The SE harness and its checkers.
//!
//! The harness plays terminal, PSAM and load host in one, with the e-purse brief's §8 test
//! master keys: it builds every command, recomputes every MAC1, MAC2 and TAC itself with
//! `ykt_crypto::purse` and the input layouts of `ykt_terminal::tac` (never copying a value the
//! card returned), and records each APDU in the item's transcript.
//!
//! Checkers work relative to the card's current state, so that they also run on a real card
//! that cannot be made fresh per item: they read the balance and counters first, load before a
//! purchase when the balance is short, make room before a load that would pass the balance
//! limit, and undo what they changed where they can (PIN, block).

pub(crate) mod ep;
pub mod gp;
mod nfcqr;
mod t2;
mod tear;

use std::fmt::Write as _;

use ykt_apdu::{CommandApdu, ResponseApdu, StatusWord};
use ykt_crypto::purse::{self, PurseAlgorithm, PurseKey, SessionKey, Sm4Rules};
use ykt_purse::testing::{
    TEST_MASTER_DAMK, TEST_MASTER_DLK, TEST_MASTER_DPK, TEST_MASTER_DPUK, TEST_MASTER_DRPK,
    TEST_MASTER_DTK,
};
use ykt_purse::{EP_AID, KeyUsage};
use ykt_terminal::card_data::CardIdentity;
use ykt_terminal::commands;
use ykt_terminal::tac::{
    load_mac1_input, load_mac2_input, load_tac_input, purchase_mac1_input, purchase_tac_input,
    verify_tac,
};

use crate::isd::IsdChannel;
use crate::registry::SeCheck;
use crate::target::{CardAccess, Fault};
use crate::transcript::{Transcript, hex};
use crate::verdict::{Stop, ensure};

/// Every SE checker, by name.
pub(crate) const CHECKERS: &[(&str, SeCheck)] = &[
    ("ep::select", ep::select),
    ("ep::select_unknown", ep::select_unknown),
    ("ep::read_binary", ep::read_files),
    ("ep::read_records", ep::read_records),
    ("ep::balance", ep::balance),
    ("ep::load_ok", ep::load_ok),
    ("ep::load_bad_mac2", ep::load_bad_mac2),
    ("ep::credit_without_init", ep::credit_without_init),
    ("ep::load_over_limit", ep::load_over_limit),
    ("ep::unknown_key_index", ep::unknown_key_index),
    ("ep::purchase_ok", ep::purchase_ok),
    ("ep::purchase_vector54", ep::purchase_vector54),
    ("ep::purchase_bad_mac1", ep::purchase_bad_mac1),
    ("ep::purchase_insufficient", ep::purchase_insufficient),
    ("ep::purchase_zero_and_all", ep::purchase_zero_and_all),
    ("ep::composite_ok", ep::composite_ok),
    ("ep::composite_debit_fails", ep::composite_debit_fails),
    (
        "ep::capp_cache_outside_session",
        ep::capp_cache_outside_session,
    ),
    ("ep::counters_mixed", ep::counters_mixed),
    ("ep::counter_at_max", ep::counter_at_max),
    ("ep::prove_ok", ep::prove_ok),
    ("ep::prove_mismatch", ep::prove_mismatch),
    ("ep::pin_verify", ep::pin_verify),
    ("ep::pin_change_reload", ep::pin_change_reload),
    ("ep::block", ep::block),
    ("ep::unblock_and_bad_mac", ep::unblock_and_bad_mac),
    ("ep::bad_commands", ep::bad_commands),
    (
        "ep::secure_messaging_and_writes",
        ep::secure_messaging_and_writes,
    ),
    ("ep::pin_unblock", ep::pin_unblock_item),
    ("ep::permanent_and_card_block", ep::permanent_and_card_block),
    ("ep::tear_load_purchase", tear::tear_load_purchase),
    ("ep::tear_recovery", tear::tear_recovery),
    ("ep::sm4_load_purchase", ep::sm4_load_purchase),
    ("t2::select", t2::select),
    ("t2::purchase", t2::purchase),
    ("t2::exhausted_fallback", t2::exhausted_fallback),
    ("t2::record_ticket_type", t2::record_ticket_type),
    ("t2::tear_debit", tear::tear_t2_debit),
    ("scp::open_levels", gp::scp::open_levels),
    ("scp::wrong_host_cryptogram", gp::scp::wrong_host_cryptogram),
    ("scp::wrong_cmac", gp::scp::wrong_cmac),
    ("scp::replay", gp::scp::replay),
    ("scp::reorder", gp::scp::reorder),
    ("scp::below_level", gp::scp::below_level),
    ("scp::sequence_counter", gp::scp::sequence_counter),
    ("gp::get_data", gp::commands::get_data_objects),
    ("gp::get_status", gp::commands::get_status_listing),
    (
        "gp::set_status_forbidden",
        gp::commands::set_status_forbidden,
    ),
    ("gp::put_key_refused", gp::commands::put_key_refused),
    ("gp::install_and_load", gp::content::install_and_load),
    ("gp::delete_with_related", gp::content::delete_with_related),
    ("gp::lock_unlock", gp::content::lock_unlock),
    ("gp::personalise", gp::content::personalise),
    ("gp::ssd_key_rotation", gp::content::ssd_key_rotation),
    (
        "gp::delegated_management",
        gp::content::delegated_management,
    ),
    ("gp::refusals_unchanged", gp::content::refusals_unchanged),
    ("nfcqr::generate_key_pair", nfcqr::generate_key_pair),
    ("nfcqr::second_key", nfcqr::second_key),
    ("nfcqr::key_not_exported", nfcqr::key_not_exported),
    ("nfcqr::store_authorisation", nfcqr::store_authorisation),
    ("nfcqr::root_chain", nfcqr::root_chain),
    ("nfcqr::blob_expiry", nfcqr::blob_expiry),
    ("nfcqr::generate_code", nfcqr::generate_code),
    ("nfcqr::time_monotonic", nfcqr::time_monotonic),
    ("nfcqr::expiry", nfcqr::expiry),
    ("nfcqr::code_limit", nfcqr::code_limit),
    ("nfcqr::malformed", nfcqr::malformed),
    ("nfcqr::reset", nfcqr::reset),
    ("nfcqr::tear", nfcqr::tear),
];

/// Terminal id the harness uses (e-purse.md §8).
pub const TERMINAL: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
/// Key index of every test key (e-purse.md §8).
pub const KEY_INDEX: u8 = 0x01;
/// Host date-time of loads (e-purse.md §8.1).
pub const LOAD_DATETIME: [u8; 7] = [0x20, 0x24, 0x01, 0x15, 0x10, 0x30, 0x00];
/// Date-time of purchases (e-purse.md §8.2).
pub const PURCHASE_DATETIME: [u8; 7] = [0x20, 0x24, 0x01, 0x15, 0x10, 0x35, 0x00];
/// Balance limit the harness assumes unless an item says otherwise. L: the brief gives none;
/// the simulator's `ykt_purse::profile::DEFAULT_MAX_BALANCE`.
pub const DEFAULT_MAX_BALANCE: u32 = ykt_purse::profile::DEFAULT_MAX_BALANCE;
/// Amount loaded when a purchase needs more balance (the §8.1 load, so that a fresh test card
/// reproduces the §8.2 purchase).
pub const TOP_UP: u32 = 10_000;

/// The response of INITIALIZE FOR LOAD, parsed, with the harness's own session key.
pub struct InitLoad {
    /// Amount asked.
    pub amount: u32,
    /// Balance before.
    pub old_balance: u32,
    /// Online counter before.
    pub online_counter: u16,
    /// Algorithm announced.
    pub algorithm: PurseAlgorithm,
    /// Card random.
    pub random: [u8; 4],
    /// MAC1 as the card sent it.
    pub mac1: [u8; 4],
    /// Session key the harness derived.
    session_key: SessionKey,
}

/// The response of INITIALIZE FOR (CAPP) PURCHASE, parsed.
pub struct InitPurchase {
    /// Amount asked.
    pub amount: u32,
    /// Composite?
    pub composite: bool,
    /// Balance before.
    pub balance: u32,
    /// Offline counter before.
    pub offline_counter: u16,
    /// Key version.
    pub key_version: u8,
    /// Algorithm announced.
    pub algorithm: PurseAlgorithm,
    /// Card random.
    pub random: [u8; 4],
}

/// A completed load or purchase, as the harness verified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// Transaction type (`02`, `06`, `09`).
    pub transaction_type: u8,
    /// Amount.
    pub amount: u32,
    /// Balance before.
    pub balance_before: u32,
    /// Counter used (before the increment).
    pub counter: u16,
    /// MAC1 (card's for a load, harness's for a purchase).
    pub mac1: [u8; 4],
    /// MAC2 (harness's for a load, card's for a purchase).
    pub mac2: [u8; 4],
    /// TAC from the card (verified).
    pub tac: [u8; 4],
    /// Card random.
    pub random: [u8; 4],
}

/// The persistent state of a purse as read through APDUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// GET BALANCE.
    pub balance: u32,
    /// Online counter (from INITIALIZE FOR LOAD of 0).
    pub online: u16,
    /// Offline counter (from INITIALIZE FOR PURCHASE of 0).
    pub offline: u16,
    /// EF18 records, newest first.
    pub ef18: Vec<Vec<u8>>,
    /// EF1A records.
    pub ef1a: Vec<Vec<u8>>,
    /// EF1E records, newest first.
    pub ef1e: Vec<Vec<u8>>,
    /// GET TRANSACTION PROVE of EF18 record 1: SW and data.
    pub prove: Option<(u16, Vec<u8>)>,
}

impl State {
    /// What differs from `other`, as a readable list; empty when equal.
    pub fn diff(&self, other: &State) -> String {
        let mut out = String::new();
        if self.balance != other.balance {
            let _ = write!(out, "balance {} → {}; ", self.balance, other.balance);
        }
        if self.online != other.online {
            let _ = write!(out, "online counter {} → {}; ", self.online, other.online);
        }
        if self.offline != other.offline {
            let _ = write!(
                out,
                "offline counter {} → {}; ",
                self.offline, other.offline
            );
        }
        for (name, a, b) in [
            ("EF18", &self.ef18, &other.ef18),
            ("EF1A", &self.ef1a, &other.ef1a),
            ("EF1E", &self.ef1e, &other.ef1e),
        ] {
            if a != b {
                let _ = write!(out, "{name} records changed; ");
            }
        }
        if self.prove != other.prove {
            out.push_str("proof data changed; ");
        }
        out.trim_end_matches("; ").to_owned()
    }
}

/// The master key of `usage` under `alg` (the e-purse brief's §8 test keys).
pub fn master_key(usage: KeyUsage) -> PurseKey {
    PurseKey::from_bytes(match usage {
        KeyUsage::Load => TEST_MASTER_DLK,
        KeyUsage::Purchase => TEST_MASTER_DPK,
        KeyUsage::Tac => TEST_MASTER_DTK,
        KeyUsage::Maintenance => TEST_MASTER_DAMK,
        KeyUsage::PinUnblock => TEST_MASTER_DPUK,
        KeyUsage::PinReload => TEST_MASTER_DRPK,
    })
}

fn be_u32(b: &[u8]) -> u32 {
    b.iter().take(4).fold(0, |a, x| (a << 8) | u32::from(*x))
}

fn be_u16(b: &[u8]) -> u16 {
    b.iter().take(2).fold(0, |a, x| (a << 8) | u16::from(*x))
}

fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.iter_mut().zip(b).for_each(|(o, x)| *o = *x);
    out
}

/// Drives one card for one item: terminal, PSAM and load host in one, recording everything.
pub struct SeHarness<'a> {
    card: &'a mut dyn CardAccess,
    transcript: Transcript,
    aid: Vec<u8>,
    identity: Option<CardIdentity>,
    next_ttsn: u32,
    max_balance: u32,
    /// The ISD channel the declared profile names (`crate::isd`), for the GP items.
    isd: Option<IsdChannel>,
    /// Host challenges drawn so far (the harness's challenges are a counter, not random).
    host_challenges: u32,
}

impl<'a> SeHarness<'a> {
    /// A harness over `card`, working on the e-purse until [`SeHarness::use_aid`].
    pub fn new(card: &'a mut dyn CardAccess) -> SeHarness<'a> {
        SeHarness {
            card,
            transcript: Transcript::new(),
            aid: EP_AID.to_vec(),
            identity: None,
            next_ttsn: 1,
            max_balance: DEFAULT_MAX_BALANCE,
            isd: None,
            host_challenges: 0,
        }
    }

    /// The card's ISD channel, with the public GP test keys (from the declared profile, see
    /// [`IsdChannel::from_profile`]); `None` when the profile declares no `gp`.
    pub fn set_isd(&mut self, channel: Option<IsdChannel>) {
        self.isd = channel;
    }

    /// The transcript so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Takes the transcript out.
    pub fn into_transcript(self) -> Transcript {
        self.transcript
    }

    /// Records an event.
    pub fn note(&mut self, text: impl Into<String>) {
        self.transcript.event(text);
    }

    /// Stops (or resumes) recording APDUs.
    pub fn set_quiet(&mut self, quiet: bool) {
        self.transcript.set_quiet(quiet);
    }

    /// Works on the application `aid` from now on (select it with [`SeHarness::select`]).
    pub fn use_aid(&mut self, aid: &[u8]) {
        self.aid = aid.to_vec();
        self.identity = None;
    }

    /// Sets the balance limit the harness assumes.
    pub fn set_max_balance(&mut self, max: u32) {
        self.max_balance = max;
    }

    /// The balance limit the harness assumes.
    pub fn max_balance(&self) -> u32 {
        self.max_balance
    }

    /// The simulated card, when the target is the simulator.
    pub fn sim(&mut self) -> Option<&mut ykt_card::Card> {
        self.card.sim()
    }

    /// Resets the card (after a power loss: power-up with recovery).
    pub fn reset(&mut self) -> Result<(), Stop> {
        self.transcript.event("reset");
        self.identity = None;
        self.card.reset().map_err(|f| match f {
            Fault::PowerLost => Stop::PowerLost,
            other => Stop::Inconclusive(format!("reset failed: {other}")),
        })
    }

    /// Sends raw command bytes; returns the response.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<ResponseApdu, Stop> {
        self.transcript.command(bytes);
        match self.card.transmit(bytes) {
            Ok(r) => {
                self.transcript.response(&r);
                ResponseApdu::parse(&r)
                    .map_err(|e| Stop::Inconclusive(format!("malformed response: {e}")))
            }
            Err(Fault::PowerLost) => {
                self.transcript.no_response("power lost");
                Err(Stop::PowerLost)
            }
            Err(f) => {
                self.transcript.no_response(f.to_string());
                Err(Stop::Inconclusive(f.to_string()))
            }
        }
    }

    /// Sends a command; returns the response.
    pub fn send(&mut self, command: &CommandApdu) -> Result<ResponseApdu, Stop> {
        self.send_bytes(&command.to_bytes())
    }

    /// Sends a command and returns its SW.
    pub fn sw(&mut self, command: &CommandApdu) -> Result<u16, Stop> {
        Ok(self.send(command)?.sw.0)
    }

    /// Sends a command that must succeed; returns its data.
    pub fn ok(&mut self, command: &CommandApdu, what: &str) -> Result<Vec<u8>, Stop> {
        let r = self.send(command)?;
        expect_sw(&r, 0x9000, what)?;
        Ok(r.data)
    }

    /// SELECT of the current application; must answer `9000` with an e-purse FCI.
    pub fn select(&mut self) -> Result<(CardIdentity, Vec<u8>), Stop> {
        let aid = self.aid.clone();
        let fci = self.ok(&commands::select(&aid), "SELECT")?;
        let id = CardIdentity::from_fci(&fci)
            .map_err(|_| Stop::Fail("the FCI carries no EF15 copy in 9F0C".into()))?;
        self.transcript.mask_card_number(&id.asn);
        self.identity = Some(id.clone());
        Ok((id, fci))
    }

    fn identity(&mut self) -> Result<CardIdentity, Stop> {
        match &self.identity {
            Some(id) => Ok(id.clone()),
            None => Ok(self.select()?.0),
        }
    }

    /// The algorithm for an algorithm id the card announced (3DES or SM4 under the brief's rules).
    pub fn algorithm(id: u8) -> Result<PurseAlgorithm, Stop> {
        PurseAlgorithm::from_algorithm_id(id, Sm4Rules::BRIEF)
            .ok_or_else(|| Stop::Fail(format!("the card announced unknown algorithm id {id:02X}")))
    }

    /// The card key of `usage`, diversified by the harness from the test master key and the ASN.
    pub fn card_key(&mut self, usage: KeyUsage, alg: &PurseAlgorithm) -> Result<PurseKey, Stop> {
        let div = self.identity()?.diversifier();
        Ok(purse::diversify(alg, &master_key(usage), &div))
    }

    /// GET BALANCE.
    pub fn balance(&mut self) -> Result<u32, Stop> {
        let d = self.ok(&commands::get_balance(), "GET BALANCE")?;
        ensure(d.len() == 4, || {
            format!("GET BALANCE returned {} bytes, not 4", d.len())
        })?;
        Ok(be_u32(&d))
    }

    /// (online, offline) counters, read from INITIALIZE of amount 0 (no persistent change);
    /// `FFFF` when the card refuses with `9402`.
    pub fn counters(&mut self) -> Result<(u16, u16), Stop> {
        let mut out = [0u16; 2];
        for (i, cmd) in [
            commands::initialize_for_load(KEY_INDEX, 0, &TERMINAL),
            commands::initialize_for_purchase(false, KEY_INDEX, 0, &TERMINAL),
        ]
        .iter()
        .enumerate()
        {
            let r = self.send(cmd)?;
            out[i] = match r.sw.0 {
                0x9000 if r.data.len() >= 6 => be_u16(&r.data[4..6]),
                0x9402 => 0xFFFF,
                sw => {
                    return Err(Stop::Fail(format!(
                        "INITIALIZE of amount 0 (counter read) answered {sw:04X}"
                    )));
                }
            };
        }
        Ok((out[0], out[1]))
    }

    /// The records of `sfi`, record 1 first, until `6A83`.
    pub fn records(&mut self, sfi: u8) -> Result<Vec<Vec<u8>>, Stop> {
        let mut out = Vec::new();
        for n in 1..=32u8 {
            let r = self.send(&read_record(sfi, n))?;
            match r.sw.0 {
                0x9000 => out.push(r.data),
                0x6A83 => break,
                sw => {
                    return Err(Stop::Fail(format!(
                        "READ RECORD {n} of SFI {sfi:02X} answered {sw:04X}"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Everything persistent of the current purse (reselects it first).
    pub fn snapshot(&mut self) -> Result<State, Stop> {
        self.select()?;
        let balance = self.balance()?;
        let (online, offline) = self.counters()?;
        let ef18 = self.records(0x18)?;
        let ef1a = self.records(0x1A)?;
        let ef1e = self.records(0x1E)?;
        let prove = match ef18.first() {
            Some(r) if r.len() == 23 => {
                let resp = self.send(&commands::get_transaction_prove(r[9], be_u16(&r[0..2])))?;
                Some((resp.sw.0, resp.data))
            }
            _ => None,
        };
        Ok(State {
            balance,
            online,
            offline,
            ef18,
            ef1a,
            ef1e,
            prove,
        })
    }

    /// FAIL unless the state now equals `before`.
    pub fn expect_unchanged(&mut self, before: &State, after_what: &str) -> Result<(), Stop> {
        let now = self.snapshot()?;
        let diff = before.diff(&now);
        ensure(diff.is_empty(), || {
            format!("state changed after {after_what}: {diff}")
        })
    }

    /// INITIALIZE FOR LOAD; checks the response layout and MAC1 (recomputed).
    pub fn init_load(&mut self, amount: u32) -> Result<InitLoad, Stop> {
        let d = self.ok(
            &commands::initialize_for_load(KEY_INDEX, amount, &TERMINAL),
            "INITIALIZE FOR LOAD",
        )?;
        ensure(d.len() == 16, || {
            format!("INITIALIZE FOR LOAD returned {} bytes, not 16", d.len())
        })?;
        let algorithm = Self::algorithm(d[7])?;
        let dlk = self.card_key(KeyUsage::Load, &algorithm)?;
        let old_balance = be_u32(&d[0..4]);
        let online_counter = be_u16(&d[4..6]);
        let random = arr(&d[8..12]);
        let session_key = purse::session_key(
            &algorithm,
            &dlk,
            &purse::load_session_input(random, online_counter),
        );
        let expected = purse::session_mac(
            &algorithm,
            &session_key,
            &load_mac1_input(
                old_balance,
                amount,
                commands::transaction_type::LOAD,
                &TERMINAL,
            ),
        );
        let mac1 = arr(&d[12..16]);
        ensure(expected == mac1, || {
            format!(
                "MAC1 {} differs from the harness's {}",
                hex(&mac1),
                hex(&expected)
            )
        })?;
        Ok(InitLoad {
            amount,
            old_balance,
            online_counter,
            algorithm,
            random,
            mac1,
            session_key,
        })
    }

    /// The MAC2 the host gives for `init` (e-purse.md §5.4).
    pub fn load_mac2(&self, init: &InitLoad) -> [u8; 4] {
        purse::session_mac(
            &init.algorithm,
            &init.session_key,
            &load_mac2_input(
                init.amount,
                commands::transaction_type::LOAD,
                &TERMINAL,
                &LOAD_DATETIME,
            ),
        )
    }

    /// A complete load with every check: MAC1, TAC (recomputed by the back-office rule).
    pub fn load(&mut self, amount: u32) -> Result<Done, Stop> {
        let init = self.init_load(amount)?;
        let mac2 = self.load_mac2(&init);
        let d = self.ok(
            &commands::credit_for_load(&LOAD_DATETIME, &mac2),
            "CREDIT FOR LOAD",
        )?;
        ensure(d.len() == 4, || {
            format!("CREDIT FOR LOAD returned {} bytes, not 4", d.len())
        })?;
        let tac: [u8; 4] = arr(&d);
        let new_balance = init.old_balance.saturating_add(amount);
        let input = load_tac_input(
            new_balance,
            init.online_counter,
            amount,
            commands::transaction_type::LOAD,
            &TERMINAL,
            &LOAD_DATETIME,
        );
        self.check_tac(&init.algorithm, &input, &tac, "load")?;
        Ok(Done {
            transaction_type: commands::transaction_type::LOAD,
            amount,
            balance_before: init.old_balance,
            counter: init.online_counter,
            mac1: init.mac1,
            mac2,
            tac,
            random: init.random,
        })
    }

    fn check_tac(
        &mut self,
        alg: &PurseAlgorithm,
        input: &[u8],
        tac: &[u8; 4],
        what: &str,
    ) -> Result<(), Stop> {
        let div = self.identity()?.diversifier();
        ensure(
            verify_tac(alg, &master_key(KeyUsage::Tac), &div, input, tac),
            || format!("the {what} TAC {} does not verify", hex(tac)),
        )
    }

    /// INITIALIZE FOR (CAPP) PURCHASE; checks the layout.
    pub fn init_purchase(&mut self, amount: u32, composite: bool) -> Result<InitPurchase, Stop> {
        let d = self.ok(
            &commands::initialize_for_purchase(composite, KEY_INDEX, amount, &TERMINAL),
            "INITIALIZE FOR PURCHASE",
        )?;
        ensure(d.len() == 15, || {
            format!("INITIALIZE FOR PURCHASE returned {} bytes, not 15", d.len())
        })?;
        Ok(InitPurchase {
            amount,
            composite,
            balance: be_u32(&d[0..4]),
            offline_counter: be_u16(&d[4..6]),
            key_version: d[9],
            algorithm: Self::algorithm(d[10])?,
            random: arr(&d[11..15]),
        })
    }

    fn purchase_type(init: &InitPurchase) -> u8 {
        if init.composite {
            commands::transaction_type::COMPOSITE
        } else {
            commands::transaction_type::PURCHASE
        }
    }

    /// The PSAM's session key and MAC1 for `init` with serial `ttsn` (e-purse.md §5.1, §5.4).
    pub fn purchase_mac1(
        &mut self,
        init: &InitPurchase,
        ttsn: u32,
    ) -> Result<(SessionKey, [u8; 4]), Stop> {
        let dpk = self.card_key(KeyUsage::Purchase, &init.algorithm)?;
        let sk = purse::session_key(
            &init.algorithm,
            &dpk,
            &purse::purchase_session_input(init.random, init.offline_counter, ttsn),
        );
        let mac1 = purse::session_mac(
            &init.algorithm,
            &sk,
            &purchase_mac1_input(
                init.amount,
                Self::purchase_type(init),
                &TERMINAL,
                &PURCHASE_DATETIME,
            ),
        );
        Ok((sk, mac1))
    }

    /// The next terminal transaction serial (consumed).
    pub fn take_ttsn(&mut self) -> u32 {
        let t = self.next_ttsn;
        self.next_ttsn = self.next_ttsn.wrapping_add(1);
        t
    }

    /// DEBIT after `init` (and any cache commands), with every check: MAC2 and TAC recomputed.
    pub fn debit(&mut self, init: &InitPurchase) -> Result<Done, Stop> {
        let ttsn = self.take_ttsn();
        let (sk, mac1) = self.purchase_mac1(init, ttsn)?;
        let d = self.ok(
            &commands::debit_for_purchase(ttsn, &PURCHASE_DATETIME, &mac1),
            "DEBIT FOR PURCHASE",
        )?;
        ensure(d.len() == 8, || {
            format!("DEBIT FOR PURCHASE returned {} bytes, not 8", d.len())
        })?;
        let tac: [u8; 4] = arr(&d[0..4]);
        let mac2: [u8; 4] = arr(&d[4..8]);
        let expected = purse::session_mac(&init.algorithm, &sk, &init.amount.to_be_bytes());
        ensure(expected == mac2, || {
            format!(
                "MAC2 {} differs from the PSAM's {}",
                hex(&mac2),
                hex(&expected)
            )
        })?;
        let ty = Self::purchase_type(init);
        let input = purchase_tac_input(init.amount, ty, &TERMINAL, ttsn, &PURCHASE_DATETIME);
        self.check_tac(&init.algorithm, &input, &tac, "purchase")?;
        Ok(Done {
            transaction_type: ty,
            amount: init.amount,
            balance_before: init.balance,
            counter: init.offline_counter,
            mac1,
            mac2,
            tac,
            random: init.random,
        })
    }

    /// A complete plain purchase with every check.
    pub fn purchase(&mut self, amount: u32) -> Result<Done, Stop> {
        let init = self.init_purchase(amount, false)?;
        self.debit(&init)
    }

    /// A complete composite purchase caching `records` (P1, P2, data) first.
    pub fn composite(&mut self, amount: u32, records: &[(u8, u8, Vec<u8>)]) -> Result<Done, Stop> {
        let init = self.init_purchase(amount, true)?;
        for (p1, p2, data) in records {
            self.ok(
                &commands::update_capp_data_cache(*p1, *p2, data),
                "UPDATE CAPP DATA CACHE",
            )?;
        }
        self.debit(&init)
    }

    /// Loads when the balance is below `min` (at least [`TOP_UP`], within the limit).
    pub fn ensure_balance(&mut self, min: u32) -> Result<(), Stop> {
        let b = self.balance()?;
        if b >= min {
            return Ok(());
        }
        let want = (min - b)
            .max(TOP_UP)
            .min(self.max_balance.saturating_sub(b));
        self.note(format!("balance {b} < {min}: loading {want} first"));
        self.load(want)?;
        Ok(())
    }

    /// Spends when a load of `amount` would pass the balance limit.
    pub fn ensure_room(&mut self, amount: u32) -> Result<(), Stop> {
        let b = self.balance()?;
        if b.saturating_add(amount) <= self.max_balance {
            return Ok(());
        }
        let spend = b.saturating_add(amount) - self.max_balance;
        self.note(format!(
            "balance {b} + {amount} > limit {}: spending {spend} first",
            self.max_balance
        ));
        self.purchase(spend)?;
        Ok(())
    }

    /// GET CHALLENGE (4 bytes) then the secure-messaging command `cla ins p1 p2 04 MAC` with the
    /// DAMK MAC (e-purse.md §4.10, §4.11); `corrupt` flips the MAC. Returns the SW.
    pub fn maintenance(
        &mut self,
        alg: &PurseAlgorithm,
        header: [u8; 4],
        corrupt: bool,
    ) -> Result<u16, Stop> {
        let challenge = self.ok(
            &CommandApdu::new(0x00, 0x84, 0x00, 0x00).with_le(4),
            "GET CHALLENGE",
        )?;
        let damk = self.card_key(KeyUsage::Maintenance, alg)?;
        let input = [header[0], header[1], header[2], header[3], 0x04];
        let mut mac = purse::secure_messaging_mac(alg, &damk, &challenge, &input);
        if corrupt {
            mac[0] ^= 0xFF;
        }
        let cmd = CommandApdu::new(header[0], header[1], header[2], header[3]).with_data(mac);
        self.sw(&cmd)
    }

    /// The algorithm of the current purse's purchase key (from INITIALIZE FOR PURCHASE of 0).
    pub fn purse_algorithm(&mut self) -> Result<PurseAlgorithm, Stop> {
        let init = self.init_purchase(0, false)?;
        Ok(init.algorithm)
    }
}

/// READ RECORD `00 B2 n (SFI<<3|4) 00`.
pub fn read_record(sfi: u8, n: u8) -> CommandApdu {
    CommandApdu::new(0x00, 0xB2, n, (sfi << 3) | 0x04).with_le(256)
}

/// READ BINARY by SFI `00 B0 (80|SFI) 00 00`.
pub fn read_binary(sfi: u8) -> CommandApdu {
    CommandApdu::new(0x00, 0xB0, 0x80 | sfi, 0x00).with_le(256)
}

/// FAIL unless `r` has status `sw`.
pub fn expect_sw(r: &ResponseApdu, sw: u16, what: &str) -> Result<(), Stop> {
    ensure(r.sw == StatusWord(sw), || {
        format!("{what} answered {:04X}, expected {sw:04X}", r.sw.0)
    })
}
