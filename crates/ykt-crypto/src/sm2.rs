//! SM2 signatures and public-key encryption (GB/T 32918 / GM/T 0003) on the recommended curve,
//! wrapping RustCrypto `sm2`.
//!
//! The user ID enters the signature through `Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)`.
//! This module computes `Z` itself so that any byte string is a valid ID; the message hash
//! `e = SM3(Z || M)` is then signed and verified through `sm2`'s prehash interfaces.

use alloc::vec::Vec;
use core::fmt;

use ::sm2::dsa::signature::hazmat::PrehashSigner;
use ::sm2::dsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::Error;
use crate::hash::Sm3;
use crate::keys::redacted;

/// The default SM2 user ID (GM/T 0009): the ASCII string `1234567812345678`.
pub const DEFAULT_SM2_ID: &[u8] = b"1234567812345678";

/// Curve coefficient a of the SM2 recommended curve (GB/T 32918.5).
const CURVE_A: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFC,
];
/// Curve coefficient b.
const CURVE_B: [u8; 32] = [
    0x28, 0xE9, 0xFA, 0x9E, 0x9D, 0x9F, 0x5E, 0x34, 0x4D, 0x5A, 0x9E, 0x4B, 0xCF, 0x65, 0x09, 0xA7,
    0xF3, 0x97, 0x89, 0xF5, 0x15, 0xAB, 0x8F, 0x92, 0xDD, 0xBC, 0xBD, 0x41, 0x4D, 0x94, 0x0E, 0x93,
];
/// x coordinate of the base point G.
const GX: [u8; 32] = [
    0x32, 0xC4, 0xAE, 0x2C, 0x1F, 0x19, 0x81, 0x19, 0x5F, 0x99, 0x04, 0x46, 0x6A, 0x39, 0xC9, 0x94,
    0x8F, 0xE3, 0x0B, 0xBF, 0xF2, 0x66, 0x0B, 0xE1, 0x71, 0x5A, 0x45, 0x89, 0x33, 0x4C, 0x74, 0xC7,
];
/// y coordinate of the base point G.
const GY: [u8; 32] = [
    0xBC, 0x37, 0x36, 0xA2, 0xF4, 0xF6, 0x77, 0x9C, 0x59, 0xBD, 0xCE, 0xE3, 0x6B, 0x69, 0x21, 0x53,
    0xD0, 0xA9, 0x87, 0x7C, 0xC6, 0x2A, 0x47, 0x40, 0x02, 0xDF, 0x32, 0xE5, 0x21, 0x39, 0xF0, 0xA0,
];

/// How many times [`Sm2PrivateKey::generate`] draws 32 bytes before giving up.
const GENERATE_ATTEMPTS: usize = 16;

/// Order of the three SM2 ciphertext parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sm2CipherMode {
    /// `C1 || C3 || C2` (GB/T 32918.4-2016, the default).
    #[default]
    C1C3C2,
    /// `C1 || C2 || C3` (the 2010 draft order, still used by some peers).
    C1C2C3,
}

impl Sm2CipherMode {
    fn inner(self) -> ::sm2::pke::Mode {
        match self {
            Self::C1C3C2 => ::sm2::pke::Mode::C1C3C2,
            Self::C1C2C3 => ::sm2::pke::Mode::C1C2C3,
        }
    }
}

/// An SM2 signature `(r, s)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sm2Signature([u8; 64]);

impl Sm2Signature {
    /// Parses the 64-byte `r || s` form (each 32 bytes big-endian); r and s must be in [1, n-1].
    pub fn from_bytes(bytes: &[u8; 64]) -> Result<Self, Error> {
        ::sm2::dsa::Signature::from_slice(bytes).map_err(|_| Error::MalformedSignature)?;
        Ok(Self(*bytes))
    }

