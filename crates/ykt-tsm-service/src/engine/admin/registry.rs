//! The operators' registry (admin API writes): card issuers, card stock ranges, SE profiles,
//! an SE's profile, and the key versions the vaults hold (tsm-gp.md §2 SE registry, §6 key
//! hierarchy, §8 SE life cycle).
//!
//! Input is checked here before the store sees it ([`RegistryError::Invalid`]); every write
//! names its operator (`actor`), whose label the store's audit row records. No key value is
//! read or returned: key versions come from [`ykt_tsm::KeyVault::channel_key_info`] and
//! [`ykt_tsm::KeyVault::contains`].

use ykt_store::{
    Entity, Issuer, NewIssuer, NewSeProfile, NewStockRange, Se, SeProfile, StockRange,
};
use ykt_tsm::vault::{KeyName, KeyRef};
use ykt_tsm::{CardNumber, KeyVault, PurseCardSpec};

use crate::engine::{Engine, lock, proposals};

/// What a registry call fails with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A field of the input is malformed (HTTP 400).
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A record named by the input does not exist (HTTP 404).
    #[error("{0} not found")]
    NotFound(String),
    /// The record exists already, or overlaps one (HTTP 409).
    #[error("{0} exists already")]
    Conflict(String),
    /// The issuer has no card number left (HTTP 409).
    #[error("the card stock of issuer {0} is exhausted")]
    Exhausted(String),
    /// The store failed (HTTP 500; the detail goes to the log only).
    #[error("store error")]
    Store(#[source] ykt_store::Error),
}

impl RegistryError {
    /// The HTTP status of the error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Invalid { .. } => 400,
            Self::NotFound(_) => 404,
            Self::Conflict(_) | Self::Exhausted(_) => 409,
            Self::Store(_) => 500,
        }
    }
}

impl From<ykt_store::Error> for RegistryError {
    fn from(e: ykt_store::Error) -> Self {
        match e {
            ykt_store::Error::NotFound { what, id } => Self::NotFound(format!("{what} {id}")),
            ykt_store::Error::AlreadyExists { what, id } => Self::Conflict(format!("{what} {id}")),
            ykt_store::Error::Exhausted { issuer } => Self::Exhausted(issuer),
            ykt_store::Error::OutOfRange { .. } => Self::Invalid {
                field: "last_seq",
                reason: "sequence numbers are 0..=999999999999 and first_seq <= last_seq",
            },
            other => Self::Store(other),
        }
    }
}

/// One key the TSM uses, as an operator may see it: name, role, version; never the value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct KeyVersionView {
    /// The vault's name of the key.
    pub name: String,
    /// What it is for (`isd_master`, `token_signer`, `receipt_key`, `sp_transport`,
    /// `purse_issuer`, or `purse_issuer:<issuer id>`).
    pub role: String,
    /// Which TSM's vault holds it (`SEI`, `SP`).
    pub vault: String,
    /// Whether the vault holds it.
    pub present: bool,
    /// The algorithm of a secure-channel key set, when the vault tells it.
    pub key_type: Option<String>,
    /// The key version: the vault's for a key set, the issuer's recorded one for purse keys.
    pub version: Option<u8>,
    /// A check value: `None`, as no vault gives one without handling the value.
    pub check_value: Option<String>,
}

/// Checks an identifier: 1–64 characters of `A–Z a–z 0–9 - _ .`.
fn identifier(field: &'static str, text: &str) -> Result<(), RegistryError> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid {
            field,
            reason: "1 to 64 characters of A-Z a-z 0-9 - _ .",
        })
    }
}

/// Checks a vault key name: 1–128 printable ASCII characters, no space, no `..`.
fn key_name(field: &'static str, text: &str) -> Result<(), RegistryError> {
    let ok = !text.is_empty()
        && text.len() <= 128
        && text.bytes().all(|b| b.is_ascii_graphic())
        && !text.contains("..");
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid {
            field,
            reason: "1 to 128 printable ASCII characters, no space, no ..",
        })
    }
}

