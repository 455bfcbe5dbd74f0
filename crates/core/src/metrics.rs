//! Pipeline metrics: the counters the pipeline keeps, a snapshot of them for the UI's health
//! panel ([`MetricsView`]), and the same snapshot in Prometheus' text exposition format for
//! `watchfloor record --metrics ADDR`.
//!
//! The counters are plain atomics bumped on the ingest path (no locks there); a snapshot reads
//! them when asked. The exposition text is written here directly: it is a dozen fixed lines with
//! fixed label values (no device-supplied text ever becomes a label), which a metrics library
//! would need more code to adapt to these atomics than it saves.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::watch;
use ts_rs::TS;

use crate::store::writer::WriterStats;
use crate::view::{ConnectionView, LatencyView};

/// Which adapter a message was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    Native = 0,
    OwnTracks = 1,
    Face = 2,
    /// Other consoles' incident changes.
    Incidents = 3,
}

/// What a message became in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Position = 0,
    Status = 1,
    Event = 2,
    Quarantine = 3,
    /// Incident states and audit rows.
    Incident = 4,
}

/// Counters kept by the pipeline since start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages taken from the broker (all adapters, quarantined ones included).
    pub received: AtomicU64,
    /// Refused messages handed to the writer for the quarantine, a copy the broker sent again
    /// included (see [`quarantined`] for the count of messages).
    pub quarantined: AtomicU64,
    messages: [AtomicU64; 4],
    records: [AtomicU64; 5],
    /// Messages waiting between the MQTT link and the live task, at the last tick.
    pub inbound_depth: AtomicU64,
    /// Records waiting for the history writer, at the last tick.
    pub writer_depth: AtomicU64,
    /// QoS 0 position rows not stored because the writer's queue was full (live state kept them).
    pub positions_dropped: AtomicU64,
    push_latency: Mutex<Option<LatencyView>>,
}

