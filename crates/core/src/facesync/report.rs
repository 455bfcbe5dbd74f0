//! What the employee-sync panels show, read from the directory (and, while this console runs
//! the sync, the engine's live progress): terminals with their job, the employee list, and one
//! employee's state on each terminal.

use std::collections::HashMap;

use rusqlite::Connection;
use serde::Serialize;
use ts_rs::TS;

use super::directory;
use super::TerminalProgress;

/// The terminals panel: whether this console runs the sync, and every terminal with its job.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SyncOverview {
    /// This console runs employee sync (`[face]` on, `sync` not turned off).
    pub running: bool,
    /// Why the sync is not running although configured (it could not start: the photo port
    /// taken, the history file unreadable), or null.
    pub problem: Option<String>,
    /// The sync's own connection to the broker (it has one of its own), while it runs.
    pub link: Option<crate::view::ConnectionView>,
    pub terminals: Vec<TerminalRow>,
}

/// What the supervisor can ask of the sync from the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum SyncAction {
    /// Forget the failures (of one terminal, or all) and send those persons again; resumes a
    /// cancelled job.
    Retry,
    /// Stop one terminal's job.
    Cancel,
    /// Plan every terminal's work again (after an import).
    Reload,
}

/// A terminal and its sync job, for the terminals panel and the job view.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct TerminalRow {
    pub terminal_id: String,
    pub name: Option<String>,
    pub ip: Option<String>,
    pub firmware: Option<String>,
    /// As this console's sync last heard; `None`: not heard from since it started (or no sync
    /// runs here), or not answering (`no_answer`). What an earlier run last heard is not shown
    /// as now: `last_seen_ms` says when that was.
    pub online: Option<bool>,
    /// This run's sync sent it a request that went unanswered, and it has not answered since
    /// (it may still beat: `online` then says so).
    pub no_answer: bool,
    /// Persons the terminal's own last HeartBeat counted (lags a sync until the next one).
    #[ts(type = "number | null")]
    pub person_count: Option<u32>,
    /// Persons Watchfloor has confirmed on the terminal (from its Acks or QueryPerson).
    #[ts(type = "number")]
    pub confirmed: u64,
    #[ts(type = "number | null")]
    pub last_seen_ms: Option<i64>,
    pub groups: Vec<String>,
    /// running | paused | done | cancelled | idle; `None`: never synced.
    pub state: Option<String>,
    #[ts(type = "number")]
    pub total: u64,
    #[ts(type = "number")]
    pub done: u64,
    #[ts(type = "number")]
    pub failed: u64,
    /// Persons waiting (only known while this console runs the sync).
    #[ts(type = "number | null")]
    pub pending: Option<u64>,
    /// Persons per second over the job.
    pub throughput: Option<f64>,
    pub utilisation: Option<f64>,
    pub ms_per_person: Option<f64>,
    pub last_error: Option<String>,
}

