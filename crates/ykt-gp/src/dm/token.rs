//! Tokens (tsm-gp.md §4): the data to be signed, signing, verification, the card storage form
//! of the verification key, and the INSTALL and DELETE data fields that carry a token.

use alloc::vec::Vec;
use core::fmt;

use ykt_apdu::tlv::{Tlv, decode_length, encode_length};
use ykt_crypto::{
    RsaError, RsaPrivateKey, RsaPublicKey, Sm2PrivateKey, Sm2PublicKey, Sm2Signature,
};

use super::{
    DELETE_TOKEN_TAG, DmError, INS_DELETE, INS_INSTALL, P1_MORE, SM2_TOKEN_ID, SM2_TOKEN_LEN,
    TAG_AID, TokenAlgorithm, check_aid,
};

/// The command a token authorises (tsm-gp.md §4; P1 values of §3.1 and §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// INSTALL [for load], P1 `02`: four LVs (ELF AID, SD AID, LFDB hash, load parameters),
    /// then the token.
    Load,
    /// INSTALL [for install], P1 `04`, or [for install and make selectable], P1 `0C`: five LVs
    /// (ELF AID, module AID, instance AID, privileges, install parameters), then the token.
    Install,
    /// INSTALL [for make selectable], P1 `08`: five LVs (`00`, `00`, instance AID, privileges,
    /// `00`), then the token.
    MakeSelectable,
    /// INSTALL [for extradition], P1 `10`: five LVs (destination SD AID, `00`, application or
    /// ELF AID, `00`, extradition parameters), then the token.
    ///
    /// L: JT/T 1059.6—2025 §6.1.1.2.3.3 changed the input fields of the extradition token and
    /// its content is not known here; the generic rule `P1 ‖ P2 ‖ Lc ‖ data` is used as for
    /// every other kind (tsm-gp.md §4 \[PROPOSAL\]).
    Extradition,
    /// INSTALL [for registry update], P1 `40`: five LVs (SD AID, `00`, application AID,
    /// privileges, registry-update parameters), then the token.
    RegistryUpdate,
    /// DELETE, P1 `00`: `4F L AID` and further objects, then `9E L token`
    /// ([`DELETE_TOKEN_TAG`]).
    Delete,
}

impl TokenKind {
    /// Every kind, in the order of tsm-gp.md §4.
    pub const ALL: [Self; 6] = [
        Self::Load,
        Self::Install,
        Self::MakeSelectable,
        Self::Extradition,
        Self::RegistryUpdate,
        Self::Delete,
    ];

    /// The INS of the command: `E6` INSTALL or `E4` DELETE.
    pub fn ins(self) -> u8 {
        match self {
            Self::Delete => INS_DELETE,
            _ => INS_INSTALL,
        }
    }

    /// Whether `p1` is a command of this kind (bit 8, "more commands follow", ignored;
    /// tsm-gp.md §3.1, §3.3).
    pub fn matches_p1(self, p1: u8) -> bool {
        let p1 = p1 & !P1_MORE;
        match self {
            Self::Load => p1 == 0x02,
            Self::Install => p1 == 0x04 || p1 == 0x0C,
            Self::MakeSelectable => p1 == 0x08,
            Self::Extradition => p1 == 0x10,
            Self::RegistryUpdate => p1 == 0x40,
            Self::Delete => p1 == 0x00,
        }
    }

    /// The token kind of an INSTALL command with this P1 (tsm-gp.md §3.1), if it carries one.
    pub fn for_install_p1(p1: u8) -> Option<Self> {
        [
            Self::Load,
            Self::Install,
            Self::MakeSelectable,
            Self::Extradition,
            Self::RegistryUpdate,
        ]
        .into_iter()
        .find(|k| k.matches_p1(p1))
    }

    /// The number of LV fields before the token in INSTALL data (tsm-gp.md §3.1); 0 for DELETE,
    /// whose data is BER-TLV.
    pub fn install_fields(self) -> usize {
        match self {
            Self::Load => 4,
            Self::Delete => 0,
            _ => 5,
        }
    }
}

