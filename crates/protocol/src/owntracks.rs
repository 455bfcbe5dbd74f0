//! OwnTracks (phones as trackers), from `../shared/protocols/owntracks.md` and the OwnTracks
//! booklet's JSON reference.
//!
//! Topics, under a configurable base (the phone's `pubTopicBase`, default `owntracks`):
//! - `{base}/{user}/{device}`: `_type` `location` (a fix, and the phone's battery), or `lwt`
//!   (the broker's last will for the phone: it dropped off);
//! - `{base}/{user}/{device}/event`: `_type` `transition` (geofence enter/leave).
//!
//! Devices get ids in the `ot` namespace: `ot:{user}.{device}`. `user` may contain dots and
//! `device` may not, so the last dot is the split and two phones never share an id.
//!
//! Numbers are read leniently: old app versions send `"51.5"` for `51.5`. `tst` is epoch
//! **seconds**; `vel` is km/h (converted to m/s); `cog` is the course.

use serde_json::{Map, Value};

use crate::device_id::{DeviceId, DeviceIdError};
use crate::lenient::{optional_number, required_number};
use crate::native::{
    bounded_message, bounded_text, in_range, optional_in_range, parse_object, without_controls,
    DecodeError, DeviceEvent, DeviceKind, Fix, NativeMessage, Severity, Status,
    MAX_EVENT_FIELD_CHARS, MAX_MESSAGE_CHARS,
};
use crate::time::{parse_timestamp, truncate};
use crate::MAX_PAYLOAD_BYTES;

/// The namespace of OwnTracks device ids.
pub const NAMESPACE: &str = "ot";

/// The longest `tid` kept as the phone's name (the app shows two characters; longer ones are
/// cut).
const MAX_TID_CHARS: usize = 8;

/// Which OwnTracks topic a message came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    /// `{base}/{user}/{device}`
    Device,
    /// `{base}/{user}/{device}/event`
    Event,
}

/// Splits an OwnTracks topic into the namespaced device id and the topic kind.
fn parse_topic(base: &str, topic: &str) -> Result<(DeviceId, Topic), DecodeError> {
    let unknown = || DecodeError::UnknownTopic {
        topic: truncate(topic, 200),
    };
    let rest = topic
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(unknown)?;
    let mut parts = rest.split('/');
    let (user, device, kind) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(u), Some(d), None, None) => (u, d, Topic::Device),
        (Some(u), Some(d), Some("event"), None) => (u, d, Topic::Event),
        _ => return Err(unknown()),
    };
    // `owntracks//phone` and `owntracks/jane/` name no one: the id would be `.phone`.
    if user.is_empty() || device.is_empty() {
        return Err(DeviceIdError::Empty.into());
    }
    if device.contains('.') {
        return Err(DecodeError::Unsupported(format!(
            "OwnTracks device name {:?} contains '.', which Watchfloor reserves to separate user and device",
            truncate(device, 64)
        )));
    }
    Ok((
        DeviceId::namespaced(NAMESPACE, &format!("{user}.{device}"))?,
        kind,
    ))
}

/// Decodes one OwnTracks message into the messages it means (a location also reports the
/// phone online with its battery). `now_ms` is the receiver's clock: it refuses timestamps from
/// the future and stamps the last will, which carries no time of its own (its `tst` is when the
/// dropped connection began).
pub fn decode(
    base: &str,
    topic: &str,
    payload: &[u8],
    now_ms: i64,
) -> Result<Vec<NativeMessage>, DecodeError> {
    let (device, kind) = parse_topic(base, topic)?;
    let obj = parse_object(payload, MAX_PAYLOAD_BYTES)?;
    let kind_name = match obj.get("_type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(DecodeError::Json("_type is not a string".into())),
        None => return Err(DecodeError::Json("missing field `_type`".into())),
    };
    match (kind, kind_name) {
        (Topic::Device, "location") => location(device, &obj, now_ms),
        (Topic::Device, "lwt") => Ok(vec![NativeMessage::Status {
            device,
            status: Status {
                ts_ms: now_ms,
                online: false,
                battery: None,
                signal: None,
                kind: Some(DeviceKind::Phone),
                name: None,
                simulated: false,
                stamped_on_arrival: true,
            },
        }]),
        (Topic::Event, "transition") => transition(device, &obj, now_ms),
        (_, "encrypted") => Err(DecodeError::Unsupported(
            "encrypted OwnTracks payload: Watchfloor does not hold the shared key; turn encryption off on the phone".into(),
        )),
        (_, other) => Err(DecodeError::Unsupported(format!(
            "OwnTracks _type {:?} is not used on this topic",
            truncate(other, 32)
        ))),
    }
}

