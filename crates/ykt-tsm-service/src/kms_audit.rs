//! KMS key use into the TSM's audit chain.
//!
//! The KMS reports every key use, synchronously, to an [`ykt_kms::AuditSink`]. [`KmsAuditLog`]
//! is that sink for the TSM: each event becomes a [`AuditKind::KeyUse`] row of the store's SM3
//! hash-chained audit log ([`Store::append_audit_batch`]), with the backend, the operation, the
//! key id, the derivation step names, the other key, the algorithm, the caller's purpose and the
//! outcome. No key material ever reaches it (the KMS's events carry none).
//!
//! ```text
//!  Kms op ──record() (sync, never blocks)──▶ unbounded channel ──▶ writer task ──▶ Store
//!                                                                  (batches, one transaction
//!                                                                   per batch, retries)
//! ```
//!
//! [`KmsAuditLog::new`] makes the sink before the store is open (the server opens its keys
//! first): events queue until [`KmsAuditPending::start`] gives the queue its writer.
//!
//! `record` only queues the event, so a KMS call made on the async runtime never waits for the
//! database. The writer task takes what is queued, up to [`BATCH_MAX`] events, and appends them
//! in one transaction; a failed append is retried [`APPEND_ATTEMPTS`] times in all, then the
//! batch is counted lost ([`KmsAuditLog::lost`]) and logged at error level (the count and the
//! error, never the events' text). [`KmsAuditLog::flush`] waits until everything queued before it
//! is written (or counted lost); [`KmsAuditWriter::shutdown`] stops taking events, drains the
//! queue and ends the task: call it when the server stops, after the last KMS use. An event
//! recorded after shutdown is counted lost.
//!
//! \[PROPOSAL\] The row's `actor` is `kms:<backend>`, its `subject` the key id (`name@version`)
//! and its `detail` a JSON object `{operation, key, derivations, other_key, algorithm, purpose,
//! succeeded}`; [`BATCH_MAX`], [`APPEND_ATTEMPTS`] and [`RETRY_DELAY`] are this module's
//! choices (the briefs leave them open).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use ykt_kms::{AuditSink, Operation};
use ykt_store::{AuditEvent, AuditKind, Store};

/// \[PROPOSAL\] The most events appended in one transaction.
pub const BATCH_MAX: usize = 256;

/// \[PROPOSAL\] How many times a batch is tried before it is counted lost.
pub const APPEND_ATTEMPTS: u32 = 3;

/// \[PROPOSAL\] The pause before the first retry of a failed append (doubled for the next).
pub const RETRY_DELAY: Duration = Duration::from_millis(200);

enum Msg {
    Event(AuditEvent),
    Flush(oneshot::Sender<()>),
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    lost: AtomicU64,
}

/// The KMS audit sink: give it (as `Arc<dyn AuditSink>`) to the KMS. Cloning shares the queue.
#[derive(Clone)]
pub struct KmsAuditLog {
    queue: Arc<Mutex<Option<mpsc::UnboundedSender<Msg>>>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for KmsAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsAuditLog")
            .field("written", &self.written())
            .field("lost", &self.lost())
            .finish_non_exhaustive()
    }
}

/// The writer task of a [`KmsAuditLog`]; [`KmsAuditWriter::shutdown`] drains and ends it.
#[derive(Debug)]
pub struct KmsAuditWriter {
    log: KmsAuditLog,
    task: tokio::task::JoinHandle<()>,
}

/// A [`KmsAuditLog`]'s queue before its writer starts ([`KmsAuditPending::start`]): events
/// recorded meanwhile wait in it. Dropped unstarted, the queued events and later ones are
/// counted lost.
#[derive(Debug)]
pub struct KmsAuditPending {
    log: KmsAuditLog,
    rx: mpsc::UnboundedReceiver<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Event(_) => "Event",
            Msg::Flush(_) => "Flush",
        })
    }
}

impl Drop for KmsAuditPending {
    fn drop(&mut self) {
        self.rx.close();
        let mut lost = 0u64;
        while let Ok(msg) = self.rx.try_recv() {
            lost += u64::from(matches!(msg, Msg::Event(_)));
        }
        if lost > 0 {
            let total = self.log.counters.lost.fetch_add(lost, Ordering::Relaxed) + lost;
            tracing::error!(
                events = lost,
                lost = total,
                "the KMS audit writer never started: queued events lost"
            );
        }
    }
}

impl KmsAuditPending {
    /// Starts the writer task on `runtime`, appending to `store` what is queued and what
    /// follows.
    pub fn start(mut self, store: Store, runtime: &tokio::runtime::Handle) -> KmsAuditWriter {
        let (_, placeholder) = mpsc::unbounded_channel();
        let rx = std::mem::replace(&mut self.rx, placeholder);
        let task = runtime.spawn(write_all(store, rx, self.log.counters.clone()));
        KmsAuditWriter {
            log: self.log.clone(),
            task,
        }
    }
}

