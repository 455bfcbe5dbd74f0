//! Face-recognition terminals ("mqtt/face" family, `../shared/protocols/face-terminals-mqtt-face.md`):
//! the presence, heartbeat and record side. (Person sync, with its commands and Acks, is
//! [`crate::face_sync`].)
//!
//! Topics under a configurable base (default `mqtt/face`):
//! - `{base}/basic`: `Online` (-> online status, name from `facesname`) and `Offline` (-> offline
//!   status; it is also the terminal's MQTT will, so its `time` may be missing);
//! - `{base}/heartbeat`: `HeartBeat` (-> online status);
//! - `{base}/{id}/Rec`: `RecPush` (-> an access event, id `rec-{RecordID}@{time}`, so a
//!   terminal's re-push is stored once, and a record of a terminal counting from 1 again is
//!   not taken for one: [`push_key`]);
//! - `{base}/{id}/Snap`: `StrSnapPush` (-> a stranger-capture event, id `snap-{SnapID}@{time}`);
//! - `{base}/{id}/Alarm`: door / tamper alarms (-> an event).
//!
//! Besides the generic messages, a `RecPush` gives an [`AccessRecord`] for the attendance log;
//! stranger captures, block-list matches and refused verifications keep their JPEG (`pic`,
//! base64) for the incident; `RecPush` and `StrSnapPush` are owed a [`PushAck`] once stored.
//!
//! Terminals stamp `time` as `YYYY-MM-DD HH:mm:ss` in their local time with no offset: the caller
//! passes the zone each terminal is set to. Numbers often arrive as strings; one firmware spells
//! `personName` as `persionName`. Device ids are `face:{facesluiceId}`.

use std::collections::BTreeMap;
use std::hash::Hasher as _;

use base64::Engine as _;
use chrono::{LocalResult, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use crate::device_id::DeviceId;
use crate::lenient::optional_number;
use crate::native::{
    bounded_message, bounded_text, cleaned_text, parse_object, without_controls, DecodeError,
    DeviceEvent, DeviceKind, NativeMessage, Severity, Status, MAX_EVENT_FIELD_CHARS,
    MAX_MESSAGE_CHARS, MAX_NAME_CHARS,
};
use crate::time::{parse_timestamp, truncate, MAX_FUTURE_SKEW_MS};

/// The namespace of face-terminal device ids.
pub const NAMESPACE: &str = "face";

/// A terminal's own id (`T-07`, as it names itself in `facesluiceId`) from what a person may
/// write: that, or the id the console shows for it (`face:T-07`).
pub fn terminal_id(written: &str) -> &str {
    let written = written.trim();
    written
        .strip_prefix(NAMESPACE)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(written)
}
/// Records carry a base64 face crop, snapshots a base64 scene: far larger than a location. A
/// 1 MB JPEG (the terminals' own limit on photos) is 1.4 MB as base64; the embedded broker takes
/// messages up to the same 4 MiB.
pub const MAX_FACE_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;
/// Largest refused push still read for the record id its PushAck names: the link's own limit
/// on a message (`link::MAX_PACKET_BYTES` in the core).
pub const MAX_ANSWERED_PUSH_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    Basic,
    Heartbeat,
    Rec,
    Snap,
    Alarm,
}

/// What a terminal's clock means.
#[derive(Debug, Clone, Copy)]
pub struct FaceContext<'a> {
    /// The zone terminals' clocks are set to, unless `terminal_zones` names theirs.
    pub zone: Tz,
    /// Terminals (by facesluiceId) set to another zone.
    pub terminal_zones: &'a BTreeMap<String, Tz>,
    /// The receiver's clock (epoch ms): refuses times from the future, stamps an Offline will.
    pub now_ms: i64,
}

impl FaceContext<'_> {
    fn zone_of(&self, terminal: &str) -> Tz {
        self.terminal_zones
            .get(terminal)
            .copied()
            .unwrap_or(self.zone)
    }
}

/// A decoded terminal message.
#[derive(Debug, Default)]
pub struct FaceMessage {
    /// Statuses and events, as any device's.
    pub messages: Vec<NativeMessage>,
    /// A `RecPush`'s row for the attendance log.
    pub access: Option<AccessRecord>,
    /// The JPEG kept with the event (stranger capture, block-list match, refused verification).
    pub image: Option<Vec<u8>>,
    /// The answer this message is owed once it is stored.
    pub push_ack: Option<PushAck>,
}

/// Marks a person id that is a terminal's own `personId` (enrolled on the terminal's screen, no
/// `customId`), written `#{personId}@{terminal}`: `#` is refused in employee ids, so such a
/// person is never taken for an employee, and the terminal tells apart the equal numbers of two
/// terminals.
pub const TERMINAL_PERSON_MARK: char = '#';

/// One recognition (or refusal) at a terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRecord {
    pub terminal: String,
    pub record_id: String,
    /// What the record is stored and deduplicated by: the RecordID and the terminal's time
    /// ([`push_key`]).
    pub key: String,
    pub ts_ms: i64,
    /// The terminal's own clock text, as stamped.
    pub local_time: String,
    /// `customId` (our employee id), else `#{personId}@{terminal}` ([`TERMINAL_PERSON_MARK`]: a
    /// person enrolled on the terminal itself).
    pub person_id: Option<String>,
    pub person_name: Option<String>,
    /// 0 none, 1 allowed, 2 refused, 3 not registered.
    pub verify_status: i64,
    /// 0 allow-list, 1 block-list.
    pub person_type: i64,
    pub similarity: Option<f64>,
    /// Sent from the terminal's backlog (`Sendintime` 0), not live.
    pub backlog: bool,
}

/// Which push a [`PushAck`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKind {
    Record,
    Snapshot,
}

/// The answer a terminal with reliable re-push waits for before it forgets a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAck {
    pub terminal: String,
    pub kind: PushKind,
    /// The RecordID or SnapID answered.
    pub id: String,
}

impl PushAck {
    /// `PushAckType` as sent. The protocol notes name the field but not its values: 1 for
    /// records and 2 for snapshots is our reading, kept here in one place.
    pub fn ack_type(&self) -> &'static str {
        match self.kind {
            PushKind::Record => "1",
            PushKind::Snapshot => "2",
        }
    }

    /// `{base}/{terminal}`, where every command to the terminal goes.
    pub fn topic(&self, base: &str) -> String {
        format!("{base}/{}", self.terminal)
    }

    pub fn encode(&self, message_id: &str) -> Vec<u8> {
        json!({
            "messageId": message_id,
            "operator": "PushAck",
            "info": {
                "facesluiceId": self.terminal,
                "PushAckType": self.ack_type(),
                "SnapOrRecordID": self.id,
            }
        })
        .to_string()
        .into_bytes()
    }
}

fn parse_topic<'t>(base: &str, topic: &'t str) -> Result<(Option<&'t str>, Topic), DecodeError> {
    let unknown = || DecodeError::UnknownTopic {
        topic: truncate(topic, 200),
    };
    let rest = topic
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(unknown)?;
    Ok(match rest.split_once('/') {
        None if rest == "basic" => (None, Topic::Basic),
        None if rest == "heartbeat" => (None, Topic::Heartbeat),
        Some((id, "Rec")) => (Some(id), Topic::Rec),
        Some((id, "Snap")) => (Some(id), Topic::Snap),
        Some((id, "Alarm")) => (Some(id), Topic::Alarm),
        _ => return Err(unknown()),
    })
}

/// What every terminal message starts with: its topic, operator and terminal.
struct Envelope {
    kind: Topic,
    msg: Map<String, Value>,
    operator: String,
    /// `info.facesluiceId` (or the topic's id when `info` has none).
    id_text: String,
    device: DeviceId,
}

