//! Retention: old history rows are pruned a small chunk at a time by the writer thread, between
//! its batches, so pruning never holds the write lock long enough to stall ingest.
//!
//! Two limits, each optional: an age (rows received more than `max_age` ago go, from every
//! table; attendance in whole terminal-local days) and a size. While the rows take more than
//! `max_bytes`, refused messages go first (all but the newest [`QUARANTINE_KEPT_UNDER_CAP`], or
//! fewer under a small cap: the product of bad input is not kept at the cost of history), then
//! a slice of the oldest history across positions, statuses, events, attendance and face
//! images alike. Rows are found oldest-first by rowid, which is arrival order, so each chunk
//! reads only the rows it deletes. SQLite reuses freed pages: under a size cap the file stops
//! growing rather than shrinking. Incidents and their audit trail are never pruned (they are
//! small).
//!
//! The evidence of an open incident opened from device events (a face terminal's stranger
//! capture or block-list match among them) is kept past both limits until it is resolved: of
//! its device and event type, within its span (widened by [`EVIDENCE_SLACK_MS`]), the event of
//! its first occurrence, its newest [`EVIDENCE_KEPT`] events, and the newest [`EVIDENCE_KEPT`]
//! that have a face image, with those images: what the incident view shows. A night's
//! unacknowledged stranger capture keeps its face under a privacy-short age limit or a busy
//! file's size cap; once resolved, its evidence goes at the next chunk. The size cap does not
//! bound it (13 events and 7 images per open incident, more where they share a time). Kept rows
//! are passed over, not waited behind: each chunk takes the oldest rows that are not kept. Not
//! kept: the console's own incidents (offline, stale, a quarantine flood, which have no
//! events), and incidents whose kind is not their events' type (`event_offline`, an overflow of
//! kinds).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

/// Rows deleted per table per chunk.
pub const CHUNK_ROWS: i64 = 5_000;
/// Face images deleted per chunk: each may be megabytes, and SQLite reads a row's overflow
/// pages to free them, so 5,000 of them held the writer (and every acknowledgement) for
/// seconds.
pub const IMAGE_CHUNK_ROWS: i64 = 100;
/// Refused messages kept, newest first, while a size cap makes room: enough to read what a
/// flood was.
pub const QUARANTINE_KEPT_UNDER_CAP: i64 = 10_000;
/// A size cap that keeps less history than this is warned about (at most once an hour).
const SHORT_HISTORY_MS: i64 = 24 * 3_600_000;
/// The newest events of an open incident kept (with its first), and the newest of its images:
/// as many as the incident view shows.
pub const EVIDENCE_KEPT: u32 = 6;
/// An incident's span widened by this each way, in what pruning keeps and the incident view
/// reads: consoles sharing an incident may each have stamped an event that came without a
/// readable time on its own arrival, a few milliseconds apart.
pub const EVIDENCE_SLACK_MS: i64 = 1_000;

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

/// The history a size cap takes from, oldest row first.
const HISTORY: [&str; 5] = [
    "positions",
    "statuses",
    "events",
    "attendance",
    "face_images",
];

fn chunk_rows(table: &str) -> i64 {
    if table == "face_images" {
        IMAGE_CHUNK_ROWS
    } else {
        CHUNK_ROWS
    }
}

/// The event `e` is the evidence of an open incident (see the module docs). Read through
/// `incidents_open_by_cause` (its WHERE is this one's, word for word, or SQLite would not use
/// it): an event of no open incident costs one probe of that small index. An event that is
/// one's: whether it is the first in the span, and how many of its kind come after it (only
/// those with an image, if it has one: then it is kept as one of the newest images), are read
/// from `events_by_cause`, a few index entries each.
fn is_evidence(e: &str) -> String {
    let has_image = |x: &str| {
        format!(
            "EXISTS (SELECT 1 FROM face_images f WHERE f.device_id = {x}.device_id AND f.event_id = {x}.event_id)"
        )
    };
    format!(
        "EXISTS (SELECT 1 FROM incidents i
            WHERE i.source = {e}.device_id AND i.kind = {e}.type AND i.state <> 'resolved'
              AND {e}.ts_ms BETWEEN i.first_seen_ms - {EVIDENCE_SLACK_MS} AND i.last_seen_ms + {EVIDENCE_SLACK_MS}
              AND (NOT EXISTS (SELECT 1 FROM events earlier
                        WHERE earlier.device_id = {e}.device_id AND earlier.type = {e}.type
                          AND earlier.ts_ms >= i.first_seen_ms - {EVIDENCE_SLACK_MS}
                          AND earlier.ts_ms < {e}.ts_ms)
                   OR (SELECT count(*) FROM (SELECT 1 FROM events later
                        WHERE later.device_id = {e}.device_id AND later.type = {e}.type
                          AND later.ts_ms > {e}.ts_ms
                          AND later.ts_ms <= i.last_seen_ms + {EVIDENCE_SLACK_MS}
                          AND (NOT {e_image} OR {later_image})
                        LIMIT {EVIDENCE_KEPT})) < {EVIDENCE_KEPT}))",
        e_image = has_image(e),
        later_image = has_image("later"),
    )
}

/// The rows of `table` pruning may take, oldest first (`id` and `received_ms`, alias `t`), from
/// the row after id `?1`: all of them, but for the events and images kept as an open
/// incident's evidence.
fn prunable(table: &str) -> String {
    let kept = match table {
        "events" => is_evidence("t"),
        "face_images" => format!(
            "EXISTS (SELECT 1 FROM events e WHERE e.device_id = t.device_id AND e.event_id = t.event_id AND {})",
            is_evidence("e")
        ),
        _ => return format!("SELECT t.id, t.received_ms FROM {table} t WHERE t.id > ?1 ORDER BY t.id"),
    };
    format!(
        "SELECT t.id, t.received_ms FROM {table} t WHERE t.id > ?1 AND NOT {kept} ORDER BY t.id"
    )
}

/// A row received more than this after the clock now reads was stamped by a clock that has
/// since gone back (it was ahead, and was corrected).
const FROM_THE_FUTURE_MS: i64 = 10 * 60_000;

