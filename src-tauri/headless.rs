//! The commands that run without a window: `record` (the pipeline, logging what it sees) and
//! `sim` (simulated devices against a broker), both stopped by SIGINT or SIGTERM; and `export`
//! (history rows to stdout).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;
use tracing_subscriber::EnvFilter;
use watchfloor_core::metrics::{prometheus_text, Metrics};
use watchfloor_core::pipeline::LiveFeed;
use watchfloor_core::store::{self, export::ExportError, export::ExportQuery};
use watchfloor_core::view::DeviceView;
use watchfloor_core::{Pipeline, Settings};
use watchfloor_sim::{SimConfig, Simulator};

use crate::cli::{RecordArgs, SimArgs};

/// rumqttd logs every client disconnect as an error, which would bury real problems; the
/// embedded broker's failures that matter (it cannot bind, it stops) are reported by
/// `watchfloor_core::broker` instead.
const DEFAULT_LOG_FILTER: &str = "info,rumqttd=off,rumqttc=warn,tao=warn,wry=warn";

/// Logs to stderr; `RUST_LOG` overrides the default level (info, brokers' internals at warn).
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The simulator's settings, pointed at `broker_url` (the pipeline's, or the command line's).
pub fn sim_config(
    settings: &Settings,
    broker_url: &watchfloor_core::settings::BrokerUrl,
    devices: u32,
    seed: u64,
) -> SimConfig {
    SimConfig {
        broker_host: broker_url.host.clone(),
        broker_port: broker_url.port,
        transport: watchfloor_core::link::client_transport(broker_url, &settings.mqtt),
        credentials: settings.mqtt.credentials.clone(),
        topic_prefix: settings.topic_prefix.clone(),
        devices,
        interval: settings.sim.interval,
        center: settings.sim.center,
        seed,
    }
}

/// Starts the in-process simulator of `--simulate N` against the pipeline's broker.
pub fn start_simulator(
    settings: &Settings,
    pipeline: &Pipeline,
) -> anyhow::Result<Option<Simulator>> {
    if settings.sim.devices == 0 {
        return Ok(None);
    }
    Ok(Some(Simulator::spawn(sim_config(
        settings,
        pipeline.broker(),
        settings.sim.devices,
        1,
    ))))
}

/// Stops the in-process simulator and waits (up to 3 s) until its devices' goodbyes (retained
/// offline statuses) have come back through the broker, so the history records them.
pub async fn stop_simulator(sim: Simulator, feed: &LiveFeed) {
    sim.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match feed.snapshot().await {
            Some(s) if s.devices.iter().any(|d| d.simulated && d.online) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => return,
        }
    }
    tracing::warn!("some simulated devices' offline statuses did not arrive before shutdown");
}

/// Starts employee sync beside the console when `[face]` asks for it, and says so. A sync that
/// cannot start is logged as an error and its reason returned; the console runs without it.
pub fn start_sync(
    settings: &Settings,
    pipeline: &Pipeline,
) -> Result<Option<watchfloor_core::facesync::SyncHandle>, String> {
    match watchfloor_core::facesync::start_for_console(settings, pipeline) {
        Ok(sync) => {
            if let Some(s) = &sync {
                tracing::info!(photos = %s.photo_addr, "employee sync to face terminals running");
            }
            Ok(sync)
        }
        // Recording matters more than the sync: the console goes on without it, says so in
        // the log, and the terminals panel says why.
        Err(e) => {
            let why = format!("{e:#}");
            tracing::error!(error = %why, "employee sync not started; recording goes on without it");
            Err(why)
        }
    }
}

/// `watchfloor record`.
pub async fn record(settings: Settings, args: RecordArgs) -> anyhow::Result<()> {
    let mut stop = StopSignal::install()?;
    // The metrics port is taken before anything is started: one in use stopped the recorder
    // after it had opened the history file and started its link, without a clean stop.
    let metrics_port = match args.metrics {
        Some(addr) => Some(
            tiny_http::Server::http(addr)
                .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?,
        ),
        None => None,
    };
    let pipeline = Pipeline::start(&settings).await?;
    let info = pipeline.info();
    tracing::info!(
        broker = %info.broker_url,
        embedded = info.embedded_broker,
        db = %info.db_path,
        client_id = %info.client_id,
        "recording (stop with Ctrl-C or SIGTERM)"
    );
    let metrics_server = match metrics_port {
        Some(server) => Some(MetricsServer::start(server, pipeline.metrics())?),
        None => None,
    };
    let simulator = start_simulator(&settings, &pipeline)?;
    let sync = start_sync(&settings, &pipeline).ok().flatten();
    let logger = tokio::spawn(log_live_state(pipeline.feed()));

    stop.wait().await?;
    tracing::info!("stopping: flushing history");
    stop.exit_on_second();
    if let Some(sync) = sync {
        sync.stop().await;
    }
    if let Some(sim) = simulator {
        stop_simulator(sim, &pipeline.feed()).await;
    }
    logger.abort();
    drop(metrics_server);
    let counters = pipeline.counters();
    let stats = pipeline.writer_stats();
    pipeline.shutdown().await;
    tracing::info!(
        received = counters.received.load(Ordering::Relaxed),
        quarantined = watchfloor_core::metrics::quarantined(&counters, &stats),
        stored = stats.committed.load(Ordering::Relaxed),
        failed = stats.failed.load(Ordering::Relaxed),
        "history flushed; stopped"
    );
    Ok(())
}

