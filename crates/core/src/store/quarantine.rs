//! `quarantine`: every message Watchfloor refused, with why, so an operator can see and export
//! what a device sent wrong. Payloads are truncated: a hostile 64 KiB payload must not turn the
//! history file into a dumping ground.

use rusqlite::Statement;

/// Bytes of a refused payload kept for inspection.
pub const KEPT_PAYLOAD_BYTES: usize = 1024;

pub const DDL: &str = "
CREATE TABLE quarantine (
    id           INTEGER PRIMARY KEY,
    received_ms  INTEGER NOT NULL,
    topic        TEXT NOT NULL,
    payload      BLOB NOT NULL,
    payload_len  INTEGER NOT NULL,
    reason_code  TEXT NOT NULL,
    reason       TEXT NOT NULL
) STRICT;
CREATE INDEX quarantine_by_time ON quarantine (received_ms);
";

pub const INSERT: &str = "INSERT INTO quarantine
    (received_ms, topic, payload, payload_len, reason_code, reason)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// A refused message, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineEntry {
    pub received_ms: i64,
    pub topic: String,
    /// At most [`KEPT_PAYLOAD_BYTES`] bytes of the payload.
    pub payload: Vec<u8>,
    /// The payload's full length.
    pub payload_len: usize,
    pub reason_code: &'static str,
    pub reason: String,
}

impl QuarantineEntry {
    pub fn new(
        received_ms: i64,
        topic: &str,
        payload: &[u8],
        reason_code: &'static str,
        reason: String,
    ) -> Self {
        // Topics are at most 64 KiB by MQTT; keep enough to identify the sender.
        let topic: String = topic.chars().take(256).collect();
        Self {
            received_ms,
            topic,
            payload: payload[..payload.len().min(KEPT_PAYLOAD_BYTES)].to_vec(),
            payload_len: payload.len(),
            reason_code,
            reason,
        }
    }
}

pub fn insert(stmt: &mut Statement<'_>, q: &QuarantineEntry) -> rusqlite::Result<()> {
    stmt.execute((
        q.received_ms,
        &q.topic,
        &q.payload,
        i64::try_from(q.payload_len).unwrap_or(i64::MAX),
        q.reason_code,
        &q.reason,
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_payload_is_kept_truncated_with_its_length() {
        let conn = crate::store::open_in_memory().unwrap();
        let entry = QuarantineEntry::new(
            1,
            "devices/x/location",
            &vec![b'x'; 10_000],
            "oversized",
            "too big".into(),
        );
        insert(&mut conn.prepare(INSERT).unwrap(), &entry).unwrap();
        let (len, kept): (i64, i64) = conn
            .query_row(
                "SELECT payload_len, length(payload) FROM quarantine",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((len, kept), (10_000, KEPT_PAYLOAD_BYTES as i64));
    }
}
