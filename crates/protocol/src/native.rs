//! Watchfloor's native wire format (documented for device makers in `docs/protocol.md`).
//!
//! Topics, under a configurable prefix (default `devices`, which may itself contain `/`):
//! - `{prefix}/{id}/location`, QoS 0: a position fix.
//! - `{prefix}/{id}/status`, QoS 1, retained, also the device's last will: online state and health.
//! - `{prefix}/{id}/events`, QoS 1: something happened (a button, a sensor threshold, a fault).
//!
//! The `*Payload` structs are the JSON as it travels; devices (and our simulator) serialise them.
//! [`decode`] turns bytes into validated [`NativeMessage`]s: ids checked, timestamps in epoch ms,
//! coordinates and readings inside their physical ranges.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::device_id::{DeviceId, DeviceIdError};
use crate::time::{parse_device_timestamp, truncate, TimestampError};
use crate::MAX_PAYLOAD_BYTES;

/// Longest `name` a status may carry, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest event `message`, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1024;
/// Longest event `id` and `type`, in characters.
pub const MAX_EVENT_FIELD_CHARS: usize = 128;

/// `{prefix}/{id}/location` as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationPayload {
    pub ts: Value,
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
}

/// `{prefix}/{id}/status` as it travels (also the last will).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusPayload {
    pub online: bool,
    pub ts: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Set by simulators so that no operator mistakes a simulated unit for a real one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub simulated: bool,
}

/// `{prefix}/{id}/events` as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPayload {
    pub id: String,
    /// Missing reads as null: an event with no time is kept, stamped on arrival.
    #[serde(default)]
    pub ts: Value,
    #[serde(rename = "type")]
    pub event_type: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

/// How urgent an event is, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// The inverse of [`Severity::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Info,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// What sort of unit a device is; drives its symbol on the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Vehicle,
    Sensor,
    Bodycam,
    Phone,
    /// A face-recognition access / attendance terminal.
    Terminal,
    /// Any kind Watchfloor has no symbol for yet; the device is still shown.
    Other,
}

impl DeviceKind {
    /// Reads a wire `kind`; unknown kinds are kept as [`DeviceKind::Other`] rather than refused,
    /// because a new kind of device must still appear on the map.
    pub fn from_wire(raw: &str) -> Self {
        match raw {
            "vehicle" => Self::Vehicle,
            "sensor" => Self::Sensor,
            "bodycam" => Self::Bodycam,
            "phone" => Self::Phone,
            "terminal" => Self::Terminal,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vehicle => "vehicle",
            Self::Sensor => "sensor",
            Self::Bodycam => "bodycam",
            Self::Phone => "phone",
            Self::Terminal => "terminal",
            Self::Other => "other",
        }
    }
}

/// A validated position fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    pub ts_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub alt: Option<f64>,
    /// Degrees clockwise from true north, `0.0..360.0`.
    pub heading: Option<f64>,
    /// Metres per second.
    pub speed: Option<f64>,
    /// Metres.
    pub accuracy: Option<f64>,
}

/// A validated status report.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub ts_ms: i64,
    pub online: bool,
    /// Percent, `0..=100`.
    pub battery: Option<f64>,
    /// dBm.
    pub signal: Option<f64>,
    pub kind: Option<DeviceKind>,
    pub name: Option<String>,
    pub simulated: bool,
    /// `ts_ms` is the receiver's clock: the message carried no time of its own (a last will
    /// published by the broker). Live state orders it by arrival, not against device clocks.
    pub stamped_on_arrival: bool,
}

/// A validated device event.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEvent {
    /// Unique per device: the key that makes redelivered events idempotent.
    pub event_id: String,
    pub ts_ms: i64,
    pub event_type: String,
    pub severity: Severity,
    pub message: Option<String>,
    pub position: Option<(f64, f64)>,
    /// `ts_ms` is the receiver's clock at arrival: the device's own time could not be used (a
    /// clock unset, or seconds). It says nothing of the device's clock.
    pub stamped_on_arrival: bool,
}

