//! The face terminals' answers to person sync (Acks, presence) against arbitrary topics and
//! payloads: the console matches these to its requests, so they must decode or be refused,
//! never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchfloor_protocol::face_sync;

fuzz_target!(|data: &[u8]| {
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => ("mqtt/face/T1/Ack".to_owned(), data),
    };
    let _ = face_sync::decode_ack("mqtt/face", &topic, payload);
    let _ = face_sync::decode_presence("mqtt/face", &topic, payload);
});
