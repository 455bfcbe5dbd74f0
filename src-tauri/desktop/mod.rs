//! The desktop shell: the only module that imports Tauri (and WebKitGTK, for the page's
//! [`watchdog`]).
//!
//! It starts the same [`Pipeline`] as `record`, opens the window, and adapts core types to Tauri
//! in one place ([`commands`]). Live batches reach the webview as Tauri events, a few times a
//! second, never one message per MQTT message. Closing the window shuts the pipeline down in
//! order, so the history file is complete. [`review`] is the other window: a history file
//! opened offline, with no pipeline at all.

mod child;
mod commands;
mod dialogs;
mod employees;
pub mod review;
mod watchdog;

use std::sync::Mutex;

use anyhow::Context;
use tauri::{Manager, RunEvent};
use watchfloor_core::{Pipeline, Settings};

/// The tray icon's id (its label carries the count of unacknowledged incidents).
pub const TRAY_ID: &str = "watchfloor";

/// The live console's window label; capabilities/console.json grants it its commands.
pub const CONSOLE_WINDOW: &str = "main";
/// The review window's label; capabilities/review.json grants it its commands.
pub const REVIEW_WINDOW: &str = "review";

/// Opens the window `label` from tauri.conf.json (where none is created by itself, so each
/// process opens only its own, under the capability meant for it).
pub(super) fn open_window<R: tauri::Runtime>(
    app: &tauri::App<R>,
    label: &str,
) -> tauri::Result<tauri::WebviewWindow<R>> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == label)
        .cloned()
        .ok_or_else(|| tauri::Error::WindowNotFound)?;
    tauri::WebviewWindowBuilder::from_config(app.handle(), &config)?.build()
}

