//! Counters for `GET /metrics`, written in the Prometheus text format (version 0.0.4) by hand.
//!
//! * `ykt_tsm_requests_total{msg_type,code}`: business requests by type and result code;
//! * `ykt_tsm_request_duration_seconds{msg_type}`: a latency histogram per type;
//! * `ykt_tsm_flows_started_total`, `…_completed_total`, `…_failed_total`: flows started, and
//!   the moves (start, APDU result, resume) that ended one completed or failed.
//!
//! `msg_type` is one of [`ykt_tsm::api::MESSAGES`] or `unknown`, so the label set is bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ykt_envelope::Code;

use super::proposals::LATENCY_BUCKETS;

#[derive(Default)]
struct Histogram {
    /// One count per bucket of [`LATENCY_BUCKETS`] (not cumulative), then `+Inf`.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Tables {
    requests: BTreeMap<(&'static str, &'static str), u64>,
    latency: BTreeMap<&'static str, Histogram>,
}

/// The server's counters.
#[derive(Default)]
pub(crate) struct Metrics {
    tables: Mutex<Tables>,
    flows_started: AtomicU64,
    flows_completed: AtomicU64,
    flows_failed: AtomicU64,
}

/// How a flow moved, for the flow counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlowMove {
    pub(crate) started: bool,
    pub(crate) completed: bool,
    pub(crate) failed: bool,
}

impl Metrics {
    /// Counts one business request.
    pub(crate) fn record(&self, msg_type: &'static str, code: Code, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut t = self
            .tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *t.requests.entry((msg_type, code.as_str())).or_default() += 1;
        let h = t.latency.entry(msg_type).or_default();
        if h.buckets.is_empty() {
            h.buckets = vec![0; LATENCY_BUCKETS.len() + 1];
        }
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(b) = h.buckets.get_mut(i) {
            *b += 1;
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Counts a flow's move.
    pub(crate) fn flow(&self, m: FlowMove) {
        for (yes, counter) in [
            (m.started, &self.flows_started),
            (m.completed, &self.flows_completed),
            (m.failed, &self.flows_failed),
        ] {
            if yes {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let t = self
            .tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "# HELP ykt_tsm_requests_total Business requests by message type and result code.\n\
             # TYPE ykt_tsm_requests_total counter"
        );
        for ((msg_type, code), n) in &t.requests {
            let _ = writeln!(
                out,
                "ykt_tsm_requests_total{{msg_type=\"{msg_type}\",code=\"{code}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP ykt_tsm_request_duration_seconds Business request latency by message type.\n\
             # TYPE ykt_tsm_request_duration_seconds histogram"
        );
        for (msg_type, h) in &t.latency {
            let mut cumulative = 0;
            for (i, n) in h.buckets.iter().enumerate() {
                cumulative += n;
                let le = LATENCY_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "ykt_tsm_request_duration_seconds_bucket{{msg_type=\"{msg_type}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "ykt_tsm_request_duration_seconds_sum{{msg_type=\"{msg_type}\"}} {}\n\
                 ykt_tsm_request_duration_seconds_count{{msg_type=\"{msg_type}\"}} {}",
                h.sum, h.count
            );
        }
        for (name, help, counter) in [
            ("started", "Flows started.", &self.flows_started),
            (
                "completed",
                "Flow moves that completed a flow.",
                &self.flows_completed,
            ),
            (
                "failed",
                "Flow moves that failed a flow.",
                &self.flows_failed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP ykt_tsm_flows_{name}_total {help}\n\
                 # TYPE ykt_tsm_flows_{name}_total counter\n\
                 ykt_tsm_flows_{name}_total {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out
    }
}
