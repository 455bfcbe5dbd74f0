//! Retention: old history rows are pruned a small chunk at a time by the writer thread, between
//! its batches, so pruning never holds the write lock long enough to stall ingest.
//!
//! Two limits, each optional: an age (rows received more than `max_age` ago go, from every
//! table) and a size (while the rows take more than `max_bytes`, the oldest positions go, since
//! they are the bulk). Rows are found oldest-first by rowid, which is arrival order, so each
//! chunk reads only the rows it deletes. SQLite reuses freed pages: under a size cap the file
//! stops growing rather than shrinking.

use std::time::Duration;

use rusqlite::Connection;

/// Rows deleted per table per chunk.
pub const CHUNK_ROWS: i64 = 5_000;

/// How long history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
}

impl Retention {
    pub fn is_off(&self) -> bool {
        self.max_age.is_none() && self.max_bytes.is_none()
    }
}

const TABLES: [&str; 6] = [
    "positions",
    "statuses",
    "events",
    "quarantine",
    "attendance",
    "face_images",
];

/// Deletes at most one chunk per table; returns how many rows went. A full chunk means there is
/// probably more to do: the writer calls again after its next batch.
pub fn prune_chunk(conn: &Connection, retention: &Retention, now_ms: i64) -> rusqlite::Result<u64> {
    let mut deleted = 0u64;
    if let Some(age) = retention.max_age {
        let cutoff = now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        for table in TABLES {
            // The table name is one of the fixed names above; values are bound.
            let sql = format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id LIMIT ?1) AND received_ms < ?2"
            );
            deleted += conn.prepare_cached(&sql)?.execute((CHUNK_ROWS, cutoff))? as u64;
        }
    }
    if let Some(max) = retention.max_bytes {
        if data_bytes(conn)? > max {
            deleted += conn
                .prepare_cached("DELETE FROM positions WHERE id IN (SELECT id FROM positions ORDER BY id LIMIT ?1)")?
                .execute([CHUNK_ROWS])? as u64;
        }
    }
    Ok(deleted)
}

/// Bytes the database's live pages take (the file minus its free pages).
pub fn data_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pragma = |name: &str| conn.pragma_query_value(None, name, |r| r.get::<_, i64>(0));
    let used = pragma("page_count")? - pragma("freelist_count")?;
    Ok(u64::try_from(used * pragma("page_size")?).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{positions, quarantine};
    use watchfloor_protocol::{DeviceId, Fix};

    fn fill(conn: &Connection, rows: i64, received_ms: impl Fn(i64) -> i64) {
        let mut stmt = conn.prepare(positions::INSERT).unwrap();
        let dev = DeviceId::parse("v").unwrap();
        for i in 0..rows {
            let fix = Fix {
                ts_ms: i,
                lat: 1.0,
                lon: 2.0,
                alt: None,
                heading: None,
                speed: None,
                accuracy: None,
            };
            positions::insert(&mut stmt, &dev, &fix, received_ms(i)).unwrap();
        }
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn rows_older_than_the_age_go_in_chunks_and_newer_ones_stay() {
        let conn = crate::store::open_in_memory().unwrap();
        // 12,000 old rows, then 100 recent ones.
        fill(&conn, 12_000, |_| 1_000);
        fill(&conn, 100, |_| 10_000_000);
        let entry = quarantine::QuarantineEntry::new(1_000, "t", b"x", "json", "bad".into());
        quarantine::insert(&mut conn.prepare(quarantine::INSERT).unwrap(), &entry).unwrap();
        let keep_a_day = Retention {
            max_age: Some(Duration::from_secs(3600)),
            max_bytes: None,
        };
        let now = 10_000_000 + 60_000;

        assert_eq!(prune_chunk(&conn, &keep_a_day, now).unwrap(), 5_000 + 1);
        assert_eq!(prune_chunk(&conn, &keep_a_day, now).unwrap(), 5_000);
        assert_eq!(prune_chunk(&conn, &keep_a_day, now).unwrap(), 2_000);
        assert_eq!(
            prune_chunk(&conn, &keep_a_day, now).unwrap(),
            0,
            "done: recent rows stay"
        );
        assert_eq!(count(&conn, "positions"), 100);
        assert_eq!(count(&conn, "quarantine"), 0);
    }

    #[test]
    fn a_size_cap_removes_the_oldest_positions_until_the_data_fits() {
        let conn = crate::store::open_in_memory().unwrap();
        fill(&conn, 20_000, |i| i);
        let full = data_bytes(&conn).unwrap();
        let cap = Retention {
            max_age: None,
            max_bytes: Some(full / 2),
        };
        let mut rounds = 0;
        while prune_chunk(&conn, &cap, 0).unwrap() > 0 {
            rounds += 1;
            assert!(rounds < 10, "converges");
        }
        assert!(data_bytes(&conn).unwrap() <= full / 2);
        let oldest: i64 = conn
            .query_row("SELECT min(received_ms) FROM positions", [], |r| r.get(0))
            .unwrap();
        assert!(
            oldest >= 5_000,
            "the oldest rows went first (oldest left: {oldest})"
        );
        assert!(count(&conn, "positions") >= 5_000, "no more than needed");
    }

    #[test]
    fn no_limits_prune_nothing() {
        let conn = crate::store::open_in_memory().unwrap();
        fill(&conn, 10, |_| 0);
        assert!(Retention::default().is_off());
        assert_eq!(
            prune_chunk(&conn, &Retention::default(), i64::MAX).unwrap(),
            0
        );
    }
}
