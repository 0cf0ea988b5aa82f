//! Key management for the TSM: one [`Kms`] trait and two backends.
//!
//! * [`SoftwareKms`] holds every key type (2-key 3DES, AES-128/256, SM4, SM2, RSA) in memory,
//!   persisted to a key file encrypted under a passphrase-derived key (Argon2id, AES-256-GCM;
//!   [`software::file`] gives the format).
//! * [`Pkcs11Kms`] keeps 3DES and AES keys in a PKCS#11 token (`cryptoki`): generated or
//!   unwrapped inside it, sensitive, leaving only wrapped, every operation done by the token.
//!   SM keys are refused with an error pointing at the software backend (PKCS#11 tokens such
//!   as SoftHSM have no SM mechanisms).
//!
//! ```text
//!   TSM ──KeyRef (name@version + derivations)──► Kms ──► SoftwareKms ── key file (Argon2id + AES-GCM)
//!                 │                                 └──► Pkcs11Kms ──── PKCS#11 token
//!                 └◄── AuditEvent (key, operation, purpose; never material) ── AuditSink
//! ```
//!
//! What the TSM does through it (tsm-gp.md §6): hold ISD master keys and derive per-SE keys
//! ([`Derivation::GpEmv`], [`Derivation::GpVisa2`], [`Derivation::GpKdf3`]), hold the purse
//! master keys and derive per-card keys ([`Derivation::Pboc`]), export keys only wrapped under a
//! DEK for PUT KEY and encrypted STORE DATA ([`Kms::wrap`]; inside a record of clear fields,
//! [`Kms::wrap_composed`]; under an SCP02 session DEK, [`Derivation::Scp02Session`]), check
//! MAC1 and make MAC2 ([`MacAlgorithm::PurseSession`]), sign tokens and messages
//! ([`Kms::sign`]), hand a key set to another TSM SM2-sealed ([`Kms::seal_for`],
//! [`Kms::open_import`]).
//!
//! What it owns: key storage, the key file format, the mapping of operations onto PKCS#11
//! mechanisms, and the audit events. What it does not own: the algorithms (ykt-crypto, and
//! ykt-gp-host for GlobalPlatform diversification), which key a protocol step needs (the TSM),
//! the audit log itself (the caller's [`AuditSink`]).
//!
//! Invariant: no key value in clear leaves the crate: not in a return value, an error, an
//! audit event or a `Debug` form. Imported material comes in as [`SecretBytes`], wiped on drop.

mod audit;
mod error;
mod kms;
pub mod pkcs11;
pub mod software;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

pub use crate::audit::{AuditEvent, AuditSink, DiscardAudit, MemoryAudit, Operation};
pub use crate::error::{KeyFileError, KmsError};
pub use crate::kms::Kms;
pub use crate::pkcs11::{Pkcs11Config, Pkcs11Kms};
pub use crate::software::SoftwareKms;
pub use crate::software::file::KdfParams;
pub use crate::types::{
    CipherMode, Derivation, GpStaticKey, KeyId, KeyInfo, KeyRef, KeySpec, KeyType,
    MAX_KEY_NAME_LEN, MacAlgorithm, PublicKey, SealedLayout, SecretBytes, SignatureAlgorithm,
    WrapMode, WrapPart,
};
