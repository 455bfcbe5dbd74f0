//! One validated [`Settings`] built from the config file, then command-line flags on top.
//!
//! Raw input (TOML and flags) becomes validated settings exactly once, here; nothing else in
//! Watchfloor parses a URL or a duration. Every refusal is a [`SettingsError`] whose one-line
//! message names the offending value and where it came from, so the binary can print it and exit
//! with status 2.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use watchfloor_protocol::Severity;

use crate::groups::DeviceGroups;
use crate::incidents::IncidentRules;
use crate::store::retention::Retention;

/// Port the embedded broker listens on when none is configured (the MQTT standard port).
pub const DEFAULT_EMBEDDED_PORT: u16 = 1883;
/// Default native topic prefix.
pub const DEFAULT_TOPIC_PREFIX: &str = "devices";
/// MQTT keep-alive, seconds: a dead connection is noticed within 1.5 times this.
pub const DEFAULT_KEEP_ALIVE_S: u64 = 15;
/// The face terminals' default topic base.
pub const DEFAULT_FACE_BASE: &str = "mqtt/face";
/// The OwnTracks app's default `pubTopicBase`.
pub const DEFAULT_OWNTRACKS_BASE: &str = "owntracks";
/// Default interval between UI batches. Ten a second: an update waits 50 ms on average for its
/// batch, and a 10,000-device fleet costs the webview ten batches a second, not 10,000 messages.
/// Measured in the real app (docs/BENCHMARKS.md, "Screen"): 50 ms batches were slower to reach
/// the screen than 100 ms ones on two cores, since the map's worker cannot redraw faster.
pub const DEFAULT_BATCH_INTERVAL_MS: u64 = 100;
/// Default simulator reporting interval.
pub const DEFAULT_SIM_INTERVAL_MS: u64 = 1000;
/// An online device silent this long (seconds) is shown stale.
pub const DEFAULT_STALE_AFTER_S: u64 = 120;
/// Devices live state holds at most (`[live] max_devices`): five times the fleet the console
/// is benchmarked with. A message from a device beyond it is quarantined (`device_limit`).
pub const DEFAULT_MAX_DEVICES: u32 = 50_000;
/// Days an offline or silent device stays in live state after it was last heard: a console
/// running for months beside a fleet whose phones come and go would otherwise fill
/// `max_devices` with devices gone for good, and then refuse new ones.
pub const DEFAULT_FORGET_AFTER_DAYS: u64 = 7;
/// Minutes of recent track kept per device for the map.
pub const DEFAULT_TRAIL_MINUTES: u64 = 10;
/// Default centre of the simulated fleet (Rotterdam), chosen for its mix of port, ring roads and
/// city grid.
pub const DEFAULT_SIM_CENTER: (f64, f64) = (51.9225, 4.47917);

/// A refused setting. The message is one line and names the value.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The config file is not valid TOML of the documented shape.
    #[error("config file {path}: {message}")]
    ParseConfig { path: PathBuf, message: String },
    /// A single value is invalid.
    #[error("{origin} {value:?}: {reason}")]
    Invalid {
        origin: String,
        value: String,
        reason: String,
    },
    /// No data directory could be determined for the default database path.
    #[error("no home directory found for the default database path; pass --db PATH")]
    NoDataDir,
}

/// The largest `[history] max_size_mb`: 1 PiB, far beyond any disk, and its bytes fit an u64
/// (a value near 2^44 MiB wrapped to a cap of 0 bytes, which would prune every position).
const MAX_HISTORY_SIZE_MB: u64 = 1 << 30;

fn invalid(origin: &str, value: impl ToString, reason: impl ToString) -> SettingsError {
    SettingsError::Invalid {
        origin: origin.to_owned(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// The config file (TOML). Every key is optional; see README "Configuration" for defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// External broker URL; absent means "start the embedded broker".
    pub broker: Option<String>,
    pub db: Option<PathBuf>,
    pub topic_prefix: Option<String>,
    pub client_id: Option<String>,
    #[serde(default)]
    pub embedded_broker: EmbeddedBrokerFile,
    #[serde(default)]
    pub ui: UiFile,
    #[serde(default)]
    pub live: LiveFile,
    #[serde(default)]
    pub owntracks: OwnTracksFile,
    #[serde(default)]
    pub mqtt: MqttFile,
    #[serde(default)]
    pub face: FaceFile,
    #[serde(default)]
    pub history: HistoryFile,
    #[serde(default)]
    pub simulator: SimulatorFile,
    #[serde(default)]
    pub incidents: IncidentsFile,
    /// `[groups]`: group name -> device-id patterns (see [`crate::groups`]).
    #[serde(default)]
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
}

/// `[incidents]`: who this console's operator is, what opens an incident, what alerts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentsFile {
    /// The name written in the audit trail for this console's actions. Default: the login name.
    pub operator: Option<String>,
    /// Device events at or above this severity open incidents. Default "high".
    pub min_event_severity: Option<String>,
    /// Device kinds whose going offline opens an incident.
    pub offline_kinds: Option<Vec<String>>,
    /// Device kinds whose falling silent opens an incident.
    pub stale_kinds: Option<Vec<String>>,
    /// Quarantined messages within a minute that open a "quarantine flood" incident; 0 is off.
    pub quarantine_flood_per_min: Option<u32>,
    /// New incidents at or above this severity raise a desktop notification. Default "high".
    pub notify_min_severity: Option<String>,
    /// Also play a sound for them. Default false.
    pub sound: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedBrokerFile {
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiFile {
    pub batch_interval_ms: Option<u64>,
    pub map_style_url: Option<String>,
}

/// A secret read from the config file: deserialised like a string, never printed.
#[derive(Default, Deserialize, Clone, PartialEq, Eq)]
#[serde(transparent)]
pub struct Plaintext(pub String);

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// How to authenticate to an external broker. The password belongs in the OS keyring
/// (`watchfloor credentials set-password`) or, for services without one, the
/// `WATCHFLOOR_MQTT_PASSWORD` environment variable; this file takes one only when
/// `allow_plaintext_password` says so.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttFile {
    pub username: Option<String>,
    /// Refused unless `allow_plaintext_password = true`.
    pub password: Option<Plaintext>,
    pub allow_plaintext_password: Option<bool>,
    /// `host:port` of the one broker whose certificate is not verified (a test bench, a broker
    /// with a self-signed certificate nobody can hand over). Must name the broker in use.
    pub insecure_skip_verify: Option<String>,
    /// PEM file of the CA(s) that signed the broker's certificate (mqtts:// only). Absent: the
    /// system's trusted roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for brokers that require client certificates. The key
    /// may instead be imported into the OS keyring (`watchfloor credentials import-key`); a key
    /// file must be readable by its owner only.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub keep_alive_s: Option<u64>,
    /// "3.1.1" (default) or "5".
    pub version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryFile {
    /// Days of history kept; 0 keeps everything.
    pub retention_days: Option<u64>,
    /// Cap on the rows' size in MiB (refused messages, then the oldest history go first); 0 is
    /// no cap.
    pub max_size_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaceFile {
    pub enabled: Option<bool>,
    pub base_topic: Option<String>,
    /// IANA zone of the terminals' clocks (they send local time with no offset).
    pub time_zone: Option<String>,
    /// IP:PORT of the photo endpoint for employee sync. Default 127.0.0.1:0 (this machine only).
    pub photo_listen: Option<String>,
    /// URL terminals reach the photo endpoint at, e.g. http://10.0.0.2:8095.
    pub photo_url: Option<String>,
    /// Most persons per EditPersonsNew batch, 1..=1000. Default 1000.
    pub sync_batch: Option<usize>,
    /// Terminals whose clocks are set to another zone than `time_zone`: `{ T100 = "Asia/Dubai" }`.
    pub terminal_zones: Option<std::collections::BTreeMap<String, String>>,
    /// Answer RecPush / StrSnapPush with PushAck once stored. Default true.
    pub push_ack: Option<bool>,
    /// The console runs employee sync while it runs. Default true.
    pub sync: Option<bool>,
    /// Seconds a person refused for a passing reason waits before it is sent again (then 4
    /// times as long). Default 60.
    pub sync_retry_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnTracksFile {
    pub enabled: Option<bool>,
    pub base_topic: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveFile {
    pub stale_after_s: Option<u64>,
    pub trail_minutes: Option<u64>,
    pub max_devices: Option<u32>,
    /// Days a device that is offline or silent stays in live state (the map, the list) after
    /// it was last heard; 0 keeps it until the console restarts. Default 7.
    pub forget_after_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorFile {
    pub devices: Option<u32>,
    pub interval_ms: Option<u64>,
    pub center: Option<[f64; 2]>,
}

impl ConfigFile {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, SettingsError> {
        toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| {
                let before = text.get(..s.start).unwrap_or(text);
                before.bytes().filter(|&b| b == b'\n').count() + 1
            });
            let message = e.message().replace('\n', " ");
            SettingsError::ParseConfig {
                path: path.to_owned(),
                message: match line {
                    Some(line) => format!("line {line}: {message}"),
                    None => message,
                },
            }
        })
    }
}

/// Values given on the command line; each overrides the config file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub broker: Option<String>,
    pub db: Option<PathBuf>,
    pub topic_prefix: Option<String>,
    pub client_id: Option<String>,
    pub listen: Option<String>,
    pub simulate: Option<u32>,
    pub operator: Option<String>,
}

/// A parsed `mqtt://` or `mqtts://` broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]` (8883).
    pub fn parse(raw: &str, origin: &str) -> Result<Self, SettingsError> {
        // A password in the URL is never repeated in a message (they end up in logs).
        let shown = without_userinfo(raw);
        let raw_shown = shown.as_str();
        let url = Url::parse(raw).map_err(|e| {
            invalid(
                origin,
                raw_shown,
                format!("not a URL ({e}); expected mqtt://host:port"),
            )
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                origin,
                raw_shown,
                "a broker URL carries no user or password: set [mqtt] username, and the \
                 password with `watchfloor credentials set-password`",
            ));
        }
        let raw = raw_shown;
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => {
                return Err(invalid(
                    origin,
                    raw,
                    format!("scheme {other:?} is not mqtt or mqtts"),
                ))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid(origin, raw, "no host; expected mqtt://host:port"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !url.path().is_empty() && url.path() != "/" {
            return Err(invalid(origin, raw, "a broker URL has no path"));
        }
        // `?tls=1` and the like were ignored without a word (a plain connection where TLS
        // was meant): TLS is the scheme (mqtts://), the rest is the config file's.
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                origin,
                raw,
                "a broker URL has no ?query or #fragment: use mqtts:// for TLS, and [mqtt] in the config for the rest",
            ));
        }
        let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
        if port == 0 {
            return Err(invalid(origin, raw, "port 0 is no broker's port"));
        }
        Ok(Self { host, port, tls })
    }
}

