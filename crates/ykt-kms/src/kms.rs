//! The [`Kms`] trait: the boundary the TSM codes against.

use std::sync::Arc;

use ykt_crypto::{Sm2CipherMode, Sm2PublicKey};

use crate::audit::{AuditEvent, AuditSink, Operation};
use crate::error::KmsError;
use crate::types::{
    CipherMode, Derivation, KeyId, KeyInfo, KeyRef, KeySpec, MacAlgorithm, PublicKey, SealedLayout,
    SecretBytes, SignatureAlgorithm, WrapMode, WrapPart,
};

/// A key management service: keys by name and version, used through operations that never
/// hand out a key's value in clear.
///
/// Every operation on a key reports an [`AuditEvent`] to the sink the backend was built with,
/// whether it succeeds or not; `purpose` is the caller's reason, copied into the event.
/// Operations take `&self`: backends lock internally, so one KMS can serve many threads.
pub trait Kms: Send + Sync {
    /// The backend's name (`software`, `pkcs11`), as audit events carry it.
    fn backend(&self) -> &'static str;

    /// Generates a new key inside the KMS (RSA keys: 2048 bits, e = 65537).
    /// [`KmsError::KeyExists`] if `id` is taken.
    fn generate(&self, id: &KeyId, spec: KeySpec, purpose: &str) -> Result<KeyInfo, KmsError>;

    /// Imports a key from clear material: the raw key for 3DES (16 bytes), AES (16 or 32) and
    /// SM4 (16), the 32-byte scalar for SM2, DER PKCS#8 (or PKCS#1) for RSA.
    /// For key ceremonies and tests; keys from peers arrive wrapped ([`Kms::unwrap_import`]).
    fn import(
        &self,
        id: &KeyId,
        spec: KeySpec,
        material: &SecretBytes,
        purpose: &str,
    ) -> Result<KeyInfo, KmsError>;

    /// Imports a key whose value arrives encrypted under `unwrapping` in `mode` (the inverse of
    /// [`Kms::wrap`]); the clear value exists only inside the KMS.
    fn unwrap_import(
        &self,
        id: &KeyId,
        spec: KeySpec,
        unwrapping: &KeyRef,
        mode: WrapMode,
        wrapped: &[u8],
        purpose: &str,
    ) -> Result<KeyInfo, KmsError>;

    /// Derives a key from `master` by `step` and stores it as `id` (a per-SE key set kept for
    /// later sessions). Operations can also use a derived key without storing it, through a
    /// [`KeyRef`] with a derivation path.
    fn diversify(
        &self,
        master: &KeyRef,
        step: &Derivation,
        id: &KeyId,
        exportable: bool,
        purpose: &str,
    ) -> Result<KeyInfo, KmsError>;

    /// What the KMS knows about a stored key.
    fn info(&self, id: &KeyId) -> Result<KeyInfo, KmsError>;

    /// Every stored key, sorted by identity.
    fn list(&self) -> Result<Vec<KeyInfo>, KmsError>;

    /// Destroys a stored key.
    fn destroy(&self, id: &KeyId, purpose: &str) -> Result<(), KmsError>;