/// The tray icon, whose label carries the count of unacknowledged incidents
/// (`commands::set_attention`), with a menu that says the count (the only place it shows on
/// hosts that draw no labels, GNOME's among them), brings the console to the front, and quits
/// it as closing the window does (the history flushed).
///
/// The menu is not optional on Linux: an AppIndicator without one (libayatana-appindicator
/// 0.5.92) never registers with the desktop's tray host, so the icon and its count would not
/// show anywhere. Found by the GUI test that reads the tray through a stand-in host.
fn build_tray(app: &tauri::App) -> tauri::Result<()> {
    use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
    const SHOW: &str = "show-console";
    const QUIT: &str = "quit-console";
    let count = MenuItem::with_id(app, "unacknowledged", tray_count(0), false, None::<&str>)?;
    let show = MenuItem::with_id(app, SHOW, "Show Watchfloor", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, QUIT, "Quit Watchfloor", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&count, &show, &separator, &quit])?;
    let mut tray = tauri::tray::TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("Watchfloor")
        .menu(&menu)
        .on_menu_event(|app, event| {
            if event.id() == SHOW {
                if let Some(window) = app.get_webview_window(CONSOLE_WINDOW) {
                    let _ = window.unminimize();
                    let _ = window.show();
                    let _ = window.set_focus();
                }
            } else if event.id() == QUIT {
                tracing::info!("quit from the tray menu");
                app.exit(0);
            }
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    app.manage(TrayCount(count));
    Ok(())
}

/// The tray menu's first line, which says the count of unacknowledged incidents.
pub(crate) struct TrayCount(pub tauri::menu::MenuItem<tauri::Wry>);

/// What the tray menu's first line says for `unacknowledged` incidents.
pub(crate) fn tray_count(unacknowledged: u32) -> String {
    match unacknowledged {
        0 => "Nothing unacknowledged".to_owned(),
        1 => "1 unacknowledged incident".to_owned(),
        n => format!("{n} unacknowledged incidents"),
    }
}

/// The app's context, with the Content Security Policy of tauri.conf.json (no remote script, no
/// inline script, no connection but the app's own IPC) widened for one thing only: the origin of
/// an online map style the operator configured (its style, tiles, glyphs and sprites).
pub fn context(map_style_url: Option<&str>) -> tauri::Context<tauri::Wry> {
    let mut context = tauri::generate_context!();
    if let (Some(origin), Some(tauri::utils::config::Csp::DirectiveMap(csp))) = (
        map_style_url.and_then(web_origin),
        context.config_mut().app.security.csp.as_mut(),
    ) {
        for directive in ["connect-src", "img-src"] {
            if let Some(sources) = csp.get_mut(directive) {
                sources.push(&origin);
            }
        }
    }
    context
}

/// What the commands can reach.
/// The console is closing: live state ending then is no defect to report.
pub(crate) static EXITING: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub struct ConsoleState {
    pub info: watchfloor_core::view::ConsoleInfo,
    pub feed: watchfloor_core::pipeline::LiveFeed,
    pub metrics: watchfloor_core::metrics::Metrics,
    pub retry: watchfloor_core::pipeline::RetryNow,
    /// The task forwarding batches to the current page; replaced when the page reloads.
    pub forwarder: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    /// The employee sync's progress and controls, when this console runs it.
    pub sync: Option<SyncControls>,
    /// Why the employee sync did not start although `[face]` asks for it.
    pub sync_problem: Option<String>,
    /// The face terminals' zone (imports read local validity times in it); `None`: face off.
    pub face_zone: Option<chrono_tz::Tz>,
    /// The `--config` file this console was started with, passed on to review windows.
    pub config_path: Option<std::path::PathBuf>,
    /// The employee import that stopped before removing many, until the operator confirms it:
    /// the file and how many it would remove. Kept here, so the page never names a file.
    pub pending_import: Mutex<Option<employees::PendingImport>>,
}

pub struct SyncControls {
    pub progress: tokio::sync::watch::Receiver<Vec<watchfloor_core::facesync::TerminalProgress>>,
    pub control: tokio::sync::mpsc::Sender<watchfloor_core::facesync::Control>,
    /// The sync's own connection to the broker.
    pub connection: tokio::sync::watch::Receiver<watchfloor_core::view::ConnectionView>,
}

/// `https://tiles.example:8443` for a URL there; `None` for what has no web origin.
fn web_origin(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    matches!(url.scheme(), "https" | "http")
        .then(|| url.origin().ascii_serialization())
        .filter(|o| o != "null")
}

/// Runs the console until its window closes.
pub fn run(
    runtime: tokio::runtime::Runtime,
    settings: Settings,
    config_path: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    tauri::async_runtime::set(runtime.handle().clone());
    if let Err(e) = open_display() {
        tell_desktop_it_did_not_start(&e);
        return Err(e);
    }
    // Before anything starts, so an early SIGTERM is not fatal either.
    let mut stop = runtime.block_on(async { crate::headless::StopSignal::install() })?;
    let pipeline = match runtime.block_on(Pipeline::start(&settings)) {
        Ok(pipeline) => pipeline,
        Err(e) => {
            tell_desktop_it_did_not_start(&e);
            return Err(e);
        }
    };
    // Inside the runtime: the simulator spawns its tasks on it.
    let simulator =
        runtime.block_on(async { crate::headless::start_simulator(&settings, &pipeline) })?;
    let (sync, sync_problem) =
        match runtime.block_on(async { crate::headless::start_sync(&settings, &pipeline) }) {
            Ok(sync) => (sync, None),
            Err(why) => (None, Some(why)),
        };
    let state = ConsoleState {
        info: pipeline.info().clone(),
        feed: pipeline.feed(),
        metrics: pipeline.metrics(),
        retry: pipeline.retry_handle(),
        forwarder: Mutex::new(None),
        sync: sync.as_ref().map(|s| SyncControls {
            progress: s.progress.clone(),
            control: s.control.clone(),
            connection: s.connection.clone(),
        }),
        sync_problem,
        face_zone: settings.face.as_ref().map(|f| f.zone),
        config_path,
        pending_import: Mutex::new(None),
    };
    tracing::info!(broker = %state.info.broker_url, embedded = state.info.embedded_broker, db = %state.info.db_path, "console starting");

    let app = dialogs::install(tauri::Builder::default())
        .manage(state)
        .setup(move |app| {
            // A stop signal (kill, a logout, Ctrl-C in the terminal that started it) closes the
            // console as its window's close button does: the exit below flushes the history.
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                if stop.wait().await.is_ok() {
                    tracing::info!("stop signal: closing the console");
                    watchdog::stand_down();
                    handle.exit(0);
                    stop.exit_on_second();
                }
            });
            // A tray icon where the desktop has a tray; a console without one still runs. The
            // tray library panics instead of failing when libayatana-appindicator3 is not
            // installed: that is caught too, and said.
            let tray = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build_tray(app)));
            let problem = match tray {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(panic) => Some(
                    panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("the tray library failed")
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                ),
            };
            if let Some(error) = problem {
                tracing::warn!(%error, "no tray icon: the unacknowledged count shows in the window title only");
            }
            // Not `?`: Tauri panics on a setup error, past the exit below that flushes the
            // history. Said (in the log and the desktop's notifications), then a clean exit.
            match open_window(app, CONSOLE_WINDOW) {
                Ok(window) => watchdog::watch(&window, "The console"),
                Err(e) => {
                    let error = anyhow::anyhow!("cannot open the console window: {e}");
                    tracing::error!("{error:#}");
                    tell_desktop_it_did_not_start(&error);
                    app.handle().exit(1);
                }
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            review::app_mode,
            review::open_review,
            commands::console_info,
            commands::subscribe_live,
            commands::metrics,
            commands::recent_quarantine,
            commands::retry_now,
            commands::device_events,
            commands::device_trail,
            commands::act_on_incident,
            commands::incident_audit,
            commands::notify,
            commands::check_notifications,
            commands::set_attention,
            employees::sync_overview,
            employees::sync_employees,
            employees::sync_placements,
            employees::sync_failures,
            employees::sync_control,
            employees::import_employees,
            employees::set_terminal_groups,
            employees::attendance_log,
            employees::attendance_daily,
            employees::export_attendance,
            employees::event_images
        ])
        .build(context(settings.map_style_url.as_deref()))
        .context("cannot open the console window")?;

    let mut running = Some((pipeline, simulator, sync));
    app.run(move |_app, event| {
        if let RunEvent::ExitRequested { .. } = event {
            watchdog::stand_down();
            EXITING.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let RunEvent::Exit = event {
            watchdog::stand_down();
            EXITING.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some((pipeline, simulator, sync)) = running.take() {
                runtime.block_on(async {
                    if let Some(sync) = sync {
                        sync.stop().await;
                    }
                    if let Some(sim) = simulator {
                        crate::headless::stop_simulator(sim, &pipeline.feed()).await;
                    }
                    pipeline.shutdown().await;
                });
                tracing::info!("console closed; history flushed");
            }
        }
    });
    Ok(())
}