/// `raw` with anything before its last `@` (after the scheme, when it has one) replaced by
/// `***`. A broker URL has no path, so an `@` anywhere ends user information; a password may
/// hold `/` or `:`.
fn without_userinfo(raw: &str) -> String {
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), raw),
    };
    match rest.rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => raw.to_owned(),
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Which broker the pipeline talks to.
#[derive(Debug, Clone, PartialEq)]
pub enum BrokerTarget {
    /// Start the embedded broker on `listen` and connect to it.
    Embedded { listen: SocketAddr },
    /// Connect to an external broker.
    External(BrokerUrl),
}

/// Simulator settings shared by `--simulate` and `watchfloor sim`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSettings {
    pub devices: u32,
    pub interval: Duration,
    pub center: (f64, f64),
}

/// Everything the pipeline needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub broker: BrokerTarget,
    pub db_path: PathBuf,
    pub topic_prefix: String,
    /// Explicit MQTT client id; `None` means derive one (see `link`).
    pub client_id: Option<String>,
    pub batch_interval: Duration,
    /// Online map style; `None` means the bundled offline basemap only.
    pub map_style_url: Option<String>,
    pub sim: SimSettings,
    pub live: LiveSettings,
    /// The OwnTracks base topic (the phones' `pubTopicBase`), or `None` when OwnTracks is off.
    pub owntracks_base: Option<String>,
    pub mqtt: MqttSettings,
    /// Face terminals, or `None` when that adapter is off.
    pub face: Option<FaceSettings>,
    pub retention: Retention,
    pub incidents: IncidentSettings,
    /// Operator-named device groups (`[groups]`).
    pub device_groups: DeviceGroups,
}

/// How this console handles incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentSettings {
    /// Written in the audit trail for this console's actions.
    pub operator: String,
    pub rules: IncidentRules,
    /// Least severity that raises a desktop notification.
    pub notify_min_severity: Severity,
    pub sound: bool,
}

/// Where face terminals publish and what their clocks mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceSettings {
    pub base_topic: String,
    pub zone: chrono_tz::Tz,
    /// Where the photo endpoint listens (terminals download `picURI`s from it).
    pub photo_listen: std::net::SocketAddr,
    /// The base URL terminals reach the photo endpoint at; `None`: the bound address.
    pub photo_url: Option<String>,
    /// Most persons per `EditPersonsNew` batch.
    pub sync_batch: usize,
    /// Terminals (by facesluiceId) whose clocks are in another zone than `zone`.
    pub terminal_zones: std::collections::BTreeMap<String, chrono_tz::Tz>,
    /// Answer records with PushAck once they are stored.
    pub push_ack: bool,
    /// The console (not only `watchfloor sync`) runs employee sync.
    pub sync: bool,
    /// How long a person refused for a passing reason (photo download, busy) waits before
    /// its second attempt (4 times as long before its third).
    pub sync_retry_after: std::time::Duration,
}

/// Where the broker password came from (shown at start and in the console, never the value).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PasswordSource {
    /// No username, or a username without a password.
    #[default]
    None,
    /// `WATCHFLOOR_MQTT_PASSWORD`.
    Environment,
    /// The OS keyring.
    Keyring,
    /// The config file (`allow_plaintext_password = true`).
    ConfigFile,
    /// Not looked up yet: [`Settings::with_secrets`] does.
    Pending,
    /// The keyring could not be read; the username goes without a password.
    KeyringUnavailable(String),
}

/// Connection details for the MQTT link.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct MqttSettings {
    /// Username and password.
    pub credentials: Option<(String, String)>,
    pub password_source: PasswordSource,
    /// The client key is in the OS keyring: [`Settings::with_secrets`] reads it.
    pub client_key_in_keyring: bool,
    /// The broker's certificate is not verified (`insecure_skip_verify`).
    pub skip_verify: bool,
    /// The certificate files `[mqtt]` names; [`Settings::with_secrets`] reads them into
    /// `ca_pem` and `client_auth`.
    pub files: CertificateFiles,
    /// PEM bytes of the CA to trust instead of the system roots (mqtts:// only).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM bytes of the client certificate and key.
    pub client_auth: Option<(Vec<u8>, Vec<u8>)>,
    pub keep_alive: Duration,
    pub version: MqttVersion,
}

