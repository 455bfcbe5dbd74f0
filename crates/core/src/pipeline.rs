//! The pipeline, wired end to end: broker -> [`link`] -> decode -> [`LiveState`] -> batches for
//! screens, and -> the history [`Writer`].
//!
//! [`Pipeline::start`] starts every part; [`Pipeline::shutdown`] stops them in order (link first,
//! so nothing new arrives; then the live task; then the writer, which commits what it holds) and
//! returns when the history file is complete. The desktop shell, `record` and the tests are all
//! thin callers of this one type.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use rumqttc::QoS;
use rusqlite::OptionalExtension;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use watchfloor_protocol::face::{self, FaceContext, FaceMessage};
use watchfloor_protocol::{face_sync, native, owntracks, DecodeError, DeviceId, NativeMessage};

use crate::broker::{self, EmbeddedBroker};
use crate::clock::now_ms;
use crate::incidents::book::{self, BookChange, KEEP_FORGOTTEN_MS, KEEP_RESOLVED_MS};
use crate::incidents::rules::FloodWatch;
use crate::incidents::{
    shared, ActionError, Incident, IncidentAction, IncidentBook, IncidentRules, SeenIncident,
};
use crate::link::{self, Inbound, LinkConfig, Outbound};
use crate::live::LiveState;
use crate::metrics::{Adapter, Counters, Metrics, RecordKind};
use crate::settings::{BrokerTarget, BrokerUrl, FaceSettings, PasswordSource, Settings};
use crate::store::outbox::Outbox;
use crate::store::quarantine::QuarantineEntry;
use crate::store::writer::{Committed, Queued, Record, Writer, WriterStats};
use crate::store::{self, meta};
use crate::view::{ConnectionView, ConsoleInfo, HistoryHealth, LatencyView, LiveBatch, TrailPoint};

/// Depth of the queue from the link to the live task, in messages and in bytes of payload
/// (see [`link::inbound_queue`]).
const INBOUND_QUEUE: usize = 8192;
const INBOUND_QUEUE_BYTES: u32 = 64 * 1024 * 1024;
/// Depth of the queue from the live task to the writer.
const WRITER_QUEUE: usize = 16_384;
/// Batches kept for a slow screen before it must resync from a snapshot.
const BATCH_BUFFER: usize = 64;
/// Incident changes waiting for the link to publish them.
const OUTBOUND_QUEUE: usize = 4096;
/// The time a last will that ended a session is stored with: its arrival, on the device's
/// clock (the newest time it put on a fix or a status, `last_ts`, plus what passed on the
/// receiver's since that message was heard), so that it comes after every row of the session
/// it ends, as it came after them on the console.
fn session_end_ms(last_ts: i64, heard_ms: i64, received_ms: i64) -> i64 {
    last_ts.saturating_add(received_ms.saturating_sub(heard_ms).max(1))
}

/// What live state held of a device before a message was applied ([`Pipeline::records_of`]).
#[derive(Debug, Clone, Copy)]
struct Before {
    online: bool,
    /// The newest time the device put on a fix or a status.
    last_ts: i64,
    /// When it was last heard (receiver clock).
    heard_ms: i64,
    /// The stored instant of the will that ended its last session, while it is offline.
    session_end: Option<i64>,
    /// Its held status: (time, online).
    status: Option<(i64, bool)>,
}

/// The newest row the history file holds of a device.
#[derive(Debug, Clone, Copy)]
struct LastStored {
    ts_ms: i64,
    /// It is an offline status (and no fix is newer).
    ends_offline: bool,
}

/// How often one incident's retained copy is put back over a losing one, at most.
const RESTORE_RETAINED_EVERY_MS: i64 = 10_000;

/// A running pipeline.
pub struct Pipeline {
    info: ConsoleInfo,
    batches: broadcast::Sender<Arc<LiveBatch>>,
    snapshots: mpsc::Sender<oneshot::Sender<LiveBatch>>,
    trails: mpsc::Sender<TrailRequest>,
    actions: mpsc::Sender<ActionRequest>,
    connection: watch::Receiver<ConnectionView>,
    cancel: CancellationToken,
    link_task: JoinHandle<()>,
    live_task: JoinHandle<()>,
    writer: Writer,
    counters: Arc<Counters>,
    started: std::time::Instant,
    retry_now: Arc<Notify>,
    /// The broker as connected to (an embedded broker's real port filled in).
    broker: BrokerUrl,
    _embedded: Option<EmbeddedBroker>,
    /// One console or recorder per history file ([`store::lock`]).
    _lock: store::lock::HistoryLock,
}

