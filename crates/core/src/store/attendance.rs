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

/// The log's query, newest first. The time bound is one the time index can seek to (`coalesce`, not
/// `?5 IS NULL OR ...`): a review frame near the start of a month's file reads the rows before
/// its instant, not every row after it on the way down.
///
/// Its record id is the RecordID: the stored key without the `@YYYYMMDDTHHMMSS` it ends with
/// ([`INSERT`]).
const LOG: &str = "SELECT a.terminal_id, t.name,
                CASE WHEN a.record_id GLOB
                    '*@[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]'
                THEN substr(a.record_id, 1, length(a.record_id) - 16) ELSE a.record_id END,
                a.ts_ms, a.local_time, a.person_id,
                coalesce(e.name, a.person_name), e.employee_id IS NOT NULL,
                a.verify_status, a.person_type, a.similarity, a.backlog
         FROM attendance a
         LEFT JOIN employees e ON e.employee_id = a.person_id
         LEFT JOIN terminals t ON t.terminal_id = a.terminal_id
         WHERE (?1 IS NULL OR a.local_day >= ?1) AND (?2 IS NULL OR a.local_day <= ?2)
           AND (?3 IS NULL OR a.terminal_id = ?3)
           AND (?4 IS NULL OR a.person_id LIKE ?4 ESCAPE '\\'
                OR coalesce(e.name, a.person_name) LIKE ?4 ESCAPE '\\')
           AND a.ts_ms <= coalesce(?5, 9223372036854775807)
         ORDER BY a.ts_ms DESC, a.id DESC";

/// Hands each log row `f` selects to `visit`, newest first, until it returns false (or `f`'s
/// limit is reached).
pub fn each_log(
    conn: &Connection,
    f: &AttendanceFilter,
    mut visit: impl FnMut(AttendanceRow) -> bool,
) -> rusqlite::Result<()> {
    let person = like_pattern(f.person.as_deref());
    let mut stmt = conn.prepare_cached(LOG)?;
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

/// The daily report's query: one group per (day, person), read along the `attendance_by_day`
/// index in its order, so the first page of a month of tens of thousands of employees is read
/// without grouping the whole month first. A search picks whole person-days, any of whose
/// records matches by id or name (filtering records instead cut the day of a person whose name
/// on the terminal changed during it).
const DAILY: &str = "SELECT a.local_day, a.person_id, coalesce(e.name, max(a.person_name)),
                e.employee_id IS NOT NULL,
                min(a.local_time), max(a.local_time), count(*)
         FROM attendance a LEFT JOIN employees e ON e.employee_id = a.person_id
         WHERE a.local_day BETWEEN ?1 AND ?2 AND a.person_id IS NOT NULL
           AND a.verify_status = 1 AND a.person_type = 0
         GROUP BY a.local_day, a.person_id
         HAVING ?3 IS NULL OR max(a.person_id LIKE ?3 ESCAPE '\\'
                OR coalesce(e.name, a.person_name) LIKE ?3 ESCAPE '\\')
         ORDER BY a.local_day, a.person_id";

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
    mut visit: impl FnMut(DailyRow) -> bool,
) -> rusqlite::Result<()> {
    let person = like_pattern(f.person.as_deref());
    let mut stmt = conn.prepare_cached(DAILY)?;
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
