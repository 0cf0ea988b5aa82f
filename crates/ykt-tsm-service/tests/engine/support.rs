//! Simulated SEs (`ykt_tsm::testing`), both TSMs' vaults shared across engine restarts, a
//! fresh database per test on each backend, and the wallet's relay loop against the engine.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use api::{FlowResp, FlowStatus};
use ykt_card::{Card, SeededRandom};
use ykt_crypto::Sm2PrivateKey;
use ykt_crypto::purse::PurseAlgorithm;
use ykt_gp::dm::TokenSigner;
use ykt_purse::testing::test_master_keys;
use ykt_scp::{KeySet, StaticKeyKind, StaticKeyOperation};
use ykt_store::Store;
use ykt_tsm::relay::relay_on_card;
use ykt_tsm::testing::{self, SeOptions, test_keys};
use ykt_tsm::vault::{KeyEncryption, ReceiptContext, TokenKind, derive_isd_keys};
use ykt_tsm::*;
use ykt_tsm_service::engine::{CardStock, Engine, EngineConfig, EngineError, Keys};
use zeroize::Zeroizing;

pub const RECEIPT_KEY: [u8; 16] = test_keys::RECEIPT_KEY;
pub const NOW_MS: i64 = 1_796_142_600_000;

pub fn isd_master() -> KeySet {
    testing::isd_master().unwrap()
}

pub fn token_signer_bytes() -> [u8; 32] {
    test_keys::TOKEN_SIGNER
}

/// The SEI-TSM's token signer (kept for tests that check tokens themselves).
#[allow(dead_code)]
pub fn token_signer() -> TokenSigner {
    testing::token_signer().unwrap()
}

pub fn transport_bytes() -> [u8; 32] {
    test_keys::SP_TRANSPORT
}

pub fn parties() -> Parties {
    testing::test_parties()
}

