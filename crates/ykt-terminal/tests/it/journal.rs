//! The journal: round trip of every entry kind, a power cut at every write of a sequence of
//! appends (and of the journal's creation), damage told apart from a torn tail.

use ykt_apdu::StatusWord;
use ykt_terminal::card_data::CardIdentity;
use ykt_terminal::journal::{
    EntryBody, GreyReason, Journal, JournalError, MemoryStorage, NvStorage, Origin, PendingLoad,
    PendingPurchase, PowerLost, Resolution,
};
use ykt_terminal::load::{LoadRecord, PendingCredit};
use ykt_terminal::purchase::{PendingDebit, PurchaseRecord};

/// A small deterministic generator (xorshift64*), so failures reproduce from the printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn card(i: u8) -> CardIdentity {
    CardIdentity {
        issuer_id: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
        application_type: 0x02,
        application_version: 0x01,
        asn: [0x31, 0x04, 0x10, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, i],
        start_date: [0x20, 0x24, 0x01, 0x01],
        expiry_date: [0x20, 0x34, 0x12, 0x31],
    }
}

fn purchase(i: u32) -> PurchaseRecord {
    PurchaseRecord {
        card: card(i as u8),
        transaction_type: if i.is_multiple_of(3) { 0x09 } else { 0x06 },
        balance_before: 10_000 + i,
        amount: 200 + i,
        offline_counter: i as u16,
        ttsn: 0x0100_0000 + i,
        key_version: 1,
        algorithm_id: 0,
        terminal_id: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
        datetime: [0x20, 0x24, 0x01, 0x15, 0x10, 0x35, i as u8],
        tac: (0xA0B0_C0D0_u32 + i).to_be_bytes(),
        mac2: (0x0102_0304_u32 + i).to_be_bytes(),
    }
}

fn load(i: u32) -> LoadRecord {
    LoadRecord {
        card: card(i as u8),
        old_balance: i,
        amount: 10_000,
        new_balance: 10_000 + i,
        online_counter: i as u16,
        key_version: 1,
        algorithm_id: 4,
        terminal_id: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66],
        datetime: [0x20, 0x24, 0x01, 0x15, 0x10, 0x30, i as u8],
        tac: (0x6436_14FE_u32 + i).to_be_bytes(),
    }
}

const AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05];

/// One entry of every kind, `i` varying the content.
pub fn sample_entry(i: u32) -> EntryBody {
    match i % 7 {
        0 => EntryBody::PendingPurchase(PendingPurchase {
            aid: AID.to_vec(),
            debit: PendingDebit {
                record: PurchaseRecord {
                    tac: [0; 4],
                    mac2: [0; 4],
                    ..purchase(i)
                },
                key_index: 1,
                random: i.to_be_bytes(),
            },
        }),
        1 => EntryBody::Purchase {
            aid: AID.to_vec(),
            record: purchase(i),
            origin: Origin::Direct,
            resolves: Some(i + 100),
        },
        2 => EntryBody::PendingLoad(PendingLoad {
            aid: AID[..7].to_vec(),
            credit: PendingCredit {
                record: LoadRecord {
                    tac: [0; 4],
                    ..load(i)
                },
                key_index: 1,
                random: [1, 2, 3, 4],
                mac1: [5, 6, 7, 8],
                mac2: [9, 10, 11, 12],
            },
        }),
        3 => EntryBody::Load {
            aid: AID.to_vec(),
            record: load(i),
            mac2: [9, 10, 11, 12],
            origin: Origin::Recovered,
            resolves: Some(i + 100),
        },
        4 => EntryBody::Resolution {
            grey: i,
            resolution: Resolution::NotCharged,
        },
        5 => EntryBody::Resolution {
            grey: i,
            resolution: Resolution::LeftGrey(GreyReason::ProofRefused(StatusWord(0x9406))),
        },
        _ => EntryBody::Resolution {
            grey: i,
            resolution: Resolution::LeftGrey(GreyReason::Mac2Invalid {
                mac2: [1; 4],
                tac: [2; 4],
            }),
        },
    }
}

fn bodies(journal: &Journal<impl NvStorage>) -> Vec<EntryBody> {
    let seqs: Vec<u32> = journal.entries().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u32).collect::<Vec<_>>());
    journal.entries().iter().map(|e| e.body.clone()).collect()
}

