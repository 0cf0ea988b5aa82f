//! `ykt tsm serve`: the TSM over HTTP, on SQLite by default or PostgreSQL (`--db`): the SEI-TSM
//! and the SP-TSM in one process (`--role both`), or each as a server of its own joined by the
//! inter-platform API (`--role sei`, `--role sp`); `ykt tsm init`, a production key hierarchy
//! in key files sealed under an operator's passphrase (served without `--test-keys`);
//! `ykt tsm key`, the platform key the other side pins; and [`RunningTsm`], both roles on a
//! thread of their own (the demo).
//!
//! A directory holds either the PUBLIC test hierarchy (`--test-keys`: `kms.pass` and key files
//! under it) or a production one (`ykt tsm init`: `hierarchy.json`, `sei.kms` and/or `sp.kms`
//! sealed under the passphrase of `--passphrase-file` or `$YKT_KMS_PASSPHRASE`), never both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::Context as _;
use ykt_crypto::Sm2PrivateKey;
use ykt_crypto::Sm2PublicKey;
use ykt_crypto::purse::{PurseAlgorithm, Sm4Rules};
use ykt_envelope::Sm2Signer;
use ykt_kms::{AuditSink, DiscardAudit, KdfParams, Kms, SecretBytes, SoftwareKms};
use ykt_store::Store;
use ykt_tsm::Role;
use ykt_tsm::vault::KeyVault as _;
use ykt_tsm_kms::{FRESH_ISD_MASTER_KVN, KmsVault, PurseIssuerSetup};
use ykt_tsm_service::engine::{CardStock, Engine, EngineConfig, Keys};
use ykt_tsm_service::http::admin_write::Operator;
use ykt_tsm_service::http::tls::{self, ServerTls, SpkiPin};
use ykt_tsm_service::http::{AdminToken, ServerConfig};
use ykt_tsm_service::kms_audit::KmsAuditLog;
use ykt_tsm_service::platform::{HttpSeiLink, RemoteSeiVault, SeiConfig, SeiPlatform};
use zeroize::Zeroizing;

use crate::phone;
use crate::se_production::IsdMasterFile;
use crate::tsm_link::TsmAddress;

/// `ykt tsm …`
#[derive(Debug, clap::Args)]
pub struct TsmArgs {
    #[command(subcommand)]
    command: TsmCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TsmCommand {
    /// Serve until SIGINT or SIGTERM: with `--role both` (the default) or `--role sp` the
    /// business API (wallets), with `--role sei` the inter-platform API (the SP-TSM's calls);
    /// and the admin API, /openapi.json, /health and /metrics.
    ///
    /// Keys: the production hierarchy `ykt tsm init` made in --dir (its passphrase from
    /// --passphrase-file or $YKT_KMS_PASSPHRASE), or the PUBLIC test keys with --test-keys.
    ///
    /// Two servers: `ykt tsm key --dir SP_DIR` and `ykt tsm key --dir SEI_DIR` print each
    /// platform's public key; start `ykt tsm serve --role sei --dir SEI_DIR --peer-key <SP key>`
    /// and `ykt tsm serve --role sp --dir SP_DIR --sei-url https://SEI --sei-pin <SEI's TLS
    /// pin> --sei-key <SEI key>`. The SP's directory then holds no SEI key file (`sei.kms`), the
    /// SEI's no `sp.kms`.
    ///
    /// Transport (client.md §6.4): TLS 1.3 with the certificate and key of --tls-cert and
    /// --tls-key, or by default `tls.crt` and `tls.key` in --dir (a self-signed pair made at
    /// first start for --tls-name). It prints the SPKI pin wallets check the server's key
    /// against (`ykt wallet enrol --tsm-pin`). Plain HTTP only with --danger-insecure-http.
    Serve(Box<ServeArgs>),
    /// Make a production key hierarchy in --dir, every key in key files sealed under the
    /// passphrase of --passphrase-file or $YKT_KMS_PASSPHRASE: the SEI-TSM's (`sei.kms`: the
    /// ISD master shared with card production, the token signer, the receipt key) and/or the
    /// SP-TSM's (`sp.kms`: the transport key, the purse issuer's master keys), and the
    /// envelope signing key. Prints key ids, versions, check values and public keys, never a
    /// secret. Refuses a directory that holds a hierarchy (test or production) already.
    Init(InitArgs),
    /// Print this platform's envelope signing public key (SEC1, hex): what the other platform
    /// pins with `--peer-key` or `--sei-key`. Makes the key in --dir if it is not there yet.
    Key(KeyArgs),
    /// Print the SPKI pin (`sha256/<base64>`) of the TLS certificate `ykt tsm serve` uses:
    /// what wallets give as `--tsm-pin` and an SP-TSM as `--sei-pin`.
    Pin(PinArgs),
}

#[derive(Debug, clap::Args)]
struct PinArgs {
    /// The platform's directory (its `tls.crt`, as `ykt tsm serve --dir`).
    #[arg(long, value_name = "DIR", default_value = "ykt-tsm")]
    dir: PathBuf,
    /// A certificate file (PEM) instead (as `ykt tsm serve --tls-cert`).
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
}

/// Which TSM roles a server plays (tsm-gp.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ServeRole {
    /// SEI-TSM and SP-TSM in one process: the business API, no inter-platform traffic.
    Both,
    /// The SEI-TSM only: the inter-platform API for one SP platform (`--peer-key`), with
    /// `sei.kms`.
    Sei,
    /// The SP-TSM only: the business API, with `sp.kms`; the SEI's vault is the SEI-TSM at
    /// `--sei-url`.
    Sp,
}

/// The purse issuer's algorithm (e-purse.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PurseAlg {
    /// 2-key 3DES.
    Tdes,
    /// SM4 (the brief's SM4 rules).
    Sm4,
}

impl PurseAlg {
    fn algorithm(self) -> PurseAlgorithm {
        match self {
            Self::Tdes => PurseAlgorithm::Tdes,
            Self::Sm4 => PurseAlgorithm::Sm4(Sm4Rules::BRIEF),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Tdes => "tdes",
            Self::Sm4 => "sm4",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "tdes" => Some(Self::Tdes),
            "sm4" => Some(Self::Sm4),
            _ => None,
        }
    }
}