/// The data to be signed of a token (tsm-gp.md §4, GPPro `dtbs`, H): `P1 ‖ P2 ‖ Lc ‖ data`,
/// where `data` is the command data without the token (for INSTALL without its length byte, for
/// DELETE without the `9E` object) and Lc its length in one byte.
pub fn token_input(kind: TokenKind, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, DmError> {
    if !kind.matches_p1(p1) {
        return Err(DmError::KindMismatch { kind, p1 });
    }
    let lc = u8::try_from(data.len()).map_err(|_| DmError::DataTooLong { len: data.len() })?;
    let mut out = Vec::with_capacity(3 + data.len());
    out.extend_from_slice(&[p1, p2, lc]);
    out.extend_from_slice(data);
    Ok(out)
}

/// A token verification public key, as the ISD keeps it at KVN
/// [`TOKEN_KEY_VERSION`](super::TOKEN_KEY_VERSION) (tsm-gp.md §4).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenKey {
    /// RSA, [`TokenAlgorithm::RsaPkcs1v15Sha256`].
    Rsa(RsaPublicKey),
    /// SM2, [`TokenAlgorithm::Sm2Sm3`].
    Sm2(Sm2PublicKey),
}

impl TokenKey {
    /// The algorithm of this key.
    pub fn algorithm(&self) -> TokenAlgorithm {
        match self {
            Self::Rsa(_) => TokenAlgorithm::RsaPkcs1v15Sha256,
            Self::Sm2(_) => TokenAlgorithm::Sm2Sm3,
        }
    }

    /// Verifies `token` for the command `kind` with `p1`, `p2` and the data without the token
    /// (tsm-gp.md §4): the signature over [`token_input`].
    ///
    /// A token signed for another kind, P1, P2 or data is refused ([`DmError::KindMismatch`]
    /// when P1 does not belong to `kind`, else [`DmError::TokenInvalid`]).
    pub fn verify(
        &self,
        kind: TokenKind,
        p1: u8,
        p2: u8,
        data: &[u8],
        token: &[u8],
    ) -> Result<(), DmError> {
        let input = token_input(kind, p1, p2, data)?;
        if token.is_empty() {
            return Err(DmError::TokenMissing);
        }
        match self {
            Self::Rsa(key) => key
                .verify_pkcs1v15_sha256(&input, token)
                .map_err(|e| match e {
                    RsaError::SignatureLength { .. } => DmError::TokenMalformed,
                    _ => DmError::TokenInvalid,
                }),
            Self::Sm2(key) => {
                let bytes: &[u8; SM2_TOKEN_LEN] =
                    token.try_into().map_err(|_| DmError::TokenMalformed)?;
                let sig = Sm2Signature::from_bytes(bytes).map_err(|_| DmError::TokenMalformed)?;
                key.verify(SM2_TOKEN_ID, &input, &sig)
                    .map_err(|_| DmError::TokenInvalid)
            }
        }
    }

    /// Splits the data field of an INSTALL or DELETE command and verifies its token
    /// (tsm-gp.md §3.1, §3.3, §4); gives the token kind.
    pub fn verify_command(
        &self,
        ins: u8,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<TokenKind, DmError> {
        let split = match ins {
            INS_INSTALL => split_install_token(p1, data)?,
            INS_DELETE => split_delete_token(data)?,
            _ => return Err(DmError::UnsupportedIns { ins }),
        };
        self.verify(split.kind, p1, p2, split.signed_data, split.token)?;
        Ok(split.kind)
    }

    /// The form the card stores (L, the project's own encoding; the key type is kept beside it
    /// as a [`TokenAlgorithm`]):
    ///
    /// - SM2: the uncompressed point `04 ‖ X ‖ Y`, 65 bytes.
    /// - RSA: `Ln ‖ n ‖ Le ‖ e`, where `Ln` is the modulus length in two bytes big-endian, `n` the
    ///   modulus without leading zero bytes, `Le` the exponent length in one byte and `e` the
    ///   exponent without leading zero bytes (for RSA-2048 with e = 65537: 262 bytes
    ///   `0100 ‖ n ‖ 03 010001`).
    pub fn to_card_bytes(&self) -> Vec<u8> {
        match self {
            Self::Sm2(key) => key.to_bytes().to_vec(),
            Self::Rsa(key) => {
                let (n, e) = (key.modulus(), key.exponent());
                let mut out = Vec::with_capacity(3 + n.len() + e.len());
                // A modulus of at most 4096 bits and an exponent below 2^33 fit their fields.
                out.extend_from_slice(&u16::try_from(n.len()).unwrap_or(0).to_be_bytes());
                out.extend_from_slice(&n);
                out.push(u8::try_from(e.len()).unwrap_or(0));
                out.extend_from_slice(&e);
                out
            }
        }
    }

    /// Decodes the form of [`Self::to_card_bytes`] for `algorithm`; anything else (wrong length,
    /// a compressed SM2 point, an invalid point or RSA key) is [`DmError::InvalidKey`].
    pub fn from_card_bytes(algorithm: TokenAlgorithm, bytes: &[u8]) -> Result<Self, DmError> {
        match algorithm {
            TokenAlgorithm::Sm2Sm3 => {
                if bytes.len() != 65 || bytes.first() != Some(&0x04) {
                    return Err(DmError::InvalidKey);
                }
                Sm2PublicKey::from_sec1_bytes(bytes)
                    .map(Self::Sm2)
                    .map_err(|_| DmError::InvalidKey)
            }
            TokenAlgorithm::RsaPkcs1v15Sha256 => {
                let (ln, rest) = bytes.split_at_checked(2).ok_or(DmError::InvalidKey)?;
                let ln = usize::from(u16::from_be_bytes([ln[0], ln[1]]));
                let (n, rest) = rest.split_at_checked(ln).ok_or(DmError::InvalidKey)?;
                let (le, e) = rest.split_first().ok_or(DmError::InvalidKey)?;
                if e.len() != usize::from(*le) || n.first() == Some(&0) || e.first() == Some(&0) {
                    return Err(DmError::InvalidKey);
                }
                RsaPublicKey::from_components(n, e)
                    .map(Self::Rsa)
                    .map_err(|_| DmError::InvalidKey)
            }
        }
    }
}

/// A token signing key, held by the card issuer's TSM (tsm-gp.md §4). `Debug` prints
/// `[redacted]`; the keys wipe themselves on drop.
#[derive(Clone)]
#[non_exhaustive]
pub enum TokenSigner {
    /// RSA, [`TokenAlgorithm::RsaPkcs1v15Sha256`].
    Rsa(RsaPrivateKey),
    /// SM2, [`TokenAlgorithm::Sm2Sm3`].
    Sm2(Sm2PrivateKey),
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa(_) => f.write_str("TokenSigner::Rsa([redacted])"),
            Self::Sm2(_) => f.write_str("TokenSigner::Sm2([redacted])"),
        }
    }
}

