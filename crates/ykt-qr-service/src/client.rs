//! The client: a wallet asks for its authorisation, a terminal downloads its parameters.
//!
//! Plain HTTP only (`http://`): in production TLS ends in front of the service, and a client
//! outside that network reaches it through a TLS-terminating proxy of its own. Errors keep
//! "the request did not get through" ([`ClientError::Transport`]) apart from "the service
//! refused it" ([`ClientError::Refused`], with the service's code) and from "the answer is not
//! what the service promises" ([`ClientError::Response`]).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use ykt_crypto::{Sm2PrivateKey, Sm2Signature};
use ykt_qr::{Authorisation, IssuerCertificate, RootKeyEntry, RootKeyRecord, Version, ids};

use crate::PROOF_ID;
use crate::issuer_dir::hex_array;
use crate::wire::{
    AUTHORISATION_REQUEST_TYPE, AuthorisationRequest, AuthorisationResponse, ErrorBody, ErrorCode,
    GrantedTerms, ParametersResponse, RequestedTerms,
};

/// How long one exchange may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://…` (TLS is terminated in front of the service).
    #[error("the service URL must start with http:// (TLS is terminated in front of the service)")]
    UnsupportedUrl,
    /// The request did not get through, or the answer did not come back.
    #[error("the request to the issuer service failed")]
    Transport(#[source] ureq::Error),
    /// The service answered with a refusal.
    #[error("the issuer service refused ({code}, HTTP {status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The service's code.
        code: ErrorCode,
        /// The service's message.
        message: String,
    },
    /// The answer is not what the service promises.
    #[error("the issuer service's answer is unusable")]
    Response(#[source] ResponseError),
    /// No nonce could be drawn.
    #[error("the OS random source failed")]
    Random(#[source] getrandom::Error),
    /// The request could not be signed.
    #[error("signing the request")]
    Signing(#[source] ykt_crypto::Error),
}

/// What is wrong with an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// A status without the service's error body (a proxy's, say).
    #[error("HTTP {0} without an error body")]
    Status(u16),
    /// Not the JSON expected.
    #[error("not the JSON expected")]
    Json(#[source] serde_json::Error),
    /// A value is not hex of the right length.
    #[error("{0} is not hex of the right length")]
    BadHex(&'static str),
    /// A code version below `80`.
    #[error("a code version below 80")]
    BadVersion,
    /// A certificate, record or blob does not decode.
    #[error("{what} does not decode")]
    Decode {
        /// Which.
        what: &'static str,
        /// Why.
        #[source]
        source: ykt_qr::DecodeError,
    },
    /// The blob authorises another key.
    #[error("the authorisation is for another key")]
    WrongKey,
    /// Signature B does not verify under the blob's certificate.
    #[error("the issuer's signature on the authorisation does not verify")]
    IssuerSignature,
    /// A root key record's self-signature does not verify.
    #[error("a root key record's self-signature does not verify")]
    RootRecordSignature,
    /// The terms in the blob are not those the answer says were granted.
    #[error("the granted terms differ from the authorisation's")]
    TermsDiffer,
}

impl From<ResponseError> for ClientError {
    fn from(e: ResponseError) -> Self {
        Self::Response(e)
    }
}

/// A granted authorisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// Fields 1–15, checked: for the wallet's key, signature B good.
    pub authorisation: Authorisation,
    /// The terms as the service reports them.
    pub terms: GrantedTerms,
    /// The terms clamped to the service's caps.
    pub clamped: Vec<String>,
}

/// A terminal's parameters as the service publishes them (§2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedParameters {
    /// The issuer's code version.
    pub code_version: Version,
    /// The issuer certificate.
    pub issuer_certificate: IssuerCertificate,
    /// The root key table's version.
    pub root_keys_version: u32,
    /// Root key records by code version; each record's self-signature checked.
    pub root_keys: Vec<RootKeyEntry>,
    /// The whitelist's version.
    pub whitelist_version: u32,
    /// (org code, platform id) of interoperable issuers.
    pub whitelist: Vec<([u8; 4], [u8; 4])>,
    /// Org codes admitted for local codes.
    pub local_orgs: Vec<[u8; 4]>,
    /// The blacklist's version (0: none).
    pub blacklist_version: u32,
    /// Blacklisted user accounts.
    pub blacklist: Vec<[u8; 10]>,
}

/// A client of one service.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the service at `base_url` (`http://host:port`, a path prefix allowed).
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        if !base_url.starts_with("http://") {
            return Err(ClientError::UnsupportedUrl);
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .build();
        Ok(Self {
            base: base_url.trim_end_matches('/').to_string(),
            agent: ureq::Agent::new_with_config(config),
        })
    }

    /// Asks for an authorisation of `key`'s public key under `terms`, the request dated
    /// `now` (Unix seconds) with a fresh nonce and signed by `key` (proof of possession).
    pub fn authorise(
        &self,
        token: &str,
        key: &Sm2PrivateKey,
        terms: &RequestedTerms,
        now: u64,
    ) -> Result<Granted, ClientError> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(ClientError::Random)?;
        let request = AuthorisationRequest {
            msg_type: AUTHORISATION_REQUEST_TYPE.to_string(),
            user_public_key: hex::encode(ykt_qr::compress_public_key(key.public_key())),
            terms: terms.clone(),
            timestamp: now,
            nonce: hex::encode(nonce),
        };
        let body = signed_body(&request, key)?;
        let granted = self.send_authorisation(token, &body)?;
        if granted.authorisation.body.user_public_key
            != ykt_qr::compress_public_key(key.public_key())
        {
            return Err(ResponseError::WrongKey.into());
        }
        Ok(granted)
    }

    /// Sends a request body as it is (signed by the caller) and checks the answer: the blob
    /// decodes, signature B verifies under its certificate, and the terms are those reported.
    pub fn send_authorisation(&self, token: &str, body: &[u8]) -> Result<Granted, ClientError> {
        let response = self
            .agent
            .post(format!("{}/v1/authorisations", self.base))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(ClientError::Transport)?;
        let answer: AuthorisationResponse = read_answer(response)?;
        let bytes = hex::decode(&answer.authorisation)
            .map_err(|_| ResponseError::BadHex("authorisation"))?;
        let authorisation =
            Authorisation::decode(&bytes).map_err(|source| ResponseError::Decode {
                what: "the authorisation",
                source,
            })?;
        check_issuer_signature(&authorisation)?;
        let body = &authorisation.body;
        let g = &answer.granted;
        if body.limit != g.limit
            || body.authorisation_expiry != g.authorisation_expiry
            || body.validity != g.validity
            || hex::encode(body.user_account) != g.account
        {
            return Err(ResponseError::TermsDiffer.into());
        }
        Ok(Granted {
            authorisation,
            terms: answer.granted,
            clamped: answer.clamped,
        })
    }

    /// Downloads the terminal parameters, every record and certificate decoded and the root
    /// records' self-signatures checked.
    pub fn parameters(&self) -> Result<PublishedParameters, ClientError> {
        let response = self
            .agent
            .get(format!("{}/v1/parameters", self.base))
            .call()
            .map_err(ClientError::Transport)?;
        let answer: ParametersResponse = read_answer(response)?;
        decode_parameters(&answer).map_err(ClientError::Response)
    }
}

