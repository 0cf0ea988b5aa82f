//! The payload in the QR symbol (qr-code.md §1.1): 17 fields, 332 + N bytes, big-endian.
//!
//! The code is built in two stages, and so are the types: the issuer's [`Authorisation`]
//! (fields 1–15, the blob the back end hands to the wallet, §4.1) and the [`QrCode`] the wallet
//! makes from it at display time (fields 16 and 17, §4.2).

use alloc::vec::Vec;
use core::ops::Range;

use crate::cert::{IssuerCertificate, arr};
use crate::error::{DecodeError, Structure};

/// Length of a code with no issuer-defined data (fields 1–17 with N = 0).
pub const MIN_LEN: usize = 332;
/// The largest N (field 13).
pub const MAX_ISSUER_DATA: usize = 32;
/// Offset of field 14 (the issuer-defined data).
const ISSUER_DATA_AT: usize = 198;

/// The tag byte generators write in front of r ‖ s in fields 15 and 17.
///
/// L (§1.1, open question 2): its meaning is unknown; one generator writes `15`. Verifiers never
/// check it.
pub const SIGNATURE_TAG: u8 = 0x15;

/// Field 1, the code version: `80` and above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u8);

impl Version {
    /// `80`, the interoperable (互通) version (§1.1, H).
    pub const INTEROPERABLE: Self = Self(0x80);
    /// `81`, the Shanghai local version (§1.1, M), with its own user IDs ([`crate::ids`]).
    pub const LOCAL: Self = Self(0x81);

    /// A version byte; readers accept `80`–`FF` (§1.1), anything below is not a code.
    pub const fn new(value: u8) -> Option<Self> {
        if value >= 0x80 {
            Some(Self(value))
        } else {
            None
        }
    }

    /// The byte.
    pub const fn value(self) -> u8 {
        self.0
    }
}

/// The 17 fields of §1.1, by their numbers in the standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Field {
    /// 1, version (1 byte).
    Version,
    /// 2, data length of fields 3–17 (u16).
    DataLength,
    /// 3, issuer certificate (117 bytes).
    Certificate,
    /// 4, payment account (16 bytes).
    PaymentAccount,
    /// 5, user account (10 bytes).
    UserAccount,
    /// 6, issuing institution code (4 bytes).
    OrgCode,
    /// 7, issuing platform id (4 bytes).
    PlatformId,
    /// 8, account type (1 byte).
    AccountType,
    /// 9, single-payment limit in fen (u24).
    Limit,
    /// 10, user public key, compressed (33 bytes).
    UserPublicKey,
    /// 11, authorisation expiry, Unix seconds (u32).
    AuthorisationExpiry,
    /// 12, code validity in seconds (u16).
    Validity,
    /// 13, issuer-defined length N (1 byte).
    IssuerDataLength,
    /// 14, issuer-defined data (N bytes).
    IssuerData,
    /// 15, issuer authorisation signature: tag ‖ r ‖ s (65 bytes).
    IssuerSignature,
    /// 16, generation time, Unix seconds (u32).
    GenerationTime,
    /// 17, user signature: tag ‖ r ‖ s (65 bytes).
    UserSignature,
}

impl Field {
    /// All fields in order.
    pub const ALL: [Self; 17] = [
        Self::Version,
        Self::DataLength,
        Self::Certificate,
        Self::PaymentAccount,
        Self::UserAccount,
        Self::OrgCode,
        Self::PlatformId,
        Self::AccountType,
        Self::Limit,
        Self::UserPublicKey,
        Self::AuthorisationExpiry,
        Self::Validity,
        Self::IssuerDataLength,
        Self::IssuerData,
        Self::IssuerSignature,
        Self::GenerationTime,
        Self::UserSignature,
    ];

    /// The field's number in the standard, 1–17.
    pub fn number(self) -> u8 {
        // `ALL` lists every variant in order, so the position exists.
        Self::ALL
            .iter()
            .position(|f| *f == self)
            .map_or(0, |i| i as u8 + 1)
    }

    /// The bytes of the field in a code whose field 13 is `n`.
    pub fn range(self, n: usize) -> Range<usize> {
        let (at, len) = match self {
            Self::Version => (0, 1),
            Self::DataLength => (1, 2),
            Self::Certificate => (3, 117),
            Self::PaymentAccount => (120, 16),
            Self::UserAccount => (136, 10),
            Self::OrgCode => (146, 4),
            Self::PlatformId => (150, 4),
            Self::AccountType => (154, 1),
            Self::Limit => (155, 3),
            Self::UserPublicKey => (158, 33),
            Self::AuthorisationExpiry => (191, 4),
            Self::Validity => (195, 2),
            Self::IssuerDataLength => (197, 1),
            Self::IssuerData => (ISSUER_DATA_AT, n),
            Self::IssuerSignature => (198 + n, 65),
            Self::GenerationTime => (263 + n, 4),
            Self::UserSignature => (267 + n, 65),
        };
        at..at + len
    }
}

