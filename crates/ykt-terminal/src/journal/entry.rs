//! What the journal holds, and its explicit byte encoding (no serde in the core).
//!
//! Payload layouts (after the frame header; integers big-endian, `aid` = length u8 · bytes,
//! `card` = issuer id 8 · application type 1 · version 1 · ASN 10 · start 4 · expiry 4):
//!
//! ```text
//!  01 pending purchase  aid · key index 1 · random 4 · purchase record
//!  02 pending load      aid · key index 1 · random 4 · MAC1 4 · MAC2 4 · load record
//!  03 purchase          aid · origin 1 · resolves u32 (0 = none) · purchase record
//!  04 load              aid · origin 1 · resolves u32 (0 = none) · MAC2 4 · load record
//!  05 resolution        grey entry u32 · code 1 (01 not charged, 02 left grey) · reason
//!
//!  purchase record  card · type 1 · balance before 4 · amount 4 · offline counter 2 · TTSN 4
//!                   · key version 1 · algorithm id 1 · terminal 6 · date-time 7 · TAC 4 · MAC2 4
//!  load record      card · balance before 4 · amount 4 · balance after 4 · online counter 2
//!                   · key version 1 · algorithm id 1 · terminal 6 · date-time 7 · TAC 4
//!  reason           01 proof refused · SW 2  |  02 MAC2 invalid · MAC2 4 · TAC 4
//!                   |  03 unverified · MAC2 4 · TAC 4
//! ```

use alloc::vec::Vec;

use ykt_apdu::StatusWord;

use crate::card_data::CardIdentity;
use crate::load::{LoadRecord, PendingCredit};
use crate::purchase::{PendingDebit, PurchaseRecord};

/// A purchase whose DEBIT went out (or was about to) and whose outcome is not known yet: the
/// grey record (灰记录) of e-purse.md §7, written before DEBIT is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPurchase {
    /// The application the purchase was made with.
    pub aid: Vec<u8>,
    /// What the terminal knew when it sent DEBIT.
    pub debit: PendingDebit,
}

/// A load whose CREDIT FOR LOAD went out and whose outcome is not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLoad {
    /// The application loaded.
    pub aid: Vec<u8>,
    /// What the terminal knew when it sent CREDIT FOR LOAD.
    pub credit: PendingCredit,
}

/// How a completed record's outcome became known. This enum is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum Origin {
    /// From the answer to DEBIT / CREDIT FOR LOAD.
    Direct,
    /// From GET TRANSACTION PROVE on a later tap (grey-transaction recovery).
    Recovered,
}

/// Why recovery left a grey entry for settlement to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GreyReason {
    /// The balance moved but GET TRANSACTION PROVE gave no proof for this transaction (the
    /// card has transacted since, or does not keep the proof).
    ProofRefused(StatusWord),
    /// The proof's MAC2 does not verify for this transaction.
    Mac2Invalid {
        /// MAC2 the card gave.
        mac2: [u8; 4],
        /// TAC the card gave.
        tac: [u8; 4],
    },
    /// The card gave a proof, but nothing at this terminal could check its MAC2 (no master
    /// key, no SAM session of that purchase left): settlement checks its TAC.
    Unverified {
        /// MAC2 the card gave.
        mac2: [u8; 4],
        /// TAC the card gave.
        tac: [u8; 4],
    },
}

/// How a grey entry was closed without a completed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolution {
    /// The card proves it was not charged (or credited); the transaction may be retried.
    NotCharged,
    /// Money may have moved but the terminal cannot prove it: uploaded grey for settlement.
    LeftGrey(GreyReason),
}

/// One journal entry's content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryBody {
    /// Grey purchase, written before DEBIT.
    PendingPurchase(PendingPurchase),
    /// Grey load, written before CREDIT FOR LOAD.
    PendingLoad(PendingLoad),
    /// A completed purchase or composite purchase.
    Purchase {
        /// The application.
        aid: Vec<u8>,
        /// The record, TAC and MAC2 included.
        record: PurchaseRecord,
        /// How it became known.
        origin: Origin,
        /// The grey entry it completes.
        resolves: Option<u32>,
    },
    /// A completed load.
    Load {
        /// The application.
        aid: Vec<u8>,
        /// The record, TAC included.
        record: LoadRecord,
        /// MAC2 the load host issued (and the card accepted).
        mac2: [u8; 4],
        /// How it became known.
        origin: Origin,
        /// The grey entry it completes.
        resolves: Option<u32>,
    },
    /// A grey entry closed without a completed record.
    Resolution {
        /// The grey entry.
        grey: u32,
        /// How it was closed.
        resolution: Resolution,
    },
}

/// One entry: its sequence number and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number, from 1.
    pub seq: u32,
    /// Content.
    pub body: EntryBody,
}

