//! `ykt tsm serve`: the TSM (SEI-TSM and SP-TSM in one process) over HTTP, on SQLite by default
//! or PostgreSQL (`--db`), and [`RunningTsm`], the same on a thread of its own (the demo).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::Context as _;
use ykt_crypto::Sm2PrivateKey;
use ykt_envelope::Sm2Signer;
use ykt_kms::{DiscardAudit, KdfParams, Kms, SecretBytes, SoftwareKms};
use ykt_store::Store;
use ykt_tsm::Role;
use ykt_tsm_kms::KmsVault;
use ykt_tsm_service::engine::{CardStock, Engine, EngineConfig, Keys};
use ykt_tsm_service::http::{AdminToken, ServerConfig};
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
    /// Serve the business API (wallets), the admin API, /openapi.json, /health and /metrics
    /// until SIGINT or SIGTERM.
    Serve(ServeArgs),
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
    /// and key files (`sei.kms`, `sp.kms`, sealed under `kms.pass`), all mode 0600 and made at
    /// first start.
    #[arg(long, value_name = "DIR", default_value = "ykt-tsm")]
    dir: PathBuf,
    /// The TSM's id (the `receiver_id` wallets address).
    #[arg(long, default_value = "SPTSM-YKT-TEST")]
    tsm_id: String,
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
        TsmCommand::Serve(a) => serve(a),
    }
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
    let parties = phone::test_parties();
    let pass = secret_file(&dir.join("kms.pass"), || random_hex(32))?;
    let pass = SecretBytes::from_slice(pass.as_bytes());
    let vault = |role, file: &str| -> anyhow::Result<KmsVault> {
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
    };
    Ok(Keys {
        sei: Box::new(vault(Role::Sei, "sei.kms")?),
        sp: Box::new(vault(Role::Sp, "sp.kms")?),
    })
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

/// The TSM's envelope signing key and admin token from `dir` (made at first start).
fn server_config(dir: &Path, tsm_id: &str) -> anyhow::Result<ServerConfig> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_hex = secret_file(&dir.join("tsm.key"), || {
        loop {
            let hex = random_hex(32)?;
            if sm2_key(&hex).is_ok() {
                return Ok(hex);
            }
        }
    })?;
    let key = sm2_key(&key_hex).with_context(|| format!("{}", dir.join("tsm.key").display()))?;
    let token = secret_file(&dir.join("admin.token"), || random_hex(24))?;
    let token = AdminToken::new(&token).context("the admin token")?;
    Ok(ServerConfig::new(tsm_id, Sm2Signer::new(key), token))
}

fn sm2_key(hex_text: &str) -> anyhow::Result<Sm2PrivateKey> {
    let bytes = Zeroizing::new(hex::decode(hex_text.trim()).context("not hex")?);
    let d: &[u8; 32] = bytes.as_slice().try_into().context("not 32 bytes")?;
    Sm2PrivateKey::from_bytes(d).context("not an SM2 private key")
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = server_config(&args.dir, &args.tsm_id)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let engine = test_engine(
            &args.db,
            &args.tsm_id,
            args.test_payments,
            KeyHome::Files(&args.dir),
        )
        .await?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        println!("TSM {} listening on http://{}", args.tsm_id, listener.local_addr()?);
        eprintln!(
            "database {}; admin token in {}; test keys (PUBLIC: a test deployment){}",
            redact_url(&args.db),
            args.dir.join("admin.token").display(),
            if args.test_payments { "; test payments on" } else { "" }
        );
        tokio::select! {
            r = ykt_tsm_service::http::serve(listener, engine, config) => r.context("the TSM server")?,
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