#[derive(Debug, clap::Args)]
struct InitArgs {
    /// The platform's directory (as `ykt tsm serve --dir`); made if missing, refused if it
    /// holds a key hierarchy already.
    #[arg(long, value_name = "DIR", default_value = "ykt-tsm")]
    dir: PathBuf,
    /// Which roles' keys to make (`both`: `sei.kms` and `sp.kms`).
    #[arg(long, value_enum, default_value = "both")]
    role: ServeRole,
    /// The purse issuer's master key algorithm (`--role sp|both`).
    #[arg(long, value_enum, default_value = "tdes")]
    purse_algorithm: PurseAlg,
    /// A file holding the key files' passphrase (default: $YKT_KMS_PASSPHRASE); at least
    /// 12 characters.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// `--role sei|both`: import the ISD master and receipt key card production keys its SEs
    /// with from this ISD master file (`ykt se new-isd-master`); their check values are
    /// verified. Non-exportable in the KMS afterwards.
    #[arg(long, value_name = "FILE", conflicts_with = "new_isd_master")]
    isd_master: Option<PathBuf>,
    /// `--role sei|both`: write a NEW ISD master file here (mode 0600; must not exist) for the
    /// SE maker (`ykt se produce --isd-master FILE`), with this TSM's token key.
    #[arg(long, value_name = "FILE")]
    new_isd_master: Option<PathBuf>,
    /// The database `ykt tsm serve --db` will use: the ceremony's key events (every key
    /// generated or imported, every check value computed) become the first KEY_USE rows of its
    /// SM3-chained audit log. Without it they are not recorded.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
}

#[derive(Debug, clap::Args)]
struct KeyArgs {
    /// The platform's directory (as `ykt tsm serve --dir`).
    #[arg(long, value_name = "DIR", default_value = "ykt-tsm")]
    dir: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8480")]
    listen: SocketAddr,
    /// The database: sqlite://FILE?mode=rwc (the embedded default) or postgres://….
    #[arg(long, default_value = "sqlite://ykt-tsm.db?mode=rwc")]
    db: String,
    /// The TSM's directory: its envelope signing key (`tsm.key`), admin token (`admin.token`)
    /// and the key files of its roles (`sei.kms`, `sp.kms`): the production hierarchy
    /// `ykt tsm init` made there, or with `--test-keys` the test hierarchy (sealed under
    /// `kms.pass`, made at first start). All mode 0600.
    #[arg(long, value_name = "DIR", default_value = "ykt-tsm")]
    dir: PathBuf,
    /// The TSM's id (the `receiver_id` wallets or the SP platform address); default
    /// `SEITSM-YKT-TEST` for `--role sei`, `SPTSM-YKT-TEST` otherwise.
    #[arg(long)]
    tsm_id: Option<String>,
    /// Which roles this server plays.
    #[arg(long, value_enum, default_value = "both")]
    role: ServeRole,
    /// `--role sei`: the SP platform's public key (hex, from `ykt tsm key` in its directory);
    /// the only key the inter-platform API accepts envelopes under.
    #[arg(long, value_name = "HEX", required_if_eq("role", "sei"))]
    peer_key: Option<String>,
    /// `--role sei`: the SP's transport public key (hex, SEC1; printed by the SP's `ykt tsm
    /// init`), the only key SSD keys are handed over under; with `--test-keys` default the
    /// test hierarchy's, required otherwise.
    #[arg(long, value_name = "HEX")]
    peer_transport_key: Option<String>,
    /// `--role sei`: the SP platform's id (its envelopes' `sender_id`).
    #[arg(long, value_name = "ID", default_value = "SPTSM-YKT-TEST")]
    peer_id: String,
    /// `--role sp`: the SEI-TSM, https://HOST:PORT (http:// with --danger-insecure-http).
    #[arg(long, value_name = "URL", required_if_eq("role", "sp"))]
    sei_url: Option<String>,
    /// `--role sp`: the SPKI pin of the SEI-TSM's TLS key (`ykt tsm pin --dir SEI_DIR`);
    /// twice for a backup key.
    #[arg(long, value_name = "PIN")]
    sei_pin: Vec<String>,
    /// `--role sp`: the SEI-TSM's public key (hex, from `ykt tsm key` in its directory).
    #[arg(long, value_name = "HEX", required_if_eq("role", "sp"))]
    sei_key: Option<String>,
    /// `--role sp`: the SEI-TSM's id (its `receiver_id`).
    #[arg(long, value_name = "ID", default_value = "SEITSM-YKT-TEST")]
    sei_id: String,
    /// Use the PUBLIC test key hierarchy (the ISD master of `ykt se serve --blank` cards
    /// without --isd-master, the e-purse brief's test master keys): a test deployment. Without
    /// it the server opens the production hierarchy `ykt tsm init` made in --dir; a directory
    /// never mixes the two.
    #[arg(long)]
    test_keys: bool,
    /// A file holding the key files' passphrase (default: $YKT_KMS_PASSPHRASE); not with
    /// --test-keys.
    #[arg(long, value_name = "FILE", conflicts_with = "test_keys")]
    passphrase_file: Option<PathBuf>,
    /// Let wallets pay orders through the built-in test payment provider (`TestPayReq`).
    #[arg(long)]
    test_payments: bool,
    /// Serve the registry API (issuers, card stock, SE profiles, key versions:
    /// /admin/v1/issuers, …) to the operators in FILE: one `LABEL TOKEN` per line, the file
    /// mode 0600. Each writes with `Authorization: Bearer TOKEN`; its label names it in the
    /// audit log. Not with --role sei.
    #[arg(long, value_name = "FILE")]
    operators: Option<PathBuf>,
    /// The TLS certificate chain (PEM, the server's certificate first); default `tls.crt` in
    /// --dir, made self-signed with `tls.key` at first start.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM, PKCS#8; mode 0600); default `tls.key` in --dir.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The names the self-signed certificate is made for (default: localhost and the --listen
    /// address). Only when tls.crt is made.
    #[arg(long, value_name = "NAME")]
    tls_name: Vec<String>,
    /// Serve plain HTTP, and allow an http:// --sei-url: every message crosses the network
    /// unencrypted. For tests on one machine only. (An https:// --sei-url is reached over
    /// pinned TLS either way.)
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "tls_name"])]
    danger_insecure_http: bool,
}