/// [`Client::authorise`] on the service at `url`.
pub fn authorise(
    url: &str,
    token: &str,
    key: &Sm2PrivateKey,
    terms: &RequestedTerms,
    now: u64,
) -> Result<Granted, ClientError> {
    Client::new(url)?.authorise(token, key, terms, now)
}

/// [`Client::parameters`] of the service at `url`.
pub fn parameters(url: &str) -> Result<PublishedParameters, ClientError> {
    Client::new(url)?.parameters()
}

/// The wire body of `request`: its canonical JSON with `"signature"` added, the hex r ‖ s of
/// `key`'s SM2-SM3 signature (ID [`PROOF_ID`]) over the canonical JSON without it.
pub fn signed_body(
    request: &AuthorisationRequest,
    key: &Sm2PrivateKey,
) -> Result<Vec<u8>, ClientError> {
    let mut value =
        serde_json::to_value(request).map_err(|e| ClientError::Response(ResponseError::Json(e)))?;
    let signed = ykt_envelope::jcs::to_vec(&value)
        .map_err(|_| ClientError::Signing(ykt_crypto::Error::SigningFailed))?;
    let signature = key.sign(PROOF_ID, &signed).map_err(ClientError::Signing)?;
    if let Value::Object(members) = &mut value {
        members.insert(
            "signature".to_string(),
            Value::String(hex::encode(signature.to_bytes())),
        );
    }
    ykt_envelope::jcs::to_vec(&value)
        .map_err(|_| ClientError::Signing(ykt_crypto::Error::SigningFailed))
}

