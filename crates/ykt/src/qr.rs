//! The ride QR code (qr-code.md) on the command line: a test root CA and issuer (`ykt qr
//! issuer`), the wallet's code at display time (`ykt wallet qr`) and the scanning terminal
//! (`ykt terminal qr`).
//!
//! Directories are the non-volatile storage of each role. Every file is hex text, one value a
//! line, so it can be read and diffed; private keys are in files of mode 0600.
//!
//! | role | file | what |
//! |---|---|---|
//! | issuer | `root-ca.key`, `issuer.key` | **test** private keys (SM2 d, 32 bytes) |
//! | issuer | `root-ca.record` | the self-signed root key record terminals load (parameter 4026, §2.3) |
//! | issuer | `issuer.cert` | the issuer certificate (field 3, §2.2) |
//! | issuer | `issuer.txt` | code version, org code, platform id |
//! | issuer | `api.token` | the API token of `ykt qr issuer serve` (mode 0600, made at first start) |
//! | issuer | `blacklist.txt` | optional: the blacklist the service publishes (`version = N`, `account = HEX`) |
//! | wallet | `device.key`, `device.pub` | the device key pair (§4.2) |
//! | wallet | `authorisation` | the issuer's blob, fields 1–15 (§4.1) |
//! | terminal | `qr-params.txt` | root keys, whitelist, local orgs, blacklist, with table versions (§2.3, §3.1) |
//! | terminal | `qr-records.ykr` | accepted codes, an append-only log synced before the verdict (§3.1 step 12, §5) |
//! | terminal | `qr-terminal.key`, `qr-terminal.pub` | the key that signs uploads (§5) |
//! | terminal | `qr-upload.next` | the first record sequence not yet uploaded |
//!
//! `ykt qr issuer serve` puts the issuer directory behind HTTP (`ykt-qr-service`); the wallet
//! reaches it with `--issuer-url` and the terminal with `--from-url` instead of the directory.
//!
//! The replay cache (§3.1 step 9) is rebuilt at each start from the record log: a code is
//! accepted only after its record is durable, so the log is the cache's durable copy and a
//! killed terminal forgets nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use ykt_crypto::{Sm2PrivateKey, Sm2PublicKey};
use ykt_qr::ca::{CertificateRequest, RootCa};
use ykt_qr::clock::DriftingClock;
use ykt_qr::issuer::{self, Issuer, Terms};
use ykt_qr::record::{self, Mode, ParameterVersions, Record};
use ykt_qr::store::{RecordStore, Storage};
use ykt_qr::tables::{RootKeyTable, WhitelistTable};
use ykt_qr::verify::{ParameterUpdate, WhitelistEntry, WhitelistRecord};
use ykt_qr::{
    Authorisation, Expiry, IssuerCertificate, QrCode, RootKeyEntry, RootKeyRecord, Verifier,
    VerifierConfig, Version, wallet,
};
use ykt_qr_service::policy::{default_account, default_payment_account};
use ykt_qr_service::wire::RequestedTerms;
use ykt_qr_service::{ApiToken, AppState, Policy, PublishedIssuer, ServiceConfig};
use ykt_qr_symbol::{Symbol, TextStyle};
use ykt_terminal::journal::NvStorage as _;
use ykt_transport::nv::FileStorage;

use crate::clock::{self as cli_clock, CST_OFFSET_SECONDS};
use crate::entropy::SystemRandom;
use crate::terminal::Refused;

// ---- command line ----------------------------------------------------------------------------

/// `ykt qr …`
#[derive(Debug, clap::Args)]
pub struct QrArgs {
    #[command(subcommand)]
    command: QrCommand,
}

#[derive(Debug, clap::Subcommand)]
enum QrCommand {
    /// The issuer side with TEST keys: a root CA, an issuer certificate and authorisations
    /// (qr-code.md §2, §4.1).
    #[command(subcommand)]
    Issuer(IssuerCommand),
}

