//! The card state file of `ykt se serve --state FILE`: load or create, and atomic saves.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use ykt_card::{Aid, Applet, AppletFactory, Atr, Card, Entropy, StateError};
use ykt_gp::IsdFactory;
use ykt_purse::factory::PurseAppletFactory;
use ykt_purse::psam::PsamAppletFactory;

/// Every applet this build can re-create from a state file: the e-purse (and second ticket
/// type), the PSAM and the GP issuer security domain.
struct BuiltinApplets;

impl AppletFactory for BuiltinApplets {
    fn create(&self, kind: &str, aid: &Aid, params: &[u8]) -> Option<Box<dyn Applet + Send>> {
        PurseAppletFactory
            .create(kind, aid, params)
            .or_else(|| PsamAppletFactory.create(kind, aid, params))
            .or_else(|| IsdFactory.create(kind, aid, params))
    }
}

/// The SE's library: the applet code a card manager installs from (`Card::set_library`).
pub fn library() -> Box<dyn AppletFactory + Send> {
    Box::new(BuiltinApplets)
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
            let mut card = Card::load_state(&bytes, Atr::default_t1(), entropy, &BuiltinApplets)
                .map_err(|source| StateFileError::Invalid {
                    path: path.to_owned(),
                    source,
                })?;
            card.set_library(library());
            Ok((card, false))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let mut card = fresh()?;
            card.set_library(library());
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

#[cfg(test)]
mod tests {
    use ykt_card::{Atr, Card, SeededRandom};
    use ykt_conformance::isd::{IsdChannel, TEST_CPLC, danger_install_test_isd};

    use super::BuiltinApplets;

    fn get_cplc(card: &mut Card) -> Vec<u8> {
        let select = hex::decode("00A4040008A000000151000000").unwrap();
        let r = card.transmit(&select).unwrap();
        assert_eq!(r[r.len() - 2..], [0x90, 0x00]);
        card.transmit(&hex::decode("80CA9F7F00").unwrap()).unwrap()
    }

    /// The test card's ISD survives a state file: same kind, channel and persistent objects.
    #[test]
    fn the_isd_round_trips_through_a_state_file() {
        for channel in [IsdChannel::Scp03, IsdChannel::Scp02, IsdChannel::Sm4] {
            let mut card = ykt_purse::testing::danger_test_card_3des().unwrap();
            danger_install_test_isd(&mut card, channel).unwrap();
            let before = get_cplc(&mut card);
            let mut expected = vec![0x9F, 0x7F, 42];
            expected.extend_from_slice(&TEST_CPLC);
            expected.extend_from_slice(&[0x90, 0x00]);
            assert_eq!(before, expected);
            let bytes = card.save_state();
            let mut loaded = Card::load_state(
                &bytes,
                Atr::default_t1(),
                Box::new(SeededRandom::new(1)),
                &BuiltinApplets,
            )
            .unwrap();
            loaded.power_on();
            assert_eq!(get_cplc(&mut loaded), before, "{channel:?}");
            assert_eq!(loaded.save_state(), bytes, "{channel:?}");
        }
    }
}