/// `watchfloor sim`.
pub async fn sim(settings: Settings, args: SimArgs) -> anyhow::Result<()> {
    let mut stop = StopSignal::install()?;
    let url = settings.broker_url();
    tracing::info!(broker = %url, devices = args.devices, "starting SIMULATED devices (stop with Ctrl-C or SIGTERM)");
    let simulator = Simulator::spawn(sim_config(&settings, &url, args.devices, args.seed));
    let terminals_stop = tokio_util::sync::CancellationToken::new();
    let terminals = crate::sync::spawn_terminals(&settings, &args, &terminals_stop);
    if !terminals.is_empty() {
        tracing::info!(
            terminals = terminals.len(),
            "starting SIMULATED face terminals"
        );
    }
    stop.wait().await?;
    terminals_stop.cancel();
    for t in terminals {
        let _ = t.await;
    }
    simulator.shutdown().await;
    Ok(())
}

/// SIGINT, SIGTERM and SIGHUP (a closed terminal, a session logging out), caught from the
/// moment this is created: a command installs it before it starts anything, so a stop request
/// that comes early (a supervisor, a test) is never fatal. The desktop console installs it too,
/// so a `kill` or a logout flushes the history as closing the window does. SIGHUP is left alone
/// when the process was started ignoring it (`nohup watchfloor record &` keeps running after
/// the user logs out).
pub(crate) struct StopSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

