//! The crate's error types. No variant carries key bytes: they name keys by identity, types
//! by name, and wrap lower errors that carry none either (`ykt_crypto::Error` and `RsaError`
//! hold lengths and names, `cryptoki` errors hold return codes, I/O errors hold OS codes).

use crate::types::{KeyId, KeyType};

/// Everything a [`Kms`](crate::Kms) operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    /// A key name is empty, too long, or has characters outside ASCII letters, digits and
    /// `. _ - /`.
    #[error("invalid key name")]
    InvalidKeyName,
    /// A key with this identity already exists; keys are never silently replaced.
    #[error("key {0} already exists")]
    KeyExists(KeyId),
    /// No key with this identity.
    #[error("no key {0}")]
    KeyNotFound(KeyId),
    /// The key's type does not fit the operation.
    #[error("key {id} is {actual:?}; the operation needs {expected}")]
    WrongKeyType {
        /// The key.
        id: KeyId,
        /// The key's type (of the derived key, when the operation used a derivation).
        actual: KeyType,
        /// What the operation needs.
        expected: &'static str,
    },
    /// Key material to import has the wrong length or encoding for its type.
    #[error("invalid key material for {0:?}")]
    InvalidMaterial(KeyType),
    /// The key may not leave the KMS, not even wrapped.
    #[error("key {0} is not exportable")]
    NotExportable(KeyId),
    /// An argument has the wrong shape (IV length, data not whole blocks).
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// This backend cannot do this; the message says what and, where there is one, which
    /// backend can.
    #[error("the {backend} backend does not support {what}")]
    Unsupported {
        /// The backend.
        backend: &'static str,
        /// What is unsupported, and what to use instead.
        what: &'static str,
    },
    /// A MAC did not verify.
    #[error("MAC does not verify")]
    MacMismatch,
    /// A signature did not verify.
    #[error("signature does not verify")]
    SignatureInvalid,
    /// The OS random source failed.
    #[error("random source failed")]
    Random,
    /// A lower crypto operation refused its input.
    #[error("crypto: {0}")]
    Crypto(#[from] ykt_crypto::Error),
    /// An RSA operation refused its input.
    #[error("RSA: {0}")]
    Rsa(#[from] ykt_crypto::RsaError),
    /// The key file could not be read, or was refused.
    #[error("key file: {0}")]
    KeyFile(#[from] KeyFileError),
    /// A file operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The PKCS#11 module refused or failed a call.
    #[error("PKCS#11 {op}: {source}")]
    Pkcs11 {
        /// What was being done.
        op: &'static str,
        /// The module's error.
        #[source]
        source: cryptoki::error::Error,
    },
    /// The PKCS#11 token with the configured label was not found.
    #[error("no PKCS#11 token labelled {0:?}")]
    TokenNotFound(String),
    /// Another thread panicked while holding the KMS's lock; the KMS refuses further use.
    #[error("KMS lock poisoned")]
    Poisoned,
}

/// Why a key file was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file is shorter than its header or than the length its header gives.
    #[error("truncated")]
    Truncated,
    /// The file does not start with the key-file magic.
    #[error("not a ykt key file")]
    BadMagic,
    /// The format version is not one this build reads.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// The KDF identifier is not one this build knows.
    #[error("unsupported KDF {0}")]
    UnsupportedKdf(u8),
    /// The KDF parameters are outside the accepted bounds.
    #[error("KDF parameters out of bounds")]
    KdfParameters,
    /// The passphrase is wrong or the file was altered: the authenticated decryption failed.
    /// The two cannot be told apart, by design.
    #[error("wrong passphrase or damaged file")]
    Authentication,
    /// The decrypted contents are malformed (a bug or a file written by something else).
    #[error("malformed contents")]
    MalformedContents,
    /// Bytes follow the encrypted body.
    #[error("trailing bytes")]
    TrailingBytes,
    /// A new key file was to be created where a file already exists.
    #[error("a file already exists at the path")]
    AlreadyExists,
    /// The file on disk is no longer the one this KMS loaded or last saved; it is not
    /// replaced.
    #[error("changed on disk by someone else")]
    ChangedOnDisk,
}
