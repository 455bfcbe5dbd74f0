//! Commands the UI may call. Errors reach the UI as `{code, message}` so it never matches on
//! text.

use std::sync::Arc;

use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;
use tokio::sync::broadcast::error::RecvError;
use watchfloor_core::metrics::MetricsView;
use watchfloor_core::store::{self, quarantine::QuarantineView};
use watchfloor_core::view::{ConsoleInfo, LiveBatch};

use super::ConsoleState;

/// An error as the UI receives it.
#[derive(Debug, Serialize)]
pub struct CommandError {
    /// Stable, machine-readable.
    pub code: &'static str,
    /// For a person.
    pub message: String,
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

/// The newest quarantined messages (at most `limit`, capped at 1000), newest first, read from
/// the history file on a connection of their own.
#[tauri::command]
pub async fn recent_quarantine(
    state: State<'_, ConsoleState>,
    limit: u32,
) -> Result<Vec<QuarantineView>, CommandError> {
    let path = std::path::PathBuf::from(&state.info.db_path);
    let history_error = |message: String| CommandError {
        code: "history",
        message,
    };
    tauri::async_runtime::spawn_blocking(move || {
        let conn = store::open_read_only(&path).map_err(|e| e.to_string())?;
        store::quarantine::recent(&conn, limit.min(1000)).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| history_error(e.to_string()))?
    .map_err(history_error)
}

/// Streams live state to `on_batch`: first a full snapshot, then coalesced batches. A page that
/// subscribes again (after a reload) replaces the previous stream.
#[tauri::command]
pub async fn subscribe_live(
    state: State<'_, ConsoleState>,
    on_batch: Channel<Arc<LiveBatch>>,
) -> Result<(), CommandError> {
    let feed = state.feed.clone();
    // Subscribe before the snapshot so no batch falls between them; the UI drops batches whose
    // seq is not above the snapshot's.
    let mut rx = feed.subscribe();
    let stopped = || CommandError {
        code: "pipeline_stopped",
        message: "the pipeline has stopped".into(),
    };
    let snapshot = feed.snapshot().await.ok_or_else(stopped)?;
    on_batch
        .send(Arc::new(snapshot))
        .map_err(|e| CommandError {
            code: "ipc",
            message: e.to_string(),
        })?;

    let task = tauri::async_runtime::spawn(async move {
        loop {
            let batch = match rx.recv().await {
                Ok(batch) => batch,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "the window fell behind; resending a full snapshot");
                    match feed.snapshot().await {
                        Some(s) => Arc::new(s),
                        None => return,
                    }
                }
                Err(RecvError::Closed) => return,
            };
            if on_batch.send(batch).is_err() {
                return;
            }
        }
    });
    if let Ok(mut slot) = state.forwarder.lock() {
        if let Some(previous) = slot.replace(task) {
            previous.abort();
        }
    }
    Ok(())
}