/// Where each table's next chunk of age pruning starts, within one pass over the history: past
/// the kept rows a chunk found at its head (so the next does not ask them again), and past a
/// window of rows stamped in the future (see below). A table's part of the pass ends when its
/// chunk reaches rows received after the age limit, or its end; it then waits for the others,
/// and the next pass starts every table from its oldest row again: rows passed over (evidence
/// of an incident resolved meanwhile) are taken then.
///
/// Rows stamped in the future come from a clock that was ahead when they arrived and has
/// since been put right: they are not old, but neither are they where the history stops.
/// Without the cursor a window full of them stopped every pass there, and the history behind
/// them was kept until they aged, a year later for a clock a year ahead.
#[derive(Debug, Default)]
pub struct Cursor {
    after: [i64; TABLES.len()],
    /// The table's part of this pass is over.
    done: [bool; TABLES.len()],
}

impl Cursor {
    fn index(table: &str) -> usize {
        TABLES.iter().position(|t| *t == table).unwrap_or(0)
    }

    /// Every table that keeps a cursor has finished this pass: the next starts over.
    fn end_pass_if_over(&mut self) {
        let over = TABLES
            .iter()
            .zip(self.done)
            .all(|(table, done)| done || *table == "attendance");
        if over {
            *self = Self::default();
        }
    }
}

/// [`prune_chunk_from`] with a pass of its own: every table's chunk from its oldest row.
pub fn prune_chunk(
    conn: &Connection,
    retention: &Retention,
    now_ms: i64,
) -> rusqlite::Result<Pruned> {
    prune_chunk_from(conn, retention, now_ms, &mut Cursor::default())
}

/// A wall clock ahead by more than this of the time that really passed since pruning last ran
/// has been stepped forward: age pruning does not follow it at once.
const CLOCK_STEP_MS: i64 = 10 * 60_000;

/// The time age pruning goes by: the workstation's clock, but not when it is stepped forward.
/// The time that really passed since pruning last ran is read from the kernel's boot clock
/// (Linux: a clock step does not move it, and it counts a suspended laptop's sleep; elsewhere
/// the monotonic clock, which may stand still while the machine sleeps). A clock stepped years
/// forward (a failing time source, a mistyped date) would otherwise have had the next chunks
/// take the whole history as older than the limit. While the wall clock is ahead, pruning's
/// time runs at twice the real pace until it has caught up: a clock that was behind at start
/// and was put right (a machine with no battery-backed clock, NTP late), or a sleep the clock
/// did not count, costs pruning as long again as the step, a year's step a year, and the log
/// says so. A step back is followed at once (pruning then takes less).
#[derive(Debug, Default)]
pub struct PruneClock {
    /// The time pruning last went by, and the boot clock then (ms).
    last: Option<(i64, i64)>,
    /// The wall clock is ahead and it was said.
    ahead: bool,
}

impl PruneClock {
    /// The time to prune by, from the wall clock and the boot clock now (ms).
    pub fn now(&mut self, wall_ms: i64, boot_ms: i64) -> i64 {
        let now = match self.last {
            Some((then, boot_then)) => {
                let real = boot_ms.saturating_sub(boot_then).max(0);
                let lead = wall_ms.saturating_sub(then.saturating_add(real));
                if lead > CLOCK_STEP_MS {
                    if !self.ahead {
                        tracing::warn!(
                            ahead_minutes = lead / 60_000,
                            "[history] the workstation clock was stepped forward: age pruning catches up at twice the real pace instead of at once (check the clock: history stamps take it as it reads)"
                        );
                    }
                    self.ahead = true;
                    then.saturating_add(real.saturating_mul(2)).min(wall_ms)
                } else {
                    if std::mem::take(&mut self.ahead) {
                        tracing::info!(
                            "[history] age pruning is in step with the workstation clock again"
                        );
                    }
                    wall_ms
                }
            }
            None => wall_ms,
        };
        self.last = Some((now, boot_ms));
        now
    }
}

/// Deletes at most one chunk per table; returns how many rows went and whether there is
/// probably more to do (a chunk came back full, or passed over rows it may not take yet, or the
/// data is still over the size cap with something left to take): then the writer calls again
/// after its next batch, with the same `cursor`.
pub fn prune_chunk_from(
    conn: &Connection,
    retention: &Retention,
    now_ms: i64,
    cursor: &mut Cursor,
) -> rusqlite::Result<Pruned> {
    let mut pruned = Pruned::default();
    if let Some(age) = retention.max_age {
        let cutoff = now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        for table in TABLES {
            let limit = chunk_rows(table);
            if table == "attendance" {
                // Whole days: the daily report's first-in and last-out of a day half pruned
                // were wrong, with no sign that rows were missing.
                // And only rows that arrived before the limit too: a terminal whose clock was
                // reset to 2000 stamps its records with days long past. Asked of the rows
                // before the chunk is cut, or 5,000 of those would fill every chunk and stop
                // the pruning of attendance.
                let sql = "DELETE FROM attendance WHERE id IN (SELECT id FROM attendance WHERE local_day < ?2 AND received_ms < ?3 ORDER BY local_day LIMIT ?1)";
                let before_day = whole_days_before(cutoff);
                pruned.add(
                    conn.prepare_cached(sql)?
                        .execute((limit, before_day, cutoff))?,
                    limit,
                );
                continue;
            }
            // The table name is one of the fixed names above; values are bound.
            let slot = Cursor::index(table);
            if cursor.done[slot] {
                continue; // waits for the others' part of this pass
            }
            let after = &mut cursor.after[slot];
            // The window read once (whether a row is kept is asked once), then what is old
            // in it deleted by id.
            let (mut rows, mut first, mut last, mut newest) = (0i64, None, None, None::<i64>);
            let mut old = Vec::new();
            {
                let mut window = conn.prepare_cached(&format!("{} LIMIT ?2", prunable(table)))?;
                let mut found = window.query((*after, limit))?;
                while let Some(row) = found.next()? {
                    let (id, received_ms): (i64, i64) = (row.get(0)?, row.get(1)?);
                    rows += 1;
                    first = first.or(Some(id));
                    last = Some(id);
                    newest = Some(newest.map_or(received_ms, |n| n.max(received_ms)));
                    if received_ms < cutoff {
                        old.push(id);
                    }
                }
            }
            let mut delete = conn.prepare_cached(&format!("DELETE FROM {table} WHERE id = ?1"))?;
            for id in &old {
                delete.execute([id])?;
            }
            let deleted = old.len();
            pruned.add(deleted, limit);
            let full = rows >= limit;
            let took_all = i64::try_from(deleted).unwrap_or(i64::MAX) >= limit;
            let from_the_future =
                newest.is_some_and(|n| n > now_ms.saturating_add(FROM_THE_FUTURE_MS));
            *after = match (first, last) {
                // A window holding rows that claim to come from the future: everything old in
                // it went; on past it.
                (_, Some(last)) if full && from_the_future => {
                    pruned.more = true;
                    last
                }
                // A whole chunk taken: on from the first row it held (what lay before it is
                // kept).
                (Some(first), _) if full && took_all => first - 1,
                // Rows received after the limit, or the end: this table's part of the pass
                // is over.
                _ => {
                    cursor.done[slot] = true;
                    0
                }
            };
        }
        cursor.end_pass_if_over();
    }
    if let Some(max) = retention.max_bytes {
        if data_bytes(conn)? > max {
            // Still over, with something left to take: more to do soon, whatever size the
            // chunk had. Nothing left (the file is over the cap with what is never pruned):
            // the next try waits the usual minute.
            let took = make_room(conn, max, now_ms, &mut pruned)?;
            pruned.more |= took && data_bytes(conn)? > max;
        }
    }
    Ok(pruned)
}

