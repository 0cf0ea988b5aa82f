//! The issuer service over HTTP on an ephemeral port, in process: a wallet's authorisation
//! that a terminal then accepts, and every refusal with its code and status.
// Test code states its expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ykt_crypto::Sm2PrivateKey;
use ykt_qr::testing::{self, TestRng};
use ykt_qr::verify::{ParameterUpdate, WhitelistEntry};
use ykt_qr::{Verifier, VerifierConfig, Version, wallet};
use ykt_qr_service::wire::{
    AUTHORISATION_REQUEST_TYPE, AuthorisationRequest, ErrorBody, ErrorCode, RequestedTerms,
};
use ykt_qr_service::{
    ApiToken, AppState, Client, ClientError, Policy, PublishedIssuer, RunningService,
    ServiceConfig, client, spawn,
};

/// The service's clock at the start of every test (2025-11-24T16:00:00Z).
const T: u64 = 1_764_000_000;
const TOKEN: &str = "test-token-0123456789abcdef";

/// An issuer directory as `ykt qr issuer init` writes it, with the brief's §6 keys.
struct IssuerDir(PathBuf);

impl IssuerDir {
    fn new(name: &str, version: Version, blacklist: Option<&str>) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ykt-qr-service-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut rng = TestRng::new(7);
        let root = testing::root_ca().unwrap();
        let issuer_key = Sm2PrivateKey::from_bytes(&testing::ISSUER_D).unwrap();
        let cert = root
            .certify(
                &mut rng,
                issuer_key.public_key(),
                &testing::certificate_request(version),
            )
            .unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
        write(
            "issuer.key",
            format!("{}\n", hex::encode(testing::ISSUER_D)),
        );
        write("issuer.cert", format!("{}\n", hex::encode(cert.encode())));
        write(
            "root-ca.record",
            format!("{}\n", hex::encode(root.record(&mut rng).unwrap().encode())),
        );
        write(
            "issuer.txt",
            format!(
                "# test issuer\nversion = {:02x}\norg_code = 99990001\nplatform_id = 99990002\n",
                version.value()
            ),
        );
        if let Some(text) = blacklist {
            write("blacklist.txt", text.to_string());
        }
        Self(dir)
    }
}

impl Drop for IssuerDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Service {
    running: RunningService,
    clock: Arc<AtomicU64>,
    _dir: IssuerDir,
}

impl Service {
    fn start(name: &str) -> Self {
        Self::with(name, |_| {}, None)
    }

