//! Commands the UI may call. Errors reach the UI as `{code, message}` so it never matches on
//! text.

use std::sync::Arc;

use tauri::{AppHandle, Emitter, Manager, State};
use tokio::sync::broadcast::error::RecvError;
use watchfloor_core::incidents::{AuditEntry, Incident, IncidentAction, SeenIncident};
use watchfloor_core::metrics::MetricsView;
use watchfloor_core::store::{self, quarantine::QuarantineView};
use watchfloor_core::view::{ConsoleInfo, EventView, LiveBatch, TrailPoint};
use watchfloor_protocol::DeviceId;

use super::ConsoleState;

pub use watchfloor_core::view::CommandError;

fn stopped() -> CommandError {
    CommandError::new("pipeline_stopped", "the pipeline has stopped")
}

/// Facts about this console (broker, database, version).
#[tauri::command]
pub fn console_info(state: State<'_, ConsoleState>) -> ConsoleInfo {
    state.info.clone()
}

/// Try the broker again now instead of waiting out the backoff.
#[tauri::command]
pub fn retry_now(state: State<'_, ConsoleState>) {
    state.retry.retry();
}

/// The pipeline's counters and gauges now, for the health panel.
#[tauri::command]
pub fn metrics(state: State<'_, ConsoleState>) -> MetricsView {
    state.metrics.snapshot()
}

