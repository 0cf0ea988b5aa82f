//! The crate's one error type.

/// Everything that can go wrong in this crate.
///
/// MAC computations over keys of a fixed type cannot fail and return plain arrays; the variants
/// below cover byte strings of the wrong shape, invalid curve points and failed checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key was given with a length the algorithm does not accept.
    #[error("invalid key length {actual} for {algorithm}")]
    InvalidKeyLength {
        /// Algorithm the key was meant for.
        algorithm: &'static str,
        /// Length that was given, in bytes.
        actual: usize,
    },
    /// An initial value was not exactly one block long.
    #[error("invalid IV length {actual}, the block is {block_size} bytes")]
    InvalidIvLength {
        /// Block size of the cipher, in bytes.
        block_size: usize,
        /// Length that was given, in bytes.
        actual: usize,
    },
    /// Unpadded ECB/CBC input was not a whole number of blocks.
    #[error("data length {actual} is not a multiple of the block size {block_size}")]
    NotBlockAligned {
        /// Block size of the cipher, in bytes.
        block_size: usize,
        /// Length that was given, in bytes.
        actual: usize,
    },
    /// ISO/IEC 9797-1 padding method 2 (`80 00 ..`) was not found where it was expected.
    #[error("invalid ISO/IEC 9797-1 method 2 padding")]
    InvalidPadding,
    /// An SM2 private key was zero or not below the group order.
    #[error("invalid SM2 private key")]
    InvalidPrivateKey,
    /// An SM2 public key was not a valid point on the curve (or not a SEC1 encoding).
    #[error("invalid SM2 public key")]
    InvalidPublicKey,
    /// A signature encoding (64-byte r||s or DER) could not be parsed, or r or s was out of range.
    #[error("malformed SM2 signature encoding")]
    MalformedSignature,
    /// The signature is well formed but does not verify for this key, user ID and message.
    #[error("SM2 signature does not verify")]
    SignatureInvalid,
    /// The SM2 user ID is longer than the 16-bit ENTL bit-length field allows (8191 bytes).
    #[error("SM2 user ID is too long")]
    UserIdTooLong,
    /// Signing failed: the nonce derivation produced a value the algorithm rejects.
    #[error("SM2 signing failed")]
    SigningFailed,
    /// SM2 encryption failed (the random source failed or produced an unusable value).
    #[error("SM2 encryption failed")]
    EncryptionFailed,
    /// SM2 decryption failed: malformed ciphertext, wrong key or integrity check (C3) mismatch.
    #[error("SM2 decryption failed")]
    DecryptionFailed,
    /// The random source did not produce a usable value within the retry budget.
    #[error("random source produced no usable value")]
    RandomSourceFailed,
}
