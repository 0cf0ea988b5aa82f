//! The signed envelope of tsm-gp.md §7: a header, a body, an optional result, and a signature
//! over the JCS canonical JSON of all of it but `sign`.
//!
//! \[PROPOSAL\] beyond the brief's member list: `nonce` (16 random bytes, hex), fresh in every
//! message, so that the replay guard can tell a captured message sent again (same sender and
//! nonce: refused) from a client's legitimate retry of a request (new nonce, same `request_id`
//! and body: the stored response, by idempotency). `cert_sn` carries the signer's key id
//! ([`key_id_sm2`], [`key_id_rsa`]) when no certificate serial applies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ykt_crypto::{
    DEFAULT_SM2_ID, RsaPrivateKey, RsaPublicKey, Sm2PrivateKey, Sm2PublicKey, Sm2Signature,
};

use crate::code::Code;
use crate::error::EnvelopeError;
use crate::{jcs, time};

/// The envelope version this build writes and reads.
pub const VERSION: &str = "1.0";

/// The signature algorithm (`sign_alg`).
/// This list is complete: the brief names these three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::exhaustive_enums)]
pub enum SignAlg {
    /// SM2 with SM3 (GB/T 32918, user ID `1234567812345678`), DER signature. The default.
    #[serde(rename = "SM2-SM3")]
    Sm2Sm3,
    /// RSA-2048, PKCS#1 v1.5 with SHA-256.
    #[serde(rename = "RSA2048-SHA256")]
    Rsa2048Sha256,
    /// RSA-3072, PKCS#1 v1.5 with SHA-256.
    #[serde(rename = "RSA3072-SHA256")]
    Rsa3072Sha256,
}

/// A response's result (`"result":{"code":"0000","msg":"…"}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultInfo {
    /// The code.
    pub code: Code,
    /// A short text for people; never card data or key material.
    pub msg: String,
}

impl ResultInfo {
    /// Success.
    pub fn ok() -> Self {
        Self {
            code: Code::Ok,
            msg: "ok".into(),
        }
    }

    /// A refusal.
    pub fn error(code: Code, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }
}

/// A signed message, request or response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// [`VERSION`].
    pub version: String,
    /// The message type (`OpenCardReq`, …).
    pub msg_type: String,
    /// Its number (1xxx SE platform, 2xxx SSD, 3xxx application, 4xxx notices, 5xxx queries;
    /// a response is its request's number + 1).
    pub msg_no: String,
    /// Who signed it.
    pub sender_id: String,
    /// For whom.
    pub receiver_id: String,
    /// The business transaction (flow) it belongs to.
    pub txn_id: String,
    /// The idempotency key of the request (a response carries its request's).
    pub request_id: String,
    /// Fresh per message (hex); the replay guard's key with `sender_id`.
    pub nonce: String,
    /// When it was signed (RFC 3339).
    pub timestamp: String,
    /// The message's own members.
    pub body: Value,
    /// Responses only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultInfo>,
    /// The algorithm of `sign`.
    pub sign_alg: SignAlg,
    /// The signer's key id.
    pub cert_sn: String,
    /// The signature, base64.
    pub sign: String,
}

/// The header members of a message to seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The message type.
    pub msg_type: String,
    /// Its number.
    pub msg_no: String,
    /// The sender.
    pub sender_id: String,
    /// The receiver.
    pub receiver_id: String,
    /// The transaction.
    pub txn_id: String,
    /// The idempotency key.
    pub request_id: String,
}

/// Something that signs envelopes: a key in memory, or a KMS key behind it.
pub trait Signer {
    /// The algorithm.
    fn alg(&self) -> SignAlg;
    /// The key id that goes into `cert_sn`.
    fn key_id(&self) -> String;
    /// Signs `message` (the canonical bytes).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, EnvelopeError>;
}

/// An SM2 key in memory signing with SM3 and the default user ID.
pub struct Sm2Signer {
    key: Sm2PrivateKey,
    key_id: String,
}

impl Sm2Signer {
    /// Signs with `key`; the key id is [`key_id_sm2`] of its public key.
    pub fn new(key: Sm2PrivateKey) -> Self {
        let key_id = key_id_sm2(key.public_key());
        Self { key, key_id }
    }