/// A message's `info` object (none is an empty one; so is one that is not an object on an
/// alarm, which is raised whatever is wrong with its envelope).
fn info_of(msg: &Map<String, Value>, kind: Topic) -> Result<&Map<String, Value>, DecodeError> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match msg.get("info") {
        Some(Value::Object(info)) => Ok(info),
        None => Ok(EMPTY.get_or_init(Map::new)),
        Some(_) if kind == Topic::Alarm => Ok(EMPTY.get_or_init(Map::new)),
        Some(_) => Err(DecodeError::Json("`info` is not an object".into())),
    }
}

fn envelope(base: &str, topic: &str, payload: &[u8]) -> Result<Envelope, DecodeError> {
    let (topic_id, kind) = parse_topic(base, topic)?;
    let msg = parse_object(payload, MAX_FACE_PAYLOAD_BYTES)?;
    // An alarm is raised whatever is wrong with its envelope: with no operator it is an
    // "Alarm", and an `info` that is not an object is its detail (see the Alarm arm of
    // [`decode`]).
    let operator = text(&msg, "operator")
        .filter(|op| !op.trim().is_empty())
        .or_else(|| (kind == Topic::Alarm).then(|| "Alarm".to_owned()))
        .ok_or_else(|| DecodeError::Json("missing field `operator`".into()))?;
    let info = info_of(&msg, kind)?;
    // The terminal names itself in info.facesluiceId; on per-terminal topics the topic must agree.
    let id_text = text(info, "facesluiceId")
        .or(topic_id.map(str::to_owned))
        .ok_or_else(|| DecodeError::Json("missing field `info.facesluiceId`".into()))?;
    if let Some(t) = topic_id {
        if t != id_text {
            return Err(DecodeError::Json(format!(
                "topic names terminal {:?} but info.facesluiceId is {:?}",
                truncate(t, 64),
                truncate(&id_text, 64)
            )));
        }
    }
    Ok(Envelope {
        kind,
        device: DeviceId::namespaced(NAMESPACE, &id_text)?,
        msg,
        operator,
        id_text,
    })
}

/// The [`PushAck`] a push is owed even though [`decode`] refused it (a time from the future,
/// a field out of bounds, a payload over [`MAX_FACE_PAYLOAD_BYTES`], a terminal id that is no
/// device id of ours): the quarantine row keeps its reason and the first 1 KiB of its payload
/// (the record's fields, not its image), so once that row is stored the terminal may forget the
/// record. Without the answer a terminal with reliable re-push sends it again for ever, a new
/// quarantine row each time, its later records queued behind it. The answer goes to the
/// terminal the topic names (`{base}/{id}`: a topic level, safe to publish to). `None` when the
/// push names no record we could answer, or another terminal than its topic.
pub fn owed_ack(base: &str, topic: &str, payload: &[u8]) -> Option<PushAck> {
    let (topic_id, kind) = parse_topic(base, topic).ok()?;
    let terminal = topic_id?;
    let msg = parse_object(payload, MAX_ANSWERED_PUSH_BYTES).ok()?;
    let (kind, field) = match (kind, text(&msg, "operator")?.as_str()) {
        (Topic::Rec, "RecPush") => (PushKind::Record, "RecordID"),
        (Topic::Snap, "StrSnapPush") => (PushKind::Snapshot, "SnapID"),
        _ => return None,
    };
    let info = info_of(&msg, Topic::Rec).ok()?;
    if text(info, "facesluiceId").is_some_and(|named| named != terminal) {
        return None;
    }
    let id = text(info, field)?;
    bounded_text(field, id.clone(), MAX_EVENT_FIELD_CHARS).ok()?;
    Some(PushAck {
        terminal: terminal.to_owned(),
        kind,
        id,
    })
}

/// Decodes one terminal message.
pub fn decode(
    base: &str,
    topic: &str,
    payload: &[u8],
    ctx: FaceContext,
) -> Result<FaceMessage, DecodeError> {
    let Envelope {
        kind,
        msg,
        operator,
        id_text,
        device,
    } = envelope(base, topic, payload)?;
    let info = info_of(&msg, kind)?;
    let zone = ctx.zone_of(&id_text);
    let required_time = |info| required_time(info, zone, ctx.now_ms);
    let optional_time = |info| optional_time(info, zone, ctx.now_ms);
    let only = |m: NativeMessage| FaceMessage {
        messages: vec![m],
        ..FaceMessage::default()
    };
    let status = |online: bool, time: Option<i64>, name: Option<String>| NativeMessage::Status {
        device: device.clone(),
        status: Status {
            ts_ms: time.unwrap_or(ctx.now_ms),
            online,
            battery: None,
            signal: None,
            kind: Some(DeviceKind::Terminal),
            name,
            simulated: false,
            stamped_on_arrival: time.is_none(),
        },
    };
    match (kind, operator.as_str()) {
        (Topic::Basic, "Online") => {
            let name = text(info, "facesname")
                .filter(|n| !n.is_empty())
                .map(|n| bounded_text("facesname", n, MAX_NAME_CHARS))
                .transpose()?;
            // Presence says "now": with a clock that is not set (or running fast) it is
            // stamped on arrival, or the terminal would show offline while it works.
            Ok(only(status(
                true,
                time_or_arrival(required_time(info).map(Some)).0,
                name,
            )))
        }
        // The will has no time, or one from a clock that is not set: it is stamped on
        // arrival (refused, it would have left the terminal online for good).
        (Topic::Basic, "Offline") => Ok(only(status(
            false,
            time_or_arrival(optional_time(info)).0,
            None,
        ))),
        (Topic::Heartbeat, "HeartBeat") => Ok(only(status(
            true,
            time_or_arrival(required_time(info).map(Some)).0,
            None,
        ))),
        (Topic::Rec, "RecPush") => record(device.clone(), &id_text, info, zone, ctx.now_ms),
        (Topic::Snap, "StrSnapPush") => {
            let (snap, snap_key) = push_id(info, "SnapID")?;
            let image = jpeg(info.get("pic").or_else(|| msg.get("pic")));
            // A stranger at the door is raised whatever the terminal's clock says.
            let (time, note) = time_or_arrival(required_time(info).map(Some));
            let message = match image {
                Ok(_) => format!("Unknown face captured{note}"),
                Err(why) => format!("Unknown face captured ({why}){note}"),
            };
            Ok(FaceMessage {
                messages: vec![event(
                    device.clone(),
                    format!("snap-{}", push_key(&snap_key, info)),
                    (time.unwrap_or(ctx.now_ms), time.is_none()),
                    "stranger_capture",
                    Severity::High,
                    Some(message),
                )?],
                access: None,
                image: image.ok(),
                push_ack: Some(PushAck {
                    terminal: id_text,
                    kind: PushKind::Snapshot,
                    id: snap,
                }),
            })
        }
        // A door or tamper alarm is raised whatever is wrong with its envelope. With no
        // messageId its id is its content's hash, so a redelivered copy is still one event;
        // with no time, or one that is no time (a clock running fast, a DST gap, garbage), it
        // is stamped on arrival and its message says why.
        (Topic::Alarm, op) => {
            let (time, note) = time_or_arrival(optional_time(info));
            // No messageId: the content's hash, and for an alarm with no usable time of its
            // own also the 10 minutes it arrived in, or a second "door forced" a night later
            // would be taken for a redelivery of the first and dropped. Ten minutes: a
            // redelivery comes well within them, and two consoles (whose clocks agree to the
            // millisecond, give or take the broker's delivery) land in different ones only
            // for an alarm that arrives at the turn of one.
            //
            // With a messageId, the id is it and a short hash of the message (with the same
            // ten minutes when it has no time): a terminal's counter starts again after a
            // reboot, and its next "door forced" was taken for a redelivery of the alarm that
            // had that number before. An empty messageId, or one no event id can hold (too
            // long, control characters), is no messageId.
            let mut hash = fnv::FnvHasher::default();
            hash.write(payload);
            if time.is_none() {
                hash.write_i64(ctx.now_ms.div_euclid(ALARM_ID_WINDOW_MS));
            }
            let with_message_id = text(&msg, "messageId")
                .map(|m| format!("{}-{:08x}", m.trim(), hash.finish() as u32))
                .filter(|id| !id.starts_with('-'))
                .filter(|id| bounded_text("event id", format!("alarm-{id}"), 96).is_ok());
            let id = with_message_id.unwrap_or_else(|| format!("h{:016x}", hash.finish()));
            // The operator, the terminal's detail and the note, within the message limit
            // whatever their lengths: the note and the operator first, the detail in what is
            // left.
            let op = tidy_text(op, 64);
            let budget = MAX_MESSAGE_CHARS - 8 - op.chars().count() - note.chars().count();
            let detail = text(info, "detail")
                .or_else(|| text(info, "alarmType"))
                .or_else(|| text(&msg, "info"))
                .map(|d| format!(": {}", tidy_text(&d, budget)))
                .unwrap_or_default();
            Ok(only(event(
                device.clone(),
                format!("alarm-{id}"),
                (time.unwrap_or(ctx.now_ms), time.is_none()),
                "terminal_alarm",
                Severity::High,
                Some(format!("{op}{detail}{note}")),
            )?))
        }
        (_, op) => Err(DecodeError::Unsupported(format!(
            "operator {:?} is not expected on this topic",
            truncate(op, 32)
        ))),
    }
}