/// Stop signals this close together are one request (see [`StopSignal::exit_on_second`]).
const SIGNAL_BURST: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether SIGHUP is ignored now (set so by `nohup`, before we install anything).
#[cfg(unix)]
fn hangup_ignored() -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`, a
    // zeroed struct of the right type.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

impl StopSignal {
    /// Must be called inside the tokio runtime.
    pub(crate) fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let hup = if hangup_ignored() {
                None
            } else {
                Some(signal(SignalKind::hangup())?)
            };
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
                hup,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next stop signal.
    pub(crate) async fn wait(&mut self) -> anyhow::Result<()> {
        #[cfg(unix)]
        {
            let hup = async {
                match self.hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.int.recv() => {}
                _ = hup => {}
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await?;
        Ok(())
    }

    /// After the first stop signal, while the history is being flushed: a second one ends the
    /// process at once (an operator who cannot wait for a stuck disk), saying what it skips.
    /// Signals within [`SIGNAL_BURST`] of the first are one request: a logout sends SIGTERM and
    /// SIGHUP together, a closing terminal SIGHUP twice.
    pub(crate) fn exit_on_second(mut self) {
        let first = std::time::Instant::now();
        tokio::spawn(async move {
            while self.wait().await.is_ok() {
                if first.elapsed() >= SIGNAL_BURST {
                    // Not eprintln!, which panics when stderr is gone (the terminal that
                    // started us closed: the first signal was its SIGHUP), and the panic would
                    // end this task before the exit, leaving every later signal unheard.
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "watchfloor: a second stop signal: exiting without waiting for the history to be flushed"
                    );
                    std::process::exit(1);
                }
            }
        });
    }
}

/// `watchfloor export`: streams rows to stdout. Exit 0 (also when the reader stops early, as
/// `| head` does), 1 when the file cannot be read, 2 for a query that means nothing.
pub fn export(db: &std::path::Path, query: &ExportQuery) -> ExitCode {
    let conn = match store::open_read_only(db) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("watchfloor: {e}");
            return ExitCode::from(1);
        }
    };
    match store::export::export(&conn, query, std::io::stdout().lock()) {
        Ok(rows) => {
            tracing::debug!(rows, "export finished");
            if rows == 0 {
                if let Some(meant) = query
                    .device
                    .as_ref()
                    .and_then(|d| spelled_otherwise(&conn, d))
                {
                    eprintln!(
                        "watchfloor: no rows for device {}; the file holds {meant}",
                        query.device.as_ref().map_or("", |d| d.as_str())
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e @ ExportError::Unsupported(_)) => {
            eprintln!("watchfloor: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("watchfloor: {e}");
            ExitCode::from(1)
        }
    }
}

/// A device the file holds under the id the console shows for `device` written bare: a face
/// terminal is `face:T-07` (`--device T-07` found nothing, without a word).
fn spelled_otherwise(
    conn: &rusqlite::Connection,
    device: &watchfloor_protocol::DeviceId,
) -> Option<String> {
    let bare = device.as_str();
    if bare.contains(':') {
        return None;
    }
    let meant = format!("{}:{bare}", watchfloor_protocol::face::NAMESPACE);
    ["statuses", "positions", "events"]
        .iter()
        .find_map(|table| {
            conn.query_row(
                &format!("SELECT 1 FROM {table} WHERE device_id = ?1 LIMIT 1"),
                [&meant],
                |_| Ok(()),
            )
            .ok()
            .map(|()| meant.clone())
        })
}

/// Logs devices as they appear and change online state, and a summary every 10 seconds.
async fn log_live_state(feed: LiveFeed) {
    // Subscribed before the snapshot, so a device that arrived before this task started (a
    // retained status delivered at connect) is in the snapshot, and one that arrives after is
    // in a batch: none falls between the two.
    let mut rx = feed.subscribe();
    let mut online: HashMap<String, bool> = HashMap::new();
    if let Some(snapshot) = feed.snapshot().await {
        log_devices(&snapshot.devices, &mut online);
    }
    let mut last_summary = Instant::now();
    loop {
        let batch = match rx.recv().await {
            Ok(batch) => batch,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "log fell behind live state");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        log_devices(&batch.devices, &mut online);
        if last_summary.elapsed() >= Duration::from_secs(10) {
            last_summary = Instant::now();
            tracing::info!(
                devices = batch.counts.total,
                online = batch.counts.online,
                stale = batch.counts.stale,
                quarantined = batch.quarantined,
                link = ?batch.connection.state,
                probe_rtt_ms = ?batch.connection.probe_rtt_ms,
                push_p50_ms = batch.push_latency.map(|l| l.p50_ms),
                push_p99_ms = batch.push_latency.map(|l| l.p99_ms),
                committed = batch.history.committed,
                "live state"
            );
        }
    }
}

/// Logs each device the first time it is seen, and each change of its online state.
fn log_devices(devices: &[DeviceView], online: &mut HashMap<String, bool>) {
    for d in devices {
        match online.insert(d.id.clone(), d.online) {
            None => tracing::info!(
                device = %d.id,
                kind = d.kind.unwrap_or("unknown"),
                online = d.online,
                simulated = d.simulated,
                lat = ?d.lat,
                lon = ?d.lon,
                "device seen"
            ),
            Some(was) if was != d.online => {
                tracing::info!(device = %d.id, online = d.online, "device went {}", if d.online { "online" } else { "offline" })
            }
            Some(_) => {}
        }
    }
}

/// `record --metrics ADDR`: a small HTTP server (tiny_http, on its own thread) that answers
/// `GET /metrics` with the pipeline's metrics in Prometheus text format, and 404 otherwise.
struct MetricsServer {
    server: std::sync::Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    fn start(server: tiny_http::Server, metrics: Metrics) -> anyhow::Result<Self> {
        let addr = server.server_addr();
        let server = std::sync::Arc::new(server);
        let serving = std::sync::Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    // `/metrics?...` too: scrapers may add parameters.
                    let path = request.url().split('?').next().unwrap_or_default();
                    let response =
                        if request.method() == &tiny_http::Method::Get && path == "/metrics" {
                            let header = tiny_http::Header::from_bytes(
                                "Content-Type",
                                "text/plain; version=0.0.4; charset=utf-8",
                            )
                            .expect("a valid static header");
                            tiny_http::Response::from_string(prometheus_text(&metrics.snapshot()))
                                .with_header(header)
                        } else {
                            tiny_http::Response::from_string("not found: try /metrics\n")
                                .with_status_code(404)
                        };
                    if let Err(e) = request.respond(response) {
                        tracing::debug!(error = %e, "metrics client went away");
                    }
                }
            })?;
        tracing::info!(%addr, "serving metrics at /metrics");
        Ok(Self {
            server,
            thread: Some(thread),
        })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