impl Counters {
    pub fn count_message(&self, adapter: Adapter) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.messages[adapter as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_record(&self, kind: RecordKind) {
        self.records[kind as usize].fetch_add(1, Ordering::Relaxed);
        if kind == RecordKind::Quarantine {
            self.quarantined.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn set_push_latency(&self, latency: Option<LatencyView>) {
        if let Ok(mut l) = self.push_latency.lock() {
            *l = latency;
        }
    }
}

/// Messages quarantined since start, a refused message the broker sent again counted once: the
/// copies handed to the writer less those it found stored already (counted after its commit,
/// so the figure may drop back by one just after a redelivery).
pub fn quarantined(counters: &Counters, writer: &crate::store::writer::WriterStats) -> u64 {
    let handed = counters.quarantined.load(Ordering::Relaxed);
    handed.saturating_sub(writer.quarantine_repeats.load(Ordering::Relaxed))
}

/// Everything the health panel and Prometheus show, at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct MetricsView {
    pub uptime_s: f64,
    /// Messages from the broker, by adapter.
    #[ts(type = "number")]
    pub messages_native: u64,
    #[ts(type = "number")]
    pub messages_owntracks: u64,
    #[ts(type = "number")]
    pub messages_face: u64,
    #[ts(type = "number")]
    pub messages_incidents: u64,
    /// Rows handed to the history writer, by kind.
    #[ts(type = "number")]
    pub records_position: u64,
    #[ts(type = "number")]
    pub records_status: u64,
    #[ts(type = "number")]
    pub records_event: u64,
    #[ts(type = "number")]
    pub records_quarantine: u64,
    #[ts(type = "number")]
    pub records_incident: u64,
    /// QoS 0 position rows not stored because the writer was behind (see the backpressure docs).
    #[ts(type = "number")]
    pub positions_dropped: u64,
    /// Queue depths: MQTT link -> live task, and live task -> writer.
    #[ts(type = "number")]
    pub inbound_queue: u64,
    #[ts(type = "number")]
    pub writer_queue: u64,
    #[ts(type = "number")]
    pub writer_committed: u64,
    #[ts(type = "number")]
    pub writer_batches: u64,
    #[ts(type = "number")]
    pub writer_last_batch_rows: u64,
    pub writer_last_commit_ms: f64,
    pub writer_commit_seconds_total: f64,
    /// True while commits fail (see the history alarm).
    pub writer_stalled: bool,
    /// Connections made since start (the first one included).
    #[ts(type = "number")]
    pub connects: u64,
    /// Connected to the broker now.
    pub broker_connected: bool,
    /// The last probe's round trip, while connected (none before the first of a connection).
    pub probe_rtt_ms: Option<f64>,
    pub push_latency: Option<LatencyView>,
}

/// A cloneable reader of the pipeline's metrics.
#[derive(Clone)]
pub struct Metrics {
    pub(crate) counters: Arc<Counters>,
    pub(crate) writer: Arc<WriterStats>,
    pub(crate) connection: watch::Receiver<ConnectionView>,
    pub(crate) started: Instant,
}

impl Metrics {
    pub fn snapshot(&self) -> MetricsView {
        let c = &self.counters;
        let w = &self.writer;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let connection = self.connection.borrow().clone();
        let committed = load(&w.committed);
        MetricsView {
            uptime_s: self.started.elapsed().as_secs_f64(),
            messages_native: load(&c.messages[Adapter::Native as usize]),
            messages_owntracks: load(&c.messages[Adapter::OwnTracks as usize]),
            messages_face: load(&c.messages[Adapter::Face as usize]),
            messages_incidents: load(&c.messages[Adapter::Incidents as usize]),
            records_position: load(&c.records[RecordKind::Position as usize]),
            records_status: load(&c.records[RecordKind::Status as usize]),
            records_event: load(&c.records[RecordKind::Event as usize]),
            records_quarantine: load(&c.records[RecordKind::Quarantine as usize]),
            records_incident: load(&c.records[RecordKind::Incident as usize]),
            positions_dropped: load(&c.positions_dropped),
            inbound_queue: load(&c.inbound_depth),
            writer_queue: load(&c.writer_depth),
            writer_committed: committed,
            writer_batches: load(&w.batches),
            writer_last_batch_rows: load(&w.last_batch_rows),
            writer_last_commit_ms: load(&w.last_commit_us) as f64 / 1000.0,
            writer_commit_seconds_total: load(&w.commit_us_total) as f64 / 1e6,
            writer_stalled: w.stall().is_some(),
            connects: connection.connects,
            broker_connected: connection.state == crate::view::LinkState::Connected,
            // A round trip whose probe is older than the status bar trusts (15 s) says nothing
            // of the broker now: a broker that stopped answering kept a healthy figure.
            probe_rtt_ms: connection.probe_rtt_ms.filter(|_| {
                connection
                    .probe_ok_ms
                    .is_some_and(|t| crate::clock::now_ms().saturating_sub(t) <= PROBE_FRESH_MS)
            }),
            push_latency: c.push_latency.lock().ok().and_then(|l| *l),
        }
    }
}

/// How long a probe's round trip stands for the broker's health: the status bar's limit too.
const PROBE_FRESH_MS: i64 = 15_000;

/// The snapshot in Prometheus' text exposition format (version 0.0.4).
pub fn prometheus_text(m: &MetricsView) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP watchfloor_{name} {help}");
        let _ = writeln!(out, "# TYPE watchfloor_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "watchfloor_{name}{labels} {value}");
        }
    };
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the pipeline started.",
        &[("", m.uptime_s)],
    );
    metric(
        "messages_received_total",
        "counter",
        "MQTT messages taken from the broker, by adapter.",
        &[
            ("{adapter=\"native\"}", m.messages_native as f64),
            ("{adapter=\"owntracks\"}", m.messages_owntracks as f64),
            ("{adapter=\"face\"}", m.messages_face as f64),
            ("{adapter=\"incidents\"}", m.messages_incidents as f64),
        ],
    );
    metric(
        "records_total",
        "counter",
        "History rows produced, by kind (quarantine: refused messages).",
        &[
            ("{kind=\"position\"}", m.records_position as f64),
            ("{kind=\"status\"}", m.records_status as f64),
            ("{kind=\"event\"}", m.records_event as f64),
            ("{kind=\"quarantine\"}", m.records_quarantine as f64),
            ("{kind=\"incident\"}", m.records_incident as f64),
        ],
    );
    metric(
        "positions_dropped_total",
        "counter",
        "QoS 0 position rows not stored because the history writer was behind.",
        &[("", m.positions_dropped as f64)],
    );
    metric(
        "queue_depth",
        "gauge",
        "Items waiting between pipeline stages.",
        &[
            ("{queue=\"inbound\"}", m.inbound_queue as f64),
            ("{queue=\"writer\"}", m.writer_queue as f64),
        ],
    );
    metric(
        "writer_rows_committed_total",
        "counter",
        "Rows committed to the history file.",
        &[("", m.writer_committed as f64)],
    );
    metric(
        "writer_commit_seconds",
        "summary",
        "Time spent committing batches to the history file.",
        &[
            ("_sum", m.writer_commit_seconds_total),
            ("_count", m.writer_batches as f64),
        ],
    );
    metric(
        "writer_last_batch_rows",
        "gauge",
        "Rows in the last committed batch.",
        &[("", m.writer_last_batch_rows as f64)],
    );
    metric(
        "writer_stalled",
        "gauge",
        "1 while history commits fail and acknowledgements are held.",
        &[("", f64::from(u8::from(m.writer_stalled)))],
    );
    metric(
        "broker_connects_total",
        "counter",
        "Connections made to the broker.",
        &[("", m.connects as f64)],
    );
    metric(
        "broker_connected",
        "gauge",
        "1 while connected to the broker.",
        &[("", f64::from(u8::from(m.broker_connected)))],
    );
    if let Some(rtt) = m.probe_rtt_ms {
        metric(
            "probe_rtt_seconds",
            "gauge",
            "Round trip of the last probe through the broker.",
            &[("", rtt / 1000.0)],
        );
    }
    if let Some(l) = m.push_latency {
        // Quantiles are a summary's (typed gauge, Prometheus linters and OpenMetrics readers
        // refused the `quantile` label); its sum and count are left out, which the format
        // allows: the figures are a rolling window's, not a running total's.
        metric(
            "push_latency_seconds",
            "summary",
            "MQTT receipt to UI batch, over the last 10 s window.",
            &[
                ("{quantile=\"0.5\"}", l.p50_ms as f64 / 1000.0),
                ("{quantile=\"0.99\"}", l.p99_ms as f64 / 1000.0),
            ],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> MetricsView {
        let counters = Arc::new(Counters::default());
        counters.set_push_latency(Some(LatencyView {
            p50_ms: 20,
            p99_ms: 90,
            max_ms: 95,
            samples: 10,
        }));
        counters.count_message(Adapter::Native);
        counters.count_message(Adapter::Face);
        counters.count_record(RecordKind::Position);
        counters.count_record(RecordKind::Quarantine);
        let (_tx, rx) = watch::channel(ConnectionView::connecting("mqtt://x:1"));
        Metrics {
            counters,
            writer: Arc::new(WriterStats::default()),
            connection: rx,
            started: Instant::now(),
        }
        .snapshot()
    }

    #[test]
    fn counters_land_in_the_snapshot() {
        let v = view();
        assert_eq!(
            (v.messages_native, v.messages_face, v.messages_owntracks),
            (1, 1, 0)
        );
        assert_eq!((v.records_position, v.records_quarantine), (1, 1));
        assert!(!v.writer_stalled);
    }

    #[test]
    fn the_exposition_text_is_well_formed() {
        let text = prometheus_text(&view());
        assert!(
            text.contains("watchfloor_messages_received_total{adapter=\"face\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("watchfloor_records_total{kind=\"quarantine\"} 1\n"));
        assert!(text.contains("watchfloor_writer_commit_seconds_count 0\n"));
        assert!(text.contains("# TYPE watchfloor_push_latency_seconds summary\n"));
        assert!(text.contains("watchfloor_push_latency_seconds{quantile=\"0.99\"} 0.09\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("watchfloor_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        // Every sample's metric has HELP and TYPE lines.
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
