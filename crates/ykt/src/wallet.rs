//! `ykt wallet …` (the card commands): the wallet SDK (`ykt-wallet`) wired to the TSM over
//! HTTP (`ykt_tsm_service::TsmClient`), to an SE (a simulated one in a state file, or a PC/SC
//! reader) and to the wallet's sealed state file in its directory.
//!
//! | file in WDIR | what |
//! |---|---|
//! | `wallet.sealed` | the device key, the TSM's pinned key, cards, open flows and the top-up journal, sealed with SM4-GCM under a key derived from the passphrase (`YKT_WALLET_PASSPHRASE` or `--passphrase-file`) |
//! | `tsm.url` | the TSM's address and the pins of its TLS key (not secret; `crate::tsm_link`) |
//!
//! Card numbers are shown masked; the passphrase is never stored.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use ykt_card::Card;
use ykt_envelope::Envelope;
use ykt_transport::{CardChannel, PcscChannel};
use ykt_tsm::Management;
use ykt_tsm_service::TsmClient;
use ykt_tsm_service::http::ClientError;
use ykt_wallet::{
    CardNo, CardRecord, DeviceKey, LinkError, Links, Persist, PersistError, Progress, SeError,
    SeLink, SealKey, TransferCode, TsmLink, Wallet, WalletState,
};
use zeroize::Zeroizing;

use crate::clock::yuan;
use crate::entropy::{OsEntropy, SystemRandom};
use crate::state;
use crate::tsm_link::TsmAddress;

/// The sealed state's file name in the wallet directory.
const STATE_FILE: &str = "wallet.sealed";

