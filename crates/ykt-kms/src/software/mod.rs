//! The software backend: keys in memory, optionally persisted to a key file encrypted under a
//! passphrase (the `file` module gives the format).
//! Holds every key type, the national ones included.

pub mod file;
mod material;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::audit::{AuditSink, Operation};
use crate::error::{KeyFileError, KmsError};
use crate::kms::{Auditor, Kms, cipher_name, use_of, wrap_name};
use crate::types::{
    CipherMode, Derivation, KeyId, KeyInfo, KeyRef, KeySpec, MacAlgorithm, PublicKey, SealedLayout,
    SecretBytes, SignatureAlgorithm, WrapMode, WrapPart,
};
use ykt_crypto::{Sm2CipherMode, Sm2PublicKey};

use self::file::{FileKey, KdfParams, Record};
use self::material::Material;

/// The backend's name in audit events.
const BACKEND: &str = "software";

/// One stored key.
#[derive(Clone, Debug)]
struct Entry {
    material: Material,
    exportable: bool,
    /// Keys derived from it may be wrapped even if it may not (`KeySpec::internal_master`).
    derivations_exportable: bool,
}

/// Where the keys are persisted.
#[derive(Debug)]
struct Store {
    path: PathBuf,
    key: FileKey,
    /// SM3 of the file as this KMS last read or wrote it.
    fingerprint: [u8; 32],
}

#[derive(Debug)]
struct State {
    keys: BTreeMap<KeyId, Entry>,
    store: Option<Store>,
}

/// The software KMS. See the [module docs](self).
///
/// Every change (generate, import, diversify, destroy) is saved before the call returns; if
/// the save fails the change is undone and the error returned. The file is replaced
/// atomically (temporary file, `fsync`, rename, `fsync` of the directory) and only if it is
/// still the file this KMS read or last wrote ([`KeyFileError::ChangedOnDisk`] otherwise).
pub struct SoftwareKms {
    state: Mutex<State>,
    auditor: Auditor,
}

impl core::fmt::Debug for SoftwareKms {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SoftwareKms").finish_non_exhaustive()
    }
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> KmsError {
    move |source| KmsError::Io { op, source }
}