/// A terminal's time, or none (stamped on arrival) and the note that says why for one that is
/// refused (ahead of the console's clock, before 2010, in a DST gap, not a time). For what is
/// raised whatever the clock says: alarms, stranger captures, block-list matches, wills.
fn time_or_arrival(time: Result<Option<i64>, DecodeError>) -> (Option<i64>, String) {
    match time {
        Ok(time) => (time, String::new()),
        Err(e) => (
            None,
            format!(
                " (terminal time refused: {}; stamped on arrival)",
                tidy_text(&e.to_string(), 160)
            ),
        ),
    }
}

/// An alarm with neither a messageId nor a usable time is told from another with the same
/// content by the 10 minutes it arrived in (see the `Alarm` arm of [`decode`]).
const ALARM_ID_WINDOW_MS: i64 = 10 * 60_000;

/// A `RecPush`: who was recognised (or refused) at the terminal.
fn record(
    device: DeviceId,
    terminal: &str,
    info: &Map<String, Value>,
    zone: Tz,
    now_ms: i64,
) -> Result<FaceMessage, DecodeError> {
    let (record_id, record_key) = push_id(info, "RecordID")?;
    // Absent is read as 0, "none": no verification took place.
    let verify = optional_number(info, "VerifyStatus")?.unwrap_or(0.0) as i64;
    let person_type = optional_number(info, "PersonType")?.unwrap_or(0.0) as i64;
    // Persons enrolled on the terminal itself have an empty customId: fall back to personId,
    // marked with `#` (which no employee id may hold) and the terminal's id: the terminal's own
    // numbers are small, like many employee ids ("12" would be credited to employee 12), and
    // each terminal counts from 1 (person 12 of T1 is not person 12 of T2).
    let person = text(info, "customId")
        .filter(|c| !c.is_empty())
        .or_else(|| {
            text(info, "personId")
                .filter(|p| !p.is_empty())
                .map(|p| format!("{TERMINAL_PERSON_MARK}{p}@{terminal}"))
        })
        .map(|p| cleaned_text("customId", p, MAX_EVENT_FIELD_CHARS))
        .transpose()?;
    let name = text(info, "personName")
        .or_else(|| text(info, "persionName"))
        .filter(|n| !n.is_empty())
        .map(|n| cleaned_text("personName", n, MAX_NAME_CHARS))
        .transpose()?;
    let similarity = optional_number(info, "similarity1")?;
    let backlog = optional_number(info, "Sendintime")? == Some(0.0);
    // VerifyStatus: 0 none, 1 allowed, 2 refused, 3 not registered. Only 1 is a granted
    // access: a record with no verification, or a value no firmware is known to send, is not
    // one (it was, and a terminal reporting 0 for a door it did not open logged an entry).
    let (event_type, severity) = match (person_type, verify) {
        (1, _) => ("blocklist_match", Severity::Critical),
        (_, 1) => ("access_granted", Severity::Info),
        (_, 2) => ("access_refused", Severity::Medium),
        (_, 3) => ("not_registered", Severity::Low),
        (_, 0) => ("no_verification", Severity::Info),
        _ => ("access_unknown", Severity::Low),
    };
    let who = match (&name, &person) {
        (Some(n), Some(p)) => format!("{n} ({p})"),
        (Some(n), None) => n.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => "unknown person".to_owned(),
    };
    let mut message = format!("{who}, verify status {verify}");
    if let Some(s) = similarity {
        message += &format!(", similarity {s}");
    }
    if backlog {
        message += ", from backlog";
    }
    // The face crop is kept where someone will look at it: alarms and refusals.
    let keep_image = person_type == 1 || verify == 2;
    let image = if keep_image {
        match jpeg(info.get("pic")) {
            Ok(jpeg) => Some(jpeg),
            Err(why) => {
                message += &format!(" ({why})");
                None
            }
        }
    } else {
        None
    };
    // A record whose time is refused (a terminal clock minutes fast, one never set, a time in
    // a DST gap, none) is kept, stamped on arrival, its local time the arrival's on the
    // terminal's calendar, and its message says what the terminal wrote. Refused, it went to
    // quarantine and was still answered, so the terminal deleted it: a terminal whose clock had
    // drifted six minutes lost every attendance record, and a block-list match raised nothing.
    let raw_time = text(info, "time").unwrap_or_default();
    let (ts_ms, local_time, stamped) = match required_time(info, zone, now_ms) {
        // As the terminal's clock read it, written out in full ("2026-1-5 8:00:00", which the
        // parser takes, is "2026-01-05 08:00:00"): its first ten characters are the local day
        // that reports, and retention, compare as text.
        Ok(ts_ms) => (
            ts_ms,
            NaiveDateTime::parse_from_str(raw_time.trim(), "%Y-%m-%d %H:%M:%S")
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|_| raw_time.trim().to_owned()),
            false,
        ),
        Err(e) => {
            message += &format!(
                " (terminal time {:?} refused: {}; stamped on arrival)",
                tidy_text(&raw_time, 40),
                tidy_text(&e.to_string(), 160)
            );
            let arrival = zone
                .timestamp_millis_opt(now_ms)
                .single()
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default();
            (now_ms, arrival, true)
        }
    };
    let key = push_key(&record_key, info);
    Ok(FaceMessage {
        messages: vec![event(
            device,
            format!("rec-{key}"),
            (ts_ms, stamped),
            event_type,
            severity,
            Some(message),
        )?],
        access: Some(AccessRecord {
            terminal: terminal.to_owned(),
            record_id: bounded_text("RecordID", record_key, MAX_EVENT_FIELD_CHARS)?,
            key: bounded_text("RecordID", key, MAX_EVENT_FIELD_CHARS)?,
            ts_ms,
            local_time,
            person_id: person,
            person_name: name,
            verify_status: verify,
            person_type,
            similarity,
            backlog,
        }),
        image,
        push_ack: Some(PushAck {
            terminal: terminal.to_owned(),
            kind: PushKind::Record,
            id: record_id,
        }),
    })
}

