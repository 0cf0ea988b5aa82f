//! The operators' registry: card issuers, card stock ranges, SE profiles and each SE's
//! profile (tsm-gp.md §2 SEI-TSM SE registry, §6 key hierarchy: the purse-issuer key by name
//! and version only).
//!
//! Every operator write appends an [`AuditKind::OperatorAction`] record in the same
//! transaction (who: the operator's label; what; before → after), so a write and its audit row
//! are committed together or not at all. Appending first also serialises operator writes on the
//! audit head, so the overlap check of a new stock range cannot race another.
//!
//! Taking a card number ([`Store::take_card_number`]) is one `UPDATE … RETURNING` on the
//! range's `next_seq`, guarded by `next_seq <= last_seq`: each number is given once, on both
//! dialects, and never again.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::error::{Entity, Error, is_foreign_key_violation, is_unique_violation};
use crate::{AuditEvent, AuditKind, Se, Store, signed, unhex, unsigned};

/// A card issuer to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIssuer {
    /// The issuer's id (operator-chosen, unique).
    pub issuer_id: String,
    /// Its name.
    pub name: String,
    /// EF15 issuer id (8 bytes), unique.
    pub ef15_issuer: [u8; 8],
    /// City code (2 bytes, BCD).
    pub city_code: [u8; 2],
    /// The vault's name of the purse-issuer master keys (a name, never a value).
    pub purse_key: String,
    /// Their current key version.
    pub key_version: u8,
}

/// A card issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Issuer {
    /// What it was created with.
    pub issuer: NewIssuer,
    /// When (Unix ms).
    pub created_ms: i64,
}

/// A range of card stock to add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStockRange {
    /// The range's id (operator-chosen, unique).
    pub range_id: String,
    /// The issuer it belongs to.
    pub issuer_id: String,
    /// The first four bytes of every card number of the range.
    pub prefix: [u8; 4],
    /// The first sequence number (the last 12 BCD digits).
    pub first_seq: u64,
    /// The last sequence number, inclusive.
    pub last_seq: u64,
    /// EF15 first valid date of its cards, BCD `YYYYMMDD`.
    pub start_date: [u8; 4],
    /// EF15 last valid date of its cards, BCD `YYYYMMDD`.
    pub expiry_date: [u8; 4],
}

/// A range of card stock.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StockRange {
    /// What it was added with.
    pub range: NewStockRange,
    /// The next sequence number to give (`last_seq + 1`: used up).
    pub next_seq: u64,
    /// When it was added (Unix ms).
    pub created_ms: i64,
}

impl StockRange {
    /// How many numbers are left.
    pub fn remaining(&self) -> u64 {
        (self.range.last_seq + 1).saturating_sub(self.next_seq)
    }
}

/// A card number taken from stock, with the EF15 fields its card is opened with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TakenNumber {
    /// The range it came from.
    pub range_id: String,
    /// The range's prefix.
    pub prefix: [u8; 4],
    /// The sequence number taken.
    pub seq: u64,
    /// The issuer's EF15 issuer id.
    pub ef15_issuer: [u8; 8],
    /// First valid date, BCD.
    pub start_date: [u8; 4],
    /// Last valid date, BCD.
    pub expiry_date: [u8; 4],
}

/// Which CPLC fields (tag `9F7F`: IC fabricator bytes 0–1, IC type 2–3, OS id 4–5) an SE
/// profile matches; `None` matches any value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CplcMatch {
    /// IC fabricator.
    pub ic_fabricator: [u8; 2],
    /// IC type.
    pub ic_type: Option<[u8; 2]>,
    /// Operating system id.
    pub os_id: Option<[u8; 2]>,
}