/// The first terminal-local day (`YYYY-MM-DD`) not wholly before `cutoff_ms` in every zone: a
/// local day ends at most 12 hours after the same UTC day does (UTC-12), so the days before
/// the UTC date of `cutoff_ms - 12 h` are over everywhere. Attendance goes in whole days, a day
/// or two after the age limit.
fn whole_days_before(cutoff_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(cutoff_ms.saturating_sub(12 * 3_600_000))
        .map(|t| t.format("%Y-%m-%d").to_string())
        // Before 1970 or beyond chrono's range: no day is over.
        .unwrap_or_default()
}

/// What one call of [`prune_chunk`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub rows: u64,
    /// Some table gave a whole chunk, or the size cap is not met yet: call again soon.
    pub more: bool,
}

impl Pruned {
    fn add(&mut self, deleted: usize, limit: i64) {
        self.rows += deleted as u64;
        self.more |= i64::try_from(deleted).unwrap_or(i64::MAX) >= limit;
    }
}

/// Refused messages kept under a size cap of `max_bytes`: [`QUARANTINE_KEPT_UNDER_CAP`], or
/// fewer under a small cap (about a tenth of it, at some 1.5 KB a row), so that they never
/// take the room history needs.
fn quarantine_kept(max_bytes: u64) -> i64 {
    i64::try_from(max_bytes / 16_384)
        .unwrap_or(i64::MAX)
        .clamp(100, QUARANTINE_KEPT_UNDER_CAP)
}

/// One chunk towards the size cap: refused messages beyond the newest kept, then, while still
/// over, a slice of the oldest history across every table (see below). Returns whether there
/// was anything it may take.
fn make_room(
    conn: &Connection,
    max_bytes: u64,
    now_ms: i64,
    pruned: &mut Pruned,
) -> rusqlite::Result<bool> {
    let beyond_kept: Option<i64> = conn
        .prepare_cached("SELECT id FROM quarantine ORDER BY id DESC LIMIT 1 OFFSET ?1")?
        .query_row([quarantine_kept(max_bytes)], |r| r.get(0))
        .optional()?;
    if let Some(newest_gone) = beyond_kept {
        let deleted = conn
            .prepare_cached(
                "DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine WHERE id <= ?1 ORDER BY id LIMIT ?2)",
            )?
            .execute((newest_gone, CHUNK_ROWS))?;
        pruned.add(deleted, CHUNK_ROWS);
        // More of them beyond the kept, or under the cap now: that was this chunk. Else (a
        // flood goes on: a few new ones at every call) history's turn comes in the same call,
        // or the file would grow for as long as the flood lasts.
        if i64::try_from(deleted).unwrap_or(i64::MAX) >= CHUNK_ROWS
            || data_bytes(conn)? <= max_bytes
        {
            return Ok(true);
        }
    }
    // A slice of the oldest history, the same instant in every table: up to the arrival of the
    // chunk-th row of the table whose chunk ends first (or of its last row, in one holding
    // less). Every table loses its rows up to then, at most a chunk each. So a table of a few
    // hundred alarms over a month loses only those older than the others' oldest chunk, not
    // this morning's; and tables filled together (an OwnTracks fix is a position and a status
    // of the same instant) go together, a chunk a call, not one row at a time.
    let mut oldest: Option<i64> = None;
    let mut until: Option<i64> = None;
    for table in HISTORY {
        // From the oldest row (the age's cursor may have passed over some the cap may take).
        let head = format!("SELECT received_ms FROM ({} LIMIT 1)", prunable(table));
        let Some(first) = conn
            .prepare_cached(&head)?
            .query_row([0], |r| r.get::<_, i64>(0))
            .optional()?
        else {
            continue;
        };
        let chunk_end = format!(
            "SELECT received_ms FROM ({} LIMIT ?2) ORDER BY id DESC LIMIT 1",
            prunable(table)
        );
        let end: i64 = conn
            .prepare_cached(&chunk_end)?
            .query_row([0, chunk_rows(table)], |r| r.get(0))?;
        oldest = Some(oldest.map_or(first, |o: i64| o.min(first)));
        until = Some(until.map_or(end, |u: i64| u.min(end)));
    }
    let (Some(oldest), Some(until)) = (oldest, until) else {
        warn_cap_unmet(now_ms, None);
        return Ok(false);
    };
    if now_ms.saturating_sub(oldest) < SHORT_HISTORY_MS {
        warn_cap_unmet(now_ms, Some(oldest));
    }
    for table in HISTORY {
        // The oldest rows by id (arrival order), so the chunk reads only what it may delete;
        // of those, the ones no later than the slice's end.
        let sql = format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM ({} LIMIT ?2)) AND received_ms <= ?3",
            prunable(table)
        );
        let limit = chunk_rows(table);
        pruned.add(
            conn.prepare_cached(&sql)?.execute((0, limit, until))?,
            limit,
        );
    }
    Ok(true)
}

