//! TLS 1.3 with SPKI pinning (client.md §6.4 Profile B): `serve_tls` with the fake backend,
//! `TsmClient::with_tls`; a foreign key refused before any request byte, a TLS 1.2-only server
//! refused, a restarted server with a new key refused.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt as _;
use ykt_envelope::{Code, PeerKey};
use ykt_tsm::api;
use ykt_tsm::hex::Hex;
use ykt_tsm_service::http::tls::{ServerTls, SpkiPin, TlsError, self_signed};
use ykt_tsm_service::http::{ClientError, ServerConfig, TsmClient};

use crate::support::{Device, T0, TestServer};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn localhost() -> Vec<String> {
    vec!["localhost".to_string(), "127.0.0.1".to_string()]
}

/// `serve_tls` over the fake backend (`TestServer::start_tls`): dropping it stops every
/// connection, as a process exit would.
struct TlsServer;

impl TlsServer {
    fn start(tls: ServerTls) -> TestServer {
        Self::start_on("127.0.0.1:0", tls)
    }

    fn start_on(bind: &str, tls: ServerTls) -> TestServer {
        TestServer::start_tls(bind, tls, |c| c)
    }

    fn start_with(
        bind: &str,
        tls: ServerTls,
        configure: impl FnOnce(ServerConfig) -> ServerConfig,
    ) -> TestServer {
        TestServer::start_tls(bind, tls, configure)
    }
}