#[test]
fn every_entry_kind_round_trips_through_the_storage() {
    let mut storage = MemoryStorage::new();
    let mut journal = Journal::open(&mut storage).unwrap();
    let expected: Vec<EntryBody> = (1..=21).map(sample_entry).collect();
    for (i, body) in expected.iter().enumerate() {
        assert_eq!(journal.append(body.clone()).unwrap(), i as u32 + 1);
    }
    drop(journal);
    let journal = Journal::open(&mut storage).unwrap();
    assert_eq!(bodies(&journal), expected);
    assert_eq!(journal.end(), storage.durable().len() as u64);
}

#[test]
fn open_grey_entries_are_those_no_later_entry_resolves() {
    let mut storage = MemoryStorage::new();
    let mut j = Journal::open(&mut storage).unwrap();
    let grey = |i: u32| sample_entry(7 * i); // a pending purchase of card i*7
    j.append(grey(1)).unwrap(); // 1
    j.append(grey(2)).unwrap(); // 2
    j.append(EntryBody::Resolution {
        grey: 1,
        resolution: Resolution::NotCharged,
    })
    .unwrap();
    let open: Vec<u32> = j.open_grey().map(|(s, _)| s).collect();
    assert_eq!(open, [2]);
    assert!(j.is_resolved(1));
    let asn = card(14).asn;
    assert_eq!(j.open_grey_for(&AID, &asn).map(|(s, _)| s), Some(2));
    assert!(j.open_grey_for(&AID[..7], &asn).is_none());
    assert!(j.open_grey_for(&AID, &card(7).asn).is_none());
}

/// Appends `entries` to a journal over `storage` until the storage fails; returns how many
/// appends returned `Ok`.
fn append_until_cut(storage: &mut MemoryStorage, entries: &[EntryBody]) -> usize {
    let Ok(mut journal) = Journal::open(&mut *storage) else {
        return 0;
    };
    let existing = journal.entries().len();
    for (i, body) in entries.iter().enumerate().skip(existing) {
        match journal.append(body.clone()) {
            Ok(seq) => assert_eq!(seq as usize, i + 1),
            Err(JournalError::Storage(PowerLost)) => return i,
            Err(e) => panic!("{e:?}"),
        }
    }
    entries.len()
}

#[test]
fn a_power_cut_at_every_write_keeps_exactly_the_completed_appends() {
    let entries: Vec<EntryBody> = (1..=12).map(sample_entry).collect();
    // Write 1 creates the header; write k + 1 appends entry k.
    let writes = entries.len() as u64 + 1;
    let mut cuts = 0;
    for n in 1..=writes {
        for keep in [None, Some(0), Some(1), Some(7), Some(usize::MAX)] {
            let mut storage = MemoryStorage::new();
            match keep {
                None => storage.arm_at(n),
                Some(k) => storage.arm_at_keeping(n, k),
            }
            let done = append_until_cut(&mut storage, &entries);
            assert!(storage.is_off(), "cut {n} did not fire");
            assert_eq!(done as u64, n.saturating_sub(2));
            storage.power_on();
            let journal = Journal::open(&mut storage).unwrap();
            assert_eq!(
                bodies(&journal),
                entries[..done],
                "cut at write {n}, keep {keep:?}"
            );
            drop(journal);
            // Appends go on where the torn one failed, and everything reads back.
            assert_eq!(append_until_cut(&mut storage, &entries), entries.len());
            let journal = Journal::open(&mut storage).unwrap();
            assert_eq!(bodies(&journal), entries);
            cuts += 1;
        }
    }
    assert_eq!(cuts, 5 * writes);
}

#[test]
fn repeated_random_cuts_never_lose_a_completed_append() {
    let entries: Vec<EntryBody> = (1..=60).map(sample_entry).collect();
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut storage = MemoryStorage::new();
        let mut confirmed = 0;
        for _round in 0..200 {
            storage.arm_at_keeping(1 + rng.below(6), rng.below(80) as usize);
            let done = append_until_cut(&mut storage, &entries);
            assert!(done >= confirmed, "seed {seed}: lost a completed append");
            confirmed = done;
            storage.arm_at(0);
            storage.power_on();
            let journal = Journal::open(&mut storage).unwrap();
            assert_eq!(bodies(&journal), entries[..confirmed], "seed {seed}");
            if confirmed == entries.len() {
                break;
            }
        }
        assert_eq!(confirmed, entries.len(), "seed {seed} never finished");
    }
}

