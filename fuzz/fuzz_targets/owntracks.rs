//! The OwnTracks decoder against arbitrary topics and payloads: it must answer, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchfloor_protocol::owntracks;

fuzz_target!(|data: &[u8]| {
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => {
            let topic = ["owntracks/user/phone", "owntracks/user/phone/event"][data.first().map_or(0, |b| *b as usize % 2)];
            (topic.to_owned(), data)
        }
    };
    let _ = owntracks::decode("owntracks", &topic, payload, 1_795_421_700_000);
});