/// A grey entry, purchase or load. This enum is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum GreyTransaction<'a> {
    /// A purchase.
    Purchase(&'a PendingPurchase),
    /// A load.
    Load(&'a PendingLoad),
}

impl GreyTransaction<'_> {
    /// The application.
    pub fn aid(&self) -> &[u8] {
        match self {
            Self::Purchase(p) => &p.aid,
            Self::Load(l) => &l.aid,
        }
    }

    /// The card.
    pub fn card(&self) -> &CardIdentity {
        match self {
            Self::Purchase(p) => &p.debit.record.card,
            Self::Load(l) => &l.credit.record.card,
        }
    }
}

const KIND_PENDING_PURCHASE: u8 = 0x01;
const KIND_PENDING_LOAD: u8 = 0x02;
const KIND_PURCHASE: u8 = 0x03;
const KIND_LOAD: u8 = 0x04;
const KIND_RESOLUTION: u8 = 0x05;

impl EntryBody {
    /// The grey entry this entry resolves, if any.
    pub fn resolves(&self) -> Option<u32> {
        match self {
            Self::Purchase { resolves, .. } | Self::Load { resolves, .. } => *resolves,
            Self::Resolution { grey, .. } => Some(*grey),
            Self::PendingPurchase(_) | Self::PendingLoad(_) => None,
        }
    }

    /// This entry as a grey transaction, if it is one.
    pub fn grey(&self) -> Option<GreyTransaction<'_>> {
        match self {
            Self::PendingPurchase(p) => Some(GreyTransaction::Purchase(p)),
            Self::PendingLoad(l) => Some(GreyTransaction::Load(l)),
            _ => None,
        }
    }

    pub(super) fn encode(&self) -> (u8, Vec<u8>) {
        let mut w = Vec::with_capacity(96);
        let kind = match self {
            Self::PendingPurchase(p) => {
                put_aid(&mut w, &p.aid);
                w.push(p.debit.key_index);
                w.extend_from_slice(&p.debit.random);
                put_purchase(&mut w, &p.debit.record);
                KIND_PENDING_PURCHASE
            }
            Self::PendingLoad(l) => {
                let c = &l.credit;
                put_aid(&mut w, &l.aid);
                w.push(c.key_index);
                w.extend_from_slice(&c.random);
                w.extend_from_slice(&c.mac1);
                w.extend_from_slice(&c.mac2);
                put_load(&mut w, &c.record);
                KIND_PENDING_LOAD
            }
            Self::Purchase {
                aid,
                record,
                origin,
                resolves,
            } => {
                put_aid(&mut w, aid);
                put_origin(&mut w, *origin, *resolves);
                put_purchase(&mut w, record);
                KIND_PURCHASE
            }
            Self::Load {
                aid,
                record,
                mac2,
                origin,
                resolves,
            } => {
                put_aid(&mut w, aid);
                put_origin(&mut w, *origin, *resolves);
                w.extend_from_slice(mac2);
                put_load(&mut w, record);
                KIND_LOAD
            }
            Self::Resolution { grey, resolution } => {
                w.extend_from_slice(&grey.to_be_bytes());
                match resolution {
                    Resolution::NotCharged => w.push(0x01),
                    Resolution::LeftGrey(reason) => {
                        w.push(0x02);
                        match reason {
                            GreyReason::ProofRefused(sw) => {
                                w.push(0x01);
                                w.extend_from_slice(&sw.to_bytes());
                            }
                            GreyReason::Mac2Invalid { mac2, tac } => {
                                w.push(0x02);
                                w.extend_from_slice(mac2);
                                w.extend_from_slice(tac);
                            }
                            GreyReason::Unverified { mac2, tac } => {
                                w.push(0x03);
                                w.extend_from_slice(mac2);
                                w.extend_from_slice(tac);
                            }
                        }
                    }
                }
                KIND_RESOLUTION
            }
        };
        (kind, w)
    }

    pub(super) fn decode(kind: u8, payload: &[u8]) -> Option<Self> {
        let mut r = Reader(payload);
        let body = match kind {
            KIND_PENDING_PURCHASE => {
                let aid = r.aid()?;
                let key_index = r.u8()?;
                let random = r.array()?;
                let record = r.purchase()?;
                Self::PendingPurchase(PendingPurchase {
                    aid,
                    debit: PendingDebit {
                        record,
                        key_index,
                        random,
                    },
                })
            }
            KIND_PENDING_LOAD => {
                let aid = r.aid()?;
                let key_index = r.u8()?;
                let random = r.array()?;
                let mac1 = r.array()?;
                let mac2 = r.array()?;
                let record = r.load()?;
                Self::PendingLoad(PendingLoad {
                    aid,
                    credit: PendingCredit {
                        record,
                        key_index,
                        random,
                        mac1,
                        mac2,
                    },
                })
            }
            KIND_PURCHASE => {
                let aid = r.aid()?;
                let (origin, resolves) = r.origin()?;
                let record = r.purchase()?;
                Self::Purchase {
                    aid,
                    record,
                    origin,
                    resolves,
                }
            }
            KIND_LOAD => {
                let aid = r.aid()?;
                let (origin, resolves) = r.origin()?;
                let mac2 = r.array()?;
                let record = r.load()?;
                Self::Load {
                    aid,
                    record,
                    mac2,
                    origin,
                    resolves,
                }
            }
            KIND_RESOLUTION => {
                let grey = r.u32()?;
                let resolution = match r.u8()? {
                    0x01 => Resolution::NotCharged,
                    0x02 => Resolution::LeftGrey(match r.u8()? {
                        0x01 => GreyReason::ProofRefused(StatusWord(r.u16()?)),
                        0x02 => GreyReason::Mac2Invalid {
                            mac2: r.array()?,
                            tac: r.array()?,
                        },
                        0x03 => GreyReason::Unverified {
                            mac2: r.array()?,
                            tac: r.array()?,
                        },
                        _ => return None,
                    }),
                    _ => return None,
                };
                Self::Resolution { grey, resolution }
            }
            _ => return None,
        };
        r.0.is_empty().then_some(body)
    }
}