fn location(
    device: DeviceId,
    obj: &Map<String, Value>,
    now_ms: i64,
) -> Result<Vec<NativeMessage>, DecodeError> {
    let ts_ms = seconds(obj, "tst", now_ms)?;
    let fix = Fix {
        ts_ms,
        lat: in_range("lat", required_number(obj, "lat")?, -90.0, 90.0, "-90..=90")?,
        lon: in_range(
            "lon",
            required_number(obj, "lon")?,
            -180.0,
            180.0,
            "-180..=180",
        )?,
        alt: optional_in_range(
            "alt",
            optional_number(obj, "alt")?,
            -12_000.0,
            100_000.0,
            "-12000..=100000 m",
        )?,
        heading: optional_in_range("cog", optional_number(obj, "cog")?, 0.0, 360.0, "0..=360")?
            .map(|h| h % 360.0),
        speed: optional_in_range(
            "vel",
            optional_number(obj, "vel")?,
            0.0,
            1440.0,
            "0..=1440 km/h",
        )?
        .map(|kmh| kmh / 3.6),
        accuracy: optional_in_range(
            "acc",
            optional_number(obj, "acc")?,
            0.0,
            1.0e6,
            "0..=1000000 m",
        )?,
    };
    let battery = optional_in_range(
        "batt",
        optional_number(obj, "batt")?,
        0.0,
        100.0,
        "0..=100 %",
    )?;
    // The tid is a label for the map (two letters on the phone's screen): one too long is cut
    // and control characters are dropped, rather than the fix refused for its label.
    let name = match obj.get("tid") {
        Some(Value::String(tid)) => Some(
            without_controls(tid.clone(), |_| false, None)
                .chars()
                .take(MAX_TID_CHARS)
                .collect::<String>(),
        )
        .filter(|t| !t.trim().is_empty()),
        _ => None,
    };
    Ok(vec![
        NativeMessage::Location {
            device: device.clone(),
            fix,
        },
        NativeMessage::Status {
            device,
            status: Status {
                ts_ms,
                online: true,
                battery,
                signal: None,
                kind: Some(DeviceKind::Phone),
                name,
                simulated: false,
                stamped_on_arrival: false,
            },
        },
    ])
}

fn transition(
    device: DeviceId,
    obj: &Map<String, Value>,
    now_ms: i64,
) -> Result<Vec<NativeMessage>, DecodeError> {
    let ts_ms = seconds(obj, "tst", now_ms)?;
    let event = match obj.get("event") {
        Some(Value::String(e)) if e == "enter" || e == "leave" => e.as_str(),
        _ => {
            return Err(DecodeError::Json(
                "transition `event` must be \"enter\" or \"leave\"".into(),
            ))
        }
    };
    let text = |field: &str| match obj.get(field) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let region = text("desc");
    let position = match (optional_number(obj, "lat")?, optional_number(obj, "lon")?) {
        (Some(lat), Some(lon)) => Some((
            in_range("lat", lat, -90.0, 90.0, "-90..=90")?,
            in_range("lon", lon, -180.0, 180.0, "-180..=180")?,
        )),
        (None, None) => None,
        _ => {
            return Err(DecodeError::Json(
                "transition has only one of lat and lon".into(),
            ))
        }
    };
    // The phone has no event id: the transition's time, direction and region make one, so a
    // redelivered transition is stored once.
    // A region is named by the person who drew it (a trailing zero-width space, a line break,
    // a paragraph): what an id cannot hold is dropped from the key and the message is cut,
    // rather than the transition refused.
    let region_key = without_controls(
        text("rid").or_else(|| region.clone()).unwrap_or_default(),
        |_| false,
        None,
    );
    let event_id = bounded_text(
        "event id",
        truncate(
            &format!("{ts_ms}-{event}-{region_key}"),
            MAX_EVENT_FIELD_CHARS,
        ),
        MAX_EVENT_FIELD_CHARS + 1,
    )?;
    let message = region
        .map(|r| {
            bounded_message(
                "desc",
                format!("{event} {}", truncate(&r, MAX_MESSAGE_CHARS - 16)),
                MAX_MESSAGE_CHARS,
            )
        })
        .transpose()?;
    Ok(vec![NativeMessage::Event {
        device,
        event: DeviceEvent {
            event_id,
            ts_ms,
            event_type: format!("geofence_{event}"),
            severity: Severity::Info,
            message,
            position,
            stamped_on_arrival: false,
        },
    }])
}