    /// The public key.
    pub fn public_key(&self) -> &Sm2PublicKey {
        self.key.public_key()
    }
}

impl core::fmt::Debug for Sm2Signer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Sm2Signer({}, [redacted])", self.key_id)
    }
}

impl Signer for Sm2Signer {
    fn alg(&self) -> SignAlg {
        SignAlg::Sm2Sm3
    }
    fn key_id(&self) -> String {
        self.key_id.clone()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        self.key
            .sign(DEFAULT_SM2_ID, message)
            .map(|s| s.to_der())
            .map_err(|e| EnvelopeError::Signer(e.to_string()))
    }
}

/// An RSA key in memory signing PKCS#1 v1.5 with SHA-256.
pub struct RsaSigner {
    key: RsaPrivateKey,
    key_id: String,
}

impl RsaSigner {
    /// Signs with `key` (2048 or 3072 bits).
    pub fn new(key: RsaPrivateKey) -> Result<Self, EnvelopeError> {
        let key_id = key_id_rsa(key.public_key())?;
        match key.public_key().bits() {
            2048 | 3072 => Ok(Self { key, key_id }),
            _ => Err(EnvelopeError::AlgorithmMismatch),
        }
    }
}

impl core::fmt::Debug for RsaSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RsaSigner({}, [redacted])", self.key_id)
    }
}

impl Signer for RsaSigner {
    fn alg(&self) -> SignAlg {
        if self.key.public_key().bits() == 3072 {
            SignAlg::Rsa3072Sha256
        } else {
            SignAlg::Rsa2048Sha256
        }
    }
    fn key_id(&self) -> String {
        self.key_id.clone()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        self.key
            .sign_pkcs1v15_sha256(message)
            .map_err(|e| EnvelopeError::Signer(e.to_string()))
    }
}

/// A sender's public key, as the receiver has it on record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerKey {
    /// SM2.
    Sm2(Sm2PublicKey),
    /// RSA.
    Rsa(RsaPublicKey),
}

/// \[PROPOSAL\] The key id of an SM2 public key: the first 8 bytes of SM3 of its uncompressed SEC1
/// encoding, upper-case hex.
pub fn key_id_sm2(key: &Sm2PublicKey) -> String {
    hex_upper(&ykt_crypto::sm3(&key.to_bytes())[..8])
}

/// \[PROPOSAL\] The key id of an RSA public key: the first 8 bytes of SM3 of its
/// SubjectPublicKeyInfo DER, upper-case hex.
pub fn key_id_rsa(key: &RsaPublicKey) -> Result<String, EnvelopeError> {
    let der = key
        .to_public_key_der()
        .map_err(|e| EnvelopeError::Signer(e.to_string()))?;
    Ok(hex_upper(&ykt_crypto::sm3(&der)[..8]))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The response number of a request number (request + 1, tsm-gp.md §7).
pub fn response_no(msg_no: &str) -> String {
    msg_no
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_add(1))
        .map_or_else(|| msg_no.to_string(), |n| format!("{n:04}"))
}

impl Envelope {
    /// Seals `body` under `header`: `nonce` (fresh random bytes, at least 8) and `now_ms` are
    /// the caller's; the timestamp is written at UTC+8 (China Standard Time).
    pub fn seal(
        header: &Header,
        body: &impl Serialize,
        result: Option<ResultInfo>,
        nonce: &[u8],
        now_ms: i64,
        signer: &dyn Signer,
    ) -> Result<Envelope, EnvelopeError> {
        if nonce.len() < 8 {
            return Err(EnvelopeError::Malformed(
                "nonce shorter than 8 bytes".into(),
            ));
        }
        let body = serde_json::to_value(body).map_err(|e| EnvelopeError::Body(e.to_string()))?;
        let mut envelope = Envelope {
            version: VERSION.into(),
            msg_type: header.msg_type.clone(),
            msg_no: header.msg_no.clone(),
            sender_id: header.sender_id.clone(),
            receiver_id: header.receiver_id.clone(),
            txn_id: header.txn_id.clone(),
            request_id: header.request_id.clone(),
            nonce: hex_upper(nonce),
            timestamp: time::format(now_ms, 480),
            body,
            result,
            sign_alg: signer.alg(),
            cert_sn: signer.key_id(),
            sign: String::new(),
        };
        let signature = signer.sign(&envelope.signing_input()?)?;
        envelope.sign = B64.encode(signature);
        Ok(envelope)
    }