impl Pipeline {
    /// Opens the history file, starts the embedded broker if configured, and connects.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        let lock =
            store::lock::HistoryLock::acquire(&settings.db_path, store::lock::Role::Console)?;
        let db_path = settings.db_path.clone();
        let (conn, client_id, incidents) =
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let conn = store::open(&db_path)?;
                // Stable per history file, so a restarted console is the same MQTT client.
                let client_id = meta::client_id(&conn)?;
                let now = now_ms();
                let mut incidents = IncidentBook::new(store::incidents::load_current(
                    &conn,
                    now - KEEP_RESOLVED_MS,
                )?);
                incidents.remember_forgotten(store::incidents::resolved_between(
                    &conn,
                    now - KEEP_FORGOTTEN_MS,
                    now - KEEP_RESOLVED_MS,
                )?);
                Ok((conn, client_id, incidents))
            })
            .await
            .context("history file task")??;
        let client_id = settings.client_id.clone().unwrap_or(client_id);

        let embedded = match &settings.broker {
            BrokerTarget::Embedded { listen } => {
                let listen = *listen;
                Some(
                    tokio::task::spawn_blocking(move || broker::start(listen))
                        .await
                        .context("broker task")??,
                )
            }
            BrokerTarget::External(_) => None,
        };
        let mut broker_url = settings.broker_url();
        if let Some(b) = &embedded {
            broker_url.port = b.listen.port(); // a configured port 0 became a real one
        }

        let credential_problem = match &settings.mqtt.password_source {
            PasswordSource::KeyringUnavailable(why) => Some(format!(
                "no broker password: {why} (the username goes without one)"
            )),
            _ => None,
        };
        match &settings.mqtt.password_source {
            PasswordSource::None | PasswordSource::Pending => {}
            PasswordSource::Environment => tracing::info!("broker password from {}", crate::settings::PASSWORD_ENV),
            PasswordSource::Keyring => tracing::info!("broker password from the OS keyring"),
            PasswordSource::ConfigFile => tracing::warn!(
                "broker password from the config file in plain text (mqtt.allow_plaintext_password): move it to the OS keyring with `watchfloor credentials set-password`"
            ),
            PasswordSource::KeyringUnavailable(why) => {
                tracing::warn!(reason = %why, "the OS keyring cannot be read: connecting without a password")
            }
        }
        if settings.mqtt.skip_verify {
            tracing::warn!(broker = %broker_url, "TLS certificate of the broker NOT VERIFIED (mqtt.insecure_skip_verify): anyone on the path can pose as it");
        }

        let info = ConsoleInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            tls_unverified: settings.mqtt.skip_verify,
            credential_problem,
            broker_url: broker_url.to_string(),
            embedded_broker: embedded.is_some(),
            db_path: settings.db_path.display().to_string(),
            client_id: client_id.clone(),
            topic_prefix: settings.topic_prefix.clone(),
            map_style_url: settings.map_style_url.clone(),
            simulated_devices: settings.sim.devices,
            operator: settings.incidents.operator.clone(),
            notify_min_severity: settings.incidents.notify_min_severity,
            sound: settings.incidents.sound,
            device_groups: settings.device_groups.names(),
            trail_minutes: u32::try_from(settings.live.trail.as_secs() / 60).unwrap_or(u32::MAX),
            terminal_zone: settings.terminal_day_zone().name().to_owned(),
        };

        let (acker, ack_queue) = link::ack_channel();
        let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let replies = outbound_tx.clone();
        let on_commit = Box::new(move |committed: Committed| {
            acker.ack(committed.acks);
            for reply in committed.replies {
                if replies.try_send(reply).is_err() {
                    // The terminal keeps the record and pushes it again; it is stored once.
                    tracing::warn!("a PushAck was not sent now (link queue full or closed)");
                }
            }
        });
        link::check_client_transport(&broker_url, &settings.mqtt).map_err(|e| {
            anyhow::anyhow!("the MQTT client certificate and key cannot be used: {e}")
        })?;
        let writer = Writer::spawn(conn, WRITER_QUEUE, on_commit, settings.retention)
            .context("starting the history writer")?;
        let cancel = CancellationToken::new();
        let (inbound_tx, inbound_rx) = link::inbound_queue(INBOUND_QUEUE, INBOUND_QUEUE_BYTES);
        let (conn_tx, conn_rx) = watch::channel(ConnectionView::connecting(&info.broker_url));
        let prefix = &settings.topic_prefix;
        let link_cfg = LinkConfig {
            broker: broker_url.clone(),
            client_id,
            mqtt: settings.mqtt.clone(),
            subscriptions: vec![
                (format!("{prefix}/+/location"), QoS::AtMostOnce),
                (format!("{prefix}/+/status"), QoS::AtLeastOnce),
                (format!("{prefix}/+/events"), QoS::AtLeastOnce),
            ]
            .into_iter()
            .chain(settings.face.iter().flat_map(|face| {
                let base = &face.base_topic;
                ["basic", "heartbeat", "+/Rec", "+/Snap", "+/Alarm"]
                    .map(|t| (format!("{base}/{t}"), QoS::AtLeastOnce))
            }))
            .chain(settings.owntracks_base.iter().flat_map(|base| {
                // Phones publish at QoS 1 by default; location and last will share the first.
                [
                    (format!("{base}/+/+"), QoS::AtLeastOnce),
                    (format!("{base}/+/+/event"), QoS::AtLeastOnce),
                ]
            }))
            .chain([(shared::FILTER.to_owned(), QoS::AtLeastOnce)])
            .collect(),
            clean_session: false,
            presence: true,
        };
        let retry_now = Arc::new(Notify::new());
        let link_task = tokio::spawn(link::run(
            link_cfg,
            inbound_tx,
            ack_queue,
            conn_tx,
            outbound_rx,
            Arc::clone(&retry_now),
            cancel.child_token(),
        ));

        let (batches, _) = broadcast::channel(BATCH_BUFFER);
        let (snap_tx, snap_rx) = mpsc::channel(16);
        let (trail_tx, trail_rx) = mpsc::channel(16);
        let (action_tx, action_rx) = mpsc::channel(16);
        let counters = Arc::new(Counters::default());
        let live = LiveTask {
            prefix: settings.topic_prefix.clone(),
            owntracks_base: settings.owntracks_base.clone(),
            face: settings.face.clone(),
            live: LiveState::new(settings.live).with_groups(settings.device_groups.clone()),
            inbound: inbound_rx,
            snapshots: snap_rx,
            trails: trail_rx,
            actions: action_rx,
            connection: conn_rx.clone(),
            batches: batches.clone(),
            outbox: Outbox::new(writer.sender()),
            writer_stats: writer.stats(),
            counters: Arc::clone(&counters),
            seq: 0,
            reported_stall: false,
            latency: LatencyWindow::new(),
            incidents,
            rules: settings.incidents.rules.clone(),
            operator: settings.incidents.operator.clone(),
            flood: FloodWatch::default(),
            publisher: shared::Publisher::new(outbound_tx),
            changed_incidents: HashMap::new(),
            published_at_connect: 0,
            listening_at_connect: None,
            last_tick_ms: 0,
            restored_retained: HashMap::new(),
            restore_later: HashMap::new(),
            db_path: settings.db_path.clone(),
            history_reader: None,
            pruned_incidents_ms: 0,
            push_acks: 0,
            warned_device_limit: false,
        };
        let live_task = tokio::spawn(live.run(settings.batch_interval));

        Ok(Self {
            info,
            batches,
            snapshots: snap_tx,
            trails: trail_tx,
            actions: action_tx,
            connection: conn_rx,
            cancel,
            link_task,
            live_task,
            writer,
            counters,
            started: std::time::Instant::now(),
            retry_now,
            broker: broker_url,
            _embedded: embedded,
            _lock: lock,
        })
    }

    pub fn info(&self) -> &ConsoleInfo {
        &self.info
    }

    /// The broker this console connects to.
    pub fn broker(&self) -> &BrokerUrl {
        &self.broker
    }

    /// A cloneable handle for screens and loggers: batches and snapshots of live state.
    pub fn feed(&self) -> LiveFeed {
        LiveFeed {
            batches: self.batches.clone(),
            snapshots: self.snapshots.clone(),
            trails: self.trails.clone(),
            actions: self.actions.clone(),
        }
    }

    pub fn connection(&self) -> ConnectionView {
        self.connection.borrow().clone()
    }

    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// A handle that cuts the link's current backoff short (the operator's "Retry now").
    pub fn retry_handle(&self) -> RetryNow {
        RetryNow(Arc::clone(&self.retry_now))
    }

    /// A cloneable reader of the pipeline's metrics (health panel, Prometheus).
    pub fn metrics(&self) -> Metrics {
        Metrics {
            counters: Arc::clone(&self.counters),
            writer: self.writer.stats(),
            connection: self.connection.clone(),
            started: self.started,
        }
    }

    pub fn writer_stats(&self) -> Arc<WriterStats> {
        self.writer.stats()
    }

    /// Stops everything and returns once the history file holds all that was received and the
    /// broker has its acknowledgements. In order: the link stops handing messages over; live
    /// state works off what it has and ends; the writer commits the rest; the link sends their
    /// acknowledgements (and PushAcks) and disconnects. Before, the link went first, and the
    /// broker delivered the last commits' messages again at the next start.
    pub async fn shutdown(self) {
        // A writer stuck on a full disk would hold everything in front of it for ever.
        self.writer.begin_closing();
        self.cancel.cancel();
        if let Err(e) = self.live_task.await {
            tracing::error!(error = %e, "live state task failed");
        }
        let writer = self.writer;
        if tokio::task::spawn_blocking(move || writer.finish())
            .await
            .is_err()
        {
            tracing::error!("history writer did not finish cleanly");
        }
        if let Err(e) = self.link_task.await {
            tracing::error!(error = %e, "MQTT link task failed");
        }
    }
}