/// The files of `[mqtt]` `ca_file`, `client_cert` and `client_key`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertificateFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// The MQTT protocol version spoken to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MqttVersion {
    #[default]
    V311,
    V5,
}

impl std::fmt::Debug for MqttSettings {
    // The password never reaches a log line, even at debug level.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("username", &self.credentials.as_ref().map(|c| &c.0))
            .field("password", &self.credentials.as_ref().map(|_| "<hidden>"))
            .field("password_source", &self.password_source)
            .field("skip_verify", &self.skip_verify)
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("client_auth", &self.client_auth.is_some())
            .field("keep_alive", &self.keep_alive)
            .field("version", &self.version)
            .finish()
    }
}

/// How live state ages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSettings {
    /// An online device silent for this long is shown stale.
    pub stale_after: Duration,
    /// How much recent track each device keeps in memory for the map.
    pub trail: Duration,
    /// Most devices held; a new device beyond them is refused (its messages quarantined), so
    /// a flood of made-up ids cannot grow the console's memory without bound.
    pub max_devices: usize,
    /// A device offline or silent this long after it was last heard leaves live state (it
    /// stays in the history file); `None`: never.
    pub forget_after: Option<Duration>,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(DEFAULT_STALE_AFTER_S),
            trail: Duration::from_secs(DEFAULT_TRAIL_MINUTES * 60),
            max_devices: DEFAULT_MAX_DEVICES as usize,
            forget_after: Some(Duration::from_secs(DEFAULT_FORGET_AFTER_DAYS * 86_400)),
        }
    }
}

impl Settings {
    /// Merges the config file and the flags (flags win) and validates the result.
    pub fn resolve(file: ConfigFile, flags: Overrides) -> Result<Self, SettingsError> {
        let broker = match flags
            .broker
            .as_deref()
            .map(|b| (b, "--broker"))
            .or(file.broker.as_deref().map(|b| (b, "broker")))
        {
            Some((raw, origin)) => BrokerTarget::External(BrokerUrl::parse(raw, origin)?),
            None => {
                let (raw, origin) = match (&flags.listen, &file.embedded_broker.listen) {
                    (Some(l), _) => (l.clone(), "--listen"),
                    (None, Some(l)) => (l.clone(), "embedded_broker.listen"),
                    (None, None) => (
                        format!("{}:{DEFAULT_EMBEDDED_PORT}", Ipv4Addr::LOCALHOST),
                        "embedded_broker.listen",
                    ),
                };
                let listen = raw.parse::<SocketAddr>().map_err(|_| {
                    invalid(origin, &raw, "expected IP:PORT, for example 127.0.0.1:1883")
                })?;
                BrokerTarget::Embedded { listen }
            }
        };

        let db_path = match flags.db.or(file.db) {
            Some(p) if p.as_os_str().is_empty() => return Err(invalid("--db", "", "empty path")),
            Some(p) => p,
            None => default_db_path()?,
        };

        let topic_prefix = flags
            .topic_prefix
            .or(file.topic_prefix)
            .unwrap_or_else(|| DEFAULT_TOPIC_PREFIX.to_owned());
        validate_topic_prefix("topic_prefix", &topic_prefix)?;

        let client_id = flags.client_id.or(file.client_id);
        if let Some(id) = &client_id {
            if id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(invalid(
                    "client_id",
                    id,
                    "use 1 to 64 letters, digits, '-', '_' or '.'",
                ));
            }
        }

        let batch_ms = file
            .ui
            .batch_interval_ms
            .unwrap_or(DEFAULT_BATCH_INTERVAL_MS);
        if !(20..=5000).contains(&batch_ms) {
            return Err(invalid(
                "ui.batch_interval_ms",
                batch_ms,
                "must be between 20 and 5000",
            ));
        }

        let map_style_url = file.ui.map_style_url;
        if let Some(url) = &map_style_url {
            match Url::parse(url) {
                Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
                _ => {
                    return Err(invalid(
                        "ui.map_style_url",
                        url,
                        "must be an http(s) URL of a MapLibre style",
                    ))
                }
            }
        }

        let sim_interval = file
            .simulator
            .interval_ms
            .unwrap_or(DEFAULT_SIM_INTERVAL_MS);
        if !(50..=3_600_000).contains(&sim_interval) {
            return Err(invalid(
                "simulator.interval_ms",
                sim_interval,
                "must be between 50 and 3600000",
            ));
        }
        let center = match file.simulator.center {
            Some([lat, lon])
                if (-85.0..=85.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
            {
                (lat, lon)
            }
            Some([lat, lon]) => {
                return Err(invalid(
                    "simulator.center",
                    format!("[{lat}, {lon}]"),
                    "expected [lat, lon] with |lat| <= 85",
                ))
            }
            None => DEFAULT_SIM_CENTER,
        };
        let devices = flags.simulate.or(file.simulator.devices).unwrap_or(0);
        // Where the number came from, for the error that refuses it.
        let devices_from = if flags.simulate.is_some() {
            "--simulate"
        } else {
            "simulator.devices"
        };
        if devices > 100_000 {
            return Err(invalid(
                devices_from,
                devices,
                "at most 100000 simulated devices",
            ));
        }

        let stale_after_s = file.live.stale_after_s.unwrap_or(DEFAULT_STALE_AFTER_S);
        if !(5..=86_400).contains(&stale_after_s) {
            return Err(invalid(
                "live.stale_after_s",
                stale_after_s,
                "must be between 5 and 86400",
            ));
        }
        let trail_minutes = file.live.trail_minutes.unwrap_or(DEFAULT_TRAIL_MINUTES);
        if trail_minutes > 120 {
            return Err(invalid(
                "live.trail_minutes",
                trail_minutes,
                "must be between 0 and 120",
            ));
        }

        let forget_after_days = file
            .live
            .forget_after_days
            .unwrap_or(DEFAULT_FORGET_AFTER_DAYS);
        if forget_after_days > 3650 {
            return Err(invalid(
                "live.forget_after_days",
                forget_after_days,
                "must be between 0 (never) and 3650",
            ));
        }
        let max_devices = file.live.max_devices.unwrap_or(DEFAULT_MAX_DEVICES);
        if !(1..=1_000_000).contains(&max_devices) {
            return Err(invalid(
                "live.max_devices",
                max_devices,
                "must be between 1 and 1000000",
            ));
        }
        if devices > max_devices {
            return Err(invalid(
                devices_from,
                devices,
                format!("more than [live] max_devices ({max_devices}): raise it in the config"),
            ));
        }

        let owntracks_base = if file.owntracks.enabled.unwrap_or(true) {
            let base = file
                .owntracks
                .base_topic
                .unwrap_or_else(|| DEFAULT_OWNTRACKS_BASE.to_owned());
            validate_topic_prefix("owntracks.base_topic", &base)?;
            // The app's own setting is a pattern (`owntracks/%u/%d`): copied whole, it would
            // subscribe to topics no phone publishes on, and nothing would say so.
            if base.contains('%') {
                return Err(invalid(
                    "owntracks.base_topic",
                    &base,
                    "is the part of the phones' topic before /%u/%d (for the app's owntracks/%u/%d: owntracks)",
                ));
            }
            if captures(&base, &topic_prefix) {
                return Err(invalid(
                    "owntracks.base_topic",
                    &base,
                    "must differ from topic_prefix, and topic_prefix may not lie inside it (native topics would go to the OwnTracks decoder)",
                ));
            }
            Some(base)
        } else {
            None
        };

        let mqtt = mqtt_settings(file.mqtt, &broker, password_from_env())?;
        let face = face_settings(file.face, &topic_prefix, owntracks_base.as_deref())?;
        let days = file.history.retention_days.unwrap_or(0);
        if days > 36_500 {
            return Err(invalid(
                "history.retention_days",
                days,
                "must be between 0 (keep everything) and 36500",
            ));
        }
        let size_mb = file.history.max_size_mb.unwrap_or(0);
        if size_mb != 0 && !(16..=MAX_HISTORY_SIZE_MB).contains(&size_mb) {
            return Err(invalid(
                "history.max_size_mb",
                size_mb,
                format!("must be 0 (no cap) or between 16 and {MAX_HISTORY_SIZE_MB} (1 PiB)"),
            ));
        }
        let retention = Retention {
            max_age: (days > 0).then(|| Duration::from_secs(days * 86_400)),
            max_bytes: (size_mb > 0).then(|| size_mb * 1024 * 1024),
        };

        let incidents = incident_settings(file.incidents, flags.operator)?;
        let device_groups = DeviceGroups::from_config(&file.groups)
            .map_err(|e| invalid("groups", e.group, e.reason))?;

        Ok(Settings {
            broker,
            db_path,
            topic_prefix,
            client_id,
            batch_interval: Duration::from_millis(batch_ms),
            map_style_url,
            sim: SimSettings {
                devices,
                interval: Duration::from_millis(sim_interval),
                center,
            },
            live: LiveSettings {
                stale_after: Duration::from_secs(stale_after_s),
                trail: Duration::from_secs(trail_minutes * 60),
                max_devices: max_devices as usize,
                forget_after: (forget_after_days > 0)
                    .then(|| Duration::from_secs(forget_after_days * 86_400)),
            },
            owntracks_base,
            mqtt,
            face,
            retention,
            incidents,
            device_groups,
        })
    }