#[test]
fn damage_in_the_middle_is_an_error_not_a_shorter_journal() {
    let mut storage = MemoryStorage::new();
    let mut journal = Journal::open(&mut storage).unwrap();
    let mut ends = vec![journal.end()];
    for i in 1..=5 {
        journal.append(sample_entry(i)).unwrap();
        ends.push(journal.end());
    }
    drop(journal);
    let clean = storage.durable().to_vec();
    // A flipped byte inside entry 2 (entries 3..5 follow it).
    let at = ends[1] as usize + 20;
    let mut damaged = MemoryStorage::from_bytes(clean.clone());
    damaged.danger_corrupt(at, clean[at] ^ 0x01);
    assert_eq!(
        Journal::open(&mut damaged).unwrap_err(),
        JournalError::Corrupt { offset: ends[1] }
    );
    // A flipped byte in the last entry is indistinguishable from a torn last append: dropped.
    let at = ends[4] as usize + 10;
    let mut torn = MemoryStorage::from_bytes(clean.clone());
    torn.danger_corrupt(at, clean[at] ^ 0x01);
    assert_eq!(Journal::open(&mut torn).unwrap().entries().len(), 4);
    // Header defects.
    let mut other = MemoryStorage::from_bytes(b"not a journal at all".to_vec());
    assert_eq!(
        Journal::open(&mut other).unwrap_err(),
        JournalError::NotAJournal
    );
    let mut short = MemoryStorage::from_bytes(b"YKTX".to_vec());
    assert_eq!(
        Journal::open(&mut short).unwrap_err(),
        JournalError::NotAJournal
    );
    let mut header = MemoryStorage::from_bytes(clean.clone());
    header.danger_corrupt(12, clean[12] ^ 0xFF);
    assert_eq!(
        Journal::open(&mut header).unwrap_err(),
        JournalError::HeaderCorrupt
    );
    // Version 2 with a matching CRC.
    let mut v2 = clean[..14].to_vec();
    v2[9] = 2;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&v2[..10]);
    v2[10..14].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        Journal::open(MemoryStorage::from_bytes(v2)).unwrap_err(),
        JournalError::UnsupportedVersion(2)
    );
    // A torn creation (a prefix of the header) is created again.
    let mut created = MemoryStorage::from_bytes(clean[..5].to_vec());
    assert!(Journal::open(&mut created).unwrap().entries().is_empty());
}

#[test]
fn writes_not_flushed_are_lost_at_a_power_cut() {
    let mut storage = MemoryStorage::new();
    storage.write(0, b"abc").unwrap();
    storage.flush().unwrap();
    storage.write(3, b"def").unwrap();
    assert_eq!(storage.size().unwrap(), 6);
    storage.power_off();
    assert_eq!(storage.size(), Err(PowerLost));
    storage.power_on();
    assert_eq!(storage.durable(), b"abc");
}

#[test]
fn every_single_bit_flip_is_refused_or_drops_only_the_last_entry() {
    let mut storage = MemoryStorage::new();
    let mut journal = Journal::open(&mut storage).unwrap();
    let entries: Vec<EntryBody> = (1..=8).map(sample_entry).collect();
    for e in &entries {
        journal.append(e.clone()).unwrap();
    }
    drop(journal);
    let clean = storage.durable().to_vec();
    let mut dropped = 0;
    let mut refused = 0;
    for at in 0..clean.len() {
        for bit in 0..8 {
            let mut damaged = MemoryStorage::from_bytes(clean.clone());
            damaged.danger_corrupt(at, clean[at] ^ (1 << bit));
            match Journal::open(&mut damaged) {
                Ok(j) => {
                    let got = bodies(&j);
                    assert_eq!(got, entries[..got.len()], "flip {at}.{bit}");
                    assert_eq!(got.len(), entries.len() - 1, "flip {at}.{bit}");
                    dropped += 1;
                }
                Err(_) => refused += 1,
            }
        }
    }
    assert!(dropped > 0 && refused > 0);
}

#[test]
fn opening_arbitrary_bytes_never_panics() {
    let mut rng = Rng(0x4A52_4E4C);
    let mut valid = MemoryStorage::new();
    let mut journal = Journal::open(&mut valid).unwrap();
    journal.append(sample_entry(1)).unwrap();
    drop(journal);
    let header = valid.durable()[..14].to_vec();
    for _ in 0..2_000 {
        let len = rng.below(200) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 {
            bytes.splice(0..0, header.iter().copied());
            // Some well-formed frame starts, so the parser goes past the sync byte.
            for _ in 0..rng.below(4) {
                let at = 14 + rng.below(bytes.len() as u64 - 13) as usize;
                if at < bytes.len() {
                    bytes[at] = 0xE7;
                }
            }
        }
        let _ = Journal::open(MemoryStorage::from_bytes(bytes));
    }
}
