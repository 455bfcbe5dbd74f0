//! The page's watchdog.
//!
//! The page runs in WebKit's web process, a process of its own. It is the page that raises the
//! alerts (desktop notifications, the sound, the count in the title and on the tray), so when
//! that process crashes, is ended for using too much memory, or hangs, the window goes blank or
//! freezes and the alerts stop, while the pipeline goes on recording and nothing else notices.
//! The watchdog notices two ways, reloads the page (which starts a new web process and
//! subscribes to live state again) and says so in a desktop notification and the log:
//! - WebKit's `web-process-terminated` signal: a crash or the memory limit;
//! - a probe: every [`PROBE_EVERY`] a one-line script is evaluated in an isolated world of the
//!   page. The web process runs it on the page's main thread, so a page stuck in a script, or
//!   a process stopped or deadlocked, does not answer. Unanswered for [`HUNG_AFTER`], the
//!   process is ended and the page reloaded. The probe goes over WebKit's own IPC, so it is not
//!   slowed by the timer throttling of a minimised window.
//!
//! The page is reloaded a second after it ended, and one that ends again at once after a
//! growing delay (doubling to a minute; reset after [`SETTLED_AFTER`] without an ending), so a
//! crash loop does not spin. The notification goes out with the reload, not before: a console
//! being stopped ([`stand_down`]; Ctrl-C in a terminal reaches the web process too, which
//! WebKit reports as a crash) neither reloads nor tells of a crash.
//!
//! Linux only: the webview is WebKitGTK's. Elsewhere [`watch`] does nothing.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set once the console (or review window) is closing: pages that end now are not reloaded.
static STANDING_DOWN: AtomicBool = AtomicBool::new(false);

/// Stops the watchdog for good: the app is closing, and its pages may end with it.
pub fn stand_down() {
    STANDING_DOWN.store(true, Ordering::SeqCst);
}

fn standing_down() -> bool {
    STANDING_DOWN.load(Ordering::SeqCst)
}

/// How often the page is asked to answer.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How long a page may leave a probe unanswered before it is taken for hung. A long script
/// (laying out 20,000 employees) takes a second or two; a frozen screen for longer than this
/// is what an operator would notice and report.
pub const HUNG_AFTER: Duration = Duration::from_secs(20);
/// A page that has run this long without a crash starts the reload delays again from the start.
pub const SETTLED_AFTER: Duration = Duration::from_secs(300);

/// Watches the page of `window` (named `what` in the notification, "The console").
#[cfg(target_os = "linux")]
pub fn watch<R: tauri::Runtime>(window: &tauri::WebviewWindow<R>, what: &'static str) {
    let watched = window.with_webview(move |webview| linux::watch(webview.inner(), what));
    if let Err(error) = watched {
        tracing::warn!(%error, "the page's watchdog did not start: a crashed page would not be reloaded");
    }
}

