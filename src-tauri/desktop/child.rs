//! A window of its own in a second process (the review window), started so that its failure is
//! the operator's to see: the child says "ready" on its stdout once its window is open, and a
//! child that exits first is reported with what it wrote to stderr. Its stderr is forwarded to
//! ours line by line for as long as it runs (its log, and the pipe never fills).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The environment variable a parent sets to ask the child for its readiness line.
pub const READY_ENV: &str = "WATCHFLOOR_REPORT_READY";
/// The line the child writes on stdout once its window is open.
pub const READY_LINE: &str = "watchfloor: ready";

/// Says ready on stdout when the parent asked for it (see [`READY_ENV`]).
pub fn report_ready() {
    if std::env::var_os(READY_ENV).is_some() {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{READY_LINE}");
        let _ = out.flush();
    }
}

/// What became of a started child.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    /// It said ready.
    Ready,
    /// It neither said ready nor exited within the wait: it may still open.
    Slow,
    /// It exited first: its status and the reason it gave (its last `watchfloor:` line on
    /// stderr, else its last line).
    Failed { status: String, reason: String },
}

enum Heard {
    Ready,
    Exited(ExitStatus),
}

/// Starts `command` and waits up to `wait` for it to say ready or exit; a child still running
/// is reaped by a thread of its own when it ends. For a child that was [`Started::Slow`],
/// `later` is called from that thread with what became of it ([`Started::Ready`] or
/// [`Started::Failed`]), so a failure after the wait is not lost.
pub fn start(
    mut command: Command,
    wait: Duration,
    later: impl FnOnce(Started) + Send + 'static,
) -> std::io::Result<(u32, Started)> {
    command
        .env(READY_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child: Child = command.spawn()?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let tail = Arc::new(Mutex::new(VecDeque::<String>::new()));
    let (stderr_done_tx, stderr_done) = mpsc::channel::<()>();
    if let Some(stderr) = child.stderr.take() {
        let tail = Arc::clone(&tail);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Not eprintln!, which panics when our own stderr is gone.
                let _ = writeln!(std::io::stderr(), "{line}");
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                t.push_back(line);
                if t.len() > 20 {
                    t.pop_front();
                }
            }
            let _ = stderr_done_tx.send(());
        });
    }
    if let Some(stdout) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == READY_LINE {
                    let _ = tx.send(Heard::Ready);
                }
            }
        });
    }
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            let _ = tx.send(Heard::Exited(status));
        }
    });
    let failed = move |status: ExitStatus| {
        // Everything it said before it went; a helper process it started may hold the pipe
        // open after it, so not for ever.
        let _ = stderr_done.recv_timeout(Duration::from_secs(2));
        let tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        let reason = tail
            .iter()
            .rev()
            .find(|l| l.starts_with("watchfloor: "))
            .map(|l| l.trim_start_matches("watchfloor: ").to_owned())
            .or_else(|| tail.back().cloned())
            .unwrap_or_else(|| "it said nothing".to_owned());
        Started::Failed {
            status: status.to_string(),
            reason,
        }
    };
    let started = match rx.recv_timeout(wait) {
        Ok(Heard::Ready) => Started::Ready,
        Ok(Heard::Exited(status)) => failed(status),
        Err(_) => {
            std::thread::spawn(move || match rx.recv() {
                Ok(Heard::Ready) => later(Started::Ready),
                Ok(Heard::Exited(status)) => later(failed(status)),
                Err(_) => {}
            });
            Started::Slow
        }
    };
    Ok((pid, started))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    #[test]
    fn a_child_that_fails_before_it_is_ready_is_reported_with_its_reason() {
        let (_, started) = start(
            sh("echo 'INFO starting' >&2; echo 'watchfloor: /tmp is full' >&2; echo late >&2; exit 1"),
            Duration::from_secs(10),
            |_| {},
        )
        .unwrap();
        assert_eq!(
            started,
            Started::Failed {
                status: "exit status: 1".into(),
                reason: "/tmp is full".into()
            }
        );
    }

    #[test]
    fn a_helper_that_keeps_the_failed_childs_stderr_open_does_not_hold_the_answer() {
        // The grandchild holds the pipe for 30 s; the answer comes after at most 2 s of it.
        let (_, started) = start(
            sh("sleep 30 >&2 & echo 'watchfloor: no display' >&2; exit 1"),
            Duration::from_secs(20),
            |_| {},
        )
        .unwrap();
        assert!(
            matches!(&started, Started::Failed { reason, .. } if reason == "no display"),
            "{started:?}"
        );
    }

    #[test]
    fn a_child_that_says_ready_is_ready_and_one_that_says_nothing_is_slow() {
        let ready = format!("test -n \"${READY_ENV}\" && echo '{READY_LINE}'; sleep 2");
        assert_eq!(
            start(sh(&ready), Duration::from_secs(10), |_| {})
                .unwrap()
                .1,
            Started::Ready
        );
        assert_eq!(
            start(sh("sleep 2"), Duration::from_millis(200), |_| {})
                .unwrap()
                .1,
            Started::Slow
        );
    }

    #[test]
    fn what_becomes_of_a_slow_child_is_told_later() {
        let (tx, rx) = std::sync::mpsc::channel();
        let slow_failure = "sleep 1; echo 'watchfloor: the temp folder is full' >&2; exit 1";
        let (_, started) = start(sh(slow_failure), Duration::from_millis(100), {
            let tx = tx.clone();
            move |later| tx.send(later).unwrap()
        })
        .unwrap();
        assert_eq!(started, Started::Slow);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(20)).unwrap(),
            Started::Failed {
                status: "exit status: 1".into(),
                reason: "the temp folder is full".into()
            }
        );
        let slow_ready = format!("sleep 1; echo '{READY_LINE}'; sleep 1");
        let (_, started) = start(sh(&slow_ready), Duration::from_millis(100), move |later| {
            tx.send(later).unwrap()
        })
        .unwrap();
        assert_eq!(started, Started::Slow);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(20)).unwrap(),
            Started::Ready
        );
    }
}
