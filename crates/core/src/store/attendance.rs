//! `attendance` and `face_images`: what face terminals recorded. One row per `RecPush`, keyed by
//! terminal, RecordID and the terminal's time ([`INSERT`]), so a terminal's re-push (it sends
//! a record again until it gets its PushAck) is stored once, and a terminal that counts from 1
//! again is not taken for one. The JPEG of a stranger capture, a block-list match or a refused
//! verification is kept beside the event it belongs to, for the incident view.
//!
//! Reads join the log to the employee directory (`facesync::directory`): the name shown is the
//! directory's when the person is ours, else what the terminal said. The daily report groups by
//! the terminal's own calendar day (`local_day`), which is the day the employee lived at that
//! site whatever zone the console is in.

use rusqlite::{Connection, Statement};
use serde::Serialize;
use ts_rs::TS;
use watchfloor_protocol::face::AccessRecord;
use watchfloor_protocol::DeviceId;

pub const DDL: &str = "
CREATE TABLE attendance (
    id            INTEGER PRIMARY KEY,
    terminal_id   TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    ts_ms         INTEGER NOT NULL,
    local_time    TEXT NOT NULL,
    local_day     TEXT NOT NULL,
    person_id     TEXT,
    person_name   TEXT,
    verify_status INTEGER NOT NULL,
    person_type   INTEGER NOT NULL,
    similarity    REAL,
    backlog       INTEGER NOT NULL,
    received_ms   INTEGER NOT NULL,
    UNIQUE (terminal_id, record_id)
) STRICT;
CREATE INDEX attendance_by_time ON attendance (ts_ms);
CREATE INDEX attendance_by_day ON attendance (local_day, person_id);
CREATE TABLE face_images (
    id          INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    jpeg        BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    UNIQUE (device_id, event_id)
) STRICT;
";

/// The ids and names terminals gave persons with records held, each with how many records
/// gave it: what a person searched in the log or the daily report matches, without reading
/// every record of the range. A record with a name and no id is counted under the id `''`.
/// Triggers keep them as records come and go, so a name leaves with the last record that gave
/// it (age or size pruning) and is never kept longer than the history it came from.
pub const DDL_NAMES: &str = "
CREATE TABLE attendance_names (
    person_id   TEXT NOT NULL,
    person_name TEXT NOT NULL,
    records     INTEGER NOT NULL,
    PRIMARY KEY (person_id, person_name)
) STRICT, WITHOUT ROWID;
INSERT INTO attendance_names
    SELECT coalesce(person_id, ''), coalesce(person_name, ''), count(*) FROM attendance
    WHERE person_id IS NOT NULL OR person_name IS NOT NULL GROUP BY 1, 2;
CREATE TRIGGER attendance_names_in AFTER INSERT ON attendance
    WHEN NEW.person_id IS NOT NULL OR NEW.person_name IS NOT NULL
BEGIN
    INSERT INTO attendance_names
        VALUES (coalesce(NEW.person_id, ''), coalesce(NEW.person_name, ''), 1)
        ON CONFLICT DO UPDATE SET records = records + 1;
END;
CREATE TRIGGER attendance_names_out AFTER DELETE ON attendance
    WHEN OLD.person_id IS NOT NULL OR OLD.person_name IS NOT NULL
BEGIN
    UPDATE attendance_names SET records = records - 1
        WHERE person_id = coalesce(OLD.person_id, '')
          AND person_name = coalesce(OLD.person_name, '');
    DELETE FROM attendance_names
        WHERE person_id = coalesce(OLD.person_id, '')
          AND person_name = coalesce(OLD.person_name, '') AND records <= 0;
END;
";

/// `record_id` holds the record's key, its RecordID and the terminal's time
/// (`AccessRecord::key`, `41@20261123T110000`), so the table's UNIQUE (terminal_id, record_id)
/// tells apart the records of a terminal that counts from 1 again (reset, or a new one put in
/// under a broken one's id), which it took for re-pushes of old ones and dropped. Rows stored
/// before hold the RecordID alone. The log shows the RecordID ([`LOG`]). (A new
/// constraint would have meant copying the table: ten seconds for a month of 20,000 employees,
/// minutes for a year, at the first start of this version.)
pub const INSERT: &str = "INSERT OR IGNORE INTO attendance
    (terminal_id, record_id, ts_ms, local_time, local_day, person_id, person_name,
     verify_status, person_type, similarity, backlog, received_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

pub const INSERT_IMAGE: &str = "INSERT OR IGNORE INTO face_images
    (device_id, event_id, jpeg, received_ms) VALUES (?1, ?2, ?3, ?4)";

pub fn insert(
    stmt: &mut Statement<'_>,
    r: &AccessRecord,
    received_ms: i64,
) -> rusqlite::Result<()> {
    // `YYYY-MM-DD HH:mm:ss`: the decoder parsed it, so the first ten characters are the date.
    let day = r.local_time.get(..10).unwrap_or(&r.local_time);
    stmt.execute((
        &r.terminal,
        &r.key,
        r.ts_ms,
        &r.local_time,
        day,
        r.person_id.as_deref(),
        r.person_name.as_deref(),
        r.verify_status,
        r.person_type,
        r.similarity,
        r.backlog,
        received_ms,
    ))?;
    Ok(())
}

pub fn insert_image(
    stmt: &mut Statement<'_>,
    device: &DeviceId,
    event_id: &str,
    jpeg: &[u8],
    received_ms: i64,
) -> rusqlite::Result<()> {
    stmt.execute((device.as_str(), event_id, jpeg, received_ms))?;
    Ok(())
}

/// A kept image, ready for an `<img src>`.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct EventImage {
    pub event_id: String,
    #[ts(type = "number")]
    pub ts_ms: i64,
    /// `data:image/jpeg;base64,...`
    pub data_url: String,
}

