//! The inter-platform bodies' words for the vault's types (`ykt_tsm::api` keeps plain strings,
//! so that the wire format is written down in one place: here).

use ykt_tsm::VaultError;
use ykt_tsm::vault::{ReceiptContext, TokenKind};
use ykt_tsm::vault::{StaticKeyKind, StaticKeyRole};

/// A token kind's word (`AcquireTokenReq.kind`, `ReceiptVerifyReq.kind`).
pub(crate) fn token_kind_name(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Load => "LOAD",
        TokenKind::Install => "INSTALL",
        TokenKind::MakeSelectable => "MAKE_SELECTABLE",
        TokenKind::Extradition => "EXTRADITION",
        TokenKind::RegistryUpdate => "REGISTRY_UPDATE",
        _ => "DELETE",
    }
}

/// The token kind of a word.
pub(crate) fn token_kind(name: &str) -> Option<TokenKind> {
    TokenKind::ALL
        .into_iter()
        .find(|k| token_kind_name(*k) == name)
}

/// A receipt context as its kind's word and its AIDs in field order.
pub(crate) fn receipt_parts<'a>(context: &ReceiptContext<'a>) -> (&'static str, Vec<&'a [u8]>) {
    let aids = match *context {
        ReceiptContext::Load { elf_aid, sd_aid } => vec![elf_aid, sd_aid],
        ReceiptContext::Install {
            elf_aid,
            instance_aid,
        } => vec![elf_aid, instance_aid],
        ReceiptContext::MakeSelectable { instance_aid } => vec![instance_aid],
        ReceiptContext::Extradition { sd_aid, app_aid }
        | ReceiptContext::RegistryUpdate { sd_aid, app_aid } => vec![sd_aid, app_aid],
        ReceiptContext::Delete { aid } => vec![aid],
        _ => Vec::new(),
    };
    (token_kind_name(context.kind()), aids)
}

/// The receipt context of a kind's word and its AIDs (`None` if they do not fit).
pub(crate) fn receipt_context<'a>(kind: &str, aids: &[&'a [u8]]) -> Option<ReceiptContext<'a>> {
    Some(match (token_kind(kind)?, aids) {
        (TokenKind::Load, &[elf_aid, sd_aid]) => ReceiptContext::Load { elf_aid, sd_aid },
        (TokenKind::Install, &[elf_aid, instance_aid]) => ReceiptContext::Install {
            elf_aid,
            instance_aid,
        },
        (TokenKind::MakeSelectable, &[instance_aid]) => {
            ReceiptContext::MakeSelectable { instance_aid }
        }
        (TokenKind::Extradition, &[sd_aid, app_aid]) => {
            ReceiptContext::Extradition { sd_aid, app_aid }
        }
        (TokenKind::RegistryUpdate, &[sd_aid, app_aid]) => {
            ReceiptContext::RegistryUpdate { sd_aid, app_aid }
        }
        (TokenKind::Delete, &[aid]) => ReceiptContext::Delete { aid },
        _ => return None,
    })
}

/// A static key kind as `(algorithm, key length)`.
pub(crate) fn key_kind_parts(kind: StaticKeyKind) -> (&'static str, u8) {
    match kind {
        StaticKeyKind::Tdes => ("TDES", 16),
        StaticKeyKind::Aes(n) => ("AES", u8::try_from(n).unwrap_or(0)),
        _ => ("SM4", 16),
    }
}

/// The static key kind of `(algorithm, key length)`.
pub(crate) fn key_kind(algorithm: &str, key_len: u8) -> Option<StaticKeyKind> {
    match (algorithm, key_len) {
        ("TDES", 16) => Some(StaticKeyKind::Tdes),
        ("AES", 16 | 24 | 32) => Some(StaticKeyKind::Aes(usize::from(key_len))),
        ("SM4", 16) => Some(StaticKeyKind::Sm4),
        _ => None,
    }
}

/// A static key role's word.
pub(crate) fn key_role_name(role: StaticKeyRole) -> &'static str {
    match role {
        StaticKeyRole::Enc => "ENC",
        StaticKeyRole::Mac => "MAC",
        _ => "DEK",
    }
}

/// The static key role of a word.
pub(crate) fn key_role(name: &str) -> Option<StaticKeyRole> {
    match name {
        "ENC" => Some(StaticKeyRole::Enc),
        "MAC" => Some(StaticKeyRole::Mac),
        "DEK" => Some(StaticKeyRole::Dek),
        _ => None,
    }
}

/// Every vault error with its word, which a refusal's `result.msg` carries after
/// [`VAULT_PREFIX`].
const VAULT_ERRORS: [(VaultError, &str); 9] = [
    (VaultError::UnknownKey, "UNKNOWN_KEY"),
    (VaultError::KeyExists, "KEY_EXISTS"),
    (VaultError::KeyType, "KEY_TYPE"),
    (VaultError::Mac1Invalid, "MAC1_INVALID"),
    (VaultError::TacInvalid, "TAC_INVALID"),
    (VaultError::ReceiptInvalid, "RECEIPT_INVALID"),
    (VaultError::ReceiptMissing, "RECEIPT_MISSING"),
    (VaultError::Unwrap, "UNWRAP"),
    (VaultError::Crypto, "CRYPTO"),
];

/// What a refusal's message starts with when the SEI's vault refused.
pub(crate) const VAULT_PREFIX: &str = "vault: ";

/// A vault error's word.
pub(crate) fn vault_error_name(e: VaultError) -> &'static str {
    VAULT_ERRORS
        .iter()
        .find(|(v, _)| *v == e)
        .map_or("CRYPTO", |(_, n)| n)
}

/// The vault error a refusal's message names, if it names one.
pub(crate) fn vault_error(msg: &str) -> Option<VaultError> {
    let name = msg.strip_prefix(VAULT_PREFIX)?;
    VAULT_ERRORS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(v, _)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for kind in TokenKind::ALL {
            assert_eq!(token_kind(token_kind_name(kind)), Some(kind));
        }
        for (e, _) in VAULT_ERRORS {
            let msg = format!("{VAULT_PREFIX}{}", vault_error_name(e));
            assert_eq!(vault_error(&msg), Some(e));
        }
        assert_eq!(vault_error("UNKNOWN_KEY"), None);
        for kind in [
            StaticKeyKind::Tdes,
            StaticKeyKind::Aes(16),
            StaticKeyKind::Aes(32),
            StaticKeyKind::Sm4,
        ] {
            let (a, n) = key_kind_parts(kind);
            assert_eq!(key_kind(a, n), Some(kind));
        }
        for role in [StaticKeyRole::Enc, StaticKeyRole::Mac, StaticKeyRole::Dek] {
            assert_eq!(key_role(key_role_name(role)), Some(role));
        }
        let aids: [&[u8]; 2] = [&[1, 2], &[3]];
        for kind in TokenKind::ALL {
            let n = if matches!(kind, TokenKind::MakeSelectable | TokenKind::Delete) {
                1
            } else {
                2
            };
            let context = receipt_context(token_kind_name(kind), &aids[..n]).unwrap();
            let (name, back) = receipt_parts(&context);
            assert_eq!(name, token_kind_name(kind));
            assert_eq!(back, aids[..n].to_vec());
            assert!(receipt_context(name, &aids[..3 - n]).is_none());
        }
    }
}
