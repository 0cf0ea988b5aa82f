//! GlobalPlatform personalisation of a purse instance: INSTALL [for install] creates an empty
//! instance, INSTALL [for personalization] points the security domain at it, and STORE DATA
//! blocks of DGIs build the whole purse (tsm-gp.md §3.1, §3.7, §6). Layout \[PROPOSAL\] in
//! [`dgi`] and `docs/purse-dgi.md`.
//!
//! ```text
//!  TSM (host, Builder)                 security domain               purse instance
//!  Builder::new(profile, card, keys)
//!   blocks(): P1 08|68 (|80 last), P2 n
//!  encrypt the blocks flagged 11 (DEK)
//!  80 E2 P1 P2 <DGIs> under SCP ───▶  unwrap; decrypt if P1 b7–b6 = 11
//!                                     Context::deliver ──────────▶ process_data: check P2
//!                                                                  sequence, parse, check and
//!                                                                  keep the DGIs [RAM]
//!  … last block (P1 b8)  ──────────▶                  ──────────▶ every mandatory DGI? then
//!                                                                  keys, PIN, purse, EF15..EF1E
//!                                                                  [one transaction]
//! ```
//!
//! Card side (the applet's [`ykt_card::Applet::process_data`]):
//! * the security domain delivers STORE DATA unwrapped from the secure channel and, for a block
//!   flagged encrypted (P1 b7–b6 = `11`), already decrypted with its DEK: the applet never sees
//!   the DEK and receives plaintext. The PIN and key DGIs must arrive in such a block
//!   ([`dgi::must_be_encrypted`]; otherwise `6982`); other DGIs may arrive in either kind.
//! * a DGI never spans two blocks; blocks are numbered from `00` in P2 and must follow each
//!   other (`6A86` otherwise); `00` always starts a new sequence.
//! * nothing is written before the last block; a refused block ends the sequence.
//!
//! Host side: [`Builder`] turns the card parameters of [`crate::IssuerFactory`] /
//! [`crate::IssuedPurse::from_card_keys`] into the DGIs and the STORE DATA blocks, sans-IO. An
//! instance personalised from them answers every command byte for byte as the factory's does.

pub mod dgi;

use alloc::vec::Vec;
use core::fmt;

use ykt_apdu::CommandApdu;
use zeroize::{Zeroize, Zeroizing};

use crate::factory::{CardData, IssueError, IssuerFactory, PersonalisationImage};
use crate::files::{EF1A_RECORD_LEN, EF1A_RECORDS};
use crate::keys::KeyEntry;
use crate::profile::PurseProfile;
use crate::state::PURSE_LEN;

/// Largest data field of one STORE DATA block [`Builder::blocks`] makes by default: 200 bytes,
/// which leaves room for the security domain's padding and MAC in a short APDU (L).
pub const DEFAULT_MAX_BLOCK_DATA: usize = 200;

/// One STORE DATA command: P1, P2 and the plaintext data field.
pub struct Block {
    /// P1: [`dgi::P1_DGI`], [`dgi::P1_ENCRYPTED`] for a block of secrets, [`dgi::P1_LAST_BLOCK`]
    /// on the last.
    pub p1: u8,
    /// P2: the block number, from `00`.
    pub p2: u8,
    /// The DGIs, in plaintext; a block flagged encrypted must be encrypted under the security
    /// domain's DEK by the caller before it is sent.
    pub data: Zeroizing<Vec<u8>>,
}

impl Block {
    /// True for a block of secrets (P1 b7–b6 = `11`).
    pub fn encrypted(&self) -> bool {
        self.p1 & dgi::P1_ENCRYPTION_MASK == dgi::P1_ENCRYPTED
    }

    /// True for the last block of the sequence.
    pub fn is_last(&self) -> bool {
        self.p1 & dgi::P1_LAST_BLOCK != 0
    }

    /// `80 E2 P1 P2 Lc data` with the plaintext data (tsm-gp.md §3.7).
    pub fn command(&self) -> CommandApdu {
        CommandApdu::new(0x80, 0xE2, self.p1, self.p2).with_data(self.data.to_vec())
    }
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Block");
        d.field("p1", &format_args!("{:02X}", self.p1))
            .field("p2", &format_args!("{:02X}", self.p2));
        if self.encrypted() {
            d.field("data", &"[redacted]");
        } else {
            d.field("data", &format_args!("{} bytes", self.data.len()));
        }
        d.finish()
    }
}

/// One DGI: tag and value.
pub struct Dgi {
    /// The tag ([`dgi`] constants).
    pub tag: u16,
    /// The value.
    pub value: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Dgi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Dgi");
        d.field("tag", &format_args!("{:04X}", self.tag));
        if dgi::must_be_encrypted(self.tag) {
            d.field("value", &"[redacted]");
        } else {
            d.field("value", &format_args!("{} bytes", self.value.len()));
        }
        d.finish()
    }
}

/// Host side: the DGIs and STORE DATA blocks that personalise one purse instance.
pub struct Builder {
    card: CardData,
    keys: Vec<KeyEntry>,
    ef1a: [Option<[u8; EF1A_RECORD_LEN]>; EF1A_RECORDS as usize],
    max_block_data: usize,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("card", &self.card)
            .field("keys", &self.keys)
            .field("max_block_data", &self.max_block_data)
            .finish_non_exhaustive()
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        // CardData keeps the PIN in a plain Vec (the keys zeroize themselves).
        self.card.pin.zeroize();
    }
}

