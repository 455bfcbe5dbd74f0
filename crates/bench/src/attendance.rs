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
    let t0 = Instant::now();
    let rows = fill(&mut conn, employees, days, per_day, terminals)?;
    let fill_s = t0.elapsed().as_secs_f64();
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
            "whole report, one day (before)",
            filter(last, last, None, None),
        ),
        (
            "whole report, whole range (before)",
            filter(0, last, None, None),
        ),
    ];
    println!(
        "attendance: {employees} employees x {per_day} recognitions a day x {days} days on {terminals} terminals = {rows} rows (filled in {fill_s:.1} s)"
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
    let csv = dir.path().join("daily.csv");
    let t0 = Instant::now();
    let conn = store::open_read_only(&db)?;
    let written = attendance::export_daily(&conn, &filter(0, last, None, None), &csv)?;
    let export_ms = t0.elapsed().as_secs_f64() * 1000.0;
    println!(
        "| CSV export, whole range (streamed) | {written} | | {:.1} MB file | {export_ms:.0} | |",
        std::fs::metadata(&csv)?.len() as f64 / 1e6
    );
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
