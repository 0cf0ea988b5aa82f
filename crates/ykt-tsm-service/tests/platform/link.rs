//! The link between the platforms: a SEI that is down fails the move in transport (nothing
//! moves; the flow resumes once the SEI is back), a SEI that refuses fails the step with a
//! vault error, and a slow SEI does not stall the SP's runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ykt_tsm::Management;
use ykt_tsm::api::{self, FlowStatus};
use ykt_tsm_service::engine::{EngineError, Start};
use ykt_tsm_service::platform::{LinkError, SeiConfig, SeiLink};

use crate::flows::open_as;
use crate::support::*;
use crate::two::*;

fn open_req() -> Start {
    Start::OpenCard(api::OpenCardReq {
        management: Management::Delegated,
        city_code: "1000".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_whose_sei_call_failed_resumes_once_the_sei_is_back() {
    let mut two = Two::start().await;
    let engine = two.engine.clone();
    let phone = device(&engine, 9).await;
    let mut se = new_se(80);
    let mut log = Log::default();
    let mut resp = engine
        .start(&phone, "open-k", open_req(), NOW_MS)
        .await
        .unwrap();
    // The SEI goes away after the first answers; the moves that need it fail in transport.
    let mut relays = 0;
    let failed = loop {
        assert_eq!(resp.status, FlowStatus::Running, "{resp:?}");
        let req = resp.relay.clone().unwrap();
        relays += 1;
        if relays == 2 {
            two.sei.stop();
        }
        let answer = relay(&mut se, &req, &mut log);
        match engine.apdu_result(&phone, "open-k", &answer, NOW_MS).await {
            Ok(next) => resp = next,
            Err(e) => break (e, req),
        }
    };
    let (e, outstanding) = failed;
    assert!(matches!(e, EngineError::PlatformUnavailable), "{e:?}");
    assert_eq!(e.code(), ykt_envelope::Code::Internal);
    // Nothing moved: the flow is as stored before the move, waiting on the same relay.
    let stored = engine.flow(&phone, "open-k").await.unwrap();
    assert_eq!(stored.status, FlowStatus::Running);
    assert_eq!(stored.relay.as_ref().map(|r| r.seq), Some(outstanding.seq));
    // Still down: a resume fails the same way.
    let e = engine.resume(&phone, "open-k", NOW_MS).await.unwrap_err();
    assert!(matches!(e, EngineError::PlatformUnavailable), "{e:?}");

    two.sei.restart();
    // A pooled connection to the old server may fail once more; then the SEI answers.
    let mut resumed = None;
    for _ in 0..3 {
        match engine.resume(&phone, "open-k", NOW_MS).await {
            Ok(r) => {
                resumed = Some(r);
                break;
            }
            Err(EngineError::PlatformUnavailable) => continue,
            Err(e) => panic!("{e:?}"),
        }
    }
    let done = drive(&engine, &phone, resumed.unwrap(), &mut se, &mut log)
        .await
        .unwrap();
    assert_eq!(done.status, FlowStatus::Completed);
    assert_eq!(done.instance_state, "ACTIVE");
    let seid = seid_of_serial(80).to_string();
    let cards = engine.store().cards_on_se(&seid).await.unwrap();
    assert_eq!(cards.len(), 1, "{cards:?}");
    // And the card works: a top-up through both platforms.
    let card_no = done.outcome.unwrap().card_no.unwrap();
    top_up(&engine, &phone, &mut se, &card_no, &seid, 100, &mut log).await;
    two.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_the_sei_fails_the_step_with_a_vault_error() {
    // This SEI pins another transport key: it refuses the handover.
    let other = ykt_crypto::Sm2PrivateKey::from_bytes(&[0x46; 32]).unwrap();
    let config = SeiConfig::new(
        SP_ID,
        sp_key().public_key().clone(),
        other.public_key().to_bytes().to_vec(),
        parties(),
    );
    let two = Two::with(config, |url| Box::new(http_link(url))).await;
    let engine = two.engine.clone();
    let phone = device(&engine, 10).await;
    let mut se = new_se(81);
    let first = engine
        .start(&phone, "open-r", open_req(), NOW_MS)
        .await
        .unwrap();
    let e = drive(&engine, &phone, first, &mut se, &mut Log::default())
        .await
        .unwrap_err();
    match e {
        EngineError::StepFailed {
            source: ykt_tsm::Error::Vault { step, .. },
            ..
        } => assert_eq!(step, ykt_tsm::StepName::HandOverSsdKeys),
        e => panic!("{e:?}"),
    }
    let stored = engine.flow(&phone, "open-r").await.unwrap();
    assert_ne!(stored.status, FlowStatus::Completed);
    two.finish().await;
}

/// A link that takes `delay` longer per call, counting its calls.
struct Slow<L> {
    inner: L,
    delay: Duration,
    calls: Arc<AtomicUsize>,
}

impl<L: SeiLink> SeiLink for Slow<L> {
    fn call(
        &self,
        def: api::MessageDef,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, LinkError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.delay);
        self.inner.call(def, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sei_does_not_stall_the_sp_runtime() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let delay = Duration::from_millis(60);
    let two = Two::with(sei_config(), move |url| {
        Box::new(Slow {
            inner: http_link(url),
            delay,
            calls: counter,
        })
    })
    .await;
    let engine = two.engine.clone();
    let phones = [device(&engine, 11).await, device(&engine, 12).await];
    // Two cards opened at once, while a ticker measures how late the runtime runs it.
    let started = Instant::now();
    let opens: Vec<_> = phones
        .iter()
        .enumerate()
        .map(|(i, phone)| {
            let (engine, phone) = (engine.clone(), phone.clone());
            tokio::spawn(async move {
                let mut se = new_se(90 + i as u8);
                open_as(
                    &engine,
                    &phone,
                    &format!("open-s{i}"),
                    &mut se,
                    Management::Delegated,
                )
                .await
            })
        })
        .collect();
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::clone(&finished);
    let ticker = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        let tick = Duration::from_millis(5);
        while !done.load(Ordering::Relaxed) {
            let t = Instant::now();
            tokio::time::sleep(tick).await;
            worst = worst.max(t.elapsed().saturating_sub(tick));
        }
        worst
    });
    let mut cards = Vec::new();
    for o in opens {
        cards.push(o.await.unwrap());
    }
    let took = started.elapsed();
    finished.store(true, Ordering::Relaxed);
    let worst = ticker.await.unwrap();
    let n = calls.load(Ordering::Relaxed);
    eprintln!(
        "{n} SEI calls of {delay:?} each; two opens took {took:?}; worst tick lateness {worst:?}"
    );
    assert!(n >= 20, "{n}");
    // The calls really blocked for their time...
    assert!(took >= delay * (n as u32) / 2, "{took:?}");
    // ...while the runtime went on running other tasks.
    assert!(worst < Duration::from_millis(50), "{worst:?}");
    assert_ne!(cards[0].0, cards[1].0);
    two.finish().await;
}
