//! Receipts (tsm-gp.md §4): the receipt key, the context of each operation, the card's
//! confirmation data and receipt, and the host's check.

use alloc::vec::Vec;
use core::fmt;

use ykt_crypto::{AesKey, Sm4Key, TdesKey, cmac_aes, cmac_sm4, ct_eq, retail_mac};

use super::{DmError, RECEIPT_FRAMING, ReceiptFraming, TokenKind, check_aid, lv_chain};

/// The receipt MAC algorithms (tsm-gp.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReceiptAlgorithm {
    /// AES-CMAC, 16 bytes (GPPro `ReceiptVerifier`, H).
    AesCmac,
    /// SM4-CMAC, 16 bytes (tsm-gp.md §4 \[PROPOSAL\]).
    Sm4Cmac,
    /// ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 and a zero ICV, 8 bytes (L: the
    /// brief says only "a DES MAC" for 3DES cards).
    DesRetailMac,
}

/// The ISD's receipt key, KVN [`RECEIPT_KEY_VERSION`](super::RECEIPT_KEY_VERSION)
/// (tsm-gp.md §4). `Debug` prints `[redacted]`; the keys wipe themselves on drop.
#[derive(Clone)]
pub struct ReceiptKey(ReceiptKeyInner);

#[derive(Clone)]
enum ReceiptKeyInner {
    Aes(AesKey),
    Sm4(Sm4Key),
    Tdes(TdesKey),
}

impl fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceiptKey({:?}, [redacted])", self.algorithm())
    }
}

impl ReceiptKey {
    /// An AES key: receipts are AES-CMAC, 16 bytes.
    pub fn aes(key: AesKey) -> Self {
        Self(ReceiptKeyInner::Aes(key))
    }

    /// An SM4 key: receipts are SM4-CMAC, 16 bytes.
    pub fn sm4(key: Sm4Key) -> Self {
        Self(ReceiptKeyInner::Sm4(key))
    }

    /// A 2-key 3DES key (16 bytes): receipts are the ISO/IEC 9797-1 MAC algorithm 3 (retail
    /// MAC) with padding method 2 and a zero ICV, 8 bytes (L). A 3-key key is
    /// [`DmError::InvalidKey`].
    pub fn tdes(key: TdesKey) -> Result<Self, DmError> {
        if key.expose().len() != 16 {
            return Err(DmError::InvalidKey);
        }
        Ok(Self(ReceiptKeyInner::Tdes(key)))
    }

    /// The MAC algorithm of this key.
    pub fn algorithm(&self) -> ReceiptAlgorithm {
        match &self.0 {
            ReceiptKeyInner::Aes(_) => ReceiptAlgorithm::AesCmac,
            ReceiptKeyInner::Sm4(_) => ReceiptAlgorithm::Sm4Cmac,
            ReceiptKeyInner::Tdes(_) => ReceiptAlgorithm::DesRetailMac,
        }
    }

    /// The receipt length in bytes: 16, or 8 for 3DES.
    pub fn receipt_len(&self) -> usize {
        match &self.0 {
            ReceiptKeyInner::Tdes(_) => 8,
            _ => 16,
        }
    }

    fn mac(&self, data: &[u8]) -> Result<Vec<u8>, DmError> {
        Ok(match &self.0 {
            ReceiptKeyInner::Aes(key) => cmac_aes(key, data).to_vec(),
            ReceiptKeyInner::Sm4(key) => cmac_sm4(key, data).to_vec(),
            ReceiptKeyInner::Tdes(key) => retail_mac(key, &[0; 8], data)
                .map_err(|_| DmError::InvalidKey)?
                .to_vec(),
        })
    }
}

