//! The review window: a history file opened offline (`watchfloor review FILE`), with no
//! pipeline, no broker and no network. Its commands read the file through
//! `review::ReviewFile`, which never writes to it, each on a blocking thread.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tauri::{AppHandle, Manager, State};
use watchfloor_core::incidents::AuditEntry;
use watchfloor_core::review::document::{self, DocumentError, ViewExport};
use watchfloor_core::review::frame::FrameParams;
use watchfloor_core::review::timeline::Direction;
use watchfloor_core::review::trips::{Track, TripParams};
use watchfloor_core::review::{self, AppMode, ReviewFile, ReviewFrame, ReviewStarted};

use super::commands::CommandError;
use super::dialogs;

/// How long "Review a file…" waits for the review window to open before it leaves it to open
/// in its own time (opening a month from an older Watchfloor copies the whole file first).
const REVIEW_START_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The file under review.
pub struct ReviewState {
    file: Arc<Mutex<ReviewFile>>,
    params: FrameParams,
    /// The reviewing console's device groups, placed again on devices read again.
    groups: watchfloor_core::groups::DeviceGroups,
    /// A connection of its own for tracks (a month's is a long read), opened at the first and
    /// kept: frames go on meanwhile, and tracks asked for in a row wait for each other instead
    /// of piling up reads on cold pages.
    track_reader: Arc<Mutex<Option<ReviewFile>>>,
}

/// The live console answers `live`; the review window `review` with the file's facts, read
/// again each time (the review window asks every few seconds while a running console may still
/// be writing the file: its devices and span grow).
#[tauri::command]
pub async fn app_mode(app: AppHandle) -> Result<AppMode, CommandError> {
    match app.try_state::<ReviewState>() {
        None => Ok(AppMode::Live),
        Some(state) => {
            let file = Arc::clone(&state.file);
            let groups = state.groups.clone();
            let info = tauri::async_runtime::spawn_blocking(move || {
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                file.refresh_devices(&groups)?;
                file.info()
            })
            .await
            .map_err(|e| CommandError::new("review", e))?
            .map_err(|e| CommandError::new("review", e))?;
            Ok(AppMode::Review { info })
        }
    }
}

/// Runs `query` on the file, off the UI thread.
async fn read<T: Send + 'static>(
    state: &ReviewState,
    query: impl FnOnce(&ReviewFile) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, CommandError> {
    let file = Arc::clone(&state.file);
    tauri::async_runtime::spawn_blocking(move || {
        let file = file.lock().unwrap_or_else(|p| p.into_inner());
        query(&file)
    })
    .await
    .map_err(|e| CommandError::new("review", e))?
    .map_err(|e| CommandError::new("review", e))
}

/// The picture at `at_ms`.
#[tauri::command]
pub async fn review_frame(
    state: State<'_, ReviewState>,
    at_ms: i64,
) -> Result<ReviewFrame, CommandError> {
    let params = state.params;
    read(&state, move |f| f.frame(at_ms, params, 50)).await
}

/// One incident's audit trail up to `at_ms`.
#[tauri::command]
pub async fn review_audit(
    state: State<'_, ReviewState>,
    id: String,
    at_ms: i64,
) -> Result<Vec<AuditEntry>, CommandError> {
    read(&state, move |f| f.audit_until(&id, at_ms)).await
}

/// The next (or previous) moment something happened.
#[tauri::command]
pub async fn review_step(
    state: State<'_, ReviewState>,
    at_ms: i64,
    direction: Direction,
) -> Result<Option<i64>, CommandError> {
    read(&state, move |f| {
        review::timeline::step(f.conn(), at_ms, direction)
    })
    .await
}

/// When the next incident after `at_ms` opened.
#[tauri::command]
pub async fn review_next_incident(
    state: State<'_, ReviewState>,
    at_ms: i64,
) -> Result<Option<i64>, CommandError> {
    read(&state, move |f| {
        Ok(review::timeline::next_incident(f.conn(), at_ms)?.map(|(t, _)| t))
    })
    .await
}

