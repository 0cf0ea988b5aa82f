//! TLS 1.3 between wallets (or service providers) and the TSM, with SPKI pinning (client.md §6.4,
//! Profile B).
//!
//! # Profiles
//!
//! client.md §6.4 names two transport profiles; this module is the one place they are chosen.
//!
//! - **Profile A, TLCP** (GB/T 38636, the SM2/SM4 dual-certificate protocol, via Tongsuo): not
//!   built. Tongsuo is neither packaged nor available as a crate for this build, and rustls has
//!   no SM cipher suites, so no TLCP stack is linked.
//! - **Profile B, TLS 1.3** (rustls on the `ring` provider): built. The server
//!   ([`ServerTls`], [`super::serve_tls`]) and the client ([`super::TsmClient::with_tls`]) both
//!   speak TLS 1.3 only; a TLS 1.2 peer is refused in the handshake.
//! - **Plain HTTP** ([`super::serve`], [`super::TsmClient::danger_plain_http`]): for tests and
//!   loopback only (`danger_insecure_transport`).
//!
//! # Pinning
//!
//! The client trusts no certificate authority. It accepts the server's end-entity certificate
//! if and only if the SHA-256 of its DER `SubjectPublicKeyInfo` equals one of its pins (the
//! current key and a backup, so the TSM can roll its key without stranding wallets); any other
//! key fails the handshake, before a byte of the request is written. The pin is the server's
//! identity: no host name, validity period or chain is checked when it matches (a TSM's
//! self-signed certificate is the expected case). The handshake signature is still verified
//! with the provider's algorithms, so only the holder of the pinned key can complete it.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::version::TLS13;
use rustls::{ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest as _, Sha256};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};
use zeroize::Zeroizing;

pub mod probe;

/// The prefix of a pin's text (the form of RFC 7469, HPKP).
const PIN_PREFIX: &str = "sha256/";

/// Why TLS material was refused. Never carries key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A pin's text is not `sha256/<base64 of 32 bytes>`.
    #[error("an SPKI pin must be sha256/<base64 of 32 bytes>: {0}")]
    BadPin(&'static str),
    /// A certificate that is not DER X.509.
    #[error("the certificate is not a DER X.509 certificate")]
    BadCertificate,
    /// The PEM holds no `CERTIFICATE` block.
    #[error("the PEM holds no certificate")]
    NoCertificate,
    /// The PEM holds no private key (PKCS#8, SEC1 or PKCS#1).
    #[error("the PEM holds no private key")]
    NoPrivateKey,
    /// The PEM could not be read (a broken block, bad base64).
    #[error("the {what} PEM is malformed")]
    BadPem {
        /// `certificate` or `key`.
        what: &'static str,
    },
    /// rustls refused the certificate and key (a key that does not match the certificate, an
    /// unsupported key type).
    #[error("the certificate and key were refused")]
    Refused(#[source] rustls::Error),
    /// A probe server could not listen ([`probe::ProbeServer`]).
    #[error("cannot listen on 127.0.0.1")]
    Listen(#[source] io::Error),
    /// A file could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file's contents were refused (why: the source).
    #[error("{}", .path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<TlsError>,
    },
    /// A self-signed certificate could not be made.
    #[error("cannot make a self-signed certificate")]
    Generate(#[source] rcgen::Error),
}

/// A pin: the SHA-256 of an end-entity certificate's DER `SubjectPublicKeyInfo`. Its text is
/// `sha256/<base64>` (RFC 7469), the same as
/// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpkiPin([u8; 32]);

impl SpkiPin {
    /// A pin from its text, `sha256/<base64 of 32 bytes>` (surrounding white space ignored).
    pub fn parse(text: &str) -> Result<Self, TlsError> {
        let b64 = text
            .trim()
            .strip_prefix(PIN_PREFIX)
            .ok_or(TlsError::BadPin("it does not start with sha256/"))?;
        let bytes = BASE64
            .decode(b64)
            .map_err(|_| TlsError::BadPin("the digest is not base64"))?;
        let digest: [u8; 32] = bytes
            .try_into()
            .map_err(|_| TlsError::BadPin("the digest is not 32 bytes"))?;
        Ok(Self(digest))
    }

    /// The pin of a DER certificate: the SHA-256 of its `SubjectPublicKeyInfo`.
    pub fn of_certificate_der(der: &[u8]) -> Result<Self, TlsError> {
        let der = CertificateDer::from(der);
        let cert = webpki::EndEntityCert::try_from(&der).map_err(|_| TlsError::BadCertificate)?;
        Ok(Self::of_spki_der(cert.subject_public_key_info().as_ref()))
    }

    /// The pin of the first certificate in a PEM file (a server's chain, its own certificate
    /// first): what `ykt tsm pin` prints.
    pub fn of_certificate_pem(pem: &[u8]) -> Result<Self, TlsError> {
        let der = CertificateDer::pem_slice_iter(pem)
            .next()
            .ok_or(TlsError::NoCertificate)?
            .map_err(|_| TlsError::BadPem {
                what: "certificate",
            })?;
        Self::of_certificate_der(&der)
    }

    /// The pin of a DER `SubjectPublicKeyInfo` (with its outer `SEQUENCE`).
    pub fn of_spki_der(spki: &[u8]) -> Self {
        Self(Sha256::digest(spki).into())
    }

    /// The digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SpkiPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PIN_PREFIX}{}", BASE64.encode(self.0))
    }
}

impl fmt::Debug for SpkiPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpkiPin({self})")
    }
}

