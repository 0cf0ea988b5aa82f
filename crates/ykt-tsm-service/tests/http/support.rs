//! A server on 127.0.0.1:0 with the fake backend, a store on a temporary SQLite file, a shared
//! clock, and devices that seal requests.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use serde::Serialize;
use ykt_crypto::{Sm2PrivateKey, Sm2PublicKey};
use ykt_envelope::{Code, Envelope, Header, PeerKey, Sm2Signer};
use ykt_store::Store;
use ykt_tsm::api::{self, MessageDef};
use ykt_tsm::hex::Hex;
use ykt_tsm_service::http::tls::ServerTls;
use ykt_tsm_service::http::{AdminToken, Backend, ServerConfig, TsmClient, serve_tls};

use crate::fake::FakeBackend;

/// 2026-12-02T00:00:00Z.
pub const T0: i64 = 1_796_169_600_000;
pub const TSM_ID: &str = "SPTSM-TEST";
pub const ADMIN_TOKEN: &str = "admin-token-0123456789";

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct TestServer<B = FakeBackend> {
    pub rt: tokio::runtime::Runtime,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Its URL (`https://…` when it serves TLS).
    pub url: String,
    pub client: TsmClient,
    pub fake: B,
    pub store: Store,
    pub clock: Arc<AtomicI64>,
    pub tsm_key: Sm2PublicKey,
    files: Vec<PathBuf>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(|c| c)
    }

    pub fn start_with(configure: impl FnOnce(ServerConfig) -> ServerConfig) -> Self {
        Self::start_backend(
            |store| std::future::ready(FakeBackend::new(store)),
            configure,
        )
    }

    /// The same over TLS (`serve_tls`) on `bind`; `client` is pinned to `tls`'s key.
    pub fn start_tls(
        bind: &str,
        tls: ServerTls,
        configure: impl FnOnce(ServerConfig) -> ServerConfig,
    ) -> Self {
        Self::serve_backend(
            bind,
            Some(tls),
            |store| std::future::ready(FakeBackend::new(store)),
            configure,
        )
    }
}

impl<B: Backend> TestServer<B> {
    /// A server on the backend `make` builds on the store.
    pub fn start_backend<F: Future<Output = B>>(
        make: impl FnOnce(Store) -> F,
        configure: impl FnOnce(ServerConfig) -> ServerConfig,
    ) -> Self {
        Self::serve_backend("127.0.0.1:0", None, make, configure)
    }