/// Opens the window toolkit on this (the main) thread, before the pipeline or anything else
/// starts. The window library would do it when the app is built, and panic when it cannot (no
/// DISPLAY or WAYLAND_DISPLAY: started over ssh, or from a service): the pipeline already ran,
/// its queued history was not flushed, and the user read a Rust panic instead of a reason.
pub(crate) fn open_display() -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    gtk::init().map_err(|e| {
        anyhow::anyhow!(
            "cannot open a window: {e} (is DISPLAY or WAYLAND_DISPLAY set? `watchfloor record` runs without one)"
        )
    })?;
    Ok(())
}

/// A console started from a launcher has no terminal for its error: the reason (the history
/// file in use by another console, the broker's port taken) also goes to the desktop's
/// notifications, where the operator who clicked sees it. Best effort: stderr has it anyway.
fn tell_desktop_it_did_not_start(error: &anyhow::Error) {
    if let Err(e) = notify_desktop("Watchfloor did not start", &format!("{error:#}")) {
        tracing::debug!(error = %e, "the start failure could not be shown as a notification");
    }
}

/// Shows a critical desktop notification from Watchfloor. Blocks on D-Bus: call it off the
/// window's thread. Fails when no notification service answers.
pub(crate) fn notify_desktop(summary: &str, body: &str) -> Result<(), notify_rust::error::Error> {
    // The body carries device names and incident titles, which any device can choose: a server
    // that reads markup in bodies (dunst, KDE, xfce4-notifyd) showed "R&D <north>" mangled or
    // empty, and took a device's `<a href>` or `<img>`. Escaped for those; asked once.
    static BODY_MARKUP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let markup = *BODY_MARKUP.get_or_init(|| {
        #[cfg(all(unix, not(target_os = "macos")))]
        return notify_rust::get_capabilities()
            .map_or(true, |caps| caps.iter().any(|c| c == "body-markup"));
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        false
    });
    let body = if markup {
        escape_markup(body)
    } else {
        body.to_owned()
    };
    notify_rust::Notification::new()
        .appname("Watchfloor")
        .summary(summary)
        .body(&body)
        .urgency(notify_rust::Urgency::Critical)
        .show()
        .map(|_| ())
}

/// `text` as the notification spec's body markup reads it: its `&`, `<` and `>` as entities.
fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_notification_body_cannot_carry_markup() {
        assert_eq!(
            super::escape_markup("R&D van <north>: <a href=\"x\">panic</a>"),
            "R&amp;D van &lt;north&gt;: &lt;a href=\"x\"&gt;panic&lt;/a&gt;"
        );
        assert_eq!(super::escape_markup("Van 7: panic"), "Van 7: panic");
    }

    #[test]
    fn an_online_style_widens_the_csp_for_its_origin_only() {
        assert_eq!(
            super::web_origin("https://tiles.example:8443/styles/dark.json?key=k"),
            Some("https://tiles.example:8443".to_owned())
        );
        assert_eq!(super::web_origin("file:///etc/passwd"), None);
        assert_eq!(super::web_origin("javascript:alert(1)"), None);
        assert_eq!(super::web_origin("not a url"), None);
        let ctx = super::context(Some("https://tiles.example/style.json"));
        let csp = ctx.config().app.security.csp.as_ref().unwrap().to_string();
        assert!(
            csp.contains("connect-src 'self' ipc: http://ipc.localhost https://tiles.example"),
            "{csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("blob:"),
            "{csp}"
        );
    }
}