/// The images kept with a device's events of one type over a span (an incident's first to last
/// occurrence), newest first.
pub fn event_images(
    conn: &Connection,
    device: &str,
    event_type: &str,
    from_ms: i64,
    to_ms: i64,
    limit: u32,
) -> rusqlite::Result<Vec<EventImage>> {
    use base64::Engine as _;
    let mut stmt = conn.prepare_cached(
        "SELECT f.event_id, e.ts_ms, f.jpeg FROM face_images f
         JOIN events e ON e.device_id = f.device_id AND e.event_id = f.event_id
         WHERE f.device_id = ?1 AND e.type = ?2 AND e.ts_ms BETWEEN ?3 AND ?4
         ORDER BY e.ts_ms DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map((device, event_type, from_ms, to_ms, limit), |r| {
        let jpeg: Vec<u8> = r.get(2)?;
        Ok(EventImage {
            event_id: r.get(0)?,
            ts_ms: r.get(1)?,
            data_url: format!(
                "data:image/jpeg;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(jpeg)
            ),
        })
    })?;
    rows.collect()
}

/// The images the incident view shows of an incident of `device` and `event_type` seen from
/// `first_ms` to `last_ms`: the newest [`retention::EVIDENCE_KEPT`] over its span widened by
/// [`retention::EVIDENCE_SLACK_MS`], which is what pruning keeps of an open one.
///
/// [`retention::EVIDENCE_KEPT`]: super::retention::EVIDENCE_KEPT
/// [`retention::EVIDENCE_SLACK_MS`]: super::retention::EVIDENCE_SLACK_MS
pub fn incident_images(
    conn: &Connection,
    device: &str,
    event_type: &str,
    first_ms: i64,
    last_ms: i64,
) -> rusqlite::Result<Vec<EventImage>> {
    use super::retention::{EVIDENCE_KEPT, EVIDENCE_SLACK_MS};
    event_images(
        conn,
        device,
        event_type,
        first_ms.saturating_sub(EVIDENCE_SLACK_MS),
        last_ms.saturating_add(EVIDENCE_SLACK_MS),
        EVIDENCE_KEPT,
    )
}

/// What a record says happened.
pub fn outcome(verify_status: i64, person_type: i64) -> &'static str {
    match (person_type, verify_status) {
        (1, _) => "blocklist",
        (_, 2) => "refused",
        (_, 3) => "not_registered",
        (_, 1) => "granted",
        _ => "unknown",
    }
}

/// One line of the attendance log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct AttendanceRow {
    pub terminal_id: String,
    pub terminal_name: Option<String>,
    pub record_id: String,
    #[ts(type = "number")]
    pub ts_ms: i64,
    /// The terminal's clock, as it stamped the record.
    pub local_time: String,
    pub person_id: Option<String>,
    /// The directory's name for our employees, else the terminal's.
    pub person_name: Option<String>,
    /// The person is in the employee directory.
    pub employee: bool,
    /// granted | refused | not_registered | blocklist | unknown
    pub outcome: String,
    pub similarity: Option<f64>,
    pub backlog: bool,
}

/// Which lines of the log to show.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, TS)]
#[ts(export)]
#[serde(default)]
pub struct AttendanceFilter {
    /// Local days (`YYYY-MM-DD`, the terminal's calendar), inclusive.
    pub from_day: Option<String>,
    pub to_day: Option<String>,
    pub terminal_id: Option<String>,
    /// Part of the person's id or name.
    pub person: Option<String>,
    /// Only these outcomes; empty: all.
    pub outcomes: Vec<String>,
    /// Most rows, newest first; `None`: all (exports).
    pub limit: Option<u32>,
    /// Only records stamped at or before this instant (epoch ms): the log as it stood then.
    #[ts(type = "number | null")]
    pub until_ms: Option<i64>,
}

/// The log, newest first.
pub fn log(conn: &Connection, f: &AttendanceFilter) -> rusqlite::Result<Vec<AttendanceRow>> {
    let mut out = Vec::new();
    each_log(conn, f, |row| {
        out.push(row);
        true
    })?;
    Ok(out)
}

/// The persons a search (the LIKE pattern `$p`) may find: every id or name a terminal gave a
/// person with records still held (`''`: a record with a name and no id), and every employee
/// of the directory, matching. A superset of the persons with an id whose records [`LOG`] and
/// [`DAILY`] take (a person of the directory is named by it, not the terminal), so a search can
/// read their records alone; a record with no id is found only along the range.
macro_rules! searched_persons {
    ($p:literal) => {
        concat!(
            "SELECT person_id FROM attendance_names
                WHERE person_id LIKE ",
            $p,
            " ESCAPE '\\' OR person_name LIKE ",
            $p,
            " ESCAPE '\\'
            UNION SELECT employee_id FROM employees
                WHERE employee_id LIKE ",
            $p,
            " ESCAPE '\\' OR name LIKE ",
            $p,
            " ESCAPE '\\'"
        )
    };
}

/// `days(d)`, every day from `$from` to `$to` (`YYYY-MM-DD`, both included), and `persons(p)`,
/// the persons the search `$like` may find ([`searched_persons`]): what a search of few persons
/// seeks on the day index, one (day, person) at a time.
macro_rules! days_and_persons {
    ($from:literal, $to:literal, $like:literal) => {
        concat!(
            "WITH RECURSIVE days(d) AS (
                SELECT ",
            $from,
            " WHERE ",
            $from,
            " <= ",
            $to,
            " UNION ALL SELECT date(d, '+1 day') FROM days WHERE d < ",
            $to,
            "), persons(p) AS (",
            searched_persons!($like),
            ") "
        )
    };
}

/// What a line of the log is made of; `FROM attendance a` and [`log_joins`] follow.
macro_rules! log_columns {
    () => {
        "SELECT a.terminal_id, t.name,
                CASE WHEN a.record_id GLOB
                    '*@[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]'
                THEN substr(a.record_id, 1, length(a.record_id) - 16) ELSE a.record_id END,
                a.ts_ms, a.local_time, a.person_id,
                coalesce(e.name, a.person_name), e.employee_id IS NOT NULL,
                a.verify_status, a.person_type, a.similarity, a.backlog"
    };
}
macro_rules! log_joins {
    () => {
        "LEFT JOIN employees e ON e.employee_id = a.person_id
         LEFT JOIN terminals t ON t.terminal_id = a.terminal_id"
    };
}
/// The log's filter: days `?1` to `?2`, terminal `?3`, a search `?4` (a LIKE pattern), stamped
/// at or before `?5`; each may be NULL.
macro_rules! log_where {
    () => {
        "(?1 IS NULL OR a.local_day >= ?1) AND (?2 IS NULL OR a.local_day <= ?2)
           AND (?3 IS NULL OR a.terminal_id = ?3)
           AND (?4 IS NULL OR a.person_id LIKE ?4 ESCAPE '\\'
                OR coalesce(e.name, a.person_name) LIKE ?4 ESCAPE '\\')
           AND a.ts_ms <= coalesce(?5, 9223372036854775807)"
    };
}

/// The log's query, newest first. The time bound is one the time index can seek to (`coalesce`, not
/// `?5 IS NULL OR ...`): a review frame near the start of a month's file reads the rows before
/// its instant, not every row after it on the way down.
///
/// Its record id is the RecordID: the stored key without the `@YYYYMMDDTHHMMSS` it ends with
/// ([`INSERT`]).
const LOG: &str = concat!(
    log_columns!(),
    " FROM attendance a ",
    log_joins!(),
    " WHERE ",
    log_where!(),
    " ORDER BY a.ts_ms DESC, a.id DESC"
);

