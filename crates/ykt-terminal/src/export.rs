//! The journal's records for upload to settlement, as JSON lines or CSV (e-purse.md §5.5, §7).
//!
//! One record per completed transaction (direct or recovered) and one per grey transaction that
//! is open or was left grey; a grey entry that a completed record resolves appears only as that
//! record, and one confirmed not charged does not appear (no money moved).
//!
//! Fields, in CSV column order (JSON lines use the same names; hex is upper case):
//!
//! | field | content |
//! |---|---|
//! | `seq` | journal sequence number of the entry that gives the record |
//! | `status` | `completed`, `recovered` (completed from GET TRANSACTION PROVE) or `grey` |
//! | `kind` | `purchase`, `composite_purchase` or `load` |
//! | `aid` | application id, hex |
//! | `card_number` | the **full** ASN, 20 hex digits: settlement needs it to diversify the TAC key; the export is for the settlement upload only, never for logs or screens |
//! | `terminal_id` | 12 hex digits |
//! | `psam_ttsn` | terminal transaction serial, decimal; empty (JSON `null`) for loads |
//! | `transaction_type` | 2 hex digits (`06`, `09`, `02`) |
//! | `amount`, `balance_before`, `balance_after` | fen, decimal (for a grey record: the balance after if the card was charged) |
//! | `counter` | the card counter the transaction used (offline for purchases, online for loads), decimal |
//! | `key_version`, `algorithm_id` | 2 hex digits |
//! | `datetime` | `YYYYMMDDhhmmss` |
//! | `tac`, `mac2` | 8 hex digits; empty (JSON `null`) when unknown (an open grey record, or one whose card gave no proof) |
//! | `grey` | `1`/`true` for grey records, else `0`/`false` |

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::commands::transaction_type;
use crate::journal::{Entry, EntryBody, GreyReason, Origin, Resolution};

/// The CSV header line (without line end).
pub const CSV_HEADER: &str = "seq,status,kind,aid,card_number,terminal_id,psam_ttsn,transaction_type,amount,balance_before,balance_after,counter,key_version,algorithm_id,datetime,tac,mac2,grey";

/// Where a settlement record stands. This enum is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum RecordStatus {
    /// Completed from the DEBIT / CREDIT answer.
    Completed,
    /// Completed from GET TRANSACTION PROVE at a later tap.
    Recovered,
    /// Grey: money may have moved; settlement decides.
    Grey,
}

impl RecordStatus {
    fn name(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Recovered => "recovered",
            Self::Grey => "grey",
        }
    }
}

/// One record for settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRecord {
    /// Journal sequence number.
    pub seq: u32,
    /// Completed, recovered or grey.
    pub status: RecordStatus,
    /// Application id.
    pub aid: Vec<u8>,
    /// Full application serial number.
    pub asn: [u8; 10],
    /// Terminal id.
    pub terminal_id: [u8; 6],
    /// PSAM terminal transaction serial (purchases only).
    pub ttsn: Option<u32>,
    /// Transaction type (`06`, `09`, `02`).
    pub transaction_type: u8,
    /// Amount in fen.
    pub amount: u32,
    /// Balance before.
    pub balance_before: u32,
    /// Balance after.
    pub balance_after: u32,
    /// Card counter used.
    pub counter: u16,
    /// Key version.
    pub key_version: u8,
    /// Algorithm id.
    pub algorithm_id: u8,
    /// Date and time, BCD.
    pub datetime: [u8; 7],
    /// TAC, when known.
    pub tac: Option<[u8; 4]>,
    /// MAC2, when known.
    pub mac2: Option<[u8; 4]>,
}

impl SettlementRecord {
    /// `purchase`, `composite_purchase` or `load`.
    pub fn kind(&self) -> &'static str {
        match self.transaction_type {
            transaction_type::LOAD => "load",
            transaction_type::COMPOSITE => "composite_purchase",
            _ => "purchase",
        }
    }
}

/// The settlement records of `entries`, by sequence number.
pub fn settlement_records(entries: &[Entry]) -> Vec<SettlementRecord> {
    // What closed each grey entry: Some(reason) for left grey, None for anything else.
    let mut closed: BTreeMap<u32, Option<GreyReason>> = BTreeMap::new();
    for e in entries {
        match &e.body {
            EntryBody::Resolution {
                grey,
                resolution: Resolution::LeftGrey(reason),
            } => {
                closed.insert(*grey, Some(*reason));
            }
            body => {
                if let Some(grey) = body.resolves() {
                    closed.insert(grey, None);
                }
            }
        }
    }
    let status = |origin: &Origin| match origin {
        Origin::Direct => RecordStatus::Completed,
        Origin::Recovered => RecordStatus::Recovered,
    };
    let mut out = Vec::new();
    for e in entries {
        let record = match &e.body {
            EntryBody::Purchase {
                aid,
                record: r,
                origin,
                ..
            } => purchase(e.seq, status(origin), aid, r, Some((r.tac, r.mac2))),
            EntryBody::Load {
                aid,
                record: r,
                mac2,
                origin,
                ..
            } => load(e.seq, status(origin), aid, r, Some((r.tac, *mac2))),
            EntryBody::PendingPurchase(p) => match closed.get(&e.seq) {
                Some(None) => continue,
                left => {
                    let proof = proof(left);
                    purchase(e.seq, RecordStatus::Grey, &p.aid, &p.debit.record, proof)
                }
            },
            EntryBody::PendingLoad(l) => match closed.get(&e.seq) {
                Some(None) => continue,
                left => {
                    let proof = proof(left);
                    load(e.seq, RecordStatus::Grey, &l.aid, &l.credit.record, proof)
                }
            },
            _ => continue,
        };
        out.push(record);
    }
    out
}

