//! The issuer's back end (发码平台, §4.1): it authorises a user public key for a validity period
//! and an amount limit by signing fields 3–14 (signature B), and returns fields 1–15.

use alloc::vec::Vec;

use rand_core::CryptoRng;
use ykt_crypto::{Sm2PrivateKey, Sm2PublicKey};

use crate::code::{Authorisation, CodeBody, Field, MAX_ISSUER_DATA, SignatureField, Version};
use crate::error::{Error, Structure};
use crate::{IssuerCertificate, compress_public_key, ids};

/// The largest single-payment limit field 9 holds (24 bits, in fen).
pub const MAX_LIMIT: u32 = 0x00FF_FFFF;

/// An issuer: its private key and the certificate the root CA signed for that key.
#[derive(Debug, Clone)]
pub struct Issuer {
    key: Sm2PrivateKey,
    certificate: IssuerCertificate,
    version: Version,
}

impl Issuer {
    /// An issuer for codes of `version`; the key must be the one the certificate certifies.
    pub fn new(
        key: Sm2PrivateKey,
        certificate: IssuerCertificate,
        version: Version,
    ) -> Result<Self, Error> {
        if compress_public_key(key.public_key()) != certificate.public_key {
            return Err(Error::KeyMismatch(Structure::Certificate));
        }
        Ok(Self {
            key,
            certificate,
            version,
        })
    }

    /// The certificate.
    pub fn certificate(&self) -> &IssuerCertificate {
        &self.certificate
    }

    /// The version of the codes it authorises.
    pub fn version(&self) -> Version {
        self.version
    }
}

/// What the issuer grants a user (fields 4–9 and 11–14): everything but the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// Field 4, payment account.
    pub payment_account: [u8; 16],
    /// Field 5, user account.
    pub user_account: [u8; 10],
    /// Field 6, issuing institution code.
    pub org_code: [u8; 4],
    /// Field 7, issuing platform id.
    pub platform_id: [u8; 4],
    /// Field 8, account type.
    pub account_type: u8,
    /// Field 9, single-payment limit in fen (at most [`MAX_LIMIT`]).
    pub limit: u32,
    /// Field 11, authorisation expiry, Unix seconds.
    ///
    /// L (§4.1 step 2): typically hours to days after issue; the caller chooses.
    pub authorisation_expiry: u32,
    /// Field 12, code validity in seconds.
    pub validity: u16,
    /// Field 14, at most 32 bytes.
    pub issuer_data: Vec<u8>,
}

/// Authorises `user_public_key` under `terms`: fills fields 1–14 and signs fields 3–14 with the
/// issuer key under the version's user ID (signature B, §2.4). Randomness for the signature
/// comes from `rng`.
pub fn authorise<R: CryptoRng>(
    issuer: &Issuer,
    user_public_key: &Sm2PublicKey,
    terms: &Terms,
    rng: &mut R,
) -> Result<Authorisation, Error> {
    if terms.issuer_data.len() > MAX_ISSUER_DATA {
        return Err(Error::IssuerDataTooLong(terms.issuer_data.len()));
    }
    if terms.limit > MAX_LIMIT {
        return Err(Error::ValueOutOfRange {
            field: Field::Limit,
        });
    }
    let mut authorisation = Authorisation {
        version: issuer.version,
        certificate: issuer.certificate.clone(),
        body: CodeBody {
            payment_account: terms.payment_account,
            user_account: terms.user_account,
            org_code: terms.org_code,
            platform_id: terms.platform_id,
            account_type: terms.account_type,
            limit: terms.limit,
            user_public_key: compress_public_key(user_public_key),
            authorisation_expiry: terms.authorisation_expiry,
            validity: terms.validity,
            issuer_data: terms.issuer_data.clone(),
        },
        issuer_signature: SignatureField {
            tag: crate::code::SIGNATURE_TAG,
            signature: [0; 64],
        },
    };
    let id = ids::issuer_id(issuer.version, &authorisation.body);
    let sig = issuer
        .key
        .sign_with_rng(rng, &id, &authorisation.issuer_signed_bytes())
        .map_err(Error::Crypto)?;
    authorisation.issuer_signature = SignatureField::new(&sig);
    Ok(authorisation)
}
