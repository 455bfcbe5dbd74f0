//! Face-recognition terminals ("mqtt/face" family, `../shared/protocols/face-terminals-mqtt-face.md`):
//! the presence, heartbeat and record side. (Person sync, with its commands and Acks, is
//! [`crate::face_sync`].)
//!
//! Topics under a configurable base (default `mqtt/face`):
//! - `{base}/basic`: `Online` (-> online status, name from `facesname`) and `Offline` (-> offline
//!   status; it is also the terminal's MQTT will, so its `time` may be missing);
//! - `{base}/heartbeat`: `HeartBeat` (-> online status);
//! - `{base}/{id}/Rec`: `RecPush` (-> an access event, id `rec-{RecordID}`, so a terminal's
//!   re-push is stored once);
//! - `{base}/{id}/Snap`: `StrSnapPush` (-> a stranger-capture event, id `snap-{SnapID}`);
//! - `{base}/{id}/Alarm`: door / tamper alarms (-> an event).
//!
//! Terminals stamp `time` as `YYYY-MM-DD HH:mm:ss` in their local time with no offset: the caller
//! passes the zone the terminals are set to. Numbers often arrive as strings; one firmware spells
//! `personName` as `persionName`. Device ids are `face:{facesluiceId}`. Face crops and snapshots
//! (`pic`, base64) are not kept by this decoder.

use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use crate::device_id::DeviceId;
use crate::lenient::optional_number;
use crate::native::{
    bounded_text, parse_object, DecodeError, DeviceEvent, DeviceKind, NativeMessage, Severity,
    Status, MAX_EVENT_FIELD_CHARS, MAX_MESSAGE_CHARS, MAX_NAME_CHARS,
};
use crate::time::{parse_timestamp, truncate};

/// The namespace of face-terminal device ids.
pub const NAMESPACE: &str = "face";
/// Records carry a base64 face crop, snapshots a base64 scene: far larger than a location.
pub const MAX_FACE_PAYLOAD_BYTES: usize = 1024 * 1024;

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
pub struct FaceContext {
    /// The zone the terminals' clocks are set to.
    pub zone: Tz,
    /// The receiver's clock (epoch ms): refuses times from the future, stamps an Offline will.
    pub now_ms: i64,
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

/// Decodes one terminal message.
pub fn decode(
    base: &str,
    topic: &str,
    payload: &[u8],
    ctx: FaceContext,
) -> Result<Vec<NativeMessage>, DecodeError> {
    let (topic_id, kind) = parse_topic(base, topic)?;
    let msg = parse_object(payload, MAX_FACE_PAYLOAD_BYTES)?;
    let operator = text(&msg, "operator")
        .ok_or_else(|| DecodeError::Json("missing field `operator`".into()))?;
    let empty = Map::new();
    let info = match msg.get("info") {
        Some(Value::Object(info)) => info,
        None => &empty,
        Some(_) => return Err(DecodeError::Json("`info` is not an object".into())),
    };
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
    let device = DeviceId::namespaced(NAMESPACE, &id_text)?;
    let status = |online: bool, ts_ms: i64, name: Option<String>| NativeMessage::Status {
        device: device.clone(),
        status: Status {
            ts_ms,
            online,
            battery: None,
            signal: None,
            kind: Some(DeviceKind::Terminal),
            name,
            simulated: false,
        },
    };
    match (kind, operator.as_str()) {
        (Topic::Basic, "Online") => {
            let name = text(info, "facesname")
                .filter(|n| !n.is_empty())
                .map(|n| bounded_text("facesname", n, MAX_NAME_CHARS))
                .transpose()?;
            Ok(vec![status(true, required_time(info, ctx)?, name)])
        }
        // The will has no time: it is stamped on arrival.
        (Topic::Basic, "Offline") => Ok(vec![status(
            false,
            optional_time(info, ctx)?.unwrap_or(ctx.now_ms),
            None,
        )]),
        (Topic::Heartbeat, "HeartBeat") => Ok(vec![status(true, required_time(info, ctx)?, None)]),
        (Topic::Rec, "RecPush") => Ok(vec![record(device.clone(), info, ctx)?]),
        (Topic::Snap, "StrSnapPush") => {
            let snap = text(info, "SnapID")
                .ok_or_else(|| DecodeError::Json("missing field `info.SnapID`".into()))?;
            Ok(vec![event(
                device.clone(),
                format!("snap-{snap}"),
                required_time(info, ctx)?,
                "stranger_capture",
                Severity::High,
                Some("Unknown face captured".to_owned()),
            )?])
        }
        (Topic::Alarm, op) => {
            let id = text(&msg, "messageId")
                .ok_or_else(|| DecodeError::Json("missing field `messageId`".into()))?;
            let detail = text(info, "detail").or_else(|| text(info, "alarmType"));
            Ok(vec![event(
                device.clone(),
                format!("alarm-{id}"),
                optional_time(info, ctx)?.unwrap_or(ctx.now_ms),
                "terminal_alarm",
                Severity::High,
                Some(format!(
                    "{op}{}",
                    detail.map(|d| format!(": {d}")).unwrap_or_default()
                )),
            )?])
        }
        (_, op) => Err(DecodeError::Unsupported(format!(
            "operator {:?} is not expected on this topic",
            truncate(op, 32)
        ))),
    }
}

/// A `RecPush`: who was recognised (or refused) at the terminal.
fn record(
    device: DeviceId,
    info: &Map<String, Value>,
    ctx: FaceContext,
) -> Result<NativeMessage, DecodeError> {
    let record_id = text(info, "RecordID")
        .ok_or_else(|| DecodeError::Json("missing field `info.RecordID`".into()))?;
    let verify = optional_number(info, "VerifyStatus")?.unwrap_or(0.0) as i64;
    let person_type = optional_number(info, "PersonType")?.unwrap_or(0.0) as i64;
    // Persons enrolled on the terminal itself have an empty customId: fall back to personId.
    let person = text(info, "customId")
        .filter(|c| !c.is_empty())
        .or_else(|| text(info, "personId").filter(|p| !p.is_empty()));
    let name = text(info, "personName")
        .or_else(|| text(info, "persionName"))
        .filter(|n| !n.is_empty());
    let similarity = optional_number(info, "similarity1")?;
    let (event_type, severity) = match (person_type, verify) {
        (1, _) => ("blocklist_match", Severity::Critical),
        (_, 2) => ("access_refused", Severity::Medium),
        (_, 3) => ("not_registered", Severity::Low),
        _ => ("access_granted", Severity::Info),
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
    if optional_number(info, "Sendintime")? == Some(0.0) {
        message += ", from backlog";
    }
    event(
        device,
        format!("rec-{record_id}"),
        required_time(info, ctx)?,
        event_type,
        severity,
        Some(message),
    )
}

fn event(
    device: DeviceId,
    event_id: String,
    ts_ms: i64,
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
                .map(|m| bounded_text("message", m, MAX_MESSAGE_CHARS))
                .transpose()?,
            position: None,
        },
    })
}