/// A device's track over a range, with stops, trip totals and battery.
#[tauri::command]
pub async fn review_track(
    state: State<'_, ReviewState>,
    device: String,
    from_ms: i64,
    to_ms: i64,
    min_stop_s: Option<u32>,
) -> Result<Track, CommandError> {
    let mut params = TripParams::default();
    if let Some(s) = min_stop_s {
        params.min_stop_ms = i64::from(s) * 1000;
    }
    let (file, reader) = (Arc::clone(&state.file), Arc::clone(&state.track_reader));
    tauri::async_runtime::spawn_blocking(move || {
        let mut reader = reader.lock().unwrap_or_else(|p| p.into_inner());
        let reader = match reader.take() {
            Some(r) => reader.insert(r),
            None => reader.insert(
                file.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .another_reader()?,
            ),
        };
        review::trips::track(reader, &device, from_ms, to_ms, params)
    })
    .await
    .map_err(|e| CommandError::new("review", e))?
    .map_err(|e| CommandError::new("review", e))
}

/// Writes part of the view (devices at the instant, incidents then, a track) or a report over
/// the range where the reviewer says in a save dialog (offered: a name that says what it
/// holds, in Downloads); resolves to the path written, `None` when the dialog was cancelled.
#[tauri::command]
pub async fn review_export(
    window: tauri::WebviewWindow,
    state: State<'_, ReviewState>,
    request: ViewExport,
) -> Result<Option<String>, CommandError> {
    let Some(path) = dialogs::save(&window, dialogs::EXPORT, &request.file_name()).await? else {
        return Ok(None);
    };
    let params = state.params;
    let file = Arc::clone(&state.file);
    let written = path.display().to_string();
    tauri::async_runtime::spawn_blocking(move || {
        // On a connection of its own, so the window's frames are not held up while a month's
        // report is written.
        let reader = file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .another_reader()
            .map_err(|e| CommandError::new("export", e))?;
        write_file(&path, |out| {
            document::write_view(&reader, &request, params, out)
        })
    })
    .await
    .map_err(|e| CommandError::new("export", e))??;
    Ok(Some(written))
}

/// Writes `path` through `write`, whole or not at all, and never over a database
/// ([`watchfloor_core::output::write_whole`]).
fn write_file(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<usize, DocumentError>,
) -> Result<usize, CommandError> {
    use watchfloor_core::output::{write_whole, WriteError};
    let shown = path.display();
    write_whole(path, write).map_err(|e| match e {
        WriteError::Write(e @ DocumentError::Unsupported(_)) => {
            CommandError::new("bad_export", format!("cannot write {shown}: {e}"))
        }
        WriteError::Write(e) => CommandError::new("export", format!("cannot write {shown}: {e}")),
        e @ WriteError::Database(_) => CommandError::new("export_refused", e),
        e @ WriteError::Io { .. } => CommandError::new("export", e),
    })
}

/// The live console's "Review a file…": the operator picks a history file in a dialog; it is
/// checked here (so a file that is no history, or one from a newer Watchfloor, is refused in
/// the console, in words), then opened in a review window of its own, a second
/// `watchfloor review` process, while this console runs on. Resolves to the file and whether
/// its window is open yet, `None` when the dialog was cancelled.
#[tauri::command]
pub async fn open_review(
    window: tauri::WebviewWindow,
    state: State<'_, super::ConsoleState>,
) -> Result<Option<ReviewStarted>, CommandError> {
    let filter = ("History files", &["sqlite", "db"][..]);
    let Some(file) = dialogs::open(&window, dialogs::OPEN_REVIEW, filter).await? else {
        return Ok(None);
    };
    let checked = file.clone();
    tauri::async_runtime::spawn_blocking(move || ReviewFile::check(&checked))
        .await
        .map_err(|e| CommandError::new("review", e))?
        .map_err(|e| CommandError::new("review_refused", e))?;
    let exe = std::env::current_exe().map_err(|e| CommandError::new("review", e))?;
    let mut command = std::process::Command::new(exe);
    command.arg("review").arg(&file);
    // The settings the console was started with (the environment goes with the process): the
    // config names certificate files and a protocol version that only hold for its broker.
    if let Some(config) = &state.config_path {
        command.arg("--config").arg(config);
    }
    if !state.info.embedded_broker {
        command.arg("--broker").arg(&state.info.broker_url);
    }
    // Waited for until its window is open, so a review that cannot start (its private copy
    // does not fit the temp folder, no display, a binary replaced by an upgrade) is said here
    // instead of reported as opened. Reaped when it closes; it may outlive this console.
    // One still opening after the wait (an older file copied first) is said to be; if it then
    // fails, a desktop notification says why (the page was answered long before).
    let name = file.display().to_string();
    let later = move |outcome| match outcome {
        super::child::Started::Failed { status, reason } => {
            tracing::error!(file = %name, %status, %reason, "the review window did not open");
            let body = format!("{name}: {reason}");
            if let Err(error) =
                super::notify_desktop("Watchfloor: the review window did not open", &body)
            {
                tracing::warn!(%error, "the failure could not be shown as a notification");
            }
        }
        _ => tracing::info!(file = %name, "review window opened"),
    };
    let (pid, started) = tauri::async_runtime::spawn_blocking(move || {
        super::child::start(command, REVIEW_START_WAIT, later)
    })
    .await
    .map_err(|e| CommandError::new("review", e))?
    .map_err(|e| CommandError::new("review", format!("cannot start the review window: {e}")))?;
    let open = match started {
        super::child::Started::Ready => {
            tracing::info!(file = %file.display(), pid, "review window opened");
            true
        }
        super::child::Started::Slow => {
            tracing::warn!(file = %file.display(), pid, wait_s = REVIEW_START_WAIT.as_secs(), "review window started but not open yet");
            false
        }
        super::child::Started::Failed { status, reason } => {
            return Err(CommandError::new(
                "review_refused",
                format!("the review window did not open ({status}): {reason}"),
            ))
        }
    };
    Ok(Some(ReviewStarted {
        file: file.display().to_string(),
        open,
    }))
}