#[derive(Debug, clap::Subcommand)]
enum IssuerCommand {
    /// Creates a TEST root CA (key + self-signed 4026 record, §2.3) and an issuer key with its
    /// certificate (§2.2) in DIR. The private keys are test keys in files of mode 0600, not
    /// for real codes.
    Init {
        /// The issuer's directory (created; refused if it already holds keys).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Code version, hex: 80 interoperable, 81 local (§1.1, §2.4).
        #[arg(long, value_name = "HEX", default_value = "80")]
        version: String,
        /// Issuing institution code (field 6), 4 bytes hex.
        #[arg(long, value_name = "HEX", default_value = "99990001")]
        org_code: String,
        /// Issuing platform id (field 7), 4 bytes hex.
        #[arg(long, value_name = "HEX", default_value = "99990002")]
        platform_id: String,
        /// Root CA key index (certificate byte 5).
        #[arg(long, value_name = "HEX", default_value = "01")]
        ca_index: String,
        /// Certificate and root record expiry, MMYY (default: December five years on).
        #[arg(long, value_name = "MMYY")]
        expiry: Option<String>,
        /// Certificate serial, 3 bytes hex.
        #[arg(long, value_name = "HEX", default_value = "000001")]
        serial: String,
        /// The time to take as now: YYYYMMDDhhmmss (China Standard Time) or Unix seconds.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Serves the issuer of DIR over HTTP (plain HTTP: TLS is terminated in front of it):
    /// POST /v1/authorisations for wallets holding the API token and proving possession of
    /// their key, GET /v1/parameters for terminals, GET /healthz. Prints the address bound;
    /// stops on SIGINT or SIGTERM.
    Serve {
        /// The issuer's directory (from `ykt qr issuer init`).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The address to listen on (port 0: any free port).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8470")]
        listen: std::net::SocketAddr,
        /// The file holding the API token wallets present (default: DIR/api.token, made with
        /// a random token at the first start).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// The largest single-payment limit granted, fen; larger requests are clamped.
        #[arg(long, value_name = "FEN")]
        max_limit: Option<u32>,
        /// The longest authorisation granted (field 11 − now): 90s, 30m, 24h, 7d; longer
        /// requests are clamped.
        #[arg(long, value_name = "DURATION")]
        max_validity: Option<String>,
        /// The longest code validity granted (field 12), seconds; longer requests are
        /// clamped.
        #[arg(long, value_name = "SECONDS")]
        max_code_validity: Option<u16>,
    },
    /// Writes the terminal parameter files of DIR's issuer (§2.3): 4026 with its root key
    /// record and 4020 whitelisting its (org code, platform id), binary, with their SHA-1.
    ExportTables {
        /// The issuer's directory (from `ykt qr issuer init`).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The 4026 file (root CA keys) to write.
        #[arg(long = "out-4026", value_name = "FILE")]
        out_4026: PathBuf,
        /// The 4020 file (issuer whitelist) to write.
        #[arg(long = "out-4020", value_name = "FILE")]
        out_4020: PathBuf,
        /// The version both tables carry; a terminal takes only a newer one.
        #[arg(long, value_name = "N", default_value_t = 1)]
        table_version: u32,
        /// The ticket type the whitelist maps the issuer to, hex.
        #[arg(long, value_name = "HEX", default_value = "01")]
        ticket_type: String,
        /// The card type of the whitelist record, hex.
        #[arg(long, value_name = "HEX", default_value = "00")]
        card_type: String,
    },
    /// Authorises a user public key (signature B over fields 3–14, §4.1) and writes the
    /// blob of fields 1–15 (hex).
    Authorise {
        /// The issuer's directory (from `ykt qr issuer init`).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The user's SM2 public key: hex (33-byte compressed or 65-byte 04‖X‖Y) or a file
        /// holding it.
        #[arg(long, value_name = "HEX|FILE")]
        user_key: String,
        #[command(flatten)]
        terms: TermsArgs,
        /// Write the blob (hex) to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The time to take as now: YYYYMMDDhhmmss (China Standard Time) or Unix seconds.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
}

/// What the wallet asks the issuer for (fields 4, 5, 8, 9, 11, 12, 14).
#[derive(Debug, Clone, clap::Args)]
struct TermsArgs {
    /// Single-payment limit in fen (field 9).
    #[arg(long, value_name = "FEN", default_value_t = 2000)]
    limit: u32,
    /// How long the authorisation lasts (field 11 = now + this): 90s, 30m, 24h, 7d.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    valid_for: String,
    /// Code validity in seconds (field 12).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    validity: u16,
    /// User account (field 5), 10 bytes hex (default: the org code, 11 digits from the key's
    /// SM3 hash, F).
    #[arg(long, value_name = "HEX")]
    account: Option<String>,
    /// Payment account (field 4), 16 ASCII characters (default: PAY and 13 digits).
    #[arg(long, value_name = "TEXT")]
    payment_account: Option<String>,
    /// Account type (field 8), hex: 01 normal, 02 student, 03 senior, 04 test.
    #[arg(long, value_name = "HEX", default_value = "01")]
    account_type: String,
    /// Issuer-defined data (field 14), at most 32 bytes hex.
    #[arg(long, value_name = "HEX", default_value = "")]
    issuer_data: String,
}

/// `ykt wallet …`
#[derive(Debug, clap::Args)]
pub struct WalletArgs {
    #[command(subcommand)]
    command: WalletCommand,
}

#[derive(Debug, clap::Subcommand)]
enum WalletCommand {
    /// The ride QR code (qr-code.md §4.2).
    #[command(subcommand)]
    Qr(WalletQrCommand),
    #[command(flatten)]
    Card(crate::wallet::CardCommand),
}

#[derive(Debug, clap::Subcommand)]
enum WalletQrCommand {
    /// Makes the device's SM2 key (kept when it exists) and has the issuer authorise it
    /// (§4.1 step 1–3); run again to fetch a new authorisation before the old one expires.
    Init {
        /// The wallet's directory (created).
        #[arg(long, value_name = "WDIR")]
        dir: PathBuf,
        /// The issuer: its directory (from `ykt qr issuer init`).
        #[arg(long, value_name = "DIR", required_unless_present = "issuer_url")]
        issuer: Option<PathBuf>,
        /// The issuer: its service (`ykt qr issuer serve`), http://HOST:PORT.
        #[arg(
            long,
            value_name = "URL",
            conflicts_with = "issuer",
            requires = "token"
        )]
        issuer_url: Option<String>,
        /// The API token the issuer service gave this wallet (with --issuer-url).
        #[arg(long, value_name = "TOKEN", requires = "issuer_url")]
        token: Option<String>,
        #[command(flatten)]
        terms: TermsArgs,
        /// The time to take as now: YYYYMMDDhhmmss (China Standard Time) or Unix seconds.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// A fresh code dated now and signed by the device key (signature C, §4.2), shown as a QR
    /// symbol (byte mode, level M, §1.2).
    Show {
        /// The wallet's directory.
        #[arg(long, value_name = "WDIR")]
        dir: PathBuf,
        /// Also write the symbol as a PNG.
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
        /// Pixels per module of the PNG.
        #[arg(long, value_name = "N", default_value_t = 6)]
        scale: u32,
        /// Plain ASCII instead of Unicode half blocks.
        #[arg(long)]
        ascii: bool,
        /// Draw light modules in the foreground: use on a terminal with a dark background, so
        /// the symbol shows dark on light as scanners expect (the default assumes a light
        /// background).
        #[arg(long)]
        invert: bool,
        /// Print nothing on stdout (with --png).
        #[arg(long)]
        no_symbol: bool,
        /// Generation time instead of the system clock: YYYYMMDDhhmmss (China Standard Time)
        /// or Unix seconds (for tests).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
}

/// `ykt terminal qr …`
#[derive(Debug, clap::Args)]
pub struct TerminalQrArgs {
    #[command(subcommand)]
    command: TerminalQrCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TerminalQrCommand {
    /// Scans images (PNG or binary PGM) and verifies each code offline (qr-code.md §3.1):
    /// root key, certificate, signatures A/B/C, whitelist, window ± skew, replay, blacklist,
    /// limit. An accepted code's record is synced to DIR before the verdict is printed.
    /// The terminal's --at also takes Unix seconds here. Exit code 5 when a code is refused,
    /// 1 when an image holds no readable code.
    Scan {
        /// Images: PNG files or PGM (P5) camera frame dumps.
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<PathBuf>,
        /// The fare in yuan (§3.1 step 11: at most field 9).
        #[arg(long, value_name = "YUAN", default_value = "2")]
        fare: String,
        /// What the rider does at this gate (§5).
        #[arg(long, value_enum, default_value_t = GateMode::Single)]
        mode: GateMode,
        /// Clock skew tolerated both ways, seconds (§3.1 step 8).
        #[arg(long, value_name = "SECONDS", default_value_t = ykt_qr::verify::DEFAULT_CLOCK_SKEW)]
        clock_skew: u32,
        /// Model a terminal clock this many seconds ahead (negative: behind) of the true time
        /// (--at or the system clock).
        #[arg(
            long,
            value_name = "SECONDS",
            default_value_t = 0,
            allow_negative_numbers = true
        )]
        clock_offset: i64,
        /// The terminal's id in its records, 6 bytes hex.
        #[arg(long, value_name = "HEX", default_value = "000000000001")]
        terminal_id: String,
        /// Accept test accounts (type 04), as a test terminal does.
        #[arg(long)]
        allow_test_accounts: bool,
    },
    /// Installs parameters (§2.3): the root key and the issuer of an issuer directory, and
    /// blacklist changes. Each changed table gets the next version.
    Params {
        /// An issuer directory: install its root key record (4026) and whitelist its (org
        /// code, platform id) (4020), or admit its org code for local (81) codes.
        #[arg(long, value_name = "ISSUERDIR")]
        from: Option<PathBuf>,
        /// An issuer service (`ykt qr issuer serve`), http://HOST:PORT: install the root keys,
        /// whitelist and local orgs it publishes, and its blacklist (when it publishes one)
        /// in place of the terminal's.
        #[arg(long, value_name = "URL", conflicts_with = "from")]
        from_url: Option<String>,
        /// A parameter 4026 file (root CA keys, `ykt qr issuer export-tables`): replaces the
        /// root keys when its version is newer; checked whole (length, count, SHA-1, every
        /// self-signature) and applied with --table-4020 all or nothing.
        #[arg(long = "table-4026", value_name = "FILE", conflicts_with_all = ["from", "from_url"])]
        table_4026: Option<PathBuf>,
        /// A parameter 4020 file (issuer whitelist): replaces the whitelist when its version is
        /// newer.
        #[arg(long = "table-4020", value_name = "FILE", conflicts_with_all = ["from", "from_url"])]
        table_4020: Option<PathBuf>,
        /// The ticket type the whitelist maps the issuer to, hex.
        #[arg(long, value_name = "HEX", default_value = "01")]
        ticket_type: String,
        /// Blacklist a user account (field 5), 10 bytes hex.
        #[arg(long, value_name = "HEX")]
        block_account: Vec<String>,
        /// Remove a user account from the blacklist.
        #[arg(long, value_name = "HEX")]
        unblock_account: Vec<String>,
    },
    /// Writes the records not yet uploaded as a batch of JSON lines closed by the terminal's
    /// SM2 signature (§5); the public key to check it is DIR/qr-terminal.pub.
    Upload {
        /// The batch file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// All records from the first, not only those not yet uploaded.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum GateMode {
    /// A flat-fare tap (bus).
    Single,
    /// Metro entry.
    Entry,
    /// Metro exit.
    Exit,
}

impl From<GateMode> for Mode {
    fn from(m: GateMode) -> Self {
        match m {
            GateMode::Single => Mode::Single,
            GateMode::Entry => Mode::Entry,
            GateMode::Exit => Mode::Exit,
        }
    }
}

/// Runs `ykt qr …`.
pub fn run(args: QrArgs) -> anyhow::Result<()> {
    match args.command {
        QrCommand::Issuer(IssuerCommand::Init {
            dir,
            version,
            org_code,
            platform_id,
            ca_index,
            expiry,
            serial,
            at,
        }) => {
            let now = now(at.as_deref())?;
            let setup = IssuerSetup {
                version: Version::new(hex_array::<1>(&version, "--version")?[0])
                    .context("--version must be 80 to FF")?,
                org_code: hex_array(&org_code, "--org-code")?,
                platform_id: hex_array(&platform_id, "--platform-id")?,
                ca_index: hex_array::<1>(&ca_index, "--ca-index")?[0],
                expiry: match expiry {
                    Some(text) => parse_mmyy(&text)?,
                    None => five_years_on(now)?,
                },
                serial: hex_array(&serial, "--serial")?,
            };
            issuer_init(&dir, &setup)
        }
        QrCommand::Issuer(IssuerCommand::Serve {
            dir,
            listen,
            token_file,
            max_limit,
            max_validity,
            max_code_validity,
        }) => {
            let mut policy = Policy::default();
            if let Some(limit) = max_limit {
                ensure!(
                    limit > 0 && limit <= issuer::MAX_LIMIT,
                    "--max-limit must be 1 to {} fen",
                    issuer::MAX_LIMIT
                );
                policy.max_limit = limit;
            }
            if let Some(text) = max_validity {
                policy.max_valid_for = parse_duration(&text)?;
                ensure!(policy.max_valid_for > 0, "--max-validity must be above 0");
            }
            if let Some(seconds) = max_code_validity {
                ensure!(seconds > 0, "--max-code-validity must be above 0");
                policy.max_code_validity = seconds;
            }
            issuer_serve(&dir, listen, token_file.as_deref(), policy)
        }
        QrCommand::Issuer(IssuerCommand::ExportTables {
            dir,
            out_4026,
            out_4020,
            table_version,
            ticket_type,
            card_type,
        }) => export_tables(
            &dir,
            &out_4026,
            &out_4020,
            table_version,
            WhitelistTerms {
                ticket_type: hex_array::<1>(&ticket_type, "--ticket-type")?[0],
                card_type: hex_array::<1>(&card_type, "--card-type")?[0],
            },
        ),
        QrCommand::Issuer(IssuerCommand::Authorise {
            dir,
            user_key,
            terms,
            out,
            at,
        }) => {
            let now = now(at.as_deref())?;
            let key = parse_public_key(&user_key)?;
            let blob = IssuerDirectory(dir).authorise_key(&key, &terms, now)?;
            let text = format!("{}\n", hex::encode(blob.encode()));
            match out {
                Some(path) => {
                    write_public(&path, text.as_bytes())?;
                    eprintln!(
                        "authorisation for account {} written to {}",
                        mask(&blob.body.user_account),
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

/// Runs `ykt wallet …`.
pub fn run_wallet(args: WalletArgs) -> anyhow::Result<()> {
    match args.command {
        WalletCommand::Card(command) => crate::wallet::run(command),
        WalletCommand::Qr(WalletQrCommand::Init {
            dir,
            issuer,
            issuer_url,
            token,
            terms,
            at,
        }) => {
            let now = now(at.as_deref())?;
            match (issuer, issuer_url, token) {
                (Some(issuer), None, _) => wallet_init(&dir, &IssuerDirectory(issuer), &terms, now),
                (None, Some(url), Some(token)) => {
                    wallet_init(&dir, &IssuerHttp { url, token }, &terms, now)
                }
                _ => bail!("give --issuer DIR, or --issuer-url URL with --token"),
            }
        }
        WalletCommand::Qr(WalletQrCommand::Show {
            dir,
            png,
            scale,
            ascii,
            invert,
            no_symbol,
            at,
        }) => {
            let style = match (ascii, invert) {
                (true, _) => TextStyle::Ascii,
                (false, true) => TextStyle::HalfBlocksInverted,
                (false, false) => TextStyle::HalfBlocks,
            };
            let display = ShowOptions {
                png,
                scale,
                style: (!no_symbol).then_some(style),
            };
            wallet_show(&dir, &display, now(at.as_deref())?)
        }
    }
}

/// Runs `ykt terminal qr …` in the terminal's directory `dir`, with the terminal's `--at`.
pub fn run_terminal(dir: &Path, at: Option<&str>, args: &TerminalQrArgs) -> anyhow::Result<()> {
    ensure_dir(dir)?;
    match &args.command {
        TerminalQrCommand::Scan {
            images,
            fare,
            mode,
            clock_skew,
            clock_offset,
            terminal_id,
            allow_test_accounts,
        } => {
            let true_time = now(at)?;
            let clock = DriftingClock {
                epoch: true_time,
                offset: *clock_offset,
                drift_ppm: 0,
            };
            let settings = ScanSettings {
                fare: cli_clock::parse_yuan(fare)?,
                mode: (*mode).into(),
                terminal_id: hex_array(terminal_id, "--terminal-id")?,
                config: VerifierConfig {
                    clock_skew: *clock_skew,
                    refuse_test_accounts: !allow_test_accounts,
                    ..VerifierConfig::default()
                },
                now: clock.reading(true_time),
            };
            scan(dir, images, &settings)
        }
        TerminalQrCommand::Params {
            from,
            from_url,
            table_4026,
            table_4020,
            ticket_type,
            block_account,
            unblock_account,
        } => {
            let ticket_type = hex_array::<1>(ticket_type, "--ticket-type")?[0];
            let block = parse_accounts(block_account)?;
            let unblock = parse_accounts(unblock_account)?;
            let source = match (from, from_url) {
                (Some(d), _) => Some(ParamSource::Dir(d)),
                (None, Some(u)) => Some(ParamSource::Url(u)),
                (None, None) if table_4026.is_some() || table_4020.is_some() => {
                    Some(ParamSource::Tables {
                        root_keys: table_4026.as_deref(),
                        whitelist: table_4020.as_deref(),
                    })
                }
                (None, None) => None,
            };
            params(dir, source, ticket_type, &block, &unblock)
        }
        TerminalQrCommand::Upload { out, all } => upload(dir, out, *all),
    }
}

// ---- the issuer --------------------------------------------------------------------------------

struct IssuerSetup {
    version: Version,
    org_code: [u8; 4],
    platform_id: [u8; 4],
    ca_index: u8,
    expiry: Expiry,
    serial: [u8; 3],
}

const ROOT_KEY_FILE: &str = "root-ca.key";
const ROOT_RECORD_FILE: &str = "root-ca.record";
const ISSUER_KEY_FILE: &str = "issuer.key";
const ISSUER_CERT_FILE: &str = "issuer.cert";
const ISSUER_INFO_FILE: &str = "issuer.txt";

/// `ykt qr issuer init` (qr-code.md §2.1–§2.3).
fn issuer_init(dir: &Path, setup: &IssuerSetup) -> anyhow::Result<()> {
    ensure_dir(dir)?;
    for name in [ROOT_KEY_FILE, ISSUER_KEY_FILE] {
        ensure!(
            !dir.join(name).exists(),
            "{} already holds keys ({name}); use another directory",
            dir.display()
        );
    }
    let mut rng = SystemRandom::new()?;
    let root_key = Sm2PrivateKey::generate(&mut rng).context("making the root CA key")?;
    let issuer_key = Sm2PrivateKey::generate(&mut rng).context("making the issuer key")?;
    let root_secret = root_key.expose();
    let root = RootCa::new(root_key, setup.ca_index, setup.expiry);
    let record = root
        .record(&mut rng)
        .context("signing the root key record")?;
    let certificate = root
        .certify(
            &mut rng,
            issuer_key.public_key(),
            &CertificateRequest {
                version: setup.version,
                issuer_id: setup.org_code,
                expiry: setup.expiry,
                serial: setup.serial,
            },
        )
        .context("certifying the issuer")?;
    write_private_key(&dir.join(ROOT_KEY_FILE), &root_secret)?;
    write_private_key(&dir.join(ISSUER_KEY_FILE), &issuer_key.expose())?;
    write_public(
        &dir.join(ROOT_RECORD_FILE),
        hex_line(&record.encode()).as_bytes(),
    )?;
    write_public(
        &dir.join(ISSUER_CERT_FILE),
        hex_line(&certificate.encode()).as_bytes(),
    )?;
    let info = format!(
        "# ride QR issuer (qr-code.md §2.2); TEST keys in {ROOT_KEY_FILE} and {ISSUER_KEY_FILE}\n\
         version = {:02x}\norg_code = {}\nplatform_id = {}\n",
        setup.version.value(),
        hex::encode(setup.org_code),
        hex::encode(setup.platform_id),
    );
    write_public(&dir.join(ISSUER_INFO_FILE), info.as_bytes())?;
    println!(
        "test root CA (index {:02x}, expiry {:02}{:02}) and issuer {} (platform {}, version {:02x}) created in {}",
        setup.ca_index,
        setup.expiry.month(),
        setup.expiry.year(),
        hex::encode(setup.org_code),
        hex::encode(setup.platform_id),
        setup.version.value(),
        dir.display()
    );
    println!("the private keys are TEST keys (files of mode 0600); never use them for real codes");
    Ok(())
}

/// What the exported 4020 record maps the issuer to (§2.3).
struct WhitelistTerms {
    ticket_type: u8,
    card_type: u8,
}

/// `ykt qr issuer export-tables` (qr-code.md §2.3): the issuer's root key as a 4026 file and
/// its (org code, platform id) as a 4020 file.
fn export_tables(
    dir: &Path,
    out_4026: &Path,
    out_4020: &Path,
    table_version: u32,
    terms: WhitelistTerms,
) -> anyhow::Result<()> {
    let path = dir.join(ROOT_RECORD_FILE);
    let record = RootKeyRecord::decode(&read_hex(&path)?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let info = read_key_values(&dir.join(ISSUER_INFO_FILE))?;
    let version = Version::new(hex_array::<1>(info_value(&info, "version")?, "version")?[0])
        .context("issuer.txt: version must be 80 to FF")?;
    let org_code: [u8; 4] = hex_array(info_value(&info, "org_code")?, "org_code")?;
    let platform_id: [u8; 4] = hex_array(info_value(&info, "platform_id")?, "platform_id")?;
    let roots = RootKeyTable::new(table_version, vec![RootKeyEntry { version, record }])
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut issuer = [ykt_qr::tables::ISSUER_FIELD_FILL; 8];
    issuer[..4].copy_from_slice(&org_code);
    let whitelist = WhitelistTable::new(
        table_version,
        vec![WhitelistRecord {
            issuer,
            platform: platform_id,
            card_type: terms.card_type,
            ticket_type: terms.ticket_type,
        }],
    );
    write_public(out_4026, &roots.encode()?)?;
    write_public(out_4020, &whitelist.encode()?)?;
    println!(
        "parameter 4026 (root key {:02x} for version {:02x}) written to {}; parameter 4020 (issuer {} / {} -> ticket type {:02x}) written to {}; both version {table_version}",
        roots.entries().first().map_or(0, |e| e.record.index),
        version.value(),
        out_4026.display(),
        hex::encode(org_code),
        hex::encode(platform_id),
        terms.ticket_type,
        out_4020.display()
    );
    if version == ykt_qr::ids::LOCAL_ID_VERSION {
        println!(
            "the issuer's codes are local (81): terminals admit them by org code (`params --from`), not by the 4020 whitelist"
        );
    }
    Ok(())
}

const API_TOKEN_FILE: &str = "api.token";

/// `ykt qr issuer serve`: the issuer directory behind HTTP until SIGINT or SIGTERM.
fn issuer_serve(
    dir: &Path,
    listen: std::net::SocketAddr,
    token_file: Option<&Path>,
    policy: Policy,
) -> anyhow::Result<()> {
    let issuer = PublishedIssuer::load(dir).context("loading the issuer")?;
    let token_path = token_file.map_or_else(|| dir.join(API_TOKEN_FILE), Path::to_path_buf);
    if token_file.is_none() && !token_path.exists() {
        let mut secret = zeroize::Zeroizing::new([0u8; 24]);
        getrandom::fill(secret.as_mut_slice())
            .map_err(|e| anyhow::anyhow!("OS random source: {e}"))?;
        write_secret(
            &token_path,
            &zeroize::Zeroizing::new(hex_line(secret.as_slice())),
        )?;
        eprintln!("a new API token was written to {}", token_path.display());
    }
    let text = zeroize::Zeroizing::new(
        fs::read_to_string(&token_path)
            .with_context(|| format!("reading the API token {}", token_path.display()))?,
    );
    let token = ApiToken::new(&text).with_context(|| token_path.display().to_string())?;
    let mut config = ServiceConfig::new(token);
    config.policy = policy;
    let state = AppState::new(issuer, config).context("starting the issuer service")?;
    ykt_qr_service::run(listen, state, |addr| {
        println!("issuer service listening on http://{addr}");
        let _ = std::io::stdout().flush();
        eprintln!(
            "wallets present the API token in {}; caps: limit {}, authorisation {} s, code validity {} s",
            token_path.display(),
            cli_clock::yuan(policy.max_limit),
            policy.max_valid_for,
            policy.max_code_validity
        );
    })
    .context("the issuer service")?;
    eprintln!("issuer service stopped");
    Ok(())
}

/// Where a wallet gets its authorisation (qr-code.md §4.1): the issuer's directory on this
/// machine, or the issuer service over HTTP.
trait IssuerService {
    /// Authorises `device_key`'s public key under `terms` at `now` (Unix seconds): fields
    /// 1–15. The key signs the request where the issuer asks for proof of possession.
    fn authorise(
        &self,
        device_key: &Sm2PrivateKey,
        terms: &TermsArgs,
        now: u64,
    ) -> anyhow::Result<Authorisation>;
}

/// The issuer service at a URL, with the wallet's API token.
struct IssuerHttp {
    url: String,
    token: String,
}

impl IssuerService for IssuerHttp {
    fn authorise(
        &self,
        device_key: &Sm2PrivateKey,
        terms: &TermsArgs,
        now: u64,
    ) -> anyhow::Result<Authorisation> {
        let requested = RequestedTerms {
            limit: terms.limit,
            valid_for: parse_duration(&terms.valid_for)?,
            validity: terms.validity,
            account: terms.account.clone(),
            payment_account: terms.payment_account.clone(),
            account_type: terms.account_type.clone(),
            issuer_data: terms.issuer_data.clone(),
        };
        let granted =
            ykt_qr_service::authorise(&self.url, &self.token, device_key, &requested, now)
                .with_context(|| format!("asking {} for an authorisation", self.url))?;
        if !granted.clamped.is_empty() {
            eprintln!(
                "the issuer clamped {} to its caps",
                granted.clamped.join(", ")
            );
        }
        Ok(granted.authorisation)
    }
}

/// The issuer of an `ykt qr issuer init` directory.
struct IssuerDirectory(PathBuf);

impl IssuerService for IssuerDirectory {
    fn authorise(
        &self,
        device_key: &Sm2PrivateKey,
        terms: &TermsArgs,
        now: u64,
    ) -> anyhow::Result<Authorisation> {
        self.authorise_key(device_key.public_key(), terms, now)
    }
}

impl IssuerDirectory {
    /// Authorises a public key (the issuer's own command needs no proof of possession).
    fn authorise_key(
        &self,
        user_key: &Sm2PublicKey,
        terms: &TermsArgs,
        now: u64,
    ) -> anyhow::Result<Authorisation> {
        let dir = &self.0;
        let info = read_key_values(&dir.join(ISSUER_INFO_FILE))?;
        let version = Version::new(hex_array::<1>(info_value(&info, "version")?, "version")?[0])
            .context("issuer.txt: version must be 80 to FF")?;
        let org_code: [u8; 4] = hex_array(info_value(&info, "org_code")?, "org_code")?;
        let platform_id: [u8; 4] = hex_array(info_value(&info, "platform_id")?, "platform_id")?;
        let key = read_private_key(&dir.join(ISSUER_KEY_FILE))?;
        let certificate = IssuerCertificate::decode(&read_hex(&dir.join(ISSUER_CERT_FILE))?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(ISSUER_CERT_FILE).display()))?;
        let issuer = Issuer::new(key, certificate, version)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let fingerprint = ykt_crypto::sm3(&user_key.to_bytes());
        let user_account = match &terms.account {
            Some(text) => hex_array(text, "--account")?,
            None => default_account(&org_code, &fingerprint),
        };
        let payment_account = match &terms.payment_account {
            Some(text) => {
                let bytes = text.as_bytes();
                ensure!(
                    bytes.len() == 16 && text.is_ascii(),
                    "--payment-account must be 16 ASCII characters"
                );
                let mut out = [0u8; 16];
                out.copy_from_slice(bytes);
                out
            }
            None => default_payment_account(&fingerprint),
        };
        let valid_for = parse_duration(&terms.valid_for)?;
        let expiry = u32::try_from(now.saturating_add(valid_for))
            .context("the authorisation expiry is beyond 2106")?;
        let issuer_data = hex::decode(&terms.issuer_data).context("--issuer-data is not hex")?;
        let terms = Terms {
            payment_account,
            user_account,
            org_code,
            platform_id,
            account_type: hex_array::<1>(&terms.account_type, "--account-type")?[0],
            limit: terms.limit,
            authorisation_expiry: expiry,
            validity: terms.validity,
            issuer_data,
        };
        let mut rng = SystemRandom::new()?;
        issuer::authorise(&issuer, user_key, &terms, &mut rng)
            .map_err(|e| anyhow::anyhow!("authorising: {e}"))
    }
}

// ---- the wallet --------------------------------------------------------------------------------

const DEVICE_KEY_FILE: &str = "device.key";
const DEVICE_PUBLIC_FILE: &str = "device.pub";
const AUTHORISATION_FILE: &str = "authorisation";

/// `ykt wallet qr init` (qr-code.md §4.1, §4.2).
fn wallet_init(
    dir: &Path,
    issuer: &dyn IssuerService,
    terms: &TermsArgs,
    now: u64,
) -> anyhow::Result<()> {
    ensure_dir(dir)?;
    let key_path = dir.join(DEVICE_KEY_FILE);
    let key = if key_path.exists() {
        read_private_key(&key_path)?
    } else {
        let mut rng = SystemRandom::new()?;
        let key = Sm2PrivateKey::generate(&mut rng).context("making the device key")?;
        write_private_key(&key_path, &key.expose())?;
        write_public(
            &dir.join(DEVICE_PUBLIC_FILE),
            hex_line(&ykt_qr::compress_public_key(key.public_key())).as_bytes(),
        )?;
        key
    };
    let blob = issuer.authorise(&key, terms, now)?;
    write_public(
        &dir.join(AUTHORISATION_FILE),
        hex_line(&blob.encode()).as_bytes(),
    )?;
    println!(
        "wallet {}: account {}, limit {}, authorised until {} (codes valid {} s)",
        dir.display(),
        mask(&blob.body.user_account),
        cli_clock::yuan(blob.body.limit),
        utc(u64::from(blob.body.authorisation_expiry)),
        blob.body.validity
    );
    Ok(())
}

/// How `ykt wallet qr show` presents the code.
struct ShowOptions {
    png: Option<PathBuf>,
    scale: u32,
    style: Option<TextStyle>,
}

/// `ykt wallet qr show` (qr-code.md §4.2, §1.2).
fn wallet_show(dir: &Path, display: &ShowOptions, now: u64) -> anyhow::Result<()> {
    let key = read_private_key(&dir.join(DEVICE_KEY_FILE))?;
    let path = dir.join(AUTHORISATION_FILE);
    let blob = Authorisation::decode(&read_hex(&path)?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let now32 = u32::try_from(now).context("the time is beyond 2106")?;
    let mut rng = SystemRandom::new()?;
    let code = wallet::generate(&blob, &key, now32, &mut rng).map_err(|e| match e {
        ykt_qr::Error::AuthorisationExpired { expiry, .. } => anyhow::anyhow!(
            "the authorisation expired at {}: run `ykt wallet qr init` again",
            utc(u64::from(expiry))
        ),
        other => anyhow::anyhow!("generating the code: {other}"),
    })?;
    let bytes = code.encode();
    let symbol = Symbol::encode(&bytes).context("drawing the symbol")?;
    if let Some(png) = &display.png {
        let image = symbol
            .to_png(display.scale, ykt_qr_symbol::QUIET_ZONE as u32)
            .context("drawing the PNG")?;
        write_public(png, &image)?;
    }
    if let Some(style) = display.style {
        print!("{}", symbol.to_text(style, ykt_qr_symbol::QUIET_ZONE));
    }
    eprintln!(
        "code of {} bytes (QR version {}, level M) for account {}, generated {}, valid {} s{}",
        bytes.len(),
        symbol.version(),
        mask(&blob.body.user_account),
        utc(now),
        blob.body.validity,
        display
            .png
            .as_ref()
            .map(|p| format!(", PNG in {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

// ---- the terminal: parameters --------------------------------------------------------------

const PARAMS_FILE: &str = "qr-params.txt";
const RECORDS_FILE: &str = "qr-records.ykr";
const TERMINAL_KEY_FILE: &str = "qr-terminal.key";
const TERMINAL_PUBLIC_FILE: &str = "qr-terminal.pub";
const UPLOAD_CURSOR_FILE: &str = "qr-upload.next";

/// The terminal's parameter tables (qr-code.md §2.3), as kept in `qr-params.txt`.
#[derive(Debug, Default)]
struct Params {
    versions: ParameterVersions,
    roots: Vec<RootKeyEntry>,
    whitelist: Vec<WhitelistEntry>,
    local_orgs: Vec<[u8; 4]>,
    blacklist: Vec<[u8; 10]>,
}

impl Params {
    fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(PARAMS_FILE);
        let mut params = Self::default();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(params),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || format!("{} line {}", path.display(), n + 1);
            let (key, value) = line.split_once('=').with_context(bad)?;
            let value = value.trim();
            match key.trim() {
                "roots_version" => params.versions.root_keys = value.parse().with_context(bad)?,
                "whitelist_version" => {
                    params.versions.whitelist = value.parse().with_context(bad)?;
                }
                "blacklist_version" => {
                    params.versions.blacklist = value.parse().with_context(bad)?;
                }
                "root" => params.roots.push(
                    RootKeyEntry::decode(&hex::decode(value).with_context(bad)?)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", bad()))?,
                ),
                "whitelist" => {
                    let parts: Vec<&str> = value.split_whitespace().collect();
                    ensure!(parts.len() == 3, "{}: ORG PLATFORM TICKET expected", bad());
                    params.whitelist.push(WhitelistEntry {
                        org_code: hex_array(parts[0], "org code").with_context(bad)?,
                        platform_id: hex_array(parts[1], "platform id").with_context(bad)?,
                        ticket_type: hex_array::<1>(parts[2], "ticket type").with_context(bad)?[0],
                    });
                }
                "local_org" => params
                    .local_orgs
                    .push(hex_array(value, "org code").with_context(bad)?),
                "blacklist" => params
                    .blacklist
                    .push(hex_array(value, "account").with_context(bad)?),
                other => bail!("{}: unknown key {other:?}", bad()),
            }
        }
        Ok(params)
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let mut text = String::from(
            "# ride QR terminal parameters (qr-code.md §2.3, §3.1), written by `ykt terminal qr params`\n",
        );
        text.push_str(&format!("roots_version = {}\n", self.versions.root_keys));
        for r in &self.roots {
            text.push_str(&format!("root = {}\n", hex::encode(r.encode())));
        }
        text.push_str(&format!(
            "whitelist_version = {}\n",
            self.versions.whitelist
        ));
        for w in &self.whitelist {
            text.push_str(&format!(
                "whitelist = {} {} {:02x}\n",
                hex::encode(w.org_code),
                hex::encode(w.platform_id),
                w.ticket_type
            ));
        }
        for o in &self.local_orgs {
            text.push_str(&format!("local_org = {}\n", hex::encode(o)));
        }
        text.push_str(&format!(
            "blacklist_version = {}\n",
            self.versions.blacklist
        ));
        for a in &self.blacklist {
            text.push_str(&format!("blacklist = {}\n", hex::encode(a)));
        }
        write_public(&dir.join(PARAMS_FILE), text.as_bytes())
    }

    /// Installs a root key record, replacing one of the same version and index.
    fn install_root(&mut self, entry: RootKeyEntry) {
        self.roots
            .retain(|e| !(e.version == entry.version && e.record.index == entry.record.index));
        self.roots.push(entry);
    }

    /// Whitelists an issuer for interoperable codes, replacing its old entry.
    fn install_issuer(&mut self, org_code: [u8; 4], platform_id: [u8; 4], ticket_type: u8) {
        self.whitelist
            .retain(|w| !(w.org_code == org_code && w.platform_id == platform_id));
        self.whitelist.push(WhitelistEntry {
            org_code,
            platform_id,
            ticket_type,
        });
    }

    /// Admits an org code for local codes.
    fn install_local_org(&mut self, org_code: [u8; 4]) {
        if !self.local_orgs.contains(&org_code) {
            self.local_orgs.push(org_code);
        }
    }

    /// A verifier holding these tables.
    fn verifier(&self, config: VerifierConfig) -> anyhow::Result<Verifier> {
        let mut verifier = Verifier::new(config);
        let loaded = |what: &str| format!("loading the {what} of {PARAMS_FILE}");
        if self.versions.root_keys > 0 {
            verifier
                .apply(ParameterUpdate::RootKeys {
                    version: self.versions.root_keys,
                    entries: &self.roots,
                })
                .map_err(|e| anyhow::anyhow!("{}: {e}", loaded("root keys")))?;
        }
        if self.versions.whitelist > 0 {
            verifier
                .apply(ParameterUpdate::Whitelist {
                    version: self.versions.whitelist,
                    entries: &self.whitelist,
                })
                .map_err(|e| anyhow::anyhow!("{}: {e}", loaded("whitelist")))?;
        }
        if self.versions.blacklist > 0 {
            verifier
                .apply(ParameterUpdate::Blacklist {
                    version: self.versions.blacklist,
                    accounts: &self.blacklist,
                })
                .map_err(|e| anyhow::anyhow!("{}: {e}", loaded("blacklist")))?;
        }
        for org in &self.local_orgs {
            verifier.allow_local_org(*org);
        }
        Ok(verifier)
    }
}

/// Where `ykt terminal qr params` takes an issuer's parameters from.
enum ParamSource<'a> {
    /// An `ykt qr issuer init` directory.
    Dir(&'a Path),
    /// An `ykt qr issuer serve` service.
    Url(&'a str),
    /// Parameter files 4026 and 4020 (§2.3), either or both.
    Tables {
        root_keys: Option<&'a Path>,
        whitelist: Option<&'a Path>,
    },
}

/// `ykt terminal qr params` (qr-code.md §2.3).
fn params(
    dir: &Path,
    source: Option<ParamSource<'_>>,
    ticket_type: u8,
    block: &[[u8; 10]],
    unblock: &[[u8; 10]],
) -> anyhow::Result<()> {
    let mut params = Params::load(dir)?;
    let mut blacklist_changed = false;
    match source {
        Some(ParamSource::Dir(issuer)) => {
            let path = issuer.join(ROOT_RECORD_FILE);
            let record = RootKeyRecord::decode(&read_hex(&path)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            record
                .public_key_checked()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let info = read_key_values(&issuer.join(ISSUER_INFO_FILE))?;
            let version =
                Version::new(hex_array::<1>(info_value(&info, "version")?, "version")?[0])
                    .context("issuer.txt: version must be 80 to FF")?;
            let org_code: [u8; 4] = hex_array(info_value(&info, "org_code")?, "org_code")?;
            let platform_id: [u8; 4] = hex_array(info_value(&info, "platform_id")?, "platform_id")?;
            params.install_root(RootKeyEntry { version, record });
            params.versions.root_keys += 1;
            if version == ykt_qr::ids::LOCAL_ID_VERSION {
                params.install_local_org(org_code);
            } else {
                params.install_issuer(org_code, platform_id, ticket_type);
                params.versions.whitelist += 1;
            }
            println!(
                "root key {:02x} for version {:02x} and issuer {} / {} installed",
                params.roots.last().map_or(0, |e| e.record.index),
                version.value(),
                hex::encode(org_code),
                hex::encode(platform_id)
            );
        }
        Some(ParamSource::Url(url)) => {
            let published = ykt_qr_service::parameters(url)
                .with_context(|| format!("downloading the parameters of {url}"))?;
            ensure!(
                !published.root_keys.is_empty(),
                "{url} publishes no root key"
            );
            for entry in &published.root_keys {
                params.install_root(entry.clone());
            }
            params.versions.root_keys += 1;
            if !published.whitelist.is_empty() {
                for (org_code, platform_id) in &published.whitelist {
                    params.install_issuer(*org_code, *platform_id, ticket_type);
                }
                params.versions.whitelist += 1;
            }
            for org in &published.local_orgs {
                params.install_local_org(*org);
            }
            if published.blacklist_version > 0 {
                params.blacklist = published.blacklist.clone();
                blacklist_changed = true;
            }
            println!(
                "from {url}: {} root keys, {} whitelist entries, {} local orgs, {} (version {})",
                published.root_keys.len(),
                published.whitelist.len(),
                published.local_orgs.len(),
                if published.blacklist_version > 0 {
                    format!("{} blacklisted accounts", published.blacklist.len())
                } else {
                    "no blacklist".to_string()
                },
                published.blacklist_version
            );
        }
        Some(ParamSource::Tables {
            root_keys,
            whitelist,
        }) => {
            let read = |path: &Path| -> anyhow::Result<Vec<u8>> {
                fs::read(path).with_context(|| format!("reading {}", path.display()))
            };
            let roots = root_keys
                .map(|p| {
                    RootKeyTable::decode(&read(p)?)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
                })
                .transpose()?;
            let list = whitelist
                .map(|p| {
                    WhitelistTable::decode(&read(p)?)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
                })
                .transpose()?;
            // Both tables are checked against the ones held, all or nothing, before either is
            // kept.
            let updates: Vec<ParameterUpdate<'_>> = roots
                .iter()
                .map(RootKeyTable::update)
                .chain(list.iter().map(WhitelistTable::update))
                .collect();
            params
                .verifier(VerifierConfig::default())?
                .apply_all(&updates)
                .map_err(|e| anyhow::anyhow!("parameter files refused: {e}"))?;
            if let Some(t) = &roots {
                params.roots = t.entries().to_vec();
                params.versions.root_keys = t.version();
                println!(
                    "parameter 4026 version {}: {} root keys",
                    t.version(),
                    t.entries().len()
                );
            }
            if let Some(t) = &list {
                params.whitelist = t.entries().to_vec();
                params.versions.whitelist = t.version();
                println!(
                    "parameter 4020 version {}: {} whitelist entries",
                    t.version(),
                    t.entries().len()
                );
            }
        }
        None => {}
    }
    if blacklist_changed || !block.is_empty() || !unblock.is_empty() {
        for a in block {
            if !params.blacklist.contains(a) {
                params.blacklist.push(*a);
            }
        }
        params.blacklist.retain(|a| !unblock.contains(a));
        params.versions.blacklist += 1;
    }
    params.save(dir)?;
    println!(
        "parameters in {}: {} root keys (version {}), {} whitelist entries (version {}), {} local orgs, {} blacklisted accounts (version {})",
        dir.join(PARAMS_FILE).display(),
        params.roots.len(),
        params.versions.root_keys,
        params.whitelist.len(),
        params.versions.whitelist,
        params.local_orgs.len(),
        params.blacklist.len(),
        params.versions.blacklist
    );
    Ok(())
}

// ---- the terminal: scanning --------------------------------------------------------------------

struct ScanSettings {
    fare: u32,
    mode: Mode,
    terminal_id: [u8; 6],
    config: VerifierConfig,
    /// The terminal's clock reading, Unix seconds.
    now: u64,
}

/// `ykt terminal qr scan` (qr-code.md §3.1).
fn scan(dir: &Path, images: &[PathBuf], settings: &ScanSettings) -> anyhow::Result<()> {
    let params = Params::load(dir)?;
    ensure!(
        !params.roots.is_empty(),
        "no root keys in {}: install parameters with `ykt terminal qr params --from ISSUERDIR`",
        dir.display()
    );
    let skew = settings.config.clock_skew;
    let mut verifier = params.verifier(settings.config.clone())?;
    let mut store = open_records(dir)?;
    restore_replay_cache(&mut store, &mut verifier, skew, settings.now)?;
    let (mut refused, mut unreadable) = (0usize, 0usize);
    for image in images {
        let name = image.display();
        let bytes = match fs::read(image) {
            Ok(bytes) => bytes,
            Err(e) => {
                println!("{name}: unreadable: {e}");
                unreadable += 1;
                continue;
            }
        };
        let code = match ykt_qr_symbol::scan(&bytes) {
            Ok(code) => code,
            Err(e) => {
                println!("{name}: no code read: {e}");
                unreadable += 1;
                continue;
            }
        };
        match verifier.verify(&code, settings.fare, settings.now) {
            Ok(accepted) => {
                let sequence = store.next_sequence();
                let record = Record::new(
                    &accepted,
                    sequence,
                    settings.terminal_id,
                    settings.now,
                    settings.mode,
                    accepted.parameters,
                );
                store
                    .append(record.to_json_line().as_bytes())
                    .map_err(|e| anyhow::anyhow!("storing the record: {e}"))
                    .with_context(|| {
                        format!("{name}: accepted but not recorded; gate stays shut")
                    })?;
                println!(
                    "{name}: accepted: account {}, fare {}, ticket type {}, record #{sequence}",
                    mask(&accepted.code.authorisation.body.user_account),
                    cli_clock::yuan(accepted.fare),
                    accepted
                        .ticket_type
                        .map_or_else(|| "local".to_string(), |t| format!("{t:02x}")),
                );
            }
            Err(rejection) => {
                refused += 1;
                let account = QrCode::decode(&code)
                    .map(|c| format!(" (account {})", mask(&c.authorisation.body.user_account)))
                    .unwrap_or_default();
                println!(
                    "{name}: refused: {rejection} [{}]{account}",
                    rejection_name(&rejection)
                );
            }
        }
    }
    if unreadable > 0 {
        bail!(
            "{unreadable} of {} images held no readable QR code",
            images.len()
        );
    }
    if refused > 0 {
        bail!(Refused::new(format!(
            "{refused} of {} codes refused",
            images.len()
        )));
    }
    Ok(())
}

/// The variant name of a rejection, for scripts (`Replay`, `CodeExpired`, …).
fn rejection_name(rejection: &ykt_qr::Rejection) -> String {
    let debug = format!("{rejection:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A file as the record log's storage.
struct RecordFile(FileStorage);

impl Storage for RecordFile {
    type Error = std::io::Error;

    fn size(&mut self) -> Result<u64, Self::Error> {
        self.0.size()
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.0.read(offset, buf)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        self.0.write(offset, data)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush()
    }
}

fn open_records(dir: &Path) -> anyhow::Result<RecordStore<RecordFile>> {
    let path = dir.join(RECORDS_FILE);
    let file = FileStorage::open(&path).with_context(|| format!("opening {}", path.display()))?;
    RecordStore::open(RecordFile(file), 1).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (the file is left as it is; move it aside to start a new log)",
            path.display()
        )
    })
}

/// Puts every stored code still inside its window (generation + validity + skew) back into
/// the replay cache.
fn restore_replay_cache(
    store: &mut RecordStore<RecordFile>,
    verifier: &mut Verifier,
    skew: u32,
    now: u64,
) -> anyhow::Result<()> {
    let records = store
        .records_from(0)
        .map_err(|e| anyhow::anyhow!("reading the record log: {e}"))?;
    for (sequence, payload) in records {
        let record = parse_record(&payload).with_context(|| format!("record #{sequence}"))?;
        let validity = QrCode::decode(&record.code)
            .map(|c| u64::from(c.authorisation.body.validity))
            .unwrap_or(u64::from(u16::MAX));
        let until = u64::from(record.generation_time) + validity + u64::from(skew) + 1;
        if until > now {
            verifier
                .replay_cache_mut()
                .insert((record.user_account, record.generation_time), until, now)
                .map_err(|_| anyhow::anyhow!("the replay cache is full"))?;
        }
    }
    Ok(())
}

/// A stored record line back as a [`Record`]; the line must be exactly what the record
/// encodes to.
fn parse_record(line: &[u8]) -> anyhow::Result<Record> {
    let v: serde_json::Value = serde_json::from_slice(line).context("not JSON")?;
    let field = |k: &str| v.get(k).with_context(|| format!("no {k}"));
    let num = |k: &str| {
        field(k)?
            .as_u64()
            .with_context(|| format!("{k} is not a number"))
    };
    let text = |k: &str| {
        field(k)?
            .as_str()
            .with_context(|| format!("{k} is not text"))
    };
    let params = field("params")?;
    let pnum = |k: &str| -> anyhow::Result<u32> {
        let n = params.get(k).and_then(serde_json::Value::as_u64);
        Ok(u32::try_from(n.with_context(|| format!("params.{k}"))?)?)
    };
    let mode = match text("mode")? {
        "single" => Mode::Single,
        "entry" => Mode::Entry,
        "exit" => Mode::Exit,
        other => bail!("unknown mode {other:?}"),
    };
    let ticket_type = match field("ticket_type")? {
        serde_json::Value::Null => None,
        t => Some(u8::try_from(t.as_u64().context("ticket_type")?)?),
    };
    let record = Record {
        sequence: u32::try_from(num("seq")?)?,
        terminal_id: hex_array(text("terminal")?, "terminal")?,
        time: num("time")?,
        mode,
        fare: u32::try_from(num("fare")?)?,
        ticket_type,
        user_account: hex_array(text("account")?, "account")?,
        generation_time: u32::try_from(num("generated")?)?,
        parameters: ParameterVersions {
            root_keys: pnum("4026")?,
            whitelist: pnum("4020")?,
            blacklist: pnum("blacklist")?,
        },
        code: hex::decode(text("code")?).context("code is not hex")?,
    };
    ensure!(
        record.to_json_line().as_bytes() == line,
        "the stored line is not a record this terminal wrote"
    );
    Ok(record)
}

// ---- the terminal: upload ----------------------------------------------------------------------

/// `ykt terminal qr upload` (qr-code.md §5).
fn upload(dir: &Path, out: &Path, all: bool) -> anyhow::Result<()> {
    let mut store = open_records(dir)?;
    let cursor_path = dir.join(UPLOAD_CURSOR_FILE);
    let from = if all {
        0
    } else {
        match fs::read_to_string(&cursor_path) {
            Ok(text) => text
                .trim()
                .parse()
                .with_context(|| format!("{} is not a number", cursor_path.display()))?,
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("reading {}", cursor_path.display())),
        }
    };
    let stored = store
        .records_from(from)
        .map_err(|e| anyhow::anyhow!("reading the record log: {e}"))?;
    let records = stored
        .iter()
        .map(|(seq, line)| parse_record(line).with_context(|| format!("record #{seq}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let key = terminal_key(dir)?;
    let mut rng = SystemRandom::new()?;
    let batch = record::seal(&records, &key, &mut rng).context("signing the batch")?;
    write_public(out, &batch)?;
    let next = records.last().map_or(from, |r| r.sequence + 1);
    write_public(&cursor_path, format!("{next}\n").as_bytes())?;
    match (records.first(), records.last()) {
        (Some(first), Some(last)) => println!(
            "{} records (#{}–#{}) written to {}; check with {}",
            records.len(),
            first.sequence,
            last.sequence,
            out.display(),
            dir.join(TERMINAL_PUBLIC_FILE).display()
        ),
        _ => println!(
            "no records to upload; an empty signed batch written to {}",
            out.display()
        ),
    }
    Ok(())
}

/// The terminal's upload key, made at first use.
fn terminal_key(dir: &Path) -> anyhow::Result<Sm2PrivateKey> {
    let path = dir.join(TERMINAL_KEY_FILE);
    if path.exists() {
        return read_private_key(&path);
    }
    let mut rng = SystemRandom::new()?;
    let key = Sm2PrivateKey::generate(&mut rng).context("making the terminal key")?;
    write_private_key(&path, &key.expose())?;
    write_public(
        &dir.join(TERMINAL_PUBLIC_FILE),
        hex_line(&key.public_key().to_bytes()).as_bytes(),
    )?;
    Ok(key)
}

// ---- files -------------------------------------------------------------------------------------

fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn hex_line(bytes: &[u8]) -> String {
    format!("{}\n", hex::encode(bytes))
}

/// Writes a private key (hex) to a new file of mode 0600, synced; never replaces a file.
fn write_private_key(path: &Path, key: &[u8; 32]) -> anyhow::Result<()> {
    write_secret(path, &zeroize::Zeroizing::new(hex_line(key)))
}

/// Writes a secret to a new file of mode 0600, synced; never replaces a file.
pub(crate) fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn read_private_key(path: &Path) -> anyhow::Result<Sm2PrivateKey> {
    let text = zeroize::Zeroizing::new(
        fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), bytes.as_mut_slice())
        .with_context(|| format!("{}: not a 32-byte hex key", path.display()))?;
    Sm2PrivateKey::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Writes a file through a temporary one and a rename, synced, so a reader sees the old or the
/// new contents, never half of them.
fn write_public(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.with_context(|| format!("writing {}", path.display()))
}

fn read_hex(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    hex::decode(text.trim()).with_context(|| format!("{}: not hex", path.display()))
}

fn read_key_values(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

fn info_value<'a>(info: &'a [(String, String)], key: &str) -> anyhow::Result<&'a str> {
    info.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .with_context(|| format!("{ISSUER_INFO_FILE} has no {key}"))
}

// ---- values on the command line ----------------------------------------------------------------

fn hex_array<const N: usize>(text: &str, what: &str) -> anyhow::Result<[u8; N]> {
    let bytes = hex::decode(text.trim()).with_context(|| format!("{what}: {text:?} is not hex"))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("{what}: {N} bytes of hex expected, {} given", bytes.len()))
}

fn parse_accounts(list: &[String]) -> anyhow::Result<Vec<[u8; 10]>> {
    list.iter().map(|a| hex_array(a, "account")).collect()
}

/// A public key as hex (33 or 65 bytes) or a file holding that hex.
fn parse_public_key(text: &str) -> anyhow::Result<Sm2PublicKey> {
    let hex_text = match hex::decode(text.trim()) {
        Ok(_) => text.trim().to_string(),
        Err(_) => fs::read_to_string(text)
            .with_context(|| format!("--user-key: {text:?} is neither hex nor a readable file"))?
            .trim()
            .to_string(),
    };
    let bytes = hex::decode(&hex_text).context("--user-key: not hex")?;
    Sm2PublicKey::from_sec1_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("--user-key: not an SM2 public key: {e}"))
}

/// `90s`, `30m`, `24h`, `7d` or plain seconds.
fn parse_duration(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("{text:?} is not a duration (examples: 90s, 30m, 24h, 7d)"))?;
    let unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => bail!("{text:?}: the unit must be s, m, h or d"),
    };
    n.checked_mul(unit)
        .with_context(|| format!("{text:?} is too long"))
}

fn parse_mmyy(text: &str) -> anyhow::Result<Expiry> {
    let t = text.trim();
    ensure!(
        t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit()),
        "--expiry: {text:?} is not MMYY"
    );
    let month: u8 = t[..2].parse()?;
    let year: u8 = t[2..].parse()?;
    Expiry::new(month, year).with_context(|| format!("--expiry: {text:?} is not MMYY"))
}

fn five_years_on(now: u64) -> anyhow::Result<Expiry> {
    let (year, _, _) = civil(now);
    let yy = u8::try_from((year + 5) % 100)?;
    Expiry::new(12, yy).context("expiry year")
}

/// Now in Unix seconds: `--at` as YYYYMMDDhhmmss (China Standard Time, as the card terminal's
/// `--at`) or as Unix seconds, else the system clock.
fn now(at: Option<&str>) -> anyhow::Result<u64> {
    match at {
        Some(text) if text.len() == 14 => {
            let bcd = cli_clock::parse_datetime(text)?.bytes();
            let d = |i: usize| u64::from(bcd[i] >> 4) * 10 + u64::from(bcd[i] & 0x0F);
            let year = d(0) * 100 + d(1);
            let days = days_from_civil(year, d(2), d(3));
            let local = days * 86_400 + d(4) * 3600 + d(5) * 60 + d(6);
            local
                .checked_sub(CST_OFFSET_SECONDS as u64)
                .context("--at is before 1970")
        }
        Some(text) => text.trim().parse().with_context(|| {
            format!("--at {text:?}: expected YYYYMMDDhhmmss (China Standard Time) or Unix seconds")
        }),
        None => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_secs()),
    }
}

/// Days from 1970-01-01 to a date (year ≥ 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of Unix seconds, UTC.
fn civil(secs: u64) -> (u64, u64, u64) {
    let z = secs / 86_400 + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

/// Unix seconds as `YYYY-MM-DDThh:mm:ssZ`.
fn utc(secs: u64) -> String {
    let (y, m, d) = civil(secs);
    let rest = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// An account id for output: the first 6 and last 4 hex digits, the rest masked.
fn mask(account: &[u8]) -> String {
    let hex = hex::encode(account);
    if hex.len() <= 10 {
        return "*".repeat(hex.len());
    }
    format!(
        "{}{}{}",
        &hex[..6],
        "*".repeat(hex.len() - 10),
        &hex[hex.len() - 4..]
    )
}

// ---- randomness --------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_durations_and_masks() {
        assert_eq!(now(Some("20251125000000")).unwrap(), 1_764_000_000);
        assert_eq!(now(Some("1764000000")).unwrap(), 1_764_000_000);
        assert_eq!(utc(1_764_000_000), "2025-11-24T16:00:00Z");
        assert_eq!(parse_duration("24h").unwrap(), 86_400);
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert!(parse_duration("3w").is_err());
        assert_eq!(
            mask(&[0x99, 0x99, 0, 1, 0x12, 0x34, 0x56, 0x78, 0x90, 0x1F]),
            "999900**********901f"
        );
        let account = default_account(&[0x99, 0x99, 0, 1], &[7; 32]);
        assert_eq!(account[9] & 0x0F, 0x0F);
        assert!(default_payment_account(&[7; 32]).is_ascii());
    }
}