/// A string field; numbers are accepted as their text (ids often arrive as numbers).
pub(crate) fn text(obj: &Map<String, Value>, field: &str) -> Option<String> {
    match obj.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn optional_time(info: &Map<String, Value>, ctx: FaceContext) -> Result<Option<i64>, DecodeError> {
    let Some(raw) = text(info, "time").filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let naive = NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%d %H:%M:%S").map_err(|_| {
        DecodeError::Json(format!(
            "time {:?} is not YYYY-MM-DD HH:mm:ss",
            truncate(&raw, 40)
        ))
    })?;
    // In a DST fold the earlier instant is taken; a time inside a DST gap does not exist.
    let local = ctx
        .zone
        .from_local_datetime(&naive)
        .earliest()
        .ok_or_else(|| DecodeError::Json(format!("time {raw:?} does not exist in {}", ctx.zone)))?;
    Ok(Some(parse_timestamp(
        &Value::from(local.timestamp_millis()),
        ctx.now_ms,
    )?))
}

fn required_time(info: &Map<String, Value>, ctx: FaceContext) -> Result<i64, DecodeError> {
    optional_time(info, ctx)?.ok_or_else(|| DecodeError::Json("missing field `info.time`".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "mqtt/face";
    // 2026-11-23 08:00:00 UTC
    const NOW: i64 = 1_795_420_800_000;

    fn ctx() -> FaceContext {
        FaceContext {
            zone: "Europe/Amsterdam".parse().unwrap(),
            now_ms: NOW,
        }
    }

    fn one(topic: &str, payload: &str) -> NativeMessage {
        let mut v = decode(BASE, topic, payload.as_bytes(), ctx()).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
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
    fn the_offline_will_without_a_time_is_stamped_on_arrival() {
        let m = one(
            "mqtt/face/basic",
            r#"{"operator":"Offline","info":{"facesluiceId":"T100"}}"#,
        );
        assert!(
            matches!(m, NativeMessage::Status { status, .. } if !status.online && status.ts_ms == NOW)
        );
    }

    #[test]
    fn a_block_list_match_is_critical_and_keyed_by_record_id() {
        let payload = r#"{"operator":"RecPush","info":{"customId":"","personId":"88","RecordID":"5501",
            "VerifyStatus":"1","PersonType":"1","similarity1":"93.5","Sendintime":"1",
            "persionName":"J. Smith","facesluiceId":"T100","time":"2026-11-23 08:30:00","pic":"AAAA"}}"#;
        let NativeMessage::Event { event, .. } = one("mqtt/face/T100/Rec", payload) else {
            panic!()
        };
        assert_eq!(event.event_id, "rec-5501");
        assert_eq!(
            (event.event_type.as_str(), event.severity),
            ("blocklist_match", Severity::Critical)
        );
        let msg = event.message.unwrap();
        assert!(
            msg.contains("J. Smith (88)") && msg.contains("similarity 93.5"),
            "{msg}"
        );
        assert_eq!(event.ts_ms, NOW - 30 * 60_000);
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

        let snap = one(
            "mqtt/face/T1/Snap",
            r#"{"operator":"StrSnapPush","info":{"facesluiceId":"T1","SnapID":"77","time":"2026-11-23 08:00:00","pic":"AAAA"}}"#,
        );
        assert!(
            matches!(snap, NativeMessage::Event { event, .. } if event.event_id == "snap-77" && event.event_type == "stranger_capture")
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
                r#"{"operator":"Online","info":{"facesluiceId":"T1","time":"23/11/2026"}}"#,
                "malformed",
            ),
            (
                "mqtt/face/basic",
                r#"{"operator":"Online","info":{"facesluiceId":"T1","time":"2027-01-01 00:00:00"}}"#,
                "bad_timestamp",
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
        // 2026-03-29 02:30 does not exist in Amsterdam (clocks jump from 02:00 to 03:00).
        let gap = decode(BASE, "mqtt/face/heartbeat", br#"{"operator":"HeartBeat","info":{"facesluiceId":"T1","time":"2026-03-29 02:30:00"}}"#, ctx()).unwrap_err();
        assert!(gap.to_string().contains("does not exist"), "{gap}");
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
            let ctx = FaceContext { zone: chrono_tz::UTC, now_ms: 1_795_420_800_000 };
            let _ = decode("mqtt/face", &topic, &payload, ctx);
        }
    }
}