/// Runs `ykt tsm …`.
pub fn run(args: TsmArgs) -> anyhow::Result<()> {
    crate::harden::process()?; // client.md §6.11
    match args.command {
        TsmCommand::Serve(a) => serve(*a),
        TsmCommand::Init(a) => init(&a),
        TsmCommand::Key(a) => key(&a),
        TsmCommand::Pin(a) => pin(&a),
    }
}

/// The default TLS certificate and key file names in a platform's directory.
const TLS_CERT_FILE: &str = "tls.crt";
const TLS_KEY_FILE: &str = "tls.key";

/// `ykt tsm pin`.
fn pin(args: &PinArgs) -> anyhow::Result<()> {
    let path = args
        .cert
        .clone()
        .unwrap_or_else(|| args.dir.join(TLS_CERT_FILE));
    let pem = std::fs::read(&path).with_context(|| {
        format!(
            "reading {} (`ykt tsm serve` makes it at first start)",
            path.display()
        )
    })?;
    let pin = SpkiPin::of_certificate_pem(&pem).with_context(|| format!("{}", path.display()))?;
    println!("{pin}");
    Ok(())
}

/// The server's TLS configuration (`None`: plain HTTP under --danger-insecure-http), and
/// whether the self-signed pair was made now.
fn server_tls(args: &ServeArgs) -> anyhow::Result<Option<(ServerTls, bool)>> {
    if args.danger_insecure_http {
        return Ok(None);
    }
    let (cert, key, made) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), false),
        _ => {
            let (cert, key) = (args.dir.join(TLS_CERT_FILE), args.dir.join(TLS_KEY_FILE));
            let made = match (cert.exists(), key.exists()) {
                (true, true) => false,
                (false, false) => {
                    let mut names = args.tls_name.clone();
                    if names.is_empty() {
                        names.push("localhost".to_string());
                        names.push(args.listen.ip().to_string());
                    }
                    let pair = tls::self_signed(&names).context("making a TLS certificate")?;
                    std::fs::create_dir_all(&args.dir)
                        .with_context(|| format!("creating {}", args.dir.display()))?;
                    crate::qr::write_secret(&key, &pair.key_pem)?;
                    std::fs::write(&cert, &pair.cert_pem)
                        .with_context(|| format!("writing {}", cert.display()))?;
                    true
                }
                _ => anyhow::bail!(
                    "{} holds one of {TLS_CERT_FILE} and {TLS_KEY_FILE} without the other: restore the missing one, or remove both to make a new pair (wallets pinned to the old key then refuse the server)",
                    args.dir.display()
                ),
            };
            (cert, key, made)
        }
    };
    let tls = ServerTls::from_pem_files(&cert, &key)?;
    Ok(Some((tls, made)))
}

/// `tsm init --db`: the KMS events of the key ceremony written to the audit chain of the
/// database, by the writer `tsm serve` uses (`KmsAuditLog`), on a runtime of its own.
struct CeremonyAudit {
    runtime: tokio::runtime::Runtime,
    log: KmsAuditLog,
    writer: ykt_tsm_service::kms_audit::KmsAuditWriter,
    db: String,
}

impl CeremonyAudit {
    fn open(db: &str) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let store = runtime.block_on(open_store(db))?;
        let (log, writer) = KmsAuditLog::start(store, runtime.handle());
        Ok(Self {
            runtime,
            log,
            writer,
            db: redact_url(db),
        })
    }

    /// Waits until every queued event is written; an event that could not be is an error (the
    /// key files stay: the keys exist, their record is what is missing).
    fn finish(self) -> anyhow::Result<u64> {
        let Self {
            runtime,
            log,
            writer,
            db,
        } = self;
        runtime.block_on(writer.shutdown());
        if log.lost() > 0 {
            anyhow::bail!(
                "{} of the ceremony's key events could not be written to the audit log of {db} \
                 (see the log); the key files were made",
                log.lost()
            );
        }
        Ok(log.written())
    }
}

/// `ykt tsm key`.
fn key(args: &KeyArgs) -> anyhow::Result<()> {
    let key = signing_key(&args.dir)?;
    println!("{}", hex::encode(key.public_key().to_bytes()));
    Ok(())
}

/// A platform's public key from `--peer-key` / `--sei-key`.
fn peer_key(hex_text: &str, what: &str) -> anyhow::Result<Sm2PublicKey> {
    let bytes = hex::decode(hex_text.trim()).with_context(|| format!("{what} is not hex"))?;
    Sm2PublicKey::from_sec1_bytes(&bytes)
        .map_err(|_| anyhow::anyhow!("{what} is not an SM2 public key"))
}

/// The test deployment's card stock: the e-purse brief's issuer id, ten years' validity.
fn test_stock() -> CardStock {
    CardStock {
        issuer_id: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
        start_date: [0x20, 0x26, 0x01, 0x01],
        expiry_date: [0x20, 0x35, 0x12, 0x31],
        number_prefix: [0x31, 0x04, 0x10, 0x00],
    }
}

fn engine_config(tsm_id: &str, test_payments: bool) -> EngineConfig {
    EngineConfig {
        tsm_id: tsm_id.to_string(),
        parties: phone::test_parties(),
        card_stock: test_stock(),
        test_payments,
    }
}

/// Where the TSM's keys live: in memory (gone at exit), or in key files in a directory.
enum KeyHome<'a> {
    Memory,
    Files(&'a Path, &'a mut ServeKeys),
}

/// Opens the database at `db` (one pool for the engine and the KMS audit writer).
async fn open_store(db: &str) -> anyhow::Result<Store> {
    Store::connect(db)
        .await
        .with_context(|| format!("opening the database {}", redact_url(db)))
}

async fn test_engine(
    store: Store,
    tsm_id: &str,
    test_payments: bool,
    home: KeyHome<'_>,
) -> anyhow::Result<Engine> {
    let keys = match home {
        KeyHome::Memory => test_keys()?,
        KeyHome::Files(dir, source) => Keys {
            sei: Box::new(source.take(dir, Role::Sei)?),
            sp: Box::new(source.take(dir, Role::Sp)?),
        },
    };
    Engine::new(store, keys, engine_config(tsm_id, test_payments))
        .await
        .context("starting the TSM engine")
}

