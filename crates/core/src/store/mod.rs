//! The history file: one SQLite database per console (rusqlite, SQLite bundled).
//!
//! Owns the schema, the connection pragmas and the single writer thread. One module per table
//! holds its DDL, row type and statements; [`migration`] applies the DDL in order. Reads (tests,
//! export, review) open their own connections; only the [`writer`] thread writes live data, and
//! one console (and one employee sync) at a time uses a file ([`lock`]).

pub mod attendance;
pub mod events;
pub mod export;
pub mod incidents;
pub mod lock;
pub mod meta;
pub mod migration;
pub mod outbox;
pub mod positions;
pub mod quarantine;
pub mod retention;
pub mod statuses;
pub mod writer;

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// Why the history file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the folder for {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open history file {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("history file {path} has schema version {found}, newer than this Watchfloor understands ({supported}); use a newer Watchfloor")]
    NewerSchema {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("history file {path} does not exist")]
    Missing { path: String },
    #[error("{path} is not a Watchfloor history file ({why})")]
    NotHistory { path: String, why: &'static str },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// Opens (creating if needed) the history file for writing and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: path.display().to_string(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source,
    })?;
    // Another program's database given as the history file is refused, not migrated: the
    // migrations would write our tables into it (or fail half-way on a name it uses too).
    // Checked before anything is set (WAL mode alone rewrites the file's header).
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > 0 || has_tables(&conn)? {
        check_readable(&conn, path, found)?;
    }
    configure(&conn)?;
    migration::migrate(&mut conn).map_err(|e| match e {
        migration::MigrationError::Newer { found, supported } => StoreError::NewerSchema {
            path: path.display().to_string(),
            found,
            supported,
        },
        migration::MigrationError::Sql(e) => StoreError::Sql(e),
    })?;
    Ok(conn)
}

fn has_tables(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        [],
        |r| r.get(0),
    )
}

/// Opens an existing history file for reading only: no schema change, no write, ever (export,
/// and later review). A file from a newer Watchfloor is refused.
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    if !path.is_file() {
        return Err(StoreError::Missing {
            path: path.display().to_string(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    check_readable(&conn, path, found)?;
    Ok(conn)
}

/// The tables every history file has had since its first schema.
const FIRST_TABLES: [&str; 5] = ["meta", "positions", "statuses", "events", "quarantine"];

/// The file open on `conn`, at schema version `found`, can be read by this build: refuses a
/// newer schema, and a file that is no history of ours (no schema version; or a version with
/// none of our tables: another program's database, which was copied whole into the temp
/// folder to be "migrated", then failed on a table it lacked).
pub(crate) fn check_readable(conn: &Connection, path: &Path, found: i64) -> Result<(), StoreError> {
    let not_history = |why| StoreError::NotHistory {
        path: path.display().to_string(),
        why,
    };
    if found > migration::SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.display().to_string(),
            found,
            supported: migration::SCHEMA_VERSION,
        });
    }
    if found == 0 {
        return Err(not_history("no schema version"));
    }
    let ours: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ({})",
            FIRST_TABLES.map(|t| format!("'{t}'")).join(", ")
        ),
        [],
        |r| r.get(0),
    )?;
    if ours < FIRST_TABLES.len() as i64 {
        return Err(not_history("a schema version, but not the tables of one"));
    }
    Ok(())
}

/// An in-memory database with the full schema, for tests.
pub fn open_in_memory() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    configure(&conn)?;
    migration::migrate(&mut conn).map_err(|e| match e {
        migration::MigrationError::Newer { found, supported } => StoreError::NewerSchema {
            path: ":memory:".into(),
            found,
            supported,
        },
        migration::MigrationError::Sql(e) => StoreError::Sql(e),
    })?;
    Ok(conn)
}

/// How SQLite would run `sql` on the full schema (the detail of each EXPLAIN QUERY PLAN step),
/// for tests that a query seeks an index rather than scanning.
#[cfg(test)]
pub fn query_plan(sql: &str, params: impl rusqlite::Params) -> Vec<String> {
    let conn = open_in_memory().expect("schema");
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("query");
    let steps = stmt
        .query_map(params, |r| r.get::<_, String>(3))
        .expect("plan")
        .collect::<Result<_, _>>()
        .expect("plan");
    steps
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // WAL: readers (export, a second window, a reviewer copying the file) never block the writer
    // and the writer never blocks them; commits append to the log instead of rewriting pages.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL in WAL mode syncs at checkpoints, not at every commit: a commit survives a crash of
    // Watchfloor itself, and only an OS crash or power cut can lose the last commits. Issue #3
    // revisits this for the commits that carry QoS 1 acknowledgements.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Another process holding a lock briefly (a checkpoint, an export) makes us wait up to 5 s
    // instead of failing the batch at once.
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 64 MiB of page cache (SQLite's default is 2 MiB): the positions index takes inserts for
    // every device at once, and with a small cache each commit re-reads its pages from the OS.
    conn.pragma_update(None, "cache_size", -65_536)?;
    // A reader holding a snapshot for long (an export piped into a pager) stops checkpoints
    // from going past it, and the log grows meanwhile, by gigabytes under load; without a
    // limit it kept that size on disk for good. Truncated back to 64 MiB when a checkpoint
    // finds it larger.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // The writer's commits and its pruning prepare some two dozen statements: more than
    // rusqlite's default cache of 16, which then prepared most of them again every time.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_connection_opens_while_the_writer_holds_its_lock() {
        // The employee sync opens the console's file while the writer is mid-transaction; an
        // up-to-date file must open without needing the write lock at all.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.sqlite");
        let mut writer = open(&db).unwrap();
        let tx = writer
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        tx.execute(
            "INSERT INTO positions (device_id, ts_ms, lat, lon, received_ms) VALUES ('v', 1, 0, 0, 1)",
            [],
        )
        .unwrap();
        let second = open(&db);
        assert!(second.is_ok(), "{:?}", second.err());
        tx.commit().unwrap();
    }
}
