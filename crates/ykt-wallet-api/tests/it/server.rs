//! The server over a real Unix socket in a temporary directory and over loopback TCP
//! (client.md §6.6 tests).

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use ykt_wallet_api::proposals::{AUDIENCE, BURST, ISSUER, TOPUP_WINDOW_SECS};
use ykt_wallet_api::token::{self, danger};
use ykt_wallet_api::{
    AppState, Balance, Card, CardHandle, CardNumber, Claims, MemoryBackend, PeerUid, RecordKind,
    Revocations, Scope, Secret, ServeError, TcpServer, TopupState, TransactionRecord, UnixServer,
    peer_allowed, serve,
};

use crate::http::{Reply, Request, Target, send};
use crate::test_secret;

/// The canary card number of client.md §6.8.
pub const CANARY: &str = "3100123456789012";
const CANARY_MASKED: &str = "310012******9012";
pub const SECOND: &str = "3100987654321098";
/// The start of the test clock, ms.
const T0_MS: u64 = 1_800_000_000_000;
const NOW: u64 = T0_MS / 1000;

pub(crate) struct Harness {
    pub dir: PathBuf,
    pub unix: Target,
    pub tcp: Target,
    clock: Arc<AtomicU64>,
    pub state: AppState,
    pub backend: Arc<MemoryBackend>,
    pub owner_uid: u32,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<Result<(), ServeError>>>,
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ykt-wallet-api-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn backend() -> MemoryBackend {
    let backend = MemoryBackend::new();
    backend.add_card(
        Card {
            handle: CardHandle::new("card-1").unwrap(),
            number: CardNumber::new(CANARY),
            label: "Shanghai transit".into(),
        },
        Balance { amount_fen: 12_345 },
        vec![
            TransactionRecord {
                time: NOW - 60,
                kind: RecordKind::Purchase,
                amount_fen: 200,
            },
            TransactionRecord {
                time: NOW - 3600,
                kind: RecordKind::Load,
                amount_fen: 5_000,
            },
        ],
    );
    backend.add_card(
        Card {
            handle: CardHandle::new("card-2").unwrap(),
            number: CardNumber::new(SECOND),
            label: "Beijing".into(),
        },
        Balance { amount_fen: 0 },
        vec![],
    );
    backend
}

impl Harness {
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, None).await
    }

    /// Both listeners; `expect_uid` makes the Unix socket expect another uid than its owner's.
    pub async fn start_with(name: &str, expect_uid: Option<u32>) -> Self {
        crate::logs::capture();
        let dir = temp_dir(name);
        let clock = Arc::new(AtomicU64::new(T0_MS));
        let backend = Arc::new(backend());
        let c = Arc::clone(&clock);
        let state = AppState::with_clock(
            test_secret(),
            Revocations::new(),
            backend.clone(),
            Arc::new(move || c.load(Ordering::SeqCst)),
        );
        let path = dir.join("ykt-wallet.sock");
        let mut unix_server = UnixServer::bind(&path).unwrap();
        let owner_uid = unix_server.owner_uid();
        if let Some(uid) = expect_uid {
            unix_server = unix_server.danger_expect_uid(uid);
        }
        let tcp_server = TcpServer::bind(0).await.unwrap();
        let tcp = Target::Tcp(tcp_server.local_addr());
        let (unix_stop, unix_rx) = oneshot::channel::<()>();
        let (tcp_stop, tcp_rx) = oneshot::channel::<()>();
        let tasks = vec![
            tokio::spawn(unix_server.serve(state.clone(), async move {
                let _ = unix_rx.await;
            })),
            tokio::spawn(tcp_server.serve(state.clone(), async move {
                let _ = tcp_rx.await;
            })),
        ];
        Self {
            dir,
            unix: Target::Unix(path),
            tcp,
            clock,
            state,
            backend,
            owner_uid,
            stops: vec![unix_stop, tcp_stop],
            tasks,
        }
    }

    pub fn targets(&self) -> [Target; 2] {
        [self.unix.clone(), self.tcp.clone()]
    }

    pub fn advance_ms(&self, ms: u64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst) / 1000
    }

    pub fn token(&self, app: &str, scopes: &[Scope]) -> String {
        let jti = format!("jti-{app}-{}", self.clock.load(Ordering::SeqCst));
        token::issue(&test_secret(), app, scopes, 300, self.now(), &jti)
            .unwrap()
            .0
            .as_str()
            .to_string()
    }

    pub async fn stop(mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            task.await.unwrap().unwrap();
        }
        if let Target::Unix(path) = &self.unix {
            assert!(!path.exists(), "the socket file is removed at shutdown");
        }
        std::fs::remove_dir_all(&self.dir).unwrap();
    }
}

