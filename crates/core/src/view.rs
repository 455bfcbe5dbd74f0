//! What the pipeline shows to a screen: the types the UI receives, declared once here.
//!
//! These are plain serialisable Rust types with no Tauri in sight; `ts-rs` generates their
//! TypeScript twins into `ui/src/lib/backend/generated/` (committed, checked for drift in CI).
//! Epoch-millisecond fields are `i64` in Rust and `number` in TypeScript: they stay far below
//! 2^53, so no precision is lost.

use serde::Serialize;
use ts_rs::TS;

/// Whether the MQTT link is up, as an operator needs to see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum LinkState {
    /// A connection attempt is in progress.
    Connecting,
    /// Connected and subscribed.
    Connected,
    /// The last attempt failed; the next one is scheduled at `next_attempt_ms`.
    BackingOff,
    /// The pipeline is shutting down.
    Stopped,
}

/// The MQTT link's state with the details an operator needs to act on it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct ConnectionView {
    pub state: LinkState,
    /// The broker as a URL, e.g. `mqtt://127.0.0.1:1883`.
    pub broker: String,
    /// The last connection error, in words.
    pub last_error: Option<String>,
    /// When the next attempt is due (epoch ms), while backing off.
    #[ts(type = "number | null")]
    pub next_attempt_ms: Option<i64>,
    /// How many times the link has (re)connected since start.
    #[ts(type = "number")]
    pub connects: u64,
    /// Round trip of the last probe through the broker, milliseconds.
    pub probe_rtt_ms: Option<f64>,
    /// When the last probe came back (epoch ms); older than ~15 s while connected means the
    /// broker no longer delivers.
    #[ts(type = "number | null")]
    pub probe_ok_ms: Option<i64>,
    /// Subscriptions the broker refused, or granted at a lower QoS than asked, on this
    /// connection, in words: what they carry does not arrive (or may be lost).
    pub subscription_problem: Option<String>,
}

impl ConnectionView {
    /// Before the first connection attempt has an outcome.
    pub fn connecting(broker: &str) -> Self {
        Self {
            state: LinkState::Connecting,
            broker: broker.to_owned(),
            last_error: None,
            next_attempt_ms: None,
            connects: 0,
            probe_rtt_ms: None,
            probe_ok_ms: None,
            subscription_problem: None,
        }
    }
}

/// Live state of one device as drawn on the map.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct DeviceView {
    pub id: String,
    pub name: Option<String>,
    #[ts(
        type = "\"vehicle\" | \"sensor\" | \"bodycam\" | \"phone\" | \"terminal\" | \"other\" | null"
    )]
    pub kind: Option<&'static str>,
    /// True when the device declared itself simulated; the UI labels it.
    pub simulated: bool,
    pub online: bool,
    /// Online, but silent for longer than `live.stale_after_s`: its position may be old.
    pub stale: bool,
    /// Stale although it reports: every fix and status it sent for `live.stale_after_s` was
    /// older than the one shown (its clock was set back, or it replays an old backlog).
    pub clock_behind: bool,
    /// Online and reporting, but its fix is older than `live.stale_after_s` (receiver clock):
    /// its GPS lost the fix while it goes on sending statuses. Not moving, as far as anyone
    /// knows.
    pub fix_old: bool,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub heading: Option<f64>,
    /// m/s.
    pub speed: Option<f64>,
    /// `speed` (and `heading`, if the device sent none) were estimated from its recent fixes:
    /// the device sent no speed.
    pub speed_estimated: bool,
    /// %.
    pub battery: Option<f64>,
    /// dBm.
    pub signal: Option<f64>,
    /// Device timestamp of the current fix (epoch ms).
    #[ts(type = "number | null")]
    pub fix_ts_ms: Option<i64>,
    /// When Watchfloor last received anything from the device (epoch ms, receiver clock).
    #[ts(type = "number")]
    pub last_seen_ms: i64,
    /// The operator's groups (`[groups]` in the config) the device is in; may be empty. Shared
    /// with live state, so a batch clones a pointer, not the names.
    pub groups: std::sync::Arc<[String]>,
}

/// One point of a device's recent trail.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct TrailPoint {
    /// Device time (epoch ms).
    #[ts(type = "number")]
    pub ts_ms: i64,
    pub lat: f64,
    pub lon: f64,
    /// Metres per second.
    pub speed: Option<f64>,
}

/// Device totals for the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct DeviceCounts {
    pub total: u32,
    pub online: u32,
    /// Of the online devices, those gone silent.
    pub stale: u32,
}

