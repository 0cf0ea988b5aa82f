//! RSA (RFC 8017) for GlobalPlatform delegated-management tokens (tsm-gp.md §4), wrapping
//! RustCrypto `rsa`: keys from and to DER, RSASSA-PKCS1-v1_5 with SHA-256, key generation from
//! a caller's RNG.
//!
//! Only what tokens need is here: no encryption, no PSS, no PEM.
//! SHA-1 (the digest of GP 2.1 "RSA 1024 SHA-1" tokens) is deliberately absent: the `rsa` crate
//! supports it only through the separate `sha1` crate, which the workspace does not carry, and
//! the project's tokens are RSA-2048 or larger with SHA-256 (tsm-gp.md §4 \[PROPOSAL\]).
//!
//! Key sizes: [`RSA_MIN_BITS`] to [`RSA_MAX_BITS`], for loading and for generation alike.
//! The public exponent must be odd and at least 3 (the `rsa` crate's checks).

use alloc::vec::Vec;
use core::fmt;

use ::rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPublicKey};
use ::rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ::rsa::traits::PublicKeyParts;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::keys::redacted;

/// The smallest modulus accepted, in bits (RSA-2048, the token default of tsm-gp.md §4).
pub const RSA_MIN_BITS: usize = 2048;

/// The largest modulus accepted, in bits: it bounds the work one verification can cost.
pub const RSA_MAX_BITS: usize = 4096;

/// The public exponent of generated keys (F4).
pub const RSA_DEFAULT_EXPONENT: u32 = 65_537;

/// What can go wrong with RSA keys and signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RsaError {
    /// The bytes are not a DER key of the expected form (PKCS#1, PKCS#8 or SubjectPublicKeyInfo
    /// with the rsaEncryption algorithm), or its numbers are not a consistent RSA key.
    #[error("malformed RSA key encoding")]
    MalformedKey,
    /// The modulus size is outside [`RSA_MIN_BITS`]..=[`RSA_MAX_BITS`].
    #[error("RSA modulus of {bits} bits is outside the accepted sizes")]
    UnsupportedKeySize {
        /// The modulus size that was given or asked for, in bits.
        bits: usize,
    },
    /// A key could not be encoded as DER.
    #[error("RSA key could not be encoded")]
    EncodingFailed,
    /// Key generation failed (the random source failed or gave no usable primes).
    #[error("RSA key generation failed")]
    GenerationFailed,
    /// The private-key operation failed.
    #[error("RSA signing failed")]
    SigningFailed,
    /// The signature does not have the modulus length.
    #[error("RSA signature has {actual} bytes, the modulus has {expected}")]
    SignatureLength {
        /// The modulus length in bytes.
        expected: usize,
        /// The length that was given.
        actual: usize,
    },
    /// The signature does not verify for this key and message.
    #[error("RSA signature does not verify")]
    SignatureInvalid,
}

fn check_bits(bits: usize) -> Result<(), RsaError> {
    if (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(RsaError::UnsupportedKeySize { bits })
    }
}

fn modulus_bits(key: &impl PublicKeyParts) -> usize {
    // A modulus of at most 8192 bits (the `rsa` crate's limit) always fits.
    usize::try_from(key.n().bit_width_vartime()).unwrap_or(usize::MAX)
}

/// An RSA public key.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    inner: ::rsa::PublicKey,
}

impl RsaPublicKey {
    fn new(inner: ::rsa::PublicKey) -> Result<Self, RsaError> {
        check_bits(modulus_bits(&inner))?;
        Ok(Self { inner })
    }

    /// Parses a DER PKCS#1 `RSAPublicKey` (RFC 8017 appendix A.1.1).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, RsaError> {
        Self::new(::rsa::PublicKey::from_pkcs1_der(der).map_err(|_| RsaError::MalformedKey)?)
    }

    /// Parses a DER `SubjectPublicKeyInfo` with the rsaEncryption algorithm (RFC 5280), the form
    /// `openssl pkey -pubout -outform DER` writes.
    pub fn from_public_key_der(der: &[u8]) -> Result<Self, RsaError> {
        Self::new(::rsa::PublicKey::from_public_key_der(der).map_err(|_| RsaError::MalformedKey)?)
    }

    /// Builds a key from its modulus and public exponent, big-endian (leading zero bytes
    /// allowed).
    pub fn from_components(modulus: &[u8], exponent: &[u8]) -> Result<Self, RsaError> {
        let strip = |b: &[u8]| -> Vec<u8> { b.iter().copied().skip_while(|x| *x == 0).collect() };
        let (n, e) = (strip(modulus), strip(exponent));
        if n.is_empty() || e.is_empty() {
            return Err(RsaError::MalformedKey);
        }
        check_bits(modulus_bits_of_bytes(&n))?;
        let n = ::rsa::BoxedUint::from_be_slice_vartime(&n);
        let e = ::rsa::BoxedUint::from_be_slice_vartime(&e);
        Self::new(::rsa::PublicKey::new(n, e).map_err(|_| RsaError::MalformedKey)?)
    }

    /// The DER PKCS#1 `RSAPublicKey`.
    pub fn to_pkcs1_der(&self) -> Result<Vec<u8>, RsaError> {
        let doc = self
            .inner
            .to_pkcs1_der()
            .map_err(|_| RsaError::EncodingFailed)?;
        Ok(doc.as_bytes().to_vec())
    }

    /// The DER `SubjectPublicKeyInfo` (rsaEncryption), as OpenSSL reads it with `-keyform DER`.
    pub fn to_public_key_der(&self) -> Result<Vec<u8>, RsaError> {
        let doc = self
            .inner
            .to_public_key_der()
            .map_err(|_| RsaError::EncodingFailed)?;
        Ok(doc.as_bytes().to_vec())
    }

    /// The modulus n, big-endian, exactly [`Self::size`] bytes (no leading zero byte).
    pub fn modulus(&self) -> Vec<u8> {
        self.inner.n_bytes().into_vec()
    }

    /// The public exponent e, big-endian without leading zero bytes.
    pub fn exponent(&self) -> Vec<u8> {
        self.inner.e_bytes().into_vec()
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        modulus_bits(&self.inner)
    }

    /// The modulus size in bytes, which is the length of every signature.
    pub fn size(&self) -> usize {
        self.inner.size()
    }

    /// Verifies an RSASSA-PKCS1-v1_5 signature with SHA-256 over `msg` (RFC 8017 §8.2.2).
    pub fn verify_pkcs1v15_sha256(&self, msg: &[u8], signature: &[u8]) -> Result<(), RsaError> {
        if signature.len() != self.size() {
            return Err(RsaError::SignatureLength {
                expected: self.size(),
                actual: signature.len(),
            });
        }
        self.inner
            .pkcs1v15_verify_prehash::<Sha256>(&Sha256::digest(msg), signature)
            .map_err(|_| RsaError::SignatureInvalid)
    }
}