pub fn assert_generic(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.raw);
    assert_eq!(
        reply.body,
        format!("{{\"error\":\"{code}\"}}"),
        "{}",
        reply.raw
    );
}

pub fn claims(now: u64) -> Claims {
    Claims {
        aud: AUDIENCE.into(),
        exp: now + 300,
        iat: now,
        iss: ISSUER.into(),
        jti: "jti-crafted".into(),
        scope: vec![Scope::CardsRead],
        sub: "app.crafted".into(),
    }
}

#[tokio::test]
async fn health_needs_no_token() {
    let h = Harness::start("health").await;
    for target in h.targets() {
        let reply = send(&target, &Request::get("/v1/health")).await;
        assert_eq!(reply.status, 200, "{}", reply.raw);
        assert_eq!(reply.json()["status"], "ok");
    }
    h.stop().await;
}

#[tokio::test]
async fn bad_tokens_get_401_with_no_detail() {
    let h = Harness::start("unauthorised").await;
    let now = h.now();
    let good = h.token("app.a", &[Scope::CardsRead]);
    let other_secret = Secret::from_bytes([0xA5; 32]);
    let bad_mac = danger::seal_unchecked(&other_secret, &claims(now));
    let mut wrong_aud = claims(now);
    wrong_aud.aud = "ykt-wallet-remote".into();
    let wrong_aud = danger::seal_unchecked(&test_secret(), &wrong_aud);
    let mut expired = claims(now - 600);
    expired.exp = now;
    let expired = danger::seal_unchecked(&test_secret(), &expired);
    let not_yet = danger::seal_unchecked(&test_secret(), &claims(now + 5));
    let mut long = claims(now);
    long.exp = now + 16 * 60;
    let long = danger::seal_unchecked(&test_secret(), &long);
    let mut tampered = good.clone().into_bytes();
    tampered[10] ^= 0x01;
    let tampered = String::from_utf8(tampered).unwrap();
    let revoked = token::issue(
        &test_secret(),
        "app.r",
        &[Scope::CardsRead],
        300,
        now,
        "jti-r",
    )
    .unwrap()
    .0;
    h.state.revoke("jti-r", now + 300);
    // A token revoked in a reloaded grant book, handed over whole.
    let reloaded = token::issue(
        &test_secret(),
        "app.b",
        &[Scope::CardsRead],
        300,
        now,
        "jti-b",
    )
    .unwrap()
    .0;
    let mut book = Revocations::new();
    book.revoke("jti-r", now + 300);
    book.revoke("jti-b", now + 300);
    h.state.set_revocations(book);

    let cases: Vec<(&str, Request)> = vec![
        ("no token", Request::get("/v1/cards")),
        (
            "bad MAC",
            Request::get("/v1/cards").bearer(bad_mac.as_str()),
        ),
        (
            "wrong aud",
            Request::get("/v1/cards").bearer(wrong_aud.as_str()),
        ),
        (
            "expired",
            Request::get("/v1/cards").bearer(expired.as_str()),
        ),
        (
            "not yet valid",
            Request::get("/v1/cards").bearer(not_yet.as_str()),
        ),
        (
            "lifetime over 15 min",
            Request::get("/v1/cards").bearer(long.as_str()),
        ),
        ("a flipped bit", Request::get("/v1/cards").bearer(&tampered)),
        (
            "revoked",
            Request::get("/v1/cards").bearer(revoked.as_str()),
        ),
        (
            "revoked in the book",
            Request::get("/v1/cards").bearer(reloaded.as_str()),
        ),
        ("garbage", Request::get("/v1/cards").bearer("not-a-token")),
        (
            "another scheme",
            Request::get("/v1/cards").header("Authorization", &format!("Basic {good}")),
        ),
        (
            "empty bearer",
            Request::get("/v1/cards").header("Authorization", "Bearer "),
        ),
        (
            "bad token on a top-up",
            Request::post("/v1/topups", "{\"card\":\"card-1\",\"amount_fen\":100}")
                .bearer(bad_mac.as_str()),
        ),
    ];
    for target in h.targets() {
        for (name, request) in &cases {
            let reply = send(&target, request).await;
            assert_generic(&reply, 401, "unauthorised");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{name}");
        }
        // The good token is taken on the same server.
        let reply = send(&target, &Request::get("/v1/cards").bearer(&good)).await;
        assert_eq!(reply.status, 200, "{}", reply.raw);
    }
    assert!(h.backend.topups().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn each_method_checks_its_scope() {
    let h = Harness::start("scope").await;
    let cases: [(Scope, Request); 4] = [
        (Scope::CardsRead, Request::get("/v1/cards")),
        (Scope::BalanceRead, Request::get("/v1/cards/card-1/balance")),
        (Scope::RecordsRead, Request::get("/v1/cards/card-1/records")),
        (
            Scope::TopupInitiate,
            Request::post("/v1/topups", "{\"card\":\"card-1\",\"amount_fen\":100}"),
        ),
    ];
    for target in h.targets() {
        for (needed, request) in &cases {
            // Every other scope together does not stand in for the one needed.
            let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| s != needed).collect();
            let app = format!("app.{}", needed.as_str().replace(':', "-"));
            let token = h.token(&app, &others);
            let reply = send(&target, &request.clone().bearer(&token)).await;
            assert_generic(&reply, 403, "forbidden");
            let token = h.token(&format!("{app}.ok"), &[*needed]);
            let reply = send(&target, &request.clone().bearer(&token)).await;
            assert!(
                reply.status == 200 || reply.status == 202,
                "{needed}: {}",
                reply.raw
            );
        }
        h.advance_ms(2_000);
    }
    h.stop().await;
}

// client.md §6.10: a locked wallet answers every method with 503 "locked" and no data; the
// token is still checked first (no token: 401), health still answers, and unlocking restores it.
#[tokio::test]
async fn a_locked_wallet_answers_503_locked() {
    let h = Harness::start("locked").await;
    let token = h.token("app.locked", &Scope::ALL);
    let requests = [
        Request::get("/v1/cards"),
        Request::get("/v1/cards/card-1/balance"),
        Request::get("/v1/cards/card-1/records"),
        Request::post("/v1/topups", "{\"card\":\"card-1\",\"amount_fen\":100}"),
    ];
    h.backend.set_locked(true);
    for target in h.targets() {
        for request in &requests {
            let reply = send(&target, &request.clone().bearer(&token)).await;
            assert_generic(&reply, 503, "locked");
            let reply = send(&target, request).await;
            assert_generic(&reply, 401, "unauthorised");
        }
        let reply = send(&target, &Request::get("/v1/health")).await;
        assert_eq!(reply.status, 200, "{}", reply.raw);
        h.advance_ms(2_000);
    }
    assert!(h.backend.topups().is_empty());
    h.backend.set_locked(false);
    let reply = send(&h.unix, &Request::get("/v1/cards").bearer(&token)).await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    h.stop().await;
}

#[tokio::test]
async fn host_not_on_the_allow_list_is_refused() {
    let h = Harness::start("host").await;
    let token = h.token("app.host", &[Scope::CardsRead]);
    let Target::Tcp(addr) = h.tcp.clone() else {
        unreachable!()
    };
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{}", addr.port()),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{}", addr.port() ^ 1),
        format!("localhost.evil.example:{}", addr.port()),
    ] {
        for path in ["/v1/cards", "/v1/health", "/nowhere"] {
            let reply = send(
                &h.tcp,
                &Request::get(path).bearer(&token).header("Host", &host),
            )
            .await;
            assert_generic(&reply, 403, "forbidden");
        }
    }
    // An absolute-form target naming another host is refused even with a good Host.
    let reply = send(
        &h.tcp,
        &Request::get("http://evil.example/v1/cards").bearer(&token),
    )
    .await;
    assert_generic(&reply, 403, "forbidden");
    let reply = send(
        &h.tcp,
        &Request::get(&format!("http://{addr}/v1/cards")).bearer(&token),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    for host in [
        format!("localhost:{}", addr.port()),
        format!("LOCALHOST:{}", addr.port()),
    ] {
        let reply = send(
            &h.tcp,
            &Request::get("/v1/cards")
                .bearer(&token)
                .header("Host", &host),
        )
        .await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.raw);
    }
    h.stop().await;
}

