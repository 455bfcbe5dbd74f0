//! `attendance`: what the Attendance panel's daily report costs with E employees recognised R
//! times a day on T terminals for D days, read as the console's command reads it (its own
//! read-only connection to the history file): the page the panel shows (its first 1,000
//! person-days, refreshed every 3 s) for one day and for the whole range, one person's days
//! searched, against the whole report the panel used to read (every person-day of the range,
//! sent to the page); and the CSV export of the range, written row by row.

use std::time::Instant;

use rusqlite::Connection;
use watchfloor_core::facesync::directory;
use watchfloor_core::store::{self, attendance};
use watchfloor_protocol::face::AccessRecord;

use crate::panel::{staff, timed};

/// Rows the panel shows (`PAGE_ROWS` in ui/src/lib/sites/AttendancePanel.svelte).
const PAGE_ROWS: u32 = 1000;

pub fn attendance(
    employees: usize,
    days: u32,
    per_day: u32,
    terminals: usize,
    reads: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=28).contains(&days) && per_day >= 1 && terminals >= 1,
        "days 1..=28, per-day and terminals at least 1"
    );
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("h.sqlite");
    let mut conn = store::open(&db)?;
    let staff = staff(employees);
    directory::apply_import(&mut conn, &staff, &Default::default(), false, 0)?;
    // Crews to search for: about 300 and about 700 persons spread over the directory.
    for n in [300, 700] {
        conn.execute(
            "UPDATE employees SET name = name || ' crew' || ?1
             WHERE CAST(substr(employee_id, 2) AS INTEGER) % ?2 = 0",
            (n as i64, (employees / n).max(1) as i64),
        )?;
    }
    let t0 = Instant::now();
    let rows = fill(&mut conn, employees, days, per_day, terminals)?;
    let fill_s = t0.elapsed().as_secs_f64();
    // The table of names as schema 9's migration builds it from the records already held.
    conn.execute_batch(
        "DROP TRIGGER attendance_names_in; DROP TRIGGER attendance_names_out;
         DROP TABLE attendance_names;",
    )?;
    let t0 = Instant::now();
    conn.execute_batch(attendance::DDL_NAMES)?;
    let names_s = t0.elapsed().as_secs_f64();
    drop(conn);

    let day = |d: u32| format!("2026-02-{:02}", d + 1);
    let filter =
        |from: u32, to: u32, person: Option<&str>, limit: Option<u32>| attendance::DailyFilter {
            from_day: day(from),
            to_day: day(to),
            person: person.map(Into::into),
            limit,
        };
    // A page as the panel reads it now; with no limit, every person-day, as it read them before.
    let read = |f: &attendance::DailyFilter| -> anyhow::Result<attendance::DailyPage> {
        let conn = store::open_read_only(&db)?;
        Ok(match f.limit {
            Some(_) => attendance::daily_page(&conn, f)?,
            None => {
                let mut rows = Vec::new();
                attendance::each_daily(&conn, f, |row| {
                    rows.push(row);
                    true
                })?;
                attendance::DailyPage { rows, more: false }
            }
        })
    };
    let last = days - 1;
    let someone = format!("E{:06}", employees / 2);
    let cases = [
        ("page, one day", filter(last, last, None, Some(PAGE_ROWS))),
        ("page, whole range", filter(0, last, None, Some(PAGE_ROWS))),
        (
            "one person searched, whole range",
            filter(0, last, Some(&someone), Some(PAGE_ROWS)),
        ),
        (
            "a hundred persons searched, whole range",
            filter(
                0,
                last,
                Some(&someone[..someone.len() - 2]),
                Some(PAGE_ROWS),
            ),
        ),
        (
            "crew300 (304 persons) searched, a week",
            filter(
                last.saturating_sub(6),
                last,
                Some("crew300"),
                Some(PAGE_ROWS),
            ),
        ),
        (
            "crew300 (304 persons) searched, whole range",
            filter(0, last, Some("crew300"), Some(PAGE_ROWS)),
        ),
        (
            "crew700 (715 persons) searched, whole range",
            filter(0, last, Some("crew700"), Some(PAGE_ROWS)),
        ),
        (
            "a thousand persons searched, one day",
            filter(
                last,
                last,
                Some(&someone[..someone.len() - 3]),
                Some(PAGE_ROWS),
            ),
        ),
        (
            "everyone searched, one day",
            filter(last, last, Some("E0"), Some(PAGE_ROWS)),
        ),
        (
            "whole report, one day (before)",
            filter(last, last, None, None),
        ),
        (
            "whole report, whole range (before)",
            filter(0, last, None, None),
        ),
    ];
    println!(
        "attendance: {employees} employees x {per_day} recognitions a day x {days} days on {terminals} terminals = {rows} rows (filled in {fill_s:.1} s; the table of names built from them in {names_s:.2} s)"
    );
    println!();
    println!("| daily report read | rows | more | JSON to the page | p50 ms | max ms |");
    println!("|---|---:|---|---:|---:|---:|");
    for (what, f) in &cases {
        let n = if f.limit.is_some() {
            reads
        } else {
            reads.min(3)
        };
        let ([p50, max], page) = timed(n, || read(f))?;
        let json = serde_json::to_vec(&page)?.len();
        println!(
            "| {what} | {} | {} | {:.1} MB | {p50:.0} | {max:.0} |",
            page.rows.len(),
            page.more,
            json as f64 / 1e6
        );
    }
    // The log's page (its newest 1,000 records), as the panel reads it over a range.
    let log = |from: u32, person: Option<&str>| attendance::AttendanceFilter {
        from_day: Some(day(from)),
        to_day: Some(day(last)),
        person: person.map(Into::into),
        limit: Some(PAGE_ROWS),
        ..Default::default()
    };
    for (what, f) in [
        ("log page, whole range", log(0, None)),
        (
            "log page, one person searched, whole range",
            log(0, Some(&someone)),
        ),
        (
            "log page, crew300 searched, a week",
            log(last.saturating_sub(6), Some("crew300")),
        ),
        (
            "log page, crew300 searched, whole range",
            log(0, Some("crew300")),
        ),
        (
            "log page, crew700 searched, whole range",
            log(0, Some("crew700")),
        ),
    ] {
        let ([p50, max], rows) = timed(reads, || {
            Ok(attendance::log(&store::open_read_only(&db)?, &f)?)
        })?;
        println!("| {what} | {} | | | {p50:.0} | {max:.0} |", rows.len());
    }
    let csv = dir.path().join("daily.csv");
    let t0 = Instant::now();
    let conn = store::open_read_only(&db)?;
    let written = attendance::export_daily(&conn, &filter(0, last, None, None), &csv)?;
    let export_ms = t0.elapsed().as_secs_f64() * 1000.0;
    println!(
        "| CSV export, whole range (streamed) | {written} | | {:.1} MB file | {export_ms:.0} | |",
        std::fs::metadata(&csv)?.len() as f64 / 1e6
    );
    drop(conn);
    prune_week(&db, days.min(7), employees as u64 * u64::from(per_day))
}

