//! The key file: the software backend's keys, encrypted under a key derived from a
//! passphrase.
//!
//! ```text
//! offset  size  field
//!      0     7  magic "YKTKMS\0"
//!      7     1  format version (1)
//!      8     1  KDF (1 = Argon2id, version 0x13)
//!      9     4  Argon2 memory cost in KiB (big-endian)
//!     13     4  Argon2 time cost (iterations)
//!     17     4  Argon2 parallelism
//!     21    16  salt (random, chosen when the file is created)
//!     37    12  nonce (random, new at every save)
//!     49     4  body length n (ciphertext with its 16-byte tag)
//!     53     n  body: AES-256-GCM(file key, nonce, AAD = bytes 0..53, contents)
//! ```
//!
//! The file key is Argon2id(passphrase, salt) with the header's parameters, 32 bytes.
//! AES-256-GCM authenticates the header too (it is the AAD), so a changed parameter, salt or
//! length fails like a wrong passphrase: [`KeyFileError::Authentication`].
//! Why AES-256-GCM: it is the AEAD available on the workspace's RustCrypto generation
//! (`aes-gcm` 0.11 over `aes` 0.9 / `cipher` 0.5); no SM4-GCM/CCM crate exists on it, and a
//! hand-made encrypt-then-MAC construction would be more code to get right.
//!
//! Contents (clear only in memory, in a buffer wiped on drop): a 4-byte key count, then per
//! key: name length (1), name, version (1), key-type code (1), flags (1; bit 0 =
//! exportable), material length (2), material (the raw key, the SM2 scalar, or RSA PKCS#8
//! DER). Keys are sorted by identity, each identity at most once, no bytes after the last.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::error::{KeyFileError, KmsError};
use crate::types::{KeyId, KeyType};

use super::material::random_secret;

/// The file's first bytes.
pub const MAGIC: &[u8; 7] = b"YKTKMS\0";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// The KDF identifier of Argon2id (version 0x13).
pub const KDF_ARGON2ID: u8 = 1;
/// The header length; the AEAD's associated data.
pub const HEADER_LEN: usize = 53;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The largest body accepted (64 MiB), so a damaged length cannot make the reader allocate
/// without bound.
const MAX_BODY_LEN: usize = 64 << 20;

/// Argon2id parameters, stored in the file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl KdfParams {
    /// The largest memory cost accepted: 4 GiB.
    pub const MAX_MEMORY_KIB: u32 = 4 << 20;
    /// The most iterations accepted.
    pub const MAX_ITERATIONS: u32 = 64;
    /// The most lanes accepted.
    pub const MAX_PARALLELISM: u32 = 16;

    /// The default: 64 MiB, 3 iterations, 1 lane (RFC 9106 §4's second recommended option,
    /// with one lane as the backend hashes on one thread).
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// Checks and builds parameters. Memory must be at least 8 KiB per lane (Argon2's
    /// minimum) and at most [`Self::MAX_MEMORY_KIB`]; iterations 1 to
    /// [`Self::MAX_ITERATIONS`]; lanes 1 to [`Self::MAX_PARALLELISM`].
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, KeyFileError> {
        let ok = (1..=Self::MAX_PARALLELISM).contains(&parallelism)
            && (1..=Self::MAX_ITERATIONS).contains(&iterations)
            && memory_kib <= Self::MAX_MEMORY_KIB
            && u64::from(memory_kib) >= 8 * u64::from(parallelism);
        if ok {
            Ok(Self {
                memory_kib,
                iterations,
                parallelism,
            })
        } else {
            Err(KeyFileError::KdfParameters)
        }
    }

    /// The memory cost in KiB.
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// The iterations.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The lanes.
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The file key derived from a passphrase: 32 bytes, wiped on drop.
pub(crate) struct FileKey {
    key: Zeroizing<[u8; 32]>,
    params: KdfParams,
    salt: [u8; SALT_LEN],
}