    /// A server on `bind`, plain HTTP or TLS, on the backend `make` builds on the store.
    fn serve_backend<F: Future<Output = B>>(
        bind: &str,
        tls: Option<ServerTls>,
        make: impl FnOnce(Store) -> F,
        configure: impl FnOnce(ServerConfig) -> ServerConfig,
    ) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let path = std::env::temp_dir().join(format!(
            "ykt-tsm-http_{}_{}.db",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let files = ["", "-wal", "-shm", "-journal"]
            .iter()
            .map(|s| PathBuf::from(format!("{}{s}", path.display())))
            .collect();
        let clock = Arc::new(AtomicI64::new(T0));
        let tsm = Sm2PrivateKey::from_bytes(&[0x42; 32]).unwrap();
        let tsm_key = tsm.public_key().clone();
        let c = Arc::clone(&clock);
        let config = ServerConfig::new(
            TSM_ID,
            Sm2Signer::new(tsm),
            AdminToken::new(ADMIN_TOKEN).unwrap(),
        )
        .with_clock(move || c.load(Ordering::SeqCst));
        let config = configure(config);
        let c = Arc::clone(&clock);
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let (store, addr) = rt.block_on(async {
            let store = Store::connect(&url)
                .await
                .unwrap()
                .with_clock(move || c.load(Ordering::SeqCst));
            let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
            let addr = listener.local_addr().unwrap();
            (store, (listener, addr))
        });
        let (listener, addr) = addr;
        let fake = rt.block_on(make(store.clone()));
        let (url, client) = match tls {
            Some(tls) => {
                let pin = tls.pin();
                let server = serve_tls(listener, fake.clone(), config, tls);
                rt.spawn(async move { server.await.unwrap() });
                let url = format!("https://{addr}");
                let client = TsmClient::with_tls(&url, &[pin]).unwrap();
                (url, client)
            }
            None => {
                let server = ykt_tsm_service::http::serve(listener, fake.clone(), config);
                rt.spawn(async move { server.await.unwrap() });
                let url = format!("http://{addr}");
                let client = TsmClient::new(&url).unwrap();
                (url, client)
            }
        };
        Self {
            rt,
            addr,
            url,
            client,
            fake,
            store,
            clock,
            tsm_key,
            files,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    pub fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sends bytes; checks that the answer is an envelope the TSM signed, from the TSM, and
    /// that its HTTP status is its code's (or `expect_status`).
    pub fn send_raw(&self, msg_type: &str, bytes: &[u8]) -> (u16, Envelope) {
        let (status, env) = self.client.send_bytes_with_status(msg_type, bytes).unwrap();
        env.verify(&PeerKey::Sm2(self.tsm_key.clone()))
            .expect("every response verifies under the TSM's key");
        assert_eq!(env.sender_id, TSM_ID);
        let code = env.code().expect("a response carries a result");
        if status != 413 {
            assert_eq!(status, code.http_status(), "{code}");
        }
        (status, env)
    }

    pub fn send(&self, request: &Envelope) -> Envelope {
        let (_, env) = self.send_raw(&request.msg_type, &request.to_vec());
        assert_eq!(env.request_id, request.request_id);
        assert_eq!(env.txn_id, request.txn_id);
        assert_eq!(env.receiver_id, request.sender_id);
        env
    }

    /// A device enrolled with the server.
    pub fn enrolled(&self, seed: u8) -> Device {
        let mut device = Device::new(seed);
        let req = api::EnrolReq {
            device_pub: Hex(device.public_key().to_bytes().to_vec()),
            device_model: "test phone".into(),
        };
        let env = device.seal(self, api::ENROL, "enrol", &req);
        let answer = self.send(&env);
        assert_eq!(answer.code(), Some(Code::Ok), "{:?}", answer.result);
        let resp: api::EnrolResp = answer.body().unwrap();
        device.id = resp.device_id;
        device
    }
}

impl<B> Drop for TestServer<B> {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

pub struct Device {
    signer: Sm2Signer,
    pub id: String,
    nonces: AtomicU64,
    requests: AtomicU64,
}

impl Device {
    pub fn new(seed: u8) -> Self {
        let signer = Sm2Signer::new(Sm2PrivateKey::from_bytes(&[seed; 32]).unwrap());
        let id = format!("enrol-{}", ykt_envelope::key_id_sm2(signer.public_key()));
        Self {
            signer,
            id,
            nonces: AtomicU64::new(1),
            requests: AtomicU64::new(1),
        }
    }

    pub fn public_key(&self) -> &Sm2PublicKey {
        self.signer.public_key()
    }

    pub fn nonce(&self) -> [u8; 16] {
        let n = self.nonces.fetch_add(1, Ordering::Relaxed);
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&[0x5A; 8]);
        out[8..].copy_from_slice(&n.to_be_bytes());
        out
    }

    pub fn header(&self, def: MessageDef, txn_id: &str, request_id: &str) -> Header {
        Header {
            msg_type: def.request.into(),
            msg_no: def.msg_no.into(),
            sender_id: self.id.clone(),
            receiver_id: TSM_ID.into(),
            txn_id: txn_id.into(),
            request_id: request_id.into(),
        }
    }

    /// A request with a fresh request id, sealed now.
    pub fn seal<B: Backend>(
        &self,
        server: &TestServer<B>,
        def: MessageDef,
        txn_id: &str,
        body: &impl Serialize,
    ) -> Envelope {
        let request_id = format!("req-{}", self.requests.fetch_add(1, Ordering::Relaxed));
        self.seal_as(server.now(), &self.header(def, txn_id, &request_id), body)
    }

    /// A request under `header`, sealed at `now` with a fresh nonce.
    pub fn seal_as(&self, now: i64, header: &Header, body: &impl Serialize) -> Envelope {
        Envelope::seal(header, body, None, &self.nonce(), now, &self.signer).unwrap()
    }
}

pub fn open_card() -> api::OpenCardReq {
    api::OpenCardReq {
        management: ykt_tsm::Management::Authorized,
        city_code: "3304".into(),
    }
}

/// The response's result code.
pub fn code(env: &Envelope) -> Code {
    env.code().unwrap()
}
