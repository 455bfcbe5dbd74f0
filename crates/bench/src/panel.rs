//! `panel`: what the Employees panel's refresh costs with E employees each stored on T
//! terminals, read as the console's command reads it (its own read-only connection to the
//! history file): the whole list, against the version check that answers "unchanged" while the
//! directory is still at the version the panel holds, and the rows changed since that version
//! during a sync (500, and the most sent that way). Also what the triggers that keep the
//! version cost the sync's writes: the same confirmations timed on a file with the triggers and
//! on one without.

use std::path::Path;
use std::time::Instant;

use rusqlite::Connection;
use watchfloor_core::facesync::directory::{self, Employee, PersonType};
use watchfloor_core::facesync::report;
use watchfloor_core::store;

pub fn panel(employees: usize, terminals: usize, reads: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let staff = staff(employees);

    // The same directory and confirmations in two files, one without the version triggers.
    let mut store_s = [0.0; 2];
    for (i, triggers) in [true, false].into_iter().enumerate() {
        let mut conn = store::open(&dir.path().join(format!("h{i}.sqlite")))?;
        if !triggers {
            for t in [
                "terminal_persons_ins",
                "terminal_persons_del",
                "sync_failures_ins",
                "sync_failures_del",
            ] {
                conn.execute_batch(&format!("DROP TRIGGER {t}"))?;
            }
        }
        directory::apply_import(&mut conn, &staff, &Default::default(), false, 0)?;
        store_s[i] = confirm_everywhere(&mut conn, &staff, terminals)?;
    }
    let db = dir.path().join("h0.sqlite");

    let full = timed(reads, || read(&db, None))?;
    let version = full.1.version;
    let json = serde_json::to_vec(&full.1)?.len();
    let unchanged = timed(reads.max(20), || read(&db, Some(version)))?;
    anyhow::ensure!(unchanged.1.rows.is_empty(), "the version check read rows");

    // A sync under way: persons confirmed on one more terminal since the panel's last read.
    let mut conn = store::open(&db)?;
    let mut deltas = Vec::new();
    let mut done = 0;
    for changed in [500, report::MOST_CHANGED_ROWS] {
        let tx = conn.transaction()?;
        let persons: Vec<(String, String)> = staff[done..changed]
            .iter()
            .map(|e| (e.employee_id.clone(), e.content()))
            .collect();
        directory::confirm_stored(&tx, "T-NEW", &persons, 2)?;
        tx.commit()?;
        done = changed;
        let d = timed(reads.max(20), || read(&db, Some(version)))?;
        anyhow::ensure!(
            !d.1.complete && d.1.rows.len() == changed,
            "expected {changed} changed rows, got {} (complete: {})",
            d.1.rows.len(),
            d.1.complete
        );
        deltas.push((changed, d.0, serde_json::to_vec(&d.1)?.len()));
    }

    let placements = employees * terminals;
    println!("| employees x terminals (placements) | whole list: p50 / max | unchanged: p50 / max | list as JSON | storing every placement: with the version triggers / without |");
    println!("|---|---|---|---|---|");
    println!(
        "| {employees} x {terminals} ({placements}) | {:.1} / {:.1} ms ({reads} reads) | {:.2} / {:.2} ms ({} reads) | {:.1} MB | {:.2} s / {:.2} s |",
        full.0[0],
        full.0[1],
        unchanged.0[0],
        unchanged.0[1],
        reads.max(20),
        json as f64 / 1e6,
        store_s[0],
        store_s[1],
    );
    println!();
    println!("| rows changed since the panel's version | read: p50 / max | as JSON |");
    println!("|---|---|---|");
    for (changed, ms, bytes) in deltas {
        println!(
            "| {changed} | {:.1} / {:.1} ms | {:.0} kB |",
            ms[0],
            ms[1],
            bytes as f64 / 1e3
        );
    }
    Ok(())
}

/// Confirms every employee on every terminal, a transaction of 1,000 persons at a time (as the
/// sync engine confirms a terminal's batch); returns the seconds taken.
fn confirm_everywhere(
    conn: &mut Connection,
    staff: &[Employee],
    terminals: usize,
) -> anyhow::Result<f64> {
    let persons: Vec<(String, String)> = staff
        .iter()
        .map(|e| (e.employee_id.clone(), e.content()))
        .collect();
    let t0 = Instant::now();
    for t in 0..terminals {
        let terminal = format!("T{t:03}");
        for batch in persons.chunks(1000) {
            let tx = conn.transaction()?;
            directory::confirm_stored(&tx, &terminal, batch, 1)?;
            tx.commit()?;
        }
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// The console's `sync_employees`: a read-only connection of its own, then the list.
fn read(db: &Path, known: Option<i64>) -> anyhow::Result<report::EmployeeList> {
    let conn = store::open_read_only(db)?;
    Ok(report::employee_list(&conn, known)?)
}

/// `n` employees, `E000000` ("Person 0") on, allowed, with the same photo.
pub(crate) fn staff(n: usize) -> Vec<Employee> {
    (0..n)
        .map(|i| Employee {
            employee_id: format!("E{i:06}"),
            name: format!("Person {i}"),
            photo: "/photos/face.jpg".into(),
            photo_sha256: "00".into(),
            terminals: Vec::new(),
            valid_from_ms: None,
            valid_to_ms: None,
            person_type: PersonType::Allow,
        })
        .collect()
}

/// Runs `f` `n` times: [p50, max] in milliseconds, and the last result.
pub(crate) fn timed<T>(
    n: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<([f64; 2], T)> {
    let mut ms = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let t0 = Instant::now();
        last = Some(f()?);
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let last = last.ok_or_else(|| anyhow::anyhow!("no reads"))?;
    Ok(([ms[ms.len() / 2], ms[ms.len() - 1]], last))
}
