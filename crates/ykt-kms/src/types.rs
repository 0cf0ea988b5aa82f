//! The vocabulary of the [`Kms`](crate::Kms) boundary: key identities, key types, derivations,
//! and the algorithm choices of each operation.

use core::fmt;

use ykt_crypto::purse::Sm4Rules;
use ykt_crypto::{RsaPublicKey, Sm2PublicKey};
use zeroize::Zeroizing;

use crate::error::KmsError;

/// The longest key name accepted, in bytes.
pub const MAX_KEY_NAME_LEN: usize = 64;

/// A key's identity: a name and a version (GlobalPlatform's key version number, or the
/// issuer's version of a master key). Names are 1 to [`MAX_KEY_NAME_LEN`] ASCII letters,
/// digits and `. _ - /`, so they are safe in a file, a PKCS#11 label and a log line.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId {
    name: String,
    version: u8,
}

impl KeyId {
    /// Checks the name and builds the identity.
    pub fn new(name: &str, version: u8) -> Result<Self, KmsError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_KEY_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
        if valid {
            Ok(Self {
                name: name.to_owned(),
                version,
            })
        } else {
            Err(KmsError::InvalidKeyName)
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version.
    pub fn version(&self) -> u8 {
        self.version
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({}@{})", self.name, self.version)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// The type of a key held by a KMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// 2-key triple DES (16 bytes, K1 ‖ K2).
    Tdes2,
    /// AES-128.
    Aes128,
    /// AES-256.
    Aes256,
    /// SM4 (GB/T 32907).
    Sm4,
    /// An SM2 private key (GB/T 32918) with its public key.
    Sm2,
    /// An RSA private key of 2048 to 4096 bits (RFC 8017), for PKCS#1 v1.5 SHA-256 signatures.
    Rsa,
}

impl KeyType {
    /// The length of the raw secret of a symmetric key or an SM2 scalar; `None` for RSA,
    /// whose material is DER.
    pub fn secret_len(self) -> Option<usize> {
        match self {
            Self::Tdes2 | Self::Aes128 | Self::Sm4 => Some(16),
            Self::Aes256 | Self::Sm2 => Some(32),
            Self::Rsa => None,
        }
    }

    /// True for the block-cipher keys (3DES, AES, SM4).
    pub fn is_symmetric(self) -> bool {
        matches!(self, Self::Tdes2 | Self::Aes128 | Self::Aes256 | Self::Sm4)
    }

    /// The block size of a symmetric key's cipher.
    pub fn block_size(self) -> Option<usize> {
        match self {
            Self::Tdes2 => Some(8),
            Self::Aes128 | Self::Aes256 | Self::Sm4 => Some(16),
            Self::Sm2 | Self::Rsa => None,
        }
    }

    /// True for the national (SM) algorithms, which only the software backend holds.
    pub fn is_national(self) -> bool {
        matches!(self, Self::Sm4 | Self::Sm2)
    }

    /// The one-byte code of the key file and of PKCS#11 objects' `CKA_ID`.
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Tdes2 => 1,
            Self::Aes128 => 2,
            Self::Aes256 => 3,
            Self::Sm4 => 4,
            Self::Sm2 => 5,
            Self::Rsa => 6,
        }
    }

    /// The key type of a key-file code.
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Tdes2,
            2 => Self::Aes128,
            3 => Self::Aes256,
            4 => Self::Sm4,
            5 => Self::Sm2,
            6 => Self::Rsa,
            _ => return None,
        })
    }
}

/// What a new key is and what it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySpec {
    /// The key type.
    pub key_type: KeyType,
    /// Whether the key may leave the KMS wrapped under another key ([`Kms::wrap`]). A key
    /// never leaves in clear either way.
    ///
    /// [`Kms::wrap`]: crate::Kms::wrap
    pub exportable: bool,
    /// Whether a key derived from this one ([`KeyRef::diversified`]) may leave the KMS
    /// wrapped, even when this key itself may not: a master whose per-card or per-domain keys
    /// are wrapped for the card (PUT KEY, a sealed handover) but which never leaves itself.
    /// Always true for an exportable key.
    pub derivations_exportable: bool,
}

impl KeySpec {
    /// A key that never leaves the KMS, nor does any key derived from it (a master key, a
    /// signing key).
    pub const fn internal(key_type: KeyType) -> Self {
        Self {
            key_type,
            exportable: false,
            derivations_exportable: false,
        }
    }

    /// A key that may leave the KMS wrapped under another key (an SSD key set, a card key), as
    /// may the keys derived from it.
    pub const fn exportable(key_type: KeyType) -> Self {
        Self {
            key_type,
            exportable: true,
            derivations_exportable: true,
        }
    }