impl FileKey {
    /// Derives the file key for a new file, with a fresh random salt.
    pub(crate) fn create(passphrase: &[u8], params: KdfParams) -> Result<Self, KmsError> {
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&random_secret(SALT_LEN)?);
        Self::derive(passphrase, params, salt)
    }

    fn derive(
        passphrase: &[u8],
        params: KdfParams,
        salt: [u8; SALT_LEN],
    ) -> Result<Self, KmsError> {
        let argon = argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(|_| KeyFileError::KdfParameters)?;
        let mut key = Zeroizing::new([0u8; 32]);
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon)
            .hash_password_into(passphrase, &salt, key.as_mut())
            .map_err(|_| KeyFileError::KdfParameters)?;
        Ok(Self { key, params, salt })
    }
}

impl core::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FileKey([redacted])")
    }
}

/// One key as the contents list it.
pub(crate) struct Record {
    pub(crate) id: KeyId,
    pub(crate) key_type: KeyType,
    pub(crate) exportable: bool,
    pub(crate) derivations_exportable: bool,
    pub(crate) material: Zeroizing<Vec<u8>>,
}

/// The header fields before the body.
struct Header {
    params: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    body_len: usize,
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(b)
}

fn parse_header(file: &[u8]) -> Result<Header, KeyFileError> {
    if file.len() < MAGIC.len() + 1 {
        return Err(if MAGIC.starts_with(file) {
            KeyFileError::Truncated
        } else {
            KeyFileError::BadMagic
        });
    }
    if &file[..MAGIC.len()] != MAGIC {
        return Err(KeyFileError::BadMagic);
    }
    if file[7] != FORMAT_VERSION {
        return Err(KeyFileError::UnsupportedVersion(file[7]));
    }
    if file.len() < HEADER_LEN {
        return Err(KeyFileError::Truncated);
    }
    if file[8] != KDF_ARGON2ID {
        return Err(KeyFileError::UnsupportedKdf(file[8]));
    }
    let params = KdfParams::new(be32(file, 9), be32(file, 13), be32(file, 17))?;
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&file[21..37]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&file[37..49]);
    let body_len = usize::try_from(be32(file, 49)).map_err(|_| KeyFileError::Truncated)?;
    if !(TAG_LEN..=MAX_BODY_LEN).contains(&body_len) {
        return Err(KeyFileError::MalformedContents);
    }
    let end = HEADER_LEN + body_len;
    if file.len() < end {
        return Err(KeyFileError::Truncated);
    }
    if file.len() > end {
        return Err(KeyFileError::TrailingBytes);
    }
    Ok(Header {
        params,
        salt,
        nonce,
        body_len,
    })
}

/// Reads a key file: checks the header, derives the file key from `passphrase`, decrypts and
/// parses the contents. Total: any bytes give records or a typed error.
///
/// A header asking for more than `max_memory_kib` of KDF memory is refused
/// ([`KeyFileError::KdfParameters`]) before any hashing, so a damaged or hostile file cannot
/// make the reader allocate gigabytes.
pub(crate) fn decode(
    file: &[u8],
    passphrase: &[u8],
    max_memory_kib: u32,
) -> Result<(FileKey, Vec<Record>), KmsError> {
    let header = parse_header(file)?;
    if header.params.memory_kib > max_memory_kib {
        return Err(KeyFileError::KdfParameters.into());
    }
    let key = FileKey::derive(passphrase, header.params, header.salt)?;
    let records = decrypt_contents(file, &header, &key)?;
    Ok((key, records))
}

fn decrypt_contents(file: &[u8], header: &Header, key: &FileKey) -> Result<Vec<Record>, KmsError> {
    let cipher = Aes256Gcm::new(&(*key.key).into());
    let body = &file[HEADER_LEN..HEADER_LEN + header.body_len];
    let nonce = Nonce::from(header.nonce);
    let clear = Zeroizing::new(
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: body,
                    aad: &file[..HEADER_LEN],
                },
            )
            .map_err(|_| KeyFileError::Authentication)?,
    );
    Ok(parse_contents(&clear)?)
}

