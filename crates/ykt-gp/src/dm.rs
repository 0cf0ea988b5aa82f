//! Delegated management (tsm-gp.md §4): the tokens the card issuer (SEI-TSM) signs for
//! INSTALL and DELETE, and the receipts the card answers with.
//!
//! Pure functions over bytes, with no card state: the TSM side signs ([`TokenSigner`],
//! [`signed_install_data`], [`signed_delete_data`]) and checks receipts ([`verify_receipt`]);
//! the card side splits a command into its signed part and its token ([`split_install_token`],
//! [`split_delete_token`]), verifies the token ([`TokenKey`]) and computes receipts
//! ([`receipt`]).
//! The ISD keeps the token verification key at KVN [`TOKEN_KEY_VERSION`] (in the byte form of
//! [`TokenKey::to_card_bytes`]) and the receipt key at KVN [`RECEIPT_KEY_VERSION`].
//!
//! ```text
//!  TSM                                               card (ISD)
//!  data = LV chain (INSTALL) / 4F AID… (DELETE)
//!  token = sign(P1 ‖ P2 ‖ Lc ‖ data)
//!  data ‖ L token  /  data ‖ 9E L token   ──────▶   split_*_token → (data, token)
//!                                                   TokenKey::verify(kind, P1, P2, data, token)
//!  verify_receipt(key, response, context) ◀──────   receipt(key, counter, card data, context)
//!                                                   response = L receipt ‖ confirmation data
//! ```
//!
//! # Uncertain choices
//!
//! The brief grades delegated management M (medium confidence) unless marked and only proposes
//! the algorithms. Every choice that is not settled is one named item, listed here and decided
//! nowhere else: the constants and enums in the section "Uncertain choices" of this file, and,
//! where a layout belongs to one type, that type's documentation:
//!
//! | Choice | Item | Grade |
//! |---|---|---|
//! | Token algorithms: RSA-2048+ PKCS#1 v1.5 SHA-256 (default), SM2-SM3 | [`TokenAlgorithm`], [`DEFAULT_TOKEN_ALGORITHM`] | L (\[PROPOSAL\] §4) |
//! | SM2 token user ID `1234567812345678` | [`SM2_TOKEN_ID`] | L |
//! | SM2 token encoding: 64 bytes `r ‖ s`, not DER | [`SM2_TOKEN_LEN`] | L |
//! | Extradition token input: the generic GP rule (JT/T 1059.6—2025 §6.1.1.2.3.3 changed it, content unknown) | [`TokenKind::Extradition`] | L |
//! | DELETE token appended as `9E L token` | [`DELETE_TOKEN_TAG`] | M (GPPro) |
//! | Receipt response framing: `L receipt ‖ confirmation data` | [`RECEIPT_FRAMING`] | M |
//! | Receipt contexts of make selectable, extradition and registry update | [`ReceiptContext`] | L |
//! | 3DES receipts: ISO/IEC 9797-1 MAC algorithm 3, zero ICV, 8 bytes | [`ReceiptKey::tdes`] | L |
//! | Card storage form of the token key | [`TokenKey::to_card_bytes`] | L (ours) |
//!
//! The data-to-be-signed layout `P1 ‖ P2 ‖ Lc ‖ data` (GPPro `DMTokenizer.dtbs`) and the receipt
//! MAC over `confirmation data ‖ context` with AES-CMAC (GPPro `ReceiptVerifier`) are H.
//!
//! Every parser here is total: malformed input gives a [`DmError`], never a panic.

use core::fmt;

mod receipt;
mod token;

pub use self::receipt::{
    Confirmation, Receipt, ReceiptAlgorithm, ReceiptContext, ReceiptKey, ReceiptParts,
    parse_receipt_response, receipt, verify_receipt,
};
pub use self::token::{
    SplitToken, TokenKey, TokenKind, TokenSigner, append_delete_token, append_install_token,
    lv_chain, signed_delete_data, signed_install_data, split_delete_token, split_install_token,
    token_input,
};

