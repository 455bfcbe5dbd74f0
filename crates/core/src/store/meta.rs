//! `meta`: small facts about this history file, such as the console's stable MQTT client id.

use rusqlite::{Connection, OptionalExtension};

pub const DDL: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
";

pub fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

/// Returns the value for `key`, storing `make()` first if there is none.
pub fn get_or_insert_with(
    conn: &Connection,
    key: &str,
    make: impl FnOnce() -> String,
) -> rusqlite::Result<String> {
    if let Some(v) = get(conn, key)? {
        return Ok(v);
    }
    // Two processes making it at once on a new file (a console and `watchfloor sync`): the
    // first one's is kept, and both read it. Synced to disk: the client id names the broker
    // session that holds the console's QoS 1 messages while it is away; lost to a power cut
    // before the first synced commit, the next start made a new one, and the old session's
    // messages were never delivered.
    let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
        (key, make()),
    );
    conn.pragma_update(None, "synchronous", synchronous)?;
    inserted?;
    get(conn, key)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// The console's MQTT client id, stable per history file (so a restarted console resumes its
/// broker session); made on first use.
pub fn client_id(conn: &Connection) -> rusqlite::Result<String> {
    get_or_insert_with(conn, "client_id", || {
        format!("watchfloor-{:016x}", rand::random::<u64>())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stored_value_is_kept() {
        let conn = crate::store::open_in_memory().unwrap();
        let first = super::get_or_insert_with(&conn, "client_id", || "a".into()).unwrap();
        let second = super::get_or_insert_with(&conn, "client_id", || "b".into()).unwrap();
        assert_eq!(
            (first.as_str(), second.as_str()),
            ("a", "a"),
            "the first value sticks"
        );
    }

    #[test]
    fn two_processes_making_it_at_once_both_get_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        let conn = crate::store::open(&path).unwrap();
        let other = rusqlite::Connection::open(&path).unwrap();
        // The other process stores its value after this one found none, before it stores its own.
        let got = super::get_or_insert_with(&conn, "client_id", || {
            other
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('client_id', 'theirs')",
                    [],
                )
                .unwrap();
            "ours".into()
        })
        .unwrap();
        assert_eq!(got, "theirs");
        let synchronous: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_ne!(synchronous, 2, "the connection's own setting is put back");
    }
}
