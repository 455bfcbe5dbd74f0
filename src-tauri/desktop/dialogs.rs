//! The native file dialogs, opened by the backend itself. The page never names a path: it asks
//! for an import, an export or a review, and the operator picks the file here. So a compromised
//! page can read or write no file the operator did not choose in a dialog. Each dialog is modal
//! over the window that asked.
//!
//! On Linux the dialog is GTK's `GtkFileChooserNative` (the desktop portal inside Flatpak or
//! with `GTK_USE_PORTAL=1`, GTK's own file chooser otherwise), built and answered on the GTK
//! main thread, where the window toolkit runs, and awaited through a channel. Not
//! tauri-plugin-dialog there: its GTK backend (rfd 0.17) starts a thread of its own that
//! iterates GTK's default main context for the rest of the process, so GDK, WebKit and Tauri
//! sources could be dispatched on that thread instead of the main one: the likely cause of the
//! one crash seen, just after a file dialog closed (the GUI smoke test lost its WebDriver
//! session: "page crash or hang"; not reproduced here). Elsewhere the plugin is used, whose
//! dialogs there are started from the main thread with no toolkit loop of their own.

use std::path::PathBuf;

use tauri::{Manager, Runtime, WebviewWindow};

use super::commands::CommandError;

/// Dialog titles: the GUI tests find the dialog by its title.
pub const IMPORT_EMPLOYEES: &str = "Import employees (CSV)";
pub const EXPORT: &str = "Export to a file";
pub const OPEN_REVIEW: &str = "Open a history file for review";

/// What one dialog asks.
struct Ask {
    title: &'static str,
    save: bool,
    /// For an open dialog: the one filter offered besides "All files" (a name and extensions).
    filter: Option<(&'static str, &'static [&'static str])>,
    /// For a save dialog: the name offered, in `folder`.
    file_name: Option<String>,
    folder: Option<PathBuf>,
}

/// Adds what the dialogs need to an app being built: the dialog plugin, except on Linux.
pub fn install<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    #[cfg(not(target_os = "linux"))]
    let builder = builder.plugin(tauri_plugin_dialog::init());
    builder
}

/// Asks for a file to read; `None` when the operator cancels.
pub async fn open<R: Runtime>(
    window: &WebviewWindow<R>,
    title: &'static str,
    filter: (&'static str, &'static [&'static str]),
) -> Result<Option<PathBuf>, CommandError> {
    let ask = Ask {
        title,
        save: false,
        filter: Some(filter),
        file_name: None,
        folder: None,
    };
    show(window, ask).await
}

/// Asks where to write, offering `default_name` in the Downloads folder; `None` on cancel.
pub async fn save<R: Runtime>(
    window: &WebviewWindow<R>,
    title: &'static str,
    default_name: &str,
) -> Result<Option<PathBuf>, CommandError> {
    let paths = window.path();
    let ask = Ask {
        title,
        save: true,
        filter: None,
        file_name: Some(default_name.to_owned()),
        folder: paths.download_dir().or_else(|_| paths.home_dir()).ok(),
    };
    show(window, ask).await
}

/// Shows the dialog on the GTK main thread and waits for the operator's answer.
#[cfg(target_os = "linux")]
async fn show<R: Runtime>(
    window: &WebviewWindow<R>,
    ask: Ask,
) -> Result<Option<PathBuf>, CommandError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    // with_webview runs its closure on the main thread, with the window's webview.
    window
        .with_webview(move |webview| gtk_chooser::show(webview.inner(), ask, answer))
        .map_err(|e| CommandError::new("dialog", e))?;
    answered
        .await
        .map_err(|_| CommandError::new("dialog", "the file dialog closed without an answer"))
}

#[cfg(target_os = "linux")]
mod gtk_chooser {
    use std::cell::RefCell;
    use std::path::PathBuf;

    use gtk::prelude::*;
    use tokio::sync::oneshot;

    use super::Ask;

    /// Builds and shows the chooser, modal over the toplevel window of `webview`; `answer` gets
    /// the picked path (`None` on cancel) when the operator answers. Main thread only.
    pub fn show(webview: webkit2gtk::WebView, ask: Ask, answer: oneshot::Sender<Option<PathBuf>>) {
        let parent = webview
            .toplevel()
            .and_then(|w| w.downcast::<gtk::Window>().ok());
        let action = if ask.save {
            gtk::FileChooserAction::Save
        } else {
            gtk::FileChooserAction::Open
        };
        let chooser =
            gtk::FileChooserNative::new(Some(ask.title), parent.as_ref(), action, None, None);
        chooser.set_modal(true);
        if let Some((name, extensions)) = ask.filter {
            chooser.add_filter(filter(name, extensions.iter().map(|e| format!("*.{e}"))));
            chooser.add_filter(filter("All files", ["*".to_owned()]));
        }
        if ask.save {
            chooser.set_do_overwrite_confirmation(true);
        }
        if let Some(folder) = &ask.folder {
            chooser.set_current_folder(folder);
        }
        if let Some(name) = &ask.file_name {
            chooser.set_current_name(name);
        }
        // The chooser is kept alive by its own response handler until it answers (GTK's own
        // file chooser holds no reference to its native dialog while it is shown); the answer
        // drops it, after the handler returns (the signal emission holds the object till then).
        // Escape, Cancel and the window manager's close all answer (not Accept: no file).
        let held = RefCell::new(Some(chooser.clone()));
        let answer = RefCell::new(Some(answer));
        chooser.connect_response(move |chooser, response| {
            let picked = if response == gtk::ResponseType::Accept {
                chooser.filename()
            } else {
                None
            };
            if let Some(answer) = answer.borrow_mut().take() {
                let _ = answer.send(picked); // the command may have been dropped meanwhile
            }
            held.borrow_mut().take();
        });
        chooser.show();
    }

    fn filter(name: &str, patterns: impl IntoIterator<Item = String>) -> gtk::FileFilter {
        let filter = gtk::FileFilter::new();
        filter.set_name(Some(name));
        for pattern in patterns {
            filter.add_pattern(&pattern);
        }
        filter
    }
}

/// Shows the dialog through the dialog plugin and waits for the operator's answer.
#[cfg(not(target_os = "linux"))]
async fn show<R: Runtime>(
    window: &WebviewWindow<R>,
    ask: Ask,
) -> Result<Option<PathBuf>, CommandError> {
    use tauri_plugin_dialog::DialogExt;
    let mut dialog = window
        .dialog()
        .file()
        .set_parent(window)
        .set_title(ask.title);
    if let Some((name, extensions)) = ask.filter {
        dialog = dialog
            .add_filter(name, extensions)
            .add_filter("All files", &["*"]);
    }
    if let Some(folder) = ask.folder {
        dialog = dialog.set_directory(folder);
    }
    if let Some(name) = ask.file_name {
        dialog = dialog.set_file_name(name);
    }
    let picked = tauri::async_runtime::spawn_blocking(move || {
        if ask.save {
            dialog.blocking_save_file()
        } else {
            dialog.blocking_pick_file()
        }
    })
    .await
    .map_err(|e| CommandError::new("dialog", e))?;
    picked
        .map(|p| p.into_path().map_err(|e| CommandError::new("dialog", e)))
        .transpose()
}
