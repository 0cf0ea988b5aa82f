//! The issuer certificate (field 3, §2.2), the root CA public key record and its terminal
//! parameter 4026 entry (§2.3), and the MMYY expiry both carry.

use ykt_crypto::{Sm2PublicKey, Sm2Signature};

use crate::code::Version;
use crate::error::{CertificateField, DecodeError, Error, RootKeyField, Structure};
use crate::ids;

/// Record header of the issuer certificate (§2.2 byte 0).
pub const CERTIFICATE_HEADER: u8 = 0x24;
/// Certificate format (§2.2 byte 6).
pub const CERTIFICATE_FORMAT: u8 = 0x12;
/// Algorithm identifier of SM2 (§2.2 bytes 16–17, §2.3 byte 13).
pub const ALGORITHM_SM2: u8 = 0x04;
/// Service id of the transit application: the PIX right-padded with zeros (§2.2 byte 1).
pub const SERVICE_ID: [u8; 4] = [0x01, 0x01, 0x00, 0x00];
/// Curve parameter id written into new certificates and root key records.
///
/// L (qr-code.md §2.2, open question 4): `00` by S1's comments, `20` in one real certificate and
/// `11` in a real root key record. Verifiers never check it (it is covered by the signatures).
pub const CURVE_PARAMETER_ID: u8 = 0x00;
/// Record header of the root CA public key record (§2.3 byte 0).
pub const ROOT_KEY_HEADER: u8 = 0x21;
/// The registered application provider id of the transit applications (§2.3 bytes 5–9).
pub const RID: [u8; 5] = [0xA0, 0x00, 0x00, 0x06, 0x32];
/// Medium type of QR codes in a 4026 entry (§2.3).
pub const MEDIUM_QR: u8 = 0x00;

/// The century of the two-digit years in MMYY expiry dates.
///
/// L (ours; qr-code.md §2.2 gives only MMYY): years `00`–`99` are 2000–2099.
pub const EXPIRY_CENTURY: u32 = 2000;

/// An expiry date `MMYY` in BCD: valid until the end of that month, UTC (§2.2, §3.1 step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    month: u8,
    year: u8,
}

impl Expiry {
    /// An expiry at the end of `month` (1–12) of `20yy`; `None` when out of range.
    pub fn new(month: u8, year: u8) -> Option<Self> {
        ((1..=12).contains(&month) && year <= 99).then_some(Self { month, year })
    }

    /// An expiry with the month clamped to 1–12 and the year to 0–99 (for constants).
    pub(crate) const fn clamped(month: u8, year: u8) -> Self {
        let month = if month < 1 {
            1
        } else if month > 12 {
            12
        } else {
            month
        };
        let year = if year > 99 { 99 } else { year };
        Self { month, year }
    }

    /// Decodes the two BCD bytes `MM YY`; the error gives the first offending byte.
    pub fn from_bcd(bytes: [u8; 2]) -> Result<Self, u8> {
        let month = bcd(bytes[0]).ok_or(bytes[0])?;
        let year = bcd(bytes[1]).ok_or(bytes[1])?;
        Self::new(month, year).ok_or(bytes[0])
    }

    /// The two BCD bytes `MM YY`.
    pub fn to_bcd(self) -> [u8; 2] {
        [to_bcd(self.month), to_bcd(self.year)]
    }

    /// The month, 1–12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The two-digit year, 0–99.
    pub fn year(self) -> u8 {
        self.year
    }

    /// The first second (Unix time, UTC) at which the date has passed: 00:00 on the first day
    /// of the next month.
    pub fn end(self) -> u64 {
        let (mut year, mut month) = (EXPIRY_CENTURY + u32::from(self.year), self.month + 1);
        if month > 12 {
            month = 1;
            year += 1;
        }
        days_from_civil(year, month) * 86_400
    }

    /// True when `now` (Unix seconds) is after the last second of the month.
    pub fn has_passed(self, now: u64) -> bool {
        now >= self.end()
    }
}

fn bcd(b: u8) -> Option<u8> {
    let (hi, lo) = (b >> 4, b & 0x0F);
    (hi <= 9 && lo <= 9).then_some(hi * 10 + lo)
}

fn to_bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

