//! `ykt tsm serve`: the TSM over HTTP, on SQLite by default or PostgreSQL (`--db`): the SEI-TSM
//! and the SP-TSM in one process (`--role both`), or each as a server of its own joined by the
//! inter-platform API (`--role sei`, `--role sp`); `ykt tsm key`, the platform key the other side
//! pins; and [`RunningTsm`], both roles on a thread of their own (the demo).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::Context as _;
use ykt_crypto::Sm2PrivateKey;
use ykt_crypto::Sm2PublicKey;
use ykt_envelope::Sm2Signer;
use ykt_kms::{DiscardAudit, KdfParams, Kms, SecretBytes, SoftwareKms};
use ykt_store::Store;
use ykt_tsm::Role;
use ykt_tsm_kms::KmsVault;
use ykt_tsm_service::engine::{CardStock, Engine, EngineConfig, Keys};
use ykt_tsm_service::http::{AdminToken, ServerConfig};
use ykt_tsm_service::platform::{HttpSeiLink, RemoteSeiVault, SeiConfig, SeiPlatform};
use zeroize::Zeroizing;

use crate::phone;

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
    /// Two servers: `ykt tsm key --dir SP_DIR` and `ykt tsm key --dir SEI_DIR` print each
    /// platform's public key; start `ykt tsm serve --role sei --dir SEI_DIR --peer-key <SP key>`
    /// and `ykt tsm serve --role sp --dir SP_DIR --sei-url http://SEI --sei-key <SEI key>`.
    /// The SP's directory then holds no SEI key file (`sei.kms`), the SEI's no `sp.kms`.
    Serve(Box<ServeArgs>),
    /// Print this platform's envelope signing public key (SEC1, hex): what the other platform
    /// pins with `--peer-key` or `--sei-key`. Makes the key in --dir if it is not there yet.
    Key(KeyArgs),
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
    /// and the key files of its roles (`sei.kms`, `sp.kms`, sealed under `kms.pass`), all mode
    /// 0600 and made at first start.
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
    /// `--role sei`: the SP's transport public key (hex, SEC1), the only key SSD keys are handed
    /// over under; default the test hierarchy's (`--test-keys`).
    #[arg(long, value_name = "HEX")]
    peer_transport_key: Option<String>,
    /// `--role sei`: the SP platform's id (its envelopes' `sender_id`).
    #[arg(long, value_name = "ID", default_value = "SPTSM-YKT-TEST")]
    peer_id: String,
    /// `--role sp`: the SEI-TSM, http://HOST:PORT.
    #[arg(long, value_name = "URL", required_if_eq("role", "sp"))]
    sei_url: Option<String>,
    /// `--role sp`: the SEI-TSM's public key (hex, from `ykt tsm key` in its directory).
    #[arg(long, value_name = "HEX", required_if_eq("role", "sp"))]
    sei_key: Option<String>,
    /// `--role sp`: the SEI-TSM's id (its `receiver_id`).
    #[arg(long, value_name = "ID", default_value = "SEITSM-YKT-TEST")]
    sei_id: String,
    /// Use the PUBLIC test key hierarchy (the ISD master of `ykt se serve --blank` cards, the
    /// e-purse brief's test master keys), imported into an in-memory software KMS: a test
    /// deployment. Required for now: a production hierarchy needs card production keyed from
    /// the KMS, which is not built yet.
    #[arg(long, required = true)]
    test_keys: bool,
    /// Let wallets pay orders through the built-in test payment provider (`TestPayReq`).
    #[arg(long)]
    test_payments: bool,
}

