//! `statuses`: every status change (including last wills). A redelivered status (same device,
//! timestamp and online flag) is absorbed by the unique key instead of being stored twice.

use rusqlite::Statement;
use watchfloor_protocol::{DeviceId, DeviceKind, Status};

pub const DDL: &str = "
CREATE TABLE statuses (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    ts_ms       INTEGER NOT NULL,
    online      INTEGER NOT NULL,
    battery     REAL,
    signal      REAL,
    kind        TEXT,
    name        TEXT,
    simulated   INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    UNIQUE (device_id, ts_ms, online)
) STRICT;
";

pub const INSERT: &str = "INSERT OR IGNORE INTO statuses
    (device_id, ts_ms, online, battery, signal, kind, name, simulated, received_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

pub fn insert(
    stmt: &mut Statement<'_>,
    device: &DeviceId,
    s: &Status,
    received_ms: i64,
) -> rusqlite::Result<()> {
    stmt.execute((
        device.as_str(),
        s.ts_ms,
        s.online,
        s.battery,
        s.signal,
        s.kind.map(DeviceKind::as_str),
        s.name.as_deref(),
        s.simulated,
        received_ms,
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redelivered_status_is_stored_once() {
        let conn = crate::store::open_in_memory().unwrap();
        let dev = DeviceId::parse("s1").unwrap();
        let s = Status {
            ts_ms: 5,
            online: false,
            battery: Some(50.0),
            signal: None,
            kind: None,
            name: None,
            simulated: false,
            stamped_on_arrival: false,
        };
        let mut stmt = conn.prepare(INSERT).unwrap();
        insert(&mut stmt, &dev, &s, 1).unwrap();
        insert(&mut stmt, &dev, &s, 2).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM statuses", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
}
