//! The grant book: issue, list, revoke, persist.

use ykt_wallet_api::proposals::MAX_TTL_SECS;
use ykt_wallet_api::{GrantBook, GrantError, GrantState, Scope, TokenError, Verifier, grant};

use crate::test_secret;

const NOW: u64 = 1_800_000_000;

#[test]
fn issue_list_revoke() {
    let secret = test_secret();
    let mut book = GrantBook::new();
    let a = book
        .issue(&secret, "app.a", &[Scope::BalanceRead], 300, NOW)
        .unwrap();
    let b = book
        .issue(
            &secret,
            "app.b",
            &[Scope::CardsRead, Scope::TopupInitiate],
            60,
            NOW,
        )
        .unwrap();
    let list = book.list(NOW);
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|s| s.state == GrantState::Active));
    assert_ne!(list[0].grant.jti, list[1].grant.jti);
    assert_eq!(
        list[1].grant.scope,
        [Scope::CardsRead, Scope::TopupInitiate]
    );
    assert_eq!(list[1].grant.exp, NOW + 60);

    let jti_a = list[0].grant.jti.clone();
    book.revoke(&jti_a).unwrap();
    book.revoke(&jti_a).unwrap();
    let states: Vec<_> = book.list(NOW + 61).iter().map(|s| s.state).collect();
    assert_eq!(states, [GrantState::Revoked, GrantState::Expired]);
    assert!(matches!(book.revoke("nope"), Err(GrantError::UnknownGrant)));

    let verifier = Verifier::new(test_secret(), book.revocations().clone());
    assert_eq!(
        verifier.check(a.as_str().as_bytes(), NOW + 1),
        Err(TokenError::Revoked)
    );
    assert!(verifier.check(b.as_str().as_bytes(), NOW + 1).is_ok());

    // The book persists (the caller's file), and a reloaded book revokes the same tokens.
    let json = serde_json::to_string(&book).unwrap();
    assert!(!json.contains(a.as_str()) && !json.contains(b.as_str()));
    let reloaded: GrantBook = serde_json::from_str(&json).unwrap();
    assert_eq!(reloaded, book);

    assert_eq!(book.revoke_app("app.b"), 1);
    book.prune(NOW + 300);
    assert!(book.list(NOW + 300).is_empty());
    assert!(book.revocations().is_empty());
}

#[test]
fn the_free_issue_refuses_long_lifetimes() {
    let secret = test_secret();
    assert!(grant::issue(&secret, "app", &[Scope::CardsRead], MAX_TTL_SECS, NOW).is_ok());
    assert!(matches!(
        grant::issue(&secret, "app", &[Scope::CardsRead], MAX_TTL_SECS + 1, NOW),
        Err(GrantError::Issue(_))
    ));
}

#[test]
fn new_secrets_differ() {
    let a = grant::new_secret().unwrap();
    let b = grant::new_secret().unwrap();
    assert_ne!(a.expose(), b.expose());
    assert_ne!(a.expose(), &[0u8; 32]);
}