    /// A master that never leaves the KMS but whose derived keys may, wrapped (an SSD master
    /// whose per-SSD key sets are put on cards).
    pub const fn internal_master(key_type: KeyType) -> Self {
        Self {
            key_type,
            exportable: false,
            derivations_exportable: true,
        }
    }
}

/// What a KMS knows about a key; never its value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key's identity.
    pub id: KeyId,
    /// The key type.
    pub key_type: KeyType,
    /// Whether the key may leave wrapped.
    pub exportable: bool,
}

/// Secret bytes handed to a KMS (key material to import, a passphrase): wiped on drop,
/// printed as `[redacted]`.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of the bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies the bytes.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// The bytes. Handle with care: this is secret.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

/// Which of a GlobalPlatform key set's three static keys is diversified (the `k` of
/// `ykt_gp_host::diversify`: 1, 2, 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GpStaticKey {
    /// K-ENC.
    Enc,
    /// K-MAC.
    Mac,
    /// K-DEK.
    Dek,
}

/// One derivation step from a stored master key to the key an operation uses.
///
/// The derived key exists only for the operation (or, with [`Kms::diversify`], is stored
/// under a new identity).
///
/// [`Kms::diversify`]: crate::Kms::diversify
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Derivation {
    /// The PBOC / JT/T per-card diversification from the rightmost 8 bytes of the application
    /// serial number (tsm-gp.md §6, e-purse.md §3.2): 3DES `E(MK, DIV) ‖ E(MK, ¬DIV)`, SM4
    /// `SM4(MK, DIV ‖ ¬DIV)` (`ykt_crypto::diversify_tdes`, `diversify_sm4`).
    Pboc {
        /// The diversifier.
        diversifier: [u8; 8],
    },
    /// GlobalPlatform static-key diversification `emv` (EMV CPS, 3DES) from the card's key
    /// diversification data (`ykt_gp_host::diversify`).
    GpEmv {
        /// The key diversification data (INITIALIZE UPDATE response bytes 0–9).
        kdd: [u8; 10],
        /// Which static key.
        key: GpStaticKey,
    },
    /// GlobalPlatform static-key diversification `visa2` (3DES).
    GpVisa2 {
        /// The key diversification data.
        kdd: [u8; 10],
        /// Which static key.
        key: GpStaticKey,
    },
    /// GlobalPlatform static-key diversification `kdf3` (the SCP03 counter KDF; AES or SM4).
    GpKdf3 {
        /// The key diversification data.
        kdd: [u8; 10],
        /// Which static key.
        key: GpStaticKey,
    },
    /// An SCP02 session key (GP Card Specification v2.2 §E.4.1): 3DES-CBC, ICV zero, of
    /// `constant ‖ sequence counter ‖ 00 × 12` under a static 3DES key
    /// (`ykt_crypto::scp::scp02_session_key`); e.g. the session DEK (`0181`) PUT KEY data is
    /// encrypted under.
    Scp02Session {
        /// The derivation constant (`0101` C-MAC, `0102` R-MAC, `0181` DEK, `0182` S-ENC).
        constant: [u8; 2],
        /// The channel's sequence counter.
        sequence_counter: [u8; 2],
    },
}

impl Derivation {
    /// The derivation's name, for audit events (without its data).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pboc { .. } => "pboc",
            Self::GpEmv { .. } => "gp-emv",
            Self::GpVisa2 { .. } => "gp-visa2",
            Self::GpKdf3 { .. } => "gp-kdf3",
            Self::Scp02Session { .. } => "scp02-session",
        }
    }
}

/// A key an operation uses: a stored key, or a key derived from a stored master key by a
/// chain of [`Derivation`]s (applied in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRef {
    id: KeyId,
    path: Vec<Derivation>,
}

impl KeyRef {
    /// The stored key `id` itself.
    pub fn stored(id: KeyId) -> Self {
        Self {
            id,
            path: Vec::new(),
        }
    }

    /// This key further derived by `step`.
    pub fn diversified(mut self, step: Derivation) -> Self {
        self.path.push(step);
        self
    }

    /// The stored key the derivation starts from.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The derivation steps, in order; empty for a stored key.
    pub fn path(&self) -> &[Derivation] {
        &self.path
    }
}

impl From<KeyId> for KeyRef {
    fn from(id: KeyId) -> Self {
        Self::stored(id)
    }
}

impl From<&KeyId> for KeyRef {
    fn from(id: &KeyId) -> Self {
        Self::stored(id.clone())
    }
}