fn proof(left: Option<&Option<GreyReason>>) -> Option<([u8; 4], [u8; 4])> {
    match left {
        Some(Some(
            GreyReason::Mac2Invalid { mac2, tac } | GreyReason::Unverified { mac2, tac },
        )) => Some((*tac, *mac2)),
        _ => None,
    }
}

fn purchase(
    seq: u32,
    status: RecordStatus,
    aid: &[u8],
    r: &crate::purchase::PurchaseRecord,
    proof: Option<([u8; 4], [u8; 4])>,
) -> SettlementRecord {
    SettlementRecord {
        seq,
        status,
        aid: aid.to_vec(),
        asn: r.card.asn,
        terminal_id: r.terminal_id,
        ttsn: Some(r.ttsn),
        transaction_type: r.transaction_type,
        amount: r.amount,
        balance_before: r.balance_before,
        balance_after: r.balance_after(),
        counter: r.offline_counter,
        key_version: r.key_version,
        algorithm_id: r.algorithm_id,
        datetime: r.datetime,
        tac: proof.map(|p| p.0),
        mac2: proof.map(|p| p.1),
    }
}

fn load(
    seq: u32,
    status: RecordStatus,
    aid: &[u8],
    r: &crate::load::LoadRecord,
    proof: Option<([u8; 4], [u8; 4])>,
) -> SettlementRecord {
    SettlementRecord {
        seq,
        status,
        aid: aid.to_vec(),
        asn: r.card.asn,
        terminal_id: r.terminal_id,
        ttsn: None,
        transaction_type: transaction_type::LOAD,
        amount: r.amount,
        balance_before: r.old_balance,
        balance_after: r.new_balance,
        counter: r.online_counter,
        key_version: r.key_version,
        algorithm_id: r.algorithm_id,
        datetime: r.datetime,
        tac: proof.map(|p| p.0),
        mac2: proof.map(|p| p.1),
    }
}

struct Hex<'a>(&'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

/// One JSON object per record, each on its own line (`\n`-terminated).
pub fn json_lines(records: &[SettlementRecord]) -> String {
    let mut out = String::new();
    for r in records {
        // Writing to a String cannot fail.
        let _ = write_json(&mut out, r);
    }
    out
}

fn write_json(out: &mut String, r: &SettlementRecord) -> core::fmt::Result {
    write!(
        out,
        "{{\"seq\":{},\"status\":\"{}\",\"kind\":\"{}\",\"aid\":\"{}\",\"card_number\":\"{}\",\"terminal_id\":\"{}\",",
        r.seq,
        r.status.name(),
        r.kind(),
        Hex(&r.aid),
        Hex(&r.asn),
        Hex(&r.terminal_id),
    )?;
    match r.ttsn {
        Some(t) => write!(out, "\"psam_ttsn\":{t},")?,
        None => out.push_str("\"psam_ttsn\":null,"),
    }
    write!(
        out,
        "\"transaction_type\":\"{:02X}\",\"amount\":{},\"balance_before\":{},\"balance_after\":{},\"counter\":{},\"key_version\":\"{:02X}\",\"algorithm_id\":\"{:02X}\",\"datetime\":\"{}\",",
        r.transaction_type,
        r.amount,
        r.balance_before,
        r.balance_after,
        r.counter,
        r.key_version,
        r.algorithm_id,
        Hex(&r.datetime),
    )?;
    for (name, value) in [("tac", &r.tac), ("mac2", &r.mac2)] {
        match value {
            Some(v) => write!(out, "\"{name}\":\"{}\",", Hex(v))?,
            None => write!(out, "\"{name}\":null,")?,
        }
    }
    writeln!(out, "\"grey\":{}}}", r.status == RecordStatus::Grey)
}

/// [`CSV_HEADER`] and one line per record (`\n` line ends; no field needs quoting).
pub fn csv(records: &[SettlementRecord]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in records {
        // Writing to a String cannot fail.
        let _ = write_csv(&mut out, r);
    }
    out
}

fn write_csv(out: &mut String, r: &SettlementRecord) -> core::fmt::Result {
    write!(
        out,
        "{},{},{},{},{},{},",
        r.seq,
        r.status.name(),
        r.kind(),
        Hex(&r.aid),
        Hex(&r.asn),
        Hex(&r.terminal_id),
    )?;
    if let Some(t) = r.ttsn {
        write!(out, "{t}")?;
    }
    write!(
        out,
        ",{:02X},{},{},{},{},{:02X},{:02X},{},",
        r.transaction_type,
        r.amount,
        r.balance_before,
        r.balance_after,
        r.counter,
        r.key_version,
        r.algorithm_id,
        Hex(&r.datetime),
    )?;
    if let Some(t) = r.tac {
        write!(out, "{}", Hex(&t))?;
    }
    out.push(',');
    if let Some(m) = r.mac2 {
        write!(out, "{}", Hex(&m))?;
    }
    writeln!(out, ",{}", u8::from(r.status == RecordStatus::Grey))
}
