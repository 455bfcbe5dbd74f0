//! Commands of the employee-sync and attendance panels: terminals with their jobs, employees and
//! their state on each terminal, import, retry and cancel, the attendance log and its daily
//! report (with CSV export), and the images kept with face-terminal incidents.

use std::path::PathBuf;

use tauri::State;
use watchfloor_core::facesync::report::{SyncAction, SyncOverview};
use watchfloor_core::facesync::{self, directory, report, Control};
use watchfloor_core::store::attendance::{
    self, AttendanceFilter, AttendanceRow, DailyFilter, DailyPage, EventImage,
};

use super::commands::{read_history, CommandError};
use super::dialogs;
use super::ConsoleState;

#[tauri::command]
pub async fn sync_overview(state: State<'_, ConsoleState>) -> Result<SyncOverview, CommandError> {
    let progress = state
        .sync
        .as_ref()
        .map(|s| s.progress.borrow().clone())
        .unwrap_or_default();
    let terminals = read_history(&state, move |c| report::terminal_rows(c, &progress)).await?;
    Ok(SyncOverview {
        running: state.sync.is_some(),
        problem: state.sync_problem.clone(),
        link: state.sync.as_ref().map(|s| s.connection.borrow().clone()),
        terminals,
    })
}

/// The employee list: every row, or (given the `known_version` the panel holds) only the rows
/// changed since. The panel refreshes every few seconds; re-reading 20,000 employees on 50
/// terminals each time would scan a million placements, mostly for nothing.
#[tauri::command]
pub async fn sync_employees(
    state: State<'_, ConsoleState>,
    known_version: Option<i64>,
) -> Result<report::EmployeeList, CommandError> {
    read_history(&state, move |c| report::employee_list(c, known_version)).await
}

/// One employee's state on every terminal.
#[tauri::command]
pub async fn sync_placements(
    state: State<'_, ConsoleState>,
    employee_id: String,
) -> Result<Vec<report::Placement>, CommandError> {
    let now = watchfloor_core::clock::now_ms();
    read_history(&state, move |c| report::placements(c, &employee_id, now)).await
}

/// Persons terminals refused (one terminal's, or all).
#[tauri::command]
pub async fn sync_failures(
    state: State<'_, ConsoleState>,
    terminal: Option<String>,
) -> Result<Vec<directory::Failure>, CommandError> {
    read_history(&state, move |c| directory::failures(c, terminal.as_deref())).await
}

/// `retry` (forget failures and try again, resuming a cancelled job), `cancel` (stop sending to
/// a terminal) or `reload` (plan again from the directory).
#[tauri::command]
pub async fn sync_control(
    state: State<'_, ConsoleState>,
    action: SyncAction,
    terminal: Option<String>,
) -> Result<(), CommandError> {
    let control = match (action, terminal) {
        (SyncAction::Retry, t) => Control::Retry(t),
        (SyncAction::Cancel, Some(t)) => Control::Cancel(t),
        (SyncAction::Reload, _) => Control::Reload,
        (SyncAction::Cancel, None) => {
            return Err(CommandError::new(
                "bad_action",
                "cancel names the terminal whose job stops",
            ))
        }
    };
    send_control(&state, control).await
}

async fn send_control(state: &ConsoleState, control: Control) -> Result<(), CommandError> {
    let Some(sync) = &state.sync else {
        return Err(match &state.sync_problem {
            Some(why) => CommandError::new(
                "sync_off",
                format!("the employee sync did not start: {why}"),
            ),
            None => CommandError::new(
                "sync_off",
                "this console does not run employee sync ([face] enabled = false or sync = false)",
            ),
        });
    };
    sync.control
        .send(control)
        .await
        .map_err(|_| CommandError::new("sync_stopped", "the employee sync has stopped"))
}

/// An employee import that stopped before removing many, waiting for the operator.
pub struct PendingImport {
    file: PathBuf,
    /// How many it would remove: confirmed, it removes at most this many.
    removing: u64,
    /// The file's length and time of change when the question was asked.
    seen: Option<(u64, std::time::SystemTime)>,
}