    /// Parses a DER `SEQUENCE { INTEGER r, INTEGER s }`.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let sig = ::sm2::dsa::Signature::from_der(der).map_err(|_| Error::MalformedSignature)?;
        Ok(Self::from_inner(&sig))
    }

    /// The 64-byte `r || s` form.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    /// The DER `SEQUENCE { INTEGER r, INTEGER s }` form.
    pub fn to_der(&self) -> Vec<u8> {
        match self.inner() {
            Ok(sig) => sig.to_der().to_vec(),
            // The bytes were validated at construction, so this branch is unreachable.
            Err(_) => Vec::new(),
        }
    }

    /// The r component (32 bytes big-endian).
    pub fn r(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0[..32]);
        out
    }

    /// The s component (32 bytes big-endian).
    pub fn s(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0[32..]);
        out
    }

    fn from_inner(sig: &::sm2::dsa::Signature) -> Self {
        let mut out = [0u8; 64];
        out.copy_from_slice(&sig.to_bytes());
        Self(out)
    }

    fn inner(&self) -> Result<::sm2::dsa::Signature, Error> {
        ::sm2::dsa::Signature::from_slice(&self.0).map_err(|_| Error::MalformedSignature)
    }
}

impl fmt::Debug for Sm2Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sm2Signature(")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))?;
        f.write_str(")")
    }
}

/// An SM2 public key (a point on the recommended curve).
#[derive(Clone, PartialEq, Eq)]
pub struct Sm2PublicKey {
    inner: ::sm2::PublicKey,
}

impl Sm2PublicKey {
    /// Parses a SEC1 point: `04 || X || Y` (65 bytes) or the compressed `02/03 || X` form.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let inner =
            ::sm2::PublicKey::from_sec1_bytes(bytes).map_err(|_| Error::InvalidPublicKey)?;
        Ok(Self { inner })
    }

    /// The uncompressed form `04 || X || Y` (65 bytes). A valid public key is never the point at
    /// infinity, so the encoding always has this length.
    pub fn to_bytes(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        let encoded = self.inner.to_sec1_bytes();
        if encoded.len() == 65 {
            out.copy_from_slice(&encoded);
        }
        out
    }

    /// The user information hash `Z_A` for `id` (GB/T 32918.2 §5.5).
    pub fn identity_hash(&self, id: &[u8]) -> Result<[u8; 32], Error> {
        let entl = u16::try_from(id.len())
            .ok()
            .and_then(|n| n.checked_mul(8))
            .ok_or(Error::UserIdTooLong)?;
        let point = self.to_bytes();
        let mut h = Sm3::new();
        h.update(&entl.to_be_bytes());
        h.update(id);
        h.update(&CURVE_A);
        h.update(&CURVE_B);
        h.update(&GX);
        h.update(&GY);
        h.update(&point[1..]);
        Ok(h.finalize())
    }

    /// The message hash `e = SM3(Z_A || msg)` that is signed.
    pub fn message_hash(&self, id: &[u8], msg: &[u8]) -> Result<[u8; 32], Error> {
        let z = self.identity_hash(id)?;
        let mut h = Sm3::new();
        h.update(&z);
        h.update(msg);
        Ok(h.finalize())
    }

    /// Verifies `sig` over `msg` for the user `id` ([`DEFAULT_SM2_ID`] unless a protocol says
    /// otherwise).
    pub fn verify(&self, id: &[u8], msg: &[u8], sig: &Sm2Signature) -> Result<(), Error> {
        let e = self.message_hash(id, msg)?;
        let vk =
            ::sm2::dsa::VerifyingKey::new("", self.inner).map_err(|_| Error::InvalidPublicKey)?;
        vk.verify_prehash(&e, &sig.inner()?)
            .map_err(|_| Error::SignatureInvalid)
    }

    /// Encrypts `msg` to this key; the ciphertext starts with the `04` point prefix of C1 and is
    /// `65 + 32 + msg.len()` bytes long. An empty `msg` gives [`Error::EncryptionFailed`] (the
    /// algorithm's all-zero KDF check cannot pass on an empty key stream).
    pub fn encrypt<R: CryptoRng>(
        &self,
        rng: &mut R,
        msg: &[u8],
        mode: Sm2CipherMode,
    ) -> Result<Vec<u8>, Error> {
        ::sm2::pke::EncryptingKey::new_with_mode(self.inner, mode.inner())
            .encrypt(rng, msg)
            .map_err(|_| Error::EncryptionFailed)
    }
}