/// One decoded native message.
#[derive(Debug, Clone, PartialEq)]
pub enum NativeMessage {
    Location {
        device: DeviceId,
        fix: Fix,
    },
    Status {
        device: DeviceId,
        status: Status,
    },
    Event {
        device: DeviceId,
        event: DeviceEvent,
    },
}

impl NativeMessage {
    pub fn device(&self) -> &DeviceId {
        match self {
            Self::Location { device, .. }
            | Self::Status { device, .. }
            | Self::Event { device, .. } => device,
        }
    }
}

/// The three native topic kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    Location,
    Status,
    Events,
}

impl TopicKind {
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Location => "location",
            Self::Status => "status",
            Self::Events => "events",
        }
    }
}

/// Why a native message was refused. Each variant reads as a sentence for the quarantine list.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The topic is not `{prefix}/{id}/location|status|events`.
    #[error("topic {topic:?} is not a Watchfloor device topic")]
    UnknownTopic { topic: String },
    /// The id inside the topic is not a valid device id.
    #[error("bad device id in topic: {0}")]
    BadDeviceId(#[from] DeviceIdError),
    /// The payload exceeds [`MAX_PAYLOAD_BYTES`].
    #[error("payload is {len} bytes, the limit is {limit}")]
    Oversized { len: usize, limit: usize },
    /// The payload is not JSON of the documented shape (syntax, missing field, wrong type).
    #[error("payload is not valid: {0}")]
    Json(String),
    /// The timestamp is missing its form, unreadable or too far in the future.
    #[error("bad ts: {0}")]
    Timestamp(#[from] TimestampError),
    /// A number is outside its physical range (or not finite).
    #[error("{field} = {value} is outside {range}")]
    OutOfRange {
        field: &'static str,
        value: f64,
        range: &'static str,
    },
    /// A well-formed message Watchfloor does not take (an encrypted OwnTracks payload, a
    /// message type it has no use for on a subscribed topic).
    #[error("{0}")]
    Unsupported(String),
    /// A text field is longer than allowed.
    #[error("{field} is {len} characters, the limit is {limit}")]
    TooLong {
        field: &'static str,
        len: usize,
        limit: usize,
    },
    /// A name or id holds a control character, or an invisible format character such as a
    /// bidirectional override ([`is_control_or_format`]; a message may hold line breaks and
    /// tabs).
    #[error("{field} contains the control character U+{code:04X}")]
    ControlCharacter { field: &'static str, code: u32 },
}

impl DecodeError {
    /// A short stable code, for counting refusals by reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownTopic { .. } => "unknown_topic",
            Self::BadDeviceId(_) => "bad_device_id",
            Self::Oversized { .. } => "oversized",
            Self::Json(_) => "malformed",
            Self::Timestamp(_) => "bad_timestamp",
            Self::OutOfRange { .. } => "out_of_range",
            Self::TooLong { .. } => "too_long",
            Self::ControlCharacter { .. } => "control_character",
            Self::Unsupported(_) => "unsupported",
        }
    }
}

/// Splits `{prefix}/{id}/{kind}` into the validated id and the kind.
pub fn parse_topic(prefix: &str, topic: &str) -> Result<(DeviceId, TopicKind), DecodeError> {
    let unknown = || DecodeError::UnknownTopic {
        topic: truncate(topic, 200),
    };
    let rest = topic
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(unknown)?;
    let (id, kind) = rest.split_once('/').ok_or_else(unknown)?;
    let kind = match kind {
        "location" => TopicKind::Location,
        "status" => TopicKind::Status,
        "events" => TopicKind::Events,
        _ => return Err(unknown()),
    };
    Ok((DeviceId::parse(id)?, kind))
}