/// The PUBLIC test key hierarchy imported into an in-memory software KMS, one per TSM role,
/// behind `KmsVault`: the flows use the KMS path a production key file would.
fn test_keys() -> anyhow::Result<Keys> {
    let parties = phone::test_parties();
    let vault = |role| -> anyhow::Result<KmsVault> {
        let kms: Arc<dyn Kms> = Arc::new(SoftwareKms::in_memory(Arc::new(DiscardAudit)));
        KmsVault::provision_test_keys(kms, &parties, role)
            .context("importing the test keys into the KMS")
    };
    Ok(Keys {
        sei: Box::new(vault(Role::Sei)?),
        sp: Box::new(vault(Role::Sp)?),
    })
}

/// One role's key file of the test key hierarchy in `dir` (`sei.kms` or `sp.kms`, sealed
/// under the random passphrase in `kms.pass`; all mode 0600, made at first start); only that
/// file is made or opened. The keys the flows make there (each card's security domain key
/// sets) outlive the process: a flow cut by a crash resumes with them (tsm-gp.md §8). The
/// PUBLIC test keys are imported afresh at every start (replacing the stored copies), as
/// [`test_keys`] imports them.
fn file_vault(dir: &Path, role: Role, audit: Arc<dyn AuditSink>) -> anyhow::Result<KmsVault> {
    let parties = phone::test_parties();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pass = secret_file(&dir.join(TEST_PASS_FILE), || random_hex(32))?;
    let pass = SecretBytes::from_slice(pass.as_bytes());
    let path = dir.join(kms_file(role));
    let kms: Arc<dyn Kms> = if path.exists() {
        Arc::new(
            SoftwareKms::open(&path, &pass, audit)
                .with_context(|| format!("opening the key file {}", path.display()))?,
        )
    } else {
        Arc::new(
            SoftwareKms::create(&path, &pass, KdfParams::DEFAULT, audit)
                .with_context(|| format!("creating the key file {}", path.display()))?,
        )
    };
    let test_names = [
        &parties.isd_master,
        &parties.token_signer,
        &parties.receipt_key,
        &parties.sp_transport,
        &parties.purse_issuer,
    ]
    .map(|n| format!("{}/", n.0));
    for key in kms.list().context("listing the key file")? {
        if test_names
            .iter()
            .any(|n| key.id.name().starts_with(n.as_str()))
        {
            kms.destroy(&key.id, "ykt tsm serve: re-import the test keys")
                .context("replacing a test key")?;
        }
    }
    KmsVault::provision_test_keys(kms, &parties, role)
        .context("importing the test keys into the KMS")
}

/// \[PROPOSAL\] The shortest passphrase the key files of a production hierarchy are sealed
/// under (characters; the key file's Argon2id makes each guess cost, length makes them many).
pub const MIN_PASSPHRASE_LEN: usize = 12;

/// \[PROPOSAL\] The initial PIN production cards are personalised with: the issuing code the
/// e-purse brief records (`12 34 56`, e-purse.md §4.1), which the holder changes. It is not a
/// secret of the deployment and so is not stored with the keys.
const PRODUCTION_INITIAL_PIN: [u8; 3] = [0x12, 0x34, 0x56];

/// The environment variable `ykt tsm init` and `ykt tsm serve` read the key files'
/// passphrase from when there is no `--passphrase-file`.
const PASSPHRASE_ENV: &str = "YKT_KMS_PASSPHRASE";

/// The production hierarchy's descriptor in the TSM's directory (which key files, which purse
/// algorithm); no secret.
const HIERARCHY_FILE: &str = "hierarchy.json";
/// Its `format`.
const HIERARCHY_FORMAT: &str = "ykt-tsm-hierarchy/1";
/// What marks a directory of the test hierarchy (`--test-keys`).
const TEST_PASS_FILE: &str = "kms.pass";

/// The key files' passphrase: the first line of `file`, or `$YKT_KMS_PASSPHRASE`; refused
/// when missing, empty or shorter than [`MIN_PASSPHRASE_LEN`]. Never a command-line value.
fn kms_passphrase(file: Option<&Path>) -> anyhow::Result<SecretBytes> {
    let text = match file {
        Some(path) => Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the passphrase file {}", path.display()))?,
        ),
        None => match std::env::var(PASSPHRASE_ENV) {
            Ok(v) => Zeroizing::new(v),
            Err(_) => anyhow::bail!(
                "no passphrase for the key files: give --passphrase-file FILE or set \
                 ${PASSPHRASE_ENV}"
            ),
        },
    };
    let pass = text.lines().next().unwrap_or("");
    if pass.trim().is_empty() {
        anyhow::bail!("the key files' passphrase is empty");
    }
    if pass.chars().count() < MIN_PASSPHRASE_LEN {
        anyhow::bail!(
            "the key files' passphrase is too short: at least {MIN_PASSPHRASE_LEN} characters"
        );
    }
    Ok(SecretBytes::from_slice(pass.as_bytes()))
}

/// The key file of `role` in a TSM's directory.
fn kms_file(role: Role) -> &'static str {
    match role {
        Role::Sei => "sei.kms",
        _ => "sp.kms",
    }
}

/// The TSM roles a server role holds keys of.
fn roles_of(role: ServeRole) -> &'static [Role] {
    match role {
        ServeRole::Both => &[Role::Sei, Role::Sp],
        ServeRole::Sei => &[Role::Sei],
        ServeRole::Sp => &[Role::Sp],
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Sei => "sei",
        _ => "sp",
    }
}

/// The purse issuer of a production hierarchy (`ykt tsm init`, `ykt tsm serve`).
fn production_purse(alg: PurseAlg) -> PurseIssuerSetup {
    PurseIssuerSetup::new(alg.algorithm(), &PRODUCTION_INITIAL_PIN)
}