/// A cursor over the decrypted contents.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], KeyFileError> {
        if self.bytes.len() < n {
            return Err(KeyFileError::MalformedContents);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, KeyFileError> {
        Ok(self.take(1)?[0])
    }
}

fn parse_contents(clear: &[u8]) -> Result<Vec<Record>, KeyFileError> {
    let bad = KeyFileError::MalformedContents;
    let mut r = Reader { bytes: clear };
    let count = be32(r.take(4)?, 0);
    let mut records: Vec<Record> = Vec::new();
    for _ in 0..count {
        let name_len = usize::from(r.byte()?);
        let name = core::str::from_utf8(r.take(name_len)?).map_err(|_| bad)?;
        let version = r.byte()?;
        let id = KeyId::new(name, version).map_err(|_| bad)?;
        let key_type = KeyType::from_code(r.byte()?).ok_or(bad)?;
        let flags = r.byte()?;
        // Bit 0: exportable; bit 1: its derivations exportable (files written before that bit
        // existed have it clear).
        if flags & !3 != 0 {
            return Err(bad);
        }
        let len_bytes = r.take(2)?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let material = Zeroizing::new(r.take(len)?.to_vec());
        if records.last().is_some_and(|last| last.id >= id) {
            return Err(bad);
        }
        records.push(Record {
            id,
            key_type,
            exportable: flags & 1 == 1,
            derivations_exportable: flags & 2 == 2,
            material,
        });
    }
    if !r.bytes.is_empty() {
        return Err(bad);
    }
    Ok(records)
}

/// Writes a key file of `records` (sorted by identity) under `key`, with a fresh nonce.
pub(crate) fn encode(records: &[Record], key: &FileKey) -> Result<Vec<u8>, KmsError> {
    let mut clear = Zeroizing::new(Vec::new());
    let count = u32::try_from(records.len()).map_err(|_| KeyFileError::MalformedContents)?;
    clear.extend_from_slice(&count.to_be_bytes());
    for rec in records {
        let name = rec.id.name().as_bytes();
        let len = u16::try_from(rec.material.len()).map_err(|_| KeyFileError::MalformedContents)?;
        clear.push(u8::try_from(name.len()).map_err(|_| KeyFileError::MalformedContents)?);
        clear.extend_from_slice(name);
        clear.push(rec.id.version());
        clear.push(rec.key_type.code());
        clear.push(u8::from(rec.exportable) | (u8::from(rec.derivations_exportable) << 1));
        clear.extend_from_slice(&len.to_be_bytes());
        clear.extend_from_slice(&rec.material);
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&random_secret(NONCE_LEN)?);
    let body_len = clear.len() + TAG_LEN;
    if body_len > MAX_BODY_LEN {
        return Err(KeyFileError::MalformedContents.into());
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    out.push(KDF_ARGON2ID);
    out.extend_from_slice(&key.params.memory_kib.to_be_bytes());
    out.extend_from_slice(&key.params.iterations.to_be_bytes());
    out.extend_from_slice(&key.params.parallelism.to_be_bytes());
    out.extend_from_slice(&key.salt);
    out.extend_from_slice(&nonce);
    // `body_len` is at most MAX_BODY_LEN, which fits in 32 bits.
    out.extend_from_slice(&u32::try_from(body_len).unwrap_or(u32::MAX).to_be_bytes());
    let cipher = Aes256Gcm::new(&(*key.key).into());
    let body = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &clear,
                aad: &out[..HEADER_LEN],
            },
        )
        .map_err(|_| KeyFileError::MalformedContents)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads only the header's KDF parameters (for tools that report them).
pub fn kdf_params_of(file: &[u8]) -> Result<KdfParams, KeyFileError> {
    Ok(parse_header(file)?.params)
}

/// Decodes a key file fully (header, KDF, decryption, contents) and returns the number of
/// keys: the decoder's entry point for property tests and fuzzing. Never panics.
#[doc(hidden)]
pub fn fuzz_decode(file: &[u8], passphrase: &[u8], max_memory_kib: u32) -> Result<usize, KmsError> {
    Ok(decode(file, passphrase, max_memory_kib)?.1.len())
}