/// Every terminal the directory knows, with the live progress where there is some (else the
/// job as last stored).
pub fn terminal_rows(
    conn: &Connection,
    progress: &[TerminalProgress],
) -> rusqlite::Result<Vec<TerminalRow>> {
    let live: HashMap<&str, &TerminalProgress> = progress
        .iter()
        .map(|p| (p.terminal_id.as_str(), p))
        .collect();
    let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
    for (group, members) in directory::groups(conn)? {
        for m in members {
            groups_of.entry(m).or_default().push(group.clone());
        }
    }
    // One pass over the table (its key starts with the terminal), not a count per terminal.
    let mut confirmed: HashMap<String, u64> = HashMap::new();
    let mut stmt =
        conn.prepare_cached("SELECT terminal_id, COUNT(*) FROM terminal_persons GROUP BY 1")?;
    for r in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (t, n) = r?;
        confirmed.insert(t, u64::try_from(n).unwrap_or(0));
    }
    let mut rows = Vec::new();
    for t in directory::terminals(conn)? {
        let mut groups = groups_of.remove(&t.terminal_id).unwrap_or_default();
        groups.sort();
        let mut row = TerminalRow {
            terminal_id: t.terminal_id.clone(),
            name: t.name,
            ip: t.ip,
            firmware: t.firmware,
            online: None,
            no_answer: false,
            person_count: t.person_count,
            confirmed: confirmed.get(&t.terminal_id).copied().unwrap_or(0),
            last_seen_ms: t.last_seen_ms,
            groups,
            state: None,
            total: 0,
            done: 0,
            failed: 0,
            pending: None,
            throughput: None,
            utilisation: None,
            ms_per_person: t.ms_per_person,
            last_error: t.last_error,
        };
        if let Some(p) = live.get(t.terminal_id.as_str()) {
            (row.online, row.no_answer) = (p.online, p.no_answer);
            row.person_count = p.person_count.or(row.person_count);
            row.state = Some(p.state.clone());
            (row.total, row.done, row.failed) = (p.total, p.done, p.failed);
            row.pending = p.pending.map(|n| n + p.in_flight);
            row.throughput = Some(p.throughput);
            row.utilisation = Some(p.utilisation);
            row.ms_per_person = p.ms_per_person.or(row.ms_per_person);
            row.last_error = p.last_error.clone().or(row.last_error);
        } else if let Some(j) = directory::job(conn, &t.terminal_id)? {
            row.state = Some(j.state);
            (row.total, row.done, row.failed) = (j.total, j.done, j.failed);
            let wall_ms = j.finished_ms.unwrap_or(crate::clock::now_ms()) - j.started_ms;
            if wall_ms > 0 {
                let processed = (j.done + j.failed) as f64;
                row.throughput = Some(processed * 1000.0 / wall_ms as f64);
                row.utilisation = Some((j.busy_ms as f64 / wall_ms as f64).min(1.0));
            }
            row.last_error = j.last_error.or(row.last_error);
        }
        rows.push(row);
    }
    Ok(rows)
}

/// One employee in the list.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct EmployeeRow {
    pub employee_id: String,
    pub name: String,
    /// allow | block
    pub person_type: String,
    #[ts(type = "number | null")]
    pub valid_from_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub valid_to_ms: Option<i64>,
    /// Terminal ids or group names; empty: every terminal.
    pub terminals: Vec<String>,
    /// Gone from the last import. The row stays (a tombstone: the sync removes the person from
    /// each terminal, and the audit of who was where keeps its name); `on_terminals` says how
    /// many terminals still hold them.
    pub removed: bool,
    /// Terminals that confirmed holding the person.
    pub on_terminals: u32,
    /// Terminals that refused the person.
    pub failures: u32,
}

/// The employee list as the panel asks for it: the directory's version and either every row, or
/// only the rows that changed since the version the panel holds (none on most refreshes).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct EmployeeList {
    #[ts(type = "number")]
    pub version: i64,
    /// Every employee when `complete`; otherwise those whose row changed since the version asked
    /// about, to be merged by id into the list held (employees are never deleted, only marked
    /// as leaving).
    pub rows: Vec<EmployeeRow>,
    pub complete: bool,
}

/// More changed employees than this and the whole list is read instead: one grouped scan of the
/// placements beats thousands of per-employee counts (see `watchfloor-bench panel`).
pub const MOST_CHANGED_ROWS: usize = 5000;

/// The employee list: every row when `known` is `None` (or a version this directory never had),
/// else only the rows changed since `known`. Version and rows come from one read transaction, so
/// they match.
pub fn employee_list(conn: &Connection, known: Option<i64>) -> rusqlite::Result<EmployeeList> {
    let tx = conn.unchecked_transaction()?;
    let version = directory::version(&tx)?;
    let delta = match known {
        Some(k) if k <= version && directory::changed_since(&tx, k)? <= MOST_CHANGED_ROWS => {
            Some(k)
        }
        _ => None,
    };
    let list = match delta {
        Some(k) => EmployeeList {
            version,
            rows: employee_rows_changed_since(&tx, k)?,
            complete: false,
        },
        None => EmployeeList {
            version,
            rows: employee_rows(&tx)?,
            complete: true,
        },
    };
    tx.finish()?;
    Ok(list)
}

/// The columns of an [`EmployeeRow`] before its two counts, as [`employee_row`] reads them.
const EMPLOYEE_COLUMNS: &str = "e.employee_id, e.name, e.person_type, e.valid_from_ms, \
                                e.valid_to_ms, e.terminals, e.removed_ms IS NOT NULL";