fn modulus_bits_of_bytes(n: &[u8]) -> usize {
    let lead = n.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
    n.len()
        .saturating_sub(1)
        .saturating_mul(8)
        .saturating_add(lead)
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({} bits, n = ", self.bits())?;
        self.modulus()
            .iter()
            .take(8)
            .try_for_each(|b| write!(f, "{b:02X}"))?;
        f.write_str("…)")
    }
}

/// An RSA private key with its public key.
///
/// The `rsa` crate's key wipes its private exponent, primes and CRT values on drop, so this
/// wrapper does too; `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct RsaPrivateKey {
    inner: ::rsa::PrivateKey,
    public: RsaPublicKey,
}

impl RsaPrivateKey {
    fn new(inner: ::rsa::PrivateKey) -> Result<Self, RsaError> {
        inner.validate().map_err(|_| RsaError::MalformedKey)?;
        let public = RsaPublicKey::new(inner.to_public_key())?;
        Ok(Self { inner, public })
    }

    /// Parses a DER PKCS#1 `RSAPrivateKey` (RFC 8017 appendix A.1.2, two primes).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, RsaError> {
        Self::new(::rsa::PrivateKey::from_pkcs1_der(der).map_err(|_| RsaError::MalformedKey)?)
    }

    /// Parses an unencrypted DER PKCS#8 `PrivateKeyInfo` with the rsaEncryption algorithm
    /// (RFC 5208), the form `openssl pkcs8 -topk8 -nocrypt -outform DER` writes.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, RsaError> {
        Self::new(::rsa::PrivateKey::from_pkcs8_der(der).map_err(|_| RsaError::MalformedKey)?)
    }

    /// Generates a key of `bits` bits with e = [`RSA_DEFAULT_EXPONENT`], drawing every random
    /// value from `rng`.
    pub fn generate<R: CryptoRng>(rng: &mut R, bits: usize) -> Result<Self, RsaError> {
        check_bits(bits)?;
        let inner = ::rsa::PrivateKey::new(rng, bits).map_err(|_| RsaError::GenerationFailed)?;
        Self::new(inner)
    }

    /// The unencrypted DER PKCS#8 form, in a buffer wiped on drop. Handle with care: this is key
    /// material.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, RsaError> {
        let doc = self
            .inner
            .to_pkcs8_der()
            .map_err(|_| RsaError::EncodingFailed)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The public key.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// Signs `msg` with RSASSA-PKCS1-v1_5 and SHA-256 (RFC 8017 §8.2.1).
    ///
    /// The signature is deterministic. This form does the private-key operation without
    /// blinding (the `rsa` crate's arithmetic is constant-time, blinding is a second layer);
    /// [`Self::sign_pkcs1v15_sha256_with_rng`] gives the same signature with blinding.
    pub fn sign_pkcs1v15_sha256(&self, msg: &[u8]) -> Result<Vec<u8>, RsaError> {
        self.inner
            .pkcs1v15_sign_prehash::<Sha256>(&Sha256::digest(msg))
            .map_err(|_| RsaError::SigningFailed)
    }

    /// Signs `msg` like [`Self::sign_pkcs1v15_sha256`], blinding the private-key operation with
    /// values drawn from `rng`; the signature is the same.
    pub fn sign_pkcs1v15_sha256_with_rng<R: CryptoRng>(
        &self,
        rng: &mut R,
        msg: &[u8],
    ) -> Result<Vec<u8>, RsaError> {
        self.inner
            .pkcs1v15_sign_prehash_with_rng::<Sha256, R>(rng, &Sha256::digest(msg))
            .map_err(|_| RsaError::SigningFailed)
    }
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "RsaPrivateKey")
    }
}
