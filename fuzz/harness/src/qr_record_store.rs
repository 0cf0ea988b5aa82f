//! `qr_record_store`: the terminal's record log (`ykt_qr::store`) over damaged storage.
//!
//! Input byte 0 picks the mode.
//!
//! - Even: the rest is the storage as found at power-on. `RecordStore::open` never panics;
//!   when it opens, the records it gives are framed exactly as the storage's first bytes,
//!   their sequence numbers follow one another, what it dropped is at most one frame, and an
//!   append then reopen gives the same records and the new one.
//! - Odd: a log of 1–8 records is written through the store (payload lengths and bytes, the
//!   first sequence number from the input), then damaged by one operation: a power cut during
//!   one more append (reopened: the old records, or the old and the new; the next append and
//!   reopen keep them all), a byte changed (in the last frame: that record alone is dropped as
//!   torn; before it: an error), or the storage cut short (a torn tail: the complete frames
//!   before the cut stay).

use ykt_qr::store::{MAX_PAYLOAD, MemoryStorage, RecordStore, StoreError, StoredRecord};

const OVERHEAD: usize = 12;

/// The target.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        raw(rest);
    } else {
        structured(rest);
    }
}

fn frame(sequence: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + OVERHEAD);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(&sequence.to_be_bytes());
    f.extend_from_slice(payload);
    let h = ykt_crypto::sm3(&f);
    f.extend_from_slice(&h[..4]);
    f
}

fn all_records(store: &mut RecordStore<MemoryStorage>) -> Vec<StoredRecord> {
    // Sequence numbers may wrap; `records_from(0)` gives every record.
    store.records_from(0).expect("records of an open log")
}

/// Checks an open log against its storage; gives its records.
fn check_open(store: &mut RecordStore<MemoryStorage>, storage: &[u8]) -> Vec<StoredRecord> {
    let records = all_records(store);
    let mut framed = Vec::new();
    for w in records.windows(2) {
        assert_eq!(w[1].0, w[0].0.wrapping_add(1), "sequence gap accepted");
    }
    for (sequence, payload) in &records {
        assert!(!payload.is_empty() && payload.len() <= MAX_PAYLOAD);
        framed.extend_from_slice(&frame(*sequence, payload));
    }
    assert!(framed.len() <= storage.len());
    assert_eq!(
        &storage[..framed.len()],
        &framed[..],
        "records differ from the storage"
    );
    assert!(
        storage.len() - framed.len() <= MAX_PAYLOAD + OVERHEAD,
        "dropped more than one frame at open"
    );
    if let Some((last, _)) = records.last() {
        assert_eq!(store.next_sequence(), last.wrapping_add(1));
    }
    records
}

/// Appends one record and reopens: the old records and the new one.
fn append_and_reopen(store: RecordStore<MemoryStorage>, old: &[StoredRecord], payload: &[u8]) {
    let mut store = store;
    let sequence = store.append(payload).expect("append to an open log");
    let storage = store.into_storage();
    let bytes = storage.bytes().to_vec();
    let mut again = RecordStore::open(storage, 0).expect("the log reopens after an append");
    let records = check_open(&mut again, &bytes);
    assert_eq!(
        records.len(),
        old.len() + 1,
        "an append was lost or records appeared"
    );
    assert_eq!(&records[..old.len()], old);
    assert_eq!(records[old.len()], (sequence, payload.to_vec()));
}

fn raw(bytes: &[u8]) {
    let mut storage = MemoryStorage::new();
    storage.bytes_mut().extend_from_slice(bytes);
    match RecordStore::open(storage, 7) {
        Ok(mut store) => {
            let records = check_open(&mut store, bytes);
            if records.is_empty() {
                assert_eq!(store.next_sequence(), 7);
            }
            append_and_reopen(store, &records, b"{\"fuzz\":1}");
        }
        Err(StoreError::Damaged { .. } | StoreError::Sequence { .. }) => {}
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

/// Reads a little-endian-agnostic byte cursor.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
}

fn structured(data: &[u8]) {
    let mut input = Input(data);
    let first = input.u32();
    let count = usize::from(input.byte() % 8) + 1;
    let mut store = RecordStore::open(MemoryStorage::new(), first).expect("an empty log opens");
    let mut records = Vec::new();
    let mut starts = Vec::new();
    let mut at = 0usize;
    for i in 0..count {
        // Lengths 1..=MAX_PAYLOAD, mostly short.
        let len = match input.byte() {
            0xFF => usize::from(input.u16()) % MAX_PAYLOAD + 1,
            l => usize::from(l) + 1,
        };
        let fill = input.byte();
        let payload: Vec<u8> = (0..len).map(|j| fill.wrapping_add(j as u8)).collect();
        let sequence = store.append(&payload).expect("append");
        assert_eq!(sequence, first.wrapping_add(i as u32));
        starts.push(at);
        at += len + OVERHEAD;
        records.push((sequence, payload));
    }
    let mut storage = store.into_storage();
    let size = storage.bytes().len();
    assert_eq!(size, at);
    let last_start = *starts.last().expect("at least one record");
    match input.byte() % 3 {
        0 => {
            // A power cut during one more append.
            let cut = usize::from(input.u16());
            let payload = vec![input.byte(); usize::from(input.byte()) + 1];
            storage.cut_after(cut);
            let mut store = RecordStore::open(storage, 0).expect("reopen");
            let stored = store.append(&payload);
            let mut storage = store.into_storage();
            storage.power_on();
            let bytes = storage.bytes().to_vec();
            let mut store = RecordStore::open(storage, 0).expect("a torn append reopens");
            let got = check_open(&mut store, &bytes);
            if stored.is_ok() {
                assert_eq!(got.len(), count + 1, "an acknowledged append was lost");
                assert_eq!(got[count].1, payload);
            } else {
                assert_eq!(got.len(), count, "a torn append left a record");
            }
            assert_eq!(&got[..count], &records[..]);
            append_and_reopen(store, &got, b"again");
        }
        1 => {
            let pos = usize::from(input.u16()) % size;
            let mask = input.byte() | 1;
            storage.bytes_mut()[pos] ^= mask;
            let bytes = storage.bytes().to_vec();
            match RecordStore::open(storage, 0) {
                Ok(mut store) => {
                    assert!(
                        pos >= last_start,
                        "damage at byte {pos} (before the last frame at {last_start}) opened"
                    );
                    let got = check_open(&mut store, &bytes);
                    assert_eq!(&got[..], &records[..count - 1], "damaged last frame kept");
                }
                Err(StoreError::Damaged { .. } | StoreError::Sequence { .. }) => assert!(
                    pos < last_start,
                    "damage in the last frame (byte {pos}) is an error, not a torn tail"
                ),
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        _ => {
            let cut = usize::from(input.u16()) % size;
            storage.bytes_mut().truncate(cut);
            let bytes = storage.bytes().to_vec();
            let kept = starts
                .iter()
                .zip(&records)
                .filter(|(s, r)| *s + r.1.len() + OVERHEAD <= cut)
                .count();
            let mut store = RecordStore::open(storage, 0).expect("a log cut short opens");
            let got = check_open(&mut store, &bytes);
            assert_eq!(&got[..], &records[..kept], "cut at {cut}");
        }
    }
}