/// One piece of the plaintext [`Kms::wrap_composed`](crate::Kms::wrap_composed) encrypts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WrapPart<'a> {
    /// Bytes of the caller's (headers, tags, padding; possibly a secret of the caller's own).
    Clear(&'a [u8]),
    /// The value of a key in the KMS (exportable, symmetric or SM2), which only the KMS sees.
    Key(&'a KeyRef),
}

/// How [`Kms::wrap`](crate::Kms::wrap) encrypts a key's value under a wrapping key; for ECB
/// and CBC the cipher is the wrapping key's. No padding: every key value here is whole blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WrapMode {
    /// ECB: PUT KEY with a 3DES DEK (SCP02), as `ykt-gp-host` builds it (tsm-gp.md §3).
    Ecb,
    /// CBC with an all-zero ICV: PUT KEY with an AES DEK (SCP03, GlobalPlatform Amendment D)
    /// or an SM4 DEK (the SM4 channel), and encrypted STORE DATA.
    CbcZeroIv,
    /// AES Key Wrap (RFC 3394, NIST SP 800-38F KW) with the default IV `A6A6A6A6A6A6A6A6`,
    /// under an AES wrapping key: the integrity-protected form for moving keys between key
    /// stores, and the one PKCS#11 tokens such as SoftHSM unwrap (`CKM_AES_KEY_WRAP`). The
    /// value must be at least 16 bytes and a multiple of 8.
    AesKeyWrap,
}

/// A block-cipher mode for [`Kms::encrypt`](crate::Kms::encrypt) over whole blocks (no
/// padding); the cipher is the key's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CipherMode {
    /// ECB.
    Ecb,
    /// CBC from the given one-block IV.
    Cbc {
        /// The IV (8 bytes for 3DES, 16 for AES and SM4).
        iv: Vec<u8>,
    },
}

/// A MAC algorithm for [`Kms::mac`](crate::Kms::mac) and
/// [`Kms::verify_mac`](crate::Kms::verify_mac).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MacAlgorithm {
    /// ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 ("retail MAC"), 2-key 3DES, 8
    /// bytes (`ykt_crypto::retail_mac`).
    RetailMac {
        /// The initial value.
        iv: [u8; 8],
    },
    /// Full 3DES CBC-MAC with padding method 2, 8 bytes (`ykt_crypto::tdes_cbc_mac`).
    TdesCbcMac {
        /// The initial value.
        iv: [u8; 8],
    },
    /// CMAC (NIST SP 800-38B) over the key's cipher: AES and SM4 16 bytes, 3DES 8 bytes.
    Cmac,
    /// The e-purse transaction MAC (MAC1, MAC2; e-purse.md §5.1–§5.4) with the key as the card's
    /// DPK or DLK: session key from `session_input`, then the 4-byte session MAC
    /// (`ykt_crypto::purse::{session_key, session_mac}`). 3DES or SM4 per the key type.
    PurseSession {
        /// `purse::load_session_input` or `purse::purchase_session_input`.
        session_input: [u8; 8],
        /// The SM4 rules (ignored for 3DES).
        sm4_rules: Sm4Rules,
    },
    /// The e-purse TAC with the key as the card's DTK, 4 bytes (`purse::tac`).
    PurseTac {
        /// The SM4 rules (ignored for 3DES).
        sm4_rules: Sm4Rules,
    },
    /// The PBOC secure-messaging MAC with the key as an application maintenance key, 4 bytes
    /// (`purse::secure_messaging_mac`).
    PurseSecureMessaging {
        /// The GET CHALLENGE random (right-padded with zero bytes to one block).
        iv: Vec<u8>,
        /// The SM4 rules (ignored for 3DES).
        sm4_rules: Sm4Rules,
    },
}

impl MacAlgorithm {
    /// The algorithm's name, for audit events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RetailMac { .. } => "retail-mac",
            Self::TdesCbcMac { .. } => "3des-cbc-mac",
            Self::Cmac => "cmac",
            Self::PurseSession { .. } => "purse-session-mac",
            Self::PurseTac { .. } => "purse-tac",
            Self::PurseSecureMessaging { .. } => "purse-secure-messaging-mac",
        }
    }
}

/// A signature algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// SM2 with SM3 and the signer's user ID (GB/T 32918.2); the signature is `r ‖ s`, 64
    /// bytes.
    Sm2Sm3 {
        /// The user ID (`ykt_crypto::DEFAULT_SM2_ID` unless a protocol says otherwise).
        user_id: Vec<u8>,
    },
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2); the signature has the modulus length.
    RsaPkcs1Sha256,
}

impl SignatureAlgorithm {
    /// The algorithm's name, for audit events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sm2Sm3 { .. } => "sm2-sm3",
            Self::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
        }
    }
}

/// The public part of an asymmetric key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// An SM2 public key.
    Sm2(Sm2PublicKey),
    /// An RSA public key.
    Rsa(RsaPublicKey),
}

/// What [`Kms::open_import`](crate::Kms::open_import) asks of its caller: from the clear header
/// of a sealed key set, the identities and specs of the keys that follow it, in order.
pub type SealedLayout<'a> = dyn Fn(&[u8]) -> Result<Vec<(KeyId, KeySpec)>, KmsError> + 'a;