/// Decodes one native message. `now_ms` is the receiver's clock, used to refuse timestamps
/// from the future.
pub fn decode(
    prefix: &str,
    topic: &str,
    payload: &[u8],
    now_ms: i64,
) -> Result<NativeMessage, DecodeError> {
    let (device, kind) = parse_topic(prefix, topic)?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::Oversized {
            len: payload.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(match kind {
        TopicKind::Location => NativeMessage::Location {
            fix: validate_fix(parse_json(payload)?, now_ms)?,
            device,
        },
        TopicKind::Status => NativeMessage::Status {
            status: validate_status(parse_json(payload)?, now_ms)?,
            device,
        },
        TopicKind::Events => NativeMessage::Event {
            event: validate_event(parse_json(payload)?, now_ms)?,
            device,
        },
    })
}

fn parse_json<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, DecodeError> {
    // serde's derive would also take a JSON array as the struct's fields in order
    // (`[ts, lat, lon]`), a form nobody documented: only an object is a message.
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(DecodeError::Json("the payload is not a JSON object".into()));
    }
    serde_json::from_slice(payload).map_err(|e| DecodeError::Json(e.to_string()))
}

/// A payload of at most `limit` bytes holding one JSON object: the first step of every adapter
/// that reads fields by hand (OwnTracks, face terminals).
pub(crate) fn parse_object(
    payload: &[u8],
    limit: usize,
) -> Result<serde_json::Map<String, Value>, DecodeError> {
    if payload.len() > limit {
        return Err(DecodeError::Oversized {
            len: payload.len(),
            limit,
        });
    }
    parse_json(payload)
}

pub(crate) fn in_range(
    field: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
    range: &'static str,
) -> Result<f64, DecodeError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(DecodeError::OutOfRange {
            field,
            value,
            range,
        })
    }
}

pub(crate) fn optional_in_range(
    field: &'static str,
    value: Option<f64>,
    lo: f64,
    hi: f64,
    range: &'static str,
) -> Result<Option<f64>, DecodeError> {
    value.map(|v| in_range(field, v, lo, hi, range)).transpose()
}

/// A name or id: at most `limit` characters and no control character at all (a newline or an
/// escape sequence in a device's name would forge lines in a log and colour an operator's
/// terminal).
pub(crate) fn bounded_text(
    field: &'static str,
    text: String,
    limit: usize,
) -> Result<String, DecodeError> {
    checked_text(field, text, limit, |_| false)
}

/// `text` with every character [`is_control_or_format`] names, except those `keep` keeps,
/// replaced by `with` (or dropped when `with` is `None`): for text that is shown whatever it
/// holds, where a refusal would cost more than its label (an alarm, an attendance record, a
/// phone's fix). Returns `text` itself when there is nothing to replace.
pub(crate) fn without_controls(
    text: String,
    keep: impl Fn(char) -> bool,
    with: Option<char>,
) -> String {
    let unwanted = |c: char| is_control_or_format(c) && !keep(c);
    if !text.chars().any(unwanted) {
        return text;
    }
    text.chars()
        .filter_map(|c| if unwanted(c) { with } else { Some(c) })
        .collect()
}

/// A free-text message: like [`bounded_text`], but line breaks and tabs are kept and the
/// other characters [`is_control_or_format`] names become spaces, not a refusal: a message may
/// be an alarm's, which must be raised whatever its text holds.
pub(crate) fn bounded_message(
    field: &'static str,
    text: String,
    limit: usize,
) -> Result<String, DecodeError> {
    let text = without_controls(text, |c| matches!(c, '\n' | '\t'), Some(' '));
    checked_text(field, text, limit, |_| true)
}

/// A name or id a device echoes back (a face terminal's customId and personName: what we sent
/// it, or what someone typed on its screen): like [`bounded_text`], but the characters
/// [`is_control_or_format`] names are dropped, not a refusal, so an attendance record is not
/// lost for its label.
pub(crate) fn cleaned_text(
    field: &'static str,
    text: String,
    limit: usize,
) -> Result<String, DecodeError> {
    let text = without_controls(text, |_| false, None);
    checked_text(field, text, limit, |_| false)
}

