//! Schema migrations: an ordered list, applied in one transaction, with the schema version kept
//! in `PRAGMA user_version`. A migration, once released, is never edited: a change is a new
//! entry at the end. Each entry lists the scripts (one per table module) it runs.

use rusqlite::Connection;

use super::{attendance, events, incidents, meta, positions, quarantine, statuses};

/// Every migration, in order. The schema version is the number of migrations applied.
const MIGRATIONS: &[&[&str]] = &[
    // 1: the first history tables.
    &[
        meta::DDL,
        positions::DDL,
        statuses::DDL,
        events::DDL,
        quarantine::DDL,
    ],
    // 2: incidents and their audit trail.
    &[incidents::DDL],
    // 3: employees synced to face terminals.
    &[crate::facesync::directory::DDL],
    // 4: face terminals' attendance records and kept images; persons by employee.
    &[attendance::DDL, crate::facesync::directory::DDL_BY_EMPLOYEE],
    // 5: the employee directory's version, kept by triggers (the panel skips unchanged reads).
    &[crate::facesync::directory::DDL_VERSION],
    // 6: a number that moves with the employees and terminal groups the sync plans from.
    &[crate::facesync::directory::DDL_INPUTS],
    // 7: device events by device and time.
    &[events::DDL_BY_DEVICE],
    // 8: open incidents by cause, and events by device, type and time (what pruning keeps
    // as an open incident's evidence).
    &[incidents::DDL_OPEN_BY_CAUSE, events::DDL_BY_CAUSE],
    // 9: the names terminals gave persons (a person searched in the attendance log or the
    // daily report).
    &[attendance::DDL_NAMES],
];

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("schema version {found} is newer than {supported}")]
    Newer { found: i64, supported: i64 },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The first schema with the face terminals' tables (terminals, groups, sync jobs): what
/// `watchfloor terminals list` reads, in place, from any file since.
pub const TERMINALS_FROM: i64 = 3;

/// The oldest schema offline review reads in place: the migrations after it add only what review
/// never reads (5: the employee directory's version; 6: the sync's inputs' version) or an index
/// it reads as well without (7: events by device, the same rows found by a scan; 8: open
/// incidents and events by cause, which only pruning asks; 9: the names terminals gave, which
/// review's report, searching no one, does not ask), so a file
/// recorded by an earlier Watchfloor is not copied whole to be migrated. Raise it to the new
/// version when a migration adds anything review reads.
pub const REVIEW_READS_IN_PLACE_FROM: i64 = 4;

/// Applies the migrations this database lacks, all in one transaction: a crash mid-way leaves
/// the file at its old version, never half-migrated.
///
/// A file already at this version is not written at all, and a migration takes the write lock
/// up front (`BEGIN IMMEDIATE`, waiting out the busy timeout): a second connection opened while
/// the writer is committing (the employee sync's, beside a recording console) must wait for
/// the lock, not fail as a deferred transaction upgrading from read to write does in WAL mode.
pub fn migrate(conn: &mut Connection) -> Result<(), MigrationError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(MigrationError::Newer {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for scripts in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        for script in scripts.iter() {
            tx.execute_batch(script)?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op_and_sets_the_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).expect("a migrated database migrates again without error");
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_schema_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(MigrationError::Newer { .. })
        ));
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            tables, 0,
            "nothing was created in a file from a newer Watchfloor"
        );
    }
}
