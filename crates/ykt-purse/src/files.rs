//! Elementary files of the EP ADF (e-purse.md §2) and the records the card writes itself.
//!
//! | EF | SFI | Structure | Read | Written by |
//! |---|---|---|---|---|
//! | EF15 | 15 | transparent, 30 B | always | personalisation |
//! | EF16 | 16 | transparent, 55 B | always | personalisation |
//! | EF17 | 17 | transparent, 60 B | always | personalisation |
//! | EF18 | 18 | cyclic, 10 × 23 B | always | the card, in CREDIT/DEBIT |
//! | EF1A | 1A | linear, [`EF1A_RECORDS`] × 128 B | always | UPDATE CAPP DATA CACHE + DEBIT |
//! | EF1E | 1E | cyclic, [`EF1E_RECORDS`] × 48 B | always | UPDATE CAPP DATA CACHE + DEBIT |
//!
//! No file is writable with UPDATE BINARY/RECORD or APPEND RECORD from outside: the access
//! condition is "applet only", so the runtime refuses those commands and the applet writes through
//! its own helpers inside the transaction of the command that owns the change.

use ykt_apdu::StatusWord;
use ykt_card::Context;
use ykt_card::{Access, EfSpec, EfStructure};

/// SFI of EF15, public application basic data.
pub const SFI_EF15: u8 = 0x15;
/// SFI of EF16, cardholder data.
pub const SFI_EF16: u8 = 0x16;
/// SFI of EF17, management / interoperability data.
pub const SFI_EF17: u8 = 0x17;
/// SFI of EF18, transaction detail.
pub const SFI_EF18: u8 = 0x18;
/// SFI of EF1A, composite transit record.
pub const SFI_EF1A: u8 = 0x1A;
/// SFI of EF1E, transit history.
pub const SFI_EF1E: u8 = 0x1E;

/// EF15 length (e-purse.md §2).
pub const EF15_LEN: usize = 30;
/// EF16 length (e-purse.md §2).
pub const EF16_LEN: usize = 55;
/// EF17 length (e-purse.md §2).
pub const EF17_LEN: usize = 60;
/// EF18 record length (e-purse.md §2).
pub const EF18_RECORD_LEN: usize = 23;
/// EF18 depth: 10 records (e-purse.md §2, "typical depth", M).
pub const EF18_RECORDS: u8 = 10;
/// EF1A record length for bus/metro (e-purse.md §2).
pub const EF1A_RECORD_LEN: usize = 128;
/// Number of EF1A records.
///
/// L (e-purse.md §2 gives the record layout, not the count): 4 records, personalised with record
/// identifiers 01..04 in byte 1 (see [`ef1a_initial_record`]), so `80 DC 02 D0 ..` finds record 2.
pub const EF1A_RECORDS: u8 = 4;
/// EF1E record length (e-purse.md §2).
pub const EF1E_RECORD_LEN: usize = 48;
/// EF1E depth. L (e-purse.md §10 question 8): 10, like EF18.
pub const EF1E_RECORDS: u8 = 10;

/// The EF specifications of one purse instance, in creation order.
pub fn ef_specs() -> [EfSpec; 6] {
    let transparent = |sfi: u8, size: usize| EfSpec {
        fid: u16::from(sfi),
        sfi: Some(sfi),
        structure: EfStructure::Transparent { size: size as u16 },
        read: Access::Always,
        update: Access::Applet,
    };
    [
        transparent(SFI_EF15, EF15_LEN),
        transparent(SFI_EF16, EF16_LEN),
        transparent(SFI_EF17, EF17_LEN),
        EfSpec {
            fid: u16::from(SFI_EF18),
            sfi: Some(SFI_EF18),
            structure: EfStructure::Cyclic {
                record_len: EF18_RECORD_LEN as u8,
                records: EF18_RECORDS,
            },
            read: Access::Always,
            update: Access::Applet,
        },
        EfSpec {
            fid: u16::from(SFI_EF1A),
            sfi: Some(SFI_EF1A),
            structure: EfStructure::LinearFixed {
                record_len: EF1A_RECORD_LEN as u8,
                records: EF1A_RECORDS,
            },
            read: Access::Always,
            update: Access::Applet,
        },
        EfSpec {
            fid: u16::from(SFI_EF1E),
            sfi: Some(SFI_EF1E),
            structure: EfStructure::Cyclic {
                record_len: EF1E_RECORD_LEN as u8,
                records: EF1E_RECORDS,
            },
            read: Access::Always,
            update: Access::Applet,
        },
    ]
}

/// The personalised content of EF1A record `number` (1-based): all zero except byte 1, the record
/// identifier that UPDATE CAPP DATA CACHE matches with P1 (e-purse.md §2, L).
pub fn ef1a_initial_record(number: u8) -> [u8; EF1A_RECORD_LEN] {
    let mut r = [0u8; EF1A_RECORD_LEN];
    r[1] = number;
    r
}

/// One EF18 transaction-detail record (e-purse.md §2, 23 bytes).
///
/// Bytes 2..5 are the overdraft limit, always zero on this EP, except that byte 2 carries the ticket
/// type of the purse that wrote the record. L (conformance.md SE-T2-REC-001 asks records to show the
/// ticket type; EF18 has no such field): for the e-purse ([`crate::TICKET_TYPE_EPURSE`] = `00`) the
/// record is exactly the PBOC layout; the second ticket type shows its code there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransactionRecord {
    /// Counter used by the transaction (pre-increment, §7).
    pub counter: u16,
    /// Ticket type of the purse (see above).
    pub ticket_type: u8,
    /// Amount.
    pub amount: u32,
    /// Transaction type (§5.6).
    pub transaction_type: u8,
    /// Terminal id (6 bytes BCD).
    pub terminal: [u8; 6],
    /// Date YYYYMMDD (BCD).
    pub date: [u8; 4],
    /// Time hhmmss (BCD).
    pub time: [u8; 3],
}

impl TransactionRecord {
    /// The 23-byte record.
    pub fn encode(&self) -> [u8; EF18_RECORD_LEN] {
        let mut r = [0u8; EF18_RECORD_LEN];
        r[0..2].copy_from_slice(&self.counter.to_be_bytes());
        r[2] = self.ticket_type;
        r[5..9].copy_from_slice(&self.amount.to_be_bytes());
        r[9] = self.transaction_type;
        r[10..16].copy_from_slice(&self.terminal);
        r[16..20].copy_from_slice(&self.date);
        r[20..23].copy_from_slice(&self.time);
        r
    }

    /// Parses a 23-byte record; `None` if the length is wrong.
    pub fn decode(r: &[u8]) -> Option<TransactionRecord> {
        let r: &[u8; EF18_RECORD_LEN] = r.try_into().ok()?;
        let mut terminal = [0u8; 6];
        terminal.copy_from_slice(&r[10..16]);
        Some(TransactionRecord {
            counter: u16::from_be_bytes([r[0], r[1]]),
            ticket_type: r[2],
            amount: u32::from_be_bytes([r[5], r[6], r[7], r[8]]),
            transaction_type: r[9],
            terminal,
            date: [r[16], r[17], r[18], r[19]],
            time: [r[20], r[21], r[22]],
        })
    }
}

/// Stages the EF18 record of a transaction.
pub(crate) fn append_transaction_record(
    ctx: &mut Context<'_>,
    record: &TransactionRecord,
) -> Result<(), StatusWord> {
    ctx.files().append_cyclic(SFI_EF18, &record.encode())
}