    /// Reads the broker secrets the config left to the OS keyring: the password of
    /// `mqtt.username` (when neither the environment nor the file gave one) and the client key
    /// (when `mqtt.client_cert` has no `client_key` file). Only commands that connect call this,
    /// so an export or a review never touches the keyring. A keyring that cannot be reached
    /// leaves the username without a password (said in `password_source`); a client key that is
    /// not there is an error, since the broker would refuse the connection.
    pub fn with_secrets(
        mut self,
        store: &dyn crate::credentials::SecretStore,
    ) -> Result<Self, SettingsError> {
        use crate::credentials::{SecretError, SecretKey};
        let BrokerTarget::External(url) = &self.broker else {
            if self.mqtt.version == MqttVersion::V5 {
                // It would retry for ever: rumqttd refuses the protocol level. Checked here,
                // in the commands that connect: an export with this config needs no broker.
                return Err(invalid(
                    "mqtt.version",
                    "5",
                    "the embedded broker speaks MQTT 3.1.1 only; give a broker (--broker) for MQTT 5",
                ));
            }
            return Ok(self);
        };
        let broker = format!("{}:{}", url.host, url.port);
        let files = &self.mqtt.files;
        // Read once: a second call would put the certificate's empty key back over the one
        // the keyring gave.
        let read_already = self.mqtt.ca_pem.is_some() || self.mqtt.client_auth.is_some();
        if let (Some(ca), false) = (&files.ca, read_already) {
            self.mqtt.ca_pem = Some(read_pem("mqtt.ca_file", ca, "CERTIFICATE-----")?);
        }
        if let (Some(cert), false) = (&files.cert, read_already) {
            let cert = read_pem("mqtt.client_cert", cert, "CERTIFICATE-----")?;
            let key = match &files.key {
                Some(key) => {
                    check_private(key)?;
                    read_pem("mqtt.client_key", key, "PRIVATE KEY-----")?
                }
                None => Vec::new(), // from the keyring, below
            };
            self.mqtt.client_auth = Some((cert, key));
        }
        if self.mqtt.password_source == PasswordSource::Pending {
            if let Some((user, pass)) = &mut self.mqtt.credentials {
                self.mqtt.password_source = match store.get(&SecretKey::password(&broker, user)) {
                    Ok(Some(secret)) => match String::from_utf8(secret) {
                        Ok(p) => {
                            *pass = p;
                            PasswordSource::Keyring
                        }
                        Err(_) => PasswordSource::KeyringUnavailable(
                            "the stored password is not text".into(),
                        ),
                    },
                    Ok(None) => PasswordSource::None,
                    Err(e) => PasswordSource::KeyringUnavailable(e.to_string()),
                };
            }
        }
        if self.mqtt.client_key_in_keyring {
            let key = SecretKey::client_key(&broker);
            let pem = match store.get(&key) {
                Ok(Some(pem)) => pem,
                Ok(None) => {
                    return Err(invalid(
                        "mqtt.client_cert",
                        &broker,
                        format!(
                            "has no client_key file and the OS keyring does not hold {key}: import it \
                             with `watchfloor credentials import-key --broker mqtts://{broker} FILE`"
                        ),
                    ))
                }
                Err(e @ (SecretError::Unavailable(_) | SecretError::Failed(_))) => {
                    return Err(invalid(
                        "mqtt.client_cert",
                        &broker,
                        format!("needs {key} from the OS keyring: {e}"),
                    ))
                }
            };
            if let Some((_, k)) = &mut self.mqtt.client_auth {
                *k = pem;
            }
            self.mqtt.client_key_in_keyring = false;
        }
        Ok(self)
    }

    /// The URL clients use to reach the broker (the embedded one included).
    pub fn broker_url(&self) -> BrokerUrl {
        match &self.broker {
            BrokerTarget::External(url) => url.clone(),
            BrokerTarget::Embedded { listen } => {
                // A broker listening on every interface is still reached over loopback locally.
                let host = if listen.ip().is_unspecified() {
                    Ipv4Addr::LOCALHOST.to_string()
                } else {
                    listen.ip().to_string()
                };
                BrokerUrl {
                    host,
                    port: listen.port(),
                    tls: false,
                }
            }
        }
    }
}

/// Device kinds a rule may name.
const DEVICE_KINDS: [&str; 6] = ["vehicle", "sensor", "bodycam", "phone", "terminal", "other"];

fn severity(origin: &str, raw: &str) -> Result<Severity, SettingsError> {
    Severity::parse(raw)
        .ok_or_else(|| invalid(origin, raw, "expected critical, high, medium, low or info"))
}

fn incident_settings(
    file: IncidentsFile,
    operator_flag: Option<String>,
) -> Result<IncidentSettings, SettingsError> {
    let (operator, origin) = match (operator_flag, file.operator) {
        (Some(o), _) => (o, "--operator"),
        (None, Some(o)) => (o, "incidents.operator"),
        (None, None) => (
            std::env::var("USER")
                .ok()
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| "operator".to_owned()),
            "USER",
        ),
    };
    let operator = operator.trim().to_owned();
    if operator.is_empty()
        || operator.chars().count() > 64
        || operator.chars().any(char::is_control)
    {
        return Err(invalid(
            origin,
            &operator,
            "use 1 to 64 printable characters",
        ));
    }
    let defaults = IncidentRules::default();
    let kinds = |origin: &str, list: Option<Vec<String>>, default: Vec<String>| {
        let list = list.unwrap_or(default);
        match list.iter().find(|k| !DEVICE_KINDS.contains(&k.as_str())) {
            Some(k) => Err(invalid(
                origin,
                k,
                format!("not a device kind ({})", DEVICE_KINDS.join(", ")),
            )),
            None => Ok(list),
        }
    };
    let rules = IncidentRules {
        min_event_severity: match &file.min_event_severity {
            Some(s) => severity("incidents.min_event_severity", s)?,
            None => defaults.min_event_severity,
        },
        offline_kinds: kinds(
            "incidents.offline_kinds",
            file.offline_kinds,
            defaults.offline_kinds,
        )?,
        stale_kinds: kinds(
            "incidents.stale_kinds",
            file.stale_kinds,
            defaults.stale_kinds,
        )?,
        quarantine_flood_per_min: file
            .quarantine_flood_per_min
            .unwrap_or(defaults.quarantine_flood_per_min),
    };
    Ok(IncidentSettings {
        operator,
        rules,
        notify_min_severity: match &file.notify_min_severity {
            Some(s) => severity("incidents.notify_min_severity", s)?,
            None => Severity::High,
        },
        sound: file.sound.unwrap_or(false),
    })
}