/// The number of business requests of `msg_type` the server behind `client` counted.
fn requests(client: &TsmClient, msg_type: &str) -> u64 {
    let prefix = format!("ykt_tsm_requests_total{{msg_type=\"{msg_type}\",");
    client
        .metrics()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

fn server_tls() -> (ServerTls, SpkiPin) {
    let made = self_signed(&localhost()).unwrap();
    let tls = ServerTls::from_pem(made.cert_pem.as_bytes(), made.key_pem.as_bytes()).unwrap();
    assert_eq!(tls.pin(), made.pin);
    (tls, made.pin)
}

fn foreign_pin() -> SpkiPin {
    self_signed(&localhost()).unwrap().pin
}

/// An `EnrolReq` sealed by a fresh device, sent through `client`.
fn enrol(client: &TsmClient, seed: u8) -> Result<ykt_envelope::Envelope, ClientError> {
    let device = Device::new(seed);
    let req = api::EnrolReq {
        device_pub: Hex(device.public_key().to_bytes().to_vec()),
        device_model: "test phone".into(),
    };
    let header = device.header(api::ENROL, "enrol", &format!("req-{seed}"));
    client.send(&device.seal_as(T0, &header, &req))
}

#[test]
fn a_wallet_request_goes_through_with_the_current_or_the_backup_pin() {
    let (tls, pin) = server_tls();
    let server = TlsServer::start(tls);
    for (seed, pins) in [(11u8, vec![pin]), (12, vec![foreign_pin(), pin])] {
        let client = TsmClient::with_tls(&server.url.clone(), &pins).unwrap();
        assert_eq!(client.health().unwrap(), "ok");
        let answer = enrol(&client, seed).unwrap();
        answer
            .verify(&PeerKey::Sm2(server.tsm_key.clone()))
            .unwrap();
        assert_eq!(answer.code(), Some(Code::Ok), "{:?}", answer.result);
        // The same agent again (a pooled connection or a new handshake).
        assert_eq!(client.health().unwrap(), "ok");
    }
    // The host name is not checked when the pin matches: a certificate for another name,
    // reached by IP address and by `localhost`.
    let made = self_signed(&["tsm.example.invalid".to_string()]).unwrap();
    let tls = ServerTls::from_pem(made.cert_pem.as_bytes(), made.key_pem.as_bytes()).unwrap();
    let other = TlsServer::start(tls);
    for url in [
        other.url.clone(),
        format!("https://localhost:{}", other.addr.port()),
    ] {
        let client = TsmClient::with_tls(&url, &[made.pin]).unwrap();
        assert_eq!(client.health().unwrap(), "ok", "{url}");
    }
}

#[test]
fn a_foreign_key_is_refused_and_the_server_sees_no_request() {
    let (tls, pin) = server_tls();
    let server = TlsServer::start(tls);
    let pinned = TsmClient::with_tls(&server.url.clone(), &[pin]).unwrap();
    let before = requests(&pinned, "EnrolReq");

    let wrong = foreign_pin();
    let client = TsmClient::with_tls(&server.url.clone(), &[wrong]).unwrap();
    let e = enrol(&client, 21).unwrap_err();
    match &e {
        ClientError::PinMismatch { presented } => assert_eq!(*presented, pin),
        other => panic!("expected a pin mismatch, got {other:?}"),
    }
    assert!(e.is_transport());
    let text = e.to_string();
    println!("foreign key: {text}");
    assert!(text.contains("pinned"), "{text}");
    assert!(text.contains(&pin.to_string()), "{text}");
    assert!(matches!(
        client.health(),
        Err(ClientError::PinMismatch { .. })
    ));
    // Nothing reached the router: the business request counter did not move.
    assert_eq!(requests(&pinned, "EnrolReq"), before);
    // And the counter does move for a request that gets through.
    assert_eq!(enrol(&pinned, 22).unwrap().code(), Some(Code::Ok));
    assert_eq!(requests(&pinned, "EnrolReq"), before + 1);
}

/// A raw TLS 1.3 server that records what each connection's handshake gave and every
/// application byte that arrived.
#[derive(Default)]
struct Seen {
    handshakes_ok: usize,
    handshakes_failed: usize,
    bytes: Vec<u8>,
}

fn raw_tls_server(
    rt: &tokio::runtime::Runtime,
    config: Arc<rustls::ServerConfig>,
) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let s = Arc::clone(&seen);
    rt.spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            match acceptor.accept(tcp).await {
                Err(_) => s.lock().unwrap().handshakes_failed += 1,
                Ok(mut stream) => {
                    s.lock().unwrap().handshakes_ok += 1;
                    let mut buf = vec![0u8; 4096];
                    // Enough to see the request line and headers; the client then waits for
                    // an answer that never comes, so stop reading after the first chunk.
                    if let Ok(n) = stream.read(&mut buf).await {
                        s.lock().unwrap().bytes.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
    });
    (addr, seen)
}

fn quick_client(url: &str, pins: &[SpkiPin]) -> TsmClient {
    TsmClient::with_tls(url, pins).unwrap()
}

#[test]
fn a_pin_miss_ends_the_handshake_before_any_request_byte() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (tls, pin) = server_tls();
    let (addr, seen) = raw_tls_server(&rt, tls.config());
    let url = format!("https://{addr}");

    let e = quick_client(&url, &[foreign_pin()])
        .send_bytes("EnrolReq", b"{\"secret\":1}")
        .unwrap_err();
    assert!(matches!(e, ClientError::PinMismatch { .. }), "{e:?}");
    // The client's alert reaches the server before its handshake ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while seen.lock().unwrap().handshakes_failed == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.handshakes_failed, 1);
        assert_eq!(s.handshakes_ok, 0);
        assert!(s.bytes.is_empty());
    }

    // Positive control: with the right pin the same server sees the request's bytes. The raw
    // server never answers, so the client times out or fails; only the bytes matter.
    let client = quick_client(&url, &[pin]);
    std::thread::spawn(move || {
        let _ = client.send_bytes("EnrolReq", b"{\"secret\":1}");
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while seen.lock().unwrap().bytes.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let s = seen.lock().unwrap();
    assert_eq!(s.handshakes_ok, 1);
    assert!(s.bytes.starts_with(b"POST /v1/EnrolReq"), "{:?}", s.bytes);
    drop(s);
    rt.shutdown_background();
}

#[test]
fn a_tls_1_2_only_server_is_refused() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let made = self_signed(&localhost()).unwrap();
    let chain = vec![rustls_pki_types::CertificateDer::from(pem_der(
        &made.cert_pem,
    ))];
    let key = rustls_pki_types::PrivateKeyDer::try_from(pem_der(&made.key_pem)).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let (addr, seen) = raw_tls_server(&rt, Arc::new(config));
    // Pinned to the server's own key: the refusal is the protocol version's.
    let e = quick_client(&format!("https://{addr}"), &[made.pin])
        .health()
        .unwrap_err();
    match &e {
        ClientError::Tls(inner) => {
            let text = format!("{e} {inner:?}");
            assert!(
                text.contains("ProtocolVersion") || text.contains("version"),
                "{text}"
            );
        }
        other => panic!("expected a TLS refusal, got {other:?}"),
    }
    println!("TLS 1.2 server: {e}");
    assert!(e.is_transport());
    let s = seen.lock().unwrap();
    assert_eq!(s.handshakes_ok, 0);
    assert!(s.bytes.is_empty());
    drop(s);
    rt.shutdown_background();
}