/// The operation a receipt confirms, with the AIDs that make its context (tsm-gp.md §4, after
/// GPPro `ReceiptVerifier`): the context is the concatenation of `L AID` for each AID in the
/// order of the variant's fields.
///
/// Load, install and delete follow GPPro (H as implemented there). The others are L:
/// make selectable uses the instance AID alone; extradition uses `L SD-AID ‖ L app-AID` as the
/// brief writes it (GPPro's `extradite` context has a third AID, the destination); registry
/// update uses `L SD-AID ‖ L app-AID` by analogy (GPPro has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiptContext<'a> {
    /// INSTALL [for load]: `L ELF-AID ‖ L SD-AID`.
    Load {
        /// The executable load file AID.
        elf_aid: &'a [u8],
        /// The AID of the security domain the file is loaded to.
        sd_aid: &'a [u8],
    },
    /// INSTALL [for install] (and make selectable): `L ELF-AID ‖ L instance-AID`.
    Install {
        /// The executable load file AID.
        elf_aid: &'a [u8],
        /// The AID of the new instance.
        instance_aid: &'a [u8],
    },
    /// INSTALL [for make selectable]: `L instance-AID` (L).
    MakeSelectable {
        /// The AID of the instance made selectable.
        instance_aid: &'a [u8],
    },
    /// INSTALL [for extradition]: `L SD-AID ‖ L app-AID` (L).
    Extradition {
        /// The AID of the destination security domain.
        sd_aid: &'a [u8],
        /// The AID of the application or ELF extradited.
        app_aid: &'a [u8],
    },
    /// INSTALL [for registry update]: `L SD-AID ‖ L app-AID` (L).
    RegistryUpdate {
        /// The AID of the security domain.
        sd_aid: &'a [u8],
        /// The AID of the application updated.
        app_aid: &'a [u8],
    },
    /// DELETE: `L AID`.
    Delete {
        /// The AID of the deleted object.
        aid: &'a [u8],
    },
}

impl ReceiptContext<'_> {
    /// The kind of the command this receipt confirms.
    pub fn kind(&self) -> TokenKind {
        match self {
            Self::Load { .. } => TokenKind::Load,
            Self::Install { .. } => TokenKind::Install,
            Self::MakeSelectable { .. } => TokenKind::MakeSelectable,
            Self::Extradition { .. } => TokenKind::Extradition,
            Self::RegistryUpdate { .. } => TokenKind::RegistryUpdate,
            Self::Delete { .. } => TokenKind::Delete,
        }
    }

    /// The context bytes that follow the confirmation data in the MAC input; each AID must be 5
    /// to 16 bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DmError> {
        let aids: Vec<&[u8]> = match *self {
            Self::Load { elf_aid, sd_aid } => alloc::vec![elf_aid, sd_aid],
            Self::Install {
                elf_aid,
                instance_aid,
            } => alloc::vec![elf_aid, instance_aid],
            Self::MakeSelectable { instance_aid } => alloc::vec![instance_aid],
            Self::Extradition { sd_aid, app_aid } | Self::RegistryUpdate { sd_aid, app_aid } => {
                alloc::vec![sd_aid, app_aid]
            }
            Self::Delete { aid } => alloc::vec![aid],
        };
        aids.iter().try_for_each(|aid| check_aid(aid))?;
        lv_chain(&aids)
    }
}

/// A receipt as the card computes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The confirmation data: `02 ‖ counter ‖ L ‖ card unique data`.
    pub confirmation_data: Vec<u8>,
    /// The MAC over `confirmation data ‖ context`.
    pub receipt: Vec<u8>,
}

impl Receipt {
    /// The response data field of the command, framed per [`RECEIPT_FRAMING`].
    pub fn to_response(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(1 + self.receipt.len() + self.confirmation_data.len());
        // A receipt is 8 or 16 bytes.
        body.push(u8::try_from(self.receipt.len()).unwrap_or(0));
        body.extend_from_slice(&self.receipt);
        body.extend_from_slice(&self.confirmation_data);
        match RECEIPT_FRAMING {
            ReceiptFraming::ReceiptFirst => body,
            ReceiptFraming::TotalLengthFirst => {
                let mut out = Vec::with_capacity(1 + body.len());
                out.push(u8::try_from(body.len()).unwrap_or(0));
                out.extend_from_slice(&body);
                out
            }
        }
    }
}

/// The confirmation data of a verified receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    /// The card's confirmation counter (two bytes, big-endian).
    pub counter: u16,
    /// The card unique data (GP: the IIN and CIN, as the card sends them).
    pub card_unique_data: Vec<u8>,
    /// Further LV elements after the card unique data (GP 2.2 adds e.g. a token identifier and
    /// a token data digest); covered by the MAC, not interpreted here.
    pub further: Vec<Vec<u8>>,
}