/// The environment variable that carries the broker password.
pub const PASSWORD_ENV: &str = "WATCHFLOOR_MQTT_PASSWORD";

fn password_from_env() -> Option<String> {
    std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty())
}

fn face_settings(
    file: FaceFile,
    topic_prefix: &str,
    owntracks_base: Option<&str>,
) -> Result<Option<FaceSettings>, SettingsError> {
    if !file.enabled.unwrap_or(true) {
        return Ok(None);
    }
    let base_topic = file
        .base_topic
        .unwrap_or_else(|| DEFAULT_FACE_BASE.to_owned());
    validate_topic_prefix("face.base_topic", &base_topic)?;
    if captures(&base_topic, topic_prefix)
        || owntracks_base.is_some_and(|o| captures(&base_topic, o))
    {
        return Err(invalid(
            "face.base_topic",
            &base_topic,
            "must differ from topic_prefix and owntracks.base_topic, and neither may lie inside it (their topics would go to the face decoder)",
        ));
    }
    // The other way round, the phones' subscription (`{base}/+/+`) takes in the commands and
    // answers the console sends the terminals (`{face}/{terminal}`): each came back and was
    // quarantined, and enough of them raised a quarantine flood.
    if owntracks_base.is_some_and(|o| captures(o, &base_topic)) {
        return Err(invalid(
            "face.base_topic",
            &base_topic,
            "may not lie inside owntracks.base_topic (the phones' subscription would take in the console's commands to the terminals)",
        ));
    }
    let parse_zone = |field: &str, name: &str| {
        name.parse::<chrono_tz::Tz>().map_err(|_| {
            invalid(
                field,
                name,
                "not an IANA time zone (for example Europe/Amsterdam)",
            )
        })
    };
    let mut terminal_zones = std::collections::BTreeMap::new();
    for (written, name) in file.terminal_zones.unwrap_or_default() {
        let field = format!("face.terminal_zones.{written}");
        let zone = parse_zone(&field, &name)?;
        // Keyed by the terminal's own id (`facesluiceId`); the console shows it as face:T-07,
        // and a key written so matched nothing: the terminal's times were read in the default
        // zone, hours off, and nothing said so.
        let terminal = watchfloor_protocol::face::terminal_id(&written);
        watchfloor_protocol::DeviceId::parse(terminal)
            .map_err(|e| invalid(&field, &written, format!("not a terminal id: {e}")))?;
        // T-07 and face:T-07 are one terminal: of two zones for it, one would win unsaid.
        if terminal_zones.insert(terminal.to_owned(), zone).is_some() {
            return Err(invalid(
                &field,
                &written,
                format!("terminal {terminal} is given a zone twice"),
            ));
        }
    }
    let zone = match file.time_zone {
        Some(name) => parse_zone("face.time_zone", &name)?,
        None => workstation_zone(),
    };
    let photo_listen = match file.photo_listen {
        Some(text) => text
            .parse()
            .map_err(|_| invalid("face.photo_listen", &text, "not an IP:PORT address"))?,
        None => std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    };
    if photo_listen.ip().is_unspecified() && file.photo_url.is_none() {
        // The URLs would name 0.0.0.0, which no terminal can download from.
        return Err(invalid(
            "face.photo_listen",
            photo_listen,
            "listens on every address: set face.photo_url to the address terminals reach it at",
        ));
    }
    if let Some(url) = &file.photo_url {
        let ok = url::Url::parse(url).is_ok_and(|u| u.scheme() == "http" && u.host_str().is_some());
        if !ok {
            return Err(invalid(
                "face.photo_url",
                url,
                "not an http:// URL with a host (terminals download photos over HTTP)",
            ));
        }
    }
    let sync_batch = file.sync_batch.unwrap_or(1000);
    if !(1..=1000).contains(&sync_batch) {
        return Err(invalid(
            "face.sync_batch",
            sync_batch,
            "must be 1 to 1000 (terminals take at most 1000 persons per batch)",
        ));
    }
    Ok(Some(FaceSettings {
        base_topic,
        zone,
        photo_listen,
        photo_url: file.photo_url,
        sync_batch,
        terminal_zones,
        push_ack: file.push_ack.unwrap_or(true),
        sync: file.sync.unwrap_or(true),
        sync_retry_after: Duration::from_secs(match file.sync_retry_s {
            None => 60,
            Some(s @ 1..=86_400) => s,
            Some(s) => {
                return Err(invalid(
                    "face.sync_retry_s",
                    s,
                    "must be 1 to 86400 (seconds)",
                ))
            }
        }),
    }))
}