/// An epoch-seconds field as epoch ms, checked like every other timestamp.
fn seconds(obj: &Map<String, Value>, field: &'static str, now_ms: i64) -> Result<i64, DecodeError> {
    let s = required_number(obj, field)?;
    let ms = s * 1000.0;
    if !ms.is_finite() || !(0.0..=253_402_300_799_000.0).contains(&ms) {
        return Err(DecodeError::OutOfRange {
            field,
            value: s,
            range: "epoch seconds, 1970..=9999",
        });
    }
    Ok(parse_timestamp(&Value::from(ms as i64), now_ms)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_421_700_000;
    const BASE: &str = "owntracks";

    fn decode_ok(topic: &str, payload: &str) -> Vec<NativeMessage> {
        decode(BASE, topic, payload.as_bytes(), NOW).unwrap()
    }

    #[test]
    fn a_location_from_the_booklet_becomes_a_fix_and_an_online_status() {
        let msgs = decode_ok(
            "owntracks/jane/phone",
            r#"{"_type":"location","tid":"jp","lat":51.9225,"lon":4.47917,"tst":1795421690,
                "acc":12,"alt":3,"vel":36,"cog":270,"batt":81,"bs":1,"conn":"m","t":"u"}"#,
        );
        let NativeMessage::Location { device, fix } = &msgs[0] else {
            panic!("{msgs:?}")
        };
        assert_eq!(device.as_str(), "ot:jane.phone");
        assert_eq!(fix.ts_ms, 1_795_421_690_000, "tst is seconds");
        assert_eq!(fix.speed, Some(10.0), "vel 36 km/h is 10 m/s");
        assert_eq!(
            (fix.heading, fix.accuracy, fix.alt),
            (Some(270.0), Some(12.0), Some(3.0))
        );
        let NativeMessage::Status { status, .. } = &msgs[1] else {
            panic!("{msgs:?}")
        };
        assert!(status.online);
        assert_eq!(status.battery, Some(81.0));
        assert_eq!(status.kind, Some(DeviceKind::Phone));
        assert_eq!(status.name.as_deref(), Some("jp"));
    }

    #[test]
    fn a_tid_too_long_or_with_control_characters_is_cleaned_not_the_fix_refused() {
        let name = |tid: &str| {
            let payload = serde_json::json!({"_type": "location", "tid": tid, "lat": 1, "lon": 2, "tst": NOW / 1000});
            match &decode_ok("owntracks/jane/phone", &payload.to_string())[1] {
                NativeMessage::Status { status, .. } => status.name.clone(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(name("jp"), Some("jp".into()));
        assert_eq!(name("a\u{1b}[2J"), Some("a[2J".into()));
        assert_eq!(name("ABCDEFGHIJKL"), Some("ABCDEFGH".into()));
        assert_eq!(name("\u{202E}"), None);
        assert_eq!(name(""), None);
    }

    #[test]
    fn old_apps_numbers_as_strings_and_omitted_zeros_are_accepted() {
        let msgs = decode_ok(
            "owntracks/jane/phone",
            r#"{"_type":"location","lat":"51.5","lon":" -0.12 ","tst":"1795421690","batt":"40"}"#,
        );
        let NativeMessage::Location { fix, .. } = &msgs[0] else {
            panic!()
        };
        assert_eq!(
            (fix.lat, fix.lon, fix.speed, fix.heading),
            (51.5, -0.12, None, None)
        );
    }

    #[test]
    fn the_last_will_marks_the_phone_offline_at_arrival() {
        let msgs = decode_ok(
            "owntracks/jane/phone",
            r#"{"_type":"lwt","tst":1700000000}"#,
        );
        let NativeMessage::Status { status, .. } = &msgs[0] else {
            panic!()
        };
        assert!(!status.online);
        assert_eq!(status.ts_ms, NOW);
        assert!(status.stamped_on_arrival);
    }

    #[test]
    fn a_transition_is_an_event_with_a_stable_id() {
        let payload = r#"{"_type":"transition","wtst":1795000000,"lat":51.9,"lon":4.4,
            "tst":1795421600,"acc":10,"event":"enter","desc":"Depot","t":"c","rid":"r1"}"#;
        let msgs = decode_ok("owntracks/jane/phone/event", payload);
        let NativeMessage::Event { event, .. } = &msgs[0] else {
            panic!()
        };
        assert_eq!(event.event_type, "geofence_enter");
        assert_eq!(event.event_id, "1795421600000-enter-r1");
        assert_eq!(event.message.as_deref(), Some("enter Depot"));
        assert_eq!(event.position, Some((51.9, 4.4)));
        assert_eq!(
            decode_ok("owntracks/jane/phone/event", payload),
            msgs,
            "deterministic"
        );
    }

    #[test]
    fn a_transition_is_taken_whatever_its_region_is_named() {
        let event_of = |desc: &str| {
            let payload = serde_json::json!({"_type": "transition", "tst": 1795421600, "event": "leave", "desc": desc})
                .to_string();
            match decode_ok("owntracks/jane/phone/event", &payload).remove(0) {
                NativeMessage::Event { event, .. } => event,
                other => panic!("{other:?}"),
            }
        };
        // Older apps send no rid: the region's name is the key, less what an id cannot hold.
        let depot = event_of("Depot\u{200B}\nNorth");
        assert_eq!(depot.event_id, "1795421600000-leave-DepotNorth");
        assert_eq!(depot.message.as_deref(), Some("leave Depot \nNorth"));
        let long = event_of(&"x".repeat(5_000));
        let message = long.message.unwrap();
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS && message.ends_with('…'));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let cases = [
            ("owntracks/jane", r#"{"_type":"location"}"#, "unknown_topic"),
            (
                "owntracks/jane/phone/waypoint",
                r#"{"_type":"waypoint"}"#,
                "unknown_topic",
            ),
            (
                "owntracks/jane/my.phone",
                r#"{"_type":"lwt"}"#,
                "unsupported",
            ),
            (
                "owntracks/ja+ne/phone",
                r#"{"_type":"lwt"}"#,
                "bad_device_id",
            ),
            (
                "owntracks/jane/phone",
                r#"{"lat":1,"lon":2,"tst":1795421690}"#,
                "malformed",
            ),
            (
                "owntracks/jane/phone",
                r#"{"_type":"location","lat":1,"tst":1795421690}"#,
                "malformed",
            ),
            (
                "owntracks/jane/phone",
                r#"{"_type":"location","lat":"north","lon":2,"tst":1795421690}"#,
                "malformed",
            ),
            (
                "owntracks/jane/phone",
                r#"{"_type":"location","lat":91,"lon":2,"tst":1795421690}"#,
                "out_of_range",
            ),
            (
                "owntracks/jane/phone",
                r#"{"_type":"location","lat":1,"lon":2,"tst":4102444800}"#,
                "bad_timestamp",
            ),
            (
                // A phone whose clock was never set (tst 0, 1970).
                "owntracks/jane/phone",
                r#"{"_type":"location","lat":1,"lon":2,"tst":0}"#,
                "bad_timestamp",
            ),
            (
                "owntracks/jane/phone",
                r#"{"_type":"encrypted","data":"abc"}"#,
                "unsupported",
            ),
            (
                "owntracks/jane/phone",
                r#"{"_type":"card","name":"Jane"}"#,
                "unsupported",
            ),
            (
                "owntracks/jane/phone/event",
                r#"{"_type":"transition","tst":1795421690,"event":"dance"}"#,
                "malformed",
            ),
            ("owntracks/jane/phone", "[1,2]", "malformed"),
            (
                "owntracks/jane/phone/event",
                r#"{"_type":"transition","tst":1795421690,"event":"leave","lat":51.9}"#,
                "malformed",
            ),
            ("owntracks//phone", r#"{"_type":"lwt"}"#, "bad_device_id"),
            ("owntracks/jane/", r#"{"_type":"lwt"}"#, "bad_device_id"),
        ];
        for (topic, payload, code) in cases {
            let err = decode(BASE, topic, payload.as_bytes(), NOW).unwrap_err();
            assert_eq!(err.code(), code, "{topic} {payload}: {err}");
        }
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(
            decode(BASE, "owntracks/a/b", &huge, NOW)
                .unwrap_err()
                .code(),
            "oversized"
        );
    }

    #[test]
    fn the_base_topic_is_configurable_and_may_have_levels() {
        let msgs = decode(
            "site1/phones",
            "site1/phones/jane/phone",
            br#"{"_type":"lwt"}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(msgs[0].device().as_str(), "ot:jane.phone");
        assert!(decode("site1/phones", "owntracks/jane/phone", b"{}", NOW).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever arrives, the decoder answers; it never panics.
        #[test]
        fn never_panics(topic in "owntracks(/[a-z.+#]{0,6}){0,4}", payload in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(BASE_FOR_PROPTEST, &topic, &payload, 1_795_421_700_000);
        }

        /// Any location with fields in range decodes, and the fix carries them unchanged.
        #[test]
        fn valid_locations_round_trip(lat in -90.0f64..=90.0, lon in -180.0f64..=180.0, tst in 1_262_304_000i64..1_795_421_000, as_text: bool) {
            let num = |v: f64| if as_text { format!("\"{v}\"") } else { v.to_string() };
            let payload = format!(r#"{{"_type":"location","lat":{},"lon":{},"tst":{tst}}}"#, num(lat), num(lon));
            let msgs = decode(BASE_FOR_PROPTEST, "owntracks/u/d", payload.as_bytes(), 1_795_421_700_000).unwrap();
            let NativeMessage::Location { fix, .. } = &msgs[0] else { panic!() };
            prop_assert_eq!((fix.lat, fix.lon, fix.ts_ms), (lat, lon, tst * 1000));
        }
    }

    const BASE_FOR_PROPTEST: &str = "owntracks";
}