/// Runs `query` on a read-only connection of its own to the history file, off the UI thread.
pub(super) async fn read_history<T: Send + 'static>(
    state: &ConsoleState,
    query: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, CommandError> {
    let path = std::path::PathBuf::from(&state.info.db_path);
    tauri::async_runtime::spawn_blocking(move || {
        let conn = store::open_read_only(&path).map_err(|e| e.to_string())?;
        query(&conn).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| CommandError::new("history", e))?
    .map_err(|e| CommandError::new("history", e))
}

/// The newest quarantined messages (at most `limit`, capped at 1000), newest first.
#[tauri::command]
pub async fn recent_quarantine(
    state: State<'_, ConsoleState>,
    limit: u32,
) -> Result<Vec<QuarantineView>, CommandError> {
    read_history(&state, move |c| {
        store::quarantine::recent(c, limit.min(1000))
    })
    .await
}

/// A device's newest stored events (at most `limit`, capped at 200), newest first.
#[tauri::command]
pub async fn device_events(
    state: State<'_, ConsoleState>,
    device: String,
    limit: u32,
) -> Result<Vec<EventView>, CommandError> {
    read_history(&state, move |c| {
        store::events::recent(c, &device, limit.min(200))
    })
    .await
}

/// A device's recent trail from live state, oldest first.
#[tauri::command]
pub async fn device_trail(
    state: State<'_, ConsoleState>,
    device: String,
) -> Result<Vec<TrailPoint>, CommandError> {
    // Namespaced too: an OwnTracks phone (`ot:...`) or a face terminal (`face:...`).
    let id =
        DeviceId::parse_qualified(&device).map_err(|e| CommandError::new("bad_device_id", e))?;
    state.feed.trail(id).await.ok_or_else(stopped)
}

/// Applies an operator's action to an incident, as this console's operator. `seen`: the incident
/// as the page showed it; the action is refused (`incident_changed`, saying what changed) when
/// it has changed since in state, severity or assignee.
#[tauri::command]
pub async fn act_on_incident(
    state: State<'_, ConsoleState>,
    id: String,
    action: IncidentAction,
    seen: Option<SeenIncident>,
) -> Result<Incident, CommandError> {
    state
        .feed
        .act(id, action, seen)
        .await
        .ok_or_else(stopped)?
        .map_err(|e| CommandError::new(e.code(), e))
}

/// An incident's audit trail as stored in the history file, oldest first.
#[tauri::command]
pub async fn incident_audit(
    state: State<'_, ConsoleState>,
    id: String,
) -> Result<Vec<AuditEntry>, CommandError> {
    read_history(&state, move |c| store::incidents::audit(c, &id)).await
}

/// Shows a desktop notification. Fails with `notifications_unavailable` when no notification
/// service answers (no D-Bus session, no daemon), so the UI can say so instead of losing alerts.
#[tauri::command]
pub async fn notify(title: String, body: String) -> Result<(), CommandError> {
    tauri::async_runtime::spawn_blocking(move || {
        super::notify_desktop(&title, &body)
            .map_err(|e| CommandError::new("notifications_unavailable", e))
    })
    .await
    .map_err(|e| CommandError::new("notifications_unavailable", e))?
}

/// Asks the desktop's notification service who it is, without showing anything: the console
/// calls it at start, so a missing service is reported before the first incident needs it.
/// Answers the service's name; fails with `notifications_unavailable` as [`notify`] does.
#[tauri::command]
pub async fn check_notifications() -> Result<String, CommandError> {
    tauri::async_runtime::spawn_blocking(|| {
        notify_rust::get_server_information()
            .map(|info| info.name)
            .map_err(|e| CommandError::new("notifications_unavailable", e))
    })
    .await
    .map_err(|e| CommandError::new("notifications_unavailable", e))?
}

/// Puts the count of unacknowledged incidents in the window title, on the tray icon and in the
/// first line of its menu.
#[tauri::command]
pub fn set_attention(app: AppHandle, unacknowledged: u32) -> Result<(), CommandError> {
    let title = match unacknowledged {
        0 => "Watchfloor".to_owned(),
        n => format!("({n}) Watchfloor: {n} unacknowledged"),
    };
    if let Some(window) = app.get_webview_window(super::CONSOLE_WINDOW) {
        window
            .set_title(&title)
            .map_err(|e| CommandError::new("window", e))?;
    }
    if let Some(tray) = app.tray_by_id(super::TRAY_ID) {
        let label = (unacknowledged > 0).then(|| unacknowledged.to_string());
        // The label shows beside the icon where the tray host supports it (AppIndicator). A
        // failure is the page's to retry (it sends the count again at the next change).
        tray.set_title(label.as_deref())
            .and_then(|()| tray.set_tooltip(Some(&title)))
            .map_err(|e| CommandError::new("tray", e))?;
    }
    if let Some(count) = app.try_state::<super::TrayCount>() {
        count
            .0
            .set_text(super::tray_count(unacknowledged))
            .map_err(|e| CommandError::new("tray", e))?;
    }
    Ok(())
}

/// The event carrying live batches to the window (`ui/src/lib/backend/tauri.ts` listens).
pub const LIVE_EVENT: &str = "watchfloor://live";
/// Said to the page when live state stops sending batches while the console runs (its task
/// ended: a defect), with the reason: the map and the incident list would otherwise freeze
/// under a status bar that still says "connected".
pub const LIVE_ENDED_EVENT: &str = "watchfloor://live-ended";

/// Streams live state to the calling window as [`LIVE_EVENT`]s: first a full snapshot, then
/// coalesced batches. A page that subscribes again (after a reload) replaces the previous
/// stream.
///
/// An event, not an `ipc::Channel`: a channel delivers a large message in three hops (the
/// backend evaluates a script in the page, which fetches the payload back over IPC, whose
/// answer then runs the callback), each waiting on a busy main thread; an event is one script
/// evaluation carrying the JSON. Measured in the real app (docs/BENCHMARKS.md, "Screen"):
/// batch delivery p50 85 ms over the channel, 22 ms as an event, at 1,000 devices x 2 Hz.
#[tauri::command]
pub async fn subscribe_live(
    webview: tauri::WebviewWindow,
    state: State<'_, ConsoleState>,
) -> Result<(), CommandError> {
    // The previous stream ends before the new snapshot goes: one still resending a snapshot
    // of its own (the page fell behind) could deliver it after ours, older, and the page
    // takes any full batch.
    if let Some(previous) = state.forwarder.lock().ok().and_then(|mut slot| slot.take()) {
        previous.abort();
    }
    let feed = state.feed.clone();
    // Subscribe before the snapshot so no batch falls between them; the UI drops batches whose
    // seq is not above the snapshot's.
    let mut rx = feed.subscribe();
    let snapshot = feed.snapshot().await.ok_or_else(stopped)?;
    let label = webview.label().to_owned();
    let ended = {
        let (webview, label) = (webview.clone(), label.clone());
        move |reason: &str| {
            if super::EXITING.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            tracing::error!("live updates to the window ended: {reason}");
            let _ = webview.emit_to(label.as_str(), LIVE_ENDED_EVENT, reason);
        }
    };
    let send = move |batch: &LiveBatch| webview.emit_to(label.as_str(), LIVE_EVENT, batch);
    send(&snapshot).map_err(|e| CommandError::new("ipc", e))?;
    tracing::info!("a page subscribed to live state");

    let task = tauri::async_runtime::spawn(async move {
        loop {
            // The batch channel stays open while any feed is held (this task holds one): the
            // end of live state is heard from the feed itself.
            let next = tokio::select! {
                next = rx.recv() => next,
                () = feed.ended() => return ended("live state stopped"),
            };
            let batch = match next {
                Ok(batch) => batch,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "the window fell behind; resending a full snapshot");
                    match feed.snapshot().await {
                        Some(s) => Arc::new(s),
                        None => return ended("live state stopped answering"),
                    }
                }
                // At the console's exit the window is gone first: this reaches no one then.
                Err(RecvError::Closed) => return ended("live state stopped"),
            };
            if send(&batch).is_err() {
                return;
            }
        }
    });
    if let Ok(mut slot) = state.forwarder.lock() {
        // A subscription that raced this one: the newest stream wins.
        if let Some(previous) = slot.replace(task) {
            previous.abort();
        }
    }
    Ok(())
}