/// Runs `ykt tsm …`.
pub fn run(args: TsmArgs) -> anyhow::Result<()> {
    crate::harden::process()?; // client.md §6.11
    match args.command {
        TsmCommand::Serve(a) => serve(*a),
        TsmCommand::Key(a) => key(&a),
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
    Files(&'a Path),
}

async fn test_engine(
    db: &str,
    tsm_id: &str,
    test_payments: bool,
    home: KeyHome<'_>,
) -> anyhow::Result<Engine> {
    let store = Store::connect(db)
        .await
        .with_context(|| format!("opening the database {}", redact_url(db)))?;
    let keys = match home {
        KeyHome::Memory => test_keys()?,
        KeyHome::Files(dir) => test_keys_in(dir)?,
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

/// The test key hierarchy in one key file per TSM role in `dir` (`sei.kms`, `sp.kms`, sealed
/// under the random passphrase in `kms.pass`; all mode 0600, made at first start). The keys the
/// flows make there (each card's security domain key sets) outlive the process: a flow cut by
/// a crash resumes with them (tsm-gp.md §8). The PUBLIC test keys are imported afresh at every
/// start (replacing the stored copies), as [`test_keys`] imports them.
fn test_keys_in(dir: &Path) -> anyhow::Result<Keys> {
    Ok(Keys {
        sei: Box::new(file_vault(dir, Role::Sei)?),
        sp: Box::new(file_vault(dir, Role::Sp)?),
    })
}

/// One role's key file in `dir` (`sei.kms` or `sp.kms`), as [`test_keys_in`] describes; only
/// that file is made or opened.
fn file_vault(dir: &Path, role: Role) -> anyhow::Result<KmsVault> {
    let parties = phone::test_parties();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pass = secret_file(&dir.join("kms.pass"), || random_hex(32))?;
    let pass = SecretBytes::from_slice(pass.as_bytes());
    let file = match role {
        Role::Sei => "sei.kms",
        _ => "sp.kms",
    };
    let path = dir.join(file);
    let audit = Arc::new(DiscardAudit);
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
    tsm_id: &str,
    config: &ServerConfig,
) -> anyhow::Result<Engine> {
    let (Some(url), Some(sei_key)) = (&args.sei_url, &args.sei_key) else {
        anyhow::bail!("--role sp needs --sei-url and --sei-key");
    };
    let sei_key = peer_key(sei_key, "--sei-key")?;
    let link = HttpSeiLink::new(
        url,
        &args.sei_id,
        sei_key,
        tsm_id,
        Arc::clone(&config.signer),
    )
    .context("--sei-url")?;
    let parties = phone::test_parties();
    let keys = Keys {
        sei: Box::new(RemoteSeiVault::new(link, &parties).context("the SEI link")?),
        sp: Box::new(file_vault(&args.dir, Role::Sp)?),
    };
    let store = Store::connect(&args.db)
        .await
        .with_context(|| format!("opening the database {}", redact_url(&args.db)))?;
    Engine::new(store, keys, engine_config(tsm_id, args.test_payments))
        .await
        .context("starting the TSM engine (is the SEI-TSM at --sei-url up, with these keys?)")
}

/// `--role sei`: the inter-platform API with `sei.kms`, for the SP platform `--peer-id`.
async fn sei_platform(args: &ServeArgs) -> anyhow::Result<SeiPlatform> {
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
    let vault = file_vault(&args.dir, Role::Sei)?;
    let store = Store::connect(&args.db)
        .await
        .with_context(|| format!("opening the database {}", redact_url(&args.db)))?;
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
    let config = server_config(&args.dir, &tsm_id)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        type Server = std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;
        let bind = || async {
            tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("binding {}", args.listen))
        };
        let (listener, server): (_, Server) = match args.role {
            ServeRole::Both => {
                let engine = test_engine(
                    &args.db,
                    &tsm_id,
                    args.test_payments,
                    KeyHome::Files(&args.dir),
                )
                .await?;
                let listener = bind().await?;
                let addr = listener.local_addr()?;
                (
                    addr,
                    Box::pin(ykt_tsm_service::http::serve(listener, engine, config)),
                )
            }
            ServeRole::Sp => {
                let engine = sp_engine(&args, &tsm_id, &config).await?;
                let listener = bind().await?;
                let addr = listener.local_addr()?;
                (
                    addr,
                    Box::pin(ykt_tsm_service::http::serve(listener, engine, config)),
                )
            }
            ServeRole::Sei => {
                let platform = sei_platform(&args).await?;
                let listener = bind().await?;
                let addr = listener.local_addr()?;
                (
                    addr,
                    Box::pin(ykt_tsm_service::http::serve(listener, platform, config)),
                )
            }
        };
        println!("TSM {tsm_id} listening on http://{listener}");
        let role = match args.role {
            ServeRole::Both => "SEI-TSM and SP-TSM",
            ServeRole::Sei => "SEI-TSM (inter-platform API)",
            ServeRole::Sp => "SP-TSM (SEI-TSM at --sei-url)",
        };
        eprintln!(
            "{role}; database {}; admin token in {}; test keys (PUBLIC: a test deployment){}",
            redact_url(&args.db),
            args.dir.join("admin.token").display(),
            if args.test_payments {
                "; test payments on"
            } else {
                ""
            }
        );
        tokio::select! {
            r = server => r.context("the TSM server")?,
            () = shutdown() => eprintln!("TSM stopped"),
        }
        anyhow::Ok(())
    })
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
/// its signing key and admin token in `dir`. Stopped on drop.
pub struct RunningTsm {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl RunningTsm {
    /// Starts it on an ephemeral port of 127.0.0.1.
    pub fn start(db: &str, dir: &Path, tsm_id: &str) -> anyhow::Result<Self> {
        let config = server_config(dir, tsm_id)?;
        let (db, tsm_id) = (db.to_string(), tsm_id.to_string());
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let engine = test_engine(&db, &tsm_id, true, KeyHome::Memory).await?;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let _ = bound_tx.send(listener.local_addr()?);
                tokio::select! {
                    r = ykt_tsm_service::http::serve(listener, engine, config) => r?,
                    _ = stop_rx => {},
                }
                anyhow::Ok(())
            })
        });
        match bound_rx.recv() {
            Ok(addr) => Ok(Self {
                url: format!("http://{addr}"),
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Err(_) => match thread.join() {
                Ok(Err(e)) => Err(e),
                _ => anyhow::bail!("the TSM thread ended before it listened"),
            },
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
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