/// The DER of a PEM's single block.
fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[test]
fn urls_and_pins_are_checked_when_the_client_is_made() {
    let pin = foreign_pin();
    assert!(matches!(
        TsmClient::with_tls("http://127.0.0.1:1", &[pin]),
        Err(ClientError::NotHttps)
    ));
    assert!(matches!(
        TsmClient::danger_plain_http("https://127.0.0.1:1"),
        Err(ClientError::UnsupportedUrl)
    ));
    assert!(matches!(
        TsmClient::with_tls("https://127.0.0.1:1", &[]),
        Err(ClientError::NoPins)
    ));
    for e in [
        TsmClient::with_tls("http://127.0.0.1:1", &[pin]).unwrap_err(),
        TsmClient::danger_plain_http("https://127.0.0.1:1").unwrap_err(),
        TsmClient::with_tls("https://127.0.0.1:1", &[]).unwrap_err(),
    ] {
        assert!(!e.to_string().is_empty());
    }
    assert!(TsmClient::danger_plain_http("http://127.0.0.1:1").is_ok());
    assert!(TsmClient::with_tls("https://127.0.0.1:1", &[pin]).is_ok());
}

#[test]
fn pins_parse_print_and_match_openssl() {
    let made = self_signed(&localhost()).unwrap();
    let text = made.pin.to_string();
    assert!(text.starts_with("sha256/"), "{text}");
    assert_eq!(SpkiPin::parse(&text).unwrap(), made.pin);
    assert_eq!(text.parse::<SpkiPin>().unwrap(), made.pin);
    assert_eq!(format!("{:?}", made.pin), format!("SpkiPin({text})"));
    assert_eq!(
        SpkiPin::of_certificate_der(&pem_der(&made.cert_pem)).unwrap(),
        made.pin
    );
    // Another key, another pin.
    assert_ne!(foreign_pin(), made.pin);

    for bad in [
        "",
        "sha1/AAAA",
        &text[7..],
        "sha256/not base64!",
        "sha256/AAAA",
        &format!("sha256/{}", "A".repeat(48)),
    ] {
        assert!(
            matches!(SpkiPin::parse(bad), Err(TlsError::BadPin(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        SpkiPin::of_certificate_der(b"not a certificate"),
        Err(TlsError::BadCertificate)
    ));
    // The key never shows in Debug.
    let debug = format!("{made:?}");
    assert!(debug.contains("[redacted]"), "{debug}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");

    // The openssl pipeline of RFC 7469 gives the same digest.
    let script = "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der \
                  | openssl dgst -sha256 -binary | base64";
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        println!("note: no shell to run openssl; the openssl cross-check is skipped");
        return;
    };
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        println!("note: openssl is not on PATH; the openssl cross-check is skipped");
        let _ = child.kill();
        return;
    }
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(made.cert_pem.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let openssl = String::from_utf8(out.stdout).unwrap();
    assert_eq!(format!("sha256/{}", openssl.trim()), text);
}

#[test]
fn server_tls_refuses_bad_pem_and_names_the_file() {
    let made = self_signed(&localhost()).unwrap();
    let other = self_signed(&localhost()).unwrap();
    assert!(matches!(
        ServerTls::from_pem(b"", made.key_pem.as_bytes()),
        Err(TlsError::NoCertificate)
    ));
    assert!(matches!(
        ServerTls::from_pem(made.cert_pem.as_bytes(), b""),
        Err(TlsError::NoPrivateKey)
    ));
    // A key that is not the certificate's.
    assert!(matches!(
        ServerTls::from_pem(made.cert_pem.as_bytes(), other.key_pem.as_bytes()),
        Err(TlsError::Refused(_))
    ));

    let dir = std::env::temp_dir().join(format!(
        "ykt-tsm-tls-pem_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("tsm.crt");
    let key = dir.join("tsm.key");
    let missing = dir.join("missing.key");
    std::fs::write(&cert, &made.cert_pem).unwrap();
    std::fs::write(&key, made.key_pem.as_bytes()).unwrap();
    let tls = ServerTls::from_pem_files(&cert, &key).unwrap();
    assert_eq!(tls.pin(), made.pin);
    assert!(format!("{tls:?}").contains("[redacted]"));

    let e = ServerTls::from_pem_files(&cert, &missing).unwrap_err();
    assert!(matches!(e, TlsError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("missing.key"), "{e}");
    std::fs::write(&key, b"-----BEGIN CERTIFICATE-----\n").unwrap();
    let e = ServerTls::from_pem_files(&cert, &key).unwrap_err();
    assert!(e.to_string().contains("tsm.key"), "{e}");
    let e = ServerTls::from_pem_files(&key, &cert).unwrap_err();
    assert!(matches!(e, TlsError::InFile { .. }), "{e:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restarted_server_with_a_new_key_is_refused_by_the_old_pin() {
    let (tls, old_pin) = server_tls();
    let server = TlsServer::start(tls);
    let addr = server.addr;
    let client = TsmClient::with_tls(&server.url.clone(), &[old_pin]).unwrap();
    assert_eq!(client.health().unwrap(), "ok");
    // The process ends: its runtime and every connection with it.
    drop(server);

    let (tls, new_pin) = server_tls();
    assert_ne!(new_pin, old_pin);
    let server = TlsServer::start_on(&addr.to_string(), tls);
    assert_eq!(server.addr, addr);
    // The same client (its pooled connection is gone) and a fresh one are both refused.
    let e = client.health().unwrap_err();
    assert!(
        matches!(e, ClientError::PinMismatch { presented } if presented == new_pin),
        "{e:?}"
    );
    let e = TsmClient::with_tls(&server.url.clone(), &[old_pin])
        .unwrap()
        .health()
        .unwrap_err();
    assert!(matches!(e, ClientError::PinMismatch { .. }), "{e:?}");
    // Rolled over to the backup pin, the wallet gets through.
    let client = TsmClient::with_tls(&server.url.clone(), &[old_pin, new_pin]).unwrap();
    assert_eq!(client.health().unwrap(), "ok");
}

#[test]
fn a_bad_client_does_not_stop_the_server_and_the_body_limit_holds() {
    use std::io::{Read as _, Write as _};
    let (tls, pin) = server_tls();
    let server = TlsServer::start_with("127.0.0.1:0", tls, |c| c.with_max_body(1024));
    // Plain HTTP to the TLS port, and a connection closed mid-handshake.
    let mut plain = std::net::TcpStream::connect(server.addr).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    drop(std::net::TcpStream::connect(server.addr).unwrap());
    // The server goes on, and keeps the router's body limit over TLS.
    let client = TsmClient::with_tls(&server.url.clone(), &[pin]).unwrap();
    assert_eq!(client.health().unwrap(), "ok");
    let (status, envelope) = client
        .send_bytes_with_status("EnrolReq", &vec![b' '; 2048])
        .unwrap();
    assert_eq!(status, 413);
    envelope
        .verify(&PeerKey::Sm2(server.tsm_key.clone()))
        .unwrap();
    assert_eq!(client.health().unwrap(), "ok");
}

#[test]
fn the_probe_server_sees_a_request_only_from_a_client_pinned_to_it() {
    use ykt_tsm_service::http::tls::probe::{ProbeServer, ProbeTls};
    let wait = std::time::Duration::from_secs(5);
    // A client pinned to another key: the handshake fails, no application byte arrives.
    let probe = ProbeServer::start(ProbeTls::Tls13).unwrap();
    let e = TsmClient::with_tls(&probe.url(), &[foreign_pin()])
        .unwrap()
        .health()
        .unwrap_err();
    assert!(matches!(e, ClientError::PinMismatch { .. }), "{e:?}");
    probe.settle(wait);
    assert_eq!(
        (
            probe.connections(),
            probe.handshakes(),
            probe.application_bytes()
        ),
        (1, 0, 0)
    );
    // The control: pinned to the probe's own key, the request is sent (and the probe hangs up).
    let e = TsmClient::with_tls(&probe.url(), &[probe.pin()])
        .unwrap()
        .health()
        .unwrap_err();
    assert!(e.is_transport(), "{e:?}");
    probe.settle(wait);
    assert_eq!((probe.connections(), probe.handshakes()), (2, 1));
    assert!(probe.application_bytes() > 0);
    // TLS 1.2 only: refused even with the right pin; nothing sent.
    let old = ProbeServer::start(ProbeTls::Tls12Only).unwrap();
    let e = TsmClient::with_tls(&old.url(), &[old.pin()])
        .unwrap()
        .health()
        .unwrap_err();
    assert!(matches!(e, ClientError::Tls(_)), "{e:?}");
    old.settle(wait);
    assert_eq!((old.handshakes(), old.application_bytes()), (0, 0));
}