/// The log of a search that finds few persons, between two days: their records sought on the
/// day index a day and a person at a time (as [`DAILY_OF_PERSONS`]), then put newest first.
/// [`LOG`] read every record of the range, newest first, to find them: 1.1 s for one person
/// over a month of 20,000 employees.
const LOG_OF_PERSONS: &str = concat!(
    days_and_persons!("?1", "?2", "?4"),
    log_columns!(),
    " FROM days CROSS JOIN persons CROSS JOIN attendance a INDEXED BY attendance_by_day ",
    log_joins!(),
    " WHERE a.local_day = days.d AND a.person_id = persons.p AND ",
    log_where!(),
    " ORDER BY a.ts_ms DESC, a.id DESC"
);

/// Hands each log row `f` selects to `visit`, newest first, until it returns false (or `f`'s
/// limit is reached).
pub fn each_log(
    conn: &Connection,
    f: &AttendanceFilter,
    visit: impl FnMut(AttendanceRow) -> bool,
) -> rusqlite::Result<()> {
    one_snapshot(conn, |conn| each_log_by(conn, f, Seek::WhenCheaper, visit))
}

/// Runs `read` in one read transaction, unless `conn` is in one already: which way a search is
/// read is decided by one statement and read by another, and a record stored between the two
/// would be read the wrong way (a name without an id by the seeks by id).
fn one_snapshot<T>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    if !conn.is_autocommit() {
        return read(conn);
    }
    let tx = conn.unchecked_transaction()?;
    let out = read(&tx)?;
    tx.finish()?;
    Ok(out)
}

/// [`each_log`], a search read by person as `seek` says.
fn each_log_by(
    conn: &Connection,
    f: &AttendanceFilter,
    seek: Seek,
    mut visit: impl FnMut(AttendanceRow) -> bool,
) -> rusqlite::Result<()> {
    let person = like_pattern(f.person.as_deref());
    let (from, to) = (f.from_day.as_deref(), f.to_day.as_deref());
    let page = f.limit.map(|l| l as usize);
    let sql = match &person {
        Some(p) if seek_by_person(conn, p, (from, to), seek, false, (page, LOG_US_A_ROW))? => {
            LOG_OF_PERSONS
        }
        _ => LOG,
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(
        (
            f.from_day.as_deref(),
            f.to_day.as_deref(),
            f.terminal_id.as_deref(),
            person.as_deref(),
            f.until_ms,
        ),
        |r| {
            Ok(AttendanceRow {
                terminal_id: r.get(0)?,
                terminal_name: r.get(1)?,
                record_id: r.get(2)?,
                ts_ms: r.get(3)?,
                local_time: r.get(4)?,
                person_id: r.get(5)?,
                person_name: r.get(6)?,
                employee: r.get(7)?,
                outcome: outcome(r.get(8)?, r.get(9)?).to_owned(),
                similarity: r.get(10)?,
                backlog: r.get(11)?,
            })
        },
    )?;
    // The outcome filter is applied here: it is a function of two columns, and the row count
    // stays bounded by `limit` either way.
    let limit = f.limit.map_or(usize::MAX, |l| l as usize);
    if limit == 0 {
        return Ok(());
    }
    let mut taken = 0;
    for row in rows {
        let row = row?;
        if f.outcomes.is_empty() || f.outcomes.contains(&row.outcome) {
            taken += 1;
            if !visit(row) || taken >= limit {
                break;
            }
        }
    }
    Ok(())
}

/// Writes the log rows `f` selects as CSV with a header to `path`, row by row (a year's log is
/// never held in memory); the rows written.
pub fn export_log(
    conn: &Connection,
    f: &AttendanceFilter,
    path: &std::path::Path,
) -> anyhow::Result<usize> {
    export_rows(path, |visit| each_log(conn, f, visit))
}

/// Writes the daily report (first in, last out) `f` selects as CSV with a header to `path`, row
/// by row (every row: `f.limit` is not applied); the rows written.
pub fn export_daily(
    conn: &Connection,
    f: &DailyFilter,
    path: &std::path::Path,
) -> anyhow::Result<usize> {
    let f = DailyFilter {
        limit: None,
        ..f.clone()
    };
    export_rows(path, |visit| each_daily(conn, &f, visit))
}

/// Writes the rows `each` hands its visitor as CSV to `path`, with the header of `T` (also when
/// there are none), stopping at the first row that cannot be written; the rows written.
fn export_rows<T: Serialize + Default>(
    path: &std::path::Path,
    each: impl FnOnce(&mut dyn FnMut(T) -> bool) -> rusqlite::Result<()>,
) -> anyhow::Result<usize> {
    write_csv_file(path, |w| {
        let (mut n, mut failed) = (0, None);
        each(&mut |row| match w.serialize(&row) {
            Ok(()) => {
                n += 1;
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        })?;
        w.ensure_header::<T>()?;
        failed.map_or(Ok(n), |e| Err(e.into()))
    })
}

/// Fills `path` through `write`, whole or not at all ([`crate::output::write_whole`]): a full
/// disk leaves no half file under a name that looks complete, and the previous file as it was.
fn write_csv_file(
    path: &std::path::Path,
    write: impl FnOnce(&mut CsvOut<'_>) -> anyhow::Result<usize>,
) -> anyhow::Result<usize> {
    crate::output::write_whole(path, |out| {
        let mut w = crate::spreadsheet::Writer::from_writer(out);
        let n = write(&mut w)?;
        w.flush()?;
        Ok(n)
    })
    .map_err(|e| match e {
        crate::output::WriteError::Write(e) => e,
        other => anyhow::anyhow!("{other}"),
    })
}

/// What [`write_csv_file`] writes through.
type CsvOut<'a> = crate::spreadsheet::Writer<&'a mut std::io::BufWriter<std::fs::File>>;

/// One employee's day: when they were first and last recognised (allowed) at any terminal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct DailyRow {
    pub day: String,
    pub person_id: String,
    pub person_name: Option<String>,
    pub employee: bool,
    /// The terminal's clock text of the first and last allowed recognition.
    pub first_in: String,
    pub last_out: String,
    pub first_terminal: String,
    pub last_terminal: String,
    #[ts(type = "number")]
    pub records: i64,
}

/// Which person-days of the daily report to show.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, TS)]
#[ts(export)]
#[serde(default)]
pub struct DailyFilter {
    /// Local days (`YYYY-MM-DD`, the terminals' calendar), inclusive.
    pub from_day: String,
    pub to_day: String,
    /// Part of the person's id or name.
    pub person: Option<String>,
    /// Most rows, by day then person; `None`: all (exports).
    pub limit: Option<u32>,
}

/// Most person-days a page of the daily report holds, whatever the page asks.
pub const DAILY_PAGE_MAX: u32 = 1000;

/// A page of the daily report: the first rows in order, and whether there are more.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct DailyPage {
    pub rows: Vec<DailyRow>,
    pub more: bool,
}

/// What a row of the daily report is made of, grouped per (day, person); `FROM attendance a`
/// and its `WHERE` follow.
macro_rules! daily_columns {
    () => {
        "SELECT a.local_day, a.person_id, coalesce(e.name, max(a.person_name)),
                e.employee_id IS NOT NULL,
                min(a.local_time), max(a.local_time), count(*)"
    };
}

/// Which person-days of a group the report takes: the range's recognitions of persons (`?1`,
/// `?2`), and with a search (`?3`, a LIKE pattern), the whole days any of whose records
/// matches by id or name (filtering records instead cut the day of a person whose name on the
/// terminal changed during it).
macro_rules! daily_where {
    () => {
        "a.local_day BETWEEN ?1 AND ?2 AND a.person_id IS NOT NULL
           AND a.verify_status = 1 AND a.person_type = 0"
    };
}
macro_rules! daily_having {
    () => {
        " HAVING ?3 IS NULL OR max(a.person_id LIKE ?3 ESCAPE '\\'
                OR coalesce(e.name, a.person_name) LIKE ?3 ESCAPE '\\')
         ORDER BY a.local_day, a.person_id"
    };
}

