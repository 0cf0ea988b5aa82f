//! `ykt wallet api …`: the wallet's local API for other apps (client.md §6.6) on the command
//! line: grants (scoped HMAC-SM3 tokens), the guarded server (`ykt_wallet_api::server`) over
//! this wallet, and the user's answer to the top-up requests apps make.
//!
//! | file in WDIR | what |
//! |---|---|
//! | `api.sealed` | the per-install token secret, sealed like `wallet.sealed` (SM4-GCM under the wallet's passphrase, `ykt_wallet::seal`), mode 0600, made at the first grant |
//! | `api.grants.json` | the grant book: every grant (never its token) and the revocations, with an HMAC-SM3 under the secret; mode 0600 |
//! | `api.topups.json` | the top-up requests apps made, `PENDING_USER` until `confirm` or `deny` |
//! | `api.lock` | the lock the commands and the server take around the wallet and these files |
//! | `api.serve.lock` | held (shared) by a running server for its lifetime |
//!
//! Other apps run as the same user, so the secret is never on disk in clear: whoever could read
//! it could mint tokens. Granting, revoking and listing take the wallet's passphrase; the
//! server opens the secret once at start. The secret is a sealed file of its own, not a record
//! of `wallet.sealed`, whose records are the wallet SDK's. A grant book whose MAC does not
//! check is refused (an app cannot strike out a revocation).
//! The server reads the grant book again whenever the file changes (checked every
//! [`proposals::BOOK_POLL_MS`]) and at once on `SIGHUP`, so `revoke` reaches a running server
//! without a restart.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};
use ykt_card::Card as SeCard;
use ykt_transport::{CardChannel as _, PcscChannel};
use ykt_wallet::seal::Record as SealRecord;
use ykt_wallet::{
    CardNo, LinkError, Links, Operation, Persist as _, Progress, SeError, SeLink, SealKey, Session,
    TsmLink, Wallet, WalletState,
};
use ykt_wallet_api::token::hmac_sm3;
use ykt_wallet_api::{
    AppState, BackendError, Balance, Card, CardHandle, CardNumber, GrantBook, GrantState,
    LocalBackend, RecordKind, Revocations, Scope, Secret, TcpServer, TopupId, TransactionRecord,
    UnixServer,
};
use zeroize::Zeroizing;

use crate::clock::{CST_OFFSET_SECONDS, yuan};
use crate::entropy::{OsEntropy, SystemRandom};
use crate::wallet::{CardSe, HttpTsm, StateFile, now_ms};

/// Our choices for the local API's files and the server's reloads (client.md §6.6 is a
/// \[PROPOSAL\] throughout; these are not in it).
pub mod proposals {
    /// The sealed per-install secret's file name in the wallet directory (mode 0600).
    pub const SECRET_FILE: &str = "api.sealed";
    /// The record type of the secret in [`SECRET_FILE`].
    pub const SECRET_RECORD: u8 = 1;
    /// The grant book's file name (JSON, mode 0600).
    pub const BOOK_FILE: &str = "api.grants.json";
    /// The top-up requests' file name (JSON, mode 0600).
    pub const TOPUPS_FILE: &str = "api.topups.json";
    /// The lock file: the local API's commands and the server take it (an exclusive `flock`)
    /// around every use of the sealed state, the SE and the files above, so a `confirm` and a
    /// request to the server never interleave their SE commands or their writes.
    pub const LOCK_FILE: &str = "api.lock";
    /// The file a running server holds a shared `flock` on for as long as it runs (it takes
    /// [`LOCK_FILE`] only around each request), so `ykt wallet purge` can tell that a server
    /// still uses the wallet.
    pub const SERVE_LOCK_FILE: &str = "api.serve.lock";
    /// How often the server looks at the grant book's modification time, milliseconds.
    pub const BOOK_POLL_MS: u64 = 250;
    /// What the card handles' HMAC-SM3 is computed over before the card number (a domain label,
    /// so the handle is no token MAC).
    pub const HANDLE_LABEL: &[u8] = b"ykt-wallet-api card handle\0";
    /// The label other apps see for each card (the wallet keeps no label of the user's yet).
    pub const CARD_LABEL: &str = "transit card";
    /// How often the server checks whether its session has idled long enough to lock,
    /// milliseconds (the timeouts themselves are `ykt_wallet::session::proposals`).
    pub const IDLE_POLL_MS: u64 = 1000;
}

