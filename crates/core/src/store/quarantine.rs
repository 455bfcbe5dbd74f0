//! `quarantine`: every message Watchfloor refused, with why, so an operator can see and export
//! what a device sent wrong. Payloads are truncated: a hostile 64 KiB payload must not turn the
//! history file into a dumping ground.

use rusqlite::{Connection, Statement};
use serde::Serialize;
use ts_rs::TS;

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

/// A quarantined message as the UI lists it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct QuarantineView {
    #[ts(type = "number")]
    pub received_ms: i64,
    pub topic: String,
    pub reason_code: String,
    pub reason: String,
    /// The start of the payload as text (invalid UTF-8 shown as U+FFFD).
    pub payload_preview: String,
    #[ts(type = "number")]
    pub payload_len: i64,
}

/// Characters of payload shown in a list.
pub const PREVIEW_CHARS: usize = 200;

/// The newest `limit` quarantined messages, newest first.
pub fn recent(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<QuarantineView>> {
    let mut stmt = conn.prepare_cached(
        "SELECT received_ms, topic, reason_code, reason, payload, payload_len
         FROM quarantine ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        let payload: Vec<u8> = r.get(4)?;
        Ok(QuarantineView {
            received_ms: r.get(0)?,
            topic: r.get(1)?,
            reason_code: r.get(2)?,
            reason: r.get(3)?,
            payload_preview: String::from_utf8_lossy(&payload)
                .chars()
                .take(PREVIEW_CHARS)
                .collect(),
            payload_len: r.get(5)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_lists_newest_first_with_a_short_preview() {
        let conn = crate::store::open_in_memory().unwrap();
        let mut stmt = conn.prepare(INSERT).unwrap();
        for (ms, payload) in [(1, &b"{\xffold"[..]), (2, &[b'y'; 500][..])] {
            let e =
                QuarantineEntry::new(ms, "devices/x/status", payload, "malformed", "bad".into());
            insert(&mut stmt, &e).unwrap();
        }
        let list = recent(&conn, 10).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].received_ms, 2);
        assert_eq!(list[0].payload_preview.len(), PREVIEW_CHARS);
        assert_eq!(list[0].payload_len, 500);
        assert_eq!(list[1].payload_preview, "{\u{fffd}old");
        assert_eq!(recent(&conn, 1).unwrap().len(), 1);
    }

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