/// The daily report's query: one group per (day, person), read along the `attendance_by_day`
/// index in its order, so the first page of a month of tens of thousands of employees is read
/// without grouping the whole month first.
const DAILY: &str = concat!(
    daily_columns!(),
    " FROM attendance a LEFT JOIN employees e ON e.employee_id = a.person_id WHERE ",
    daily_where!(),
    " GROUP BY a.local_day, a.person_id",
    daily_having!()
);

/// The daily report of a search that finds few persons: each of their days sought on the day
/// index (`?1` to `?2`, a day at a time; `?3` the search), a few seeks per person-day.
/// [`DAILY`] read every record of the range to find them: 1.1 s for one person over a month of
/// 20,000 employees. The joins are nested in the order written (`CROSS JOIN`), days outermost.
const DAILY_OF_PERSONS: &str = concat!(
    days_and_persons!("?1", "?2", "?3"),
    daily_columns!(),
    " FROM days CROSS JOIN persons CROSS JOIN attendance a INDEXED BY attendance_by_day
        LEFT JOIN employees e ON e.employee_id = a.person_id
      WHERE a.local_day = days.d AND a.person_id = persons.p AND ",
    daily_where!(),
    " GROUP BY a.local_day, a.person_id",
    daily_having!()
);

/// Most days x persons a search seeks one by one, and most persons. Past them, reading the range
/// along the day index is as fast: a page fills within the first days (or records) of the range
/// when many persons match, and the seeks read every record of every person before the first
/// row.
const BY_PERSON_SEEKS_MAX: usize = 20_000;
const BY_PERSON_MAX: usize = 1_000;

/// `%part%` for LIKE, its wildcards taken literally; `None` for a blank search.
fn like_pattern(part: Option<&str>) -> Option<String> {
    part.map(str::trim).filter(|p| !p.is_empty()).map(|p| {
        format!(
            "%{}%",
            p.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    })
}

/// Hands each person-day `f` selects to `visit`, by day then person, until it returns false
/// (or `f`'s limit is reached). Nothing of the range is held: a year's report streams.
pub fn each_daily(
    conn: &Connection,
    f: &DailyFilter,
    visit: impl FnMut(DailyRow) -> bool,
) -> rusqlite::Result<()> {
    one_snapshot(conn, |conn| {
        each_daily_by(conn, f, Seek::WhenCheaper, visit)
    })
}

/// [`each_daily`], a search read by person as `seek` says.
fn each_daily_by(
    conn: &Connection,
    f: &DailyFilter,
    seek: Seek,
    mut visit: impl FnMut(DailyRow) -> bool,
) -> rusqlite::Result<()> {
    let person = like_pattern(f.person.as_deref());
    let (from, to) = (Some(f.from_day.as_str()), Some(f.to_day.as_str()));
    let page = f.limit.map(|l| l as usize);
    let sql = match &person {
        // The report takes records with an id only.
        Some(p) if seek_by_person(conn, p, (from, to), seek, true, (page, REPORT_US_A_ROW))? => {
            DAILY_OF_PERSONS
        }
        _ => DAILY,
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map((&f.from_day, &f.to_day, person.as_deref()), |r| {
        Ok(DailyRow {
            day: r.get(0)?,
            person_id: r.get(1)?,
            person_name: r.get(2)?,
            employee: r.get(3)?,
            first_in: r.get(4)?,
            last_out: r.get(5)?,
            first_terminal: String::new(),
            last_terminal: String::new(),
            records: r.get(6)?,
        })
    })?;
    // The terminals of the first and last recognition: a seek on the day index each.
    let mut at = conn.prepare_cached(
        "SELECT terminal_id FROM attendance
         WHERE local_day = ?1 AND person_id = ?2 AND local_time = ?3
           AND verify_status = 1 AND person_type = 0 LIMIT 1",
    )?;
    let limit = f.limit.map_or(usize::MAX, |l| l as usize);
    if limit == 0 {
        return Ok(());
    }
    let mut taken = 0;
    for row in rows {
        let mut row = row?;
        let mut terminal = |time: &str| -> rusqlite::Result<String> {
            at.query_row((&row.day, &row.person_id, time), |r| r.get(0))
        };
        let (first, last) = (terminal(&row.first_in)?, terminal(&row.last_out)?);
        row.first_terminal = first;
        row.last_terminal = last;
        taken += 1;
        if !visit(row) || taken >= limit {
            break;
        }
    }
    Ok(())
}

/// How many days from `from` to `to` (`YYYY-MM-DD`), both included; `None` when either is not
/// a date or the range is empty (the search then reads the range as [`DAILY`] does).
fn days_between(from: &str, to: &str) -> Option<usize> {
    // As SQLite's `date()` writes them (chrono also reads `2026-12-2`, which no row holds).
    let day = |d: &str| {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .ok()
            .filter(|day| day.format("%Y-%m-%d").to_string() == d)
    };
    let n = (day(to)? - day(from)?).num_days();
    usize::try_from(n).ok().map(|n| n + 1)
}

/// A search's persons (the macro `searched_persons`), counted up to `most + 1`; whether a record with a
/// name and no id is among them; and how many (id, name) pairs the table holds (about how many
/// persons have records). `None` for a file recorded before the table of names (schema 9;
/// review reads older files in place).
fn count_searched_persons(
    conn: &Connection,
    pattern: &str,
    most: usize,
) -> rusqlite::Result<Option<(usize, bool, usize)>> {
    let names: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'attendance_names')",
        )?
        .query_row([], |r| r.get(0))?;
    if !names {
        return Ok(None);
    }
    let count = concat!(
        "WITH found(p) AS (",
        searched_persons!("?1"),
        " LIMIT ?2) SELECT count(*), coalesce(max(p = ''), 0),
            (SELECT count(*) FROM attendance_names) FROM found"
    );
    let most_plus_one = i64::try_from(most).unwrap_or(i64::MAX).saturating_add(1);
    let (found, unnamed, held): (i64, bool, i64) = conn
        .prepare_cached(count)?
        .query_row((pattern, most_plus_one), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let size = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(Some((size(found), unnamed, size(held))))
}

/// Which way a search is read: along the days ([`LOG`], [`DAILY`]) or by person.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seek {
    /// By person when that is cheaper ([`seeks_cheaper`]): what the console does.
    WhenCheaper,
    /// Along the days (tests: both ways compared).
    #[cfg(test)]
    Never,
    /// By person whenever it gives the same rows (tests: both ways compared).
    #[cfg(test)]
    Always,
}