/// One push to the UI: every device that changed since the previous batch, coalesced (a device
/// that reported ten times in the interval appears once, with its newest state).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct LiveBatch {
    /// Increases by one per batch; a gap tells the UI it missed a batch and must resync.
    #[ts(type = "number")]
    pub seq: u64,
    /// When the batch left the pipeline (epoch ms).
    #[ts(type = "number")]
    pub emitted_at_ms: i64,
    /// True when `devices` holds every device (a snapshot), not only the changed ones.
    pub full: bool,
    pub devices: Vec<DeviceView>,
    /// Devices live state forgot since the previous batch (offline or silent for longer than
    /// `[live] forget_after_days`): the screens drop them. Empty in a full batch.
    pub removed: Vec<String>,
    pub counts: DeviceCounts,
    pub connection: ConnectionView,
    /// Messages refused since start (malformed, unknown topic, bad id...), kept in quarantine.
    #[ts(type = "number")]
    pub quarantined: u64,
    pub history: HistoryHealth,
    /// How long device updates waited between MQTT receipt and their batch, over the last 10 s
    /// window (null until a window with updates has passed).
    pub push_latency: Option<LatencyView>,
    /// Incidents changed since the previous batch (all held ones in a full batch).
    pub incidents: Vec<crate::incidents::Incident>,
    /// Open incidents nobody has acknowledged yet.
    pub unacknowledged: u32,
}

/// Latency percentiles over a window, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct LatencyView {
    #[ts(type = "number")]
    pub p50_ms: u64,
    #[ts(type = "number")]
    pub p99_ms: u64,
    #[ts(type = "number")]
    pub max_ms: u64,
    #[ts(type = "number")]
    pub samples: u64,
}

/// How the history writer is doing; `stalled_since_ms` set is an alarm for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct HistoryHealth {
    /// Records waiting for the writer.
    #[ts(type = "number")]
    pub queued: u64,
    /// Records committed since start.
    #[ts(type = "number")]
    pub committed: u64,
    /// Set while commits fail (disk full, database locked): QoS 1 acknowledgements are held and
    /// ingest slows to a stop until writing resumes.
    #[ts(type = "number | null")]
    pub stalled_since_ms: Option<i64>,
    /// The failing commit's error, in words.
    pub last_error: Option<String>,
}

/// Facts about this console that do not change while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct ConsoleInfo {
    pub version: String,
    /// The broker, as a URL.
    pub broker_url: String,
    /// True when the broker is the one Watchfloor started itself.
    pub embedded_broker: bool,
    pub db_path: String,
    pub client_id: String,
    pub topic_prefix: String,
    /// Online map style; null means the bundled offline basemap.
    pub map_style_url: Option<String>,
    /// How many simulated devices this process runs (0: none).
    pub simulated_devices: u32,
    /// This console's operator, as named in the audit trail ("assign to me").
    pub operator: String,
    /// New incidents at or above this severity alert (notification, optional sound).
    #[ts(type = "\"critical\" | \"high\" | \"medium\" | \"low\" | \"info\"")]
    pub notify_min_severity: watchfloor_protocol::Severity,
    /// Whether alerts also play a sound.
    pub sound: bool,
    /// The broker's TLS certificate is not verified (`mqtt.insecure_skip_verify`): the console
    /// shows a warning for as long as it runs.
    pub tls_unverified: bool,
    /// Why the broker secrets could not be read (the OS keyring unreachable), or null.
    pub credential_problem: Option<String>,
    /// The operator's device groups (`[groups]` in the config), in display order.
    pub device_groups: Vec<String>,
    /// How far back the selected device's trail reaches (`live.trail_minutes`), in minutes.
    pub trail_minutes: u32,
    /// The zone of the face terminals' calendar days (`[face] time_zone`, else this
    /// workstation's), an IANA name: the attendance panel's "today" is that zone's.
    pub terminal_zone: String,
}

/// One stored device event, for the device panel.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct EventView {
    pub event_id: String,
    #[ts(type = "number")]
    pub ts_ms: i64,
    pub event_type: String,
    pub severity: String,
    pub message: Option<String>,
}

/// Why a command from the UI failed: `code` is stable and machine-readable (the UI matches on
/// it, never on the words), `message` is for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct CommandError {
    pub code: &'static str,
    pub message: String,
}

impl CommandError {
    pub fn new(code: &'static str, message: impl ToString) -> Self {
        Self {
            code,
            message: message.to_string(),
        }
    }
}
