//! The TSM's nouns: card numbers (masked when printed), SE identities, the card-instance life
//! cycle of tsm-gp.md §8, and what a flow records about a card instance.

use alloc::string::String;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::steps::StepName;

/// A transit card number: the purse's application serial number (ASN, EF15 bytes 10..20,
/// e-purse.md §2). Debug and Display mask it (`3104************5678`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CardNumber(pub [u8; 10]);

impl CardNumber {
    /// The ASN as the purse crate types it.
    pub fn asn(&self) -> ykt_purse::Asn {
        ykt_purse::Asn(self.0)
    }

    /// The full number in hex, for the issuer's own records only (never for logs).
    pub fn danger_full(&self) -> String {
        crate::hex::encode(&self.0)
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = crate::hex::encode(&self.0);
        let n = full.len();
        write!(f, "{}", &full[..4])?;
        for _ in 4..n - 4 {
            f.write_str("*")?;
        }
        f.write_str(&full[n - 4..])
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({self})")
    }
}

/// An SE's identity (the SEID, [`crate::proposals::seid_from_cplc`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeId(pub [u8; 10]);

impl fmt::Display for SeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
    }
}

impl fmt::Debug for SeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeId({self})")
    }
}

/// How the SP-TSM manages its SSD (tsm-gp.md §3.8, §4).
/// This list is complete: GP has these two kinds of SSD management.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::exhaustive_enums)]
pub enum Management {
    /// Authorized Management (`80 40 00`): the SSD loads and installs on its own.
    Authorized,
    /// Delegated Management (`A0 00 00`): each INSTALL and DELETE carries a token the SEI-TSM
    /// signed, and the card answers a receipt the SEI-TSM's receipt key checks.
    Delegated,
}

impl Management {
    /// The SSD's privileges.
    pub fn privileges(self) -> [u8; 3] {
        match self {
            Self::Authorized => ykt_gp_host::Privileges::SSD_AUTHORIZED.0,
            Self::Delegated => ykt_gp_host::Privileges::SSD_DELEGATED.0,
        }
    }
}

/// The SE's life cycle as the SEI-TSM tracks it (tsm-gp.md §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SeState {
    /// Not seen yet.
    Unknown,
    /// CPLC and SEID read.
    Registered,
    /// The ISD answered a secure channel with the keys derived for its SEID.
    IsdKeysBound,
}

/// The card instance's life cycle (per SE × card number, tsm-gp.md §8):
/// `NONE → SSD_CREATING → SSD_READY → APP_LOADING → APP_INSTALLED → PERSONALISING → ACTIVE ⇄
/// LOCKED`, `ACTIVE → REFUNDING → DELETING → DELETED`, `ACTIVE → TRANSFER_OUT → DELETED`,
/// `TRANSFER_IN → … → ACTIVE`, and `FAILED_<step>` from any step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum InstanceState {
    /// Nothing on the SE.
    None,
    /// The SSD is being created and keyed.
    SsdCreating,
    /// The SSD exists with the SP-TSM's keys.
    SsdReady,
    /// The purse package is being loaded.
    AppLoading,
    /// The purse instance is installed.
    AppInstalled,
    /// The purse is being personalised.
    Personalising,
    /// In service.
    Active,
    /// Locked (SET STATUS): no transaction reaches it.
    Locked,
    /// Card return: the balance is being refunded.
    Refunding,
    /// The purse (and SSD) are being deleted.
    Deleting,
    /// Gone from the SE.
    Deleted,
    /// Transfer: leaving this SE (balance escrowed).
    TransferOut,
    /// Transfer: arriving on a new SE.
    TransferIn,
    /// A step failed; the flow can be retried from its persisted state.
    Failed(StepName),
}

impl InstanceState {
    /// The §8 name (`FAILED_<STEP>` for a failure).
    pub fn name(&self) -> String {
        let s = match self {
            Self::None => "NONE",
            Self::SsdCreating => "SSD_CREATING",
            Self::SsdReady => "SSD_READY",
            Self::AppLoading => "APP_LOADING",
            Self::AppInstalled => "APP_INSTALLED",
            Self::Personalising => "PERSONALISING",
            Self::Active => "ACTIVE",
            Self::Locked => "LOCKED",
            Self::Refunding => "REFUNDING",
            Self::Deleting => "DELETING",
            Self::Deleted => "DELETED",
            Self::TransferOut => "TRANSFER_OUT",
            Self::TransferIn => "TRANSFER_IN",
            Self::Failed(step) => return alloc::format!("FAILED_{}", step.upper()),
        };
        String::from(s)
    }
}

/// What a card issuer puts in a new purse (EF15 and the validity); the keys and the initial PIN
/// come from the vault's issuer profile, never from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurseCardSpec {
    /// The card number (ASN).
    pub card_number: CardNumber,
    /// EF15 issuer id (8 bytes).
    pub issuer_id: [u8; 8],
    /// First valid date, BCD `YYYYMMDD`.
    pub start_date: [u8; 4],
    /// Last valid date, BCD `YYYYMMDD`.
    pub expiry_date: [u8; 4],
}

impl PurseCardSpec {
    /// The purse's card data with `pin` (balance and counters zero; a transfer loads the
    /// escrowed balance online afterwards).
    pub fn card_data(&self, pin: &[u8]) -> ykt_purse::CardData {
        let mut ef17 = [0u8; ykt_purse::files::EF17_LEN];
        ef17[..crate::proposals::EF17_PREFIX.len()].copy_from_slice(&crate::proposals::EF17_PREFIX);
        ykt_purse::CardData {
            ef15: ykt_purse::Ef15 {
                issuer_id: self.issuer_id,
                application_type: crate::proposals::EF15_APPLICATION_TYPE,
                application_version: crate::proposals::EF15_APPLICATION_VERSION,
                asn: self.card_number.asn(),
                start_date: self.start_date,
                expiry_date: self.expiry_date,
                fci_data: [0, 0],
            },
            ef16: [0u8; ykt_purse::files::EF16_LEN],
            ef17,
            pin: pin.to_vec(),
            balance: 0,
            online_counter: 0,
            offline_counter: 0,
        }
    }
}
