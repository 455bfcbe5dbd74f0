//! The face-terminal decoder against arbitrary topics and payloads, in a zone with daylight
//! saving (gaps and folds): it must answer, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchfloor_protocol::face::{self, FaceContext};

fuzz_target!(|data: &[u8]| {
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => {
            let topics = ["mqtt/face/basic", "mqtt/face/heartbeat", "mqtt/face/T1/Rec", "mqtt/face/T1/Snap", "mqtt/face/T1/Alarm"];
            (topics[data.first().map_or(0, |b| *b as usize % topics.len())].to_owned(), data)
        }
    };
    let zones = std::collections::BTreeMap::new();
    let ctx = FaceContext {
        zone: chrono_tz::Europe::Amsterdam,
        terminal_zones: &zones,
        now_ms: 1_795_421_700_000,
    };
    let _ = face::decode("mqtt/face", &topic, payload, ctx);
});