type TrailRequest = (DeviceId, oneshot::Sender<Vec<TrailPoint>>);
type ActionRequest = (
    String,
    IncidentAction,
    Option<SeenIncident>,
    oneshot::Sender<Result<Incident, ActionError>>,
);

/// Live state as a screen consumes it: subscribe to batches, then take a snapshot, and apply
/// the batches whose `seq` is above the snapshot's.
#[derive(Clone)]
pub struct LiveFeed {
    batches: broadcast::Sender<Arc<LiveBatch>>,
    snapshots: mpsc::Sender<oneshot::Sender<LiveBatch>>,
    trails: mpsc::Sender<TrailRequest>,
    actions: mpsc::Sender<ActionRequest>,
}

impl LiveFeed {
    /// Resolves when live state has stopped (its task ended): no more batches will come,
    /// although the batch channel stays open while any feed is held.
    pub async fn ended(&self) {
        self.snapshots.closed().await;
    }

    /// Applies an operator's action to incident `id` (as this console's operator), refused
    /// when it changed since the operator saw it as `seen`; `None` once the pipeline has
    /// stopped.
    pub async fn act(
        &self,
        id: String,
        action: IncidentAction,
        seen: Option<SeenIncident>,
    ) -> Option<Result<Incident, ActionError>> {
        let (reply, rx) = oneshot::channel();
        self.actions.send((id, action, seen, reply)).await.ok()?;
        rx.await.ok()
    }

    /// Batches from now on. A receiver that falls [`BATCH_BUFFER`] batches behind gets
    /// `Lagged` and must take a new snapshot.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveBatch>> {
        self.batches.subscribe()
    }

    /// Every device now; `None` once the pipeline has stopped.
    pub async fn snapshot(&self) -> Option<LiveBatch> {
        let (reply, rx) = oneshot::channel();
        self.snapshots.send(reply).await.ok()?;
        rx.await.ok()
    }

    /// A device's recent fixes, oldest first; `None` once the pipeline has stopped.
    pub async fn trail(&self, device: DeviceId) -> Option<Vec<TrailPoint>> {
        let (reply, rx) = oneshot::channel();
        self.trails.send((device, reply)).await.ok()?;
        rx.await.ok()
    }
}

/// The one owner of live state.
struct LiveTask {
    prefix: String,
    owntracks_base: Option<String>,
    face: Option<FaceSettings>,
    live: LiveState,
    inbound: link::InboundQueue,
    snapshots: mpsc::Receiver<oneshot::Sender<LiveBatch>>,
    trails: mpsc::Receiver<TrailRequest>,
    actions: mpsc::Receiver<ActionRequest>,
    connection: watch::Receiver<ConnectionView>,
    batches: broadcast::Sender<Arc<LiveBatch>>,
    /// Hands records to the history writer without ever waiting on it (store::outbox).
    outbox: Outbox,
    writer_stats: Arc<WriterStats>,
    counters: Arc<Counters>,
    seq: u64,
    /// Whether the last batch reported a writer stall (a change forces a batch).
    reported_stall: bool,
    latency: LatencyWindow,
    incidents: IncidentBook,
    rules: IncidentRules,
    /// This console's operator, named in the audit trail.
    operator: String,
    flood: FloodWatch,
    /// What the shared incident topics should hold, handed to the link as its queue has room.
    publisher: shared::Publisher,
    /// Incidents changed since the last batch, by id (each sent once, as it is now: a broker
    /// restart may change thousands in one batch).
    changed_incidents: HashMap<String, Incident>,
    /// The link's connect count when every incident was last published.
    published_at_connect: u64,
    /// The connection count the live state's silence counts from; none while the link is down.
    listening_at_connect: Option<u64>,
    /// When the last tick ran (receiver clock).
    last_tick_ms: i64,
    /// When each incident's retained copy was last put back over a losing one (or an old copy
    /// answered from history).
    restored_retained: HashMap<String, i64>,
    /// Retained copies to put back when their turn comes (see `restore_retained`).
    restore_later: HashMap<String, i64>,
    /// The history file, read for an incident's last version once it is forgotten.
    db_path: std::path::PathBuf,
    /// A read-only connection to it, opened when first needed.
    history_reader: Option<rusqlite::Connection>,
    /// When resolved incidents were last pruned from memory (once a minute is plenty).
    pruned_incidents_ms: i64,
    /// PushAcks sent (numbers their messageIds).
    push_acks: u64,
    /// The device limit was reached and said so in the log (once).
    warned_device_limit: bool,
}

/// Receipt-to-batch latency over rolling windows of [`LatencyWindow::SPAN_MS`]: the summary of
/// the last complete window is reported, so the figure is steady and recent.
struct LatencyWindow {
    current: Histogram<u64>,
    started_ms: i64,
    last: Option<LatencyView>,
}

impl LatencyWindow {
    const SPAN_MS: i64 = 10_000;

    fn new() -> Self {
        Self {
            // 1 ms to 1 hour at 2 significant digits: a few KiB.
            current: Histogram::new_with_bounds(1, 3_600_000, 2).expect("valid histogram bounds"),
            started_ms: now_ms(),
            last: None,
        }
    }

    fn record(&mut self, ms: i64) {
        self.current
            .saturating_record(u64::try_from(ms.max(1)).unwrap_or(1));
    }

    fn summary(&mut self, now_ms: i64) -> Option<LatencyView> {
        if now_ms - self.started_ms >= Self::SPAN_MS {
            let h = &self.current;
            self.last = (!h.is_empty()).then(|| LatencyView {
                p50_ms: h.value_at_quantile(0.5),
                p99_ms: h.value_at_quantile(0.99),
                max_ms: h.max(),
                samples: h.len(),
            });
            self.current.reset();
            self.started_ms = now_ms;
        }
        self.last
    }
}

