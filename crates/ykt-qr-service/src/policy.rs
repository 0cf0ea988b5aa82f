//! What the service grants: the requested terms checked, clamped to its caps and completed
//! with the issuer's own fields (qr-code.md §4.1 step 2: "limit per risk state").

use ykt_crypto::Sm2PublicKey;
use ykt_qr::code::MAX_ISSUER_DATA;
use ykt_qr::issuer::{MAX_LIMIT, Terms};

use crate::issuer_dir::{PublishedIssuer, hex_array};
use crate::wire::{GrantedTerms, RequestedTerms};

/// The service's caps. A request above a cap is clamped to it (and the answer says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The largest single-payment limit granted (field 9), fen; at most
    /// [`MAX_LIMIT`].
    pub max_limit: u32,
    /// The longest authorisation granted (field 11 − now), seconds.
    pub max_valid_for: u64,
    /// The longest code validity granted (field 12), seconds.
    pub max_code_validity: u16,
}

impl Default for Policy {
    /// 100 yuan, 7 days, 300 s.
    fn default() -> Self {
        Self {
            max_limit: 10_000,
            max_valid_for: 7 * 86_400,
            max_code_validity: 300,
        }
    }
}

/// A requested term that is not well formed (`bad_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// Not hex of the right length.
    #[error("terms.{0} is not hex of the right length")]
    BadHex(&'static str),
    /// The payment account is not 16 ASCII characters.
    #[error("terms.payment_account must be 16 printable ASCII characters")]
    PaymentAccount,
    /// Field 14 is too long.
    #[error("terms.issuer_data is longer than {MAX_ISSUER_DATA} bytes")]
    IssuerDataTooLong,
}

/// A request the service does not grant at all (`policy`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A limit of zero.
    #[error("a limit of 0 is not granted")]
    ZeroLimit,
    /// An authorisation lasting no time.
    #[error("valid_for of 0 is not granted")]
    ZeroLifetime,
    /// Codes valid for no time.
    #[error("a code validity of 0 is not granted")]
    ZeroValidity,
    /// The user account does not start with the issuer's org code.
    #[error("the account is not one of this issuer's (it must start with its org code)")]
    ForeignAccount,
    /// Field 11 would be beyond 2106.
    #[error("the authorisation expiry is beyond 2106")]
    ExpiryOutOfRange,
}

/// Why terms were not granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// Malformed.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// Refused by policy.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// The terms to sign and what was clamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// For `ykt_qr::issuer::authorise`.
    pub terms: Terms,
    /// The seconds from now to field 11.
    pub valid_for: u64,
    /// The names of the clamped terms.
    pub clamped: Vec<&'static str>,
}

impl Grant {
    /// The wire form of the granted terms.
    pub fn to_wire(&self) -> GrantedTerms {
        GrantedTerms {
            limit: self.terms.limit,
            valid_for: self.valid_for,
            authorisation_expiry: self.terms.authorisation_expiry,
            validity: self.terms.validity,
            account: hex::encode(self.terms.user_account),
            payment_account: String::from_utf8_lossy(&self.terms.payment_account).into_owned(),
            account_type: hex::encode([self.terms.account_type]),
            issuer_data: hex::encode(&self.terms.issuer_data),
        }
    }
}

impl Policy {
    /// The terms granted for `key` at `now` (the service's clock, Unix seconds).
    pub fn grant(
        &self,
        issuer: &PublishedIssuer,
        key: &Sm2PublicKey,
        requested: &RequestedTerms,
        now: u64,
    ) -> Result<Grant, GrantError> {
        let fingerprint = ykt_crypto::sm3(&key.to_bytes());
        let user_account = match &requested.account {
            Some(text) => hex_array(text).ok_or(FieldError::BadHex("account"))?,
            None => default_account(&issuer.org_code, &fingerprint),
        };
        let payment_account = match &requested.payment_account {
            Some(text) => {
                let bytes = text.as_bytes();
                if bytes.len() != 16 || !bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
                    return Err(FieldError::PaymentAccount.into());
                }
                let mut out = [0u8; 16];
                out.copy_from_slice(bytes);
                out
            }
            None => default_payment_account(&fingerprint),
        };
        let account_type: [u8; 1] =
            hex_array(&requested.account_type).ok_or(FieldError::BadHex("account_type"))?;
        let issuer_data = hex::decode(requested.issuer_data.trim())
            .map_err(|_| FieldError::BadHex("issuer_data"))?;
        if issuer_data.len() > MAX_ISSUER_DATA {
            return Err(FieldError::IssuerDataTooLong.into());
        }
        if user_account[..4] != issuer.org_code {
            return Err(Refusal::ForeignAccount.into());
        }
        if requested.limit == 0 {
            return Err(Refusal::ZeroLimit.into());
        }
        if requested.valid_for == 0 {
            return Err(Refusal::ZeroLifetime.into());
        }
        if requested.validity == 0 {
            return Err(Refusal::ZeroValidity.into());
        }
        let mut clamped = Vec::new();
        let max_limit = self.max_limit.min(MAX_LIMIT);
        let limit = if requested.limit > max_limit {
            clamped.push("limit");
            max_limit
        } else {
            requested.limit
        };
        let valid_for = if requested.valid_for > self.max_valid_for {
            clamped.push("valid_for");
            self.max_valid_for
        } else {
            requested.valid_for
        };
        let validity = if requested.validity > self.max_code_validity {
            clamped.push("validity");
            self.max_code_validity
        } else {
            requested.validity
        };
        let authorisation_expiry = now
            .checked_add(valid_for)
            .and_then(|t| u32::try_from(t).ok())
            .ok_or(Refusal::ExpiryOutOfRange)?;
        Ok(Grant {
            terms: Terms {
                payment_account,
                user_account,
                org_code: issuer.org_code,
                platform_id: issuer.platform_id,
                account_type: account_type[0],
                limit,
                authorisation_expiry,
                validity,
                issuer_data,
            },
            valid_for,
            clamped,
        })
    }
}

/// The default user account: org code(4) ‖ 11 decimal digits from the key's SM3 hash ‖ `F`
/// (BCD-like and F-padded, as field 5 is in the field, §1.1).
pub fn default_account(org_code: &[u8; 4], fingerprint: &[u8; 32]) -> [u8; 10] {
    let mut digits = digits_of(fingerprint, 11);
    digits.push(0xF);
    let mut out = [0u8; 10];
    out[..4].copy_from_slice(org_code);
    for (o, pair) in out[4..].iter_mut().zip(digits.chunks(2)) {
        *o = (pair[0] << 4) | pair.get(1).copied().unwrap_or(0xF);
    }
    out
}

/// The default payment account: `PAY` and 13 decimal digits from the key's SM3 hash.
pub fn default_payment_account(fingerprint: &[u8; 32]) -> [u8; 16] {
    let mut out = *b"PAY0000000000000";
    for (o, d) in out[3..].iter_mut().zip(digits_of(&fingerprint[8..], 13)) {
        *o = b'0' + d;
    }
    out
}

/// `n` decimal digits of the first 8 bytes, big-endian.
fn digits_of(bytes: &[u8], n: usize) -> Vec<u8> {
    let mut first = [0u8; 8];
    for (f, b) in first.iter_mut().zip(bytes) {
        *f = *b;
    }
    let mut v = u64::from_be_bytes(first);
    let mut out = vec![0u8; n];
    for d in out.iter_mut().rev() {
        *d = (v % 10) as u8;
        v /= 10;
    }
    out
}