fn employee_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EmployeeRow> {
    let terminals: String = r.get(5)?;
    Ok(EmployeeRow {
        employee_id: r.get(0)?,
        name: r.get(1)?,
        person_type: if r.get::<_, i64>(2)? == 1 {
            "block"
        } else {
            "allow"
        }
        .to_owned(),
        valid_from_ms: r.get(3)?,
        valid_to_ms: r.get(4)?,
        terminals: directory::split_list(&terminals),
        removed: r.get(6)?,
        on_terminals: r.get(7)?,
        failures: r.get(8)?,
    })
}

/// The rows of the employees that changed after directory version `since`, by id, each counted
/// through the by-employee indexes.
fn employee_rows_changed_since(
    conn: &Connection,
    since: i64,
) -> rusqlite::Result<Vec<EmployeeRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {EMPLOYEE_COLUMNS},
                (SELECT count(*) FROM terminal_persons p WHERE p.employee_id = e.employee_id),
                (SELECT count(*) FROM sync_failures f WHERE f.employee_id = e.employee_id)
         FROM employee_versions v JOIN employees e ON e.employee_id = v.employee_id
         WHERE v.version > ?1
         ORDER BY e.employee_id"
    ))?;
    let rows = stmt.query_map([since], employee_row)?;
    rows.collect()
}

/// Every employee (leavers still being removed included), by id.
pub fn employee_rows(conn: &Connection) -> rusqlite::Result<Vec<EmployeeRow>> {
    // One grouped pass over each table, not a count per employee.
    let mut stmt = conn.prepare(&format!(
        "SELECT {EMPLOYEE_COLUMNS}, coalesce(p.n, 0), coalesce(f.n, 0)
         FROM employees e
         LEFT JOIN (SELECT employee_id, count(*) AS n FROM terminal_persons GROUP BY employee_id) p
                ON p.employee_id = e.employee_id
         LEFT JOIN (SELECT employee_id, count(*) AS n FROM sync_failures GROUP BY employee_id) f
                ON f.employee_id = e.employee_id
         ORDER BY e.employee_id"
    ))?;
    let rows = stmt.query_map([], employee_row)?;
    rows.collect()
}

/// Where one employee stands on one terminal.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Placement {
    pub terminal_id: String,
    pub terminal_name: Option<String>,
    /// The employee should be on this terminal now.
    pub assigned: bool,
    /// synced | pending | failed | removing | absent
    pub state: String,
    pub errcode: Option<u32>,
    pub reason: Option<String>,
    pub attempts: Option<u32>,
    /// When the terminal last confirmed the person.
    #[ts(type = "number | null")]
    pub confirmed_ms: Option<i64>,
}