/// Whatever key hierarchy `dir` holds already (test or production), by the first file found.
fn existing_hierarchy(dir: &Path) -> Option<PathBuf> {
    [HIERARCHY_FILE, TEST_PASS_FILE, "sei.kms", "sp.kms"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
}

/// Removes the files `init` made when it fails half-way (best effort).
struct Undo(Vec<PathBuf>);

impl Drop for Undo {
    fn drop(&mut self) {
        for path in self.0.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `ykt tsm init` (see [`TsmCommand::Init`]).
fn init(args: &InitArgs) -> anyhow::Result<()> {
    let dir = &args.dir;
    // Everything is checked before anything is written.
    if let Some(found) = existing_hierarchy(dir) {
        anyhow::bail!(
            "{} holds a key hierarchy already ({}): nothing touched; init a new directory",
            dir.display(),
            found.display()
        );
    }
    let roles = roles_of(args.role);
    let sei = roles.contains(&Role::Sei);
    if !sei && (args.isd_master.is_some() || args.new_isd_master.is_some()) {
        anyhow::bail!("--isd-master and --new-isd-master are for --role sei or both");
    }
    if let Some(out) = args.new_isd_master.as_ref().filter(|o| o.exists()) {
        anyhow::bail!("{} exists already: nothing touched", out.display());
    }
    let ceremony = match (&args.isd_master, &args.new_isd_master) {
        (Some(path), _) => {
            let file = IsdMasterFile::read(path)?;
            if file.token_key.is_some() {
                anyhow::bail!(
                    "{} carries a token key already (another TSM's init wrote it): a new \
                     hierarchy imports a file made by `ykt se new-isd-master`",
                    path.display()
                );
            }
            Some(file)
        }
        (None, Some(_)) => Some(IsdMasterFile::generate(FRESH_ISD_MASTER_KVN)?),
        (None, None) if sei => anyhow::bail!(
            "--role {} needs --isd-master FILE (from the SE maker) or --new-isd-master FILE \
             (for the SE maker): card production keys every SE from that ISD master",
            if args.role == ServeRole::Both {
                "both"
            } else {
                "sei"
            }
        ),
        (None, None) => None,
    };
    let pass = kms_passphrase(args.passphrase_file.as_deref())?;
    // The audit chain of --db, opened before any key is made: a database that cannot be opened
    // writes nothing.
    let audit = match &args.db {
        Some(db) => Some(CeremonyAudit::open(db)?),
        None => None,
    };
    let sink: Arc<dyn AuditSink> = match &audit {
        Some(a) => Arc::new(a.log.clone()),
        None => Arc::new(DiscardAudit),
    };

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut undo = Undo(Vec::new());
    let parties = phone::test_parties();
    let purse = production_purse(args.purse_algorithm);
    let mut lines = Vec::new();
    let mut token_key = None;
    for &role in roles {
        let path = dir.join(kms_file(role));
        let kms: Arc<dyn Kms> = Arc::new(
            SoftwareKms::create(&path, &pass, KdfParams::DEFAULT, Arc::clone(&sink))
                .with_context(|| format!("creating the key file {}", path.display()))?,
        );
        undo.0.push(path.clone());
        let shared = ceremony.as_ref().map(IsdMasterFile::shared_keys);
        let vault = KmsVault::provision_shared(kms, &parties, role, &purse, shared.as_ref())
            .with_context(|| format!("making the keys in {}", path.display()))?;
        match role {
            Role::Sei => {
                let (kvn, kcv) = vault
                    .isd_master_check_values(&parties.isd_master)
                    .context("the ISD master's check values")?;
                let receipt = vault
                    .receipt_check_value(&parties.receipt_key)
                    .context("the receipt key's check value")?;
                let token = vault
                    .token_public_key(&parties.token_signer)
                    .context("the token signer's public key")?;
                lines.push(format!(
                    "{}: ISD master {} KVN {kvn:02X} (AES-128, KCV enc {} mac {} dek {}); \
                     receipt key {} (AES-128, KCV {}); token signer {} (SM2) public key {}",
                    path.display(),
                    parties.isd_master.0,
                    hex::encode_upper(kcv[0]),
                    hex::encode_upper(kcv[1]),
                    hex::encode_upper(kcv[2]),
                    parties.receipt_key.0,
                    hex::encode_upper(receipt),
                    parties.token_signer.0,
                    hex::encode(&token),
                ));
                token_key = Some(token);
            }
            _ => {
                let transport = vault
                    .transport_public_key(&parties.sp_transport)
                    .map_err(|e| anyhow::anyhow!("the transport key: {e}"))?;
                lines.push(format!(
                    "{}: transport key {} (SM2) public key {} (the SEI-TSM's \
                     --peer-transport-key); purse issuer {} ({}) master keys DLK 01, DPK 01, \
                     DTK, DAMK, DPUK, DRPK, version 01",
                    path.display(),
                    parties.sp_transport.0,
                    hex::encode(&transport),
                    parties.purse_issuer.0,
                    args.purse_algorithm.name(),
                ));
            }
        }
    }
    if let (Some(out), Some(mut file)) = (&args.new_isd_master, ceremony) {
        file.token_key = token_key.clone();
        file.write_new(out)?;
        undo.0.push(out.clone());
        lines.push(format!(
            "{}: NEW ISD master file (mode 0600) with the ISD master, the receipt key and the \
             token key, for card production (`ykt se produce --isd-master FILE`)",
            out.display()
        ));
    } else if let Some(token) = &token_key {
        lines.push(format!(
            "card production keys SEs from {} with --token-key {}",
            args.isd_master
                .as_deref()
                .map_or_else(|| "the ISD master file".into(), |p| p.display().to_string()),
            hex::encode(token)
        ));
    }
    let signing = signing_key(dir)?;
    let descriptor = serde_json::json!({
        "format": HIERARCHY_FORMAT,
        "roles": roles.iter().map(|r| role_name(*r)).collect::<Vec<_>>(),
        "purse_algorithm": args.purse_algorithm.name(),
    });
    crate::qr::write_secret(&dir.join(HIERARCHY_FILE), &format!("{descriptor:#}\n"))?;
    undo.0.clear();
    println!(
        "production key hierarchy in {} (role {}):",
        dir.display(),
        roles
            .iter()
            .map(|r| role_name(*r))
            .collect::<Vec<_>>()
            .join("+")
    );
    for line in &lines {
        println!("  {line}");
    }
    println!(
        "  {}: envelope signing key (SM2) public key {} (the other platform's --peer-key or \
         --sei-key)",
        dir.join("tsm.key").display(),
        hex::encode(signing.public_key().to_bytes())
    );
    if let Some(out) = &args.new_isd_master {
        eprintln!(
            "warning: {} is the SE maker's secret (it keys every SE): hand it over to card \
             production by a key ceremony and delete this copy; never keep it in {}",
            out.display(),
            dir.display()
        );
    }
    match audit {
        Some(audit) => {
            let db = audit.db.clone();
            let written = audit.finish()?;
            println!("  {written} key events of this ceremony in the audit log of {db}");
            eprintln!(
                "serve it with `ykt tsm serve --dir {} --db {db}` and the same passphrase",
                dir.display()
            );
        }
        None => eprintln!(
            "serve it with `ykt tsm serve --dir {}` and the same passphrase (the ceremony's key \
             events were not recorded: give --db to write them to the audit log)",
            dir.display()
        ),
    }
    Ok(())
}

/// The production hierarchy `ykt tsm init` made in `dir`: its roles and purse algorithm.
struct Hierarchy {
    roles: Vec<Role>,
    purse: PurseAlg,
}

/// Reads `dir`'s [`HIERARCHY_FILE`]; a clear error when there is none.
fn read_hierarchy(dir: &Path) -> anyhow::Result<Hierarchy> {
    let path = dir.join(HIERARCHY_FILE);
    if !path.exists() {
        let test = if dir.join(TEST_PASS_FILE).exists() {
            " (it holds the test hierarchy: serve it with --test-keys)"
        } else {
            ""
        };
        anyhow::bail!(
            "no production key hierarchy in {}{test}: run `ykt tsm init --dir {}` first, or \
             serve the PUBLIC test keys with --test-keys",
            dir.display(),
            dir.display()
        );
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let bad = || anyhow::anyhow!("{} is not a key hierarchy descriptor", path.display());
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|_| bad())?;
    if doc["format"] != HIERARCHY_FORMAT {
        return Err(bad());
    }
    let roles = doc["roles"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|r| match r.as_str() {
            Some("sei") => Ok(Role::Sei),
            Some("sp") => Ok(Role::Sp),
            _ => Err(bad()),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let purse = doc["purse_algorithm"]
        .as_str()
        .and_then(PurseAlg::parse)
        .ok_or_else(bad)?;
    Ok(Hierarchy { roles, purse })
}

/// The vaults of the roles `role` plays, from the production hierarchy in `dir` (opened, not
/// changed): `(sei, sp)`.
fn production_vaults(
    dir: &Path,
    role: ServeRole,
    passphrase_file: Option<&Path>,
    audit: &Arc<dyn AuditSink>,
) -> anyhow::Result<(Option<KmsVault>, Option<KmsVault>)> {
    let hierarchy = read_hierarchy(dir)?;
    for r in roles_of(role) {
        if !hierarchy.roles.contains(r) {
            anyhow::bail!(
                "the key hierarchy in {} has no {} keys ({} is missing): init a directory \
                 with --role {} for it",
                dir.display(),
                role_name(*r),
                kms_file(*r),
                role_name(*r)
            );
        }
    }
    let pass = kms_passphrase(passphrase_file)?;
    let parties = phone::test_parties();
    let purse = production_purse(hierarchy.purse);
    let open = |r: Role| -> anyhow::Result<KmsVault> {
        let path = dir.join(kms_file(r));
        let kms = SoftwareKms::open(&path, &pass, audit.clone()).map_err(|e| match e {
            ykt_kms::KmsError::KeyFile(ykt_kms::KeyFileError::Authentication) => anyhow::anyhow!(
                "wrong passphrase for the key file {} (or the file is damaged)",
                path.display()
            ),
            e => anyhow::Error::new(e).context(format!("opening the key file {}", path.display())),
        })?;
        KmsVault::open(Arc::new(kms), &parties, r, &purse)
            .with_context(|| format!("the key hierarchy in {}", path.display()))
    };
    let sei = roles_of(role)
        .contains(&Role::Sei)
        .then(|| open(Role::Sei))
        .transpose()?;
    let sp = roles_of(role)
        .contains(&Role::Sp)
        .then(|| open(Role::Sp))
        .transpose()?;
    Ok((sei, sp))
}

/// Where `ykt tsm serve` takes its vaults from.
enum ServeKeys {
    /// The test hierarchy in the directory's key files ([`file_vault`]), their key use
    /// reported to `audit`.
    Test { audit: Arc<dyn AuditSink> },
    /// The production hierarchy, opened before anything is written.
    Production {
        sei: Option<KmsVault>,
        sp: Option<KmsVault>,
    },
}

impl ServeKeys {
    /// Checks the directory and opens a production hierarchy (nothing written).
    /// Every key the vaults use is reported to `audit`.
    fn open(args: &ServeArgs, audit: Arc<dyn AuditSink>) -> anyhow::Result<Self> {
        if args.test_keys {
            if args.dir.join(HIERARCHY_FILE).exists() {
                anyhow::bail!(
                    "{} holds a production key hierarchy (ykt tsm init): serve it without \
                     --test-keys; the test keys and a production hierarchy do not mix",
                    args.dir.display()
                );
            }
            return Ok(Self::Test { audit });
        }
        if args.role == ServeRole::Sei && args.peer_transport_key.is_none() {
            anyhow::bail!(
                "--role sei with a production hierarchy needs --peer-transport-key (the SP's \
                 transport public key, printed by its `ykt tsm init`)"
            );
        }
        let (sei, sp) = production_vaults(
            &args.dir,
            args.role,
            args.passphrase_file.as_deref(),
            &audit,
        )?;
        Ok(Self::Production { sei, sp })
    }

    /// The vault of `role`.
    fn take(&mut self, dir: &Path, role: Role) -> anyhow::Result<KmsVault> {
        match self {
            Self::Test { audit } => file_vault(dir, role, audit.clone()),
            Self::Production { sei, sp } => match role {
                Role::Sei => sei.take(),
                _ => sp.take(),
            }
            .ok_or_else(|| anyhow::anyhow!("no {} keys opened", role_name(role))),
        }
    }

    fn describe(&self, dir: &Path) -> String {
        match self {
            Self::Test { .. } => "test keys (PUBLIC: a test deployment)".into(),
            Self::Production { .. } => {
                format!("production key hierarchy in {}", dir.display())
            }
        }
    }
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://[redacted]@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Reads the secret at `path`, or makes `fresh()` and writes it there (mode 0600) first.
fn secret_file(
    path: &Path,
    fresh: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<Zeroizing<String>> {
    if !path.exists() {
        let value = Zeroizing::new(fresh()?);
        crate::qr::write_secret(path, &value)?;
        tracing::info!(path = %path.display(), "made a new secret file (mode 0600)");
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Zeroizing::new(text.trim().to_string()))
}

fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut b = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(b.as_mut_slice()).map_err(|e| anyhow::anyhow!("OS random source: {e}"))?;
    Ok(hex::encode(b.as_slice()))
}

/// The platform's envelope signing key in `dir` (`tsm.key`, made at first start).
fn signing_key(dir: &Path) -> anyhow::Result<Sm2PrivateKey> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_hex = secret_file(&dir.join("tsm.key"), || {
        loop {
            let hex = random_hex(32)?;
            if sm2_key(&hex).is_ok() {
                return Ok(hex);
            }
        }
    })?;
    sm2_key(&key_hex).with_context(|| format!("{}", dir.join("tsm.key").display()))
}

/// The TSM's envelope signing key and admin token from `dir` (made at first start).
fn server_config(dir: &Path, tsm_id: &str) -> anyhow::Result<ServerConfig> {
    let key = signing_key(dir)?;
    let token = secret_file(&dir.join("admin.token"), || random_hex(24))?;
    let token = AdminToken::new(&token).context("the admin token")?;
    Ok(ServerConfig::new(tsm_id, Sm2Signer::new(key), token))
}

fn sm2_key(hex_text: &str) -> anyhow::Result<Sm2PrivateKey> {
    let bytes = Zeroizing::new(hex::decode(hex_text.trim()).context("not hex")?);
    let d: &[u8; 32] = bytes.as_slice().try_into().context("not 32 bytes")?;
    Sm2PrivateKey::from_bytes(d).context("not an SM2 private key")
}

/// The SP's transport public key of the test hierarchy (SEC1): the one recipient the SEI
/// hands SSD keys over to.
fn test_transport_public_key() -> anyhow::Result<Vec<u8>> {
    let key = Sm2PrivateKey::from_bytes(&ykt_tsm::vault::test_keys::SP_TRANSPORT)
        .context("the test transport key")?;
    Ok(key.public_key().to_bytes().to_vec())
}

/// `--role sp`: the engine with `sp.kms` and the SEI-TSM at `--sei-url` as the SEI's vault.
async fn sp_engine(
    args: &ServeArgs,
    store: Store,
    tsm_id: &str,
    config: &ServerConfig,
    source: &mut ServeKeys,
) -> anyhow::Result<Engine> {
    let (Some(url), Some(sei_key)) = (&args.sei_url, &args.sei_key) else {
        anyhow::bail!("--role sp needs --sei-url and --sei-key");
    };
    let sei_key = peer_key(sei_key, "--sei-key")?;
    // --danger-insecure-http lets the SP reach a plain-HTTP SEI-TSM; an https:// SEI-TSM is
    // reached over pinned TLS whatever this server serves.
    let plain = url.trim().to_ascii_lowercase().starts_with("http://");
    let sei = TsmAddress::new(url, &args.sei_pin, args.danger_insecure_http && plain)
        .context("--sei-url (its pin is --sei-pin)")?;
    let link = HttpSeiLink::over(
        sei.client()?,
        &args.sei_id,
        sei_key,
        tsm_id,
        Arc::clone(&config.signer),
    );
    let parties = phone::test_parties();
    let keys = Keys {
        sei: Box::new(RemoteSeiVault::new(link, &parties).context("the SEI link")?),
        sp: Box::new(source.take(&args.dir, Role::Sp)?),
    };
    Engine::new(store, keys, engine_config(tsm_id, args.test_payments))
        .await
        .context("starting the TSM engine (is the SEI-TSM at --sei-url up, with these keys?)")
}

/// `--role sei`: the inter-platform API with `sei.kms`, for the SP platform `--peer-id`.
async fn sei_platform(
    args: &ServeArgs,
    store: Store,
    source: &mut ServeKeys,
) -> anyhow::Result<SeiPlatform> {
    let Some(peer) = &args.peer_key else {
        anyhow::bail!("--role sei needs --peer-key");
    };
    let config = SeiConfig::new(
        args.peer_id.clone(),
        peer_key(peer, "--peer-key")?,
        match &args.peer_transport_key {
            Some(hex_text) => peer_key(hex_text, "--peer-transport-key")?
                .to_bytes()
                .to_vec(),
            None => test_transport_public_key()?,
        },
        phone::test_parties(),
    );
    let vault = source.take(&args.dir, Role::Sei)?;
    Ok(SeiPlatform::new(store, Box::new(vault), config))
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let tsm_id = args.tsm_id.clone().unwrap_or_else(|| {
        match args.role {
            ServeRole::Sei => "SEITSM-YKT-TEST",
            _ => "SPTSM-YKT-TEST",
        }
        .to_string()
    });
    let operators = match &args.operators {
        Some(path) if args.role == ServeRole::Sei => anyhow::bail!(
            "--operators {}: the SEI-TSM alone (--role sei) has no registry; give the operators \
             to the SP-TSM's server",
            path.display()
        ),
        Some(path) => read_operators(path)?,
        None => Vec::new(),
    };
    // Every KMS key use becomes a KEY_USE row of the store's audit chain; the events wait in
    // the queue until the writer starts on the runtime below.
    let (kms_audit, kms_audit_queue) = KmsAuditLog::new();
    // The keys first: a missing hierarchy or a wrong passphrase writes nothing.
    let mut source = ServeKeys::open(&args, Arc::new(kms_audit.clone()))?;
    // The TLS pair before anything listens: a broken pair is refused at start.
    let tls = server_tls(&args)?;
    let operator_count = operators.len();
    let config = server_config(&args.dir, &tsm_id)?.with_operators(operators);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // One pool: the engine (or the SEI platform) and the KMS audit writer share it.
        let store = open_store(&args.db).await?;
        let kms_audit_writer =
            kms_audit_queue.start(store.clone(), &tokio::runtime::Handle::current());
        type Server = std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;
        let tls_config = tls.as_ref().map(|(t, _)| t.clone());
        fn serve_on<B: ykt_tsm_service::http::Backend>(
            listener: tokio::net::TcpListener,
            backend: B,
            config: ServerConfig,
            tls: Option<ServerTls>,
        ) -> Server {
            match tls {
                Some(tls) => Box::pin(ykt_tsm_service::http::serve_tls(
                    listener, backend, config, tls,
                )),
                None => Box::pin(ykt_tsm_service::http::serve(listener, backend, config)),
            }
        }
        let bind = || async {
            tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("binding {}", args.listen))
        };
        let (listener, server): (_, Server) = match args.role {
            ServeRole::Both => {
                let engine = test_engine(
                    store,
                    &tsm_id,
                    args.test_payments,
                    KeyHome::Files(&args.dir, &mut source),
                )
                .await?;
                let listener = bind().await?;
                let addr = listener.local_addr()?;
                (addr, serve_on(listener, engine, config, tls_config))
            }
            ServeRole::Sp => {
                let engine = sp_engine(&args, store, &tsm_id, &config, &mut source).await?;
                let listener = bind().await?;
                let addr = listener.local_addr()?;
                (addr, serve_on(listener, engine, config, tls_config))
            }
            ServeRole::Sei => {
                let platform = sei_platform(&args, store, &mut source).await?;
                let listener = bind().await?;
                let addr = listener.local_addr()?;
                (addr, serve_on(listener, platform, config, tls_config))
            }
        };
        match &tls {
            Some((tls, made)) => {
                println!(
                    "TSM {tsm_id} listening on https://{listener} (TLS 1.3); SPKI pin {}",
                    tls.pin()
                );
                if *made {
                    eprintln!(
                        "made a self-signed TLS certificate: {} and {} (give wallets the pin above: ykt wallet enrol --tsm-pin)",
                        args.dir.join(TLS_CERT_FILE).display(),
                        args.dir.join(TLS_KEY_FILE).display()
                    );
                }
            }
            None => println!(
                "TSM {tsm_id} listening on http://{listener} (plain HTTP: --danger-insecure-http)"
            ),
        }
        let role = match args.role {
            ServeRole::Both => "SEI-TSM and SP-TSM",
            ServeRole::Sei => "SEI-TSM (inter-platform API)",
            ServeRole::Sp => "SP-TSM (SEI-TSM at --sei-url)",
        };
        eprintln!(
            "{role}; database {}; admin token in {}; {operator_count} registry operator(s); {}{}",
            redact_url(&args.db),
            args.dir.join("admin.token").display(),
            source.describe(&args.dir),
            if args.test_payments {
                "; test payments on"
            } else {
                ""
            }
        );
        let served = tokio::select! {
            r = server => r.context("the TSM server"),
            () = shutdown() => {
                eprintln!("TSM stopped");
                Ok(())
            }
        };
        kms_audit_writer.shutdown().await;
        if kms_audit.lost() > 0 {
            eprintln!(
                "warning: {} KMS audit event(s) could not be written to the audit log (see the log)",
                kms_audit.lost()
            );
        }
        served
    })
}

/// The registry operators in `path` (`--operators`): one `LABEL TOKEN` per line (`#` starts a
/// comment), the file readable by its owner only, labels unique. A token is what the operator
/// sends as `Authorization: Bearer TOKEN`; the label names the operator in the audit rows.
fn read_operators(path: &Path) -> anyhow::Result<Vec<Operator>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("--operators {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "--operators {}: the file is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let mut operators: Vec<Operator> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(label), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("{} line {}: expected `LABEL TOKEN`", path.display(), n + 1);
        };
        if operators.iter().any(|o| o.label == label) {
            anyhow::bail!(
                "{} line {}: the label {label} is given twice",
                path.display(),
                n + 1
            );
        }
        let token = AdminToken::new(token)
            .with_context(|| format!("{} line {}: the token of {label}", path.display(), n + 1))?;
        operators.push(Operator {
            label: label.to_string(),
            token,
        });
    }
    if operators.is_empty() {
        anyhow::bail!(
            "{}: no operators (one `LABEL TOKEN` per line)",
            path.display()
        );
    }
    Ok(operators)
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await,
            };
        tokio::select! {
            () = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

/// A test TSM on a thread of its own (the demo): SQLite at `db`, test keys, test payments,
/// its signing key and admin token in `dir`, TLS 1.3 with a self-signed certificate made for
/// the run (its pin in [`RunningTsm::address`]). Stopped on drop.
pub struct RunningTsm {
    address: TsmAddress,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl RunningTsm {
    /// Starts it on an ephemeral port of 127.0.0.1.
    pub fn start(db: &str, dir: &Path, tsm_id: &str) -> anyhow::Result<Self> {
        let config = server_config(dir, tsm_id)?;
        let pair = tls::self_signed(&["localhost".to_string(), "127.0.0.1".to_string()])
            .context("making the TSM's TLS certificate")?;
        let server_tls = ServerTls::from_pem(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes())?;
        let (db, tsm_id) = (db.to_string(), tsm_id.to_string());
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let store = open_store(&db).await?;
                let engine = test_engine(store, &tsm_id, true, KeyHome::Memory).await?;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let _ = bound_tx.send(listener.local_addr()?);
                tokio::select! {
                    r = ykt_tsm_service::http::serve_tls(listener, engine, config, server_tls) => r?,
                    _ = stop_rx => {},
                }
                anyhow::Ok(())
            })
        });
        match bound_rx.recv() {
            Ok(addr) => Ok(Self {
                address: TsmAddress::pinned(&format!("https://{addr}"), vec![pair.pin]),
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Err(_) => match thread.join() {
                Ok(Err(e)) => Err(e),
                _ => anyhow::bail!("the TSM thread ended before it listened"),
            },
        }
    }

    /// `https://127.0.0.1:PORT` and the pin of its TLS key.
    pub fn address(&self) -> &TsmAddress {
        &self.address
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        self.address.url()
    }
}

impl Drop for RunningTsm {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