/// Days from 1970-01-01 to the first day of `month` of `year` (proleptic Gregorian, year ≥ 2000).
fn days_from_civil(year: u32, month: u8) -> u64 {
    // Howard Hinnant's algorithm with the year starting in March.
    let y = u64::from(if month <= 2 { year - 1 } else { year });
    let m = u64::from(month);
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The issuer (发码机构) public-key certificate, field 3 of the code (§2.2, 117 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerCertificate {
    /// Bytes 1–4, service id ([`SERVICE_ID`]).
    pub service_id: [u8; 4],
    /// Byte 5, the index of the root CA key that signed it.
    pub ca_index: u8,
    /// Bytes 7–10, the issuer id assigned by the certificate centre.
    pub issuer_id: [u8; 4],
    /// Bytes 11–12, the expiry.
    pub expiry: Expiry,
    /// Bytes 13–15, the serial, unique per root CA.
    pub serial: [u8; 3],
    /// Byte 18, the curve parameter id (not checked; see [`CURVE_PARAMETER_ID`]).
    pub curve_parameter_id: u8,
    /// Bytes 20–52, the issuer's compressed SM2 public key.
    pub public_key: [u8; 33],
    /// Bytes 53–116, the root CA's signature A, r ‖ s, over bytes 6–52.
    pub signature: [u8; 64],
}

impl IssuerCertificate {
    /// The encoded length.
    pub const LEN: usize = 117;

    /// Decodes the 117 bytes; fixed values (header, format, algorithms, key length, point
    /// prefix) and the BCD expiry are checked, the key and signature are not.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b: &[u8; Self::LEN] = bytes.try_into().map_err(|_| DecodeError::Length {
            structure: Structure::Certificate,
            expected: Self::LEN,
            actual: bytes.len(),
        })?;
        let fixed = |field, at: usize, ok: &[u8]| {
            if ok.contains(&b[at]) {
                Ok(())
            } else {
                Err(DecodeError::Certificate {
                    field,
                    value: b[at],
                })
            }
        };
        fixed(CertificateField::RecordHeader, 0, &[CERTIFICATE_HEADER])?;
        fixed(CertificateField::Format, 6, &[CERTIFICATE_FORMAT])?;
        let expiry =
            Expiry::from_bcd([b[11], b[12]]).map_err(|value| DecodeError::Certificate {
                field: CertificateField::Expiry,
                value,
            })?;
        fixed(CertificateField::SignatureAlgorithm, 16, &[ALGORITHM_SM2])?;
        fixed(CertificateField::EncryptionAlgorithm, 17, &[ALGORITHM_SM2])?;
        fixed(CertificateField::PublicKeyLength, 19, &[33])?;
        fixed(CertificateField::PublicKeyPrefix, 20, &[0x02, 0x03])?;
        Ok(Self {
            service_id: arr(&b[1..5]),
            ca_index: b[5],
            issuer_id: arr(&b[7..11]),
            expiry,
            serial: arr(&b[13..16]),
            curve_parameter_id: b[18],
            public_key: arr(&b[20..53]),
            signature: arr(&b[53..117]),
        })
    }

    /// The 117 encoded bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = CERTIFICATE_HEADER;
        out[1..5].copy_from_slice(&self.service_id);
        out[5] = self.ca_index;
        out[6..53].copy_from_slice(&self.signed_bytes());
        out[53..].copy_from_slice(&self.signature);
        out
    }

    /// Bytes 6–52, the message of signature A (§2.4).
    pub fn signed_bytes(&self) -> [u8; 47] {
        let mut out = [0u8; 47];
        out[0] = CERTIFICATE_FORMAT;
        out[1..5].copy_from_slice(&self.issuer_id);
        out[5..7].copy_from_slice(&self.expiry.to_bcd());
        out[7..10].copy_from_slice(&self.serial);
        out[10] = ALGORITHM_SM2;
        out[11] = ALGORITHM_SM2;
        out[12] = self.curve_parameter_id;
        out[13] = 33;
        out[14..].copy_from_slice(&self.public_key);
        out
    }

    /// The issuer public key as a curve point.
    pub fn issuer_key(&self) -> Result<Sm2PublicKey, ykt_crypto::Error> {
        Sm2PublicKey::from_sec1_bytes(&self.public_key)
    }

    /// Verifies signature A with the root CA key, under the user ID of `version` (§2.4).
    pub fn verify(&self, version: Version, root: &Sm2PublicKey) -> Result<(), ykt_crypto::Error> {
        let sig = Sm2Signature::from_bytes(&self.signature)?;
        root.verify(
            &ids::certificate_id(version, self),
            &self.signed_bytes(),
            &sig,
        )
    }
}

/// A root CA public key record (§2.3, 144 bytes), self-signed over bytes 0–79.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKeyRecord {
    /// Bytes 1–4, service id.
    pub service_id: [u8; 4],
    /// Byte 10, the key index that certificates name in their byte 5.
    pub index: u8,
    /// Bytes 11–12, the expiry.
    pub expiry: Expiry,
    /// Byte 14, the curve parameter id (not checked).
    pub parameter_id: u8,
    /// Bytes 16–79, the public key X ‖ Y.
    pub public_key: [u8; 64],
    /// Bytes 80–143, the self-signature r ‖ s over bytes 0–79 with the default user ID.
    pub signature: [u8; 64],
}