/// Says (at most once an hour) that the size cap now costs the last day's history (`oldest_ms`:
/// the oldest row left), or that nothing is left it may take (`None`: the file is over the cap
/// with incidents, the evidence of open ones, the directory and the newest refused messages
/// alone).
fn warn_cap_unmet(now_ms: i64, oldest_ms: Option<i64>) {
    static LAST_WARNED_MS: AtomicI64 = AtomicI64::new(i64::MIN);
    let last = LAST_WARNED_MS.load(Ordering::Relaxed);
    if now_ms.saturating_sub(last) < 3_600_000
        || LAST_WARNED_MS
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    match oldest_ms {
        Some(oldest) => tracing::warn!(
            kept_hours = now_ms.saturating_sub(oldest) / 3_600_000,
            "[history] max_size_mb now keeps less than a day of history: raise it, or look for what fills the file"
        ),
        None => tracing::warn!(
            "[history] max_size_mb is exceeded by what is not pruned (incidents, the evidence of open ones, the employee directory, the newest refused messages): raise it, or resolve what is done"
        ),
    }
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

        let rows = |pruned: Pruned| (pruned.rows, pruned.more);
        assert_eq!(
            rows(prune_chunk(&conn, &keep_a_day, now).unwrap()),
            (5_000 + 1, true)
        );
        assert_eq!(
            rows(prune_chunk(&conn, &keep_a_day, now).unwrap()),
            (5_000, true)
        );
        assert_eq!(
            rows(prune_chunk(&conn, &keep_a_day, now).unwrap()),
            (2_000, false)
        );
        assert_eq!(
            rows(prune_chunk(&conn, &keep_a_day, now).unwrap()),
            (0, false),
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
        while prune_chunk(&conn, &cap, 0).unwrap().rows > 0 {
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

    fn quarantine_rows(conn: &Connection, rows: i64, received_ms: i64) {
        let mut stmt = conn.prepare(quarantine::INSERT).unwrap();
        for _ in 0..rows {
            let entry = quarantine::QuarantineEntry::new(
                received_ms,
                "t",
                &[b'x'; 1000],
                "malformed",
                "bad".into(),
            );
            quarantine::insert(&mut stmt, &entry).unwrap();
        }
    }

    #[test]
    fn a_size_cap_takes_refused_messages_before_history_and_keeps_the_newest_of_them() {
        // A month of positions, then a flood of refused messages today: the flood's oldest
        // go, not the positions (before, the cap took only positions, all of them).
        let conn = crate::store::open_in_memory().unwrap();
        fill(&conn, 10_000, |i| i);
        quarantine_rows(&conn, 30_000, 1_000_000);
        let cap = Retention {
            max_age: None,
            max_bytes: Some(data_bytes(&conn).unwrap() / 2),
        };
        let mut rounds = 0;
        while prune_chunk(&conn, &cap, 2_000_000).unwrap().more {
            rounds += 1;
            assert!(rounds < 20, "converges");
        }
        // The flood's oldest went until the data fit; every position stayed.
        assert!(data_bytes(&conn).unwrap() <= cap.max_bytes.unwrap());
        assert_eq!(count(&conn, "positions"), 10_000);
        let left = count(&conn, "quarantine");
        assert!(
            (quarantine_kept(cap.max_bytes.unwrap())..30_000).contains(&left),
            "{left}"
        );
        let newest_kept: i64 = conn
            .query_row("SELECT min(id) FROM quarantine", [], |r| r.get(0))
            .unwrap();
        assert_eq!(newest_kept, 30_000 - left + 1, "the newest are kept");
        // A small cap keeps about a tenth of itself for them, at least 100.
        assert_eq!(quarantine_kept(16 * 1024 * 1024), 1_024);
        assert_eq!(quarantine_kept(1), 100);
        assert_eq!(quarantine_kept(u64::MAX), QUARANTINE_KEPT_UNDER_CAP);
    }

    #[test]
    fn a_size_cap_takes_the_oldest_history_whatever_its_kind() {
        let conn = crate::store::open_in_memory().unwrap();
        // Old attendance images, then newer positions: the images go first, a hundred at a
        // time (each may be megabytes).
        let mut img = conn
            .prepare(crate::store::attendance::INSERT_IMAGE)
            .unwrap();
        let terminal = DeviceId::parse("t1").unwrap();
        for i in 0..300 {
            crate::store::attendance::insert_image(
                &mut img,
                &terminal,
                &format!("rec-{i}"),
                &[0u8; 4096],
                i,
            )
            .unwrap();
        }
        drop(img);
        fill(&conn, 1_000, |i| 10_000 + i);
        let cap = Retention {
            max_age: None,
            max_bytes: Some(1),
        };
        let first = prune_chunk(&conn, &cap, 20_000).unwrap();
        assert_eq!(
            first,
            Pruned {
                rows: IMAGE_CHUNK_ROWS as u64,
                more: true
            }
        );
        assert_eq!(count(&conn, "face_images"), 200);
        assert_eq!(count(&conn, "positions"), 1_000, "newer history waits");
        prune_chunk(&conn, &cap, 20_000).unwrap();
        prune_chunk(&conn, &cap, 20_000).unwrap();
        assert_eq!(count(&conn, "face_images"), 0);
        prune_chunk(&conn, &cap, 20_000).unwrap();
        assert_eq!(count(&conn, "positions"), 0, "then the positions");
    }

    #[test]
    fn under_a_flood_the_cap_still_reaches_history_in_the_same_chunk() {
        let conn = crate::store::open_in_memory().unwrap();
        fill(&conn, 6_000, |i| i);
        quarantine_rows(&conn, 12_000, 1_000_000);
        let tiny = Retention {
            max_age: None,
            max_bytes: Some(1),
        };
        // The backlog first, a chunk at a time.
        let pruned = prune_chunk(&conn, &tiny, 2_000_000).unwrap();
        assert_eq!((pruned.rows, pruned.more), (5_000, true));
        assert_eq!(count(&conn, "positions"), 6_000);
        // Down to the newest kept, history's turn comes in the same call; then, as a flood
        // goes on, a few new refused messages at each call do not hold history's turn back.
        assert_eq!(prune_chunk(&conn, &tiny, 2_000_000).unwrap().rows, 5_000);
        let pruned = prune_chunk(&conn, &tiny, 2_000_000).unwrap();
        assert_eq!(pruned.rows, (12_000 - 10_000 - 100) + 5_000);
        assert_eq!(count(&conn, "quarantine"), 100);
        quarantine_rows(&conn, 5, 1_500_000);
        let pruned = prune_chunk(&conn, &tiny, 2_000_000).unwrap();
        assert_eq!(pruned.rows, 5 + 1_000);
        assert_eq!(count(&conn, "positions"), 0);
    }

    #[test]
    fn a_chunk_takes_no_history_newer_than_the_next_tables_oldest() {
        // A month of alarms (one a day, the last this morning) beside positions from day 10:
        // the cap takes the alarms of days 1-10 with the positions, and this morning's alarm
        // only once everything older has gone.
        let conn = crate::store::open_in_memory().unwrap();
        let day = 86_400_000;
        let mut evt = conn.prepare(crate::store::events::INSERT).unwrap();
        let dev = DeviceId::parse("door").unwrap();
        for d in 1..=30 {
            let event = watchfloor_protocol::DeviceEvent {
                event_id: format!("e{d}"),
                ts_ms: d * day,
                event_type: "door_forced".into(),
                severity: watchfloor_protocol::Severity::High,
                message: None,
                position: None,
                stamped_on_arrival: false,
            };
            crate::store::events::insert(&mut evt, &dev, &event, d * day).unwrap();
        }
        drop(evt);
        fill(&conn, 10, |i| 10 * day + 1 + i);
        let tiny = Retention {
            max_age: None,
            max_bytes: Some(1),
        };
        prune_chunk(&conn, &tiny, 31 * day).unwrap();
        assert_eq!(
            count(&conn, "events"),
            20,
            "days 1-10 went, not this morning's"
        );
        assert_eq!(count(&conn, "positions"), 0);
        prune_chunk(&conn, &tiny, 31 * day).unwrap();
        assert_eq!(count(&conn, "events"), 0, "then the rest, the newest last");
    }

    #[test]
    fn attendance_goes_in_whole_days() {
        let conn = crate::store::open_in_memory().unwrap();
        let day = 86_400_000;
        let at = |d: i64, h: i64| d * day + h * 3_600_000;
        // Three terminal-local days; only local_day matters here.
        conn.execute_batch(
            "INSERT INTO attendance (terminal_id, record_id, ts_ms, local_time, local_day, verify_status, person_type, backlog, received_ms)
             VALUES ('t', 'r1', 0, '08:00:00', '2026-11-20', 1, 0, 0, 0),
                    ('t', 'r2', 0, '08:00:00', '2026-11-21', 1, 0, 0, 0),
                    ('t', 'r3', 0, '18:00:00', '2026-11-21', 1, 0, 0, 0),
                    ('t', 'r4', 0, '08:00:00', '2026-11-22', 1, 0, 0, 0)",
        )
        .unwrap();
        let d21 = chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
            / day;
        let keep_a_day = Retention {
            max_age: Some(Duration::from_secs(86_400)),
            max_bytes: None,
        };
        // The age limit falls in the middle of the 21st (14:00 UTC, when the 20th is over in
        // every zone): the 20th goes, the 21st stays whole (its 08:00 row too).
        prune_chunk(&conn, &keep_a_day, at(d21, 10) + day).unwrap();
        assert_eq!(
            count(&conn, "attendance"),
            4,
            "at 10:00 UTC the 20th is still going on west of UTC-10"
        );
        prune_chunk(&conn, &keep_a_day, at(d21, 14) + day).unwrap();
        let days: Vec<String> = conn
            .prepare("SELECT local_day FROM attendance ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(days, ["2026-11-21", "2026-11-21", "2026-11-22"]);
        // Once the 21st is over everywhere (noon UTC on the 22nd), it goes whole.
        prune_chunk(&conn, &keep_a_day, at(d21 + 1, 12) + day).unwrap();
        assert_eq!(count(&conn, "attendance"), 1);
    }

    #[test]
    fn tables_filled_together_go_together_a_chunk_a_call() {
        // OwnTracks: every fix is a position and a status of the same instant. Before, each
        // call took the rows of one table up to the other's oldest: one or two a call.
        let conn = crate::store::open_in_memory().unwrap();
        fill(&conn, 12_000, |i| i);
        let mut sta = conn.prepare(crate::store::statuses::INSERT).unwrap();
        let dev = DeviceId::parse("v").unwrap();
        for i in 0..12_000 {
            let status = watchfloor_protocol::Status {
                ts_ms: i,
                online: true,
                battery: None,
                signal: None,
                kind: None,
                name: None,
                simulated: false,
                stamped_on_arrival: false,
            };
            crate::store::statuses::insert(&mut sta, &dev, &status, i).unwrap();
        }
        drop(sta);
        let tiny = Retention {
            max_age: None,
            max_bytes: Some(1),
        };
        let pruned = prune_chunk(&conn, &tiny, 20_000).unwrap();
        assert_eq!((pruned.rows, pruned.more), (10_000, true));
        assert_eq!(count(&conn, "positions"), 7_000);
        assert_eq!(count(&conn, "statuses"), 7_000);
    }

    #[test]
    fn over_the_cap_with_nothing_to_take_waits_the_usual_minute() {
        let conn = crate::store::open_in_memory().unwrap();
        quarantine_rows(&conn, 50, 1_000);
        let tiny = Retention {
            max_age: None,
            max_bytes: Some(1),
        };
        assert_eq!(prune_chunk(&conn, &tiny, 2_000).unwrap(), Pruned::default());
        assert_eq!(
            count(&conn, "quarantine"),
            50,
            "the newest refused messages are kept"
        );
    }

    #[test]
    fn no_limits_prune_nothing() {
        let conn = crate::store::open_in_memory().unwrap();
        fill(&conn, 10, |_| 0);
        assert!(Retention::default().is_off());
        assert_eq!(
            prune_chunk(&conn, &Retention::default(), i64::MAX).unwrap(),
            Pruned::default()
        );
    }

    /// An event of `kind` from `device` at `ts_ms` (its id `{kind}-{ts_ms}`), with a face image
    /// or not, received at `received_ms`.
    fn event(
        conn: &Connection,
        device: &str,
        kind: &str,
        ts_ms: i64,
        image: bool,
        received_ms: i64,
    ) {
        let dev = DeviceId::parse_qualified(device).unwrap();
        let event = watchfloor_protocol::DeviceEvent {
            event_id: format!("{kind}-{ts_ms}"),
            ts_ms,
            event_type: kind.into(),
            severity: watchfloor_protocol::Severity::High,
            message: None,
            position: None,
            stamped_on_arrival: false,
        };
        let mut evt = conn.prepare_cached(crate::store::events::INSERT).unwrap();
        crate::store::events::insert(&mut evt, &dev, &event, received_ms).unwrap();
        if image {
            let mut img = conn
                .prepare_cached(crate::store::attendance::INSERT_IMAGE)
                .unwrap();
            crate::store::attendance::insert_image(
                &mut img,
                &dev,
                &event.event_id,
                &[0u8; 64],
                received_ms,
            )
            .unwrap();
        }
    }

    /// The gate's granted entries, one a second from 1 s to `seconds`.
    fn granted(conn: &Connection, seconds: i64) {
        for second in 1..=seconds {
            event(
                conn,
                "face:GATE",
                "access_granted",
                second * 1_000,
                false,
                1_000,
            );
        }
    }

    /// Stranger captures with their faces at the given seconds.
    fn captures(conn: &Connection, device: &str, kind: &str, seconds: &[i64], received_ms: i64) {
        for &second in seconds {
            event(conn, device, kind, second * 1_000, true, received_ms);
        }
    }

    /// An incident of `device` and `kind` seen from `first` to `last` (ms).
    fn incident(conn: &Connection, device: &str, kind: &str, first: i64, last: i64, state: &str) {
        conn.execute(
            "INSERT INTO incidents (id, source, kind, severity, title, state, count, first_seen_ms,
                 last_seen_ms, version, updated_ms, updated_by, last_action)
             VALUES (?1 || ':' || ?2 || ':' || ?3, ?1, ?2, 'high', 't', ?4, 1, ?3, ?5, 1, 0, 'system', 'opened')",
            (device, kind, first, state, last),
        )
        .unwrap();
    }

    /// The seconds of the events of `device` and `kind` still stored, and of their images.
    fn left(conn: &Connection, device: &str, kind: &str) -> (Vec<i64>, Vec<i64>) {
        let events = conn
            .prepare(
                "SELECT ts_ms / 1000 FROM events WHERE device_id = ?1 AND type = ?2 ORDER BY ts_ms",
            )
            .unwrap()
            .query_map([device, kind], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let images = conn
            .prepare(
                "SELECT e.ts_ms / 1000 FROM face_images f JOIN events e USING (device_id, event_id)
                 WHERE f.device_id = ?1 AND e.type = ?2 ORDER BY e.ts_ms",
            )
            .unwrap()
            .query_map([device, kind], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        (events, images)
    }

    /// What the incident view shows of an incident seen from `first` to `last` (ms): seconds,
    /// newest first.
    fn shown(conn: &Connection, device: &str, kind: &str, first: i64, last: i64) -> Vec<i64> {
        crate::store::attendance::incident_images(conn, device, kind, first, last)
            .unwrap()
            .iter()
            .map(|i| i.ts_ms / 1000)
            .collect()
    }

    /// Chunks until one says there is no more, as the writer does with its pass's cursor.
    fn prune_until_done(conn: &Connection, retention: &Retention, now_ms: i64) {
        let mut cursor = Cursor::default();
        for _ in 0..100 {
            if !prune_chunk_from(conn, retention, now_ms, &mut cursor)
                .unwrap()
                .more
            {
                return;
            }
        }
        panic!("pruning did not finish");
    }

    #[test]
    fn rows_stamped_in_the_future_do_not_stop_the_pruning_behind_them() {
        // The clock was a year ahead for a while (6,000 rows, more than a chunk), then put
        // right: the day before is older than the limit, and today is not.
        let conn = crate::store::open_in_memory().unwrap();
        let day = 86_400_000;
        let now = 400 * day;
        fill(&conn, 6_000, |_| now + 365 * day);
        fill(&conn, 3_000, |_| now - 2 * day);
        fill(&conn, 100, |_| now - 1_000);
        let received = |conn: &Connection| -> Vec<i64> {
            conn.prepare("SELECT DISTINCT received_ms FROM positions ORDER BY received_ms")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let keep_a_day = Retention {
            max_age: Some(Duration::from_secs(86_400)),
            max_bytes: None,
        };
        // A chunk from the oldest row every time (no cursor) stops at the rows from the future.
        for _ in 0..5 {
            prune_chunk(&conn, &keep_a_day, now).unwrap();
        }
        assert_eq!(count(&conn, "positions"), 9_100);
        // With the pass's cursor it goes on past them.
        prune_until_done(&conn, &keep_a_day, now);
        assert_eq!(received(&conn), [now - 1_000, now + 365 * day]);
        assert_eq!(count(&conn, "positions"), 6_100);
        // The next pass passes over them again, and ends.
        prune_until_done(&conn, &keep_a_day, now);
        assert_eq!(count(&conn, "positions"), 6_100);
    }

    #[test]
    fn an_incident_resolved_during_a_pass_has_its_evidence_taken_at_the_next() {
        // An open incident's seven captures at the head of the events, then 12,000 old events
        // of another device: the first chunk passes over the seven.
        let conn = crate::store::open_in_memory().unwrap();
        let seven: Vec<i64> = (1..=7).map(|n| n * 10).collect();
        captures(&conn, "face:GATE", "blocklist_match", &seven, 1_000);
        incident(&conn, "face:GATE", "blocklist_match", 10_000, 70_000, "new");
        for n in 1..=12_000 {
            event(&conn, "door", "opened", n, false, 1_000);
        }
        let now = 1_000 + 86_400_000;
        let mut cursor = Cursor::default();
        let first = prune_chunk_from(&conn, &KEEP_AN_HOUR, now, &mut cursor).unwrap();
        assert!(first.more);
        assert_eq!(
            count(&conn, "events"),
            7 + 7_000,
            "the seven kept, passed over"
        );
        // Resolved meanwhile: the rest of this pass goes on from where it was.
        conn.execute("UPDATE incidents SET state = 'resolved'", [])
            .unwrap();
        while prune_chunk_from(&conn, &KEEP_AN_HOUR, now, &mut cursor)
            .unwrap()
            .more
        {}
        assert_eq!(left(&conn, "door", "opened"), (vec![], vec![]));
        assert_eq!(count(&conn, "events"), 7, "this pass had passed them");
        assert_eq!(count(&conn, "face_images"), 7);
        // The next pass takes them.
        prune_chunk_from(&conn, &KEEP_AN_HOUR, now, &mut cursor).unwrap();
        assert_eq!(count(&conn, "events"), 0);
        assert_eq!(count(&conn, "face_images"), 0);
    }

    #[test]
    fn a_clock_stepped_forward_is_caught_up_with_at_twice_the_real_pace() {
        let (second, hour, day, year) = (1_000, 3_600_000, 86_400_000, 365 * 86_400_000);
        let mut clock = PruneClock::default();
        let (t0, b0) = (1_800_000_000_000, 5_000);
        assert_eq!(clock.now(t0, b0), t0, "the clock is taken at the start");
        // An hour on both clocks (a laptop asleep for it too: the boot clock counts sleep).
        assert_eq!(clock.now(t0 + hour, b0 + hour), t0 + hour);
        // Stepped a year forward: pruning runs on at twice the real pace, not a year on.
        let stepped = clock.now(t0 + year + hour + second, b0 + hour + second);
        assert_eq!(stepped, t0 + hour + 2 * second);
        let later = clock.now(t0 + year + 2 * hour, b0 + 2 * hour);
        assert_eq!(later, t0 + 3 * hour);
        // Put right (the time is t0 + 2 h): followed at once, back as well.
        assert_eq!(
            clock.now(t0 + 2 * hour + 5, b0 + 2 * hour + 5),
            t0 + 2 * hour + 5
        );
        // A small step forward (NTP) is followed.
        assert_eq!(
            clock.now(t0 + 2 * hour + 60_000, b0 + 2 * hour + 10),
            t0 + 2 * hour + 60_000
        );

        // A clock a day behind at start, put right: caught up with in a day, not held back
        // until a restart.
        let mut clock = PruneClock::default();
        let late = t0 - day;
        clock.now(late, b0);
        let mut at = 0;
        for h in 1..=30 {
            at = clock.now(t0 + h * hour, b0 + h * hour);
        }
        assert_eq!(at, t0 + 30 * hour);
    }

    #[test]
    fn attendance_stamped_by_a_reset_terminal_clock_does_not_stop_its_pruning() {
        // 6,000 records of a terminal whose clock was reset to 2000, received today (kept:
        // they are not old), then a day of records from two weeks ago.
        let conn = crate::store::open_in_memory().unwrap();
        let day = 86_400_000;
        let now = chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        let mut insert = conn
            .prepare(
                "INSERT INTO attendance (terminal_id, record_id, ts_ms, local_time, local_day, verify_status, person_type, backlog, received_ms)
                 VALUES ('t', ?1, 0, '08:00:00', ?2, 1, 0, 0, ?3)",
            )
            .unwrap();
        for n in 0..6_000 {
            insert
                .execute((format!("reset-{n}"), "2000-01-01", now - 1_000))
                .unwrap();
        }
        for n in 0..100 {
            insert
                .execute((format!("old-{n}"), "2026-11-17", now - 14 * day))
                .unwrap();
        }
        drop(insert);
        let keep_a_week = Retention {
            max_age: Some(Duration::from_secs(7 * 86_400)),
            max_bytes: None,
        };
        prune_chunk(&conn, &keep_a_week, now).unwrap();
        assert_eq!(count(&conn, "attendance"), 6_000, "the old day went");
    }

    const KEEP_AN_HOUR: Retention = Retention {
        max_age: Some(Duration::from_secs(3600)),
        max_bytes: None,
    };

    #[test]
    fn an_open_incidents_evidence_outlives_the_age_limit_until_it_is_resolved() {
        let conn = crate::store::open_in_memory().unwrap();
        // Twelve stranger captures at the gate, ten seconds apart, among the entries the gate
        // granted; the open incident counts those of 30 s to 120 s (the first two were an
        // earlier incident's, resolved). Ten at another gate, with no incident. All received a
        // day before the age limit.
        let seconds: Vec<i64> = (1..=12).map(|n| n * 10).collect();
        captures(&conn, "face:GATE", "stranger_capture", &seconds, 1_000);
        granted(&conn, 130);
        // One granted half a second before the first capture: no capture of the incident.
        event(&conn, "face:GATE", "access_granted", 29_500, false, 1_000);
        captures(
            &conn,
            "face:YARD",
            "stranger_capture",
            &seconds[..10],
            1_000,
        );
        incident(
            &conn,
            "face:GATE",
            "stranger_capture",
            10_000,
            20_000,
            "resolved",
        );
        // Its events were stamped by another console, a few milliseconds after ours at first
        // and before at last: ours lie just outside its span.
        incident(
            &conn,
            "face:GATE",
            "stranger_capture",
            30_004,
            119_996,
            "acknowledged",
        );
        let now = 1_000 + 86_400_000;
        // A capture just in, after the incident's last (not counted on it yet): not one of
        // the six the view shows of it, so it takes none of their places.
        event(&conn, "face:GATE", "stranger_capture", 200_000, true, now);
        prune_until_done(&conn, &KEEP_AN_HOUR, now);

        // Its first occurrence and its newest six, with their faces; nothing else (but the
        // capture just in).
        let evidence = vec![30, 70, 80, 90, 100, 110, 120, 200];
        assert_eq!(
            left(&conn, "face:GATE", "stranger_capture"),
            (evidence.clone(), evidence.clone())
        );
        assert_eq!(left(&conn, "face:GATE", "access_granted"), (vec![], vec![]));
        assert_eq!(
            left(&conn, "face:YARD", "stranger_capture"),
            (vec![], vec![])
        );
        // The incident view reads the six newest it keeps.
        assert_eq!(
            shown(&conn, "face:GATE", "stranger_capture", 30_004, 119_996),
            [120, 110, 100, 90, 80, 70]
        );

        // Resolved, its evidence goes at the next chunk (its day is long gone).
        conn.execute("UPDATE incidents SET state = 'resolved'", [])
            .unwrap();
        prune_until_done(&conn, &KEEP_AN_HOUR, now);
        assert_eq!(
            left(&conn, "face:GATE", "stranger_capture"),
            (vec![200], vec![200])
        );
    }

    #[test]
    fn the_newest_faces_are_kept_even_where_newer_captures_came_without_one() {
        // A block-list match every ten seconds, the last four and the sixth with no picture
        // the console could read: the view shows the newest six that have a face, so those are
        // kept, with their events; of the ones without, the newest events are kept too (the
        // last four), not the sixth (eight came after it).
        let conn = crate::store::open_in_memory().unwrap();
        for n in 1..=14 {
            let face = n <= 10 && n != 6;
            event(
                &conn,
                "face:GATE",
                "blocklist_match",
                n * 10_000,
                face,
                1_000,
            );
        }
        granted(&conn, 150);
        incident(
            &conn,
            "face:GATE",
            "blocklist_match",
            10_000,
            140_000,
            "new",
        );
        prune_until_done(&conn, &KEEP_AN_HOUR, 1_000 + 86_400_000);
        let (events, images) = left(&conn, "face:GATE", "blocklist_match");
        assert_eq!(images, [10, 40, 50, 70, 80, 90, 100]);
        assert_eq!(events, [10, 40, 50, 70, 80, 90, 100, 110, 120, 130, 140]);
        assert_eq!(
            shown(&conn, "face:GATE", "blocklist_match", 10_000, 140_000),
            [100, 90, 80, 70, 50, 40]
        );
    }

    #[test]
    fn kept_evidence_is_passed_over_not_waited_behind() {
        // Thirty gates each with an open incident: 30 x 7 kept images at the head of the
        // table, more than a chunk of images (100), then fifty images of no incident.
        let conn = crate::store::open_in_memory().unwrap();
        let seven: Vec<i64> = (1..=7).map(|n| n * 10).collect();
        for gate in 0..30 {
            let device = format!("face:G{gate}");
            captures(&conn, &device, "blocklist_match", &seven, 1_000);
            incident(&conn, &device, "blocklist_match", 10_000, 70_000, "new");
        }
        let fifty: Vec<i64> = (1..=50).collect();
        captures(&conn, "face:YARD", "stranger_capture", &fifty, 2_000);
        fill(&conn, 50, |_| 2_000);
        let now = 2_000 + 86_400_000;
        prune_chunk(&conn, &KEEP_AN_HOUR, now).unwrap();
        assert_eq!(
            left(&conn, "face:YARD", "stranger_capture"),
            (vec![], vec![]),
            "one chunk reaches past the kept rows"
        );
        assert_eq!(count(&conn, "face_images"), 30 * 7);
        assert_eq!(count(&conn, "events"), 30 * 7);

        // A size cap the same: its slice is cut at the oldest rows it may take, so the kept
        // ones at the head hold back no table.
        fill(&conn, 50, |_| 3_000);
        captures(&conn, "face:YARD", "stranger_capture", &fifty, 3_000);
        let tiny = Retention {
            max_age: None,
            max_bytes: Some(1),
        };
        prune_until_done(&conn, &tiny, 4_000);
        assert_eq!(count(&conn, "positions"), 0);
        assert_eq!(
            left(&conn, "face:YARD", "stranger_capture"),
            (vec![], vec![])
        );
        assert_eq!(count(&conn, "face_images"), 30 * 7, "the evidence is kept");
    }

    #[test]
    fn asking_for_evidence_reads_only_open_incidents_and_events_of_their_kind() {
        // The partial index is used only while the question's WHERE holds its own: a pruning
        // that read every incident of a cause for every event would slow as they pile up. And
        // one that walked a device's every event to count those of one kind would slow with a
        // busy face terminal's granted entries.
        let conn = crate::store::open_in_memory().unwrap();
        for table in ["events", "face_images"] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {} LIMIT 10", prunable(table)))
                .unwrap()
                .query_map([0], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let incidents: Vec<&String> = plan.iter().filter(|p| p.contains(" i ")).collect();
            assert!(
                !incidents.is_empty()
                    && incidents
                        .iter()
                        .all(|p| p.contains("USING INDEX incidents_open_by_cause")),
                "{table}: {plan:#?}"
            );
            // The first and the newest of an incident's kind, without the device's others.
            let around: Vec<&String> = plan
                .iter()
                .filter(|p| p.contains(" later ") || p.contains(" earlier "))
                .collect();
            assert!(
                around.len() == 2 && around.iter().all(|p| p.contains("events_by_cause")),
                "{table}: {plan:#?}"
            );
        }
    }
}
