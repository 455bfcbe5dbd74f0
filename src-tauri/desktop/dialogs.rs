//! The native file dialogs (tauri-plugin-dialog: GTK on Linux), opened by the backend itself.
//! The page never names a path: it asks for an import, an export or a review, and the operator
//! picks the file here. So a compromised page can read or write no file the operator did not
//! choose in a dialog. Each dialog is given the window that asked as its parent; the GTK
//! backend the dialog plugin uses on Linux (rfd 0.17) does not pass it on yet, the desktop
//! portal backend and the other platforms do.

use std::path::PathBuf;

use tauri::{Manager, Runtime, WebviewWindow};
use tauri_plugin_dialog::{DialogExt, FilePath};

use super::commands::CommandError;

/// Dialog titles: the GUI tests find the dialog by its title.
pub const IMPORT_EMPLOYEES: &str = "Import employees (CSV)";
pub const EXPORT: &str = "Export to a file";
pub const OPEN_REVIEW: &str = "Open a history file for review";

fn path_of(picked: Option<FilePath>) -> Result<Option<PathBuf>, CommandError> {
    picked
        .map(|p| p.into_path().map_err(|e| CommandError::new("dialog", e)))
        .transpose()
}

/// Asks for a file to read; `None` when the operator cancels.
pub async fn open<R: Runtime>(
    window: &WebviewWindow<R>,
    title: &'static str,
    filter: (&'static str, &'static [&'static str]),
) -> Result<Option<PathBuf>, CommandError> {
    let dialog = window
        .dialog()
        .file()
        .set_parent(window)
        .set_title(title)
        .add_filter(filter.0, filter.1)
        .add_filter("All files", &["*"]);
    // The blocking call waits for the dialog, which GTK runs on the main thread.
    let picked = tauri::async_runtime::spawn_blocking(move || dialog.blocking_pick_file())
        .await
        .map_err(|e| CommandError::new("dialog", e))?;
    path_of(picked)
}

/// Asks where to write, offering `default_name` in the Downloads folder; `None` on cancel.
pub async fn save<R: Runtime>(
    window: &WebviewWindow<R>,
    title: &'static str,
    default_name: &str,
) -> Result<Option<PathBuf>, CommandError> {
    let mut dialog = window
        .dialog()
        .file()
        .set_parent(window)
        .set_title(title)
        .set_file_name(default_name);
    let paths = window.path();
    if let Ok(dir) = paths.download_dir().or_else(|_| paths.home_dir()) {
        dialog = dialog.set_directory(dir);
    }
    let picked = tauri::async_runtime::spawn_blocking(move || dialog.blocking_save_file())
        .await
        .map_err(|e| CommandError::new("dialog", e))?;
    path_of(picked)
}