// ---------------------------------------------------------------------------------------------
// Uncertain choices (see the module documentation). Nothing below this section decides any of
// them again.
// ---------------------------------------------------------------------------------------------

/// The token signature algorithms (tsm-gp.md §4 \[PROPOSAL\], L).
///
/// The brief proposes RSA-2048 PKCS#1 v1.5 with SHA-256 as the default, RSA-3072 as an option
/// and SM2 with SM3 as the national-crypto profile. GP 2.1/2.2 cards used RSA-1024 with SHA-1,
/// which this crate does not offer; GP 2.3 adds RSA-PSS and ECDSA, not offered either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, modulus 2048 to 4096 bits; the token is the signature,
    /// exactly the modulus length.
    RsaPkcs1v15Sha256,
    /// SM2 signature (GB/T 32918) with SM3, user ID [`SM2_TOKEN_ID`]; the token is
    /// [`SM2_TOKEN_LEN`] bytes `r ‖ s`.
    Sm2Sm3,
}

/// The default token algorithm (tsm-gp.md §4 \[PROPOSAL\], L).
pub const DEFAULT_TOKEN_ALGORITHM: TokenAlgorithm = TokenAlgorithm::RsaPkcs1v15Sha256;

/// The SM2 user ID of token signatures (tsm-gp.md §4 \[PROPOSAL\], L): the GM/T 0009 default.
pub const SM2_TOKEN_ID: &[u8] = ykt_crypto::DEFAULT_SM2_ID;

/// The length of an SM2 token: `r ‖ s`, 32 bytes each, big-endian (L: a fixed-length form
/// suits a card; the DER form OpenSSL writes is not accepted as a token).
pub const SM2_TOKEN_LEN: usize = 64;

/// The tag that carries a DELETE token (tsm-gp.md §3.3, M: GPPro prefixes the token with `9E`
/// for DELETE only; INSTALL tokens are the last LV of the chain).
pub const DELETE_TOKEN_TAG: u8 = 0x9E;

/// How a receipt is framed in the response data of INSTALL, LOAD or DELETE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReceiptFraming {
    /// `L receipt ‖ receipt ‖ confirmation data` (tsm-gp.md §4 as written).
    ReceiptFirst,
    /// `L ‖ L receipt ‖ receipt ‖ confirmation data`, where the first byte counts everything
    /// after it: the layout GPPro's `ReceiptVerifier` parses (it reads the receipt length from
    /// the second byte).
    TotalLengthFirst,
}

/// The receipt framing used on both sides (M: the brief and GPPro's parser differ by a leading
/// length byte; the brief's form is used until a card or the standard settles it).
pub const RECEIPT_FRAMING: ReceiptFraming = ReceiptFraming::ReceiptFirst;

// ---------------------------------------------------------------------------------------------

/// The key version number of the token verification key in the ISD (tsm-gp.md §4, H).
pub const TOKEN_KEY_VERSION: u8 = 0x70;

/// The key version number of the receipt key in the ISD (tsm-gp.md §4, H).
pub const RECEIPT_KEY_VERSION: u8 = 0x71;

/// INS of INSTALL.
const INS_INSTALL: u8 = 0xE6;
/// INS of DELETE.
const INS_DELETE: u8 = 0xE4;
/// P1 bit 8: more commands of the same kind follow (INSTALL and DELETE, tsm-gp.md §3.1).
const P1_MORE: u8 = 0x80;
/// Tag of the AID in DELETE data.
const TAG_AID: u8 = 0x4F;

