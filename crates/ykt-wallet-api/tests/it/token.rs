//! Tokens: round trip, each refusal its own error, bit flips, the HMAC-SM3 vectors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ykt_wallet_api::proposals::{AUDIENCE, ISSUER, MAX_TTL_SECS};
use ykt_wallet_api::token::{self, danger, hmac_sm3};
use ykt_wallet_api::{Claims, IssueError, Revocations, Scope, Secret, Token, TokenError, Verifier};

use crate::{field, read_vectors, test_secret};

const NOW: u64 = 1_767_225_600;
const JTI: &str = "00112233445566778899aabbccddeeff";
const APP: &str = "com.example.fare-app";

fn claims() -> Claims {
    Claims {
        aud: AUDIENCE.to_string(),
        exp: NOW + 300,
        iat: NOW,
        iss: ISSUER.to_string(),
        jti: JTI.to_string(),
        scope: vec![Scope::BalanceRead, Scope::RecordsRead],
        sub: APP.to_string(),
    }
}

fn verifier() -> Verifier {
    Verifier::new(test_secret(), Revocations::new())
}

fn issue(ttl: u64) -> Token {
    token::issue(
        &test_secret(),
        APP,
        &[Scope::RecordsRead, Scope::BalanceRead],
        ttl,
        NOW,
        JTI,
    )
    .unwrap()
    .0
}

#[test]
fn round_trip() {
    let (token, issued) = token::issue(
        &test_secret(),
        APP,
        &[Scope::RecordsRead, Scope::BalanceRead, Scope::RecordsRead],
        300,
        NOW,
        JTI,
    )
    .unwrap();
    assert_eq!(issued, claims(), "scopes sorted, repeats dropped");
    let checked = verifier()
        .check(token.as_str().as_bytes(), NOW + 10)
        .unwrap();
    assert_eq!(checked, issued);
    assert_eq!(
        verifier()
            .authorise(token.as_str().as_bytes(), Scope::BalanceRead, NOW)
            .unwrap(),
        issued
    );
}

#[test]
fn the_token_payload_and_mac_match_openssl() {
    let vectors = read_vectors(include_str!("../data/hmac_sm3_openssl.txt"));
    let payload_vector = vectors.last().unwrap();
    let token = issue(300);
    let (payload, mac) = token.as_str().split_once('.').unwrap();
    let payload = URL_SAFE_NO_PAD.decode(payload).unwrap();
    let mac = URL_SAFE_NO_PAD.decode(mac).unwrap();
    assert_eq!(hex::encode(&payload), field(payload_vector, "message"));
    assert_eq!(hex::encode(&mac), field(payload_vector, "mac"));
    assert_eq!(
        field(payload_vector, "key"),
        hex::encode(test_secret().expose())
    );
}

#[test]
fn hmac_sm3_matches_openssl() {
    let vectors = read_vectors(include_str!("../data/hmac_sm3_openssl.txt"));
    assert_eq!(vectors.len(), 5);
    for block in vectors {
        let key = hex::decode(field(&block, "key")).unwrap();
        let message = hex::decode(field(&block, "message")).unwrap();
        assert_eq!(
            hex::encode(hmac_sm3(&key, &message)),
            field(&block, "mac"),
            "key {} message {} bytes",
            key.len(),
            message.len()
        );
    }
}