/// Checks a BCD date `YYYYMMDD`.
fn bcd_date(field: &'static str, date: [u8; 4]) -> Result<(), RegistryError> {
    let digits_ok = date.iter().all(|b| b >> 4 <= 9 && b & 0x0F <= 9);
    let bcd = |b: u8| (b >> 4) * 10 + (b & 0x0F);
    if digits_ok && (1..=12).contains(&bcd(date[2])) && (1..=31).contains(&bcd(date[3])) {
        Ok(())
    } else {
        Err(RegistryError::Invalid {
            field,
            reason: "a BCD date YYYYMMDD",
        })
    }
}

impl Engine {
    /// Every card issuer.
    pub async fn admin_issuers(&self) -> Result<Vec<Issuer>, RegistryError> {
        Ok(self.store().issuers().await?)
    }

    /// Creates a card issuer (operator `actor`).
    pub async fn admin_create_issuer(
        &self,
        actor: &str,
        issuer: &NewIssuer,
    ) -> Result<Issuer, RegistryError> {
        identifier("issuer_id", &issuer.issuer_id)?;
        key_name("purse_key", &issuer.purse_key)?;
        if issuer.name.trim().is_empty() || issuer.name.len() > 200 {
            return Err(RegistryError::Invalid {
                field: "name",
                reason: "1 to 200 characters",
            });
        }
        Ok(self.store().create_issuer(actor, issuer).await?)
    }

    /// Adds a range of card stock (operator `actor`).
    pub async fn admin_add_stock(
        &self,
        actor: &str,
        range: &NewStockRange,
    ) -> Result<StockRange, RegistryError> {
        identifier("range_id", &range.range_id)?;
        identifier("issuer_id", &range.issuer_id)?;
        bcd_date("start_date", range.start_date)?;
        bcd_date("expiry_date", range.expiry_date)?;
        if range.expiry_date < range.start_date {
            return Err(RegistryError::Invalid {
                field: "expiry_date",
                reason: "not before start_date",
            });
        }
        Ok(self.store().add_stock_range(actor, range).await?)
    }

    /// The stock ranges of an issuer (`None`: all), each with [`StockRange::remaining`].
    pub async fn admin_stock(
        &self,
        issuer_id: Option<&str>,
    ) -> Result<Vec<StockRange>, RegistryError> {
        Ok(self.store().stock_ranges(issuer_id).await?)
    }

    /// Every SE profile.
    pub async fn admin_se_profiles(&self) -> Result<Vec<SeProfile>, RegistryError> {
        Ok(self.store().se_profiles().await?)
    }

    /// Creates an SE profile (operator `actor`); the secure channel protocol is one of
    /// `proposals_registry::SE_PROFILE_SCPS`.
    pub async fn admin_create_se_profile(
        &self,
        actor: &str,
        profile: &NewSeProfile,
    ) -> Result<SeProfile, RegistryError> {
        identifier("name", &profile.name)?;
        if !proposals_registry::SE_PROFILE_SCPS.contains(&profile.scp.as_str()) {
            return Err(RegistryError::Invalid {
                field: "scp",
                reason: "one of SCP02, SCP03, SM4",
            });
        }
        Ok(self.store().create_se_profile(actor, profile).await?)
    }

    /// Sets an SE's profile by hand (operator `actor`).
    pub async fn admin_set_se_profile(
        &self,
        actor: &str,
        seid: &str,
        profile: &str,
    ) -> Result<Se, RegistryError> {
        Ok(self.store().set_se_profile(actor, seid, profile).await?)
    }

    /// Gives a just-registered SE the profile its CPLC matches (tsm-gp.md §8 `REGISTERED (CPLC/
    /// SEID seen)`); unchanged when it has one or none matches.
    pub async fn match_se_profile(&self, seid: &str) -> Result<Se, RegistryError> {
        Ok(self
            .store()
            .assign_matching_profile(proposals_registry::REGISTRATION_ACTOR, seid)
            .await?)
    }