pub fn config(test_payments: bool) -> EngineConfig {
    EngineConfig {
        tsm_id: "SPTSM-TEST".into(),
        parties: parties(),
        card_stock: CardStock {
            issuer_id: [0x01, 0x01, 0x10, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
            start_date: [0x20, 0x24, 0x01, 0x01],
            expiry_date: [0x20, 0x34, 0x12, 0x31],
            number_prefix: [0x31, 0x04, 0x10, 0x00],
        },
        test_payments,
    }
}

/// A vault shared by the engines of one test, so that the keys the flows generate survive a
/// restart (as a KMS would keep them).
#[derive(Clone)]
pub struct SharedVault(pub Arc<Mutex<MemoryVault>>);

impl KeyVault for SharedVault {
    fn contains(&self, name: &KeyName) -> bool {
        self.0.lock().unwrap().contains(name)
    }
    fn channel_key_info(&self, keys: &KeyRef) -> Result<(u8, StaticKeyKind), VaultError> {
        self.0.lock().unwrap().channel_key_info(keys)
    }
    fn channel_operation(
        &self,
        keys: &KeyRef,
        operation: &StaticKeyOperation<'_>,
    ) -> Result<Zeroizing<[u8; 16]>, VaultError> {
        self.0.lock().unwrap().channel_operation(keys, operation)
    }
    fn generate_key_set(
        &mut self,
        name: &KeyName,
        version: u8,
        rng: &mut dyn Entropy,
    ) -> Result<(), VaultError> {
        self.0.lock().unwrap().generate_key_set(name, version, rng)
    }
    fn wrap_key_set(
        &self,
        new: &KeyName,
        under: &KeyRef,
        encryption: KeyEncryption,
    ) -> Result<WrappedKeySet, VaultError> {
        self.0.lock().unwrap().wrap_key_set(new, under, encryption)
    }
    fn export_key_set(
        &self,
        name: &KeyName,
        recipient: &[u8],
        rng: &mut dyn Entropy,
    ) -> Result<Vec<u8>, VaultError> {
        self.0.lock().unwrap().export_key_set(name, recipient, rng)
    }
    fn import_key_set(
        &mut self,
        name: &KeyName,
        transport: &KeyName,
        wrapped: &[u8],
    ) -> Result<(), VaultError> {
        self.0
            .lock()
            .unwrap()
            .import_key_set(name, transport, wrapped)
    }
    fn transport_public_key(&self, transport: &KeyName) -> Result<Vec<u8>, VaultError> {
        self.0.lock().unwrap().transport_public_key(transport)
    }
    fn delete_key(&mut self, name: &KeyName) {
        self.0.lock().unwrap().delete_key(name)
    }
    fn purse_perso_blocks(
        &self,
        issuer: &KeyName,
        card: &PurseCardSpec,
        under: &KeyRef,
    ) -> Result<Vec<PersoBlock>, VaultError> {
        self.0
            .lock()
            .unwrap()
            .purse_perso_blocks(issuer, card, under)
    }
    fn verify_mac1(&self, issuer: &KeyName, proof: &LoadProof) -> Result<(), VaultError> {
        self.0.lock().unwrap().verify_mac1(issuer, proof)
    }
    fn load_mac2(
        &self,
        issuer: &KeyName,
        proof: &LoadProof,
        datetime: &[u8; 7],
    ) -> Result<[u8; 4], VaultError> {
        self.0.lock().unwrap().load_mac2(issuer, proof, datetime)
    }
    fn verify_load_tac(
        &self,
        issuer: &KeyName,
        proof: &LoadProof,
        datetime: &[u8; 7],
        tac: &[u8; 4],
    ) -> Result<(), VaultError> {
        self.0
            .lock()
            .unwrap()
            .verify_load_tac(issuer, proof, datetime, tac)
    }
    fn sign_token(
        &self,
        signer: &KeyName,
        kind: TokenKind,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        self.0
            .lock()
            .unwrap()
            .sign_token(signer, kind, p1, p2, data)
    }
    fn verify_receipt(
        &self,
        key: &KeyName,
        response: &[u8],
        context: &ReceiptContext<'_>,
    ) -> Result<(), VaultError> {
        self.0
            .lock()
            .unwrap()
            .verify_receipt(key, response, context)
    }
}

/// Both TSMs' vaults.
#[derive(Clone)]
pub struct Vaults {
    pub sei: SharedVault,
    pub sp: SharedVault,
}

impl Vaults {
    pub fn new() -> Self {
        let sei = testing::sei_vault().unwrap();
        let sp = testing::sp_vault().unwrap();
        Self {
            sei: SharedVault(Arc::new(Mutex::new(sei))),
            sp: SharedVault(Arc::new(Mutex::new(sp))),
        }
    }

    pub fn keys(&self) -> Keys {
        Keys {
            sei: Box::new(self.sei.clone()),
            sp: Box::new(self.sp.clone()),
        }
    }
}

/// A blank SE from card production: CPLC from `serial`, ISD keys derived for its SEID.
pub fn new_se(serial: u8) -> Card {
    let entropy = Box::new(SeededRandom::new(u64::from(serial)));
    testing::blank_se(&SeOptions::serial(serial), entropy).unwrap()
}

/// The SEID of an SE with `cplc` (kept for tests that build other CPLCs).
#[allow(dead_code)]
pub fn seid_of(cplc: &[u8; 42]) -> SeId {
    testing::seid_of(cplc).unwrap()
}

/// The SEID of `new_se(serial)`.
pub fn seid_of_serial(serial: u8) -> SeId {
    testing::seid_of_serial(&[serial]).unwrap()
}

/// Every relay message the wallet relayed, and what came back.
#[derive(Default)]
pub struct Log {
    pub requests: Vec<RelayRequest>,
    pub responses: Vec<RelayResponse>,
}

impl Log {
    /// How many STORE DATA commands with P1 `p1` the card accepted.
    pub fn accepted_store_data(&self, p1: u8) -> usize {
        self.requests
            .iter()
            .zip(&self.responses)
            .flat_map(|(q, r)| q.capdus.iter().zip(&r.rapdus))
            .filter(|(c, r)| {
                let c = c.as_bytes();
                let r = r.as_bytes();
                c[1] == 0xE2 && c[2] == p1 && r[r.len() - 2..] == [0x90, 0x00]
            })
            .count()
    }

    /// How many CREDIT FOR LOAD commands the card accepted.
    pub fn accepted_credits(&self) -> usize {
        self.requests
            .iter()
            .zip(&self.responses)
            .flat_map(|(q, r)| q.capdus.iter().zip(&r.rapdus))
            .filter(|(c, r)| {
                let c = c.as_bytes();
                let r = r.as_bytes();
                c[0] == 0x80 && c[1] == 0x52 && r[r.len() - 2..] == [0x90, 0x00]
            })
            .count()
    }
}

/// The wallet relays one message to the card (through JSON, as the wire carries it).
pub fn relay(card: &mut Card, req: &RelayRequest, log: &mut Log) -> RelayResponse {
    let req: RelayRequest = serde_json::from_str(&serde_json::to_string(req).unwrap()).unwrap();
    let resp = relay_on_card(&req, |c| card.transmit(c).unwrap());
    log.requests.push(req);
    log.responses.push(resp.clone());
    resp
}

/// Drives a flow from `resp` to the end: every relay to the card, every answer to the engine.
pub async fn drive(
    engine: &Engine,
    device: &str,
    mut resp: FlowResp,
    card: &mut Card,
    log: &mut Log,
) -> Result<FlowResp, EngineError> {
    let txn = resp.txn_id.clone();
    loop {
        if resp.status != FlowStatus::Running {
            return Ok(resp);
        }
        let req = resp
            .relay
            .clone()
            .expect("a running flow has a relay message");
        let answer = relay(card, &req, log);
        resp = engine.apdu_result(device, &txn, &answer, NOW_MS).await?;
    }
}

/// A device enrolled with a key from `seed`.
pub async fn device(engine: &Engine, seed: u8) -> String {
    let mut d = [seed; 32];
    d[0] = 0x01;
    let key = Sm2PrivateKey::from_bytes(&d).unwrap();
    engine.enrol(key.public_key(), "test-phone").await.unwrap()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh database: an SQLite file, or a PostgreSQL schema.
pub struct Db {
    pub backend: &'static str,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Files(Vec<PathBuf>),
    Schema { admin_url: String, name: String },
}

impl Db {
    pub fn sqlite() -> Db {
        let path = std::env::temp_dir().join(format!("{}.db", unique("ykt-engine")));
        let files = ["", "-wal", "-shm", "-journal"]
            .iter()
            .map(|s| PathBuf::from(format!("{}{s}", path.display())))
            .collect();
        Db {
            backend: "sqlite",
            url: format!("sqlite://{}?mode=rwc", path.display()),
            cleanup: Cleanup::Files(files),
        }
    }

    pub async fn postgres(admin_url: &str) -> Db {
        let name = unique("ykt_engine");
        let url = ykt_store::danger::create_postgres_schema(admin_url, &name)
            .await
            .expect("YKT_TEST_POSTGRES_URL is set but the server cannot be reached");
        Db {
            backend: "postgres",
            url,
            cleanup: Cleanup::Schema {
                admin_url: admin_url.to_string(),
                name,
            },
        }
    }

    /// A store on this database (a new pool each time: a restarted process).
    pub async fn store(&self) -> Store {
        Store::connect(&self.url).await.unwrap()
    }

    /// A new engine on this database with `vaults`.
    pub async fn engine(&self, vaults: &Vaults) -> Engine {
        Engine::new(self.store().await, vaults.keys(), config(true))
            .await
            .unwrap()
    }

    pub async fn finish(self) {
        match self.cleanup {
            Cleanup::Files(files) => {
                for f in files {
                    let _ = std::fs::remove_file(f);
                }
            }
            Cleanup::Schema { admin_url, name } => {
                ykt_store::danger::drop_postgres_schema(&admin_url, &name)
                    .await
                    .unwrap();
            }
        }
    }
}

/// Runs `test` on a fresh database of every backend available (PostgreSQL when
/// `YKT_TEST_POSTGRES_URL` is set).
pub async fn each(test: impl AsyncFn(&Db)) {
    let mut dbs = vec![Db::sqlite()];
    if let Some(url) = std::env::var("YKT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        dbs.push(Db::postgres(&url).await);
    }
    for db in dbs {
        eprintln!("-- backend {}", db.backend);
        test(&db).await;
        db.finish().await;
    }
}

/// Opens a card on `card` for `device` and gives its card number and SEID (hex).
pub async fn open(
    engine: &Engine,
    device: &str,
    txn: &str,
    card: &mut Card,
    log: &mut Log,
) -> (String, String) {
    let first = engine
        .start(
            device,
            txn,
            ykt_tsm_service::engine::Start::OpenCard(api::OpenCardReq {
                management: Management::Authorized,
                city_code: "1000".into(),
            }),
            NOW_MS,
        )
        .await
        .unwrap();
    let done = drive(engine, device, first, card, log).await.unwrap();
    assert_eq!(done.status, FlowStatus::Completed);
    assert_eq!(done.instance_state, "ACTIVE");
    let outcome = done.outcome.unwrap();
    assert_eq!(outcome.balance, Some(0));
    (outcome.card_no.unwrap(), outcome.seid.unwrap())
}

/// A top-up order of `amount` for the card, paid through the test provider (CREATED, then
/// PAID), and its top-up flow started (`topup-<order id>`): the order id and the first answer.
pub async fn start_paid_top_up(
    engine: &Engine,
    device: &str,
    (card_no, seid): (&str, &str),
    amount: u32,
) -> (String, FlowResp) {
    let order = engine
        .create_order(
            device,
            &api::TopupOrderReq {
                card_no: card_no.into(),
                seid: seid.into(),
                amount,
                pay_channel: "99".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(order.state, "CREATED");
    assert_eq!(
        engine
            .test_pay(device, &order.order_id)
            .await
            .unwrap()
            .state,
        "PAID"
    );
    let txn = format!("topup-{}", order.order_id);
    let first = engine
        .start(
            device,
            &txn,
            ykt_tsm_service::engine::Start::TopUp(api::OrderReq {
                order_id: order.order_id.clone(),
            }),
            NOW_MS,
        )
        .await
        .unwrap();
    (order.order_id, first)
}

/// Orders, pays and loads `amount` onto the card; gives the final FlowResp.
pub async fn top_up(
    engine: &Engine,
    device: &str,
    card: &mut Card,
    card_no: &str,
    seid: &str,
    amount: u32,
    log: &mut Log,
) -> FlowResp {
    let (order_id, first) = start_paid_top_up(engine, device, (card_no, seid), amount).await;
    let txn = format!("topup-{order_id}");
    // client.md §4.2: PAID until the MAC2 is out, LOAD_REQUESTED while CREDIT FOR LOAD is.
    let mut resp = first;
    let mut credit_seen = false;
    while resp.status == FlowStatus::Running {
        let req = resp.relay.clone().unwrap();
        let credit = req
            .capdus
            .iter()
            .any(|c| c.as_bytes().starts_with(&[0x80, 0x52]));
        credit_seen |= credit;
        let state = engine.order(device, &order_id).await.unwrap().state;
        assert_eq!(state, if credit { "LOAD_REQUESTED" } else { "PAID" });
        let answer = relay(card, &req, log);
        resp = engine
            .apdu_result(device, &txn, &answer, NOW_MS)
            .await
            .unwrap();
    }
    assert!(credit_seen);
    assert_eq!(resp.status, FlowStatus::Completed);
    assert_eq!(
        engine.order(device, &order_id).await.unwrap().state,
        "LOADED"
    );
    resp
}

/// Answers every message of flow `txn` from the card until the first command starting with
/// `refuse` (CLA INS), which the card refuses: the step fails and the flow waits.
pub async fn drive_refusing(
    engine: &Engine,
    device: &str,
    mut resp: FlowResp,
    card: &mut Card,
    refuse: [u8; 2],
) {
    let txn = resp.txn_id.clone();
    let mut log = Log::default();
    loop {
        assert_eq!(resp.status, FlowStatus::Running, "{txn} ended");
        let req = resp.relay.clone().unwrap();
        let answer = if req.capdus.iter().any(|c| c.as_bytes().starts_with(&refuse)) {
            RelayResponse {
                session_id: req.session_id.clone(),
                seq: req.seq,
                rapdus: vec![hex::Hex(vec![0x6A, 0x80])],
            }
        } else {
            relay(card, &req, &mut log)
        };
        match engine.apdu_result(device, &txn, &answer, NOW_MS).await {
            Ok(next) => resp = next,
            Err(_) => return,
        }
    }
}

/// Orders and pays `amount` for the card and starts its load; answers every message from the
/// card until the first command starting with `refuse` (CLA INS), which the card refuses (see
/// [`drive_refusing`]). Gives the flow's transaction id and the order id.
pub async fn failing_top_up(
    engine: &Engine,
    device: &str,
    card: &mut Card,
    (card_no, seid): (&str, &str),
    amount: u32,
    refuse: [u8; 2],
) -> (String, String) {
    let (order_id, resp) = start_paid_top_up(engine, device, (card_no, seid), amount).await;
    let txn = format!("topup-{order_id}");
    drive_refusing(engine, device, resp, card, refuse).await;
    (txn, order_id)
}

/// The card request for `card_no` on `seid`.
pub fn card_req(card_no: &str, seid: &str) -> api::CardReq {
    api::CardReq {
        card_no: card_no.into(),
        seid: seid.into(),
    }
}

/// The card's balance through a card query flow.
pub async fn balance(
    engine: &Engine,
    device: &str,
    txn: &str,
    card: &mut Card,
    card_no: &str,
    seid: &str,
) -> u32 {
    let first = engine
        .start(
            device,
            txn,
            ykt_tsm_service::engine::Start::CardQuery(card_req(card_no, seid)),
            NOW_MS,
        )
        .await
        .unwrap();
    let done = drive(engine, device, first, card, &mut Log::default())
        .await
        .unwrap();
    let view = done.outcome.unwrap().card.unwrap();
    assert_eq!(view.card_number.danger_full(), card_no);
    view.balance
}

/// Every key value the tests' vaults hold or derived, in hex (both cases): none may appear in
/// any stored text.
pub fn key_hexes(vaults: &Vaults, seids: &[SeId]) -> Vec<String> {
    let mut keys: Vec<Vec<u8>> = vec![
        RECEIPT_KEY.to_vec(),
        token_signer_bytes().to_vec(),
        transport_bytes().to_vec(),
    ];
    let mut set_bytes = |set: &KeySet| {
        if let ykt_scp::StaticKeys::Aes { enc, mac, dek } = &set.keys {
            keys.extend([
                enc.expose().to_vec(),
                mac.expose().to_vec(),
                dek.expose().to_vec(),
            ]);
        }
    };
    set_bytes(&isd_master());
    for seid in seids {
        set_bytes(&derive_isd_keys(&isd_master(), seid).unwrap());
        let ssd = hex::encode(&proposals::SSD_AID);
        for (vault, which) in [
            (&vaults.sei, "initial"),
            (&vaults.sp, "initial"),
            (&vaults.sp, "sp"),
        ] {
            let name = KeyName(format!("ssd/{seid}/{ssd}/{which}"));
            if let Ok(set) = vault.0.lock().unwrap().key_set(&KeyRef::Named(name)) {
                set_bytes(&set);
            }
        }
    }
    for m in test_master_keys(PurseAlgorithm::Tdes) {
        keys.push(m.key.expose().to_vec());
    }
    keys.iter()
        .flat_map(|k| [::hex::encode(k), ::hex::encode_upper(k)])
        .collect()
}

/// Asserts that no stored text holds a key value.
pub async fn assert_no_key_stored(store: &Store, vaults: &Vaults, seids: &[SeId]) {
    let hexes = key_hexes(vaults, seids);
    assert!(hexes.len() >= 20, "{}", hexes.len());
    let dump = store.danger_dump_text().await.unwrap();
    assert!(dump.len() > 50, "{}", dump.len());
    for (column, text) in &dump {
        for k in &hexes {
            assert!(!text.contains(k.as_str()), "a key value in {column}");
        }
    }
}