impl fmt::Debug for Sm2PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sm2PublicKey(")?;
        self.to_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02X}"))?;
        f.write_str(")")
    }
}

/// An SM2 private key with its public key. The secret scalar is wiped on drop.
///
/// The RustCrypto signing and decrypting keys built from it for one operation do not wipe their
/// copy of the scalar (sm2 0.14 does not implement zeroize for them); they live only for that call.
#[derive(Clone)]
pub struct Sm2PrivateKey {
    secret: ::sm2::SecretKey,
    public: Sm2PublicKey,
}

impl Sm2PrivateKey {
    /// Wraps a 32-byte big-endian secret scalar, which must be in [1, n-1].
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        let secret = ::sm2::SecretKey::from_slice(bytes).map_err(|_| Error::InvalidPrivateKey)?;
        let public = Sm2PublicKey {
            inner: secret.public_key(),
        };
        Ok(Self { secret, public })
    }

    /// Generates a key from `rng` by rejection sampling of 32-byte strings.
    pub fn generate<R: CryptoRng>(rng: &mut R) -> Result<Self, Error> {
        for _ in 0..GENERATE_ATTEMPTS {
            let mut bytes = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(bytes.as_mut());
            if let Ok(key) = Self::from_bytes(&bytes) {
                return Ok(key);
            }
        }
        Err(Error::RandomSourceFailed)
    }

    /// The secret scalar, 32 bytes big-endian, in a buffer wiped on drop.
    pub fn expose(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.secret.to_bytes());
        out
    }

    /// The public key.
    pub fn public_key(&self) -> &Sm2PublicKey {
        &self.public
    }

    fn signing_key(&self) -> Result<::sm2::dsa::SigningKey, Error> {
        ::sm2::dsa::SigningKey::new("", &self.secret).map_err(|_| Error::InvalidPrivateKey)
    }

    /// Signs `msg` for the user `id` with a deterministic nonce (RFC 6979 style over SM3).
    pub fn sign(&self, id: &[u8], msg: &[u8]) -> Result<Sm2Signature, Error> {
        let e = self.public.message_hash(id, msg)?;
        let sig: ::sm2::dsa::Signature = self
            .signing_key()?
            .sign_prehash(&e)
            .map_err(|_| Error::SigningFailed)?;
        Ok(Sm2Signature::from_inner(&sig))
    }

    /// Signs `msg` for the user `id` with a nonce derived from the key, the message and 32
    /// bytes drawn from `rng` (hedged signing).
    pub fn sign_with_rng<R: CryptoRng>(
        &self,
        rng: &mut R,
        id: &[u8],
        msg: &[u8],
    ) -> Result<Sm2Signature, Error> {
        let e = self.public.message_hash(id, msg)?;
        let sig: ::sm2::dsa::Signature = self
            .signing_key()?
            .sign_prehash_with_rng(rng, &e)
            .map_err(|_| Error::SigningFailed)?;
        Ok(Sm2Signature::from_inner(&sig))
    }

    /// Decrypts an SM2 ciphertext (with the `04` prefix on C1) in the given part order.
    pub fn decrypt(&self, ciphertext: &[u8], mode: Sm2CipherMode) -> Result<Vec<u8>, Error> {
        ::sm2::pke::DecryptingKey::new_with_mode(self.secret.to_nonzero_scalar(), mode.inner())
            .decrypt(ciphertext)
            .map_err(|_| Error::DecryptionFailed)
    }
}

impl fmt::Debug for Sm2PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "Sm2PrivateKey")
    }
}
