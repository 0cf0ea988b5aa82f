//! The issuer as `ykt qr issuer init` left it in a directory: hex text files, one value a line.
//!
//! | file | what |
//! |---|---|
//! | `issuer.key` | the issuer's SM2 private key (mode 0600; read, zeroized, never logged) |
//! | `issuer.cert` | the issuer certificate (field 3, §2.2) |
//! | `issuer.txt` | `version`, `org_code`, `platform_id` |
//! | `root-ca.record` | the root key record terminals install (4026, §2.3) |
//! | `blacklist.txt` | optional: `version = N` and `account = HEX` lines (`#` comments) |
//!
//! The root CA's private key in the same directory is never read.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use ykt_crypto::Sm2PrivateKey;
use ykt_qr::issuer::Issuer;
use ykt_qr::{IssuerCertificate, RootKeyRecord, Version};
use zeroize::Zeroizing;

/// The issuer key file.
pub const ISSUER_KEY_FILE: &str = "issuer.key";
/// The issuer certificate file.
pub const ISSUER_CERT_FILE: &str = "issuer.cert";
/// The issuer's version, org code and platform id.
pub const ISSUER_INFO_FILE: &str = "issuer.txt";
/// The root key record file.
pub const ROOT_RECORD_FILE: &str = "root-ca.record";
/// The optional blacklist the service publishes.
pub const BLACKLIST_FILE: &str = "blacklist.txt";

/// A file of the directory that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    #[source]
    pub kind: LoadErrorKind,
}

/// What is wrong with a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// It could not be read.
    #[error("cannot read it")]
    Io(#[source] std::io::Error),
    /// A value is not hex of the right length.
    #[error("{0} is not hex of the right length")]
    BadHex(&'static str),
    /// A value is missing.
    #[error("it has no {0}")]
    Missing(&'static str),
    /// A line is neither a comment nor `key = value` with a known key.
    #[error("line {0} is not understood")]
    BadLine(usize),
    /// The code version is below `80`.
    #[error("the version must be 80 to FF")]
    BadVersion,
    /// The private key is not a valid SM2 key.
    #[error("not an SM2 private key")]
    Key(#[source] ykt_crypto::Error),
    /// A certificate or record does not decode.
    #[error("does not decode")]
    Decode(#[source] ykt_qr::DecodeError),
    /// The key is not the certificate's, or the record's self-signature fails.
    #[error("does not match")]
    Mismatch(#[source] ykt_qr::Error),
}

/// The blacklist the service publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blacklist {
    /// Its version (0: none).
    pub version: u32,
    /// User accounts (field 5).
    pub accounts: Vec<[u8; 10]>,
}

/// Everything the service needs of an issuer. `Debug` shows the key as `[redacted]`.
#[derive(Debug, Clone)]
pub struct PublishedIssuer {
    /// The issuer key with its certificate and code version.
    pub issuer: Issuer,
    /// Field 6.
    pub org_code: [u8; 4],
    /// Field 7.
    pub platform_id: [u8; 4],
    /// The root key record (4026).
    pub root_record: RootKeyRecord,
    /// The blacklist.
    pub blacklist: Blacklist,
}

impl PublishedIssuer {
    /// Reads an issuer directory.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let info_path = dir.join(ISSUER_INFO_FILE);
        let info = read_key_values(&info_path)?;
        let fail = |path: &Path, kind| LoadError {
            path: path.to_path_buf(),
            kind,
        };
        let value = |key: &'static str| {
            info.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| fail(&info_path, LoadErrorKind::Missing(key)))
        };
        let version_byte: [u8; 1] = hex_array(value("version")?)
            .ok_or_else(|| fail(&info_path, LoadErrorKind::BadHex("version")))?;
        let version = Version::new(version_byte[0])
            .ok_or_else(|| fail(&info_path, LoadErrorKind::BadVersion))?;
        let org_code = hex_array(value("org_code")?)
            .ok_or_else(|| fail(&info_path, LoadErrorKind::BadHex("org_code")))?;
        let platform_id = hex_array(value("platform_id")?)
            .ok_or_else(|| fail(&info_path, LoadErrorKind::BadHex("platform_id")))?;

        let key_path = dir.join(ISSUER_KEY_FILE);
        let key_text = Zeroizing::new(read_text(&key_path)?);
        let mut key_bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(key_text.trim(), key_bytes.as_mut_slice())
            .map_err(|_| fail(&key_path, LoadErrorKind::BadHex("the key")))?;
        let key = Sm2PrivateKey::from_bytes(&key_bytes)
            .map_err(|e| fail(&key_path, LoadErrorKind::Key(e)))?;

        let cert_path = dir.join(ISSUER_CERT_FILE);
        let certificate = IssuerCertificate::decode(&read_hex(&cert_path)?)
            .map_err(|e| fail(&cert_path, LoadErrorKind::Decode(e)))?;
        let issuer = Issuer::new(key, certificate, version)
            .map_err(|e| fail(&cert_path, LoadErrorKind::Mismatch(e)))?;

        let record_path = dir.join(ROOT_RECORD_FILE);
        let root_record = RootKeyRecord::decode(&read_hex(&record_path)?)
            .map_err(|e| fail(&record_path, LoadErrorKind::Decode(e)))?;
        root_record
            .public_key_checked()
            .map_err(|e| fail(&record_path, LoadErrorKind::Mismatch(e)))?;

        let blacklist = read_blacklist(&dir.join(BLACKLIST_FILE))?;
        Ok(Self {
            issuer,
            org_code,
            platform_id,
            root_record,
            blacklist,
        })
    }

    /// The code version.
    pub fn version(&self) -> Version {
        self.issuer.version()
    }
}

fn read_text(path: &Path) -> Result<String, LoadError> {
    fs::read_to_string(path).map_err(|e| LoadError {
        path: path.to_path_buf(),
        kind: LoadErrorKind::Io(e),
    })
}

fn read_hex(path: &Path) -> Result<Vec<u8>, LoadError> {
    hex::decode(read_text(path)?.trim()).map_err(|_| LoadError {
        path: path.to_path_buf(),
        kind: LoadErrorKind::BadHex("the contents"),
    })
}

fn read_key_values(path: &Path) -> Result<Vec<(String, String)>, LoadError> {
    Ok(read_text(path)?
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

fn read_blacklist(path: &Path) -> Result<Blacklist, LoadError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Blacklist::default()),
        Err(e) => {
            return Err(LoadError {
                path: path.to_path_buf(),
                kind: LoadErrorKind::Io(e),
            });
        }
    };
    let mut list = Blacklist::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || LoadError {
            path: path.to_path_buf(),
            kind: LoadErrorKind::BadLine(n + 1),
        };
        let (key, value) = line.split_once('=').ok_or_else(bad)?;
        match key.trim() {
            "version" => list.version = value.trim().parse().map_err(|_| bad())?,
            "account" => list.accounts.push(hex_array(value).ok_or_else(bad)?),
            _ => return Err(bad()),
        }
    }
    Ok(list)
}

pub(crate) fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text.trim(), &mut out).ok()?;
    Some(out)
}