use self::proposals::{
    BOOK_FILE, BOOK_POLL_MS, CARD_LABEL, HANDLE_LABEL, IDLE_POLL_MS, LOCK_FILE, SECRET_FILE,
    SECRET_RECORD, SERVE_LOCK_FILE, TOPUPS_FILE,
};

/// The sealed state's file name (as `ykt wallet` keeps it).
const STATE_FILE: &str = "wallet.sealed";

/// `ykt wallet api …`: grants for other apps, the local API server, and the user's answer to
/// their top-up requests (client.md §6.6).
#[derive(Debug, clap::Subcommand)]
pub enum ApiCommand {
    /// Grants APP_ID a token with the scopes for the time given; prints the token (only).
    Grant {
        #[command(flatten)]
        wallet: ApiWallet,
        /// The app's id (`[A-Za-z0-9._-]`).
        #[arg(long, value_name = "APP_ID")]
        app: String,
        /// Comma-separated scopes: balance:read, records:read, cards:read, topup:initiate.
        #[arg(long, value_delimiter = ',', required = true)]
        scope: Vec<String>,
        /// Lifetime: seconds, or with a unit (90s, 5m); at most 15 minutes.
        #[arg(long, default_value = "5m")]
        ttl: String,
    },
    /// Revokes one grant (--jti) or every grant of an app (--app).
    Revoke {
        #[command(flatten)]
        wallet: ApiWallet,
        /// The grant's id, as `list` shows it.
        #[arg(long, conflicts_with = "app", required_unless_present = "app")]
        jti: Option<String>,
        /// Every grant of this app.
        #[arg(long)]
        app: Option<String>,
    },
    /// Lists the grants and where each stands.
    List {
        #[command(flatten)]
        wallet: ApiWallet,
    },
    /// Serves the local API over this wallet until SIGINT or SIGTERM.
    ///
    /// The passphrase unlocks the wallet at start (client.md §6.10). After --idle-lock without
    /// a request the wallet locks: its data key is dropped and wiped, and every call gets
    /// 503 {"error":"locked"} (health still answers). To unlock, stop the server and start it
    /// again with the passphrase; a running server never takes a passphrase.
    Serve {
        #[command(flatten)]
        wallet: ApiWallet,
        #[command(flatten)]
        se: ApiSe,
        /// The Unix socket (default: $XDG_RUNTIME_DIR/ykt-wallet.sock).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Also serve on 127.0.0.1:PORT (0: any free port).
        #[arg(long, value_name = "PORT")]
        http_port: Option<u16>,
        /// Lock the wallet after this long without a request: seconds, or with a unit (90s,
        /// 5m); at most 5 minutes.
        #[arg(long, value_name = "TIME", default_value = "5m")]
        idle_lock: String,
    },
    /// The top-up requests apps made, and where each stands.
    Requests {
        /// The wallet's directory.
        #[arg(long, value_name = "WDIR")]
        dir: PathBuf,
    },
    /// Confirms an app's top-up request: the top-up runs (order, payment, online load).
    Confirm {
        #[command(flatten)]
        wallet: ApiWallet,
        #[command(flatten)]
        se: ApiSe,
        /// The request's id.
        #[arg(long)]
        id: String,
    },
    /// Declines an app's top-up request.
    Deny {
        /// The wallet's directory.
        #[arg(long, value_name = "WDIR")]
        dir: PathBuf,
        /// The request's id.
        #[arg(long)]
        id: String,
    },
}

/// The wallet's directory and passphrase.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiWallet {
    /// The wallet's directory.
    #[arg(long, value_name = "WDIR")]
    dir: PathBuf,
    /// A file holding the passphrase of the sealed state (default: $YKT_WALLET_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

/// Where the SE is.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiSe {
    /// A simulated SE in a state file (saved after every command).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "reader",
        required_unless_present = "reader"
    )]
    se_state: Option<PathBuf>,
    /// A PC/SC reader.
    #[arg(long)]
    reader: Option<String>,
}

/// Runs `ykt wallet api …`.
pub fn run(command: ApiCommand) -> anyhow::Result<()> {
    match command {
        ApiCommand::Grant {
            wallet,
            app,
            scope,
            ttl,
        } => grant(&wallet, &app, &scope, &ttl),
        ApiCommand::Revoke { wallet, jti, app } => revoke(&wallet, jti.as_deref(), app.as_deref()),
        ApiCommand::List { wallet } => list(&wallet),
        ApiCommand::Serve {
            wallet,
            se,
            socket,
            http_port,
            idle_lock,
        } => serve(wallet, se, socket, http_port, &idle_lock),
        ApiCommand::Requests { dir } => requests(&dir),
        ApiCommand::Confirm { wallet, se, id } => confirm(&wallet, &se, &id),
        ApiCommand::Deny { dir, id } => deny(&dir, &id),
    }
}

