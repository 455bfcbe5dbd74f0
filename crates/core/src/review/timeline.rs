//! The one timeline a review moves along: the span the file covers, and the moments worth
//! stopping at (a device event, an incident change, an attendance record).
//!
//! Every query here is answered from an index (positions per device, events, the audit trail
//! and attendance by time), never by scanning the positions table.

use rusqlite::{Connection, OptionalExtension};

use super::frame::DeviceMeta;

/// The first and last instant the file holds anything for (epoch ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Span {
    #[ts(type = "number")]
    pub from_ms: i64,
    #[ts(type = "number")]
    pub to_ms: i64,
}

impl Span {
    /// The span covering both, either, or neither.
    pub fn union(a: Option<Span>, b: Option<Span>) -> Option<Span> {
        match (a, b) {
            (Some(a), Some(b)) => Some(Span {
                from_ms: a.from_ms.min(b.from_ms),
                to_ms: a.to_ms.max(b.to_ms),
            }),
            (a, b) => a.or(b),
        }
    }
}

/// Time-indexed tables and their time column: what "step by event" stops at.
const MOMENTS: &[(&str, &str)] = &[
    ("events", "ts_ms"),
    ("incident_audit", "at_ms"),
    ("attendance", "ts_ms"),
];

/// The span covered by fixes (one index seek at each end of each device) and by the
/// time-indexed tables; `None` for an empty file. Statuses are not counted: a retained status
/// or will replayed at the start of a file carries the device's own old time (weeks before,
/// for one offline since), and the window opened on an empty map that long before anything
/// happened. See [`status_span`] for a file with nothing else.
pub fn span(conn: &Connection, devices: &[DeviceMeta]) -> rusqlite::Result<Option<Span>> {
    let mut lo: Option<i64> = None;
    let mut hi: Option<i64> = None;
    let mut widen = |a: Option<i64>, b: Option<i64>| {
        if let Some(a) = a {
            lo = Some(lo.map_or(a, |l| l.min(a)));
        }
        if let Some(b) = b {
            hi = Some(hi.map_or(b, |h| h.max(b)));
        }
    };
    let mut per_device = conn.prepare_cached(
        "SELECT (SELECT ts_ms FROM positions WHERE device_id = ?1 ORDER BY ts_ms LIMIT 1),
                (SELECT ts_ms FROM positions WHERE device_id = ?1 ORDER BY ts_ms DESC LIMIT 1)",
    )?;
    for d in devices {
        let (a, b) = per_device.query_row([&d.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        widen(a, b);
    }
    for (table, col) in MOMENTS {
        let (a, b) = conn.query_row(
            &format!("SELECT min({col}), max({col}) FROM {table}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        widen(a, b);
    }
    Ok(lo.zip(hi).map(|(from_ms, to_ms)| Span { from_ms, to_ms }))
}

/// The span of the statuses received while recording (index seeks at each end of each
/// device's, from its first status received as it happened: a replayed one stored with its
/// old time is left out by starting at the file's first receipt): what a file of status-only
/// sensors has to report on, which [`span`] does not count.
pub fn status_span(conn: &Connection, devices: &[DeviceMeta]) -> rusqlite::Result<Option<Span>> {
    let first_receipt: Option<i64> =
        conn.query_row("SELECT min(received_ms) FROM statuses", [], |r| r.get(0))?;
    let Some(first_receipt) = first_receipt else {
        return Ok(None);
    };
    let mut per_device = conn.prepare_cached(
        "SELECT (SELECT ts_ms FROM statuses WHERE device_id = ?1 AND ts_ms >= ?2
                 ORDER BY ts_ms LIMIT 1),
                (SELECT ts_ms FROM statuses WHERE device_id = ?1 ORDER BY ts_ms DESC LIMIT 1)",
    )?;
    let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
    for d in devices {
        let (a, b): (Option<i64>, Option<i64>) =
            per_device.query_row((&d.id, first_receipt), |r| Ok((r.get(0)?, r.get(1)?)))?;
        if let Some(a) = a {
            lo = Some(lo.map_or(a, |l| l.min(a)));
        }
        if let Some(b) = b {
            hi = Some(hi.map_or(b, |h| h.max(b)));
        }
    }
    Ok(lo
        .zip(hi)
        .filter(|(a, b)| a <= b)
        .map(|(from_ms, to_ms)| Span { from_ms, to_ms }))
}

/// Which way to step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Direction {
    Forward,
    Back,
}

/// The nearest moment strictly after (or before) `at_ms` at which a device event, an incident
/// change or an attendance record happened.
pub fn step(conn: &Connection, at_ms: i64, dir: Direction) -> rusqlite::Result<Option<i64>> {
    let mut best: Option<i64> = None;
    for (table, col) in MOMENTS {
        let sql = match dir {
            Direction::Forward => format!("SELECT min({col}) FROM {table} WHERE {col} > ?1"),
            Direction::Back => format!("SELECT max({col}) FROM {table} WHERE {col} < ?1"),
        };
        let found: Option<i64> = conn
            .prepare_cached(&sql)?
            .query_row([at_ms], |r| r.get(0))?;
        best = match (best, found, dir) {
            (Some(b), Some(f), Direction::Forward) => Some(b.min(f)),
            (Some(b), Some(f), Direction::Back) => Some(b.max(f)),
            (b, f, _) => b.or(f),
        };
    }
    Ok(best)
}

/// When the next incident after `at_ms` was opened, and its id.
pub fn next_incident(conn: &Connection, at_ms: i64) -> rusqlite::Result<Option<(i64, String)>> {
    conn.prepare_cached(
        "SELECT at_ms, incident_id FROM incident_audit
         WHERE action = 'opened' AND at_ms > ?1 ORDER BY at_ms, id LIMIT 1",
    )?
    .query_row([at_ms], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::frame::{device_meta, tests::fixture};

    #[test]
    fn the_span_covers_fixes_and_moments_and_steps_stop_at_moments() {
        let conn = fixture();
        conn.execute_batch(
            "INSERT INTO events (device_id, event_id, ts_ms, type, severity, received_ms)
               VALUES ('v1', 'e1', 5000, 'panic', 'critical', 0);
             INSERT INTO incident_audit (incident_id, version, at_ms, actor, action, state)
               VALUES ('i1', 1, 5200, 'system', 'opened', 'new'),
                      ('i1', 2, 9000, 'dana', 'acknowledged', 'acknowledged'),
                      ('i2', 1, 700000, 'system', 'opened', 'new');",
        )
        .unwrap();
        let devices = device_meta(&conn).unwrap();
        assert_eq!(
            span(&conn, &devices).unwrap(),
            Some(Span {
                from_ms: 1000, // the first fix, not v1's status before it
                to_ms: 700_000
            })
        );
        // A file of status-only sensors: nothing to span but their statuses, from the first
        // received as it happened (a retained one replayed at the start, stored with its own
        // old time, is not).
        let sensor = crate::store::open_in_memory().unwrap();
        sensor
            .execute_batch(
                "INSERT INTO statuses (device_id, ts_ms, online, simulated, received_ms) VALUES
                   ('s', 42, 0, 0, 5000),
                   ('s', 5000, 1, 0, 5000),
                   ('s', 9000, 1, 0, 9000);",
            )
            .unwrap();
        let devices = crate::review::frame::reporting_devices(&sensor).unwrap();
        assert_eq!(span(&sensor, &devices).unwrap(), None);
        let statuses = status_span(&sensor, &devices).unwrap();
        assert_eq!(
            statuses,
            Some(Span {
                from_ms: 5000,
                to_ms: 9000
            })
        );
        // Beside an incident's moment, the report's range covers both.
        let moment = Some(Span {
            from_ms: 7000,
            to_ms: 7000,
        });
        assert_eq!(
            Span::union(moment, statuses),
            Some(Span {
                from_ms: 5000,
                to_ms: 9000
            })
        );
        assert_eq!(Span::union(None, moment), moment);
        assert_eq!(step(&conn, 0, Direction::Forward).unwrap(), Some(5000));
        assert_eq!(step(&conn, 5000, Direction::Forward).unwrap(), Some(5200));
        assert_eq!(step(&conn, 9000, Direction::Back).unwrap(), Some(5200));
        assert_eq!(step(&conn, 700_000, Direction::Forward).unwrap(), None);
        assert_eq!(
            next_incident(&conn, 5200).unwrap(),
            Some((700_000, "i2".to_owned()))
        );
        let empty = crate::store::open_in_memory().unwrap();
        assert_eq!(span(&empty, &[]).unwrap(), None);
    }
}
