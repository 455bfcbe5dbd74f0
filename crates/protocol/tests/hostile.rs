//! Regression corpus of hostile payloads, run through every decoder: deep JSON nesting, huge
//! strings, wildcard and slash characters in ids, invalid UTF-8, numbers as strings, NaN and
//! infinities, control characters, duplicate keys, absurd timestamps. Each case names the
//! refusal an operator sees in the quarantine list (its `DecodeError::code`), or says it is
//! taken, and how. A decoder never panics on any of them.

use std::collections::BTreeMap;

use watchfloor_protocol::face::{self, FaceContext};
use watchfloor_protocol::{face_sync, native, owntracks, NativeMessage};

const NOW: i64 = 1_795_420_800_000;

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn native(topic: &str, payload: &[u8]) -> Result<NativeMessage, native::DecodeError> {
    native::decode("devices", topic, payload, NOW)
}

fn code<T>(r: Result<T, native::DecodeError>) -> &'static str {
    match r {
        Ok(_) => "taken",
        Err(e) => e.code(),
    }
}

#[test]
fn native_refuses_each_hostile_payload_with_its_reason() {
    let fix = |extra: &str| format!(r#"{{"ts":{NOW},"lat":51.9,"lon":4.4{extra}}}"#);
    let long_id_topic = format!("devices/{}/location", "x".repeat(65));
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "deep nesting in an unknown field, as deep as the size limit allows (skipped without recursion: no stack overflow)",
            "devices/a/location",
            fix(&format!(",\"x\":{}", nested(32_700))).into_bytes(),
            "taken",
        ),
        (
            "deep nesting over the size limit",
            "devices/a/location",
            fix(&format!(",\"x\":{}", nested(50_000))).into_bytes(),
            "oversized",
        ),
        (
            "a 100 kB name",
            "devices/a/status",
            format!(
                r#"{{"online":true,"ts":{NOW},"name":"{}"}}"#,
                "n".repeat(100_000)
            )
            .into_bytes(),
            "oversized",
        ),
        (
            "a 200-character name",
            "devices/a/status",
            format!(
                r#"{{"online":true,"ts":{NOW},"name":"{}"}}"#,
                "n".repeat(200)
            )
            .into_bytes(),
            "too_long",
        ),
        (
            "'+' in the id",
            "devices/a+b/location",
            fix("").into_bytes(),
            "bad_device_id",
        ),
        (
            "'#' in the id",
            "devices/#/location",
            fix("").into_bytes(),
            "bad_device_id",
        ),
        (
            "a slash in the id",
            "devices/a/b/location",
            fix("").into_bytes(),
            "unknown_topic",
        ),
        (
            "a 65-byte id",
            &long_id_topic,
            fix("").into_bytes(),
            "bad_device_id",
        ),
        (
            "invalid UTF-8",
            "devices/a/status",
            b"{\"online\":true,\"ts\":1,\"name\":\"\xff\xfe\"}".to_vec(),
            "malformed",
        ),
        (
            "lat as a string",
            "devices/a/location",
            format!(r#"{{"ts":{NOW},"lat":"51.9","lon":4.4}}"#).into_bytes(),
            "malformed",
        ),
        (
            "NaN as a string",
            "devices/a/location",
            format!(r#"{{"ts":{NOW},"lat":"NaN","lon":4.4}}"#).into_bytes(),
            "malformed",
        ),
        (
            "NaN as a bare word",
            "devices/a/location",
            format!(r#"{{"ts":{NOW},"lat":NaN,"lon":4.4}}"#).into_bytes(),
            "malformed",
        ),
        (
            "an infinite number",
            "devices/a/location",
            format!(r#"{{"ts":{NOW},"lat":1e400,"lon":4.4}}"#).into_bytes(),
            "malformed",
        ),
        (
            "a latitude off the globe",
            "devices/a/location",
            format!(r#"{{"ts":{NOW},"lat":91,"lon":4.4}}"#).into_bytes(),
            "out_of_range",
        ),
        (
            "a duplicate key",
            "devices/a/location",
            format!(r#"{{"ts":{NOW},"lat":1,"lat":99,"lon":2}}"#).into_bytes(),
            "malformed",
        ),
        (
            "a timestamp of 1e30",
            "devices/a/location",
            br#"{"ts":1e30,"lat":1,"lon":2}"#.to_vec(),
            "bad_timestamp",
        ),
        (
            "a negative timestamp",
            "devices/a/location",
            br#"{"ts":-5,"lat":1,"lon":2}"#.to_vec(),
            "bad_timestamp",
        ),
        (
            "a year from now",
            "devices/a/location",
            format!(r#"{{"ts":{},"lat":1,"lon":2}}"#, NOW + 365 * 86_400_000).into_bytes(),
            "bad_timestamp",
        ),
        (
            "NUL and an escape sequence in a name",
            "devices/a/status",
            format!(r#"{{"online":true,"ts":{NOW},"name":"a\u0000b\u001b[31m"}}"#).into_bytes(),
            "control_character",
        ),
        (
            "a newline in a name (log forging)",
            "devices/a/status",
            format!(r#"{{"online":true,"ts":{NOW},"name":"Van 7\nINFO forged line"}}"#)
                .into_bytes(),
            "control_character",
        ),
        (
            "a right-to-left override in a name (the rest of the line shown reversed)",
            "devices/a/status",
            format!(r#"{{"online":true,"ts":{NOW},"name":"Van 7\u202Egnirts"}}"#).into_bytes(),
            "control_character",
        ),
        (
            "a line separator in a name (a second line in a log)",
            "devices/a/status",
            format!(r#"{{"online":true,"ts":{NOW},"name":"Van 7\u2028INFO forged"}}"#)
                .into_bytes(),
            "control_character",
        ),
        (
            "a control character in an event id",
            "devices/a/events",
            format!(r#"{{"id":"e\u0007","ts":{NOW},"type":"t","severity":"high"}}"#).into_bytes(),
            "control_character",
        ),
        (
            "an empty payload",
            "devices/a/location",
            Vec::new(),
            "malformed",
        ),
        (
            "a JSON array",
            "devices/a/location",
            b"[1,2,3]".to_vec(),
            "malformed",
        ),
        (
            "battery as NaN string",
            "devices/a/status",
            format!(r#"{{"online":true,"ts":{NOW},"battery":"NaN"}}"#).into_bytes(),
            "malformed",
        ),
    ];
    for (what, topic, payload, want) in &cases {
        assert_eq!(code(native(topic, payload)), *want, "{what}");
    }
}

#[test]
fn native_takes_what_is_odd_but_harmless_as_it_is() {
    // A multi-line message keeps its lines; wildcard and slash characters in an event's id and
    // type are text (they never become topics or file names), kept as sent.
    let event = format!(
        r#"{{"id":"../x+#","ts":{NOW},"type":"door/forced","severity":"high","message":"line 1\nline 2\tend"}}"#
    );
    match native("devices/a/events", event.as_bytes()).unwrap() {
        NativeMessage::Event { event, .. } => {
            assert_eq!(event.event_id, "../x+#");
            assert_eq!(event.event_type, "door/forced");
            assert_eq!(event.message.as_deref(), Some("line 1\nline 2\tend"));
        }
        other => panic!("an event: {other:?}"),
    }
    // Unicode names are names.
    let status = format!(r#"{{"online":true,"ts":{NOW},"name":"Дежурный 🚓 7"}}"#);
    assert_eq!(code(native("devices/a/status", status.as_bytes())), "taken");
}

#[test]
fn owntracks_refuses_hostile_payloads_and_reads_numbers_sent_as_strings() {
    let tst = NOW / 1000;
    let decode = |topic: &str, payload: String| {
        code(owntracks::decode(
            "owntracks",
            topic,
            payload.as_bytes(),
            NOW,
        ))
    };
    assert_eq!(
        decode(
            "owntracks/u/d",
            format!(r#"{{"_type":"location","tst":"{tst}","lat":"51.9","lon":"4.4"}}"#)
        ),
        "taken",
        "numbers as strings (old apps)"
    );
    for odd in ["NaN", "inf", "-Infinity", "1e999"] {
        let p = format!(r#"{{"_type":"location","tst":{tst},"lat":"{odd}","lon":4}}"#);
        assert_ne!(decode("owntracks/u/d", p), "taken", "lat {odd}");
    }
    assert_eq!(
        decode(
            "owntracks/u+x/d",
            format!(r#"{{"_type":"location","tst":{tst},"lat":1,"lon":4}}"#)
        ),
        "bad_device_id"
    );
    assert_eq!(decode("owntracks/#/d", "{}".into()), "bad_device_id");
    assert_eq!(
        decode(
            "owntracks/u/d",
            format!(r#"{{"_type":"location","x":{}}}"#, nested(50_000))
        ),
        "oversized"
    );
    assert_eq!(
        decode(
            "owntracks/u/d",
            format!(r#"{{"_type":"location","x":{}}}"#, nested(3_000))
        ),
        "malformed"
    );
    assert_eq!(
        decode(
            "owntracks/u/d",
            format!(r#"{{"_type":"location","tst":{tst},"lat":1,"lon":4,"tid":"a\u001b"}}"#)
        ),
        "taken",
        "the fix is kept; its label loses the control character (owntracks.rs tests)"
    );
    for empty in ["owntracks//d", "owntracks/u/", "owntracks//"] {
        let p = format!(r#"{{"_type":"location","tst":{tst},"lat":1,"lon":4}}"#);
        assert_eq!(decode(empty, p), "bad_device_id", "{empty}");
    }
}

#[test]
fn face_terminals_refuse_hostile_payloads_with_their_reason() {
    let zones = BTreeMap::new();
    let ctx = FaceContext {
        zone: chrono_tz::UTC,
        terminal_zones: &zones,
        now_ms: NOW,
    };
    let decode = |topic: &str, payload: String| {
        code(face::decode("mqtt/face", topic, payload.as_bytes(), ctx))
    };
    let online = |id: &str| {
        format!(
            r#"{{"operator":"Online","info":{{"facesluiceId":"{id}","time":"2026-11-23 08:00:00"}}}}"#
        )
    };
    assert_eq!(decode("mqtt/face/basic", online("T1")), "taken");
    assert_eq!(decode("mqtt/face/basic", online("a/b")), "bad_device_id");
    assert_eq!(decode("mqtt/face/basic", online("a+#")), "bad_device_id");
    let rec = |extra: &str| {
        format!(
            r#"{{"operator":"RecPush","info":{{"facesluiceId":"T1","RecordID":"1","time":"2026-11-23 08:00:00","PersonType":"0"{extra}}}}}"#
        )
    };
    assert_eq!(
        decode("mqtt/face/T1/Rec", rec(r#","similarity1":"61""#)),
        "taken",
        "numbers as strings"
    );
    assert_eq!(
        decode("mqtt/face/T1/Rec", rec(r#","similarity1":"NaN""#)),
        "malformed"
    );
    assert_eq!(
        decode("mqtt/face/T1/Rec", rec(r#","similarity1":"inf""#)),
        "malformed"
    );
    // A name the terminal echoes loses its control characters; the record (an attendance
    // row, maybe a block-list match) is kept.
    assert_eq!(
        decode("mqtt/face/T1/Rec", rec(r#","personName":"x\u001b[2J""#)),
        "taken"
    );
    let snap = format!(
        r#"{{"operator":"StrSnapPush","info":{{"facesluiceId":"T1","pic":"{}"}}}}"#,
        "A".repeat(5_000_000)
    );
    assert_eq!(decode("mqtt/face/T1/Snap", snap), "oversized");
    assert_eq!(
        decode(
            "mqtt/face/T1/Rec",
            format!(r#"{{"operator":"RecPush","x":{}}}"#, nested(10_000))
        ),
        "malformed"
    );
    assert_eq!(
        code(face::decode(
            "mqtt/face",
            "mqtt/face/T1/Rec",
            b"\xff\xfe",
            ctx
        )),
        "malformed"
    );
}

#[test]
fn face_sync_answers_refuse_hostile_payloads_and_read_string_numbers() {
    let ack = |payload: String| {
        face_sync::decode_ack("mqtt/face", "mqtt/face/T1/Ack", payload.as_bytes())
    };
    let ok = ack(r#"{"operator":"EditPersonsNew-Ack","messageId":"m1","code":"200","info":{"AddSucInfo":[],"AddErrInfo":[{"customId":"e1","errcode":"468"}]}}"#.into()).unwrap();
    assert_eq!(ok.code, Some(200), "a code sent as a string");
    assert!(
        ack(format!(r#"{{"operator":"x","a":{}}}"#, nested(10_000))).is_err(),
        "deep nesting"
    );
    assert!(ack(String::from_utf8_lossy(b"\xff").into_owned()).is_err());
    assert!(
        face_sync::decode_ack("mqtt/face", "mqtt/face/T1/Ack", b"\xff\xfe").is_err(),
        "invalid UTF-8"
    );
    assert!(
        face_sync::decode_ack("mqtt/face", "mqtt/face/a+b/Ack", b"{}").is_err(),
        "a wildcard in the terminal id"
    );
    assert!(face_sync::decode_presence(
        "mqtt/face",
        "mqtt/face/basic",
        format!("{{\"x\":{}}}", nested(10_000)).as_bytes()
    )
    .is_err());
}