    /// The response to this request: sender and receiver swapped, the same `txn_id` and
    /// `request_id`, `msg_type` and `msg_no` as given.
    pub fn reply(
        &self,
        msg_type: &str,
        body: &impl Serialize,
        result: ResultInfo,
        nonce: &[u8],
        now_ms: i64,
        signer: &dyn Signer,
    ) -> Result<Envelope, EnvelopeError> {
        let header = Header {
            msg_type: msg_type.into(),
            msg_no: response_no(&self.msg_no),
            sender_id: self.receiver_id.clone(),
            receiver_id: self.sender_id.clone(),
            txn_id: self.txn_id.clone(),
            request_id: self.request_id.clone(),
        };
        Envelope::seal(&header, body, Some(result), nonce, now_ms, signer)
    }

    /// The bytes the signature covers: the JCS canonical JSON of the envelope without `sign`.
    pub fn signing_input(&self) -> Result<Vec<u8>, EnvelopeError> {
        let mut value =
            serde_json::to_value(self).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if let Value::Object(members) = &mut value {
            members.remove("sign");
        }
        jcs::to_vec(&value).map_err(|_| EnvelopeError::NotCanonical)
    }

    /// Checks the version and the signature under the sender's `key`.
    pub fn verify(&self, key: &PeerKey) -> Result<(), EnvelopeError> {
        if self.version != VERSION {
            return Err(EnvelopeError::Version);
        }
        let signature = B64
            .decode(self.sign.as_bytes())
            .map_err(|_| EnvelopeError::BadSignature)?;
        let input = self.signing_input()?;
        match (key, self.sign_alg) {
            (PeerKey::Sm2(k), SignAlg::Sm2Sm3) => {
                let sig =
                    Sm2Signature::from_der(&signature).map_err(|_| EnvelopeError::BadSignature)?;
                k.verify(DEFAULT_SM2_ID, &input, &sig)
                    .map_err(|_| EnvelopeError::BadSignature)
            }
            (PeerKey::Rsa(k), SignAlg::Rsa2048Sha256 | SignAlg::Rsa3072Sha256) => {
                let bits = if self.sign_alg == SignAlg::Rsa3072Sha256 {
                    3072
                } else {
                    2048
                };
                if k.bits() != bits {
                    return Err(EnvelopeError::AlgorithmMismatch);
                }
                k.verify_pkcs1v15_sha256(&input, &signature)
                    .map_err(|_| EnvelopeError::BadSignature)
            }
            _ => Err(EnvelopeError::AlgorithmMismatch),
        }
    }

    /// When it was signed (Unix ms).
    pub fn sent_ms(&self) -> Result<i64, EnvelopeError> {
        time::parse(&self.timestamp)
    }

    /// The signing time, if it is within `window_ms` of `now_ms`; [`EnvelopeError::Stale`]
    /// otherwise.
    pub fn check_time(&self, now_ms: i64, window_ms: i64) -> Result<i64, EnvelopeError> {
        let sent = self.sent_ms()?;
        if now_ms.abs_diff(sent) > window_ms.unsigned_abs() {
            return Err(EnvelopeError::Stale);
        }
        Ok(sent)
    }

    /// The body as `T`.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        serde_json::from_value(self.body.clone()).map_err(|e| EnvelopeError::Body(e.to_string()))
    }

    /// The result code (responses), `None` for a request.
    pub fn code(&self) -> Option<Code> {
        self.result.as_ref().map(|r| r.code)
    }

    /// An envelope from its JSON bytes (unknown members refused).
    pub fn from_slice(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))
    }

    /// The JSON bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        // An envelope is strings, a JSON value and an enum: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