/// The JPEG in a `pic` field (base64, with or without a `data:` prefix), or why there is none.
fn jpeg(pic: Option<&Value>) -> Result<Vec<u8>, &'static str> {
    let Some(Value::String(pic)) = pic else {
        return Err("no image sent");
    };
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
    // Line breaks every 76 characters (MIME, Android's Base64.DEFAULT) and missing padding
    // are read: refused, the face crop of a block-list match was lost.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        general_purpose::PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let b64 = pic.split_once(";base64,").map_or(pic.as_str(), |(_, b)| b);
    let bytes = if b64.bytes().any(|b| b.is_ascii_whitespace()) {
        let packed: Vec<u8> = b64.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        LENIENT.decode(packed)
    } else {
        LENIENT.decode(b64)
    }
    .map_err(|_| "image is not base64")?;
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(bytes)
    } else {
        Err("image is not a JPEG")
    }
}

/// An event; `(ts_ms, stamped_on_arrival)` is its time and whether that is the console's
/// clock at arrival (the terminal gave no usable one).
fn event(
    device: DeviceId,
    event_id: String,
    (ts_ms, stamped_on_arrival): (i64, bool),
    event_type: &str,
    severity: Severity,
    message: Option<String>,
) -> Result<NativeMessage, DecodeError> {
    Ok(NativeMessage::Event {
        device,
        event: DeviceEvent {
            event_id: bounded_text("event id", event_id, MAX_EVENT_FIELD_CHARS)?,
            ts_ms,
            event_type: event_type.to_owned(),
            severity,
            message: message
                .map(|m| bounded_message("message", m, MAX_MESSAGE_CHARS))
                .transpose()?,
            position: None,
            stamped_on_arrival,
        },
    })
}

/// A terminal's own words for an alarm, fit for its incident: control characters (a firmware's
/// CR LF, an escape) become spaces and the text is cut to `limit` characters. A door or tamper
/// alarm must raise its incident whatever the firmware put in its text; refusing it would leave
/// the alarm in quarantine.
fn tidy_text(text: &str, limit: usize) -> String {
    let tidy = without_controls(text.to_owned(), |_| false, Some(' '));
    let tidy = tidy.trim();
    match tidy.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &tidy[..cut]),
        None => tidy.to_owned(),
    }
}

/// A push's own id (`RecordID`, `SnapID`) as the terminal sent it, which its PushAck answers
/// with, and the key the push is stored and deduplicated by: the same, or for a blank id `h`
/// and a hash of what it says (`info`, but `Sendintime`, which a terminal turns from live to
/// backlog when it sends a record again; the envelope's messageId is left out with the rest
/// of the envelope). Every push with a blank id was one key (`rec-`), so all but the first were
/// taken for redeliveries and dropped (and answered, so the terminal forgot them); refused
/// instead, they went unanswered, and a terminal that sends its backlog in order sent that one
/// again for ever, its later records queued behind it.
fn push_id(info: &Map<String, Value>, field: &str) -> Result<(String, String), DecodeError> {
    let id = text(info, field)
        .ok_or_else(|| DecodeError::Json(format!("missing field `info.{field}`")))?;
    let key = if id.trim().is_empty() {
        let mut said = info.clone();
        said.remove("Sendintime");
        let mut hash = fnv::FnvHasher::default();
        // A map of JSON values always serializes; its keys come in sorted order.
        hash.write(serde_json::to_string(&said).unwrap_or_default().as_bytes());
        format!("h{:016x}", hash.finish())
    } else {
        id.clone()
    };
    Ok((id, key))
}

/// The key a record or capture is stored and deduplicated by, and its event id is made of: its
/// id's key ([`push_id`]) and, when the terminal wrote a time that reads as one, that time as
/// it wrote it (`41@20261123T080000`). A terminal counts its ids from 1 again after it is reset
/// (`DeleteAllPerson` wipes its records), and a new terminal put in for a broken one under its
/// id starts at 1: those records were taken for re-pushes of the old ones with the same ids and
/// dropped, their attendance lost and their block-list matches and stranger captures raising
/// nothing. A re-push carries the record's own time, so it is still one key. With no usable
/// time it is the id's key alone (stamped on arrival, each copy's time differs).
fn push_key(id_key: &str, info: &Map<String, Value>) -> String {
    let written = text(info, "time")
        .and_then(|t| NaiveDateTime::parse_from_str(t.trim(), "%Y-%m-%d %H:%M:%S").ok());
    match written {
        Some(t) => format!("{id_key}@{}", t.format("%Y%m%dT%H%M%S")),
        None => id_key.to_owned(),
    }
}

/// A string field; numbers are accepted as their text (ids often arrive as numbers).
pub(crate) fn text(obj: &Map<String, Value>, field: &str) -> Option<String> {
    match obj.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn optional_time(
    info: &Map<String, Value>,
    zone: Tz,
    now_ms: i64,
) -> Result<Option<i64>, DecodeError> {
    let Some(raw) = text(info, "time").filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let naive = NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%d %H:%M:%S").map_err(|_| {
        DecodeError::Json(format!(
            "time {:?} is not YYYY-MM-DD HH:mm:ss",
            truncate(&raw, 40)
        ))
    })?;
    // In a DST fold (the hour lived twice when clocks go back) the later instant is taken
    // unless it is still ahead of us: a message sent live in the second pass would otherwise be
    // an hour old on arrival, and one sent in the first pass has a later reading an hour ahead.
    // A time inside a DST gap does not exist.
    let local = match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => t,
        LocalResult::Ambiguous(early, late) => {
            if late.timestamp_millis() <= now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
                late
            } else {
                early
            }
        }
        LocalResult::None => {
            return Err(DecodeError::Json(format!(
                "time {raw:?} does not exist in {zone}"
            )))
        }
    };
    Ok(Some(parse_timestamp(
        &Value::from(local.timestamp_millis()),
        now_ms,
    )?))
}

