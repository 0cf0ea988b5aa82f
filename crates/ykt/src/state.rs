//! The card state file of `ykt se serve --state FILE`: load or create, and atomic saves.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, Entropy, StateError};
use ykt_purse::factory::PurseAppletFactory;
use ykt_purse::psam::PsamAppletFactory;

/// Every applet this build can re-create from a state file: the e-purse (and second ticket
/// type) and the PSAM.
struct BuiltinApplets;

impl AppletFactory for BuiltinApplets {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        PurseAppletFactory
            .create(kind, aid, params)
            .or_else(|| PsamAppletFactory.create(kind, aid, params))
    }
}

/// A state file that exists but cannot be used. Mapped to its own exit code so scripts can tell
/// "your file is broken" from other failures; the file is never replaced by a fresh card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateFileError {
    /// Reading or writing the file failed.
    #[error("card state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not a card state this version can load (corrupt, truncated, foreign, or
    /// naming an applet this build does not have).
    #[error("card state file {path} is unusable: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why ykt-card refused it.
        source: StateError,
    },
}

/// Loads the card saved at `path`, or, when there is no file, makes one with `fresh` and saves
/// it. Returns the card and whether it was freshly created.
pub fn load_or_create(
    path: &Path,
    entropy: Box<dyn Entropy + Send>,
    fresh: impl FnOnce() -> anyhow::Result<Card>,
) -> anyhow::Result<(Card, bool)> {
    match fs::read(path) {
        Ok(bytes) => {
            let card = Card::load_state(&bytes, Atr::default_t1(), entropy, &BuiltinApplets)
                .map_err(|source| StateFileError::Invalid {
                    path: path.to_owned(),
                    source,
                })?;
            Ok((card, false))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let card = fresh()?;
            save(path, &card)?;
            Ok((card, true))
        }
        Err(source) => Err(StateFileError::Io {
            path: path.to_owned(),
            source,
        }
        .into()),
    }
}

/// Saves `card` to `path` atomically: write a temporary file in the same directory, fsync it,
/// rename it over `path`, fsync the directory. A crash leaves either the old or the new state.
pub fn save(path: &Path, card: &Card) -> Result<(), StateFileError> {
    let io = |source| StateFileError::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = card.save_state();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        // Best effort: do not leave temporary files behind; the original error is what matters.
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}