#[tokio::test]
async fn any_origin_header_is_refused() {
    let h = Harness::start("origin").await;
    let token = h.token("app.origin", &[Scope::CardsRead]);
    for target in h.targets() {
        for origin in ["https://evil.example", "null", "http://localhost", ""] {
            for path in ["/v1/cards", "/v1/health"] {
                let reply = send(
                    &target,
                    &Request::get(path).bearer(&token).header("Origin", origin),
                )
                .await;
                assert_generic(&reply, 403, "forbidden");
            }
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn a_burst_of_50_is_rate_limited() {
    let h = Harness::start("burst").await;
    for (i, target) in h.targets().into_iter().enumerate() {
        let token = h.token(&format!("app.burst{i}"), &[Scope::CardsRead]);
        let mut ok = 0;
        let mut limited = Vec::new();
        for _ in 0..50 {
            let reply = send(&target, &Request::get("/v1/cards").bearer(&token)).await;
            match reply.status {
                200 => ok += 1,
                429 => {
                    assert_generic(&reply, 429, "too_many_requests");
                    limited.push(reply.header("retry-after").unwrap().parse::<u64>().unwrap());
                }
                _ => panic!("{}", reply.raw),
            }
        }
        // The clock stands still: the burst and nothing more.
        assert_eq!(ok, BURST);
        assert_eq!(limited.len(), 50 - BURST as usize);
        assert!(limited.iter().all(|&s| s == 1), "{limited:?}");
        // Another caller is not held up, and a second later the first has 5 calls again.
        let other = h.token(&format!("app.other{i}"), &[Scope::CardsRead]);
        assert_eq!(
            send(&target, &Request::get("/v1/cards").bearer(&other))
                .await
                .status,
            200
        );
        h.advance_ms(1_000);
        let mut again = 0;
        for _ in 0..10 {
            if send(&target, &Request::get("/v1/cards").bearer(&token))
                .await
                .status
                == 200
            {
                again += 1;
            }
        }
        assert_eq!(again, 5);
    }
    h.stop().await;
}

#[tokio::test]
async fn a_fourth_top_up_in_an_hour_is_refused_and_none_is_confirmed() {
    let h = Harness::start("topup").await;
    let token = h.token("app.pay", &[Scope::TopupInitiate, Scope::BalanceRead]);
    let body = "{\"card\":\"card-1\",\"amount_fen\":1000}";
    let mut ids = Vec::new();
    for target in [&h.unix, &h.tcp, &h.unix] {
        let reply = send(target, &Request::post("/v1/topups", body).bearer(&token)).await;
        assert_eq!(reply.status, 202, "{}", reply.raw);
        let json = reply.json();
        assert_eq!(json["state"], "PENDING_USER");
        ids.push(json["id"].as_str().unwrap().to_string());
        h.advance_ms(60_000);
    }
    for target in h.targets() {
        let reply = send(&target, &Request::post("/v1/topups", body).bearer(&token)).await;
        assert_generic(&reply, 429, "too_many_requests");
        let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
        // The first left the window 3 minutes after it came: an hour minus the 3 minutes passed.
        assert_eq!(retry, TOPUP_WINDOW_SECS - 180);
    }
    // Three requests, each waiting for the user; the balance has not moved.
    let topups = h.backend.topups();
    assert_eq!(topups.len(), 3);
    for (id, request) in &topups {
        assert!(ids.contains(&id.0));
        assert_eq!(request.state, TopupState::PendingUser);
        assert_eq!(request.app, "app.pay");
        assert_eq!(request.amount_fen, 1000);
    }
    let reply = send(
        &h.unix,
        &Request::get("/v1/cards/card-1/balance").bearer(&token),
    )
    .await;
    assert_eq!(reply.json()["balance_fen"], 12_345);

    // An hour after the first, one more is taken; a token with a fresh lifetime is needed.
    h.advance_ms((TOPUP_WINDOW_SECS - 180) * 1000);
    let token = h.token("app.pay", &[Scope::TopupInitiate]);
    let reply = send(&h.tcp, &Request::post("/v1/topups", body).bearer(&token)).await;
    assert_eq!(reply.status, 202, "{}", reply.raw);
    let reply = send(&h.tcp, &Request::post("/v1/topups", body).bearer(&token)).await;
    assert_eq!(reply.status, 429, "{}", reply.raw);
    assert!(
        h.backend
            .topups()
            .values()
            .all(|r| r.state == TopupState::PendingUser)
    );
    h.stop().await;
}

#[tokio::test]
async fn malformed_top_ups_and_unknown_cards() {
    let h = Harness::start("badtopup").await;
    let token = h.token("app.bad", &Scope::ALL);
    let cases: [(Request, u16, &str); 10] = [
        (Request::post("/v1/topups", "not json"), 400, "bad_request"),
        (
            Request::post("/v1/topups", "{\"card\":\"card-1\"}"),
            400,
            "bad_request",
        ),
        (
            Request::post("/v1/topups", "{\"card\":\"card-1\",\"amount_fen\":0}"),
            400,
            "bad_request",
        ),
        (
            Request::post(
                "/v1/topups",
                "{\"card\":\"card-1\",\"amount_fen\":100000001}",
            ),
            400,
            "bad_request",
        ),
        (
            Request::post("/v1/topups", "{\"card\":\"card-1\",\"amount_fen\":-5}"),
            400,
            "bad_request",
        ),
        (
            Request::post("/v1/topups", "{\"card\":\"card/1\",\"amount_fen\":100}"),
            400,
            "bad_request",
        ),
        (
            Request::post(
                "/v1/topups",
                &format!(
                    "{{\"card\":\"card-1\",\"amount_fen\":100,\"pad\":\"{}\"}}",
                    "x".repeat(2000)
                ),
            ),
            413,
            "too_large",
        ),
        (
            Request::get("/v1/cards/no-such-card/balance"),
            404,
            "not_found",
        ),
        (Request::get("/v1/nowhere"), 404, "not_found"),
        (Request::get("/v1/topups"), 405, "method_not_allowed"),
    ];
    for (request, status, code) in cases {
        let reply = send(&h.unix, &request.bearer(&token)).await;
        assert_generic(&reply, status, code);
        h.advance_ms(1_000);
    }
    let reply = send(
        &h.unix,
        &Request::post("/v1/topups", "{\"card\":\"card-9\",\"amount_fen\":100}").bearer(&token),
    )
    .await;
    assert_generic(&reply, 404, "not_found");
    assert!(h.backend.topups().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn responses_carry_only_masked_data() {
    let h = Harness::start("canary").await;
    let token = h.token("app.all", &Scope::ALL);
    let mut replies = Vec::new();
    for target in h.targets() {
        let cards = send(&target, &Request::get("/v1/cards").bearer(&token)).await;
        assert_eq!(cards.status, 200, "{}", cards.raw);
        let json = cards.json();
        assert_eq!(json["cards"][0]["id"], "card-1");
        assert_eq!(json["cards"][0]["number"], CANARY_MASKED);
        assert_eq!(json["cards"][0]["label"], "Shanghai transit");
        assert_eq!(json["cards"][1]["number"], "310098******1098");
        let balance = send(
            &target,
            &Request::get("/v1/cards/card-1/balance").bearer(&token),
        )
        .await;
        assert_eq!(balance.json()["balance_fen"], 12_345);
        let records = send(
            &target,
            &Request::get("/v1/cards/card-1/records").bearer(&token),
        )
        .await;
        let json = records.json();
        assert_eq!(json["records"][0]["kind"], "purchase");
        assert_eq!(json["records"][0]["amount_fen"], 200);
        assert_eq!(json["records"][1]["kind"], "load");
        assert_eq!(json["records"][1]["time"], NOW - 3600);
        let topup = send(
            &target,
            &Request::post("/v1/topups", "{\"card\":\"card-1\",\"amount_fen\":500}").bearer(&token),
        )
        .await;
        assert_eq!(topup.status, 202);
        let refused = send(&target, &Request::get("/v1/cards/card-1/balance")).await;
        assert_eq!(refused.status, 401);
        replies.extend([cards, balance, records, topup, refused]);
        h.advance_ms(3_000);
    }
    let forms = [
        CANARY.to_string(),
        SECOND.to_string(),
        "3456789".to_string(),
        hex_of(CANARY),
        base64::engine::general_purpose::STANDARD.encode(CANARY),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(CANARY),
        // The number as a decimal integer, as a JSON number would carry it.
        CANARY.parse::<u64>().unwrap().to_string(),
    ];
    for reply in &replies {
        for form in &forms {
            assert!(
                !reply.raw.contains(form.as_str()),
                "{form} in {}",
                reply.raw
            );
        }
    }
    h.stop().await;
}

fn hex_of(text: &str) -> String {
    hex::encode(text.as_bytes())
}

#[test]
fn the_uid_decision() {
    for (peer, owner, allowed) in [
        (Some(1000), 1000, true),
        (Some(0), 0, true),
        (Some(1001), 1000, false),
        (Some(0), 1000, false),
        (Some(1000), 0, false),
        (None, 1000, false),
        (None, 0, false),
    ] {
        assert_eq!(
            peer_allowed(PeerUid(peer), owner),
            allowed,
            "{peer:?} {owner}"
        );
    }
}

/// A connection from another uid cannot be made without privileges, so the server is told to
/// expect another uid than ours: our own connection is then the foreign one.
#[tokio::test]
async fn a_caller_of_another_uid_is_refused_on_the_socket() {
    let probe = Harness::start("uid-probe").await;
    let own = probe.owner_uid;
    probe.stop().await;
    let h = Harness::start_with("uid", Some(own.wrapping_add(1))).await;
    let token = h.token("app.uid", &[Scope::CardsRead]);
    for path in ["/v1/health", "/v1/cards"] {
        let reply = send(&h.unix, &Request::get(path).bearer(&token)).await;
        assert_generic(&reply, 403, "forbidden");
    }
    // The TCP side has no uid check and still answers.
    let reply = send(&h.tcp, &Request::get("/v1/cards").bearer(&token)).await;
    assert_eq!(reply.status, 200);
    h.stop().await;
}

/// With root and curl at hand, a real connection from another uid: the socket is opened up to
/// everyone for the test (mode 0666 in a 0755 directory) so only the peer-uid check stands in
/// the way. Without them the test says so and checks nothing more than the tests above.
#[tokio::test]
async fn a_real_caller_of_another_uid_is_refused() {
    const CURL: &str = "/usr/bin/curl";
    const NOBODY: u32 = 65534;
    let h = Harness::start("uid-real").await;
    if h.owner_uid != 0 || !std::path::Path::new(CURL).exists() {
        eprintln!("skipped: a connection from another uid needs root and {CURL}");
        h.stop().await;
        return;
    }
    let Target::Unix(path) = h.unix.clone() else {
        unreachable!()
    };
    std::fs::set_permissions(&h.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let curl = |uid: Option<u32>| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            use std::os::unix::process::CommandExt as _;
            let mut command = std::process::Command::new(CURL);
            command
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--unix-socket",
                ])
                .arg(&path)
                .arg("http://localhost/v1/health");
            if let Some(uid) = uid {
                command.uid(uid).gid(uid);
            }
            let out = command.output().unwrap();
            String::from_utf8(out.stdout).unwrap()
        })
    };
    assert_eq!(curl(Some(NOBODY)).await.unwrap(), "403");
    assert_eq!(curl(None).await.unwrap(), "200");
    h.stop().await;
}

#[tokio::test]
async fn the_socket_is_0600_and_owned_by_us() {
    let h = Harness::start("mode").await;
    let Target::Unix(path) = h.unix.clone() else {
        unreachable!()
    };
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), h.owner_uid);
    // No staging directory is left next to it.
    let names: Vec<_> = std::fs::read_dir(&h.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("ykt-wallet.sock")]);
    h.stop().await;
}