/// RFC 2104 written out over ykt-crypto's SM3 (block 64 bytes).
fn rfc2104(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&ykt_crypto::sm3(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = ykt_crypto::Sm3::new();
    inner.update(&k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = ykt_crypto::Sm3::new();
    outer.update(&k.map(|b| b ^ 0x5c));
    outer.update(&inner.finalize());
    outer.finalize()
}

#[test]
fn hmac_sm3_is_rfc_2104_over_sm3() {
    for key_len in [0, 1, 16, 32, 63, 64, 65, 100, 200] {
        for message_len in [0, 1, 55, 56, 64, 65, 300] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
            let message: Vec<u8> = (0..message_len).map(|i| (i * 13 + 1) as u8).collect();
            assert_eq!(
                hmac_sm3(&key, &message),
                rfc2104(&key, &message),
                "key {key_len} message {message_len}"
            );
        }
    }
}

/// Each refusal, the token that provokes it, and the time of the check.
#[test]
fn each_refusal_is_its_own_error() {
    let other_secret = Secret::from_bytes([0x55; 32]);
    let mut revoked = verifier();
    revoked.revoke(JTI, NOW + 300);
    let with = |f: fn(&mut Claims)| {
        let mut c = claims();
        f(&mut c);
        danger::seal_unchecked(&test_secret(), &c)
    };
    let cases: Vec<(&str, Token, Verifier, u64, TokenError)> = vec![
        (
            "bad MAC",
            danger::seal_unchecked(&other_secret, &claims()),
            verifier(),
            NOW,
            TokenError::BadMac,
        ),
        (
            "expired",
            issue(300),
            verifier(),
            NOW + 300,
            TokenError::Expired,
        ),
        (
            "not yet valid",
            issue(300),
            verifier(),
            NOW - 1,
            TokenError::NotYetValid,
        ),
        (
            "wrong aud",
            with(|c| c.aud = "ykt-wallet-remote".into()),
            verifier(),
            NOW,
            TokenError::WrongAudience,
        ),
        (
            "wrong iss",
            with(|c| c.iss = "another-wallet".into()),
            verifier(),
            NOW,
            TokenError::WrongIssuer,
        ),
        (
            "lifetime over 15 min",
            with(|c| c.exp = c.iat + MAX_TTL_SECS + 1),
            verifier(),
            NOW,
            TokenError::LifetimeTooLong,
        ),
        ("revoked", issue(300), revoked, NOW, TokenError::Revoked),
        (
            "no scope",
            with(|c| c.scope = vec![]),
            verifier(),
            NOW,
            TokenError::Malformed,
        ),
    ];
    let mut seen = Vec::new();
    for (name, token, verifier, now, expected) in cases {
        assert_eq!(
            verifier.check(token.as_str().as_bytes(), now),
            Err(expected),
            "{name}"
        );
        seen.push(expected);
    }
    // Missing scope: a valid token asked for a scope it does not grant.
    let missing = verifier().authorise(issue(300).as_str().as_bytes(), Scope::TopupInitiate, NOW);
    assert_eq!(missing, Err(TokenError::MissingScope(Scope::TopupInitiate)));
    seen.push(missing.unwrap_err());
    seen.dedup();
    let mut distinct = seen.clone();
    distinct.sort_by_key(|e| format!("{e:?}"));
    distinct.dedup();
    // Every case is a variant of its own.
    assert_eq!(distinct.len(), 9, "{distinct:?}");
    // The lifetime is checked as well as the clock: a 16-minute token is refused inside it.
    let long = with(|c| c.exp = c.iat + MAX_TTL_SECS + 60);
    assert_eq!(
        verifier().check(long.as_str().as_bytes(), NOW + 1),
        Err(TokenError::LifetimeTooLong)
    );
}

#[test]
fn the_last_valid_second_and_the_first_invalid_one() {
    let token = issue(MAX_TTL_SECS);
    let text = token.as_str().as_bytes();
    assert!(verifier().check(text, NOW).is_ok());
    assert!(verifier().check(text, NOW + MAX_TTL_SECS - 1).is_ok());
    assert_eq!(
        verifier().check(text, NOW + MAX_TTL_SECS),
        Err(TokenError::Expired)
    );
}

#[test]
fn a_one_bit_flip_anywhere_is_refused() {
    let token = issue(300);
    let text = token.as_str().as_bytes();
    let v = verifier();
    assert!(v.check(text, NOW).is_ok());
    for i in 0..text.len() {
        for bit in 0..8 {
            let mut flipped = text.to_vec();
            flipped[i] ^= 1 << bit;
            assert!(
                v.check(&flipped, NOW).is_err(),
                "byte {i} bit {bit} accepted"
            );
        }
    }
}

#[test]
fn malformed_texts_are_refused_without_panic() {
    let token = issue(300);
    let text = token.as_str();
    let (payload, mac) = text.split_once('.').unwrap();
    let long = "A".repeat(5000);
    let cases = [
        String::new(),
        ".".into(),
        payload.into(),
        format!("{payload}."),
        format!("{payload}.{mac}="),
        format!("{payload}={}.{mac}", ""),
        format!("{payload}.{mac}.{mac}"),
        format!("{payload}.{}", &mac[..mac.len() - 1]),
        format!("{payload} .{mac}"),
        format!("{long}.{mac}"),
    ];
    for case in cases {
        assert_eq!(
            verifier().check(case.as_bytes(), NOW),
            Err(TokenError::Malformed),
            "{case:?}"
        );
    }
    // An empty payload decodes, and its MAC is then the wrong one.
    assert_eq!(
        verifier().check(format!(".{mac}").as_bytes(), NOW),
        Err(TokenError::BadMac)
    );
}

#[test]
fn a_non_canonical_payload_is_refused_even_with_a_good_mac() {
    let canonical = claims_payload();
    let variants = [
        canonical.replace(",", ", "),
        canonical.replace("{\"aud", "{ \"aud"),
        // Members out of order.
        canonical.replacen(
            "\"aud\":\"ykt-wallet-local\",\"exp\":1767225900",
            "\"exp\":1767225900,\"aud\":\"ykt-wallet-local\"",
            1,
        ),
        // An unknown member.
        canonical.replace("}", ",\"x\":1}"),
        // An unknown scope, scopes out of order, a scope twice.
        canonical.replace("records:read", "records:write"),
        canonical.replace(
            "[\"balance:read\",\"records:read\"]",
            "[\"records:read\",\"balance:read\"]",
        ),
        canonical.replace(
            "[\"balance:read\",\"records:read\"]",
            "[\"balance:read\",\"balance:read\",\"records:read\"]",
        ),
        // A number written another way.
        canonical.replace("1767225900", "1767225900.0"),
    ];
    for payload in variants {
        assert_ne!(payload, canonical);
        let tag = hmac_sm3(test_secret().expose(), payload.as_bytes());
        let text = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(tag)
        );
        assert_eq!(
            verifier().check(text.as_bytes(), NOW),
            Err(TokenError::Malformed),
            "{payload}"
        );
    }
    // The canonical payload itself, sealed the same way, is taken.
    let tag = hmac_sm3(test_secret().expose(), canonical.as_bytes());
    let text = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(canonical.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    );
    assert!(verifier().check(text.as_bytes(), NOW).is_ok());
}