impl KmsAuditLog {
    /// A sink whose events queue until [`KmsAuditPending::start`] (for a KMS opened before the
    /// store and the runtime exist).
    pub fn new() -> (Self, KmsAuditPending) {
        let (tx, rx) = mpsc::unbounded_channel();
        let log = KmsAuditLog {
            queue: Arc::new(Mutex::new(Some(tx))),
            counters: Arc::new(Counters::default()),
        };
        (log.clone(), KmsAuditPending { log, rx })
    }

    /// A sink and its writer task on `runtime`, appending to `store`.
    pub fn start(store: Store, runtime: &tokio::runtime::Handle) -> (Self, KmsAuditWriter) {
        let (log, pending) = Self::new();
        (log, pending.start(store, runtime))
    }

    /// The events appended to the audit log so far.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// The events lost so far: appends that failed every attempt, and events recorded after
    /// shutdown.
    pub fn lost(&self) -> u64 {
        self.counters.lost.load(Ordering::Relaxed)
    }

    /// Waits until every event recorded before this call is appended or counted lost. Returns at
    /// once after shutdown.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.send(Msg::Flush(done)).is_ok() {
            // An error means the task ended: nothing is left to wait for.
            let _ = wait.await;
        }
    }

    fn send(&self, msg: Msg) -> Result<(), Msg> {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        match queue.as_ref() {
            Some(tx) => tx.send(msg).map_err(|e| e.0),
            None => Err(msg),
        }
    }
}

impl AuditSink for KmsAuditLog {
    fn record(&self, event: &ykt_kms::AuditEvent) {
        if self.send(Msg::Event(row(event))).is_err() {
            let lost = self.counters.lost.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(
                lost,
                operation = operation_name(event.operation),
                "a KMS audit event was recorded after the audit writer stopped: lost"
            );
        }
    }
}

impl KmsAuditWriter {
    /// The sink this task writes for.
    pub fn log(&self) -> &KmsAuditLog {
        &self.log
    }

    /// Stops taking events, appends everything queued, and ends the task.
    pub async fn shutdown(self) {
        let sender = self
            .log
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(sender);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the KMS audit writer task failed");
        }
    }
}

/// The writer: batches of what is queued, until the queue closes and is empty.
async fn write_all(store: Store, mut rx: mpsc::UnboundedReceiver<Msg>, counters: Arc<Counters>) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Event(event) => batch.push(event),
                Msg::Flush(done) => flushes.push(done),
            }
            next = if batch.len() < BATCH_MAX {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        append(&store, &mut batch, &counters).await;
        for done in flushes.drain(..) {
            // The flusher may have stopped waiting.
            let _ = done.send(());
        }
    }
}

async fn append(store: &Store, batch: &mut Vec<AuditEvent>, counters: &Counters) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len() as u64;
    let mut delay = RETRY_DELAY;
    for attempt in 1..=APPEND_ATTEMPTS {
        match store.append_audit_batch(batch).await {
            Ok(_) => {
                counters.written.fetch_add(n, Ordering::Relaxed);
                batch.clear();
                return;
            }
            Err(error) if attempt < APPEND_ATTEMPTS => {
                tracing::warn!(%error, attempt, events = n, "appending KMS audit events failed; retrying");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
            Err(error) => {
                let lost = counters.lost.fetch_add(n, Ordering::Relaxed) + n;
                tracing::error!(%error, events = n, lost, "KMS audit events could not be appended: lost");
            }
        }
    }
    batch.clear();
}

/// The audit row of a KMS event (see the module docs): names and outcomes, no material.
fn row(event: &ykt_kms::AuditEvent) -> AuditEvent {
    let detail = serde_json::json!({
        "operation": operation_name(event.operation),
        "key": event.key.to_string(),
        "derivations": event.derivations,
        "other_key": event.other_key.as_ref().map(ToString::to_string),
        "algorithm": event.algorithm,
        "purpose": event.purpose,
        "succeeded": event.succeeded,
    });
    AuditEvent {
        kind: AuditKind::KeyUse,
        actor: format!("kms:{}", event.backend),
        subject: event.key.to_string(),
        detail: detail.to_string(),
    }
}

/// The operation's name in a row.
fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Generate => "generate",
        Operation::Import => "import",
        Operation::UnwrapImport => "unwrap_import",
        Operation::Diversify => "diversify",
        Operation::Destroy => "destroy",
        Operation::Wrap => "wrap",
        Operation::Encrypt => "encrypt",
        Operation::Mac => "mac",
        Operation::VerifyMac => "verify_mac",
        Operation::Sign => "sign",
        Operation::Verify => "verify",
        _ => "other",
    }
}