/// How soon records waiting for the writer's room are offered again.
const OUTBOX_RETRY: Duration = Duration::from_millis(10);

impl LiveTask {
    async fn run(mut self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // While too much waits for the writer, the broker keeps the rest (QoS 1 stays
                // unacknowledged there); everything else here goes on.
                msg = self.inbound.recv(), if !self.outbox.is_full() => match msg {
                    Some(msg) => self.ingest(msg).await,
                    None => break, // the link ended: shutdown
                },
                _ = tokio::time::sleep(OUTBOX_RETRY), if !self.outbox.is_empty() => {
                    self.flush_outbox();
                }
                Some(reply) = self.snapshots.recv() => {
                    let batch = self.batch(true);
                    let _ = reply.send(batch);
                }
                Some((id, reply)) = self.trails.recv() => {
                    let _ = reply.send(self.live.trail(&id));
                }
                Some((id, action, seen, reply)) = self.actions.recv() => {
                    let result = self.incidents.act_as_seen(
                        &id,
                        &action,
                        seen.as_ref(),
                        &self.operator,
                        now_ms(),
                    );
                    let records = self.drain_incidents();
                    self.store_all(records, None, None);
                    let _ = reply.send(result);
                }
                _ = tick.tick() => {
                    let now = now_ms();
                    self.follow_link_for_silence(now);
                    self.restore_due(now);
                    for id in self.live.sweep_stale(now) {
                        self.raise_stale(&id, now);
                    }
                    if now - self.pruned_incidents_ms >= 60_000 {
                        self.pruned_incidents_ms = now;
                        let forgotten = self.live.forget_silent(now);
                        if forgotten > 0 {
                            tracing::info!(devices = forgotten, "devices long offline or silent left live state");
                        }
                        for id in self.incidents.prune(now) {
                            self.clear_retained(&id);
                        }
                    }
                    self.republish_after_connect();
                    self.publisher.flush(&self.incidents);
                    let records = self.drain_incidents();
                    self.store_all(records, None, None);
                    self.counters.inbound_depth.store(self.inbound.len() as u64, Ordering::Relaxed);
                    self.counters.writer_depth.store(self.outbox.queued() as u64, Ordering::Relaxed);
                    let stalled = self.writer_stats.stall().is_some();
                    if self.live.has_changes()
                        || !self.changed_incidents.is_empty()
                        || self.connection.has_changed().unwrap_or(false)
                        || stalled != self.reported_stall
                    {
                        self.reported_stall = stalled;
                        let batch = self.batch(false);
                        // No receiver (a headless run without log subscribers) is fine.
                        let _ = self.batches.send(Arc::new(batch));
                    }
                }
            }
        }
        // Nothing is read any more: what waits for the writer goes to it, all of it.
        if self.outbox.drain().await.is_err() {
            tracing::error!("history writer is gone; records waiting for it were not stored");
        }
    }

    fn batch(&mut self, full: bool) -> LiveBatch {
        let emitted_at_ms = now_ms();
        let removed: Vec<String> = self
            .live
            .take_removed()
            .into_iter()
            .filter(|_| !full)
            .map(|id| id.to_string())
            .collect();
        let devices = if full {
            self.live.snapshot()
        } else {
            let latency = &mut self.latency;
            self.live
                .take_changes_timed(|since| latency.record(emitted_at_ms - since))
        };
        if !full {
            self.seq += 1;
        }
        let incidents = if full {
            self.changed_incidents.clear();
            self.incidents.snapshot()
        } else {
            std::mem::take(&mut self.changed_incidents)
                .into_values()
                .collect()
        };
        let history = self.history_health();
        let push_latency = self.latency.summary(emitted_at_ms);
        self.counters.set_push_latency(push_latency);
        let quarantined = crate::metrics::quarantined(&self.counters, &self.writer_stats);
        LiveBatch {
            seq: self.seq,
            emitted_at_ms,
            full,
            devices,
            removed,
            counts: self.live.counts(),
            connection: self.connection.borrow_and_update().clone(),
            quarantined,
            history,
            push_latency,
            incidents,
            unacknowledged: self.incidents.unacknowledged(),
        }
    }

    fn history_health(&self) -> HistoryHealth {
        let stall = self.writer_stats.stall();
        HistoryHealth {
            queued: self.outbox.queued() as u64,
            committed: self.writer_stats.committed.load(Ordering::Relaxed),
            stalled_since_ms: stall.as_ref().map(|s| s.0),
            last_error: stall.map(|s| s.1),
        }
    }

    /// Decodes with the adapter the topic belongs to.
    fn decode(&self, msg: &Inbound) -> (Adapter, Result<FaceMessage, DecodeError>) {
        let under = |base: &str| {
            msg.topic
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'))
        };
        if let Some(face) = self.face.as_ref().filter(|f| under(&f.base_topic)) {
            let ctx = FaceContext {
                zone: face.zone,
                terminal_zones: &face.terminal_zones,
                now_ms: msg.received_ms,
            };
            return (
                Adapter::Face,
                face::decode(&face.base_topic, &msg.topic, &msg.payload, ctx),
            );
        }
        if let Some(base) = self.owntracks_base.as_deref().filter(|b| under(b)) {
            return (
                Adapter::OwnTracks,
                owntracks::decode(base, &msg.topic, &msg.payload, msg.received_ms).map(generic),
            );
        }
        (
            Adapter::Native,
            native::decode(&self.prefix, &msg.topic, &msg.payload, msg.received_ms)
                .map(|m| generic(vec![m])),
        )
    }

    async fn ingest(&mut self, msg: Inbound) {
        if shared::is_incident_topic(&msg.topic) {
            return self.ingest_incident(msg).await;
        }
        if msg.payload.is_empty() {
            // A zero-length message is how MQTT clears a topic's retained message (a retired
            // device's status, `mosquitto_pub -r -n`): it says nothing of a device, so it is
            // neither stored nor refused (a hundred cleared in a minute raised a flood).
            tracing::debug!(topic = %msg.topic, "an empty message: a retained message cleared");
            // `Nothing` carries a QoS 1 acknowledgement through the writer, in order.
            return self.store_all(vec![Record::Nothing], msg.ack, None);
        }
        let received_ms = msg.received_ms;
        let (adapter, decoded) = self.decode(&msg);
        self.counters.count_message(adapter);
        let mut reply = None;
        let mut records: Vec<Record> = match decoded {
            Ok(m)
                if m.messages
                    .iter()
                    .any(|m| self.live.is_beyond_limit(m.device())) =>
            {
                // A face push is answered like any refused push, or the terminal would push
                // it again for ever with the rest of its records queued behind it.
                reply = m.push_ack.and_then(|ack| self.push_ack_reply(&ack));
                let reason = format!(
                    "a new device beyond the {} that live state holds ([live] max_devices)",
                    self.live.max_devices()
                );
                if !self.warned_device_limit {
                    self.warned_device_limit = true;
                    tracing::warn!(topic = %msg.topic, "{reason}: its messages are quarantined");
                }
                self.refuse(&msg, "device_limit", reason)
            }
            Ok(FaceMessage {
                messages,
                access,
                image,
                push_ack,
            }) => {
                let mut records = self.records_of(messages, received_ms, msg.retained, msg.qos1);
                // A face terminal's record: its attendance row, its image beside its event.
                records.extend(access.map(|record| Record::Access {
                    record,
                    received_ms,
                }));
                if let (Some(jpeg), Some(Record::Event { device, event, .. })) =
                    (image, records.first())
                {
                    records.push(Record::FaceImage {
                        device: device.clone(),
                        event_id: event.event_id.clone(),
                        jpeg,
                        received_ms,
                    });
                }
                reply = push_ack.and_then(|ack| self.push_ack_reply(&ack));
                records
            }
            Err(e) => {
                // A refused push is answered once its quarantine row is stored, or the
                // terminal would push it again for ever.
                if let (Adapter::Face, Some(face)) = (adapter, &self.face) {
                    reply = face::owed_ack(&face.base_topic, &msg.topic, &msg.payload)
                        .and_then(|ack| self.push_ack_reply(&ack));
                }
                self.refuse(&msg, e.code(), e.to_string())
            }
        };
        if reply.is_none() && adapter == Adapter::Face {
            reply = self.online_ack(&msg);
        }
        records.extend(self.drain_incidents());
        self.store_all(records, msg.ack, reply);
    }

    /// The answer a face terminal's `Online` must have (or it sends Online again and again),
    /// when no employee sync runs in this process to give it (`[face] sync = false`, the
    /// setting for scheduled `watchfloor sync` runs); whatever the recording made of it.
    fn online_ack(&self, msg: &Inbound) -> Option<Outbound> {
        let face = self.face.as_ref().filter(|f| !f.sync)?;
        match face_sync::decode_presence(&face.base_topic, &msg.topic, &msg.payload) {
            Ok(face_sync::Presence::Online {
                terminal,
                message_id,
                ..
            }) => Some(Outbound {
                topic: face_sync::command_topic(&face.base_topic, &terminal),
                payload: face_sync::online_ack(&terminal, message_id.as_deref()),
                retain: false,
            }),
            _ => None,
        }
    }

    /// The quarantine row for a message refused for `reason` (counted towards a flood, unless
    /// the broker sends it again: its first copy counted, and a reconnect that redelivers a
    /// window of refused messages is no flood).
    fn refuse(&mut self, msg: &Inbound, code: &'static str, reason: String) -> Vec<Record> {
        tracing::debug!(topic = %msg.topic, %reason, "message quarantined");
        let flood = (!msg.redelivered)
            .then(|| self.flood.on_quarantined(&self.rules, msg.received_ms))
            .flatten();
        if let Some(t) = flood {
            self.incidents.raise(&t, msg.received_ms);
        }
        vec![quarantined(msg, code, reason)]
    }

    /// The PushAck message for `ack`, when the terminals are configured to wait for one.
    fn push_ack_reply(&mut self, ack: &face::PushAck) -> Option<Outbound> {
        let face = self.face.as_ref().filter(|f| f.push_ack)?;
        self.push_acks += 1;
        Some(Outbound {
            topic: ack.topic(&face.base_topic),
            payload: ack.encode(&format!("pushack-{}", self.push_acks)),
            retain: false,
        })
    }

    /// Applies decoded messages to live state (raising what they call for); their history rows.
    /// `replayed`: the broker sent them from its retained store (see
    /// [`LiveState::apply_replayed`]); `qos1`: they came at QoS 1 (and may be a redelivery).
    fn records_of(
        &mut self,
        messages: Vec<NativeMessage>,
        received_ms: i64,
        replayed: bool,
        qos1: bool,
    ) -> Vec<Record> {
        messages
            .into_iter()
            .map(|m| {
                let before = self.live.get(m.device()).map(|s| Before {
                    online: s.online(),
                    last_ts: s.last_device_ts(),
                    heard_ms: s.last_seen_ms,
                    session_end: s.session_end_stored_ms(),
                    status: s.status.as_ref().map(|st| (st.ts_ms, st.online)),
                });
                self.apply_live(&m, received_ms, replayed);
                if qos1 {
                    self.live.heard_at_qos1(&m);
                }
                let m = match (m, before) {
                    // The will that ends the session held: stored at the instant it did.
                    (NativeMessage::Status { device, mut status }, Some(b))
                        if b.online
                            && !replayed
                            && !status.online
                            && !status.stamped_on_arrival
                            && status.ts_ms <= b.last_ts
                            && self.live.get(&device).is_some_and(|s| !s.online()) =>
                    {
                        status.ts_ms = session_end_ms(b.last_ts, b.heard_ms, received_ms);
                        self.live.note_session_end(&device, status.ts_ms);
                        Some(NativeMessage::Status { device, status })
                    }
                    // The status that opens the session after such a will: a device that
                    // reconnects at once (the broker publishes the old connection's will as the
                    // new one takes over) can put a time on it a little before the instant the
                    // will was stored with (the two come from different clocks), and review
                    // showed the device offline until its next status. It came after the will,
                    // and is stored after it (also a presence stamped on arrival, by a device
                    // whose clock ran ahead before: its will went after those rows).
                    (NativeMessage::Status { device, mut status }, Some(b))
                        if !b.online
                            && !replayed
                            && status.online
                            && b.session_end.is_some_and(|ended| status.ts_ms <= ended)
                            && self.live.get(&device).is_some_and(|s| s.online()) =>
                    {
                        status.ts_ms = b.session_end.unwrap_or_default().saturating_add(1);
                        Some(NativeMessage::Status { device, status })
                    }
                    // Another copy of the will live state holds, the device offline since: a
                    // redelivery (the link dropped before its acknowledgement) or the broker's
                    // retained copy replayed at a reconnect. The first was stored at the instant
                    // it ended the session; stored again at its own time (the session's start),
                    // or after the newest row, every reconnect added an offline row.
                    (NativeMessage::Status { status, .. }, Some(b))
                        if !b.online
                            && !status.online
                            && !status.stamped_on_arrival
                            && b.status == Some((status.ts_ms, false)) =>
                    {
                        None
                    }
                    // A will replayed from the broker's retained store at a (re)connect, or
                    // queued for this console's session while it was stopped: the device went
                    // offline while this console was not listening, after the last row it
                    // stored of it. Stored at its session's start, review showed the device
                    // online (its newest heartbeat) for good. One the file already ends on (this
                    // will, stored at an earlier start) is not stored again.
                    (NativeMessage::Status { device, status }, before)
                        if (replayed || before.is_none())
                            && !status.online
                            && !status.stamped_on_arrival =>
                    {
                        let said_at = status.ts_ms;
                        self.will_after_file(device, status, said_at, i64::MIN)
                    }
                    // A will with no time of its own (an OwnTracks `lwt`, a terminal's `Offline`),
                    // stamped on its arrival, that ends the session held: stored after every row
                    // of the session (a device clock ahead of the console's put later times on
                    // them), and the status that opens the next is stored after it (above).
                    (NativeMessage::Status { device, mut status }, Some(b))
                        if b.online
                            && !replayed
                            && !status.online
                            && status.stamped_on_arrival
                            && self.live.get(&device).is_some_and(|s| !s.online()) =>
                    {
                        status.ts_ms = status.ts_ms.max(b.last_ts.saturating_add(1));
                        self.live.note_session_end(&device, status.ts_ms);
                        Some(NativeMessage::Status { device, status })
                    }
                    // Any other will with no time of its own: a copy delivered again (after a
                    // dropped link or a kill), the broker's retained copy at a (re)connect, one
                    // for a device this console does not hold yet. Each copy is stamped with its
                    // own arrival, so none matched the statuses table's unique key, and each was
                    // one more offline row. For a device held offline, it says nothing new (the
                    // row that took it offline is stored, or on its way to the file).
                    (NativeMessage::Status { status, .. }, Some(b))
                        if !b.online && !status.online && status.stamped_on_arrival =>
                    {
                        None
                    }
                    // For one held online (its retained will replayed at a reconnect) or not held
                    // yet (at a start), the file decides: one that already ends on the device
                    // offline takes nothing; else the will goes after its newest row.
                    // (Rows of the device still on their way to the file count: live state's
                    // newest time of it.)
                    (NativeMessage::Status { device, status }, before)
                        if !status.online && status.stamped_on_arrival =>
                    {
                        let held_ts = before.map_or(i64::MIN, |b| b.last_ts);
                        self.will_after_file(device, status, held_ts, held_ts)
                    }
                    // Presence with no time of its own (a terminal whose clock is not set)
                    // replayed from the broker's retained store, which live state did not take
                    // (it would bring back a device that went offline since): not stored either,
                    // or the file would end on it, online.
                    (NativeMessage::Status { device, status }, Some(_))
                        if replayed
                            && status.online
                            && status.stamped_on_arrival
                            && self.live.get(&device).is_some_and(|s| !s.online()) =>
                    {
                        None
                    }
                    (m, _) => Some(m),
                };
                let Some(m) = m else {
                    return Record::Nothing;
                };
                match m {
                    NativeMessage::Location { device, fix } => Record::Position {
                        device,
                        fix,
                        received_ms,
                        maybe_stored: replayed || qos1,
                    },
                    NativeMessage::Status { device, status } => Record::Status {
                        device,
                        status,
                        received_ms,
                    },
                    NativeMessage::Event { device, event } => Record::Event {
                        device,
                        event,
                        received_ms,
                    },
                }
            })
            .collect()
    }

    /// Applies a decoded message to live state and raises the incidents it calls for.
    ///
    /// (A last will that ends a session carries the session's start, its connect time: stored
    /// so, review, which orders statuses by time, showed the device online (its newest
    /// heartbeat) for good. Its row gets the instant it took effect instead: see
    /// [`session_end_ms`].)
    fn apply_live(&mut self, m: &NativeMessage, received_ms: i64, replayed: bool) {
        let device = m.device();
        let was_online = self.live.get(device).map(|s| s.online());
        if replayed {
            self.live.apply_replayed(m, received_ms);
        } else {
            self.live.apply(m, received_ms);
        }
        let Some(state) = self.live.get(device) else {
            return;
        };
        let trigger = match m {
            NativeMessage::Event { event, .. } => {
                let name = state.incident_name(device);
                self.rules.on_event(device, name.as_deref(), event)
            }
            NativeMessage::Status { status, .. } if was_online == Some(true) && !state.online() => {
                self.rules.on_offline(
                    device,
                    state.incident_name(device).as_deref(),
                    state.kind(),
                    (status.ts_ms, state.offline_cause_ms(status)),
                    state.position(),
                )
            }
            _ => None,
        };
        if let Some(t) = trigger {
            self.incidents.raise(&t, received_ms);
        }
    }

    fn raise_stale(&mut self, device: &DeviceId, now_ms: i64) {
        let Some(s) = self.live.get(device) else {
            return;
        };
        let trigger = self.rules.on_stale(
            device,
            s.incident_name(device).as_deref(),
            s.kind(),
            s.last_device_ts(),
            now_ms,
            s.position(),
            s.clock_behind,
        );
        if let Some(t) = trigger {
            self.incidents.raise(&t, now_ms);
        }
    }

    /// Another console's incident change (or our own, echoed by the broker).
    async fn ingest_incident(&mut self, msg: Inbound) {
        self.counters.count_message(Adapter::Incidents);
        // An empty message clears a retained incident (a console forgot it, see `prune`).
        let decoded = if msg.payload.is_empty() {
            Ok(None)
        } else {
            shared::decode(&msg.topic, &msg.payload, msg.received_ms).map(Some)
        };
        let records = match decoded {
            Ok(None) => vec![Record::Nothing],
            Ok(Some(remote)) if self.incidents.implausible(&remote).is_some() => {
                let reason = self.incidents.implausible(&remote).unwrap_or_default();
                tracing::warn!(topic = %msg.topic, "incident message quarantined: {reason}");
                // Published retained, it replaced the true copy on the broker: put that back,
                // or a console started later never hears of the incident.
                if self.incidents.get(&remote.id).is_some() {
                    self.restore_retained(&remote.id, msg.received_ms);
                }
                vec![quarantined(&msg, "incident_out_of_bounds", reason)]
            }
            Ok(Some(remote))
                if !self.incidents.has_room_for(&remote)
                    && !self.incidents.is_old_news(&remote, msg.received_ms) =>
            {
                let reason = format!(
                    "a new incident beyond the {} this console holds",
                    book::MAX_HELD_INCIDENTS
                );
                tracing::warn!(topic = %msg.topic, "{reason}");
                vec![quarantined(&msg, "incident_limit", reason)]
            }
            Ok(Some(remote)) => {
                let id = remote.id.clone();
                let forgotten = self.incidents.is_outdated(&remote, msg.received_ms);
                let stale_copy = self.incidents.forgot_newer(&remote);
                let differs = self.incidents.get(&id).is_some_and(|held| *held != remote);
                let taken = self.incidents.merge(remote, msg.received_ms);
                let records = self.drain_incidents();
                if forgotten {
                    // Still retained from before (or republished by a console whose clock is
                    // behind): cleared, so that the broker does not replay it for ever.
                    if stale_copy {
                        self.answer_from_history(&id, msg.received_ms);
                    }
                    self.clear_retained(&id);
                } else if differs && !taken {
                    self.restore_retained(&id, msg.received_ms);
                }
                if records.is_empty() {
                    // Nothing new (our own echo, an older or a losing version): nothing to
                    // write, but the acknowledgement still follows the writer's commit. (The
                    // received row must not be written: at an equal version it would replace
                    // the winner in the history file.)
                    vec![Record::Nothing]
                } else {
                    records
                }
            }
            Err(e) => {
                tracing::warn!(topic = %msg.topic, reason = %e, "incident message quarantined");
                vec![quarantined(&msg, e.code(), e.to_string())]
            }
        };
        self.store_all(records, msg.ack, None);
    }

    /// Devices go stale only while the link is up, and the time it was down does not count in
    /// their silence.
    fn follow_link_for_silence(&mut self, now_ms: i64) {
        let link = self.connection.borrow();
        let (connected, connects) = (
            link.state == crate::view::LinkState::Connected,
            link.connects,
        );
        drop(link);
        // While history writing is paused, acknowledgements are held, and the broker stops
        // sending QoS 1 once its window of unacknowledged messages is full (Mosquitto: 20):
        // devices heard at QoS 1 only (statuses, events, OwnTracks phones) fell silent here
        // although they spoke, and raised "has gone silent" for each.
        self.live
            .deliveries_held(self.writer_stats.stall().map(|(since, _)| since), now_ms);
        // And once 4,096 records wait beside the writer's full queue, this task stops reading
        // from the broker altogether: nobody is heard, as with the link down.
        if !connected || self.outbox.is_full() {
            self.live.link_down(now_ms);
            self.listening_at_connect = None;
        } else if self.listening_at_connect != Some(connects) {
            if self.listening_at_connect.is_some() {
                // Dropped and back between two ticks: deaf since the last, at most.
                self.live.link_down(self.last_tick_ms);
            }
            self.live.link_up(now_ms);
            self.listening_at_connect = Some(connects);
        }
        self.last_tick_ms = now_ms;
    }

    /// After each (re)connect, publishes every incident held once more, so that changes made
    /// while the broker was unreachable, or not yet sent when the console stopped, reach it.
    /// Other consoles ignore the versions they already have.
    fn republish_after_connect(&mut self) {
        let connects = self.connection.borrow().connects;
        let connected = self.connection.borrow().state == crate::view::LinkState::Connected;
        if !connected || connects == self.published_at_connect {
            return;
        }
        self.published_at_connect = connects;
        let ids = self.incidents.snapshot().into_iter().map(|i| i.id);
        self.publisher.publish_all(ids, &self.incidents);
    }

    /// Publishes incident `id` again after a copy that loses to ours came in: every copy is
    /// published retained, so the broker now holds the loser (an older version sent by a
    /// console back from an outage, or the losing side of a tie that reached the broker last),
    /// and a console started later would take it. Every console holding the winner answers;
    /// their copies are equal, so nothing answers them. At most once per
    /// [`RESTORE_RETAINED_EVERY_MS`] per incident: a client replaying old copies in a loop
    /// does not make every console publish at its pace.
    fn restore_retained(&mut self, id: &str, now_ms: i64) {
        if self.answer_due(id, now_ms) {
            self.publisher.publish(id, &self.incidents);
        } else {
            // Answered less than 10 s ago: answered again then (not dropped, or a second
            // losing copy would stay on the broker for good).
            let due = self
                .restored_retained
                .get(id)
                .map_or(now_ms, |at| at.saturating_add(RESTORE_RETAINED_EVERY_MS));
            self.restore_later.insert(id.to_owned(), due);
        }
    }

    /// Puts back the retained copies whose answer waited for its turn.
    fn restore_due(&mut self, now_ms: i64) {
        if self.restore_later.is_empty() {
            return;
        }
        let due: Vec<String> = self
            .restore_later
            .iter()
            .filter(|(_, &at)| at <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.restore_later.remove(&id);
            if self.incidents.get(&id).is_some() && self.answer_due(&id, now_ms) {
                self.publisher.publish(&id, &self.incidents);
            }
        }
    }

    /// Whether incident `id` may be answered (its copy put back, or sent from history) now: at
    /// most once per [`RESTORE_RETAINED_EVERY_MS`]; remembers that it was.
    fn answer_due(&mut self, id: &str, now_ms: i64) -> bool {
        if self
            .restored_retained
            .get(id)
            .is_some_and(|&at| now_ms.saturating_sub(at) < RESTORE_RETAINED_EVERY_MS)
        {
            return false;
        }
        if self.restored_retained.len() >= book::MAX_HELD_INCIDENTS {
            self.restored_retained
                .retain(|_, at| now_ms.saturating_sub(*at) < RESTORE_RETAINED_EVERY_MS);
        }
        self.restored_retained.insert(id.to_owned(), now_ms);
        true
    }

    /// A will that reached this console when it was not listening, or again: dropped when the
    /// history file already ends on the device offline at or after `dropped_from` (the will's
    /// own time, or live state's newest time of the device, whose rows may still be on their
    /// way to the file); else stored after the file's newest row and after `after`. Either way,
    /// the status that opens the device's next session is stored after it.
    fn will_after_file(
        &mut self,
        device: DeviceId,
        mut status: native::Status,
        dropped_from: i64,
        after: i64,
    ) -> Option<NativeMessage> {
        match self.last_stored(&device) {
            Some(last) if last.ends_offline && last.ts_ms >= dropped_from => {
                self.note_session_end_if_offline(&device, last.ts_ms);
                None
            }
            last => {
                let newest = last.map_or(after, |l| l.ts_ms.max(after));
                status.ts_ms = status.ts_ms.max(newest.saturating_add(1));
                self.note_session_end_if_offline(&device, status.ts_ms);
                Some(NativeMessage::Status { device, status })
            }
        }
    }

    /// Notes, for a device live state holds offline, the stored time of the will that ended its
    /// session (the status that opens the next goes after it).
    fn note_session_end_if_offline(&mut self, device: &DeviceId, stored_ms: i64) {
        if self.live.get(device).is_some_and(|s| !s.online()) {
            self.live.note_session_end(device, stored_ms);
        }
    }

    /// The newest row the history file holds of `device` (a fix or a status; its committed
    /// rows, read through the kept read-only connection).
    fn last_stored(&mut self, device: &DeviceId) -> Option<LastStored> {
        let conn = self.history_reader()?;
        let read = || -> rusqlite::Result<Option<LastStored>> {
            let status: Option<(i64, bool)> = conn
                .query_row(
                    // At one time, online is the newer, as review reads them.
                    "SELECT ts_ms, online FROM statuses WHERE device_id = ?1 ORDER BY ts_ms DESC, online DESC LIMIT 1",
                    [device.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let fix: Option<i64> = conn.query_row(
                "SELECT max(ts_ms) FROM positions WHERE device_id = ?1",
                [device.as_str()],
                |r| r.get(0),
            )?;
            Ok(match (status, fix) {
                (None, None) => None,
                (Some((ts_ms, online)), fix) if fix.is_none_or(|f| f <= ts_ms) => {
                    Some(LastStored {
                        ts_ms,
                        ends_offline: !online,
                    })
                }
                (status, fix) => Some(LastStored {
                    ts_ms: fix.max(status.map(|s| s.0)).unwrap_or_default(),
                    ends_offline: false,
                }),
            })
        };
        read().unwrap_or_else(|e| {
            tracing::warn!(%device, error = %e, "could not read the history file");
            None
        })
    }

    /// The kept read-only connection to the history file, opened when first needed.
    fn history_reader(&mut self) -> Option<&rusqlite::Connection> {
        if self.history_reader.is_none() {
            match store::open_read_only(&self.db_path) {
                Ok(conn) => self.history_reader = Some(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the history file");
                    return None;
                }
            }
        }
        self.history_reader.as_ref()
    }

    /// Answers an older copy of an incident this console forgot (a console back after more
    /// than a day republishing the incidents it held, open, which were resolved meanwhile)
    /// with the last version in the history file, sent once and not retained: that console
    /// takes it (it is newer) and stops showing, and counting events on, an incident everyone
    /// else resolved. At most once per [`RESTORE_RETAINED_EVERY_MS`] per incident; the file is
    /// read only then.
    fn answer_from_history(&mut self, id: &str, now_ms: i64) {
        if !self.answer_due(id, now_ms) {
            return;
        }
        // One read-only connection, opened at the first answer and kept: a console back after
        // a day republishes hundreds, and each open (with its schema check) held the live
        // task that long.
        let Some(conn) = self.history_reader() else {
            return;
        };
        let last = store::incidents::get(conn, id);
        match last {
            Ok(Some(incident)) => {
                if !self.publisher.send_once(&incident) {
                    tracing::debug!(incident = %id, "link queue full: an old copy not answered now");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(incident = %id, error = %e, "could not read an incident's last version")
            }
        }
    }

    /// Clears the broker's retained copy of incident `id` (an empty retained message), once
    /// the book has forgotten it: else each (re)connect would replay every incident ever
    /// published.
    fn clear_retained(&mut self, id: &str) {
        debug_assert!(self.incidents.get(id).is_none());
        self.publisher.publish(id, &self.incidents);
    }

    /// The book's changes as records for the writer; publishes ours and queues all for screens.
    fn drain_incidents(&mut self) -> Vec<Record> {
        let mut records = Vec::new();
        for BookChange {
            incident,
            audit,
            publish,
        } in self.incidents.take_changes()
        {
            if publish {
                self.publisher.publish(&incident.id, &self.incidents);
            }
            self.changed_incidents
                .insert(incident.id.clone(), incident.clone());
            records.push(Record::Incident(Box::new(incident)));
            if let Some(a) = audit {
                records.push(Record::IncidentAudit(a));
            }
        }
        records
    }

    /// Queues records for the writer. One message may mean several records (an OwnTracks
    /// location is a fix and a status, an event may open an incident): its acknowledgement
    /// rides on the last, so it is released only when all are committed.
    fn store_all(
        &mut self,
        mut records: Vec<Record>,
        ack: Option<link::AckToken>,
        mut reply: Option<Outbound>,
    ) {
        // A message with nothing to store still owes its acknowledgement: `Nothing` carries it
        // through the writer, in order (without it, the broker held the message in flight for
        // the rest of the connection). With nothing owed either, nothing goes (the tick calls
        // this ten times a second with no incident change).
        if records.is_empty() {
            if ack.is_none() && reply.is_none() {
                return;
            }
            records.push(Record::Nothing);
        }
        let last = records.len().saturating_sub(1);
        // Every record of a message the broker waits to have acknowledged is kept: the ack
        // rides on the last one, but it answers for all of them (an OwnTracks location is a
        // position and a status).
        let owed = ack.is_some() || reply.is_some();
        for (i, record) in records.into_iter().enumerate() {
            let kind = match record {
                Record::Position { .. } => Some(RecordKind::Position),
                Record::Status { .. } => Some(RecordKind::Status),
                Record::Event { .. } => Some(RecordKind::Event),
                Record::Quarantine(_) => Some(RecordKind::Quarantine),
                Record::Access { .. } | Record::FaceImage { .. } => Some(RecordKind::Event),
                Record::Incident(_) | Record::IncidentAudit(_) => Some(RecordKind::Incident),
                Record::Nothing => None,
            };
            if let Some(kind) = kind {
                self.counters.count_record(kind);
            }
            let mut queued = Queued::new(record, if i == last { ack } else { None });
            if i == last {
                queued.reply = reply.take();
            }
            if self.outbox.push(queued, owed).is_err() {
                tracing::error!("history writer is gone; a record was not stored");
            }
        }
        self.flush_outbox();
    }

    fn flush_outbox(&mut self) {
        if self.outbox.flush(&self.counters).is_err() {
            tracing::error!("history writer is gone; records waiting for it were not stored");
        }
    }
}

/// What an adapter with nothing face-specific decoded.
fn generic(messages: Vec<NativeMessage>) -> FaceMessage {
    FaceMessage {
        messages,
        ..FaceMessage::default()
    }
}

/// The quarantine row for a refused message.
fn quarantined(msg: &Inbound, code: &'static str, reason: String) -> Record {
    let mut entry = QuarantineEntry::new(msg.received_ms, &msg.topic, &msg.payload, code, reason);
    entry.redelivered = msg.redelivered;
    Record::Quarantine(entry)
}

/// Asks the MQTT link to try the broker again now instead of at the end of its backoff.
#[derive(Clone)]
pub struct RetryNow(Arc<Notify>);

impl RetryNow {
    pub fn retry(&self) {
        self.0.notify_one();
    }
}