fn mqtt_settings(
    file: MqttFile,
    broker: &BrokerTarget,
    env_password: Option<String>,
) -> Result<MqttSettings, SettingsError> {
    let external = match broker {
        BrokerTarget::External(url) => Some(url),
        BrokerTarget::Embedded { .. } => None,
    };
    let tls = external.is_some_and(|u| u.tls);
    let file_password = match (file.password, file.allow_plaintext_password.unwrap_or(false)) {
        (Some(_), false) => {
            return Err(invalid(
                "mqtt.password",
                "(hidden)",
                "a password in the config file is refused: store it in the OS keyring with \
                 `watchfloor credentials set-password`, or set mqtt.allow_plaintext_password = true",
            ))
        }
        (p, _) => p.map(|p| p.0),
    };
    let (credentials, password_source) = match (file.username, env_password, file_password) {
        (Some(user), Some(pass), _) => (Some((user, pass)), PasswordSource::Environment),
        (Some(user), None, Some(pass)) => (Some((user, pass)), PasswordSource::ConfigFile),
        (Some(user), None, None) if external.is_some() => {
            (Some((user, String::new())), PasswordSource::Pending)
        }
        (Some(user), None, None) => (Some((user, String::new())), PasswordSource::None),
        (None, Some(_), _) => {
            return Err(invalid(
                PASSWORD_ENV,
                "(hidden)",
                "a password is set but mqtt.username is not",
            ))
        }
        (None, None, Some(_)) => {
            return Err(invalid(
                "mqtt.password",
                "(hidden)",
                "a password is set but mqtt.username is not",
            ))
        }
        (None, None, None) => (None, PasswordSource::None),
    };
    let skip_verify = match (&file.insecure_skip_verify, external) {
        (None, _) => false,
        (Some(named), Some(url)) if url.tls && *named == format!("{}:{}", url.host, url.port) => {
            true
        }
        (Some(named), Some(url)) if url.tls => {
            return Err(invalid(
                "mqtt.insecure_skip_verify",
                named,
                format!(
                    "names another broker than the one in use ({}:{}): verification is turned off \
                     only for the broker it names",
                    url.host, url.port
                ),
            ))
        }
        (Some(named), _) => {
            return Err(invalid(
                "mqtt.insecure_skip_verify",
                named,
                "only applies to an mqtts:// broker",
            ))
        }
    };
    // The files are named here and read by `with_secrets`, in the commands that connect: an
    // export or a report with a config copied from another machine does not need them there.
    for (field, path) in [
        ("mqtt.ca_file", &file.ca_file),
        ("mqtt.client_cert", &file.client_cert),
        ("mqtt.client_key", &file.client_key),
    ] {
        if let (Some(path), false) = (path, tls) {
            return Err(invalid(
                field,
                path.display(),
                "only applies to an mqtts:// broker",
            ));
        }
    }
    if let (None, Some(p)) = (&file.client_cert, &file.client_key) {
        return Err(invalid(
            "mqtt.client_key",
            p.display(),
            "a client key needs its mqtt.client_cert",
        ));
    }
    if file.client_cert.is_some() && file.ca_file.is_none() && !skip_verify {
        // rumqttc takes a client certificate only together with an explicit CA.
        return Err(invalid(
            "mqtt.client_cert",
            "",
            "a client certificate needs mqtt.ca_file as well",
        ));
    }
    // Without a key file, the client key comes from the OS keyring (`with_secrets`).
    let client_key_in_keyring = file.client_cert.is_some() && file.client_key.is_none();
    let files = CertificateFiles {
        ca: file.ca_file,
        cert: file.client_cert,
        key: file.client_key,
    };
    let keep_alive_s = file.keep_alive_s.unwrap_or(DEFAULT_KEEP_ALIVE_S);
    if !(5..=3600).contains(&keep_alive_s) {
        return Err(invalid(
            "mqtt.keep_alive_s",
            keep_alive_s,
            "must be between 5 and 3600",
        ));
    }
    let version = match file.version.as_deref() {
        None | Some("3.1.1") | Some("3") => MqttVersion::V311,
        Some("5") | Some("5.0") => MqttVersion::V5,
        Some(other) => return Err(invalid("mqtt.version", other, "use \"3.1.1\" or \"5\"")),
    };
    Ok(MqttSettings {
        credentials,
        password_source,
        client_key_in_keyring,
        skip_verify,
        files,
        ca_pem: None,
        client_auth: None,
        keep_alive: Duration::from_secs(keep_alive_s),
        version,
    })
}

/// Reads a PEM file named in `[mqtt]` and checks it holds a `marker` block.
fn read_pem(field: &str, path: &Path, marker: &str) -> Result<Vec<u8>, SettingsError> {
    let bytes = std::fs::read(path)
        .map_err(|e| invalid(field, path.display(), format!("cannot read it: {e}")))?;
    if !String::from_utf8_lossy(&bytes).contains(marker) {
        return Err(invalid(
            field,
            path.display(),
            format!("is not a PEM file with a {marker} block"),
        ));
    }
    Ok(bytes)
}