/// Computes the receipt of a command (card side, tsm-gp.md §4): confirmation data
/// `02 ‖ counter ‖ L ‖ card unique data`, receipt = MAC(key, confirmation data ‖ context).
///
/// The card increments and stores its confirmation counter; this function only formats it.
pub fn receipt(
    key: &ReceiptKey,
    confirmation_counter: u16,
    card_unique_data: &[u8],
    context: &ReceiptContext<'_>,
) -> Result<Receipt, DmError> {
    let cud_len =
        u8::try_from(card_unique_data.len()).map_err(|_| DmError::CardUniqueDataTooLong {
            len: card_unique_data.len(),
        })?;
    let mut confirmation_data = Vec::with_capacity(4 + card_unique_data.len());
    confirmation_data.push(2);
    confirmation_data.extend_from_slice(&confirmation_counter.to_be_bytes());
    confirmation_data.push(cud_len);
    confirmation_data.extend_from_slice(card_unique_data);
    let mut input = confirmation_data.clone();
    input.extend_from_slice(&context.to_bytes()?);
    Ok(Receipt {
        receipt: key.mac(&input)?,
        confirmation_data,
    })
}

/// A response data field split into its receipt and its confirmation data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiptParts<'a> {
    /// The receipt (the MAC).
    pub receipt: &'a [u8],
    /// The confirmation data, undecoded.
    pub confirmation_data: &'a [u8],
}

/// Splits a response data field into receipt and confirmation data per [`RECEIPT_FRAMING`]
/// (tsm-gp.md §4); `None` for the single byte `00` of "no receipt".
pub fn parse_receipt_response(response: &[u8]) -> Result<Option<ReceiptParts<'_>>, DmError> {
    if response == [0] {
        return Ok(None);
    }
    let body = match RECEIPT_FRAMING {
        ReceiptFraming::ReceiptFirst => response,
        ReceiptFraming::TotalLengthFirst => {
            let (len, body) = response.split_first().ok_or(DmError::ReceiptMalformed)?;
            if body.len() != usize::from(*len) {
                return Err(DmError::ReceiptMalformed);
            }
            body
        }
    };
    let (len, rest) = body.split_first().ok_or(DmError::ReceiptMalformed)?;
    let (receipt, confirmation_data) = rest
        .split_at_checked(usize::from(*len))
        .ok_or(DmError::ReceiptMalformed)?;
    if receipt.is_empty() || confirmation_data.is_empty() {
        return Err(DmError::ReceiptMalformed);
    }
    Ok(Some(ReceiptParts {
        receipt,
        confirmation_data,
    }))
}

fn parse_confirmation(data: &[u8]) -> Result<Confirmation, DmError> {
    let mut fields = Vec::new();
    let mut rest = data;
    while let Some((len, tail)) = rest.split_first() {
        let (value, tail) = tail
            .split_at_checked(usize::from(*len))
            .ok_or(DmError::ReceiptMalformed)?;
        fields.push(value);
        rest = tail;
    }
    let mut fields = fields.into_iter();
    let counter = match fields.next() {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => return Err(DmError::ReceiptMalformed),
    };
    let card_unique_data = fields.next().ok_or(DmError::ReceiptMalformed)?.to_vec();
    Ok(Confirmation {
        counter,
        card_unique_data,
        further: fields.map(<[u8]>::to_vec).collect(),
    })
}

/// Verifies the receipt in a response data field (host side, tsm-gp.md §4, GPPro
/// `ReceiptVerifier`) for the operation `context`, and gives its confirmation data.
///
/// The response `00` is [`DmError::ReceiptMissing`]; a layout error or a receipt of the wrong
/// length is [`DmError::ReceiptMalformed`]; a MAC that does not match (compared in constant
/// time) is [`DmError::ReceiptInvalid`].
pub fn verify_receipt(
    key: &ReceiptKey,
    response: &[u8],
    context: &ReceiptContext<'_>,
) -> Result<Confirmation, DmError> {
    let ReceiptParts {
        receipt: mac,
        confirmation_data,
    } = parse_receipt_response(response)?.ok_or(DmError::ReceiptMissing)?;
    if mac.len() != key.receipt_len() {
        return Err(DmError::ReceiptMalformed);
    }
    let confirmation = parse_confirmation(confirmation_data)?;
    let mut input = confirmation_data.to_vec();
    input.extend_from_slice(&context.to_bytes()?);
    if !ct_eq(&key.mac(&input)?, mac) {
        return Err(DmError::ReceiptInvalid);
    }
    Ok(confirmation)
}
