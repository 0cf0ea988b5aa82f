use crate::code::Code;

/// Why an envelope was refused or could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not an envelope: bad JSON, a member missing, unknown or of the wrong type.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// The `version` is not one this build speaks.
    #[error("unsupported envelope version")]
    Version,
    /// The timestamp is not RFC 3339.
    #[error("the timestamp is not an RFC 3339 date-time")]
    Timestamp,
    /// The timestamp is outside the window around the receiver's clock.
    #[error("the timestamp is outside the replay window")]
    Stale,
    /// A number with a fraction or exponent (no canonical form here).
    #[error("numbers in signed JSON must be integers")]
    NotCanonical,
    /// The signature is not base64, or does not verify under the sender's key.
    #[error("the signature does not verify")]
    BadSignature,
    /// The `sign_alg` does not match the sender's key.
    #[error("the signature algorithm does not match the sender's key")]
    AlgorithmMismatch,
    /// The signer failed (its key is unusable, its KMS said no).
    #[error("the signer failed: {0}")]
    Signer(String),
    /// The body does not have the shape the message type needs.
    #[error("malformed body: {0}")]
    Body(String),
}

impl EnvelopeError {
    /// The result code a response to such a message carries.
    pub fn code(&self) -> Code {
        match self {
            Self::Malformed(_)
            | Self::Version
            | Self::Timestamp
            | Self::NotCanonical
            | Self::Body(_) => Code::BadRequest,
            Self::Stale => Code::Stale,
            Self::BadSignature | Self::AlgorithmMismatch => Code::BadSignature,
            Self::Signer(_) => Code::Internal,
        }
    }
}
