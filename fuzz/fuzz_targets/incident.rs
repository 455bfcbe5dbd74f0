//! Another console's incident message (the retained `watchfloor/incidents/{id}` topic) against
//! arbitrary payloads: anyone who can publish on the broker can send one, so it must be taken
//! or refused with a reason, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchfloor_core::incidents::shared;

fuzz_target!(|data: &[u8]| {
    let _ = shared::decode("watchfloor/incidents/0123456789abcdef", data, 1_800_000_000_000);
});