/// The employee's state on every known terminal.
pub fn placements(
    conn: &Connection,
    employee_id: &str,
    now_ms: i64,
) -> rusqlite::Result<Vec<Placement>> {
    let employee = directory::employees(conn)?.remove(employee_id);
    let groups = directory::groups(conn)?;
    let mut confirmed: HashMap<String, (Option<String>, i64)> = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT terminal_id, content, confirmed_ms FROM terminal_persons WHERE employee_id = ?1",
    )?;
    for row in stmt.query_map([employee_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        let (t, content, at): (String, Option<String>, i64) = row?;
        confirmed.insert(t, (content, at));
    }
    let failures: HashMap<String, directory::Failure> =
        directory::employee_failures(conn, employee_id)?
            .into_iter()
            .map(|f| (f.terminal_id.clone(), f))
            .collect();
    let content = employee.as_ref().map(directory::Employee::content);
    let mut out = Vec::new();
    for t in directory::terminals(conn)? {
        let mine = directory::groups_of(&groups, &t.terminal_id);
        let assigned = employee
            .as_ref()
            .is_some_and(|e| e.should_be_on(&t.terminal_id, &mine, now_ms));
        let here = confirmed.get(&t.terminal_id);
        // The refusal that stands: of this content while assigned, of the removal while not.
        let failure = failures.get(&t.terminal_id).filter(|f| {
            if assigned {
                Some(&f.content) == content.as_ref()
            } else {
                f.content == directory::REMOVAL_CONTENT
            }
        });
        let state = match (assigned, here, failure) {
            (true, Some((c, _)), _) if c.as_ref() == content.as_ref() => "synced",
            (true, _, Some(_)) => "failed",
            (true, _, None) => "pending",
            (false, Some(_), Some(_)) => "failed",
            (false, Some(_), None) => "removing",
            (false, None, _) => "absent",
        };
        out.push(Placement {
            terminal_id: t.terminal_id.clone(),
            terminal_name: t.name,
            assigned,
            state: state.to_owned(),
            errcode: failure.map(|f| f.errcode),
            reason: failure.map(|f| f.reason.clone()),
            attempts: failure.map(|f| f.attempts),
            confirmed_ms: here.map(|(_, at)| *at),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facesync::directory::{apply_import, Employee, PersonType, Terminal};
    use crate::store::migration::migrate;

    fn employee(id: &str, terminals: &[&str]) -> Employee {
        Employee {
            employee_id: id.into(),
            name: format!("Name {id}"),
            photo: "/p.jpg".into(),
            photo_sha256: "00".into(),
            terminals: terminals.iter().map(|t| (*t).to_owned()).collect(),
            valid_from_ms: None,
            valid_to_ms: None,
            person_type: PersonType::Allow,
        }
    }

    #[test]
    fn the_employee_list_sends_only_the_rows_that_changed_since_the_version_held() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let first = employee_list(&conn, None).unwrap();
        assert!(
            first.complete && first.rows.is_empty(),
            "an empty directory"
        );
        let (e1, e2) = (employee("E1", &[]), employee("E2", &[]));
        let import = |conn: &mut Connection, rows: &[Employee]| {
            apply_import(conn, rows, &Default::default(), false, 0).unwrap();
        };
        import(&mut conn, &[e1.clone(), e2.clone()]);
        let imported = employee_list(&conn, Some(first.version)).unwrap();
        assert!(!imported.complete);
        assert_eq!(ids(&imported.rows), ["E1", "E2"], "both imported since");

        // Reading, and writes the list does not show (a terminal seen, an import that changes
        // nothing, a person confirmed again), send nothing.
        let v = imported.version;
        let same = employee_list(&conn, Some(v)).unwrap();
        assert_eq!(
            (same.version, same.rows.len(), same.complete),
            (v, 0, false)
        );
        directory::save_terminal(
            &conn,
            &Terminal {
                terminal_id: "T1".into(),
                online: true,
                ..Terminal::default()
            },
        )
        .unwrap();
        import(&mut conn, &[e1.clone(), e2.clone()]);
        assert!(employee_list(&conn, Some(v)).unwrap().rows.is_empty());

        // Everything that changes a row sends that row, and only it: stored on a terminal
        // (on_terminals), refused (failures), the refusal cleared, removed from a terminal,
        // renamed, leaving.
        let mut last = v;
        fn changed(conn: &Connection, last: &mut i64, what: &str) -> EmployeeRow {
            let l = employee_list(conn, Some(*last)).unwrap();
            assert!(!l.complete, "{what}: a delta");
            assert_eq!(ids(&l.rows), ["E1"], "{what}: E1's row, and E1's only");
            *last = l.version;
            l.rows.into_iter().next().unwrap()
        }
        directory::confirm_stored(&conn, "T1", &[("E1".into(), e1.content())], 1).unwrap();
        assert_eq!(changed(&conn, &mut last, "stored").on_terminals, 1);
        directory::confirm_stored(&conn, "T1", &[("E1".into(), e1.content())], 2).unwrap();
        assert!(
            employee_list(&conn, Some(last)).unwrap().rows.is_empty(),
            "confirmed again: the same count"
        );
        let refusal = directory::Failure {
            terminal_id: "T2".into(),
            employee_id: "E1".into(),
            content: e1.content(),
            errcode: 468,
            reason: "no face found".into(),
            attempts: 1,
            at_ms: 5,
        };
        directory::record_failure(&conn, &refusal).unwrap();
        assert_eq!(changed(&conn, &mut last, "refused").failures, 1);
        directory::clear_failures(&conn, None).unwrap();
        assert_eq!(changed(&conn, &mut last, "refusal cleared").failures, 0);
        directory::confirm_removed(&conn, "T1", &["E1".into()]).unwrap();
        assert_eq!(changed(&conn, &mut last, "removed from T1").on_terminals, 0);
        let renamed = Employee {
            name: "Other".into(),
            ..e1.clone()
        };
        import(&mut conn, &[renamed, e2.clone()]);
        assert_eq!(changed(&conn, &mut last, "renamed").name, "Other");
        import(&mut conn, std::slice::from_ref(&e2));
        assert!(changed(&conn, &mut last, "left").removed);

        // A version the directory never had (a panel from before the file was replaced), or
        // none: the whole list.
        for known in [None, Some(last + 1000)] {
            let all = employee_list(&conn, known).unwrap();
            assert!(all.complete);
            assert_eq!(ids(&all.rows), ["E1", "E2"]);
        }
    }

    #[test]
    fn more_changes_than_are_worth_counting_one_by_one_send_the_whole_list() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let v = employee_list(&conn, None).unwrap().version;
        let staff: Vec<Employee> = (0..=MOST_CHANGED_ROWS)
            .map(|i| employee(&format!("E{i:05}"), &[]))
            .collect();
        apply_import(&mut conn, &staff, &Default::default(), false, 0).unwrap();
        let l = employee_list(&conn, Some(v)).unwrap();
        assert!(l.complete, "{} changed rows: read whole", staff.len());
        assert_eq!(l.rows.len(), staff.len());
    }

    fn ids(rows: &[EmployeeRow]) -> Vec<&str> {
        rows.iter().map(|r| r.employee_id.as_str()).collect()
    }

    #[test]
    fn placements_say_synced_pending_failed_removing_and_absent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for id in ["T1", "T2", "T3", "T4", "T5", "T6"] {
            directory::save_terminal(
                &conn,
                &Terminal {
                    terminal_id: id.into(),
                    ..Terminal::default()
                },
            )
            .unwrap();
        }
        let e = employee("E1", &["T1", "T2", "T3"]);
        apply_import(
            &mut conn,
            std::slice::from_ref(&e),
            &Default::default(),
            false,
            0,
        )
        .unwrap();
        directory::confirm_stored(&conn, "T1", &[("E1".into(), e.content())], 1).unwrap();
        // On T4 from before the assignment changed (another content): to be removed.
        directory::confirm_stored(&conn, "T4", &[("E1".into(), "old".into())], 1).unwrap();
        directory::record_failure(
            &conn,
            &directory::Failure {
                terminal_id: "T3".into(),
                employee_id: "E1".into(),
                content: e.content(),
                errcode: 468,
                reason: "no face found".into(),
                attempts: 1,
                at_ms: 5,
            },
        )
        .unwrap();
        // On T5 too, and T5 refused to remove them (three times).
        directory::confirm_stored(&conn, "T5", &[("E1".into(), "old".into())], 1).unwrap();
        directory::record_failure(
            &conn,
            &directory::Failure {
                terminal_id: "T5".into(),
                employee_id: "E1".into(),
                content: directory::REMOVAL_CONTENT.into(),
                errcode: 0,
                reason: "the terminal did not remove this person".into(),
                attempts: 3,
                at_ms: 5,
            },
        )
        .unwrap();
        let got: Vec<(String, String)> = placements(&conn, "E1", 10)
            .unwrap()
            .into_iter()
            .map(|p| (p.terminal_id, p.state))
            .collect();
        let want = [
            ("T1", "synced"),
            ("T2", "pending"),
            ("T3", "failed"),
            ("T4", "removing"),
            ("T5", "failed"),
            ("T6", "absent"),
        ];
        assert_eq!(
            got,
            want.map(|(t, s)| (t.to_owned(), s.to_owned())).to_vec()
        );

        let rows = employee_rows(&conn).unwrap();
        // On T1, T4, T5; refused on T3 and (its removal) on T5.
        assert_eq!((rows[0].on_terminals, rows[0].failures), (3, 2));
        conn.execute("UPDATE terminals SET online = 1", []).unwrap();
        let terminals = terminal_rows(&conn, &[]).unwrap();
        assert_eq!(terminals.len(), 6);
        assert!(terminals.iter().all(|t| t.state.is_none()), "never synced");
        assert!(
            terminals.iter().all(|t| t.online.is_none()),
            "online as an earlier run stored it is not shown as now"
        );
        let confirmed: Vec<u64> = terminals.iter().map(|t| t.confirmed).collect();
        assert_eq!(
            confirmed,
            [1, 0, 0, 1, 1, 0],
            "E1 is confirmed on T1 and (still) on T4 and T5"
        );
    }
}
