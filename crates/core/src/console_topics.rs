//! The console's own MQTT topics (documented in `docs/protocol.md`), under `watchfloor/`:
//!
//! - `watchfloor/consoles/{console_id}`: retained presence, QoS 1. `{"online":true,...}` after
//!   every connect, `{"online":false,...}` on a clean stop, and the same as the last will, so a
//!   console that dies is shown offline by the broker.
//! - `watchfloor/probe/{console_id}`: a synthetic probe, QoS 0, published every
//!   [`PROBE_INTERVAL`] and received back through the broker. Its round trip is the broker's
//!   end-to-end latency as this console sees it: if the probe does not come back, nothing else
//!   will either.
//!
//! The console id is the MQTT client id, which settings restrict to `[A-Za-z0-9._-]{1,64}`, so it
//! is safe in a topic.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Root of every topic Watchfloor itself publishes.
pub const ROOT: &str = "watchfloor";
/// How often the probe goes out.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// A probe that has not come back after this long counts as lost.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn presence_topic(console_id: &str) -> String {
    format!("{ROOT}/consoles/{console_id}")
}

pub fn probe_topic(console_id: &str) -> String {
    format!("{ROOT}/probe/{console_id}")
}

/// `watchfloor/consoles/{id}` as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub online: bool,
    /// When this was published (epoch ms); absent in the last will, which is written at connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    pub version: String,
}

impl Presence {
    pub fn payload(online: bool, ts: Option<i64>) -> Vec<u8> {
        let p = Presence {
            online,
            ts,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        serde_json::to_vec(&p).unwrap_or_default()
    }
}

/// `watchfloor/probe/{id}` as it travels: a sequence number and the sender's monotonic clock
/// (microseconds since the link started), so the round trip is immune to wall-clock steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub seq: u64,
    pub sent_us: u64,
}

impl Probe {
    pub fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Option<Probe> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_round_trips_and_rejects_garbage() {
        let p = Probe {
            seq: 7,
            sent_us: 123_456,
        };
        assert_eq!(Probe::parse(&p.payload()), Some(p));
        assert_eq!(Probe::parse(b"{\"seq\":\"x\"}"), None);
    }

    #[test]
    fn presence_payload_is_documented_json() {
        let v: serde_json::Value = serde_json::from_slice(&Presence::payload(false, None)).unwrap();
        assert_eq!(v["online"], false);
        assert!(v.get("ts").is_none());
        assert_eq!(presence_topic("c-1"), "watchfloor/consoles/c-1");
    }
}
