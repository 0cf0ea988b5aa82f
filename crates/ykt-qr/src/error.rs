//! The crate's error types: [`DecodeError`] for the decoders, [`Error`] for the generator side.

use crate::code::Field;

/// A structure this crate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Structure {
    /// The whole code, fields 1–17 (332 + N bytes).
    Code,
    /// The issuer's authorisation blob, fields 1–15 (263 + N bytes).
    Authorisation,
    /// The issuer certificate, field 3 (117 bytes, §2.2).
    Certificate,
    /// A root CA public key record (144 bytes, §2.3).
    RootKeyRecord,
    /// A terminal parameter 4026 entry: medium, version, key record, RFU (160 bytes, §2.3).
    RootKeyEntry,
    /// A terminal parameter 4020 record: issuer whitelist and ticket-type map (16 bytes, §2.3).
    WhitelistRecord,
}

/// A field of the issuer certificate (§2.2) whose value the format fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateField {
    /// Byte 0, record header, `24`.
    RecordHeader,
    /// Byte 6, certificate format, `12`.
    Format,
    /// Bytes 11–12, expiry MMYY in BCD.
    Expiry,
    /// Byte 16, signature algorithm, `04` (SM2).
    SignatureAlgorithm,
    /// Byte 17, encryption algorithm, `04` (SM2).
    EncryptionAlgorithm,
    /// Byte 19, public-key length, `21` (33).
    PublicKeyLength,
    /// Byte 20, the compressed point's prefix, `02` or `03`.
    PublicKeyPrefix,
}

/// A field of the root CA public key record (§2.3) whose value the format fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RootKeyField {
    /// Byte 0, record header, `21`.
    RecordHeader,
    /// Bytes 5–9, the RID `A000000632` (the first byte that differs is given).
    Rid,
    /// Bytes 11–12, expiry MMYY in BCD.
    Expiry,
    /// Byte 13, algorithm, `04` (SM2).
    Algorithm,
    /// Byte 15, public-key length, `40` (64).
    PublicKeyLength,
    /// Byte 0 of a 4026 entry, the medium type (`00` = QR).
    Medium,
    /// Byte 1 of a 4026 entry, the code version (`80`–`FF`).
    Version,
}

/// Why bytes did not decode. Every variant names the field at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input does not have the structure's length (for a code: below the 332-byte minimum,
    /// or not 332 + N where N is field 13).
    #[error("{structure:?} is {actual} bytes, expected {expected}")]
    Length {
        /// What was being decoded.
        structure: Structure,
        /// The length the format requires (the minimum, when N could not be read).
        expected: usize,
        /// The length that was given.
        actual: usize,
    },
    /// Field 1 (version) is below `80`.
    #[error("field 1 (version) is {0:#04x}, below 0x80")]
    Version(u8),
    /// Field 2 (data length) does not count the bytes that follow it.
    #[error("field 2 (data length) says {declared}, {actual} bytes follow")]
    DataLength {
        /// The value of field 2.
        declared: u16,
        /// The number of bytes after field 2.
        actual: usize,
    },
    /// Field 13 (issuer-defined length N) is above 32.
    #[error("field 13 (issuer-defined length) is {0}, above 32")]
    IssuerDataLength(u8),
    /// A field of the code other than the certificate holds a value the format does not allow.
    #[error("field {} ({field:?}) holds the invalid value {value:#04x}", .field.number())]
    Field {
        /// The field.
        field: Field,
        /// The first offending byte.
        value: u8,
    },
    /// A certificate field (field 3, §2.2) holds a value the format does not allow.
    #[error("issuer certificate field {field:?} holds the invalid value {value:#04x}")]
    Certificate {
        /// The certificate field.
        field: CertificateField,
        /// The first offending byte.
        value: u8,
    },
    /// A root key record field (§2.3) holds a value the format does not allow.
    #[error("root key record field {field:?} holds the invalid value {value:#04x}")]
    RootKeyRecord {
        /// The record field.
        field: RootKeyField,
        /// The first offending byte.
        value: u8,
    },
}

/// What can go wrong on the generator side (CA, issuer, wallet) and when loading parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The issuer-defined data (field 14) is longer than 32 bytes.
    #[error("issuer-defined data is {0} bytes, at most 32 are allowed")]
    IssuerDataTooLong(usize),
    /// A value does not fit its field (the limit in field 9 is 24 bits).
    #[error("{field:?} does not fit its field")]
    ValueOutOfRange {
        /// The field.
        field: Field,
    },
    /// The private key given does not belong to the public key the structure carries (the
    /// issuer key and its certificate, or the device key and field 10).
    #[error("the private key does not match the public key in the {0:?}")]
    KeyMismatch(Structure),
    /// The wallet was asked for a code after the authorisation expired (field 11).
    #[error("the authorisation expired at {expiry}, the code would be dated {now}")]
    AuthorisationExpired {
        /// Field 11.
        expiry: u32,
        /// The requested generation time.
        now: u32,
    },
    /// A root key record's self-signature does not verify, or its key is not a curve point.
    #[error("root key record does not verify: {0}")]
    RootKeySelfSignature(ykt_crypto::Error),
    /// A parameter download is not newer than the table the terminal holds.
    #[error("parameter version {offered} is not newer than {current}")]
    StaleParameters {
        /// The version held.
        current: u32,
        /// The version offered.
        offered: u32,
    },
    /// An SM2 operation failed.
    #[error(transparent)]
    Crypto(ykt_crypto::Error),
    /// A parameter file (4026 or 4020, §2.3) did not decode.
    #[error(transparent)]
    Table(#[from] crate::tables::TableError),
}
