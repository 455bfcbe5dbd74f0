//! `positions`: every fix received, in arrival order. Fixes travel at QoS 0 and carry no id, so
//! there is no uniqueness key; the index serves "one device's track over a time range".

use rusqlite::{Connection, Statement};
use watchfloor_protocol::{DeviceId, Fix};

pub const DDL: &str = "
CREATE TABLE positions (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    ts_ms       INTEGER NOT NULL,
    lat         REAL NOT NULL,
    lon         REAL NOT NULL,
    alt         REAL,
    heading     REAL,
    speed       REAL,
    accuracy    REAL,
    received_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX positions_by_device_time ON positions (device_id, ts_ms);
";

pub const INSERT: &str = "INSERT INTO positions
    (device_id, ts_ms, lat, lon, alt, heading, speed, accuracy, received_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// [`INSERT`] unless the file holds this device's fix at this time and place already: for a
/// fix the broker replayed from its retained store (an OwnTracks phone's last location, at
/// every connect of the console), which would otherwise be stored again each time, and for one
/// of a QoS 1 message, which the broker delivers again when its acknowledgement was lost.
pub const INSERT_UNLESS_STORED: &str = "INSERT INTO positions
    (device_id, ts_ms, lat, lon, alt, heading, speed, accuracy, received_ms)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
    WHERE NOT EXISTS (SELECT 1 FROM positions
        WHERE device_id = ?1 AND ts_ms = ?2 AND lat = ?3 AND lon = ?4)";

/// Runs [`INSERT`] or [`INSERT_UNLESS_STORED`] (prepared as `stmt`) for one fix.
pub fn insert(
    stmt: &mut Statement<'_>,
    device: &DeviceId,
    fix: &Fix,
    received_ms: i64,
) -> rusqlite::Result<()> {
    stmt.execute((
        device.as_str(),
        fix.ts_ms,
        fix.lat,
        fix.lon,
        fix.alt,
        fix.heading,
        fix.speed,
        fix.accuracy,
        received_ms,
    ))?;
    Ok(())
}

/// A stored fix.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionRow {
    pub ts_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub speed: Option<f64>,
    /// The fix's accuracy radius in metres, when the device sent one.
    pub accuracy: Option<f64>,
}

/// One device's fixes with `from_ms <= ts < to_ms`, oldest first.
pub fn track(
    conn: &Connection,
    device: &str,
    from_ms: i64,
    to_ms: i64,
) -> rusqlite::Result<Vec<PositionRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT ts_ms, lat, lon, speed, accuracy FROM positions
         WHERE device_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 ORDER BY ts_ms, id",
    )?;
    let rows = stmt.query_map((device, from_ms, to_ms), |r| {
        Ok(PositionRow {
            ts_ms: r.get(0)?,
            lat: r.get(1)?,
            lon: r.get(2)?,
            speed: r.get(3)?,
            accuracy: r.get(4)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_track_comes_back_in_time_order_within_the_range() {
        let conn = crate::store::open_in_memory().unwrap();
        let dev = DeviceId::parse("v1").unwrap();
        let mut stmt = conn.prepare(INSERT).unwrap();
        for ts in [30, 10, 20, 40] {
            let fix = Fix {
                ts_ms: ts,
                lat: ts as f64 / 10.0,
                lon: 1.0,
                alt: None,
                heading: None,
                speed: Some(2.0),
                accuracy: None,
            };
            insert(&mut stmt, &dev, &fix, 99).unwrap();
        }
        let got: Vec<i64> = track(&conn, "v1", 10, 40)
            .unwrap()
            .iter()
            .map(|p| p.ts_ms)
            .collect();
        assert_eq!(
            got,
            vec![10, 20, 30],
            "sorted by device time, end exclusive"
        );
        assert!(track(&conn, "other", 0, 100).unwrap().is_empty());
    }
}