/// Why a token or receipt was refused or could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DmError {
    /// P1 is not one of the command variants of this token kind.
    KindMismatch {
        /// The token kind asked for.
        kind: TokenKind,
        /// The P1 that was given.
        p1: u8,
    },
    /// INSTALL P1 names no variant that carries a token (e.g. for personalization, `20`).
    UnsupportedP1 {
        /// The P1 that was given.
        p1: u8,
    },
    /// A command's INS is neither INSTALL nor DELETE.
    UnsupportedIns {
        /// The INS that was given.
        ins: u8,
    },
    /// The data without the token is longer than the one-byte Lc of the signed data (255).
    DataTooLong {
        /// Its length.
        len: usize,
    },
    /// An LV field is longer than 255 bytes.
    FieldTooLong {
        /// Its length.
        len: usize,
    },
    /// An INSTALL data field has the wrong number of LV fields before the token.
    FieldCount {
        /// The token kind (from P1).
        kind: TokenKind,
        /// The number this variant has.
        expected: usize,
        /// The number given.
        actual: usize,
    },
    /// The command data ends inside a field, or has bytes after the token.
    MalformedCommandData,
    /// The command carries no token (an empty token LV, or no `9E` object).
    TokenMissing,
    /// The token does not have the form of the key's algorithm (length, r or s out of range).
    TokenMalformed,
    /// The token is well formed but does not verify over this command.
    TokenInvalid,
    /// A key (or its card storage form) is malformed or of an unsupported size.
    InvalidKey,
    /// Signing failed.
    SigningFailed,
    /// An AID is not 5 to 16 bytes long.
    InvalidAid {
        /// Its length.
        len: usize,
    },
    /// The card unique data is longer than 255 bytes.
    CardUniqueDataTooLong {
        /// Its length.
        len: usize,
    },
    /// The response is the single byte `00`: the card sent no receipt.
    ReceiptMissing,
    /// The response is not a receipt and confirmation data of the expected layout.
    ReceiptMalformed,
    /// The receipt does not verify for this key, confirmation data and context.
    ReceiptInvalid,
}

impl fmt::Display for DmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KindMismatch { kind, p1 } => {
                write!(f, "P1 {p1:02X} is not a command of a {kind:?} token")
            }
            Self::UnsupportedP1 { p1 } => write!(f, "INSTALL P1 {p1:02X} carries no token"),
            Self::UnsupportedIns { ins } => write!(f, "INS {ins:02X} carries no token"),
            Self::DataTooLong { len } => {
                write!(f, "{len} bytes of data to sign, at most 255")
            }
            Self::FieldTooLong { len } => write!(f, "LV field of {len} bytes, at most 255"),
            Self::FieldCount {
                kind,
                expected,
                actual,
            } => write!(
                f,
                "{kind:?} data has {expected} fields before the token, {actual} given"
            ),
            Self::MalformedCommandData => f.write_str("malformed INSTALL or DELETE data"),
            Self::TokenMissing => f.write_str("no delegated-management token"),
            Self::TokenMalformed => f.write_str("malformed delegated-management token"),
            Self::TokenInvalid => f.write_str("delegated-management token does not verify"),
            Self::InvalidKey => f.write_str("invalid token or receipt key"),
            Self::SigningFailed => f.write_str("token signing failed"),
            Self::InvalidAid { len } => write!(f, "AID of {len} bytes, want 5 to 16"),
            Self::CardUniqueDataTooLong { len } => {
                write!(f, "card unique data of {len} bytes, at most 255")
            }
            Self::ReceiptMissing => f.write_str("no receipt in the response"),
            Self::ReceiptMalformed => f.write_str("malformed receipt response"),
            Self::ReceiptInvalid => f.write_str("receipt does not verify"),
        }
    }
}

impl core::error::Error for DmError {}

/// Checks that an AID is 5 to 16 bytes long (GP AIDs, ISO/IEC 7816-5).
fn check_aid(aid: &[u8]) -> Result<(), DmError> {
    if (5..=16).contains(&aid.len()) {
        Ok(())
    } else {
        Err(DmError::InvalidAid { len: aid.len() })
    }
}