/// A private key file must be readable by its owner only (as OpenSSH insists): a key others
/// can read is a key others can use.
fn check_private(path: &Path) -> Result<(), SettingsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| {
            invalid(
                "mqtt.client_key",
                path.display(),
                format!("cannot read it: {e}"),
            )
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(invalid(
                "mqtt.client_key",
                path.display(),
                format!(
                    "is readable by other users (mode {mode:o}): `chmod 600` it, or import it into \
                     the OS keyring with `watchfloor credentials import-key` and drop mqtt.client_key"
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Whether the adapter under `outer` would take the topics of the one under `inner`: the same
/// base, or `inner` a level below it. Messages go to the first adapter whose base is a prefix
/// of their topic, face before OwnTracks before native, so only that direction breaks: with
/// OwnTracks under `site1` and the native prefix `site1/devices`, every native location went to
/// the OwnTracks decoder and was quarantined; the native prefix `site1` with OwnTracks under
/// `site1/phones` works (OwnTracks is asked first).
fn captures(outer: &str, inner: &str) -> bool {
    inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn validate_topic_prefix(field: &'static str, prefix: &str) -> Result<(), SettingsError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 128
        && !prefix.starts_with('/')
        && !prefix.ends_with('/')
        && !prefix.split('/').any(str::is_empty)
        && !prefix
            .chars()
            .any(|c| matches!(c, '+' | '#') || c.is_control());
    if !ok {
        return Err(invalid(
            field,
            prefix,
            "must be topic levels without wildcards, e.g. devices or site1/devices",
        ));
    }
    // The consoles' own topics (presence, probe, shared incidents): a device adapter's
    // subscriptions there took them in and quarantined them as bad device messages.
    if captures(crate::console_topics::ROOT, prefix) {
        return Err(invalid(
            field,
            prefix,
            format!(
                "{root} and the topics under it are the consoles' own",
                root = crate::console_topics::ROOT
            ),
        ));
    }
    Ok(())
}

/// `history.sqlite` in the platform data directory (e.g. `~/.local/share/watchfloor` on Linux).
pub fn default_db_path() -> Result<PathBuf, SettingsError> {
    directories::ProjectDirs::from("org", "Watchfloor", "watchfloor")
        .map(|d| d.data_dir().join("history.sqlite"))
        .ok_or(SettingsError::NoDataDir)
}

/// This workstation's time zone; UTC when the system does not say.
pub fn workstation_zone() -> chrono_tz::Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

impl Settings {
    /// The zone of the face terminals' calendar days (attendance): `[face] time_zone`, else
    /// this workstation's.
    pub fn terminal_day_zone(&self) -> chrono_tz::Tz {
        self.face.as_ref().map_or_else(workstation_zone, |f| f.zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(toml: &str, flags: Overrides) -> Result<Settings, SettingsError> {
        Settings::resolve(ConfigFile::parse(toml, Path::new("test.toml"))?, flags)
    }

    fn with_db() -> Overrides {
        Overrides {
            db: Some("/tmp/x.sqlite".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_terminal_zone_may_name_the_terminal_as_the_console_shows_it() {
        let s = resolve(
            "[face]\nterminal_zones = { \"face:T-07\" = \"Asia/Dubai\", \"T-08\" = \"UTC\" }",
            with_db(),
        )
        .unwrap();
        let zones = &s.face.unwrap().terminal_zones;
        assert_eq!(zones.get("T-07"), Some(&chrono_tz::Asia::Dubai));
        assert_eq!(zones.get("T-08"), Some(&chrono_tz::UTC));
    }

    #[test]
    fn an_adapter_may_lie_inside_one_asked_after_it() {
        // OwnTracks is asked before native, face before both: these route right. (Face may
        // not lie inside OwnTracks: the phones' subscription takes in the terminals' commands.)
        let s = resolve(
            "topic_prefix = \"site1\"\n[owntracks]\nbase_topic = \"site1/phones\"\n[face]\nbase_topic = \"site1/face\"",
            with_db(),
        )
        .expect("inner bases asked first are fine");
        assert_eq!(s.owntracks_base.as_deref(), Some("site1/phones"));
    }

    #[test]
    fn defaults_start_the_embedded_broker_on_loopback() {
        let s = resolve("", with_db()).expect("empty config is valid");
        assert_eq!(
            s.broker,
            BrokerTarget::Embedded {
                listen: "127.0.0.1:1883".parse().unwrap()
            }
        );
        assert_eq!(s.topic_prefix, "devices");
        assert_eq!(s.batch_interval, Duration::from_millis(100));
        assert_eq!(s.broker_url().to_string(), "mqtt://127.0.0.1:1883");
    }

    #[test]
    fn device_groups_come_from_the_groups_table_and_a_bad_pattern_is_named() {
        let s = resolve(
            "[groups]\n\"North patrol\" = [\"van-1*\", \"car-12\"]\nPhones = [\"ot:*\"]",
            with_db(),
        )
        .unwrap();
        assert_eq!(s.device_groups.names(), ["North patrol", "Phones"]);
        assert_eq!(s.device_groups.groups_of("van-14"), ["North patrol"]);
        assert!(resolve("", with_db())
            .unwrap()
            .device_groups
            .names()
            .is_empty());

        let e = resolve("[groups]\nNorth = [\"van-[1\"]", with_db())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("groups \"North\": pattern \"van-[1\"") && e.contains("unclosed"),
            "{e}"
        );
        let e = resolve("[groups]\nNorth = \"van-*\"", with_db())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("expected a sequence"),
            "{e}"
        );
    }

    #[test]
    fn flags_override_the_file() {
        let s = resolve(
            "broker = \"mqtt://file-host:1000\"\ntopic_prefix = \"site/a\"\n[simulator]\ndevices = 3",
            Overrides { broker: Some("mqtts://flag-host".into()), simulate: Some(7), ..with_db() },
        )
        .unwrap();
        assert_eq!(
            s.broker,
            BrokerTarget::External(BrokerUrl {
                host: "flag-host".into(),
                port: 8883,
                tls: true
            })
        );
        assert_eq!(s.topic_prefix, "site/a", "a value only in the file is kept");
        assert_eq!(s.sim.devices, 7, "the flag wins over the file");
    }

    #[test]
    fn errors_name_the_value_on_one_line() {
        let cases = [
            (
                "",
                Overrides {
                    broker: Some("http://x".into()),
                    ..with_db()
                },
                "\"http://x\"",
            ),
            (
                "",
                Overrides {
                    listen: Some("localhost".into()),
                    ..with_db()
                },
                "--listen \"localhost\"",
            ),
            ("topic_prefix = \"a/#\"", with_db(), "\"a/#\""),
            (
                "[ui]\nbatch_interval_ms = 1",
                with_db(),
                "ui.batch_interval_ms \"1\"",
            ),
            ("brokr = 1", with_db(), "line 1: unknown field `brokr`"),
            (
                "[face]\nphoto_listen = \"0.0.0.0:8095\"",
                with_db(),
                "face.photo_listen \"0.0.0.0:8095\": listens on every address: set face.photo_url",
            ),
            (
                "",
                Overrides {
                    broker: Some("mqtt://dana:s3cret@broker.example".into()),
                    ..with_db()
                },
                "--broker \"mqtt://***@broker.example\": a broker URL carries no user or password",
            ),
            (
                "",
                Overrides {
                    broker: Some("mqtt://dana:s3cret@broker.example:99999".into()),
                    ..with_db()
                },
                "\"mqtt://***@broker.example:99999\": not a URL",
            ),
            (
                "",
                Overrides {
                    broker: Some("mqtt://dana:s3cret/x@broker.example".into()),
                    ..with_db()
                },
                "\"mqtt://***@broker.example\"",
            ),
            (
                "",
                Overrides {
                    broker: Some("dana:s3cret@broker.example:1883".into()),
                    ..with_db()
                },
                "\"***@broker.example:1883\"",
            ),
            (
                "",
                Overrides {
                    broker: Some("mqtt://broker.example:0".into()),
                    ..with_db()
                },
                "port 0 is no broker's port",
            ),
            (
                "[mqtt]\nusernme = \"u\"",
                with_db(),
                "line 2: unknown field `usernme`",
            ),
            (
                "[history]\nmax_size_mb = 17592186044416",
                with_db(),
                "history.max_size_mb \"17592186044416\": must be 0 (no cap) or between 16 and",
            ),
            (
                "[simulator]\ncenter = [99.0, 1.0]",
                with_db(),
                "simulator.center",
            ),
            (
                "topic_prefix = \"phones\"\n[owntracks]\nbase_topic = \"phones\"",
                with_db(),
                "owntracks.base_topic \"phones\": must differ from topic_prefix",
            ),
            (
                "",
                Overrides {
                    broker: Some("mqtt://broker.example:1883?tls=1".into()),
                    ..with_db()
                },
                "a broker URL has no ?query or #fragment",
            ),
            (
                "[owntracks]\nbase_topic = \"a/+\"",
                with_db(),
                "owntracks.base_topic \"a/+\"",
            ),
            (
                "[owntracks]\nbase_topic = \"site1\"\n[face]\nbase_topic = \"site1/face\"",
                with_db(),
                "face.base_topic \"site1/face\": may not lie inside owntracks.base_topic",
            ),
            (
                "[face]\nterminal_zones = { \"T-07\" = \"UTC\", \"face:T-07\" = \"Asia/Dubai\" }",
                with_db(),
                "terminal T-07 is given a zone twice",
            ),
            (
                "[face]\nterminal_zones = { \"T 07\" = \"Asia/Dubai\" }",
                with_db(),
                "face.terminal_zones.T 07 \"T 07\": not a terminal id",
            ),
            (
                "[owntracks]\nbase_topic = \"watchfloor\"",
                with_db(),
                "owntracks.base_topic \"watchfloor\": watchfloor and the topics under it are the consoles' own",
            ),
            (
                "topic_prefix = \"watchfloor/devices\"",
                with_db(),
                "topic_prefix \"watchfloor/devices\": watchfloor and the topics under it",
            ),
            (
                "[owntracks]\nbase_topic = \"owntracks/%u/%d\"",
                with_db(),
                "owntracks.base_topic \"owntracks/%u/%d\": is the part of the phones' topic before /%u/%d",
            ),
            (
                "topic_prefix = \"site1/devices\"\n[owntracks]\nbase_topic = \"site1\"",
                with_db(),
                "owntracks.base_topic \"site1\": must differ from topic_prefix, and topic_prefix may not lie inside it",
            ),
            (
                "[owntracks]\nbase_topic = \"site1/phones\"\n[face]\nbase_topic = \"site1\"",
                with_db(),
                "face.base_topic \"site1\": must differ",
            ),
            (
                "[live]\nstale_after_s = 1",
                with_db(),
                "live.stale_after_s \"1\"",
            ),
            (
                "[live]\nmax_devices = 0",
                with_db(),
                "live.max_devices \"0\"",
            ),
            (
                "[live]\nforget_after_days = 4000",
                with_db(),
                "live.forget_after_days \"4000\"",
            ),
            (
                "[live]\nmax_devices = 10\n[simulator]\ndevices = 11",
                with_db(),
                "simulator.devices \"11\": more than [live] max_devices (10)",
            ),
        ];
        for (toml, flags, needle) in cases {
            let msg = resolve(toml, flags)
                .expect_err("invalid input is refused")
                .to_string();
            assert!(msg.contains(needle), "{msg:?} should name {needle:?}");
            assert!(!msg.contains('\n'), "{msg:?} must be one line");
            assert!(!msg.contains("s3cret"), "{msg:?} repeats a password");
        }
    }

    #[test]
    fn broker_urls_round_trip_to_text() {
        for (raw, shown) in [
            ("mqtt://h", "mqtt://h:1883"),
            ("mqtts://h:1", "mqtts://h:1"),
            ("mqtt://[::1]:9", "mqtt://[::1]:9"),
        ] {
            assert_eq!(
                BrokerUrl::parse(raw, "--broker").unwrap().to_string(),
                shown
            );
        }
    }

    fn external(url: &str) -> BrokerTarget {
        BrokerTarget::External(BrokerUrl::parse(url, "test").unwrap())
    }

    fn mqtt_file(toml: &str) -> MqttFile {
        ConfigFile::parse(&format!("[mqtt]\n{toml}"), Path::new("t.toml"))
            .unwrap()
            .mqtt
    }

    #[test]
    fn a_password_in_the_config_file_is_refused_unless_allowed() {
        let broker = external("mqtt://b.example:1883");
        let e = mqtt_settings(
            mqtt_file("username = \"u\"\npassword = \"p\""),
            &broker,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("mqtt.password") && e.contains("credentials set-password"),
            "{e}"
        );
        assert!(
            !e.contains("\"p\""),
            "the refusal never shows the password: {e}"
        );

        let allowed = "username = \"u\"\npassword = \"p\"\nallow_plaintext_password = true";
        let m = mqtt_settings(mqtt_file(allowed), &broker, None).unwrap();
        assert_eq!(m.credentials, Some(("u".into(), "p".into())));
        assert_eq!(m.password_source, PasswordSource::ConfigFile);
        let shown = format!("{m:?} {:?}", mqtt_file(allowed));
        assert!(!shown.contains("\"p\""), "Debug hides it: {shown}");

        // The environment wins over the file; the keyring is left for later.
        let m = mqtt_settings(mqtt_file(allowed), &broker, Some("env".into())).unwrap();
        assert_eq!(
            (m.credentials.unwrap().1, m.password_source),
            ("env".into(), PasswordSource::Environment)
        );
        let m = mqtt_settings(mqtt_file("username = \"u\""), &broker, None).unwrap();
        assert_eq!(m.password_source, PasswordSource::Pending);
    }

    #[test]
    fn the_keyring_supplies_the_password_of_this_broker_only() {
        use crate::credentials::{MemoryStore, SecretKey};
        let flags = Overrides {
            broker: Some("mqtt://b.example:1883".into()),
            ..with_db()
        };
        let store = MemoryStore::with([
            (
                SecretKey::password("b.example:1883", "u"),
                b"from-keyring".to_vec(),
            ),
            (
                SecretKey::password("other.example:1883", "u"),
                b"other".to_vec(),
            ),
        ]);
        let s = resolve("[mqtt]\nusername = \"u\"", flags.clone())
            .unwrap()
            .with_secrets(&store)
            .unwrap();
        assert_eq!(
            s.mqtt.credentials,
            Some(("u".into(), "from-keyring".into()))
        );
        assert_eq!(s.mqtt.password_source, PasswordSource::Keyring);

        let s = resolve("[mqtt]\nusername = \"nobody\"", flags.clone())
            .unwrap()
            .with_secrets(&store)
            .unwrap();
        assert_eq!(s.mqtt.credentials, Some(("nobody".into(), String::new())));
        assert_eq!(s.mqtt.password_source, PasswordSource::None);

        let down = MemoryStore::unreachable("no Secret Service on the bus");
        let s = resolve("[mqtt]\nusername = \"u\"", flags)
            .unwrap()
            .with_secrets(&down)
            .unwrap();
        assert!(
            matches!(&s.mqtt.password_source, PasswordSource::KeyringUnavailable(w) if w.contains("no Secret Service")),
            "{:?}",
            s.mqtt.password_source
        );
    }

    #[test]
    fn a_client_key_comes_from_the_keyring_or_a_file_only_its_owner_reads() {
        use crate::credentials::{MemoryStore, SecretKey};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pem = |name: &str, block: &str| {
            let p = dir.path().join(name);
            std::fs::write(
                &p,
                format!("-----BEGIN {block}-----\nAAAA\n-----END {block}-----\n"),
            )
            .unwrap();
            p
        };
        let ca = pem("ca.pem", "CERTIFICATE");
        let cert = pem("c.pem", "CERTIFICATE");
        let key = pem("k.pem", "PRIVATE KEY");
        let with_key =
            format!("[mqtt]\nca_file = {ca:?}\nclient_cert = {cert:?}\nclient_key = {key:?}");
        let flags = Overrides {
            broker: Some("mqtts://b.example:8883".into()),
            ..with_db()
        };
        let nothing = MemoryStore::default();

        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        // Read by the commands that connect only: an export or a report does not need them.
        let settings = resolve(&with_key, flags.clone()).unwrap();
        assert!(settings.mqtt.client_auth.is_none());
        let e = settings.with_secrets(&nothing).unwrap_err().to_string();
        assert!(e.contains("readable by other users (mode 644)"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = resolve(&with_key, flags.clone())
            .unwrap()
            .with_secrets(&nothing)
            .unwrap();
        assert_eq!(
            s.mqtt.ca_pem.as_deref().map(<[u8]>::len),
            Some(std::fs::read(&ca).unwrap().len())
        );
        assert!(s.mqtt.client_auth.is_some());
        // A file that is gone: only a command that connects says so.
        let gone = format!("[mqtt]\nca_file = {:?}", dir.path().join("gone.pem"));
        let settings = resolve(&gone, flags.clone()).unwrap();
        let e = settings.with_secrets(&nothing).unwrap_err().to_string();
        assert!(
            e.contains("mqtt.ca_file") && e.contains("cannot read it"),
            "{e}"
        );

        // No key file: the keyring's, for this broker.
        let without = format!("ca_file = {ca:?}\nclient_cert = {cert:?}");
        let missing = resolve(&format!("[mqtt]\n{without}"), flags.clone())
            .unwrap()
            .with_secrets(&MemoryStore::default())
            .unwrap_err()
            .to_string();
        assert!(missing.contains("credentials import-key"), "{missing}");
        let store =
            MemoryStore::with([(SecretKey::client_key("b.example:8883"), b"KEYPEM".to_vec())]);
        let s = resolve(&format!("[mqtt]\n{without}"), flags)
            .unwrap()
            .with_secrets(&store)
            .unwrap();
        // Asked twice, the key from the keyring stays.
        let s = s.with_secrets(&store).unwrap();
        assert_eq!(s.mqtt.client_auth.unwrap().1, b"KEYPEM");
    }

    #[test]
    fn mqtt_5_with_the_embedded_broker_is_refused_where_it_would_connect_only() {
        use crate::credentials::MemoryStore;
        let settings =
            resolve("[mqtt]\nversion = \"5\"", with_db()).expect("an export needs no broker");
        let e = settings
            .with_secrets(&MemoryStore::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mqtt.version \"5\": the embedded broker speaks MQTT 3.1.1 only"),
            "{e}"
        );
    }

    #[test]
    fn tls_verification_is_turned_off_only_for_the_broker_named() {
        let broker = external("mqtts://b.example:8883");
        let m = mqtt_settings(
            mqtt_file("insecure_skip_verify = \"b.example:8883\""),
            &broker,
            None,
        )
        .unwrap();
        assert!(m.skip_verify);
        let e = mqtt_settings(
            mqtt_file("insecure_skip_verify = \"x.example:8883\""),
            &broker,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("names another broker"), "{e}");
        let plain = external("mqtt://b.example:1883");
        let e = mqtt_settings(
            mqtt_file("insecure_skip_verify = \"b.example:1883\""),
            &plain,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("only applies to an mqtts://"), "{e}");
        assert!(
            !mqtt_settings(MqttFile::default(), &broker, None)
                .unwrap()
                .skip_verify
        );
    }
}