fn required_time(info: &Map<String, Value>, zone: Tz, now_ms: i64) -> Result<i64, DecodeError> {
    optional_time(info, zone, now_ms)?
        .ok_or_else(|| DecodeError::Json("missing field `info.time`".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "mqtt/face";
    // 2026-11-23 08:00:00 UTC
    const NOW: i64 = 1_795_420_800_000;

    static NO_ZONES: BTreeMap<String, Tz> = BTreeMap::new();

    fn ctx() -> FaceContext<'static> {
        FaceContext {
            zone: "Europe/Amsterdam".parse().unwrap(),
            terminal_zones: &NO_ZONES,
            now_ms: NOW,
        }
    }

    fn one(topic: &str, payload: &str) -> NativeMessage {
        let mut v = decode(BASE, topic, payload.as_bytes(), ctx())
            .unwrap()
            .messages;
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    /// A minimal JPEG (SOI, APP0 marker start, EOI), base64.
    const JPEG_B64: &str = "/9j/4AAQ/9k=";

    #[test]
    fn a_record_gives_an_access_row_in_its_terminals_zone_and_is_owed_a_push_ack() {
        let zones = BTreeMap::from([("T9".to_owned(), "Asia/Dubai".parse().unwrap())]);
        let ctx = FaceContext {
            terminal_zones: &zones,
            ..ctx()
        };
        let payload = format!(
            r#"{{"operator":"RecPush","info":{{"customId":"E7","personId":"3","RecordID":"41",
            "VerifyStatus":"2","PersonType":"0","similarity1":"61","Sendintime":"0","personName":"Ann",
            "facesluiceId":"T9","time":"2026-11-23 11:00:00","pic":"data:image/jpeg;base64,{JPEG_B64}"}}}}"#
        );
        let m = decode(BASE, "mqtt/face/T9/Rec", payload.as_bytes(), ctx).unwrap();
        let access = m.access.unwrap();
        assert_eq!(
            access,
            AccessRecord {
                terminal: "T9".into(),
                record_id: "41".into(),
                key: "41@20261123T110000".into(),
                ts_ms: NOW - 3_600_000,
                local_time: "2026-11-23 11:00:00".into(),
                person_id: Some("E7".into()),
                person_name: Some("Ann".into()),
                verify_status: 2,
                person_type: 0,
                similarity: Some(61.0),
                backlog: true,
            },
            "11:00 in Dubai (UTC+4) is 07:00 UTC"
        );
        assert_eq!(
            m.image.as_deref().map(|j| &j[..3]),
            Some(&[0xFF, 0xD8, 0xFF][..])
        );
        let ack = m.push_ack.unwrap();
        assert_eq!(ack.topic(BASE), "mqtt/face/T9");
        let sent: Value = serde_json::from_slice(&ack.encode("m1")).unwrap();
        assert_eq!(sent["operator"], "PushAck");
        assert_eq!(sent["messageId"], "m1");
        assert_eq!(sent["info"]["facesluiceId"], "T9");
        assert_eq!(sent["info"]["SnapOrRecordID"], "41");
        // A time with one-digit fields, which the parser takes, is written out in full: its
        // first ten characters are the day the reports compare.
        let short = payload.replace("2026-11-23 11:00:00", "2026-11-3 9:05:00");
        let later = FaceContext {
            now_ms: NOW + 30 * 86_400_000,
            ..ctx
        };
        let access = decode(BASE, "mqtt/face/T9/Rec", short.as_bytes(), later)
            .unwrap()
            .access
            .unwrap();
        assert_eq!(access.local_time, "2026-11-03 09:05:00");
    }

    #[test]
    fn an_image_with_line_breaks_or_without_padding_is_read() {
        let image = |pic: &str| jpeg(Some(&Value::String(pic.to_owned())));
        let whole = image(JPEG_B64).unwrap();
        // MIME and Android's Base64.DEFAULT break lines (every 76 characters: here 5, the
        // image is small).
        let wrapped: String = JPEG_B64
            .as_bytes()
            .chunks(5)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n");
        assert!(wrapped.contains('\n'));
        assert_eq!(image(&format!("{wrapped}\n")).unwrap(), whole);
        assert_eq!(image(JPEG_B64.trim_end_matches('=')).unwrap(), whole);
        assert_eq!(
            image(&format!("data:image/jpeg;base64,{wrapped}")).unwrap(),
            whole
        );
        assert_eq!(image("not base64!"), Err("image is not base64"));
    }

    #[test]
    fn granted_records_keep_no_image_and_a_bad_snapshot_image_is_said_not_dropped() {
        let granted = format!(
            r#"{{"operator":"RecPush","info":{{"customId":"E7","RecordID":"1","VerifyStatus":"1",
            "facesluiceId":"T1","time":"2026-11-23 08:00:00","pic":"{JPEG_B64}"}}}}"#
        );
        let m = decode(BASE, "mqtt/face/T1/Rec", granted.as_bytes(), ctx()).unwrap();
        assert!(m.image.is_none());
        assert_eq!(m.access.unwrap().verify_status, 1);

        let snap = r#"{"operator":"StrSnapPush","info":{"facesluiceId":"T1","SnapID":"5",
            "time":"2026-11-23 08:00:00","pic":"not base64!"}}"#;
        let m = decode(BASE, "mqtt/face/T1/Snap", snap.as_bytes(), ctx()).unwrap();
        assert!(m.image.is_none() && m.access.is_none());
        let NativeMessage::Event { event, .. } = &m.messages[0] else {
            panic!()
        };
        assert_eq!(
            event.message.as_deref(),
            Some("Unknown face captured (image is not base64)")
        );
        assert_eq!(
            m.push_ack,
            Some(PushAck {
                terminal: "T1".into(),
                kind: PushKind::Snapshot,
                id: "5".into()
            })
        );
    }

    #[test]
    fn a_refused_push_is_still_owed_its_ack_and_a_broken_envelope_is_not() {
        // A similarity that is no number: refused, but the terminal must hear back.
        let bad = r#"{"operator":"RecPush","info":{"facesluiceId":"T1","RecordID":"77",
            "VerifyStatus":"1","similarity1":"high","time":"2026-11-23 09:00:00"}}"#;
        assert!(decode(BASE, "mqtt/face/T1/Rec", bad.as_bytes(), ctx()).is_err());
        assert_eq!(
            owed_ack(BASE, "mqtt/face/T1/Rec", bad.as_bytes()),
            Some(PushAck {
                terminal: "T1".into(),
                kind: PushKind::Record,
                id: "77".into()
            })
        );
        // A stranger capture with a time that is no time is kept (below), and answered.
        let snap =
            r#"{"operator":"StrSnapPush","info":{"facesluiceId":"T1","SnapID":"9","time":"soon"}}"#;
        assert_eq!(
            decode(BASE, "mqtt/face/T1/Snap", snap.as_bytes(), ctx())
                .unwrap()
                .push_ack
                .map(|a| (a.kind, a.id)),
            Some((PushKind::Snapshot, "9".into()))
        );
        // Too big to decode (a scene of several MB), or from a terminal whose id is no device
        // id of ours: refused, and answered on the topic's terminal.
        let big = |mb: usize| {
            format!(
                r#"{{"operator":"StrSnapPush","info":{{"facesluiceId":"T1","SnapID":"12","time":"2026-11-23 08:00:00","pic":"{}"}}}}"#,
                "A".repeat(mb * 1024 * 1024)
            )
        };
        assert!(
            decode(BASE, "mqtt/face/T1/Snap", big(2).as_bytes(), ctx()).is_ok(),
            "a 2 MB snapshot is taken"
        );
        let oversized = decode(BASE, "mqtt/face/T1/Snap", big(5).as_bytes(), ctx()).unwrap_err();
        assert_eq!(oversized.code(), "oversized");
        assert_eq!(
            owed_ack(BASE, "mqtt/face/T1/Snap", big(5).as_bytes()).map(|a| (a.terminal, a.id)),
            Some(("T1".into(), "12".into()))
        );
        let spaced = r#"{"operator":"RecPush","info":{"facesluiceId":"Gate 1","RecordID":"3","time":"2026-11-23 08:00:00"}}"#;
        assert!(decode(BASE, "mqtt/face/Gate 1/Rec", spaced.as_bytes(), ctx()).is_err());
        assert_eq!(
            owed_ack(BASE, "mqtt/face/Gate 1/Rec", spaced.as_bytes()).map(|a| a.topic(BASE)),
            Some("mqtt/face/Gate 1".into())
        );
        // Nothing to answer: no record id, a terminal the topic contradicts, an id out of
        // bounds, not a push, not JSON.
        for (topic, payload) in [
            (
                "mqtt/face/T1/Rec",
                r#"{"operator":"RecPush","info":{"facesluiceId":"T1"}}"#.to_owned(),
            ),
            (
                "mqtt/face/T1/Rec",
                r#"{"operator":"RecPush","info":{"facesluiceId":"T2","RecordID":"1"}}"#.to_owned(),
            ),
            (
                "mqtt/face/T1/Rec",
                format!(
                    r#"{{"operator":"RecPush","info":{{"RecordID":"{}"}}}}"#,
                    "9".repeat(5000)
                ),
            ),
            (
                "mqtt/face/T1/Alarm",
                r#"{"operator":"RecPush","info":{"RecordID":"1"}}"#.to_owned(),
            ),
            (
                "mqtt/face/heartbeat",
                r#"{"operator":"HeartBeat","info":{"facesluiceId":"T1"}}"#.to_owned(),
            ),
            ("mqtt/face/T1/Rec", "not json".to_owned()),
        ] {
            assert_eq!(
                owed_ack(BASE, topic, payload.as_bytes()),
                None,
                "{topic} {payload}"
            );
        }
    }

    #[test]
    fn online_and_heartbeat_are_online_statuses_in_the_terminals_zone() {
        let m = one(
            "mqtt/face/basic",
            r#"{"messageId":"1","operator":"Online","info":{"facesluiceId":"T100","username":"admin",
                "time":"2026-11-23 08:59:30","ip":"10.0.0.7","facesname":"Gate North"}}"#,
        );
        let NativeMessage::Status { device, status } = m else {
            panic!()
        };
        assert_eq!(device.as_str(), "face:T100");
        assert!(status.online);
        assert_eq!(status.kind, Some(DeviceKind::Terminal));
        assert_eq!(status.name.as_deref(), Some("Gate North"));
        assert_eq!(
            status.ts_ms,
            NOW - 30_000,
            "08:59:30 in Amsterdam (UTC+1) is 07:59:30 UTC"
        );

        let m = one(
            "mqtt/face/heartbeat",
            r#"{"operator":"HeartBeat","info":{"facesluiceId":"T100","time":"2026-11-23 09:00:00"}}"#,
        );
        assert!(
            matches!(m, NativeMessage::Status { status, .. } if status.online && status.ts_ms == NOW)
        );
    }

    #[test]
    fn a_terminal_whose_clock_is_not_set_still_raises_its_alarms_and_keeps_its_records() {
        // Back from a power cut at the firmware's date.
        const UNSET: &str = "2000-01-01 00:03:00";
        let heartbeat = format!(
            r#"{{"operator":"HeartBeat","info":{{"facesluiceId":"T1","time":"{UNSET}"}}}}"#
        );
        // Its presence is stamped on arrival: it is online, whatever its clock says.
        let beat = one("mqtt/face/heartbeat", &heartbeat);
        assert!(matches!(beat, NativeMessage::Status { status, .. }
            if status.online && status.ts_ms == NOW && status.stamped_on_arrival));
        // Its records are kept, stamped on arrival: the attendance row on the terminal's
        // calendar at that instant (NOW is 09:00 in Amsterdam), answered as ever.
        let record = |person_type: u8| {
            format!(
                r#"{{"operator":"RecPush","info":{{"facesluiceId":"T1","RecordID":"41","customId":"E7",
                "VerifyStatus":"1","PersonType":"{person_type}","time":"{UNSET}"}}}}"#
            )
        };
        let entry = decode(BASE, "mqtt/face/T1/Rec", record(0).as_bytes(), ctx()).unwrap();
        let access = entry.access.unwrap();
        assert_eq!(
            (access.ts_ms, access.local_time.as_str()),
            (NOW, "2026-11-23 09:00:00")
        );
        // A block-list match is raised, stamped on arrival.
        let matched = decode(BASE, "mqtt/face/T1/Rec", record(1).as_bytes(), ctx()).unwrap();
        assert!(matched.access.is_some());
        assert_eq!(matched.push_ack.map(|a| a.id), Some("41".into()));
        let [NativeMessage::Event { event, .. }] = &matched.messages[..] else {
            panic!("{:?}", matched.messages)
        };
        assert_eq!(
            (
                event.event_type.as_str(),
                event.ts_ms,
                event.stamped_on_arrival
            ),
            ("blocklist_match", NOW, true)
        );
        let message = event.message.as_deref().unwrap();
        assert!(
            message.starts_with(
                "E7, verify status 1 (no image sent) (terminal time \"2000-01-01 00:03:00\" refused: "
            ) && message.contains("before 2010: the device's clock is not set;")
                && message.ends_with("stamped on arrival)"),
            "{message}"
        );
        // So is a stranger at the door.
        let snap = one(
            "mqtt/face/T1/Snap",
            &format!(
                r#"{{"operator":"StrSnapPush","info":{{"facesluiceId":"T1","SnapID":"8","time":"{UNSET}","pic":"{JPEG_B64}"}}}}"#
            ),
        );
        let NativeMessage::Event { event, .. } = snap else {
            panic!("{snap:?}")
        };
        assert_eq!((event.ts_ms, event.stamped_on_arrival), (NOW, true));
        assert!(
            event
                .message
                .as_deref()
                .unwrap()
                .starts_with("Unknown face captured (terminal time refused: "),
            "{:?}",
            event.message
        );
        // And its will ends its session, stamped on arrival.
        let will = one(
            "mqtt/face/basic",
            &format!(r#"{{"operator":"Offline","info":{{"facesluiceId":"T1","time":"{UNSET}"}}}}"#),
        );
        assert!(matches!(will, NativeMessage::Status { status, .. }
            if !status.online && status.ts_ms == NOW && status.stamped_on_arrival));
    }

    #[test]
    fn the_offline_will_without_a_time_is_stamped_on_arrival() {
        let m = one(
            "mqtt/face/basic",
            r#"{"operator":"Offline","info":{"facesluiceId":"T100"}}"#,
        );
        assert!(matches!(m, NativeMessage::Status { status, .. }
            if !status.online && status.ts_ms == NOW && status.stamped_on_arrival));
        let timed = one(
            "mqtt/face/basic",
            r#"{"operator":"Offline","info":{"facesluiceId":"T100","time":"2026-11-23 08:59:00"}}"#,
        );
        assert!(matches!(timed, NativeMessage::Status { status, .. }
            if status.ts_ms == NOW - 60_000 && !status.stamped_on_arrival));
    }

    #[test]
    fn a_block_list_match_is_critical_and_keyed_by_record_id() {
        let payload = r#"{"operator":"RecPush","info":{"customId":"","personId":"88","RecordID":"5501",
            "VerifyStatus":"1","PersonType":"1","similarity1":"93.5","Sendintime":"1",
            "persionName":"J. Smith","facesluiceId":"T100","time":"2026-11-23 08:30:00","pic":"AAAA"}}"#;
        let NativeMessage::Event { event, .. } = one("mqtt/face/T100/Rec", payload) else {
            panic!()
        };
        assert_eq!(event.event_id, "rec-5501@20261123T083000");
        assert_eq!(
            (event.event_type.as_str(), event.severity),
            ("blocklist_match", Severity::Critical)
        );
        let msg = event.message.unwrap();
        assert!(
            msg.contains("J. Smith (#88@T100)") && msg.contains("similarity 93.5"),
            "{msg}"
        );
        assert_eq!(event.ts_ms, NOW - 30 * 60_000);
        // The attendance row carries the terminal's own number marked, never as employee "88".
        let m = decode(BASE, "mqtt/face/T100/Rec", payload.as_bytes(), ctx()).unwrap();
        assert_eq!(m.access.unwrap().person_id.as_deref(), Some("#88@T100"));
    }

    #[test]
    fn a_terminal_counting_from_one_again_is_not_taken_for_a_re_push() {
        let event_id = |topic: &str, payload: &str| match one(topic, payload) {
            NativeMessage::Event { event, .. } => event.event_id,
            other => panic!("{other:?}"),
        };
        let rec = |id: &str, time: &str, live: &str| {
            format!(
                r#"{{"operator":"RecPush","info":{{"customId":"E7","RecordID":"{id}","VerifyStatus":"1","facesluiceId":"T1","time":"{time}","Sendintime":"{live}"}}}}"#
            )
        };
        let first = event_id("mqtt/face/T1/Rec", &rec("1", "2026-11-20 08:00:00", "1"));
        // Sent again from the backlog, the time written in short: one record.
        let again = event_id("mqtt/face/T1/Rec", &rec("1", "2026-11-20 8:00:00", "0"));
        assert_eq!(first, again);
        // Reset (or replaced), the terminal numbers a later record 1 again: another record.
        let after_reset = event_id("mqtt/face/T1/Rec", &rec("1", "2026-11-23 07:59:00", "1"));
        assert_ne!(first, after_reset);
        // With no time it can read, the id alone (each copy is stamped on arrival).
        assert_eq!(
            event_id("mqtt/face/T1/Rec", &rec("1", "soon", "1")),
            "rec-1"
        );
        let snap = |time: &str| {
            format!(
                r#"{{"operator":"StrSnapPush","info":{{"facesluiceId":"T1","SnapID":"3","time":"{time}"}}}}"#
            )
        };
        assert_ne!(
            event_id("mqtt/face/T1/Snap", &snap("2026-11-20 08:00:00")),
            event_id("mqtt/face/T1/Snap", &snap("2026-11-23 07:00:00"))
        );
        let m = decode(
            BASE,
            "mqtt/face/T1/Rec",
            rec("1", "2026-11-20 08:00:00", "1").as_bytes(),
            ctx(),
        )
        .unwrap();
        let access = m.access.unwrap();
        assert_eq!(
            (access.record_id.as_str(), access.key.as_str()),
            ("1", "1@20261120T080000")
        );
        assert_eq!(
            m.push_ack.unwrap().id,
            "1",
            "the PushAck names the RecordID"
        );
    }

    #[test]
    fn refused_and_unregistered_verifications_and_stranger_snaps() {
        let rec = |verify: &str| {
            format!(
                r#"{{"operator":"RecPush","info":{{"customId":"E7","RecordID":9,"VerifyStatus":"{verify}","PersonType":"0","personName":"Ann","facesluiceId":"T1","time":"2026-11-23 08:00:00","Sendintime":"0"}}}}"#
            )
        };
        let kind = |p: &str| match one("mqtt/face/T1/Rec", p) {
            NativeMessage::Event { event, .. } => {
                (event.event_type, event.severity, event.message.unwrap())
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(&rec("2")).0, "access_refused");
        assert_eq!(kind(&rec("3")).1, Severity::Low);
        let (t, s, m) = kind(&rec("1"));
        assert_eq!((t.as_str(), s), ("access_granted", Severity::Info));
        assert!(m.ends_with("from backlog"), "{m}");
        // Only 1 is a granted access: 0 is "none" (no verification), others are not known.
        assert_eq!(kind(&rec("0")).0, "no_verification");
        let (t, s, m) = kind(&rec("4"));
        assert_eq!((t.as_str(), s), ("access_unknown", Severity::Low));
        assert!(m.contains("verify status 4"), "{m}");
        let absent = r#"{"operator":"RecPush","info":{"customId":"E7","RecordID":9,"PersonType":"0","facesluiceId":"T1","time":"2026-11-23 08:00:00"}}"#;
        assert_eq!(kind(absent).0, "no_verification");

        let snap = one(
            "mqtt/face/T1/Snap",
            r#"{"operator":"StrSnapPush","info":{"facesluiceId":"T1","SnapID":"77","time":"2026-11-23 08:00:00","pic":"AAAA"}}"#,
        );
        assert!(
            matches!(snap, NativeMessage::Event { event, .. } if event.event_id == "snap-77@20261123T080000" && event.event_type == "stranger_capture")
        );
    }

    #[test]
    fn an_alarm_raises_its_event_whatever_the_firmware_put_in_its_text() {
        let alarm = |detail: &str| {
            let payload = serde_json::json!({
                "messageId": "a1", "operator": "DoorAlarm",
                "info": {"facesluiceId": "T1", "detail": detail}
            })
            .to_string();
            match one("mqtt/face/T1/Alarm", &payload) {
                NativeMessage::Event { event, .. } => event.message.unwrap(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(alarm("door forced\r\n"), "DoorAlarm: door forced");
        assert_eq!(alarm("tamper \u{1b}[2J"), "DoorAlarm: tamper  [2J");
        assert_eq!(alarm("door\u{202E}decrof"), "DoorAlarm: door decrof");
        let long = alarm(&"x".repeat(5_000));
        assert!(
            long.ends_with('…') && long.chars().count() < MAX_MESSAGE_CHARS,
            "{long}"
        );
    }

    /// The event id T1's alarm `payload` gets when it arrives at `now_ms`.
    fn alarm_id_at(now_ms: i64, payload: &serde_json::Value) -> String {
        let ctx = FaceContext { now_ms, ..ctx() };
        match decode(
            BASE,
            "mqtt/face/T1/Alarm",
            payload.to_string().as_bytes(),
            ctx,
        )
        .unwrap()
        .messages
        .remove(0)
        {
            NativeMessage::Event { event, .. } => event.event_id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_alarm_with_no_message_id_or_no_usable_time_is_raised_all_the_same() {
        let decode_alarm =
            |payload: &serde_json::Value| match one("mqtt/face/T1/Alarm", &payload.to_string()) {
                NativeMessage::Event { event, .. } => event,
                other => panic!("{other:?}"),
            };
        // No messageId: the id is the content's hash, the same for a redelivered copy; with
        // no time either, the 10 minutes of its arrival tell a second alarm from a redelivery.
        let no_id = serde_json::json!({"operator": "DoorAlarm", "info": {"facesluiceId": "T1", "detail": "door forced"}});
        let a = decode_alarm(&no_id);
        assert!(a.event_id.starts_with("alarm-h"), "{}", a.event_id);
        assert_eq!(decode_alarm(&no_id).event_id, a.event_id);
        let later = alarm_id_at;
        assert_ne!(
            later(NOW + 86_400_000, &no_id),
            a.event_id,
            "the next night's alarm is its own"
        );
        let timed = serde_json::json!({"operator": "DoorAlarm", "info": {"facesluiceId": "T1", "time": "2026-11-23 08:59:00"}});
        assert_eq!(
            later(NOW + 120_000, &timed),
            later(NOW, &timed),
            "its own time tells it apart: a redelivery is one"
        );
        let other = serde_json::json!({"operator": "DoorAlarm", "info": {"facesluiceId": "T1", "detail": "tamper"}});
        assert_ne!(decode_alarm(&other).event_id, a.event_id);
        assert_eq!((a.ts_ms, a.stamped_on_arrival), (NOW, true));

        // 08:00 UTC is 09:00 in Amsterdam: 10:00 there is an hour ahead; 02:30 on 2026-03-29
        // does not exist there; and one time is no time.
        for (time, why) in [
            ("2026-11-23 10:00:00", "ahead of the receiver's clock"),
            ("2026-03-29 02:30:00", "does not exist in Europe/Amsterdam"),
            ("soon", "is not YYYY-MM-DD HH:mm:ss"),
        ] {
            let alarm = decode_alarm(&serde_json::json!({
                "messageId": "a7", "operator": "DoorAlarm",
                "info": {"facesluiceId": "T1", "detail": "door forced", "time": time}
            }));
            assert_eq!(
                (alarm.ts_ms, alarm.stamped_on_arrival),
                (NOW, true),
                "{time}"
            );
            let message = alarm.message.unwrap();
            assert!(
                message.starts_with("DoorAlarm: door forced (terminal time refused: ")
                    && message.contains(why)
                    && message.ends_with("; stamped on arrival)"),
                "{time}: {message}"
            );
        }
        // A good time is the terminal's.
        let on_time = decode_alarm(&serde_json::json!({
            "messageId": "a8", "operator": "DoorAlarm",
            "info": {"facesluiceId": "T1", "time": "2026-11-23 08:59:00"}
        }));
        assert_eq!(
            (on_time.ts_ms, on_time.stamped_on_arrival),
            (NOW - 60_000, false)
        );
    }

    #[test]
    fn an_alarm_is_its_own_whatever_its_message_id_and_is_raised_without_an_envelope() {
        let id_of =
            |payload: serde_json::Value| match one("mqtt/face/T1/Alarm", &payload.to_string()) {
                NativeMessage::Event { event, .. } => (event.event_id, event.message.unwrap()),
                other => panic!("{other:?}"),
            };
        let alarm = |message_id: &str, time: &str| {
            id_of(serde_json::json!({
                "messageId": message_id, "operator": "DoorAlarm",
                "info": {"facesluiceId": "T1", "detail": "door forced", "time": time}
            }))
            .0
        };
        // A counter that starts again after a reboot: the same number, another alarm.
        let first = alarm("1", "2026-11-23 08:00:00");
        assert!(first.starts_with("alarm-1-"), "{first}");
        assert_eq!(
            alarm("1", "2026-11-23 08:00:00"),
            first,
            "a redelivery is one"
        );
        assert_ne!(alarm("1", "2026-11-23 08:30:00"), first);
        // An empty messageId, or one no event id can hold, is no messageId: the alarm is
        // raised, and two of them are two.
        for bad in ["", "  ", "a\u{7}b", &"m".repeat(200)] {
            let id = alarm(bad, "2026-11-23 08:00:00");
            assert!(id.starts_with("alarm-h"), "{bad:?}: {id}");
            assert_ne!(alarm(bad, "2026-11-23 08:10:00"), id, "{bad:?}");
        }
        // With no time either, the ten minutes it arrived in tell a reboot's "1" from the last.
        let timeless = serde_json::json!({"messageId": "1", "operator": "DoorAlarm", "info": {"facesluiceId": "T1"}});
        let at = |now_ms: i64| alarm_id_at(now_ms, &timeless);
        assert_eq!(at(NOW + 1_000), at(NOW), "a redelivery is one");
        assert_ne!(at(NOW + 86_400_000), at(NOW), "the next night's is its own");
        // No operator, and an `info` that is not an object: raised all the same.
        let (_, message) = id_of(serde_json::json!({"messageId": "m", "info": "door open"}));
        assert!(message.starts_with("Alarm: door open"), "{message}");
    }

    #[test]
    fn a_push_with_a_blank_id_is_kept_under_its_hash_and_answered_as_sent() {
        for (topic, operator, field, prefix) in [
            ("mqtt/face/T1/Rec", "RecPush", "RecordID", "rec-h"),
            ("mqtt/face/T1/Snap", "StrSnapPush", "SnapID", "snap-h"),
        ] {
            let push = |time: &str| {
                serde_json::json!({
                    "operator": operator,
                    "info": {"facesluiceId": "T1", field: " ", "time": time, "customId": "E1"}
                })
                .to_string()
            };
            let event_id = |payload: &str| match decode(BASE, topic, payload.as_bytes(), ctx())
                .unwrap()
                .messages
                .remove(0)
            {
                NativeMessage::Event { event, .. } => event.event_id,
                other => panic!("{other:?}"),
            };
            let (first, second) = (push("2026-11-23 08:59:00"), push("2026-11-23 08:59:30"));
            let id = event_id(&first);
            assert!(id.starts_with(prefix), "{id}");
            assert_eq!(event_id(&first), id, "a copy sent again is one");
            // So is one the terminal sends again itself, from its backlog, in a new envelope.
            let mut again: Value = serde_json::from_str(&first).unwrap();
            again["messageId"] = "m-2".into();
            again["info"]["Sendintime"] = 0.into();
            assert_eq!(
                event_id(&again.to_string()),
                id,
                "re-pushed from the backlog"
            );
            assert_ne!(event_id(&second), id, "two pushes are two");
            // Answered with the id the terminal sent, or it pushes it again for ever.
            let answer = decode(BASE, topic, first.as_bytes(), ctx())
                .unwrap()
                .push_ack
                .unwrap();
            assert_eq!(answer.id, " ");
            assert_eq!(owed_ack(BASE, topic, first.as_bytes()).unwrap().id, " ");
        }
    }

    #[test]
    fn an_alarm_is_raised_whatever_the_lengths_of_its_operator_detail_and_time() {
        let payload = serde_json::json!({
            "messageId": "a9", "operator": format!("Door\u{7}{}", "X".repeat(500)),
            "info": {"facesluiceId": "T1", "detail": "y".repeat(5_000), "time": "2026-11-23 10:00:00"}
        });
        match one("mqtt/face/T1/Alarm", &payload.to_string()) {
            NativeMessage::Event { event, .. } => {
                let message = event.message.unwrap();
                assert!(
                    message.chars().count() <= MAX_MESSAGE_CHARS,
                    "{}",
                    message.chars().count()
                );
                assert!(message.starts_with("Door X"), "{message}");
                assert!(message.ends_with("; stamped on arrival)"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn in_the_hour_lived_twice_a_live_message_is_read_as_now() {
        // Europe/Amsterdam, 2026-10-25: 02:00-03:00 CEST (UTC+2) is lived again as CET (UTC+1).
        let first_pass = 1_792_888_200_000; // 00:30 UTC: 02:30 CEST
        let second_pass = first_pass + 3_600_000; // 01:30 UTC: 02:30 CET
        let heartbeat =
            r#"{"operator":"HeartBeat","info":{"facesluiceId":"T1","time":"2026-10-25 02:30:00"}}"#;
        let at = |now_ms| {
            let ctx = FaceContext { now_ms, ..ctx() };
            match decode(BASE, "mqtt/face/heartbeat", heartbeat.as_bytes(), ctx)
                .unwrap()
                .messages
                .remove(0)
            {
                NativeMessage::Status { status, .. } => status.ts_ms,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(at(first_pass), first_pass, "sent in the first pass");
        assert_eq!(
            at(second_pass),
            second_pass,
            "sent in the second: not an hour old"
        );
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let cases = [
            (
                "mqtt/face/T1/Ack",
                r#"{"operator":"EditPerson-Ack"}"#,
                "unknown_topic",
            ),
            ("mqtt/face/basic", r#"{"info":{}}"#, "malformed"),
            (
                "mqtt/face/basic",
                r#"{"operator":"Online","info":{"facesluiceId":"T/1","time":"2026-11-23 08:00:00"}}"#,
                "bad_device_id",
            ),
            (
                "mqtt/face/basic",
                r#"{"operator":"Reboot","info":{"facesluiceId":"T1"}}"#,
                "unsupported",
            ),
            (
                "mqtt/face/T2/Rec",
                r#"{"operator":"RecPush","info":{"facesluiceId":"T1","RecordID":"1","time":"2026-11-23 08:00:00"}}"#,
                "malformed",
            ),
            (
                "mqtt/face/T1/Rec",
                r#"{"operator":"RecPush","info":{"facesluiceId":"T1","RecordID":"1","VerifyStatus":"yes","time":"2026-11-23 08:00:00"}}"#,
                "malformed",
            ),
        ];
        for (topic, payload, code) in cases {
            let err = decode(BASE, topic, payload.as_bytes(), ctx()).unwrap_err();
            assert_eq!(err.code(), code, "{topic} {payload}: {err}");
        }
        // Presence with a time that is no time (not one, ahead, in a DST gap: 2026-03-29 02:30
        // does not exist in Amsterdam) says "online now": stamped on arrival.
        for (topic, payload) in [
            (
                "mqtt/face/basic",
                r#"{"operator":"Online","info":{"facesluiceId":"T1","time":"23/11/2026"}}"#,
            ),
            (
                "mqtt/face/basic",
                r#"{"operator":"Online","info":{"facesluiceId":"T1","time":"2027-01-01 00:00:00"}}"#,
            ),
            (
                "mqtt/face/heartbeat",
                r#"{"operator":"HeartBeat","info":{"facesluiceId":"T1","time":"2026-03-29 02:30:00"}}"#,
            ),
        ] {
            let m = one(topic, payload);
            assert!(
                matches!(&m, NativeMessage::Status { status, .. }
                    if status.online && status.ts_ms == NOW && status.stamped_on_arrival),
                "{payload}: {m:?}"
            );
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever arrives, the decoder answers; it never panics.
        #[test]
        fn never_panics(topic in "mqtt/face(/[A-Za-z0-9+#]{0,8}){0,3}", payload in proptest::collection::vec(any::<u8>(), 0..256)) {
            let zones = BTreeMap::new();
            let ctx = FaceContext { zone: chrono_tz::UTC, terminal_zones: &zones, now_ms: 1_795_420_800_000 };
            let _ = decode("mqtt/face", &topic, &payload, ctx);
        }
    }
}
