//! Records and their upload (§5): JSON lines with a terminal signature per batch, sequence
//! gaps, and a code replayed on a second offline terminal flagged at clearing.

use ykt_crypto::Sm2PrivateKey;
use ykt_qr::record::{self, BatchError, Mode, ParameterVersions, Record};
use ykt_qr::testing::{GENERATION_TIME, TestRng};
use ykt_qr::{QrCode, Version};

use crate::common::{code, example, verifier};

const G: u64 = GENERATION_TIME as u64;

fn terminal_key(n: u8) -> Sm2PrivateKey {
    Sm2PrivateKey::from_bytes(&ykt_crypto::sm3(&[b'T', n])).unwrap()
}

fn params() -> ParameterVersions {
    ParameterVersions {
        root_keys: 3,
        whitelist: 7,
        blacklist: 42,
    }
}

#[test]
fn a_replay_on_a_second_terminal_is_accepted_offline_and_flagged_in_the_upload() {
    let ex = example(Version::INTEROPERABLE);
    let bytes = code(&ex, GENERATION_TIME).encode();
    let (mut gate1, mut gate2) = (verifier(&ex), verifier(&ex));
    let a = gate1.verify(&bytes, 300, G + 1).unwrap();
    let b = gate2.verify(&bytes, 300, G + 20).unwrap();
    let other = gate1
        .verify(&code(&ex, GENERATION_TIME + 30).encode(), 300, G + 31)
        .unwrap();
    let r1 = vec![
        Record::new(&a, 1, [0, 0, 0, 0, 0, 1], G + 1, Mode::Entry, params()),
        Record::new(&other, 2, [0, 0, 0, 0, 0, 1], G + 31, Mode::Exit, params()),
    ];
    let r2 = vec![Record::new(
        &b,
        1,
        [0, 0, 0, 0, 0, 2],
        G + 20,
        Mode::Entry,
        params(),
    )];
    let batch1 = record::seal(&r1, &terminal_key(1), &mut TestRng::new(1)).unwrap();
    let batch2 = record::seal(&r2, &terminal_key(2), &mut TestRng::new(2)).unwrap();
    assert_eq!(
        record::open(&batch1, terminal_key(1).public_key(), 1),
        Ok(2)
    );
    assert_eq!(
        record::open(&batch2, terminal_key(2).public_key(), 1),
        Ok(1)
    );
    let all: Vec<Record> = r1.into_iter().chain(r2).collect();
    assert_eq!(record::flag_replays(&all), vec![(0, 2)]);
    // Clearing can verify the chain again from the full code in the record.
    assert_eq!(QrCode::decode(&all[2].code).unwrap().encode(), bytes);
}

#[test]
fn the_json_line_carries_the_recommended_minimum() {
    let ex = example(Version::INTEROPERABLE);
    let bytes = code(&ex, GENERATION_TIME).encode();
    let a = verifier(&ex).verify(&bytes, 250, G).unwrap();
    let line = Record::new(
        &a,
        9,
        [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC],
        G,
        Mode::Single,
        params(),
    )
    .to_json_line();
    let expected = format!(
        "{{\"seq\":9,\"terminal\":\"123456789abc\",\"time\":{G},\"mode\":\"single\",\"fare\":250,\
         \"ticket_type\":1,\"account\":\"9999000112345678901f\",\"generated\":{GENERATION_TIME},\
         \"params\":{{\"4026\":3,\"4020\":7,\"blacklist\":42}},\"code\":\"{}\"}}",
        hex::encode(&bytes)
    );
    assert_eq!(line, expected);
}

#[test]
fn a_tampered_or_gapped_batch_is_refused() {
    let ex = example(Version::INTEROPERABLE);
    let mut records = Vec::new();
    let mut gate = verifier(&ex);
    for i in 0..3u32 {
        let a = gate
            .verify(
                &code(&ex, GENERATION_TIME + i).encode(),
                100,
                G + u64::from(i),
            )
            .unwrap();
        records.push(Record::new(&a, 10 + i, [0; 6], G, Mode::Single, params()));
    }
    let key = terminal_key(1);
    let batch = record::seal(&records, &key, &mut TestRng::new(3)).unwrap();
    assert_eq!(record::open(&batch, key.public_key(), 10), Ok(3));
    assert_eq!(
        record::open(&batch, key.public_key(), 9),
        Err(BatchError::SequenceGap {
            expected: 9,
            found: 10
        })
    );
    assert_eq!(
        record::open(&batch, terminal_key(2).public_key(), 10),
        Err(BatchError::SignatureInvalid)
    );
    // A changed fare.
    let text = String::from_utf8(batch.clone()).unwrap();
    let tampered = text.replacen("\"fare\":100", "\"fare\":101", 1);
    assert_eq!(
        record::open(tampered.as_bytes(), key.public_key(), 10),
        Err(BatchError::SignatureInvalid)
    );
    // A dropped record (the terminal signed the gap itself).
    let gapped = [records[0].clone(), records[2].clone()];
    let batch = record::seal(&gapped, &key, &mut TestRng::new(4)).unwrap();
    assert_eq!(
        record::open(&batch, key.public_key(), 10),
        Err(BatchError::SequenceGap {
            expected: 11,
            found: 12
        })
    );
    // No signature line, or a truncated one.
    assert_eq!(
        record::open(b"", key.public_key(), 0),
        Err(BatchError::NoSignature)
    );
    let cut = &text.as_bytes()[..text.len() - 10];
    assert!(record::open(cut, key.public_key(), 10).is_err());
    // An empty batch is a valid upload of nothing.
    let empty = record::seal(&[], &key, &mut TestRng::new(5)).unwrap();
    assert_eq!(record::open(&empty, key.public_key(), 77), Ok(0));
}

proptest::proptest! {
    #[test]
    fn open_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = record::open(&bytes, terminal_key(1).public_key(), 0);
    }
}