impl RootKeyRecord {
    /// The encoded length.
    pub const LEN: usize = 144;

    /// Decodes the 144 bytes; fixed values and the BCD expiry are checked, the key and the
    /// self-signature are not (see [`RootKeyRecord::public_key_checked`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let b: &[u8; Self::LEN] = bytes.try_into().map_err(|_| DecodeError::Length {
            structure: Structure::RootKeyRecord,
            expected: Self::LEN,
            actual: bytes.len(),
        })?;
        let bad = |field, value| DecodeError::RootKeyRecord { field, value };
        if b[0] != ROOT_KEY_HEADER {
            return Err(bad(RootKeyField::RecordHeader, b[0]));
        }
        if let Some((got, _)) = b[5..10].iter().zip(RID).find(|(got, want)| **got != *want) {
            return Err(bad(RootKeyField::Rid, *got));
        }
        let expiry =
            Expiry::from_bcd([b[11], b[12]]).map_err(|value| bad(RootKeyField::Expiry, value))?;
        if b[13] != ALGORITHM_SM2 {
            return Err(bad(RootKeyField::Algorithm, b[13]));
        }
        if b[15] != 64 {
            return Err(bad(RootKeyField::PublicKeyLength, b[15]));
        }
        Ok(Self {
            service_id: arr(&b[1..5]),
            index: b[10],
            expiry,
            parameter_id: b[14],
            public_key: arr(&b[16..80]),
            signature: arr(&b[80..144]),
        })
    }

    /// Bytes 0–79, the self-signed part.
    pub fn signed_bytes(&self) -> [u8; 80] {
        let mut out = [0u8; 80];
        out[0] = ROOT_KEY_HEADER;
        out[1..5].copy_from_slice(&self.service_id);
        out[5..10].copy_from_slice(&RID);
        out[10] = self.index;
        out[11..13].copy_from_slice(&self.expiry.to_bcd());
        out[13] = ALGORITHM_SM2;
        out[14] = self.parameter_id;
        out[15] = 64;
        out[16..].copy_from_slice(&self.public_key);
        out
    }

    /// The 144 encoded bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..80].copy_from_slice(&self.signed_bytes());
        out[80..].copy_from_slice(&self.signature);
        out
    }

    /// The public key, after checking that it is a curve point and that the self-signature
    /// verifies (default user ID, §2.3).
    pub fn public_key_checked(&self) -> Result<Sm2PublicKey, Error> {
        let mut point = [0u8; 65];
        point[0] = 0x04;
        point[1..].copy_from_slice(&self.public_key);
        let key = Sm2PublicKey::from_sec1_bytes(&point).map_err(Error::RootKeySelfSignature)?;
        let sig = Sm2Signature::from_bytes(&self.signature).map_err(Error::RootKeySelfSignature)?;
        key.verify(ids::ROOT_RECORD_ID, &self.signed_bytes(), &sig)
            .map_err(Error::RootKeySelfSignature)?;
        Ok(key)
    }
}

/// One entry of the terminal parameter 4026 (§2.3, 160 bytes): the key is looked up by
/// (medium, code version, index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKeyEntry {
    /// The code version this key serves.
    pub version: Version,
    /// The key record.
    pub record: RootKeyRecord,
}

impl RootKeyEntry {
    /// The encoded length.
    pub const LEN: usize = 160;

    /// Decodes the 160 bytes: medium `00`, a version `80`–`FF`, the record, 14 RFU bytes
    /// (ignored).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() != Self::LEN {
            return Err(DecodeError::Length {
                structure: Structure::RootKeyEntry,
                expected: Self::LEN,
                actual: bytes.len(),
            });
        }
        if bytes[0] != MEDIUM_QR {
            return Err(DecodeError::RootKeyRecord {
                field: RootKeyField::Medium,
                value: bytes[0],
            });
        }
        let version = Version::new(bytes[1]).ok_or(DecodeError::RootKeyRecord {
            field: RootKeyField::Version,
            value: bytes[1],
        })?;
        let record = RootKeyRecord::decode(&bytes[2..146])?;
        Ok(Self { version, record })
    }

    /// The 160 encoded bytes (RFU bytes zero).
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = MEDIUM_QR;
        out[1] = self.version.value();
        out[2..146].copy_from_slice(&self.record.encode());
        out
    }
}

/// Copies a slice whose length the caller has fixed into an array (a shorter slice leaves
/// trailing zeros; no caller passes one).
pub(crate) fn arr<const N: usize>(src: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = src.len().min(N);
    out[..n].copy_from_slice(&src[..n]);
    out
}