fn claims_payload() -> String {
    String::from_utf8(claims().canonical()).unwrap()
}

#[test]
fn issue_enforces_the_limits() {
    let secret = test_secret();
    let all = [Scope::CardsRead];
    type Case<'a> = (&'a str, &'a [Scope], u64, &'a str, Result<(), IssueError>);
    let cases: [Case<'_>; 9] = [
        (APP, &all, MAX_TTL_SECS, JTI, Ok(())),
        (APP, &all, 1, JTI, Ok(())),
        (
            APP,
            &all,
            MAX_TTL_SECS + 1,
            JTI,
            Err(IssueError::TtlTooLong),
        ),
        (APP, &all, 0, JTI, Err(IssueError::ZeroTtl)),
        (APP, &[], 60, JTI, Err(IssueError::NoScope)),
        ("", &all, 60, JTI, Err(IssueError::BadAppId)),
        ("app\"x", &all, 60, JTI, Err(IssueError::BadAppId)),
        (APP, &all, 60, "", Err(IssueError::BadJti)),
        (APP, &all, 60, "a b", Err(IssueError::BadJti)),
    ];
    for (app, scopes, ttl, jti, expected) in cases {
        assert_eq!(
            token::issue(&secret, app, scopes, ttl, NOW, jti).map(|_| ()),
            expected,
            "{app} {scopes:?} {ttl} {jti}"
        );
    }
    let long_app = "a".repeat(129);
    assert_eq!(
        token::issue(&secret, &long_app, &all, 60, NOW, JTI).map(|_| ()),
        Err(IssueError::BadAppId)
    );
}

#[test]
fn scopes_by_name() {
    for scope in Scope::ALL {
        assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        assert_eq!(
            serde_json::to_string(&scope).unwrap(),
            format!("\"{}\"", scope.as_str())
        );
    }
    assert!("topup:confirm".parse::<Scope>().is_err());
    assert!("".parse::<Scope>().is_err());
}

#[test]
fn secrets_and_tokens_print_redacted() {
    let secret = test_secret();
    let token = issue(300);
    assert_eq!(format!("{secret:?}"), "Secret([redacted])");
    assert_eq!(format!("{token:?}"), "Token([redacted])");
    let (payload, mac) = token.as_str().split_once('.').unwrap();
    for printed in [format!("{secret:?}"), format!("{token:?}")] {
        assert!(!printed.contains(payload) && !printed.contains(mac));
        assert!(!printed.contains("0001020304"));
    }
}

#[test]
fn revocations_are_pruned_after_expiry() {
    let mut list = Revocations::new();
    list.revoke("a", 100);
    list.revoke("b", 200);
    list.prune(100);
    assert!(!list.contains("a") && list.contains("b"));
    list.prune(200);
    assert!(list.is_empty());
    let json = serde_json::to_string(&list).unwrap();
    assert_eq!(serde_json::from_str::<Revocations>(&json).unwrap(), list);
}