    /// The value of `key` encrypted under `wrapping` in `mode` (the cipher is the wrapping
    /// key's): what PUT KEY and encrypted STORE DATA carry. `key` must be exportable (a
    /// derived key is exportable when its master is). 3DES, AES and SM4 keys and SM2 scalars
    /// can be wrapped; RSA keys cannot.
    fn wrap(
        &self,
        key: &KeyRef,
        wrapping: &KeyRef,
        mode: WrapMode,
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError>;

    /// `parts` concatenated, the [`WrapPart::Key`]s as their values, encrypted under
    /// `wrapping` in `mode` (the whole must be whole blocks; the caller pads): a record that
    /// carries key values between fields of its own, such as the e-purse personalisation
    /// DGIs (tsm-gp.md §6), wrapped without the keys leaving the KMS. Each key must be
    /// exportable, as for [`Kms::wrap`]; each is audited as one wrap under `wrapping`.
    fn wrap_composed(
        &self,
        parts: &[WrapPart<'_>],
        wrapping: &KeyRef,
        mode: WrapMode,
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError>;

    /// `parts` concatenated (as for [`Kms::wrap_composed`]) and SM2-encrypted (GM/T 0003.4,
    /// in the `cipher` order) for another party's public key `recipient`: how a key set
    /// travels to another key store (tsm-gp.md §6, the SSD handover) without its values in
    /// clear outside either. Each key must be exportable and is audited as one wrap.
    fn seal_for(
        &self,
        parts: &[WrapPart<'_>],
        recipient: &Sm2PublicKey,
        cipher: Sm2CipherMode,
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError>;

    /// The inverse of [`Kms::seal_for`]: decrypts `sealed` with the stored SM2 key
    /// `unwrapping` and imports the keys that follow a clear header of `header_len` bytes.
    /// `layout` reads the header (a key version, a key type: nothing secret) and names the
    /// keys in the order they follow, each as long as its type's secret; the plaintext must end
    /// with the last one. Every key is stored, or none is.
    fn open_import(
        &self,
        unwrapping: &KeyRef,
        cipher: Sm2CipherMode,
        sealed: &[u8],
        header_len: usize,
        layout: &SealedLayout<'_>,
        purpose: &str,
    ) -> Result<Vec<KeyInfo>, KmsError>;

    /// Encrypts whole blocks under a symmetric key.
    fn encrypt(
        &self,
        key: &KeyRef,
        mode: &CipherMode,
        data: &[u8],
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError>;

    /// Computes a MAC.
    fn mac(
        &self,
        key: &KeyRef,
        algorithm: &MacAlgorithm,
        data: &[u8],
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError>;

    /// Checks a MAC in constant time; [`KmsError::MacMismatch`] if it does not verify.
    fn verify_mac(
        &self,
        key: &KeyRef,
        algorithm: &MacAlgorithm,
        data: &[u8],
        mac: &[u8],
        purpose: &str,
    ) -> Result<(), KmsError>;

    /// Signs `message` with a private key.
    fn sign(
        &self,
        key: &KeyId,
        algorithm: &SignatureAlgorithm,
        message: &[u8],
        purpose: &str,
    ) -> Result<Vec<u8>, KmsError>;

    /// Verifies a signature with a stored key's public part; [`KmsError::SignatureInvalid`]
    /// if it does not verify.
    fn verify(
        &self,
        key: &KeyId,
        algorithm: &SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
        purpose: &str,
    ) -> Result<(), KmsError>;

    /// The public part of an asymmetric key.
    fn public_key(&self, key: &KeyId) -> Result<PublicKey, KmsError>;
}

/// Builds and records audit events for a backend.
#[derive(Clone)]
pub(crate) struct Auditor {
    pub(crate) backend: &'static str,
    pub(crate) sink: Arc<dyn AuditSink>,
}

/// What one audited call used.
pub(crate) struct Use<'a> {
    pub(crate) operation: Operation,
    pub(crate) key: &'a KeyRef,
    pub(crate) other: Option<&'a KeyId>,
    pub(crate) algorithm: &'static str,
    pub(crate) purpose: &'a str,
}

impl Auditor {
    /// Records the outcome of `result` for `what` and passes `result` through.
    pub(crate) fn record<T>(
        &self,
        what: Use<'_>,
        result: Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        self.sink.record(&AuditEvent {
            backend: self.backend,
            operation: what.operation,
            key: what.key.id().clone(),
            derivations: what.key.path().iter().map(Derivation::name).collect(),
            other_key: what.other.cloned(),
            algorithm: what.algorithm,
            purpose: what.purpose.to_owned(),
            succeeded: result.is_ok(),
        });
        result
    }
}

impl core::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Auditor")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The audit description of one call.
pub(crate) fn use_of<'a>(
    operation: Operation,
    key: &'a KeyRef,
    other: Option<&'a KeyId>,
    algorithm: &'static str,
    purpose: &'a str,
) -> Use<'a> {
    Use {
        operation,
        key,
        other,
        algorithm,
        purpose,
    }
}

/// A wrap mode's name in audit events.
pub(crate) fn wrap_name(mode: WrapMode) -> &'static str {
    match mode {
        WrapMode::Ecb => "ecb",
        WrapMode::CbcZeroIv => "cbc-zero-iv",
        WrapMode::AesKeyWrap => "aes-key-wrap",
    }
}

/// A cipher mode's name in audit events.
pub(crate) fn cipher_name(mode: &CipherMode) -> &'static str {
    match mode {
        CipherMode::Ecb => "ecb",
        CipherMode::Cbc { .. } => "cbc",
    }
}