/// The card commands of `ykt wallet`.
#[derive(Debug, clap::Subcommand)]
pub enum CardCommand {
    /// Makes the device key and enrols the device with the TSM (its SM2 key is then the key
    /// every request is checked under; the TSM's key is pinned).
    Enrol {
        #[command(flatten)]
        wallet: WalletDir,
        /// The TSM: https://HOST:PORT (`ykt tsm serve`; http:// only with
        /// --danger-insecure-http).
        #[arg(long, value_name = "URL")]
        tsm: String,
        /// The SPKI pin of the TSM's TLS key, `sha256/<base64>` (`ykt tsm serve` and `ykt tsm
        /// pin` print it); give it twice for the current and the backup key. A server whose key
        /// is neither is refused before anything is sent to it.
        #[arg(long, value_name = "PIN")]
        tsm_pin: Vec<String>,
        /// Reach the TSM over plain HTTP (an http:// URL): its messages cross the network
        /// unencrypted. For tests on one machine only.
        #[arg(long)]
        danger_insecure_http: bool,
        /// The TSM's id.
        #[arg(long, default_value = "SPTSM-YKT-TEST")]
        tsm_id: String,
        /// The device model the TSM records.
        #[arg(long, default_value = "ykt-cli")]
        model: String,
    },
    /// 申请开卡: the TSM creates the transit issuer's security domain on the SE, loads,
    /// installs and personalises the purse, in one download-and-personalise flow.
    Open {
        #[command(flatten)]
        wallet: WalletDir,
        #[command(flatten)]
        se: SeArgs,
        /// Delegated management (every INSTALL and DELETE carries an SE issuer's token).
        #[arg(long)]
        delegated: bool,
        /// The city (issuer region) code.
        #[arg(long, default_value = "330400")]
        city: String,
    },
    /// 充值: order, payment (the TSM's built-in test provider), online load.
    Topup {
        #[command(flatten)]
        wallet: WalletDir,
        #[command(flatten)]
        se: SeArgs,
        #[command(flatten)]
        card: CardPick,
        /// Amount in fen.
        #[arg(long)]
        amount: u32,
    },
    /// The balance, read on the SE (offline).
    Balance {
        #[command(flatten)]
        wallet: WalletDir,
        #[command(flatten)]
        se: SeArgs,
        #[command(flatten)]
        card: CardPick,
    },
    /// The transaction records, read on the SE (offline).
    Records {
        #[command(flatten)]
        wallet: WalletDir,
        #[command(flatten)]
        se: SeArgs,
        #[command(flatten)]
        card: CardPick,
    },
    /// This device's cards as the wallet knows them.
    Cards {
        #[command(flatten)]
        wallet: WalletDir,
    },
    /// 删除卡片 (the balance must be zero).
    Delete {
        #[command(flatten)]
        wallet: WalletDir,
        #[command(flatten)]
        se: SeArgs,
        #[command(flatten)]
        card: CardPick,
    },
    /// 退卡: the card proves its balance, is locked, the balance refunded, the card deleted.
    Return {
        #[command(flatten)]
        wallet: WalletDir,
        #[command(flatten)]
        se: SeArgs,
        #[command(flatten)]
        card: CardPick,
        /// Where the refund goes.
        #[arg(long, default_value = "original-channel")]
        account: String,
    },
    /// 迁卡 (old phone): the balance is escrowed, the card deleted; prints the transfer code.
    TransferOut {
        #[command(flatten)]
        wallet: WalletDir,
        #[command(flatten)]
        se: SeArgs,
        #[command(flatten)]
        card: CardPick,
    },
    /// 迁卡 (new phone): the same card number opened here with the escrowed balance.
    TransferIn {
        #[command(flatten)]
        wallet: WalletDir,
        #[command(flatten)]
        se: SeArgs,
        /// The code `transfer-out` printed.
        #[arg(long)]
        code: String,
    },
    /// Finishes flows left open (the wallet was stopped in the middle).
    Resume {
        #[command(flatten)]
        wallet: WalletDir,
        #[command(flatten)]
        se: SeArgs,
    },
    /// Deletes this wallet from this device (client.md §6.5): the sealed state, the TSM's
    /// address, the local API's secret, grants and requests, the lock file, a simulated SE's
    /// state file kept in the directory, and the ride QR code's device files.
    ///
    /// Cards are not returned: a card still ACTIVE at the TSM keeps its balance there, and
    /// without this wallet this device can no longer return it (run `ykt wallet return` first).
    /// The device stays enrolled at the TSM. Refused while another process uses the wallet
    /// (e.g. `ykt wallet api serve`). Asks for confirmation unless --yes.
    Purge {
        #[command(flatten)]
        wallet: WalletDir,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// The local API for other apps: grants, the server, top-up requests (client.md §6.6).
    #[command(subcommand)]
    Api(crate::wallet_api::ApiCommand),
}

/// The wallet's directory and passphrase.
#[derive(Debug, clap::Args)]
pub struct WalletDir {
    /// The wallet's directory.
    #[arg(long, value_name = "WDIR")]
    dir: PathBuf,
    /// A file holding the passphrase of the sealed state (default: $YKT_WALLET_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

/// Where the SE is.
#[derive(Debug, clap::Args)]
pub struct SeArgs {
    /// A simulated SE in a state file (a blank SE from card production is made there when the
    /// file does not exist); saved after every command.
    #[arg(long, value_name = "FILE", conflicts_with = "reader")]
    se_state: Option<PathBuf>,
    /// The serial of a blank SE made for --se-state (its CPLC and SEID follow from it).
    #[arg(long, default_value_t = 1)]
    se_serial: u8,
    /// A PC/SC reader (e.g. "Virtual PCD 00 00" for `ykt se serve`).
    #[arg(long)]
    reader: Option<String>,
}

/// Which card.
#[derive(Debug, clap::Args)]
pub struct CardPick {
    /// The card's number in `ykt wallet cards` (1, 2, …); default: the only card.
    #[arg(long, value_name = "N")]
    card: Option<usize>,
}

/// The TSM over HTTP as the wallet's link.
pub struct HttpTsm(pub TsmClient);

impl TsmLink for HttpTsm {
    fn send(&mut self, request: &Envelope) -> Result<Envelope, LinkError> {
        self.0.send(request).map_err(|e| match e {
            // client.md §6.4: the server's TLS key is not the pinned one, or it offers no
            // TLS 1.3; nothing was sent. Not retried.
            ClientError::PinMismatch { .. } | ClientError::Tls(_) => {
                tracing::warn!("the TSM link: {e}");
                LinkError::Untrusted
            }
            ClientError::Transport(_) => LinkError::Unreachable,
            _ => LinkError::Malformed,
        })
    }
}

/// What runs after every command of a [`CardSe`] (a state file saved).
pub type AfterCommand<'a> = Box<dyn FnMut(&Card) -> anyhow::Result<()> + 'a>;

/// A card in this process as the wallet's SE; `save` runs after every command.
pub struct CardSe<'a> {
    /// The card.
    pub card: &'a mut Card,
    /// Called after every command (a state file saved).
    pub save: AfterCommand<'a>,
}

impl SeLink for CardSe<'_> {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, SeError> {
        let r = self
            .card
            .transmit(capdu)
            .map_err(|_| SeError::Communication)?;
        (self.save)(self.card).map_err(|e| {
            tracing::error!("saving the SE state: {e:#}");
            SeError::Communication
        })?;
        Ok(r)
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

/// The sealed state file, written through a temporary file and a rename.
pub struct StateFile {
    path: PathBuf,
    key: SealKey,
}

impl Persist for StateFile {
    fn persist(&mut self, state: &WalletState) -> Result<(), PersistError> {
        self.save(state).map_err(|e| {
            tracing::error!("saving the wallet state: {e:#}");
            PersistError::new()
        })
    }
}

impl StateFile {
    /// A new state sealed under `passphrase` at `path` (which must not exist).
    pub fn create(path: &Path, passphrase: &[u8], state: &WalletState) -> anyhow::Result<Self> {
        if path.exists() {
            bail!("{} exists: this wallet is set up already", path.display());
        }
        let key = SealKey::create(passphrase, &mut SystemRandom::new()?);
        let file = Self {
            path: path.to_owned(),
            key,
        };
        file.save(state)?;
        Ok(file)
    }