// ---- files -------------------------------------------------------------------------------------

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes `bytes` to `path` through a temporary file (mode 0600) and a rename.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    written.with_context(|| format!("writing {}", path.display()))
}

/// Takes the wallet directory's lock (waiting for it); released when the file is dropped.
pub(crate) fn lock(dir: &Path) -> anyhow::Result<fs::File> {
    let file = lock_file(dir, LOCK_FILE)?;
    file.lock()
        .with_context(|| format!("locking {}", dir.join(LOCK_FILE).display()))?;
    Ok(file)
}

/// The lock file `name` in `dir` (made, mode 0600, if it is not there), not locked yet.
pub(crate) fn lock_file(dir: &Path, name: &str) -> anyhow::Result<fs::File> {
    let path = dir.join(name);
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))
}

fn wallet_dir(dir: &Path) -> anyhow::Result<()> {
    ensure!(
        dir.join(STATE_FILE).exists(),
        "{} has no wallet (run `ykt wallet enrol` first)",
        dir.display()
    );
    Ok(())
}

/// The per-install secret (client.md §6.6), sealed under the wallet's passphrase; made at the
/// first use when `create`, once the passphrase has opened the wallet's own state.
fn secret(dir: &Path, pass: &[u8], create: bool) -> anyhow::Result<Secret> {
    let path = dir.join(SECRET_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let (_, records) = SealKey::open(pass, &bytes)
                .with_context(|| format!("opening {}", path.display()))?;
            records
                .iter()
                .find(|r| r.kind == SECRET_RECORD)
                .and_then(|r| Secret::from_slice(&r.data))
                .ok_or_else(|| anyhow::anyhow!("{} holds no secret", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            StateFile::open(&dir.join(STATE_FILE), pass)?;
            let secret = ykt_wallet_api::grant::new_secret()?;
            let mut rng = SystemRandom::new()?;
            let key = SealKey::create(pass, &mut rng);
            let record = SealRecord {
                kind: SECRET_RECORD,
                id: b"api-secret".to_vec(),
                data: Zeroizing::new(secret.expose().to_vec()),
            };
            let sealed = key
                .seal(&[record], &mut rng)
                .context("sealing the API secret")?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(&sealed)?;
            f.sync_all()?;
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("no grants yet: run `ykt wallet api grant` first")
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The grant book, if its MAC under `secret` checks (an empty book when there is none yet).
fn load_book(dir: &Path, secret: &Secret) -> anyhow::Result<GrantBook> {
    let path = dir.join(BOOK_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(GrantBook::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let file: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("reading the grant book {}", path.display()))?;
    let (Some(book), Some(mac)) = (
        file.get("book").and_then(Value::as_str),
        file.get("mac").and_then(Value::as_str),
    ) else {
        bail!("{} is not a grant book", path.display());
    };
    let expected = hmac_sm3(secret.expose(), book.as_bytes());
    let mac = hex::decode(mac).unwrap_or_default();
    ensure!(
        equal(&mac, &expected),
        "the grant book {} was changed outside the wallet",
        path.display()
    );
    serde_json::from_str(book).with_context(|| format!("reading the grant book {}", path.display()))
}

fn save_book(dir: &Path, secret: &Secret, book: &GrantBook) -> anyhow::Result<()> {
    let text = serde_json::to_string(book).context("encoding the grant book")?;
    let mac = hex::encode(hmac_sm3(secret.expose(), text.as_bytes()));
    let bytes = serde_json::to_vec_pretty(&json!({ "book": text, "mac": mac }))?;
    write_private(&dir.join(BOOK_FILE), &bytes)
}

/// A lifetime: `N`, `Ns`, `Nm` or `Nh`.
fn parse_ttl(text: &str) -> anyhow::Result<u64> {
    let (digits, unit) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1),
        Some((i, 'm')) => (&text[..i], 60),
        Some((i, 'h')) => (&text[..i], 3600),
        _ => (text, 1),
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("--ttl {text:?}: a number with s, m or h"))?;
    n.checked_mul(unit)
        .ok_or_else(|| anyhow::anyhow!("--ttl {text:?} is too long"))
}

// ---- grants (client.md §6.6 "Tokens") ----------------------------------------------------------

fn grant(w: &ApiWallet, app: &str, scopes: &[String], ttl: &str) -> anyhow::Result<()> {
    let dir = &w.dir;
    wallet_dir(dir)?;
    let scopes = scopes
        .iter()
        .map(|s| {
            s.trim()
                .parse::<Scope>()
                .with_context(|| format!("scope {s:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ttl = parse_ttl(ttl)?;
    let max = ykt_wallet_api::proposals::MAX_TTL_SECS;
    ensure!(
        (1..=max).contains(&ttl),
        "--ttl must be 1 s to {max} s (client.md §6.6)"
    );
    let pass = passphrase(w)?;
    let _lock = lock(dir)?;
    let secret = secret(dir, &pass, true)?;
    let mut book = load_book(dir, &secret)?;
    let now = unix_now();
    book.prune(now);
    let token = book
        .issue(&secret, app, &scopes, ttl, now)
        .context("granting")?;
    save_book(dir, &secret, &book)?;
    if let Some(g) = book.list(now).last() {
        eprintln!(
            "granted {app}: jti {}, scopes {}, expires in {ttl} s",
            g.grant.jti,
            scope_list(&g.grant.scope)
        );
    }
    println!("{}", token.as_str());
    Ok(())
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn revoke(w: &ApiWallet, jti: Option<&str>, app: Option<&str>) -> anyhow::Result<()> {
    let dir = &w.dir;
    let pass = passphrase(w)?;
    let _lock = lock(dir)?;
    let secret = secret(dir, &pass, false)?;
    let mut book = load_book(dir, &secret)?;
    match (jti, app) {
        (Some(jti), _) => {
            let g = book.revoke(jti).context("revoking")?;
            println!("revoked {} of {}", g.jti, g.sub);
        }
        (None, Some(app)) => {
            let n = book.revoke_app(app);
            ensure!(n > 0, "{app} has no grants");
            println!("revoked {n} grants of {app}");
        }
        (None, None) => bail!("give --jti or --app"),
    }
    save_book(dir, &secret, &book)
}

fn list(w: &ApiWallet) -> anyhow::Result<()> {
    let pass = passphrase(w)?;
    let book = match secret(&w.dir, &pass, false) {
        Ok(secret) => load_book(&w.dir, &secret)?,
        Err(_) if !w.dir.join(SECRET_FILE).exists() => GrantBook::new(),
        Err(e) => return Err(e),
    };
    let now = unix_now();
    let grants = book.list(now);
    if grants.is_empty() {
        println!("no grants");
    }
    for g in grants {
        let state = match g.state {
            GrantState::Active => "active",
            GrantState::Expired => "expired",
            GrantState::Revoked => "revoked",
            _ => "?",
        };
        println!(
            "{}  {}  {}  {state}  expires at {} (in {} s)",
            g.grant.jti,
            g.grant.sub,
            scope_list(&g.grant.scope),
            g.grant.exp,
            g.grant.exp.saturating_sub(now)
        );
    }
    Ok(())
}

// ---- the wallet and its SE ---------------------------------------------------------------------

fn passphrase(w: &ApiWallet) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let text = match &w.passphrase_file {
        Some(p) => Zeroizing::new(
            fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => Zeroizing::new(std::env::var("YKT_WALLET_PASSPHRASE").map_err(|_| {
            anyhow::anyhow!("no passphrase: set YKT_WALLET_PASSPHRASE or give --passphrase-file")
        })?),
    };
    Ok(Zeroizing::new(
        text.trim_end_matches(['\n', '\r']).as_bytes().to_vec(),
    ))
}

/// No TSM: the local API's reads are offline on the SE (client.md §2).
struct NoTsm;

impl TsmLink for NoTsm {
    fn send(&mut self, _: &ykt_envelope::Envelope) -> Result<ykt_envelope::Envelope, LinkError> {
        Err(LinkError::Unreachable)
    }
}

struct PcscSe(PcscChannel);

impl SeLink for PcscSe {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, SeError> {
        let command = ykt_apdu::CommandApdu::parse(capdu).map_err(|_| SeError::Communication)?;
        let response = self
            .0
            .transmit(&command)
            .map_err(|_| SeError::Communication)?;
        Ok(response.to_bytes())
    }
}

/// Reaches the SE, runs `job` on the wallet opened (`file` and `state`) and saves the state.
fn with_wallet<T>(
    (mut file, state): (StateFile, WalletState),
    se: &ApiSe,
    tsm: &mut dyn TsmLink,
    job: impl FnOnce(&mut Wallet, &mut Links<'_>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut wallet = Wallet::new(state);
    let mut progress = |_: Progress| {};
    let result = match (&se.se_state, &se.reader) {
        (Some(path), _) => {
            let (mut card, _) = crate::state::load_or_create(
                path,
                Box::new(OsEntropy::new()?),
                || -> anyhow::Result<SeCard> { bail!("no SE at {}", path.display()) },
            )?;
            // The phone's NFC controller powers the SE for the session.
            card.power_on();
            let path = path.clone();
            let mut link = CardSe {
                card: &mut card,
                save: Box::new(move |c| Ok(crate::state::save(&path, c)?)),
            };
            let mut links = Links {
                tsm,
                se: &mut link,
                persist: &mut file,
                progress: &mut progress,
            };
            job(&mut wallet, &mut links)
        }
        (None, Some(reader)) => {
            let channel =
                PcscChannel::connect(reader).with_context(|| format!("PC/SC reader {reader:?}"))?;
            let mut link = PcscSe(channel);
            let mut links = Links {
                tsm,
                se: &mut link,
                persist: &mut file,
                progress: &mut progress,
            };
            job(&mut wallet, &mut links)
        }
        (None, None) => bail!("where is the SE? give --se-state FILE or --reader NAME"),
    };
    file.persist(wallet.state())
        .map_err(|_| anyhow::anyhow!("saving the wallet state"))?;
    result
}

/// The handle other apps name a card by: an HMAC-SM3 of its number under the install's secret
/// (16 hex digits). Not a plain hash: with the masked number beside it, the few hidden digits
/// of a plain hash could be found by trying them all.
fn handle_of(secret: &Secret, card: &CardNo) -> Option<CardHandle> {
    let mut data = HANDLE_LABEL.to_vec();
    data.extend_from_slice(card.danger_full().as_bytes());
    CardHandle::new(&hex::encode(&hmac_sm3(secret.expose(), &data)[..8]))
}

fn card_of(secret: &Secret, state: &WalletState, handle: &CardHandle) -> Option<CardNo> {
    state
        .cards
        .iter()
        .find(|c| handle_of(secret, &c.card_no).as_ref() == Some(handle))
        .map(|c| c.card_no.clone())
}

/// The Unix time of an EF18 record's BCD date and time (e-purse.md §2), which terminals keep in
/// China Standard Time.
fn record_time(date: [u8; 4], time: [u8; 3]) -> u64 {
    let bcd = |b: u8| i64::from(b >> 4) * 10 + i64::from(b & 0x0F);
    let year = bcd(date[0]) * 100 + bcd(date[1]);
    let (month, day) = (bcd(date[2]), bcd(date[3]));
    // Days from the civil date (the era-based conversion, inverse of clock::civil_from_days).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs =
        days * 86_400 + bcd(time[0]) * 3600 + bcd(time[1]) * 60 + bcd(time[2]) - CST_OFFSET_SECONDS;
    u64::try_from(secs).unwrap_or(0)
}

/// The wallet as the local API's backend: cards from the sealed state, balance and records read
/// on the SE through the SDK, top-up requests recorded for the user (client.md §6.6).
///
/// It keeps no passphrase: the session (client.md §6.10) holds the sealed state's data key
/// while unlocked, and each request opens the state with it, so the device key is in memory
/// only while a request runs. Once the session has locked, every request is refused
/// ([`BackendError::Locked`]) until the server is started again with the passphrase.
struct WalletBackend {
    dir: PathBuf,
    session: Mutex<Session<SealKey>>,
    /// The install's secret, for the card handles.
    secret: Secret,
    se: ApiSe,
}

impl WalletBackend {
    /// The state opened with the session's key (a use of the session: its idle time starts
    /// again). client.md §6.10: reads and top-up requests need only an unlocked session.
    fn open(&self) -> Result<(StateFile, WalletState), BackendError> {
        let key = self
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .use_key(now_ms(), Operation::Read)
            .map_err(|e| {
                tracing::info!("local API: {}", e.user_code());
                BackendError::Locked
            })?
            .clone();
        StateFile::reopen(&self.dir.join(STATE_FILE), &key).map_err(unavailable)
    }

    /// Locks the session if it has idled too long; `true` if it locked now.
    fn tick(&self) -> bool {
        self.session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tick(now_ms())
    }

    fn read<T>(
        &self,
        handle: &CardHandle,
        job: impl FnOnce(&mut Wallet, &mut Links<'_>, &CardNo) -> anyhow::Result<T>,
    ) -> Result<T, BackendError> {
        let _lock = lock(&self.dir).map_err(unavailable)?;
        let opened = self.open()?;
        let mut unknown = false;
        let result = with_wallet(opened, &self.se, &mut NoTsm, |w, links| {
            let Some(card) = card_of(&self.secret, w.state(), handle) else {
                unknown = true;
                bail!("no such card");
            };
            job(w, links, &card)
        });
        result.map_err(|e| {
            if unknown {
                BackendError::UnknownCard
            } else {
                tracing::warn!("local API: the wallet could not answer: {e:#}");
                BackendError::Unavailable
            }
        })
    }
}

/// A failure the app sees only as "unavailable"; the log has it.
fn unavailable(e: anyhow::Error) -> BackendError {
    tracing::warn!("local API: the wallet could not answer: {e:#}");
    BackendError::Unavailable
}

impl LocalBackend for WalletBackend {
    fn cards(&self) -> Result<Vec<Card>, BackendError> {
        let _lock = lock(&self.dir).map_err(unavailable)?;
        let (_, state) = self.open()?;
        Ok(state
            .cards
            .iter()
            .filter_map(|c| {
                Some(Card {
                    handle: handle_of(&self.secret, &c.card_no)?,
                    number: CardNumber::new(c.card_no.danger_full()),
                    label: CARD_LABEL.to_string(),
                })
            })
            .collect())
    }

    fn balance(&self, card: &CardHandle) -> Result<Balance, BackendError> {
        // client.md §2: the balance is read offline on the SE.
        let fen = self.read(card, |w, links, c| {
            w.balance(links, now_ms(), c)
                .map_err(|e| anyhow::anyhow!("{}", e.user_text().0))
        })?;
        Ok(Balance {
            amount_fen: i64::from(fen),
        })
    }

    fn records(&self, card: &CardHandle) -> Result<Vec<TransactionRecord>, BackendError> {
        // client.md §2: the records are read offline on the SE (EF18, e-purse.md §2).
        let records = self.read(card, |w, links, c| {
            w.records(links, c)
                .map_err(|e| anyhow::anyhow!("{}", e.user_text().0))
        })?;
        Ok(records
            .into_iter()
            .map(|r| TransactionRecord {
                time: record_time(r.date, r.time),
                kind: match r.transaction_type {
                    0x02 => RecordKind::Load,
                    0x06 | 0x09 => RecordKind::Purchase,
                    _ => RecordKind::Other,
                },
                amount_fen: u64::from(r.amount),
            })
            .collect())
    }

    fn request_topup(
        &self,
        app: &str,
        card: &CardHandle,
        amount_fen: u64,
    ) -> Result<TopupId, BackendError> {
        // client.md §6.6: only a PENDING_USER request, which the user confirms.
        if amount_fen == 0 || u32::try_from(amount_fen).is_err() {
            return Err(BackendError::BadAmount);
        }
        let _lock = lock(&self.dir).map_err(unavailable)?;
        let (_, state) = self.open()?;
        if card_of(&self.secret, &state, card).is_none() {
            return Err(BackendError::UnknownCard);
        }
        let id = add_topup(&self.dir, app, card, amount_fen).map_err(unavailable)?;
        tracing::info!(id = %id.0, app, amount_fen, "top-up request waiting for the user");
        Ok(id)
    }
}

// ---- top-up requests ---------------------------------------------------------------------------

fn load_topups(dir: &Path) -> anyhow::Result<Vec<Value>> {
    let path = dir.join(TOPUPS_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let v: Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?;
            match v.get("requests").and_then(Value::as_array) {
                Some(list) => Ok(list.clone()),
                None => bail!("{} has no request list", path.display()),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn save_topups(dir: &Path, requests: &[Value]) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(&json!({ "requests": requests }))?;
    write_private(&dir.join(TOPUPS_FILE), &bytes)
}

fn add_topup(dir: &Path, app: &str, card: &CardHandle, amount_fen: u64) -> anyhow::Result<TopupId> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the OS random source: {e}"))?;
    let id = format!("tp-{}", hex::encode(bytes));
    let mut requests = load_topups(dir)?;
    requests.push(json!({
        "id": id,
        "app": app,
        "card": card.as_str(),
        "amount_fen": amount_fen,
        "state": "PENDING_USER",
        "requested_at": unix_now(),
    }));
    save_topups(dir, &requests)?;
    Ok(TopupId(id))
}

fn field<'a>(r: &'a Value, name: &str) -> &'a str {
    r.get(name).and_then(Value::as_str).unwrap_or("?")
}

/// The pending request `id`, its index in `requests`.
fn pending(requests: &[Value], id: &str) -> anyhow::Result<usize> {
    let Some(i) = requests.iter().position(|r| field(r, "id") == id) else {
        bail!("no top-up request {id} (see `ykt wallet api requests`)");
    };
    let state = field(&requests[i], "state");
    ensure!(state == "PENDING_USER", "top-up request {id} is {state}");
    Ok(i)
}

fn requests(dir: &Path) -> anyhow::Result<()> {
    let requests = load_topups(dir)?;
    if requests.is_empty() {
        println!("no top-up requests");
    }
    for r in &requests {
        let amount = r.get("amount_fen").and_then(Value::as_u64).unwrap_or(0);
        println!(
            "{}  {}  from {}  card {}  {}",
            field(r, "id"),
            field(r, "state"),
            field(r, "app"),
            field(r, "card"),
            yuan(u32::try_from(amount).unwrap_or(u32::MAX)),
        );
    }
    Ok(())
}

fn deny(dir: &Path, id: &str) -> anyhow::Result<()> {
    let _lock = lock(dir)?;
    let mut requests = load_topups(dir)?;
    let i = pending(&requests, id)?;
    requests[i]["state"] = json!("DECLINED");
    save_topups(dir, &requests)?;
    println!("top-up request {id} declined");
    Ok(())
}

/// The user confirms an app's request: the wallet's own top-up runs (client.md §4.1: order,
/// payment through the TSM's test provider, online load), then the request is `CONFIRMED`.
fn confirm(w: &ApiWallet, se: &ApiSe, id: &str) -> anyhow::Result<()> {
    let _lock = lock(&w.dir)?;
    let requests = load_topups(&w.dir)?;
    let i = pending(&requests, id)?;
    let handle = CardHandle::new(field(&requests[i], "card"))
        .ok_or_else(|| anyhow::anyhow!("request {id} names no card"))?;
    let amount = requests[i]
        .get("amount_fen")
        .and_then(Value::as_u64)
        .and_then(|a| u32::try_from(a).ok())
        .ok_or_else(|| anyhow::anyhow!("request {id} has no amount"))?;
    let pass = passphrase(w)?;
    let secret = secret(&w.dir, &pass, false)?;
    let mut tsm = HttpTsm(crate::tsm_link::TsmAddress::load(&w.dir)?.client()?);
    let mut rng = SystemRandom::new()?;
    let opened = StateFile::open(&w.dir.join(STATE_FILE), &pass)?;
    let done = with_wallet(opened, se, &mut tsm, |wallet, links| {
        let card = card_of(&secret, wallet.state(), &handle)
            .ok_or_else(|| anyhow::anyhow!("the card of request {id} is no longer here"))?;
        wallet
            .top_up(
                links,
                now_ms(),
                &mut rng,
                &card,
                amount,
                ykt_wallet::proposals::TEST_PAY_CHANNEL,
            )
            .map_err(|e| {
                let (code, text) = e.user_text();
                anyhow::anyhow!("{code}: {text}")
            })
    })?;
    let mut requests = load_topups(&w.dir)?;
    let i = pending(&requests, id)?;
    requests[i]["state"] = json!("CONFIRMED");
    requests[i]["order"] = json!(done.order_id);
    save_topups(&w.dir, &requests)?;
    println!(
        "top-up request {id} confirmed: {} loaded (order {}), balance {}",
        yuan(done.amount),
        done.order_id,
        yuan(done.new_balance)
    );
    Ok(())
}

// ---- the server --------------------------------------------------------------------------------

fn book_mtime(dir: &Path) -> Option<SystemTime> {
    fs::metadata(dir.join(BOOK_FILE))
        .and_then(|m| m.modified())
        .ok()
}

/// Stops at SIGINT or SIGTERM.
async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}

/// Reads the grant book again when it changed, and at once on SIGHUP, and hands its
/// revocations to the running server. A revocation, once seen, holds while the server runs,
/// even if an older book (whose MAC checks) is put back.
async fn follow_book(dir: PathBuf, secret: Secret, state: AppState, mut known: Revocations) {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut seen = book_mtime(&dir);
    loop {
        let hangup = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let forced = tokio::select! {
            () = hangup => true,
            () = tokio::time::sleep(Duration::from_millis(BOOK_POLL_MS)) => false,
        };
        let now = book_mtime(&dir);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        match load_book(&dir, &secret) {
            Ok(book) => {
                let now = unix_now();
                for g in book.list(now) {
                    if g.state == GrantState::Revoked {
                        known.revoke(&g.grant.jti, g.grant.exp);
                    }
                }
                known.prune(now);
                state.set_revocations(known.clone());
                tracing::info!(revoked = known.len(), "grant book read again");
            }
            Err(e) => tracing::warn!("the grant book: {e:#}; the revocations known are kept"),
        }
    }
}

/// Locks the backend's session once it has idled too long, even if no request comes
/// (client.md §6.10: the key does not stay in memory until the next call).
async fn lock_when_idle(backend: Arc<WalletBackend>) {
    loop {
        tokio::time::sleep(Duration::from_millis(IDLE_POLL_MS)).await;
        if backend.tick() {
            tracing::info!(
                "the wallet locked after idling; restart `ykt wallet api serve` to unlock it"
            );
            eprintln!("wallet locked (idle); restart the server with the passphrase to unlock");
        }
    }
}

fn serve(
    wallet: ApiWallet,
    se: ApiSe,
    socket: Option<PathBuf>,
    http_port: Option<u16>,
    idle_lock: &str,
) -> anyhow::Result<()> {
    let idle_secs = parse_ttl(idle_lock)?;
    let max_ms = ykt_wallet::session::proposals::IDLE_LOCK_MS;
    let idle_ms = i64::try_from(idle_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    ensure!(
        (1..=max_ms).contains(&idle_ms),
        "--idle-lock must be 1 s to {} s (client.md §6.10)",
        max_ms / 1000
    );
    let pass = passphrase(&wallet)?;
    let dir = wallet.dir.clone();
    wallet_dir(&dir)?;
    // Held while the server runs: `ykt wallet purge` refuses while it is.
    let serving = lock_file(&dir, SERVE_LOCK_FILE)?;
    serving
        .lock_shared()
        .with_context(|| format!("locking {}", dir.join(SERVE_LOCK_FILE).display()))?;
    // The passphrase is checked before anything listens; then only the data key is kept.
    let (file, _) = StateFile::open(&dir.join(STATE_FILE), &pass)?;
    let secret = secret(&dir, &pass, true)?;
    drop(pass);
    let mut session = Session::with_idle_lock(idle_ms);
    session.unlock(file.key().clone(), now_ms());
    drop(file);
    let book = load_book(&dir, &secret)?;
    let socket = match socket {
        Some(p) => p,
        None => ykt_wallet_api::default_socket_path()?,
    };
    let backend = Arc::new(WalletBackend {
        dir: dir.clone(),
        session: Mutex::new(session),
        secret: secret.clone(),
        se,
    });
    let locker = Arc::clone(&backend);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let state = AppState::new(secret.clone(), book.revocations().clone(), backend);
        let unix = UnixServer::bind(&socket)
            .with_context(|| format!("the socket {}", socket.display()))?;
        let tcp = match http_port {
            Some(port) => Some(TcpServer::bind(port).await?),
            None => None,
        };
        println!("local API listening on {}", socket.display());
        if let Some(tcp) = &tcp {
            println!("local API listening on http://{}", tcp.local_addr());
        }
        let follower = tokio::spawn(follow_book(
            dir,
            secret,
            state.clone(),
            book.revocations().clone(),
        ));
        let idle = tokio::spawn(lock_when_idle(locker));
        let served = ykt_wallet_api::serve(unix, tcp, state, shutdown()).await;
        follower.abort();
        idle.abort();
        drop(serving);
        eprintln!("local API stopped");
        served.context("the local API server")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_in_seconds_minutes_and_hours() {
        for (text, secs) in [("300", 300), ("90s", 90), ("5m", 300), ("1h", 3600)] {
            assert_eq!(parse_ttl(text).unwrap(), secs, "{text}");
        }
        for bad in ["", "m", "5d", "-1m", "5 m"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn record_times_are_china_standard_time() {
        // 2024-03-01 08:00:00 CST is 2024-03-01 00:00:00 UTC.
        assert_eq!(
            record_time([0x20, 0x24, 0x03, 0x01], [0x08, 0x00, 0x00]),
            1_709_251_200
        );
        // 2000-01-01 08:00:00 CST.
        assert_eq!(
            record_time([0x20, 0x00, 0x01, 0x01], [0x08, 0x00, 0x00]),
            946_684_800
        );
    }
}
