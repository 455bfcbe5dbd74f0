//! `events`: device events. The device's own event id is the idempotency key: a QoS 1
//! redelivery of the same event is absorbed, never stored twice.

use rusqlite::{Connection, Statement};
use watchfloor_protocol::{DeviceEvent, DeviceId};

use crate::view::EventView;

pub const DDL: &str = "
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    ts_ms       INTEGER NOT NULL,
    type        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    message     TEXT,
    lat         REAL,
    lon         REAL,
    received_ms INTEGER NOT NULL,
    UNIQUE (device_id, event_id)
) STRICT;
CREATE INDEX events_by_time ON events (ts_ms);
";

/// A device's events in time order: the device panel's newest events and a device's export
/// read only the rows they return. Without it a device with 100,000 events had them all read
/// and sorted for the ten the panel shows.
pub const DDL_BY_DEVICE: &str = "
CREATE INDEX events_by_device_time ON events (device_id, ts_ms);
";

/// A device's events of one type in time order: what pruning asks to keep an open incident's
/// first and newest events (`store::retention`), without reading the device's other events
/// (a face terminal's every granted entry is one).
pub const DDL_BY_CAUSE: &str = "
CREATE INDEX events_by_cause ON events (device_id, type, ts_ms);
";

pub const INSERT: &str = "INSERT OR IGNORE INTO events
    (device_id, event_id, ts_ms, type, severity, message, lat, lon, received_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

pub fn insert(
    stmt: &mut Statement<'_>,
    device: &DeviceId,
    e: &DeviceEvent,
    received_ms: i64,
) -> rusqlite::Result<()> {
    stmt.execute((
        device.as_str(),
        &e.event_id,
        e.ts_ms,
        &e.event_type,
        e.severity.as_str(),
        e.message.as_deref(),
        e.position.map(|p| p.0),
        e.position.map(|p| p.1),
        received_ms,
    ))?;
    Ok(())
}

const RECENT: &str = "SELECT event_id, ts_ms, type, severity, message FROM events
    WHERE device_id = ?1 ORDER BY ts_ms DESC LIMIT ?2";

/// A device's newest events, newest first.
pub fn recent(conn: &Connection, device: &str, limit: u32) -> rusqlite::Result<Vec<EventView>> {
    let mut stmt = conn.prepare_cached(RECENT)?;
    let rows = stmt.query_map((device, limit), |r| {
        Ok(EventView {
            event_id: r.get(0)?,
            ts_ms: r.get(1)?,
            event_type: r.get(2)?,
            severity: r.get(3)?,
            message: r.get(4)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchfloor_protocol::Severity;

    #[test]
    fn a_devices_newest_events_are_read_from_its_index_without_a_sort() {
        let plan = crate::store::query_plan(RECENT, ("van-1", 10_u32)).join("; ");
        assert!(
            plan.contains("USING INDEX events_by_device_time (device_id=?)"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn a_redelivered_event_is_stored_once() {
        let conn = crate::store::open_in_memory().unwrap();
        let dev = DeviceId::parse("c1").unwrap();
        let e = DeviceEvent {
            event_id: "e1".into(),
            ts_ms: 1,
            event_type: "panic".into(),
            severity: Severity::Critical,
            message: None,
            position: Some((1.0, 2.0)),
            stamped_on_arrival: false,
        };
        let mut stmt = conn.prepare(INSERT).unwrap();
        insert(&mut stmt, &dev, &e, 1).unwrap();
        insert(&mut stmt, &dev, &e, 2).unwrap();
        let (n, sev): (i64, String) = conn
            .query_row("SELECT count(*), max(severity) FROM events", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((n, sev.as_str()), (1, "critical"));
        let recent = recent(&conn, "c1", 10).unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(
            (recent[0].event_id.as_str(), recent[0].severity.as_str()),
            ("e1", "critical")
        );
        assert!(super::recent(&conn, "other", 10).unwrap().is_empty());
    }
}
