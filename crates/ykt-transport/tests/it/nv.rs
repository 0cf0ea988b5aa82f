//! The journal in a file: created when missing, reopened with every entry, a torn tail dropped,
//! and a damaged or foreign file refused and left as it was.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use ykt_terminal::journal::{EntryBody, JournalError, NvStorage, Resolution};
use ykt_transport::nv::{FileStorage, open_journal};

/// A path in the temp directory, unique to this process and call, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ykt-nv-{}-{n}-{name}.journal", std::process::id()));
        let _ = fs::remove_file(&path);
        Self(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn entry(grey: u32) -> EntryBody {
    EntryBody::Resolution {
        grey,
        resolution: Resolution::NotCharged,
    }
}

#[test]
fn a_missing_file_is_created_and_entries_survive_reopening() {
    let path = TempPath::new("reopen");
    let mut journal = open_journal(&path.0).unwrap();
    assert!(journal.entries().is_empty());
    for i in 1..=10 {
        assert_eq!(journal.append(entry(i)).unwrap(), i);
    }
    drop(journal);
    let mut journal = open_journal(&path.0).unwrap();
    let got: Vec<EntryBody> = journal.entries().iter().map(|e| e.body.clone()).collect();
    assert_eq!(got, (1..=10).map(entry).collect::<Vec<_>>());
    assert_eq!(journal.append(entry(11)).unwrap(), 11);
    assert_eq!(
        fs::metadata(&path.0).unwrap().len(),
        journal.end(),
        "the file ends where the journal does"
    );
}

#[test]
fn a_torn_last_entry_is_dropped_and_overwritten() {
    let path = TempPath::new("torn");
    let mut journal = open_journal(&path.0).unwrap();
    journal.append(entry(1)).unwrap();
    let end = journal.end();
    journal.append(entry(2)).unwrap();
    drop(journal);
    // Cut the file in the middle of entry 2, as a power cut during its write would.
    let bytes = fs::read(&path.0).unwrap();
    fs::write(&path.0, &bytes[..end as usize + 5]).unwrap();
    let mut journal = open_journal(&path.0).unwrap();
    assert_eq!(journal.entries().len(), 1);
    assert_eq!(journal.append(entry(3)).unwrap(), 2);
    drop(journal);
    let journal = open_journal(&path.0).unwrap();
    assert_eq!(journal.entries()[1].body, entry(3));
}

#[test]
fn a_damaged_or_foreign_file_is_an_error_and_is_left_untouched() {
    let path = TempPath::new("damaged");
    let mut journal = open_journal(&path.0).unwrap();
    let mut ends = vec![];
    for i in 1..=3 {
        journal.append(entry(i)).unwrap();
        ends.push(journal.end());
    }
    drop(journal);
    let mut bytes = fs::read(&path.0).unwrap();
    bytes[ends[0] as usize + 9] ^= 0x40; // inside entry 2, entry 3 follows
    fs::write(&path.0, &bytes).unwrap();
    assert!(matches!(
        open_journal(&path.0).unwrap_err(),
        JournalError::Corrupt { offset } if offset == ends[0]
    ));
    assert_eq!(fs::read(&path.0).unwrap(), bytes);

    let foreign = TempPath::new("foreign");
    fs::write(&foreign.0, b"YKTCARD\0 is a card state file, not a journal").unwrap();
    assert!(matches!(
        open_journal(&foreign.0).unwrap_err(),
        JournalError::NotAJournal
    ));
    assert_eq!(
        fs::read(&foreign.0).unwrap(),
        b"YKTCARD\0 is a card state file, not a journal"
    );
}

#[test]
fn a_path_that_cannot_be_opened_is_a_storage_error() {
    let dir = std::env::temp_dir().join(format!("ykt-nv-missing-dir-{}", std::process::id()));
    let err = open_journal(dir.join("no/such/dir/journal")).unwrap_err();
    assert!(
        matches!(err, JournalError::Storage(ref e) if e.kind() == std::io::ErrorKind::NotFound)
    );
    assert!(!err.to_string().is_empty());
}

#[test]
fn reads_past_the_end_fail_and_writes_grow_the_file() {
    let path = TempPath::new("raw");
    let mut storage = FileStorage::open(&path.0).unwrap();
    assert_eq!(storage.size().unwrap(), 0);
    storage.write(4, b"abcd").unwrap();
    storage.flush().unwrap();
    assert_eq!(storage.size().unwrap(), 8);
    let mut buf = [0u8; 4];
    storage.read(4, &mut buf).unwrap();
    assert_eq!(&buf, b"abcd");
    assert!(storage.read(6, &mut buf).is_err());
    assert_eq!(storage.path(), path.0.as_path());
}
