//! The offline record log across power loss: cut at every byte of an append, reopened; damage
//! in the middle is an error; records go from the log into a signed upload.

use ykt_qr::Version;
use ykt_qr::record::{self, Mode, ParameterVersions, Record};
use ykt_qr::store::{MemoryStorage, PowerCut, RecordStore, StoreError};
use ykt_qr::testing::{GENERATION_TIME, TestRng};

use crate::common::{code, example, verifier};

fn payload(i: u32) -> Vec<u8> {
    format!(
        "{{\"seq\":{i},\"record\":\"{}\"}}",
        "x".repeat(i as usize * 7)
    )
    .into_bytes()
}

fn filled(n: u32) -> MemoryStorage {
    let mut store = RecordStore::open(MemoryStorage::new(), 100).unwrap();
    for i in 0..n {
        assert_eq!(store.append(&payload(100 + i)).unwrap(), 100 + i);
    }
    store.into_storage()
}

#[test]
fn a_power_cut_at_every_byte_of_an_append_loses_only_that_record() {
    let base = filled(3);
    let frame_len = payload(103).len() + 12;
    for cut in 0..=frame_len {
        let mut storage = base.clone();
        storage.cut_after(cut);
        let mut store = RecordStore::open(storage, 0).unwrap();
        let result = store.append(&payload(103));
        let mut storage = store.into_storage();
        storage.power_on();
        let mut store = RecordStore::open(storage, 0).unwrap();
        let stored = store.records_from(100).unwrap();
        if cut == frame_len {
            assert_eq!(result, Ok(103));
            assert_eq!(stored.len(), 4);
        } else {
            assert_eq!(result, Err(StoreError::Storage(PowerCut)), "cut {cut}");
            assert_eq!(stored.len(), 3, "cut {cut}");
            assert_eq!(store.next_sequence(), 103);
            // The terminal writes the record again; a shorter one leaves stale bytes behind.
            assert_eq!(store.append(&payload(1)).unwrap(), 103);
            assert_eq!(store.append(&payload(2)).unwrap(), 104);
            let mut again = RecordStore::open(store.into_storage(), 0).unwrap();
            let all = again.records_from(100).unwrap();
            assert_eq!(all.len(), 5, "cut {cut}");
            assert_eq!(all[3], (103, payload(1)));
            assert_eq!(all[4], (104, payload(2)));
        }
        for (i, (seq, p)) in stored.iter().take(3).enumerate() {
            assert_eq!(*seq, 100 + i as u32);
            assert_eq!(*p, payload(100 + i as u32));
        }
    }
}

#[test]
fn damage_before_the_last_frame_is_an_error() {
    let base = filled(3);
    let first_len = payload(100).len() + 12;
    for at in [0usize, 2, 3, 5, 9, 20, first_len - 1, first_len + 3] {
        let mut storage = base.clone();
        storage.bytes_mut()[at] ^= 0x40;
        assert!(
            matches!(
                RecordStore::open(storage, 0),
                Err(StoreError::Damaged { .. } | StoreError::Sequence { .. })
            ),
            "byte {at}"
        );
    }
    // Damage in the last frame reads as a torn write: that record is dropped.
    let mut storage = base.clone();
    let n = storage.bytes().len();
    storage.bytes_mut()[n - 2] ^= 0x01;
    let mut store = RecordStore::open(storage, 0).unwrap();
    assert_eq!(store.records_from(0).unwrap().len(), 2);
    assert_eq!(store.next_sequence(), 102);
}

#[test]
fn payload_limits_and_records_from() {
    let mut store = RecordStore::open(filled(3), 0).unwrap();
    assert!(matches!(
        store.append(b""),
        Err(StoreError::PayloadLength(0))
    ));
    assert!(matches!(
        store.append(&vec![b'x'; ykt_qr::store::MAX_PAYLOAD + 1]),
        Err(StoreError::PayloadLength(_))
    ));
    let from = store.records_from(101).unwrap();
    assert_eq!(from.iter().map(|r| r.0).collect::<Vec<_>>(), vec![101, 102]);
    assert!(store.records_from(103).unwrap().is_empty());
}

#[test]
fn accepted_codes_go_through_the_log_into_an_upload() {
    let ex = example(Version::INTEROPERABLE);
    let mut gate = verifier(&ex);
    let mut store = RecordStore::open(MemoryStorage::new(), 1).unwrap();
    let mut records = Vec::new();
    for i in 0..3u32 {
        let t = GENERATION_TIME + i;
        let accepted = gate
            .verify(&code(&ex, t).encode(), 100, u64::from(t))
            .unwrap();
        let rec = Record::new(
            &accepted,
            store.next_sequence(),
            [0, 0, 0, 0, 0, 9],
            u64::from(t),
            Mode::Entry,
            ParameterVersions::default(),
        );
        // Durable before the gate opens.
        store.append(rec.to_json_line().as_bytes()).unwrap();
        records.push(rec);
    }
    let mut store = RecordStore::open(store.into_storage(), 1).unwrap();
    let lines: Vec<Vec<u8>> = store
        .records_from(1)
        .unwrap()
        .into_iter()
        .map(|r| r.1)
        .collect();
    let expected: Vec<Vec<u8>> = records
        .iter()
        .map(|r| r.to_json_line().into_bytes())
        .collect();
    assert_eq!(lines, expected);
    let key = ykt_crypto::Sm2PrivateKey::from_bytes(&ykt_crypto::sm3(b"gate")).unwrap();
    let batch = record::seal(&records, &key, &mut TestRng::new(1)).unwrap();
    assert_eq!(record::open(&batch, key.public_key(), 1), Ok(3));
}

proptest::proptest! {
    #[test]
    fn open_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let mut storage = MemoryStorage::new();
        *storage.bytes_mut() = bytes;
        if let Ok(mut store) = RecordStore::open(storage, 0) {
            let _ = store.records_from(0);
        }
    }
}
