//! The root CA (run by the clearing institution, §2.1): its self-signed key record for
//! terminals (§2.3) and the issuer certificates it signs (signature A, §2.2).

use rand_core::CryptoRng;
use ykt_crypto::{Sm2PrivateKey, Sm2PublicKey};

use crate::cert::{Expiry, IssuerCertificate, RootKeyRecord};
use crate::code::Version;
use crate::error::Error;
use crate::{compress_public_key, ids};

/// A root CA key with the attributes of its record.
#[derive(Debug, Clone)]
pub struct RootCa {
    key: Sm2PrivateKey,
    /// The service id of its record and certificates.
    pub service_id: [u8; 4],
    /// The key index certificates name.
    pub index: u8,
    /// The record's expiry.
    pub expiry: Expiry,
    /// The curve parameter id written into the record and certificates.
    pub parameter_id: u8,
}

/// What the CA certifies about an issuer (§2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    /// The code version the certificate serves (it selects the user ID of signature A).
    pub version: Version,
    /// The issuer id assigned by the certificate centre.
    pub issuer_id: [u8; 4],
    /// The certificate's expiry.
    pub expiry: Expiry,
    /// The serial, unique per root CA.
    pub serial: [u8; 3],
}

impl RootCa {
    /// A CA from its key; service id, parameter id and the rest as given.
    pub fn new(key: Sm2PrivateKey, index: u8, expiry: Expiry) -> Self {
        Self {
            key,
            service_id: crate::cert::SERVICE_ID,
            index,
            expiry,
            parameter_id: crate::cert::CURVE_PARAMETER_ID,
        }
    }

    /// The CA's public key.
    pub fn public_key(&self) -> &Sm2PublicKey {
        self.key.public_key()
    }

    /// The self-signed 144-byte record terminals load as parameter 4026 (§2.3).
    pub fn record<R: CryptoRng>(&self, rng: &mut R) -> Result<RootKeyRecord, Error> {
        let point = self.key.public_key().to_bytes();
        let mut record = RootKeyRecord {
            service_id: self.service_id,
            index: self.index,
            expiry: self.expiry,
            parameter_id: self.parameter_id,
            public_key: crate::cert::arr(&point[1..]),
            signature: [0; 64],
        };
        let sig = self
            .key
            .sign_with_rng(rng, ids::ROOT_RECORD_ID, &record.signed_bytes())
            .map_err(Error::Crypto)?;
        record.signature = sig.to_bytes();
        Ok(record)
    }

    /// Signs a certificate for `issuer_key` (signature A over bytes 6–52, §2.2, §2.4).
    pub fn certify<R: CryptoRng>(
        &self,
        rng: &mut R,
        issuer_key: &Sm2PublicKey,
        request: &CertificateRequest,
    ) -> Result<IssuerCertificate, Error> {
        let mut cert = IssuerCertificate {
            service_id: self.service_id,
            ca_index: self.index,
            issuer_id: request.issuer_id,
            expiry: request.expiry,
            serial: request.serial,
            curve_parameter_id: self.parameter_id,
            public_key: compress_public_key(issuer_key),
            signature: [0; 64],
        };
        let id = ids::certificate_id(request.version, &cert);
        let sig = self
            .key
            .sign_with_rng(rng, &id, &cert.signed_bytes())
            .map_err(Error::Crypto)?;
        cert.signature = sig.to_bytes();
        Ok(cert)
    }
}