fn put_aid(w: &mut Vec<u8>, aid: &[u8]) {
    // An AID is 5..16 bytes (ISO 7816-4); the length byte cannot overflow for any real one.
    let len = u8::try_from(aid.len()).unwrap_or(u8::MAX);
    w.push(len);
    w.extend_from_slice(&aid[..usize::from(len)]);
}

fn put_origin(w: &mut Vec<u8>, origin: Origin, resolves: Option<u32>) {
    w.push(match origin {
        Origin::Direct => 0x00,
        Origin::Recovered => 0x01,
    });
    w.extend_from_slice(&resolves.unwrap_or(0).to_be_bytes());
}

fn put_card(w: &mut Vec<u8>, c: &CardIdentity) {
    w.extend_from_slice(&c.issuer_id);
    w.push(c.application_type);
    w.push(c.application_version);
    w.extend_from_slice(&c.asn);
    w.extend_from_slice(&c.start_date);
    w.extend_from_slice(&c.expiry_date);
}

fn put_purchase(w: &mut Vec<u8>, r: &PurchaseRecord) {
    put_card(w, &r.card);
    w.push(r.transaction_type);
    w.extend_from_slice(&r.balance_before.to_be_bytes());
    w.extend_from_slice(&r.amount.to_be_bytes());
    w.extend_from_slice(&r.offline_counter.to_be_bytes());
    w.extend_from_slice(&r.ttsn.to_be_bytes());
    w.push(r.key_version);
    w.push(r.algorithm_id);
    w.extend_from_slice(&r.terminal_id);
    w.extend_from_slice(&r.datetime);
    w.extend_from_slice(&r.tac);
    w.extend_from_slice(&r.mac2);
}

fn put_load(w: &mut Vec<u8>, r: &LoadRecord) {
    put_card(w, &r.card);
    w.extend_from_slice(&r.old_balance.to_be_bytes());
    w.extend_from_slice(&r.amount.to_be_bytes());
    w.extend_from_slice(&r.new_balance.to_be_bytes());
    w.extend_from_slice(&r.online_counter.to_be_bytes());
    w.push(r.key_version);
    w.push(r.algorithm_id);
    w.extend_from_slice(&r.terminal_id);
    w.extend_from_slice(&r.datetime);
    w.extend_from_slice(&r.tac);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.array()?))
    }

    fn aid(&mut self) -> Option<Vec<u8>> {
        let len = usize::from(self.u8()?);
        Some(self.take(len)?.to_vec())
    }

    fn origin(&mut self) -> Option<(Origin, Option<u32>)> {
        let origin = match self.u8()? {
            0x00 => Origin::Direct,
            0x01 => Origin::Recovered,
            _ => return None,
        };
        let seq = self.u32()?;
        Some((origin, (seq != 0).then_some(seq)))
    }

    fn card(&mut self) -> Option<CardIdentity> {
        Some(CardIdentity {
            issuer_id: self.array()?,
            application_type: self.u8()?,
            application_version: self.u8()?,
            asn: self.array()?,
            start_date: self.array()?,
            expiry_date: self.array()?,
        })
    }

    fn purchase(&mut self) -> Option<PurchaseRecord> {
        Some(PurchaseRecord {
            card: self.card()?,
            transaction_type: self.u8()?,
            balance_before: self.u32()?,
            amount: self.u32()?,
            offline_counter: self.u16()?,
            ttsn: self.u32()?,
            key_version: self.u8()?,
            algorithm_id: self.u8()?,
            terminal_id: self.array()?,
            datetime: self.array()?,
            tac: self.array()?,
            mac2: self.array()?,
        })
    }

    fn load(&mut self) -> Option<LoadRecord> {
        Some(LoadRecord {
            card: self.card()?,
            old_balance: self.u32()?,
            amount: self.u32()?,
            new_balance: self.u32()?,
            online_counter: self.u16()?,
            key_version: self.u8()?,
            algorithm_id: self.u8()?,
            terminal_id: self.array()?,
            datetime: self.array()?,
            tac: self.array()?,
        })
    }
}
