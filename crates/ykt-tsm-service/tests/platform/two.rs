//! Two platforms: a SEI server (its own store, its vault, its runtime on a thread) and the SP's
//! engine whose SEI vault is a `RemoteSeiVault` over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use ykt_crypto::{Sm2PrivateKey, Sm2PublicKey};
use ykt_envelope::Sm2Signer;
use ykt_tsm_service::engine::{Engine, Keys};
use ykt_tsm_service::http::{AdminToken, ServerConfig, router};
use ykt_tsm_service::platform::{HttpSeiLink, RemoteSeiVault, SeiConfig, SeiLink, SeiPlatform};

use crate::support::*;

/// The SP platform's id (the engine's `tsm_id`).
pub const SP_ID: &str = "SPTSM-TEST";
/// The SEI platform's id.
pub const SEI_ID: &str = "SEITSM-TEST";

fn scalar(fill: u8, last: u8) -> Sm2PrivateKey {
    let mut d = [fill; 32];
    d[31] = last;
    Sm2PrivateKey::from_bytes(&d).unwrap()
}

/// The SP platform's envelope signing key.
pub fn sp_key() -> Sm2PrivateKey {
    scalar(0x31, 0x05)
}

/// The SEI platform's envelope signing key.
pub fn sei_key() -> Sm2PrivateKey {
    scalar(0x32, 0x03)
}

/// The SP's transport public key (SEC1).
pub fn transport_pub() -> Vec<u8> {
    Sm2PrivateKey::from_bytes(&transport_bytes())
        .unwrap()
        .public_key()
        .to_bytes()
        .to_vec()
}

/// The SEI's configuration for the test SP.
pub fn sei_config() -> SeiConfig {
    SeiConfig::new(
        SP_ID,
        sp_key().public_key().clone(),
        transport_pub(),
        parties(),
    )
}

pub fn admin_token() -> AdminToken {
    AdminToken::new("platform-test-admin-token").unwrap()
}

/// A SEI server on a runtime of its own (as another process would be), restartable on the same
/// address.
pub struct SeiServer {
    pub addr: SocketAddr,
    db_url: String,
    vault: SharedVault,
    config: SeiConfig,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SeiServer {
    pub fn start(db_url: &str, vault: SharedVault, config: SeiConfig) -> Self {
        let mut s = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            db_url: db_url.to_string(),
            vault,
            config,
            stop: None,
            thread: None,
        };
        s.run();
        s
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn run(&mut self) {
        let (db_url, vault, config, addr) = (
            self.db_url.clone(),
            self.vault.clone(),
            self.config.clone(),
            self.addr,
        );
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let store = ykt_store::Store::connect(&db_url).await.unwrap();
                let platform = SeiPlatform::new(store, Box::new(vault), config);
                let server = ServerConfig::new(SEI_ID, Sm2Signer::new(sei_key()), admin_token());
                let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                bound_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = router(platform, server);
                tokio::select! {
                    r = axum::serve(listener, app) => r.unwrap(),
                    _ = stop_rx => {},
                }
            });
        });
        self.addr = bound_rx.recv().unwrap();
        self.stop = Some(stop_tx);
        self.thread = Some(thread);
    }

    /// Stops the server (the port is closed when this returns).
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    /// Starts it again on the same address.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for SeiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The SP's link to `url`.
pub fn http_link(url: &str) -> HttpSeiLink {
    HttpSeiLink::new(
        url,
        SEI_ID,
        sei_key().public_key().clone(),
        SP_ID,
        Arc::new(Sm2Signer::new(sp_key())),
    )
    .unwrap()
}

/// The SP's keys: its own vault, and the SEI's behind `link`.
pub fn remote_keys(link: impl SeiLink + 'static, vaults: &Vaults) -> Keys {
    Keys {
        sei: Box::new(RemoteSeiVault::new(link, &parties()).unwrap()),
        sp: Box::new(vaults.sp.clone()),
    }
}

/// Both platforms on fresh databases; the SEI's public key as the SP pins it.
pub struct Two {
    pub vaults: Vaults,
    pub sp_db: Db,
    pub sei_db: Db,
    pub sei: SeiServer,
    pub engine: Engine,
}

impl Two {
    pub async fn start() -> Self {
        Self::with(sei_config(), |url| Box::new(http_link(url))).await
    }

    pub async fn with(config: SeiConfig, link: impl FnOnce(&str) -> Box<dyn SeiLink>) -> Self {
        let vaults = Vaults::new();
        let (sp_db, sei_db) = (Db::sqlite(), Db::sqlite());
        let sei = SeiServer::start(&sei_db.url, vaults.sei.clone(), config);
        let keys = remote_keys(BoxedLink(link(&sei.url())), &vaults);
        let engine = Engine::new(sp_db.store().await, keys, config_for_sp())
            .await
            .unwrap();
        Self {
            vaults,
            sp_db,
            sei_db,
            sei,
            engine,
        }
    }

    pub async fn finish(mut self) {
        self.sei.stop();
        drop(self.engine);
        self.sp_db.finish().await;
        self.sei_db.finish().await;
    }
}

fn config_for_sp() -> ykt_tsm_service::engine::EngineConfig {
    let c = config(true);
    assert_eq!(c.tsm_id, SP_ID);
    c
}

struct BoxedLink(Box<dyn SeiLink>);

impl SeiLink for BoxedLink {
    fn call(
        &self,
        def: ykt_tsm::api::MessageDef,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ykt_tsm_service::platform::LinkError> {
        self.0.call(def, body)
    }
}

/// The public key the SEI's envelopes verify under.
#[allow(dead_code)]
pub fn sei_pub() -> Sm2PublicKey {
    sei_key().public_key().clone()
}