#[cfg(not(target_os = "linux"))]
pub fn watch<R: tauri::Runtime>(_window: &tauri::WebviewWindow<R>, _what: &'static str) {}

/// Why the page was reloaded, in the operator's words.
fn reason_text(reason: Ending) -> &'static str {
    match reason {
        Ending::Crashed => "crashed",
        Ending::OutOfMemory => "was ended for using too much memory",
        Ending::Hung => "stopped answering",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Crashed,
    OutOfMemory,
    Hung,
}

/// The notification's text for a page that ended for `reason`, reloaded after `delay`.
fn notice(what: &str, reason: Ending, at: chrono::DateTime<chrono::Local>) -> (String, String) {
    let summary = format!("Watchfloor: the screen {}", reason_text(reason));
    let body = format!(
        "{what}'s page {} at {} and is being reloaded. Recording went on meanwhile; \
         alerts raised in that time are in the incident list.",
        reason_text(reason),
        at.format("%H:%M:%S"),
    );
    (summary, body)
}

/// The reload delays of a crash loop (backon's exponential backoff: 1 s doubling to 60 s).
fn reload_delays() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(60))
        .with_factor(2.0)
        .without_max_times()
        .build()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Instant;

    use webkit2gtk::glib::{self, prelude::ObjectExt};
    use webkit2gtk::{WebProcessTerminationReason, WebView, WebViewExt};

    use super::{Ending, HUNG_AFTER, PROBE_EVERY, SETTLED_AFTER};

    /// What the watchdog knows, on the GTK main thread.
    struct State {
        what: &'static str,
        /// The unanswered probe: its number and when it was sent.
        probe: Option<(u64, Instant)>,
        probes_sent: u64,
        /// Set when the watchdog itself ended a hung process, so its ending is told as a hang.
        ending_hung: bool,
        /// A reload is scheduled: no probes until the new page runs.
        reloading: bool,
        last_reload: Option<Instant>,
        delays: Box<dyn Iterator<Item = std::time::Duration>>,
    }

    pub(super) fn watch(webview: WebView, what: &'static str) {
        let state = Rc::new(RefCell::new(State {
            what,
            probe: None,
            probes_sent: 0,
            ending_hung: false,
            reloading: false,
            last_reload: None,
            delays: Box::new(super::reload_delays()),
        }));

        let on_end = Rc::clone(&state);
        webview.connect_web_process_terminated(move |webview, reason| {
            let ending = match reason {
                WebProcessTerminationReason::Crashed => Ending::Crashed,
                WebProcessTerminationReason::ExceededMemoryLimit => Ending::OutOfMemory,
                // Only the watchdog ends the process through the API (wry and Tauri never do).
                WebProcessTerminationReason::TerminatedByApi if on_end.borrow().ending_hung => {
                    Ending::Hung
                }
                other => {
                    // The probes find out whether the page came back.
                    tracing::info!(reason = ?other, "the page's web process ended");
                    return;
                }
            };
            reload(webview, &on_end, ending);
        });

        let weak = webview.downgrade();
        glib::timeout_add_local(PROBE_EVERY, move || {
            let Some(webview) = weak.upgrade() else {
                return glib::ControlFlow::Break; // the window is gone
            };
            if super::standing_down() {
                return glib::ControlFlow::Break;
            }
            probe(&webview, &state);
            glib::ControlFlow::Continue
        });
    }

    /// Sends a probe, or ends the process whose last probe has gone unanswered too long.
    fn probe(webview: &WebView, state: &Rc<RefCell<State>>) {
        let mut s = state.borrow_mut();
        if s.reloading || s.ending_hung {
            return;
        }
        match s.probe {
            Some((_, sent)) if sent.elapsed() >= HUNG_AFTER => {
                tracing::error!(
                    window = s.what,
                    unanswered_s = sent.elapsed().as_secs(),
                    "the page has stopped answering: ending its web process to reload it"
                );
                s.ending_hung = true;
                drop(s);
                // Emits web-process-terminated at once when there is a process to end; when
                // there is none (it ended unsignalled, or is still launching), reload here.
                webview.terminate_web_process();
                if !state.borrow().reloading {
                    reload(webview, state, Ending::Hung);
                }
            }
            Some(_) => {} // still waiting
            None => {
                s.probes_sent += 1;
                let number = s.probes_sent;
                s.probe = Some((number, Instant::now()));
                drop(s);
                let answered = Rc::clone(state);
                // An isolated world: the probe sees nothing of the page's own scripts.
                webview.evaluate_javascript(
                    "0",
                    Some("watchfloor-watchdog"),
                    None,
                    None::<&webkit2gtk::gio::Cancellable>,
                    move |answer| {
                        let mut s = answered.borrow_mut();
                        match answer {
                            // Only this probe's answer, not a late one of a previous page's.
                            Ok(_) if s.probe.is_some_and(|(n, _)| n == number) => s.probe = None,
                            Ok(_) => {}
                            // No page to run it (the process is gone): unanswered, and ended
                            // once HUNG_AFTER has passed, whatever ended it.
                            Err(error) => {
                                tracing::debug!(%error, "the page's watchdog probe failed");
                            }
                        }
                    },
                );
            }
        }
    }

    /// Reloads the page after the crash loop's delay and tells the operator, unless the app is
    /// closing by then.
    fn reload(webview: &WebView, state: &Rc<RefCell<State>>, ending: Ending) {
        let mut s = state.borrow_mut();
        if s.reloading {
            return; // one reload (and one notification) per ending
        }
        if s.last_reload
            .is_some_and(|at| at.elapsed() >= SETTLED_AFTER)
        {
            s.delays = Box::new(super::reload_delays());
        }
        let delay = s
            .delays
            .next()
            .unwrap_or(std::time::Duration::from_secs(60));
        s.reloading = true;
        s.probe = None;
        let what = s.what;
        drop(s);
        let ended_at = chrono::Local::now();
        let weak = webview.downgrade();
        let state = Rc::clone(state);
        glib::timeout_add_local_once(delay, move || {
            let Some(webview) = weak.upgrade() else {
                return;
            };
            if super::standing_down() {
                return; // it ended with the app
            }
            tracing::error!(
                window = what,
                reason = super::reason_text(ending),
                after_ms = delay.as_millis() as u64,
                "the page's web process ended: reloading the page"
            );
            let (summary, body) = super::notice(what, ending, ended_at);
            std::thread::spawn(move || {
                if let Err(error) = crate::desktop::notify_desktop(&summary, &body) {
                    tracing::warn!(%error, "the page's reload could not be shown as a notification");
                }
            });
            {
                let mut s = state.borrow_mut();
                s.reloading = false;
                s.ending_hung = false;
                s.last_reload = Some(Instant::now());
            }
            webview.reload();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_loop_is_reloaded_after_growing_delays_up_to_a_minute() {
        let delays: Vec<u64> = reload_delays().take(10).map(|d| d.as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    }

    #[test]
    fn the_notice_says_what_happened_when_and_that_recording_went_on() {
        let at = chrono::TimeZone::with_ymd_and_hms(&chrono::Local, 2026, 12, 7, 3, 12, 7)
            .single()
            .expect("an unambiguous local time");
        let (summary, body) = notice("The console", Ending::Hung, at);
        assert_eq!(summary, "Watchfloor: the screen stopped answering");
        assert!(
            body.starts_with("The console's page stopped answering at 03:12:07"),
            "{body}"
        );
        assert!(body.contains("Recording went on"), "{body}");
        let (summary, _) = notice("The console", Ending::OutOfMemory, at);
        assert!(summary.ends_with("was ended for using too much memory"));
    }
}