/// What the range read along the days costs a row, in microseconds: a person-day of the
/// report, a record of the log; and what a sought (day, person) costs: the seek, its records,
/// their grouping or sorting. Measured with the attendance bench (BENCHMARKS.md, "a person
/// searched": 2.3-2.7, 0.6-0.7 and 9.6-9.9 us on a 2-core VM); only their ratios matter.
const REPORT_US_A_ROW: f64 = 2.5;
const LOG_US_A_ROW: f64 = 0.6;
const SEEK_US: f64 = 9.0;

/// Whether seeking `persons` (of about `held` with records) over `days` days one (day, person)
/// at a time is cheaper than reading the range along the days at `range_us` a row, which stops
/// once `page` rows are found (`None`: an export, every row): about `page x held / persons`
/// rows when the persons' rows are spread like everyone's. A broad search over a short range
/// fills a page along the days from its first rows; the seeks read every row of every person
/// first.
fn seeks_cheaper(
    persons: usize,
    days: usize,
    held: usize,
    page: Option<usize>,
    range_us: f64,
) -> bool {
    let pairs = persons.saturating_mul(days);
    if persons > BY_PERSON_MAX || pairs > BY_PERSON_SEEKS_MAX {
        return false;
    }
    match page {
        None => true,
        Some(_) if persons == 0 => true,
        Some(page) => {
            SEEK_US * pairs as f64 <= range_us * page as f64 * held as f64 / persons as f64
        }
    }
}

/// Whether a search's records between two days are read by person (see [`Seek`]): never for a
/// range that is not two days in order, nor, when `unnamed_ok` is false, for a search finding a
/// record with a name and no id (the seeks go by id). `page` and `range_us` as for
/// [`seeks_cheaper`].
fn seek_by_person(
    conn: &Connection,
    pattern: &str,
    (from, to): (Option<&str>, Option<&str>),
    seek: Seek,
    unnamed_ok: bool,
    (page, range_us): (Option<usize>, f64),
) -> rusqlite::Result<bool> {
    let Some(days) = from.zip(to).and_then(|(from, to)| days_between(from, to)) else {
        return Ok(false);
    };
    let most = match seek {
        #[cfg(test)]
        Seek::Never => return Ok(false),
        Seek::WhenCheaper => (BY_PERSON_SEEKS_MAX / days).min(BY_PERSON_MAX),
        #[cfg(test)]
        Seek::Always => usize::MAX - 1,
    };
    if most == 0 {
        return Ok(false);
    }
    Ok(match count_searched_persons(conn, pattern, most)? {
        Some((found, unnamed, held)) => {
            found <= most
                && (unnamed_ok || !unnamed)
                && (seek != Seek::WhenCheaper || seeks_cheaper(found, days, held, page, range_us))
        }
        None => false,
    })
}

/// First in and last out per person for each local day in the range, by day then person.
pub fn daily(conn: &Connection, from_day: &str, to_day: &str) -> rusqlite::Result<Vec<DailyRow>> {
    let f = DailyFilter {
        from_day: from_day.to_owned(),
        to_day: to_day.to_owned(),
        ..DailyFilter::default()
    };
    let mut out = Vec::new();
    each_daily(conn, &f, |row| {
        out.push(row);
        true
    })?;
    Ok(out)
}