impl TokenSigner {
    /// The algorithm of this key.
    pub fn algorithm(&self) -> TokenAlgorithm {
        self.verification_key().algorithm()
    }

    /// The public key the card verifies tokens with.
    pub fn verification_key(&self) -> TokenKey {
        match self {
            Self::Rsa(key) => TokenKey::Rsa(key.public_key().clone()),
            Self::Sm2(key) => TokenKey::Sm2(key.public_key().clone()),
        }
    }

    /// Signs the token of the command `kind` with `p1`, `p2` and the data without the token
    /// (tsm-gp.md §4): the signature over [`token_input`].
    ///
    /// Both signatures are deterministic (RSA PKCS#1 v1.5; SM2 with its RFC 6979-style nonce),
    /// so this needs no randomness.
    pub fn sign(&self, kind: TokenKind, p1: u8, p2: u8, data: &[u8]) -> Result<Vec<u8>, DmError> {
        let input = token_input(kind, p1, p2, data)?;
        match self {
            Self::Rsa(key) => key
                .sign_pkcs1v15_sha256(&input)
                .map_err(|_| DmError::SigningFailed),
            Self::Sm2(key) => key
                .sign(SM2_TOKEN_ID, &input)
                .map(|sig| sig.to_bytes().to_vec())
                .map_err(|_| DmError::SigningFailed),
        }
    }
}

/// Encodes `fields` as a chain of one-byte-length LVs (INSTALL data, tsm-gp.md §3.1).
pub fn lv_chain(fields: &[&[u8]]) -> Result<Vec<u8>, DmError> {
    let mut out = Vec::new();
    for field in fields {
        let len =
            u8::try_from(field.len()).map_err(|_| DmError::FieldTooLong { len: field.len() })?;
        out.push(len);
        out.extend_from_slice(field);
    }
    Ok(out)
}

/// INSTALL data with its token appended as the last LV (tsm-gp.md §3.1, §4): `data ‖ L ‖ token`,
/// the length in BER form (`81 xx` from 128 bytes, `82 xx xx` from 256, as GPPro writes it); an
/// empty token gives the `00` of "no token".
pub fn append_install_token(data: &[u8], token: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 3 + token.len());
    out.extend_from_slice(data);
    out.extend_from_slice(&encode_length(token.len()));
    out.extend_from_slice(token);
    out
}