/// Fields 15 and 17: a tag byte and the raw SM2 signature r ‖ s (not DER, §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureField {
    /// The tag byte ([`SIGNATURE_TAG`] when we write it; never checked).
    pub tag: u8,
    /// r ‖ s, each 32 bytes big-endian. Not validated at decode: an out-of-range r or s is a
    /// signature that does not verify.
    pub signature: [u8; 64],
}

impl SignatureField {
    /// A field with our tag over `signature`.
    pub fn new(signature: &ykt_crypto::Sm2Signature) -> Self {
        Self {
            tag: SIGNATURE_TAG,
            signature: signature.to_bytes(),
        }
    }

    fn decode(b: &[u8]) -> Self {
        Self {
            tag: b.first().copied().unwrap_or(0),
            signature: arr(b.get(1..).unwrap_or(&[])),
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.tag);
        out.extend_from_slice(&self.signature);
    }
}

/// Fields 4–14: what the issuer authorises besides its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBody {
    /// Field 4, payment account (opaque; S5 reads it as ASCII).
    pub payment_account: [u8; 16],
    /// Field 5, user account: the "card number" of transactions, BCD-like and F-padded.
    pub user_account: [u8; 10],
    /// Field 6, issuing institution code.
    pub org_code: [u8; 4],
    /// Field 7, issuing platform id.
    pub platform_id: [u8; 4],
    /// Field 8, account type (JT/T 978.3: `00`/`01` normal, `02` student, `03` senior,
    /// `04` test, `05` military).
    pub account_type: u8,
    /// Field 9, single-payment limit in fen; at most `FFFFFF` (24 bits).
    pub limit: u32,
    /// Field 10, the user's compressed SM2 public key (its curve validity is checked by the
    /// verifier, not the decoder).
    pub user_public_key: [u8; 33],
    /// Field 11, authorisation expiry, Unix seconds UTC.
    pub authorisation_expiry: u32,
    /// Field 12, code validity in seconds after field 16.
    pub validity: u16,
    /// Field 14, the issuer-defined data, at most 32 bytes (its length is field 13).
    pub issuer_data: Vec<u8>,
}

impl CodeBody {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.payment_account);
        out.extend_from_slice(&self.user_account);
        out.extend_from_slice(&self.org_code);
        out.extend_from_slice(&self.platform_id);
        out.push(self.account_type);
        out.extend_from_slice(&self.limit.to_be_bytes()[1..]);
        out.extend_from_slice(&self.user_public_key);
        out.extend_from_slice(&self.authorisation_expiry.to_be_bytes());
        out.extend_from_slice(&self.validity.to_be_bytes());
        // The generator refuses longer data; the truncation keeps the encoding self-consistent.
        let n = self.issuer_data.len().min(MAX_ISSUER_DATA);
        out.push(n as u8);
        out.extend_from_slice(&self.issuer_data[..n]);
    }

    /// Decodes fields 4–14 from `b` (offsets of the code; `b` holds at least 198 + `n` bytes).
    fn decode(b: &[u8], n: usize) -> Result<Self, DecodeError> {
        let key_prefix = b[Field::UserPublicKey.range(n).start];
        if key_prefix != 0x02 && key_prefix != 0x03 {
            return Err(DecodeError::Field {
                field: Field::UserPublicKey,
                value: key_prefix,
            });
        }
        let get = |f: Field| &b[f.range(n)];
        let limit = get(Field::Limit);
        Ok(Self {
            payment_account: arr(get(Field::PaymentAccount)),
            user_account: arr(get(Field::UserAccount)),
            org_code: arr(get(Field::OrgCode)),
            platform_id: arr(get(Field::PlatformId)),
            account_type: b[Field::AccountType.range(n).start],
            limit: u32::from_be_bytes([0, limit[0], limit[1], limit[2]]),
            user_public_key: arr(get(Field::UserPublicKey)),
            authorisation_expiry: u32::from_be_bytes(arr(get(Field::AuthorisationExpiry))),
            validity: u16::from_be_bytes(arr(get(Field::Validity))),
            issuer_data: get(Field::IssuerData).to_vec(),
        })
    }

    /// N, the length of field 14 as encoded (field 13).
    pub fn issuer_data_len(&self) -> usize {
        self.issuer_data.len().min(MAX_ISSUER_DATA)
    }
}