fn fingerprint(bytes: &[u8]) -> [u8; 32] {
    ykt_crypto::sm3(bytes)
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, then moves it into place:
/// by rename (replacing) or, for a new file, by hard link (which fails if `path` exists, so a
/// new key file never replaces anything).
fn write_atomic(path: &Path, bytes: &[u8], new_file: bool) -> Result<(), KmsError> {
    let name = path
        .file_name()
        .ok_or(KmsError::InvalidInput("the key file path has no file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".tmp");
    let temp = path.with_file_name(temp_name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(&temp)
        .map_err(io("create temporary key file"))?;
    f.write_all(bytes).map_err(io("write temporary key file"))?;
    f.sync_all().map_err(io("sync temporary key file"))?;
    drop(f);
    let placed = if new_file {
        match fs::hard_link(&temp, path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(KmsError::KeyFile(KeyFileError::AlreadyExists))
            }
            other => other.map_err(io("create key file")),
        }
    } else {
        fs::rename(&temp, path).map_err(io("replace key file"))
    };
    let removed = if new_file {
        fs::remove_file(&temp).map_err(io("remove temporary key file"))
    } else {
        Ok(())
    };
    if placed.is_err() {
        // The temporary file holds only ciphertext; leaving it behind is harmless.
        let _ = fs::remove_file(&temp);
    }
    placed?;
    removed?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync key file directory"))
}

fn records(keys: &BTreeMap<KeyId, Entry>) -> Result<Vec<Record>, KmsError> {
    keys.iter()
        .map(|(id, e)| {
            Ok(Record {
                id: id.clone(),
                key_type: e.material.key_type(),
                exportable: e.exportable,
                derivations_exportable: e.derivations_exportable,
                material: e.material.secret()?,
            })
        })
        .collect()
}

impl Store {
    fn save(&mut self, keys: &BTreeMap<KeyId, Entry>) -> Result<(), KmsError> {
        let bytes = file::encode(&records(keys)?, &self.key)?;
        let current = fs::read(&self.path).map_err(io("read key file"))?;
        if !ykt_crypto::ct_eq(&fingerprint(&current), &self.fingerprint) {
            return Err(KeyFileError::ChangedOnDisk.into());
        }
        write_atomic(&self.path, &bytes, false)?;
        self.fingerprint = fingerprint(&bytes);
        Ok(())
    }
}

impl SoftwareKms {
    /// A KMS whose keys live only in memory (tests, short-lived tools).
    pub fn in_memory(audit: Arc<dyn AuditSink>) -> Self {
        Self::with_state(
            State {
                keys: BTreeMap::new(),
                store: None,
            },
            audit,
        )
    }

    /// Creates a new, empty key file at `path` (which must not exist) encrypted under a key
    /// derived from `passphrase` with `params` and a fresh random salt.
    pub fn create(
        path: &Path,
        passphrase: &SecretBytes,
        params: KdfParams,
        audit: Arc<dyn AuditSink>,
    ) -> Result<Self, KmsError> {
        if path.exists() {
            return Err(KeyFileError::AlreadyExists.into());
        }
        let key = FileKey::create(passphrase.expose(), params)?;
        let bytes = file::encode(&[], &key)?;
        write_atomic(path, &bytes, true)?;
        Ok(Self::with_state(
            State {
                keys: BTreeMap::new(),
                store: Some(Store {
                    path: path.to_path_buf(),
                    key,
                    fingerprint: fingerprint(&bytes),
                }),
            },
            audit,
        ))
    }

    /// Opens the key file at `path`. A wrong passphrase or a damaged file is
    /// [`KeyFileError::Authentication`] (or another [`KeyFileError`] for a damaged header);
    /// the file is left as it is.
    pub fn open(
        path: &Path,
        passphrase: &SecretBytes,
        audit: Arc<dyn AuditSink>,
    ) -> Result<Self, KmsError> {
        Self::open_bounded(path, passphrase, KdfParams::MAX_MEMORY_KIB, audit)
    }

    /// [`Self::open`], refusing a file whose KDF asks for more than `max_memory_kib` KiB
    /// ([`KeyFileError::KdfParameters`]) before any hashing: a damaged or hostile header
    /// cannot make the KMS allocate more than the operator allows.
    pub fn open_bounded(
        path: &Path,
        passphrase: &SecretBytes,
        max_memory_kib: u32,
        audit: Arc<dyn AuditSink>,
    ) -> Result<Self, KmsError> {
        let bytes = fs::read(path).map_err(io("read key file"))?;
        let (key, recs) = file::decode(&bytes, passphrase.expose(), max_memory_kib)?;
        let mut keys = BTreeMap::new();
        for rec in recs {
            let material = Material::from_secret(rec.key_type, &rec.material)
                .map_err(|_| KeyFileError::MalformedContents)?;
            keys.insert(
                rec.id,
                Entry {
                    material,
                    exportable: rec.exportable,
                    derivations_exportable: rec.derivations_exportable,
                },
            );
        }
        Ok(Self::with_state(
            State {
                keys,
                store: Some(Store {
                    path: path.to_path_buf(),
                    key,
                    fingerprint: fingerprint(&bytes),
                }),
            },
            audit,
        ))
    }

    fn with_state(state: State, audit: Arc<dyn AuditSink>) -> Self {
        Self {
            state: Mutex::new(state),
            auditor: Auditor {
                backend: BACKEND,
                sink: audit,
            },
        }
    }

    /// The key file's path, if the keys are persisted.
    pub fn path(&self) -> Option<PathBuf> {
        self.lock().ok()?.store.as_ref().map(|s| s.path.clone())
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, KmsError> {
        self.state.lock().map_err(|_| KmsError::Poisoned)
    }

    /// Stores a new key and saves; undoes the insertion if the save fails.
    fn insert(&self, id: &KeyId, entry: Entry) -> Result<KeyInfo, KmsError> {
        let mut state = self.lock()?;
        if state.keys.contains_key(id) {
            return Err(KmsError::KeyExists(id.clone()));
        }
        let info = KeyInfo {
            id: id.clone(),
            key_type: entry.material.key_type(),
            exportable: entry.exportable,
        };
        state.keys.insert(id.clone(), entry);
        let State { keys, store } = &mut *state;
        if let Some(store) = store
            && let Err(e) = store.save(keys)
        {
            keys.remove(id);
            return Err(e);
        }
        Ok(info)
    }

    /// Stores every entry or none (one save).
    fn insert_all(&self, entries: Vec<(KeyId, Entry)>) -> Result<Vec<KeyInfo>, KmsError> {
        let mut state = self.lock()?;
        for (i, (id, _)) in entries.iter().enumerate() {
            if state.keys.contains_key(id) || entries[..i].iter().any(|(other, _)| other == id) {
                return Err(KmsError::KeyExists(id.clone()));
            }
        }
        let infos: Vec<KeyInfo> = entries
            .iter()
            .map(|(id, e)| KeyInfo {
                id: id.clone(),
                key_type: e.material.key_type(),
                exportable: e.exportable,
            })
            .collect();
        let ids: Vec<KeyId> = entries.iter().map(|(id, _)| id.clone()).collect();
        state.keys.extend(entries);
        let State { keys, store } = &mut *state;
        if let Some(store) = store
            && let Err(e) = store.save(keys)
        {
            for id in &ids {
                keys.remove(id);
            }
            return Err(e);
        }
        Ok(infos)
    }

    /// The clear values of composed parts, each key audited as a wrap for `other`.
    fn compose(
        &self,
        parts: &[WrapPart<'_>],
        other: Option<&KeyId>,
        algorithm: &'static str,
        purpose: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, KmsError> {
        let mut plain = zeroize::Zeroizing::new(Vec::new());
        for part in parts {
            match part {
                WrapPart::Clear(bytes) => plain.extend_from_slice(bytes),
                WrapPart::Key(key) => {
                    let value = (|| {
                        let (material, exportable) = self.resolve(key)?;
                        if !exportable {
                            return Err(KmsError::NotExportable(key.id().clone()));
                        }
                        if material.key_type() == crate::types::KeyType::Rsa {
                            return Err(KmsError::WrongKeyType {
                                id: key.id().clone(),
                                actual: material.key_type(),
                                expected: "a 3DES, AES, SM4 or SM2 key",
                            });
                        }
                        material.secret()
                    })();
                    let value = self.auditor.record(
                        use_of(Operation::Wrap, key, other, algorithm, purpose),
                        value,
                    )?;
                    plain.extend_from_slice(&value);
                }
            }
        }
        Ok(plain)
    }

    /// The material a reference names (derived if it has a path) and whether it is
    /// exportable.
    fn resolve(&self, key: &KeyRef) -> Result<(Material, bool), KmsError> {
        let state = self.lock()?;
        let entry = state
            .keys
            .get(key.id())
            .ok_or_else(|| KmsError::KeyNotFound(key.id().clone()))?;
        let mut material = entry.material.clone();
        for step in key.path() {
            material = material.derive(step, key.id())?;
        }
        let exportable =
            entry.exportable || (!key.path().is_empty() && entry.derivations_exportable);
        Ok((material, exportable))
    }

    fn check_spec(material: &Material, spec: KeySpec) -> Result<(), KmsError> {
        if material.key_type() == spec.key_type {
            Ok(())
        } else {
            Err(KmsError::InvalidMaterial(spec.key_type))
        }
    }
}

impl Kms for SoftwareKms {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn generate(&self, id: &KeyId, spec: KeySpec, purpose: &str) -> Result<KeyInfo, KmsError> {
        let r = KeyRef::from(id);
        let result = Material::generate(spec.key_type).and_then(|material| {
            self.insert(
                id,
                Entry {
                    material,
                    exportable: spec.exportable,
                    derivations_exportable: spec.derivations_exportable,
                },
            )
        });
        self.auditor.record(
            use_of(Operation::Generate, &r, None, "generate", purpose),
            result,
        )
    }

    fn import(
        &self,
        id: &KeyId,
        spec: KeySpec,
        material: &SecretBytes,
        purpose: &str,
    ) -> Result<KeyInfo, KmsError> {
        let r = KeyRef::from(id);
        let result = Material::from_secret(spec.key_type, material.expose()).and_then(|m| {
            self.insert(
                id,
                Entry {
                    material: m,
                    exportable: spec.exportable,
                    derivations_exportable: spec.derivations_exportable,
                },
            )
        });
        self.auditor.record(
            use_of(Operation::Import, &r, None, "import", purpose),
            result,
        )
    }

    fn unwrap_import(
        &self,
        id: &KeyId,
        spec: KeySpec,
        unwrapping: &KeyRef,
        mode: WrapMode,
        wrapped: &[u8],
        purpose: &str,
    ) -> Result<KeyInfo, KmsError> {
        let r = KeyRef::from(id);
        let result = (|| {
            let (kek, _) = self.resolve(unwrapping)?;
            let clear = kek.unwrap(wrapped, mode, spec.key_type, unwrapping.id())?;
            let material = Material::from_secret(spec.key_type, &clear)?;
            Self::check_spec(&material, spec)?;
            self.insert(
                id,
                Entry {
                    material,
                    exportable: spec.exportable,
                    derivations_exportable: spec.derivations_exportable,
                },
            )
        })();
        self.auditor.record(
            use_of(
                Operation::UnwrapImport,
                &r,
                Some(unwrapping.id()),
                wrap_name(mode),
                purpose,
            ),
            result,
        )
    }

    fn diversify(
        &self,
        master: &KeyRef,
        step: &Derivation,
        id: &KeyId,
        exportable: bool,
        purpose: &str,
    ) -> Result<KeyInfo, KmsError> {
        let derived = master.clone().diversified(step.clone());
        let result = self.resolve(&derived).and_then(|(material, _)| {
            self.insert(
                id,
                Entry {
                    material,
                    exportable,
                    derivations_exportable: exportable,
                },
            )
        });
        self.auditor.record(
            use_of(
                Operation::Diversify,
                &derived,
                Some(id),
                step.name(),
                purpose,
            ),
            result,
        )
    }

    fn info(&self, id: &KeyId) -> Result<KeyInfo, KmsError> {
        let state = self.lock()?;
        let entry = state
            .keys
            .get(id)
            .ok_or_else(|| KmsError::KeyNotFound(id.clone()))?;
        Ok(KeyInfo {
            id: id.clone(),
            key_type: entry.material.key_type(),
            exportable: entry.exportable,
        })
    }

    fn list(&self) -> Result<Vec<KeyInfo>, KmsError> {
        let state = self.lock()?;
        Ok(state
            .keys
            .iter()
            .map(|(id, e)| KeyInfo {
                id: id.clone(),
                key_type: e.material.key_type(),
                exportable: e.exportable,
            })
            .collect())
    }

    fn destroy(&self, id: &KeyId, purpose: &str) -> Result<(), KmsError> {
        let r = KeyRef::from(id);
        let result = (|| {
            let mut state = self.lock()?;
            let State { keys, store } = &mut *state;
            let entry = keys
                .remove(id)
                .ok_or_else(|| KmsError::KeyNotFound(id.clone()))?;
            if let Some(store) = store
                && let Err(e) = store.save(keys)
            {
                keys.insert(id.clone(), entry);
                return Err(e);
            }
            Ok(())
        })();
        self.auditor.record(
            use_of(Operation::Destroy, &r, None, "destroy", purpose),
            result,
        )
    }

    fn wrap(
        &self,
        key: &KeyRef,
        wrapping: &KeyRef,
        mode: WrapMode,
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        let result = (|| {
            let (material, exportable) = self.resolve(key)?;
            if !exportable {
                return Err(KmsError::NotExportable(key.id().clone()));
            }
            if material.key_type() == crate::types::KeyType::Rsa {
                return Err(KmsError::WrongKeyType {
                    id: key.id().clone(),
                    actual: material.key_type(),
                    expected: "a 3DES, AES, SM4 or SM2 key",
                });
            }
            let (kek, _) = self.resolve(wrapping)?;
            kek.wrap(&material.secret()?, mode, wrapping.id())
        })();
        self.auditor.record(
            use_of(
                Operation::Wrap,
                key,
                Some(wrapping.id()),
                wrap_name(mode),
                purpose,
            ),
            result,
        )
    }

    fn wrap_composed(
        &self,
        parts: &[WrapPart<'_>],
        wrapping: &KeyRef,
        mode: WrapMode,
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        let plain = self.compose(parts, Some(wrapping.id()), wrap_name(mode), purpose)?;
        let result = self
            .resolve(wrapping)
            .and_then(|(kek, _)| kek.wrap(&plain, mode, wrapping.id()));
        self.auditor.record(
            use_of(Operation::Encrypt, wrapping, None, wrap_name(mode), purpose),
            result,
        )
    }

    fn seal_for(
        &self,
        parts: &[WrapPart<'_>],
        recipient: &Sm2PublicKey,
        cipher: Sm2CipherMode,
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        let plain = self.compose(parts, None, "sm2-seal", purpose)?;
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        Ok(recipient.encrypt(&mut rng, &plain, cipher)?)
    }

    fn open_import(
        &self,
        unwrapping: &KeyRef,
        cipher: Sm2CipherMode,
        sealed: &[u8],
        header_len: usize,
        layout: &SealedLayout<'_>,
        purpose: &str,
    ) -> Result<Vec<KeyInfo>, KmsError> {
        let opened = (|| {
            let (key, _) = self.resolve(unwrapping)?;
            let plain = key.sm2_decrypt(sealed, cipher, unwrapping.id())?;
            let header = plain.get(..header_len).ok_or(KmsError::InvalidInput(
                "sealed data shorter than its header",
            ))?;
            let slots = layout(header)?;
            let mut rest = &plain[header_len..];
            let mut entries = Vec::with_capacity(slots.len());
            for (id, spec) in slots {
                let n = spec
                    .key_type
                    .secret_len()
                    .ok_or(KmsError::InvalidMaterial(spec.key_type))?;
                let (value, tail) = rest
                    .split_at_checked(n)
                    .ok_or(KmsError::InvalidMaterial(spec.key_type))?;
                rest = tail;
                let material = Material::from_secret(spec.key_type, value)?;
                entries.push((
                    id,
                    Entry {
                        material,
                        exportable: spec.exportable,
                        derivations_exportable: spec.derivations_exportable,
                    },
                ));
            }
            if !rest.is_empty() {
                return Err(KmsError::InvalidInput("sealed data longer than its keys"));
            }
            Ok(entries)
        })();
        let opened = self.auditor.record(
            use_of(
                Operation::UnwrapImport,
                unwrapping,
                None,
                "sm2-open",
                purpose,
            ),
            opened,
        )?;
        let ids: Vec<KeyId> = opened.iter().map(|(id, _)| id.clone()).collect();
        let result = self.insert_all(opened);
        for id in &ids {
            self.auditor
                .record(
                    use_of(
                        Operation::UnwrapImport,
                        &KeyRef::from(id),
                        Some(unwrapping.id()),
                        "sm2-open",
                        purpose,
                    ),
                    result.as_ref().map(|_| ()).map_err(clone_error),
                )
                .ok();
        }
        result
    }

    fn encrypt(
        &self,
        key: &KeyRef,
        mode: &CipherMode,
        data: &[u8],
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        let result = self
            .resolve(key)
            .and_then(|(m, _)| m.cipher(mode, data, false, key.id()));
        self.auditor.record(
            use_of(Operation::Encrypt, key, None, cipher_name(mode), purpose),
            result,
        )
    }

    fn mac(
        &self,
        key: &KeyRef,
        algorithm: &MacAlgorithm,
        data: &[u8],
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        let result = self
            .resolve(key)
            .and_then(|(m, _)| m.mac(algorithm, data, key.id()));
        self.auditor.record(
            use_of(Operation::Mac, key, None, algorithm.name(), purpose),
            result,
        )
    }

    fn verify_mac(
        &self,
        key: &KeyRef,
        algorithm: &MacAlgorithm,
        data: &[u8],
        mac: &[u8],
        purpose: &str,
    ) -> Result<(), KmsError> {
        let result = self
            .resolve(key)
            .and_then(|(m, _)| m.mac(algorithm, data, key.id()))
            .and_then(|expected| {
                if ykt_crypto::ct_eq(&expected, mac) {
                    Ok(())
                } else {
                    Err(KmsError::MacMismatch)
                }
            });
        self.auditor.record(
            use_of(Operation::VerifyMac, key, None, algorithm.name(), purpose),
            result,
        )
    }

    fn sign(
        &self,
        key: &KeyId,
        algorithm: &SignatureAlgorithm,
        message: &[u8],
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError> {
        let r = KeyRef::from(key);
        let result = self
            .resolve(&r)
            .and_then(|(m, _)| m.sign(algorithm, message, key));
        self.auditor.record(
            use_of(Operation::Sign, &r, None, algorithm.name(), purpose),
            result,
        )
    }

    fn verify(
        &self,
        key: &KeyId,
        algorithm: &SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
        purpose: &str,
    ) -> Result<(), KmsError> {
        let r = KeyRef::from(key);
        let result = self
            .resolve(&r)
            .and_then(|(m, _)| m.verify(algorithm, message, signature, key));
        self.auditor.record(
            use_of(Operation::Verify, &r, None, algorithm.name(), purpose),
            result,
        )
    }

    fn public_key(&self, key: &KeyId) -> Result<PublicKey, KmsError> {
        let (m, _) = self.resolve(&KeyRef::from(key))?;
        m.public_key(key)
    }
}

/// A copy of an insertion error for the per-key audit events (the caller gets the original).
fn clone_error(e: &KmsError) -> KmsError {
    match e {
        KmsError::KeyExists(id) => KmsError::KeyExists(id.clone()),
        _ => KmsError::InvalidInput("the keys could not be stored"),
    }
}