    /// The keys the TSM uses with their versions (never values): the parties' keys and each
    /// issuer's purse-issuer keys.
    pub async fn admin_key_versions(&self) -> Result<Vec<KeyVersionView>, RegistryError> {
        let issuers = self.store().issuers().await?;
        let p = self.config().parties.clone();
        let mut wanted: Vec<(String, &'static str, KeyName, Option<u8>)> = vec![
            ("isd_master".into(), "SEI", p.isd_master, None),
            ("token_signer".into(), "SEI", p.token_signer, None),
            ("receipt_key".into(), "SEI", p.receipt_key, None),
            ("sp_transport".into(), "SP", p.sp_transport, None),
            ("purse_issuer".into(), "SP", p.purse_issuer, None),
        ];
        for i in issuers {
            wanted.push((
                format!("purse_issuer:{}", i.issuer.issuer_id),
                "SP",
                KeyName::new(&i.issuer.purse_key),
                Some(i.issuer.key_version),
            ));
        }
        // One vault locked at a time (the SEI's may be another platform's: asked where
        // blocking is allowed), never across an await.
        Ok(wanted
            .into_iter()
            .map(|(role, vault_name, name, recorded)| {
                let vault_lock = if vault_name == "SEI" {
                    &self.inner.sei
                } else {
                    &self.inner.sp
                };
                let (present, info) = crate::platform::blocking(|| {
                    let vault = lock(vault_lock);
                    let vault: &dyn KeyVault = vault.as_ref();
                    let present = vault.contains(&name);
                    let info = present
                        .then(|| vault.channel_key_info(&KeyRef::Named(name.clone())).ok())
                        .flatten();
                    (present, info)
                });
                KeyVersionView {
                    name: name.0,
                    role,
                    vault: vault_name.to_string(),
                    present,
                    key_type: info.map(|(_, kind)| format!("{kind:?}")),
                    version: recorded.or(info.map(|(v, _)| v)),
                    check_value: None,
                }
            })
            .collect())
    }

    /// The EF15 fields of the next card `issuer_id` opens: a card number taken from its stock
    /// ([`proposals::card_number`]: the range's prefix and 12 BCD digits of the sequence), once
    /// and never again. The open-card flow takes its [`PurseCardSpec`] from here instead of the
    /// fixed `CardStock`.
    pub async fn take_card_spec(&self, issuer_id: &str) -> Result<PurseCardSpec, RegistryError> {
        let taken = self.store().take_card_number(issuer_id).await?;
        let number = proposals::card_number(taken.prefix, taken.seq).ok_or_else(|| {
            RegistryError::Store(ykt_store::Error::Corrupt {
                what: Entity::StockRange,
                detail: format!("sequence {} beyond 12 digits", taken.seq),
            })
        })?;
        Ok(PurseCardSpec {
            card_number: CardNumber(number),
            issuer_id: taken.ef15_issuer,
            start_date: taken.start_date,
            expiry_date: taken.expiry_date,
        })
    }
}

/// The registry's choices that no brief fixes (\[PROPOSAL\]s), in one place.
pub mod proposals_registry {
    /// \[PROPOSAL\] (tsm-gp.md §5.3): the secure channel protocols an SE profile may name.
    pub const SE_PROFILE_SCPS: &[&str] = &["SCP02", "SCP03", "SM4"];

    /// \[PROPOSAL\]: the audit actor of a profile matched at registration (not an operator).
    /// The match itself (`ykt_store::Store::match_se_profile`) compares the CPLC's IC
    /// fabricator (bytes 0–1) and, when the profile names them, its IC type (2–3) and OS id
    /// (4–5); the most specific profile wins, then the first by name.
    pub const REGISTRATION_ACTOR: &str = "tsm:registration";
}