/// The first `f.limit` person-days `f` selects (at most [`DAILY_PAGE_MAX`]), and whether there
/// are more (the panel shows a page; a month of 20,000 employees is 600,000 rows).
pub fn daily_page(conn: &Connection, f: &DailyFilter) -> rusqlite::Result<DailyPage> {
    let mut page = DailyPage::default();
    let limit = f.limit.unwrap_or(DAILY_PAGE_MAX).min(DAILY_PAGE_MAX);
    let wanted = limit as usize;
    let one_more = DailyFilter {
        limit: Some(limit + 1),
        ..f.clone()
    };
    each_daily(conn, &one_more, |row| {
        if page.rows.len() == wanted {
            page.more = true;
            return false;
        }
        page.rows.push(row);
        true
    })?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migration::migrate;

    #[test]
    fn the_log_up_to_an_instant_seeks_the_time_index() {
        let none = None::<&str>;
        let plan = crate::store::query_plan(LOG, (none, none, none, none, 5_i64));
        assert!(
            plan.iter()
                .any(|p| p.contains("attendance_by_time") && p.contains("ts_ms<")),
            "{plan:?}"
        );
    }

    fn record(terminal: &str, id: &str, time: &str, person: &str, verify: i64) -> AccessRecord {
        AccessRecord {
            terminal: terminal.into(),
            record_id: id.into(),
            // As the decoder makes it: `2026-11-23 08:01:00` is written `20261123T080100`.
            key: format!("{id}@{}", time.replace(['-', ':'], "").replace(' ', "T")),
            ts_ms: 0,
            local_time: time.into(),
            person_id: Some(person.into()),
            person_name: Some(format!("terminal's name for {person}")),
            verify_status: verify,
            person_type: 0,
            similarity: None,
            backlog: false,
        }
    }

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO employees (employee_id, name, photo, photo_sha256, updated_ms)
             VALUES ('E1', 'Ann Lee', 'a.jpg', 'x', 0);
             INSERT INTO terminals (terminal_id, name) VALUES ('T1', 'Gate North');",
        )
        .unwrap();
        let mut stmt = conn.prepare(INSERT).unwrap();
        for r in [
            record("T1", "1", "2026-11-23 08:01:00", "E1", 1),
            record("T2", "1", "2026-11-23 17:30:00", "E1", 1),
            record("T1", "2", "2026-11-23 12:00:00", "E1", 2),
            record("T1", "3", "2026-11-23 07:00:00", "X9", 1),
            record("T1", "4", "2026-11-24 09:00:00", "E1", 1),
            // The terminal's re-push of record 1: absorbed.
            record("T1", "1", "2026-11-23 08:01:00", "E1", 1),
        ] {
            insert(&mut stmt, &r, 0).unwrap();
        }
        drop(stmt);
        conn
    }

    #[test]
    fn a_terminal_counting_from_one_again_is_not_taken_for_a_re_push() {
        let conn = db();
        let mut stmt = conn.prepare(INSERT).unwrap();
        // T1, reset, numbers its records from 1 again; a row stored before keys (the RecordID
        // alone) never collide with today's.
        insert(
            &mut stmt,
            &record("T1", "1", "2026-11-25 07:30:00", "X9", 1),
            0,
        )
        .unwrap();
        conn.execute(
            "INSERT INTO attendance (terminal_id, record_id, ts_ms, local_time, local_day,
                 verify_status, person_type, backlog, received_ms)
             VALUES ('T1', '1', 0, '2026-11-01 08:00:00', '2026-11-01', 1, 0, 0, 0)",
            [],
        )
        .unwrap();
        drop(stmt);
        let mut ones: Vec<(String, String)> = log(&conn, &AttendanceFilter::default())
            .unwrap()
            .into_iter()
            .filter(|r| r.terminal_id == "T1" && r.record_id == "1")
            .map(|r| (r.local_time, r.record_id))
            .collect();
        ones.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(
            ones,
            [
                ("2026-11-25 07:30:00".into(), "1".into()),
                ("2026-11-23 08:01:00".into(), "1".into()),
                ("2026-11-01 08:00:00".into(), "1".into()),
            ],
            "three records numbered 1, each shown with its RecordID"
        );
    }

    #[test]
    fn the_log_is_deduplicated_joined_to_employees_and_filtered() {
        let conn = db();
        let all = log(&conn, &AttendanceFilter::default()).unwrap();
        assert_eq!(all.len(), 5, "the re-pushed record is stored once");
        let first = &all[all.len() - 1];
        assert_eq!(first.person_name.as_deref(), Some("Ann Lee"));
        assert!(first.employee);
        assert_eq!(first.terminal_name.as_deref(), Some("Gate North"));

        let stranger = all
            .iter()
            .find(|r| r.person_id.as_deref() == Some("X9"))
            .unwrap();
        assert_eq!(
            stranger.person_name.as_deref(),
            Some("terminal's name for X9")
        );
        assert!(!stranger.employee);

        let f = |f: AttendanceFilter| log(&conn, &f).unwrap().len();
        assert_eq!(
            f(AttendanceFilter {
                person: Some("ann".into()),
                ..Default::default()
            }),
            4
        );
        assert_eq!(
            f(AttendanceFilter {
                outcomes: vec!["refused".into()],
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            f(AttendanceFilter {
                from_day: Some("2026-11-24".into()),
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            f(AttendanceFilter {
                terminal_id: Some("T2".into()),
                limit: Some(10),
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            f(AttendanceFilter {
                person: Some("%".into()),
                ..Default::default()
            }),
            0,
            "a wildcard in the search is a literal"
        );
    }

    #[test]
    fn exports_are_csv_with_a_header_and_quoted_names() {
        let conn = db();
        conn.execute("UPDATE employees SET name = 'Lee, \"Ann\"'", [])
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        assert_eq!(
            export_log(&conn, &AttendanceFilter::default(), &path).unwrap(),
            5
        );
        let mut r = csv::Reader::from_path(&path).unwrap();
        assert_eq!(&r.headers().unwrap()[0], "terminal_id");
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 5);
        assert!(rows.iter().any(|row| &row[6] == "Lee, \"Ann\""));
    }

    #[test]
    fn an_export_that_fails_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        let failed = write_csv_file(&path, |w| {
            w.write_record(["a", "b"])?;
            w.flush()?;
            anyhow::bail!("the disk is full")
        });
        assert_eq!(failed.unwrap_err().to_string(), "the disk is full");
        assert!(!path.exists(), "a half file was left");
        // The daily report goes through the same path.
        let conn = db();
        let day = DailyFilter {
            from_day: "2026-11-23".into(),
            to_day: "2026-11-23".into(),
            ..DailyFilter::default()
        };
        let n = export_daily(&conn, &day, &path).unwrap();
        assert_eq!(n, 2);
        assert_eq!(csv::Reader::from_path(&path).unwrap().records().count(), 2);
    }

    #[test]
    fn the_daily_report_is_grouped_along_the_day_index_without_sorting_the_range() {
        for person in [None, Some("%ann%")] {
            let plan = crate::store::query_plan(DAILY, ("2026-11-01", "2026-11-30", person));
            assert!(
                plan.iter().any(|p| p.contains("attendance_by_day")),
                "{plan:?}"
            );
            assert!(
                !plan.iter().any(|p| p.contains("TEMP B-TREE")),
                "a page would wait for the whole range to be grouped: {plan:?}"
            );
        }
    }

    #[test]
    fn a_page_of_the_daily_report_says_whether_there_is_more_and_searches_persons() {
        let conn = db();
        let page = |person: Option<&str>, limit: Option<u32>| {
            daily_page(
                &conn,
                &DailyFilter {
                    from_day: "2026-11-23".into(),
                    to_day: "2026-11-24".into(),
                    person: person.map(Into::into),
                    limit,
                },
            )
            .unwrap()
        };
        let ids = |p: &DailyPage| -> Vec<(String, String)> {
            p.rows
                .iter()
                .map(|r| (r.day.clone(), r.person_id.clone()))
                .collect()
        };
        let all = page(None, Some(DAILY_PAGE_MAX));
        assert_eq!(all.rows.len(), 3);
        assert!(!all.more);
        assert_eq!(page(None, None), all, "no limit is the most a page holds");
        let first = page(None, Some(2));
        assert_eq!(
            ids(&first),
            [
                ("2026-11-23".into(), "E1".into()),
                ("2026-11-23".into(), "X9".into())
            ]
        );
        assert!(first.more, "a third person-day is left");
        let none = page(None, Some(0));
        assert!(none.rows.is_empty() && none.more);
        let exact = page(None, Some(3));
        assert!(!exact.more, "a page that holds them all has no more");
        assert_eq!(exact.rows, all.rows);
        // By the directory's name (any case), or part of the id.
        let ann = page(Some("ann"), None);
        assert_eq!(ann.rows.len(), 2);
        assert!(ann.rows.iter().all(|r| r.person_id == "E1"));
        assert_eq!(page(Some("9"), None).rows.len(), 1);
        assert!(
            page(Some("%"), None).rows.is_empty(),
            "a wildcard is taken literally"
        );
        // A person the directory does not hold, named differently by the terminal during the
        // day: the search by either name finds the whole day.
        let mut stmt = conn.prepare(INSERT).unwrap();
        let mut renamed = record("T1", "9", "2026-11-23 18:00:00", "X9", 1);
        renamed.person_name = Some("Xavier".into());
        insert(&mut stmt, &renamed, 0).unwrap();
        drop(stmt);
        for name in ["Xavier", "terminal's name for X9"] {
            let x9 = page(Some(name), None);
            assert_eq!(x9.rows.len(), 1, "{name}");
            let day = &x9.rows[0];
            assert_eq!(
                (day.first_in.as_str(), day.last_out.as_str(), day.records),
                ("2026-11-23 07:00:00", "2026-11-23 18:00:00", 2)
            );
        }
        assert_eq!(
            page(Some("  "), None).rows.len(),
            3,
            "a blank search is no search"
        );
    }

    #[test]
    fn a_search_that_finds_few_persons_reads_their_days_by_person() {
        let none = None::<&str>;
        for plan in [
            crate::store::query_plan(
                DAILY_OF_PERSONS,
                ("2026-11-01", "2026-11-30", Some("%ann%")),
            ),
            crate::store::query_plan(
                LOG_OF_PERSONS,
                ("2026-11-01", "2026-11-30", none, Some("%ann%"), none),
            ),
        ] {
            assert!(
                plan.iter()
                    .any(|p| p.starts_with("SEARCH a USING INDEX attendance_by_day")
                        && p.contains("local_day=? AND person_id=?")),
                "{plan:?}"
            );
            assert!(
                !plan
                    .iter()
                    .any(|p| p == "SCAN a" || p.starts_with("SCAN a ")),
                "every record of the range read: {plan:?}"
            );
        }
    }

    #[test]
    fn a_search_finds_the_same_days_by_person_as_along_the_day_index() {
        let conn = db();
        let mut stmt = conn.prepare(INSERT).unwrap();
        let day = |d: u64| {
            (chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap() + chrono::Days::new(d))
                .format("%Y-%m-%d")
                .to_string()
        };
        // 60 persons over 5 days across a month's end, a third of them in the directory; some
        // renamed by the terminal on some days, some refused or strangers on others; stamped
        // out of the order they are stored in, some at the same instant.
        for p in 0..60_u64 {
            let id = format!("P{p:02}");
            if p % 3 == 0 {
                conn.execute(
                    "INSERT INTO employees (employee_id, name, photo, photo_sha256, updated_ms)
                     VALUES (?1, ?2, 'p.jpg', 'x', 0)",
                    (&id, format!("Staff {}", p * 7 % 60)),
                )
                .unwrap();
            }
            for d in 0..5 {
                for k in 0..(p % 4) {
                    let time = format!("{} 0{k}:{p:02}:00", day(d));
                    let mut r = record(
                        &format!("T{}", k % 2),
                        &format!("{p}-{d}-{k}"),
                        &time,
                        &id,
                        1 + i64::from((p + d + k) % 5 == 0),
                    );
                    r.ts_ms = 1_000 * ((p * 37 + d * 11 + k * 5) % 97) as i64;
                    // Renamed by the terminal within some days too.
                    r.person_name = Some(if (p + d + k) % 7 == 0 {
                        format!("Alias {d}")
                    } else {
                        format!("Worker {p}")
                    });
                    insert(&mut stmt, &r, 0).unwrap();
                }
            }
        }
        // Records with a name and no id: the log's search finds them by name (the seeks by id
        // cannot: such a search reads the log along the days).
        for d in 1..3 {
            let mut r = record(
                "T1",
                &format!("anon-{d}"),
                &format!("{} 12:00:00", day(d)),
                "",
                2,
            );
            (r.person_id, r.person_name) = (None, Some("Alias 2".into()));
            insert(&mut stmt, &r, 0).unwrap();
        }
        drop(stmt);
        let (from, to) = (day(1), day(3));
        let logs = [
            AttendanceFilter::default(),
            AttendanceFilter {
                terminal_id: Some("T1".into()),
                ..AttendanceFilter::default()
            },
            AttendanceFilter {
                until_ms: Some(50_000),
                ..AttendanceFilter::default()
            },
            AttendanceFilter {
                outcomes: vec!["granted".into()],
                limit: Some(5),
                ..AttendanceFilter::default()
            },
        ];
        let log = |f: &AttendanceFilter, search: &str, seek: Seek| {
            let f = AttendanceFilter {
                from_day: Some(from.clone()),
                to_day: Some(to.clone()),
                person: Some(search.into()),
                ..f.clone()
            };
            let mut rows = Vec::new();
            each_log_by(&conn, &f, seek, |r| {
                rows.push(r);
                true
            })
            .unwrap();
            rows
        };
        let read = |search: &str, seek: Seek| {
            let f = DailyFilter {
                from_day: from.clone(),
                to_day: to.clone(),
                person: Some(search.into()),
                limit: None,
            };
            let mut rows = Vec::new();
            each_daily_by(&conn, &f, seek, |r| {
                rows.push(r);
                true
            })
            .unwrap();
            rows
        };
        assert_eq!(days_between("2026-11-30", "2026-12-02"), Some(3));
        assert_eq!(days_between("2026-12-04", "2026-12-02"), None);
        assert_eq!(days_between("2026-12-2", "2026-12-04"), None);
        assert_eq!(
            log(&logs[0], "Alias 2", Seek::Always)
                .iter()
                .filter(|r| r.person_id.is_none())
                .count(),
            2,
            "the records with a name and no id"
        );
        for search in [
            "P1", "Staff 1", "Alias", "Alias 2", "Worker 5", "r 1", "Gate", "0", "nobody",
        ] {
            // Which way each is read: by person when asked (the log's search of a name some
            // record without an id gave along the days), along the days with no seeks allowed.
            let pattern = like_pattern(Some(search)).unwrap();
            let seeks = |seek, unnamed| {
                let range = (Some(from.as_str()), Some(to.as_str()));
                seek_by_person(&conn, &pattern, range, seek, unnamed, (None, 1.0)).unwrap()
            };
            assert!(seeks(Seek::Always, true), "{search}");
            assert_eq!(
                seeks(Seek::Always, false),
                !search.starts_with("Alias"),
                "{search}"
            );
            assert!(!seeks(Seek::Never, true), "{search}");
            // An export (no page) of a few persons over three days: sought.
            assert!(seeks(Seek::WhenCheaper, true), "{search}");

            let by_day = read(search, Seek::Never);
            assert_eq!(read(search, Seek::Always), by_day, "{search}");
            for f in &logs {
                let by_day = log(f, search, Seek::Never);
                assert_eq!(log(f, search, Seek::Always), by_day, "{search} {f:?}");
                if search != "nobody" && search != "Gate" && f.until_ms.is_none() {
                    assert!(!by_day.is_empty(), "{search} {f:?} finds no one");
                }
            }
            if search != "nobody" && search != "Gate" {
                assert!(
                    !by_day.is_empty(),
                    "{search} finds no one: the test proves nothing"
                );
            }
        }
    }

    #[test]
    fn a_search_is_sought_by_person_only_where_that_is_cheaper_than_reading_the_range() {
        // 20,000 persons held; a page of 1,001 person-days or 1,000 records.
        let report =
            |persons, days| seeks_cheaper(persons, days, 20_000, Some(1_001), REPORT_US_A_ROW);
        let log = |persons, days| seeks_cheaper(persons, days, 20_000, Some(1_000), LOG_US_A_ROW);
        // One person, or a hundred, over a month: sought (the range holds few of theirs).
        assert!(report(1, 28) && log(1, 28) && report(100, 28) && log(100, 28));
        // 700 over a month: a page fills within the first two days of the range.
        assert!(!report(700, 28) && !log(700, 28));
        // 300 over a week: sought; over a month, only the report's.
        assert!(report(300, 7) && log(300, 7) && report(300, 28) && !log(300, 28));
        // Everyone on one day; more than the caps allow.
        assert!(!report(20_000, 1) && !log(20_000, 1));
        assert!(!seeks_cheaper(BY_PERSON_MAX + 1, 1, 20_000, None, 1.0));
        assert!(!seeks_cheaper(
            100,
            BY_PERSON_SEEKS_MAX / 100 + 1,
            20_000,
            None,
            1.0
        ));
        // An export reads every row either way: sought within the caps.
        assert!(seeks_cheaper(BY_PERSON_MAX, 20, 20_000, None, 1.0));
        // Nobody found: nothing to seek.
        assert!(report(0, 28));
    }

    #[test]
    fn a_log_of_no_rows_is_no_rows_and_a_read_leaves_no_transaction_open() {
        let conn = db();
        for person in [None, Some("ann".to_owned())] {
            let f = AttendanceFilter {
                from_day: Some("2026-11-23".into()),
                to_day: Some("2026-11-24".into()),
                person,
                limit: Some(0),
                ..AttendanceFilter::default()
            };
            assert!(log(&conn, &f).unwrap().is_empty(), "{f:?}");
            assert!(conn.is_autocommit(), "a read transaction left open");
        }
        // Inside a caller's transaction, its snapshot is used and left open.
        let tx = conn.unchecked_transaction().unwrap();
        let f = AttendanceFilter {
            from_day: Some("2026-11-23".into()),
            to_day: Some("2026-11-24".into()),
            person: Some("ann".into()),
            ..AttendanceFilter::default()
        };
        assert_eq!(log(&tx, &f).unwrap().len(), 4);
        assert!(!tx.is_autocommit());
        tx.finish().unwrap();
    }

    #[test]
    fn the_names_a_search_matches_come_and_go_with_the_records() {
        let mut conn = db();
        let names = |c: &Connection| -> Vec<(String, String)> {
            c.prepare("SELECT person_id, person_name FROM attendance_names ORDER BY 1, 2")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        // A record with a name and no id is counted under ''.
        let mut visitor = record("T1", "11", "2026-11-25 07:00:00", "", 2);
        (visitor.person_id, visitor.person_name) = (None, Some("Visitor".into()));
        insert(&mut conn.prepare(INSERT).unwrap(), &visitor, 0).unwrap();
        let held = vec![
            (String::new(), "Visitor".to_owned()),
            ("E1".to_owned(), "terminal's name for E1".to_owned()),
            ("X9".to_owned(), "terminal's name for X9".to_owned()),
        ];
        assert_eq!(names(&conn), held);
        // A file of schema 8: the migration takes the names of the records it holds.
        conn.execute_batch(
            "DROP TRIGGER attendance_names_in; DROP TRIGGER attendance_names_out;
             DROP TABLE attendance_names;",
        )
        .unwrap();
        conn.execute_batch(DDL_NAMES).unwrap();
        assert_eq!(names(&conn), held);
        // X9 renamed by the terminal for one record: the name leaves with that record.
        let mut stmt = conn.prepare(INSERT).unwrap();
        let mut renamed = record("T1", "9", "2026-11-25 18:00:00", "X9", 1);
        renamed.person_name = Some("Xavier".into());
        insert(&mut stmt, &renamed, 0).unwrap();
        // A terminal's re-push is stored once, and counted once.
        insert(&mut stmt, &renamed, 0).unwrap();
        let mut again = record("T1", "10", "2026-11-25 19:00:00", "X9", 1);
        again.person_name = Some("Xavier".into());
        insert(&mut stmt, &again, 0).unwrap();
        drop(stmt);
        assert_eq!(names(&conn).len(), 4);
        let gone = |key: &str| {
            conn.execute("DELETE FROM attendance WHERE record_id = ?1", [key])
                .unwrap()
        };
        assert_eq!(gone(&again.key), 1);
        assert_eq!(
            names(&conn).len(),
            4,
            "Xavier left with a record still held"
        );
        assert_eq!(gone(&renamed.key), 1);
        assert_eq!(names(&conn), held, "Xavier counted twice");
        // E1's records go one by one: its name goes with the last.
        let tx = conn.transaction().unwrap();
        tx.execute(
            "DELETE FROM attendance WHERE person_id = 'E1' AND local_day = '2026-11-23'",
            [],
        )
        .unwrap();
        assert_eq!(names(&tx), held, "E1 still has a record");
        tx.execute("DELETE FROM attendance WHERE person_id = 'E1'", [])
            .unwrap();
        assert_eq!(names(&tx), [held[0].clone(), held[2].clone()]);
        tx.commit().unwrap();
    }

    #[test]
    fn the_daily_report_takes_first_in_and_last_out_over_allowed_recognitions() {
        let conn = db();
        let days = daily(&conn, "2026-11-23", "2026-11-23").unwrap();
        assert_eq!(days.len(), 2);
        let ann = &days[0];
        assert_eq!(ann.person_id, "E1");
        assert_eq!(ann.person_name.as_deref(), Some("Ann Lee"));
        assert_eq!(
            (ann.first_in.as_str(), ann.last_out.as_str()),
            ("2026-11-23 08:01:00", "2026-11-23 17:30:00"),
            "the refusal at 12:00 is not attendance"
        );
        assert_eq!(
            (ann.first_terminal.as_str(), ann.last_terminal.as_str()),
            ("T1", "T2")
        );
        assert_eq!(ann.records, 2);
        assert_eq!(days[1].person_id, "X9");
        assert!(!days[1].employee);
    }
}
