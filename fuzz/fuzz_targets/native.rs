//! The native decoder against arbitrary topics and payloads: it must answer, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchfloor_protocol::native;

fuzz_target!(|data: &[u8]| {
    // The first line is the topic, the rest the payload; without a newline, a fixed topic kind.
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => {
            let kind = ["location", "status", "events"][data.first().map_or(0, |b| *b as usize % 3)];
            (format!("devices/dev-1/{kind}"), data)
        }
    };
    let _ = native::decode("devices", &topic, payload, 1_795_421_700_000);
});