/// Age pruning of the oldest days (kept for a day, on the morning of day `days + 2`; every row
/// arrived long ago), chunk by chunk as the history writer runs it: what each chunk takes, and
/// its rate. `per_day`: the records of a day.
fn prune_week(db: &std::path::Path, days: u32, per_day: u64) -> anyhow::Result<()> {
    use watchfloor_core::store::retention::{self, Retention};
    let conn = store::open(db)?;
    // Kept for a day, on the morning of day `days + 2`: the first `days` days go.
    let now = chrono::NaiveDate::from_ymd_opt(2026, 2, days + 2)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or_else(|| anyhow::anyhow!("no such day"))?
        .and_utc()
        .timestamp_millis();
    let keep = Retention {
        max_age: Some(std::time::Duration::from_secs(86_400)),
        max_bytes: None,
    };
    let (mut chunks, mut rows) = (Vec::new(), 0u64);
    let t0 = Instant::now();
    loop {
        let c0 = Instant::now();
        let tx = conn.unchecked_transaction()?;
        let pruned = retention::prune_chunk(&tx, &keep, now)?;
        tx.commit()?;
        chunks.push(c0.elapsed().as_secs_f64() * 1000.0);
        rows += pruned.rows;
        if !pruned.more {
            break;
        }
    }
    let s = t0.elapsed().as_secs_f64();
    chunks.sort_by(f64::total_cmp);
    println!(
        "| age pruning, the oldest {} days (chunks as the writer runs them) | {rows} | {} chunks | | p50 {:.0} | {:.0} |",
        rows / per_day.max(1),
        chunks.len(),
        chunks[chunks.len() / 2],
        chunks[chunks.len() - 1]
    );
    println!("({:.0} rows/s)", rows as f64 / s);
    Ok(())
}

/// Writes `per_day` allowed recognitions for every employee every day (08:00 on, an hour
/// apart), spread over the terminals; the rows written.
fn fill(
    conn: &mut Connection,
    employees: usize,
    days: u32,
    per_day: u32,
    terminals: usize,
) -> anyhow::Result<u64> {
    let tx = conn.transaction()?;
    let mut n = 0u64;
    {
        let mut stmt = tx.prepare(attendance::INSERT)?;
        for d in 0..days {
            for e in 0..employees {
                for k in 0..per_day {
                    let minute = (e % 60) as u32;
                    let hour = 8 + k;
                    let record = AccessRecord {
                        terminal: format!("T{:02}", (e + k as usize) % terminals),
                        record_id: n.to_string(),
                        key: n.to_string(),
                        ts_ms: 0,
                        local_time: format!("2026-02-{:02} {hour:02}:{minute:02}:00", d + 1),
                        person_id: Some(format!("E{e:06}")),
                        person_name: Some(format!("Person {e}")),
                        verify_status: 1,
                        person_type: 0,
                        similarity: Some(92.0),
                        backlog: false,
                    };
                    attendance::insert(&mut stmt, &record, 0)?;
                    n += 1;
                }
            }
        }
    }
    tx.commit()?;
    Ok(n)
}