    fn with(name: &str, tune: impl FnOnce(&mut ServiceConfig), blacklist: Option<&str>) -> Self {
        let dir = IssuerDir::new(name, Version::INTEROPERABLE, blacklist);
        let issuer = PublishedIssuer::load(&dir.0).unwrap();
        let mut config = ServiceConfig::new(ApiToken::new(TOKEN).unwrap());
        tune(&mut config);
        let clock = Arc::new(AtomicU64::new(T));
        let reading = Arc::clone(&clock);
        let state = AppState::with_clock(
            issuer,
            config,
            Arc::new(move || reading.load(Ordering::SeqCst)),
        )
        .unwrap();
        let running = spawn("127.0.0.1:0".parse().unwrap(), state).unwrap();
        Self {
            running,
            clock,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        self.running.url()
    }

    fn client(&self) -> Client {
        Client::new(&self.url()).unwrap()
    }

    /// POSTs `body` with `auth` as the Authorization header: (status, body text).
    fn post(&self, auth: Option<&str>, body: &[u8]) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut request = agent.post(format!("{}/v1/authorisations", self.url()));
        if let Some(a) = auth {
            request = request.header("Authorization", a);
        }
        let mut response = request.send(body).unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    fn post_ok_token(&self, body: &[u8]) -> (u16, String) {
        self.post(Some(&format!("Bearer {TOKEN}")), body)
    }
}

fn user() -> Sm2PrivateKey {
    Sm2PrivateKey::from_bytes(&testing::USER_D).unwrap()
}

fn terms() -> RequestedTerms {
    RequestedTerms {
        limit: 2000,
        valid_for: 86_400,
        validity: 60,
        account: Some(hex::encode(testing::USER_ACCOUNT)),
        payment_account: None,
        account_type: "01".into(),
        issuer_data: String::new(),
    }
}

fn request(key: &Sm2PrivateKey, timestamp: u64, nonce: &str) -> AuthorisationRequest {
    AuthorisationRequest {
        msg_type: AUTHORISATION_REQUEST_TYPE.into(),
        user_public_key: hex::encode(ykt_qr::compress_public_key(key.public_key())),
        terms: terms(),
        timestamp,
        nonce: nonce.into(),
    }
}

fn body(key: &Sm2PrivateKey, timestamp: u64, nonce: &str) -> Vec<u8> {
    client::signed_body(&request(key, timestamp, nonce), key).unwrap()
}

/// The error body of a refusal, checked against its status.
fn refusal(status: u16, text: &str) -> ErrorCode {
    let body: ErrorBody = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(body.code.status().as_u16(), status, "{text}");
    body.code
}

fn refused_code(result: Result<ykt_qr_service::Granted, ClientError>) -> (u16, ErrorCode) {
    match result {
        Err(ClientError::Refused { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_authorised_key_makes_codes_a_terminal_with_the_published_parameters_accepts() {
    let s = Service::with(
        "happy",
        |_| {},
        Some("# accounts\nversion = 3\naccount = 99990001000000000001\n"),
    );
    let key = user();
    let granted = s.client().authorise(TOKEN, &key, &terms(), T).unwrap();
    assert!(granted.clamped.is_empty());
    let body = &granted.authorisation.body;
    assert_eq!(body.limit, 2000);
    assert_eq!(u64::from(body.authorisation_expiry), T + 86_400);
    assert_eq!(body.user_account, testing::USER_ACCOUNT);
    assert_eq!(body.org_code, testing::ORG_CODE);
    assert_eq!(body.platform_id, testing::PLATFORM_ID);
    assert!(body.payment_account.starts_with(b"PAY"));
    assert_eq!(granted.terms.valid_for, 86_400);

    // The terminal installs what the service publishes.
    let params = client::parameters(&s.url()).unwrap();
    assert_eq!(params.code_version, Version::INTEROPERABLE);
    assert_eq!(
        params.whitelist,
        vec![(testing::ORG_CODE, testing::PLATFORM_ID)]
    );
    assert_eq!(params.blacklist_version, 3);
    assert_eq!(params.blacklist.len(), 1);
    assert_eq!(params.issuer_certificate, granted.authorisation.certificate);
    let mut verifier = Verifier::new(VerifierConfig::default());
    verifier
        .apply(ParameterUpdate::RootKeys {
            version: params.root_keys_version,
            entries: &params.root_keys,
        })
        .unwrap();
    let entries: Vec<WhitelistEntry> = params
        .whitelist
        .iter()
        .map(|(org_code, platform_id)| WhitelistEntry {
            org_code: *org_code,
            platform_id: *platform_id,
            ticket_type: 1,
        })
        .collect();
    verifier
        .apply(ParameterUpdate::Whitelist {
            version: params.whitelist_version,
            entries: &entries,
        })
        .unwrap();
    verifier
        .apply(ParameterUpdate::Blacklist {
            version: params.blacklist_version,
            accounts: &params.blacklist,
        })
        .unwrap();

    let mut rng = TestRng::new(1);
    let code = wallet::generate(&granted.authorisation, &key, (T + 10) as u32, &mut rng).unwrap();
    let accepted = verifier.verify(&code.encode(), 200, T + 12).unwrap();
    assert_eq!(
        accepted.code.authorisation.body.user_account,
        testing::USER_ACCOUNT
    );
    // Once only.
    assert!(verifier.verify(&code.encode(), 200, T + 13).is_err());

    // The default accounts come from the key.
    let mut asked = terms();
    asked.account = None;
    let other = Sm2PrivateKey::from_bytes(&[0x42; 32]).unwrap();
    let granted = s.client().authorise(TOKEN, &other, &asked, T).unwrap();
    assert_eq!(
        granted.authorisation.body.user_account[..4],
        testing::ORG_CODE
    );
    assert_eq!(granted.authorisation.body.user_account[9] & 0x0F, 0x0F);

    let health = ureq::get(format!("{}/healthz", s.url()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(health, "{\"status\":\"ok\"}");
    s.running.stop().unwrap();
}

#[test]
fn a_signature_by_another_key_or_over_other_bytes_is_refused() {
    let s = Service::start("signature");
    let key = user();
    let thief = Sm2PrivateKey::from_bytes(&[0x42; 32]).unwrap();
    // The request names the user's key but is signed by another.
    let forged = client::signed_body(&request(&key, T, "00112233445566778899"), &thief).unwrap();
    let (status, text) = s.post_ok_token(&forged);
    assert_eq!(refusal(status, &text), ErrorCode::BadSignature, "{text}");
    assert_eq!(status, 403);
    // A member changed after signing.
    let signed = String::from_utf8(body(&key, T, "00112233445566778898")).unwrap();
    let tampered = signed.replace("\"limit\":2000", "\"limit\":9000");
    assert_ne!(signed, tampered);
    let (status, text) = s.post_ok_token(tampered.as_bytes());
    assert_eq!(refusal(status, &text), ErrorCode::BadSignature, "{text}");
    // A member added after signing: unknown members are refused before the signature.
    let added = signed.replacen('{', "{\"extra\":1,", 1);
    let (status, text) = s.post_ok_token(added.as_bytes());
    assert_eq!(refusal(status, &text), ErrorCode::BadRequest, "{text}");
    // The members in another order and with white space: still the same canonical body.
    let value: serde_json::Value = serde_json::from_str(&signed).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    let (status, text) = s.post_ok_token(pretty.as_bytes());
    assert_eq!(status, 200, "{text}");
}

#[test]
fn a_timestamp_outside_the_window_is_stale() {
    let s = Service::start("stale");
    let key = user();
    for (at, nonce) in [(T - 301, "a0a0a0a0a0a0a0a0"), (T + 301, "a1a1a1a1a1a1a1a1")] {
        let (status, text) = s.post_ok_token(&body(&key, at, nonce));
        assert_eq!(refusal(status, &text), ErrorCode::Stale, "{text}");
    }
    // The edges pass.
    for (at, nonce) in [(T - 300, "a2a2a2a2a2a2a2a2"), (T + 300, "a3a3a3a3a3a3a3a3")] {
        let (status, text) = s.post_ok_token(&body(&key, at, nonce));
        assert_eq!(status, 200, "{text}");
    }
    // The service's clock moves on: a request made now is stale in ten minutes.
    let late = body(&key, T, "a4a4a4a4a4a4a4a4");
    s.clock.store(T + 600, Ordering::SeqCst);
    let (status, text) = s.post_ok_token(&late);
    assert_eq!(refusal(status, &text), ErrorCode::Stale, "{text}");
}

#[test]
fn a_replayed_nonce_is_refused_and_a_full_cache_refuses_rather_than_forget() {
    let s = Service::with("replay", |c| c.replay_capacity = 2, None);
    let key = user();
    let first = body(&key, T, "b0b0b0b0b0b0b0b0");
    let (status, text) = s.post_ok_token(&first);
    assert_eq!(status, 200, "{text}");
    let (status, text) = s.post_ok_token(&first);
    assert_eq!(refusal(status, &text), ErrorCode::Replayed, "{text}");
    assert_eq!(status, 409);
    // The same nonce in a new, validly signed request (upper-case hex too) is a replay.
    let again = body(&key, T + 1, "B0B0B0B0B0B0B0B0");
    let (status, text) = s.post_ok_token(&again);
    assert_eq!(refusal(status, &text), ErrorCode::Replayed, "{text}");
    // Capacity 2: one more fits, the next is refused while both are live.
    let (status, _) = s.post_ok_token(&body(&key, T, "b1b1b1b1b1b1b1b1"));
    assert_eq!(status, 200);
    let (status, text) = s.post_ok_token(&body(&key, T, "b2b2b2b2b2b2b2b2"));
    assert_eq!(refusal(status, &text), ErrorCode::Busy, "{text}");
    // Once their timestamps have left the window, the slots are free again; the replay
    // itself is stale by then.
    s.clock.store(T + 301, Ordering::SeqCst);
    let (status, text) = s.post_ok_token(&body(&key, T + 301, "b2b2b2b2b2b2b2b2"));
    assert_eq!(status, 200, "{text}");
    let (status, text) = s.post_ok_token(&first);
    assert_eq!(refusal(status, &text), ErrorCode::Stale, "{text}");
}

#[test]
fn a_missing_or_wrong_token_is_unauthorised() {
    let s = Service::start("token");
    let key = user();
    let wrong = format!("Bearer {TOKEN}x");
    let cases = [
        None,
        Some(wrong.as_str()),
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer"),
    ];
    for (i, auth) in cases.into_iter().enumerate() {
        let (status, text) = s.post(auth, &body(&key, T, &format!("c{i}c0c0c0c0c0c0c0c0")));
        assert_eq!(
            refusal(status, &text),
            ErrorCode::Unauthorised,
            "{auth:?}: {text}"
        );
        assert_eq!(status, 401);
    }
    let (status, code) = refused_code(s.client().authorise("not-the-token", &key, &terms(), T));
    assert_eq!((status, code), (401, ErrorCode::Unauthorised));
    // The token is never shown.
    let token = ApiToken::new(TOKEN).unwrap();
    assert_eq!(format!("{token:?}"), "ApiToken([redacted])");
    assert!(ApiToken::new("short").is_err());
}

/// A change to the requested terms.
type Change = fn(&mut RequestedTerms);

#[test]
fn terms_above_the_caps_are_clamped_and_ungrantable_terms_refused() {
    let s = Service::with(
        "policy",
        |c| {
            c.policy = Policy {
                max_limit: 1000,
                max_valid_for: 3600,
                max_code_validity: 120,
            };
        },
        None,
    );
    let key = user();
    let mut asked = terms();
    asked.limit = 5000;
    asked.valid_for = 86_400;
    asked.validity = 600;
    let granted = s.client().authorise(TOKEN, &key, &asked, T).unwrap();
    assert_eq!(granted.clamped, ["limit", "valid_for", "validity"]);
    assert_eq!(granted.authorisation.body.limit, 1000);
    assert_eq!(
        u64::from(granted.authorisation.body.authorisation_expiry),
        T + 3600
    );
    assert_eq!(granted.authorisation.body.validity, 120);
    assert_eq!((granted.terms.limit, granted.terms.valid_for), (1000, 3600));

    let refused: [(&str, Change); 4] = [
        ("limit 0", |t| t.limit = 0),
        ("valid_for 0", |t| t.valid_for = 0),
        ("validity 0", |t| t.validity = 0),
        ("another issuer's account", |t| {
            t.account = Some("11112222333344445555".into());
        }),
    ];
    for (what, change) in refused {
        let mut t = terms();
        change(&mut t);
        let (status, code) = refused_code(s.client().authorise(TOKEN, &key, &t, T));
        assert_eq!((status, code), (422, ErrorCode::Policy), "{what}");
    }
    let malformed: [(&str, Change); 3] = [
        ("account not hex", |t| t.account = Some("zz".into())),
        ("payment account too short", |t| {
            t.payment_account = Some("PAY1".into());
        }),
        ("issuer data too long", |t| t.issuer_data = "00".repeat(33)),
    ];
    for (what, change) in malformed {
        let mut t = terms();
        change(&mut t);
        let (status, code) = refused_code(s.client().authorise(TOKEN, &key, &t, T));
        assert_eq!((status, code), (400, ErrorCode::BadRequest), "{what}");
    }
}

#[test]
fn malformed_and_oversized_bodies_are_refused_and_the_service_stays_up() {
    let s = Service::with("malformed", |c| c.max_body = 4096, None);
    let key = user();
    let valid: serde_json::Value =
        serde_json::from_slice(&body(&key, T, "d0d0d0d0d0d0d0d0")).unwrap();
    let with = |f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut v = valid.clone();
        f(v.as_object_mut().unwrap());
        serde_json::to_vec(&v).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not JSON", b"{\"msg_type\": ".to_vec()),
        ("binary", vec![0xFF, 0x00, 0x7B, 0x80]),
        ("an array", b"[1,2,3]".to_vec()),
        ("a string", b"\"hello\"".to_vec()),
        (
            "no signature",
            with(&|m| {
                m.remove("signature");
            }),
        ),
        (
            "a numeric signature",
            with(&|m| {
                m.insert("signature".into(), 5.into());
            }),
        ),
        (
            "a short signature",
            with(&|m| {
                m.insert("signature".into(), "abcd".into());
            }),
        ),
        (
            "no terms",
            with(&|m| {
                m.remove("terms");
            }),
        ),
        (
            "a wrong type",
            with(&|m| {
                m.insert("timestamp".into(), "now".into());
            }),
        ),
        (
            "a negative timestamp",
            with(&|m| {
                m.insert("timestamp".into(), (-1).into());
            }),
        ),
        (
            "a fraction",
            with(&|m| {
                m.insert("timestamp".into(), serde_json::json!(1.5));
            }),
        ),
        (
            "a key that is not a point",
            with(&|m| {
                m.insert(
                    "user_public_key".into(),
                    format!("02{}", "ff".repeat(32)).into(),
                );
            }),
        ),
        (
            "a short nonce",
            with(&|m| {
                m.insert("nonce".into(), "0011".into());
            }),
        ),
        (
            "another msg_type",
            with(&|m| {
                m.insert("msg_type".into(), "OpenCardReq".into());
            }),
        ),
        ("deeply nested", {
            let mut v = "[".repeat(2000);
            v.push_str(&"]".repeat(2000));
            v.into_bytes()
        }),
    ];
    for (what, bytes) in &cases {
        let (status, text) = s.post_ok_token(bytes);
        assert_eq!(
            refusal(status, &text),
            ErrorCode::BadRequest,
            "{what}: {text}"
        );
    }
    let big = vec![b' '; 5000];
    let (status, text) = s.post_ok_token(&big);
    assert_eq!(refusal(status, &text), ErrorCode::TooLarge, "{text}");
    assert_eq!(status, 413);

    // Unknown paths and methods get JSON too.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.get(format!("{}/v2/nothing", s.url())).call().unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        refusal(status, &r.body_mut().read_to_string().unwrap()),
        ErrorCode::NotFound
    );
    let mut r = agent
        .get(format!("{}/v1/authorisations", s.url()))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        refusal(status, &r.body_mut().read_to_string().unwrap()),
        ErrorCode::MethodNotAllowed
    );

    // Still serving.
    let (status, text) = s.post_ok_token(&body(&key, T, "d1d1d1d1d1d1d1d1"));
    assert_eq!(status, 200, "{text}");
}

#[test]
fn transport_failures_are_not_refusals() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    assert!(matches!(
        client::parameters(&url),
        Err(ClientError::Transport(_))
    ));
    assert!(matches!(
        client::authorise(&url, TOKEN, &user(), &terms(), T),
        Err(ClientError::Transport(_))
    ));
    assert!(matches!(
        Client::new("https://issuer.example"),
        Err(ClientError::UnsupportedUrl)
    ));
}

#[test]
fn the_issuer_key_is_never_shown_and_local_issuers_publish_their_org() {
    let dir = IssuerDir::new("local", Version::LOCAL, None);
    let issuer = PublishedIssuer::load(&dir.0).unwrap();
    let shown = format!("{issuer:?}");
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(
        !shown
            .to_lowercase()
            .contains(&hex::encode(testing::ISSUER_D)),
        "{shown}"
    );

    let state = AppState::new(issuer, ServiceConfig::new(ApiToken::new(TOKEN).unwrap())).unwrap();
    assert!(!format!("{state:?}").contains(TOKEN));
    let running = spawn("127.0.0.1:0".parse().unwrap(), state).unwrap();
    let params = client::parameters(&running.url()).unwrap();
    assert_eq!(params.code_version, Version::LOCAL);
    assert!(params.whitelist.is_empty());
    assert_eq!(params.whitelist_version, 0);
    assert_eq!(params.local_orgs, vec![testing::ORG_CODE]);
    assert_eq!(params.blacklist_version, 0);

    // A damaged directory is a typed error naming the file.
    std::fs::write(dir.0.join("issuer.cert"), "00\n").unwrap();
    let err = PublishedIssuer::load(&dir.0).unwrap_err();
    assert!(err.path.ends_with("issuer.cert"), "{err}");
}

#[test]
fn mutated_bodies_always_get_a_json_refusal_never_a_failure() {
    let s = Service::with("mutated", |c| c.replay_capacity = 1000, None);
    let key = user();
    let mut rng = TestRng::new(99);
    let mut next = |n: u64| {
        use rand_core::TryRng as _;
        let Ok(v) = rng.try_next_u64();
        v % n
    };
    for i in 0..300u32 {
        let mut bytes = body(&key, T, &format!("{i:08x}e0e0e0e0"));
        for _ in 0..=next(3) {
            let at = next(bytes.len() as u64) as usize;
            match next(3) {
                0 => bytes[at] = next(256) as u8,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, b"{}[]\",:0e-\\"[next(11) as usize]),
            }
        }
        let (status, text) = s.post_ok_token(&bytes);
        if status == 200 {
            // A mutation the canonical form absorbs (white space, say).
            continue;
        }
        let code = refusal(status, &text);
        assert!(
            matches!(
                code,
                ErrorCode::BadRequest
                    | ErrorCode::BadSignature
                    | ErrorCode::Stale
                    | ErrorCode::Policy
                    | ErrorCode::Replayed
            ),
            "{code:?}: {text}"
        );
    }
    let (status, text) = s.post_ok_token(&body(&key, T, "f0f0f0f0f0f0f0f0"));
    assert_eq!(status, 200, "{text}");
}