fn file_stamp(file: &std::path::Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(file).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Imports the employee CSV the operator picks in a dialog and has the sync plan again;
/// `None` when the dialog was cancelled. An import that would remove many employees stops
/// before changing anything, and its report says how many (`unconfirmed`). `confirm`:
/// `Some(true)` imports that file (no dialog), removing at most as many as the operator was
/// told, and only if the file is as it was then; `Some(false)` drops the question (the
/// operator cancelled it). The file is kept here, never named by the page: a page that could
/// name one could import any CSV on disk.
#[tauri::command]
pub async fn import_employees(
    window: tauri::WebviewWindow,
    state: State<'_, ConsoleState>,
    confirm: Option<bool>,
) -> Result<Option<facesync::ImportReport>, CommandError> {
    let Some(zone) = state.face_zone else {
        return Err(CommandError::new(
            "face_off",
            "face terminals are turned off ([face] enabled = false)",
        ));
    };
    let pending = || {
        state
            .pending_import
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    };
    let (csv, removals) = match confirm {
        Some(false) => {
            pending().take();
            return Ok(None);
        }
        Some(true) => {
            // Taken: confirmed or refused, this question is answered.
            let Some(p) = pending().take() else {
                return Err(CommandError::new(
                    "nothing_to_confirm",
                    "no import is waiting for a confirmation: import the file again",
                ));
            };
            if file_stamp(&p.file) != p.seen {
                return Err(CommandError::new(
                    "file_changed",
                    format!(
                        "{} changed since the question: import it again",
                        p.file.display()
                    ),
                ));
            }
            (p.file, facesync::Removals::UpTo(p.removing))
        }
        None => {
            let picked =
                dialogs::open(&window, dialogs::IMPORT_EMPLOYEES, ("CSV", &["csv"])).await?;
            let Some(csv) = picked else {
                return Ok(None); // a question still on screen stands
            };
            // Another file: the question on screen is no longer the one to answer (the page
            // drops it whatever this import's outcome).
            pending().take();
            (csv, facesync::Removals::Few)
        }
    };
    // Read before the import reads the file: a change made meanwhile then shows at the
    // confirmation.
    let stamp = file_stamp(&csv);
    let db = PathBuf::from(&state.info.db_path);
    let file = csv.clone();
    let report = tauri::async_runtime::spawn_blocking(move || {
        facesync::import_file(&db, &csv, zone, removals)
    })
    .await
    .map_err(|e| CommandError::new("import", e))?
    .map_err(|e| CommandError::new("import", format!("{e:#}")))?;
    if let Some(u) = &report.unconfirmed {
        // Nothing changed: no reload. Confirmed, it removes at most this many.
        *pending() = Some(PendingImport {
            file,
            removing: u.removing,
            seen: stamp,
        });
        return Ok(Some(report));
    }
    // The import is committed: its report is the answer even should the sync not take the
    // Reload (it stopped; its next start plans from the directory anyway). An error here would
    // hide the report and invite a second import.
    if state.sync.is_some() {
        if let Err(e) = send_control(&state, Control::Reload).await {
            tracing::warn!(error = %e.message, "employees imported; the sync did not take the reload");
        }
    }
    Ok(Some(report))
}

/// Puts a terminal in exactly the groups named (the panel's "Groups" field), then has the sync
/// plan again, since group membership decides who belongs on it.
#[tauri::command]
pub async fn set_terminal_groups(
    state: State<'_, ConsoleState>,
    terminal: String,
    groups: Vec<String>,
) -> Result<(), CommandError> {
    let groups: Vec<String> = groups
        .iter()
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    if let Some(problem) = groups.iter().find_map(|g| directory::group_name_problem(g)) {
        return Err(CommandError::new("bad_group", problem));
    }
    let db = PathBuf::from(&state.info.db_path);
    tauri::async_runtime::spawn_blocking(move || {
        let mut conn = watchfloor_core::store::open(&db).map_err(|e| e.to_string())?;
        directory::set_terminal_groups(&mut conn, &terminal, &groups).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| CommandError::new("groups", e))?
    .map_err(|e| CommandError::new("groups", e))?;
    // The groups are saved: a sync that did not take the reload (it stopped) plans from the
    // directory at its next start anyway, and an error here would say the save failed.
    if state.sync.is_some() {
        if let Err(e) = send_control(&state, Control::Reload).await {
            tracing::warn!(error = %e.message, "terminal groups saved; the sync did not take the reload");
        }
    }
    Ok(())
}

/// The attendance log, newest first (at most 5,000 lines on screen).
#[tauri::command]
pub async fn attendance_log(
    state: State<'_, ConsoleState>,
    mut filter: AttendanceFilter,
) -> Result<Vec<AttendanceRow>, CommandError> {
    filter.limit = Some(filter.limit.unwrap_or(1000).min(5000));
    read_history(&state, move |c| attendance::log(c, &filter)).await
}

/// First in and last out per employee and day: a page of them (the panel asks for 1,000; a
/// month of 20,000 employees is 600,000), and whether there are more.
#[tauri::command]
pub async fn attendance_daily(
    state: State<'_, ConsoleState>,
    filter: DailyFilter,
) -> Result<DailyPage, CommandError> {
    read_history(&state, move |c| attendance::daily_page(c, &filter)).await
}

/// Writes the log (every matching line, no limit) or the daily report as CSV where the operator
/// says in a save dialog; returns the path written, `None` when the dialog was cancelled.
#[tauri::command]
pub async fn export_attendance(
    window: tauri::WebviewWindow,
    state: State<'_, ConsoleState>,
    report: String,
    mut filter: AttendanceFilter,
) -> Result<Option<String>, CommandError> {
    let from = filter.from_day.clone().unwrap_or_default();
    let to = filter.to_day.clone().unwrap_or_default();
    // The days go into the offered file name with digits and dashes only: the page could send
    // any text, and a '/' or '..' in a save dialog's name field is a path.
    let in_name = |day: &str| -> String {
        day.chars()
            .filter(|c| c.is_ascii_digit() || *c == '-')
            .take(10)
            .collect()
    };
    let span = if from.is_empty() && to.is_empty() {
        "all".to_owned()
    } else {
        format!("{}_{}", in_name(&from), in_name(&to))
    };
    let daily = match report.as_str() {
        "log" => false,
        "daily" if !from.is_empty() && !to.is_empty() => true,
        _ => {
            return Err(CommandError::new(
                "bad_report",
                "export `log`, or `daily` with a from and a to day",
            ))
        }
    };
    let name = format!("watchfloor-{report}-{span}.csv");
    let Some(path) = dialogs::save(&window, dialogs::EXPORT, &name).await? else {
        return Ok(None);
    };
    filter.limit = None;
    let db = PathBuf::from(&state.info.db_path);
    let written = path.display().to_string();
    // Read and written on a blocking thread, row by row (the log is streamed to the file).
    tauri::async_runtime::spawn_blocking(move || {
        let conn = watchfloor_core::store::open_read_only(&db)?;
        if daily {
            // The person-days the panel shows, every page of them.
            let days = DailyFilter {
                from_day: from,
                to_day: to,
                person: filter.person,
                limit: None,
            };
            attendance::export_daily(&conn, &days, &path)
        } else {
            attendance::export_log(&conn, &filter, &path)
        }
    })
    .await
    .map_err(|e| CommandError::new("export", e))?
    .map_err(|e| CommandError::new("export", format!("cannot write {written}: {e:#}")))?;
    Ok(Some(written))
}

/// The images kept with an incident's events (stranger captures, block-list matches) from
/// `from_ms` to `to_ms`, its first and last seen: the newest as many as pruning keeps for an open
/// incident, over the span it keeps them in.
#[tauri::command]
pub async fn event_images(
    state: State<'_, ConsoleState>,
    device: String,
    event_type: String,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<EventImage>, CommandError> {
    read_history(&state, move |c| {
        attendance::incident_images(c, &device, &event_type, from_ms, to_ms)
    })
    .await
}
