//! The log canary (client.md §6.8, R1, R2): every call, good and refused, with a subscriber
//! that captures every event and span field at every level; no card number, token or secret
//! may appear in it, in any of their printed forms.
//!
//! The subscriber is the test binary's global one, installed before any server starts
//! ([`capture`], called by every harness), so it sees the log of every server test and no
//! event is lost to a callsite whose interest was cached while no subscriber was listening.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use ykt_wallet_api::Scope;
use ykt_wallet_api::token::danger;

use crate::http::{Request, send};
use crate::server::{CANARY, Harness, SECOND, claims};
use crate::test_secret;

/// The captured log.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<String>>);

/// The binary's capturing subscriber, installed on first use.
pub fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        tracing::subscriber::set_global_default(capture.clone()).unwrap();
        capture
    })
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut log = self.0.lock().unwrap();
        let _ = write!(log, "span {}", span.metadata().name());
        span.record(&mut Fields(&mut log));
        log.push('\n');
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut log = self.0.lock().unwrap();
        values.record(&mut Fields(&mut log));
        log.push('\n');
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut log = self.0.lock().unwrap();
        let _ = write!(
            log,
            "{} {}",
            event.metadata().level(),
            event.metadata().target()
        );
        event.record(&mut Fields(&mut log));
        log.push('\n');
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn no_card_number_token_or_secret_reaches_the_log() {
    let capture = capture();
    let h = Harness::start("logs").await;
    let now = h.now();
    let good = h.token("app.logs", &Scope::ALL);
    let narrow = h.token("app.narrow", &[Scope::CardsRead]);
    let mut wrong_aud = claims(now);
    wrong_aud.aud = "elsewhere".into();
    let wrong_aud = danger::seal_unchecked(&test_secret(), &wrong_aud);
    let mut tampered = good.clone().into_bytes();
    tampered[20] ^= 0x02;
    let tampered = String::from_utf8(tampered).unwrap();
    let topup = "{\"card\":\"card-1\",\"amount_fen\":300}";
    for target in h.targets() {
        let requests = [
            Request::get("/v1/cards").bearer(&good),
            Request::get("/v1/cards/card-1/balance").bearer(&good),
            Request::get("/v1/cards/card-1/records").bearer(&good),
            Request::post("/v1/topups", topup).bearer(&good),
            Request::get("/v1/cards").bearer(&tampered),
            Request::get("/v1/cards").bearer(wrong_aud.as_str()),
            Request::get("/v1/cards/card-1/balance").bearer(&narrow),
            Request::get("/v1/cards")
                .bearer(&good)
                .header("Origin", "https://evil.example"),
            Request::get("/v1/cards")
                .bearer(&good)
                .header("Host", "evil.example"),
            Request::get(&format!("/v1/cards/{CANARY}/balance")).bearer(&good),
        ];
        for request in &requests {
            send(&target, request).await;
        }
        for _ in 0..15 {
            send(&target, &Request::get("/v1/cards").bearer(&narrow)).await;
        }
        for _ in 0..4 {
            send(&target, &Request::post("/v1/topups", topup).bearer(&good)).await;
        }
        h.advance_ms(3_000);
    }
    h.stop().await;

    let log = capture.0.lock().unwrap().clone();
    // The capture works: the refusals and the top-ups are there.
    for expected in [
        "token refused",
        "outside the token's scopes",
        "Origin header refused",
        "Host not on the allow-list",
        "rate-limited",
        "top-up limit reached",
        "top-up requested",
    ] {
        assert!(log.contains(expected), "{expected:?} not logged:\n{log}");
    }
    let secret = test_secret();
    let mut canaries = vec![
        CANARY.to_string(),
        SECOND.to_string(),
        hex::encode(CANARY),
        STANDARD.encode(CANARY),
        hex::encode(secret.expose()),
        STANDARD.encode(secret.expose()),
        URL_SAFE_NO_PAD.encode(secret.expose()),
        format!("{:?}", secret.expose()),
    ];
    for token in [&good, &narrow, &tampered, &wrong_aud.as_str().to_string()] {
        let (payload, mac) = token.split_once('.').unwrap();
        canaries.extend([payload.to_string(), mac.to_string()]);
    }
    for canary in &canaries {
        assert!(
            !log.contains(canary.as_str()),
            "{canary} in the log:\n{log}"
        );
    }
}