/// A control character (C0, C1, DEL), or an invisible character that changes how the text
/// around it reads or hides a difference: the bidirectional embeddings, overrides and isolates
/// (U+202A-U+202E, U+2066-U+2069: "Van 7" followed by U+202E shows the rest of a line
/// reversed, in the console, an incident title on every console, a log and an exported
/// spreadsheet alike), line and paragraph separators (U+2028/U+2029: a second line in a log),
/// zero-width space, word joiner and invisible operators (U+200B, U+2060-U+2064: "Van 7" and
/// "Van 7" with one in it look the same), the byte-order mark, the deprecated format controls
/// U+206A-U+206F and the interlinear annotation marks. The marks and joiners right-to-left and
/// joined scripts are written with (U+200E/U+200F, U+200C/U+200D) are text, and allowed.
pub fn is_control_or_format(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

fn checked_text(
    field: &'static str,
    text: String,
    limit: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<String, DecodeError> {
    let len = text.chars().count();
    if len > limit {
        return Err(DecodeError::TooLong { field, len, limit });
    }
    if let Some(c) = text
        .chars()
        .find(|&c| is_control_or_format(c) && !allowed(c))
    {
        return Err(DecodeError::ControlCharacter {
            field,
            code: u32::from(c),
        });
    }
    Ok(text)
}

fn validate_fix(p: LocationPayload, now_ms: i64) -> Result<Fix, DecodeError> {
    Ok(Fix {
        ts_ms: parse_device_timestamp(&p.ts, now_ms)?,
        lat: in_range("lat", p.lat, -90.0, 90.0, "-90..=90")?,
        lon: in_range("lon", p.lon, -180.0, 180.0, "-180..=180")?,
        alt: optional_in_range("alt", p.alt, -12_000.0, 100_000.0, "-12000..=100000 m")?,
        // 360 is accepted and folded to 0: some firmwares report north as 360.
        heading: optional_in_range("heading", p.heading, 0.0, 360.0, "0..=360")?.map(|h| h % 360.0),
        speed: optional_in_range("speed", p.speed, 0.0, 400.0, "0..=400 m/s")?,
        accuracy: optional_in_range("accuracy", p.accuracy, 0.0, 1.0e6, "0..=1000000 m")?,
    })
}

fn validate_status(p: StatusPayload, now_ms: i64) -> Result<Status, DecodeError> {
    // A last will (`online: false`) whose time is refused (a tracker that connected before its
    // clock was set stamps it 2000, or 1980) is stamped on arrival: refused, the device stayed
    // online and was later called silent instead of offline.
    let (ts_ms, stamped_on_arrival) = match parse_device_timestamp(&p.ts, now_ms) {
        Ok(ts) => (ts, false),
        Err(_) if !p.online => (now_ms, true),
        Err(e) => return Err(e.into()),
    };
    Ok(Status {
        ts_ms,
        online: p.online,
        battery: optional_in_range("battery", p.battery, 0.0, 100.0, "0..=100 %")?,
        signal: optional_in_range("signal", p.signal, -200.0, 0.0, "-200..=0 dBm")?,
        kind: p.kind.as_deref().map(DeviceKind::from_wire),
        name: p
            .name
            .map(|n| bounded_text("name", n, MAX_NAME_CHARS))
            .transpose()?,
        simulated: p.simulated,
        stamped_on_arrival,
    })
}

fn validate_event(p: EventPayload, now_ms: i64) -> Result<DeviceEvent, DecodeError> {
    if p.id.trim().is_empty() {
        return Err(DecodeError::Json("event id is empty".into()));
    }
    // An event of no type raises an incident nobody can read or route (rules go by type).
    if p.event_type.trim().is_empty() {
        return Err(DecodeError::Json("event type is empty".into()));
    }
    let position = match (p.lat, p.lon) {
        (Some(lat), Some(lon)) => Some((
            in_range("lat", lat, -90.0, 90.0, "-90..=90")?,
            in_range("lon", lon, -180.0, 180.0, "-180..=180")?,
        )),
        (None, None) => None,
        _ => {
            return Err(DecodeError::Json(
                "event has only one of lat and lon".into(),
            ))
        }
    };
    // An event may be an alarm someone has to act on: one whose time is unusable (a clock
    // unset, running fast, or seconds; no time at all) is kept, stamped on arrival and said so
    // in its message, where a fix or a status with such a time is refused. Events never move
    // the device's drawn state, so a time on arrival hides no honest update.
    let (ts_ms, clock_note) = match parse_device_timestamp(&p.ts, now_ms) {
        Ok(ts) => (ts, None),
        Err(TimestampError::LooksLikeSeconds(n)) => (
            now_ms,
            Some(format!(
                "(device time {n} is not milliseconds since 1970: clock unset, or seconds; stamped on arrival)"
            )),
        ),
        Err(TimestampError::WrongType("null")) => {
            (now_ms, Some("(no device time; stamped on arrival)".into()))
        }
        Err(e) => (
            now_ms,
            Some(format!("(device time refused: {e}; stamped on arrival)")),
        ),
    };
    let message = p
        .message
        .map(|m| bounded_message("message", m, MAX_MESSAGE_CHARS))
        .transpose()?;
    let stamped_on_arrival = clock_note.is_some();
    let message = match (message, clock_note) {
        (Some(m), Some(note)) => Some(format!("{m} {note}")),
        (m, note) => m.or(note),
    };
    Ok(DeviceEvent {
        event_id: bounded_text("id", p.id, MAX_EVENT_FIELD_CHARS)?,
        ts_ms,
        event_type: bounded_text("type", p.event_type, MAX_EVENT_FIELD_CHARS)?,
        severity: p.severity,
        message,
        position,
        stamped_on_arrival,
    })
}

/// The topic a device publishes `kind` on.
pub fn topic(prefix: &str, device: &DeviceId, kind: TopicKind) -> String {
    format!("{prefix}/{device}/{}", kind.suffix())
}

#[cfg(test)]
mod tests {
    #[test]
    fn severity_words_round_trip() {
        for s in [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Info,
        ] {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        assert_eq!(Severity::parse("urgent"), None);
    }

    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_795_500_000_000;

    fn id(s: &str) -> DeviceId {
        DeviceId::parse(s).expect("test ids are valid")
    }

    #[test]
    fn decodes_a_full_location() {
        let msg = decode(
            "devices",
            "devices/veh-1/location",
            br#"{"ts":1794999999000,"lat":52.37,"lon":4.89,"alt":3,"heading":360,"speed":12.5,"accuracy":4}"#,
            NOW,
        )
        .expect("documented example decodes");
        let NativeMessage::Location { device, fix } = msg else {
            panic!("expected a location")
        };
        assert_eq!(device, id("veh-1"));
        assert_eq!(fix.ts_ms, 1_794_999_999_000);
        assert_eq!(fix.heading, Some(0.0), "heading 360 folds to north");
        assert_eq!(fix.speed, Some(12.5));
    }

    #[test]
    fn decodes_status_with_rfc3339_and_unknown_kind() {
        let msg = decode(
            "site/a",
            "site/a/s1/status",
            br#"{"online":false,"ts":"2026-11-19T10:00:00Z","kind":"drone","name":"Kite","extra":1}"#,
            NOW,
        )
        .expect("a multi-level prefix and unknown fields are fine");
        let NativeMessage::Status { status, .. } = msg else {
            panic!("expected a status")
        };
        assert!(!status.online);
        assert_eq!(
            status.kind,
            Some(DeviceKind::Other),
            "unknown kinds are kept, not refused"
        );
        assert_eq!(status.name.as_deref(), Some("Kite"));
        assert!(!status.simulated, "simulated defaults to false");
    }

    #[test]
    fn decodes_an_event_and_its_position() {
        let msg = decode(
            "devices",
            "devices/cam-2/events",
            br#"{"id":"e-9","ts":1794999999000,"type":"panic","severity":"critical","lat":1.5,"lon":2.5}"#,
            NOW,
        )
        .expect("valid event");
        let NativeMessage::Event { event, .. } = msg else {
            panic!("expected an event")
        };
        assert_eq!(event.severity, Severity::Critical);
        assert_eq!(event.position, Some((1.5, 2.5)));

        // A panic button on a device whose clock is unset: kept, stamped on arrival, said so.
        let msg = decode(
            "devices",
            "devices/cam-2/events",
            br#"{"id":"e-10","ts":0,"type":"panic","severity":"critical","message":"SOS"}"#,
            NOW,
        )
        .expect("an alarm is not refused for its clock");
        let NativeMessage::Event { event, .. } = msg else {
            panic!("expected an event")
        };
        assert_eq!(event.ts_ms, NOW);
        assert!(event.stamped_on_arrival);
        let message = event.message.unwrap();
        assert!(
            message.starts_with("SOS (device time 0 is not milliseconds"),
            "{message}"
        );

        // A van whose clock runs 6 minutes fast, a time that is no time, and none at all: the
        // alarm is raised all the same, its message says why its time is the arrival.
        for (ts, note) in [
            (
                format!(r#""ts":{},"#, NOW + 6 * 60_000),
                "(device time refused: timestamp is 360000 ms ahead",
            ),
            (
                r#""ts":"yesterday","#.into(),
                "(device time refused: timestamp \"yesterday\" is not RFC 3339",
            ),
            (
                r#""ts":-5,"#.into(),
                "(device time refused: timestamp -5 ms is out of range",
            ),
            (String::new(), "(no device time; stamped on arrival)"),
        ] {
            let payload = format!(r#"{{"id":"e-11",{ts}"type":"panic","severity":"critical"}}"#);
            let msg = decode("devices", "devices/van-7/events", payload.as_bytes(), NOW)
                .unwrap_or_else(|e| panic!("{payload}: {e}"));
            let NativeMessage::Event { event, .. } = msg else {
                panic!("expected an event")
            };
            assert_eq!(event.ts_ms, NOW, "{payload}");
            assert!(event.stamped_on_arrival);
            let message = event.message.unwrap();
            assert!(message.starts_with(note), "{payload}: {message}");
        }
    }

    #[test]
    fn names_may_hold_joiners_and_marks_but_no_reordering_controls() {
        // A family emoji (joined with U+200D), a Persian name (U+200C) and a Hebrew one with a
        // right-to-left mark are names.
        for name in [
            "Team \u{1F468}\u{200D}\u{1F469}",
            "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}",
            "\u{05D3}\u{05E0}\u{05D4}\u{200F} 7",
        ] {
            assert_eq!(bounded_text("name", name.into(), 64), Ok(name.to_owned()));
        }
        for c in [
            '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{2028}', '\u{FFF9}', '\u{200B}',
            '\u{2060}', '\u{FEFF}',
        ] {
            assert_eq!(
                bounded_text("name", format!("Van{c}7"), 64),
                Err(DecodeError::ControlCharacter {
                    field: "name",
                    code: u32::from(c)
                }),
                "U+{:04X}",
                u32::from(c)
            );
        }
        // A message keeps its lines and has the rest replaced; an echoed name drops them.
        assert_eq!(
            bounded_message("message", "SOS\u{7}\u{202E}x\ny".into(), 64),
            Ok("SOS  x\ny".into())
        );
        assert_eq!(
            cleaned_text("personName", "Ann\u{202E}a\u{1b}".into(), 64),
            Ok("Anna".into())
        );
    }

    #[test]
    fn refuses_bad_input_with_a_reason() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("other/x/location", b"{}", "unknown_topic"),
            ("devices/x/battery", b"{}", "unknown_topic"),
            ("devices/a+b/location", b"{}", "bad_device_id"),
            ("devices/x/location", b"{not json", "malformed"),
            (
                "devices/x/location",
                br#"{"ts":1795421700000,"lat":"52","lon":4}"#,
                "malformed",
            ),
            (
                "devices/x/location",
                br#"{"ts":1795421700000,"lat":91,"lon":4}"#,
                "out_of_range",
            ),
            (
                "devices/x/location",
                br#"{"ts":9999999999999,"lat":1,"lon":4}"#,
                "bad_timestamp",
            ),
            // Seconds, not milliseconds: said, not stored as January 1970.
            (
                "devices/x/location",
                br#"{"ts":1795421700,"lat":1,"lon":4}"#,
                "bad_timestamp",
            ),
            (
                "devices/x/status",
                br#"{"online":true,"ts":0}"#,
                "bad_timestamp",
            ),
            (
                "devices/x/status",
                br#"{"online":true,"ts":1795421700000,"battery":140}"#,
                "out_of_range",
            ),
            (
                "devices/x/events",
                br#"{"id":"1","ts":1795421700000,"type":"t","severity":"urgent"}"#,
                "malformed",
            ),
            (
                "devices/x/events",
                br#"{"id":"1","ts":1795421700000,"type":" ","severity":"low"}"#,
                "malformed",
            ),
            (
                "devices/x/events",
                br#"{"id":"","ts":1795421700000,"type":"t","severity":"low"}"#,
                "malformed",
            ),
            (
                "devices/x/events",
                br#"{"id":"1","ts":1795421700000,"type":"t","severity":"low","lat":1}"#,
                "malformed",
            ),
        ];
        for (topic, payload, code) in cases {
            let err = decode("devices", topic, payload, NOW).expect_err("bad input is refused");
            assert_eq!(
                err.code(),
                *code,
                "{topic} {:?} -> {err}",
                String::from_utf8_lossy(payload)
            );
        }
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(
            decode("devices", "devices/x/location", &huge, NOW)
                .unwrap_err()
                .code(),
            "oversized"
        );
    }

    #[test]
    fn encoded_payloads_decode_to_the_same_values() {
        let payload = StatusPayload {
            online: true,
            ts: Value::from(NOW),
            battery: Some(88.0),
            signal: Some(-71.0),
            kind: Some("bodycam".into()),
            name: Some("Cam 4".into()),
            simulated: true,
        };
        let bytes = serde_json::to_vec(&payload).expect("serialisable");
        let NativeMessage::Status { status, .. } =
            decode("devices", "devices/c4/status", &bytes, NOW).unwrap()
        else {
            panic!("expected a status")
        };
        assert_eq!(status.kind, Some(DeviceKind::Bodycam));
        assert!(status.simulated);
        assert_eq!(status.battery, Some(88.0));
    }

    #[test]
    fn a_will_whose_clock_was_never_set_is_stamped_on_arrival() {
        // A tracker that connected before its clock was set stamped its will 2000-01-01.
        let will = decode(
            "devices",
            "devices/t9/status",
            br#"{"ts":946684800000,"online":false}"#,
            NOW,
        )
        .unwrap();
        let NativeMessage::Status { status, .. } = will else {
            panic!("{will:?}")
        };
        assert_eq!((status.ts_ms, status.stamped_on_arrival), (NOW, true));
        // An online status with such a time is refused, as a fix is.
        assert!(decode(
            "devices",
            "devices/t9/status",
            br#"{"ts":946684800000,"online":true}"#,
            NOW
        )
        .is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_arbitrary_bytes(topic in ".{0,80}", payload in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode("devices", &topic, &payload, NOW);
        }

        #[test]
        fn any_valid_fix_round_trips(lat in -90.0f64..=90.0, lon in -180.0f64..=180.0, speed in 0.0f64..100.0, ts in crate::time::EARLIEST_DEVICE_MS..NOW) {
            let p = LocationPayload { ts: Value::from(ts), lat, lon, alt: None, heading: None, speed: Some(speed), accuracy: None };
            let bytes = serde_json::to_vec(&p).unwrap();
            let msg = decode("devices", "devices/d/location", &bytes, NOW).unwrap();
            let NativeMessage::Location { fix, .. } = msg else { panic!("expected a location") };
            prop_assert_eq!((fix.lat, fix.lon, fix.speed, fix.ts_ms), (lat, lon, Some(speed), ts));
        }
    }
}