impl CplcMatch {
    /// Whether the CPLC data `cplc` (with or without its `9F7F` tag and length) matches.
    pub fn matches(&self, cplc: &[u8]) -> bool {
        let data = match cplc {
            [0x9F, 0x7F, _, rest @ ..] => rest,
            other => other,
        };
        let field = |at: usize| data.get(at..at + 2);
        field(0) == Some(&self.ic_fabricator[..])
            && self.ic_type.is_none_or(|t| field(2) == Some(&t[..]))
            && self.os_id.is_none_or(|o| field(4) == Some(&o[..]))
    }

    fn specificity(&self) -> u8 {
        1 + u8::from(self.ic_type.is_some()) + u8::from(self.os_id.is_some())
    }
}

/// An SE profile to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSeProfile {
    /// Its name (unique).
    pub name: String,
    /// The CPLC it matches.
    pub cplc: CplcMatch,
    /// Memory available to applications (KiB).
    pub memory_kb: u64,
    /// The secure channel protocol (`SCP02`, `SCP03`, `SM4`).
    pub scp: String,
    /// Whether the SE supports delegated management.
    pub delegated_management: bool,
}

/// An SE profile.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeProfile {
    /// What it was created with.
    pub profile: NewSeProfile,
    /// When (Unix ms).
    pub created_ms: i64,
}

fn fixed<const N: usize>(what: Entity, text: &str) -> Result<[u8; N], Error> {
    let bytes = unhex(what, text)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| Error::Corrupt {
        what,
        detail: format!("{} bytes where {N} were expected", bytes.len()),
    })
}

fn issuer_from_row(row: &AnyRow) -> Result<Issuer, Error> {
    let e = Entity::Issuer;
    let kvn: i64 = row.try_get("key_version")?;
    Ok(Issuer {
        issuer: NewIssuer {
            issuer_id: row.try_get("issuer_id")?,
            name: row.try_get("name")?,
            ef15_issuer: fixed(e, &row.try_get::<String, _>("ef15_issuer")?)?,
            city_code: fixed(e, &row.try_get::<String, _>("city_code")?)?,
            purse_key: row.try_get("purse_key")?,
            key_version: u8::try_from(kvn).map_err(|_| Error::Corrupt {
                what: e,
                detail: format!("key version {kvn}"),
            })?,
        },
        created_ms: row.try_get("created_ms")?,
    })
}

fn range_from_row(row: &AnyRow) -> Result<StockRange, Error> {
    let e = Entity::StockRange;
    Ok(StockRange {
        range: NewStockRange {
            range_id: row.try_get("range_id")?,
            issuer_id: row.try_get("issuer_id")?,
            prefix: fixed(e, &row.try_get::<String, _>("prefix")?)?,
            first_seq: unsigned(e, row.try_get("first_seq")?)?,
            last_seq: unsigned(e, row.try_get("last_seq")?)?,
            start_date: fixed(e, &row.try_get::<String, _>("start_date")?)?,
            expiry_date: fixed(e, &row.try_get::<String, _>("expiry_date")?)?,
        },
        next_seq: unsigned(e, row.try_get("next_seq")?)?,
        created_ms: row.try_get("created_ms")?,
    })
}

fn profile_from_row(row: &AnyRow) -> Result<SeProfile, Error> {
    let e = Entity::SeProfile;
    let opt = |column: &str| -> Result<Option<[u8; 2]>, Error> {
        row.try_get::<Option<String>, _>(column)?
            .map(|t| fixed(e, &t))
            .transpose()
    };
    Ok(SeProfile {
        profile: NewSeProfile {
            name: row.try_get("name")?,
            cplc: CplcMatch {
                ic_fabricator: fixed(e, &row.try_get::<String, _>("ic_fabricator")?)?,
                ic_type: opt("ic_type")?,
                os_id: opt("os_id")?,
            },
            memory_kb: unsigned(e, row.try_get("memory_kb")?)?,
            scp: row.try_get("scp")?,
            delegated_management: row.try_get::<i64, _>("delegated")? != 0,
        },
        created_ms: row.try_get("created_ms")?,
    })
}

