//! User-facing error text (client.md §6.9, R8): every variant has an `Exxxx` code and a plain
//! sentence with no status word, card data or digits of either.

use ykt_envelope::Code;
use ykt_tsm::FlowKind;
use ykt_wallet::*;

fn every_error() -> Vec<WalletError> {
    let mut all = vec![
        WalletError::NotEnrolled,
        WalletError::AlreadyEnrolled,
        WalletError::UnknownCard,
        WalletError::UnknownFlow,
        WalletError::Link(LinkError::Unreachable),
        WalletError::Link(LinkError::Timeout),
        WalletError::Link(LinkError::Malformed),
        WalletError::BadSignature,
        WalletError::Stale,
        WalletError::Protocol,
        WalletError::FlowFailed {
            kind: FlowKind::TopUp,
            instance_state: "FAILED_CREDIT_LOAD".into(),
        },
        WalletError::FlowFailed {
            kind: FlowKind::OpenCard,
            instance_state: "FAILED_CREATE_SSD".into(),
        },
        WalletError::Se(SeError::NotPresent),
        WalletError::Se(SeError::Communication),
        WalletError::CardRefused { sw: [0x6A, 0x82] },
        WalletError::Persist(PersistError::new()),
        WalletError::State(StateError::Seal(SealError::WrongPassphrase)),
        WalletError::State(StateError::Seal(SealError::StoreCorrupt(
            Corruption::Checksum,
        ))),
        WalletError::State(StateError::Malformed),
        WalletError::Random,
        WalletError::Locked,
        WalletError::UnlockRequired,
    ];
    all.extend(
        [
            Member::TxnId,
            Member::RequestId,
            Member::Sender,
            Member::Receiver,
            Member::MessageType,
            Member::TsmKey,
        ]
        .map(WalletError::Mismatch),
    );
    all.extend(
        Code::ALL
            .iter()
            .filter(|c| **c != Code::Ok)
            .map(|c| WalletError::Refused(*c)),
    );
    all
}

#[test]
fn every_variant_has_a_code_and_a_plain_sentence() {
    for e in every_error() {
        let (code, sentence) = e.user_text();
        assert!(
            code.len() == 5
                && code.starts_with('E')
                && code[1..].bytes().all(|b| b.is_ascii_digit()),
            "{e:?}: {code}"
        );
        assert!(sentence.ends_with('.') && sentence.len() > 10, "{e:?}");
        assert!(
            !sentence.bytes().any(|b| b.is_ascii_digit()),
            "{e:?}: {sentence}"
        );
        assert_eq!(e.to_string(), sentence);
        assert!(!format!("{e:?}").contains("3100123456789012"));
    }
}

#[test]
fn user_codes_by_kind() {
    for (e, code) in [
        (WalletError::Link(LinkError::Timeout), "E1000"),
        (WalletError::BadSignature, "E1100"),
        (WalletError::Mismatch(Member::TxnId), "E1100"),
        (WalletError::Refused(Code::Duplicate), "E9999"),
        (WalletError::Refused(Code::SeMemory), "E3002"),
        (
            WalletError::FlowFailed {
                kind: FlowKind::TopUp,
                instance_state: String::new(),
            },
            "E4001",
        ),
        (WalletError::CardRefused { sw: [0x94, 0x01] }, "E6002"),
        (
            WalletError::State(StateError::Seal(SealError::WrongPassphrase)),
            "E7002",
        ),
        (
            WalletError::State(StateError::Seal(SealError::StoreCorrupt(
                Corruption::Record,
            ))),
            "E7003",
        ),
    ] {
        assert_eq!(e.user_code(), code, "{e:?}");
    }
    assert_eq!(
        WalletError::CardRefused { sw: [0x94, 0x01] }.status_word(),
        Some([0x94, 0x01])
    );
    let top_up = WalletError::FlowFailed {
        kind: FlowKind::TopUp,
        instance_state: String::new(),
    };
    assert!(
        top_up
            .user_message()
            .starts_with("Top-up being confirmed; don't delete the card")
    );
}
