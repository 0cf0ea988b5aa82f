//! The terminal's journal in a file: [`FileStorage`], an [`NvStorage`] over `std::fs`.
//!
//! The sans-IO core (`ykt_terminal::journal`) owns the journal layout and its checks; this
//! adapter only moves bytes. [`FileStorage::flush`](NvStorage::flush) is `fsync`
//! (`File::sync_data`), and a file it creates has its directory synced too, so that the file
//! itself survives a power cut. [`open_journal`] opens (or creates) a journal file; a file that
//! is not a journal, or is damaged, is a typed [`JournalError`], and the file is left untouched:
//! it is never reset to an empty journal.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ykt_terminal::journal::{Journal, JournalError, NvStorage};

/// A file as non-volatile storage.
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    path: PathBuf,
}

impl FileStorage {
    /// Opens `path` for reading and writing, creating an empty file (and syncing its
    /// directory) if there is none.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)?;
                sync_parent(&path)?;
                file
            }
            Err(e) => return Err(e),
        };
        Ok(Self { file, path })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Directories can be opened and synced on Unix; elsewhere this is best effort.
    match File::open(parent) {
        Ok(dir) => match dir.sync_all() {
            Ok(()) => Ok(()),
            Err(e) if cfg!(unix) => Err(e),
            Err(_) => Ok(()),
        },
        Err(e) if cfg!(unix) => Err(e),
        Err(_) => Ok(()),
    }
}

impl NvStorage for FileStorage {
    type Error = io::Error;

    fn size(&mut self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read_exact(buf)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.write_all(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Opens the journal in the file at `path`, creating the file if it does not exist.
pub fn open_journal(
    path: impl AsRef<Path>,
) -> Result<Journal<FileStorage>, JournalError<io::Error>> {
    let storage = FileStorage::open(path).map_err(JournalError::Storage)?;
    Journal::open(storage)
}
