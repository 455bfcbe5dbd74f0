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

/// [`INSERT`] for a message the broker sent again ([`QuarantineEntry::redelivered`]): not when
/// the same refusal of the same message is among the last 10,000 rows (its first copy, stored
/// and not acknowledged before the connection failed or the console stopped). That is more
/// than a broker sends again at once (its window of unacknowledged messages: Mosquitto's
/// default is 20), and rowid order is arrival order, so the window is a range of the primary
/// key.
const INSERT_UNLESS_STORED: &str = "INSERT INTO quarantine
    (received_ms, topic, payload, payload_len, reason_code, reason)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6
    WHERE NOT EXISTS (SELECT 1 FROM quarantine
        WHERE id > (SELECT coalesce(max(id), 0) FROM quarantine) - 10000
          AND topic = ?2 AND payload = ?3 AND payload_len = ?4 AND reason_code = ?5)";

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
    /// The broker sent the message before (MQTT's DUP flag): not stored again when its first
    /// copy was (see [`store`]).
    pub redelivered: bool,
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
            redelivered: false,
        }
    }
}

/// Stores `q`; a redelivered message only when its first copy is not stored already (a QoS 1
/// message refused and stored, whose acknowledgement was lost with the connection, came again
/// and was stored twice). Returns whether a row was added.
pub fn store(conn: &Connection, q: &QuarantineEntry) -> rusqlite::Result<bool> {
    let sql = if q.redelivered {
        INSERT_UNLESS_STORED
    } else {
        INSERT
    };
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(insert_with(&mut stmt, q)? > 0)
}

pub fn insert(stmt: &mut Statement<'_>, q: &QuarantineEntry) -> rusqlite::Result<()> {
    insert_with(stmt, q).map(|_| ())
}

fn insert_with(stmt: &mut Statement<'_>, q: &QuarantineEntry) -> rusqlite::Result<usize> {
    stmt.execute((
        q.received_ms,
        &q.topic,
        &q.payload,
        i64::try_from(q.payload_len).unwrap_or(i64::MAX),
        q.reason_code,
        &q.reason,
    ))
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
    fn a_refused_message_sent_again_is_stored_once() {
        let conn = crate::store::open_in_memory().unwrap();
        let count = || -> i64 {
            conn.query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0))
                .unwrap()
        };
        let refusal = |payload: &[u8], redelivered: bool| {
            let mut e =
                QuarantineEntry::new(5, "devices/x/status", payload, "malformed", "bad".into());
            e.redelivered = redelivered;
            e
        };
        assert!(store(&conn, &refusal(b"{bad", false)).unwrap());
        // The broker sends it again (its acknowledgement went with the connection).
        assert!(!store(&conn, &refusal(b"{bad", true)).unwrap());
        assert_eq!(count(), 1);
        // A device that sends the same bad message again is heard each time.
        assert!(store(&conn, &refusal(b"{bad", false)).unwrap());
        // A redelivery whose first copy was never stored (the console stopped first) is.
        assert!(store(&conn, &refusal(b"{worse", true)).unwrap());
        assert_eq!(count(), 3);
        // ...as is one whose first copy is further back than any redelivery reaches.
        let mut stmt = conn.prepare(INSERT).unwrap();
        for _ in 0..10_000 {
            insert(&mut stmt, &refusal(b"other", false)).unwrap();
        }
        assert!(store(&conn, &refusal(b"{bad", true)).unwrap());
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