/// DELETE data with its token appended (tsm-gp.md §3.3, §4): `data ‖ 9E ‖ L ‖ token`
/// ([`DELETE_TOKEN_TAG`], BER length); an empty token appends nothing.
pub fn append_delete_token(data: &[u8], token: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 4 + token.len());
    out.extend_from_slice(data);
    if !token.is_empty() {
        out.push(DELETE_TOKEN_TAG);
        out.extend_from_slice(&encode_length(token.len()));
        out.extend_from_slice(token);
    }
    out
}

/// The whole data field of a tokenised INSTALL (tsm-gp.md §3.1, §4): the LV chain of `fields`
/// (as many as [`TokenKind::install_fields`] for the kind of `p1`), signed by `signer`, with
/// the token appended.
pub fn signed_install_data(
    signer: &TokenSigner,
    p1: u8,
    p2: u8,
    fields: &[&[u8]],
) -> Result<Vec<u8>, DmError> {
    let kind = TokenKind::for_install_p1(p1).ok_or(DmError::UnsupportedP1 { p1 })?;
    if fields.len() != kind.install_fields() {
        return Err(DmError::FieldCount {
            kind,
            expected: kind.install_fields(),
            actual: fields.len(),
        });
    }
    let data = lv_chain(fields)?;
    let token = signer.sign(kind, p1, p2, &data)?;
    Ok(append_install_token(&data, &token))
}

/// The whole data field of a tokenised DELETE (tsm-gp.md §3.3, §4): `4F L aid ‖ further`
/// (`further`: encoded BER-TLV objects such as `B6 …`, `D0 01 …`, `D2 01 …`, or nothing), signed
/// by `signer`, with `9E L token` appended.
pub fn signed_delete_data(
    signer: &TokenSigner,
    p1: u8,
    p2: u8,
    aid: &[u8],
    further: &[u8],
) -> Result<Vec<u8>, DmError> {
    check_aid(aid)?;
    let mut data = Tlv::new(u32::from(TAG_AID), aid).to_bytes();
    data.extend_from_slice(further);
    let token = signer.sign(TokenKind::Delete, p1, p2, &data)?;
    Ok(append_delete_token(&data, &token))
}

/// A command data field split into the signed part and the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitToken<'a> {
    /// The token kind.
    pub kind: TokenKind,
    /// The data without the token: what [`token_input`] covers.
    pub signed_data: &'a [u8],
    /// The token; empty when the command carries none.
    pub token: &'a [u8],
}

/// Splits INSTALL data (tsm-gp.md §3.1) into the LV fields of the kind of `p1` and the final
/// token LV (BER length). The data must end exactly with the token.
pub fn split_install_token(p1: u8, data: &[u8]) -> Result<SplitToken<'_>, DmError> {
    let kind = TokenKind::for_install_p1(p1).ok_or(DmError::UnsupportedP1 { p1 })?;
    let mut at = 0usize;
    for _ in 0..kind.install_fields() {
        let len = *data.get(at).ok_or(DmError::MalformedCommandData)?;
        at = at + 1 + usize::from(len);
        if at > data.len() {
            return Err(DmError::MalformedCommandData);
        }
    }
    let (signed_data, rest) = data
        .split_at_checked(at)
        .ok_or(DmError::MalformedCommandData)?;
    let (len, len_len) = decode_length(rest).map_err(|_| DmError::MalformedCommandData)?;
    let token = rest.get(len_len..).ok_or(DmError::MalformedCommandData)?;
    if token.len() != len {
        return Err(DmError::MalformedCommandData);
    }
    Ok(SplitToken {
        kind,
        signed_data,
        token,
    })
}

/// Splits DELETE data (tsm-gp.md §3.3) into the BER-TLV objects before the token and the value
/// of the `9E` object, which must be the last one; without a `9E` object the token is empty.
pub fn split_delete_token(data: &[u8]) -> Result<SplitToken<'_>, DmError> {
    let mut at = 0usize;
    while let Some(rest) = data.get(at..).filter(|r| !r.is_empty()) {
        let (tlv, used) = Tlv::parse_one(rest).map_err(|_| DmError::MalformedCommandData)?;
        if tlv.tag.value() == u32::from(DELETE_TOKEN_TAG) {
            if used != rest.len() {
                return Err(DmError::MalformedCommandData);
            }
            let token = rest
                .get(used - tlv.value.len()..)
                .ok_or(DmError::MalformedCommandData)?;
            return Ok(SplitToken {
                kind: TokenKind::Delete,
                signed_data: data.get(..at).ok_or(DmError::MalformedCommandData)?,
                token,
            });
        }
        at += used;
    }
    Ok(SplitToken {
        kind: TokenKind::Delete,
        signed_data: data,
        token: &[],
    })
}