/// Opens `file` for review in a window of its own; returns when the window closes.
pub fn run(
    runtime: tokio::runtime::Runtime,
    settings: &watchfloor_core::Settings,
    file: &Path,
) -> anyhow::Result<()> {
    tauri::async_runtime::set(runtime.handle().clone());
    // Before the file is opened: an older one is copied first, for nothing without a window.
    super::open_display()?;
    let mut stop = runtime.block_on(async { crate::headless::StopSignal::install() })?;
    let mut opened = ReviewFile::open(file)?;
    opened.place_in_groups(&settings.device_groups);
    tracing::info!(file = %file.display(), opened = ?opened.opened(), devices = opened.devices().len(), "review opened");
    let file_handle = Arc::new(Mutex::new(opened));
    let state = ReviewState {
        file: Arc::clone(&file_handle),
        params: FrameParams {
            stale_after_ms: i64::try_from(settings.live.stale_after.as_millis())
                .unwrap_or(i64::MAX),
            day_zone: settings.terminal_day_zone(),
            ..FrameParams::default()
        },
        groups: settings.device_groups.clone(),
        track_reader: Arc::default(),
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let app = dialogs::install(tauri::Builder::default())
        .manage(state)
        .setup(move |app| {
            // A kill or a logout closes the window as its close button does (and so deletes a
            // private copy, below).
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                if stop.wait().await.is_ok() {
                    super::watchdog::stand_down();
                    handle.exit(0);
                }
            });
            // Not `?`: Tauri panics on a setup error, past the exit that deletes a private copy.
            match super::open_window(app, super::REVIEW_WINDOW) {
                Ok(window) => {
                    let _ = window.set_title(&format!("Watchfloor review: {name} (read-only)"));
                    super::watchdog::watch(&window, "The review window");
                    super::child::report_ready();
                }
                Err(e) => {
                    tracing::error!("cannot open the review window: {e}");
                    app.handle().exit(1);
                }
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            app_mode,
            review_frame,
            review_audit,
            review_step,
            review_next_incident,
            review_track,
            review_export
        ])
        .build(super::context(None))
        .context("cannot open the review window")?;
    // The app ends the process from its event loop, dropping nothing: a private copy of the
    // file (gigabytes, for a month from an older Watchfloor) is deleted here, not left in the
    // temp folder.
    app.run(move |_, event| {
        if let tauri::RunEvent::ExitRequested { .. } = event {
            super::watchdog::stand_down();
        }
        if let tauri::RunEvent::Exit = event {
            super::watchdog::stand_down();
            match file_handle.lock() {
                Ok(mut file) => file.discard_copy(),
                Err(poisoned) => poisoned.into_inner().discard_copy(),
            }
        }
    });
    Ok(())
}
