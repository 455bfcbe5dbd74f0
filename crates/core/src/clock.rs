//! The wall clock, read only at the edges (message arrival, batch emission). Logic below the
//! edges takes time as an argument so tests control it.

/// Milliseconds since the Unix epoch, UTC.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