/// Fields 1–15: the issuer's authorisation of a user public key (§4.1), which the back end
/// sends to the wallet as one blob (base64 over HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorisation {
    /// Field 1.
    pub version: Version,
    /// Field 3.
    pub certificate: IssuerCertificate,
    /// Fields 4–14.
    pub body: CodeBody,
    /// Field 15, signature B over fields 3–14.
    pub issuer_signature: SignatureField,
}

impl Authorisation {
    /// Fields 3–14, the message of signature B (§2.4).
    pub fn issuer_signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(195 + self.body.issuer_data_len());
        out.extend_from_slice(&self.certificate.encode());
        self.body.encode_into(&mut out);
        out
    }

    /// Fields 1–15 as the back end returns them (263 + N bytes). Field 2 already counts the
    /// whole code that the wallet will complete (329 + N, §4.1 step 2).
    pub fn encode(&self) -> Vec<u8> {
        let n = self.body.issuer_data_len();
        let mut out = Vec::with_capacity(MIN_LEN + n);
        out.push(self.version.value());
        out.extend_from_slice(&((MIN_LEN - 3 + n) as u16).to_be_bytes());
        out.extend_from_slice(&self.issuer_signed_bytes());
        self.issuer_signature.encode_into(&mut out);
        out
    }

    /// Decodes the blob of fields 1–15 (263 + N bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_prefix(bytes, Structure::Authorisation, 263)
    }
}

/// A complete code, fields 1–17, as the QR symbol carries it (§1.1, byte mode, §1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrCode {
    /// Fields 1–15.
    pub authorisation: Authorisation,
    /// Field 16, generation time, Unix seconds UTC, written at display time.
    pub generation_time: u32,
    /// Field 17, signature C over fields 1–16.
    pub user_signature: SignatureField,
}

impl QrCode {
    /// Fields 1–16, the message of signature C (§2.4).
    pub fn user_signed_bytes(&self) -> Vec<u8> {
        let mut out = self.authorisation.encode();
        out.extend_from_slice(&self.generation_time.to_be_bytes());
        out
    }

    /// The 332 + N bytes of the code.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.user_signed_bytes();
        self.user_signature.encode_into(&mut out);
        out
    }

    /// Decodes a code (§3.1 step 1): length at least 332, version at least `80`, field 2
    /// equal to the bytes after it, N at most 32 and the length exactly 332 + N.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let authorisation = decode_prefix(bytes, Structure::Code, MIN_LEN)?;
        let n = authorisation.body.issuer_data_len();
        Ok(Self {
            authorisation,
            generation_time: u32::from_be_bytes(arr(&bytes[Field::GenerationTime.range(n)])),
            user_signature: SignatureField::decode(&bytes[Field::UserSignature.range(n)]),
        })
    }
}

/// Decodes fields 1–15 of a structure whose length with N = 0 is `base`.
fn decode_prefix(
    bytes: &[u8],
    structure: Structure,
    base: usize,
) -> Result<Authorisation, DecodeError> {
    if bytes.len() < base {
        return Err(DecodeError::Length {
            structure,
            expected: base,
            actual: bytes.len(),
        });
    }
    let version = Version::new(bytes[0]).ok_or(DecodeError::Version(bytes[0]))?;
    let n = usize::from(bytes[Field::IssuerDataLength.range(0).start]);
    if n > MAX_ISSUER_DATA {
        return Err(DecodeError::IssuerDataLength(n as u8));
    }
    if bytes.len() != base + n {
        return Err(DecodeError::Length {
            structure,
            expected: base + n,
            actual: bytes.len(),
        });
    }
    let declared = u16::from_be_bytes([bytes[1], bytes[2]]);
    // Field 2 counts fields 3–17 of the complete code, also in the blob (§4.1 step 2).
    if usize::from(declared) != MIN_LEN - 3 + n {
        return Err(DecodeError::DataLength {
            declared,
            // For the blob: the length the completed code will have after field 2.
            actual: bytes.len() + (MIN_LEN - base) - 3,
        });
    }
    let certificate = IssuerCertificate::decode(&bytes[Field::Certificate.range(n)])?;
    let body = CodeBody::decode(bytes, n)?;
    Ok(Authorisation {
        version,
        certificate,
        body,
        issuer_signature: SignatureField::decode(&bytes[Field::IssuerSignature.range(n)]),
    })
}
