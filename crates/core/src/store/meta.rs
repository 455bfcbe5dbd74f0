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
    let value = make();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
        (key, &value),
    )?;
    Ok(value)
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
}