const ISSUER_COLUMNS: &str =
    "issuer_id, name, ef15_issuer, city_code, purse_key, key_version, created_ms";
const RANGE_COLUMNS: &str = "range_id, issuer_id, prefix, first_seq, last_seq, next_seq, \
                             start_date, expiry_date, created_ms";
const PROFILE_COLUMNS: &str =
    "name, ic_fabricator, ic_type, os_id, memory_kb, scp, delegated, created_ms";

/// The largest sequence number: 12 BCD digits.
const MAX_SEQ: u64 = 999_999_999_999;

fn operator_event(actor: &str, subject: &str, detail: String) -> AuditEvent {
    AuditEvent {
        kind: AuditKind::OperatorAction,
        actor: actor.to_string(),
        subject: subject.to_string(),
        detail,
    }
}

impl Store {
    /// Creates a card issuer; `actor` is the operator's label for the audit row.
    /// [`Error::AlreadyExists`] for a known id or EF15 issuer id.
    pub async fn create_issuer(&self, actor: &str, issuer: &NewIssuer) -> Result<Issuer, Error> {
        let mut tx = self.begin_write().await?;
        let detail = format!(
            "create issuer: before none; after name={:?} ef15={} city={} key={}/v{}",
            issuer.name,
            hex::encode(issuer.ef15_issuer),
            hex::encode(issuer.city_code),
            issuer.purse_key,
            issuer.key_version
        );
        self.append_audit_in(&mut tx, &operator_event(actor, &issuer.issuer_id, detail))
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO issuer (issuer_id, name, ef15_issuer, city_code, purse_key, key_version, \
             created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&issuer.issuer_id)
        .bind(&issuer.name)
        .bind(hex::encode(issuer.ef15_issuer))
        .bind(hex::encode(issuer.city_code))
        .bind(&issuer.purse_key)
        .bind(i64::from(issuer.key_version))
        .bind(self.now())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::AlreadyExists {
                    what: Entity::Issuer,
                    id: issuer.issuer_id.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        self.issuer(&issuer.issuer_id).await
    }

    /// The issuer `issuer_id`, or [`Error::NotFound`].
    pub async fn issuer(&self, issuer_id: &str) -> Result<Issuer, Error> {
        let sql = format!("SELECT {ISSUER_COLUMNS} FROM issuer WHERE issuer_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(issuer_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Issuer, issuer_id))?;
        issuer_from_row(&row)
    }

    /// Every issuer, by id.
    pub async fn issuers(&self) -> Result<Vec<Issuer>, Error> {
        let sql = format!("SELECT {ISSUER_COLUMNS} FROM issuer ORDER BY issuer_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(issuer_from_row).collect()
    }

    /// Adds a range of card stock to an issuer. [`Error::NotFound`] for an unknown issuer,
    /// [`Error::AlreadyExists`] for a known range id or a range whose numbers overlap another's
    /// (same prefix), [`Error::OutOfRange`] for a sequence beyond 12 digits or `last < first`.
    pub async fn add_stock_range(
        &self,
        actor: &str,
        range: &NewStockRange,
    ) -> Result<StockRange, Error> {
        if range.last_seq > MAX_SEQ || range.first_seq > range.last_seq {
            return Err(Error::OutOfRange {
                value: range.last_seq.max(range.first_seq),
            });
        }
        let mut tx = self.begin_write().await?;
        let detail = format!(
            "add card stock: before none; after issuer={} prefix={} seq={}..={} valid {}..{}",
            range.issuer_id,
            hex::encode(range.prefix),
            range.first_seq,
            range.last_seq,
            hex::encode(range.start_date),
            hex::encode(range.expiry_date)
        );
        // First, so that concurrent operator writes queue here before the overlap check.
        self.append_audit_in(&mut tx, &operator_event(actor, &range.range_id, detail))
            .await?;
        let (overlapping,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM card_stock WHERE prefix = $1 AND first_seq <= $2 \
             AND last_seq >= $3",
        )
        .bind(hex::encode(range.prefix))
        .bind(signed(range.last_seq)?)
        .bind(signed(range.first_seq)?)
        .fetch_one(&mut *tx)
        .await?;
        if overlapping > 0 {
            return Err(Error::AlreadyExists {
                what: Entity::StockRange,
                id: format!(
                    "{} {}..={} (overlaps)",
                    hex::encode(range.prefix),
                    range.first_seq,
                    range.last_seq
                ),
            });
        }
        let inserted = sqlx::query(
            "INSERT INTO card_stock (range_id, issuer_id, prefix, first_seq, last_seq, next_seq, \
             start_date, expiry_date, created_ms) VALUES ($1, $2, $3, $4, $5, $4, $6, $7, $8)",
        )
        .bind(&range.range_id)
        .bind(&range.issuer_id)
        .bind(hex::encode(range.prefix))
        .bind(signed(range.first_seq)?)
        .bind(signed(range.last_seq)?)
        .bind(hex::encode(range.start_date))
        .bind(hex::encode(range.expiry_date))
        .bind(self.now())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::AlreadyExists {
                    what: Entity::StockRange,
                    id: range.range_id.clone(),
                });
            }
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(Error::not_found(Entity::Issuer, &range.issuer_id));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        self.stock_range(&range.range_id).await
    }

    /// The stock range `range_id`, or [`Error::NotFound`].
    pub async fn stock_range(&self, range_id: &str) -> Result<StockRange, Error> {
        let sql = format!("SELECT {RANGE_COLUMNS} FROM card_stock WHERE range_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(range_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::not_found(Entity::StockRange, range_id))?;
        range_from_row(&row)
    }

    /// The stock ranges of an issuer (`None`: of every issuer), by range id.
    pub async fn stock_ranges(&self, issuer_id: Option<&str>) -> Result<Vec<StockRange>, Error> {
        let sql = format!(
            "SELECT {RANGE_COLUMNS} FROM card_stock WHERE ($1 IS NULL OR issuer_id = $1) \
             ORDER BY range_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(issuer_id.map(str::to_string))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(range_from_row).collect()
    }

    /// Takes the next free card number of `issuer_id` (from its oldest range that has one
    /// left). Each number is given once; [`Error::Exhausted`] when none is left,
    /// [`Error::NotFound`] for an unknown issuer.
    pub async fn take_card_number(&self, issuer_id: &str) -> Result<TakenNumber, Error> {
        let issuer = self.issuer(issuer_id).await?;
        loop {
            // A candidate range; the UPDATE below re-checks it under the row lock.
            let candidate: Option<(String,)> = sqlx::query_as(
                "SELECT range_id FROM card_stock WHERE issuer_id = $1 AND next_seq <= last_seq \
                 ORDER BY created_ms, range_id LIMIT 1",
            )
            .bind(issuer_id)
            .fetch_optional(&self.pool)
            .await?;
            let Some((range_id,)) = candidate else {
                return Err(Error::Exhausted {
                    issuer: issuer_id.to_string(),
                });
            };
            let sql = format!(
                "UPDATE card_stock SET next_seq = next_seq + 1 \
                 WHERE range_id = $1 AND next_seq <= last_seq RETURNING {RANGE_COLUMNS}"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&range_id)
                .fetch_optional(&self.pool)
                .await?;
            // None: another taker used the range up between the two statements; look again.
            if let Some(row) = row {
                let range = range_from_row(&row)?;
                return Ok(TakenNumber {
                    range_id,
                    prefix: range.range.prefix,
                    seq: range.next_seq - 1,
                    ef15_issuer: issuer.issuer.ef15_issuer,
                    start_date: range.range.start_date,
                    expiry_date: range.range.expiry_date,
                });
            }
        }
    }

    /// Creates an SE profile. [`Error::AlreadyExists`] for a known name.
    pub async fn create_se_profile(
        &self,
        actor: &str,
        profile: &NewSeProfile,
    ) -> Result<SeProfile, Error> {
        let mut tx = self.begin_write().await?;
        let c = &profile.cplc;
        let detail = format!(
            "create SE profile: before none; after cplc={}/{}/{} memory={}KiB scp={} dm={}",
            hex::encode(c.ic_fabricator),
            c.ic_type.map_or_else(|| "*".into(), hex::encode),
            c.os_id.map_or_else(|| "*".into(), hex::encode),
            profile.memory_kb,
            profile.scp,
            profile.delegated_management
        );
        self.append_audit_in(&mut tx, &operator_event(actor, &profile.name, detail))
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO se_profile (name, ic_fabricator, ic_type, os_id, memory_kb, scp, \
             delegated, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&profile.name)
        .bind(hex::encode(c.ic_fabricator))
        .bind(c.ic_type.map(hex::encode))
        .bind(c.os_id.map(hex::encode))
        .bind(signed(profile.memory_kb)?)
        .bind(&profile.scp)
        .bind(i64::from(profile.delegated_management))
        .bind(self.now())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::AlreadyExists {
                    what: Entity::SeProfile,
                    id: profile.name.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        self.se_profile(&profile.name).await
    }

    /// The SE profile `name`, or [`Error::NotFound`].
    pub async fn se_profile(&self, name: &str) -> Result<SeProfile, Error> {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM se_profile WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::not_found(Entity::SeProfile, name))?;
        profile_from_row(&row)
    }

    /// Every SE profile, by name.
    pub async fn se_profiles(&self) -> Result<Vec<SeProfile>, Error> {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM se_profile ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(profile_from_row).collect()
    }

    /// The profile whose CPLC match fits `cplc`, the most specific first (more fields given),
    /// then by name; `None` when none fits.
    pub async fn match_se_profile(&self, cplc: &[u8]) -> Result<Option<SeProfile>, Error> {
        let mut fitting: Vec<SeProfile> = self
            .se_profiles()
            .await?
            .into_iter()
            .filter(|p| p.profile.cplc.matches(cplc))
            .collect();
        fitting.sort_by(|a, b| {
            b.profile
                .cplc
                .specificity()
                .cmp(&a.profile.cplc.specificity())
                .then_with(|| a.profile.name.cmp(&b.profile.name))
        });
        Ok(fitting.into_iter().next())
    }

    /// Sets the SE's profile by hand (operator): [`Error::NotFound`] for an unknown SE or
    /// profile. The audit row records the profile before and after.
    pub async fn set_se_profile(
        &self,
        actor: &str,
        seid: &str,
        profile: &str,
    ) -> Result<Se, Error> {
        self.se_profile(profile).await?;
        let before = self.se(seid).await?;
        let mut tx = self.begin_write().await?;
        let detail = format!(
            "set SE profile: before {:?}; after {profile:?}",
            before.profile
        );
        self.append_audit_in(&mut tx, &operator_event(actor, seid, detail))
            .await?;
        let done = sqlx::query(
            "UPDATE se SET profile = $1, version = version + 1, updated_ms = $2 WHERE seid = $3",
        )
        .bind(profile)
        .bind(self.now())
        .bind(seid)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(Entity::Se, seid));
        }
        tx.commit().await?;
        self.se(seid).await
    }

    /// Gives an SE without a profile the one its CPLC matches (registration); the SE row is
    /// returned unchanged when it has a profile already or none matches.
    pub async fn assign_matching_profile(&self, actor: &str, seid: &str) -> Result<Se, Error> {
        let se = self.se(seid).await?;
        if !se.profile.is_empty() {
            return Ok(se);
        }
        match self.match_se_profile(&se.cplc).await? {
            Some(p) => self.set_se_profile(actor, seid, &p.profile.name).await,
            None => Ok(se),
        }
    }
}