impl Builder {
    /// The personalisation of an instance with `profile`, `card` and card keys that are already
    /// diversified (the TSM's key management computes them). Refuses what
    /// [`crate::IssuedPurse::from_card_keys`] refuses.
    pub fn new(
        profile: PurseProfile,
        card: &CardData,
        keys: &[KeyEntry],
    ) -> Result<Builder, IssueError> {
        PersonalisationImage::new(&profile, card, keys)?;
        Ok(Builder {
            card: card.clone(),
            keys: keys.to_vec(),
            ef1a: [None; EF1A_RECORDS as usize],
            max_block_data: DEFAULT_MAX_BLOCK_DATA,
        })
    }

    /// As [`crate::IssuerFactory::issue`]: every master key of `issuer` diversified with the
    /// ASN of `card.ef15`.
    pub fn issue(
        issuer: &IssuerFactory,
        profile: PurseProfile,
        card: &CardData,
    ) -> Result<Builder, IssueError> {
        Builder::new(profile, card, &issuer.card_keys(&card.ef15.asn))
    }

    /// Personalises EF1A record `number` (1-based) with `record` instead of the default (zero,
    /// with the record identifier `number` in byte 1).
    pub fn with_ef1a_record(
        mut self,
        number: u8,
        record: [u8; EF1A_RECORD_LEN],
    ) -> Result<Builder, IssueError> {
        let slot = usize::from(number)
            .checked_sub(1)
            .and_then(|i| self.ef1a.get_mut(i))
            .ok_or(IssueError::InvalidRecordNumber(number))?;
        *slot = Some(record);
        Ok(self)
    }

    /// Sets the largest data field of one block ([`DEFAULT_MAX_BLOCK_DATA`]).
    pub fn with_max_block_data(mut self, max: usize) -> Builder {
        self.max_block_data = max;
        self
    }

    /// Every DGI, plain ones first (EF15, EF16, EF17, the purse values, EF1A records), then the
    /// secrets (PIN, keys in the given order).
    pub fn dgis(&self) -> Vec<Dgi> {
        let dgi = |tag: u16, value: &[u8]| Dgi {
            tag,
            value: Zeroizing::new(value.to_vec()),
        };
        let mut purse = [0u8; PURSE_LEN];
        purse[0..4].copy_from_slice(&self.card.balance.to_be_bytes());
        purse[4..6].copy_from_slice(&self.card.online_counter.to_be_bytes());
        purse[6..8].copy_from_slice(&self.card.offline_counter.to_be_bytes());
        let mut out = Vec::with_capacity(6 + EF1A_RECORDS as usize + self.keys.len());
        out.push(dgi(dgi::EF15, &self.card.ef15.encode()));
        out.push(dgi(dgi::EF16, &self.card.ef16));
        out.push(dgi(dgi::EF17, &self.card.ef17));
        out.push(dgi(dgi::PURSE, &purse[..dgi::PURSE_LEN]));
        for (tag, record) in (dgi::EF1A_FIRST..=dgi::EF1A_LAST).zip(&self.ef1a) {
            if let Some(record) = record {
                out.push(dgi(tag, record));
            }
        }
        out.push(dgi(dgi::PIN, &self.card.pin));
        for key in &self.keys {
            // `new` checked that every key has an encoding.
            if let Some(entry) = key.encode() {
                out.push(dgi(dgi::KEY, &Zeroizing::new(entry)[..]));
            }
        }
        out
    }

    /// The STORE DATA blocks: plain DGIs packed into blocks of at most the maximum data length,
    /// then the secrets in blocks flagged encrypted; P2 counts from `00`, the last has P1 b8.
    pub fn blocks(&self) -> Result<Vec<Block>, IssueError> {
        let mut blocks: Vec<(bool, Zeroizing<Vec<u8>>)> = Vec::new();
        for d in self.dgis() {
            let secret = dgi::must_be_encrypted(d.tag);
            let len = dgi::encoded_len(d.value.len());
            if len > self.max_block_data {
                return Err(IssueError::BlockTooSmall);
            }
            let fits = blocks
                .last()
                .is_some_and(|(s, data)| *s == secret && data.len() + len <= self.max_block_data);
            if !fits {
                blocks.push((secret, Zeroizing::new(Vec::new())));
            }
            if let Some((_, data)) = blocks.last_mut() {
                dgi::encode(data, d.tag, &d.value).ok_or(IssueError::BlockTooSmall)?;
            }
        }
        let count = blocks.len();
        blocks
            .into_iter()
            .enumerate()
            .map(|(n, (secret, data))| {
                let p2 = u8::try_from(n).map_err(|_| IssueError::BlockTooSmall)?;
                let mut p1 = dgi::P1_DGI;
                if secret {
                    p1 |= dgi::P1_ENCRYPTED;
                }
                if n + 1 == count {
                    p1 |= dgi::P1_LAST_BLOCK;
                }
                Ok(Block { p1, p2, data })
            })
            .collect()
    }
}