impl FromStr for SpkiPin {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The crypto provider every config of this module is built on (installed explicitly; the
/// process default is never used).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's TLS: a rustls config, TLS 1.3 only, with its certificate chain and key.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    pin: SpkiPin,
}

impl ServerTls {
    /// From a PEM certificate chain (end entity first) and a PEM private key (PKCS#8, SEC1 or
    /// PKCS#1).
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        Self::with_versions(cert_chain_pem, key_pem, &[&TLS13])
    }

    /// [`ServerTls::from_pem`] speaking `versions` (TLS 1.3 for the TSM; the probe server of
    /// [`probe`] may offer TLS 1.2 only).
    fn with_versions(
        cert_chain_pem: &[u8],
        key_pem: &[u8],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TlsError::BadPem {
                what: "certificate",
            })?;
        let end_entity = chain.first().ok_or(TlsError::NoCertificate)?;
        let pin = SpkiPin::of_certificate_der(end_entity)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey,
            _ => TlsError::BadPem { what: "key" },
        })?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(TlsError::Refused)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Refused)?;
        Ok(Self {
            config: Arc::new(config),
            pin,
        })
    }

    /// From PEM files; an error names the file.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map(Zeroizing::new)
                .map_err(|source| TlsError::Read {
                    path: path.to_path_buf(),
                    source,
                })
        };
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        Self::from_pem(&cert_pem, &key_pem).map_err(|e| {
            let path = match e {
                TlsError::NoPrivateKey | TlsError::BadPem { what: "key" } => key,
                TlsError::Refused(_) => key,
                _ => cert,
            };
            TlsError::InFile {
                path: path.to_path_buf(),
                source: Box::new(e),
            }
        })
    }

    /// The pin of its end-entity certificate (what clients pin).
    pub fn pin(&self) -> SpkiPin {
        self.pin
    }

    /// The rustls config.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.config)
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("pin", &self.pin)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// A self-signed certificate and its key, made by [`self_signed`].
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: Zeroizing<String>,
    /// The certificate's pin.
    pub pin: SpkiPin,
}

impl fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfSigned")
            .field("pin", &self.pin)
            .field("key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// A new ECDSA P-256 key and a self-signed certificate for `subject_alt_names` (DNS names or IP
/// addresses). Clients pin its key; the names are informative (no host name check is made when
/// the pin matches).
pub fn self_signed(subject_alt_names: &[String]) -> Result<SelfSigned, TlsError> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(TlsError::Generate)?;
    let cert = rcgen::CertificateParams::new(subject_alt_names.to_vec())
        .and_then(|params| params.self_signed(&key))
        .map_err(TlsError::Generate)?;
    let pin = SpkiPin::of_certificate_der(cert.der())?;
    Ok(SelfSigned {
        cert_pem: cert.pem(),
        key_pem: Zeroizing::new(key.serialize_pem()),
        pin,
    })
}