    /// Opens the state at `path`.
    pub fn open(path: &Path, passphrase: &[u8]) -> anyhow::Result<(Self, WalletState)> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = path.parent().unwrap_or(path);
                bail!(
                    "there is no wallet in {} (run `ykt wallet enrol` first)",
                    dir.display()
                )
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let (key, state) = WalletState::open(passphrase, &bytes)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok((
            Self {
                path: path.to_owned(),
                key,
            },
            state,
        ))
    }

    /// Opens the state at `path` with the data key of an unlocked session (no passphrase; the
    /// file must have been sealed under this key).
    pub fn reopen(path: &Path, key: &SealKey) -> anyhow::Result<(Self, WalletState)> {
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let state = WalletState::reopen(key, &bytes)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok((
            Self {
                path: path.to_owned(),
                key: key.clone(),
            },
            state,
        ))
    }

    /// The data key this file is sealed under.
    pub fn key(&self) -> &SealKey {
        &self.key
    }

    fn save(&self, state: &WalletState) -> anyhow::Result<()> {
        let bytes = state
            .seal(&self.key, &mut SystemRandom::new()?)
            .context("sealing the wallet state")?;
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let written = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        written.with_context(|| format!("writing {}", self.path.display()))
    }
}

fn passphrase(w: &WalletDir) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let text = match &w.passphrase_file {
        Some(p) => Zeroizing::new(
            fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => Zeroizing::new(std::env::var("YKT_WALLET_PASSPHRASE").map_err(|_| {
            anyhow::anyhow!("no passphrase: set YKT_WALLET_PASSPHRASE or give --passphrase-file")
        })?),
    };
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.len() < 8 {
        bail!("the wallet passphrase must have at least 8 characters");
    }
    Ok(Zeroizing::new(trimmed.as_bytes().to_vec()))
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A progress bar driven by the SDK's progress reports (hidden when stderr is not a terminal).
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar titled `what`.
    pub fn new(what: &str) -> Self {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("  {prefix} [{bar:30}] {pos}/{len} {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self(bar)
    }

    /// Takes a report.
    pub fn report(&self, p: Progress) {
        if p.count > 0 {
            self.0.set_length(u64::from(p.count));
        }
        self.0.set_position(u64::from(p.index));
        self.0.set_message(p.step.to_lowercase());
    }

    /// Ends the bar.
    pub fn finish(&self) {
        if let Some(len) = self.0.length() {
            self.0.set_position(len);
        }
        self.0.finish_and_clear();
    }
}

/// Runs `ykt wallet <card command>`.
pub fn run(command: CardCommand) -> anyhow::Result<()> {
    // client.md §6.11: the wallet holds the passphrase, the data key and the device key.
    crate::harden::process()?;
    match command {
        CardCommand::Enrol {
            wallet,
            tsm,
            tsm_pin,
            danger_insecure_http,
            tsm_id,
            model,
        } => {
            let address = TsmAddress::new(&tsm, &tsm_pin, danger_insecure_http)?;
            enrol(&wallet, &address, &tsm_id, &model)
        }
        CardCommand::Cards { wallet } => {
            let (_, state) = StateFile::open(&wallet.dir.join(STATE_FILE), &passphrase(&wallet)?)?;
            print_cards(&state.cards);
            for f in &state.flows {
                println!(
                    "  open flow {} ({:?}): `ykt wallet resume` finishes it",
                    f.txn_id, f.kind
                );
            }
            Ok(())
        }
        CardCommand::Open {
            wallet,
            se,
            delegated,
            city,
        } => with_wallet(&wallet, &se, "open card", |w, links, rng| {
            let management = if delegated {
                Management::Delegated
            } else {
                Management::Authorized
            };
            let card = w
                .open_card(links, now_ms(), rng, management, &city)
                .map_err(user_error)?;
            Ok(format!("card {} opened ({})", card.card_no, card.state))
        }),
        CardCommand::Topup {
            wallet,
            se,
            card,
            amount,
        } => with_wallet(&wallet, &se, "top-up", |w, links, rng| {
            let c = pick(w, &card)?;
            let done = w
                .top_up(
                    links,
                    now_ms(),
                    rng,
                    &c,
                    amount,
                    ykt_wallet::proposals::TEST_PAY_CHANNEL,
                )
                .map_err(user_error)?;
            Ok(format!(
                "card {c}: {} loaded (order {}), balance {}",
                yuan(done.amount),
                done.order_id,
                yuan(done.new_balance)
            ))
        }),
        CardCommand::Balance { wallet, se, card } => {
            with_wallet(&wallet, &se, "balance", |w, links, _| {
                let c = pick(w, &card)?;
                let b = w.balance(links, now_ms(), &c).map_err(user_error)?;
                Ok(format!("card {c}: balance {}", yuan(b)))
            })
        }
        CardCommand::Records { wallet, se, card } => {
            with_wallet(&wallet, &se, "records", |w, links, _| {
                let c = pick(w, &card)?;
                let records = w.records(links, &c).map_err(user_error)?;
                let mut out = format!("card {c}: {} records", records.len());
                for r in records {
                    out.push_str(&format!("\n  {}", record_line(&r)));
                }
                Ok(out)
            })
        }
        CardCommand::Delete { wallet, se, card } => {
            with_wallet(&wallet, &se, "delete card", |w, links, rng| {
                let c = pick(w, &card)?;
                w.delete(links, now_ms(), rng, &c).map_err(user_error)?;
                Ok(format!("card {c} deleted"))
            })
        }
        CardCommand::Return {
            wallet,
            se,
            card,
            account,
        } => with_wallet(&wallet, &se, "card return", |w, links, rng| {
            let c = pick(w, &card)?;
            let refund = w
                .refund(links, now_ms(), rng, &c, &account)
                .map_err(user_error)?;
            Ok(format!(
                "card {c} returned: {} refunded, card deleted",
                yuan(refund)
            ))
        }),
        CardCommand::TransferOut { wallet, se, card } => {
            with_wallet(&wallet, &se, "transfer out", |w, links, rng| {
                let c = pick(w, &card)?;
                let code = w
                    .transfer_out(links, now_ms(), rng, &c)
                    .map_err(user_error)?;
                Ok(format!(
                    "card {c} left this phone; on the new phone: ykt wallet transfer-in --code {}",
                    code.reveal()
                ))
            })
        }
        CardCommand::TransferIn { wallet, se, code } => {
            with_wallet(&wallet, &se, "transfer in", |w, links, rng| {
                let card = w
                    .transfer_in(
                        links,
                        now_ms(),
                        rng,
                        &TransferCode::new(code.clone()),
                        Management::Authorized,
                    )
                    .map_err(user_error)?;
                Ok(format!("card {} arrived ({})", card.card_no, card.state))
            })
        }
        CardCommand::Resume { wallet, se } => {
            with_wallet(&wallet, &se, "resume", |w, links, rng| {
                let open: Vec<String> = w.open_flows().iter().map(|f| f.txn_id.clone()).collect();
                if open.is_empty() {
                    return Ok("no open flow".into());
                }
                let mut out = String::new();
                for txn in open {
                    match w.resume(links, now_ms(), rng, &txn) {
                        Ok(r) => out.push_str(&format!("flow {txn}: {:?} finished\n", r.kind)),
                        Err(ykt_wallet::WalletError::UnknownFlow) => {
                            out.push_str(&format!(
                                "flow {txn}: never started at the TSM, forgotten\n"
                            ));
                        }
                        Err(e) => return Err(user_error(e)),
                    }
                }
                Ok(out.trim_end().to_string())
            })
        }
        CardCommand::Purge { wallet, yes } => purge(&wallet, yes),
        CardCommand::Api(command) => crate::wallet_api::run(command),
    }
}

/// One transaction record (e-purse.md §2, EF18) for people: counter, date and time, type,
/// amount, terminal.
fn record_line(r: &ykt_purse::files::TransactionRecord) -> String {
    let kind = match r.transaction_type {
        0x02 => "load",
        0x06 => "purchase",
        0x09 => "composite purchase",
        _ => "other",
    };
    let d = hex::encode(r.date);
    let t = hex::encode(r.time);
    format!(
        "#{:<5} {}-{}-{} {}:{}:{}  {kind:<18} {:>9}  terminal {}",
        r.counter,
        &d[..4],
        &d[4..6],
        &d[6..8],
        &t[..2],
        &t[2..4],
        &t[4..6],
        yuan(r.amount),
        hex::encode_upper(r.terminal)
    )
}

fn print_cards(cards: &[CardRecord]) {
    if cards.is_empty() {
        println!("no cards");
    }
    for (i, c) in cards.iter().enumerate() {
        let balance = c.balance.map_or_else(|| "?".to_string(), |(b, _)| yuan(b));
        println!(
            "  {}: card {} on SE {} — {} — balance {balance}",
            i + 1,
            c.card_no,
            c.seid,
            c.state
        );
    }
}

fn pick(w: &Wallet, p: &CardPick) -> anyhow::Result<CardNo> {
    let cards = w.cards();
    match (p.card, cards) {
        (None, [only]) => Ok(only.card_no.clone()),
        (None, []) => bail!("this wallet has no card (ykt wallet open)"),
        (None, _) => bail!(
            "this wallet has {} cards: choose one with --card N",
            cards.len()
        ),
        (Some(n), _) => cards
            .get(n.wrapping_sub(1))
            .map(|c| c.card_no.clone())
            .ok_or_else(|| anyhow::anyhow!("no card {n} (see ykt wallet cards)")),
    }
}

fn enrol(w: &WalletDir, address: &TsmAddress, tsm_id: &str, model: &str) -> anyhow::Result<()> {
    let pass = passphrase(w)?;
    fs::create_dir_all(&w.dir).with_context(|| format!("creating {}", w.dir.display()))?;
    let mut rng = SystemRandom::new()?;
    let path = w.dir.join(STATE_FILE);
    let (mut file, state) = if path.exists() {
        // An enrolment that failed (the TSM unreachable, a mistyped URL) left the device key
        // sealed here: it is retried with that key. An enrolled wallet is left alone.
        let (file, state) = StateFile::open(&path, &pass)?;
        if state.device_id.is_some() {
            bail!("{} is enrolled already", w.dir.display());
        }
        (file, state)
    } else {
        let state = WalletState {
            device_key: Some(DeviceKey::generate(&mut rng).context("making the device key")?),
            ..WalletState::default()
        };
        (StateFile::create(&path, &pass, &state)?, state)
    };
    let mut wallet = Wallet::new(state);
    let mut tsm = HttpTsm(address.client()?);
    let mut no_se = NoSe;
    let mut progress = |_: Progress| {};
    let mut links = Links {
        tsm: &mut tsm,
        se: &mut no_se,
        persist: &mut file,
        progress: &mut progress,
    };
    wallet
        .enrol(&mut links, now_ms(), &mut rng, tsm_id, model)
        .map_err(user_error)?;
    file.save(wallet.state())?;
    // The address is kept once the TSM there has enrolled the device.
    address.save(&w.dir)?;
    println!(
        "device enrolled with {tsm_id}; device id {}",
        wallet.state().device_id.as_deref().unwrap_or("?")
    );
    Ok(())
}

/// No SE (enrolment needs none).
struct NoSe;

impl SeLink for NoSe {
    fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, SeError> {
        Err(SeError::NotPresent)
    }
}

/// A wallet error as the user sees it: its code and sentence (never card data or SWs).
fn user_error(e: ykt_wallet::WalletError) -> anyhow::Error {
    tracing::debug!("wallet error: {e:?}");
    let (code, text) = e.user_text();
    anyhow::anyhow!("{code}: {text}")
}

fn with_wallet(
    w: &WalletDir,
    se: &SeArgs,
    what: &str,
    job: impl FnOnce(&mut Wallet, &mut Links<'_>, &mut SystemRandom) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let pass = passphrase(w)?;
    // The same lock `ykt wallet api serve` and its commands take: the sealed state and the SE's
    // state file are read, changed and written by one process at a time. (No directory: the
    // state does not exist either, and opening it says so.)
    let _lock = if w.dir.join(STATE_FILE).exists() {
        Some(crate::wallet_api::lock(&w.dir)?)
    } else {
        None
    };
    let (mut file, state) = StateFile::open(&w.dir.join(STATE_FILE), &pass)?;
    let mut tsm = HttpTsm(TsmAddress::load(&w.dir)?.client()?);
    let mut wallet = Wallet::new(state);
    let mut rng = SystemRandom::new()?;
    let bar = Bar::new(what);
    let mut progress = |p: Progress| bar.report(p);
    let result = match (&se.se_state, &se.reader) {
        (Some(path), _) => {
            let serial = se.se_serial;
            let (mut card, created) =
                state::load_or_create(path, Box::new(OsEntropy::new()?), || {
                    crate::phone::blank_se(serial)
                })?;
            if created {
                eprintln!("made a blank SE (serial {serial}) in {}", path.display());
            }
            // The phone's NFC controller powers the SE for the session.
            card.power_on();
            let path = path.clone();
            let mut link = CardSe {
                card: &mut card,
                save: Box::new(move |c| Ok(state::save(&path, c)?)),
            };
            let mut links = Links {
                tsm: &mut tsm,
                se: &mut link,
                persist: &mut file,
                progress: &mut progress,
            };
            job(&mut wallet, &mut links, &mut rng)
        }
        (None, Some(reader)) => {
            let channel =
                PcscChannel::connect(reader).with_context(|| format!("PC/SC reader {reader:?}"))?;
            let mut link = PcscSe(channel);
            let mut links = Links {
                tsm: &mut tsm,
                se: &mut link,
                persist: &mut file,
                progress: &mut progress,
            };
            job(&mut wallet, &mut links, &mut rng)
        }
        (None, None) => bail!("where is the SE? give --se-state FILE or --reader NAME"),
    };
    bar.finish();
    file.save(wallet.state())?;
    println!("{}", result?);
    Ok(())
}

// ---- purge (client.md §6.5) --------------------------------------------------------------------

/// The files of a wallet directory that are the wallet's, besides the sealed state and the lock:
/// the TSM's address, the local API's files (`wallet_api::proposals`), and the ride QR code's
/// device files (`ykt wallet qr init`).
const WALLET_FILES: &[&str] = &[
    crate::tsm_link::ADDRESS_FILE,
    crate::wallet_api::proposals::SECRET_FILE,
    crate::wallet_api::proposals::BOOK_FILE,
    crate::wallet_api::proposals::TOPUPS_FILE,
    "device.key",
    "device.pub",
    "authorisation",
];

/// Whether `name` (in the directory `dir`) is one of the wallet's files: the list above, the
/// sealed state and the temporary files of their atomic writes, or a simulated SE's state file
/// (magic `YKTCARD\0`, the SE the wallet made there).
fn is_wallet_file(dir: &Path, name: &str) -> bool {
    let base = name.split(".tmp").next().unwrap_or(name);
    if base == STATE_FILE || WALLET_FILES.contains(&base) {
        return true;
    }
    let mut magic = [0u8; 8];
    fs::File::open(dir.join(name))
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| magic == ykt_card::STATE_MAGIC)
}

/// What purging loses, for the user: the cards still on the TSM, the open flows.
fn purge_warnings(w: &WalletDir) -> Vec<String> {
    let opened = passphrase(w).and_then(|p| StateFile::open(&w.dir.join(STATE_FILE), &p));
    let state = match opened {
        Ok((_, state)) => state,
        Err(_) => {
            return vec![
                "the wallet did not open (no passphrase or a wrong one), so its cards cannot be listed: \
                 any card still on the TSM keeps its balance there and can no longer be returned from this device"
                    .into(),
            ];
        }
    };
    let mut out = Vec::new();
    for c in &state.cards {
        let balance = c
            .balance
            .map_or_else(|| "unknown".to_string(), |(b, _)| yuan(b));
        if c.state == "ACTIVE" {
            out.push(format!(
                "card {} is ACTIVE (balance {balance}): run `ykt wallet return` first to get the balance refunded; \
                 after the purge this device cannot return it",
                c.card_no
            ));
        } else {
            out.push(format!("card {} ({}) is forgotten", c.card_no, c.state));
        }
    }
    for f in &state.flows {
        out.push(format!(
            "flow {} ({:?}) is unfinished: `ykt wallet resume` finishes it",
            f.txn_id, f.kind
        ));
    }
    out
}

fn purge(w: &WalletDir, yes: bool) -> anyhow::Result<()> {
    let dir = &w.dir;
    let names: Vec<String> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("there is no wallet in {}", dir.display())
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let lock_name = crate::wallet_api::proposals::LOCK_FILE;
    let mut doomed: Vec<&String> = names
        .iter()
        .filter(|n| {
            let lock = [lock_name, crate::wallet_api::proposals::SERVE_LOCK_FILE];
            !lock.contains(&n.as_str()) && is_wallet_file(dir, n)
        })
        .collect();
    doomed.sort();
    if doomed.is_empty() {
        bail!("there is no wallet in {}", dir.display());
    }
    // client.md §6.5: never under a running server or command; the locks are held to the end.
    let serve_name = crate::wallet_api::proposals::SERVE_LOCK_FILE;
    let mut locks = Vec::new();
    for name in [lock_name, serve_name] {
        let lock = crate::wallet_api::lock_file(dir, name)?;
        match lock.try_lock() {
            Ok(()) => locks.push((dir.join(name), lock)),
            Err(fs::TryLockError::WouldBlock) => bail!(
                "another ykt process is using this wallet (`ykt wallet api serve`, a top-up, …): stop it, then purge; nothing was deleted"
            ),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", dir.join(name).display()));
            }
        }
    }
    let warnings = purge_warnings(w);
    eprintln!("purging the wallet in {}:", dir.display());
    for name in &doomed {
        eprintln!("  delete {name}");
    }
    for warning in &warnings {
        eprintln!("  warning: {warning}");
    }
    eprintln!("  the device stays enrolled at the TSM; a new wallet here needs `ykt wallet enrol`");
    if !yes {
        eprint!("delete the wallet? type yes: ");
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("reading the answer")?;
        if answer.trim() != "yes" {
            bail!("not purged: nothing was deleted");
        }
    }
    for name in &doomed {
        let path = dir.join(name.as_str());
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("deleting {}", path.display())),
        }
    }
    // The lock files go last, while still held, so no command starts in between.
    for (path, _) in &locks {
        fs::remove_file(path).with_context(|| format!("deleting {}", path.display()))?;
    }
    let deleted = doomed.len() + locks.len();
    drop(locks);
    let left: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    if left.is_empty() {
        fs::remove_dir(dir).with_context(|| format!("deleting {}", dir.display()))?;
        println!(
            "wallet purged: {deleted} files deleted, {} removed",
            dir.display()
        );
    } else {
        println!(
            "wallet purged: {} files deleted; {} keeps files that are not the wallet's: {}",
            deleted,
            dir.display(),
            left.join(", ")
        );
    }
    Ok(())
}