#[tokio::test]
async fn binding_over_stale_live_and_foreign_files() {
    let dir = temp_dir("bind");
    // A stale socket (its server gone) is replaced.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let server = UnixServer::bind(&stale).unwrap();
    // A live one is not.
    assert!(matches!(
        UnixServer::bind(&stale),
        Err(ServeError::InUse(_))
    ));
    drop(server);
    // A regular file is left alone.
    let file = dir.join("file.sock");
    std::fs::write(&file, b"keep me").unwrap();
    assert!(matches!(
        UnixServer::bind(&file),
        Err(ServeError::NotASocket(_))
    ));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn serve_runs_both_listeners_until_shutdown() {
    crate::logs::capture();
    let dir = temp_dir("serve");
    let path = dir.join("ykt-wallet.sock");
    let state = AppState::new(test_secret(), Revocations::new(), Arc::new(backend()));
    let unix = UnixServer::bind(&path).unwrap();
    let tcp = TcpServer::bind(0).await.unwrap();
    let targets = [Target::Unix(path.clone()), Target::Tcp(tcp.local_addr())];
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(unix, Some(tcp), state, async move {
        let _ = stopped.await;
    }));
    // The system clock: a token issued now is valid now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = token::issue(
        &test_secret(),
        "app.serve",
        &[Scope::CardsRead],
        60,
        now,
        "jti-s",
    )
    .unwrap()
    .0;
    for target in &targets {
        let reply = send(target, &Request::get("/v1/cards").bearer(token.as_str())).await;
        assert_eq!(reply.status, 200, "{}", reply.raw);
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(!path.exists());
    assert!(
        tokio::net::TcpStream::connect(match &targets[1] {
            Target::Tcp(addr) => *addr,
            Target::Unix(_) => unreachable!(),
        })
        .await
        .is_err()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