/// A pin miss: the key the server presented (the handshake error's cause).
#[derive(Debug, thiserror::Error)]
#[error("the server's key {presented} matches none of the pins")]
pub(crate) struct PinMiss {
    pub(crate) presented: SpkiPin,
}

/// Accepts the server's end-entity certificate iff its SPKI is pinned; verifies the handshake
/// signature with the provider's algorithms.
#[derive(Debug)]
struct PinnedVerifier {
    pins: Vec<SpkiPin>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // client.md §6.4: the pin is the identity; a miss is fatal.
        let presented = SpkiPin::of_certificate_der(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if self.pins.contains(&presented) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMiss {
                    presented,
                }))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable: the client config offers TLS 1.3 only. Verified all the same.
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client config, TLS 1.3 only, trusting exactly `pins`.
/// The pinned TLS 1.3 client configuration [`super::TsmClient::with_tls`] uses, for a client of
/// one's own (an async load generator, a test): the server is accepted iff its key is one of
/// `pins`.
pub fn pinned_client_config(pins: &[SpkiPin]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    if pins.is_empty() {
        return Err(TlsError::BadPin("no pin given"));
    }
    client_config(pins).map_err(TlsError::Refused)
}

pub(crate) fn client_config(pins: &[SpkiPin]) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = provider();
    let verifier = Arc::new(PinnedVerifier {
        pins: pins.to_vec(),
        provider: Arc::clone(&provider),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A failed TLS handshake, carried through ureq as its `Error::Other`.
#[derive(Debug, thiserror::Error)]
#[error("the TLS handshake failed: {0}")]
pub(crate) struct HandshakeFailed(pub(crate) rustls::Error);

impl HandshakeFailed {
    /// The pin miss behind this failure, if it is one.
    pub(crate) fn pin_miss(&self) -> Option<SpkiPin> {
        match &self.0 {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<PinMiss>().map(|miss| miss.presented)
            }
            _ => None,
        }
    }
}

/// A ureq connector that wraps the TCP transport before it in pinned TLS 1.3, completing the
/// handshake before ureq writes the request.
#[derive(Clone)]
pub(crate) struct PinnedConnector {
    config: Arc<rustls::ClientConfig>,
}

impl PinnedConnector {
    pub(crate) fn new(config: Arc<rustls::ClientConfig>) -> Self {
        Self { config }
    }
}

impl fmt::Debug for PinnedConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedConnector").finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for PinnedConnector {
    type Out = PinnedTransport;

    fn connect(
        &self,
        details: &ConnectionDetails<'_>,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() {
            // Never send a request in the clear on a pinned client (a redirect to http://).
            return Err(ureq::Error::TlsRequired);
        }
        let host = details
            .uri
            .host()
            .ok_or(ureq::Error::BadUri("no host".to_string()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host)
            .map_err(|_| ureq::Error::BadUri(format!("not a host name: {host}")))?
            .to_owned();
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| ureq::Error::Other(Box::new(HandshakeFailed(e))))?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        // The whole handshake, the server's certificate checked against the pins, before the
        // caller writes a byte of the request.
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).map_err(handshake_error)?;
        }
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(PinnedTransport {
            buffers,
            stream: StreamOwned::new(conn, sock),
        }))
    }
}

/// An I/O error of the handshake: rustls's own error when it is one.
fn handshake_error(e: io::Error) -> ureq::Error {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match tls {
        Some(tls) => ureq::Error::Other(Box::new(HandshakeFailed(tls))),
        None => ureq::Error::Io(e),
    }
}

/// A TLS 1.3 stream over ureq's transport.
pub(crate) struct PinnedTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for PinnedTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedTransport")
            .field("chained", &self.stream.sock.inner())
            .finish()
    }
}

impl Transport for PinnedTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        self.stream.flush()?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