fn read_answer<T: DeserializeOwned>(
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<T, ClientError> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(ClientError::Transport)?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&text).map_err(|e| ResponseError::Json(e).into());
    }
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => Err(ClientError::Refused {
            status,
            code: body.code,
            message: body.message,
        }),
        Err(_) => Err(ResponseError::Status(status).into()),
    }
}

fn check_issuer_signature(authorisation: &Authorisation) -> Result<(), ResponseError> {
    let key = authorisation
        .certificate
        .issuer_key()
        .map_err(|_| ResponseError::IssuerSignature)?;
    let signature = Sm2Signature::from_bytes(&authorisation.issuer_signature.signature)
        .map_err(|_| ResponseError::IssuerSignature)?;
    let id = ids::issuer_id(authorisation.version, &authorisation.body);
    key.verify(&id, &authorisation.issuer_signed_bytes(), &signature)
        .map_err(|_| ResponseError::IssuerSignature)
}

fn version(text: &str) -> Result<Version, ResponseError> {
    let [byte] = hex_array::<1>(text).ok_or(ResponseError::BadHex("a version"))?;
    Version::new(byte).ok_or(ResponseError::BadVersion)
}

fn decode_parameters(answer: &ParametersResponse) -> Result<PublishedParameters, ResponseError> {
    let certificate_bytes = hex::decode(&answer.issuer_certificate)
        .map_err(|_| ResponseError::BadHex("issuer_certificate"))?;
    let issuer_certificate =
        IssuerCertificate::decode(&certificate_bytes).map_err(|source| ResponseError::Decode {
            what: "the issuer certificate",
            source,
        })?;
    let mut root_keys = Vec::new();
    for item in &answer.root_keys.entries {
        let bytes =
            hex::decode(&item.record).map_err(|_| ResponseError::BadHex("a root record"))?;
        let record = RootKeyRecord::decode(&bytes).map_err(|source| ResponseError::Decode {
            what: "a root key record",
            source,
        })?;
        record
            .public_key_checked()
            .map_err(|_| ResponseError::RootRecordSignature)?;
        root_keys.push(RootKeyEntry {
            version: version(&item.version)?,
            record,
        });
    }
    let whitelist = answer
        .whitelist
        .entries
        .iter()
        .map(|w| {
            Ok((
                hex_array(&w.org_code).ok_or(ResponseError::BadHex("org_code"))?,
                hex_array(&w.platform_id).ok_or(ResponseError::BadHex("platform_id"))?,
            ))
        })
        .collect::<Result<Vec<_>, ResponseError>>()?;
    let local_orgs = answer
        .local_orgs
        .iter()
        .map(|o| hex_array(o).ok_or(ResponseError::BadHex("local_orgs")))
        .collect::<Result<Vec<_>, _>>()?;
    let blacklist = answer
        .blacklist
        .accounts
        .iter()
        .map(|a| hex_array(a).ok_or(ResponseError::BadHex("blacklist")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PublishedParameters {
        code_version: version(&answer.code_version)?,
        issuer_certificate,
        root_keys_version: answer.root_keys.version,
        root_keys,
        whitelist_version: answer.whitelist.version,
        whitelist,
        local_orgs,
        blacklist_version: answer.blacklist.version,
        blacklist,
    })
}
